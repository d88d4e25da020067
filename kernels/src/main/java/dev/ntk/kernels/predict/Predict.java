package dev.ntk.kernels.predict;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Kernel;
import dev.ntk.kernels.KernelFn;
import dev.ntk.kernels.Tensors;
import dev.ntk.kernels.linalg.DenseMatrix;
import dev.ntk.kernels.linalg.Lapack;
import java.util.ArrayList;
import java.util.List;

/**
 * Predictions of infinite networks, in-process, after neural-tangents' {@code predict} module.
 * Everything is solved in float64 on {@link Lapack}; results take the dtype of the test inputs
 * (or of the kernels).
 *
 * <pre>{@code
 * Prediction p = Predict.gpInference(model.kernelFn(), xTrain, yTrain, xTest, Get.NTK, 1e-4, true);
 * List<Prediction> ps = Predict.gradientDescentMseEnsemble(model.kernelFn(), xTrain, yTrain, xTest,
 *     Get.NTK, new double[] {1, 10, Double.POSITIVE_INFINITY}, 1.0, 1e-4, true);
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
    Problem p = Problem.of(kernelFn, xTrain, yTrain, xTest, computeCov);
    try (NDManager scope = p.scope; Dense k = Dense.of(p, get, computeCov)) {
      Solve.Solution s = Solve.gpInference(k.takeTrainTrain(), k.testTrain, p.y, p.outputs, get, diagReg,
          k.covariance(), false);
      return new Prediction(p.result(s.means()[0], p.meanShape),
          computeCov ? p.result(s.covs()[0], new Shape(p.m, p.m)) : null);
    }
  }

  /**
   * The infinite ensemble of networks trained by continuous gradient descent on MSE, at each of
   * {@code times} ({@code +inf} allowed): mean and, with {@code computeCov}, covariance on the
   * test inputs; the NNGP for the top layer trained, the NTK for all layers. See {@link
   * MseDynamics}.
   */
  public static List<Prediction> gradientDescentMseEnsemble(KernelFn kernelFn, NDArray xTrain,
      NDArray yTrain, NDArray xTest, Get get, double[] times, double learningRate, double diagReg,
      boolean computeCov) {
    MseDynamics.checkTimes(times);
    Problem p = Problem.of(kernelFn, xTrain, yTrain, xTest, computeCov);
    try (NDManager scope = p.scope; Dense k = Dense.of(p, get, computeCov)) {
      Solve.Solution s = Solve.mse(k.takeTrainTrain(), k.testTrain, p.y, p.outputs, get, times, learningRate,
          diagReg, null, null, k.covariance(), false);
      List<Prediction> out = new ArrayList<>();
      for (int i = 0; i < times.length; i++) {
        out.add(new Prediction(p.result(s.means()[i], p.meanShape),
            computeCov ? p.result(s.covs()[i], new Shape(p.m, p.m)) : null));
      }
      return out;
    }
  }

  /**
   * One network trained by continuous gradient descent on MSE from its initial outputs, in closed
   * form (neural-tangents' {@code gradient_descent_mse}), at each of {@code times}.
   *
   * @param ntkTrainTrain {@code (N, N)}
   * @param yTrain {@code (N,)} or {@code (N, K)}
   * @param ntkTestTrain {@code (M, N)}, or null for train outputs only
   * @param fxTrain0 initial train outputs, the shape of {@code yTrain}, or null for zeros
   * @param fxTest0 initial test outputs {@code (M,) + yTrain.shape[1:]}, or null for zeros
   */
  public static List<TrainedOutputs> gradientDescentMse(NDArray ntkTrainTrain, NDArray yTrain,
      NDArray ntkTestTrain, NDArray fxTrain0, NDArray fxTest0, double[] times, double learningRate,
      double diagReg) {
    MseDynamics.checkTimes(times);
    Outputs o = Outputs.of(ntkTrainTrain, yTrain, ntkTestTrain, fxTrain0, fxTest0);
    try (DenseMatrix td = ntkTestTrain == null ? null : DenseMatrix.of(o.m, o.n, o.td)) {
      Solve.Solution s = Solve.mse(dense(ntkTrainTrain), td, o.y, o.k, Get.NTK, times, learningRate, diagReg,
          o.fTrain0, o.fTest0, null, true);
      List<TrainedOutputs> out = new ArrayList<>();
      for (int i = 0; i < times.length; i++) {
        out.add(o.result(times[i], s.trains()[i], s.means()[i]));
      }
      return out;
    }
  }

  /**
   * One network trained by continuous gradient descent on any {@code loss}, by ODE in function
   * space (neural-tangents' {@code gradient_descent}); see {@link GradientDescent}. Arguments as
   * in {@link #gradientDescentMse}; {@code mass > 0} adds momentum. MSE is solved in closed form
   * (no regularizer), any other loss by ODE within {@link GradientDescent#DEFAULT_MAX_STEPS}.
   */
  public static List<TrainedOutputs> gradientDescent(Loss loss, NDArray ntkTrainTrain, NDArray yTrain,
      NDArray ntkTestTrain, NDArray fxTrain0, NDArray fxTest0, double[] times, double learningRate,
      double mass) {
    return gradientDescent(loss, ntkTrainTrain, yTrain, ntkTestTrain, fxTrain0, fxTest0, times, learningRate,
        mass, GradientDescent.DEFAULT_MAX_STEPS);
  }

  /**
   * {@link #gradientDescent(Loss, NDArray, NDArray, NDArray, NDArray, NDArray, double[], double,
   * double)} within {@code maxSteps} solver steps: beyond them a {@link
   * GradientDescent.LimitException} names the time reached.
   */
  public static List<TrainedOutputs> gradientDescent(Loss loss, NDArray ntkTrainTrain, NDArray yTrain,
      NDArray ntkTestTrain, NDArray fxTrain0, NDArray fxTest0, double[] times, double learningRate,
      double mass, long maxSteps) {
    Outputs o = Outputs.of(ntkTrainTrain, yTrain, ntkTestTrain, fxTrain0, fxTest0);
    try (DenseMatrix dd = dense(ntkTrainTrain); DenseMatrix td = DenseMatrix.of(o.m, o.n, o.td)) {
      List<TrainedOutputs> out = new ArrayList<>();
      for (GradientDescent.Outputs g : GradientDescent.integrate(loss, dd, td, o.y, o.k, learningRate,
          mass, o.fTrain0, o.fTest0, times, 1e-10, maxSteps)) {
        out.add(o.result(g.t(), g.train(), g.test()));
      }
      return out;
    }
  }

  /**
   * The largest learning rate for which discrete gradient descent (heavy ball with {@code
   * momentum} in [0, 1)) on MSE {@code |f - y|^2 / (2 N K)} converges: {@code 2 (1 + momentum) N K /
   * λ_max(Θ_dd)}.
   */
  public static double maxLearningRate(NDArray ntkTrainTrain, int outputs, double momentum) {
    try (DenseMatrix theta = dense(ntkTrainTrain)) {
      return maxLearningRate(theta, outputs, momentum);
    }
  }

  /** {@link #maxLearningRate(NDArray, int, double)} on a native matrix (destroyed). */
  public static double maxLearningRate(DenseMatrix ntkTrainTrain, int outputs, double momentum) {
    if (!(momentum >= 0 && momentum < 1)) {
      throw new IllegalArgumentException("momentum must be in [0, 1), got " + momentum);
    }
    long n = ntkTrainTrain.rows();
    double[] w = Lapack.eigvalsh(ntkTrainTrain);
    double max = w[w.length - 1];
    if (!(max > 0)) {
      throw new IllegalArgumentException("the NTK's largest eigenvalue is " + max + ", not positive");
    }
    return 2 * (1 + momentum) * n * outputs / max;
  }

  /**
   * The marginal negative log-likelihood of {@code yTrain} ({@code (N,)} or {@code (N, K)}) under
   * the GP with covariance {@code kTrainTrain + r I}; see {@link GpPosterior#nll}.
   */
  public static double nll(NDArray kTrainTrain, NDArray yTrain, double diagReg) {
    return nll(kTrainTrain, yTrain, diagReg, "");
  }

  /** {@link #nll(NDArray, NDArray, double)}, naming the kernel ({@code nngp}, {@code ntk}) in errors. */
  public static double nll(NDArray kTrainTrain, NDArray yTrain, double diagReg, String kernel) {
    double[] y = Tensors.toDoubles(yTrain);
    int n = (int) kTrainTrain.getShape().get(0);
    checkRows(yTrain, n);
    return Solve.nll(dense(kTrainTrain), y, y.length / n, diagReg, kernel);
  }

  /** A square kernel as a float64 native matrix. */
  static DenseMatrix dense(NDArray k) {
    Shape s = k.getShape();
    if (s.dimension() != 2) {
      throw new IllegalArgumentException("expected a 2-D kernel, got shape " + s);
    }
    return DenseMatrix.of(s.get(0), s.get(1), Tensors.toDoubles(k));
  }

  private static void checkRows(NDArray y, long n) {
    Shape s = y.getShape();
    if (s.dimension() < 1 || s.dimension() > 2 || s.get(0) != n) {
      throw new IllegalArgumentException("targets must have shape (" + n + ",) or (" + n
          + ", K), one row per training input, got " + s);
    }
  }

  /** The kernels and targets of a prediction from inputs. */
  private static final class Problem {
    final NDManager scope;
    final Kernel dd;
    final Kernel td;
    final Kernel tt;
    final double[] y;
    final int m;
    final int outputs;
    final Shape meanShape;
    final NDManager out;
    final DataType dtype;

    private Problem(NDManager scope, Kernel dd, Kernel td, Kernel tt, double[] y, int m, int outputs,
        Shape meanShape, NDManager out, DataType dtype) {
      this.scope = scope;
      this.dd = dd;
      this.td = td;
      this.tt = tt;
      this.y = y;
      this.m = m;
      this.outputs = outputs;
      this.meanShape = meanShape;
      this.out = out;
      this.dtype = dtype;
    }

    static Problem of(KernelFn kernelFn, NDArray xTrain, NDArray yTrain, NDArray xTest, boolean computeCov) {
      int n = (int) xTrain.getShape().get(0);
      int m = (int) xTest.getShape().get(0);
      checkRows(yTrain, n);
      int outputs = (int) (yTrain.getShape().size() / n);
      NDManager out = xTest.getManager();
      // Kernels are intermediates: computed in a scope that the caller closes.
      NDManager scope = out.newSubManager();
      for (NDArray x : new NDArray[] {xTrain, xTest}) {
        x.tempAttach(scope);
      }
      Kernel dd = kernelFn.apply(xTrain);
      Kernel td = kernelFn.apply(xTest, xTrain);
      Kernel tt = computeCov ? kernelFn.apply(xTest) : null;
      return new Problem(scope, dd, td, tt, Tensors.toDoubles(yTrain), m, outputs,
          new Shape(m).addAll(yTrain.getShape().slice(1)), out, xTest.getDataType());
    }

    NDArray result(double[] values, Shape shape) {
      return Tensors.create(out, finite(values), shape, dtype);
    }
  }

  /**
   * A problem's kernels as native matrices: the selected train-train and test-train kernels and,
   * with the covariance, the NNGP kernels it needs.
   */
  private static final class Dense implements AutoCloseable {
    private DenseMatrix trainTrain;
    final DenseMatrix testTrain;
    final DenseMatrix trainTrainNngp;
    final DenseMatrix testTrainNngp;
    final DenseMatrix testTestNngp;

    private Dense(DenseMatrix trainTrain, DenseMatrix testTrain, DenseMatrix trainTrainNngp,
        DenseMatrix testTrainNngp, DenseMatrix testTestNngp) {
      this.trainTrain = trainTrain;
      this.testTrain = testTrain;
      this.trainTrainNngp = trainTrainNngp;
      this.testTrainNngp = testTrainNngp;
      this.testTestNngp = testTestNngp;
    }

    static Dense of(Problem p, Get get, boolean computeCov) {
      boolean ntkCov = computeCov && get == Get.NTK;
      return new Dense(dense(p.dd.get(get)), DenseMatrix.of(p.m, p.dd.get(get).getShape().get(0),
          Tensors.toDoubles(p.td.get(get))), ntkCov ? dense(p.dd.nngp()) : null,
          ntkCov ? DenseMatrix.of(p.m, p.dd.get(get).getShape().get(0), Tensors.toDoubles(p.td.nngp())) : null,
          computeCov ? dense(p.tt.nngp()) : null);
    }

    /** The train-train kernel, which the solver consumes. */
    DenseMatrix takeTrainTrain() {
      DenseMatrix t = trainTrain;
      trainTrain = null;
      return t;
    }

    Solve.CovarianceKernels covariance() {
      return testTestNngp == null ? null : new Solve.CovarianceKernels(trainTrainNngp,
          testTrainNngp == null ? testTrain : testTrainNngp, testTestNngp);
    }

    @Override
    public void close() {
      for (DenseMatrix d : new DenseMatrix[] {trainTrain, testTrain, trainTrainNngp, testTrainNngp, testTestNngp}) {
        if (d != null) {
          d.close();
        }
      }
    }
  }

  /** The kernels, targets and initial outputs of a single trained network. */
  private static final class Outputs {
    final int n;
    final int m;
    final int k;
    final double[] y;
    final double[] td;
    final double[] fTrain0;
    final double[] fTest0;
    final Shape trainShape;
    final Shape testShape;
    final NDManager manager;
    final DataType dtype;

    private Outputs(NDArray dd, NDArray yTrain, NDArray tdArray, NDArray fxTrain0, NDArray fxTest0) {
      Shape s = dd.getShape();
      if (s.dimension() != 2 || s.get(0) != s.get(1)) {
        throw new IllegalArgumentException("the train-train kernel must be square, got shape " + s);
      }
      n = (int) s.get(0);
      checkRows(yTrain, n);
      m = tdArray == null ? 0 : (int) tdArray.getShape().get(0);
      if (tdArray != null && !tdArray.getShape().equals(new Shape(m, n))) {
        throw new IllegalArgumentException("the test-train kernel must have shape (M, " + n + "), got "
            + tdArray.getShape());
      }
      k = (int) (yTrain.getShape().size() / n);
      y = Tensors.toDoubles(yTrain);
      td = tdArray == null ? new double[0] : Tensors.toDoubles(tdArray);
      trainShape = yTrain.getShape();
      testShape = new Shape(m).addAll(yTrain.getShape().slice(1));
      fTrain0 = initial("fx_train_0", fxTrain0, trainShape);
      fTest0 = initial("fx_test_0", fxTest0, testShape);
      manager = dd.getManager();
      dtype = dd.getDataType();
    }

    static Outputs of(NDArray dd, NDArray y, NDArray td, NDArray fxTrain0, NDArray fxTest0) {
      return new Outputs(dd, y, td, fxTrain0, fxTest0);
    }

    private static double[] initial(String name, NDArray a, Shape expected) {
      if (a == null) {
        return null;
      }
      if (!a.getShape().equals(expected)) {
        throw new IllegalArgumentException(name + " must have shape " + expected + ", got " + a.getShape());
      }
      return Tensors.toDoubles(a);
    }

    TrainedOutputs result(double t, double[] train, double[] test) {
      return new TrainedOutputs(t, Tensors.create(manager, finite(train), trainShape, dtype),
          Tensors.create(manager, finite(test), testShape, dtype));
    }
  }

  /** Fails rather than let a NaN or infinity reach an output. */
  static double[] finite(double[] values) {
    for (int i = 0; i < values.length; i++) {
      if (!Double.isFinite(values[i])) {
        throw new ArithmeticException("non-finite prediction " + values[i] + " at flat index " + i
            + ": the kernels or targets hold NaN or infinity, or the solve overflowed");
      }
    }
    return values;
  }
}
