package dev.ntk.kernels.predict;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
import java.util.List;
import java.util.Random;
import org.ejml.simple.SimpleMatrix;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The predict functions against direct dense computations (explicit inverses, matrix exponentials
 * by Taylor series, explicit Euler steps, EJML determinants) and against each other where theory
 * says they agree.
 */
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

  private static final double INF = Double.POSITIVE_INFINITY;

  /** {@code exp(a)} by scaling, Taylor series and squaring: no eigendecomposition. */
  private static SimpleMatrix expm(SimpleMatrix a) {
    double norm = a.normF();
    int squarings = Math.max(0, (int) Math.ceil(Math.log(norm / 0.25) / Math.log(2)));
    SimpleMatrix x = a.divide(Math.pow(2, squarings));
    SimpleMatrix term = SimpleMatrix.identity(a.getNumRows());
    SimpleMatrix sum = term.copy();
    for (int k = 1; k <= 25; k++) {
      term = term.mult(x).divide(k);
      sum = sum.plus(term);
    }
    for (int i = 0; i < squarings; i++) {
      sum = sum.mult(sum);
    }
    return sum;
  }

  private static NDArray array(SimpleMatrix m) {
    return Tensors.create(manager, m.getDDRM().data.clone(), new Shape(m.getNumRows(), m.getNumCols()),
        DataType.FLOAT64);
  }

  /** A small problem's kernels. */
  private record Small(NDArray xTrain, NDArray yTrain, NDArray xTest, Kernel dd, Kernel td, Kernel tt) {
    static Small of(int n, int m, int k, long seed) {
      NDArray xTrain = random(n, 3, seed);
      NDArray yTrain = random(n, k, seed + 1);
      NDArray xTest = random(m, 3, seed + 2);
      KernelFn kf = MODEL.kernelFn();
      return new Small(xTrain, yTrain, xTest, kf.apply(xTrain), kf.apply(xTest, xTrain), kf.apply(xTest));
    }
  }

  @Test
  void gradientDescentMseMatchesTheMatrixExponential() {
    Small p = Small.of(8, 5, 2, 30);
    NDArray f0 = random(8, 2, 33);
    NDArray g0 = random(5, 2, 34);
    double lr = 0.7;
    double[] times = {0, 3, 40, INF};
    List<TrainedOutputs> out = Predict.gradientDescentMse(p.dd().ntk(), p.yTrain(), p.td().ntk(), f0, g0,
        times, lr, 0.0);
    SimpleMatrix theta = matrix(p.dd().ntk());
    SimpleMatrix thetaTd = matrix(p.td().ntk());
    SimpleMatrix r0 = matrix(f0).minus(matrix(p.yTrain()));
    for (int i = 0; i < 3; i++) {
      double tau = times[i] * lr / 16;
      SimpleMatrix decay = expm(theta.scale(-tau)).minus(SimpleMatrix.identity(8));
      SimpleMatrix train = matrix(f0).plus(decay.mult(r0));
      SimpleMatrix test = matrix(g0).plus(thetaTd.mult(theta.invert()).mult(decay).mult(r0));
      assertArrayEquals(train.getDDRM().data, Tensors.toDoubles(out.get(i).train()), 1e-8, "t=" + times[i]);
      assertArrayEquals(test.getDDRM().data, Tensors.toDoubles(out.get(i).test()), 1e-7, "t=" + times[i]);
    }
    assertArrayEquals(Tensors.toDoubles(f0), Tensors.toDoubles(out.get(0).train()), 1e-12);
    assertArrayEquals(Tensors.toDoubles(p.yTrain()), Tensors.toDoubles(out.get(3).train()), 1e-9);
  }

  @Test
  void gradientDescentMseAtInfinityIsGpInferenceWithTheNtk() {
    Small p = Small.of(9, 4, 3, 40);
    double diagReg = 1e-3;
    TrainedOutputs inf = Predict.gradientDescentMse(p.dd().ntk(), p.yTrain(), p.td().ntk(), null, null,
        new double[] {INF}, 1.0, diagReg).get(0);
    Prediction gp = Predict.gpInference(MODEL.kernelFn(), p.xTrain(), p.yTrain(), p.xTest(), Get.NTK, diagReg, false);
    assertArrayEquals(Tensors.toDoubles(gp.mean()), Tensors.toDoubles(inf.test()), 1e-8);
  }

  @Test
  void ensembleMatchesTheDirectFormulasAtFiniteTimes() {
    Small p = Small.of(7, 4, 2, 50);
    double lr = 2.0;
    double diagReg = 1e-2;
    double t = 25;
    SimpleMatrix kdd = matrix(p.dd().nngp());
    SimpleMatrix ktd = matrix(p.td().nngp());
    SimpleMatrix ktt = matrix(p.tt().nngp());
    SimpleMatrix y = matrix(p.yTrain());
    SimpleMatrix eye = SimpleMatrix.identity(7);
    double tau = t * lr / 14;
    for (Get get : Get.values()) {
      SimpleMatrix g = regularized(matrix(p.dd().get(get)), diagReg);
      SimpleMatrix gtd = matrix(p.td().get(get));
      SimpleMatrix a = gtd.mult(g.invert()).mult(eye.minus(expm(g.scale(-tau))));  // G_td G^-1 (I - e^-Gτ)
      SimpleMatrix mean = a.mult(y);
      SimpleMatrix cov = get == Get.NNGP
          ? ktt.minus(ktd.mult(g.invert()).mult(eye.minus(expm(g.scale(-2 * tau)))).mult(ktd.transpose()))
          : ktt.minus(a.mult(ktd.transpose())).minus(ktd.mult(a.transpose())).plus(a.mult(kdd).mult(a.transpose()));
      Prediction e = Predict.gradientDescentMseEnsemble(MODEL.kernelFn(), p.xTrain(), p.yTrain(), p.xTest(),
          get, new double[] {t}, lr, diagReg, true).get(0);
      assertArrayEquals(mean.getDDRM().data, Tensors.toDoubles(e.mean()), 1e-8, get.key());
      assertArrayEquals(cov.getDDRM().data, Tensors.toDoubles(e.cov()), 1e-8, get.key());
    }
  }

  @Test
  void ensembleAtInfinityIsGpInferenceAndItsMeanIsTheNetworkFromZero() {
    Small p = Small.of(10, 5, 1, 60);
    double diagReg = 1e-3;
    for (Get get : Get.values()) {
      List<Prediction> e = Predict.gradientDescentMseEnsemble(MODEL.kernelFn(), p.xTrain(), p.yTrain(),
          p.xTest(), get, new double[] {5, INF}, 0.5, diagReg, true);
      Prediction gp = Predict.gpInference(MODEL.kernelFn(), p.xTrain(), p.yTrain(), p.xTest(), get, diagReg, true);
      assertArrayEquals(Tensors.toDoubles(gp.mean()), Tensors.toDoubles(e.get(1).mean()), 1e-8, get.key());
      assertArrayEquals(Tensors.toDoubles(gp.cov()), Tensors.toDoubles(e.get(1).cov()), 1e-8, get.key());
      if (get == Get.NTK) {
        TrainedOutputs single = Predict.gradientDescentMse(p.dd().ntk(), p.yTrain(), p.td().ntk(), null, null,
            new double[] {5}, 0.5, diagReg).get(0);
        assertArrayEquals(Tensors.toDoubles(single.test()), Tensors.toDoubles(e.get(0).mean()), 1e-10);
      }
    }
  }

  @Test
  void odeWithMseIsTheClosedForm() {
    Small p = Small.of(8, 3, 2, 70);
    NDArray f0 = random(8, 2, 71);
    double[] times = {0.5, 4, 30};
    List<TrainedOutputs> closed = Predict.gradientDescentMse(p.dd().ntk(), p.yTrain(), p.td().ntk(), f0, null,
        times, 0.8, 0.0);
    List<TrainedOutputs> ode = Predict.gradientDescent(Loss.MSE, p.dd().ntk(), p.yTrain(), p.td().ntk(), f0, null,
        times, 0.8, 0.0);
    for (int i = 0; i < times.length; i++) {
      assertArrayEquals(Tensors.toDoubles(closed.get(i).train()), Tensors.toDoubles(ode.get(i).train()), 1e-7);
      assertArrayEquals(Tensors.toDoubles(closed.get(i).test()), Tensors.toDoubles(ode.get(i).test()), 1e-7);
    }
  }

  @Test
  void momentumTendsToPlainGradientDescentAsTheMassVanishes() {
    Small p = Small.of(6, 3, 1, 80);
    double[] times = {3};
    double[] plain = Tensors.toDoubles(Predict.gradientDescent(Loss.MSE, p.dd().ntk(), p.yTrain(), p.td().ntk(),
        null, null, times, 1.0, 0.0).get(0).test());
    double previous = INF;
    for (double mass : new double[] {1e-1, 1e-2, 1e-3}) {
      double[] heavy = Tensors.toDoubles(Predict.gradientDescent(Loss.MSE, p.dd().ntk(), p.yTrain(),
          p.td().ntk(), null, null, times, 1.0, mass).get(0).test());
      double err = 0;
      for (int i = 0; i < plain.length; i++) {
        err = Math.max(err, Math.abs(heavy[i] - plain[i]));
      }
      assertTrue(err < previous / 3, "mass " + mass + ": error " + err + " after " + previous);
      previous = err;
    }
    assertTrue(previous > 0, "a mass changes the trajectory");
  }

  @Test
  void crossEntropyOdeMatchesSmallEulerSteps() {
    Small p = Small.of(6, 2, 3, 90);
    double[] labels = new double[18];
    for (int i = 0; i < 6; i++) {
      labels[i * 3 + i % 3] = 1;
    }
    NDArray y = Tensors.create(manager, labels, new Shape(6, 3), DataType.FLOAT64);
    double lr = 2;
    double t = 1.5;
    TrainedOutputs ode = Predict.gradientDescent(Loss.CROSS_ENTROPY, p.dd().ntk(), y, p.td().ntk(), null, null,
        new double[] {t}, lr, 0.0).get(0);
    SimpleMatrix theta = matrix(p.dd().ntk());
    SimpleMatrix thetaTd = matrix(p.td().ntk());
    SimpleMatrix f = new SimpleMatrix(6, 3);
    SimpleMatrix g = new SimpleMatrix(2, 3);
    int steps = 100_000;
    double h = t / steps;
    for (int s = 0; s < steps; s++) {            // explicit Euler: the direct definition
      SimpleMatrix grad = new SimpleMatrix(6, 3);
      for (int i = 0; i < 6; i++) {
        double z = 0;
        for (int c = 0; c < 3; c++) {
          z += Math.exp(f.get(i, c));
        }
        for (int c = 0; c < 3; c++) {
          grad.set(i, c, (Math.exp(f.get(i, c)) / z - labels[i * 3 + c]) / 6);
        }
      }
      g = g.minus(thetaTd.mult(grad).scale(lr * h));
      f = f.minus(theta.mult(grad).scale(lr * h));
    }
    assertArrayEquals(f.getDDRM().data, Tensors.toDoubles(ode.train()), 1e-4);
    assertArrayEquals(g.getDDRM().data, Tensors.toDoubles(ode.test()), 1e-4);
    double[] fo = Tensors.toDoubles(ode.train());
    for (int i = 0; i < 6; i++) {                // softmax gradients sum to zero over classes
      assertEquals(0.0, fo[i * 3] + fo[i * 3 + 1] + fo[i * 3 + 2], 1e-8);
    }
  }

  @Test
  void maxLearningRateSeparatesConvergenceFromDivergence() {
    Small p = Small.of(8, 1, 2, 100);
    double lr = Predict.maxLearningRate(p.dd().ntk(), 2, 0.0);
    SimpleMatrix theta = matrix(p.dd().ntk());
    SimpleMatrix y = matrix(p.yTrain());
    for (double factor : new double[] {0.98, 1.02}) {
      SimpleMatrix f = new SimpleMatrix(8, 2);
      for (int step = 0; step < 5000; step++) {  // discrete gradient descent on |f - y|^2 / (2 N K)
        f = f.minus(theta.mult(f.minus(y)).scale(factor * lr / 16));
      }
      double err = f.minus(y).normF();
      if (factor < 1) {
        assertTrue(err < y.normF(), "converges at " + factor + ": " + err);
      } else {
        assertTrue(err > 1e6, "diverges at " + factor + ": " + err);
      }
    }
    assertEquals(2 * lr, Predict.maxLearningRate(p.dd().ntk(), 2, 1.0 - 1e-12), 1e-6 * lr);
  }

  @Test
  void nllMatchesTheDenseGaussianDensity() {
    Small p = Small.of(9, 1, 2, 110);
    double diagReg = 1e-2;
    SimpleMatrix k = regularized(matrix(p.dd().nngp()), diagReg);
    SimpleMatrix y = matrix(p.yTrain());
    double expected = 0;
    for (int c = 0; c < 2; c++) {
      SimpleMatrix col = y.extractVector(false, c);
      expected += 0.5 * col.transpose().mult(k.invert()).mult(col).get(0)
          + 0.5 * Math.log(k.determinant()) + 0.5 * 9 * Math.log(2 * Math.PI);
    }
    assertEquals(expected, Predict.nll(p.dd().nngp(), p.yTrain(), diagReg), 1e-9 * Math.abs(expected));
  }

  @Test
  void badInputsAreClearErrors() {
    Small p = Small.of(5, 2, 1, 120);
    NDArray dd = p.dd().ntk();
    NDArray td = p.td().ntk();
    NDArray y = p.yTrain();
    var neg = assertThrows(IllegalArgumentException.class,
        () -> Predict.gradientDescentMse(dd, y, td, null, null, new double[] {-1}, 1, 0));
    assertTrue(neg.getMessage().contains("non-negative"), neg.getMessage());
    assertThrows(IllegalArgumentException.class,
        () -> Predict.gradientDescentMse(dd, y, td, null, null, new double[] {Double.NaN}, 1, 0));
    var shape = assertThrows(IllegalArgumentException.class,
        () -> Predict.gradientDescentMse(dd, y, td, random(4, 1, 1), null, new double[] {1}, 1, 0));
    assertTrue(shape.getMessage().contains("fx_train_0"), shape.getMessage());
    var rows = assertThrows(IllegalArgumentException.class,
        () -> Predict.gradientDescentMse(dd, random(4, 1, 2), td, null, null, new double[] {1}, 1, 0));
    assertTrue(rows.getMessage().contains("one row per training input"), rows.getMessage());
    var loss = assertThrows(IllegalArgumentException.class, () -> Loss.of("hinge"));
    assertTrue(loss.getMessage().contains("unknown loss"), loss.getMessage());
    assertThrows(IllegalArgumentException.class,       // an ODE's times are finite (MSE's closed form takes inf)
        () -> Predict.gradientDescent(Loss.CROSS_ENTROPY, dd, y, td, null, null, new double[] {INF}, 1, 0.1));
  }

  @Test
  void aSingularKernelNamesItsSmallestEigenvalue() {
    NDArray x = random(3, 2, 130);
    NDArray twice = x.concat(x, 0);
    NDArray k = MODEL.kernelFn().apply(twice).nngp();
    var e = assertThrows(GpPosterior.NotPositiveDefiniteException.class,
        () -> Predict.nll(k, random(6, 1, 131), 0.0));
    assertTrue(e.getMessage().contains("smallest eigenvalue"), e.getMessage());
    var found = java.util.regex.Pattern.compile("smallest eigenvalue ([^)]+)\\)").matcher(e.getMessage());
    assertTrue(found.find(), e.getMessage());
    double smallest = Double.parseDouble(found.group(1));
    double[] direct = new SimpleMatrix(6, 6, true, Tensors.toDoubles(k)).eig().getEigenvalues().stream()
        .mapToDouble(c -> c.real).sorted().toArray();
    assertEquals(direct[0], smallest, 1e-9 * Math.abs(direct[5]), "the duplicated rows make it singular");
    var inf = assertThrows(GpPosterior.NotPositiveDefiniteException.class,
        () -> Predict.gradientDescentMse(k, random(6, 1, 131), null, null, null, new double[] {INF}, 1, 0));
    assertTrue(inf.getMessage().contains("diag_reg"), inf.getMessage());
  }
}
