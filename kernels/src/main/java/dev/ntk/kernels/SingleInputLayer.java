package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Supplier;

/** Base of the layers that map one activation to one activation. */
public abstract class SingleInputLayer extends AbstractLayer {
  protected SingleInputLayer(LayerType.Arguments arguments) {
    super(arguments);
  }

  /** The requirements pass for this layer's single input. */
  protected abstract Spec outputSpec(Spec input, String path);

  /** The parameters of this layer; none by default. */
  protected Params init(SplittableRandom rng, Spec input, NDManager manager, DataType dtype) {
    return Params.EMPTY;
  }

  @Override
  public abstract NDArray apply(Params params, NDArray x);

  /**
   * The tangent of {@link #apply}'s output along the parameter tangents {@code paramTangents} and
   * the input tangent {@code dx}.
   */
  protected abstract NDArray tangent(Params params, Params paramTangents, NDArray x, NDArray dx);

  /**
   * The second derivative {@code D^2 g[(v, dx), (v, dx)]} of this layer's output {@code g(params,
   * x)} along the parameter tangents {@code paramTangents} ({@code v}) and the input tangent {@code
   * dx}, or null where it is zero (a layer linear in its input, without parameters).
   */
  protected abstract NDArray curvature(Params params, Params paramTangents, NDArray x, NDArray dx);

  /**
   * The backward pass: the cotangents of the parameters and, if {@code inputCotangent}, of the
   * input {@code x}, for the output cotangent {@code dy}; affine layers record their factors on
   * {@code tape} if it is not null (see {@link Vjp.Pullback#pull}).
   */
  protected abstract Cotangents backward(Params params, NDArray x, NDArray dy, AffineTape tape,
      boolean inputCotangent);

  /** The translation rule on this layer's single input kernel. */
  protected abstract KernelExpr rule(KernelExpr k, RuleContext context);

  @Override
  public final List<Spec> outputSpecs(List<Spec> inputs, String path) {
    if (inputs.size() != 1) {
      throw new ModelException(path, name() + " takes one input, got " + inputs.size()
          + " (combine branches with FanInSum, FanInProd or FanInConcat first)");
    }
    return List.of(outputSpec(inputs.get(0), path));
  }

  @Override
  public final Params init(SplittableRandom rng, List<Spec> inputs, NDManager manager, DataType dtype) {
    return init(rng, inputs.get(0), manager, dtype);
  }

  @Override
  public final List<NDArray> apply(Params params, List<NDArray> inputs) {
    return List.of(apply(params, inputs.get(0)));
  }

  @Override
  public final Jvp jvp(Params params, Params paramTangents, List<NDArray> inputs, List<NDArray> inputTangents) {
    NDArray x = inputs.get(0);
    return new Jvp(List.of(apply(params, x)), List.of(tangent(params, paramTangents, x, inputTangents.get(0))));
  }

  @Override
  public final Jet jet(Params params, Params paramTangents, List<NDArray> inputs, List<NDArray> inputTangents,
      List<NDArray> inputSeconds) {
    NDArray x = inputs.get(0);
    NDArray dx = inputTangents.get(0);
    NDArray second = tangent(params, paramTangents.map(NDArray::zerosLike), x, inputSeconds.get(0));
    NDArray curvature = curvature(params, paramTangents, x, dx);
    return new Jet(List.of(apply(params, x)), List.of(tangent(params, paramTangents, x, dx)),
        List.of(curvature == null ? second : second.add(curvature)));
  }

  @Override
  public final Vjp vjp(Params params, List<NDArray> inputs, boolean inputCotangents) {
    NDArray x = inputs.get(0);
    return new Vjp(List.of(apply(params, x)),
        (dys, tape) -> backward(params, x, dys.get(0), tape, inputCotangents));
  }

  /** The cotangents of a layer without parameters whose input cotangent is {@code dx}. */
  protected static Cotangents inputOnly(Supplier<NDArray> dx, boolean inputCotangent) {
    return new Cotangents(Params.EMPTY, inputCotangent ? List.of(dx.get()) : List.of());
  }

  @Override
  public final List<KernelExpr> rule(List<KernelExpr> inputs, RuleContext context) {
    return List.of(rule(inputs.get(0), context));
  }
}
