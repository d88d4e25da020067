package dev.ntk.kernels.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.BaseNDManager;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.Layer;
import dev.ntk.kernels.Params;
import dev.ntk.kernels.Stax;
import dev.ntk.kernels.Tensors;
import dev.ntk.kernels.Vjp;
import dev.ntk.kernels.predict.Loss;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@link Trainer} on linearized networks, whose outputs are {@code f0 + J dp} with the Jacobian
 * {@code J} at {@code params0}: every optimizer and loss against the same updates written out
 * on the flattened parameters in plain Java ({@code dp} and {@code J} as arrays of doubles),
 * including a non-integer time; minibatch SGD on copies of one row against full-batch gradient
 * descent; and no array left behind.
 */
class TrainerTest {
  private static NDManager manager;

  @BeforeAll
  static void setUp() {
    manager = Tensors.newManager();
  }

  @AfterAll
  static void tearDown() {
    manager.close();
  }

  private static final Layer MODEL = Stax.serial(Stax.dense(8, 1.5, 0.1), Stax.erf(), Stax.dense(7, 1.2, 0.2),
      Stax.gelu(), Stax.dense(2, 1.3, 0.05));

  static Stream<Arguments> cases() {
    return Stream.of(
        Arguments.of("gd mse", Loss.MSE, new Optimizer.Sgd(), 0.5),
        Arguments.of("momentum mse", Loss.MSE, new Optimizer.Momentum(0.9), 0.1),
        Arguments.of("adam mse", Loss.MSE, new Optimizer.Adam(), 0.01),
        Arguments.of("gd cross-entropy", Loss.CROSS_ENTROPY, new Optimizer.Sgd(), 1.0),
        Arguments.of("adam cross-entropy", Loss.CROSS_ENTROPY, new Optimizer.Adam(0.8, 0.99, 1e-6), 0.02));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void linearizedTrainingFollowsTheUpdatesOnTheJacobian(String name, Loss loss, Optimizer optimizer, double lr) {
    Trainer.Data data = data(new SplittableRandom(name.hashCode()), false);
    double[] times = {0, 3, 1, 2.25, 6};
    Trainer.Settings settings = new Trainer.Settings(loss, optimizer, lr, 0, times);
    try (NDManager scope = manager.newSubManager()) {
      Params p0 = MODEL.init(21, data.perExample(), scope, DataType.FLOAT64);
      int before = ((BaseNDManager) scope).getManagedArrays().size();
      AtomicLong steps = new AtomicLong();
      Trainer.Outputs out = Trainer.train(Taylor.linearize(MODEL, p0), p0, data, settings, 0, scope,
          DataType.FLOAT64, steps::addAndGet);
      assertEquals(6, steps.get());
      assertEquals(before, ((BaseNDManager) scope).getManagedArrays().size(), "arrays left behind");

      Reference ref = new Reference(scope, p0, data);
      for (int i = 0; i < times.length; i++) {
        double[][] expected = ref.outputs(loss, optimizer, lr, times[i]);
        assertArrayEquals(expected[0], out.train()[i], 1e-10, "train outputs at t = " + times[i]);
        assertArrayEquals(expected[1], out.test()[i], 1e-10, "test outputs at t = " + times[i]);
      }
      // it trained: the loss went down
      double first = mse(out.train()[0], data.yTrain());
      double last = mse(out.train()[4], data.yTrain());
      assertTrue(loss != Loss.MSE || last < first, "mse " + first + " -> " + last);
    }
  }

  @Test
  void minibatchesOfCopiesOfOneRowAreFullBatchGradientDescent() {
    Trainer.Data data = data(new SplittableRandom(4), true);
    double[] times = {5};
    try (NDManager scope = manager.newSubManager()) {
      Params p0 = MODEL.init(9, data.perExample(), scope, DataType.FLOAT64);
      Trainer.Outputs full = Trainer.train(Network.of(MODEL), p0, data,
          new Trainer.Settings(Loss.MSE, new Optimizer.Sgd(), 0.3, 0, times), 1, scope, DataType.FLOAT64, s -> {});
      Trainer.Outputs mini = Trainer.train(Network.of(MODEL), p0, data,
          new Trainer.Settings(Loss.MSE, new Optimizer.Sgd(), 0.3, 2, times), 1, scope, DataType.FLOAT64, s -> {});
      assertArrayEquals(full.test()[0], mini.test()[0], 1e-12);
      assertTrue(TaylorTest.maxDiff(full.test()[0], Tensors.toDoubles(MODEL.apply(p0,
          Tensors.create(scope, data.xTest(), data.testShape(), DataType.FLOAT64)))) > 1e-3, "it trained");
    }
  }

  @Test
  void settingsAreChecked() {
    assertThrows(IllegalArgumentException.class,
        () -> new Trainer.Settings(Loss.MSE, new Optimizer.Sgd(), 0.1, 0, new double[] {-1}));
    assertThrows(IllegalArgumentException.class,
        () -> new Trainer.Settings(Loss.MSE, new Optimizer.Sgd(), 0.1, 0, new double[] {Double.POSITIVE_INFINITY}));
    assertThrows(IllegalArgumentException.class,
        () -> new Trainer.Settings(Loss.MSE, new Optimizer.Sgd(), 0, 0, new double[] {1}));
    assertThrows(IllegalArgumentException.class, () -> new Optimizer.Momentum(1.0));
    assertThrows(IllegalArgumentException.class, () -> Optimizer.of("rmsprop", 0.9));
  }

  /** Five training rows (all the same row if {@code copies}), three test rows, two outputs. */
  private static Trainer.Data data(SplittableRandom rng, boolean copies) {
    int n = 5;
    int m = 3;
    double[] x = new double[n * 3];
    double[] y = new double[n * 2];
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < 3; j++) {
        x[i * 3 + j] = copies && i > 0 ? x[j] : rng.nextGaussian();
      }
      double p = copies && i > 0 ? y[0] : rng.nextDouble();
      y[i * 2] = p;
      y[i * 2 + 1] = 1 - p; // rows sum to one, for cross-entropy
    }
    double[] xt = new double[m * 3];
    for (int i = 0; i < xt.length; i++) {
      xt[i] = rng.nextGaussian();
    }
    return new Trainer.Data(x, new Shape(n, 3), y, 2, xt, new Shape(m, 3));
  }

  private static double mse(double[] f, double[] y) {
    double s = 0;
    for (int i = 0; i < f.length; i++) {
      s += (f[i] - y[i]) * (f[i] - y[i]);
    }
    return s / (2 * f.length);
  }

  /** The linearized network as {@code f0 + J dp} on flattened parameters, trained in plain Java. */
  private static final class Reference {
    private final double[] f0;
    private final double[][] jacobian; // (N + M) k rows
    private final Trainer.Data data;
    private final int params;

    Reference(NDManager scope, Params p0, Trainer.Data data) {
      this.data = data;
      int k = data.outputs();
      double[] all = new double[data.xTrain().length + data.xTest().length];
      System.arraycopy(data.xTrain(), 0, all, 0, data.xTrain().length);
      System.arraycopy(data.xTest(), 0, all, data.xTrain().length, data.xTest().length);
      int rows = data.n() + data.m();
      NDArray x = Tensors.create(scope, all, new Shape(rows).addAll(data.perExample()), DataType.FLOAT64);
      Vjp vjp = MODEL.vjp(p0, List.of(x), false);
      f0 = Tensors.toDoubles(vjp.output());
      jacobian = new double[rows * k][];
      for (int o = 0; o < rows * k; o++) {
        double[] e = new double[rows * k];
        e[o] = 1;
        List<NDArray> g = vjp.pull(List.of(Tensors.create(scope, e, new Shape(rows, k), DataType.FLOAT64)))
            .params().leaves();
        jacobian[o] = flat(g);
      }
      params = jacobian[0].length;
    }

    /** Train and test outputs at time {@code t}. */
    double[][] outputs(Loss loss, Optimizer optimizer, double lr, double t) {
      int k = data.outputs();
      int n = data.n();
      double[] dp = new double[params];
      double[] m = new double[params];
      double[] v = new double[params];
      long whole = (long) Math.floor(t);
      for (long step = 0; step < Math.ceil(t); step++) {
        double[] f = apply(dp);
        double[] g = new double[params];
        double[] dl = loss.gradient(java.util.Arrays.copyOf(f, n * k), data.yTrain(), n, k);
        for (int o = 0; o < n * k; o++) {
          for (int j = 0; j < params; j++) {
            g[j] += jacobian[o][j] * dl[o];
          }
        }
        double[] next = dp.clone();
        for (int j = 0; j < params; j++) {
          if (optimizer instanceof Optimizer.Sgd) {
            next[j] -= lr * g[j];
          } else if (optimizer instanceof Optimizer.Momentum mo) {
            m[j] = mo.mass() * m[j] + g[j];
            next[j] -= lr * m[j];
          } else if (optimizer instanceof Optimizer.Adam a) {
            m[j] = (1 - a.b1()) * g[j] + a.b1() * m[j];
            v[j] = (1 - a.b2()) * g[j] * g[j] + a.b2() * v[j];
            double mh = m[j] / (1 - Math.pow(a.b1(), step + 1));
            double vh = v[j] / (1 - Math.pow(a.b2(), step + 1));
            next[j] -= lr * mh / (Math.sqrt(vh) + a.eps());
          }
        }
        if (step == whole) { // the fraction of the last step
          for (int j = 0; j < params; j++) {
            next[j] = dp[j] + (t - whole) * (next[j] - dp[j]);
          }
        }
        dp = next;
      }
      double[] f = apply(dp);
      return new double[][] {java.util.Arrays.copyOf(f, n * k), java.util.Arrays.copyOfRange(f, n * k, f.length)};
    }

    private double[] apply(double[] dp) {
      double[] f = f0.clone();
      for (int o = 0; o < f.length; o++) {
        for (int j = 0; j < params; j++) {
          f[o] += jacobian[o][j] * dp[j];
        }
      }
      return f;
    }

    private static double[] flat(List<NDArray> arrays) {
      double[][] parts = arrays.stream().map(Tensors::toDoubles).toArray(double[][]::new);
      int n = 0;
      for (double[] p : parts) {
        n += p.length;
      }
      double[] out = new double[n];
      int at = 0;
      for (double[] p : parts) {
        System.arraycopy(p, 0, out, at, p.length);
        at += p.length;
      }
      return out;
    }
  }
}
