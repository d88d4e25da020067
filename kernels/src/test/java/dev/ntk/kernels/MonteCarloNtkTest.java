package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The analytic NTK against {@link MonteCarlo#ntk}, the exact empirical NTK of wide finite
 * networks averaged over draws, with {@link MonteCarloTest}'s bound: {@code ||K_mc - K||_F <= 4
 * ||se||_F + 2 ||K||_F / width}, the standard errors measured from the draws, and the bound itself
 * under 10% of {@code ||K||_F} so that agreement means something.
 */
class MonteCarloNtkTest extends MonteCarloFixture {
  private static final int WIDTH = 1024;
  private static final int SAMPLES = 64;

  static Stream<Arguments> models() {
    int w = WIDTH;
    return Stream.concat(MonteCarloTest.nngpAndNtkModels(w), Stream.of(
        Arguments.of("relu, erf, standard parameterization", Stax.serial(
            Stax.dense(w, 1.3, 0.2, Linear.Parameterization.STANDARD), Stax.relu(),
            Stax.dense(w, 1.1, 0.1, Linear.Parameterization.STANDARD), Stax.erf(),
            Stax.dense(w, 1.0, 0.1, Linear.Parameterization.STANDARD)))));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("models")
  void analyticNtkMatchesWideFiniteNetworks(String name, Layer model) {
    NDArray x1 = KernelTesting.randomInputs(manager, 5, 4, 101);
    NDArray x2 = KernelTesting.randomInputs(manager, 3, 4, 102);
    double[] analytic = model.kernelFn().apply(x1, x2).ntk().toDoubleArray();
    MonteCarlo.Estimate mc = MonteCarlo.ntk(model, x1, x2, SAMPLES, 11);
    KernelTesting.assertMatchesMonteCarlo("NTK " + name, analytic, mc, 2.0 / WIDTH, 0.10);
  }

  /**
   * A single Dense layer has the same empirical NTK for every draw and channel, {@code W_std^2 x1
   * x2^T / d + b_std^2} (the standard parameterization differentiates the raw arrays: {@code x1
   * x2^T + 1}), so each draw's exact NTK is the analytic kernel to rounding and the standard
   * errors vanish (to the rounding of their sums of squares). It fails if a derivative is scaled
   * wrongly, which the wide-network test could absorb only within its bound.
   */
  @Test
  void singleDenseLayerIsExactInEveryDraw() {
    NDArray x1 = KernelTesting.randomInputs(manager, 4, 6, 5);
    NDArray x2 = KernelTesting.randomInputs(manager, 3, 6, 6);
    for (Layer model : new Layer[] {Stax.dense(512, 1.3, 0.2),
        Stax.dense(512, 1.3, 0.2, Linear.Parameterization.STANDARD)}) {
      double[] analytic = model.kernelFn().apply(x1, x2).ntk().toDoubleArray();
      MonteCarlo.Estimate mc = MonteCarlo.ntk(model, x1, x2, 3, 3);
      assertArrayEquals(analytic, mc.mean(), 1e-12, model.arguments().toString());
      // The standard error's sum of squares cancels to rounding: sqrt(1e-16) of the kernel.
      assertArrayEquals(new double[analytic.length], mc.standardError(), 1e-6 * KernelTesting.norm(analytic));
    }
  }

  /** Every output channel of a draw, or one: the same kernel on average, the noise of one channel larger. */
  @Test
  void channelsPerDrawAverageExchangeableChannels() {
    NDArray x1 = KernelTesting.randomInputs(manager, 4, 6, 5);
    Layer model = Stax.serial(Stax.dense(64, 1.2, 0.1), Stax.relu(), Stax.dense(16, 1.0, 0.1));
    MonteCarlo.Estimate all = MonteCarlo.ntk(model, x1, x1, 32, 16, 9);
    MonteCarlo.Estimate one = MonteCarlo.ntk(model, x1, x1, 32, 1, 9);
    KernelTesting.assertMatchesMonteCarlo("one channel against all", all.mean(), one, 0, 0.5);
    assertTrue(KernelTesting.norm(one.standardError()) > KernelTesting.norm(all.standardError()));
  }

  @Test
  void float32InputsGiveTheSameDrawsInFloat32() {
    NDArray x32 = KernelTesting.randomInputs(manager, 3, 4, 8).toType(DataType.FLOAT32, false);
    NDArray x64 = x32.toType(DataType.FLOAT64, false);
    Layer model = Stax.serial(Stax.dense(64, 1.2, 0.1), Stax.relu(), Stax.dense(8, 1.0, null));
    MonteCarlo.Estimate a = MonteCarlo.ntk(model, x32, x32, 4, 1);
    MonteCarlo.Estimate b = MonteCarlo.ntk(model, x64, x64, 4, 1);
    assertTrue(KernelTesting.relativeError(a.mean(), b.mean()) < 1e-5);
  }

  @Test
  void badArgumentsAreRejected() {
    NDArray x = KernelTesting.randomInputs(manager, 3, 4, 8);
    Layer model = Stax.dense(8);
    assertThrows(IllegalArgumentException.class, () -> MonteCarlo.ntk(model, x, x, 1, 0));
    assertThrows(IllegalArgumentException.class, () -> MonteCarlo.ntk(model, x, x, 4, 0, 0));
  }

}
