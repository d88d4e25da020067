package dev.ntk.kernels.cuda;

import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import com.sun.jna.ptr.IntByReference;
import com.sun.jna.ptr.LongByReference;
import com.sun.jna.ptr.PointerByReference;
import java.nio.charset.StandardCharsets;

/**
 * A CUDA GPU through the driver API: the generated source compiled by NVRTC to PTX for the
 * device's compute capability (with {@code --fmad=false}: a product and a sum stay two roundings,
 * as on the {@code cpu} engine, and only the plan's own {@code fma}s fuse), loaded with {@code
 * cuModuleLoadData}, launched with {@code cuLaunchKernel}; the gram by cuBLAS. It uses the
 * device's primary context, made current on whichever thread calls.
 *
 * <pre>{@code
 * try (CudaDevice gpu = CudaDevice.open(0)) {
 *   Map<String, Object> k = new CudaEngine(gpu).run(plan, x1, null, n, n);
 * }
 * }</pre>
 */
public final class CudaDevice implements Device {
  /** Why no device can be opened here, or null where one can (decided once per JVM). */
  private static final class Probe {
    static final String UNAVAILABLE = probe();

    private static String probe() {
      CudaLibraries.Driver driver;
      try {
        driver = CudaLibraries.driver();
      } catch (UnsatisfiedLinkError | RuntimeException e) {
        return "no CUDA driver on this machine (libcuda.so.1 could not be loaded)";
      }
      int status = driver.cuInit(0);
      if (status != 0) {
        return "the CUDA driver found no usable device (cuInit returned " + status + ")";
      }
      IntByReference count = new IntByReference();
      if (driver.cuDeviceGetCount(count) != 0 || count.getValue() == 0) {
        return "the CUDA driver sees no device";
      }
      return null;
    }
  }

  private final CudaLibraries.Driver driver;
  private final CudaLibraries.Nvrtc nvrtc;
  private final CudaLibraries.Cublas cublas;
  private final int ordinal;
  private final Pointer context;
  private final Pointer blas;
  private final String name;
  private final String architecture;
  private final long memory;
  private final int multiprocessors;
  private final java.util.Map<String, Pointer> functions = new java.util.concurrent.ConcurrentHashMap<>();

  private CudaDevice(int ordinal) {
    this.driver = CudaLibraries.driver();
    check(driver.cuInit(0), "cuInit");
    IntByReference device = new IntByReference();
    check(driver.cuDeviceGet(device, ordinal), "cuDeviceGet");
    this.ordinal = device.getValue();
    byte[] text = new byte[256];
    check(driver.cuDeviceGetName(text, text.length, this.ordinal), "cuDeviceGetName");
    this.name = Native.toString(text, StandardCharsets.UTF_8.name());
    IntByReference major = new IntByReference();
    IntByReference minor = new IntByReference();
    check(driver.cuDeviceGetAttribute(major, 75, this.ordinal), "cuDeviceGetAttribute (major)");
    check(driver.cuDeviceGetAttribute(minor, 76, this.ordinal), "cuDeviceGetAttribute (minor)");
    this.architecture = "compute_" + major.getValue() + minor.getValue();
    IntByReference sms = new IntByReference();
    check(driver.cuDeviceGetAttribute(sms, 16, this.ordinal), "cuDeviceGetAttribute (multiprocessors)");
    this.multiprocessors = sms.getValue();
    LongByReference total = new LongByReference();
    check(driver.cuDeviceTotalMem_v2(total, this.ordinal), "cuDeviceTotalMem");
    this.memory = total.getValue();
    PointerByReference ctx = new PointerByReference();
    check(driver.cuDevicePrimaryCtxRetain(ctx, this.ordinal), "cuDevicePrimaryCtxRetain");
    this.context = ctx.getValue();
    current();
    this.nvrtc = CudaLibraries.nvrtc();
    this.cublas = CudaLibraries.cublas();
    PointerByReference handle = new PointerByReference();
    int status = cublas.cublasCreate_v2(handle);
    if (status != 0) {
      throw new IllegalStateException("cublasCreate failed with status " + status);
    }
    this.blas = handle.getValue();
  }

  /**
   * Whether a CUDA device is visible here: a driver that initialises and counts at least one device
   * (what {@code --backend auto} asks).
   */
  public static boolean visible() {
    return Probe.UNAVAILABLE == null;
  }

  /** Why no CUDA device can be used here, or null if one can. */
  public static String unavailable() {
    return Probe.UNAVAILABLE;
  }

  /**
   * Device {@code ordinal}.
   *
   * @throws IllegalStateException if there is no driver or device, or a CUDA library is missing
   */
  public static CudaDevice open(int ordinal) {
    if (Probe.UNAVAILABLE != null) {
      throw new IllegalStateException(Probe.UNAVAILABLE);
    }
    return new CudaDevice(ordinal);
  }

  private void current() {
    check(driver.cuCtxSetCurrent(context), "cuCtxSetCurrent");
  }

  private void check(int status, String call) {
    if (status != 0) {
      PointerByReference text = new PointerByReference();
      String what = driver != null && driver.cuGetErrorName(status, text) == 0 && text.getValue() != null
          ? text.getValue().getString(0) : "error " + status;
      throw new IllegalStateException(call + " failed: " + what);
    }
  }

  @Override
  public String name() {
    return name + " (" + architecture + ", " + multiprocessors + " multiprocessors, " + (memory >> 20) + " MiB)";
  }

  @Override
  public long allocate(long bytes) {
    current();
    LongByReference address = new LongByReference();
    check(driver.cuMemAlloc_v2(address, Math.max(1, bytes)), "cuMemAlloc of " + bytes + " bytes");
    return address.getValue();
  }

  /** {@code -Dntk.cuda.sync=true}: wait for every kernel (an error then names its kernel). */
  private static final boolean SYNCHRONOUS = Boolean.getBoolean("ntk.cuda.sync");

  @Override
  public void free(long address) {
    current();
    check(driver.cuCtxSynchronize(), "kernels before cuMemFree");
    check(driver.cuMemFree_v2(address), "cuMemFree");
  }

  private static long bytes(Object array) {
    return array instanceof double[] a ? 8L * a.length : array instanceof float[] a ? 4L * a.length
        : 4L * ((int[]) array).length;
  }

  @Override
  public void upload(Object array, long address) {
    long n = bytes(array);
    if (n == 0) {
      return;
    }
    current();
    Memory staging = new Memory(n);
    if (array instanceof double[] a) {
      staging.write(0, a, 0, a.length);
    } else if (array instanceof float[] a) {
      staging.write(0, a, 0, a.length);
    } else {
      int[] a = (int[]) array;
      staging.write(0, a, 0, a.length);
    }
    check(driver.cuMemcpyHtoD_v2(address, staging, n), "cuMemcpyHtoD");
    staging.close();
  }

  @Override
  public void download(long address, Object array) {
    long n = bytes(array);
    if (n == 0) {
      return;
    }
    current();
    Memory staging = new Memory(n);
    check(driver.cuMemcpyDtoH_v2(staging, address, n), "cuMemcpyDtoH");
    if (array instanceof double[] a) {
      staging.read(0, a, 0, a.length);
    } else if (array instanceof float[] a) {
      staging.read(0, a, 0, a.length);
    } else {
      int[] a = (int[]) array;
      staging.read(0, a, 0, a.length);
    }
    staging.close();
  }

  @Override
  public Object load(String source) {
    current();
    PointerByReference program = new PointerByReference();
    int status = nvrtc.nvrtcCreateProgram(program, source, "ntk_kernels.cu", 0, null, null);
    if (status != 0) {
      throw new IllegalStateException("nvrtcCreateProgram failed: " + nvrtc.nvrtcGetErrorString(status));
    }
    try {
      String[] options = {"--gpu-architecture=" + architecture, "--fmad=false", "--std=c++17"};
      status = nvrtc.nvrtcCompileProgram(program.getValue(), options.length, options);
      if (status != 0) {
        LongByReference size = new LongByReference();
        nvrtc.nvrtcGetProgramLogSize(program.getValue(), size);
        byte[] log = new byte[(int) Math.max(1, size.getValue())];
        nvrtc.nvrtcGetProgramLog(program.getValue(), log);
        throw new IllegalStateException("NVRTC could not compile the generated kernels ("
            + nvrtc.nvrtcGetErrorString(status) + "):\n" + Native.toString(log));
      }
      LongByReference size = new LongByReference();
      nvrtc.nvrtcGetPTXSize(program.getValue(), size);
      byte[] ptx = new byte[(int) size.getValue()];
      nvrtc.nvrtcGetPTX(program.getValue(), ptx);
      Memory image = new Memory(ptx.length + 1L);
      image.write(0, ptx, 0, ptx.length);
      image.setByte(ptx.length, (byte) 0);
      PointerByReference module = new PointerByReference();
      check(driver.cuModuleLoadData(module, image), "cuModuleLoadData");
      return module.getValue();
    } finally {
      nvrtc.nvrtcDestroyProgram(program);
    }
  }

  @Override
  public void launch(Object module, String kernel, long grid, int threads, long... args) {
    if (grid <= 0) {
      return;
    }
    if (grid > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("a grid of " + grid + " blocks");
    }
    current();
    Pointer f = functions.computeIfAbsent(Pointer.nativeValue((Pointer) module) + ":" + kernel, key -> {
      PointerByReference function = new PointerByReference();
      check(driver.cuModuleGetFunction(function, (Pointer) module, kernel), "cuModuleGetFunction " + kernel);
      return function.getValue();
    });
    Memory values = new Memory(8L * Math.max(1, args.length));
    Memory pointers = new Memory(8L * Math.max(1, args.length));
    for (int k = 0; k < args.length; k++) {
      values.setLong(8L * k, args[k]);
      pointers.setPointer(8L * k, values.share(8L * k));
    }
    // Launches queue in order on the default stream; errors surface at the next synchronising call.
    check(driver.cuLaunchKernel(f, (int) grid, 1, 1, threads, 1, 1, 0, null, pointers, null),
        "cuLaunchKernel " + kernel);
    if (SYNCHRONOUS) {
      check(driver.cuCtxSynchronize(), "kernel " + kernel);
    }
  }

  @Override
  public int threads(int wanted) {
    return wanted;
  }

  @Override
  public void gram(Object x1, Object x2, int n1, int n2, int d, long out) {
    boolean f64 = x1 instanceof double[];
    int bytes = f64 ? 8 : 4;
    long a = allocate((long) n1 * d * bytes);
    long b = x2 == x1 ? a : allocate((long) n2 * d * bytes);
    try {
      upload(x1, a);
      if (b != a) {
        upload(x2, b);
      }
      current();
      // Row-major G = x1 x2^T / d is column-major G^T = x2 x1^T: x2 (as d x n2) transposed, times x1.
      int status = f64
          ? cublas.cublasDgemm_v2(blas, CudaLibraries.Cublas.CUBLAS_OP_T, CudaLibraries.Cublas.CUBLAS_OP_N, n2, n1, d,
              new double[] {1.0 / d}, b, d, a, d, new double[] {0.0}, out, n2)
          : cublas.cublasSgemm_v2(blas, CudaLibraries.Cublas.CUBLAS_OP_T, CudaLibraries.Cublas.CUBLAS_OP_N, n2, n1, d,
              new float[] {1.0f / d}, b, d, a, d, new float[] {0.0f}, out, n2);
      if (status != 0) {
        throw new IllegalStateException("cuBLAS gemm failed with status " + status);
      }
      check(driver.cuCtxSynchronize(), "cuBLAS gemm");
    } finally {
      free(a);
      if (b != a) {
        free(b);
      }
    }
  }

  @Override
  public int parallelBlocks() {
    return 8 * multiprocessors;
  }

  @Override
  public long scratchBudget() {
    return Math.max(64L << 20, Long.getLong("ntk.cuda.scratch", memory / 4));
  }

  @Override
  public void close() {
    current();
    cublas.cublasDestroy_v2(blas);
    driver.cuDevicePrimaryCtxRelease_v2(ordinal);
  }
}
