package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

/**
 * Where a backward pass ({@link Vjp.Pullback#pull}) records, for each affine layer ({@code Dense},
 * {@code Conv}, {@code ConvTranspose}, {@code ConvLocal}) in the order the pass meets them, the
 * factors of its parameter cotangents instead of forming them: structured derivatives (Novak,
 * Sohl-Dickstein and Schoenholz, "Fast Finite Width Neural Tangent Kernel", 2022) build the
 * empirical NTK from the grams of these factors, never the Jacobian. A layer with output {@code z' = s product(x, W) +
 * beta b} has, per example {@code n} and output position {@code p}, a patch {@code X[n, p]} (the
 * inputs that {@code p} reads) and a cotangent {@code G[n, p] = s dz'[n, p]}; its weight cotangent
 * is {@code sum_{n, p} X[n, p] G[n, p]^T} and its bias cotangent {@code beta sum_{n, p} dz'[n, p]}.
 */
public final class AffineTape {
  /**
   * One affine layer's factors in one backward pass.
   *
   * @param patches the patch matrix {@code (N P, fan_in)}, computed when asked for (it does not
   *     depend on the cotangent, so one pass's suffices for every output channel)
   * @param positions {@code P}, the output positions per example (1 for {@code Dense})
   * @param weightCotangent {@code G}, {@code (N P, out)}
   * @param biasCotangent {@code beta sum_p dz'[n, p]}, {@code (N, out)}; for biases of their own per
   *     position ({@code ConvLocal}) {@code beta dz'[n]}, {@code (N, P out)}; null without a bias
   */
  public record Factors(Supplier<NDArray> patches, int positions, NDArray weightCotangent,
      NDArray biasCotangent) {}

  private final List<Factors> factors = new ArrayList<>();

  /** Records one affine layer's factors. */
  void record(Factors layerFactors) {
    factors.add(layerFactors);
  }

  /** The factors recorded so far, in the order of the backward pass. */
  public List<Factors> factors() {
    return List.copyOf(factors);
  }
}
