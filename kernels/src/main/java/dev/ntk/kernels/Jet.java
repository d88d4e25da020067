package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import java.util.List;

/**
 * A second-order Taylor-mode forward pass ({@link Layer#jet}): along a curve of parameters
 * {@code p(e) = p + e v} and inputs {@code x(e) = x + e x1 + e^2/2 x2}, the outputs {@code y(e) =
 * y + e y1 + e^2/2 y2 + O(e^3)}: the outputs {@code y}, their first derivatives {@code y1} (the
 * {@link Jvp}'s tangents) and their second derivatives {@code y2} in {@code e}. As JAX's {@code
 * jax.experimental.jet} with two terms (which propagates {@code y2} with the same 1/2 convention
 * as here, the derivative and not the Taylor coefficient).
 */
public record Jet(List<NDArray> outputs, List<NDArray> tangents, List<NDArray> seconds) {
  public Jet {
    outputs = List.copyOf(outputs);
    tangents = List.copyOf(tangents);
    seconds = List.copyOf(seconds);
  }
}
