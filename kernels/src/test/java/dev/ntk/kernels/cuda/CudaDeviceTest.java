package dev.ntk.kernels.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Plan;
import dev.ntk.kernels.Stax;
import dev.ntk.kernels.engine.Backend;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The device runtime where it can be checked on any machine: how CUDA's libraries are found, and
 * what a machine without a driver says (CI's case); on a machine with a GPU, the device against the
 * host-compiled source.
 */
class CudaDeviceTest {
  @Test
  void theNewestLibraryOfTheFirstFolderThatHasOneIsFound(@TempDir Path dir) throws Exception {
    Path empty = Files.createDirectory(dir.resolve("empty"));
    Path cuda = Files.createDirectory(dir.resolve("cuda"));
    for (String f : List.of("libnvrtc.so", "libnvrtc.so.12", "libnvrtc.so.13.0.48", "libnvrtc.so.13",
        "libnvrtc-builtins.so.13.9", "libcublasLt.so.13", "libcublas.so.13.1.0.3")) {
      Files.createFile(cuda.resolve(f));
    }
    assertEquals(cuda.resolve("libnvrtc.so.13.0.48"), CudaLibraries.find("nvrtc", List.of(empty, cuda)));
    assertEquals(cuda.resolve("libcublas.so.13.1.0.3"), CudaLibraries.find("cublas", List.of(empty, cuda)));
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> CudaLibraries.find("cufft", List.of(empty, cuda)));
    assertTrue(e.getMessage().contains("libcufft.so not found") && e.getMessage().contains("NTK_CUDA_LIBS"),
        e.getMessage());
  }

  @Test
  void withoutADeviceCudaIsRefusedAndAutoMeansCpu() {
    if (!CudaDevice.visible()) {
      IllegalStateException e = assertThrows(IllegalStateException.class, () -> CudaDevice.open(0));
      assertEquals(CudaDevice.unavailable(), e.getMessage());
      assertTrue(e.getMessage().contains("CUDA"), e.getMessage());
      assertEquals(Backend.CPU, Backend.AUTO.resolve());
      return;
    }
    assertEquals(Backend.CUDA, Backend.AUTO.resolve());
    Plan plan = Plan.compile(Stax.serial(Stax.dense(16), Stax.relu(), Stax.dense(16), Stax.erf(), Stax.dense(1)),
        new Shape(6), EnumSet.of(Get.NNGP, Get.NTK));
    double[] x = new java.util.Random(3).doubles(5 * 6).toArray();
    try (CudaDevice gpu = CudaDevice.open(0); HostDevice host = new HostDevice()) {
      Map<String, Object> a = new CudaEngine(gpu).run(plan, x, null, 5, 5);
      Map<String, Object> b = new CudaEngine(host).run(plan, x, null, 5, 5);
      for (String k : b.keySet()) {
        double[] u = (double[]) a.get(k);
        double[] v = (double[]) b.get(k);
        for (int i = 0; i < v.length; i++) {
          assertEquals(v[i], u[i], 1e-12 * Math.abs(v[i]), k + "[" + i + "]");
        }
      }
    }
  }
}
