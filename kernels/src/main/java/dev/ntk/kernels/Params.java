package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import java.util.List;

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
}
