package dev.ntk.kernels.predict;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Kernel;
import dev.ntk.kernels.KernelFn;
import dev.ntk.kernels.Layer;
import dev.ntk.kernels.Stax;
import dev.ntk.kernels.Tensors;
import java.util.Random;
import org.ejml.simple.SimpleMatrix;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** GP inference against a direct dense solve (explicit inverses, no Cholesky). */
class PredictTest {
  private static NDManager manager;
  private static final Layer MODEL = Stax.serial(
      Stax.dense(512, 1.5, 0.05), Stax.erf(), Stax.dense(512, 1.5, 0.05), Stax.erf(), Stax.dense(1, 1.5, 0.05));

  @BeforeAll
  static void setUp() {
    manager = Tensors.newManager();
  }

  @AfterAll
  static void tearDown() {
    manager.close();
  }

  private static NDArray random(int rows, int cols, long seed) {
    Random r = new Random(seed);
    double[] v = new double[rows * cols];
    for (int i = 0; i < v.length; i++) {
      v[i] = r.nextGaussian();
    }
    return Tensors.create(manager, v, new Shape(rows, cols), DataType.FLOAT64);
  }

  private static SimpleMatrix matrix(NDArray a) {
    Shape s = a.getShape();
    return new SimpleMatrix((int) s.get(0), (int) (s.size() / s.get(0)), true, Tensors.toDoubles(a));
  }

  private static SimpleMatrix regularized(SimpleMatrix k, double diagReg) {
    int n = k.getNumRows();
    return k.plus(SimpleMatrix.identity(n).scale(diagReg * k.trace() / n));
  }

  @Test
  void nngpPosteriorMatchesDirectSolve() {
    NDArray xTrain = random(12, 3, 1);
    NDArray yTrain = random(12, 2, 2);
    NDArray xTest = random(5, 3, 3);
    KernelFn kf = MODEL.kernelFn();
    Prediction p = Predict.gpInference(kf, xTrain, yTrain, xTest, Get.NNGP, 1e-3, true);
    SimpleMatrix kdd = regularized(matrix(kf.apply(xTrain).nngp()), 1e-3);
    SimpleMatrix ktd = matrix(kf.apply(xTest, xTrain).nngp());
    SimpleMatrix ktt = matrix(kf.apply(xTest).nngp());
    SimpleMatrix mean = ktd.mult(kdd.invert()).mult(matrix(yTrain));
    SimpleMatrix cov = ktt.minus(ktd.mult(kdd.invert()).mult(ktd.transpose()));
    assertArrayEquals(mean.getDDRM().data, Tensors.toDoubles(p.mean()), 1e-9);
    assertArrayEquals(cov.getDDRM().data, Tensors.toDoubles(p.cov()), 1e-9);
    assertEquals(new Shape(5, 2), p.mean().getShape());
  }

  @Test
  void ntkPosteriorMatchesTheInfiniteEnsembleFormula() {
    NDArray xTrain = random(10, 3, 4);
    NDArray yTrain = random(10, 1, 5).reshape(10);
    NDArray xTest = random(4, 3, 6);
    KernelFn kf = MODEL.kernelFn();
    Prediction p = Predict.gpInference(kf, xTrain, yTrain, xTest, Get.NTK, 1e-4, true);
    Kernel dd = kf.apply(xTrain);
    Kernel td = kf.apply(xTest, xTrain);
    SimpleMatrix thetaInv = regularized(matrix(dd.ntk()), 1e-4).invert();
    SimpleMatrix thetaTd = matrix(td.ntk());
    SimpleMatrix kTd = matrix(td.nngp());
    SimpleMatrix kDd = matrix(dd.nngp());
    SimpleMatrix kTt = matrix(kf.apply(xTest).nngp());
    SimpleMatrix y = new SimpleMatrix(10, 1, true, Tensors.toDoubles(yTrain));
    SimpleMatrix mean = thetaTd.mult(thetaInv).mult(y);
    SimpleMatrix cross = thetaTd.mult(thetaInv).mult(kTd.transpose());
    SimpleMatrix cov = kTt.plus(thetaTd.mult(thetaInv).mult(kDd).mult(thetaInv).mult(thetaTd.transpose()))
        .minus(cross).minus(cross.transpose());
    assertArrayEquals(mean.getDDRM().data, Tensors.toDoubles(p.mean()), 1e-8);
    assertArrayEquals(cov.getDDRM().data, Tensors.toDoubles(p.cov()), 1e-8);
    assertEquals(new Shape(4), p.mean().getShape());
  }

  @Test
  void meanOnlyAndFloat32() {
    NDArray xTrain = random(6, 2, 7).toType(DataType.FLOAT32, false);
    NDArray yTrain = random(6, 1, 8).toType(DataType.FLOAT32, false);
    NDArray xTest = random(3, 2, 9).toType(DataType.FLOAT32, false);
    Prediction p = Predict.gpInference(MODEL.kernelFn(), xTrain, yTrain, xTest, Get.NNGP, 1e-2, false);
    assertNull(p.cov());
    assertEquals(DataType.FLOAT32, p.mean().getDataType());
  }

  @Test
  void singularTrainKernelIsAClearError() {
    NDArray x = random(3, 2, 10);
    NDArray twice = x.concat(x, 0);
    NDArray y = random(6, 1, 11);
    var e = assertThrows(GpPosterior.NotPositiveDefiniteException.class,
        () -> Predict.gpInference(MODEL.kernelFn(), twice, y, x, Get.NNGP, 0.0, false));
    assertEquals(true, e.getMessage().contains("diag_reg"));
  }
}
