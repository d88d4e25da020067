package dev.ntk.kernels.predict;

import dev.ntk.kernels.linalg.DenseMatrix;
import dev.ntk.kernels.linalg.Lapack;
import java.io.Serializable;
import java.lang.management.ManagementFactory;
import java.util.Arrays;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Exact inference ({@code t = inf}) without the {@code n x n} kernel in memory: solves {@code (G_dd
 * + r I) alpha = y} for all {@code K} target columns at once by preconditioned conjugate gradients,
 * against a {@link KernelOperator} (a matrix in memory, or the kernel's tile files read a tile at a
 * time), and returns the solution as a {@link GpPosterior} that gives the mean ({@link
 * GpPosterior#ofSolution}). {@code r} is the relative regularizer of {@link GpPosterior}.
 *
 * <p>The {@code K} columns run their own conjugate-gradient recurrences (their own step lengths)
 * but share each product with the kernel, so one pass over the kernel serves all targets. A column
 * stops once its residual is below the tolerance. O'Leary's block CG, which shares one Krylov space
 * between the columns, needs a rank-revealing step when the columns become dependent; the targets
 * of a classifier (one-hot columns) are far from that, but the per-column form has no such failure.
 *
 * <p>The preconditioner is the Nyström approximation {@code F F^T + r I} of rank {@code rank},
 * with {@code F} from randomly pivoted Cholesky (Chen, Epperly, Tropp and Webber 2022, "Randomly
 * pivoted Cholesky: practical approximation of a kernel matrix with few entry evaluations"): pivots
 * are drawn in proportion to the diagonal of the part of the kernel not yet approximated, a block of
 * them at a time, and only their columns of the kernel are read ({@link KernelOperator#columns}).
 * It is applied by the Woodbury identity, {@code (F F^T + r I)^-1 v = (v - F (F^T F + r I)^-1 F^T v)
 * / r}, with OpenBLAS ({@link Lapack}): memory {@code n x rank}. The draws are seeded: a solve is
 * repeatable.
 *
 * <p>It stops when every column's relative residual {@code ||y - (G_dd + r I) alpha|| / ||y||}
 * (recomputed from {@code alpha} at the end, not the recurrence's) is at most the tolerance, or
 * fails with {@link NotConvergedException} after {@code maxIterations}. {@link #running} tells a
 * progress display where the solve running in this JVM stands.
 */
public final class ConjugateGradients {
  private ConjugateGradients() {}

  /** The pivots drawn together, whose columns are read in one call to {@link KernelOperator#columns}. */
  static final int PIVOT_BLOCK = 32;

  /** The seed of the pivots' draws. */
  private static final long SEED = 20221;

  /**
   * When to stop and how to precondition.
   *
   * @param tolerance the relative residual each target column must reach, in {@code (0, 1)}
   * @param maxIterations the iterations allowed before {@link NotConvergedException}
   * @param rank the rank of the Nyström preconditioner (0: none)
   */
  public record Settings(double tolerance, int maxIterations, int rank) implements Serializable {
    private static final long serialVersionUID = 1L;

    /** The default tolerance, {@code 1e-6}. */
    public static final double DEFAULT_TOLERANCE = 1e-6;
    /** The default iteration limit, {@code 10000}. */
    public static final int DEFAULT_MAX_ITERATIONS = 10_000;
    /** The default rank of the preconditioner, {@code 1024} (memory {@code 8 KiB} a train input). */
    public static final int DEFAULT_RANK = 1024;

    /** Checks the settings; a problem is an {@link IllegalArgumentException} naming it. */
    public Settings {
      if (!(tolerance > 0 && tolerance < 1)) {
        throw new IllegalArgumentException("cg_tol must be between 0 and 1, got " + tolerance);
      }
      if (maxIterations < 1) {
        throw new IllegalArgumentException("cg_max_iter must be positive, got " + maxIterations);
      }
      if (rank < 0) {
        throw new IllegalArgumentException("cg_rank must be non-negative, got " + rank);
      }
    }

    /** The defaults. */
    public static Settings defaults() {
      return new Settings(DEFAULT_TOLERANCE, DEFAULT_MAX_ITERATIONS, DEFAULT_RANK);
    }
  }

  /**
   * Where a solve stands: the iterations done, the largest relative residual of the target columns,
   * the tolerance, the iteration limit, the rank of the preconditioner it built and what the solve
   * cost: the seconds building the preconditioner, the mean seconds of one product with the kernel
   * (an iteration's main cost; NaN before the first), the process's CPU seconds in it (all threads:
   * the work, which a machine shared beyond its cores does not inflate as it does the wall time; NaN
   * where the JVM does not tell) and the operator's account of a product ({@link KernelOperator#cost},
   * empty when it gives none).
   */
  public record Status(int iterations, double residual, double tolerance, int maxIterations, int rank,
      double preconditionerSeconds, double productSeconds, double productCpuSeconds, String productCost) {
    /** Where a solve stands before its costs are known. */
    Status(int iterations, double residual, double tolerance, int maxIterations, int rank) {
      this(iterations, residual, tolerance, maxIterations, rank, Double.NaN, Double.NaN, Double.NaN, "");
    }

    /**
     * {@code 57 iterations, relative residual 8.1e-07 (tolerance 1e-06, preconditioner of rank 256);
     * preconditioner 1.2 s, 0.35 s a product with the kernel (...)}.
     */
    @Override
    public String toString() {
      String s = String.format(Locale.ROOT, "%d iterations, relative residual %.2g (tolerance %.2g, preconditioner of "
          + "rank %d)", iterations, residual, tolerance, rank);
      if (!Double.isNaN(productSeconds)) {
        s += String.format(Locale.ROOT, "; preconditioner %.1f s, %.3g s a product with the kernel (CPU %.3g s%s)",
            preconditionerSeconds, productSeconds, productCpuSeconds, productCost.isEmpty() ? "" : "; " + productCost);
      }
      return s;
    }
  }

  /** The solution and how it was reached. */
  public record Solved(GpPosterior posterior, Status status) {}

  private static final AtomicReference<Status> RUNNING = new AtomicReference<>();
  private static final AtomicReference<Status> LAST = new AtomicReference<>();

  /** The solve running in this JVM (the latest to report, if several), or null. */
  public static Status running() {
    return RUNNING.get();
  }

  /** The last solve that finished in this JVM, or null: a pipeline's solve, for the command to report. */
  public static Status last() {
    return LAST.get();
  }

  /** Thrown when the residual is still above the tolerance after the iterations allowed. */
  public static final class NotConvergedException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    NotConvergedException(String message) {
      super(message);
    }
  }

  /**
   * Solves {@code (G_dd + r I) alpha = y} ({@code y}: {@code n x outputs}, row-major), {@code r =
   * diagReg * trace(G_dd) / n}.
   *
   * @param kernel the kernel's name, for messages
   * @throws NotConvergedException when {@code settings.maxIterations()} do not reach the tolerance
   * @throws GpPosterior.NotPositiveDefiniteException when the regularized kernel has a direction of
   *     curvature that is not positive
   */
  public static Solved solve(KernelOperator g, double[] y, int outputs, double diagReg, Settings settings,
      String kernel) {
    int n = g.n();
    int k = outputs;
    if (y.length != (long) n * k) {
      throw new IllegalArgumentException("targets must be " + n + "x" + k + ", got " + y.length + " values");
    }
    double shift = Regularizer.shift(g.diagonal(), diagReg);
    double[] yNorm = norms(y, k);
    double[] x = new double[y.length];
    double[] r = y.clone();
    boolean[] active = new boolean[k];
    for (int j = 0; j < k; j++) {
      active[j] = yNorm[j] > 0;
    }
    long start = System.nanoTime();
    try (Preconditioner p = settings.rank() > 0 && shift > 0
        ? Preconditioner.randomlyPivotedCholesky(g, Math.min(settings.rank(), n), shift) : null) {
      int rank = p == null ? 0 : p.rank();
      double preconditionerSeconds = (System.nanoTime() - start) / 1e9;
      long[] products = new long[3]; // the products with the kernel, their nanoseconds and CPU nanoseconds
      double[] z = p == null ? r.clone() : p.apply(r, k);
      double[] d = z.clone();
      double[] rz = dots(r, z, k);
      double residual = relative(r, yNorm, k);
      int iterations = 0;
      RUNNING.set(new Status(0, residual, settings.tolerance(), settings.maxIterations(), rank));
      try {
        while (residual > settings.tolerance()) {
          if (iterations == settings.maxIterations()) {
            throw new NotConvergedException(String.format(Locale.ROOT, "conjugate gradients on the train-train "
                + "%s kernel reached a relative residual of %.3g, not %.3g, within %d iterations (cg_max_iter): "
                + "allow more, a looser cg_tol, a larger preconditioner (cg_rank) or a larger diag_reg, or "
                + "solve by Cholesky", kernel, residual, settings.tolerance(), settings.maxIterations()));
          }
          double[] q = regularizedProduct(g, d, k, shift, products);
          double[] dq = dots(d, q, k);
          for (int j = 0; j < k; j++) {
            if (!active[j]) {
              continue;
            }
            if (!(dq[j] > 0)) {
              throw new GpPosterior.NotPositiveDefiniteException(String.format(Locale.ROOT, "the train-train %s "
                  + "kernel plus diag_reg %g times its mean diagonal is not positive definite (conjugate "
                  + "gradients met the curvature %.3g): increase the diagonal regularizer (diag_reg, e.g. 1e-6 "
                  + "or larger), or check the training inputs for duplicates", kernel, diagReg, dq[j]));
            }
            double a = rz[j] / dq[j];
            for (int i = j; i < x.length; i += k) {
              x[i] += a * d[i];
              r[i] -= a * q[i];
            }
          }
          iterations++;
          residual = relative(r, yNorm, k);
          if (residual <= settings.tolerance()) {
            // The recurrence's residual drifts from the true one: stop only on the true one, else go on from it.
            double[] ax = regularizedProduct(g, x, k, shift, products);
            for (int i = 0; i < r.length; i++) {
              r[i] = y[i] - ax[i];
            }
            residual = relative(r, yNorm, k);
            if (residual <= settings.tolerance()) {
              break;
            }
            Arrays.fill(d, 0);
          }
          double[] columnResidual = columnRelative(r, yNorm, k);
          z = p == null ? r.clone() : p.apply(r, k);
          double[] rzNew = dots(r, z, k);
          for (int j = 0; j < k; j++) {
            active[j] = yNorm[j] > 0 && columnResidual[j] > settings.tolerance();
            double beta = active[j] && rz[j] != 0 ? rzNew[j] / rz[j] : 0;
            for (int i = j; i < d.length; i += k) {
              d[i] = active[j] ? z[i] + beta * d[i] : 0;
            }
          }
          rz = rzNew;
          RUNNING.set(new Status(iterations, residual, settings.tolerance(), settings.maxIterations(), rank));
        }
      } finally {
        RUNNING.set(null);
      }
      Status done = new Status(iterations, residual, settings.tolerance(), settings.maxIterations(), rank,
          preconditionerSeconds, products[0] == 0 ? Double.NaN : products[1] / 1e9 / products[0],
          products[0] == 0 || products[2] < 0 ? Double.NaN : products[2] / 1e9 / products[0], g.cost());
      LAST.set(done);
      return new Solved(GpPosterior.ofSolution(DenseMatrix.of(n, k, x)), done);
    }
  }

  /**
   * {@code (G_dd + shift I) v} for the row-major {@code n x k} block {@code v}; counts the product
   * and its wall and CPU nanoseconds in {@code products}.
   */
  private static double[] regularizedProduct(KernelOperator g, double[] v, int k, double shift, long[] products) {
    long start = System.nanoTime();
    long cpu = processCpuNanos();
    double[] out;
    try (DenseMatrix in = DenseMatrix.of(g.n(), k, v); DenseMatrix product = g.multiply(in)) {
      out = product.toArray();
    }
    for (int i = 0; i < out.length; i++) {
      out[i] += shift * v[i];
    }
    products[0]++;
    products[1] += System.nanoTime() - start;
    products[2] = cpu < 0 || products[2] < 0 ? -1 : products[2] + processCpuNanos() - cpu;
    return out;
  }

  /** The CPU nanoseconds of this process's threads so far, or -1 where the JVM does not tell. */
  private static long processCpuNanos() {
    return ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os
        ? os.getProcessCpuTime() : -1;
  }

  /** The dot products of the columns of two row-major blocks of {@code k} columns. */
  private static double[] dots(double[] a, double[] b, int k) {
    double[] s = new double[k];
    for (int i = 0; i < a.length; i++) {
      s[i % k] += a[i] * b[i];
    }
    return s;
  }

  private static double[] norms(double[] a, int k) {
    double[] s = dots(a, a, k);
    for (int j = 0; j < k; j++) {
      s[j] = Math.sqrt(s[j]);
    }
    return s;
  }

  /** Each column's {@code ||r_j|| / ||y_j||} (0 for a zero target column). */
  private static double[] columnRelative(double[] r, double[] yNorm, int k) {
    double[] s = norms(r, k);
    for (int j = 0; j < k; j++) {
      s[j] = yNorm[j] > 0 ? s[j] / yNorm[j] : 0;
    }
    return s;
  }

  /** The largest column's relative residual. */
  private static double relative(double[] r, double[] yNorm, int k) {
    double worst = 0;
    for (double v : columnRelative(r, yNorm, k)) {
      worst = Math.max(worst, v);
    }
    return worst;
  }

  /**
   * The Nyström preconditioner {@code F F^T + r I} and its inverse by Woodbury: {@code F} ({@code n
   * x rank}) and the Cholesky factor of {@code F^T F + r I} ({@code rank x rank}), in native memory.
   */
  static final class Preconditioner implements AutoCloseable {
    private final DenseMatrix f;
    private final DenseMatrix inner;
    private final double shift;

    private Preconditioner(DenseMatrix f, DenseMatrix inner, double shift) {
      this.f = f;
      this.inner = inner;
      this.shift = shift;
    }

    int rank() {
      return (int) f.cols();
    }

    /**
     * Randomly pivoted Cholesky of {@code g} to rank {@code rank} at most (fewer when the kernel is
     * reproduced first), blocks of {@value #PIVOT_BLOCK} pivots drawn from the residual diagonal;
     * within a block the pivots are eliminated one by one, and one whose residual diagonal entry
     * has vanished (drawn twice, or reproduced by the pivots before it) is skipped.
     */
    static Preconditioner randomlyPivotedCholesky(KernelOperator g, int rank, double shift) {
      int n = g.n();
      double[] d = g.diagonal();
      double scale = 0;
      for (int i = 0; i < n; i++) {
        d[i] = Math.max(0, d[i]);
        scale = Math.max(scale, d[i]);
      }
      double[] f = new double[Math.multiplyExact(n, rank)]; // row-major n x rank
      int found = 0;
      Random random = new Random(SEED);
      while (found < rank) {
        double left = 0;
        for (double v : d) {
          left += v;
        }
        if (!(left > 1e-14 * scale * n)) {
          break;
        }
        int[] pivots = draw(d, left, Math.min(PIVOT_BLOCK, rank - found), random);
        int b = pivots.length;
        double[] c;
        try (DenseMatrix columns = g.columns(pivots)) {
          c = columns.toArray();
        }
        if (found > 0) { // less what the factor so far reproduces, C - F F[pivots]^T (F's columns not found are 0)
          double[] atPivots = new double[Math.multiplyExact(b, rank)];
          for (int t = 0; t < b; t++) {
            System.arraycopy(f, pivots[t] * rank, atPivots, t * rank, rank);
          }
          try (DenseMatrix fm = DenseMatrix.of(n, rank, f); DenseMatrix fp = DenseMatrix.of(b, rank, atPivots);
              DenseMatrix cm = DenseMatrix.of(n, b, c)) {
            Lapack.gemm(false, fm, true, fp, -1.0, 1.0, cm);
            c = cm.toArray();
          }
        }
        int before = found;
        for (int t = 0; t < b && found < rank; t++) {
          int p = pivots[t];
          double pivot = c[p * b + t];
          if (!(pivot > 1e-12 * scale)) {
            continue;
          }
          double root = Math.sqrt(pivot);
          double[] pivotRow = new double[b]; // the new column's entries at the block's later pivots
          for (int u = t + 1; u < b; u++) {
            pivotRow[u] = c[p * b + u] / root;
          }
          for (int i = 0; i < n; i++) {
            double v = c[i * b + t] / root;
            f[i * rank + found] = v;
            d[i] = Math.max(0, d[i] - v * v);
            for (int u = t + 1; u < b; u++) {
              c[i * b + u] -= v * pivotRow[u];
            }
          }
          d[p] = 0;
          found++;
        }
        if (found == before) { // every pivot drawn is reproduced to rounding: so is the kernel
          break;
        }
      }
      double[] kept = new double[Math.multiplyExact(n, found)];
      for (int i = 0; i < n; i++) {
        System.arraycopy(f, i * rank, kept, i * found, found);
      }
      DenseMatrix factor = DenseMatrix.of(n, found, kept);
      DenseMatrix inner = Lapack.multiply(true, factor, false, factor);
      for (int i = 0; i < found; i++) {
        inner.set(i, i, inner.get(i, i) + shift);
      }
      if (Lapack.cholesky(inner) != 0) {
        inner.close();
        factor.close();
        throw new IllegalStateException("F^T F + r I is not positive definite for r = " + shift);
      }
      return new Preconditioner(factor, inner, shift);
    }

    /** Up to {@code count} distinct pivots drawn in proportion to {@code d} (which sums to {@code total}). */
    private static int[] draw(double[] d, double total, int count, Random random) {
      double[] cumulative = new double[d.length];
      double s = 0;
      for (int i = 0; i < d.length; i++) {
        s += d[i];
        cumulative[i] = s;
      }
      int[] drawn = new int[count];
      for (int t = 0; t < count; t++) {
        int i = Arrays.binarySearch(cumulative, random.nextDouble() * total);
        i = i >= 0 ? i : -i - 1;
        while (i < d.length - 1 && d[i] == 0) { // a zero entry shares its cumulative value with the one before
          i++;
        }
        drawn[t] = Math.min(i, d.length - 1);
      }
      return Arrays.stream(drawn).distinct().toArray();
    }

    /** {@code (F F^T + r I)^-1 v} for the row-major {@code n x k} block {@code v}. */
    double[] apply(double[] v, int k) {
      try (DenseMatrix in = DenseMatrix.of(f.rows(), k, v);
          DenseMatrix w = Lapack.multiply(true, f, false, in)) {
        Lapack.choleskySolve(inner, w);
        Lapack.gemm(false, f, false, w, -1.0, 1.0, in);
        double[] out = in.toArray();
        for (int i = 0; i < out.length; i++) {
          out[i] /= shift;
        }
        return out;
      }
    }

    @Override
    public void close() {
      f.close();
      inner.close();
    }
  }
}
