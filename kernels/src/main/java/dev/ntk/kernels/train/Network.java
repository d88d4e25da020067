package dev.ntk.kernels.train;

import ai.djl.ndarray.NDArray;
import dev.ntk.kernels.Layer;
import dev.ntk.kernels.Params;
import dev.ntk.kernels.Vjp;
import java.util.List;

/**
 * A function {@code f(params, x)} of a network's parameters and one batch of inputs (batch axis
 * first), with its vector-Jacobian product in the parameters: what training needs. The finite
 * network of a {@link Layer} is one ({@link #of}); its linearization around {@code params0} is
 * another ({@link Taylor#linearize}), as in neural-tangents, where {@code nt.linearize(apply_fn,
 * params0)} has {@code apply_fn}'s signature.
 *
 * <pre>{@code
 * Network f = Network.of(model);
 * Network fLin = Taylor.linearize(model, params0);
 * NDArray out = fLin.apply(params, x);
 * Params grad = fLin.vjp(params, x).pull(List.of(cotangent)).params();
 * }</pre>
 */
public interface Network {
  /** The outputs {@code f(params, x)}. */
  NDArray apply(Params params, NDArray x);

  /**
   * The outputs and the pullback from output cotangents to parameter cotangents (shaped as {@code
   * params}); input cotangents are not computed.
   */
  Vjp vjp(Params params, NDArray x);

  /** The finite network of a single-input, single-output {@code model}. */
  static Network of(Layer model) {
    return new Network() {
      @Override
      public NDArray apply(Params params, NDArray x) {
        return model.apply(params, x);
      }

      @Override
      public Vjp vjp(Params params, NDArray x) {
        Vjp vjp = model.vjp(params, List.of(x), false);
        if (vjp.outputs().size() != 1) {
          throw new IllegalArgumentException(model.name() + " has " + vjp.outputs().size() + " outputs, not one");
        }
        return vjp;
      }
    };
  }
}
