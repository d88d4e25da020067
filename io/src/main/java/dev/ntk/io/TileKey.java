package dev.ntk.io;

import java.util.regex.Pattern;

/**
 * Where a kernel tile lies: rows {@code [rowOffset, rowOffset + rows)} of x1 against columns
 * {@code [colOffset, colOffset + cols)} of x2.
 */
public record TileKey(long rowOffset, long colOffset, int rows, int cols) {
  private static final Pattern FILE_NAME = Pattern.compile("tile-r[0-9]+-c[0-9]+\\.arrow");

  /** Checks that offsets are non-negative, sizes positive and {@code rows * cols} fits an int. */
  public TileKey {
    if (rowOffset < 0 || colOffset < 0 || rows <= 0 || cols <= 0
        || (long) rows * cols > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException("invalid tile: offsets (" + rowOffset + ", " + colOffset
          + ") must be >= 0 and size " + rows + "x" + cols + " positive and below 2^31 values");
    }
  }

  /** The number of values in each kernel of the tile, {@code rows * cols}. */
  public int size() {
    return rows * cols;
  }

  /** The tile's file name, {@code tile-r<rowOffset>-c<colOffset>.arrow}. */
  public String fileName() {
    return "tile-r" + rowOffset + "-c" + colOffset + ".arrow";
  }

  /** Whether {@code name} (a file name, no directory) is one of {@link #fileName}. */
  public static boolean isFileName(String name) {
    return FILE_NAME.matcher(name).matches();
  }
}
