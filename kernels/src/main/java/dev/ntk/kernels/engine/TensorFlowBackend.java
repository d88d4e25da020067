package dev.ntk.kernels.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The {@code tensorflow} backend: runs a {@link Schedule} as TensorFlow ops through DJL, one op per
 * step over the whole tile (per-row values as {@code (n1, 1)} columns and per-column values as
 * {@code (1, n2)} rows, broadcast by TensorFlow; each value has a last axis for its pixel block,
 * of length 1 for a scalar, see {@link Layout}). This is the path for GPU workers, and a
 * cross-check of the {@code cpu} backend: the same schedule, so the same formulas.
 *
 * <p>Each intermediate array is freed right after its last use, so a deep network holds a few
 * tiles at a time.
 */
public final class TensorFlowBackend {
  private TensorFlowBackend() {}

  /**
   * Runs {@code schedule} on {@code inputs} ({@code (n1, n2)} pair inputs; per-input vectors of
   * length {@code n1} or {@code n2}), all in one dtype; returns each output as an {@code (n1, n2)}
   * array in {@code manager}.
   */
  public static Map<String, NDArray> run(Schedule schedule, Map<String, NDArray> inputs, int n1, int n2,
      NDManager manager) {
    Map<Expr, Integer> uses = new IdentityHashMap<>();
    List<Expr> steps = new java.util.ArrayList<>(schedule.vectorSteps());
    steps.addAll(schedule.tileSteps());
    for (Expr e : steps) {
      for (Expr operand : e.operands()) {
        uses.merge(operand, 1, Integer::sum);
      }
    }
    for (Map<String, Expr> m : List.of(schedule.outputs(), schedule.rowOutputs(), schedule.colOutputs())) {
      for (Expr out : m.values()) {
        uses.merge(out, 1 << 20, Integer::sum); // outputs are never freed
      }
    }
    NDArray like = inputs.values().iterator().next();
    Map<Expr, NDArray> values = new IdentityHashMap<>();
    try (NDManager scope = manager.newSubManager()) {
      for (Expr e : steps) {
        NDArray a = operand(e.a(), values, inputs, like, scope, n1, n2);
        NDArray b = e.b() == null ? null : operand(e.b(), values, inputs, like, scope, n1, n2);
        NDArray c = e.c() == null ? null : operand(e.c(), values, inputs, like, scope, n1, n2);
        NDArray r = switch (e.op()) {
          case DIAGONAL, SPREAD_ROW, SPREAD_COL, PIXELS, REDUCE, SOFTMAX -> structural(e, a, scope);
          case ATTEND -> attend(a, b, c, e.layout().pixels());
          default -> entryWise(e, a, b, c, scope);
        };
        r.attach(scope);
        values.put(e, r);
        for (Expr operand : e.operands()) {
          release(operand, uses, values);
        }
      }
      Map<String, NDArray> out = new LinkedHashMap<>();
      for (Map.Entry<String, Expr> o : schedule.outputs().entrySet()) {
        NDArray v = operand(o.getValue(), values, inputs, like, scope, n1, n2);
        int m = o.getValue().layout().size();
        NDArray full = v.broadcast(n1, n2, m).reshape(m == 1 ? new Shape(n1, n2) : new Shape(n1, n2, m))
            .duplicate();
        full.attach(manager);
        out.put(o.getKey(), full);
      }
      vectorOutputs(schedule.rowOutputs(), n1, values, inputs, like, scope, n1, n2, manager, out);
      vectorOutputs(schedule.colOutputs(), n2, values, inputs, like, scope, n1, n2, manager, out);
      return out;
    }
  }

  private static void vectorOutputs(Map<String, Expr> outputs, int n, Map<Expr, NDArray> values,
      Map<String, NDArray> inputs, NDArray like, NDManager scope, int n1, int n2, NDManager manager,
      Map<String, NDArray> out) {
    for (Map.Entry<String, Expr> o : outputs.entrySet()) {
      NDArray v = operand(o.getValue(), values, inputs, like, scope, n1, n2);
      int m = o.getValue().layout().size();
      NDArray flat = v.reshape(-1);
      flat = (flat.getShape().get(0) == (long) n * m ? flat : flat.broadcast((long) n * m)).duplicate();
      flat.attach(manager);
      out.put(o.getKey(), flat);
    }
  }

  private static NDArray operand(Expr e, Map<Expr, NDArray> values, Map<String, NDArray> inputs,
      NDArray like, NDManager scope, int n1, int n2) {
    return switch (e.op()) {
      case CONST -> {
        NDArray c = scope.create(e.value()).toType(like.getDataType(), false).reshape(1, 1, 1);
        yield c;
      }
      case BLOCK -> {
        double[] v = e.blockValues();
        NDArray c = scope.create(v, new Shape(1, 1, v.length)).toType(like.getDataType(), false);
        yield c;
      }
      case INPUT -> {
        NDArray x = inputs.get(e.name());
        if (x == null) {
          throw new IllegalArgumentException("the plan needs input " + e.name() + ", got " + inputs.keySet());
        }
        int m = e.layout().size();
        NDArray shaped = switch (e.domain()) {
          case ROW -> x.reshape(n1, 1, m);
          case COL -> x.reshape(1, n2, m);
          default -> x.reshape(n1, n2, m);
        };
        shaped.attach(scope);
        yield shaped;
      }
      default -> values.get(e);
    };
  }

  /** An entry-wise step on broadcast operands ({@code b}, {@code c} null where it has fewer). */
  private static NDArray entryWise(Expr e, NDArray a, NDArray b, NDArray c, NDManager scope) {
    return switch (e.op()) {
      case FMA -> {
        NDArray product = a.mul(b);
        NDArray sum = product.add(c);
        product.close();
        yield sum;
      }
      case SELECT -> {
        try (NDArray zero = a.zerosLike(); NDArray positive = ai.djl.tensorflow.engine.NtkEngineBridge.op("Greater",
            a, zero)) {
          yield ai.djl.tensorflow.engine.NtkEngineBridge.op("SelectV2", positive, b, c);
        }
      }
      case CALL -> call(e, a, b, c, scope);
      case QUADRATURE -> quadrature(e.quadrature(), (int) e.value(), new NDArray[] {a, b, c}, scope);
      default -> {
        if (!e.op().arithmetic()) {
          throw new IllegalStateException(e.op().name());
        }
        yield ai.djl.tensorflow.engine.NtkEngineBridge.op(e.op().tensorflow(), b == null ? new NDArray[] {a}
            : new NDArray[] {a, b});
      }
    };
  }

  /**
   * Sum {@code body} of a {@link Quadrature} as one batched evaluation over its points: the operands
   * get a last axis, along which the table's columns lie, each step of the body is one op over the
   * broadcast shape, and the terms are summed over that axis (a sum inside the body adds an axis of
   * its own). TensorFlow sums the terms in its own order, not the loop's: the results agree with the
   * {@code cpu} backend's to rounding.
   */
  private static NDArray quadrature(Quadrature q, int body, NDArray[] operands, NDManager scope) {
    DataType type = operands[0].getDataType();
    try (NDManager local = scope.newSubManager()) {
      Map<Expr, NDArray> v = new IdentityHashMap<>();
      for (int p = 0; p < operands.length; p++) {
        v.put(q.parameters()[p], local(operands[p].expandDims(operands[p].getShape().dimension()), local));
      }
      for (int k = 0; k < q.columns().length; k++) {
        v.put(q.columns()[k], local(local.create(q.column(k)).toType(type, false), local));
      }
      java.util.function.Function<Expr, NDArray> value = x -> x.isConstant()
          ? local(local.create(x.value()).toType(type, false), local) : v.get(x);
      for (Expr e : q.steps(body)) {
        NDArray[] x = e.operands().stream().map(value).toArray(NDArray[]::new);
        v.put(e, local(entryWise(e, x[0], x.length > 1 ? x[1] : null, x.length > 2 ? x[2] : null, local), local));
      }
      Expr[] term = q.term(body);
      NDArray terms = local(value.apply(term[0]).mul(value.apply(term[1])), local);
      NDArray sum = terms.sum(new int[] {terms.getShape().dimension() - 1});
      sum.attach(scope);
      return sum;
    }
  }

  private static NDArray local(NDArray x, NDManager manager) {
    x.attach(manager);
    return x;
  }

  /**
   * A Java function ({@link Expr.Op#CALL}) on the host: the operands broadcast to their common
   * {@code (a, b, block)} shape, copied out, computed entry by entry and copied back in their dtype.
   */
  private static NDArray call(Expr e, NDArray a, NDArray b, NDArray c, NDManager scope) {
    long[] dims = new long[3];
    for (NDArray x : new NDArray[] {a, b, c}) {
      for (int d = 0; d < 3; d++) {
        dims[d] = Math.max(dims[d], x.getShape().get(d));
      }
    }
    Shape shape = new Shape(dims);
    double[][] v = new double[3][];
    NDArray[] operands = {a, b, c};
    for (int i = 0; i < 3; i++) {
      try (NDArray full = operands[i].broadcast(shape); NDArray wide = full.toType(DataType.FLOAT64, false)) {
        v[i] = wide.toDoubleArray();
      }
    }
    double[] out = new double[v[0].length];
    Expr.Callback f = e.callback();
    for (int k = 0; k < out.length; k++) {
      out[k] = f.apply(v[0][k], v[1][k], v[2][k]);
    }
    NDArray r = scope.create(out, shape);
    return a.getDataType() == DataType.FLOAT64 ? r : r.toType(a.getDataType(), false);
  }

  /** A step that mixes the entries of pixel blocks, on {@code (a, b, block)} arrays. */
  private static NDArray structural(Expr e, NDArray x, NDManager scope) {
    long a = x.getShape().get(0);
    long b = x.getShape().get(1);
    int p = e.a().layout().pixels();
    return switch (e.op()) {
      case DIAGONAL -> {
        double[] identity = new double[p * p];
        for (int k = 0; k < p; k++) {
          identity[k * p + k] = 1;
        }
        NDArray eye = scope.create(identity, new Shape(p, p)).toType(x.getDataType(), false);
        yield x.reshape(a, b, p, p).mul(eye).sum(new int[] {3});
      }
      case SPREAD_ROW -> x.reshape(a, b, p, 1).broadcast(a, b, p, p).reshape(a, b, (long) p * p);
      case SPREAD_COL -> x.reshape(a, b, 1, p).broadcast(a, b, p, p).reshape(a, b, (long) p * p);
      case REDUCE -> x.sum(new int[] {2}, true).mul(e.value());
      case PIXELS -> pixels(e.map(), x, scope);
      case SOFTMAX -> x.reshape(a, b, p, p).softmax(3).reshape(a, b, (long) p * p);
      default -> throw new IllegalStateException(e.op().name());
    };
  }

  /**
   * {@link Expr.Op#ATTEND}: {@code left x right^T} as two batched matrix products over the
   * operands' common {@code (a, b)} shape (a per-row attention matrix {@code (n1, 1)}, a per-column
   * one {@code (1, n2)}).
   */
  private static NDArray attend(NDArray x, NDArray left, NDArray right, int p) {
    long a = Math.max(x.getShape().get(0), Math.max(left.getShape().get(0), right.getShape().get(0)));
    long b = Math.max(x.getShape().get(1), Math.max(left.getShape().get(1), right.getShape().get(1)));
    Shape blocks = new Shape(a, b, p, p);
    try (NDArray m = x.reshape(x.getShape().get(0), x.getShape().get(1), p, p).broadcast(blocks);
        NDArray l = left.reshape(left.getShape().get(0), left.getShape().get(1), p, p).broadcast(blocks);
        NDArray r = right.reshape(right.getShape().get(0), right.getShape().get(1), p, p).broadcast(blocks);
        NDArray rt = r.transpose(0, 1, 3, 2);
        NDArray lm = l.matMul(m);
        NDArray out = lm.matMul(rt)) {
      return out.reshape(a, b, (long) p * p);
    }
  }

  /**
   * A {@link PixelMap} as one matrix product per axis: the axis (or, on pixel-pair blocks, the
   * pair of axes {@code p_k, q_k}) is moved last and multiplied by the axis's dense matrix.
   */
  private static NDArray pixels(PixelMap map, NDArray x, NDManager scope) {
    long a = x.getShape().get(0);
    long b = x.getShape().get(1);
    boolean full = map.input().kind() == Layout.Kind.FULL;
    int d = map.rank();
    long[] dims = new long[full ? 2 * d : d];
    int[] in = map.input().grid();
    for (int k = 0; k < d; k++) {
      dims[k] = in[k];
      if (full) {
        dims[d + k] = in[k];
      }
    }
    NDArray v = x;
    for (int k = 0; k < d; k++) {
      int rank = dims.length + 2;
      List<Integer> order = new java.util.ArrayList<>();
      for (int axis = 0; axis < rank; axis++) {
        order.add(axis);
      }
      List<Integer> group = full ? List.of(2 + k, 2 + d + k) : List.of(2 + k);
      order.removeAll(group);
      order.addAll(group);
      long[] shape = new long[rank];
      shape[0] = a;
      shape[1] = b;
      System.arraycopy(dims, 0, shape, 2, dims.length);
      int[] perm = order.stream().mapToInt(Integer::intValue).toArray();
      NDArray moved = v.reshape(new Shape(shape)).transpose(perm);
      int[] ds = map.denseShape(k);
      NDArray m = scope.create(map.dense(k), new Shape(ds[0], ds[1])).toType(x.getDataType(), false);
      NDArray product = moved.reshape(-1, ds[0]).matMul(m);
      long size = map.outputGrid()[k];
      dims[k] = size;
      if (full) {
        dims[d + k] = size;
      }
      long[] movedShape = new long[rank];
      for (int axis = 0; axis < rank; axis++) {
        movedShape[axis] = axis < 2 ? shape[perm[axis]] : dims[perm[axis] - 2];
      }
      int[] inverse = new int[rank];
      for (int axis = 0; axis < rank; axis++) {
        inverse[perm[axis]] = axis;
      }
      v = product.reshape(new Shape(movedShape)).transpose(inverse);
    }
    return v.reshape(a, b, -1);
  }

  private static void release(Expr e, Map<Expr, Integer> uses, Map<Expr, NDArray> values) {
    int left = uses.merge(e, -1, Integer::sum);
    if (left == 0 && values.containsKey(e)) {
      values.remove(e).close();
    }
  }
}
