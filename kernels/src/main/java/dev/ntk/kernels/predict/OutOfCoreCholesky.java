package dev.ntk.kernels.predict;

import static org.bytedeco.openblas.global.openblas.CblasLeft;
import static org.bytedeco.openblas.global.openblas.CblasLower;
import static org.bytedeco.openblas.global.openblas.CblasNoTrans;
import static org.bytedeco.openblas.global.openblas.CblasNonUnit;
import static org.bytedeco.openblas.global.openblas.CblasRight;
import static org.bytedeco.openblas.global.openblas.CblasRowMajor;
import static org.bytedeco.openblas.global.openblas.CblasTrans;
import static org.bytedeco.openblas.global.openblas.LAPACK_COL_MAJOR;

import dev.ntk.kernels.engine.NativeBuffer;
import dev.ntk.kernels.linalg.DenseMatrix;
import dev.ntk.kernels.linalg.OpenBlas;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.Buffer;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.openblas.global.openblas;

/**
 * The Cholesky factor of a regularized train kernel larger than memory, kept on disk: {@code G_dd
 * + r I = L L^T} ({@code r = diagReg * trace(G_dd) / n}, as {@link GpPosterior}), computed
 * left-looking in panels of columns. For panel {@code j} (columns {@code [c0, c1)}) the kernel's
 * rows {@code [c0, n)} of those columns are computed into native memory ({@link Blocks}), each
 * earlier panel's rows {@code [c0, n)} are read back from the scratch file in chunks and
 * subtracted ({@code gemm}), the block on the diagonal is factored ({@code potrf}) and the rows
 * below it solved against it ({@code trsm}), and the panel is appended to the file. In memory at
 * once: one panel ({@code (n - c0) x w}) and two {@code w x w} chunks of an earlier one.
 *
 * <p>float32 ({@code spotrf}, {@code sgemm}, {@code strsm}; a float32 file) as {@link
 * GpPosterior#factor(DenseMatrix, double[], int, double, String, boolean)} factors a float32 kernel, or
 * float64. The solves ({@link #solve}) read the file twice (forward, backward) in strips of rows
 * widened to float64, as the in-memory path solves on the widened factor. The file is read and
 * written through a {@link FileChannel} into native memory, not mapped: the page cache it fills is
 * not the process's resident memory. {@link #close} deletes it, and so does a shutdown hook if the JVM
 * is stopped first (SIGTERM, Ctrl-C): a factor can be gigabytes, and a stopped run leaves none behind.
 *
 * <pre>{@code
 * try (OutOfCoreCholesky l = OutOfCoreCholesky.factor(n, 8192, true, 1e-4, "nngp", blocks, scratchDir)) {
 *   DenseMatrix alpha = l.solve(y, outputs);   // (G_dd + r I)^-1 y
 * }
 * }</pre>
 */
public final class OutOfCoreCholesky implements AutoCloseable {
  static {
    OpenBlas.configure();
  }

  /** Bytes of the float64 strips the solves read at a time, and of the kernel bands computed at a time. */
  private static final long STRIP_BYTES = 64L << 20;

  /** Rows of the diagonal blocks computed first for the trace (the relative regularizer). */
  private static final int TRACE_BLOCK = 512;

  /** The kernel's entries, computed where the factor asks. */
  @FunctionalInterface
  public interface Blocks {
    /**
     * Writes the train-train kernel's rows {@code [r0, r1)} of columns {@code [c0, c1)}, row-major,
     * into {@code into} (a {@code FloatBuffer} or {@code DoubleBuffer} of exactly that many values,
     * as the factor is float32 or float64). Asked only for blocks on the diagonal ({@code r0 == c0,
     * r1 == c1}: the inputs with themselves) and blocks wholly below it ({@code r0 >= c1}).
     */
    void compute(int r0, int r1, int c0, int c1, Buffer into);
  }

  /**
   * The scratch files of factors not yet closed, deleted by one shutdown hook ({@code File.deleteOnExit}
   * would keep every closed factor's name until exit).
   */
  private static final class Live {
    static final Set<Path> FILES = ConcurrentHashMap.newKeySet();

    static {
      try {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> FILES.forEach(file -> {
          try {
            Files.deleteIfExists(file);
          } catch (IOException e) {
            // exiting: nothing to tell
          }
        }), "ntk-cholesky-scratch-cleanup"));
      } catch (IllegalStateException shuttingDown) {
        // first used while exiting: close() alone deletes
      }
    }

    /**
     * A new scratch file {@code cholesky-<random><suffix>} in {@code directory} (owner read and write
     * only, as {@code Files.createTempFile} makes it), in {@link #FILES} before it exists, so that a
     * signal at any moment after its creation finds it there.
     */
    static Path create(Path directory, String suffix) throws IOException {
      java.nio.file.attribute.FileAttribute<?>[] owner = directory.getFileSystem().supportedFileAttributeViews()
          .contains("posix") ? new java.nio.file.attribute.FileAttribute<?>[] {
              java.nio.file.attribute.PosixFilePermissions.asFileAttribute(
                  java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"))}
          : new java.nio.file.attribute.FileAttribute<?>[0];
      while (true) {
        Path file = directory.resolve("cholesky-"
            + Long.toUnsignedString(java.util.concurrent.ThreadLocalRandom.current().nextLong()) + suffix);
        FILES.add(file);
        try {
          return Files.createFile(file, owner);
        } catch (java.nio.file.FileAlreadyExistsException taken) {
          FILES.remove(file);
        } catch (IOException | RuntimeException e) {
          FILES.remove(file);
          throw e;
        }
      }
    }
  }

  private final int n;
  private final int[] starts;
  private final boolean float32;
  private final Path file;
  private final FileChannel channel;
  private final long[] offsets;
  private final double[] diagonal;
  private final double seconds;

  private OutOfCoreCholesky(int n, int[] starts, boolean float32, Path file, FileChannel channel, long[] offsets,
      double[] diagonal, double seconds) {
    this.n = n;
    this.starts = starts;
    this.float32 = float32;
    this.file = file;
    this.channel = channel;
    this.offsets = offsets;
    this.diagonal = diagonal;
    this.seconds = seconds;
  }

  /**
   * Factors {@code G_dd + r I} of the {@code n x n} kernel that {@code blocks} computes, in panels
   * of {@code width} columns (the last one narrower), into a new file in {@code scratchDirectory}.
   *
   * @param kernel the kernel's name, for messages
   * @param log where each panel's time is said, or null
   * @throws GpPosterior.NotPositiveDefiniteException when the regularized kernel is not positive
   *     definite (the file is deleted)
   */
  public static OutOfCoreCholesky factor(int n, int width, boolean float32, double diagReg, String kernel,
      Blocks blocks, Path scratchDirectory, java.io.PrintWriter log) throws IOException {
    if (n < 1 || width < 1) {
      throw new IllegalArgumentException("need n >= 1 and a panel width >= 1, got " + n + " and " + width);
    }
    long start = System.nanoTime();
    int panels = (n + width - 1) / width;
    int[] starts = new int[panels + 1];
    long[] offsets = new long[panels + 1];
    int size = float32 ? Float.BYTES : Double.BYTES;
    for (int j = 0; j < panels; j++) {
      starts[j + 1] = Math.min(n, starts[j] + width);
      offsets[j + 1] = offsets[j] + (long) (n - starts[j]) * (starts[j + 1] - starts[j]) * size;
    }
    double shift = Regularizer.shift(trainDiagonal(n, float32, blocks), diagReg);
    Path file = Live.create(scratchDirectory, float32 ? ".f32" : ".f64");
    FileChannel channel = null;
    try {
      channel = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE);
      OutOfCoreCholesky l = new OutOfCoreCholesky(n, starts, float32, file, channel, offsets, new double[n], 0);
      l.compute(shift, diagReg, kernel, blocks, log);
      return new OutOfCoreCholesky(n, starts, float32, file, channel, offsets, l.diagonal,
          (System.nanoTime() - start) / 1e9);
    } catch (IOException | RuntimeException | Error e) {
      release(channel, file);
      throw e;
    }
  }

  /** Closes {@code channel} (if open), then deletes the scratch {@code file} and forgets it. */
  private static void release(FileChannel channel, Path file) throws IOException {
    try {
      if (channel != null) {
        channel.close();
      }
    } finally {
      Files.deleteIfExists(file);
      Live.FILES.remove(file);
    }
  }

  /** The kernel's diagonal, from small blocks on it (the diagonal's own rules, as the whole kernel's). */
  private static double[] trainDiagonal(int n, boolean float32, Blocks blocks) {
    double[] d = new double[n];
    try (NativeBuffer block = NativeBuffer.allocate((long) TRACE_BLOCK * TRACE_BLOCK, !float32)) {
      for (int i0 = 0; i0 < n; i0 += TRACE_BLOCK) {
        int b = Math.min(TRACE_BLOCK, n - i0);
        blocks.compute(i0, i0 + b, i0, i0 + b, block.buffer(0, (long) b * b));
        for (int i = 0; i < b; i++) {
          d[i0 + i] = block.get((long) i * b + i);
        }
      }
    }
    return d;
  }

  private void compute(double shift, double diagReg, String kernel, Blocks blocks, java.io.PrintWriter log)
      throws IOException {
    int widest = starts[1] - starts[0];
    try (NativeBuffer chunk = NativeBuffer.allocate((long) widest * widest, !float32);
        NativeBuffer top = NativeBuffer.allocate((long) widest * widest, !float32)) {
      for (int j = 0; j < panels(); j++) {
        long panelStart = System.nanoTime();
        int c0 = starts[j];
        int c1 = starts[j + 1];
        int w = c1 - c0;
        try (NativeBuffer panel = NativeBuffer.allocate((long) (n - c0) * w, !float32)) {
          blocks.compute(c0, c1, c0, c1, panel.buffer(0, (long) w * w));
          int band = (int) Math.max(1, Math.min(n, STRIP_BYTES * 4 / ((long) w * panel.valueBytes())));
          for (int r0 = c1; r0 < n; r0 += band) {
            int r1 = Math.min(n, r0 + band);
            blocks.compute(r0, r1, c0, c1, panel.buffer((long) (r0 - c0) * w, (long) (r1 - r0) * w));
          }
          for (int i = 0; i < w; i++) {
            long at = (long) i * w + i;
            panel.set(at, panel.get(at) + shift);
          }
          long computed = System.nanoTime();
          for (int k = 0; k < j; k++) {
            update(panel, j, k, top, chunk);
          }
          long updated = System.nanoTime();
          int info = float32
              ? openblas.LAPACKE_spotrf(LAPACK_COL_MAJOR, (byte) 'U', w, (FloatPointer) panel.pointer(0), w)
              : openblas.LAPACKE_dpotrf(LAPACK_COL_MAJOR, (byte) 'U', w, (DoublePointer) panel.pointer(0), w);
          if (info < 0) {
            throw new IllegalStateException("LAPACKE_potrf: bad argument " + -info);
          }
          if (info > 0) {
            throw Regularizer.notPositiveDefinite(kernel, diagReg, String.format(Locale.ROOT,
                "its leading minor of order %d is not, found out of core", c0 + info));
          }
          for (int i = 0; i < w; i++) {
            diagonal[c0 + i] = panel.get((long) i * w + i);
            for (int c = i + 1; c < w; c++) {
              panel.set((long) i * w + c, 0);
            }
          }
          if (c1 < n) {
            // Row-major rows below times L_jj^-T: (L_jj^-1 B^T)^T.
            if (float32) {
              openblas.cblas_strsm(CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, n - c1, w, 1f,
                  (FloatPointer) panel.pointer(0), w, (FloatPointer) panel.pointer((long) w * w), w);
            } else {
              openblas.cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, n - c1, w, 1.0,
                  (DoublePointer) panel.pointer(0), w, (DoublePointer) panel.pointer((long) w * w), w);
            }
          }
          long factored = System.nanoTime();
          transfer(panel, 0, offsets[j], (long) (n - c0) * w, true);
          if (log != null) {
            log.printf(Locale.ROOT, "ntk: out-of-core Cholesky: panel %d of %d (columns %d..%d): kernel %.1f s, "
                + "updates from %d panels %.1f s, factor %.1f s, written %.1f s%n", j + 1, panels(), c0, c1,
                (computed - panelStart) / 1e9, j, (updated - computed) / 1e9, (factored - updated) / 1e9,
                (System.nanoTime() - factored) / 1e9);
            log.flush();
          }
        }
      }
    }
  }

  /** Subtracts panel k's part from panel j: {@code A[c0:n, :] -= L[c0:n, k] L[c0:c1, k]^T}, read in chunks. */
  private void update(NativeBuffer panel, int j, int k, NativeBuffer top, NativeBuffer chunk) throws IOException {
    int c0 = starts[j];
    int w = starts[j + 1] - c0;
    int b0 = starts[k];
    int wk = starts[k + 1] - b0;
    // Rows c0.. of panel k: L[c0:c1, k] first, kept for the whole panel, then chunks of w rows below.
    transfer(top, 0, offsets[k] + (long) (c0 - b0) * wk * top.valueBytes(), (long) w * wk, false);
    // The diagonal block's lower triangle alone (syrk: half gemm's flops, which at 60,000 in 5 panels would be a
    // fifth of the factorization's); potrf reads no more.
    if (float32) {
      openblas.cblas_ssyrk(CblasRowMajor, CblasLower, CblasNoTrans, w, wk, -1f, (FloatPointer) top.pointer(0), wk, 1f,
          (FloatPointer) panel.pointer(0), w);
    } else {
      openblas.cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, w, wk, -1.0, (DoublePointer) top.pointer(0), wk,
          1.0, (DoublePointer) panel.pointer(0), w);
    }
    for (int r0 = c0 + w; r0 < n; r0 += w) {
      int rows = Math.min(w, n - r0);
      transfer(chunk, 0, offsets[k] + (long) (r0 - b0) * wk * chunk.valueBytes(), (long) rows * wk, false);
      gemm(panel, (long) (r0 - c0) * w, rows, w, wk, chunk, top);
    }
  }

  /** {@code A[at.., :] -= C B^T} for {@code C} rows x wk and {@code B} w x wk, row-major. */
  private void gemm(NativeBuffer a, long at, int rows, int w, int wk, NativeBuffer c, NativeBuffer b) {
    if (float32) {
      openblas.cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, w, wk, -1f, (FloatPointer) c.pointer(0), wk,
          (FloatPointer) b.pointer(0), wk, 1f, (FloatPointer) a.pointer(at), w);
    } else {
      openblas.cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, w, wk, -1.0, (DoublePointer) c.pointer(0), wk,
          (DoublePointer) b.pointer(0), wk, 1.0, (DoublePointer) a.pointer(at), w);
    }
  }

  /**
   * Writes ({@code write}) or reads {@code count} values of {@code memory} from {@code index} at byte {@code
   * offset}, a gibibyte at a time.
   */
  private void transfer(NativeBuffer memory, long index, long offset, long count, boolean write) throws IOException {
    long bytes = count * memory.valueBytes();
    long step = (1L << 30) / memory.valueBytes();
    for (long from = 0; from < count; from += step) {
      long done = from * memory.valueBytes();
      ByteBuffer view = memory.bytes(index + from, Math.min(count - from, step));
      while (view.hasRemaining()) {
        int moved = write ? channel.write(view, offset + done + view.position())
            : channel.read(view, offset + done + view.position());
        if (moved < 0) {
          throw new IOException(file + ": ends at " + (offset + done + view.position()) + " bytes, short of "
              + (offset + bytes));
        }
      }
    }
  }

  /**
   * {@code (G_dd + r I)^-1 y} for targets {@code y} ({@code n x outputs}, row-major), in float64:
   * a forward and a backward pass over the file.
   */
  public DenseMatrix solve(double[] y, int outputs) throws IOException {
    if (y.length != (long) n * outputs) {
      throw new IllegalArgumentException("targets must be " + n + "x" + outputs + ", got " + y.length + " values");
    }
    DenseMatrix x = DenseMatrix.of(n, outputs, y);
    try {
      for (int j = 0; j < panels(); j++) {
        int c0 = starts[j];
        int c1 = starts[j + 1];
        int w = c1 - c0;
        int strip = strip(w);
        try (NativeBuffer raw = NativeBuffer.allocate((long) strip * w, !float32);
            NativeBuffer wide = NativeBuffer.allocate((long) strip * w, true)) {
          for (int r0 = c0, r1; r0 < n; r0 = r1) {
            r1 = Math.min(r0 < c1 ? c1 : n, r0 + strip);
            DoublePointer l = read(raw, wide, j, r0, r1 - r0);
            if (r0 < c1) {
              // x[r0:r1] -= L[r0:r1, c0:r0] x[c0:r0]; x[r0:r1] = L[r0:r1, r0:r1]^-1 x[r0:r1]
              product(false, l, 0, r1 - r0, r0 - c0, w, x, c0, r0, -1);
              openblas.cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, r1 - r0, outputs,
                  1.0, new DoublePointer(l).position(r0 - c0), w, at(x, r0), outputs);
            } else {
              product(false, l, 0, r1 - r0, w, w, x, c0, r0, -1);
            }
          }
        }
      }
      for (int j = panels() - 1; j >= 0; j--) {
        int c0 = starts[j];
        int c1 = starts[j + 1];
        int w = c1 - c0;
        int strip = strip(w);
        try (NativeBuffer raw = NativeBuffer.allocate((long) strip * w, !float32);
            NativeBuffer wide = NativeBuffer.allocate((long) strip * w, true)) {
          for (int r0 = c1; r0 < n; r0 += strip) {
            int r1 = Math.min(n, r0 + strip);
            product(true, read(raw, wide, j, r0, r1 - r0), 0, r1 - r0, w, w, x, r0, c0, -1);
          }
          for (int r1 = c1; r1 > c0; r1 -= strip) {
            int r0 = Math.max(c0, r1 - strip);
            DoublePointer l = read(raw, wide, j, r0, r1 - r0);
            // x[r0:r1] = L[r0:r1, r0:r1]^-T x[r0:r1]; x[c0:r0] -= L[r0:r1, c0:r0]^T x[r0:r1]
            openblas.cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, CblasTrans, CblasNonUnit, r1 - r0, outputs,
                1.0, new DoublePointer(l).position(r0 - c0), w, at(x, r0), outputs);
            product(true, l, 0, r1 - r0, r0 - c0, w, x, r0, c0, -1);
          }
        }
      }
      return x;
    } catch (IOException | RuntimeException | Error e) {
      x.close();
      throw e;
    }
  }

  /**
   * {@code x[to..] += sign op(L) x[from..]} for {@code L} the {@code rows x cols} block at column
   * {@code col} of a strip of leading dimension {@code ld}: {@code op} the transpose with {@code
   * trans} ({@code x[to:to+cols] += L^T x[from:from+rows]}), else {@code x[to:to+rows] += L
   * x[from:from+cols]}.
   */
  private static void product(boolean trans, DoublePointer strip, int col, int rows, int cols, int ld, DenseMatrix x,
      int from, int to, double sign) {
    if (rows == 0 || cols == 0) {
      return;
    }
    int k = (int) x.cols();
    openblas.cblas_dgemm(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, CblasNoTrans, trans ? cols : rows, k,
        trans ? rows : cols, sign, new DoublePointer(strip).position(col), ld, at(x, from), k, 1.0, at(x, to), k);
  }

  private static DoublePointer at(DenseMatrix x, long row) {
    return new DoublePointer(x.pointer()).position(row * x.cols());
  }

  /** Rows of the strips the solves read: {@link #STRIP_BYTES} of float64, at least one row. */
  private static int strip(int w) {
    return (int) Math.max(1, Math.min(w, STRIP_BYTES / ((long) w * Double.BYTES)));
  }

  /** Rows {@code [r0, r0 + rows)} of panel {@code j}, widened to float64 when the file is float32. */
  private DoublePointer read(NativeBuffer raw, NativeBuffer wide, int j, int r0, int rows) throws IOException {
    int w = starts[j + 1] - starts[j];
    long count = (long) rows * w;
    transfer(raw, 0, offsets[j] + (long) (r0 - starts[j]) * w * raw.valueBytes(), count, false);
    if (!float32) {
      return (DoublePointer) raw.pointer(0);
    }
    raw.widenInto(wide, count);
    return (DoublePointer) wide.pointer(0);
  }

  /** {@code sum log L_ii * 2}: the log determinant of {@code G_dd + r I}, for the NLL. */
  public double logDeterminant() {
    double logDet = 0;
    for (double d : diagonal) {
      logDet += 2 * Math.log(d);
    }
    return logDet;
  }

  /**
   * The factor's rows {@code [row, row + count)} as a dense float64 array ({@code count x n}, zero above the
   * diagonal).
   */
  public double[] rows(int row, int count) throws IOException {
    double[] out = new double[Math.multiplyExact(count, n)];
    for (int j = 0; j < panels(); j++) {
      int c0 = starts[j];
      int w = starts[j + 1] - c0;
      try (NativeBuffer raw = NativeBuffer.allocate(w, !float32); NativeBuffer wide = NativeBuffer.allocate(w, true)) {
        for (int r = Math.max(row, c0); r < row + count; r++) {
          read(raw, wide, j, r, 1).get(out, (r - row) * n + c0, w);
        }
      }
    }
    return out;
  }

  public int n() {
    return n;
  }

  /** The number of panels. */
  public int panels() {
    return starts.length - 1;
  }

  /** The columns of the widest panel (the first). */
  public int width() {
    return starts[1] - starts[0];
  }

  /** The scratch file, deleted by {@link #close}. */
  public Path file() {
    return file;
  }

  /** The seconds the factorization took, kernels included. */
  public double seconds() {
    return seconds;
  }

  /**
   * The panel width for an {@code n x n} kernel of values of {@code size} bytes whose memory fits
   * {@code budget} bytes: the first panel ({@code n x w}) and two {@code w x w} chunks of earlier
   * panels. Of the fewest panels that fit, the narrowest even split: {@code 60,000} columns in
   * {@code 5g} are 5 panels of 12,000, not 4 of 14,900 and one of 400 (a thin last panel costs a
   * pass over the file for little work).
   */
  public static int width(long n, int size, long budget) {
    // size (n w + 2 w^2) <= budget
    double b = (double) budget / size;
    long widest = (long) Math.max(1, Math.min(n, Math.floor((-n + Math.sqrt((double) n * n + 8 * b)) / 4)));
    long panels = (n + widest - 1) / widest;
    return (int) ((n + panels - 1) / panels);
  }

  /** The bytes of native memory the factor with panels of {@code width} takes ({@link #width}'s measure). */
  public static long bytes(long n, int size, long width) {
    return size * (n * width + 2 * width * width);
  }

  /** Deletes the scratch file (left to the shutdown hook, which tries again at exit, if that fails). */
  @Override
  public void close() throws IOException {
    release(channel, file);
  }
}
