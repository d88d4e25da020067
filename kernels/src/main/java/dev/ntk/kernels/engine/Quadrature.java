package dev.ntk.kernels.engine;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A sum over the points of a constant table ({@link Expr.Op#QUADRATURE}): {@code sum_i body(t_i,
 * a, b, c)}, where row {@code t_i} of the table holds a quadrature rule's node and weight (or any
 * columns a rule needs) and {@code a, b, c} are the step's operands. The body is an expression
 * over placeholders, built once, so a rule of {@code m} points is one step of the plan, not
 * {@code m} copies of its body: the plan's size and the time to compile it do not grow with
 * {@code m}, and each backend runs the sum as a loop (the {@code cpu} backend's fused loops over
 * the table inside the loop over entries, nodes and weights as constants).
 *
 * <p>The terms are added in table order as {@link Expr#plus} adds a product to a sum: a body
 * {@code u * v} is accumulated as {@code fma(u, v, sum)}, so that a loop gives the same numbers
 * as the unrolled sum {@code body_m.plus(... body_1.plus(0))} written with the folding builders.
 *
 * <p>One table may carry several bodies ({@link #sums}): the NNGP and the NTK factor of a
 * Gaussian expectation at the same points share their work (tanh and its derivative {@code 1 -
 * tanh^2}), and a backend that runs sums of one table over the same operands together ({@code
 * Fused}) evaluates what their bodies share once per point. A body may itself hold such sums
 * (a two-dimensional rule as an outer and an inner loop).
 *
 * <pre>{@code
 * // E[tanh(s z)^2] over a standard normal z, by a Gauss-Hermite rule {x, w} (w divided by sqrt(pi)):
 * Expr mean = Quadrature.sums(new double[][] {x, w}, new Expr[] {s}, (t, p) -> {
 *   Expr f = p[0].times(Math.sqrt(2)).times(t[0]).tanh();
 *   return new Expr[] {f.times(f).times(t[1])};
 * })[0];
 * }</pre>
 */
public final class Quadrature {
  /** The bodies of a {@link Quadrature}, given placeholders for its table's columns and its operands. */
  @FunctionalInterface
  public interface Body {
    /** The summands, one per sum, as expressions of {@code column} (per point) and {@code operand}. */
    Expr[] of(Expr[] column, Expr[] operand);
  }

  /** The most operands of a sum (an {@link Expr} has three). */
  static final int OPERANDS = 3;

  private final double[][] table;
  private final Expr[] columns;
  private final Expr[] parameters;
  private final Expr[] bodies;
  /** Per body: the factors {@code u, v} of its term, accumulated as {@code fma(u, v, sum)}. */
  private final Expr[][] terms;
  /** Per body: the steps computing its factors from the placeholders, in build order. */
  private final List<List<Expr>> steps = new ArrayList<>();
  private final long work;

  private Quadrature(double[][] table, Body body, int operands) {
    int points = table[0].length;
    for (double[] column : table) {
      if (column.length != points) {
        throw new IllegalArgumentException("the columns of a quadrature table differ in length");
      }
    }
    this.table = table;
    this.columns = new Expr[table.length];
    for (int c = 0; c < columns.length; c++) {
      columns[c] = Expr.input("quadrature.column" + c, Expr.Domain.TILE);
    }
    this.parameters = new Expr[OPERANDS];
    for (int p = 0; p < OPERANDS; p++) {
      parameters[p] = Expr.input("quadrature.operand" + p, Expr.Domain.TILE);
    }
    this.bodies = body.of(columns.clone(), java.util.Arrays.copyOf(parameters, operands));
    this.terms = new Expr[bodies.length][];
    long perPoint = 0;
    for (int j = 0; j < bodies.length; j++) {
      Expr b = bodies[j];
      terms[j] = b.op() == Expr.Op.MUL ? new Expr[] {b.a(), b.b()} : new Expr[] {b, Expr.constant(1)};
      List<Expr> s = stepsOf(List.of(terms[j]));
      steps.add(s);
      for (Expr e : s) {
        perPoint += e.op() == Expr.Op.QUADRATURE ? e.quadrature().work() : 1;
      }
      perPoint++;
    }
    this.work = perPoint * points;
  }

  /**
   * The sums {@code sum_i body_j(table[.][i], operands)}, one per body {@code body} returns: one
   * {@link Expr.Op#QUADRATURE} step each, over at most three {@code operands}.
   */
  public static Expr[] sums(double[][] table, Expr[] operands, Body body) {
    if (operands.length == 0 || operands.length > OPERANDS) {
      throw new IllegalArgumentException("a quadrature takes 1 to " + OPERANDS + " operands, got " + operands.length);
    }
    Quadrature q = new Quadrature(table, body, operands.length);
    Expr[] x = java.util.Arrays.copyOf(operands, OPERANDS);
    for (int p = operands.length; p < OPERANDS; p++) {
      x[p] = Expr.constant(0);
    }
    Expr[] sums = new Expr[q.bodies.length];
    for (int j = 0; j < sums.length; j++) {
      sums[j] = Expr.quadrature(q, j, x[0], x[1], x[2]);
    }
    return sums;
  }

  /** The points of the rule. */
  public int points() {
    return table[0].length;
  }

  /** Column {@code c} of the table. */
  public double[] column(int c) {
    return table[c];
  }

  /** The placeholders of the table's columns. */
  public Expr[] columns() {
    return columns;
  }

  /** The placeholders of the operands. */
  public Expr[] parameters() {
    return parameters;
  }

  /** The factors {@code u, v} of body {@code j}'s term, which a sum accumulates as {@code fma(u, v, sum)}. */
  public Expr[] term(int j) {
    return terms[j];
  }

  /** The steps of the bodies {@code js} (placeholders and constants excluded), in build order. */
  public List<Expr> steps(int... js) {
    if (js.length == 1) {
      return steps.get(js[0]);
    }
    List<Expr> roots = new ArrayList<>();
    for (int j : js) {
      roots.addAll(List.of(terms[j]));
    }
    return stepsOf(roots);
  }

  /**
   * Which of {@code steps} (of {@link #steps}) do not depend on the table's columns: their values are
   * the same at every point, so a loop computes them once, before it.
   */
  public Set<Expr> invariant(List<Expr> steps) {
    Set<Expr> varying = Collections.newSetFromMap(new IdentityHashMap<>());
    varying.addAll(List.of(columns));
    Set<Expr> invariant = Collections.newSetFromMap(new IdentityHashMap<>());
    for (Expr e : steps) {
      if (e.operands().stream().anyMatch(varying::contains)) {
        varying.add(e);
      } else {
        invariant.add(e);
      }
    }
    return invariant;
  }

  /**
   * The entry-wise operations one entry of one sum costs, nested sums included: what a plan counts
   * for its step (to decide whether to fuse, and how fast a warm loop is).
   */
  public long work() {
    return work;
  }

  private List<Expr> stepsOf(List<Expr> roots) {
    Set<Expr> seen = Collections.newSetFromMap(new IdentityHashMap<>());
    seen.addAll(List.of(columns));
    seen.addAll(List.of(parameters));
    List<Expr> order = new ArrayList<>();
    java.util.ArrayDeque<Expr> stack = new java.util.ArrayDeque<>(roots);
    while (!stack.isEmpty()) {
      Expr e = stack.pop();
      if (e.isConstant() || !seen.add(e)) {
        continue;
      }
      if (e.op() == Expr.Op.INPUT) {
        throw new IllegalArgumentException("a quadrature's body reads the input " + e.name()
            + ": pass it as an operand");
      }
      order.add(e);
      stack.addAll(e.operands());
    }
    order.sort(java.util.Comparator.comparingLong(Expr::sequence));
    return order;
  }

  /** Whether the sums {@code x} and {@code y} run over this table with the same operands (siblings). */
  public static boolean together(Expr x, Expr y) {
    return x.op() == Expr.Op.QUADRATURE && y.op() == Expr.Op.QUADRATURE && x.quadrature() == y.quadrature()
        && x.a() == y.a() && x.b() == y.b() && x.c() == y.c();
  }

  /** The scalar meaning of sum {@code j} at operands {@code a, b, c}: the reference the backends agree with. */
  double evaluate(int j, double a, double b, double c) {
    List<Expr> s = steps.get(j);
    Map<Expr, Double> v = new IdentityHashMap<>();
    double[] operand = {a, b, c};
    double sum = 0;
    for (int i = 0; i < points(); i++) {
      for (int k = 0; k < columns.length; k++) {
        v.put(columns[k], table[k][i]);
      }
      for (int p = 0; p < OPERANDS; p++) {
        v.put(parameters[p], operand[p]);
      }
      for (Expr e : s) {
        double x = value(e.a(), v);
        double y = e.b() == null ? 0 : value(e.b(), v);
        double z = e.c() == null ? 0 : value(e.c(), v);
        v.put(e, e.op() == Expr.Op.QUADRATURE ? e.quadrature().evaluate((int) e.value(), x, y, z)
            : e.op() == Expr.Op.CALL ? e.callback().apply(x, y, z) : Expr.evaluate(e.op(), x, y, z));
      }
      sum = Math.fma(value(terms[j][0], v), value(terms[j][1], v), sum);
    }
    return sum;
  }

  private static double value(Expr e, Map<Expr, Double> v) {
    return e.isConstant() ? e.value() : v.get(e);
  }

  /**
   * Sum {@code j} over a chunk, in {@code ops}' arithmetic: operands masked as in {@link
   * ChunkOps#apply}, the body's steps one pass each over the chunk per point, the term
   * accumulated by {@link ChunkOps#fma}. The interpreted paths of the {@code cpu} backend run this.
   */
  <A> void run(ChunkOps<A> ops, int j, A a, int ao, int am, A b, int bo, int bm, A c, int co, int cm, A out,
      int oo, int length) {
    List<Expr> s = steps.get(j);
    Map<Expr, Object[]> at = new IdentityHashMap<>(); // {array, offset, mask}
    Object[][] operand = {{a, ao, am}, {b, bo, bm}, {c, co, cm}};
    for (int p = 0; p < OPERANDS; p++) {
      at.put(parameters[p], operand[p]);
    }
    A[] column = newArray(columns.length);
    for (int k = 0; k < columns.length; k++) {
      column[k] = ops.allocate(ChunkOps.BROADCAST_LENGTH);
      at.put(columns[k], new Object[] {column[k], 0, ChunkOps.BROADCAST});
    }
    for (Expr e : s) {
      at.put(e, new Object[] {ops.allocate(length), 0, ChunkOps.ALL});
      for (Expr o : e.operands()) {
        constant(ops, o, at);
      }
    }
    constant(ops, terms[j][0], at);
    constant(ops, terms[j][1], at);
    A sum = ops.allocate(length);
    ops.fill(sum, 0, length, 0);
    Set<Expr> invariant = invariant(s);
    for (Expr e : s) {
      if (invariant.contains(e)) {
        step(ops, e, at, length);
      }
    }
    for (int i = 0; i < points(); i++) {
      for (int k = 0; k < columns.length; k++) {
        ops.fill(column[k], 0, ChunkOps.BROADCAST_LENGTH, table[k][i]);
      }
      for (Expr e : s) {
        if (!invariant.contains(e)) {
          step(ops, e, at, length);
        }
      }
      Object[] u = at.get(terms[j][0]);
      Object[] w = at.get(terms[j][1]);
      ops.fma(array(u), (int) u[1], (int) u[2], array(w), (int) w[1], (int) w[2], sum, 0, ChunkOps.ALL, sum, 0,
          length);
    }
    ops.copy(sum, 0, out, oo, length);
  }

  /** Step {@code e} of a body over the chunk, its operands and result where {@code at} says. */
  private static <A> void step(ChunkOps<A> ops, Expr e, Map<Expr, Object[]> at, int length) {
    Object[] x = at.get(e.a());
    Object[] y = at.get(e.b() == null ? e.a() : e.b());
    Object[] r = at.get(e);
    if (e.op().ternary()) {
      Object[] z = at.get(e.c());
      ops.ternary(e, array(x), (int) x[1], (int) x[2], array(y), (int) y[1], (int) y[2], array(z), (int) z[1],
          (int) z[2], array(r), 0, length);
    } else {
      ops.apply(e.op(), array(x), (int) x[1], (int) x[2], array(y), (int) y[1], (int) y[2], array(r), 0, length);
    }
  }

  private static <A> void constant(ChunkOps<A> ops, Expr e, Map<Expr, Object[]> at) {
    if (e.isConstant() && !at.containsKey(e)) {
      A c = ops.allocate(ChunkOps.BROADCAST_LENGTH);
      ops.fill(c, 0, ChunkOps.BROADCAST_LENGTH, e.value());
      at.put(e, new Object[] {c, 0, ChunkOps.BROADCAST});
    }
  }

  @SuppressWarnings("unchecked")
  private static <A> A array(Object[] at) {
    return (A) at[0];
  }

  @SuppressWarnings("unchecked")
  private static <A> A[] newArray(int n) {
    return (A[]) new Object[n];
  }

  @Override
  public String toString() {
    return "quadrature[" + points() + " points, " + bodies.length + " sums]";
  }
}
