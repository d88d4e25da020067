package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import java.util.List;
import java.util.SplittableRandom;

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
  public final List<KernelExpr> rule(List<KernelExpr> inputs, RuleContext context) {
    return List.of(rule(inputs.get(0), context));
  }
}
