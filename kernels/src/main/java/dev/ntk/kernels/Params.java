package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.function.UnaryOperator;

/**
 * The parameters of a finite network: a layer's own arrays (for {@code Dense}: {@code W}, then
 * {@code b} if it has a bias) and, for combinators, the parameters of each child in order.
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
}
