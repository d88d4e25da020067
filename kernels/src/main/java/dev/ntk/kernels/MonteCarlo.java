package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Monte Carlo estimates of the NNGP and the NTK from finite networks: the average over
 * independently drawn parameters of {@code f(x1) f(x2)^T / C} ({@link #nngp}) or of the exact
 * empirical NTK {@code J(x1) J(x2)^T / C} ({@link #ntk}, by {@link EmpiricalKernels}' structured
 * derivatives), where {@code f} is the network's output with {@code C} i.i.d. channels and {@code
 * J} its Jacobian with respect to every parameter array. As
 * the widths grow, the estimates converge to {@link KernelFn}'s kernels. A network with {@code
 * Dropout} in train mode is run on x1 and a given x2 together ({@link EmpiricalKernels}), so that
 * each example meets a mask of its own (neural-tangents splits the random key for x2).
 */
public final class MonteCarlo {
  private MonteCarlo() {}

  /**
   * The estimate and the standard error of each entry (the sample standard deviation of the
   * per-draw estimates divided by {@code sqrt(samples)}), both {@code (N1, N2)} in float64.
   */
  public record Estimate(double[] mean, double[] standardError, int rows, int cols, int samples) {}

  /**
   * The output channels whose exact empirical NTK each draw of {@link #ntk} averages, unless told
   * otherwise. Each channel costs one backward pass per input set; the channels of a finite
   * network are exchangeable, so any number gives an unbiased estimate, and since one channel's
   * NTK already concentrates as the widths grow (unlike its NNGP), more channels shrink little but
   * the small draw-to-draw noise of narrow networks.
   */
  public static final int NTK_CHANNELS = 4;

  /** Estimates the NNGP between {@code x1} and {@code x2} from {@code samples} draws. */
  public static Estimate nngp(Layer model, NDArray x1, NDArray x2, int samples, long seed) {
    return nngp(model, x1, x2, new int[] {samples}, seed).get(0);
  }

  /**
   * The NNGP estimates after each of an increasing list of sample counts, from one sequence of
   * {@code samples[samples.length - 1]} draws: the estimate for {@code samples[k]} averages the
   * first {@code samples[k]} draws, and so equals {@link #nngp(Layer, NDArray, NDArray, int,
   * long)} with that count and seed (neural-tangents' {@code monte_carlo_kernel_fn} with a list
   * of {@code n_samples}, whose generator yields the kernel after each count).
   *
   * <pre>{@code
   * List<Estimate> curve = MonteCarlo.nngp(model, x, x, new int[] {4, 16, 64}, 0);
   * double[] k64 = curve.get(2).mean();   // also MonteCarlo.nngp(model, x, x, 64, 0).mean()
   * }</pre>
   */
  public static List<Estimate> nngp(Layer model, NDArray x1, NDArray x2, int[] samples, long seed) {
    return estimates(model, x1, x2, samples, seed, MonteCarlo::nngpDraw);
  }

  /**
   * One draw's {@code f(x1) f(x2)^T / C}, by {@link EmpiricalKernels#nngp} (which runs a network
   * that draws dropout masks on x1 and a given x2 together, as neural-tangents splits its key).
   */
  private static double[] nngpDraw(Layer model, Params params, SplittableRandom rng, NDManager scope,
      NDArray in1, NDArray in2) {
    return Tensors.toDoubles(EmpiricalKernels.nngp(model, params, in1, in2, true));
  }

  /**
   * Estimates the NTK between {@code x1} and {@code x2} from {@code samples} parameter draws, each
   * the exact empirical NTK of its first {@link #NTK_CHANNELS} output channels: {@link #ntk(Layer,
   * NDArray, NDArray, int, int, long)}.
   */
  public static Estimate ntk(Layer model, NDArray x1, NDArray x2, int samples, long seed) {
    return ntk(model, x1, x2, samples, NTK_CHANNELS, seed);
  }

  /**
   * Estimates the NTK between {@code x1} and {@code x2}: for each of {@code samples} parameter
   * draws {@code theta}, the exact empirical NTK {@code J(x1) J(x2)^T / C} of the network's first
   * {@code channels} output channels ({@link EmpiricalKernels#ntkOfChannels}, structured
   * derivatives), {@code J} its Jacobian with respect to every parameter array as {@link
   * Layer#init} stores it (in the standard parameterization the raw {@code W ~ N(0, W_std^2 /
   * fan_in)}, as in that parameterization's NTK). The average over draws converges to the NTK of
   * the finite networks, and as the widths grow to {@link KernelFn}'s NTK; the standard error is
   * measured over the per-draw kernels, computed in the inputs' dtype.
   */
  public static Estimate ntk(Layer model, NDArray x1, NDArray x2, int samples, int channels, long seed) {
    return ntk(model, x1, x2, new int[] {samples}, channels, seed).get(0);
  }

  /**
   * The NTK estimates after each of an increasing list of sample counts, from one sequence of
   * draws, each with {@code channels} output channels: as {@link #nngp(Layer, NDArray, NDArray,
   * int[], long)} for the NNGP.
   */
  public static List<Estimate> ntk(Layer model, NDArray x1, NDArray x2, int[] samples, int channels, long seed) {
    if (channels < 1) {
      throw new IllegalArgumentException("need at least 1 output channel per draw, got " + channels);
    }
    return estimates(model, x1, x2, samples, seed, ntkDraw(channels));
  }

  /** One draw's exact empirical NTK of its first {@code channels} output channels. */
  private static PerDraw ntkDraw(int channels) {
    return (model, params, rng, scope, in1, in2) ->
        Tensors.toDoubles(EmpiricalKernels.ntkOfChannels(model, params, in1, in2, channels));
  }

  /** One draw's estimate of an {@code (N1, N2)} kernel, in C order. */
  @FunctionalInterface
  private interface PerDraw {
    double[] estimate(Layer model, Params params, SplittableRandom rng, NDManager scope, NDArray x1,
        NDArray x2);
  }

  private static List<Estimate> estimates(Layer model, NDArray x1, NDArray x2, int[] samples, long seed,
      PerDraw perDraw) {
    checkCounts(samples);
    return sums(model, x1, x2, 0, samples, seed, x1.getDataType(), perDraw).stream().map(Sums::estimate).toList();
  }

  /**
   * Checks a list of sample counts: at least one, each at least 2 (a standard error needs two
   * draws), strictly increasing.
   *
   * @throws IllegalArgumentException naming the first count that is not
   */
  public static void checkCounts(int[] samples) {
    if (samples.length == 0) {
      throw new IllegalArgumentException("need at least one sample count");
    }
    for (int k = 0; k < samples.length; k++) {
      if (samples[k] < 2) {
        throw new IllegalArgumentException("need at least 2 samples, got " + samples[k]);
      }
      if (k > 0 && samples[k] <= samples[k - 1]) {
        throw new IllegalArgumentException("sample counts must increase, got " + samples[k] + " after "
            + samples[k - 1]);
      }
    }
  }

  /**
   * The sums over draws {@code [from, to)} of {@code get}'s per-draw estimates ({@link #nngp}, or
   * {@link #ntk} with {@link #NTK_CHANNELS} channels per draw): the part of an estimate that one worker computes.
   * Draw {@code s} is the same whatever range holds it, so the {@link Sums#plus} of the sums of
   * consecutive ranges is the estimate of the whole (to rounding in the order of the sums).
   */
  public static Sums sums(Get get, Layer model, NDArray x1, NDArray x2, int from, int to, long seed) {
    return sums(get, model, x1, x2, from, new int[] {to}, seed).get(0);
  }

  /**
   * The sums over draws {@code [from, ends[k])} for each of the increasing {@code ends}, from one
   * pass over the draws {@code [from, ends[ends.length - 1])}: {@link #sums(Get, Layer, NDArray,
   * NDArray, int, int, long)} at several ends for the price of the last.
   */
  public static List<Sums> sums(Get get, Layer model, NDArray x1, NDArray x2, int from, int[] ends, long seed) {
    return sums(model, x1, x2, from, ends, seed, x1.getDataType(),
        get == Get.NNGP ? MonteCarlo::nngpDraw : ntkDraw(NTK_CHANNELS));
  }

  /**
   * Running sums of per-draw estimates of an {@code (N1, N2)} kernel over {@code draws} draws,
   * from which the estimate and its standard error follow; what workers add up.
   */
  public record Sums(int rows, int cols, long draws, double[] sum, double[] sumOfSquares)
      implements java.io.Serializable {
    /** The sums of both ranges of draws. */
    public Sums plus(Sums other) {
      if (other.rows != rows || other.cols != cols) {
        throw new IllegalArgumentException("sums of a " + rows + "x" + cols + " and a " + other.rows + "x"
            + other.cols + " kernel");
      }
      double[] s = sum.clone();
      double[] q = sumOfSquares.clone();
      for (int i = 0; i < s.length; i++) {
        s[i] += other.sum[i];
        q[i] += other.sumOfSquares[i];
      }
      return new Sums(rows, cols, draws + other.draws, s, q);
    }

    /** The mean and its standard error (at least 2 draws). */
    public Estimate estimate() {
      if (draws < 2) {
        throw new IllegalArgumentException("need at least 2 samples, got " + draws);
      }
      double[] mean = new double[sum.length];
      double[] se = new double[sum.length];
      for (int i = 0; i < sum.length; i++) {
        mean[i] = sum[i] / draws;
        double var = Math.max(0, (sumOfSquares[i] - draws * mean[i] * mean[i]) / (draws - 1));
        se[i] = Math.sqrt(var / draws);
      }
      return new Estimate(mean, se, rows, cols, Math.toIntExact(draws));
    }
  }

  private static List<Sums> sums(Layer model, NDArray x1, NDArray x2, int from, int[] ends, long seed,
      DataType dtype, PerDraw perDraw) {
    for (int k = 0; k < ends.length; k++) {
      int start = k == 0 ? from : ends[k - 1];
      if (start < 0 || ends[k] < start) {
        throw new IllegalArgumentException("draws [" + start + ", " + ends[k] + ") are not a range");
      }
    }
    Shape perExample = x1.getShape().slice(1);
    model.check(perExample);
    int n1 = (int) x1.getShape().get(0);
    int n2 = (int) x2.getShape().get(0);
    double[] sum = new double[n1 * n2];
    double[] sumSq = new double[n1 * n2];
    SplittableRandom root = new SplittableRandom(seed);
    for (int s = 0; s < from; s++) {
      root.split(); // draw s's generator is the s-th split, wherever the range starts
    }
    List<Sums> snapshots = new ArrayList<>();
    int next = 0;
    for (int s = from; next < ends.length; s++) {
      while (next < ends.length && ends[next] == s) {
        snapshots.add(new Sums(n1, n2, s - from, sum.clone(), sumSq.clone()));
        next++;
      }
      if (next == ends.length) {
        break;
      }
      SplittableRandom rng = root.split();
      try (NDManager scope = x1.getManager().newSubManager()) {
        // Results of operations land in their inputs' manager: borrow the inputs into the scope
        // so that every array of this draw is freed with it.
        x1.tempAttach(scope);
        if (x2 != x1) {
          x2.tempAttach(scope);
        }
        NDArray in1 = x1.getDataType() == dtype ? x1 : x1.toType(dtype, false);
        NDArray in2 = x2 == x1 ? in1 : x2.getDataType() == dtype ? x2 : x2.toType(dtype, false);
        Params params = model.init(rng, List.of(Spec.input(perExample)), scope, dtype);
        double[] v = perDraw.estimate(model, params, rng, scope, in1, in2);
        for (int i = 0; i < v.length; i++) {
          sum[i] += v[i];
          sumSq[i] += v[i] * v[i];
        }
      }
    }
    return snapshots;
  }
}
