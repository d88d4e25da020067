package dev.ntk.transforms;

import dev.ntk.kernels.Get;
import dev.ntk.kernels.predict.GradientDescent;
import dev.ntk.kernels.predict.Loss;
import dev.ntk.kernels.predict.MseDynamics;
import java.io.Serializable;

/**
 * What {@link GpInference} predicts, in neural-tangents' terms.
 *
 * @param get the kernel: {@code NNGP} (Bayesian posterior, or top layer trained) or {@code NTK}
 * @param diagReg the relative diagonal regularizer of the train-train kernel
 * @param times training times, each {@code >= 0} or {@code +inf} (exact inference)
 * @param learningRate gradient descent's learning rate
 * @param loss {@code mse} (closed form) or {@code cross-entropy} (ODE)
 * @param mass momentum: the mass of the second-order ODE (0: none)
 * @param fxTrain0 initial train outputs ({@code .npy}), or null: with either initial output the
 *     prediction is one network's ({@code gradient_descent_mse}), else the ensemble's
 * @param fxTest0 initial test outputs ({@code .npy}), or null for zeros
 * @param nll whether to write the marginal negative log-likelihood of the targets
 * @param maxSteps the solver steps an ODE integration may take (mode {@code ODE}) before it stops
 *     with {@link GradientDescent.LimitException}, naming the time it reached
 */
public record PredictSettings(Get get, double diagReg, double[] times, double learningRate, String loss,
    double mass, String fxTrain0, String fxTest0, boolean nll, long maxSteps) implements Serializable {
  private static final long serialVersionUID = 2L;

  /** Settings with the default step limit, {@link GradientDescent#DEFAULT_MAX_STEPS}. */
  public PredictSettings(Get get, double diagReg, double[] times, double learningRate, String loss, double mass,
      String fxTrain0, String fxTest0, boolean nll) {
    this(get, diagReg, times, learningRate, loss, mass, fxTrain0, fxTest0, nll, GradientDescent.DEFAULT_MAX_STEPS);
  }

  /** Exact inference ({@code t = inf}) with {@code get}. */
  public static PredictSettings exact(Get get, double diagReg) {
    return new PredictSettings(get, diagReg, new double[] {Double.POSITIVE_INFINITY}, 1.0, "mse", 0, null,
        null, false);
  }

  /** Checks the settings; a problem is an {@link IllegalArgumentException} naming it. */
  public PredictSettings {
    if (!(diagReg >= 0) || Double.isInfinite(diagReg)) {
      throw new IllegalArgumentException("diag_reg must be a non-negative number, got " + diagReg);
    }
    MseDynamics.checkTimes(times);
    times = times.clone();
    if (!(learningRate > 0) || Double.isInfinite(learningRate)) {
      throw new IllegalArgumentException("learning_rate must be positive, got " + learningRate);
    }
    Loss.of(loss);
    if (!(mass >= 0) || Double.isInfinite(mass)) {
      throw new IllegalArgumentException("momentum must be a non-negative number, got " + mass);
    }
    if (maxSteps < 1) {
      throw new IllegalArgumentException("max_steps must be positive, got " + maxSteps);
    }
    if (mode(loss, mass) == Mode.ODE) {
      if (get != Get.NTK) {
        throw new IllegalArgumentException("gradient descent by ODE (loss " + loss + ", momentum " + mass
            + ") trains every layer: use the ntk kernel");
      }
      for (double t : times) {
        if (Double.isInfinite(t)) {
          throw new IllegalArgumentException("gradient descent by ODE (loss " + loss + ", momentum " + mass
              + ") needs finite times, got inf");
        }
      }
    }
  }

  /** How the prediction is computed. */
  public enum Mode {
    /** Cholesky of the train kernel: exact inference, every time infinite. */
    CHOLESKY,
    /** Eigendecomposition of the train kernel: MSE dynamics in closed form. */
    EIGEN,
    /** ODE integration in function space: any loss, momentum. */
    ODE
  }

  private static Mode mode(String loss, double mass) {
    return Loss.of(loss) != Loss.MSE || mass > 0 ? Mode.ODE : null;
  }

  public Mode mode() {
    Mode m = mode(loss, mass);
    if (m != null) {
      return m;
    }
    if (singleNetwork()) {
      return Mode.EIGEN;
    }
    for (double t : times) {
      if (!Double.isInfinite(t)) {
        return Mode.EIGEN;
      }
    }
    return Mode.CHOLESKY;
  }

  /** Whether the prediction is one network's from given initial outputs (no covariance). */
  public boolean singleNetwork() {
    return fxTrain0 != null || fxTest0 != null;
  }
}
