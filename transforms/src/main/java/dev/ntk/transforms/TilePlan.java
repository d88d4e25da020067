package dev.ntk.transforms;

import dev.ntk.io.TileKey;
import java.util.ArrayList;
import java.util.List;

/**
 * Which tiles make up an {@code n1 x n2} kernel: blocks of {@code tile} rows of x1 paired with
 * blocks of {@code tile} rows of x2, the last block of each side holding the remainder (any {@code
 * n} works with any tile size). For a mirrored kernel (x1 with itself, of a plan whose rules are
 * symmetric in their two inputs: {@code Plan#symmetric}) only the tiles on or above the diagonal
 * are planned; the others are their transposes.
 */
public record TilePlan(long n1, long n2, int tile, boolean mirrored) {
  public TilePlan {
    if (n1 < 1 || n2 < 1) {
      throw new IllegalArgumentException("a kernel needs at least one row on each side, got "
          + n1 + "x" + n2);
    }
    if (tile < 1) {
      throw new IllegalArgumentException("the tile size must be at least 1, got " + tile);
    }
    if (mirrored && n1 != n2) {
      throw new IllegalArgumentException("a mirrored kernel is square, got " + n1 + "x" + n2);
    }
  }

  /** The planned tiles, row block by row block. */
  public List<TileKey> tiles() {
    List<TileKey> keys = new ArrayList<>();
    for (long r = 0; r < n1; r += tile) {
      for (long c = mirrored ? r : 0; c < n2; c += tile) {
        keys.add(new TileKey(r, c, (int) Math.min(tile, n1 - r), (int) Math.min(tile, n2 - c)));
      }
    }
    return keys;
  }
}
