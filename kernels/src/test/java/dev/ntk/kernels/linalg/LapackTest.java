package dev.ntk.kernels.linalg;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Random;
import org.ejml.simple.SimpleMatrix;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** OpenBLAS' LAPACK and BLAS through {@link Lapack}, against EJML's dense computations. */
class LapackTest {
  @TempDir Path dir;

  static SimpleMatrix random(int rows, int cols, long seed) {
    Random r = new Random(seed);
    SimpleMatrix m = new SimpleMatrix(rows, cols);
    for (int i = 0; i < rows; i++) {
      for (int j = 0; j < cols; j++) {
        m.set(i, j, r.nextGaussian());
      }
    }
    return m;
  }

  static SimpleMatrix spd(int n, long seed) {
    SimpleMatrix a = random(n, n + 3, seed);
    return a.mult(a.transpose());
  }

  static DenseMatrix dense(SimpleMatrix m) {
    return DenseMatrix.of(m.getNumRows(), m.getNumCols(), m.getDDRM().data.clone());
  }

  static SimpleMatrix simple(DenseMatrix m) {
    return new SimpleMatrix((int) m.rows(), (int) m.cols(), true, m.toArray());
  }

  @Test
  void choleskyFactorsAndSolves() {
    SimpleMatrix a = spd(37, 1);
    SimpleMatrix b = random(37, 4, 2);
    try (DenseMatrix l = dense(a); DenseMatrix x = dense(b)) {
      assertEquals(0, Lapack.cholesky(l));
      SimpleMatrix ls = simple(l);
      for (int i = 0; i < 37; i++) {
        for (int j = i + 1; j < 37; j++) {
          assertEquals(0.0, ls.get(i, j));
        }
      }
      assertArrayEquals(a.getDDRM().data, ls.mult(ls.transpose()).getDDRM().data, 1e-10);
      Lapack.choleskySolve(l, x);
      assertArrayEquals(a.solve(b).getDDRM().data, x.toArray(), 1e-9);
    }
  }

  @Test
  void choleskyReportsTheFirstBadMinor() {
    SimpleMatrix a = spd(5, 3);
    a.set(2, 2, -1.0);
    try (DenseMatrix m = dense(a)) {
      assertEquals(3, Lapack.cholesky(m));
    }
  }

  /**
   * The float32 factor of a well-conditioned matrix agrees with the float64 one to float32's
   * precision, is lower triangular, and is not the float64 factor (it was computed in float32).
   */
  @Test
  void choleskyInFloat32AgreesWithFloat64ToFloat32Precision() {
    int n = 300; // 90,000 entries: more than one chunk of the narrowing and the widening
    SimpleMatrix a = spd(n, 11).plus(SimpleMatrix.identity(n).scale(n));
    try (DenseMatrix l64 = dense(a); DenseMatrix l32 = dense(a)) {
      assertEquals(0, Lapack.cholesky(l64));
      assertEquals(0, Lapack.choleskyFloat32(l32));
      double[] d64 = l64.toArray();
      double[] d32 = l32.toArray();
      double largest = 0;
      double difference = 0;
      for (int i = 0; i < d64.length; i++) {
        largest = Math.max(largest, Math.abs(d64[i]));
        difference = Math.max(difference, Math.abs(d64[i] - d32[i]));
        assertEquals((double) (float) d32[i], d32[i], "entry " + i + " is a float32 value");
      }
      for (int i = 0; i < n; i++) {
        for (int j = i + 1; j < n; j++) {
          assertEquals(0.0, l32.get(i, j));
        }
      }
      assertTrue(difference <= 1e-5 * largest, difference + " vs " + largest);
      assertTrue(difference > 1e-9 * largest, "computed in float32: " + difference);
    }
  }

  /** A float32 factorization that fails reports the minor and leaves the upper triangle, rounded. */
  @Test
  void choleskyInFloat32ReportsTheFirstBadMinorAndKeepsTheUpperTriangle() {
    SimpleMatrix a = spd(5, 3);
    a.set(2, 2, -1.0);
    try (DenseMatrix m = dense(a)) {
      assertEquals(3, Lapack.choleskyFloat32(m));
      for (int i = 0; i < 5; i++) {
        for (int j = i + 1; j < 5; j++) {
          assertEquals((double) (float) a.get(i, j), m.get(i, j));
        }
      }
    }
  }

  @Test
  void eighDiagonalizes() {
    SimpleMatrix a = spd(23, 4);
    try (DenseMatrix vt = dense(a)) {
      double[] w = Lapack.eigh(vt);
      SimpleMatrix v = simple(vt).transpose();
      for (int i = 1; i < w.length; i++) {
        assertTrue(w[i - 1] <= w[i], "ascending");
      }
      SimpleMatrix d = SimpleMatrix.diag(w);
      assertArrayEquals(a.getDDRM().data, v.mult(d).mult(v.transpose()).getDDRM().data, 1e-9);
      assertArrayEquals(SimpleMatrix.identity(23).getDDRM().data, v.transpose().mult(v).getDDRM().data, 1e-12);
      try (DenseMatrix b = dense(a)) {
        assertArrayEquals(w, Lapack.eigvalsh(b), 1e-10);
      }
    }
  }

  @Test
  void gemmWithTransposes() {
    SimpleMatrix a = random(6, 4, 5);
    SimpleMatrix b = random(6, 3, 6);
    SimpleMatrix c = random(4, 3, 7);
    try (DenseMatrix da = dense(a); DenseMatrix db = dense(b); DenseMatrix dc = dense(c);
        DenseMatrix bt = db.transpose()) {
      Lapack.gemm(true, da, false, db, 2.0, -1.0, dc);
      assertArrayEquals(a.transpose().mult(b).scale(2).minus(c).getDDRM().data, dc.toArray(), 1e-12);
      try (DenseMatrix p = Lapack.multiply(true, da, true, bt)) {
        assertArrayEquals(a.transpose().mult(b).getDDRM().data, p.toArray(), 1e-12);
      }
      assertThrows(IllegalArgumentException.class, () -> Lapack.gemm(false, da, false, db, 1, 0, dc));
    }
  }

  @Test
  void transposeInBlocks() {
    SimpleMatrix a = random(3, 1_500_000, 9);   // wider than one block of columns
    try (DenseMatrix m = dense(a); DenseMatrix t = m.transpose()) {
      assertEquals(1_500_000, t.rows());
      for (int j : new int[] {0, 1, 1398100, 1398101, 1_499_999}) {
        for (int i = 0; i < 3; i++) {
          assertEquals(a.get(i, j), t.get(j, i));
        }
      }
    }
    SimpleMatrix b = random(5, 4, 10);
    try (DenseMatrix m = dense(b); DenseMatrix t = m.transpose()) {
      assertArrayEquals(b.transpose().getDDRM().data, t.toArray());
    }
  }

  @Test
  void writeAndReadBack() throws IOException {
    SimpleMatrix a = random(9, 7, 8);
    try (DenseMatrix m = dense(a)) {
      m.write(dir.resolve("m.f64"));
      try (DenseMatrix back = DenseMatrix.read(dir.resolve("m.f64"), 9, 7)) {
        assertArrayEquals(m.toArray(), back.toArray());
      }
      assertThrows(IOException.class, () -> DenseMatrix.read(dir.resolve("m.f64"), 9, 8));
    }
  }
}
