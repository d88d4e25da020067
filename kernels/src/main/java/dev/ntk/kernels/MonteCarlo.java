package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.SplittableRandom;

/**
 * Monte Carlo estimates of the NNGP from finite networks: the average over independently drawn
 * parameters of {@code f(x1) f(x2)^T / C}, where {@code f} is the network's output with {@code C}
 * i.i.d. channels. As the widths grow, the estimate converges to {@link KernelFn}'s NNGP.
 */
public final class MonteCarlo {
  private MonteCarlo() {}

  /**
   * The estimate and the standard error of each entry (the sample standard deviation of the
   * per-draw estimates divided by {@code sqrt(samples)}), both {@code (N1, N2)} in float64.
   */
  public record Estimate(double[] mean, double[] standardError, int rows, int cols, int samples) {}

  /** Estimates the NNGP between {@code x1} and {@code x2} from {@code samples} draws. */
  public static Estimate nngp(Layer model, NDArray x1, NDArray x2, int samples, long seed) {
    if (samples < 2) {
      throw new IllegalArgumentException("need at least 2 samples, got " + samples);
    }
    Shape perExample = x1.getShape().slice(1);
    model.check(perExample);
    int n1 = (int) x1.getShape().get(0);
    int n2 = (int) x2.getShape().get(0);
    double[] sum = new double[n1 * n2];
    double[] sumSq = new double[n1 * n2];
    SplittableRandom root = new SplittableRandom(seed);
    for (int s = 0; s < samples; s++) {
      SplittableRandom rng = root.split();
      try (NDManager scope = x1.getManager().newSubManager()) {
        // Results of operations land in their inputs' manager: borrow the inputs into the scope
        // so that every array of this draw is freed with it.
        x1.tempAttach(scope);
        if (x2 != x1) {
          x2.tempAttach(scope);
        }
        Params params = model.init(rng, java.util.List.of(Spec.input(perExample)), scope, x1.getDataType());
        NDArray f1 = model.apply(params, x1);
        NDArray f2 = model.apply(params, x2);
        long channels = f1.getShape().size() / n1;
        NDArray k = f1.reshape(n1, channels).matMul(f2.reshape(n2, channels).transpose())
            .div((double) channels);
        double[] v = Tensors.toDoubles(k);
        for (int i = 0; i < v.length; i++) {
          sum[i] += v[i];
          sumSq[i] += v[i] * v[i];
        }
      }
    }
    double[] mean = new double[sum.length];
    double[] se = new double[sum.length];
    for (int i = 0; i < sum.length; i++) {
      mean[i] = sum[i] / samples;
      double var = Math.max(0, (sumSq[i] - samples * mean[i] * mean[i]) / (samples - 1));
      se[i] = Math.sqrt(var / samples);
    }
    return new Estimate(mean, se, n1, n2, samples);
  }
}
