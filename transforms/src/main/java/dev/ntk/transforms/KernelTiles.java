package dev.ntk.transforms;

import dev.ntk.io.TileFiles;
import dev.ntk.io.TileKey;
import dev.ntk.kernels.engine.Backend;
import org.apache.beam.sdk.transforms.display.DisplayData;
import org.apache.beam.sdk.transforms.Create;
import org.apache.beam.sdk.transforms.PTransform;
import org.apache.beam.sdk.transforms.ParDo;
import org.apache.beam.sdk.transforms.Reshuffle;
import org.apache.beam.sdk.values.PBegin;
import org.apache.beam.sdk.values.PCollection;

/**
 * Computes the tiles of a {@link TileSet}: plans them (blocks of rows of x1 paired with blocks of
 * rows of x2, only on or above the diagonal for a {@link TileSet#mirrored mirrored} set), spreads
 * them over the workers and computes each in the one compute step of both Beam APIs ({@link
 * ComputeTileFn}, as {@link Kernels} does), which writes an Arrow tile file. The output holds the
 * key of every tile once its file is written, for the transforms that assemble or consume the kernel.
 *
 * <pre>{@code
 * TileSet set = TileSet.create(modelJson, x1, null, 256, NpyDType.FLOAT64, dir.resolve("tiles"));
 * PCollection<TileKey> done = pipeline.apply(KernelTiles.of(set));
 * done.apply(WriteKernels.of(set, List.of(Get.NNGP, Get.NTK), dir));
 * }</pre>
 *
 * <p>Beam metrics (namespace {@code dev.ntk.transforms.KernelTiles}, for {@link Kernels} too):
 * {@value #TILES_COMPUTED} and {@value #TILES_SKIPPED} (tiles already on disk from an earlier run),
 * {@value #TILES_DAMAGED} (tiles on disk that failed their checksum and were computed again; also counted as computed);
 * where each computed tile's time went, as distributions of microseconds per tile: {@value
 * #TILE_INPUT_MICROS}, {@value #TILE_COMPUTE_MICROS} and {@value #TILE_WRITE_MICROS}; {@value
 * #INPUT_BLOCKS_READ} and {@value #ENTRIES_COMPUTED}. They are the job's one account of its work, wherever
 * the workers run: the command line reads its progress and its report from them ({@code
 * PipelineResult.metrics()}), as a Flink or Dataflow user reads them in the runner's UI.
 */
public final class KernelTiles extends PTransform<PBegin, PCollection<TileKey>> {
  /** The counter of tiles computed and written. */
  public static final String TILES_COMPUTED = "tilesComputed";
  /** The counter of tiles found on disk and not computed again. */
  public static final String TILES_SKIPPED = "tilesSkipped";
  /** The counter of tiles found on disk damaged (failing their checksum) and computed again. */
  public static final String TILES_DAMAGED = "tilesDamaged";
  /** The distribution of microseconds per computed tile spent getting its input rows. */
  public static final String TILE_INPUT_MICROS = "tileInputMicros";
  /** The distribution of microseconds per computed tile spent computing its kernels. */
  public static final String TILE_COMPUTE_MICROS = "tileComputeMicros";
  /** The distribution of microseconds per computed tile spent checking and writing its file. */
  public static final String TILE_WRITE_MICROS = "tileWriteMicros";
  /** The distribution of microseconds spent assembling kernel files from the tiles ({@link WriteKernels}). */
  public static final String ASSEMBLY_MICROS = "assemblyMicros";
  /** The counter of blocks of input rows read from their files (a worker keeps those it read). */
  public static final String INPUT_BLOCKS_READ = "inputBlocksRead";
  /** The counter of kernel entries computed: each computed tile's rows times columns times kernels. */
  public static final String ENTRIES_COMPUTED = "entriesComputed";

  /**
   * Keys that the tiles are spread over before they are computed: enough for 256 workers to share
   * the tiles, and few enough for the DirectRunner, whose timer bookkeeping stalled with one random
   * key per tile after 5,000 of 10,000 tiles (the {@code rss} run of {@code bench/run.sh}).
   */
  static final int SPREAD_BUCKETS = 256;

  private static final long serialVersionUID = 1L;

  private final TileSet tiles;
  private final Backend backend;
  /** What the kernel is in a larger computation ({@code train-train}), for messages; or null. */
  private final String role;

  private KernelTiles(TileSet tiles, Backend backend, String role) {
    this.tiles = tiles;
    this.backend = backend;
    this.role = role;
  }

  /** The tiles of {@code tiles}, computed on the {@code auto} backend. */
  public static KernelTiles of(TileSet tiles) {
    return new KernelTiles(tiles, Backend.AUTO, null);
  }

  /**
   * The same transform on {@code newBackend} ({@code auto} is decided where the workers run:
   * {@code tensorflow} on a machine with a visible GPU, else {@code cpu}).
   */
  public KernelTiles withBackend(Backend newBackend) {
    return new KernelTiles(tiles, java.util.Objects.requireNonNull(newBackend, "backend"), role);
  }

  /**
   * The same transform for a kernel that plays {@code newRole} in a larger computation ({@code
   * train-train}, {@code test-train}), which a non-finite entry's message names as the in-process
   * path does: {@code the train-train ntk kernel entry (3, 5) is NaN}.
   */
  public KernelTiles withRole(String newRole) {
    return new KernelTiles(tiles, backend, java.util.Objects.requireNonNull(newRole, "role"));
  }

  @Override
  public PCollection<TileKey> expand(PBegin begin) {
    TileFiles.checkJvmFlags("KernelTiles");
    return begin
        .apply("PlanTiles", Create.of(tiles.plan()).withCoder(TileKeyCoder.of()))
        .apply("SpreadTiles", Reshuffle.<TileKey>viaRandomKey().withNumBuckets(SPREAD_BUCKETS))
        .apply("ComputeTiles", ParDo.of(new ComputeTileFn.Keys(new TileInputs.Files(tiles), backend, role,
            tiles.store())))
        .setCoder(TileKeyCoder.of());
  }

  @Override
  public void populateDisplayData(DisplayData.Builder builder) {
    super.populateDisplayData(builder);
    builder.add(DisplayData.item("tiles", tiles.toString()).withLabel("Tile set"))
        .add(DisplayData.item("backend", backend.key()).withLabel("Kernel backend"));
  }
}
