package dev.ntk.kernels.predict;

import java.util.Locale;

/**
 * A loss of the train outputs, given to {@link GradientDescent} by its gradient in {@code f}.
 * Arrays are row-major {@code n x k} ({@code n} training inputs, {@code k} output columns).
 */
@FunctionalInterface
public interface Loss {
  /** {@code dL/df} at the train outputs {@code f} for the targets {@code y}, both {@code n x k}. */
  double[] gradient(double[] f, double[] y, int n, int k);

  /** {@code L = |f - y|^2 / (2 y.size)}, neural-tangents' MSE normalization: {@code (f - y) / (n k)}. */
  Loss MSE = (f, y, n, k) -> {
    double[] g = new double[f.length];
    double scale = 1.0 / ((double) n * k);
    for (int i = 0; i < g.length; i++) {
      g[i] = (f[i] - y[i]) * scale;
    }
    return g;
  };

  /**
   * Softmax cross-entropy {@code L = -(1/n) Σ_i Σ_c y_ic log softmax(f_i)_c}: {@code
   * (softmax(f) - y) / n} (rows of {@code y} summing to one).
   */
  Loss CROSS_ENTROPY = (f, y, n, k) -> {
    double[] g = new double[f.length];
    for (int i = 0; i < n; i++) {
      double max = Double.NEGATIVE_INFINITY;
      for (int c = 0; c < k; c++) {
        max = Math.max(max, f[i * k + c]);
      }
      double sum = 0;
      for (int c = 0; c < k; c++) {
        sum += Math.exp(f[i * k + c] - max);
      }
      double rowSum = 0;
      for (int c = 0; c < k; c++) {
        rowSum += y[i * k + c];
      }
      for (int c = 0; c < k; c++) {
        g[i * k + c] = (Math.exp(f[i * k + c] - max) / sum * rowSum - y[i * k + c]) / n;
      }
    }
    return g;
  };

  /** The built-in loss {@code mse} or {@code cross-entropy}. */
  static Loss of(String name) {
    return switch (name.trim().toLowerCase(Locale.ROOT)) {
      case "mse" -> MSE;
      case "cross-entropy", "cross_entropy", "crossentropy" -> CROSS_ENTROPY;
      default -> throw new IllegalArgumentException("unknown loss \"" + name + "\": expected mse or cross-entropy");
    };
  }
}
