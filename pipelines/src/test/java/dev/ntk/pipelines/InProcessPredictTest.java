package dev.ntk.pipelines;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Model;
import dev.ntk.kernels.Plan;
import dev.ntk.kernels.engine.NativeBuffer;
import dev.ntk.kernels.linalg.DenseMatrix;
import java.nio.Buffer;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Kernels too large for one buffer are computed by bands of rows ({@link InProcessPredict#inBands}):
 * every entry equals the whole run's, for x1 with itself (blocks on the diagonal with the rules of an
 * example with itself, Dropout's among them, and the lower triangle mirrored) and against x2.
 */
class InProcessPredictTest {
  private static final Model MODEL = Model.parse("""
      {"serial": [{"Dense": {"out_dim": 64, "W_std": 1.5, "b_std": 0.1}}, {"Relu": {}},
        {"Dropout": {"rate": 0.8, "mode": "train"}},
        {"Dense": {"out_dim": 64, "W_std": 1.5, "b_std": 0.1}}, {"Erf": {}}, {"Dense": {"out_dim": 1}}]}""");
  /** neural-tangents' quadrature, whose rule is not symmetric in its inputs: x1 with itself is whole. */
  private static final Model ASYMMETRIC = Model.parse("""
      {"serial": [{"Dense": {"out_dim": 8, "W_std": 1.2, "b_std": 0.1}},
        {"ElementwiseNumerical": {"fn": "tanh", "deg": 5}}, {"Dense": {"out_dim": 1}}]}""");
  private static final Set<Get> GETS = EnumSet.of(Get.NNGP, Get.NTK);

  @Test
  void bandsOfX1WithItselfEqualTheWholeKernel() {
    for (boolean f64 : new boolean[] {true, false}) {
      // 7 rows a band (band bytes / (37 columns x 8 bytes)): 6 bands, the last of 2 rows.
      compare(MODEL, f64, 37, 0, 7L * 37 * Double.BYTES);
      compare(MODEL, f64, 37, 0, 1);
    }
  }

  @Test
  void bandsOfX1WithItselfOfAPlanThatIsNotSymmetricAreWhole() {
    assertFalse(ASYMMETRIC.plan(new Shape(5), DataType.FLOAT64, GETS).symmetric());
    for (boolean f64 : new boolean[] {true, false}) {
      compare(ASYMMETRIC, f64, 37, 0, 7L * 37 * Double.BYTES);
      compare(ASYMMETRIC, f64, 37, 0, 1);
    }
  }

  @Test
  void bandsAgainstX2EqualTheWholeKernel() {
    for (boolean f64 : new boolean[] {true, false}) {
      compare(MODEL, f64, 23, 31, 5L * 31 * Double.BYTES);
    }
  }

  private static void compare(Model model, boolean f64, int n1, int n2, long bandBytes) {
    int d = 5;
    Random random = new Random(n1 * 31L + n2);
    Object x1 = inputs(random, n1 * d, f64);
    Object x2 = n2 == 0 ? null : inputs(random, n2 * d, f64);
    int cols = n2 == 0 ? n1 : n2;
    Plan plan = model.plan(new Shape(d), f64 ? DataType.FLOAT64 : DataType.FLOAT32, GETS);
    Map<Get, NativeBuffer> whole = new EnumMap<>(Get.class);
    Map<String, Buffer> buffers = new HashMap<>();
    for (Get g : GETS) {
      whole.put(g, NativeBuffer.allocate((long) n1 * cols, f64));
      buffers.put(g.key(), whole.get(g).buffer());
    }
    plan.runInto(x1, x2, n1, cols, 2, buffers);
    Map<Get, DenseMatrix> bands = new EnumMap<>(Get.class);
    for (Get g : GETS) {
      bands.put(g, DenseMatrix.zeros(n1, cols));
    }
    try {
      InProcessPredict.inBands(plan, x1, x2, n1, cols, bands, bandBytes);
      for (Get g : GETS) {
        for (int i = 0; i < n1; i++) {
          for (int j = 0; j < cols; j++) {
            assertEquals(whole.get(g).get(i * cols + j), bands.get(g).get(i, j), 1e-6 * (f64 ? 1e-8 : 1),
                g + " entry (" + i + ", " + j + "), float" + (f64 ? 64 : 32) + ", band bytes " + bandBytes);
          }
        }
      }
    } finally {
      whole.values().forEach(NativeBuffer::close);
      bands.values().forEach(DenseMatrix::close);
    }
  }

  private static Object inputs(Random random, int count, boolean f64) {
    double[] d = new double[count];
    float[] f = new float[count];
    for (int i = 0; i < count; i++) {
      d[i] = random.nextGaussian();
      f[i] = (float) d[i];
    }
    return f64 ? d : f;
  }
}
