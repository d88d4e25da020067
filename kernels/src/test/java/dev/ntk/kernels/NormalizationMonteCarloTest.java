package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.ndarray.NDArray;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The analytic NNGP and NTK of networks with {@code LayerNorm} and {@code Dropout} against Monte
 * Carlo estimates from wide finite networks, fully connected and convolutional, with the bound of
 * {@link MonteCarloFixture}. A model with Dropout also checks that the test is
 * sharp: the kernel of the same network without dropout (its test mode) lies outside the bound.
 */
class NormalizationMonteCarloTest extends MonteCarloFixture {
  private static final int SAMPLES = 48;

  static Stream<Arguments> models() {
    int w = 512;
    int c = 256;
    return Stream.of(
        Arguments.of("dense, LayerNorm, relu", new long[] {4}, w, Stax.serial(Stax.dense(w, 1.5, 0.3),
            Stax.layerNorm(), Stax.relu(), Stax.dense(w, 1.2, 0.1), Stax.layerNorm(a(-1), 0.1), Stax.erf(),
            Stax.dense(w, 1.0, 0.1)), null),
        Arguments.of("dense, relu, Dropout", new long[] {4}, w, dropoutDense(w, "train"), dropoutDense(w, "test")),
        Arguments.of("conv, LayerNorm over channels and over the image, flatten", new long[] {3, 3, 2}, c,
            Stax.serial(Stax.conv(c, a(2, 2), null, "SAME", 1.4, 0.2), Stax.layerNorm(a(1, 2, 3), 1e-12),
                Stax.relu(), Stax.conv(c, a(2, 2), null, "VALID", 1.2, 0.1), Stax.layerNorm(), Stax.relu(),
                Stax.flatten(), Stax.dense(c, 1.0, 0.1)), null),
        Arguments.of("conv, Dropout, LayerNorm over one axis, global average pool", new long[] {3, 3, 2}, c,
            dropoutConv(c, "train"), dropoutConv(c, "test")));
  }

  private static Layer dropoutDense(int w, String mode) {
    return Stax.serial(Stax.dense(w, 1.4, 0.1), Stax.relu(), Stax.dropout(0.6, mode), Stax.dense(w, 1.2, 0.1),
        Stax.relu(), Stax.dense(w, 1.0, null));
  }

  private static Layer dropoutConv(int c, String mode) {
    return Stax.serial(Stax.conv(c, a(2, 2), null, "SAME", 1.4, 0.1), Stax.relu(), Stax.dropout(0.6, mode),
        Stax.conv(c, a(2, 2), null, "CIRCULAR", 1.2, 0.1), Stax.layerNorm(a(1, -1), 1e-12), Stax.relu(),
        Stax.globalAvgPool(), Stax.dense(c, 1.0, null));
  }

  /**
   * For x1 with itself, and for x2 given as the block between x1 and x2 of the kernel of both
   * batches together with itself: the finite Dropout draws one mask per example there, as
   * neural-tangents does for two different batches (it splits the key), and the analytic kernel
   * of x1 and x2 must be that block; {@link MonteCarlo} of x1 and x2 computes it so.
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("models")
  void analyticKernelsMatchWideFiniteNetworks(String name, long[] shape, int width, Layer model, Layer noDropout) {
    NDArray x1 = KernelTesting.randomImages(manager, 3, shape, 41);
    NDArray x2 = KernelTesting.randomImages(manager, 2, shape, 42);
    NDArray both = x1.concat(x2, 0);
    Checked checked = assertMatchesWideNetworks(name, model, both, null, SAMPLES, 7, 11, 2.0 / width);
    Kernel k = checked.kernel();
    if (noDropout != null) {
      Kernel without = noDropout.kernelFn().apply(both);
      KernelTesting.assertOutsideMonteCarlo(name + " NNGP without dropout", without.nngp().toDoubleArray(),
          checked.nngp(), 2.0 / width);
      KernelTesting.assertOutsideMonteCarlo(name + " NTK without dropout", without.ntk().toDoubleArray(),
          checked.ntk(), 2.0 / width);
    }
    if (noDropout != null) {
      // Monte Carlo of x1 against x2 is that block of both together, draw by draw (two draws here).
      double[][] direct = {MonteCarlo.nngp(model, x1, x2, 2, 13).mean(), MonteCarlo.ntk(model, x1, x2, 2, 13).mean()};
      double[][] joint = {MonteCarlo.nngp(model, both, both, 2, 13).mean(),
          MonteCarlo.ntk(model, both, both, 2, 13).mean()};
      for (int g = 0; g < 2; g++) {
        for (int i = 0; i < 3; i++) {
          for (int j = 0; j < 2; j++) {
            assertEquals(joint[g][i * 5 + 3 + j], direct[g][i * 2 + j], 0.0, "Monte Carlo of x1 and x2, " + g);
          }
        }
      }
    }
    Kernel between = model.kernelFn().apply(x1, x2);
    double[] all = k.nngp().toDoubleArray();
    double[] allNtk = k.ntk().toDoubleArray();
    double[] b = between.nngp().toDoubleArray();
    double[] bNtk = between.ntk().toDoubleArray();
    for (int i = 0; i < 3; i++) {
      for (int j = 0; j < 2; j++) {
        assertEquals(all[i * 5 + 3 + j], b[i * 2 + j], 1e-12 * Math.abs(all[i * 5 + 3 + j]) + 1e-15);
        assertEquals(allNtk[i * 5 + 3 + j], bNtk[i * 2 + j], 1e-12 * Math.abs(allNtk[i * 5 + 3 + j]) + 1e-15);
      }
    }
  }
}
