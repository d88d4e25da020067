package dev.ntk.kernels.engine;

import java.util.Arrays;

/**
 * What one entry of an expression holds for each pair (or input): a single number ({@link
 * Kind#SCALAR}, fully connected layers and every readout), the per-pixel variances or covariances
 * of a spatial activation ({@link Kind#DIAG}, {@code P} numbers for a grid of {@code P} pixels), or
 * the covariance between every two pixels ({@link Kind#FULL}, {@code P x P} numbers, row-major:
 * the first pixel index belongs to the row input, the second to the column input).
 *
 * <p>Pixels are numbered row-major over the grid, so a {@code FULL} block is a {@code P x P}
 * matrix and its diagonal is the {@code DIAG} block of the same covariance.
 */
public record Layout(Kind kind, int[] grid) {
  /** The three kinds of block. */
  public enum Kind { SCALAR, DIAG, FULL }

  /** One number per entry. */
  public static final Layout SCALAR = new Layout(Kind.SCALAR, new int[0]);

  public Layout {
    grid = grid.clone();
    if ((kind == Kind.SCALAR) != (grid.length == 0)) {
      throw new IllegalArgumentException("a " + kind + " layout with grid " + Arrays.toString(grid));
    }
    for (int g : grid) {
      if (g <= 0) {
        throw new IllegalArgumentException("an empty pixel grid " + Arrays.toString(grid));
      }
    }
  }

  /** The per-pixel layout on {@code grid}. */
  public static Layout diag(int... grid) {
    return new Layout(Kind.DIAG, grid);
  }

  /** The pixel-pair layout on {@code grid}. */
  public static Layout full(int... grid) {
    return new Layout(Kind.FULL, grid);
  }

  @Override
  public int[] grid() {
    return grid.clone();
  }

  /** The number of pixels of the grid (1 for a scalar). */
  public int pixels() {
    int p = 1;
    for (int g : grid) {
      p = Math.multiplyExact(p, g);
    }
    return p;
  }

  /** Numbers per entry: 1, {@code P} or {@code P^2}. */
  public int size() {
    return switch (kind) {
      case SCALAR -> 1;
      case DIAG -> pixels();
      case FULL -> Math.multiplyExact(pixels(), pixels());
    };
  }

  public boolean isScalar() {
    return kind == Kind.SCALAR;
  }

  /** The same grid with {@code newKind}. */
  public Layout as(Kind newKind) {
    return new Layout(newKind, grid);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Layout l && l.kind == kind && Arrays.equals(l.grid, grid);
  }

  @Override
  public int hashCode() {
    return kind.hashCode() * 31 + Arrays.hashCode(grid);
  }

  @Override
  public String toString() {
    StringBuilder b = new StringBuilder(kind.name().toLowerCase(java.util.Locale.ROOT));
    for (int k = 0; k < grid.length; k++) {
      b.append(k == 0 ? "[" : "x").append(grid[k]);
    }
    return kind == Kind.SCALAR ? "scalar" : b.append(']').toString();
  }
}
