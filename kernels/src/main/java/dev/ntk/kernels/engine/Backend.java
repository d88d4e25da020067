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
   * {@code auto} does not pick {@code cuda} for a plan the {@code cuda} engine cannot run (attention,
   * {@link dev.ntk.kernels.cuda.CudaSource#runs}), but {@code cpu}; a {@code cuda} asked for by name
   * stays {@code cuda}, which then refuses the plan naming what it lacks.
   */
  public Backend resolve(Schedule schedule) {
    Backend b = resolve();
    return this == AUTO && b == CUDA && !dev.ntk.kernels.cuda.CudaSource.runs(schedule) ? CPU : b;
  }

  /** This backend, with {@code auto} decided for this machine. */
  public Backend resolve() {
    return this != AUTO ? this : dev.ntk.kernels.cuda.CudaDevice.visible() ? CUDA : CPU;
  }
}
