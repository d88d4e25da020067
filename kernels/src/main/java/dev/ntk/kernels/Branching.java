package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * Combinators: {@link Serial} composition, {@link Parallel} application, {@link FanOut} and the
 * fan-in layers {@link FanInSum}, {@link FanInProd}, {@link FanInConcat}.
 */
public final class Branching {
  private Branching() {}

  private static String childPath(String path, int i, Layer child) {
    return path + "[" + i + "]." + child.name();
  }

  /** A layer made of child layers, which a model file lists in order. */
  abstract static class Combinator implements Layer {
    final List<Layer> layers;
    private final String name;

    Combinator(String name, List<Layer> layers) {
      this.name = name;
      this.layers = List.copyOf(layers);
    }

    @Override
    public String name() {
      return name;
    }

    @Override
    public Map<String, Object> arguments() {
      return Map.of();
    }

    @Override
    public List<Layer> children() {
      return layers;
    }
  }

  /** Composition: the first child is applied first. */
  public static final class Serial extends Combinator {
    public Serial(List<Layer> layers) {
      super("serial", layers);
    }

    @Override
    public List<Spec> outputSpecs(List<Spec> inputs, String path) {
      List<Spec> specs = inputs;
      for (int i = 0; i < layers.size(); i++) {
        specs = layers.get(i).outputSpecs(specs, childPath(path, i, layers.get(i)));
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

    /**
     * Applies each child's rule in a scope of its own, so that a rule's temporaries are freed as
     * soon as it returns, and frees each intermediate kernel once the next one is computed; the
     * arrays of {@code inputs}, which belong to the caller, are never freed.
     */
    @Override
    public List<Kernel> kernel(List<Kernel> inputs) {
      Set<NDArray> callers = Kernel.arraysOf(inputs);
      List<Kernel> current = inputs;
      for (Layer layer : layers) {
        List<Kernel> next = scoped(layer, current);
        Set<NDArray> kept = Kernel.arraysOf(next);
        for (NDArray a : Kernel.arraysOf(current)) {
          if (!kept.contains(a) && !callers.contains(a)) {
            a.close();
          }
        }
        current = next;
      }
      return current;
    }

    private static List<Kernel> scoped(Layer layer, List<Kernel> inputs) {
      NDManager parent = inputs.get(0).manager();
      Set<NDArray> in = Kernel.arraysOf(inputs);
      try (NDManager scope = parent.newSubManager()) {
        for (NDArray a : in) {
          a.tempAttach(scope);
        }
        List<Kernel> out = layer.kernel(inputs);
        for (NDArray a : Kernel.arraysOf(out)) {
          a.attach(parent);
        }
        return out;
      }
    }
  }

  /** Applies the i-th child to the i-th input. */
  public static final class Parallel extends Combinator {
    public Parallel(List<Layer> layers) {
      super("parallel", layers);
    }

    @Override
    public List<Spec> outputSpecs(List<Spec> inputs, String path) {
      if (inputs.size() != layers.size()) {
        throw new ModelException(path, "parallel has " + layers.size() + " branches but receives "
            + inputs.size() + " inputs (use FanOut to copy one input)");
      }
      List<Spec> out = new ArrayList<>();
      for (int i = 0; i < layers.size(); i++) {
        out.addAll(layers.get(i).outputSpecs(List.of(inputs.get(i)), childPath(path, i, layers.get(i))));
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
    public List<Kernel> kernel(List<Kernel> inputs) {
      List<Kernel> out = new ArrayList<>();
      for (int i = 0; i < layers.size(); i++) {
        out.addAll(layers.get(i).kernel(List.of(inputs.get(i))));
      }
      return out;
    }
  }

  /** Base of the layers that route activations and have no parameters. */
  abstract static class Router implements Layer {
    @Override
    public Params init(SplittableRandom rng, List<Spec> inputs, NDManager manager, DataType dtype) {
      return Params.EMPTY;
    }
  }

  /** Copies one input into {@code num}. */
  public static final class FanOut extends Router {
    private final int num;

    public FanOut(int num) {
      if (num < 1) {
        throw new IllegalArgumentException("FanOut num must be positive, got " + num);
      }
      this.num = num;
    }

    @Override
    public String name() {
      return "FanOut";
    }

    @Override
    public Map<String, Object> arguments() {
      return Map.of("num", num);
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
    public List<Kernel> kernel(List<Kernel> inputs) {
      return Collections.nCopies(num, inputs.get(0));
    }
  }

  /** Base of the fan-in layers: several inputs of one per-example shape become one. */
  abstract static class FanIn extends Router {
    /** Checks the inputs and returns the output spec. */
    Spec fanInSpec(List<Spec> inputs, String path, boolean sameShape) {
      if (inputs.size() < 2) {
        throw new ModelException(path, name() + " needs at least two inputs (after FanOut or "
            + "parallel), got " + inputs.size());
      }
      Shape first = inputs.get(0).shape();
      boolean gaussian = true;
      for (int i = 0; i < inputs.size(); i++) {
        Spec s = inputs.get(i);
        if (s.hasSpatialAxes()) {
          throw new ModelException(path, name() + " of inputs with spatial axes (per-example shape "
              + s.shape() + ") is not supported yet; Flatten first");
        }
        if (sameShape && !s.shape().equals(first)) {
          throw new ModelException(path, name() + " needs inputs of one shape, but input 0 has "
              + first + " and input " + i + " has " + s.shape());
        }
        gaussian &= s.gaussian();
      }
      return new Spec(first, gaussian);
    }

    @Override
    public List<NDArray> apply(Params params, List<NDArray> inputs) {
      return List.of(combine(inputs));
    }

    abstract NDArray combine(List<NDArray> inputs);
  }

  /** Sums its inputs; the kernels of independent Gaussian branches add. */
  public static final class FanInSum extends FanIn {
    @Override
    public String name() {
      return "FanInSum";
    }

    @Override
    public Map<String, Object> arguments() {
      return Map.of();
    }

    @Override
    public List<Spec> outputSpecs(List<Spec> inputs, String path) {
      return List.of(fanInSpec(inputs, path, true));
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
    public List<Kernel> kernel(List<Kernel> inputs) {
      Kernel first = inputs.get(0);
      NDArray nngp = first.nngp();
      NDArray ntk = first.ntk();
      NDArray cov1 = first.cov1();
      NDArray cov2 = first.cov2();
      boolean gaussian = first.isGaussian();
      for (Kernel k : inputs.subList(1, inputs.size())) {
        nngp = nngp.add(k.nngp());
        ntk = ntk.add(k.ntk());
        cov1 = cov1.add(k.cov1());
        cov2 = cov2.add(k.cov2());
        gaussian &= k.isGaussian();
      }
      return List.of(first.withValues(nngp, ntk, cov1, cov2).withGaussian(gaussian));
    }
  }

  /**
   * Multiplies its inputs elementwise. For independent branches {@code nngp' = prod_i nngp_i} and
   * {@code ntk' = sum_i ntk_i prod_{j != i} nngp_j}; the product is not Gaussian.
   */
  public static final class FanInProd extends FanIn {
    @Override
    public String name() {
      return "FanInProd";
    }

    @Override
    public Map<String, Object> arguments() {
      return Map.of();
    }

    @Override
    public List<Spec> outputSpecs(List<Spec> inputs, String path) {
      return List.of(fanInSpec(inputs, path, true).withGaussian(false));
    }

    @Override
    NDArray combine(List<NDArray> inputs) {
      NDArray prod = inputs.get(0);
      for (NDArray x : inputs.subList(1, inputs.size())) {
        prod = prod.mul(x);
      }
      return prod;
    }

    @Override
    public List<Kernel> kernel(List<Kernel> inputs) {
      Kernel first = inputs.get(0);
      NDArray nngp = first.nngp();
      NDArray ntk = first.ntk();
      NDArray cov1 = first.cov1();
      NDArray cov2 = first.cov2();
      for (Kernel k : inputs.subList(1, inputs.size())) {
        // d(uv) = du v + u dv: the running NTK is weighted by the new factor's NNGP and back.
        ntk = ntk.mul(k.nngp()).add(k.ntk().mul(nngp));
        nngp = nngp.mul(k.nngp());
        cov1 = cov1.mul(k.cov1());
        cov2 = cov2.mul(k.cov2());
      }
      return List.of(first.withValues(nngp, ntk, cov1, cov2).withGaussian(false));
    }
  }

  /**
   * Concatenates its inputs along the channel axis. The next affine layer normalizes by the total
   * fan-in, so the kernel is the channel-weighted average {@code sum_i c_i K_i / sum_i c_i}.
   */
  public static final class FanInConcat extends FanIn {
    private final int axis;

    public FanInConcat(int axis) {
      this.axis = axis;
    }

    @Override
    public String name() {
      return "FanInConcat";
    }

    @Override
    public Map<String, Object> arguments() {
      return Map.of("axis", axis);
    }

    @Override
    public List<Spec> outputSpecs(List<Spec> inputs, String path) {
      Spec spec = fanInSpec(inputs, path, false);
      int rank = spec.shape().dimension() + 1;
      if (axis != -1 && axis != rank - 1) {
        throw new ModelException(path, "FanInConcat along axis " + axis + " is not supported for "
            + "inputs of rank " + rank + ": only the channel axis (-1) can be concatenated");
      }
      long channels = 0;
      for (Spec s : inputs) {
        channels += s.channels();
      }
      return List.of(spec.withShape(new Shape(channels)));
    }

    @Override
    NDArray combine(List<NDArray> inputs) {
      return ai.djl.ndarray.NDArrays.concat(new ai.djl.ndarray.NDList(inputs.toArray(new NDArray[0])), -1);
    }

    @Override
    public List<Kernel> kernel(List<Kernel> inputs) {
      long total = 0;
      for (Kernel k : inputs) {
        total += channels(k);
      }
      NDArray nngp = null;
      NDArray ntk = null;
      NDArray cov1 = null;
      NDArray cov2 = null;
      boolean gaussian = true;
      for (Kernel k : inputs) {
        double w = (double) channels(k) / total;
        nngp = accumulate(nngp, k.nngp(), w);
        ntk = accumulate(ntk, k.ntk(), w);
        cov1 = accumulate(cov1, k.cov1(), w);
        cov2 = accumulate(cov2, k.cov2(), w);
        gaussian &= k.isGaussian();
      }
      Kernel first = inputs.get(0);
      return List.of(first.withValues(nngp, ntk, cov1, cov2).withGaussian(gaussian)
          .withShapes(new Shape(first.shape1().get(0), total), new Shape(first.shape2().get(0), total)));
    }

    private static long channels(Kernel k) {
      return k.shape1().get(k.shape1().dimension() - 1);
    }

    private static NDArray accumulate(NDArray sum, NDArray x, double weight) {
      NDArray term = Tensors.mul(x, weight);
      return sum == null ? term : sum.add(term);
    }
  }
}
