package dev.ntk.bench;

import dev.ntk.kernels.linalg.DenseMatrix;
import dev.ntk.kernels.linalg.Lapack;
import dev.ntk.kernels.linalg.SymmetricBlockProduct;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Locale;
import java.util.Random;
import org.bytedeco.javacpp.DoublePointer;

/**
 * A benchmark aid for {@code bench/cg_iteration.sh} (issue 26), not part of the library's API: the
 * cost of one off-diagonal float32 tile in a conjugate-gradient product with the train kernel,
 * without computing a kernel. {@code TileProductBench T K REPEATS FILE [PANEL_DOUBLES]}: a {@code T x T} tile of
 * random float32 values written once to {@code FILE}, then, per tile over {@value #COUNT} distinct tiles in memory, best of {@code REPEATS} (after one
 * untimed run each): reading the file's bytes into a direct buffer (from the page cache once it is
 * there), the former product (the whole tile widened to float64 by a scalar loop, then OpenBLAS'
 * {@code dgemm} for the block and its transpose), and {@link SymmetricBlockProduct} (panels widened
 * in cache, both products per panel; panels of {@code PANEL_DOUBLES}, default {@link
 * SymmetricBlockProduct#PANEL_DOUBLES}), each with {@code K} target columns. Prints one {@code RESULT}
 * line of seconds per tile, wall-clock and the process's CPU seconds (all threads, OpenBLAS' included:
 * the work done, which a machine shared beyond its cores does not inflate as it does the wall time),
 * and the bytes per second read.
 */
public final class TileProductBench {
  /** The distinct tiles multiplied in one timing (the process's CPU time counts in 10 ms ticks). */
  private static final int COUNT = 8;

  private TileProductBench() {}

  public static void main(String[] args) throws IOException {
    int t = Integer.parseInt(args[0]);
    int k = Integer.parseInt(args[1]);
    int repeats = Integer.parseInt(args[2]);
    Path file = Path.of(args[3]);
    int panel = args.length > 4 ? Integer.parseInt(args[4]) : SymmetricBlockProduct.PANEL_DOUBLES;
    int size = Math.multiplyExact(t, t);
    ByteBuffer[] tiles = new ByteBuffer[COUNT];
    Random random = new Random(26);
    for (int j = 0; j < COUNT; j++) {
      tiles[j] = ByteBuffer.allocateDirect(Math.multiplyExact(size, Float.BYTES)).order(ByteOrder.LITTLE_ENDIAN);
      for (int i = 0; i < size; i++) {
        tiles[j].putFloat(i * Float.BYTES, (float) random.nextGaussian());
      }
    }
    ByteBuffer bytes = tiles[0];
    try (FileChannel out = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
        StandardOpenOption.TRUNCATE_EXISTING)) {
      bytes.clear();
      while (bytes.hasRemaining()) {
        out.write(bytes);
      }
    }
    double[] xs = new double[2 * t * k];
    for (int i = 0; i < xs.length; i++) {
      xs[i] = random.nextGaussian();
    }
    double read = Double.POSITIVE_INFINITY;
    double former = Double.POSITIVE_INFINITY;
    double panels = Double.POSITIVE_INFINITY;
    double formerCpu = Double.POSITIVE_INFINITY;
    double panelsCpu = Double.POSITIVE_INFINITY;
    com.sun.management.OperatingSystemMXBean os =
        (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
    double diff;
    try (DenseMatrix x = DenseMatrix.of(2L * t, k, xs); DenseMatrix a = DenseMatrix.zeros(2L * t, k);
        DenseMatrix b = DenseMatrix.zeros(2L * t, k); DoublePointer widened = new DoublePointer(size);
        SymmetricBlockProduct product = new SymmetricBlockProduct(panel)) {
      for (int r = 0; r <= repeats; r++) {
        long s = System.nanoTime();
        try (FileChannel in = FileChannel.open(file, StandardOpenOption.READ)) {
          bytes.clear();
          while (bytes.hasRemaining() && in.read(bytes) >= 0) {
            // reads until full
          }
        }
        bytes.flip();
        long e = System.nanoTime();
        read = r == 0 ? read : Math.min(read, (e - s) / 1e9);

        s = System.nanoTime();
        long c = os.getProcessCpuTime();
        for (ByteBuffer tile : tiles) {
          FloatBuffer floats = tile.asFloatBuffer();
          DoubleBuffer doubles = widened.asBuffer();
          for (int i = 0; i < size; i++) {
            doubles.put(i, floats.get(i));
          }
          Lapack.addBlockProduct(false, widened, t, t, x, t, a, 0);
          Lapack.addBlockProduct(true, widened, t, t, x, 0, a, t);
        }
        e = System.nanoTime();
        former = r == 0 ? former : Math.min(former, (e - s) / 1e9 / COUNT);
        formerCpu = r == 0 ? formerCpu : Math.min(formerCpu, (os.getProcessCpuTime() - c) / 1e9 / COUNT);

        s = System.nanoTime();
        c = os.getProcessCpuTime();
        for (ByteBuffer tile : tiles) {
          product.add(tile, Float.BYTES, t, t, 0, t, x, b);
        }
        e = System.nanoTime();
        panels = r == 0 ? panels : Math.min(panels, (e - s) / 1e9 / COUNT);
        panelsCpu = r == 0 ? panelsCpu : Math.min(panelsCpu, (os.getProcessCpuTime() - c) / 1e9 / COUNT);
      }
      double[] av = a.toArray();
      double[] bv = b.toArray();
      double worst = 0;
      double scale = 0;
      for (int i = 0; i < av.length; i++) {
        worst = Math.max(worst, Math.abs(av[i] - bv[i]));
        scale = Math.max(scale, Math.abs(av[i]));
      }
      diff = worst / scale;
    }
    Files.deleteIfExists(file);
    System.out.printf(Locale.ROOT, "RESULT tile=%d k=%d panel=%d read_s=%.4f read_GBps=%.2f former_s=%.4f panels_s=%.4f "
        + "former_cpu_s=%.4f panels_cpu_s=%.4f max_rel_diff=%.1e%n", t, k, panel, read, size * 4.0 / read / 1e9, former,
        panels, formerCpu, panelsCpu, diff);
  }
}
