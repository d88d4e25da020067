package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.TestInstance;

/**
 * What the tests of analytic kernels against wide finite networks share: a DJL manager open for
 * the whole test class, and one check of a model's NNGP and NTK against Monte Carlo estimates
 * ({@link MonteCarlo#nngp}, {@link MonteCarlo#ntk}) with the bound of {@link
 * KernelTesting#assertMatchesMonteCarlo}, itself under 15% of {@code ||K||_F}.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class MonteCarloFixture {
  /** Open from before the first test of the class to after its last. */
  protected NDManager manager;

  @BeforeAll
  void openManager() {
    manager = Tensors.newManager();
  }

  @AfterAll
  void closeManager() {
    manager.close();
  }

  static int[] a(int... v) {
    return v;
  }

  /** The analytic kernels and the two estimates they were checked against. */
  record Checked(Kernel kernel, MonteCarlo.Estimate nngp, MonteCarlo.Estimate ntk) {}

  /**
   * The analytic NNGP and NTK of {@code model} between {@code x1} and {@code x2} ({@code null}:
   * {@code x1} with itself) against {@code samples} finite networks drawn from {@code nngpSeed}
   * and {@code ntkSeed}, allowing a relative finite-width {@code bias}.
   */
  static Checked assertMatchesWideNetworks(String name, Layer model, NDArray x1, NDArray x2, int samples,
      long nngpSeed, long ntkSeed, double bias) {
    Kernel k = model.kernelFn().apply(x1, x2);
    NDArray second = x2 == null ? x1 : x2;
    MonteCarlo.Estimate nngp = MonteCarlo.nngp(model, x1, second, samples, nngpSeed);
    KernelTesting.assertMatchesMonteCarlo(name + " NNGP", k.nngp().toDoubleArray(), nngp, bias, 0.15);
    MonteCarlo.Estimate ntk = MonteCarlo.ntk(model, x1, second, samples, ntkSeed);
    KernelTesting.assertMatchesMonteCarlo(name + " NTK", k.ntk().toDoubleArray(), ntk, bias, 0.15);
    return new Checked(k, nngp, ntk);
  }

  /** {@link #assertMatchesWideNetworks} with {@code x2} given, then absent (x1 with itself). */
  static void assertMatchesWideNetworksWithAndWithoutX2(String name, Layer model, NDArray x1, NDArray x2,
      int samples, long nngpSeed, long ntkSeed, double bias) {
    for (NDArray other : new NDArray[] {x2, null}) {
      assertMatchesWideNetworks(name + (other == null ? " (x1 with itself)" : ""), model, x1, other, samples,
          nngpSeed, ntkSeed, bias);
    }
  }
}
