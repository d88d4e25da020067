package dev.ntk.kernels.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

/**
 * {@link Expr#derivative}: every operation's declared rule against central finite differences of
 * its scalar meaning at several points (each operand of the binary and ternary ones in turn),
 * composite closed forms against finite differences, and the errors and folding around it.
 * Expressions are evaluated by substituting constants for their inputs, which the folding builders
 * reduce to a constant through {@link Expr#evaluate}, the scalar meaning.
 */
class ExprDerivativeTest {
  private static final Expr X = Expr.input("x", Expr.Domain.TILE);
  private static final Expr Y = Expr.input("y", Expr.Domain.ROW);
  private static final Expr Z = Expr.input("z", Expr.Domain.COL);

  /** The value of {@code e} at {@code x, y, z}. */
  static double at(Expr e, double x, double y, double z) {
    Expr v = e.substitute(Map.of(X, Expr.constant(x), Y, Expr.constant(y), Z, Expr.constant(z)));
    assertTrue(v.isConstant(), () -> "not folded: " + v.formula());
    return v.value();
  }

  /**
   * Central difference of {@code e} in {@code wrt} at the point, with Richardson extrapolation
   * (steps h and h/2): error about h^4 |f^(5)| plus rounding 1e-16 |f| / h.
   */
  static double difference(Expr e, Expr wrt, double x, double y, double z) {
    double base = wrt == X ? x : wrt == Y ? y : z;
    double h = 1e-3 * Math.max(1, Math.abs(base));
    Function<Double, Double> f = t -> at(e, wrt == X ? t : x, wrt == Y ? t : y, wrt == Z ? t : z);
    double d1 = (f.apply(base + h) - f.apply(base - h)) / (2 * h);
    double d2 = (f.apply(base + h / 2) - f.apply(base - h / 2)) / h;
    return (4 * d2 - d1) / 3;
  }

  static void assertDerivative(String name, Expr e, Expr wrt, double[][] points) {
    Expr d = e.derivative(wrt);
    for (double[] p : points) {
      double want = difference(e, wrt, p[0], p[1], p[2]);
      double got = at(d, p[0], p[1], p[2]);
      String where = name + " d/d" + wrt.name() + " at (" + p[0] + ", " + p[1] + ", " + p[2] + ")";
      assertEquals(want, got, 2e-9 * Math.max(1, Math.abs(want)), where + ": " + d.formula());
    }
  }

  /** Points where every operation is smooth: positive, away from ties, from 0 and from the branch cuts. */
  private static final double[][] POINTS = {{0.7, 1.3, -0.4}, {1.9, 0.45, 2.2}, {0.2, 2.6, 0.9}, {3.1, 0.8, -1.7}};

  @Test
  void everyOperationsDerivativeMatchesFiniteDifferences() {
    Set<Expr.Op> tested = EnumSet.noneOf(Expr.Op.class);
    for (Expr.Op op : Expr.Op.values()) {
      if (!op.arithmetic()) {
        continue;
      }
      assertTrue(op.differentiable(), op + " declares no derivative rule in Expr.Op");
      tested.add(op);
      if (op.binary()) {
        Expr e = X.binary(op, Y);
        assertDerivative(op.name(), e, X, POINTS);
        assertDerivative(op.name(), e, Y, POINTS);
        // The same variable in both operands: the two partials add up.
        assertDerivative(op.name() + "(x, 2x)", X.binary(op, X.times(2)), X, POINTS);
      } else {
        assertDerivative(op.name(), X.unary(op), X, POINTS);
        assertDerivative(op.name() + "(x y)", X.times(Y).unary(op), Y, POINTS);
      }
    }
    // At negative points too where the operation is defined there.
    double[][] negative = {{-0.7, -1.3, 0.4}, {-2.3, 0.5, -0.9}};
    for (Expr.Op op : List.of(Expr.Op.EXP, Expr.Op.EXPM1, Expr.Op.SIN, Expr.Op.COS, Expr.Op.ABS, Expr.Op.ERF,
        Expr.Op.ERFC, Expr.Op.TANH, Expr.Op.ATAN)) {
      assertDerivative(op + " negative", X.unary(op), X, negative);
    }
    assertDerivative("ATAN2 negative", X.atan2(Y), X, negative);
    assertDerivative("ATAN2 negative", X.atan2(Y), Y, negative);
    assertDerivative("integer POW negative", X.pow(3), X, negative);
    assertDerivative("MAX picks y", X.max(Y), Y, negative);
    // The ternary ones: fma built from a product, select (which differentiates its branches only).
    Expr fma = X.times(Y).plus(Z);
    assertSame(Expr.Op.FMA, fma.op());
    tested.add(Expr.Op.FMA);
    for (Expr wrt : List.of(X, Y, Z)) {
      assertDerivative("FMA", fma, wrt, POINTS);
    }
    Expr select = Z.select(X.sin(), X.times(Y).exp());
    assertSame(Expr.Op.SELECT, select.op());
    tested.add(Expr.Op.SELECT);
    assertDerivative("SELECT", select, X, POINTS);
    assertDerivative("SELECT", select, Y, POINTS);
    assertDerivative("SELECT", select, Z, POINTS);
    assertEquals(0.0, at(select.derivative(Z), 0.3, 0.4, 0.5));
    Set<Expr.Op> entryWise = EnumSet.noneOf(Expr.Op.class);
    for (Expr.Op op : Expr.Op.values()) {
      if (op.differentiable()) {
        entryWise.add(op);
      }
    }
    assertEquals(entryWise, tested, "every differentiable operation is tested");
  }

  @Test
  void signAndAbsDifferentiateAsJaxDoes() {
    assertEquals(0.0, at(X.sign().derivative(X), 0.0, 0, 0));
    assertEquals(0.0, at(X.sign().derivative(X), -2.0, 0, 0));
    assertEquals(-1.0, at(X.abs().derivative(X), -2.0, 0, 0));
    assertEquals(1.0, at(X.abs().derivative(X), 3.0, 0, 0));
    assertEquals(0.0, at(X.abs().derivative(X), 0.0, 0, 0));
  }

  /**
   * neural-tangents' Erf NNGP {@code (2/pi) asin(2k / sqrt((1 + 2 q1)(1 + 2 q2)))} (asin written as
   * atan2) and Gelu's, written as expressions of {@code k = x}, {@code q1 = y}, {@code q2 = z}.
   */
  @Test
  void compositeClosedFormsMatchFiniteDifferences() {
    Expr s = Y.times(2).plus(1).times(Z.times(2).plus(1));
    Expr t = X.times(2).div(s.sqrt());
    Expr erf = t.atan2(Expr.constant(1).minus(t.times(t)).sqrt()).times(2 / Math.PI);
    double[][] points = {{0.3, 1.2, 0.8}, {-0.5, 0.9, 1.4}, {0.95, 1.0, 1.0}, {0.0, 0.5, 2.0}};
    for (Expr wrt : List.of(X, Y, Z)) {
      assertDerivative("erf nngp", erf, wrt, points);
    }
    Expr s12 = Y.plus(1).times(Z.plus(1));
    Expr d2 = s12.minus(X.times(X));
    Expr d = d2.sqrt();
    Expr p = Y.times(Z);
    Expr gelu = X.times(0.25).plus(X.times(X).plus(p.times(d2)).div(s12.times(d)).plus(X.times(X.atan2(d)))
        .times(1 / (2 * Math.PI)));
    for (Expr wrt : List.of(X, Y, Z)) {
      assertDerivative("gelu nngp", gelu, wrt, points);
    }
    // Derivatives of derivatives: the second derivative of erf's NNGP in k.
    assertDerivative("erf nngp'", erf.derivative(X), X, points);
  }

  @Test
  void foldsWhatDoesNotDependOnTheVariable() {
    Expr e = Y.exp().plus(Z.sin()).times(X);
    Expr d = e.derivative(X);
    assertEquals("add(exp(y), sin(z))", d.formula());
    assertTrue(Y.exp().derivative(X).isConstant());
    assertEquals(0.0, Y.exp().derivative(X).value());
    assertEquals(1.0, X.derivative(X).value());
    // A sub-expression may be the variable: d/du sin(u) with u = x y.
    Expr u = X.times(Y);
    assertEquals("cos(mul(x, y))", u.sin().derivative(u).formula());
  }

  @Test
  void structuralOperationsHaveNoDerivative() {
    Expr block = Expr.input("s", Expr.Domain.TILE, Layout.full(2, 2));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> block.diagonal().exp().derivative(block));
    assertTrue(e.getMessage().contains("diagonal"), e.getMessage());
    // Nor has a Java function; folded where its operands are constants.
    Expr call = Expr.call((a, b, c) -> a * b + c, X, Y, Z);
    IllegalArgumentException f = assertThrows(IllegalArgumentException.class, () -> call.sin().derivative(Y));
    assertTrue(f.getMessage().contains("call"), f.getMessage());
    assertEquals(0.5 * 4 + 1, at(call, 0.5, 4, 1));
    // One not depending on the variable is fine.
    assertEquals(0.0, block.diagonal().derivative(X).value());
  }

  @Test
  void substituteRebuildsThroughTheFoldingBuilders() {
    Expr e = X.times(Y).plus(Z).sqrt();
    assertEquals(Math.sqrt(0.5 * 4 + 1), at(e, 0.5, 4, 1), 0);
    // Replacing x by 0 folds the product away.
    assertEquals("sqrt(z)", e.substitute(Map.of(X, Expr.constant(0))).formula());
    assertSame(e, e.substitute(Map.of(Expr.input("w", Expr.Domain.ROW), Y)));
  }
}
