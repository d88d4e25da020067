package dev.ntk.kernels.engine;

import java.util.Locale;

/**
 * Where a plan runs: {@code cpu} (fused vectorised Java loops, OpenBLAS for the GEMM), {@code
 * tensorflow} (TensorFlow ops through DJL) or {@code cuda} (the plan generated as CUDA C, compiled
 * by NVRTC and run through the CUDA driver, the GEMM on cuBLAS: the path for GPU workers). {@code
 * auto} picks {@code cuda} when a CUDA device is visible, else {@code cpu}.
 */
public enum Backend {
  AUTO,
  CPU,
  TENSORFLOW,
  CUDA;

  /** The lower-case name used on the command line. */
  public String key() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** Parses {@code auto}, {@code cpu}, {@code tensorflow} or {@code cuda} (any case). */
  public static Backend of(String name) {
    for (Backend b : values()) {
      if (b.key().equalsIgnoreCase(name.trim())) {
        return b;
      }
    }
    throw new IllegalArgumentException("unknown backend \"" + name + "\": expected auto, cpu, tensorflow or cuda");
  }

  /**
   * This backend, with {@code auto} decided for this machine and for a plan of {@code schedule}:
   * {@code auto} does not pick {@code cuda} for a plan the {@code cuda} engine cannot run (one that
   * takes graph patterns or masks as inputs, or has a user's Java function, {@link
   * dev.ntk.kernels.cuda.CudaSource#runs}), but {@code cpu}; a {@code cuda} asked for by name stays
   * {@code cuda}, which then refuses the plan naming what it lacks.
   */
  public Backend resolve(Schedule schedule) {
    Backend b = resolve();
    return this == AUTO && b == CUDA && !dev.ntk.kernels.cuda.CudaSource.runs(schedule) ? CPU : b;
  }

  /** This backend, with {@code auto} decided for this machine. */
  public Backend resolve() {
    return this != AUTO ? this : dev.ntk.kernels.cuda.CudaDevice.visible() ? CUDA : CPU;
  }

  /**
   * Why this backend, asked for by name, cannot run on this machine ({@code cuda} without a CUDA
   * driver or device: {@link dev.ntk.kernels.cuda.CudaEngine#unavailable}), or null if it can.
   */
  public String unavailable() {
    return this == CUDA ? dev.ntk.kernels.cuda.CudaEngine.unavailable() : null;
  }

  /**
   * Whether this engine writes a plan's kernels into memory its caller owns ({@code
   * dev.ntk.kernels.Plan#runInto}: Java arrays, direct or native buffers, a tile's native memory),
   * as only the {@code cpu} engine does; the others return their kernels as tensors, which the
   * caller copies. {@code auto} answers false: {@link #resolve} it first.
   */
  public boolean runsInto() {
    return this == CPU;
  }

  /**
   * An estimate of the values (entries of any dtype) live while this engine computes one tile of
   * {@code rows x cols} of {@code schedule}, whose input gram has the pixel blocks {@code input}:
   * the tile's outputs (a block per pair where they keep pixels), and on {@code tensorflow} every
   * live value of the tile's blocks at once; on the others ({@code cpu}, and {@code cuda} and
   * {@code auto} estimated as it) the input gram (or the per-input pixel values kept for the tile)
   * and one worker's registers, pixel-pair blocks being computed pair by pair.
   */
  public long tileValues(Schedule schedule, Layout input, int rows, int cols) {
    long pairs = (long) rows * cols;
    long outputs = pairs * schedule.outputs().values().stream().mapToLong(e -> e.layout().size()).sum();
    if (this == TENSORFLOW) {
      long block = Math.max(1, input.size());
      return outputs + pairs * block * (schedule.inputs().size() + Math.max(4, schedule.registerCount()));
    }
    if (schedule.blocks()) {
      return outputs + rows * schedule.exportedEntries(0) + cols * schedule.exportedEntries(1)
          + schedule.blockWorkingSet();
    }
    return outputs + pairs + (long) (rows + cols) * 8 + (long) schedule.registerCount() * 4096;
  }
}
