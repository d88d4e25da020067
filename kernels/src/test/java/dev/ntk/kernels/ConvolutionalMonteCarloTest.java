package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The analytic NNGP and NTK of convolutional networks against Monte Carlo estimates from wide
 * finite networks of the same layers, with the bound of {@link MonteCarloFixture}: {@code ||K_mc -
 * K||_F <= 4 ||se||_F + 2 ||K||_F / width}, the standard errors measured from the draws, and the
 * bound itself under 15% of {@code ||K||_F} so that agreement means something. Every padding,
 * strides, 1D to 3D, both readouts, a pooling layer in the middle and a residual block.
 */
class ConvolutionalMonteCarloTest extends MonteCarloFixture {
  private static final int WIDTH = 256;
  private static final int SAMPLES = 64;

  static Stream<Arguments> models() {
    int w = WIDTH;
    return Stream.of(
        Arguments.of("1d SAME and VALID convs, flatten", new long[] {16, 2}, Stax.serial(
            Stax.conv(w, a(3), null, "SAME", 1.4, 0.1), Stax.relu(), Stax.conv(w, a(2), null, "VALID", 1.3, 0.1),
            Stax.erf(1.0, 1.0, 0.5), Stax.flatten(), Stax.dense(w, 1.0, 0.1))),
        Arguments.of("2d strided SAME, CIRCULAR, global average pool", new long[] {5, 4, 2}, Stax.serial(
            Stax.conv(w, a(3, 2), a(2, 1), "SAME", 1.5, 0.05), Stax.relu(),
            Stax.conv(w, a(3, 3), null, "CIRCULAR", 1.3, 0.1), Stax.relu(), Stax.globalAvgPool(),
            Stax.dense(w, 1.0, null))),
        Arguments.of("3d VALID conv, average pool in the middle, flatten", new long[] {3, 3, 4, 2}, Stax.serial(
            Stax.conv(w, a(2, 2, 2), null, "VALID", 1.4, 0.1), Stax.relu(),
            Stax.avgPool(a(1, 2, 2), null, "SAME"), Stax.conv(w, a(2, 1, 2), null, "SAME", 1.2, null),
            Stax.abs(), Stax.flatten(), Stax.dense(w, 1.0, 0.1))),
        Arguments.of("transposed convolutions, SAME and VALID, strided", new long[] {3, 3, 2}, Stax.serial(
            Stax.convTranspose(w, a(3, 2), a(2, 1), "SAME", 1.4, 0.1), Stax.relu(),
            Stax.convTranspose(w, a(2, 2), a(1, 2), "VALID", 1.2, 0.1), Stax.relu(), Stax.globalAvgPool(),
            Stax.dense(w, 1.0, null))),
        Arguments.of("transposed convolution, CIRCULAR, strided, average pool", new long[] {3, 3, 2}, Stax.serial(
            Stax.convTranspose(w, a(5, 3), a(2, 1), "CIRCULAR", 1.4, 0.1), Stax.relu(),
            Stax.avgPool(a(2, 2), null, "VALID"), Stax.flatten(), Stax.dense(w, 1.0, 0.1))),
        Arguments.of("residual block, sum pool, standard parameterization", new long[] {4, 4, 2}, Stax.serial(
            Stax.conv(w, a(3, 3), null, "SAME", 1.2, 0.1, Linear.Parameterization.STANDARD), Stax.fanOut(2),
            Stax.parallel(Stax.serial(Stax.relu(),
                Stax.conv(w, a(3, 3), null, "SAME", 1.2, 0.0, Linear.Parameterization.STANDARD)),
                Stax.identity()),
            Stax.fanInSum(), Stax.relu(), Stax.sumPool(a(2, 2), a(2, 2), "VALID"), Stax.flatten(),
            Stax.dense(w, 1.0, 0.1, Linear.Parameterization.STANDARD))));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("models")
  void analyticKernelsMatchWideFiniteNetworks(String name, long[] shape, Layer model) {
    NDArray x1 = KernelTesting.randomImages(manager, 3, shape, 101);
    NDArray x2 = KernelTesting.randomImages(manager, 2, shape, 102);
    assertMatchesWideNetworks(name, model, x1, x2, SAMPLES, 7, 11, 2.0 / WIDTH);
  }

  /** Models whose layers change the pixel grid by more than a window: checked with x2 given and absent. */
  static Stream<Arguments> gridModels() {
    int w = WIDTH;
    return Stream.of(
        Arguments.of("FanInConcat along a spatial axis, per pixel", new long[] {6, 2}, Stax.serial(
            Stax.fanOut(2), Stax.parallel(Stax.conv(w, a(3), null, "SAME", 1.4, 0.1),
                Stax.conv(w, a(2), null, "VALID", 1.2, 0.2)),
            Stax.fanInConcat(1), Stax.relu(), Stax.conv(w, a(3), null, "SAME", 1.3, 0.1), Stax.relu(),
            Stax.flatten(), Stax.dense(w, 1.0, 0.1))),
        Arguments.of("FanInConcat along the second spatial axis, pooled across the seam", new long[] {3, 3, 2},
            Stax.serial(Stax.fanOut(2), Stax.parallel(Stax.conv(w, a(2, 2), null, "SAME", 1.4, 0.1),
                Stax.conv(w, a(1, 2), null, "VALID", 1.2, null)),
            Stax.fanInConcat(-2), Stax.erf(), Stax.avgPool(a(2, 3), null, "VALID"), Stax.flatten(),
            Stax.dense(w, 1.0, 0.1))),
        Arguments.of("Dense per pixel, both parameterizations, global average pool", new long[] {3, 3, 2},
            Stax.serial(Stax.dense(w, 1.4, 0.1), Stax.relu(), Stax.conv(w, a(2, 2), null, "SAME", 1.3, 0.1),
                Stax.relu(), Stax.dense(w, 1.2, 0.2, Linear.Parameterization.STANDARD), Stax.erf(),
                Stax.globalAvgPool(), Stax.dense(w, 1.0, null))),
        Arguments.of("repeat of a convolutional block", new long[] {4, 2}, Stax.serial(
            Stax.conv(w, a(2), null, "SAME", 1.3, 0.1),
            Stax.repeat(Stax.serial(Stax.relu(), Stax.conv(w, a(3), null, "SAME", 1.3, 0.1)), 3),
            Stax.erf(), Stax.flatten(), Stax.dense(w, 1.0, 0.1))),
        Arguments.of("ImageResize linear up and down, nearest, Index", new long[] {3, 3, 2}, Stax.serial(
            Stax.conv(w, a(2, 2), null, "SAME", 1.3, 0.1), Stax.relu(),
            Stax.imageResize(a(-1, 5, 2, -1), "linear", true), Stax.conv(w, a(2, 2), null, "SAME", 1.2, 0.1),
            Stax.relu(), Stax.imageResize(a(-1, 3, 4, -1), "nearest", true), Stax.index("...", "::-1", "1:", ":"),
            Stax.flatten(), Stax.dense(w, 1.0, 0.1))),
        Arguments.of("Index removing an axis, global average pool", new long[] {3, 4, 2}, Stax.serial(
            Stax.conv(w, a(2, 2), null, "SAME", 1.3, 0.1), Stax.index(":", "-1"), Stax.relu(),
            Stax.conv(w, a(2), null, "SAME", 1.2, 0.1), Stax.relu(), Stax.globalAvgPool(), Stax.dense(w, 1.0, 0.1))),
        Arguments.of("FanInProd of convolutions, average pool", new long[] {3, 3, 2}, Stax.serial(
            Stax.fanOut(2), Stax.parallel(Stax.conv(w, a(2, 2), null, "SAME", 1.3, 0.1),
                Stax.conv(w, a(1, 2), null, "SAME", 1.1, 0.2)),
            Stax.fanInProd(), Stax.avgPool(a(2, 2), null, "VALID"), Stax.flatten(), Stax.dense(w, 1.0, 0.1))));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("gridModels")
  void analyticKernelsMatchWideFiniteNetworksWithAndWithoutX2(String name, long[] shape, Layer model) {
    NDArray x1 = KernelTesting.randomImages(manager, 3, shape, 201);
    NDArray x2 = KernelTesting.randomImages(manager, 2, shape, 202);
    assertMatchesWideNetworksWithAndWithoutX2(name, model, x1, x2, SAMPLES, 17, 19, 2.0 / WIDTH);
  }
}
