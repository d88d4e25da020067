package dev.ntk.kernels;

import java.util.List;
import java.util.function.BiConsumer;

/**
 * What the requirements pass decided for one layer, handed to its translation rule: the layer's
 * path in the model, and the specs of its inputs and outputs. Combinators run their children
 * through {@link #apply}, which runs the pass for the child and names it.
 */
public final class RuleContext {
  private final String path;
  private final List<Spec> inputs;
  private final List<Spec> outputs;
  private final BiConsumer<String, List<KernelExpr>> taps;

  RuleContext(String path, List<Spec> inputs, List<Spec> outputs, BiConsumer<String, List<KernelExpr>> taps) {
    this.path = path;
    this.inputs = List.copyOf(inputs);
    this.outputs = List.copyOf(outputs);
    this.taps = taps;
  }

  /**
   * Runs {@code model} on {@code inputs} as the top of a model; {@code taps}, if not null, sees
   * every layer's output kernels with the layer's path.
   */
  static Result run(Layer model, List<Spec> specs, List<KernelExpr> inputs,
      BiConsumer<String, List<KernelExpr>> taps) {
    List<Spec> out = model.outputSpecs(specs, model.name());
    List<KernelExpr> result = model.rule(inputs, new RuleContext(model.name(), specs, out, taps));
    if (taps != null) {
      taps.accept(model.name(), result);
    }
    return new Result(out, result);
  }

  /** What a child of a combinator gave: its output specs and kernels. */
  public record Result(List<Spec> specs, List<KernelExpr> kernels) {}

  /**
   * Runs the requirements pass and the rule of the child {@code layer} at position {@code index}
   * of this combinator, on inputs described by {@code childInputs}.
   */
  public Result apply(Layer child, int index, List<Spec> childInputs, List<KernelExpr> kernels) {
    String childPath = childPath(path, index, child);
    List<Spec> out = child.outputSpecs(childInputs, childPath);
    List<KernelExpr> result = child.rule(kernels, new RuleContext(childPath, childInputs, out, taps));
    if (taps != null) {
      taps.accept(childPath, result);
    }
    return new Result(out, result);
  }

  /** The path of a combinator's child, as errors name it: {@code serial[3].Erf}. */
  static String childPath(String path, int index, Layer child) {
    return path + "[" + index + "]." + child.name();
  }

  /** This layer's path in the model ({@code serial[3].Erf}). */
  public String path() {
    return path;
  }

  /** The spec of input {@code i}, as the requirements pass found it. */
  public Spec input(int i) {
    return inputs.get(i);
  }

  public List<Spec> inputs() {
    return inputs;
  }

  /** The spec of output {@code i}. */
  public Spec output(int i) {
    return outputs.get(i);
  }

  public List<Spec> outputs() {
    return outputs;
  }
}
