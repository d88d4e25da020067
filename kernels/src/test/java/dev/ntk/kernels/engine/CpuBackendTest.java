package dev.ntk.kernels.engine;

import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.ModelSpec;
import dev.ntk.kernels.Plan;
import java.nio.Buffer;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
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
   * {@link Plan#runInto} with direct buffers, where the gram is written into one of the outputs
   * and each chunk overwrites its gram entries: the same kernels as new arrays, for x1 with itself
   * (upper triangle, then the mirror) and against x2, with long rows and with several rows per
   * chunk, for each kernel alone and both, in float64 and float32.
   */
  @Test
  void kernelsWrittenOverTheGramEqualTheArrays() {
    Random r = new Random(5);
    for (Set<Get> gets : List.of(EnumSet.of(Get.NNGP), EnumSet.of(Get.NTK), EnumSet.allOf(Get.class))) {
      Plan plan = Plan.compile(ModelSpec.parse("""
          {"serial": [{"Dense": {"out_dim": 8, "W_std": 1.4, "b_std": 0.1}}, {"Relu": {}},
            {"Dense": {"out_dim": 1, "b_std": 0.2}}]}"""), new Shape(6), gets);
      for (int[] n : new int[][] {{40, 0}, {7, 1100}, {1100, 0}, {9, 30}, {3, 0}, {3, 1}, {1, 0}}) {
        int n1 = n[0];
        boolean same = n[1] == 0;
        int n2 = same ? n1 : n[1];
        double[] x1 = gaussian(r, n1 * 6);
        double[] x2 = same ? null : gaussian(r, n2 * 6);
        for (boolean f64 : new boolean[] {true, false}) {
          Map<String, Buffer> out = new HashMap<>();
          for (Get g : gets) {
            out.put(g.key(), f64 ? ByteBuffer.allocateDirect(8 * n1 * n2).order(ByteOrder.nativeOrder()).asDoubleBuffer()
                : ByteBuffer.allocateDirect(4 * n1 * n2).order(ByteOrder.nativeOrder()).asFloatBuffer());
          }
          // Native memory is not zeroed (NativeBuffer): whatever it held must not reach the kernels.
          for (Buffer b : out.values()) {
            for (int i = 0; i < n1 * n2; i++) {
              if (b instanceof DoubleBuffer d) {
                d.put(i, Double.NaN);
              } else {
                ((FloatBuffer) b).put(i, Float.NaN);
              }
            }
          }
          Map<String, ?> arrays;
          if (f64) {
            plan.runInto(x1, x2, n1, n2, 2, out);
            arrays = plan.run(CpuBackend.float64(), x1, x2, n1, n2, 2);
          } else {
            CpuBackend<float[]> cpu = CpuBackend.float32();
            plan.runInto(cpu.fromDoubles(x1), same ? null : cpu.fromDoubles(x2), n1, n2, 2, out);
            arrays = plan.run(cpu, cpu.fromDoubles(x1), same ? null : cpu.fromDoubles(x2), n1, n2, 2);
          }
          for (Get g : gets) {
            Object want = arrays.get(g.key());
            Buffer got = out.get(g.key());
            // Both paths may sum the gram in different orders (BLAS kernels differ by CPU), so an
            // entry's error is relative to the kernel's scale, not to the entry: an off-diagonal
            // entry near zero carries the rounding of terms of the diagonal's size.
            double scale = 0;
            for (int i = 0; i < n1 * n2; i++) {
              scale = Math.max(scale, Math.abs(f64 ? ((double[]) want)[i] : ((float[]) want)[i]));
            }
            for (int i = 0; i < n1 * n2; i++) {
              double a = f64 ? ((double[]) want)[i] : ((float[]) want)[i];
              double b = f64 ? ((DoubleBuffer) got).get(i) : ((FloatBuffer) got).get(i);
              assertTrue(Math.abs(a - b) <= (f64 ? 1e-14 : 1e-6) * scale,
                  g.key() + " " + n1 + "x" + n2 + (f64 ? " f64" : " f32") + " [" + i + "]: " + b + " vs " + a);
            }
          }
        }
      }
    }
  }

  private static double[] gaussian(Random r, int count) {
    double[] x = new double[count];
    for (int i = 0; i < count; i++) {
      x[i] = r.nextGaussian();
    }
    return x;
  }

  /**
   * A convolutional plan (per-pixel and pixel-pair blocks, shifted and general pixel maps, a
   * pooling window, both readouts) on the scalar fallback and the vectorised loops, with a grid
   * whose rows are not whole vectors.
   */
  /**
   * A spread over several chunks of a run (a pixel-pair block of 7 x 7 pixels, 2,401 entries) reads
   * the whole per-pixel block in every chunk, while a later step of the run may already hold that
   * block's register (its last reader, step by step, is the spread): a closed form that reuses each
   * variance spread in a sum and a product, {@code v1 + v2 + v1 v2}, gave an input's own covariance
   * 1.3 (relative) off tensorflow's on 7 x 7 images, and agreed on 6 x 7 (one chunk).
   */
  @Test
  void spreadsOverSeveralChunksReadTheWholeBlockInEach() {
    dev.ntk.kernels.Layer model = dev.ntk.kernels.Stax.serial(dev.ntk.kernels.Stax.dense(8, 1.3, 0.1),
        dev.ntk.kernels.Stax.elementwise((k, v1, v2) -> v1.plus(v2).plus(v1.times(v2))),
        dev.ntk.kernels.Stax.globalAvgPool());
    Random r = new Random(5);
    try (ai.djl.ndarray.NDManager m = dev.ntk.kernels.Tensors.newManager()) {
      for (int[] image : new int[][] {{6, 7}, {7, 7}, {9, 8}}) {
        ai.djl.ndarray.NDArray[] x = new ai.djl.ndarray.NDArray[2];
        for (int t = 0; t < 2; t++) {
          double[] v = new double[(3 - t) * image[0] * image[1] * 2];
          for (int i = 0; i < v.length; i++) {
            v[i] = r.nextGaussian();
          }
          x[t] = dev.ntk.kernels.Tensors.create(m, v, new Shape(3 - t, image[0], image[1], 2),
              ai.djl.ndarray.types.DataType.FLOAT64);
        }
        dev.ntk.kernels.Kernel cpu = model.kernelFn().withBackend(Backend.CPU).apply(x[0], x[1]);
        dev.ntk.kernels.Kernel tf = model.kernelFn().withBackend(Backend.TENSORFLOW).apply(x[0], x[1]);
        // and the generated (fused) loops of the same plan
        double[] fused = Plan.compile(model, new Shape(image[0], image[1], 2), EnumSet.allOf(Get.class))
            .run(CpuBackend.float64().fused(true), x[0].toDoubleArray(), x[1].toDoubleArray(), 3, 2, 1).get(Plan.VAR1);
        double[][] pairs = {cpu.cov1().toDoubleArray(), tf.cov1().toDoubleArray(), cpu.cov2().toDoubleArray(),
            tf.cov2().toDoubleArray(), cpu.nngp().toDoubleArray(), tf.nngp().toDoubleArray(), fused,
            tf.cov1().toDoubleArray()};
        for (int q = 0; q < pairs.length; q += 2) {
          double num = 0;
          double den = 0;
          for (int i = 0; i < pairs[q].length; i++) {
            num += (pairs[q][i] - pairs[q + 1][i]) * (pairs[q][i] - pairs[q + 1][i]);
            den += pairs[q + 1][i] * pairs[q + 1][i];
          }
          double err = Math.sqrt(num / den);
          String what = new String[] {"cov1", "cov2", "nngp", "fused cov1"}[q / 2];
          assertTrue(err < 1e-12, java.util.Arrays.toString(image) + " " + what + ": cpu and tensorflow differ by "
              + err);
        }
      }
    }
  }

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
