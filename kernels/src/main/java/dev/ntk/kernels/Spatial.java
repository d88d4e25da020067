package dev.ntk.kernels;

import java.util.Locale;

/**
 * What a kernel keeps of the spatial axes of a model's last layer, for a model that ends without a
 * readout (a stack of convolutions): neural-tangents' {@code diagonal_spatial}. The kernels of
 * {@code N1} and {@code N2} images of an {@code H x W} output grid are
 *
 * <ul>
 *   <li>{@link #REDUCED} (the default): {@code (N1, N2)}, averaged over the pixels as a {@code
 *       Flatten} readout would; {@code cov1} {@code (N1)};
 *   <li>{@link #DIAGONAL} ({@code diagonal_spatial=True}): {@code (N1, N2, H, W)}, the covariance of
 *       pixel {@code (h, w)} of an x1 input with the same pixel of an x2 input; {@code cov1} {@code
 *       (N1, H, W)};
 *   <li>{@link #FULL} ({@code diagonal_spatial=False}): {@code (N1, N2, H, H', W, W')}, every pair of
 *       pixels, the x1 pixel's index before the x2 pixel's on each axis; {@code cov1} {@code (N1, H,
 *       H', W, W')}.
 * </ul>
 *
 * <p>The requirements pass keeps the pixel-pair covariance from the inputs up for {@code FULL}, as
 * it does below a pooling layer, and only its diagonal for {@code DIAGONAL} where no layer needs
 * more.
 *
 * <pre>{@code
 * Kernel k = Stax.serial(Stax.conv(1, new int[] {3, 3}, "SAME"), Stax.relu()).kernelFn()
 *     .keepSpatial(Spatial.FULL).apply(x1, x2);   // k.nngp(): (N1, N2, H, H', W, W')
 * }</pre>
 */
public enum Spatial {
  /** The kernel averaged over the output's pixels: {@code (N1, N2)}. */
  REDUCED,
  /** The per-pixel kernel: {@code (N1, N2, H, W)}. */
  DIAGONAL,
  /** The kernel of every pair of pixels: {@code (N1, N2, H, H', W, W')}. */
  FULL;

  /** neural-tangents' {@code diagonal_spatial}: {@link #DIAGONAL} for true, {@link #FULL} for false. */
  public static Spatial of(boolean diagonalSpatial) {
    return diagonalSpatial ? DIAGONAL : FULL;
  }

  /** Parses {@code true} or {@code false} (neural-tangents' {@code diagonal_spatial}) or a constant's name. */
  public static Spatial parse(String value) {
    String v = value.trim().toLowerCase(Locale.ROOT);
    return switch (v) {
      case "true" -> DIAGONAL;
      case "false" -> FULL;
      case "reduced" -> REDUCED;
      case "diagonal" -> DIAGONAL;
      case "full" -> FULL;
      default -> throw new IllegalArgumentException("expected true (per pixel) or false (every pixel pair), got \""
          + value + "\"");
    };
  }

  /** Whether the kernels keep the output's spatial axes. */
  public boolean keepsAxes() {
    return this != REDUCED;
  }

  /**
   * The shape of a kernel with {@code batch} leading axes ({@code (N1, N2)} for the kernels, {@code
   * (N1)} for {@code cov1}) on the output pixel grid {@code grid}, in neural-tangents' layout.
   */
  public long[] shape(long[] batch, int[] grid) {
    int per = this == FULL ? 2 : this == DIAGONAL ? 1 : 0;
    long[] s = new long[batch.length + per * grid.length];
    System.arraycopy(batch, 0, s, 0, batch.length);
    for (int k = 0; k < grid.length && per > 0; k++) {
      for (int t = 0; t < per; t++) {
        s[batch.length + per * k + t] = grid[k];
      }
    }
    return s;
  }

  /**
   * The axes that take the plan's blocks to neural-tangents' layout, as {@code transpose} takes
   * them: a plan holds the pixel pairs of a {@code FULL} block row-major, the x1 pixel's axes then
   * the x2 pixel's ({@code (N1, N2, H, W, H', W')}); neural-tangents pairs them axis by axis ({@code
   * (N1, N2, H, H', W, W')}). The identity for the other kinds.
   */
  public int[] axes(int batchAxes, int spatialAxes) {
    int per = this == FULL ? 2 : this == DIAGONAL ? 1 : 0;
    int[] axes = new int[batchAxes + per * spatialAxes];
    for (int k = 0; k < axes.length; k++) {
      axes[k] = k;
    }
    if (this == FULL) {
      for (int k = 0; k < spatialAxes; k++) {
        axes[batchAxes + 2 * k] = batchAxes + k;
        axes[batchAxes + 2 * k + 1] = batchAxes + spatialAxes + k;
      }
    }
    return axes;
  }
}
