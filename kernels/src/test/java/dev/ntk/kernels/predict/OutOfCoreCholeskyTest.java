package dev.ntk.kernels.predict;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ntk.kernels.linalg.DenseMatrix;
import dev.ntk.kernels.linalg.Lapack;
import java.io.IOException;
import java.nio.Buffer;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link OutOfCoreCholesky} against the in-memory factor ({@link Lapack#cholesky}, {@link
 * Lapack#choleskyFloat32}) and {@link GpPosterior}'s solve and NLL, on random positive definite
 * matrices with panels of one, several and uneven widths; its errors; its scratch file.
 */
class OutOfCoreCholeskyTest {
  private static final int N = 157;
  private static final int K = 3;

  @TempDir Path scratch;

  /** {@code A A^T / d}, with {@code d} larger than {@code n}: positive definite, well conditioned. */
  private static double[] spd(int n, long seed) {
    Random r = new Random(seed);
    int d = n + 40;
    double[] a = new double[n * d];
    for (int i = 0; i < a.length; i++) {
      a[i] = r.nextGaussian();
    }
    double[] k = new double[n * n];
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < n; j++) {
        double dot = 0;
        for (int c = 0; c < d; c++) {
          dot += a[i * d + c] * a[j * d + c];
        }
        k[i * n + j] = dot / d;
      }
    }
    return k;
  }

  /** The blocks of {@code k}, as the kernel engine would compute them; records any block it should not be asked. */
  private static OutOfCoreCholesky.Blocks blocks(double[] k, int n, List<String> wrong) {
    return (r0, r1, c0, c1, into) -> {
      if (!(r0 == c0 && r1 == c1) && r0 < c1) {
        wrong.add(r0 + ".." + r1 + " x " + c0 + ".." + c1);
      }
      int w = c1 - c0;
      assertEquals((long) (r1 - r0) * w, into.capacity());
      for (int i = r0; i < r1; i++) {
        for (int j = c0; j < c1; j++) {
          int at = (i - r0) * w + (j - c0);
          if (into instanceof FloatBuffer f) {
            f.put(at, (float) k[i * n + j]);
          } else {
            ((DoubleBuffer) into).put(at, k[i * n + j]);
          }
        }
      }
    };
  }

  private void agrees(int width, boolean float32, double tolerance) throws IOException {
    double[] k = spd(N, 7);
    double diagReg = 1e-3;
    double[] y = new double[N * K];
    Random r = new Random(3);
    for (int i = 0; i < y.length; i++) {
      y[i] = r.nextGaussian();
    }
    List<String> wrong = new ArrayList<>();
    try (OutOfCoreCholesky l = OutOfCoreCholesky.factor(N, width, float32, diagReg, "nngp", blocks(k, N, wrong),
            scratch, null);
        DenseMatrix in = DenseMatrix.of(N, N, k);
        GpPosterior p = GpPosterior.factor(DenseMatrix.of(N, N, float32 ? rounded(k) : k), y, K, diagReg, "nngp",
            float32);
        DenseMatrix alpha = l.solve(y, K)) {
      assertTrue(wrong.isEmpty(), "blocks neither on nor below the diagonal: " + wrong);
      assertEquals((N + width - 1) / width, l.panels());
      Regularizer.add(in, diagReg);
      if (float32) {
        in.narrowFloat32();
        in.widenFloat32();
        assertEquals(0, Lapack.choleskyFloat32(in));
      } else {
        assertEquals(0, Lapack.cholesky(in));
      }
      double[] expected = in.toArray();
      double[] actual = l.rows(0, N);
      double scale = Math.sqrt(in.get(0, 0));
      for (int i = 0; i < expected.length; i++) {
        assertEquals(expected[i], actual[i], tolerance * scale, "L[" + i / N + "," + i % N + "]");
      }
      try (DenseMatrix identity = DenseMatrix.zeros(N, N)) {
        for (int i = 0; i < N; i++) {
          identity.set(i, i, 1);
        }
        try (DenseMatrix inverse = p.solve(identity)) {
          // alpha equals GpPosterior's own solve, to the factor's precision times the condition number
          for (int i = 0; i < N; i++) {
            for (int c = 0; c < K; c++) {
              double want = 0;
              for (int j = 0; j < N; j++) {
                want += inverse.get(i, j) * y[j * K + c];
              }
              assertEquals(want, alpha.get(i, c), tolerance * 100 * Math.max(1, Math.abs(want)), "alpha " + i);
            }
          }
        }
      }
      double fit = 0;
      for (int i = 0; i < y.length; i++) {
        fit += y[i] * alpha.get(i / K, i % K);
      }
      double nll = GpPosterior.nll(fit, l.logDeterminant(), N, K);
      assertEquals(p.nll(y), nll, tolerance * 100 * Math.abs(p.nll(y)));
      assertTrue(Files.exists(l.file()));
    }
    assertEmpty();
  }

  private static double[] rounded(double[] k) {
    double[] out = new double[k.length];
    for (int i = 0; i < k.length; i++) {
      out[i] = (float) k[i];
    }
    return out;
  }

  private void assertEmpty() throws IOException {
    try (Stream<Path> left = Files.list(scratch)) {
      assertEquals(List.of(), left.toList(), "scratch files left behind");
    }
  }

  @Test
  void onePanelEqualsDpotrf() throws IOException {
    agrees(N, false, 1e-12);
  }

  @Test
  void manyUnevenPanelsEqualDpotrf() throws IOException {
    agrees(40, false, 1e-12);   // 40, 40, 40, 37
    agrees(23, false, 1e-12);   // 6 of 23 and one of 19
    agrees(1, false, 1e-12);
  }

  @Test
  void float32PanelsEqualSpotrf() throws IOException {
    agrees(N, true, 1e-5);
    agrees(33, true, 1e-5);
  }

  /** A matrix with a negative eigenvalue: the in-memory path's error, naming the kernel and the minor; no file left. */
  @Test
  void notPositiveDefiniteNamesTheKernelAndLeavesNoFile() throws IOException {
    int n = 50;
    double[] k = spd(n, 11);
    for (int j = 0; j < n; j++) {            // row and column 30 a copy of row 29, its diagonal smaller
      k[30 * n + j] = k[29 * n + j];
      k[j * n + 30] = k[j * n + 29];
    }
    k[30 * n + 30] = k[29 * n + 29] * 0.5;
    List<String> wrong = new ArrayList<>();
    GpPosterior.NotPositiveDefiniteException e = assertThrows(GpPosterior.NotPositiveDefiniteException.class,
        () -> OutOfCoreCholesky.factor(n, 12, false, 0, "ntk", blocks(k, n, wrong), scratch, null));
    assertTrue(e.getMessage().contains("train-train ntk kernel"), e.getMessage());
    assertTrue(e.getMessage().contains("leading minor of order 31"), e.getMessage());
    assertEmpty();
  }

  /** A failure of the kernel itself (a non-finite entry, say) deletes the file too. */
  @Test
  void aFailingKernelLeavesNoFile() throws IOException {
    double[] k = spd(60, 5);
    OutOfCoreCholesky.Blocks good = blocks(k, 60, new ArrayList<>());
    OutOfCoreCholesky.Blocks failing = (r0, r1, c0, c1, into) -> {
      if (c0 >= 20) {
        throw new IllegalStateException("kernel failed at column " + c0);
      }
      good.compute(r0, r1, c0, c1, into);
    };
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> OutOfCoreCholesky.factor(60, 20, true, 1e-4, "nngp", failing, scratch, null));
    assertTrue(e.getMessage().contains("column 20"), e.getMessage());
    assertEmpty();
  }

  /** Panels that fit the budget, as few as fit, split evenly. */
  @Test
  void widthFitsTheBudget() {
    for (long budget : new long[] {1L << 20, 5L << 30, 6L << 30, 123_456_789L}) {
      int w = OutOfCoreCholesky.width(60_000, 4, budget);
      long panels = (60_000 + w - 1) / w;
      assertTrue(OutOfCoreCholesky.bytes(60_000, 4, w) <= budget);
      long fewer = (60_000 + panels - 2) / (panels - 1);   // the width of one panel less
      assertTrue(OutOfCoreCholesky.bytes(60_000, 4, fewer) > budget, budget + ": " + w);
      assertTrue(60_000 - (panels - 1) * w > w - panels, budget + ": uneven " + w);
    }
    assertEquals(12_000, OutOfCoreCholesky.width(60_000, 4, 5L << 30));
    assertEquals(1, OutOfCoreCholesky.width(60_000, 8, 10));
    assertEquals(100, OutOfCoreCholesky.width(100, 8, 1L << 30));
  }
}
