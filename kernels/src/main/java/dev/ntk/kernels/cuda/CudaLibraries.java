package dev.ntk.kernels.cuda;

import com.sun.jna.Library;
import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;
import com.sun.jna.Pointer;
import com.sun.jna.ptr.IntByReference;
import com.sun.jna.ptr.LongByReference;
import com.sun.jna.ptr.PointerByReference;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The CUDA libraries, found on the machine and bound through JNA: the driver ({@code
 * libcuda.so.1}, installed with the GPU's driver), NVRTC and cuBLAS (those of whatever CUDA
 * version is installed: {@code lib<name>.so*} with the highest version, searched in {@code
 * $NTK_CUDA_LIBS}, {@code $LD_LIBRARY_PATH}, {@code $CUDA_HOME}, {@code /usr/local/cuda*} and the
 * system's library folders). Only the calls the {@code cuda} engine makes are declared.
 */
final class CudaLibraries {
  private CudaLibraries() {}

  /** The driver API (every call returns a {@code CUresult}, 0 for success). */
  interface Driver extends Library {
    int cuInit(int flags);

    int cuDeviceGetCount(IntByReference count);

    int cuDeviceGet(IntByReference device, int ordinal);

    int cuDeviceGetName(byte[] name, int length, int device);

    int cuDeviceGetAttribute(IntByReference value, int attribute, int device);

    int cuDeviceTotalMem_v2(LongByReference bytes, int device);

    int cuDevicePrimaryCtxRetain(PointerByReference context, int device);

    int cuDevicePrimaryCtxRelease_v2(int device);

    int cuCtxSetCurrent(Pointer context);

    int cuCtxSynchronize();

    int cuModuleLoadData(PointerByReference module, Pointer image);

    int cuModuleGetFunction(PointerByReference function, Pointer module, String name);

    int cuModuleUnload(Pointer module);

    int cuLaunchKernel(Pointer function, int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ,
        int sharedBytes, Pointer stream, Pointer parameters, Pointer extra);

    int cuMemAlloc_v2(LongByReference address, long bytes);

    int cuMemFree_v2(long address);

    int cuMemcpyHtoD_v2(long destination, Pointer source, long bytes);

    int cuMemcpyDtoH_v2(Pointer destination, long source, long bytes);

    int cuGetErrorName(int error, PointerByReference name);
  }

  /** NVRTC, the run-time compiler of CUDA C++ to PTX. */
  interface Nvrtc extends Library {
    int nvrtcCreateProgram(PointerByReference program, String source, String name, int headers, Pointer sources,
        Pointer names);

    int nvrtcCompileProgram(Pointer program, int count, String[] options);

    int nvrtcGetPTXSize(Pointer program, LongByReference size);

    int nvrtcGetPTX(Pointer program, byte[] ptx);

    int nvrtcGetProgramLogSize(Pointer program, LongByReference size);

    int nvrtcGetProgramLog(Pointer program, byte[] log);

    int nvrtcDestroyProgram(PointerByReference program);

    String nvrtcGetErrorString(int result);
  }

  /** cuBLAS (v2 API): the GEMM of the input gram. Device pointers are passed as {@code long}s. */
  interface Cublas extends Library {
    int CUBLAS_OP_N = 0;
    int CUBLAS_OP_T = 1;

    int cublasCreate_v2(PointerByReference handle);

    int cublasDestroy_v2(Pointer handle);

    int cublasDgemm_v2(Pointer handle, int transa, int transb, int m, int n, int k, double[] alpha, long a, int lda,
        long b, int ldb, double[] beta, long c, int ldc);

    int cublasSgemm_v2(Pointer handle, int transa, int transb, int m, int n, int k, float[] alpha, long a, int lda,
        long b, int ldb, float[] beta, long c, int ldc);
  }

  /** The driver, or an exception saying why it cannot be loaded. */
  static Driver driver() {
    return Native.load("libcuda.so.1", Driver.class);
  }

  static Nvrtc nvrtc() {
    return Native.load(find("nvrtc").toString(), Nvrtc.class);
  }

  static Cublas cublas() {
    Path cublas = find("cublas");
    // cuBLAS needs cuBLASLt of the same release, which its folder holds: loaded first, by path, so
    // that the dynamic loader finds it by name whatever the library path says.
    Path lt = cublas.resolveSibling(cublas.getFileName().toString().replace("libcublas", "libcublasLt"));
    if (Files.exists(lt)) {
      NativeLibrary.getInstance(lt.toString());
    }
    return Native.load(cublas.toString(), Cublas.class);
  }

  /** The folders searched for CUDA's libraries, in order. */
  static List<Path> folders() {
    Set<Path> dirs = new LinkedHashSet<>();
    for (String variable : List.of("NTK_CUDA_LIBS", "LD_LIBRARY_PATH")) {
      for (String d : System.getenv().getOrDefault(variable, "").split(":")) {
        if (!d.isBlank()) {
          dirs.add(Path.of(d));
        }
      }
    }
    for (String variable : List.of("CUDA_HOME", "CUDA_PATH")) {
      String home = System.getenv(variable);
      if (home != null && !home.isBlank()) {
        dirs.add(Path.of(home, "lib64"));
        dirs.add(Path.of(home, "lib"));
      }
    }
    List<Path> cudas = new ArrayList<>();
    try (DirectoryStream<Path> s = Files.newDirectoryStream(Path.of("/usr/local"), "cuda*")) {
      s.forEach(cudas::add);
    } catch (IOException | RuntimeException e) {
      // no /usr/local/cuda*: nothing to add
    }
    cudas.sort(Comparator.comparing(Path::toString).reversed());
    for (Path c : cudas) {
      dirs.add(c.resolve("lib64"));
      dirs.add(c.resolve("lib"));
      dirs.add(c.resolve("targets/x86_64-linux/lib"));
    }
    dirs.add(Path.of("/usr/lib/x86_64-linux-gnu"));
    dirs.add(Path.of("/usr/lib64"));
    return new ArrayList<>(dirs);
  }

  /**
   * The file {@code lib<name>.so*} of the highest version in the first folder that has one.
   *
   * @throws IllegalStateException naming the folders searched
   */
  static Path find(String name) {
    return find(name, folders());
  }

  /** As {@link #find(String)}, in {@code folders}. */
  static Path find(String name, List<Path> folders) {
    Pattern file = Pattern.compile("lib" + Pattern.quote(name) + "\\.so((\\.\\d+)*)");
    for (Path dir : folders) {
      if (!Files.isDirectory(dir)) {
        continue;
      }
      List<Path> found = new ArrayList<>();
      try (DirectoryStream<Path> s = Files.newDirectoryStream(dir)) {
        for (Path p : s) {
          if (file.matcher(p.getFileName().toString()).matches()) {
            found.add(p);
          }
        }
      } catch (IOException e) {
        continue;
      }
      if (!found.isEmpty()) {
        found.sort(Comparator.comparing(CudaLibraries::version));
        return found.get(found.size() - 1);
      }
    }
    throw new IllegalStateException("lib" + name + ".so not found in " + folders
        + " (set NTK_CUDA_LIBS to the folder that holds it)");
  }

  /** The version of {@code libx.so.13.0.1} as a sortable key (a missing part counts as -1). */
  private static String version(Path p) {
    Matcher m = Pattern.compile("\\.so((\\.\\d+)*)$").matcher(p.getFileName().toString());
    StringBuilder key = new StringBuilder();
    if (m.find()) {
      for (String part : m.group(1).split("\\.")) {
        if (!part.isEmpty()) {
          key.append(String.format("%08d", Integer.parseInt(part)));
        }
      }
    }
    return key.toString();
  }
}
