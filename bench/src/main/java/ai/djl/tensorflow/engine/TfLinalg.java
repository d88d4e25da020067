package ai.djl.tensorflow.engine;

import ai.djl.ndarray.NDArray;

/**
 * TensorFlow's linalg ops through DJL's engine (whose op executor is package-private), for the
 * prediction benchmark's comparison with OpenBLAS ({@code dev.ntk.bench.PredictBench}).
 */
public final class TfLinalg {
  private TfLinalg() {}

  /** {@code Cholesky}: the lower factor of a symmetric positive definite matrix. */
  public static NDArray cholesky(NDArray a) {
    return manager(a).opExecutor("Cholesky").addInput(a).buildSingletonOrThrow();
  }

  /** {@code MatrixTriangularSolve} of the lower triangular {@code l} ({@code adjoint}: with {@code l^T}). */
  public static NDArray lowerSolve(NDArray l, NDArray b, boolean adjoint) {
    return manager(l).opExecutor("MatrixTriangularSolve").addInput(l).addInput(b)
        .addParam("lower", true).addParam("adjoint", adjoint).buildSingletonOrThrow();
  }

  /** {@code SelfAdjointEigV2}: eigenvalues and eigenvectors. */
  public static NDArray[] eigh(NDArray a) {
    return manager(a).opExecutor("SelfAdjointEigV2").addInput(a).addParam("compute_v", true).build(2);
  }

  private static TfNDManager manager(NDArray a) {
    return (TfNDManager) a.getManager();
  }
}
