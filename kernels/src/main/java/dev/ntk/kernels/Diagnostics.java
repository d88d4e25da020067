package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import java.util.List;
import java.util.Optional;

/**
 * Finding where a kernel goes wrong. Meant for a few rows at a time (the rows of one bad entry),
 * never for whole kernels: it computes every layer's kernel and keeps them until the inputs'
 * manager is closed.
 */
public final class Diagnostics {
  private Diagnostics() {}

  /**
   * The path (as model errors name it, e.g. {@code serial[3].Relu}) of the first layer whose
   * output kernel (NNGP or NTK) between {@code x1} and {@code x2} has an {@code inf} or {@code NaN}
   * entry, or empty if the whole model's kernel is finite. The children of {@code serial} layers
   * are checked one by one; any other combinator counts as one layer.
   */
  public static Optional<String> firstNonFiniteLayer(Layer model, NDArray x1, NDArray x2) {
    return walk(model, model.name(), new Flow(List.of(KernelFn.inputKernel(x1, x2))));
  }

  /** The kernels flowing from layer to layer. */
  private static final class Flow {
    List<Kernel> kernels;

    Flow(List<Kernel> kernels) {
      this.kernels = kernels;
    }
  }

  private static Optional<String> walk(Layer layer, String path, Flow flow) {
    if (layer instanceof Branching.Serial) {
      List<Layer> children = layer.children();
      for (int i = 0; i < children.size(); i++) {
        Layer child = children.get(i);
        Optional<String> found = walk(child, path + "[" + i + "]." + child.name(), flow);
        if (found.isPresent()) {
          return found;
        }
      }
      return Optional.empty();
    }
    flow.kernels = layer.kernel(flow.kernels);
    for (Kernel k : flow.kernels) {
      if (!finite(k.nngp()) || !finite(k.ntk())) {
        return Optional.of(path);
      }
    }
    return Optional.empty();
  }

  private static boolean finite(NDArray a) {
    for (double v : Tensors.toDoubles(a)) {
      if (!Double.isFinite(v)) {
        return false;
      }
    }
    return true;
  }
}
