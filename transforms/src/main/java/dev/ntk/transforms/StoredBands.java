package dev.ntk.transforms;

import dev.ntk.io.NpyDType;
import dev.ntk.io.NpyWriter;
import dev.ntk.io.TileFiles;
import dev.ntk.io.TileKey;
import dev.ntk.io.TileMetadata;
import dev.ntk.kernels.engine.NativeBuffer;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.IntBuffer;
import java.nio.LongBuffer;
import java.nio.channels.SeekableByteChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.apache.beam.sdk.io.fs.ResourceId;

/**
 * Streams the kernels of a {@link TileSet}, or of any directory of tiles, from the tile files into
 * {@code .npy} files, in the tiles' own dtype and bytes: a float32 tile's values go from the tile
 * file to the kernel file as they are, never through doubles. Each tile is first checked against its checksum (its columns
 * in parts, on all cores, put together with {@code Crc32c.combine}); then the kernels are filled
 * band of rows by band of rows, each band from only the rows of the tiles that cross it (read where
 * they lie in the file, {@link TileFiles.Layout}), the parts of a band on all cores, and written
 * (one thread per kernel) while the next band is filled. Memory: two bands of all kernels, at most
 * {@link WriteKernels#BAND_BYTES} together, in native memory.
 */
final class StoredBands {
  private StoredBands() {}

  /** Bytes of values a checksum part or a read covers. */
  private static final long PART_BYTES = 32L << 20;
  /** Rows of a tile read at once for a transposed band part. */
  private static final int TRANSPOSE_ROWS = 64;

  /** The rows of one band: at most a tile, and two bands of all kernels within {@link WriteKernels#BAND_BYTES}. */
  static int bandRows(int tileSize, long n2, int kernels, int width) {
    long rows = WriteKernels.BAND_BYTES / 2 / ((long) width * n2 * kernels);
    return (int) Math.max(1, Math.min(tileSize, rows));
  }

  /**
   * A kernel stored as tile files: where they are, its shape and tile size, whether only the tiles
   * on and above the diagonal are stored ({@code mirrored}: {@link TilePlan#mirrored}), and what
   * every tile must hold (model hash, inputs hash, dtype, kernel names in column order): a {@link
   * TileSet}'s, or that of the first of a directory of tiles ({@link KernelIO#writeNpy}).
   */
  record Source(TileStore store, long n1, long n2, int tileSize, boolean mirrored, NpyDType dtype,
      String modelHash, String inputsHash, List<String> kernelNames) {
    /** The kernel of the tile set {@code tiles}. */
    static Source of(TileSet tiles) {
      return new Source(tiles.store(), tiles.n1(), tiles.n2(), tiles.tileSize(), tiles.mirrored(), tiles.dtype(),
          tiles.modelHash(), tiles.inputsHash(), TileSet.KERNEL_NAMES);
    }

    /**
     * The kernel that the tiles {@code keys} in {@code store} cover, each to hold what {@code
     * reference} (one of them) holds: the shape and the tile size are those the keys cover, and it
     * is mirrored when square and no tile lies below the diagonal (tiles below it are a kernel
     * computed whole: {@link Kernels} of a plan that is not symmetric).
     */
    static Source covered(TileStore store, List<TileKey> keys, TileMetadata reference) {
      long n1 = 0;
      long n2 = 0;
      int tileSize = 1;
      boolean upper = true;
      for (TileKey k : keys) {
        n1 = Math.max(n1, k.rowOffset() + k.rows());
        n2 = Math.max(n2, k.colOffset() + k.cols());
        tileSize = Math.max(tileSize, Math.max(k.rows(), k.cols()));
        upper &= k.colOffset() >= k.rowOffset();
      }
      return new Source(store, n1, n2, tileSize, upper && n1 == n2, reference.dtype(), reference.modelHash(),
          reference.inputsHash(), reference.kernelNames());
    }

    String directory() {
      return store.directory();
    }

    ResourceId resource(String name) {
      return store.resource(name);
    }

    /** What the tile {@code key} must hold. */
    TileMetadata metadata(TileKey key) {
      return new TileMetadata(key, modelHash, inputsHash, dtype, kernelNames);
    }
  }

  /**
   * Writes the kernels {@code names} of {@code tiles}, from the tiles {@code keys} (all of them,
   * checked by the caller), into {@code <directory>/<name>.npy}, each renamed into place only after
   * all are complete.
   */
  static List<ResourceId> write(Source tiles, List<String> names, ResourceId directory, List<TileKey> keys)
      throws IOException {
    int threads = Runtime.getRuntime().availableProcessors();
    ExecutorService pool = Executors.newFixedThreadPool(threads, daemon("ntk-assemble"));
    // One writer thread per kernel: a file's bands must be appended in order.
    List<ExecutorService> writing = new ArrayList<>();
    for (int k = 0; k < names.size(); k++) {
      writing.add(Executors.newSingleThreadExecutor(daemon("ntk-write")));
    }
    List<ResourceId> targets = new ArrayList<>();
    List<ResourceId> temporaries = new ArrayList<>();
    List<NpyWriter> writers = new ArrayList<>();
    List<NativeBuffer> memory = new ArrayList<>();
    try {
      List<TileFiles.Layout> layouts = all(pool, keys.stream().<Callable<TileFiles.Layout>>map(key -> () -> {
        try (SeekableByteChannel channel = open(tiles, key)) {
          TileFiles.Layout layout = TileFiles.layout(channel, tiles.resource(key.fileName()).toString());
          if (!layout.metadata().equals(tiles.metadata(key))) {
            throw new IllegalStateException(tiles.resource(key.fileName())
                + " belongs to another model, inputs or dtype: " + layout.metadata());
          }
          return layout;
        }
      }).toList());
      verify(pool, tiles, keys, layouts);

      int width = tiles.dtype().bytes();
      long n1 = tiles.n1();
      long n2 = tiles.n2();
      int band = bandRows(tiles.tileSize(), n2, names.size(), width);
      for (String name : names) {
        ResourceId target = BeamFiles.child(directory, name + ".npy");
        ResourceId tmp = BeamFiles.temporarySibling(target);
        targets.add(target);
        temporaries.add(tmp);
        writers.add(NpyWriter.open(BeamFiles.create(tmp), target.toString(), new long[] {n1, n2}, tiles.dtype()));
      }
      int[] columns = names.stream().mapToInt(n -> layouts.get(0).metadata().kernelNames().indexOf(n)).toArray();
      for (int k = 0; k < columns.length; k++) {
        if (columns[k] < 0) {
          throw new IllegalStateException("the tiles in " + tiles.directory() + " have no kernel '" + names.get(k)
              + "' (they have " + layouts.get(0).metadata().kernelNames() + ")");
        }
      }
      // Two sets of band buffers: one is filled while the other is written.
      ByteBuffer[][] buffers = new ByteBuffer[2][names.size()];
      for (ByteBuffer[] set : buffers) {
        for (int k = 0; k < names.size(); k++) {
          NativeBuffer b = NativeBuffer.allocate((long) band * n2 * width / 4, false);
          memory.add(b);
          set[k] = b.bytes(0, b.count());
        }
      }
      @SuppressWarnings("unchecked")
      List<Future<Void>>[] written = new List[] {List.of(), List.of()};
      int b = 0;
      for (long r = 0; r < n1; r += band, b ^= 1) {
        int rows = (int) Math.min(band, n1 - r);
        waitAll(written[b]);
        ByteBuffer[] set = buffers[b];
        fill(pool, threads, tiles, keys, layouts, columns, r, rows, set);
        List<Future<Void>> writes = new ArrayList<>();
        for (int k = 0; k < names.size(); k++) {
          NpyWriter w = writers.get(k);
          ByteBuffer bytes = set[k].duplicate().position(0).limit((int) ((long) rows * n2 * width));
          writes.add(writing.get(k).submit(() -> {
            w.writeBytes(bytes);
            return null;
          }));
        }
        written[b] = writes;
      }
      waitAll(written[0]);
      waitAll(written[1]);
      for (NpyWriter w : writers) {
        w.close();
      }
      BeamFiles.rename(temporaries, targets);
      return targets;
    } catch (IOException | RuntimeException | Error e) {
      pool.shutdownNow();
      writing.forEach(ExecutorService::shutdownNow);
      for (NpyWriter w : writers) {
        try {
          w.close();
        } catch (IOException | RuntimeException ignored) {
          // incomplete, as expected after a failure: the temporary file is removed below
        }
      }
      BeamFiles.deleteQuietly(temporaries, e);
      throw e;
    } finally {
      pool.shutdownNow();
      writing.forEach(ExecutorService::shutdownNow);
      try {
        pool.awaitTermination(1, java.util.concurrent.TimeUnit.MINUTES);
        for (ExecutorService w : writing) {
          w.awaitTermination(1, java.util.concurrent.TimeUnit.MINUTES);
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      memory.forEach(NativeBuffer::close);
    }
  }

  /** Checks every tile's values against its checksum: each column in parts, on all cores. */
  private static void verify(ExecutorService pool, Source tiles, List<TileKey> keys, List<TileFiles.Layout> layouts)
      throws IOException {
    List<Callable<Long>> parts = new ArrayList<>();
    List<long[]> lengths = new ArrayList<>();
    for (int t = 0; t < keys.size(); t++) {
      TileKey key = keys.get(t);
      TileFiles.Layout layout = layouts.get(t);
      long bytes = layout.columnBytes();
      for (int k = 0; k < layout.dataOffsets().length; k++) {
        int kernel = k;
        for (long from = 0; from < bytes; from += PART_BYTES) {
          long start = from;
          long length = Math.min(PART_BYTES, bytes - from);
          lengths.add(new long[] {t, length});
          parts.add(() -> {
            try (SeekableByteChannel channel = open(tiles, key)) {
              return layout.crc(channel, kernel, start, length);
            }
          });
        }
      }
    }
    List<Long> crcs = all(pool, parts);
    long crc = 0;
    for (int i = 0; i < crcs.size(); i++) {
      int t = (int) lengths.get(i)[0];
      crc = dev.ntk.io.Crc32c.combine(crc, crcs.get(i), lengths.get(i)[1]);
      if (i + 1 == crcs.size() || lengths.get(i + 1)[0] != t) {
        layouts.get(t).check(crc);
        crc = 0;
      }
    }
  }

  /**
   * Fills rows {@code [row0, row0 + rows)} of each kernel into {@code band} (row-major, {@code n2}
   * columns) from the tiles that cross them, directly or (below the diagonal of a mirrored set)
   * transposed, in parts on all cores.
   */
  private static void fill(ExecutorService pool, int threads, Source tiles, List<TileKey> keys,
      List<TileFiles.Layout> layouts, int[] columns, long row0, int rows, ByteBuffer[] band) throws IOException {
    long n2 = tiles.n2();
    int width = tiles.dtype().bytes();
    List<Callable<Void>> parts = new ArrayList<>();
    long covered = 0;
    for (int t = 0; t < keys.size(); t++) {
      TileKey key = keys.get(t);
      TileFiles.Layout layout = layouts.get(t);
      // The tile directly: its rows that the band holds.
      long from = Math.max(key.rowOffset(), row0);
      long to = Math.min(key.rowOffset() + key.rows(), row0 + rows);
      if (from < to) {
        covered += (to - from) * key.cols();
        long step = Math.max(1, Math.max(64, (to - from + threads - 1) / threads));
        for (long a = from; a < to; a += step) {
          long pa = a;
          long pb = Math.min(to, a + step);
          for (int k = 0; k < columns.length; k++) {
            ByteBuffer dst = band[k];
            int column = columns[k];
            parts.add(() -> {
              try (SeekableByteChannel channel = open(tiles, key)) {
                if (key.colOffset() == 0 && key.cols() == n2) {
                  // whole rows: one read
                  layout.readValues(channel, column, (pa - key.rowOffset()) * key.cols(),
                      slice(dst, (pa - row0) * n2 * width, (pb - pa) * n2 * width));
                } else {
                  for (long r = pa; r < pb; r++) {
                    layout.readValues(channel, column, (r - key.rowOffset()) * key.cols(),
                        slice(dst, ((r - row0) * n2 + key.colOffset()) * width, (long) key.cols() * width));
                  }
                }
              }
              return null;
            });
          }
        }
      }
      // Its transpose, below the diagonal of a mirrored set: the band's rows are its columns.
      if (tiles.mirrored() && key.rowOffset() != key.colOffset()) {
        long j0 = Math.max(key.colOffset(), row0) - key.colOffset();
        long j1 = Math.min(key.colOffset() + key.cols(), row0 + rows) - key.colOffset();
        if (j0 < j1) {
          covered += (j1 - j0) * key.rows();
          int step = Math.max(TRANSPOSE_ROWS, (key.rows() + threads - 1) / threads);
          for (int a = 0; a < key.rows(); a += step) {
            int ia = a;
            int ib = Math.min(key.rows(), a + step);
            for (int k = 0; k < columns.length; k++) {
              ByteBuffer dst = band[k];
              int column = columns[k];
              parts.add(() -> {
                transposed(tiles, key, layout, column, ia, ib, (int) j0, (int) j1, row0, dst, width);
                return null;
              });
            }
          }
        }
      }
    }
    if (covered != (long) rows * n2) {
      throw new IllegalStateException("rows " + row0 + " to " + (row0 + rows - 1) + " of the kernel are "
          + (covered < (long) rows * n2 ? "not all covered" : "covered more than once") + " by the tiles in "
          + tiles.directory());
    }
    all(pool, parts);
  }

  /**
   * Rows {@code [ia, ib)} of the tile {@code key}, columns {@code [j0, j1)}, placed transposed: the
   * tile's entry {@code (i, j)} is the kernel's {@code (colOffset + j, rowOffset + i)}.
   */
  private static void transposed(Source tiles, TileKey key, TileFiles.Layout layout, int column, int ia, int ib,
      int j0, int j1, long row0, ByteBuffer dst, int width) throws IOException {
    long n2 = tiles.n2();
    int length = j1 - j0;
    ByteBuffer scratch = ByteBuffer.allocateDirect(TRANSPOSE_ROWS * length * width).order(dst.order());
    IntBuffer dstInts = width == 4 ? dst.duplicate().clear().order(dst.order()).asIntBuffer() : null;
    LongBuffer dstLongs = width == 8 ? dst.duplicate().clear().order(dst.order()).asLongBuffer() : null;
    try (SeekableByteChannel channel = open(tiles, key)) {
      for (int i0 = ia; i0 < ib; i0 += TRANSPOSE_ROWS) {
        int block = Math.min(TRANSPOSE_ROWS, ib - i0);
        for (int q = 0; q < block; q++) {
          layout.readValues(channel, column, (long) (i0 + q) * key.cols() + j0,
              scratch.duplicate().position(q * length * width).limit((q + 1) * length * width));
        }
        IntBuffer srcInts = width == 4 ? scratch.duplicate().clear().order(scratch.order()).asIntBuffer() : null;
        LongBuffer srcLongs = width == 8 ? scratch.duplicate().clear().order(scratch.order()).asLongBuffer() : null;
        for (int j = 0; j < length; j++) {
          long base = (key.colOffset() + j0 + j - row0) * n2 + key.rowOffset() + i0;
          for (int q = 0; q < block; q++) {
            if (width == 4) {
              dstInts.put((int) (base + q), srcInts.get(q * length + j));
            } else {
              dstLongs.put((int) (base + q), srcLongs.get(q * length + j));
            }
          }
        }
      }
    }
  }

  private static ByteBuffer slice(ByteBuffer band, long from, long length) {
    return band.duplicate().clear().position(Math.toIntExact(from)).limit(Math.toIntExact(from + length));
  }

  private static SeekableByteChannel open(Source tiles, TileKey key) throws IOException {
    return BeamFiles.openSeekable(tiles.resource(key.fileName()));
  }

  private static <T> List<T> all(ExecutorService pool, List<? extends Callable<T>> tasks) throws IOException {
    List<Future<T>> futures = new ArrayList<>();
    for (Callable<T> task : tasks) {
      futures.add(pool.submit(task));
    }
    List<T> results = new ArrayList<>();
    for (Future<T> f : futures) {
      results.add(join(f));
    }
    return results;
  }

  private static void waitAll(List<Future<Void>> futures) throws IOException {
    for (Future<Void> f : futures) {
      join(f);
    }
  }

  private static <T> T join(Future<T> task) throws IOException {
    try {
      return task.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while assembling the kernels");
    } catch (ExecutionException e) {
      Throwable cause = e.getCause();
      if (cause instanceof IOException io) {
        throw io;
      }
      if (cause instanceof UncheckedIOException io) {
        throw io.getCause();
      }
      if (cause instanceof RuntimeException r) {
        throw r;
      }
      if (cause instanceof Error err) {
        throw err;
      }
      throw new IllegalStateException(cause);
    }
  }

  private static java.util.concurrent.ThreadFactory daemon(String name) {
    return r -> {
      Thread t = new Thread(r, name);
      t.setDaemon(true);
      return t;
    };
  }
}
