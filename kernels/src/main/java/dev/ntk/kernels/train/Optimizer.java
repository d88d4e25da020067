package dev.ntk.kernels.train;

import ai.djl.ndarray.NDArray;
import dev.ntk.kernels.Tensors;
import java.util.List;
import java.util.Locale;

/**
 * How a training step moves the parameters given their gradient, array by array, with the
 * conventions of JAX's {@code jax.example_libraries.optimizers} (which neural-tangents' examples
 * use). Step {@code i} counts from 0; each optimizer keeps {@link #stateArrays} arrays per
 * parameter array, zeros at step 0.
 *
 * <ul>
 *   <li>{@link Sgd}: {@code p -= lr g} (full-batch gradient descent, or SGD on minibatches);
 *   <li>{@link Momentum}: {@code v = mass v + g}, {@code p -= lr v};
 *   <li>{@link Adam}: {@code m = (1 - b1) g + b1 m}, {@code v = (1 - b2) g^2 + b2 v}, {@code p -=
 *       lr m̂ / (sqrt(v̂) + eps)} with {@code m̂ = m / (1 - b1^(i+1))}, {@code v̂ = v / (1 -
 *       b2^(i+1))}.
 * </ul>
 */
public sealed interface Optimizer permits Optimizer.Sgd, Optimizer.Momentum, Optimizer.Adam {
  /** The arrays of state kept per parameter array. */
  int stateArrays();

  /**
   * The parameter array after step {@code i}, followed by its new state arrays.
   *
   * @param p the parameter array before the step
   * @param g its gradient
   * @param state its {@link #stateArrays} state arrays before the step
   */
  List<NDArray> update(NDArray p, NDArray g, List<NDArray> state, long i, double learningRate);

  /** Plain gradient steps. */
  record Sgd() implements Optimizer {
    @Override
    public int stateArrays() {
      return 0;
    }

    @Override
    public List<NDArray> update(NDArray p, NDArray g, List<NDArray> state, long i, double learningRate) {
      return List.of(p.sub(Tensors.mul(g, learningRate)));
    }
  }

  /** Heavy-ball momentum with mass {@code mass} in [0, 1). */
  record Momentum(double mass) implements Optimizer {
    public Momentum {
      if (!(mass >= 0 && mass < 1)) {
        throw new IllegalArgumentException("momentum mass must be in [0, 1), got " + mass);
      }
    }

    @Override
    public int stateArrays() {
      return 1;
    }

    @Override
    public List<NDArray> update(NDArray p, NDArray g, List<NDArray> state, long i, double learningRate) {
      NDArray v = Tensors.mul(state.get(0), mass).add(g);
      return List.of(p.sub(Tensors.mul(v, learningRate)), v);
    }
  }

  /** Adam (Kingma and Ba 2015). */
  record Adam(double b1, double b2, double eps) implements Optimizer {
    /** JAX's defaults: {@code b1 = 0.9}, {@code b2 = 0.999}, {@code eps = 1e-8}. */
    public Adam() {
      this(0.9, 0.999, 1e-8);
    }

    @Override
    public int stateArrays() {
      return 2;
    }

    @Override
    public List<NDArray> update(NDArray p, NDArray g, List<NDArray> state, long i, double learningRate) {
      NDArray m = Tensors.mul(g, 1 - b1).add(Tensors.mul(state.get(0), b1));
      NDArray v = Tensors.mul(g.square(), 1 - b2).add(Tensors.mul(state.get(1), b2));
      double mScale = 1 / (1 - Math.pow(b1, i + 1));
      double vScale = 1 / (1 - Math.pow(b2, i + 1));
      NDArray denominator = Tensors.add(Tensors.mul(v, vScale).sqrt(), eps);
      NDArray step = Tensors.mul(m, mScale * learningRate).div(denominator);
      return List.of(p.sub(step), m, v);
    }
  }

  /**
   * The optimizer named {@code gd}, {@code sgd} (both {@link Sgd}), {@code momentum} ({@link
   * Momentum} of {@code mass}) or {@code adam} ({@link Adam} with JAX's defaults).
   */
  static Optimizer of(String name, double mass) {
    return switch (name.trim().toLowerCase(Locale.ROOT)) {
      case "gd", "sgd" -> new Sgd();
      case "momentum" -> new Momentum(mass);
      case "adam" -> new Adam();
      default -> throw new IllegalArgumentException("unknown optimizer \"" + name
          + "\": expected gd, sgd, momentum or adam");
    };
  }
}
