package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;

/**
 * The parameters of a finite network: a layer's own arrays (for {@code Dense}: {@code W}, then
 * {@code b} if it has a bias) and, for combinators, the parameters of each child in order.
 *
 * <p>What the arrays hold depends on the layer's parameterization ({@link
 * Linear.Parameterization}): under NTK parameterization the N(0, 1) draws, which the layer scales
 * by {@code W_std / sqrt(fan_in)} and {@code b_std} when it is applied; under standard
 * parameterization the weights and biases themselves. Either way they are what a parameters file
 * holds ({@link #named}), as neural-tangents' {@code init_fn} returns them.
 */
public record Params(List<NDArray> arrays, List<Params> children) {
  /** The parameters of a layer that has none. */
  public static final Params EMPTY = new Params(List.of(), List.of());

  public Params {
    arrays = List.copyOf(arrays);
    children = List.copyOf(children);
  }

  public static Params of(NDArray... arrays) {
    return new Params(List.of(arrays), List.of());
  }

  public static Params ofChildren(List<Params> children) {
    return new Params(List.of(), children);
  }

  public NDArray array(int i) {
    return arrays.get(i);
  }

  public Params child(int i) {
    return children.get(i);
  }

  /** Every array, depth first: a layer's own arrays, then its children's in order. */
  public List<NDArray> leaves() {
    List<NDArray> out = new ArrayList<>(arrays);
    for (Params child : children) {
      out.addAll(child.leaves());
    }
    return out;
  }

  /** Parameters of this structure holding {@code leaves} in {@link #leaves}' order. */
  public Params withLeaves(List<NDArray> leaves) {
    if (leaves.size() != leaves().size()) {
      throw new IllegalArgumentException("the parameters have " + leaves().size() + " arrays, got "
          + leaves.size());
    }
    return rebuild(leaves.iterator());
  }

  /** Parameters of this structure holding {@code f} of each array. */
  public Params map(UnaryOperator<NDArray> f) {
    List<NDArray> mapped = new ArrayList<>();
    for (NDArray a : leaves()) {
      mapped.add(f.apply(a));
    }
    return withLeaves(mapped);
  }

  private Params rebuild(Iterator<NDArray> it) {
    List<NDArray> own = new ArrayList<>();
    for (int i = 0; i < arrays.size(); i++) {
      own.add(it.next());
    }
    List<Params> kids = new ArrayList<>();
    for (Params child : children) {
      kids.add(child.rebuild(it));
    }
    return new Params(own, kids);
  }

  /**
   * Every array of {@code params}, the parameters of {@code model}, by its name in a parameters
   * file: {@code <layer path>/<array>}, the layer path as the model's errors name it ({@code
   * serial[0].Dense/W}, {@code serial[3].parallel[1].serial[0].Conv/b}) and the array's name from
   * {@link Layer#parameterNames()}; in the order {@code init} draws them.
   *
   * <pre>{@code
   * Params p = model.init(seed, new Shape(784), manager, DataType.FLOAT64);
   * NDArray w0 = Params.named(model, p).get("serial[0].Dense/W"); // (784, out_dim)
   * }</pre>
   *
   * @throws IllegalArgumentException if {@code params} do not have the tree of {@code model}
   */
  public static Map<String, NDArray> named(Layer model, Params params) {
    Map<String, NDArray> out = new LinkedHashMap<>();
    walk(model, params, model.name(), (name, array) -> {
      out.put(name, array);
      return array;
    });
    return out;
  }

  /**
   * These parameters of {@code model} with every array replaced by the array of the same name in
   * {@code arrays} (names as {@link #named} gives them); the tree is this one's.
   *
   * @throws IllegalArgumentException if a name of {@link #named} is missing from {@code arrays},
   *     or these parameters do not have the tree of {@code model}
   */
  public Params withArrays(Layer model, Map<String, NDArray> arrays) {
    return walk(model, this, model.name(), (name, array) -> {
      NDArray replacement = arrays.get(name);
      if (replacement == null) {
        throw new IllegalArgumentException("no array named " + name);
      }
      return replacement;
    });
  }

  /** What {@link #walk} does with each array: returns the array that takes its place. */
  private interface Visitor {
    NDArray visit(String name, NDArray array);
  }

  /** Visits every array by name, children in order, and returns the tree of the visits' results. */
  private static Params walk(Layer layer, Params params, String path, Visitor visitor) {
    List<String> names = layer.parameterNames();
    if (names.size() != params.arrays().size()) {
      throw new IllegalArgumentException(path + " has " + names.size() + " parameter arrays " + names
          + ", but the parameters hold " + params.arrays().size());
    }
    List<NDArray> arrays = new ArrayList<>();
    for (int i = 0; i < names.size(); i++) {
      arrays.add(visitor.visit(path + "/" + names.get(i), params.array(i)));
    }
    List<Params> children = new ArrayList<>();
    if (!params.children().isEmpty()) {
      List<Layer> layers = layer.children();
      if (layers.size() != params.children().size()) {
        throw new IllegalArgumentException(path + " has " + layers.size() + " layers, but the parameters hold "
            + params.children().size());
      }
      for (int i = 0; i < layers.size(); i++) {
        children.add(walk(layers.get(i), params.child(i), RuleContext.childPath(path, i, layers.get(i)), visitor));
      }
    }
    return new Params(arrays, children);
  }
}
