package dev.ntk.transforms;

import dev.ntk.io.TileFiles;
import dev.ntk.io.TileKey;
import dev.ntk.kernels.Get;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.apache.beam.sdk.io.fs.ResourceId;
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
 * the rows of the tiles that cross it (for a symmetric set also from the transposes of the tiles
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
   * the transposes of a symmetric set); thinner bands, for very wide kernels, read it once per band
   * that crosses it.
   */
  public static final long BAND_BYTES = 256L << 20;

  private static final long serialVersionUID = 1L;
  private final TileSet tiles;
  private final List<Get> get;
  private final String directory;

  private WriteKernels(TileSet tiles, List<Get> get, String directory) {
    this.tiles = tiles;
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
    if (get.isEmpty()) {
      throw new IllegalArgumentException("select at least one kernel to write");
    }
    if (directory == null || directory.isBlank()) {
      throw new IllegalArgumentException("the output directory is empty");
    }
    return new WriteKernels(tiles, get, directory);
  }

  @Override
  public PCollection<String> expand(PCollection<TileKey> done) {
    TileFiles.checkJvmFlags("WriteKernels");
    return done.apply("GatherTiles", new GatherTiles())
        .apply("StreamIntoNpy", ParDo.of(new AssembleFn(tiles, get, directory)));
  }

  @Override
  public void populateDisplayData(DisplayData.Builder builder) {
    super.populateDisplayData(builder);
    builder.add(DisplayData.item("tiles", tiles.toString()).withLabel("Tile set"))
        .add(DisplayData.item("kernels", get.toString()).withLabel("Kernels written"))
        .add(DisplayData.item("directory", directory).withLabel("Output directory"));
  }

  private static final class AssembleFn extends DoFn<List<TileKey>, String> {
    private static final long serialVersionUID = 1L;
    private final TileSet tiles;
    private final List<Get> get;
    private final String directory;

    AssembleFn(TileSet tiles, List<Get> get, String directory) {
      this.tiles = tiles;
      this.get = get;
      this.directory = directory;
    }

    private final org.apache.beam.sdk.metrics.Distribution assemblyMicros =
        org.apache.beam.sdk.metrics.Metrics.distribution(KernelTiles.class, KernelTiles.ASSEMBLY_MICROS);

    @ProcessElement
    public void process(@Element List<TileKey> keys, OutputReceiver<String> out) throws IOException {
      long started = System.nanoTime();
      GatherTiles.checkComplete(tiles, keys);
      List<ResourceId> files = write(tiles, get, BeamFiles.directory(directory), keys);
      assemblyMicros.update((System.nanoTime() - started) / 1000);
      for (ResourceId file : files) {
        out.output(file.toString());
      }
    }
  }

  /**
   * Streams the kernels {@code get} of {@code tiles}, from the tiles {@code keys}, into {@code
   * <directory>/<get>.npy}, band by band; every file is renamed into place only after all of them
   * are complete, so a failure leaves none.
   */
  static List<ResourceId> write(TileSet tiles, List<Get> get, ResourceId directory,
      List<TileKey> keys) throws IOException {
    return StoredBands.write(tiles, get.stream().map(Get::key).toList(), directory, keys);
  }
}
