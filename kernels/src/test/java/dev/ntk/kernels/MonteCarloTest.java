package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import java.util.List;
import java.util.stream.Stream;
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
class MonteCarloTest extends MonteCarloFixture {
  private static final int WIDTH = 1024;
  private static final int SAMPLES = 96;

  /** Networks of width {@code width} whose NNGP this test and whose NTK {@link MonteCarloNtkTest} checks. */
  static Stream<Arguments> nngpAndNtkModels(int w) {
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
            Stax.fanInSum(), Stax.relu(), Stax.dense(w, 1.0, null))));
  }

  static Stream<Arguments> models() {
    int w = WIDTH;
    return Stream.concat(nngpAndNtkModels(w), Stream.of(
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
            Stax.fanInProd(), Stax.dense(w, 1.0, 0.1), Stax.erf(), Stax.dense(w, 1.0, null)))));
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
  /**
   * A list of sample counts is one sequence of draws: the estimate after each count is, bit for
   * bit, the single-count run with that count and seed, for both kernels.
   */
  @org.junit.jupiter.api.Test
  void theEstimateAfterEachCountOfAListIsTheSingleCountRun() {
    Layer model = Stax.serial(Stax.dense(32, 1.5, 0.1), Stax.relu(), Stax.dense(8, 1.5, 0.1));
    NDArray x1 = KernelTesting.randomInputs(manager, 3, 4, 1);
    NDArray x2 = KernelTesting.randomInputs(manager, 2, 4, 2);
    int[] counts = {2, 5, 9};
    List<MonteCarlo.Estimate> nngp = MonteCarlo.nngp(model, x1, x2, counts, 11);
    List<MonteCarlo.Estimate> ntk = MonteCarlo.ntk(model, x1, x2, counts, MonteCarlo.NTK_CHANNELS, 11);
    for (int k = 0; k < counts.length; k++) {
      MonteCarlo.Estimate one = MonteCarlo.nngp(model, x1, x2, counts[k], 11);
      assertEquals(counts[k], nngp.get(k).samples());
      assertArrayEquals(one.mean(), nngp.get(k).mean(), "NNGP after " + counts[k]);
      assertArrayEquals(one.standardError(), nngp.get(k).standardError(), "NNGP error after " + counts[k]);
      MonteCarlo.Estimate oneNtk = MonteCarlo.ntk(model, x1, x2, counts[k], 11);
      assertArrayEquals(oneNtk.mean(), ntk.get(k).mean(), "NTK after " + counts[k]);
      assertArrayEquals(oneNtk.standardError(), ntk.get(k).standardError(), "NTK error after " + counts[k]);
    }
  }

  /**
   * Along one sequence of draws of a wide network the standard errors shrink as {@code
   * 1/sqrt(n)} (their mean times {@code sqrt(n)} stays within 25% of its value at the largest
   * count, where it is best measured), and the analytic NNGP lies within four of them (plus the
   * {@code O(1/width)} bias) after every count.
   */
  @org.junit.jupiter.api.Test
  void standardErrorsShrinkAsOneOverSqrtSamplesAndBoundTheAnalyticKernel() {
    Layer model = Stax.serial(Stax.dense(512, 1.5, 0.1), Stax.erf(), Stax.dense(512, 1.5, 0.1), Stax.erf(),
        Stax.dense(512, 1.5, 0.1));
    NDArray x = KernelTesting.randomInputs(manager, 4, 4, 3);
    double[] analytic = model.kernelFn().apply(x, x).nngp().toDoubleArray();
    int[] counts = {16, 64, 256};
    List<MonteCarlo.Estimate> curve = MonteCarlo.nngp(model, x, x, counts, 5);
    double last = meanOf(curve.get(counts.length - 1).standardError()) * Math.sqrt(counts[counts.length - 1]);
    for (int k = 0; k < counts.length; k++) {
      double scaled = meanOf(curve.get(k).standardError()) * Math.sqrt(counts[k]);
      assertTrue(Math.abs(scaled / last - 1) < 0.25, "mean standard error times sqrt(" + counts[k] + "): " + scaled
          + ", at " + counts[counts.length - 1] + ": " + last);
      KernelTesting.assertMatchesMonteCarlo("erf after " + counts[k] + " draws", analytic, curve.get(k),
          2.0 / 512, 0.25);
    }
  }

  @org.junit.jupiter.api.Test
  void sampleCountsMustIncreaseFromTwo() {
    Layer model = Stax.serial(Stax.dense(8, 1.0, 0.0));
    NDArray x = KernelTesting.randomInputs(manager, 2, 3, 1);
    assertEquals("sample counts must increase, got 4 after 4",
        assertThrows(IllegalArgumentException.class, () -> MonteCarlo.nngp(model, x, x, new int[] {2, 4, 4}, 0))
            .getMessage());
    assertEquals("need at least 2 samples, got 1",
        assertThrows(IllegalArgumentException.class, () -> MonteCarlo.nngp(model, x, x, new int[] {1, 4}, 0))
            .getMessage());
    assertEquals("need at least one sample count",
        assertThrows(IllegalArgumentException.class, () -> MonteCarlo.ntk(model, x, x, new int[0], 1, 0))
            .getMessage());
  }

  private static double meanOf(double[] values) {
    double s = 0;
    for (double v : values) {
      s += v;
    }
    return s / values.length;
  }
}
