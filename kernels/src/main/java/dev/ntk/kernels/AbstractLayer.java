package dev.ntk.kernels;

import java.util.Map;

/** Base of the layers built from a {@link LayerType} and its checked arguments. */
public abstract class AbstractLayer implements Layer {
  private final LayerType.Arguments arguments;

  protected AbstractLayer(LayerType.Arguments arguments) {
    this.arguments = arguments;
  }

  @Override
  public final LayerType type() {
    return arguments.type();
  }

  /** The checked arguments this layer was built from. */
  protected final LayerType.Arguments args() {
    return arguments;
  }

  @Override
  public Map<String, Object> arguments() {
    return arguments.asMap();
  }

  @Override
  public String toString() {
    return name() + arguments();
  }
}
