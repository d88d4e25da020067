package dev.ntk.transforms;

import dev.ntk.io.TileFiles;
import dev.ntk.io.TileKey;
import dev.ntk.kernels.Get;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.apache.beam.sdk.io.fs.ResourceId;
import org.apache.beam.sdk.metrics.Distribution;
import org.apache.beam.sdk.metrics.Metrics;
import org.apache.beam.sdk.transforms.DoFn;
import org.apache.beam.sdk.transforms.PTransform;
import org.apache.beam.sdk.transforms.ParDo;
import org.apache.beam.sdk.transforms.display.DisplayData;
import org.apache.beam.sdk.values.PCollection;

/**
 * Assembles the finished tiles of a {@link TileSet} into whole kernels and writes each selected
 * one as {@code <directory>/<get>.npy} ({@code nngp.npy}, {@code ntk.npy}; shape {@code (N1, N2)},
 * in the set's dtype), each committed by a rename once complete. Emits the files written. {@link
 * KernelIO#writeNpy} assembles by the same code ({@link StoredBands}), from the tiles it wrote.
 *
 * <p>No kernel is ever held whole: the files are streamed in bands of rows, each band filled from
 * the rows of the tiles that cross it (for a mirrored set also from the transposes of the tiles
 * above the diagonal), in the tiles' dtype and bytes, on all cores, and appended to every file
 * while the next band is filled ({@link StoredBands}), so the memory this step needs is two bands,
 * not {@code N1 x N2}. Every tile is checked against its checksum first. The files go through Beam's {@code
 * FileSystems}, so {@code directory} may be any path or URI Beam can write ({@link BeamFiles});
 * they are written sequentially, which object stores allow and positioned writes would not.
 */
public final class WriteKernels extends PTransform<PCollection<TileKey>, PCollection<String>> {
  /**
   * The most bytes one band of all kernels may take in memory (as doubles). A band is at least one
   * row and at most one tile high: bands aligned with the tiles read each tile once (twice for
   * the transposes of a mirrored set); thinner bands, for very wide kernels, read it once per band
   * that crosses it.
   */
  public static final long BAND_BYTES = 256L << 20;

  private static final long serialVersionUID = 1L;
  /** The tile set, or null for the tiles of {@link #tileDirectory} that arrive ({@link KernelIO#writeNpy}). */
  private final TileSet tiles;
  private final String tileDirectory;
  private final List<Get> get;
  private final String directory;

  private WriteKernels(TileSet tiles, String tileDirectory, List<Get> get, String directory) {
    this.tiles = tiles;
    this.tileDirectory = tileDirectory;
    this.get = List.copyOf(get);
    this.directory = directory;
  }

  /** Writes the kernels {@code get} of {@code tiles} into the local {@code directory}. */
  public static WriteKernels of(TileSet tiles, List<Get> get, Path directory) {
    return to(tiles, get, directory.toAbsolutePath().toString());
  }

  /**
   * Writes the kernels {@code get} of {@code tiles} into {@code directory}, a path or a URI of
   * any Beam file system ({@code gs://bucket/run}, {@code s3://bucket/run}).
   */
  public static WriteKernels to(TileSet tiles, List<Get> get, String directory) {
    return checked(java.util.Objects.requireNonNull(tiles, "tiles"), tiles.directory(), get, directory);
  }

  /**
   * Writes the kernels {@code get} of the tile files in {@code tileDirectory} whose keys arrive into
   * {@code directory}: the kernel is the one those keys cover ({@link StoredBands.Source#covered}).
   */
  static WriteKernels covered(String tileDirectory, List<Get> get, String directory) {
    return checked(null, tileDirectory, get, directory);
  }

  private static WriteKernels checked(TileSet tiles, String tileDirectory, List<Get> get, String directory) {
    if (get.isEmpty()) {
      throw new IllegalArgumentException("select at least one kernel to write");
    }
    if (directory == null || directory.isBlank()) {
      throw new IllegalArgumentException("the output directory is empty");
    }
    return new WriteKernels(tiles, tileDirectory, get, directory);
  }

  @Override
  public PCollection<String> expand(PCollection<TileKey> done) {
    TileFiles.checkJvmFlags("WriteKernels");
    return done.apply("GatherTiles", new GatherTiles())
        .apply("StreamIntoNpy", ParDo.of(new AssembleFn(tiles, tileDirectory, get, directory)));
  }

  @Override
  public void populateDisplayData(DisplayData.Builder builder) {
    super.populateDisplayData(builder);
    builder.add(DisplayData.item("tiles", tiles == null ? tileDirectory : tiles.toString()).withLabel("Tile set"))
        .add(DisplayData.item("kernels", get.toString()).withLabel("Kernels written"))
        .add(DisplayData.item("directory", directory).withLabel("Output directory"));
  }

  /**
   * Streams the gathered tiles into {@code .npy} files ({@link StoredBands}): those of a tile set,
   * all of its planned tiles, or those of a tile directory, every tile holding what the first holds
   * (model, inputs, dtype and kernels).
   */
  private static final class AssembleFn extends DoFn<List<TileKey>, String> {
    private static final long serialVersionUID = 1L;
    private final TileSet tiles;
    private final String tileDirectory;
    private final List<Get> get;
    private final String directory;
    private final Distribution assemblyMicros = Metrics.distribution(KernelTiles.class, KernelTiles.ASSEMBLY_MICROS);

    AssembleFn(TileSet tiles, String tileDirectory, List<Get> get, String directory) {
      this.tiles = tiles;
      this.tileDirectory = tileDirectory;
      this.get = get;
      this.directory = directory;
    }

    @ProcessElement
    public void process(@Element List<TileKey> keys, OutputReceiver<String> out) throws IOException {
      long started = System.nanoTime();
      if (keys.isEmpty()) {
        throw new IllegalArgumentException("no tiles to write into " + directory);
      }
      StoredBands.Source source;
      if (tiles != null) {
        GatherTiles.checkComplete(tiles, keys);
        source = StoredBands.Source.of(tiles);
      } else {
        TileStore store = new TileStore(tileDirectory);
        source = StoredBands.Source.covered(store, keys, store.readMetadata(keys.get(0)));
      }
      List<ResourceId> files = StoredBands.write(source, get.stream().map(Get::key).toList(),
          BeamFiles.directory(directory), keys);
      assemblyMicros.update((System.nanoTime() - started) / 1000);
      for (ResourceId file : files) {
        out.output(file.toString());
      }
    }
  }
}
