package dev.ntk.kernels.predict;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Kernel;
import dev.ntk.kernels.KernelFn;
import dev.ntk.kernels.Tensors;

/**
 * Predictions of infinite networks, in-process.
 *
 * <pre>{@code
 * Prediction p = Predict.gpInference(model.kernelFn(), xTrain, yTrain, xTest,
 *                                    Get.NTK, 1e-4, true);
 * }</pre>
 */
public final class Predict {
  private Predict() {}

  /**
   * Exact inference: the NNGP posterior ({@code Get.NNGP}) or the infinite ensemble trained to
   * convergence under MSE ({@code Get.NTK}); see {@link GpPosterior}. {@code yTrain} is {@code (N,)}
   * or {@code (N, K)}. The results live in {@code xTest}'s manager, in its dtype.
   */
  public static Prediction gpInference(KernelFn kernelFn, NDArray xTrain, NDArray yTrain,
      NDArray xTest, Get get, double diagReg, boolean computeCov) {
    int n = (int) xTrain.getShape().get(0);
    int m = (int) xTest.getShape().get(0);
    Shape yShape = yTrain.getShape();
    if (yShape.dimension() < 1 || yShape.get(0) != n) {
      throw new IllegalArgumentException("yTrain must have " + n + " rows (one per training input), got shape " + yShape);
    }
    int outputs = (int) (yShape.size() / n);
    NDManager out = xTest.getManager();
    // Kernels are intermediates: compute them in a scope that frees them on return.
    try (NDManager scope = out.newSubManager()) {
      for (NDArray x : new NDArray[] {xTrain, xTest}) {
        x.tempAttach(scope);
      }
      return gpInference(kernelFn, xTrain, yTrain, xTest, get, diagReg, computeCov, n, m, outputs, out);
    }
  }

  private static Prediction gpInference(KernelFn kernelFn, NDArray xTrain, NDArray yTrain,
      NDArray xTest, Get get, double diagReg, boolean computeCov, int n, int m, int outputs,
      NDManager out) {
    Shape yShape = yTrain.getShape();
    Kernel dd = kernelFn.apply(xTrain);
    Kernel td = kernelFn.apply(xTest, xTrain);
    GpPosterior.TrainSolve solve = GpPosterior.factor(
        Tensors.toDoubles(dd.get(get)), n, Tensors.toDoubles(yTrain), outputs, diagReg);
    double[] mean = GpPosterior.mean(Tensors.toDoubles(td.get(get)), m, solve);
    Shape meanShape = new Shape(m).addAll(yShape.slice(1));
    NDArray meanArray = Tensors.create(out, mean, meanShape, xTest.getDataType());
    NDArray covArray = null;
    if (computeCov) {
      Kernel tt = kernelFn.apply(xTest);
      double[] cov = GpPosterior.covariance(get, solve, Tensors.toDoubles(dd.nngp()),
          Tensors.toDoubles(td.get(get)), Tensors.toDoubles(td.nngp()), Tensors.toDoubles(tt.nngp()), m);
      covArray = Tensors.create(out, cov, new Shape(m, m), xTest.getDataType());
    }
    return new Prediction(meanArray, covArray);
  }
}
