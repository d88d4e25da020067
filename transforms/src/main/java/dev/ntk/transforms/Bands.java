package dev.ntk.transforms;

import dev.ntk.io.Tile;
import dev.ntk.io.TileKey;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/** Bands of rows of kernels, put together from the tiles that cross them. */
final class Bands {
  private Bands() {}

  /**
   * Rows {@code [rowOffset, rowOffset + rows)} of the kernels {@code names} of an {@code n1 x n2}
   * kernel, over all columns, from the tiles {@code keys} read with {@code read}; for a mirrored
   * kernel ({@link TilePlan#mirrored}) the transposes of the stored tiles (on and above the
   * diagonal) fill the part below it.
   * Fails, naming the first, if an entry is not covered by a tile.
   *
   * @param where where the tiles are, for the error message
   * @return kernel name to row-major {@code rows x n2} values
   */
  static Map<String, double[]> assemble(long n1, long n2, boolean mirrored, long rowOffset,
      int rows, Iterable<TileKey> keys, List<String> names, Function<TileKey, Tile> read,
      String where) {
    Map<String, double[]> out = new LinkedHashMap<>();
    for (String name : names) {
      double[] values = new double[Math.multiplyExact(rows, Math.toIntExact(n2))];
      Arrays.fill(values, Double.NaN);
      out.put(name, values);
    }
    for (TileKey key : keys) {
      boolean direct = overlaps(key.rowOffset(), key.rows(), rowOffset, rows);
      boolean transposed = mirrored && key.rowOffset() != key.colOffset()
          && overlaps(key.colOffset(), key.cols(), rowOffset, rows);
      if (!direct && !transposed) {
        continue;
      }
      Tile tile = read.apply(key);
      for (String name : names) {
        double[] src = tile.kernels().get(name);
        if (src == null) {
          throw new IllegalStateException("the tile " + key.fileName() + " in " + where
              + " has no kernel '" + name + "' (it has " + tile.kernels().keySet() + ")");
        }
        double[] dst = out.get(name);
        if (direct) {
          place(n2, src, key.rowOffset(), key.colOffset(), key.rows(), key.cols(), false, dst,
              rowOffset, rows);
        }
        if (transposed) {
          place(n2, src, key.colOffset(), key.rowOffset(), key.cols(), key.rows(), true, dst,
              rowOffset, rows);
        }
      }
    }
    for (double[] values : out.values()) {
      for (int i = 0; i < values.length; i++) {
        if (Double.isNaN(values[i])) {
          throw new IllegalStateException("kernel entry (" + (rowOffset + i / n2) + ", " + (i % n2)
              + ") is missing from the tiles in " + where);
        }
      }
    }
    return out;
  }

  /**
   * Copies a {@code rows x cols} block at {@code (r0, c0)} (the transpose of {@code src} when
   * {@code transposed}) into the rows of {@code dst} that it shares.
   */
  private static void place(long n2, double[] src, long r0, long c0, int rows, int cols,
      boolean transposed, double[] dst, long dstRow0, int dstRows) {
    long from = Math.max(r0, dstRow0);
    long to = Math.min(r0 + rows, dstRow0 + dstRows);
    for (long r = from; r < to; r++) {
      int i = (int) (r - r0);
      int base = (int) ((r - dstRow0) * n2 + c0);
      if (transposed) {
        for (int j = 0; j < cols; j++) {
          dst[base + j] = src[j * rows + i];
        }
      } else {
        System.arraycopy(src, i * cols, dst, base, cols);
      }
    }
  }

  private static boolean overlaps(long start, int length, long from, int count) {
    return start < from + count && from < start + length;
  }
}
