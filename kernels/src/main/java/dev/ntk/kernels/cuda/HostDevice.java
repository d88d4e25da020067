package dev.ntk.kernels.cuda;

import com.sun.jna.Function;
import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;
import com.sun.jna.Pointer;
import dev.ntk.kernels.engine.Gram;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The generated kernels compiled as C by the host's compiler ({@code gcc}, or {@code $CC}) into a
 * shared library in a temporary directory and called through JNA, one block after another with
 * one thread each; the gram on OpenBLAS, as the {@code cpu} engine computes it. This is how the
 * source is checked on machines without a GPU: the same text NVRTC compiles, the same launches.
 */
public final class HostDevice implements Device {
  private static final String OPTIMIZE = System.getProperty("ntk.cuda.host.optimize", "-O1");
  /**
   * {@code nvcc}, to also compile every source as CUDA C++ to PTX as NVRTC would (the device's
   * language, options and architecture; {@code -Dntk.cuda.host.nvcc=nvcc}), on a machine that has the
   * CUDA compiler but no GPU: a source that only a device compiler refuses fails here too. Unset: gcc
   * alone.
   */
  private static final String NVCC = System.getProperty("ntk.cuda.host.nvcc");
  private static final String NVCC_ARCH = System.getProperty("ntk.cuda.host.nvcc.arch", "compute_90");
  private final String compiler;
  private final List<Path> files = new ArrayList<>();

  /** A host device compiling with {@code $CC}, else {@code gcc}. */
  public HostDevice() {
    String cc = System.getenv("CC");
    this.compiler = cc == null || cc.isBlank() ? "gcc" : cc;
  }

  @Override
  public String name() {
    return "host (" + compiler + ")";
  }

  @Override
  public long allocate(long bytes) {
    long address = Native.malloc(Math.max(1, bytes));
    if (address == 0) {
      throw new OutOfMemoryError("malloc of " + bytes + " bytes");
    }
    return address;
  }

  @Override
  public void free(long address) {
    Native.free(address);
  }

  @Override
  public void upload(Object array, long address) {
    Pointer p = new Pointer(address);
    if (array instanceof double[] a) {
      p.write(0, a, 0, a.length);
    } else if (array instanceof float[] a) {
      p.write(0, a, 0, a.length);
    } else {
      int[] a = (int[]) array;
      p.write(0, a, 0, a.length);
    }
  }

  @Override
  public void download(long address, Object array) {
    Pointer p = new Pointer(address);
    if (array instanceof double[] a) {
      p.read(0, a, 0, a.length);
    } else if (array instanceof float[] a) {
      p.read(0, a, 0, a.length);
    } else {
      int[] a = (int[]) array;
      p.read(0, a, 0, a.length);
    }
  }

  @Override
  public Object load(String source) {
    try {
      Path dir = Files.createTempDirectory("ntk-cuda-host");
      dir.toFile().deleteOnExit();
      Path c = dir.resolve("kernels.c");
      Path so = dir.resolve("libkernels.so");
      Files.writeString(c, source);
      files.addAll(List.of(so, c, dir));
      // A device never closed (CudaEngine.shared's, a JVM's): its files go at exit, before the folder
      // (registered first, deleted last).
      c.toFile().deleteOnExit();
      so.toFile().deleteOnExit();
      // -O1: most of a test's time is the compiler's (the host runs tiny tiles), and -O2 doubles it.
      Process p = new ProcessBuilder(compiler, "-std=gnu11", OPTIMIZE, "-ffp-contract=off", "-fPIC", "-shared",
          "-o", so.toString(), c.toString(), "-lm").redirectErrorStream(true).start();
      String log = new String(p.getInputStream().readAllBytes());
      if (!p.waitFor(300, TimeUnit.SECONDS) || p.exitValue() != 0) {
        throw new IllegalStateException(compiler + " could not compile the generated kernels (" + c + "):\n" + log);
      }
      if (NVCC != null && !NVCC.isBlank()) {
        Path cu = dir.resolve("kernels.cu");
        Path ptx = dir.resolve("kernels.ptx");
        Files.writeString(cu, source);
        files.addAll(0, List.of(cu, ptx));
        cu.toFile().deleteOnExit();
        ptx.toFile().deleteOnExit();
        // CudaDevice's NVRTC options: the same language and no contraction of products into fma.
        Process n = new ProcessBuilder(NVCC, "--ptx", "-arch=" + NVCC_ARCH, "--fmad=false", "-std=c++17", "-o",
            ptx.toString(), cu.toString()).redirectErrorStream(true).start();
        String nlog = new String(n.getInputStream().readAllBytes());
        if (!n.waitFor(300, TimeUnit.SECONDS) || n.exitValue() != 0) {
          throw new IllegalStateException(NVCC + " could not compile the generated kernels (" + cu + "):\n" + nlog);
        }
      }
      return NativeLibrary.getInstance(so.toString());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while compiling the generated kernels", e);
    }
  }

  @Override
  public void launch(Object module, String kernel, long grid, int threads, long... args) {
    Function f = ((NativeLibrary) module).getFunction(kernel.replaceFirst("^ntk_", "ntk_host_"));
    Object[] values = new Object[args.length + 1];
    values[0] = grid;
    for (int k = 0; k < args.length; k++) {
      values[k + 1] = args[k];
    }
    f.invoke(Void.class, values);
  }

  @Override
  public int threads(int wanted) {
    return 1;
  }

  @Override
  public void gram(Object x1, Object x2, int n1, int n2, int d, long out) {
    long bytes = (long) n1 * n2 * (x1 instanceof double[] ? 8 : 4);
    java.nio.ByteBuffer b = new Pointer(out).getByteBuffer(0, bytes).order(ByteOrder.nativeOrder());
    Gram.into(x1, x2, n1, n2, d, x1 instanceof double[] ? b.asDoubleBuffer() : b.asFloatBuffer());
  }

  /** Three, so that the host runs (and tests check) items split over several blocks too. */
  @Override
  public int parallelBlocks() {
    return 3;
  }

  @Override
  public long scratchBudget() {
    return 64L << 20;
  }

  @Override
  public void close() {
    for (Path f : files) {
      try {
        Files.deleteIfExists(f);
      } catch (IOException e) {
        // a library still mapped may not be removable on some systems: left to deleteOnExit
      }
    }
  }
}
