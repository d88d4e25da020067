package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.LayerType.Argument;
import dev.ntk.kernels.engine.Expr;
import dev.ntk.kernels.engine.PixelMap;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.BinaryOperator;
import java.util.function.UnaryOperator;

/**
 * Combinators: {@link Serial} composition, {@link Parallel} application, {@link Repeat}ed
 * application, {@link FanOut} and the fan-in layers {@link FanInSum}, {@link FanInProd}, {@link
 * FanInConcat}. {@link Stax} re-exports its factories ({@code Stax.serial(...)}).
 */
public final class Branching {
  private Branching() {}

  public static final LayerType SERIAL = LayerType.combinator("serial",
      "composition: the first layer is applied first", Serial::new);
  public static final LayerType PARALLEL = LayerType.combinator("parallel",
      "applies the i-th layer to the i-th of several inputs", Parallel::new);
  public static final LayerType REPEAT = LayerType.of("repeat", "applies layer n times, each with its own "
      + "parameters (serial of n copies)", Repeat::new, Argument.layer("layer"), Argument.requiredInteger("n"));
  public static final LayerType FAN_OUT = LayerType.of("FanOut", "copies one input into num",
      FanOut::new, Argument.positiveInteger("num", 2));
  public static final LayerType FAN_IN_SUM = LayerType.of("FanInSum", "sums several inputs",
      FanInSum::new);
  public static final LayerType FAN_IN_PROD = LayerType.of("FanInProd",
      "multiplies several inputs elementwise", FanInProd::new);
  public static final LayerType FAN_IN_CONCAT = LayerType.of("FanInConcat",
      "concatenates several inputs along axis (-1: channels; a spatial axis)", FanInConcat::new,
      Argument.integer("axis", -1));

  public static Layer serial(Layer... layers) {
    return SERIAL.create((Object[]) layers);
  }

  public static Layer parallel(Layer... layers) {
    return PARALLEL.create((Object[]) layers);
  }

  /** {@code layer} applied {@code n} times, {@code serial} of {@code n} copies (neural-tangents' {@code repeat}). */
  public static Layer repeat(Layer layer, int n) {
    return REPEAT.create(layer, n);
  }

  public static Layer fanOut(int num) {
    return FAN_OUT.create(num);
  }

  public static Layer fanInSum() {
    return FAN_IN_SUM.create();
  }

  public static Layer fanInProd() {
    return FAN_IN_PROD.create();
  }

  /** Concatenation along the channel axis. */
  public static Layer fanInConcat() {
    return FAN_IN_CONCAT.create();
  }

  /** Concatenation along {@code axis} of the batch {@code (N, spatial..., C)}: -1 or a spatial axis. */
  public static Layer fanInConcat(int axis) {
    return FAN_IN_CONCAT.create(axis);
  }

  /** A layer made of child layers, which a model file lists in order. */
  abstract static class Combinator implements Layer {
    final List<Layer> layers;
    private final LayerType type;

    Combinator(LayerType type, List<Layer> layers) {
      this.type = type;
      this.layers = List.copyOf(layers);
    }

    @Override
    public LayerType type() {
      return type;
    }

    @Override
    public Map<String, Object> arguments() {
      return Map.of();
    }

    @Override
    public List<Layer> children() {
      return layers;
    }

    @Override
    public String toString() {
      return name() + layers;
    }
  }

  /** Composition: the first child is applied first. */
  public static final class Serial extends Combinator {
    Serial(List<Layer> layers) {
      super(SERIAL, layers);
    }

    @Override
    public List<Spec> outputSpecs(List<Spec> inputs, String path) {
      List<Spec> specs = inputs;
      for (int i = 0; i < layers.size(); i++) {
        specs = layers.get(i).outputSpecs(specs, RuleContext.childPath(path, i, layers.get(i)));
      }
      return specs;
    }

    @Override
    public Params init(SplittableRandom rng, List<Spec> inputs, NDManager manager, DataType dtype) {
      List<Params> params = new ArrayList<>();
      List<Spec> specs = inputs;
      for (Layer layer : layers) {
        params.add(layer.init(rng, specs, manager, dtype));
        specs = layer.outputSpecs(specs, layer.name());
      }
      return Params.ofChildren(params);
    }

    @Override
    public List<NDArray> apply(Params params, List<NDArray> inputs) {
      List<NDArray> xs = inputs;
      for (int i = 0; i < layers.size(); i++) {
        xs = layers.get(i).apply(params.child(i), xs);
      }
      return xs;
    }

    @Override
    public Jvp jvp(Params params, Params paramTangents, List<NDArray> inputs, List<NDArray> inputTangents) {
      Jvp step = new Jvp(inputs, inputTangents);
      for (int i = 0; i < layers.size(); i++) {
        step = layers.get(i).jvp(params.child(i), paramTangents.child(i), step.outputs(), step.tangents());
      }
      return step;
    }

    @Override
    public Jet jet(Params params, Params paramTangents, List<NDArray> inputs, List<NDArray> inputTangents,
        List<NDArray> inputSeconds) {
      Jet step = new Jet(inputs, inputTangents, inputSeconds);
      for (int i = 0; i < layers.size(); i++) {
        step = layers.get(i).jet(params.child(i), paramTangents.child(i), step.outputs(), step.tangents(),
            step.seconds());
      }
      return step;
    }

    @Override
    public Vjp vjp(Params params, List<NDArray> inputs, boolean inputCotangents) {
      List<Vjp> steps = new ArrayList<>();
      List<NDArray> xs = inputs;
      for (int i = 0; i < layers.size(); i++) {
        // Only the first layer's input cotangents may be unwanted; the others feed the layer before.
        Vjp step = layers.get(i).vjp(params.child(i), xs, i > 0 || inputCotangents);
        steps.add(step);
        xs = step.outputs();
      }
      return new Vjp(xs, (dys, tape) -> {
        Params[] grads = new Params[layers.size()];
        List<NDArray> d = dys;
        for (int i = layers.size() - 1; i >= 0; i--) {
          Cotangents c = steps.get(i).pullback().pull(d, tape);
          grads[i] = c.params();
          d = c.inputs();
        }
        return new Cotangents(Params.ofChildren(List.of(grads)), inputCotangents ? d : List.of());
      });
    }

    @Override
    public List<KernelExpr> rule(List<KernelExpr> inputs, RuleContext context) {
      List<List<Boolean>> full = outputsFull(context.outputsFull(), context.inputs());
      List<Spec> specs = context.inputs();
      List<KernelExpr> kernels = inputs;
      for (int i = 0; i < layers.size(); i++) {
        RuleContext.Result r = context.apply(layers.get(i), i, specs, kernels, full.get(i));
        specs = r.specs();
        kernels = r.kernels();
      }
      return kernels;
    }

    @Override
    public List<Boolean> inputsFull(List<Boolean> outputsFull, List<Spec> inputs) {
      List<List<Boolean>> full = outputsFull(outputsFull, inputs);
      return layers.isEmpty() ? outputsFull : layers.get(0).inputsFull(full.get(0), inputs);
    }

    /** What is needed of each child's outputs, walking back from what is needed of the last. */
    private List<List<Boolean>> outputsFull(List<Boolean> outputsFull, List<Spec> inputs) {
      List<List<Spec>> specs = new ArrayList<>();
      List<Spec> s = inputs;
      for (Layer layer : layers) {
        specs.add(s);
        s = layer.outputSpecs(s, layer.name());
      }
      List<List<Boolean>> full = new ArrayList<>(Collections.nCopies(layers.size(), List.of()));
      List<Boolean> need = outputsFull;
      for (int i = layers.size() - 1; i >= 0; i--) {
        full.set(i, need);
        need = layers.get(i).inputsFull(need, specs.get(i));
      }
      return full;
    }
  }

  /** Applies the i-th child to the i-th input. */
  public static final class Parallel extends Combinator {
    Parallel(List<Layer> layers) {
      super(PARALLEL, layers);
    }

    @Override
    public List<Spec> outputSpecs(List<Spec> inputs, String path) {
      if (inputs.size() != layers.size()) {
        throw new ModelException(path, "parallel has " + layers.size() + " branches but receives "
            + inputs.size() + " inputs (use FanOut to copy one input)");
      }
      List<Spec> out = new ArrayList<>();
      for (int i = 0; i < layers.size(); i++) {
        out.addAll(layers.get(i).outputSpecs(List.of(inputs.get(i)),
            RuleContext.childPath(path, i, layers.get(i))));
      }
      return out;
    }

    @Override
    public Params init(SplittableRandom rng, List<Spec> inputs, NDManager manager, DataType dtype) {
      List<Params> params = new ArrayList<>();
      for (int i = 0; i < layers.size(); i++) {
        params.add(layers.get(i).init(rng, List.of(inputs.get(i)), manager, dtype));
      }
      return Params.ofChildren(params);
    }

    @Override
    public List<NDArray> apply(Params params, List<NDArray> inputs) {
      List<NDArray> out = new ArrayList<>();
      for (int i = 0; i < layers.size(); i++) {
        out.addAll(layers.get(i).apply(params.child(i), List.of(inputs.get(i))));
      }
      return out;
    }

    @Override
    public Jvp jvp(Params params, Params paramTangents, List<NDArray> inputs, List<NDArray> inputTangents) {
      List<NDArray> out = new ArrayList<>();
      List<NDArray> tangents = new ArrayList<>();
      for (int i = 0; i < layers.size(); i++) {
        Jvp branch = layers.get(i).jvp(params.child(i), paramTangents.child(i), List.of(inputs.get(i)),
            List.of(inputTangents.get(i)));
        out.addAll(branch.outputs());
        tangents.addAll(branch.tangents());
      }
      return new Jvp(out, tangents);
    }

    @Override
    public Jet jet(Params params, Params paramTangents, List<NDArray> inputs, List<NDArray> inputTangents,
        List<NDArray> inputSeconds) {
      List<NDArray> out = new ArrayList<>();
      List<NDArray> tangents = new ArrayList<>();
      List<NDArray> seconds = new ArrayList<>();
      for (int i = 0; i < layers.size(); i++) {
        Jet branch = layers.get(i).jet(params.child(i), paramTangents.child(i), List.of(inputs.get(i)),
            List.of(inputTangents.get(i)), List.of(inputSeconds.get(i)));
        out.addAll(branch.outputs());
        tangents.addAll(branch.tangents());
        seconds.addAll(branch.seconds());
      }
      return new Jet(out, tangents, seconds);
    }

    @Override
    public Vjp vjp(Params params, List<NDArray> inputs, boolean inputCotangents) {
      List<Vjp> branches = new ArrayList<>();
      List<NDArray> out = new ArrayList<>();
      for (int i = 0; i < layers.size(); i++) {
        Vjp branch = layers.get(i).vjp(params.child(i), List.of(inputs.get(i)), inputCotangents);
        branches.add(branch);
        out.addAll(branch.outputs());
      }
      return new Vjp(out, (dys, tape) -> {
        List<Params> grads = new ArrayList<>();
        List<NDArray> dx = new ArrayList<>();
        int at = 0;
        for (Vjp branch : branches) {
          int n = branch.outputs().size();
          Cotangents c = branch.pullback().pull(dys.subList(at, at + n), tape);
          at += n;
          grads.add(c.params());
          dx.addAll(c.inputs());
        }
        return new Cotangents(Params.ofChildren(grads), dx);
      });
    }

    @Override
    public List<KernelExpr> rule(List<KernelExpr> inputs, RuleContext context) {
      List<List<Boolean>> full = split(context.outputsFull(), context.inputs());
      List<KernelExpr> out = new ArrayList<>();
      for (int i = 0; i < layers.size(); i++) {
        out.addAll(context.apply(layers.get(i), i, List.of(context.input(i)),
            List.of(inputs.get(i)), full.get(i)).kernels());
      }
      return out;
    }

    @Override
    public List<Boolean> inputsFull(List<Boolean> outputsFull, List<Spec> inputs) {
      List<List<Boolean>> full = split(outputsFull, inputs);
      List<Boolean> need = new ArrayList<>();
      for (int i = 0; i < layers.size(); i++) {
        need.addAll(layers.get(i).inputsFull(full.get(i), List.of(inputs.get(i))));
      }
      return need;
    }

    /** {@code outputsFull} split into each branch's outputs. */
    private List<List<Boolean>> split(List<Boolean> outputsFull, List<Spec> inputs) {
      List<List<Boolean>> full = new ArrayList<>();
      int at = 0;
      for (int i = 0; i < layers.size(); i++) {
        int n = layers.get(i).outputSpecs(List.of(inputs.get(i)), layers.get(i).name()).size();
        full.add(outputsFull.subList(at, at + n));
        at += n;
      }
      return full;
    }
  }

  /**
   * {@code layer} applied {@code n} times, neural-tangents' {@code stax.repeat(layer, n)}: the same
   * network as {@code serial} of {@code n} copies of {@code layer}, each copy with parameters of its
   * own, written once in a model file. Paths name each application as {@code serial} names its
   * children ({@code repeat[3].Dense}), and so do the parameters. neural-tangents runs its loop
   * compiled and so requires {@code layer} to keep the activation's shape; here the copies are
   * composed as {@code serial} composes, so the first application may change it (a {@code Dense}
   * block on inputs of another width). The kernel plan unrolls the loop: its steps are entry-wise
   * expressions of every layer, fused across layers, so a repeated block costs what the same block
   * written out costs.
   */
  public static final class Repeat extends AbstractLayer {
    private final Layer layer;
    private final int n;
    private final Serial unrolled;

    Repeat(LayerType.Arguments args) {
      super(args);
      this.layer = args.layer("layer");
      this.n = args.integer("n");
      if (n < 0) {
        throw new IllegalArgumentException("argument \"n\" must be a non-negative integer (the number of "
            + "applications), got " + n);
      }
      this.unrolled = new Serial(Collections.nCopies(n, layer));
    }

    /** The layer applied. */
    public Layer layer() {
      return layer;
    }

    /** How many times it is applied. */
    public int n() {
      return n;
    }

    /** The {@code n} applications, in order (one layer, {@code n} times). */
    @Override
    public List<Layer> children() {
      return unrolled.children();
    }

    @Override
    public List<Spec> outputSpecs(List<Spec> inputs, String path) {
      return unrolled.outputSpecs(inputs, path);
    }

    @Override
    public List<Boolean> inputsFull(List<Boolean> outputsFull, List<Spec> inputs) {
      return unrolled.inputsFull(outputsFull, inputs);
    }

    @Override
    public Params init(SplittableRandom rng, List<Spec> inputs, NDManager manager, DataType dtype) {
      return unrolled.init(rng, inputs, manager, dtype);
    }

    @Override
    public List<NDArray> apply(Params params, List<NDArray> inputs) {
      return unrolled.apply(params, inputs);
    }

    @Override
    public Jvp jvp(Params params, Params paramTangents, List<NDArray> inputs, List<NDArray> inputTangents) {
      return unrolled.jvp(params, paramTangents, inputs, inputTangents);
    }

    @Override
    public Jet jet(Params params, Params paramTangents, List<NDArray> inputs, List<NDArray> inputTangents,
        List<NDArray> inputSeconds) {
      return unrolled.jet(params, paramTangents, inputs, inputTangents, inputSeconds);
    }

    @Override
    public Vjp vjp(Params params, List<NDArray> inputs, boolean inputCotangents) {
      return unrolled.vjp(params, inputs, inputCotangents);
    }

    @Override
    public List<KernelExpr> rule(List<KernelExpr> inputs, RuleContext context) {
      return unrolled.rule(inputs, context);
    }
  }

  /** Base of the layers that route activations and have no parameters. */
  abstract static class Router extends AbstractLayer {
    Router(LayerType.Arguments arguments) {
      super(arguments);
    }

    @Override
    public Params init(SplittableRandom rng, List<Spec> inputs, NDManager manager, DataType dtype) {
      return Params.EMPTY;
    }
  }

  /** Copies one input into {@code num}. */
  public static final class FanOut extends Router {
    private final int num;

    FanOut(LayerType.Arguments args) {
      super(args);
      this.num = args.integer("num");
    }

    @Override
    public List<Spec> outputSpecs(List<Spec> inputs, String path) {
      if (inputs.size() != 1) {
        throw new ModelException(path, "FanOut takes one input, got " + inputs.size());
      }
      return Collections.nCopies(num, inputs.get(0));
    }

    @Override
    public List<NDArray> apply(Params params, List<NDArray> inputs) {
      return Collections.nCopies(num, inputs.get(0));
    }

    @Override
    public Jvp jvp(Params params, Params paramTangents, List<NDArray> inputs, List<NDArray> inputTangents) {
      return new Jvp(apply(params, inputs), Collections.nCopies(num, inputTangents.get(0)));
    }

    @Override
    public Jet jet(Params params, Params paramTangents, List<NDArray> inputs, List<NDArray> inputTangents,
        List<NDArray> inputSeconds) {
      return new Jet(apply(params, inputs), Collections.nCopies(num, inputTangents.get(0)),
          Collections.nCopies(num, inputSeconds.get(0)));
    }

    @Override
    public Vjp vjp(Params params, List<NDArray> inputs, boolean inputCotangents) {
      return new Vjp(apply(params, inputs), (dys, tape) -> {
        if (!inputCotangents) {
          return new Cotangents(Params.EMPTY, List.of());
        }
        NDArray sum = dys.get(0);
        for (NDArray d : dys.subList(1, dys.size())) {
          sum = sum.add(d);
        }
        return new Cotangents(Params.EMPTY, List.of(sum));
      });
    }

    @Override
    public List<KernelExpr> rule(List<KernelExpr> inputs, RuleContext context) {
      return Collections.nCopies(num, inputs.get(0));
    }
  }

  /** Base of the fan-in layers: several inputs of one per-example shape become one. */
  abstract static class FanIn extends Router {
    FanIn(LayerType.Arguments args) {
      super(args);
    }

    /** Checks that there are at least two inputs. */
    void checkCount(List<Spec> inputs, String path) {
      if (inputs.size() < 2) {
        throw new ModelException(path, name() + " needs at least two inputs (after FanOut or "
            + "parallel), got " + inputs.size());
      }
    }

    /** Checks inputs of one shape and returns the output spec. */
    Spec fanInSpec(List<Spec> inputs, String path) {
      return fanInSpec(inputs, path, -1);
    }

    /**
     * Checks the inputs and returns the output spec (the first input's shape): their shapes must
     * be equal except on the per-example axis {@code free} (-1: on none).
     */
    Spec fanInSpec(List<Spec> inputs, String path, int free) {
      checkCount(inputs, path);
      Shape first = inputs.get(0).shape();
      boolean gaussian = true;
      for (int i = 0; i < inputs.size(); i++) {
        Spec s = inputs.get(i);
        if (!sameExcept(first, s.shape(), free)) {
          String what = free < 0 ? "shape" : free == first.dimension() - 1 ? "pixel grid"
              : "shape except along axis " + (free + 1);
          throw new ModelException(path, name() + " needs inputs of one " + what + ", but input 0 has "
              + first + " and input " + i + " has " + s.shape());
        }
        gaussian &= s.gaussian();
      }
      return new Spec(first, gaussian);
    }

    private static boolean sameExcept(Shape a, Shape b, int free) {
      if (a.dimension() != b.dimension()) {
        return false;
      }
      for (int k = 0; k < a.dimension(); k++) {
        if (k != free && a.get(k) != b.get(k)) {
          return false;
        }
      }
      return true;
    }

    @Override
    public List<NDArray> apply(Params params, List<NDArray> inputs) {
      return List.of(combine(inputs));
    }

    abstract NDArray combine(List<NDArray> inputs);

    /** The input cotangents for the output cotangent {@code dy}. */
    abstract List<NDArray> backward(List<NDArray> inputs, NDArray dy);

    /** The output's tangent; {@link #combine} of the tangents for the linear fan-ins. */
    NDArray tangent(List<NDArray> inputs, List<NDArray> inputTangents) {
      return combine(inputTangents);
    }

    /**
     * The output's second derivative along the input tangents {@code dxs} beyond its tangent of
     * the inputs' second derivatives; null (zero) for the linear fan-ins.
     */
    NDArray curvature(List<NDArray> inputs, List<NDArray> dxs) {
      return null;
    }

    @Override
    public Jet jet(Params params, Params paramTangents, List<NDArray> inputs, List<NDArray> inputTangents,
        List<NDArray> inputSeconds) {
      NDArray second = tangent(inputs, inputSeconds);
      NDArray curvature = curvature(inputs, inputTangents);
      return new Jet(apply(params, inputs), List.of(tangent(inputs, inputTangents)),
          List.of(curvature == null ? second : second.add(curvature)));
    }

    @Override
    public Jvp jvp(Params params, Params paramTangents, List<NDArray> inputs, List<NDArray> inputTangents) {
      return new Jvp(apply(params, inputs), List.of(tangent(inputs, inputTangents)));
    }

    @Override
    public Vjp vjp(Params params, List<NDArray> inputs, boolean inputCotangents) {
      return new Vjp(apply(params, inputs), (dys, tape) -> new Cotangents(Params.EMPTY,
          inputCotangents ? backward(inputs, dys.get(0)) : List.of()));
    }

    /** The kernel whose every term is {@code combine} of the inputs' terms, in order. */
    static KernelExpr entrywise(List<KernelExpr> inputs, BinaryOperator<Expr> combine) {
      KernelExpr k = inputs.get(0);
      for (KernelExpr next : inputs.subList(1, inputs.size())) {
        k = new KernelExpr(combine.apply(k.nngp(), next.nngp()), combine.apply(k.ntk(), next.ntk()),
            combine.apply(k.var1(), next.var1()), combine.apply(k.var2(), next.var2()));
      }
      return k;
    }
  }

  /** Sums its inputs; the kernels of independent Gaussian branches add. */
  public static final class FanInSum extends FanIn {
    FanInSum(LayerType.Arguments args) {
      super(args);
    }

    @Override
    public List<Spec> outputSpecs(List<Spec> inputs, String path) {
      return List.of(fanInSpec(inputs, path));
    }

    @Override
    NDArray combine(List<NDArray> inputs) {
      NDArray sum = inputs.get(0);
      for (NDArray x : inputs.subList(1, inputs.size())) {
        sum = sum.add(x);
      }
      return sum;
    }

    @Override
    List<NDArray> backward(List<NDArray> inputs, NDArray dy) {
      return Collections.nCopies(inputs.size(), dy);
    }

    @Override
    public List<KernelExpr> rule(List<KernelExpr> inputs, RuleContext context) {
      return List.of(entrywise(inputs, Expr::plus));
    }
  }

  /**
   * Multiplies its inputs elementwise. For independent branches {@code nngp' = prod_i nngp_i} and
   * {@code ntk' = sum_i ntk_i prod_{j != i} nngp_j}; the product is not Gaussian.
   */
  public static final class FanInProd extends FanIn {
    FanInProd(LayerType.Arguments args) {
      super(args);
    }

    @Override
    public List<Spec> outputSpecs(List<Spec> inputs, String path) {
      return List.of(fanInSpec(inputs, path).withGaussian(false));
    }

    @Override
    NDArray combine(List<NDArray> inputs) {
      NDArray prod = inputs.get(0);
      for (NDArray x : inputs.subList(1, inputs.size())) {
        prod = prod.mul(x);
      }
      return prod;
    }

    /** {@code prod_{j != i} x_j}. */
    private static NDArray others(List<NDArray> inputs, int i) {
      NDArray prod = null;
      for (int j = 0; j < inputs.size(); j++) {
        if (j != i) {
          prod = prod == null ? inputs.get(j) : prod.mul(inputs.get(j));
        }
      }
      return prod;
    }

    @Override
    NDArray tangent(List<NDArray> inputs, List<NDArray> inputTangents) {
      NDArray sum = null;
      for (int i = 0; i < inputs.size(); i++) {
        NDArray term = inputTangents.get(i).mul(others(inputs, i));
        sum = sum == null ? term : sum.add(term);
      }
      return sum;
    }

    /** {@code sum_{i != j} dx_i dx_j prod_{l != i, j} x_l}: the second derivative of the product. */
    @Override
    NDArray curvature(List<NDArray> inputs, List<NDArray> dxs) {
      NDArray sum = null;
      for (int i = 0; i < inputs.size(); i++) {
        for (int j = i + 1; j < inputs.size(); j++) {
          NDArray term = Tensors.mul(dxs.get(i).mul(dxs.get(j)), 2.0);
          for (int l = 0; l < inputs.size(); l++) {
            if (l != i && l != j) {
              term = term.mul(inputs.get(l));
            }
          }
          sum = sum == null ? term : sum.add(term);
        }
      }
      return sum;
    }

    @Override
    List<NDArray> backward(List<NDArray> inputs, NDArray dy) {
      List<NDArray> dx = new ArrayList<>();
      for (int i = 0; i < inputs.size(); i++) {
        dx.add(dy.mul(others(inputs, i)));
      }
      return dx;
    }

    @Override
    public List<KernelExpr> rule(List<KernelExpr> inputs, RuleContext context) {
      KernelExpr k = inputs.get(0);
      for (KernelExpr next : inputs.subList(1, inputs.size())) {
        // d(uv) = du v + u dv: the running NTK is weighted by the new factor's NNGP and back.
        Expr ntk = k.ntk().times(next.nngp()).plus(next.ntk().times(k.nngp()));
        k = new KernelExpr(k.nngp().times(next.nngp()), ntk, k.var1().times(next.var1()),
            k.var2().times(next.var2()));
      }
      return List.of(k);
    }
  }

  /**
   * Concatenates its inputs along {@code axis} of the batch ({@code (N, spatial..., C)}, negative
   * axes counted from the end), as neural-tangents' {@code FanInConcat}. Along the channel axis the
   * next affine layer normalizes by the total fan-in, so the kernel is the channel-weighted average
   * {@code sum_i c_i K_i / sum_i c_i}. Along a spatial axis the output has the branches' pixels side
   * by side, and so has its kernel: each branch's pixel blocks placed at its pixels ({@link
   * PixelMap#place}), and zero between pixels of different branches, which are independent
   * Gaussians (neural-tangents' rule, which therefore takes only Gaussian inputs there).
   */
  public static final class FanInConcat extends FanIn {
    private final int axis;

    FanInConcat(LayerType.Arguments args) {
      super(args);
      this.axis = args.integer("axis");
    }

    /** The concatenated axis counted from the batch axis, for inputs of per-example rank {@code rank - 1}. */
    private int axis(int rank, String path) {
      int a = axis < 0 ? axis + rank : axis;
      if (a < 0 || a >= rank) {
        throw new ModelException(path, "axis " + axis + " is out of range for inputs of rank " + rank
            + " (batch axis 0 first, channel axis " + (rank - 1) + " or -1 last)");
      }
      if (a == 0) {
        throw new ModelException(path, "FanInConcat along the batch axis (0) is not supported: a kernel "
            + "pairs examples, so concatenate along the channel axis (-1) or a spatial axis");
      }
      return a;
    }

    @Override
    public List<Spec> outputSpecs(List<Spec> inputs, String path) {
      checkCount(inputs, path);
      int rank = inputs.get(0).shape().dimension() + 1;
      int free = axis(rank, path) - 1;
      Spec spec = fanInSpec(inputs, path, free);
      if (free < rank - 2) {
        for (int i = 0; i < inputs.size(); i++) {
          if (!inputs.get(i).gaussian()) {
            throw new ModelException(path, "FanInConcat along spatial axis " + (free + 1) + " takes Gaussian "
                + "inputs (branches ending in an affine layer such as Dense or Conv, as neural-tangents "
                + "requires), but input " + i + " is not");
          }
        }
      }
      long[] dims = spec.shape().getShape().clone();
      dims[free] = 0;
      for (Spec s : inputs) {
        dims[free] += s.shape().get(free);
      }
      return List.of(spec.withShape(new Shape(dims)));
    }

    @Override
    NDArray combine(List<NDArray> inputs) {
      int rank = inputs.get(0).getShape().dimension();
      return NDArrays.concat(new NDList(inputs.toArray(new NDArray[0])), axis(rank, name()));
    }

    @Override
    List<NDArray> backward(List<NDArray> inputs, NDArray dy) {
      int a = axis(dy.getShape().dimension(), name());
      List<NDArray> dx = new ArrayList<>();
      long at = 0;
      for (NDArray x : inputs) {
        long c = x.getShape().get(a);
        dx.add(dy.get(new NDIndex(":, ".repeat(a) + at + ":" + (at + c))));
        at += c;
      }
      return dx;
    }

    @Override
    public List<KernelExpr> rule(List<KernelExpr> inputs, RuleContext context) {
      int rank = context.input(0).shape().dimension() + 1;
      int a = axis(rank, context.path());
      if (a == rank - 1) {
        double total = context.output(0).channels();
        List<KernelExpr> weighted = new ArrayList<>();
        for (int i = 0; i < inputs.size(); i++) {
          Expr w = Expr.constant(context.input(i).channels() / total);
          KernelExpr k = inputs.get(i);
          weighted.add(new KernelExpr(k.nngp().times(w), k.ntk().times(w), k.var1().times(w),
              k.var2().times(w)));
        }
        return List.of(entrywise(weighted, Expr::plus));
      }
      int k = a - 1;
      int length = Math.toIntExact(context.output(0).shape().get(k));
      List<KernelExpr> placed = new ArrayList<>();
      int offset = 0;
      for (int i = 0; i < inputs.size(); i++) {
        int at = offset;
        int input = i;
        UnaryOperator<Expr> place = e -> {
          if (e.isConstant() && e.value() == 0) {
            return e;
          }
          if (e.layout().isScalar()) {
            // A constant (a branch ending in a layer with W_std = 0) is the same at every pixel, not
            // zero outside its branch's pixels, and has no block to place.
            throw new ModelException(context.path(), "input " + input + " has a kernel term that is the same "
                + "constant " + e + " at every pixel, which cannot be placed among the pixels of a spatial "
                + "concatenation");
          }
          return e.pixels(PixelMap.place(e.layout(), k, at, length));
        };
        KernelExpr b = inputs.get(i);
        placed.add(new KernelExpr(place.apply(b.nngp()), place.apply(b.ntk()), place.apply(b.var1()),
            place.apply(b.var2())));
        offset += Math.toIntExact(context.input(i).shape().get(k));
      }
      return List.of(entrywise(placed, Expr::plus));
    }
  }
}
