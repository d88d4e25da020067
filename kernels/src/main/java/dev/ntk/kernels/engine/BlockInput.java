package dev.ntk.kernels.engine;

/**
 * A plan input that is computed block by block rather than held for a whole tile: the pixel
 * kernels of raw images, whose pixel-pair blocks ({@code P^2} numbers per pair) would not fit.
 *
 * @param <A> {@code float[]} or {@code double[]}
 */
@FunctionalInterface
public interface BlockInput<A> {
  /**
   * Writes the block of row input {@code i} and column input {@code j} into {@code out[0, size)};
   * {@code j} is -1 for a per-row input and {@code i} is -1 for a per-column one.
   */
  void fill(int i, int j, A out);
}
