package dev.ntk.kernels.linalg;

import static org.bytedeco.openblas.global.openblas.CblasLeft;
import static org.bytedeco.openblas.global.openblas.CblasLower;
import static org.bytedeco.openblas.global.openblas.CblasNoTrans;
import static org.bytedeco.openblas.global.openblas.CblasNonUnit;
import static org.bytedeco.openblas.global.openblas.CblasRowMajor;
import static org.bytedeco.openblas.global.openblas.CblasTrans;
import static org.bytedeco.openblas.global.openblas.LAPACK_COL_MAJOR;

import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.openblas.global.openblas;

/**
 * Dense float64 linear algebra on OpenBLAS' LAPACK and BLAS (the JavaCPP preset; natives from
 * Maven, no system package): Cholesky, triangular solves, the symmetric eigendecomposition and
 * GEMM, multi-threaded over the machine's cores. Matrices are {@link DenseMatrix} (row-major,
 * native memory).
 *
 * <p>Chosen over TensorFlow's {@code Cholesky}/{@code SelfAdjointEigV2} through DJL on speed;
 * {@code bench/RESULTS.md} has the comparison.
 */
public final class Lapack {
  static {
    OpenBlas.configure();
  }

  private Lapack() {}

  /**
   * Sets OpenBLAS' thread count, which is otherwise all cores unless {@code OPENBLAS_NUM_THREADS}
   * says otherwise. Call it before any computation: changing it while another thread is inside an
   * OpenBLAS call is not safe.
   */
  public static void threads(int n) {
    org.bytedeco.openblas.presets.openblas.blas_set_num_threads(Math.max(1, n));
  }

  /**
   * Factors the symmetric positive definite {@code a} in place into its lower Cholesky factor
   * {@code L} ({@code a = L L^T}); the part above the diagonal is zeroed.
   *
   * @return 0, or the order {@code k > 0} of the first leading minor that is not positive
   *     definite (then {@code a}'s lower triangle is garbage)
   */
  public static int cholesky(DenseMatrix a) {
    int n = square(a);
    // Row-major lower is column-major upper: no transposed copy inside LAPACKE.
    int info = openblas.LAPACKE_dpotrf(LAPACK_COL_MAJOR, (byte) 'U', n, a.pointer(), n);
    if (info < 0) {
      throw new IllegalStateException("LAPACKE_dpotrf: bad argument " + -info);
    }
    if (info == 0) {
      a.zeroUpper();
    }
    return info;
  }

  /**
   * {@link #cholesky} in float32, as NumPy + SciPy's {@code cho_factor} on a float32 kernel: rounds
   * {@code a} to float32 in place ({@link DenseMatrix#narrowFloat32}), factors it there ({@code
   * LAPACKE_spotrf}, 1.4-1.9x faster than {@code dpotrf}: {@code CholeskyBench}), and widens the
   * factor back into {@code a}'s float64 entries. The factor agrees with {@link #cholesky}'s to float32's precision (times
   * the growth of rounding errors with the condition number); a matrix that float32 cannot factor
   * is reported as not positive definite.
   *
   * @return 0, or the order {@code k > 0} of the first leading minor that is not positive
   *     definite (then {@code a}'s lower triangle and diagonal are garbage, and the entries above
   *     the diagonal are {@code a}'s own rounded to float32)
   */
  public static int choleskyFloat32(DenseMatrix a) {
    int n = square(a);
    a.narrowFloat32();
    int info = openblas.LAPACKE_spotrf(LAPACK_COL_MAJOR, (byte) 'U', n, a.float32Pointer(), n);
    a.widenFloat32();
    if (info < 0) {
      throw new IllegalStateException("LAPACKE_spotrf: bad argument " + -info);
    }
    if (info == 0) {
      a.zeroUpper();
    }
    return info;
  }

  /** Solves {@code L L^T x = b} in place in {@code b} ({@code n x k}) for a Cholesky factor {@code l}. */
  public static void choleskySolve(DenseMatrix l, DenseMatrix b) {
    int n = square(l);
    checkRows(b, n);
    if (b.cols() == 0) {
      return;
    }
    openblas.cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, n,
        (int) b.cols(), 1.0, l.pointer(), n, b.pointer(), (int) b.cols());
    openblas.cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, CblasTrans, CblasNonUnit, n,
        (int) b.cols(), 1.0, l.pointer(), n, b.pointer(), (int) b.cols());
  }

  /**
   * The symmetric eigendecomposition {@code a = V diag(w) V^T} (divide and conquer): returns the
   * eigenvalues in ascending order and leaves {@code V^T} in {@code a} (row {@code i} is the
   * eigenvector of {@code w[i]}).
   */
  public static double[] eigh(DenseMatrix a) {
    return syevd(a, 'V');
  }

  /** The eigenvalues of the symmetric {@code a}, ascending; {@code a} is destroyed. */
  public static double[] eigvalsh(DenseMatrix a) {
    return syevd(a, 'N');
  }

  private static double[] syevd(DenseMatrix a, char jobz) {
    int n = square(a);
    try (DoublePointer w = new DoublePointer(Math.max(1, n))) {
      // A symmetric row-major matrix is its column-major self; column-major eigenvector columns
      // read row-major are rows. No transposed copy inside LAPACKE.
      int info = openblas.LAPACKE_dsyevd(LAPACK_COL_MAJOR, (byte) jobz, (byte) 'U', n, a.pointer(), n, w);
      if (info != 0) {
        throw new IllegalStateException("LAPACKE_dsyevd: info " + info);
      }
      double[] out = new double[n];
      w.get(out);
      return out;
    }
  }

  /** {@code c = alpha op(a) op(b) + beta c}, with {@code op} the transpose when asked. */
  public static void gemm(boolean transA, DenseMatrix a, boolean transB, DenseMatrix b, double alpha,
      double beta, DenseMatrix c) {
    long m = transA ? a.cols() : a.rows();
    long k = transA ? a.rows() : a.cols();
    long kb = transB ? b.cols() : b.rows();
    long n = transB ? b.rows() : b.cols();
    if (k != kb || c.rows() != m || c.cols() != n) {
      throw new IllegalArgumentException("gemm shapes do not fit: " + shape(a, transA) + " times "
          + shape(b, transB) + " into " + c.rows() + "x" + c.cols());
    }
    if (m == 0 || n == 0) {
      return;
    }
    openblas.cblas_dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
        transB ? CblasTrans : CblasNoTrans, (int) m, (int) n, (int) k, alpha, a.pointer(),
        (int) Math.max(1, a.cols()), b.pointer(), (int) Math.max(1, b.cols()), beta, c.pointer(),
        (int) Math.max(1, n));
  }

  /**
   * {@code c[cRow:cRow+m, :] += op(a) b[bRow:bRow+k, :]}: a product of a row-major block {@code a}
   * of {@code rows x cols} values held elsewhere in native memory (a tile as read from its file)
   * with a block of rows of {@code b}, added into a block of rows of {@code c}; {@code op} is the
   * transpose with {@code transA} ({@code m = cols, k = rows}), else {@code m = rows, k = cols}.
   */
  public static void addBlockProduct(boolean transA, DoublePointer a, int rows, int cols, DenseMatrix b, long bRow,
      DenseMatrix c, long cRow) {
    int m = transA ? cols : rows;
    int k = transA ? rows : cols;
    long n = b.cols();
    if (c.cols() != n || bRow < 0 || bRow + k > b.rows() || cRow < 0 || cRow + m > c.rows()) {
      throw new IllegalArgumentException("block product does not fit: " + m + "x" + k + " times rows " + bRow
          + ".. of " + b.rows() + "x" + b.cols() + " into rows " + cRow + ".. of " + c.rows() + "x" + c.cols());
    }
    if (m == 0 || n == 0 || k == 0) {
      return;
    }
    openblas.cblas_dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, CblasNoTrans, m, (int) n, k, 1.0, a,
        Math.max(1, cols), b.pointer().getPointer(bRow * n), (int) n, 1.0, c.pointer().getPointer(cRow * n),
        (int) n);
  }

  /** {@code op(a) op(b)} as a new matrix. */
  public static DenseMatrix multiply(boolean transA, DenseMatrix a, boolean transB, DenseMatrix b) {
    DenseMatrix c = DenseMatrix.zeros(transA ? a.cols() : a.rows(), transB ? b.rows() : b.cols());
    gemm(transA, a, transB, b, 1.0, 0.0, c);
    return c;
  }

  private static String shape(DenseMatrix a, boolean trans) {
    return (trans ? a.cols() + "x" + a.rows() : a.rows() + "x" + a.cols());
  }

  private static int square(DenseMatrix a) {
    if (a.rows() != a.cols()) {
      throw new IllegalArgumentException("expected a square matrix, got " + a.rows() + "x" + a.cols());
    }
    return (int) a.rows();
  }

  private static void checkRows(DenseMatrix b, int n) {
    if (b.rows() != n) {
      throw new IllegalArgumentException("expected " + n + " rows, got " + b.rows() + "x" + b.cols());
    }
  }
}
