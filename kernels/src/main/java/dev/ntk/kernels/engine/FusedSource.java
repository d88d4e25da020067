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
    private final Map<Expr, Factored> factored = new java.util.IdentityHashMap<>();
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
      tabulate(steps, invariant, scope, ref, constant, table, indent);
      Factored f = factored.get(sums[0]);
      if (f == null) {
        points(q, bodies, acc, steps, e -> !invariant.contains(e), scope, ref, constant, table, indent, innermost,
            null, null);
        return acc;
      }
      // tanh(a + s x_j) = 1 - 2 / (1 + e^(2a) F_j), F_j = e^(2 s x_j) from the table filled before the outer loop,
      // where every lane's e^(2a) and F_j are normal numbers; else the loop as written. Lines with per-vector
      // names are not marked '!': a quadrature's segment computes one vector per iteration (body()).
      String offset = operands[f.offset()];
      loop.append(indent).append("if (").append(f.ok()).append(".and(").append(offset).append(
          ".abs().compare(VectorOperators.LE, ").append(constant(constant.applyAsInt(halfRange()))).append(
          ")).allTrue()) {\n");
      String e2a = "u" + temps++ + "#";
      loop.append(indent).append("  ").append(vector).append(' ').append(e2a).append(" = ").append(offset)
          .append(".add(").append(offset).append(").lanewise(VectorOperators.EXP);\n");
      Map<Expr, String> saved = new java.util.IdentityHashMap<>(scope);
      java.util.Set<Expr> needed = needed(q, bodies, f.tanh());
      points(q, bodies, acc, steps, e -> !invariant.contains(e) && needed.contains(e), scope, ref, constant, table,
          indent + "  ", innermost, f, e2a);
      scope.clear();
      scope.putAll(saved);
      loop.append(indent).append("} else {\n");
      // The fallback keeps the JDK's tanh, one call: the rational would take C2's inlining budget twice.
      points(q, bodies, acc, steps, e -> !invariant.contains(e), scope, ref, constant, table, indent + "  ", false,
          null, null);
      loop.append(indent).append("}\n");
      return acc;
    }

    /**
     * The loop over the points of {@code q} at {@code indent}: the steps {@code which} picks, then each
     * accumulator's fused multiply-add. With {@code f}, its tanh is {@code 1 - 2 / (1 + e^(2a) F_j)}
     * ({@code e2a} the name of {@code e^(2a)}, {@code F_j} read from {@code f}'s table), or the sums are
     * those of {@link #quadratic} where it applies.
     */
    private void points(Quadrature q, int[] bodies, String[] acc, List<Expr> steps,
        java.util.function.Predicate<Expr> which, Map<Expr, String> scope,
        java.util.function.Function<Expr, String> ref,
        java.util.function.DoubleToIntFunction constant, java.util.function.ToIntFunction<double[]> table,
        String indent, boolean hot, Factored f, String e2a) {
      String i = "i" + temps++;
      String inner = indent + "  ";
      if (f != null && quadratic(q, bodies, acc, f, constant, table, indent, e2a, i)) {
        return;
      }
      // Lines marked '!' are written once, not once per unrolled vector (body()).
      loop.append('!').append(indent).append("for (int ").append(i).append(" = 0; ").append(i).append(" < ")
          .append(q.points()).append("; ").append(i).append("++) {\n");
      for (int c = 0; c < q.columns().length; c++) {
        String v = "u" + temps++;
        loop.append('!').append(inner).append(vector).append(' ').append(v).append(" = ").append(vector)
            .append(".broadcast(S, c[").append(column(q, c, table)).append(" + ").append(i).append("]);\n");
        scope.put(q.columns()[c], v);
      }
      if (f != null) {
        String one = constant(constant.applyAsInt(1));
        String t = "u" + temps++ + "#";
        loop.append(inner).append(vector).append(' ').append(t).append(" = ").append(one).append(".sub(")
            .append(constant(constant.applyAsInt(2))).append(".div(").append(e2a).append(".fma(").append(vector)
            .append(".fromArray(S, ").append(f.table()).append(", ").append(i).append(" * L), ").append(one)
            .append(")));\n");
        scope.put(f.tanh(), t);
      }
      body(steps, which, scope, ref, constant, table, inner, hot);
      for (int k = 0; k < acc.length; k++) {
        Expr[] term = q.term(bodies[k]);
        loop.append(inner).append(acc[k]).append(" = ").append(ref.apply(term[0])).append(".fma(")
            .append(ref.apply(term[1])).append(", ").append(acc[k]).append(");\n");
      }
      loop.append('!').append(indent).append("}\n");
    }

    /**
     * {@link #points} where every term is {@code P(t) w_j}, {@code P} a polynomial of degree at most 2
     * in the factored tanh {@code t} (constant coefficients) and {@code w_j} one column of the table (the
     * weights): with {@code r = 1 / (1 + e^(2a) F_j)}, {@code t = 1 - 2r} and {@code t^2 = 1 - 4r + 4r^2},
     * so the loop sums {@code w r} and {@code w r^2} only (a multiply-add, a division, a multiplication,
     * an addition and a multiply-add per point) and each sum is {@code P}'s combination of those and of
     * {@code sum w} (a constant): tanh and its derivative {@code 1 - t^2} at once. Whether it applied.
     */
    private boolean quadratic(Quadrature q, int[] bodies, String[] acc, Factored f,
        java.util.function.DoubleToIntFunction constant, java.util.function.ToIntFunction<double[]> table,
        String indent, String e2a, String i) {
      List<Expr> columns = List.of(q.columns());
      double[][] polynomial = new double[acc.length][];
      int weight = -1;
      for (int k = 0; k < acc.length; k++) {
        Expr[] term = q.term(bodies[k]);
        int column = indexOf(columns, term[1]);
        polynomial[k] = polynomial(term[0], f.tanh());
        if (column < 0 || polynomial[k] == null || (weight >= 0 && column != weight)) {
          return false;
        }
        weight = column;
      }
      boolean squares = java.util.Arrays.stream(polynomial).anyMatch(c -> c[2] != 0);
      double total = 0;
      for (double w : q.column(weight)) {
        total += w;
      }
      String one = constant(constant.applyAsInt(1));
      String r = "u" + temps++ + "#";
      String wr = "u" + temps++ + "#";
      String sum = "u" + temps++ + "#";
      String sumSquares = "u" + temps++ + "#";
      loop.append(indent).append(vector).append(' ').append(sum).append(" = ").append(vector).append(".zero(S);\n");
      if (squares) {
        loop.append(indent).append(vector).append(' ').append(sumSquares).append(" = ").append(vector)
            .append(".zero(S);\n");
      }
      String inner = indent + "  ";
      loop.append('!').append(indent).append("for (int ").append(i).append(" = 0; ").append(i).append(" < ")
          .append(q.points()).append("; ").append(i).append("++) {\n");
      loop.append(inner).append(vector).append(' ').append(r).append(" = ").append(one).append(".div(").append(e2a)
          .append(".fma(").append(vector).append(".fromArray(S, ").append(f.table()).append(", ").append(i)
          .append(" * L), ").append(one).append("));\n");
      loop.append(inner).append(vector).append(' ').append(wr).append(" = ").append(r).append(".mul(").append(vector)
          .append(".broadcast(S, c[").append(column(q, weight, table)).append(" + ").append(i).append("]));\n");
      loop.append(inner).append(sum).append(" = ").append(sum).append(".add(").append(wr).append(");\n");
      if (squares) {
        loop.append(inner).append(sumSquares).append(" = ").append(wr).append(".fma(").append(r).append(", ")
            .append(sumSquares).append(");\n");
      }
      loop.append('!').append(indent).append("}\n");
      for (int k = 0; k < acc.length; k++) {
        // a + b t + c t^2 = (a + b + c) - (2b + 4c) r + 4c r^2
        double[] p = polynomial[k];
        String base = constant(constant.applyAsInt((p[0] + p[1] + p[2]) * total));
        String rest = squares ? sumSquares + ".fma(" + constant(constant.applyAsInt(4 * p[2])) + ", " + base + ")"
            : base;
        loop.append(indent).append(acc[k]).append(" = ").append(sum).append(".fma(")
            .append(constant(constant.applyAsInt(-2 * p[1] - 4 * p[2]))).append(", ").append(rest).append(");\n");
      }
      return true;
    }

    /** The name of the first index of column {@code c} of {@code q}'s table in the constants. */
    private String column(Quadrature q, int c, java.util.function.ToIntFunction<double[]> table) {
      return tables.computeIfAbsent(table.applyAsInt(q.column(c)), base -> {
        int b = bind(base);
        head.append("    int t").append(b).append(" = b[").append(b).append("];\n");
        return "t" + b;
      });
    }

    /**
     * Before a loop over a table's points, at {@code indent}: for each sum nested in its body ({@code
     * steps}) whose inner loop takes {@code tanh(a + s x_j)} ({@link #factorable}), with {@code s} the
     * same at every point of this loop ({@code scope} has it), the table {@code F_j = e^(2 s x_j)} of the
     * entries' lanes, and which lanes have every {@code |2 s x_j|} within {@link #halfRange}: the inner
     * loop then costs a multiply-add and a division per point where tanh costs some twenty operations,
     * and {@code deg} exponentials per entry, not {@code deg^2} ({@code ElementwiseNumerical}'s rule).
     */
    private void tabulate(List<Expr> steps, java.util.Set<Expr> invariant, Map<Expr, String> scope,
        java.util.function.Function<Expr, String> ref, java.util.function.DoubleToIntFunction constant,
        java.util.function.ToIntFunction<double[]> table, String indent) {
      java.util.Set<Expr> grouped = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
      for (Expr e : steps) {
        if (e.op() != Expr.Op.QUADRATURE || invariant.contains(e) || grouped.contains(e)) {
          continue;
        }
        // The sums of one table and operands are one loop, written where the first of them is (body()).
        List<Integer> bodies = new ArrayList<>();
        for (Expr x : steps) {
          if (Quadrature.together(e, x)) {
            grouped.add(x);
            bodies.add((int) x.value());
          }
        }
        Quadrature q = e.quadrature();
        Factorable f = factorable(q, q.steps(bodies.stream().mapToInt(Integer::intValue).toArray()));
        if (f == null) {
          continue;
        }
        Expr slope = e.operands().get(f.slope());
        if (!slope.isConstant() && !scope.containsKey(slope)) {
          continue; // it changes from point to point: the table would cost as much as the tanh
        }
        String s = ref.apply(slope);
        double[] nodes = q.column(f.column());
        double max = 0;
        for (double x : nodes) {
          max = Math.max(max, Math.abs(x));
        }
        String twice = "u" + temps++ + "#";
        loop.append(indent).append(vector).append(' ').append(twice).append(" = ").append(s).append(".add(")
            .append(s).append(");\n");
        String ok = "u" + temps++ + "#";
        loop.append(indent).append("var ").append(ok).append(" = ").append(s).append(
            ".abs().compare(VectorOperators.LE, ").append(constant(constant.applyAsInt(
            max == 0 ? Double.MAX_VALUE : halfRange() / max))).append(");\n");
        String name = "f" + temps++;
        head.append("    ").append(scalar).append("[] ").append(name).append(" = new ").append(scalar).append('[')
            .append(q.points()).append(" * L];\n");
        String i = "i" + temps++;
        // Nodes in mirrored pairs (x_(n-1-j) = -x_j, Gauss-Hermite's): F of the mirror is 1 / F_j, a
        // division where an exponential was (the middle node's F is 1 either way).
        boolean mirrored = true;
        for (int j = 0; j < nodes.length; j++) {
          mirrored &= nodes[nodes.length - 1 - j] == -nodes[j];
        }
        int n = q.points();
        loop.append('!').append(indent).append("for (int ").append(i).append(" = 0; ").append(i).append(" < ")
            .append(mirrored ? (n + 1) / 2 : n).append("; ").append(i).append("++) {\n");
        String value = "u" + temps++ + "#";
        loop.append(indent).append("  ").append(vector).append(' ').append(value).append(" = ").append(twice)
            .append(".mul(").append(vector).append(".broadcast(S, c[").append(column(q, f.column(), table))
            .append(" + ").append(i).append("])).lanewise(VectorOperators.EXP);\n");
        loop.append(indent).append("  ").append(value).append(".intoArray(").append(name).append(", ").append(i)
            .append(" * L);\n");
        if (mirrored) {
          loop.append(indent).append("  ").append(constant(constant.applyAsInt(1))).append(".div(").append(value)
              .append(").intoArray(").append(name).append(", (").append(n - 1).append(" - ").append(i)
              .append(") * L);\n");
        }
        loop.append('!').append(indent).append("}\n");
        factored.put(e, new Factored(f.tanh(), f.offset(), name, ok));
      }
    }

    /**
     * The bound on {@code |a|} for {@code e^(2a)} to be a normal number: {@code e^(±2a)} and {@code
     * F_j} then neither overflow nor lose digits, and their product's overflow (to infinity) or
     * underflow (to 0) gives tanh's limits 1 and -1, which it has rounded to long before.
     */
    private double halfRange() {
      return scalar.equals("float") ? 43.5 : 354;
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

  /**
   * A {@code tanh} step of a quadrature's body whose operand is {@code fma(s, x, a)}: {@code s} and
   * {@code a} the quadrature's operands ({@code slope}, {@code offset}: their indices), {@code x} a
   * column of its table ({@code column}). neural-tangents' {@code v_ij = c x_i + s x_j} is one.
   */
  record Factorable(Expr tanh, int column, int slope, int offset) {}

  /** A {@link Factorable} sum whose table {@code F_j} is filled: its array's name, and the lanes it holds for. */
  private record Factored(Expr tanh, int offset, String table, String ok) {}

  /** The first {@code tanh} of {@code steps} (a body of {@code q}) that is {@link Factorable}, or null. */
  static Factorable factorable(Quadrature q, List<Expr> steps) {
    List<Expr> columns = List.of(q.columns());
    List<Expr> parameters = List.of(q.parameters());
    for (Expr t : steps) {
      if (t.op() != Expr.Op.TANH || t.a().op() != Expr.Op.FMA) {
        continue;
      }
      Expr f = t.a();
      int offset = indexOf(parameters, f.c());
      for (int k = 0; k < 2 && offset >= 0; k++) {
        int column = indexOf(columns, k == 0 ? f.b() : f.a());
        int slope = indexOf(parameters, k == 0 ? f.a() : f.b());
        if (column >= 0 && slope >= 0) {
          return new Factorable(t, column, slope, offset);
        }
      }
    }
    return null;
  }

  /**
   * The coefficients {@code {a, b, c}} of {@code e} as {@code a + b t + c t^2}, where {@code e} is built
   * of {@code t} and constants by additions, subtractions, multiplications and multiply-adds; else null.
   */
  static double[] polynomial(Expr e, Expr t) {
    if (e == t) {
      return new double[] {0, 1, 0};
    }
    if (e.isConstant()) {
      return new double[] {e.value(), 0, 0};
    }
    double[] x = switch (e.op()) {
      case ADD, SUB, MUL, FMA -> polynomial(e.a(), t);
      default -> null;
    };
    double[] y = x == null ? null : polynomial(e.b(), t);
    if (y == null) {
      return null;
    }
    double[] r = switch (e.op()) {
      case ADD -> new double[] {x[0] + y[0], x[1] + y[1], x[2] + y[2]};
      case SUB -> new double[] {x[0] - y[0], x[1] - y[1], x[2] - y[2]};
      default -> product(x, y);
    };
    if (r == null || e.op() != Expr.Op.FMA) {
      return r;
    }
    double[] z = polynomial(e.c(), t);
    return z == null ? null : new double[] {r[0] + z[0], r[1] + z[1], r[2] + z[2]};
  }

  /** The product of two polynomials of {@link #polynomial}, or null where its degree is above 2. */
  private static double[] product(double[] x, double[] y) {
    double[] p = new double[5];
    for (int i = 0; i < 3; i++) {
      for (int j = 0; j < 3; j++) {
        p[i + j] += x[i] * y[j];
      }
    }
    return p[3] != 0 || p[4] != 0 ? null : new double[] {p[0], p[1], p[2]};
  }

  private static int indexOf(List<Expr> list, Expr e) {
    for (int i = 0; i < list.size(); i++) {
      if (list.get(i) == e) {
        return i;
      }
    }
    return -1;
  }

  /** The steps that the terms of {@code bodies} read, {@code tanh} given (not what only it reads). */
  private static java.util.Set<Expr> needed(Quadrature q, int[] bodies, Expr tanh) {
    java.util.Set<Expr> seen = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
    java.util.ArrayDeque<Expr> stack = new java.util.ArrayDeque<>();
    for (int j : bodies) {
      stack.addAll(List.of(q.term(j)));
    }
    while (!stack.isEmpty()) {
      Expr e = stack.pop();
      if (seen.add(e) && e != tanh) {
        stack.addAll(e.operands());
      }
    }
    seen.remove(tanh);
    return seen;
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
