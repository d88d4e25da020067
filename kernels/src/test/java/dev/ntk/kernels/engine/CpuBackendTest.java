package dev.ntk.kernels.engine;

import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.ModelSpec;
import dev.ntk.kernels.Plan;
import java.util.EnumSet;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The vectorised loops against the scalar fallback, which a JVM without the Vector API runs. */
class CpuBackendTest {
  @Test
  void scalarFallbackGivesTheVectorisedNumbers() {
    assertTrue(CpuBackend.vectorised(), "the tests run with --add-modules jdk.incubator.vector");
    Plan plan = Plan.compile(ModelSpec.parse("""
        {"serial": [{"Dense": {"out_dim": 8, "W_std": 1.4, "b_std": 0.1}}, {"Relu": {}},
          {"Dense": {"out_dim": 8, "b_std": 0.2}}, {"Erf": {"a": 1.2, "b": 0.8, "c": 0.1}},
          {"Dense": {"out_dim": 1}}]}"""), new Shape(9), EnumSet.allOf(Get.class));
    // 1037 columns: two whole chunks and a part, and a tail that is not a whole vector.
    int n1 = 5;
    int n2 = 1037;
    Random r = new Random(3);
    double[] x1 = new double[n1 * 9];
    double[] x2 = new double[n2 * 9];
    for (double[] x : new double[][] {x1, x2}) {
      for (int i = 0; i < x.length; i++) {
        x[i] = r.nextGaussian();
      }
    }
    Map<String, double[]> vector = plan.run(CpuBackend.float64(), x1, x2, n1, n2, 2);
    // Rows shorter than a chunk are computed several rows per chunk: 37 columns of 5 rows give
    // chunks of 13 rows, per-row values spread over the chunk, per-column values repeated.
    int few = 37;
    Map<String, double[]> band = plan.run(CpuBackend.float64(), x1, java.util.Arrays.copyOf(x2, few * 9),
        n1, few, 1);
    for (String k : new String[] {Plan.NNGP, Plan.NTK}) {
      for (int i = 0; i < n1; i++) {
        for (int j = 0; j < few; j++) {
          double want = vector.get(k)[i * n2 + j];
          double got = band.get(k)[i * few + j];
          assertTrue(Math.abs(got - want) <= 1e-13 * Math.abs(want), k + "(" + i + ", " + j + ")");
        }
      }
    }
    Map<String, double[]> scalar = plan.run(CpuBackend.scalarFloat64(), x1, x2, n1, n2, 1);
    for (String k : new String[] {Plan.NNGP, Plan.NTK}) {
      double[] a = vector.get(k);
      double[] b = scalar.get(k);
      for (int i = 0; i < a.length; i++) {
        assertTrue(Math.abs(a[i] - b[i]) <= 1e-14 * Math.abs(b[i]) + 1e-16,
            k + "[" + i + "]: " + a[i] + " vs " + b[i]);
      }
    }
  }

  /**
   * A convolutional plan (per-pixel and pixel-pair blocks, shifted and general pixel maps, a
   * pooling window, both readouts) on the scalar fallback and the vectorised loops, with a grid
   * whose rows are not whole vectors.
   */
  @Test
  void scalarFallbackGivesTheVectorisedNumbersOnPixelBlocks() {
    for (String readout : new String[] {"{\"Flatten\": {}}", "{\"GlobalAvgPool\": {}}"}) {
      Plan plan = Plan.compile(ModelSpec.parse("""
          {"serial": [{"Conv": {"out_chan": 4, "filter_shape": [3, 3], "padding": "SAME", "b_std": 0.1}},
            {"Relu": {}}, {"Conv": {"out_chan": 4, "filter_shape": [2, 3], "strides": [2, 1], "padding": "VALID"}},
            {"Erf": {}}, {"AvgPool": {"window_shape": [2, 2], "padding": "SAME"}},
            {"Conv": {"out_chan": 4, "filter_shape": [3, 3], "padding": "CIRCULAR"}}, {"Relu": {}},
            %s, {"Dense": {"out_dim": 1}}]}""".formatted(readout)), new Shape(9, 19, 2), EnumSet.allOf(Get.class));
      int n1 = 3;
      int n2 = 2;
      Random r = new Random(5);
      double[] x1 = new double[n1 * 9 * 19 * 2];
      double[] x2 = new double[n2 * 9 * 19 * 2];
      for (double[] x : new double[][] {x1, x2}) {
        for (int i = 0; i < x.length; i++) {
          x[i] = r.nextGaussian();
        }
      }
      Map<String, double[]> vector = plan.run(CpuBackend.float64(), x1, x2, n1, n2, 2);
      Map<String, double[]> scalar = plan.run(CpuBackend.scalarFloat64(), x1, x2, n1, n2, 1);
      for (String k : new String[] {Plan.NNGP, Plan.NTK}) {
        double[] a = vector.get(k);
        double[] b = scalar.get(k);
        for (int i = 0; i < a.length; i++) {
          assertTrue(Math.abs(a[i] - b[i]) <= 1e-13 * Math.abs(b[i]) + 1e-16,
              readout + " " + k + "[" + i + "]: " + a[i] + " vs " + b[i]);
        }
      }
    }
  }
}
