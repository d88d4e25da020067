package dev.ntk.kernels.engine;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The Java source of {@link Fused}'s loops: one segment of per-pair steps as a SIMD loop over
 * chunk buffers, each step the Vector API expression its {@link Expr.Op} writes ({@link
 * Expr.Op#source}), the segment's operands bound by position so that equal layers share a body.
 */
final class FusedSource {
  private FusedSource() {}

  /**
   * One segment's loop, written with names local to it: its operands are numbered by first use,
   * and the slots and constants they stand for are its binding ({@code b[k]}), so two segments
   * that differ only in where their values live have the same body.
   */
  static final class Segment {
    private final String vector;
    private final String scalar;
    private final StringBuilder head = new StringBuilder();
    private final StringBuilder loop = new StringBuilder();
    private final List<Integer> binding = new ArrayList<>();
    private final Map<String, String> names = new HashMap<>();
    private final Map<Integer, String> arrays = new HashMap<>();
    private final Map<Integer, String> locals = new HashMap<>();

    Segment(String vector, String scalar) {
      this.vector = vector;
      this.scalar = scalar;
    }

    private int bind(int value) {
      binding.add(value);
      return binding.size() - 1;
    }

    /** The local array (and its offset) of slot {@code slot}. */
    private String array(int slot) {
      return arrays.computeIfAbsent(slot, x -> {
        int b = bind(slot);
        head.append("    ").append(scalar).append("[] a").append(b).append(" = (").append(scalar)
            .append("[]) a[b[").append(b).append("]];\n    int o").append(b).append(" = o[b[").append(b)
            .append("]];\n");
        return Integer.toString(b);
      });
    }

    String load(String key, int slot) {
      return names.computeIfAbsent(key, x -> {
        String a = array(slot);
        String v = "x" + names.size() + "#";
        loop.append("      ").append(vector).append(' ').append(v).append(" = ").append(vector)
            .append(".fromArray(S, a").append(a).append(", @K + o").append(a).append(");\n");
        return v;
      });
    }

    String broadcast(String key, int slot) {
      return names.computeIfAbsent(key, x -> {
        String a = array(slot);
        String v = "x" + names.size();
        head.append("    ").append(vector).append(' ').append(v).append(" = ").append(vector)
            .append(".broadcast(S, a").append(a).append("[o").append(a).append("]);\n");
        return v;
      });
    }

    String constant(int index) {
      return names.computeIfAbsent("c" + index, x -> {
        int b = bind(index);
        String v = "x" + names.size();
        head.append("    ").append(vector).append(' ').append(v).append(" = ").append(vector)
            .append(".broadcast(S, c[b[").append(b).append("]]);\n");
        return v;
      });
    }

    String local(int step) {
      return locals.get(step);
    }

    void step(int step, String expression) {
      String v = "v" + locals.size() + "#";
      locals.put(step, v);
      loop.append("      ").append(vector).append(' ').append(v).append(" = ").append(expression).append(";\n");
    }

    void store(int step, int slot) {
      String a = array(slot);
      loop.append("      ").append(locals.get(step)).append(".intoArray(a").append(a).append(", @K + o").append(a)
          .append(");\n");
    }

    /**
     * The segment's method body: the loop computes {@link Fused#UNROLL} vectors per iteration, its
     * lines interleaved, so that the steps of one vector (a chain, each waiting for the last) overlap
     * with those of the others.
     */
    String body() {
      StringBuilder unrolled = new StringBuilder();
      for (String line : loop.toString().split("\n")) {
        for (int u = 0; u < Fused.UNROLL; u++) {
          unrolled.append(line.replace("#", "_" + u).replace("@K", u == 0 ? "k" : "k + " + u + " * L"))
              .append('\n');
        }
      }
      return head + "    for (int k = 0; k < n; k += " + Fused.UNROLL + " * L) {\n" + unrolled + "    }\n";
    }

    int[] binding() {
      return binding.stream().mapToInt(Integer::intValue).toArray();
    }
  }

  static String expression(Expr.Op op, String[] x) {
    if (op == Expr.Op.FMA) {
      return x[0] + ".fma(" + x[1] + ", " + x[2] + ")";
    }
    if (op == Expr.Op.SELECT) {
      return x[2] + ".blend(" + x[1] + ", " + x[0] + ".compare(VectorOperators.GT, 0))";
    }
    if (!op.arithmetic()) {
      throw new IllegalArgumentException(op + " is not an entry-wise operation");
    }
    return op.source(x);
  }
}
