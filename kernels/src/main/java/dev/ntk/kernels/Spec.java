package dev.ntk.kernels;

import ai.djl.ndarray.types.Shape;

/**
 * What the requirements pass knows about an activation before anything is computed: its
 * per-example shape (batch axis excluded, channel last) and whether it is Gaussian in the
 * infinite-width limit (true after an affine layer, false for the inputs and after a
 * nonlinearity).
 */
public record Spec(Shape shape, boolean gaussian) {
  public Spec {
    if (shape == null || shape.dimension() == 0) {
      throw new IllegalArgumentException("a per-example shape needs at least one axis, got " + shape);
    }
  }

  /** The spec of raw inputs with this per-example shape. */
  public static Spec input(Shape shape) {
    return new Spec(shape, false);
  }

  /** The number of channels (the last axis). */
  public long channels() {
    return shape.get(shape.dimension() - 1);
  }

  /** Whether there are spatial axes before the channel axis. */
  public boolean hasSpatialAxes() {
    return shape.dimension() > 1;
  }

  public Spec withShape(Shape newShape) {
    return new Spec(newShape, gaussian);
  }

  public Spec withGaussian(boolean isGaussian) {
    return new Spec(shape, isGaussian);
  }
}
