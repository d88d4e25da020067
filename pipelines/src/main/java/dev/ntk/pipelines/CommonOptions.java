package dev.ntk.pipelines;

import dev.ntk.kernels.engine.Backend;
import dev.ntk.runners.Runners;
import dev.ntk.transforms.NtkPipelineOptions;
import org.apache.beam.sdk.options.PipelineOptions;
import picocli.CommandLine.Option;

/** Options every command that computes kernels takes. */
final class CommonOptions extends JobOptions {
  @Option(names = "--backend", paramLabel = "BACKEND", defaultValue = "auto",
      description = "Where kernels are computed: auto (default: cuda when a CUDA device is visible, "
          + "else cpu), cpu (vectorised Java loops), tensorflow (TensorFlow ops) or cuda (kernels generated "
          + "as CUDA C for the GPU).")
  Backend backend;

  @Option(names = "--tile", paramLabel = "ROWS|auto",
      description = "Rows of x1 and x2 per tile; any value works with any N. kernel: auto (default), "
          + "tiles as large as --max-tile-bytes and the model's work per entry allow; predict: "
          + DEFAULT_TILE + " (default; auto means " + DEFAULT_TILE + ").")
  String tileOption;

  static final int DEFAULT_TILE = TileSettings.PREDICT_TILE;

  @Option(names = "--max-tile-bytes", paramLabel = "BYTES", defaultValue = "1073741824",
      description = "Memory one tile may take while it is computed (default 1 GiB, 1073741824); "
          + "--tile is reduced until a tile fits. Without a runner, a kernel job whose kernels each fit "
          + "one such tile runs in-process (predict: see --max-memory).")
  long maxTileBytes;

  /** Whether the tile size is {@code auto} (given, or not given). */
  boolean autoTile() {
    return tileOption == null || tileOption.trim().equalsIgnoreCase("auto");
  }

  /** The rows per tile: {@code --tile N}, or {@value #DEFAULT_TILE} for {@code auto}. */
  int tile() {
    if (autoTile()) {
      return DEFAULT_TILE;
    }
    try {
      return Integer.parseInt(tileOption.trim());
    } catch (NumberFormatException e) {
      throw new UsageException("--tile must be a number of rows or auto, got " + tileOption);
    }
  }

  /**
   * The tile settings of these flags: {@code --tile} ({@code auto}: unset), {@code --max-tile-bytes},
   * {@code --dtype} and {@code --backend}, without building pipeline options (the in-process path
   * reads them too).
   */
  TileSettings tileSettings() {
    return new TileSettings(autoTile() ? null : tile(), maxTileBytes, dtype, backend);
  }

  /** {@inheritDoc} With the {@link #tileSettings} as {@link NtkPipelineOptions}. */
  @Override
  PipelineOptions pipelineOptions() {
    PipelineOptions options = super.pipelineOptions();
    tileSettings().writeTo(options.as(NtkPipelineOptions.class));
    return options;
  }

  /**
   * {@inheritDoc} On the DirectRunner, 1: a tile is computed on every core ({@code
   * TileComputer.threads}), so side-by-side bundles add nothing, and Beam's DirectRunner
   * re-submits its monitor without pause whenever fewer bundles than its threads are running,
   * which takes a core from a tile computed alone (at 4096 x 4096, one tile, {@code --parallelism
   * 2}: 39% of the process's CPU samples in {@code WatermarkManager.extractFiredTimers}; with 1,
   * none: the monitor waits behind the running bundle).
   */
  @Override
  int defaultParallelism() {
    return runner == null || runner == Runners.Kind.DIRECT ? 1 : super.defaultParallelism();
  }

  /**
   * Whether no runner, parallelism, Beam option or tile size (other than {@code auto}) was
   * named: then a job whose kernels fit one tile runs in-process.
   */
  boolean pipelineUnasked() {
    return runnerUnasked() && autoTile();
  }

  @Override
  void check() {
    if (tile() < 1) {
      throw new UsageException("--tile must be at least 1, got " + tile());
    }
    if (maxTileBytes < 1) {
      throw new UsageException("--max-tile-bytes must be positive, got " + maxTileBytes);
    }
    if (backend.unavailable() != null) {
      throw new UsageException("--backend " + backend.key() + ": " + backend.unavailable());
    }
    super.check();
  }
}
