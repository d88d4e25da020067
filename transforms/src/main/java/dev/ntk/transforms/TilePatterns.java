package dev.ntk.transforms;

import java.io.Serializable;
import java.util.Arrays;

/**
 * The graph patterns of a {@link TileSet}'s inputs, for a model with {@code Aggregate}: the {@code
 * .npy} files beside x1 and x2, one pattern per input row ({@code (N, nodes..., nodes...)}, or
 * {@code (N, n_edges, 2)} edges for {@code SPARSE}). A worker reads a tile's rows of them as it reads
 * the tile's input rows and passes them to the plan as its further inputs {@code pattern1}, {@code
 * pattern2}, as masks pass {@code kept1}, {@code kept2} ({@link TileComputer}).
 *
 * @param a1 the patterns of x1's rows
 * @param shape1 the shape of {@code a1}'s file, batch first
 * @param a2 the patterns of x2's rows, {@code null} for the kernel of x1 with itself
 * @param shape2 the shape of {@code a2}'s file, {@code null} with it
 */
record TilePatterns(String a1, long[] shape1, String a2, long[] shape2) implements Serializable {
  private static final long serialVersionUID = 1L;

  /** The file of the patterns of x1's rows, or of x2's for {@code second} (x1's for a kernel of x1 with itself). */
  String file(boolean second) {
    return second && a2 != null ? a2 : a1;
  }

  /** The shape of {@code count} rows of {@link #file}. */
  long[] shape(boolean second, int count) {
    long[] s = (second && a2 != null ? shape2 : shape1).clone();
    s[0] = count;
    return s;
  }

  /**
   * One tile's rows of the patterns: {@code rows1} of the tile's x1 rows and {@code rows2} of its x2
   * rows ({@code null}, with {@code shape2}, on the diagonal of x1 with itself), row-major.
   */
  record Rows(double[] rows1, long[] shape1, double[] rows2, long[] shape2) {}

  @Override
  public String toString() {
    return "TilePatterns[" + a1 + " " + Arrays.toString(shape1) + ", " + a2 + " " + Arrays.toString(shape2) + "]";
  }
}
