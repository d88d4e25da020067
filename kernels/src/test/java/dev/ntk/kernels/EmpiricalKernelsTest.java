package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.EmpiricalKernels.Implementation;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The empirical NNGP and NTK of one finite network: the three NTK implementations against each
 * other (1e-10 relative, float64) and against the Jacobian by central differences; the kernels
 * with the output channels kept against the traced ones; and the empirical kernels of wide
 * networks against {@link KernelFn}'s analytic kernels within Monte Carlo error.
 */
class EmpiricalKernelsTest {
  private static NDManager manager;

  @BeforeAll
  static void setUp() {
    manager = Tensors.newManager();
  }

  @AfterAll
  static void tearDown() {
    manager.close();
  }

  private static int[] ints(int... v) {
    return v;
  }

  static Stream<Arguments> networks() {
    return Stream.of(
        Arguments.of("relu with bias", Stax.serial(Stax.dense(7, 1.4, 0.1), Stax.relu(),
            Stax.dense(5, 1.2, 0.2), Stax.erf(), Stax.dense(3, 1.0, 0.1)), new Shape(4)),
        Arguments.of("standard parameterization, one output", Stax.serial(
            Stax.dense(6, 1.3, 0.2, Linear.Parameterization.STANDARD), Stax.gelu(),
            Stax.dense(1, 1.0, 0.1, Linear.Parameterization.STANDARD)), new Shape(4)),
        Arguments.of("branches with FanInProd and FanInSum", Stax.serial(Stax.dense(6, 1.2, 0.1), Stax.fanOut(3),
            Stax.parallel(Stax.serial(Stax.relu(), Stax.dense(4, 1.0, 0.1)), Stax.dense(4, 0.8, null),
                Stax.serial(Stax.sin(), Stax.dense(4, 1.1, 0.2))), Stax.fanInProd(), Stax.fanOut(2),
            Stax.parallel(Stax.identity(), Stax.serial(Stax.dense(5, 1.1, 0.1), Stax.erf(), Stax.dense(4, 1.0, 0.1))),
            Stax.fanInSum(),
            Stax.dense(2, 1.0, 0.1)), new Shape(3)),
        Arguments.of("convolutions, pools and FanInConcat", Stax.serial(
            Stax.conv(3, ints(3, 3), null, "SAME", 1.3, 0.1), Stax.relu(),
            Stax.avgPool(ints(2, 2), ints(2, 2), "SAME"), Stax.fanOut(2),
            Stax.parallel(Stax.conv(2, ints(2, 2), ints(1, 1), "CIRCULAR", 1.0, 0.1), Stax.identity()),
            Stax.fanInConcat(), Stax.convTranspose(2, ints(2, 2), ints(2, 2), "SAME", 1.1, 0.1), Stax.erf(),
            Stax.conv(2, ints(3, 2), ints(2, 1), "VALID", 1.0, null)), new Shape(5, 4, 2)),
        Arguments.of("locally connected layers and a global pool", Stax.serial(
            Stax.convLocal(3, ints(2, 2), ints(1, 2), "SAME", 1.3, 0.1), Stax.relu(),
            Stax.convLocal(2, ints(2, 1), null, "VALID", 1.1, 0.2, Linear.Parameterization.STANDARD),
            Stax.globalAvgPool()), new Shape(4, 3, 2)));
  }

  private static NDArray inputs(Shape perExample, int n, long seed) {
    return KernelTesting.randomImages(manager, n, perExample.getShape(), seed);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("networks")
  void implementationsAgreeWithEachOtherAndWithFiniteDifferences(String name, Layer model, Shape perExample) {
    try (NDManager scope = manager.newSubManager()) {
      NDArray x1 = inputs(perExample, 3, 1).toType(DataType.FLOAT64, false);
      NDArray x2 = inputs(perExample, 2, 2);
      x1.attach(scope);
      x2.attach(scope);
      Params params = model.init(7, perExample, scope, DataType.FLOAT64);
      double[][] j1 = finiteDifferenceJacobian(model, params, x1);
      double[][] j2 = finiteDifferenceJacobian(model, params, x2);
      int channels = j1.length / 3;
      double[] expected = contract(j1, j2, 3, 2, channels);
      for (boolean trace : new boolean[] {true, false}) {
        double[] reference = trace ? traced(expected, 3, 2, channels) : expected;
        double[] structured = null;
        for (Implementation impl : Implementation.values()) {
          NDArray k = EmpiricalKernels.ntk(model, params, x1, x2, impl, trace);
          assertEquals(trace ? new Shape(3, 2) : new Shape(3, 2, channels, channels), k.getShape(), impl.key());
          double[] got = k.toDoubleArray();
          assertTrue(KernelTesting.relativeError(got, reference) < 1e-6,
              impl.key() + " trace=" + trace + " against finite differences: " + KernelTesting.relativeError(got,
                  reference));
          if (structured == null) {
            structured = got;
          } else {
            assertTrue(KernelTesting.relativeError(got, structured) < 1e-10,
                impl.key() + " trace=" + trace + " against jacobian: " + KernelTesting.relativeError(got, structured));
          }
        }
      }
      // The same inputs on both sides (x2 == null) is the symmetric kernel.
      double[] sym = EmpiricalKernels.ntk(model, params, x1, null, Implementation.STRUCTURED, true).toDoubleArray();
      assertTrue(KernelTesting.relativeError(sym, traced(contract(j1, j1, 3, 3, channels), 3, 3, channels)) < 1e-6);

      double[] f1 = KernelTesting.flatten(model.apply(params, x1));
      double[] f2 = KernelTesting.flatten(model.apply(params, x2));
      double[] nngp = EmpiricalKernels.nngp(model, params, x1, x2, false).toDoubleArray();
      double[] nngpTraced = EmpiricalKernels.nngp(model, params, x1, x2, true).toDoubleArray();
      for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 2; j++) {
          double sum = 0;
          for (int c = 0; c < channels; c++) {
            for (int d = 0; d < channels; d++) {
              double v = f1[i * channels + c] * f2[j * channels + d];
              assertEquals(v, nngp[((i * 2 + j) * channels + c) * channels + d], 1e-12);
            }
            sum += f1[i * channels + c] * f2[j * channels + c];
          }
          assertEquals(sum / channels, nngpTraced[i * 2 + j], 1e-12);
        }
      }
    }
  }

  /**
   * Wide networks: their empirical kernels against the analytic ones. Over a few draws, {@code
   * ||mean - K||_F <= 4 ||se||_F + 2 ||K||_F / width} (as {@link MonteCarloNtkTest}); the NNGP
   * needs many output channels, since each draw's is an average over them.
   */
  @Test
  void wideNetworksMatchTheAnalyticKernels() {
    int width = 2048;
    NDArray x1 = KernelTesting.randomInputs(manager, 4, 5, 11);
    NDArray x2 = KernelTesting.randomInputs(manager, 3, 5, 12);
    List<double[]> ntks = new ArrayList<>();
    List<double[]> nngps = new ArrayList<>();
    Layer ntkModel = wide(width, 4);
    Layer nngpModel = wide(width, 512);
    for (int s = 0; s < 4; s++) {
      try (NDManager scope = manager.newSubManager()) {
        Params params = ntkModel.init(100 + s, new Shape(5), scope, DataType.FLOAT64);
        ntks.add(EmpiricalKernels.ntk(ntkModel, params, x1, x2, Implementation.STRUCTURED, true).toDoubleArray());
      }
    }
    for (int s = 0; s < 16; s++) {
      try (NDManager scope = manager.newSubManager()) {
        Params params = nngpModel.init(200 + s, new Shape(5), scope, DataType.FLOAT64);
        nngps.add(EmpiricalKernels.nngp(nngpModel, params, x1, x2, true).toDoubleArray());
      }
    }
    KernelTesting.assertMatchesMonteCarlo("empirical NTK", ntkModel.kernelFn().apply(x1, x2).ntk().toDoubleArray(),
        estimate(ntks, 4, 3), 2.0 / width, 0.25);
    KernelTesting.assertMatchesMonteCarlo("empirical NNGP",
        nngpModel.kernelFn().apply(x1, x2).nngp().toDoubleArray(), estimate(nngps, 4, 3), 2.0 / width, 0.25);
  }

  private static Layer wide(int width, int outputs) {
    return Stax.serial(Stax.dense(width, 1.5, 0.1), Stax.relu(), Stax.dense(width, 1.3, 0.1), Stax.erf(),
        Stax.dense(outputs, 1.0, 0.1));
  }

  @Test
  void float32ParametersGiveFloat32Precision() {
    Layer model = Stax.serial(Stax.dense(16, 1.4, 0.1), Stax.relu(), Stax.dense(3, 1.0, 0.1));
    NDArray x = KernelTesting.randomInputs(manager, 3, 4, 5);
    try (NDManager scope = manager.newSubManager()) {
      double[] k64 = EmpiricalKernels.ntk(model, model.init(3, new Shape(4), scope, DataType.FLOAT64), x, null,
          Implementation.STRUCTURED, true).toDoubleArray();
      NDArray k32 = EmpiricalKernels.ntk(model, model.init(3, new Shape(4), scope, DataType.FLOAT32), x, null,
          Implementation.JACOBIAN_CONTRACTION, true);
      assertEquals(DataType.FLOAT64, k32.getDataType());
      assertTrue(KernelTesting.relativeError(k32.toDoubleArray(), k64) < 1e-5);
    }
  }

  @Test
  void implementationNamesParse() {
    for (Implementation i : Implementation.values()) {
      assertEquals(i, Implementation.of(i.key().toUpperCase()));
    }
    assertThrows(IllegalArgumentException.class, () -> Implementation.of("exact"));
  }

  private static MonteCarlo.Estimate estimate(List<double[]> draws, int rows, int cols) {
    int n = draws.get(0).length;
    double[] mean = new double[n];
    double[] se = new double[n];
    for (double[] d : draws) {
      for (int i = 0; i < n; i++) {
        mean[i] += d[i] / draws.size();
      }
    }
    for (int i = 0; i < n; i++) {
      double var = 0;
      for (double[] d : draws) {
        var += (d[i] - mean[i]) * (d[i] - mean[i]);
      }
      se[i] = Math.sqrt(var / (draws.size() - 1) / draws.size());
    }
    return new MonteCarlo.Estimate(mean, se, rows, cols, draws.size());
  }

  /** {@code J[n C + c][k]}: the derivative of output entry {@code c} of example {@code n} in parameter {@code k}. */
  private static double[][] finiteDifferenceJacobian(Layer model, Params params, NDArray x) {
    double h = 1e-5;
    List<NDArray> leaves = params.leaves();
    List<double[]> values = new ArrayList<>();
    int total = 0;
    for (NDArray a : leaves) {
      values.add(Tensors.toDoubles(a));
      total += values.get(values.size() - 1).length;
    }
    double[] f0 = KernelTesting.flatten(model.apply(params, x));
    double[][] j = new double[f0.length][total];
    int k = 0;
    for (int a = 0; a < leaves.size(); a++) {
      for (int i = 0; i < values.get(a).length; i++, k++) {
        double[] plus = evaluate(model, params, x, values, a, i, h);
        double[] minus = evaluate(model, params, x, values, a, i, -h);
        for (int r = 0; r < f0.length; r++) {
          j[r][k] = (plus[r] - minus[r]) / (2 * h);
        }
      }
    }
    return j;
  }

  private static double[] evaluate(Layer model, Params params, NDArray x, List<double[]> values, int a, int i,
      double h) {
    List<NDArray> leaves = params.leaves();
    List<NDArray> moved = new ArrayList<>(leaves);
    double[] v = values.get(a).clone();
    v[i] += h;
    moved.set(a, Tensors.create(x.getManager(), v, leaves.get(a).getShape(), DataType.FLOAT64));
    return KernelTesting.flatten(model.apply(params.withLeaves(moved), x));
  }

  /** {@code (N1, N2, C, C)}: {@code sum_k J1[i c][k] J2[j d][k]}. */
  private static double[] contract(double[][] j1, double[][] j2, int n1, int n2, int channels) {
    double[] out = new double[n1 * n2 * channels * channels];
    for (int i = 0; i < n1; i++) {
      for (int j = 0; j < n2; j++) {
        for (int c = 0; c < channels; c++) {
          for (int d = 0; d < channels; d++) {
            double s = 0;
            double[] a = j1[i * channels + c];
            double[] b = j2[j * channels + d];
            for (int k = 0; k < a.length; k++) {
              s += a[k] * b[k];
            }
            out[((i * n2 + j) * channels + c) * channels + d] = s;
          }
        }
      }
    }
    return out;
  }

  private static double[] traced(double[] full, int n1, int n2, int channels) {
    double[] out = new double[n1 * n2];
    for (int ij = 0; ij < n1 * n2; ij++) {
      for (int c = 0; c < channels; c++) {
        out[ij] += full[(ij * channels + c) * channels + c] / channels;
      }
    }
    return out;
  }
}
