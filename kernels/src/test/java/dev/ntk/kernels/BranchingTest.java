package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Branching sums, products and concatenations against the kernels of their branches. */
class BranchingTest {
  private static NDManager manager;
  private static NDArray x1;
  private static NDArray x2;

  @BeforeAll
  static void setUp() {
    manager = Tensors.newManager();
    x1 = KernelTesting.randomInputs(manager, 4, 5, 21);
    x2 = KernelTesting.randomInputs(manager, 3, 5, 22);
  }

  @AfterAll
  static void tearDown() {
    manager.close();
  }

  private static Layer branchA() {
    return Stax.serial(Stax.dense(8, 1.4, 0.1), Stax.relu(), Stax.dense(6, 1.1, 0.2));
  }

  private static Layer branchB() {
    return Stax.serial(Stax.dense(8, 0.9, 0.3), Stax.erf(), Stax.dense(2, 1.3, null));
  }

  @Test
  void fanInSumAddsTheBranchKernels() {
    Kernel a = branchA().kernelFn().apply(x1, x2);
    Kernel b = Stax.serial(Stax.dense(8, 0.9, 0.3), Stax.erf(), Stax.dense(6, 1.3, null)).kernelFn().apply(x1, x2);
    Layer sum = Stax.serial(Stax.fanOut(2), Stax.parallel(branchA(),
        Stax.serial(Stax.dense(8, 0.9, 0.3), Stax.erf(), Stax.dense(6, 1.3, null))), Stax.fanInSum());
    Kernel k = sum.kernelFn().apply(x1, x2);
    assertArrayEquals(a.nngp().add(b.nngp()).toDoubleArray(), k.nngp().toDoubleArray(), 1e-14);
    assertArrayEquals(a.ntk().add(b.ntk()).toDoubleArray(), k.ntk().toDoubleArray(), 1e-14);
    assertTrue(k.isGaussian());
  }

  @Test
  void fanInProdMultipliesNngpsAndAppliesTheProductRuleToNtks() {
    Kernel a = branchA().kernelFn().apply(x1, x2);
    Kernel b = Stax.serial(Stax.dense(8, 0.9, 0.3), Stax.erf(), Stax.dense(6, 1.3, null)).kernelFn().apply(x1, x2);
    Layer prod = Stax.serial(Stax.fanOut(2), Stax.parallel(branchA(),
        Stax.serial(Stax.dense(8, 0.9, 0.3), Stax.erf(), Stax.dense(6, 1.3, null))), Stax.fanInProd());
    Kernel k = prod.kernelFn().apply(x1, x2);
    double[] na = a.nngp().toDoubleArray();
    double[] nb = b.nngp().toDoubleArray();
    double[] ta = a.ntk().toDoubleArray();
    double[] tb = b.ntk().toDoubleArray();
    for (int e = 0; e < na.length; e++) {
      assertEquals(na[e] * nb[e], k.nngp().toDoubleArray()[e], 1e-14);
      assertEquals(ta[e] * nb[e] + na[e] * tb[e], k.ntk().toDoubleArray()[e], 1e-13);
    }
    assertFalse(k.isGaussian());
    ModelException e = assertThrows(ModelException.class,
        () -> Stax.serial(prod, Stax.relu()).check(new Shape(5)));
    assertEquals("serial[1].Relu", e.path());
  }

  /**
   * FanInProd on images, per pixel and over pixel pairs: two one-pixel convolutions (W_std 1, no
   * bias) of a one-channel image each have the kernel {@code x_p x'_q}, so the product's is {@code
   * (x_p x'_q)^2}: its mean over {@code p = q} after Flatten, its sum over all pairs after
   * GlobalSumPool; the NTK of each branch is its NNGP, so the product's is twice its NNGP.
   */
  @Test
  void fanInProdMultipliesPixelKernelsOnImages() {
    try (NDManager scope = manager.newSubManager()) {
      double[] v1 = {1, -2, 0.5, 3};
      double[] v2 = {2, 1, -1, 0.5, 1.5, -0.5, 2, 1};
      NDArray y1 = scope.create(v1, new Shape(1, 2, 2, 1));
      NDArray y2 = scope.create(v2, new Shape(2, 2, 2, 1));
      int[] one = {1, 1};
      Layer prod = Stax.serial(Stax.fanOut(2), Stax.parallel(Stax.conv(3, one, null, "SAME", 1.0, null),
          Stax.conv(3, one, null, "SAME", 1.0, null)), Stax.fanInProd());
      Kernel flat = Stax.serial(prod, Stax.flatten()).kernelFn().apply(y1, y2);
      Kernel sum = Stax.serial(prod, Stax.globalSumPool()).kernelFn().apply(y1, y2);
      for (int j = 0; j < 2; j++) {
        double mean = 0;
        double pairs = 0;
        for (int p = 0; p < 4; p++) {
          for (int q = 0; q < 4; q++) {
            double k = v1[p] * v2[4 * j + q];
            pairs += k * k;
            mean += p == q ? k * k / 4 : 0;
          }
        }
        assertEquals(mean, flat.nngp().getDouble(0, j), 1e-14);
        assertEquals(2 * mean, flat.ntk().getDouble(0, j), 1e-14);
        assertEquals(pairs, sum.nngp().getDouble(0, j), 1e-13);
        assertEquals(2 * pairs, sum.ntk().getDouble(0, j), 1e-13);
      }
      assertFalse(sum.isGaussian());
    }
  }

  @Test
  void fanInConcatWeighsBranchesByChannels() {
    Kernel a = branchA().kernelFn().apply(x1, x2);
    Kernel b = branchB().kernelFn().apply(x1, x2);
    Layer concat = Stax.serial(Stax.fanOut(2), Stax.parallel(branchA(), branchB()), Stax.fanInConcat());
    Kernel k = concat.kernelFn().apply(x1, x2);
    // 6 channels from A, 2 from B.
    NDArray expected = a.nngp().mul(6.0 / 8).add(b.nngp().mul(2.0 / 8));
    assertArrayEquals(expected.toDoubleArray(), k.nngp().toDoubleArray(), 1e-14);
    assertEquals(new Shape(4, 8), k.shape1());
    assertEquals(new Shape(8), concat.check(new Shape(5)).shape());
    assertThrows(ModelException.class, () -> Stax.serial(Stax.fanOut(2), Stax.fanInConcat(0)).check(new Shape(5)));
  }

  /** Two convolutional branches of one 1D input, 7 and 5 pixels long. */
  private static Layer spatialBranches() {
    return Stax.parallel(Stax.conv(6, new int[] {3}, null, "SAME", 1.3, 0.1),
        Stax.serial(Stax.conv(5, new int[] {2}, null, "SAME", 1.2, 0.0), Stax.relu(),
            Stax.conv(6, new int[] {3}, null, "VALID", 1.1, 0.2)));
  }

  private static Layer branch(int i, Layer readout) {
    Layer b = spatialBranches().children().get(i);
    return Stax.serial(b, readout);
  }

  /**
   * Along a spatial axis each branch's pixels keep their kernels: per pixel, a Flatten after the
   * concatenation averages the 7 + 5 pixels, so its kernel is {@code (7 K_A + 5 K_B) / 12} of the
   * branches' flattened kernels; over pixel pairs, a GlobalSumPool adds every pair, and pairs of
   * pixels from different branches add nothing (independent Gaussians).
   */
  @Test
  void fanInConcatAlongASpatialAxisPlacesTheBranchKernelsSideBySide() {
    try (NDManager scope = manager.newSubManager()) {
      NDArray y1 = KernelTesting.randomImages(scope, 3, new long[] {7, 2}, 31);
      NDArray y2 = KernelTesting.randomImages(scope, 2, new long[] {7, 2}, 32);
      for (int axis : new int[] {1, -2}) {
        Layer concat = Stax.serial(Stax.fanOut(2), spatialBranches(), Stax.fanInConcat(axis));
        assertEquals(new Shape(12, 6), concat.check(new Shape(7, 2)).shape());
        for (NDArray other : new NDArray[] {null, y2}) {
          Kernel flat = Stax.serial(concat, Stax.flatten()).kernelFn().apply(y1, other);
          Kernel a = branch(0, Stax.flatten()).kernelFn().apply(y1, other);
          Kernel b = branch(1, Stax.flatten()).kernelFn().apply(y1, other);
          Kernel sum = Stax.serial(concat, Stax.globalSumPool()).kernelFn().apply(y1, other);
          Kernel sa = branch(0, Stax.globalSumPool()).kernelFn().apply(y1, other);
          Kernel sb = branch(1, Stax.globalSumPool()).kernelFn().apply(y1, other);
          for (Get g : Get.values()) {
            NDArray expected = a.get(g).mul(7.0 / 12).add(b.get(g).mul(5.0 / 12));
            assertArrayEquals(expected.toDoubleArray(), flat.get(g).toDoubleArray(), 1e-13, g + " per pixel");
            assertArrayEquals(sa.get(g).add(sb.get(g)).toDoubleArray(), sum.get(g).toDoubleArray(), 1e-12,
                g + " over pixel pairs");
          }
          assertTrue(sum.isGaussian());
        }
      }
    }
  }

  /** On a 2D grid, along the second spatial axis: a hand-computed kernel of the input itself. */
  @Test
  void fanInConcatAlongTheSecondSpatialAxisOfImages() {
    try (NDManager scope = manager.newSubManager()) {
      double[] v = {1, 2, 3, -1, 0, 2, 1, 1, -2, 0, 1, 3}; // (1, 2, 3, 2): pixels of two channels
      NDArray x = scope.create(v, new Shape(1, 2, 3, 2));
      // Each branch a 1x1 convolution of W_std 1 without bias: its per-pixel kernel is x_p . x_p / 2.
      Layer concat = Stax.serial(Stax.fanOut(2), Stax.parallel(
          Stax.conv(4, new int[] {1, 1}, null, "SAME", 1.0, null),
          Stax.conv(4, new int[] {1, 1}, null, "SAME", 1.0, null)), Stax.fanInConcat(2));
      assertEquals(new Shape(2, 6, 4), concat.check(new Shape(2, 3, 2)).shape());
      double same = 0;
      double pairs = 0;
      for (int p = 0; p < 6; p++) {
        for (int q = 0; q < 6; q++) {
          double dot = (v[2 * p] * v[2 * q] + v[2 * p + 1] * v[2 * q + 1]) / 2;
          pairs += dot;
          same += p == q ? dot : 0;
        }
      }
      // Flatten: the mean of 12 per-pixel variances, each pixel twice. GlobalSumPool: twice the
      // sum over pixel pairs of one branch, the pairs across branches zero.
      assertEquals(same / 6, Stax.serial(concat, Stax.flatten()).kernelFn().apply(x).nngp().getDouble(0, 0),
          1e-14);
      assertEquals(2 * pairs, Stax.serial(concat, Stax.globalSumPool()).kernelFn().apply(x).nngp()
          .getDouble(0, 0), 1e-13);
    }
  }

  @Test
  void fanInConcatErrorsNameTheLayer() {
    Shape img = new Shape(7, 2);
    Layer branches = spatialBranches();
    String[][] cases = {
        {"0", "batch axis"}, {"3", "out of range"}, {"-4", "out of range"}};
    for (String[] c : cases) {
      ModelException e = assertThrows(ModelException.class, () -> Stax.serial(Stax.fanOut(2), branches,
          Stax.fanInConcat(Integer.parseInt(c[0]))).check(img));
      assertEquals("serial[2].FanInConcat", e.path());
      assertTrue(e.getMessage().contains(c[1]), e.getMessage());
    }
    ModelException grid = assertThrows(ModelException.class, () -> Stax.serial(Stax.fanOut(2), branches,
        Stax.fanInConcat(-1)).check(img));
    assertTrue(grid.getMessage().contains("pixel grid"), grid.getMessage());
    ModelException raw = assertThrows(ModelException.class, () -> Stax.serial(Stax.fanOut(2),
        Stax.parallel(Stax.identity(), Stax.conv(2, new int[] {1}, null, "SAME", 1.0, null)),
        Stax.fanInConcat(1)).check(img));
    assertEquals("serial[2].FanInConcat", raw.path());
    assertTrue(raw.getMessage().contains("Gaussian"), raw.getMessage());
    ModelException channels = assertThrows(ModelException.class, () -> Stax.serial(Stax.fanOut(2),
        Stax.parallel(Stax.conv(3, new int[] {1}, null, "SAME", 1.0, null),
            Stax.conv(2, new int[] {1}, null, "SAME", 1.0, null)), Stax.fanInConcat(1)).check(img));
    assertTrue(channels.getMessage().contains("except along axis 1"), channels.getMessage());
  }

  /** A residual block that keeps its width, as a repeated block must after its first application. */
  private static Layer block() {
    return Stax.serial(Stax.fanOut(2), Stax.parallel(Stax.identity(),
        Stax.serial(Stax.relu(), Stax.dense(8, 1.3, 0.1))), Stax.fanInSum());
  }

  /**
   * {@code repeat} is {@code serial} of copies: the same kernels (the same expressions, so exactly
   * the same numbers), the same parameters drawn in the same order, the same finite network, and
   * parameters named by application.
   */
  @Test
  void repeatIsSerialOfCopies() {
    Layer repeated = Stax.serial(Stax.dense(8, 1.2, 0.1), Stax.repeat(block(), 3), Stax.dense(1));
    Layer unrolled = Stax.serial(Stax.dense(8, 1.2, 0.1), Stax.serial(block(), block(), block()), Stax.dense(1));
    for (NDArray other : new NDArray[] {null, x2}) {
      Kernel a = repeated.kernelFn().apply(x1, other);
      Kernel b = unrolled.kernelFn().apply(x1, other);
      for (Get g : Get.values()) {
        assertArrayEquals(b.get(g).toDoubleArray(), a.get(g).toDoubleArray(), 0.0, g.key());
      }
    }
    try (NDManager scope = manager.newSubManager()) {
      Params p = repeated.init(5, new Shape(5), scope, DataType.FLOAT64);
      Params q = unrolled.init(5, new Shape(5), scope, DataType.FLOAT64);
      assertArrayEquals(unrolled.apply(q, x1).toDoubleArray(), repeated.apply(p, x1).toDoubleArray(), 0.0);
      Map<String, NDArray> named = Params.named(repeated, p);
      assertEquals(List.of("serial[0].Dense/W", "serial[0].Dense/b",
          "serial[1].repeat[0].serial[1].parallel[1].serial[1].Dense/W",
          "serial[1].repeat[0].serial[1].parallel[1].serial[1].Dense/b",
          "serial[1].repeat[1].serial[1].parallel[1].serial[1].Dense/W",
          "serial[1].repeat[1].serial[1].parallel[1].serial[1].Dense/b",
          "serial[1].repeat[2].serial[1].parallel[1].serial[1].Dense/W",
          "serial[1].repeat[2].serial[1].parallel[1].serial[1].Dense/b", "serial[2].Dense/W"),
          List.copyOf(named.keySet()));
    }
    // Zero applications: the identity, as in neural-tangents.
    Kernel none = Stax.serial(Stax.dense(8, 1.2, 0.1), Stax.repeat(block(), 0)).kernelFn().apply(x1, x2);
    assertArrayEquals(Stax.dense(8, 1.2, 0.1).kernelFn().apply(x1, x2).nngp().toDoubleArray(),
        none.nngp().toDoubleArray(), 0.0);
  }

  @Test
  void repeatIsWrittenOnceInAModelFile() {
    String json = "{\"serial\": [{\"Dense\": {\"out_dim\": 8, \"W_std\": 1.2, \"b_std\": 0.1}}, "
        + "{\"repeat\": {\"layer\": {\"serial\": [{\"Relu\": {}}, {\"Dense\": {\"out_dim\": 8}}]}, "
        + "\"n\": 4}}]}";
    Layer model = ModelSpec.parse(json);
    String canonical = ModelSpec.toJson(model);
    assertEquals("{\"serial\":[{\"Dense\":{\"out_dim\":8,\"W_std\":1.2,\"b_std\":0.1,"
        + "\"parameterization\":\"ntk\"}},{\"repeat\":{\"layer\":{\"serial\":[{\"Relu\":{}},"
        + "{\"Dense\":{\"out_dim\":8,\"W_std\":1.0,\"b_std\":null,\"parameterization\":\"ntk\"}}]},"
        + "\"n\":4}}]}", canonical);
    assertEquals(canonical, ModelSpec.toJson(ModelSpec.parse(canonical)));
    assertEquals(canonical, ModelSpec.toJson(Stax.serial(Stax.dense(8, 1.2, 0.1),
        Stax.repeat(Stax.serial(Stax.relu(), Stax.dense(8)), 4))));
  }

  @Test
  void repeatErrorsNameTheLayerAndTheApplication() {
    String[][] cases = {
        {"{\"repeat\": {\"layer\": {\"Relu\": {}}}}", "repeat", "missing required argument \"n\""},
        {"{\"repeat\": {\"n\": 2}}", "repeat", "missing required argument \"layer\""},
        {"{\"repeat\": {\"layer\": 5, \"n\": 2}}", "repeat", "argument \"layer\" must be a layer"},
        {"{\"serial\": [{\"repeat\": {\"layer\": {\"Relu\": {}}, \"n\": -1}}]}", "serial[0].repeat",
            "must be a non-negative integer"},
        {"{\"repeat\": {\"layer\": {\"Dense\": {\"width\": 3}}, \"n\": 2}}", "repeat[0].Dense",
            "unknown argument \"width\""},
        {"{\"repeat\": {\"layer\": {\"Relu\": {}}, \"n\": 2, \"m\": 1}}", "repeat",
            "unknown argument \"m\""}};
    for (String[] c : cases) {
      ModelException e = assertThrows(ModelException.class, () -> ModelSpec.parse(c[0]), c[0]);
      assertEquals(c[1], e.path(), c[0]);
      assertTrue(e.getMessage().contains(c[2]), e.getMessage());
    }
    // The third application of a VALID convolution finds its input too small: 6 -> 4 -> 2.
    ModelException e = assertThrows(ModelException.class, () -> Stax.serial(Stax.dense(2),
        Stax.repeat(Stax.conv(2, new int[] {3}, null, "VALID", 1.0, null), 3)).check(new Shape(6, 2)));
    assertEquals("serial[1].repeat[2].Conv", e.path());
  }

  @Test
  void residualBlockAddsTheSkipConnection() {
    Layer block = Stax.serial(Stax.dense(8, 1.0, 0.1), Stax.fanOut(2),
        Stax.parallel(Stax.serial(Stax.relu(), Stax.dense(8, 1.2, 0.0)), Stax.identity()), Stax.fanInSum());
    Kernel skip = Stax.dense(8, 1.0, 0.1).kernelFn().apply(x1, x2);
    Kernel branch = Stax.serial(Stax.dense(8, 1.0, 0.1), Stax.relu(), Stax.dense(8, 1.2, 0.0)).kernelFn().apply(x1, x2);
    Kernel k = block.kernelFn().apply(x1, x2);
    assertArrayEquals(skip.nngp().add(branch.nngp()).toDoubleArray(), k.nngp().toDoubleArray(), 1e-14);
    assertArrayEquals(skip.ntk().add(branch.ntk()).toDoubleArray(), k.ntk().toDoubleArray(), 1e-14);
  }

  @Test
  void wiringErrorsNameTheLayer() {
    ModelException e = assertThrows(ModelException.class,
        () -> Stax.serial(Stax.fanOut(3), Stax.parallel(Stax.identity(), Stax.identity())).check(new Shape(5)));
    assertEquals("serial[1].parallel", e.path());
    ModelException one = assertThrows(ModelException.class,
        () -> Stax.serial(Stax.dense(3), Stax.fanInSum()).check(new Shape(5)));
    assertEquals("serial[1].FanInSum", one.path());
    ModelException two = assertThrows(ModelException.class,
        () -> Stax.serial(Stax.fanOut(2), Stax.dense(3)).check(new Shape(5)));
    assertEquals("serial[1].Dense", two.path());
  }
}
