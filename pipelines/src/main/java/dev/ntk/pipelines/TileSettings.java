package dev.ntk.pipelines;

import dev.ntk.io.NpyDType;
import dev.ntk.kernels.Plan;
import dev.ntk.kernels.engine.Backend;
import dev.ntk.transforms.NtkPipelineOptions;

/**
 * A job's tile settings, those of {@link NtkPipelineOptions} as a plain value, and the rules that
 * size its tiles from them. The jobs ({@link KernelJob}, {@link PredictJob}) and {@link
 * KernelPipeline} read it from the pipeline's options ({@link #of}); {@code bin/ntk} makes it from
 * its flags ({@code CommonOptions}) and writes it into the options it runs a pipeline on ({@link
 * #writeTo}), so that the command line, the main class and a user's pipeline size tiles by one rule.
 * The in-process path reads it without building pipeline options (Beam's registrars and Jackson:
 * about a second of class loading).
 *
 * @param tileRows rows of x1 and x2 per tile, at least 1; {@code null}: unset ({@code --tile auto})
 * @param maxTileBytes the memory one tile may take while it is computed, positive
 * @param dtype the dtype kernels are computed in and tiles stored with
 * @param backend where tiles are computed, as asked ({@code auto} is resolved per plan)
 */
record TileSettings(Integer tileRows, long maxTileBytes, NpyDType dtype, Backend backend) {
  /** The rows per tile of a prediction whose tile size is unset ({@code --tile auto}). */
  static final int PREDICT_TILE = 256;

  /**
   * The settings of a pipeline's options; a tile size or memory bound out of range is an {@code
   * IllegalArgumentException} naming the Beam flag.
   */
  static TileSettings of(NtkPipelineOptions options) {
    Integer rows = options.getTileRows();
    if (rows != null && rows < 1) {
      throw new IllegalArgumentException("--tileRows must be at least 1, got " + rows);
    }
    if (options.getMaxTileBytes() < 1) {
      throw new IllegalArgumentException("--maxTileBytes must be positive, got " + options.getMaxTileBytes());
    }
    return new TileSettings(rows, options.getMaxTileBytes(), NpyDType.fromName(options.getDtype()),
        Backend.of(options.getBackend()));
  }

  /** Writes these settings into a pipeline's options. */
  void writeTo(NtkPipelineOptions options) {
    options.setTileRows(tileRows);
    options.setMaxTileBytes(maxTileBytes);
    options.setDtype(dtype.typeName());
    options.setBackend(backend.key());
  }

  /**
   * The backend a kernel job's tiles of {@code plan} are sized for: the asked one resolved for the
   * plan ({@link Backend#resolve(dev.ntk.kernels.engine.Schedule)}).
   */
  Backend sizedFor(Plan plan) {
    return backend.resolve(plan.schedule());
  }

  /**
   * The rows per tile of an {@code n1 x n2} kernel job of {@code plan} on {@code sized} ({@link
   * #sizedFor}): {@link #tileRows} made smaller until a tile fits {@link #maxTileBytes}, or unset,
   * as large as that and the model's work per entry allow ({@link Plan#autoTile}) and {@link
   * #spread} over {@code remoteWorkers}.
   *
   * @param selfKernel whether the kernel is of x1 with itself (its tiles on and above the diagonal
   *     alone are computed where {@code plan} is symmetric in its inputs: {@code TilePlan#mirrored})
   */
  int kernelRows(Plan plan, long n1, long n2, boolean selfKernel, Backend sized, int remoteWorkers) {
    return tileRows == null
        ? spread(plan.autoTile(n1, n2, maxTileBytes, dtype.bytes(), sized), n1, n2, selfKernel && plan.symmetric(),
            remoteWorkers)
        : plan.largestTile(tileRows, maxTileBytes, dtype.bytes(), sized);
  }

  /**
   * The rows per tile of a prediction's kernels of {@code plan} on {@code resolved}: {@link
   * #tileRows}, unset {@value #PREDICT_TILE}, made smaller until a tile fits {@link #maxTileBytes}.
   */
  int predictRows(Plan plan, Backend resolved) {
    return plan.largestTile(tileRows == null ? PREDICT_TILE : tileRows, maxTileBytes, dtype.bytes(), resolved);
  }

  /**
   * {@code --tile auto}'s rows, made smaller where the job's workers are other machines until there
   * are at least two tiles per worker: one large tile is fastest in one JVM (it runs on all its
   * cores), but a cluster must have tiles to spread.
   */
  static int spread(int rows, long n1, long n2, boolean mirrored, int workers) {
    int r = rows;
    while (r > 1 && tiles(n1, n2, mirrored, r) < 2L * workers) {
      r = (r + 1) / 2;
    }
    return r;
  }

  /** The tiles of rows {@code r}: on and above the diagonal for a mirrored kernel. */
  private static long tiles(long n1, long n2, boolean mirrored, int r) {
    long b1 = (n1 + r - 1) / r;
    long b2 = (n2 + r - 1) / r;
    return mirrored ? b1 * (b1 + 1) / 2 : b1 * b2;
  }
}
