package dev.ntk.kernels.train;

import ai.djl.ndarray.NDArray;
import dev.ntk.kernels.Jet;
import dev.ntk.kernels.Jvp;
import dev.ntk.kernels.Layer;
import dev.ntk.kernels.Params;
import dev.ntk.kernels.Tensors;
import dev.ntk.kernels.Vjp;
import java.util.ArrayList;
import java.util.List;

/**
 * Taylor expansions of a finite network in its parameters around {@code params0}, as
 * neural-tangents' {@code nt.linearize} and {@code nt.taylor_expand} ({@link #taylorExpand}, degree
 * 1 or 2).
 *
 * <p>The linearization {@code f_lin(p, x) = f(p0, x) + J(p0, x) (p - p0)} is one Jacobian-vector
 * product ({@link Layer#jvp}) along {@code p - p0}; being linear in {@code p}, its parameter
 * gradient is the network's vector-Jacobian product at {@code p0} ({@link Layer#vjp}) whatever
 * {@code p} is. Trained by gradient descent on MSE, it follows the empirical NTK's dynamics
 * exactly; wide networks stay close to it (Lee et al. 2019).
 */
public final class Taylor {
  private Taylor() {}

  /**
   * The linearization of the single-input, single-output {@code model} around {@code params0}.
   * The network keeps {@code params0} (not copied): they must stay open while it is used.
   */
  public static Network linearize(Layer model, Params params0) {
    return new Network() {
      @Override
      public NDArray apply(Params params, NDArray x) {
        Jvp jvp = model.jvp(params0, difference(params, params0), List.of(x), List.of(x.zerosLike()));
        if (jvp.outputs().size() != 1) {
          throw new IllegalArgumentException(model.name() + " has " + jvp.outputs().size() + " outputs, not one");
        }
        return jvp.outputs().get(0).add(jvp.tangent());
      }

      @Override
      public Vjp vjp(Params params, NDArray x) {
        Vjp atParams0 = Network.of(model).vjp(params0, x);
        return new Vjp(List.of(apply(params, x)), atParams0.pullback());
      }
    };
  }

  /** A function of the parameters and one batch of inputs: a Taylor expansion of a network. */
  @FunctionalInterface
  public interface Expansion {
    /** The expansion's outputs at {@code params} for the inputs {@code x}. */
    NDArray apply(Params params, NDArray x);
  }

  /**
   * The Taylor expansion of degree 1 or 2 of the single-input, single-output {@code model} in its
   * parameters around {@code params0} (neural-tangents' {@code taylor_expand}): degree 1 is
   * {@link #linearize}; degree 2 adds {@code 1/2 (p - p0)^T H (p - p0)}, from one second-order
   * Taylor-mode forward pass ({@link Layer#jet}) along {@code p - p0}. {@code params0} must stay
   * open while the expansion is used.
   */
  public static Expansion taylorExpand(Layer model, Params params0, int degree) {
    return switch (degree) {
      case 1 -> linearize(model, params0)::apply;
      case 2 -> (params, x) -> {
        NDArray zeros = x.zerosLike();
        Jet jet = model.jet(params0, difference(params, params0), List.of(x), List.of(zeros), List.of(zeros));
        if (jet.outputs().size() != 1) {
          throw new IllegalArgumentException(model.name() + " has " + jet.outputs().size() + " outputs, not one");
        }
        return jet.outputs().get(0).add(jet.tangents().get(0)).add(Tensors.mul(jet.seconds().get(0), 0.5));
      };
      default -> throw new IllegalArgumentException("Taylor expansions of degree 1 or 2, not " + degree);
    };
  }

  /** {@code a - b}, array by array; the two shaped alike. */
  static Params difference(Params a, Params b) {
    List<NDArray> x = a.leaves();
    List<NDArray> y = b.leaves();
    if (x.size() != y.size()) {
      throw new IllegalArgumentException("parameters of " + x.size() + " and " + y.size() + " arrays");
    }
    List<NDArray> out = new ArrayList<>(x.size());
    for (int i = 0; i < x.size(); i++) {
      out.add(x.get(i).sub(y.get(i)));
    }
    return a.withLeaves(out);
  }
}
