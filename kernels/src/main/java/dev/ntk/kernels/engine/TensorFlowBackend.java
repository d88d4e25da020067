package dev.ntk.kernels.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The {@code tensorflow} backend: runs a {@link Schedule} as TensorFlow ops through DJL, one op per
 * step over the whole tile (per-row values as {@code (n1, 1)} columns and per-column values as
 * {@code (1, n2)} rows, broadcast by TensorFlow). This is the path for GPU workers, and a
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
          case ADD -> a.add(b);
          case SUB -> a.sub(b);
          case MUL -> a.mul(b);
          case DIV -> a.div(b);
          case MAX -> a.maximum(b);
          case SQRT -> a.sqrt();
          case ATAN2 -> a.atan2(b);
          case FMA -> {
            NDArray product = a.mul(b);
            NDArray sum = product.add(c);
            product.close();
            yield sum;
          }
          default -> throw new IllegalStateException(e.op().name());
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
        NDArray full = v.getShape().equals(new ai.djl.ndarray.types.Shape(n1, n2))
            ? v.duplicate() : v.broadcast(n1, n2).duplicate();
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
      NDArray flat = (v.getShape().size() == n ? v.reshape(n) : v.broadcast(n)).duplicate();
      flat.attach(manager);
      out.put(o.getKey(), flat);
    }
  }

  private static NDArray operand(Expr e, Map<Expr, NDArray> values, Map<String, NDArray> inputs,
      NDArray like, NDManager scope, int n1, int n2) {
    return switch (e.op()) {
      case CONST -> {
        NDArray c = scope.create(e.value()).toType(like.getDataType(), false);
        yield c;
      }
      case INPUT -> {
        NDArray x = inputs.get(e.name());
        if (x == null) {
          throw new IllegalArgumentException("the plan needs input " + e.name() + ", got " + inputs.keySet());
        }
        NDArray shaped = switch (e.domain()) {
          case ROW -> x.reshape(n1, 1);
          case COL -> x.reshape(1, n2);
          default -> x.reshape(n1, n2);
        };
        shaped.attach(scope);
        yield shaped;
      }
      default -> values.get(e);
    };
  }

  private static void release(Expr e, Map<Expr, Integer> uses, Map<Expr, NDArray> values) {
    int left = uses.merge(e, -1, Integer::sum);
    if (left == 0 && values.containsKey(e)) {
      values.remove(e).close();
    }
  }
}
