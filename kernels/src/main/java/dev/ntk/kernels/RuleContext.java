package dev.ntk.kernels;

import dev.ntk.kernels.engine.Expr;
import dev.ntk.kernels.engine.Layout;
import java.util.List;
import java.util.function.BiConsumer;

/**
 * What the requirements pass decided for one layer, handed to its translation rule: the layer's
 * path in the model, and the specs of its inputs and outputs. Combinators run their children
 * through {@link #apply}, which runs the pass for the child and names it, and hands each child
 * its inputs' kernels reduced to their pixel-diagonal where it needs no more.
 */
public final class RuleContext {
  private final String path;
  private final List<Spec> inputs;
  private final List<Spec> outputs;
  private final List<Boolean> outputsFull;
  private final BiConsumer<String, List<KernelExpr>> taps;
  /** What the rules of one model run say about it, shared by every layer of the model. */
  private final Shared shared;

  /** Whether the run is for one input with itself, and what the rules said. */
  private static final class Shared {
    final boolean sameExample;
    /** Set by a rule that is not symmetric in its two inputs. */
    boolean asymmetric;
    /** Set by a rule that asked {@link #sameExample()}. */
    boolean asksSameExample;
    /** The plan inputs of the graphs' patterns ({@link #patterns}), once a rule asked; null before. */
    Expr[] patterns;
    /** The path of the first layer that asked for the patterns. */
    String patternPath;
    /** Whether the patterns are edge lists (neural-tangents' {@code SPARSE}) rather than dense. */
    boolean sparsePatterns;

    Shared(boolean sameExample) {
      this.sameExample = sameExample;
    }
  }

  RuleContext(String path, List<Spec> inputs, List<Spec> outputs, List<Boolean> outputsFull,
      BiConsumer<String, List<KernelExpr>> taps, Shared shared) {
    this.shared = shared;
    this.path = path;
    this.inputs = List.copyOf(inputs);
    this.outputs = List.copyOf(outputs);
    this.outputsFull = List.copyOf(outputsFull);
    this.taps = taps;
  }

  /**
   * Runs {@code model} on {@code inputs} as the top of a model whose outputs are needed per pixel
   * only; {@code taps}, if not null, sees every layer's output kernels with the layer's path.
   */
  static Result run(Layer model, List<Spec> specs, List<KernelExpr> inputs,
      BiConsumer<String, List<KernelExpr>> taps) {
    return run(model, specs, inputs, taps, false);
  }

  /**
   * As {@link #run(Layer, List, List, BiConsumer)}; with {@code sameExample}, the rules are those of
   * the kernel of an input with itself in a kernel of x1 with itself ({@link #sameExample()}).
   */
  static Result run(Layer model, List<Spec> specs, List<KernelExpr> inputs,
      BiConsumer<String, List<KernelExpr>> taps, boolean sameExample) {
    return run(model, specs, inputs, taps, sameExample, false);
  }

  /**
   * As {@link #run(Layer, List, List, BiConsumer, boolean)}, for a model whose outputs are needed
   * with their pixel-pair covariance ({@code outputFull}: a kernel that keeps the output's spatial
   * axes, {@link Spatial#FULL}) or per pixel only.
   */
  static Result run(Layer model, List<Spec> specs, List<KernelExpr> inputs,
      BiConsumer<String, List<KernelExpr>> taps, boolean sameExample, boolean outputFull) {
    List<Spec> out = model.outputSpecs(specs, model.name());
    List<Boolean> full = java.util.Collections.nCopies(out.size(), outputFull);
    Shared shared = new Shared(sameExample);
    RuleContext context = new RuleContext(model.name(), specs, out, full, taps, shared);
    List<KernelExpr> result = masked(model, inputs, model.rule(reduce(model, specs, inputs, full), context), context);
    if (taps != null) {
      taps.accept(model.name(), result);
    }
    return new Result(out, result, !shared.asymmetric, shared.asksSameExample, patternLayout(shared),
        shared.patternPath, shared.sparsePatterns);
  }

  private static Layout patternLayout(Shared shared) {
    return shared.patterns == null ? null : shared.patterns[0].layout();
  }

  /**
   * The aggregation matrices of the row and the column input of the pair, {@code M = A^T} of each
   * input's graph pattern {@code A} over {@code nodes} (a pixel-pair layout: one matrix entry per
   * two nodes), as plan inputs that the user gives with the inputs ({@link Plan#PATTERN1}, {@link
   * Plan#PATTERN2}; {@code Aggregate}). Every layer that asks shares them, so they must all see
   * one node grid and one format ({@code sparse}: edge lists); in the run for an input with itself
   * ({@link #sameExample()}) both are the row input's.
   */
  public Expr[] patterns(Layout nodes, boolean sparse) {
    if (shared.patterns != null && shared.sparsePatterns != sparse) {
      throw new ModelException(path, "the graph pattern is " + (shared.sparsePatterns ? "SPARSE" : "DENSE")
          + " for " + shared.patternPath + " but " + (sparse ? "SPARSE" : "DENSE") + " here: every Aggregate of a "
          + "model reads one pattern per input, so all must have one implementation");
    }
    if (shared.patterns == null) {
      shared.sparsePatterns = sparse;
      shared.patterns = new Expr[] {
          Expr.input(Plan.PATTERN1, Expr.Domain.ROW, nodes),
          Expr.input(Plan.PATTERN2, Expr.Domain.COL, nodes)};
      shared.patternPath = path;
    } else if (!shared.patterns[0].layout().equals(nodes)) {
      throw new ModelException(path, "the graph pattern is over the nodes " + shared.patterns[0].layout()
          + " of " + shared.patternPath + ", but this layer's input has nodes " + nodes
          + ": every Aggregate of a model reads one pattern per input, so all must see one node grid");
    }
    Expr[] p = shared.patterns;
    return shared.sameExample ? new Expr[] {p[0], p[0]} : p.clone();
  }

  /**
   * Says that this layer's rule is not symmetric in its two inputs (neural-tangents' {@code
   * ElementwiseNumerical}): the kernel of x1 with itself is then computed whole, not as a
   * triangle and its mirror image.
   */
  public void asymmetric() {
    shared.asymmetric = true;
  }

  /**
   * Whether this run of the rules is for the kernel of an example with itself in a kernel of x1
   * with itself (neural-tangents' {@code x1_is_x2} on the batch diagonal), which a rule such as
   * {@code Dropout}'s gives apart from the kernel of two different examples. Asking says that the
   * model's rules differ there: its plan then also runs them once more per input of x1 with itself,
   * with this {@code true}, and writes the results on the diagonal of the kernels.
   */
  public boolean sameExample() {
    shared.asksSameExample = true;
    return shared.sameExample;
  }

  /**
   * Whether the requirements pass keeps the full pixel covariance of the raw inputs of {@code
   * model}, whose outputs are needed with theirs ({@code outputFull}) or per pixel only.
   */
  static boolean inputFull(Layer model, Spec input, boolean outputFull) {
    List<Spec> out = model.outputSpecs(List.of(input), model.name());
    return model.inputsFull(java.util.Collections.nCopies(out.size(), outputFull), List.of(input)).get(0)
        && input.hasSpatialAxes();
  }

  /**
   * The outputs of a layer's rule with masks ({@link Masks}): where an input is masked, a plain
   * layer's outputs get the masks {@link Layer#outputMasks} gives and are remasked; a combinator's
   * outputs carry what its children gave them.
   */
  private static List<KernelExpr> masked(Layer layer, List<KernelExpr> inputs, List<KernelExpr> outputs,
      RuleContext context) {
    if (!layer.children().isEmpty() || inputs.stream().noneMatch(KernelExpr::masked)) {
      return outputs;
    }
    List<Expr> kept1 = layer.outputMasks(inputs.stream().map(KernelExpr::kept1).toList(), context);
    List<Expr> kept2 = layer.outputMasks(inputs.stream().map(KernelExpr::kept2).toList(), context);
    List<KernelExpr> out = new java.util.ArrayList<>(outputs.size());
    for (int i = 0; i < outputs.size(); i++) {
      out.add(Masks.remask(outputs.get(i), kept1.get(i), kept2.get(i)));
    }
    return out;
  }

  /** {@code kernels} reduced to their pixel-diagonal where {@code layer} needs no more of them. */
  private static List<KernelExpr> reduce(Layer layer, List<Spec> specs, List<KernelExpr> kernels,
      List<Boolean> outputsFull) {
    List<Boolean> need = layer.inputsFull(outputsFull, specs);
    List<KernelExpr> out = new java.util.ArrayList<>(kernels.size());
    for (int i = 0; i < kernels.size(); i++) {
      KernelExpr k = kernels.get(i);
      out.add(k.isFull() && !need.get(i) ? k.diagonal() : k);
    }
    return out;
  }

  /**
   * What a child of a combinator gave: its output specs and kernels, whether every rule so far
   * is symmetric in its two inputs, and the node layout of the graph patterns the rules read
   * ({@link #patterns}) with the path of the first layer that reads them (null, null if none does)
   * and whether they are edge lists.
   */
  public record Result(List<Spec> specs, List<KernelExpr> kernels, boolean symmetric, boolean asksSameExample,
      Layout patternLayout, String patternPath, boolean sparsePatterns) {}

  /**
   * Runs the requirements pass and the rule of the child {@code layer} at position {@code index}
   * of this combinator, on inputs described by {@code childInputs}.
   */
  public Result apply(Layer child, int index, List<Spec> childInputs, List<KernelExpr> kernels,
      List<Boolean> childOutputsFull) {
    String childPath = childPath(path, index, child);
    List<Spec> out = child.outputSpecs(childInputs, childPath);
    RuleContext context = new RuleContext(childPath, childInputs, out, childOutputsFull, taps, shared);
    List<KernelExpr> result = masked(child, kernels,
        child.rule(reduce(child, childInputs, kernels, childOutputsFull), context), context);
    if (taps != null) {
      taps.accept(childPath, result);
    }
    return new Result(out, result, !shared.asymmetric, shared.asksSameExample, patternLayout(shared),
        shared.patternPath, shared.sparsePatterns);
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

  /** Which outputs are needed with their full pixel covariance (see {@link Layer#inputsFull}). */
  public List<Boolean> outputsFull() {
    return outputsFull;
  }

  /** The spec of output {@code i}. */
  public Spec output(int i) {
    return outputs.get(i);
  }

  public List<Spec> outputs() {
    return outputs;
  }
}
