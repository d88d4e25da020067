package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;

/**
 * Base of the layers that are linear in their input and have no parameters (pooling, {@code
 * Flatten}, {@code DotGeneral} with its constant): the tangent along {@code dx} is the layer
 * applied to {@code dx}, and the second derivative is zero.
 */
abstract class FixedLinearLayer extends SingleInputLayer {
  protected FixedLinearLayer(LayerType.Arguments arguments) {
    super(arguments);
  }

  @Override
  protected final NDArray tangent(Params params, Params paramTangents, NDArray x, NDArray dx) {
    return apply(params, dx);
  }

  @Override
  protected final NDArray curvature(Params params, Params paramTangents, NDArray x, NDArray dx) {
    return null;
  }
}
