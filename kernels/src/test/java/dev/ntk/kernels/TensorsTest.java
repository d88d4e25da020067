package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import java.nio.file.Files;
import org.junit.jupiter.api.Test;

class TensorsTest {
  @Test
  void nativeLibraryLoadsOfflineAndComputes() {
    try (NDManager m = Tensors.newManager()) {
      NDArray x = Tensors.fromRows(m, new double[][] {{1, 2}, {3, 4}}, DataType.FLOAT64);
      NDArray y = x.matMul(x.transpose()).mul(0.5);
      assertArrayEquals(new double[] {2.5, 5.5, 5.5, 12.5}, Tensors.toDoubles(y), 0);
      NDArray f = Tensors.fromRows(m, new double[][] {{1, 2}}, DataType.FLOAT32);
      assertEquals(DataType.FLOAT32, f.mul(0.5).getDataType());
      assertArrayEquals(new double[] {0.5, 1.0}, Tensors.toDoubles(f.mul(0.5)), 0);
      assertEquals(Math.atan2(2, 1), Tensors.toDoubles(x.get("0, 1:").atan2(x.get("0, :1")))[0], 1e-15);
    }
    assertEquals(true, Files.exists(TensorFlowNative.ensureConfigured().resolve("libtensorflow_cc.so.2")));
  }

  @Test
  void scalarOpsKeepTheDtypeAndFreeTheirScalar() {
    try (NDManager m = Tensors.newManager()) {
      for (DataType dtype : new DataType[] {DataType.FLOAT32, DataType.FLOAT64}) {
        NDArray x = Tensors.fromRows(m, new double[][] {{-2, 0.5}, {3, -0.25}}, dtype);
        int before = m.getManagedArrays().size();
        NDArray y = Tensors.mul(x, 0.1);
        NDArray z = Tensors.add(x, -1.5);
        NDArray w = Tensors.max(x, 0.0);
        assertEquals(before + 3, m.getManagedArrays().size(), "scalars must be freed, " + dtype);
        for (NDArray r : new NDArray[] {y, z, w}) {
          assertEquals(dtype, r.getDataType());
        }
        boolean single = dtype == DataType.FLOAT32;
        assertArrayEquals(new double[] {-2 * 0.1, 0.5 * 0.1, 3 * 0.1, -0.25 * 0.1},
            Tensors.toDoubles(y), single ? 1e-7 : 1e-17);
        assertArrayEquals(new double[] {-3.5, -1.0, 1.5, -1.75}, Tensors.toDoubles(z), single ? 1e-7 : 0);
        assertArrayEquals(new double[] {0, 0.5, 3, 0}, Tensors.toDoubles(w), 0);
      }
    }
  }

  /**
   * A library user's JVM on a machine without an NVIDIA driver (no logging configured, no
   * TF_CPP_MIN_LOG_LEVEL) hears nothing of the GPU probes of DJL and TensorFlow, and auto picks cpu.
   */
  @Test
  void noGpuProbeWarningsWithoutADriver() throws Exception {
    if (TensorFlowNative.gpuDriverPresent()) {
      assertEquals(true, TensorFlowNative.gpuDriverPresent()); // a GPU machine: its probes may speak
      return;
    }
    String javaBin = java.nio.file.Path.of(System.getProperty("java.home"), "bin", "java").toString();
    ProcessBuilder b = new ProcessBuilder(javaBin, "-cp", System.getProperty("java.class.path"),
        FirstUse.class.getName()).redirectErrorStream(true);
    b.environment().remove("TF_CPP_MIN_LOG_LEVEL");
    Process p = b.start();
    String out = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
    assertEquals(0, p.waitFor(), out);
    assertEquals("cpu 3.0", out.strip(), "the first use printed more than its result");
  }

  /** A first use of the library: the backend, then one TensorFlow op. */
  static final class FirstUse {
    public static void main(String[] args) {
      String backend = dev.ntk.kernels.engine.Backend.AUTO.resolve().key();
      try (NDManager m = Tensors.newManager()) {
        System.out.println(backend + " " + m.create(new double[] {1, 2}).sum().getDouble());
      }
    }
  }
}
