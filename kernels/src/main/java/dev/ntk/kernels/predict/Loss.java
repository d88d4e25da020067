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
   * (softmax(f) - y) / n} (rows of {@code y} summing to one). Computed as {@code p_c (S - y_c) -
   * y_c (1 - p_c)} ({@code S} the row's sum) with {@code 1 - p_c} summed from the other classes'
   * exponentials, so that the gradient keeps its relative precision as the softmax saturates
   * ({@code 1 - p} far below the rounding of 1, which long training reaches: {@code 1 - p ~ 1/t}).
   */
  Loss CROSS_ENTROPY = (f, y, n, k) -> {
    double[] g = new double[f.length];
    double[] e = new double[k];
    for (int i = 0; i < n; i++) {
      int top = 0;
      for (int c = 1; c < k; c++) {
        if (f[i * k + c] > f[i * k + top]) {
          top = c;
        }
      }
      double max = f[i * k + top];
      double sum = 0;
      double rest = 0; // the exponentials but the largest: 1 - p_top = rest / sum, exactly
      double rowSum = 0;
      for (int c = 0; c < k; c++) {
        e[c] = Math.exp(f[i * k + c] - max);
        sum += e[c];
        rest += c == top ? 0 : e[c];
        rowSum += y[i * k + c];
      }
      for (int c = 0; c < k; c++) {
        double p = e[c] / sum;
        double q = c == top ? rest / sum : (sum - e[c]) / sum; // 1 - p; sum - e[c] >= 1 for c != top
        double yc = y[i * k + c];
        g[i * k + c] = (p * (rowSum - yc) - yc * q) / n;
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
