package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import java.util.List;

/**
 * What a {@link Vjp}'s pullback returns: the cotangents of the parameters, shaped as the {@link
 * Params} (the raw arrays that {@link Layer#init} draws, so that in the NTK parameterization they
 * are taken with respect to the N(0, 1) draws), and of the inputs, one per input, or none when the
 * input cotangents were not asked for (which spares the first affine layer its largest product).
 */
public record Cotangents(Params params, List<NDArray> inputs) {
  public Cotangents {
    inputs = List.copyOf(inputs);
  }
}
