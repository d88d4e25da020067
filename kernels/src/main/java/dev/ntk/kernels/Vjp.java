package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import java.util.List;

/**
 * A vector-Jacobian product ({@link Layer#vjp}): the outputs of the finite forward pass and the
 * pullback that maps cotangents of those outputs to cotangents of the parameters and inputs
 * (backpropagation), as JAX's {@code jax.vjp(f, *primals)} returns {@code (outputs, vjp_fn)}. The
 * forward pass runs once; the pullback may be called with many cotangents.
 *
 * <pre>{@code
 * Vjp vjp = model.vjp(params, List.of(x), false);
 * Cotangents grad = vjp.pull(List.of(outputCotangent)); // grad.params() is shaped as params
 * }</pre>
 */
public record Vjp(List<NDArray> outputs, Pullback pullback) {
  public Vjp {
    outputs = List.copyOf(outputs);
  }

  /** Maps output cotangents to parameter and input cotangents. */
  @FunctionalInterface
  public interface Pullback {
    /**
     * The cotangents of the parameters and, if they were asked for, of the inputs. With a {@code
     * tape}, every affine layer hands its gram factors to the tape instead of forming its weight
     * and bias cotangents, and its entry in the returned parameters is empty.
     *
     * @param outputCotangents one per output, each shaped as its output
     * @param tape null, or where affine layers record their factors ({@link AffineTape})
     */
    Cotangents pull(List<NDArray> outputCotangents, AffineTape tape);
  }

  /** The parameter and input cotangents for {@code outputCotangents}. */
  public Cotangents pull(List<NDArray> outputCotangents) {
    return pullback.pull(outputCotangents, null);
  }

  /** The only output of a single-output network. */
  public NDArray output() {
    if (outputs.size() != 1) {
      throw new IllegalStateException("the network has " + outputs.size() + " outputs, not one");
    }
    return outputs.get(0);
  }
}
