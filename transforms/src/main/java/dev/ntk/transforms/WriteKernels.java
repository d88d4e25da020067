package dev.ntk.transforms;

import dev.ntk.io.NpyDType;
import dev.ntk.io.NpyWriter;
import dev.ntk.io.TileFiles;
import dev.ntk.io.TileKey;
import dev.ntk.kernels.Get;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.beam.sdk.io.fs.ResourceId;
import org.apache.beam.sdk.transforms.DoFn;
import org.apache.beam.sdk.transforms.PTransform;
import org.apache.beam.sdk.transforms.ParDo;
import org.apache.beam.sdk.transforms.display.DisplayData;
import org.apache.beam.sdk.values.PCollection;

/**
 * Assembles the finished tiles of a {@link TileSet} into whole kernels and writes each selected
 * one as {@code <directory>/<get>.npy} ({@code nngp.npy}, {@code ntk.npy}; shape {@code (N1, N2)},
 * in the set's dtype), each committed by a rename once complete. Emits the files written.
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

  /** The rows of one band of an {@code n2}-column kernel set, for {@code kernels} kernels. */
  static int bandRows(int tileSize, long n2, int kernels) {
    long rows = BAND_BYTES / (8L * n2 * kernels);
    return (int) Math.max(1, Math.min(tileSize, rows));
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

  /** Rows of kernels: name to row-major {@code rows x n2} values. */
  interface BandSource {
    Map<String, double[]> rows(long rowOffset, int rows) throws IOException;
  }

  /**
   * Streams the kernels {@code names}, {@code n1 x n2} in {@code dtype}, into {@code
   * <directory>/<name>.npy} in bands of at most {@code tileSize} rows read from {@code source}.
   */
  static List<ResourceId> write(long n1, long n2, NpyDType dtype, int tileSize, List<String> names,
      ResourceId directory, BandSource source) throws IOException {
    long[] shape = {n1, n2};
    int band = bandRows(tileSize, n2, names.size());
    List<ResourceId> targets = new ArrayList<>();
    List<ResourceId> temporaries = new ArrayList<>();
    List<NpyWriter> writers = new ArrayList<>();
    try {
      for (String name : names) {
        ResourceId target = BeamFiles.child(directory, name + ".npy");
        ResourceId tmp = BeamFiles.temporarySibling(target);
        targets.add(target);
        temporaries.add(tmp);
        writers.add(NpyWriter.open(BeamFiles.create(tmp), target.toString(), shape, dtype));
      }
      for (long r = 0; r < n1; r += band) {
        int rows = (int) Math.min(band, n1 - r);
        Map<String, double[]> values = source.rows(r, rows);
        for (int i = 0; i < names.size(); i++) {
          writers.get(i).write(values.get(names.get(i)));
        }
      }
      for (NpyWriter w : writers) {
        w.close();
      }
      BeamFiles.rename(temporaries, targets);
      return targets;
    } catch (IOException | RuntimeException | Error e) {
      for (NpyWriter w : writers) {
        try {
          w.close();
        } catch (IOException ignored) {
          // incomplete, as expected after a failure: the temporary file is removed below
        }
      }
      BeamFiles.deleteQuietly(temporaries, e);
      throw e;
    }
  }
}
