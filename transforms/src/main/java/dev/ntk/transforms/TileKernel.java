package dev.ntk.transforms;

import dev.ntk.io.TileFiles;
import dev.ntk.io.TileKey;
import dev.ntk.kernels.engine.Backend;
import dev.ntk.kernels.linalg.DenseMatrix;
import dev.ntk.kernels.linalg.SymmetricBlockProduct;
import dev.ntk.kernels.predict.ConjugateGradients;
import dev.ntk.kernels.predict.KernelOperator;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.SeekableByteChannel;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * The train-train kernel of a {@link TileSet} on disk as a {@link KernelOperator}, for {@link
 * ConjugateGradients}: the {@code n x n} matrix is never held. A product reads the tile files one
 * at a time, and of each only the values of the one kernel it needs, where they lie in the file
 * ({@link TileFiles.Layout}; float32 or float64), without Arrow's decoding; every tile's metadata
 * and checksum are checked once, on first use. Each tile on or above the diagonal of a mirrored set
 * ({@link TileSet#mirrored}) serves its own block and, by symmetry, the transposed block below it,
 * multiplied by OpenBLAS on all cores, so memory is a tile and one {@code n x k} sum.
 *
 * <p>A set computed whole (a plan that is not symmetric in its inputs, whose kernel is not exactly
 * symmetric) is taken as the Cholesky factor takes the train kernel, and as the in-process path
 * gives it to conjugate gradients ({@code DenseMatrix.mirrorLower}): the symmetric matrix of its
 * lower triangle. The tiles on and below the diagonal serve it, each off the diagonal both ways, and
 * a diagonal tile with its upper triangle made its lower one's transpose; the tiles above are not read.
 * Conjugate gradients need a symmetric matrix: the whole one stalls at the asymmetry's size.
 *
 * <p>The preconditioner's columns ({@link #columns}) are computed by the model's plan, between all
 * train inputs and the pivots' inputs ({@link TileComputer}), not read from the tiles: a pivot's
 * column lies across a whole column of tiles, so reading {@code b} columns from tiles of {@code T}
 * rows reads {@code b T n} entries where computing them costs {@code b n}, a fraction {@code b / n}
 * of the kernel stage's work. A product reads {@code n^2 / 2} entries, so reading the columns would
 * cost {@code 2 b T / n} products: for the default rank 1024 at {@code n = 30,000}, 17 products in
 * tiles of 256 rows and 140 in tiles of 2048, against computing 3% of the kernel once.
 */
final class TileKernel implements KernelOperator {
  private final TileSet set;
  private final String get;
  private final List<TileKey> keys;
  private final Backend backend;
  private final String what;
  private final int n;
  private TileComputer computer;
  private double[] inputs;
  private List<TileFiles.Layout> layouts;
  private int column;
  /**
   * Tiles of fewer bytes are read on the calling thread: a read from the page cache that small takes
   * less than handing it to the reader thread and back, which on a machine shared beyond its cores
   * waits for the scheduler.
   */
  static final int READ_AHEAD_BYTES = 1 << 20;

  /** Two buffers of the largest tile's bytes (one read while the other is multiplied), made by the first product. */
  private ByteBuffer[] buffers;
  private SymmetricBlockProduct product;
  private ExecutorService reader;
  /** Of the products so far: nanoseconds reading (on the reader thread) and waiting for reads, bytes read. */
  private volatile long readNanos;
  private long waitNanos;
  private volatile long bytesRead;
  private int products;

  /**
   * @param keys the set's planned tiles ({@link TileSet#plan}), checked to be complete (of a whole
   *     set, those on and below the diagonal are used)
   * @param get the kernel's name ({@code nngp} or {@code ntk})
   * @param backend where the preconditioner's columns are computed
   */
  TileKernel(TileSet set, String get, List<TileKey> keys, Backend backend) {
    if (!set.x1WithItself()) {
      throw new IllegalArgumentException("conjugate gradients need the train inputs' kernel with themselves, not " + set);
    }
    this.set = set;
    this.get = get;
    this.keys = set.mirrored() ? List.copyOf(keys)
        : keys.stream().filter(k -> k.colOffset() <= k.rowOffset()).toList();
    this.backend = backend;
    this.what = "the train-train tiles in " + set.directory();
    this.n = Math.toIntExact(set.n1());
  }

  @Override
  public int n() {
    return n;
  }

  /** Where each tile's values lie, its metadata and checksum checked, the first time it is needed. */
  private synchronized List<TileFiles.Layout> layouts() {
    if (layouts == null) {
      List<TileFiles.Layout> found = keys.parallelStream().map(key -> {
        String file = set.resource(key.fileName()).toString();
        try (SeekableByteChannel channel = BeamFiles.openSeekable(set.resource(key.fileName()))) {
          TileFiles.Layout layout = TileFiles.layout(channel, file);
          if (!layout.metadata().equals(set.metadata(key))) {
            throw new IllegalStateException(file + " belongs to another model, inputs or dtype: "
                + layout.metadata());
          }
          layout.verify(channel);
          return layout;
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        }
      }).toList();
      column = found.get(0).metadata().kernelNames().indexOf(get);
      if (column < 0) {
        throw new IllegalArgumentException(what + ": the tiles have no '" + get + "' kernel (they have "
            + found.get(0).metadata().kernelNames() + ")");
      }
      layouts = found;
    }
    return layouts;
  }

  /** A tile's values of the kernel {@code get}, row-major, into {@code values} (at least the tile's size). */
  private void read(int t, ByteBuffer bytes, double[] values) {
    TileFiles.Layout layout = layouts().get(t);
    int size = layout.metadata().key().size();
    readBytes(t, bytes);
    if (layout.width() == Double.BYTES) {
      bytes.asDoubleBuffer().get(values, 0, size);
    } else {
      FloatBuffer floats = bytes.asFloatBuffer();
      for (int i = 0; i < size; i++) {
        values[i] = floats.get(i);
      }
    }
  }

  /** A tile's stored values of the kernel {@code get} into {@code bytes}, from position 0, flipped. */
  private void readBytes(int t, ByteBuffer bytes) {
    TileFiles.Layout layout = layouts().get(t);
    bytes.clear().limit(layout.metadata().key().size() * layout.width());
    try (SeekableByteChannel channel = BeamFiles.openSeekable(set.resource(keys.get(t).fileName()))) {
      layout.readValues(channel, column, 0, bytes);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    bytes.flip();
  }

  /** Bytes for the largest tile's values of one kernel, little-endian as stored. */
  private ByteBuffer tileBytes() {
    int largest = keys.stream().mapToInt(TileKey::size).max().orElse(0);
    return ByteBuffer.allocateDirect(Math.max(1, largest * set.dtype().bytes())).order(ByteOrder.LITTLE_ENDIAN);
  }

  @Override
  public double[] diagonal() {
    double[] d = new double[n];
    ByteBuffer bytes = tileBytes();
    double[] values = new double[keys.stream().mapToInt(TileKey::size).max().orElse(0)];
    for (int t = 0; t < keys.size(); t++) {
      TileKey key = keys.get(t);
      if (key.rowOffset() == key.colOffset()) {
        read(t, bytes, values);
        for (int i = 0; i < key.rows(); i++) {
          d[(int) key.rowOffset() + i] = values[i * key.cols() + i];
        }
      }
    }
    return d;
  }

  /**
   * The product tile by tile into one {@code n x k} sum: each tile's block and its transpose in
   * panels of rows widened to float64 in cache ({@link SymmetricBlockProduct}, OpenBLAS' {@code
   * dgemm} on all cores), while a reader thread reads the next tile's bytes into the second of two
   * buffers (tiles of at least {@link #READ_AHEAD_BYTES}). One tile at a time: at N = 5,000 in tiles of 1,024 rows (Fashion-MNIST, 147 iterations)
   * the pipeline took 28.5 s against 38 to 48 s with two threads each multiplying its share of the
   * tiles (two callers of a threaded OpenBLAS). OpenBLAS' own threads do not pay on these thin
   * panel products: at N = 10,000 (15 tiles of 2,048) a product took 1.38 s with two and 0.35 s
   * with {@code OPENBLAS_NUM_THREADS=1} ({@code bench/RESULTS.md}).
   */
  @Override
  public DenseMatrix multiply(DenseMatrix x) {
    layouts();
    if (product == null) {
      buffers = new ByteBuffer[] {tileBytes(), tileBytes()};
      product = new SymmetricBlockProduct(SymmetricBlockProduct.PANEL_DOUBLES);
      if (buffers[0].capacity() >= READ_AHEAD_BYTES) {
        reader = Executors.newSingleThreadExecutor(r -> {
          Thread thread = new Thread(r, "ntk-tile-reader");
          thread.setDaemon(true);
          return thread;
        });
      }
    }
    DenseMatrix sum = DenseMatrix.zeros(n, x.cols());
    try {
      Future<?> next = read(0);
      for (int t = 0; t < keys.size(); t++) {
        long start = System.nanoTime();
        await(next);
        waitNanos += System.nanoTime() - start;
        if (t + 1 < keys.size()) {
          next = read(t + 1);
        }
        TileKey key = keys.get(t);
        if (!set.mirrored() && key.rowOffset() == key.colOffset()) {
          upperFromLower(buffers[t % 2], key.rows(), layouts.get(t).width());
        }
        product.add(buffers[t % 2], layouts.get(t).width(), key.rows(), key.cols(), key.rowOffset(), key.colOffset(),
            x, sum);
      }
      products++;
      return sum;
    } catch (RuntimeException | Error e) {
      sum.close();
      throw e;
    }
  }

  /**
   * Sets the entries above the diagonal of the square {@code rows x rows} block of little-endian
   * values {@code bytes} ({@code width} bytes each) to their transposes below it.
   */
  static void upperFromLower(ByteBuffer bytes, int rows, int width) {
    ByteBuffer le = bytes.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < rows; i++) {
      for (int j = 0; j < i; j++) {
        int lower = (i * rows + j) * width;
        int upper = (j * rows + i) * width;
        if (width == Double.BYTES) {
          le.putDouble(upper, le.getDouble(lower));
        } else {
          le.putFloat(upper, le.getFloat(lower));
        }
      }
    }
  }

  /** Tile {@code t}'s values read into its buffer: on the reader thread, or now (done) without one. */
  private Future<?> read(int t) {
    if (reader != null) {
      return reader.submit(() -> timedRead(t, buffers[t % 2]));
    }
    timedRead(t, buffers[t % 2]);
    return CompletableFuture.completedFuture(null);
  }

  /** Reads tile {@code t}'s values into {@code bytes}, counting the bytes and nanoseconds. */
  private void timedRead(int t, ByteBuffer bytes) {
    long start = System.nanoTime();
    readBytes(t, bytes);
    readNanos += System.nanoTime() - start;
    bytesRead += bytes.remaining();
  }

  /** Waits for a read, rethrowing its failure as it was thrown. */
  private static void await(Future<?> read) {
    try {
      read.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while reading a tile", e);
    } catch (ExecutionException e) {
      if (e.getCause() instanceof RuntimeException r) {
        throw r;
      }
      if (e.getCause() instanceof Error err) {
        throw err;
      }
      throw new IllegalStateException(e.getCause());
    }
  }

  /** The bytes of tile values read by the products so far. */
  long bytesRead() {
    return bytesRead;
  }

  /**
   * Per product so far: the tiles, the megabytes read and the seconds reading (on the reader
   * thread), waiting for a read, widening float32 to float64 and multiplying.
   */
  @Override
  public String cost() {
    if (products == 0) {
      return "";
    }
    double p = products * 1e9;
    long[] nanos = product.nanos();
    return String.format(Locale.ROOT, "%d tiles, %.0f MB read in %.3g s beside the product (waited %.3g s), "
        + "widened in %.3g s, multiplied in %.3g s", keys.size(), bytesRead / (products * 1e6), readNanos / p,
        waitNanos / p, nanos[0] / p, nanos[1] / p);
  }

  @Override
  public DenseMatrix columns(int[] pivots) {
    int features = 1;
    for (long f : set.featureShape()) {
      features = Math.multiplyExact(features, (int) f);
    }
    if (computer == null) {
      try {
        inputs = set.readRows(set.x1(), 0, n);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
      computer = new TileComputer(set.model(), set.featureShape(), set.dtype(), backend,
          (double) n * ConjugateGradients.Settings.DEFAULT_RANK, set.maskConstant());
      computer.setup();
    }
    double[] pivotInputs = new double[Math.multiplyExact(pivots.length, features)];
    for (int t = 0; t < pivots.length; t++) {
      System.arraycopy(inputs, pivots[t] * features, pivotInputs, t * features, features);
    }
    double[] c = computer.compute(new TileKey(0, 0, n, pivots.length), inputs, pivotInputs).get(get);
    return DenseMatrix.of(n, pivots.length, c);
  }

  /** Frees what computing columns and products held. */
  void close() {
    if (product != null) {
      if (reader != null) {
        reader.shutdownNow();
        reader = null;
      }
      product.close();
      product = null;
      buffers = null;
    }
    if (computer != null) {
      computer.teardown();
      computer = null;
      inputs = null;
    }
  }
}
