package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.engine.Expr;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * A layer of a network, as in neural-tangents' {@code stax}: one object gives the finite network
 * ({@link #init}, {@link #apply}), its derivatives ({@link #jvp}, {@link #vjp}) and the
 * infinite-width translation rule ({@link #rule}).
 *
 * <p>Layers take and return lists because combinators ({@code FanOut}, {@code parallel}, the
 * {@code FanIn} layers) route several activations; most layers take exactly one. Build layers with
 * {@link Stax} or read them from a model file with {@link ModelSpec}; each layer type is described
 * once by a {@link LayerType}.
 *
 * <pre>{@code
 * Layer model = Stax.serial(Stax.dense(512, 1.5, 0.05), Stax.erf(), Stax.dense(1, 1.5, 0.05));
 * Kernel k = model.kernelFn().apply(x1, x2);
 * }</pre>
 */
public interface Layer {
  /** The description of this layer's type (name, arguments, factory). */
  LayerType type();

  /** The layer's name in model files ({@code Dense}, {@code serial}, ...). */
  default String name() {
    return type().name();
  }

  /** The keyword arguments of this layer as a model file writes them, in a stable order. */
  Map<String, Object> arguments();

  /** The children of a combinator, in order; empty for a plain layer. */
  default List<Layer> children() {
    return List.of();
  }

  /**
   * The requirements pass: what comes out of this layer for inputs described by {@code inputs},
   * or a {@link ModelException} naming {@code path} if the layer cannot take them. Runs before
   * any computation.
   */
  List<Spec> outputSpecs(List<Spec> inputs, String path);

  /**
   * The backward half of the requirements pass: given which of this layer's outputs are needed
   * with their full pixel-pair covariance ({@code outputsFull}; otherwise only the per-pixel
   * variances and covariances, the pixel-diagonal), which of its inputs are. By default a layer
   * needs of each input what is needed of its outputs; pooling needs the full covariance whatever
   * follows, {@code Flatten} only the diagonal. Inputs without pixels ignore the answer.
   */
  default List<Boolean> inputsFull(List<Boolean> outputsFull, List<Spec> inputs) {
    boolean any = outputsFull.contains(Boolean.TRUE);
    if (inputs.size() == 1) {
      return List.of(any);
    }
    return java.util.Collections.nCopies(inputs.size(), any);
  }

  /**
   * Masking (neural-tangents' {@code mask_fn}): the per-position masks of this layer's outputs
   * ({@link KernelExpr#kept1()}: per-pixel blocks, 1 kept, 0 masked) given those of its inputs
   * ({@code null} for an unmasked input or one without positions), as expressions of them; null
   * for an output without positions. By default an output on its inputs' grid keeps their mask
   * and a layer that changes the grid rejects masked inputs naming its path ({@link Masks});
   * windows ({@code Conv}, pooling) pick the mask under their centre. The outputs' covariances at
   * masked positions are then zeroed whatever the rule gave.
   */
  default List<Expr> outputMasks(List<Expr> masks, RuleContext context) {
    return Masks.sameGrid(this, masks, context);
  }

  /**
   * The names of this layer's own parameter arrays, in the order of {@link Params#arrays()}:
   * {@code W}, then {@code b} with a bias, for the affine layers; none for the others. A
   * parameters file names each array {@code <layer path>/<name>} ({@link Params#named}).
   */
  default List<String> parameterNames() {
    return List.of();
  }

  /** Draws the parameters of the finite network; {@code inputs} are the per-example input specs. */
  Params init(SplittableRandom rng, List<Spec> inputs, NDManager manager, DataType dtype);

  /** The finite network's forward pass on batches (batch axis first). */
  List<NDArray> apply(Params params, List<NDArray> inputs);

  /**
   * The Jacobian-vector product of the finite forward pass: the outputs of {@link #apply} and
   * their tangents along {@code paramTangents} (shaped as {@code params}) and {@code
   * inputTangents} (shaped as {@code inputs}). Written beside each layer's {@code apply}.
   */
  Jvp jvp(Params params, Params paramTangents, List<NDArray> inputs, List<NDArray> inputTangents);

  /**
   * The second-order Taylor-mode forward pass ({@link Jet}): the outputs and their first and
   * second derivatives along the parameters {@code params + e paramTangents} and the inputs {@code
   * inputs + e inputTangents + e^2/2 inputSeconds}. Written beside each layer's {@code apply}: a
   * layer {@code y = g(p, x)} gives {@code y2 = D_x g[x2] + D^2 g[(v, x1), (v, x1)]}, its second
   * derivative along the curve's direction (zero for layers linear in their input without
   * parameters; {@code phi''(x) x1^2} for a nonlinearity; {@code 2 s product(x1, v_W)} for an
   * affine layer, bilinear in its input and weights).
   */
  Jet jet(Params params, Params paramTangents, List<NDArray> inputs, List<NDArray> inputTangents,
      List<NDArray> inputSeconds);

  /**
   * The vector-Jacobian product of the finite forward pass: runs it once and returns its outputs
   * with the pullback from output cotangents to parameter cotangents (shaped as {@code params})
   * and, if {@code inputCotangents}, input cotangents. Written beside each layer's {@code apply}.
   */
  Vjp vjp(Params params, List<NDArray> inputs, boolean inputCotangents);

  /**
   * The infinite-width translation rule, NNGP and NTK together, as entry-wise expressions. It runs
   * once, when a plan is compiled, after the requirements pass has checked the inputs: {@code
   * context} holds the specs the pass found.
   */
  List<KernelExpr> rule(List<KernelExpr> inputs, RuleContext context);

  /** The kernel function of the infinite network this layer defines. */
  default KernelFn kernelFn() {
    return new KernelFn(this);
  }

  /** Parameters for a single input of per-example shape {@code inputShape}. */
  default Params init(long seed, Shape inputShape, NDManager manager, DataType dtype) {
    return init(new SplittableRandom(seed), List.of(Spec.input(inputShape)), manager, dtype);
  }

  /** The forward pass of a single-input, single-output network. */
  default NDArray apply(Params params, NDArray x) {
    List<NDArray> out = apply(params, List.of(x));
    if (out.size() != 1) {
      throw new IllegalStateException(name() + " has " + out.size() + " outputs, not one");
    }
    return out.get(0);
  }

  /** The output spec of a single-input, single-output network, checking every layer. */
  default Spec check(Shape inputShape) {
    List<Spec> out = outputSpecs(List.of(Spec.input(inputShape)), name());
    if (out.size() != 1) {
      throw new ModelException(name(), "the model must end with one output, it has " + out.size());
    }
    return out.get(0);
  }
}
