package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import java.util.List;

/**
 * A Jacobian-vector product ({@link Layer#jvp}): the outputs of the finite forward pass and their
 * tangents, the derivative of the outputs along the given parameter and input tangents. As JAX's
 * {@code jax.jvp(f, primals, tangents)}, which returns {@code (outputs, tangents)}.
 */
public record Jvp(List<NDArray> outputs, List<NDArray> tangents) {
  public Jvp {
    outputs = List.copyOf(outputs);
    tangents = List.copyOf(tangents);
  }

  /** The only output's tangent of a single-output network. */
  public NDArray tangent() {
    if (tangents.size() != 1) {
      throw new IllegalStateException("the network has " + tangents.size() + " outputs, not one");
    }
    return tangents.get(0);
  }
}
