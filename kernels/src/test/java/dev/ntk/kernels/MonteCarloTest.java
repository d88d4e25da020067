package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The analytic NNGP against Monte Carlo averages over wide finite networks built from the same
 * {@link Layer}s.
 *
 * <p>The bound: a draw's estimate fluctuates around its mean with a standard deviation of order
 * {@code K / sqrt(width)}, so the average of {@code S} draws has standard error {@code se} per
 * entry, which we measure from the draws themselves. We accept {@code ||K_mc - K||_F <= 4
 * ||se||_F + 2 ||K||_F / width}: four standard errors (a false alarm is rarer than 1e-4 for a
 * Gaussian, and the draws are seeded, so the test is deterministic) plus the O(1/width) bias of
 * finite networks. The test also asserts that this bound is tight (under 10% of {@code ||K||_F}),
 * so that agreement is not vacuous.
 */
class MonteCarloTest {
  private static final int WIDTH = 1024;
  private static final int SAMPLES = 96;
  private static NDManager manager;

  @BeforeAll
  static void setUp() {
    manager = Tensors.newManager();
  }

  @AfterAll
  static void tearDown() {
    manager.close();
  }

  static Stream<Arguments> models() {
    int w = WIDTH;
    return Stream.of(
        Arguments.of("erf (the paper's first network)", Stax.serial(
            Stax.dense(w, 1.5, 0.05), Stax.erf(), Stax.dense(w, 1.5, 0.05), Stax.erf(),
            Stax.dense(w, 1.5, 0.05))),
        Arguments.of("relu with bias", Stax.serial(
            Stax.dense(w, 1.4, 0.1), Stax.relu(), Stax.dense(w, 1.4, 0.1), Stax.relu(),
            Stax.dense(w, 1.0, 0.0))),
        Arguments.of("residual relu", Stax.serial(
            Stax.dense(w, 1.0, 0.1), Stax.fanOut(2),
            Stax.parallel(Stax.serial(Stax.relu(), Stax.dense(w, 1.2, 0.1)), Stax.identity()),
            Stax.fanInSum(), Stax.relu(), Stax.dense(w, 1.0, null))),
        Arguments.of("leaky relu, abs, standard parameterization", Stax.serial(
            Stax.dense(w, 1.3, 0.2, Linear.Parameterization.STANDARD), Stax.leakyRelu(0.2),
            Stax.dense(w, 1.1, 0.1, Linear.Parameterization.STANDARD), Stax.abs(),
            Stax.dense(w, 1.0, 0.1, Linear.Parameterization.STANDARD))),
        Arguments.of("concat of relu and erf branches", Stax.serial(
            Stax.dense(w, 1.2, 0.1), Stax.fanOut(2),
            Stax.parallel(Stax.serial(Stax.relu(), Stax.dense(w, 1.0, 0.1)),
                Stax.serial(Stax.erf(2.0, 1.0, 0.1), Stax.dense(w / 2, 1.0, 0.0))),
            Stax.fanInConcat(), Stax.abRelu(-0.5, 1.5), Stax.dense(w, 1.0, null))),
        Arguments.of("product of two branches", Stax.serial(
            Stax.fanOut(2), Stax.parallel(Stax.dense(w, 1.0, 0.3), Stax.dense(w, 1.2, 0.1)),
            Stax.fanInProd(), Stax.dense(w, 1.0, 0.1), Stax.erf(), Stax.dense(w, 1.0, null))));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("models")
  void analyticNngpMatchesWideFiniteNetworks(String name, Layer model) {
    NDArray x1 = KernelTesting.randomInputs(manager, 5, 4, 101);
    NDArray x2 = KernelTesting.randomInputs(manager, 3, 4, 102);
    double[] analytic = model.kernelFn().apply(x1, x2).nngp().toDoubleArray();
    MonteCarlo.Estimate mc = MonteCarlo.nngp(model, x1, x2, SAMPLES, 7);
    KernelTesting.assertMatchesMonteCarlo(name, analytic, mc, 2.0 / WIDTH, 0.10);
  }


  /** Workers add up ranges of draws: any split of the draws gives the estimate of all of them. */
  @org.junit.jupiter.api.Test
  void sumsOfRangesOfDrawsAddUpToTheWholeEstimate() {
    Layer model = Stax.serial(Stax.dense(64, 1.5, 0.1), Stax.relu(), Stax.dense(64, 1.5, 0.1));
    NDArray x1 = KernelTesting.randomInputs(manager, 3, 4, 1);
    NDArray x2 = KernelTesting.randomInputs(manager, 2, 4, 2);
    for (Get get : Get.values()) {
      MonteCarlo.Estimate whole = get == Get.NNGP ? MonteCarlo.nngp(model, x1, x2, 7, 5)
          : MonteCarlo.ntk(model, x1, x2, 7, 5);
      MonteCarlo.Estimate parts = MonteCarlo.sums(get, model, x1, x2, 4, 7, 5)
          .plus(MonteCarlo.sums(get, model, x1, x2, 0, 1, 5))
          .plus(MonteCarlo.sums(get, model, x1, x2, 1, 4, 5)).estimate();
      assertEquals(7, parts.samples());
      for (int i = 0; i < whole.mean().length; i++) {
        assertEquals(whole.mean()[i], parts.mean()[i], 1e-12 * Math.abs(whole.mean()[i]), get + " mean " + i);
        assertEquals(whole.standardError()[i], parts.standardError()[i],
            1e-9 * Math.abs(whole.mean()[i]), get + " standard error " + i);
      }
    }
  }
}
