package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
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
