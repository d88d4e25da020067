package dev.ntk.kernels.engine;

import java.util.Locale;

/**
 * Where a plan runs: {@code cpu} (fused vectorised Java loops, OpenBLAS for the GEMM) or {@code
 * tensorflow} (TensorFlow ops through DJL, the path for GPU workers). {@code auto} picks {@code
 * tensorflow} when a GPU is visible, else {@code cpu}.
 */
public enum Backend {
  AUTO,
  CPU,
  TENSORFLOW;

  /** The lower-case name used on the command line. */
  public String key() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** Parses {@code auto}, {@code cpu} or {@code tensorflow} (any case). */
  public static Backend of(String name) {
    for (Backend b : values()) {
      if (b.key().equalsIgnoreCase(name.trim())) {
        return b;
      }
    }
    throw new IllegalArgumentException("unknown backend \"" + name + "\": expected auto, cpu or tensorflow");
  }

  /** This backend, with {@code auto} decided for this machine. */
  public Backend resolve() {
    return this != AUTO ? this : GpuProbe.VISIBLE ? TENSORFLOW : CPU;
  }

  private static final class GpuProbe {
    static final boolean VISIBLE = gpuVisible();

    private static boolean gpuVisible() {
      if (!dev.ntk.kernels.TensorFlowNative.gpuDriverPresent()) {
        return false; // DJL's probe would only fail, with a warning where a CUDA toolkit is installed
      }
      try {
        return ai.djl.util.cuda.CudaUtils.getGpuCount() > 0;
      } catch (RuntimeException | LinkageError e) {
        return false; // no CUDA runtime: no GPU
      }
    }
  }
}
