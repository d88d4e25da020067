package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import dev.ntk.kernels.predict.Predict;
import dev.ntk.kernels.predict.Prediction;
import org.junit.jupiter.api.Test;

/** The README's Java example, run as written, with what a user would check of its result. */
class ReadmeExampleTest {
  @Test
  void sineRegressionWithTheErfNetwork() {
    var model = Stax.serial(
        Stax.dense(2048, 1.5, 0.05), Stax.erf(),
        Stax.dense(2048, 1.5, 0.05), Stax.erf(),
        Stax.dense(1, 1.5, 0.05));
    try (NDManager m = Tensors.newManager()) {
      NDArray xTrain = Tensors.fromRows(m, new double[][] {{-2.0}, {0.5}, {2.5}}, DataType.FLOAT64);
      NDArray yTrain = Tensors.fromRows(m, new double[][] {{Math.sin(-2.0)}, {Math.sin(0.5)}, {Math.sin(2.5)}},
          DataType.FLOAT64);
      NDArray xTest = Tensors.fromRows(m, new double[][] {{-2.0}, {1.0}}, DataType.FLOAT64);

      Kernel k = model.kernelFn().apply(xTrain, xTest);
      assertArrayEquals(new long[] {3, 2}, k.ntk().getShape().getShape());
      Prediction p = Predict.gpInference(model.kernelFn(), xTrain, yTrain, xTest, Get.NTK, 1e-4, true);

      double[] mean = Tensors.toDoubles(p.mean());
      double[] cov = Tensors.toDoubles(p.cov());
      // At a training input the trained ensemble reproduces its target, with almost no variance.
      assertEquals(Math.sin(-2.0), mean[0], 1e-2);
      assertTrue(Math.abs(cov[0]) < 1e-2, "variance at a training point " + cov[0]);
      // Between training inputs the variance is positive.
      assertTrue(cov[3] > cov[0], "variance away from the data " + cov[3]);
    }
  }

  /** The README's empirical NTK line: one draw of the width-2048 network, close to the analytic NTK. */
  @Test
  void empiricalNtkOfOneDraw() {
    var model = Stax.serial(
        Stax.dense(2048, 1.5, 0.05), Stax.erf(),
        Stax.dense(2048, 1.5, 0.05), Stax.erf(),
        Stax.dense(1, 1.5, 0.05));
    try (NDManager m = Tensors.newManager()) {
      NDArray xTrain = Tensors.fromRows(m, new double[][] {{-2.0}, {0.5}, {2.5}}, DataType.FLOAT64);
      NDArray xTest = Tensors.fromRows(m, new double[][] {{-2.0}, {1.0}}, DataType.FLOAT64);
      Params params = model.init(0, new ai.djl.ndarray.types.Shape(1), m, DataType.FLOAT64);
      NDArray ntk = EmpiricalKernels.ntk(model, params, xTrain, xTest, EmpiricalKernels.Implementation.STRUCTURED,
          true);
      assertArrayEquals(new long[] {3, 2}, ntk.getShape().getShape());
      double[] analytic = model.kernelFn().apply(xTrain, xTest).ntk().toDoubleArray();
      // A width-2048 network's NTK is within a few percent of the limit.
      assertTrue(KernelTesting.relativeError(ntk.toDoubleArray(), analytic) < 0.1);
    }
  }
}
