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
    private final Map<Integer, String> tables = new HashMap<>();
    private int temps;
    private boolean quadrature;

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

    /**
     * The sums {@code sums} (of one table, over the same operands: {@link Quadrature#together}),
     * steps {@code ids}, as one loop over the table's points inside the loop over entries: what
     * their bodies share is computed once per point, each sum is a vector accumulator, and the
     * table's columns are read from the constants ({@code table} gives a column's first index,
     * {@code constant} a constant's).
     */
    void quadrature(int[] ids, Expr[] sums, String[] operands, java.util.function.DoubleToIntFunction constant,
        java.util.function.ToIntFunction<double[]> table) {
      quadrature = true;
      String[] sum = sums(sums, operands, constant, table, "      ");
      for (int k = 0; k < ids.length; k++) {
        locals.put(ids[k], sum[k]);
      }
    }

    /** Writes the loop of {@link #quadrature} at {@code indent}; returns the accumulators' names. */
    private String[] sums(Expr[] sums, String[] operands, java.util.function.DoubleToIntFunction constant,
        java.util.function.ToIntFunction<double[]> table, String indent) {
      Quadrature q = sums[0].quadrature();
      int[] bodies = java.util.Arrays.stream(sums).mapToInt(e -> (int) e.value()).toArray();
      String[] acc = new String[bodies.length];
      for (int k = 0; k < acc.length; k++) {
        acc[k] = "u" + temps++ + "#";
        loop.append(indent).append(vector).append(' ').append(acc[k]).append(" = ").append(vector)
            .append(".zero(S);\n");
      }
      List<Expr> steps = q.steps(bodies);
      // Steps that do not read the table run once, before the loop (the C2 compiler may not hoist them).
      java.util.Set<Expr> invariant = q.invariant(steps);
      Map<Expr, String> scope = new java.util.IdentityHashMap<>();
      for (int p = 0; p < operands.length; p++) {
        scope.put(q.parameters()[p], operands[p]);
      }
      java.util.function.Function<Expr, String> ref = e -> e.isConstant()
          ? constant(constant.applyAsInt(e.value())) : scope.get(e);
      // The innermost loop of a quadrature is where the time goes (deg^2 points per entry, not deg).
      boolean innermost = steps.stream().noneMatch(e -> e.op() == Expr.Op.QUADRATURE);
      body(steps, invariant::contains, scope, ref, constant, table, indent, false);
      String i = "i" + temps++;
      String inner = indent + "  ";
      // Lines marked '!' are written once, not once per unrolled vector (body()).
      loop.append('!').append(indent).append("for (int ").append(i).append(" = 0; ").append(i).append(" < ")
          .append(q.points()).append("; ").append(i).append("++) {\n");
      for (int c = 0; c < q.columns().length; c++) {
        String t = tables.computeIfAbsent(table.applyAsInt(q.column(c)), base -> {
          int b = bind(base);
          head.append("    int t").append(b).append(" = b[").append(b).append("];\n");
          return "t" + b;
        });
        String v = "u" + temps++;
        loop.append('!').append(inner).append(vector).append(' ').append(v).append(" = ").append(vector)
            .append(".broadcast(S, c[").append(t).append(" + ").append(i).append("]);\n");
        scope.put(q.columns()[c], v);
      }
      body(steps, e -> !invariant.contains(e), scope, ref, constant, table, inner, innermost);
      for (int k = 0; k < acc.length; k++) {
        Expr[] term = q.term(bodies[k]);
        loop.append(inner).append(acc[k]).append(" = ").append(ref.apply(term[0])).append(".fma(")
            .append(ref.apply(term[1])).append(", ").append(acc[k]).append(");\n");
      }
      loop.append('!').append(indent).append("}\n");
      return acc;
    }

    /**
     * The {@code steps} of a body that {@code which} picks, at {@code indent}, each named in {@code
     * scope} (the sums of one table and operands among them as one loop); {@code hot} where they are
     * the body of an innermost loop ({@link #expression(Expr.Op, String[], boolean)}).
     */
    private void body(List<Expr> steps, java.util.function.Predicate<Expr> which, Map<Expr, String> scope,
        java.util.function.Function<Expr, String> ref, java.util.function.DoubleToIntFunction constant,
        java.util.function.ToIntFunction<double[]> table, String indent, boolean hot) {
      for (int k = 0; k < steps.size(); k++) {
        Expr e = steps.get(k);
        if (scope.containsKey(e) || !which.test(e)) {
          continue;
        }
        String[] x = e.operands().stream().map(ref).toArray(String[]::new);
        if (e.op() == Expr.Op.QUADRATURE) {
          List<Expr> group = new ArrayList<>();
          for (int m = k; m < steps.size(); m++) {
            if (Quadrature.together(e, steps.get(m))) {
              group.add(steps.get(m));
            }
          }
          String[] r = sums(group.toArray(new Expr[0]), x, constant, table, indent);
          for (int m = 0; m < r.length; m++) {
            scope.put(group.get(m), r[m]);
          }
        } else {
          String v = "u" + temps++ + "#";
          loop.append(indent).append(vector).append(' ').append(v).append(" = ").append(expression(e.op(), x, hot))
              .append(";\n");
          scope.put(e, v);
        }
      }
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
     * with those of the others. A quadrature's segment computes one: the points of its loop are
     * independent chains already, and a second copy of its body would take C2's inlining budget
     * ({@link #expression(Expr.Op, String[], boolean)}; measured: ElementwiseNumerical tanh's loop
     * inlines its rational once, not twice).
     */
    String body() {
      int unroll = quadrature ? 1 : Fused.UNROLL;
      StringBuilder unrolled = new StringBuilder();
      for (String line : loop.toString().split("\n")) {
        if (line.startsWith("!")) {
          unrolled.append(line.substring(1)).append('\n');
          continue;
        }
        for (int u = 0; u < unroll; u++) {
          unrolled.append(line.replace("#", "_" + u).replace("@K", u == 0 ? "k" : "k + " + u + " * L"))
              .append('\n');
        }
      }
      return head + "    for (int k = 0; k < n; k += " + unroll + " * L) {\n" + unrolled + "    }\n";
    }

    int[] binding() {
      return binding.stream().mapToInt(Integer::intValue).toArray();
    }
  }

  static String expression(Expr.Op op, String[] x) {
    return expression(op, x, false);
  }

  /**
   * The Java expression of {@code op} on operands {@code x}. {@code tanh} outside the innermost loop
   * of a quadrature ({@code hot} false) is the JDK's {@code VectorOperators.TANH}, one intrinsic
   * call, not its float32 lowering {@link VectorMath#tanh(jdk.incubator.vector.FloatVector)}, 22
   * inlined operations: C2 stops inlining a method at a node budget ({@code
   * NodeCountInliningCutoff}), and a Vector API call it does not inline boxes its vectors (measured:
   * the deg^2 loop of ElementwiseNumerical tanh twice as slow where its rational was not inlined).
   * So the rational goes where it pays, in the loop over a quadrature's points, and the other sites
   * keep the budget small. The two agree to a few ulps ({@code VectorMathTest}).
   */
  static String expression(Expr.Op op, String[] x, boolean hot) {
    if (op == Expr.Op.TANH && !hot) {
      return x[0] + ".lanewise(VectorOperators.TANH)";
    }
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
