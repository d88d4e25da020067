package dev.ntk.kernels.engine;

import java.util.Objects;
import jdk.incubator.vector.VectorOperators;

/**
 * An entry-wise expression over a kernel tile: the vocabulary in which every translation rule is
 * written once, and which both backends run ({@code cpu} as fused vectorised loops over cache-sized
 * chunks, {@code tensorflow} as one TensorFlow op per node).
 *
 * <p>Each expression has a {@link Domain}: a constant, a value per row input ({@code var1}, the
 * variances of the x1 batch), a value per column input ({@code var2}) or a value per pair (the
 * {@code nngp} and {@code ntk} entries). Combining a row and a column value gives a pair value,
 * as {@code sqrt(var1 * var2)} does. Expressions are immutable; sharing a sub-expression (a
 * {@code FanOut}, a value used twice in one rule) computes it once.
 *
 * <pre>{@code
 * Expr sine = var1.times(var2).minus(nngp.times(nngp)).max(0).sqrt();
 * Expr angle = sine.atan2(nngp);
 * }</pre>
 *
 * <p>Constants are folded as expressions are built ({@code x * 1}, {@code x + 0} and {@code x * 0}
 * are simplified away), so a rule need not special-case a zero bias or a zero input NTK.
 */
public final class Expr {
  /**
   * The operations of the vocabulary. Each entry-wise operation is declared here once, with every
   * meaning it has: its scalar meaning ({@link #evaluate}, the reference, and what {@code ScalarOps}
   * runs), its vector lowering (a {@code VectorOperators} constant, or a {@link VectorMath.Function}
   * for what the Vector API lacks; {@code VectorOps} runs it in a loop of its own, {@link
   * LaneLoops}, and it is named lazily so that a JVM without the Vector API never loads it), its template in
   * generated source ({@code Fused}: {@code %1$s}, {@code %2$s} are the operands, {@code DoubleVector}s
   * or {@code FloatVector}s), its TensorFlow op (the raw op's name, run by {@code
   * TensorFlowBackend}) and its derivative rule ({@link Derivative}, what {@link #derivative} applies;
   * none for the structural operations). A new operation is one entry here and a method that builds it ({@link
   * #unary(Op)} or {@link #binary(Op, Expr)}); see docs/DESIGN.md.
   */
  public enum Op {
    CONST, INPUT,
    /**
     * A constant pixel block ({@link Expr#block}): the same numbers for every pair, such as the
     * covariance of positional embeddings; a leaf, like {@link #CONST} and {@link #INPUT}.
     */
    BLOCK,
    ADD(Double::sum, () -> VectorOperators.ADD,
        "%1$s.add(%2$s)", "AddV2",
        (e, d) -> d[0].plus(d[1])),
    SUB((x, y) -> x - y, () -> VectorOperators.SUB,
        "%1$s.sub(%2$s)", "Sub",
        (e, d) -> d[0].minus(d[1])),
    MUL((x, y) -> x * y, () -> VectorOperators.MUL,
        "%1$s.mul(%2$s)", "Mul",
        (e, d) -> d[0].times(e.b).plus(e.a.times(d[1]))),
    DIV((x, y) -> x / y, () -> VectorOperators.DIV,
        "%1$s.div(%2$s)", "RealDiv",
        (e, d) -> quotient(d[0], e.b).minus(quotient(e.times(d[1]), e.b))),
    MAX(Math::max, () -> VectorOperators.MAX,
        "%1$s.max(%2$s)", "Maximum",
        (e, d) -> e.a.minus(e.b).select(d[0], d[1])),
    MIN(Math::min, () -> VectorOperators.MIN,
        "%1$s.min(%2$s)", "Minimum",
        (e, d) -> e.b.minus(e.a).select(d[0], d[1])),
    ATAN2(Math::atan2, () -> VectorOperators.ATAN2,
        "%1$s.lanewise(VectorOperators.ATAN2, %2$s)", "Atan2",
        (e, d) -> quotient(e.b.times(d[0]).minus(e.a.times(d[1])), e.a.times(e.a).plus(e.b.times(e.b)))),
    SQRT(Math::sqrt, () -> VectorOperators.SQRT,
        "%1$s.sqrt()", "Sqrt",
        (e, d) -> quotient(d[0].times(0.5), e)),
    EXP(Math::exp, () -> VectorOperators.EXP,
        "%1$s.lanewise(VectorOperators.EXP)", "Exp",
        (e, d) -> d[0].times(e)),
    EXPM1(Math::expm1, () -> VectorOperators.EXPM1,
        "%1$s.lanewise(VectorOperators.EXPM1)", "Expm1",
        (e, d) -> d[0].times(e.plus(1))),
    LOG(Math::log, () -> VectorOperators.LOG,
        "%1$s.lanewise(VectorOperators.LOG)", "Log",
        (e, d) -> quotient(d[0], e.a)),
    LOG1P(Math::log1p, () -> VectorOperators.LOG1P,
        "%1$s.lanewise(VectorOperators.LOG1P)", "Log1p",
        (e, d) -> quotient(d[0], e.a.plus(1))),
    SIN(Math::sin, () -> VectorOperators.SIN,
        "%1$s.lanewise(VectorOperators.SIN)", "Sin",
        (e, d) -> d[0].times(e.a.cos())),
    COS(Math::cos, () -> VectorOperators.COS,
        "%1$s.lanewise(VectorOperators.COS)", "Cos",
        (e, d) -> d[0].times(e.a.sin()).times(-1)),
    ABS(Math::abs, () -> VectorOperators.ABS,
        "%1$s.abs()", "Abs",
        (e, d) -> d[0].times(e.a.sign())),
    /** The error function: no {@code VectorOperators} form, so its lanes are {@link VectorMath#erf}. */
    ERF(SpecialFunctions::erf, () -> VectorMath.ERF,
        "dev.ntk.kernels.engine.VectorMath.erf(%1$s)", "Erf",
        (e, d) -> d[0].times(e.a.times(e.a).times(-1).exp().times(2 / Math.sqrt(Math.PI)))),
    /** The complementary error function {@code 1 - erf}, accurate relative to itself in the far tail. */
    ERFC(SpecialFunctions::erfc, () -> VectorMath.ERFC,
        "dev.ntk.kernels.engine.VectorMath.erfc(%1$s)", "Erfc",
        (e, d) -> d[0].times(e.a.times(e.a).times(-1).exp().times(-2 / Math.sqrt(Math.PI)))),
    /** {@code tanh}: float32 lanes by {@link VectorMath#tanh(jdk.incubator.vector.FloatVector)}, a rational. */
    TANH(Math::tanh, () -> VectorMath.TANH,
        "dev.ntk.kernels.engine.VectorMath.tanh(%1$s)", "Tanh",
        (e, d) -> d[0].times(Expr.constant(1).minus(e.times(e)))),
    ATAN(Math::atan, () -> VectorOperators.ATAN,
        "%1$s.lanewise(VectorOperators.ATAN)", "Atan",
        (e, d) -> quotient(d[0], e.a.times(e.a).plus(1))),
    /** {@code a^b}; {@link #pow(int)} builds it with an integer constant exponent. */
    POW(Math::pow, () -> VectorOperators.POW,
        "%1$s.lanewise(VectorOperators.POW, %2$s)", "Pow",
        (e, d) -> d[0].times(e.b).times(e.a.binary(e.op, e.b.minus(constant(1))))
        .plus(d[1].times(e).times(e.a.log()))),
    /** {@link Math#signum}: -1, 1, or the operand itself (zeros, NaN). */
    SIGN(Math::signum, () -> VectorMath.SIGN,
        "dev.ntk.kernels.engine.VectorMath.sign(%1$s)", "Sign",
        (e, d) -> constant(0)),
    /** {@code a * b + c} with one rounding: built by {@link #plus} from a product. */
    FMA((e, d) -> d[0].times(e.b).plus(e.a.times(d[1])).plus(d[2])),
    /**
     * {@code a > 0 ? b : c} (a NaN {@code a} selects {@code c}), built by {@link #select}: the
     * operand not selected does not reach the result, even where it is infinite or NaN.
     */
    SELECT((e, d) -> e.a.select(d[1], d[2])),
    /**
     * {@code f(a, b, c)} for a {@link Callback} {@code f} that only Java computes (a user's activation
     * through quadrature), built by {@link #call}: the {@code cpu} backend runs it entry by entry
     * (never in the generated fused loops), {@code tensorflow} on the host; it has no derivative.
     */
    CALL,
    /**
     * {@code sum_i body(t_i, a, b, c)} over the rows {@code t_i} of a constant table (a quadrature
     * rule's nodes and weights), built by {@link Quadrature#sums}: one step however many points,
     * run as a loop by every backend; it has no derivative.
     */
    QUADRATURE,
    /** The diagonal {@code [p, p]} of a {@link Layout.Kind#FULL} block. */
    DIAGONAL,
    /** The {@code FULL} block {@code [p, q] = v[p]} of a {@link Layout.Kind#DIAG} one. */
    SPREAD_ROW,
    /** The {@code FULL} block {@code [p, q] = v[q]} of a {@code DIAG} one. */
    SPREAD_COL,
    /** A {@link PixelMap} (a convolution or pooling of the pixel block). */
    PIXELS,
    /** The sum of a block's entries times a constant: a scalar. */
    REDUCE,
    /**
     * The softmax of a {@code FULL} block over its second pixel: {@code [p, q] = exp(a[p, q]) / sum_r
     * exp(a[p, r])}, computed as {@code exp(a[p, q] - max_r a[p, r])} over its sum (an attention
     * matrix from the covariance of every two pixels of one input).
     */
    SOFTMAX,
    /**
     * The {@code FULL} block {@code b a c^T} of three {@code FULL} blocks as {@code P x P} matrices,
     * built by {@link Expr#attend}: a pixel-pair covariance {@code a} mixed by the attention matrix
     * {@code b} of the row input and {@code c} of the column input.
     */
    ATTEND;

    private final java.util.function.DoubleBinaryOperator scalar;
    private final boolean binary;
    private final java.util.function.Supplier<Object> vector;
    private final String source;
    private final String tensorflow;
    private final Derivative derivative;

    Op() {
      this((Derivative) null);
    }

    Op(Derivative derivative) {
      this.scalar = null;
      this.binary = false;
      this.vector = null;
      this.source = null;
      this.tensorflow = null;
      this.derivative = derivative;
    }

    /**
     * An operation declared without its derivative rule: {@link Expr#derivative} refuses it by name,
     * and {@code ExprDerivativeTest} fails until the rule is added beside the other meanings.
     */
    Op(java.util.function.DoubleUnaryOperator scalar, java.util.function.Supplier<Object> vector, String source,
        String tensorflow) {
      this(scalar, vector, source, tensorflow, null);
    }

    /** As the unary constructor above, for two operands, without a derivative rule. */
    Op(java.util.function.DoubleBinaryOperator scalar, java.util.function.Supplier<Object> vector, String source,
        String tensorflow) {
      this(scalar, vector, source, tensorflow, null);
    }

    Op(java.util.function.DoubleUnaryOperator scalar, java.util.function.Supplier<Object> vector, String source,
        String tensorflow, Derivative derivative) {
      this((x, y) -> scalar.applyAsDouble(x), false, vector, source, tensorflow, derivative);
    }

    Op(java.util.function.DoubleBinaryOperator scalar, java.util.function.Supplier<Object> vector, String source,
        String tensorflow, Derivative derivative) {
      this(scalar, true, vector, source, tensorflow, derivative);
    }

    private Op(java.util.function.DoubleBinaryOperator scalar, boolean binary, java.util.function.Supplier<Object> vector, String source,
        String tensorflow, Derivative derivative) {
      this.scalar = scalar;
      this.binary = binary;
      this.vector = vector;
      this.source = source;
      this.tensorflow = tensorflow;
      this.derivative = derivative;
    }

    /** Whether {@link Expr#derivative} can differentiate through this operation. */
    public boolean differentiable() {
      return derivative != null;
    }

    /** Whether the operation mixes the entries of a pixel block (not entry-wise). */
    public boolean structural() {
      return ordinal() >= DIAGONAL.ordinal();
    }

    /**
     * Whether the operation takes three operands ({@link #FMA}, {@link #SELECT}, {@link #CALL},
     * {@link #QUADRATURE}).
     */
    public boolean ternary() {
      return this == FMA || this == SELECT || this == CALL || this == QUADRATURE;
    }

    /** Whether the operation takes two operands. */
    public boolean binary() {
      return binary;
    }

    /** Whether this is an entry-wise operation of one or two operands (not FMA, not structural). */
    public boolean arithmetic() {
      return scalar != null;
    }

    /**
     * The vector lowering: a {@code VectorOperators.Unary} or {@code Binary} constant, or a {@link
     * VectorMath.Function} (only called where the JVM has the Vector API).
     */
    Object vector() {
      return vector.get();
    }

    /** The Java expression of generated vector code, given its operands' expressions. */
    String source(String... operands) {
      return String.format(java.util.Locale.ROOT, source, (Object[]) operands);
    }

    /** The TensorFlow op that computes it on broadcast operands. */
    public String tensorflow() {
      return tensorflow;
    }
  }

  /**
   * The derivative rule of an operation, declared with it in {@link Op}: given the node {@code e}
   * (its operands {@code e.a()}, {@code e.b()}, {@code e.c()}) and the derivatives {@code d} of its
   * operands with respect to the same variable (in order; constants {@code 0} where an operand does
   * not depend on it), the derivative of {@code e}, built with the folding builders.
   */
  @FunctionalInterface
  interface Derivative {
    Expr of(Expr e, Expr[] d);
  }

  /**
   * A function of three numbers, entry by entry, that only Java can compute ({@link Op#CALL}). It is
   * called from several threads at once, so it must be a pure function.
   */
  @FunctionalInterface
  public interface Callback {
    double apply(double a, double b, double c);
  }

  /** Which entries an expression varies over. */
  public enum Domain {
    /** One value for the whole tile. */
    CONST,
    /** One value per x1 input (row). */
    ROW,
    /** One value per x2 input (column). */
    COL,
    /** One value per pair of inputs. */
    TILE;

    Domain join(Domain other) {
      if (this == other || other == CONST) {
        return this;
      }
      if (this == CONST) {
        return other;
      }
      return TILE; // ROW with COL, or anything with TILE
    }
  }

  private static final java.util.concurrent.atomic.AtomicLong SEQUENCE = new java.util.concurrent.atomic.AtomicLong();

  private final long sequence = SEQUENCE.getAndIncrement();
  private final Op op;
  private final Expr a;
  private final Expr b;
  private final Expr c;
  private final double value;
  private final String name;
  private final Domain domain;
  private final Layout layout;
  private final PixelMap map;
  private final Callback callback;
  /** The numbers of a {@link Op#BLOCK}. */
  private double[] block;
  private final Quadrature quadrature;

  private Expr(Op op, Expr a, Expr b, double value, String name, Domain domain) {
    this(op, a, b, null, value, name, domain, joinLayouts(op, a, b, null), null);
  }

  private Expr(Op op, Expr a, Expr b, Expr c, double value, String name, Domain domain, Layout layout,
      PixelMap map) {
    this(op, a, b, c, value, name, domain, layout, map, null);
  }

  private Expr(Op op, Expr a, Expr b, Expr c, double value, String name, Domain domain, Layout layout,
      PixelMap map, Callback callback) {
    this(op, a, b, c, value, name, domain, layout, map, callback, null);
  }

  private Expr(Op op, Expr a, Expr b, Expr c, double value, String name, Domain domain, Layout layout,
      PixelMap map, Callback callback, Quadrature quadrature) {
    this.callback = callback;
    this.quadrature = quadrature;
    this.op = op;
    this.a = a;
    this.b = b;
    this.c = c;
    this.value = value;
    this.name = name;
    this.domain = domain;
    this.layout = layout;
    this.map = map;
  }

  /** The layout of an entry-wise result: its operands' layout, scalars broadcasting over blocks. */
  private static Layout joinLayouts(Op op, Expr a, Expr b, Expr c) {
    Layout l = Layout.SCALAR;
    for (Expr e : new Expr[] {a, b, c}) {
      if (e == null || e.layout.isScalar()) {
        continue;
      }
      if (!l.isScalar() && !l.equals(e.layout)) {
        throw new IllegalArgumentException(op + " of blocks " + l + " and " + e.layout);
      }
      l = e.layout;
    }
    return l;
  }

  /** A constant. */
  public static Expr constant(double value) {
    return new Expr(Op.CONST, null, null, value, null, Domain.CONST);
  }

  /** A named scalar input of a plan, varying over {@code domain}. */
  public static Expr input(String name, Domain domain) {
    return input(name, domain, Layout.SCALAR);
  }

  /** A named input of a plan, varying over {@code domain}, with blocks of {@code layout}. */
  public static Expr input(String name, Domain domain, Layout layout) {
    if (domain == Domain.CONST) {
      throw new IllegalArgumentException("an input varies over rows, columns or the tile");
    }
    return new Expr(Op.INPUT, null, null, null, Double.NaN, Objects.requireNonNull(name), domain, layout, null);
  }

  /**
   * The constant pixel block {@code values} of {@code layout} ({@link Op#BLOCK}), the same for
   * every pair: row-major, {@code layout.size()} numbers.
   */
  public static Expr block(Layout layout, double[] values) {
    if (layout.isScalar() || values.length != layout.size()) {
      throw new IllegalArgumentException("a constant block of " + layout + " holds " + layout.size()
          + " numbers, got " + values.length);
    }
    Expr e = new Expr(Op.BLOCK, null, null, null, Double.NaN, null, Domain.CONST, layout, null);
    e.block = values.clone();
    return e;
  }

  /** The numbers of a constant block ({@link Op#BLOCK}), a copy; null for any other expression. */
  public double[] blockValues() {
    return block == null ? null : block.clone();
  }

  /** What each entry holds: a number, or a block of per-pixel or pixel-pair numbers. */
  public Layout layout() {
    return layout;
  }

  /** The map of a {@link Op#PIXELS} step. */
  public PixelMap map() {
    return map;
  }

  private Expr structural(Op op, Layout.Kind from, Layout out, PixelMap m, double factor) {
    if (layout.kind() != from) {
      throw new IllegalArgumentException(op + " takes a " + from + " block, got " + layout);
    }
    return new Expr(op, this, null, null, factor, null, domain, out, m);
  }

  /** The per-pixel diagonal of a pixel-pair block. */
  public Expr diagonal() {
    return structural(Op.DIAGONAL, Layout.Kind.FULL, layout.as(Layout.Kind.DIAG), null, Double.NaN);
  }

  /** The pixel-pair block {@code [p, q] = this[p]}: a per-pixel value of the row input. */
  public Expr spreadRow() {
    return structural(Op.SPREAD_ROW, Layout.Kind.DIAG, layout.as(Layout.Kind.FULL), null, Double.NaN);
  }

  /** The pixel-pair block {@code [p, q] = this[q]}: a per-pixel value of the column input. */
  public Expr spreadCol() {
    return structural(Op.SPREAD_COL, Layout.Kind.DIAG, layout.as(Layout.Kind.FULL), null, Double.NaN);
  }

  /** {@code m} applied to the pixel block. */
  public Expr pixels(PixelMap m) {
    if (!layout.equals(m.input())) {
      throw new IllegalArgumentException(m + " takes " + m.input() + " blocks, got " + layout);
    }
    return structural(Op.PIXELS, m.input().kind(), m.output(), m, Double.NaN);
  }

  /** {@code factor} times the sum of the block's entries. */
  public Expr sum(double factor) {
    if (layout.isScalar()) {
      throw new IllegalArgumentException("the sum of a scalar block");
    }
    return structural(Op.REDUCE, layout.kind(), Layout.SCALAR, null, factor);
  }

  /**
   * The softmax of this {@code FULL} block over its second pixel ({@link Op#SOFTMAX}): row {@code p}
   * of the result sums to 1.
   */
  public Expr softmax() {
    return structural(Op.SOFTMAX, Layout.Kind.FULL, layout, null, Double.NaN);
  }

  /**
   * {@code left this right^T} ({@link Op#ATTEND}), the three {@code FULL} blocks of one grid taken
   * as {@code P x P} matrices: entry {@code [p, p']} is {@code sum_{q, q'} left[p, q] this[q, q']
   * right[p', q']}. With {@code left} an attention matrix of the row input and {@code right} one of
   * the column input, the pixel-pair covariance of the two inputs after attention.
   */
  public Expr attend(Expr left, Expr right) {
    for (Expr e : new Expr[] {this, left, right}) {
      if (e.layout.kind() != Layout.Kind.FULL || !e.layout.equals(layout)) {
        throw new IllegalArgumentException("attend takes FULL blocks of one grid, got " + layout + ", "
            + left.layout + " and " + right.layout);
      }
    }
    return new Expr(Op.ATTEND, this, left, right, Double.NaN, null, domain.join(left.domain).join(right.domain),
        layout, null);
  }

  public Op op() {
    return op;
  }

  public Domain domain() {
    return domain;
  }

  /** The first operand, or null. */
  public Expr a() {
    return a;
  }

  /** The second operand of a binary operation, or null. */
  public Expr b() {
    return b;
  }

  /** The third operand of {@link Op#FMA}, {@link Op#SELECT} or {@link Op#CALL}, or null. */
  public Expr c() {
    return c;
  }

  /** The operands, in order. */
  public java.util.List<Expr> operands() {
    return c != null ? java.util.List.of(a, b, c) : b != null ? java.util.List.of(a, b)
        : a != null ? java.util.List.of(a) : java.util.List.of();
  }

  /** The value of a constant, the factor of {@link Op#REDUCE}, or which sum of a {@link Op#QUADRATURE}. */
  public double value() {
    return value;
  }

  /** The name of an input. */
  public String name() {
    return name;
  }

  /**
   * The order in which expressions were built. Operands are built before the expressions that
   * use them, and rules build their terms layer by layer, so this order keeps few values alive at
   * once (see {@link Schedule}).
   */
  long sequence() {
    return sequence;
  }

  public boolean isConstant() {
    return op == Op.CONST;
  }

  private boolean is(double v) {
    return op == Op.CONST && value == v;
  }

  private static Expr binary(Op op, Expr a, Expr b) {
    if (a.isConstant() && b.isConstant()) {
      return constant(evaluate(op, a.value, b.value));
    }
    return new Expr(op, a, b, Double.NaN, null, a.domain.join(b.domain));
  }

  /**
   * {@code this + other}; a sum with a product is one fused multiply-add, which the {@code cpu}
   * backend computes in one pass (the affine maps of every layer are of this form).
   */
  public Expr plus(Expr other) {
    if (other.is(0)) {
      return this;
    }
    if (is(0)) {
      return other;
    }
    if (isConstant() && other.isConstant()) {
      return binary(Op.ADD, this, other);
    }
    if (op == Op.MUL) {
      return fma(a, b, other);
    }
    if (other.op == Op.MUL) {
      return fma(other.a, other.b, this);
    }
    return binary(Op.ADD, this, other);
  }

  private static Expr fma(Expr a, Expr b, Expr c) {
    return new Expr(Op.FMA, a, b, c, Double.NaN, null, a.domain.join(b.domain).join(c.domain),
        joinLayouts(Op.FMA, a, b, c), null);
  }

  public Expr plus(double c) {
    return plus(constant(c));
  }

  public Expr minus(Expr other) {
    return other.is(0) ? this : binary(Op.SUB, this, other);
  }

  public Expr times(Expr other) {
    if (is(0) || other.is(0)) {
      return constant(0);
    }
    if (other.is(1)) {
      return this;
    }
    if (is(1)) {
      return other;
    }
    return binary(Op.MUL, this, other);
  }

  public Expr times(double c) {
    return times(constant(c));
  }

  public Expr div(Expr other) {
    return other.is(1) ? this : binary(Op.DIV, this, other);
  }

  /** {@code max(this, other)}. */
  public Expr max(Expr other) {
    return binary(Op.MAX, this, other);
  }

  public Expr max(double c) {
    return max(constant(c));
  }

  /** {@code min(this, other)}. */
  public Expr min(Expr other) {
    return binary(Op.MIN, this, other);
  }

  public Expr min(double c) {
    return min(constant(c));
  }

  /** {@code op} of this, an operation of one operand; folded if this is a constant. */
  public Expr unary(Op op) {
    if (!op.arithmetic() || op.binary()) {
      throw new IllegalArgumentException(op + " is not an entry-wise operation of one operand");
    }
    return isConstant() ? constant(evaluate(op, value, 0)) : new Expr(op, this, null, Double.NaN, null, domain);
  }

  /** {@code op(this, other)}, an operation of two operands; folded if both are constants. */
  public Expr binary(Op op, Expr other) {
    if (!op.arithmetic() || !op.binary()) {
      throw new IllegalArgumentException(op + " is not an entry-wise operation of two operands");
    }
    return binary(op, this, other);
  }

  public Expr sqrt() {
    return unary(Op.SQRT);
  }

  public Expr exp() {
    return unary(Op.EXP);
  }

  /** {@code exp(this) - 1}, accurate near 0. */
  public Expr expm1() {
    return unary(Op.EXPM1);
  }

  /** The natural logarithm. */
  public Expr log() {
    return unary(Op.LOG);
  }

  /** {@code log(1 + this)}, accurate near 0. */
  public Expr log1p() {
    return unary(Op.LOG1P);
  }

  public Expr erf() {
    return unary(Op.ERF);
  }

  public Expr sin() {
    return unary(Op.SIN);
  }

  public Expr cos() {
    return unary(Op.COS);
  }

  public Expr abs() {
    return unary(Op.ABS);
  }

  /** {@code 1 - erf(this)}, accurate relative to itself in the far tail. */
  public Expr erfc() {
    return unary(Op.ERFC);
  }

  public Expr tanh() {
    return unary(Op.TANH);
  }

  public Expr atan() {
    return unary(Op.ATAN);
  }

  /** {@code -1}, {@code 1}, or this where it is a zero or NaN. */
  public Expr sign() {
    return unary(Op.SIGN);
  }

  /** {@code this^n} for an integer {@code n}: {@code 1} for {@code n = 0}, this for {@code n = 1}. */
  public Expr pow(int n) {
    return n == 0 ? constant(1) : n == 1 ? this : binary(Op.POW, this, constant(n));
  }

  /**
   * {@code this > 0 ? ifPositive : otherwise} entry by entry (NaN selects {@code otherwise}); the
   * operand not selected never reaches the result, even an infinite or NaN one.
   */
  public Expr select(Expr ifPositive, Expr otherwise) {
    if (isConstant()) {
      return value > 0 ? ifPositive : otherwise;
    }
    return new Expr(Op.SELECT, this, ifPositive, otherwise, Double.NaN, null,
        domain.join(ifPositive.domain).join(otherwise.domain), joinLayouts(Op.SELECT, this, ifPositive, otherwise),
        null);
  }

  /**
   * {@code f(a, b, c)} entry by entry, for a function only Java computes: folded where all three
   * are constants. It runs on the scalar paths only (see {@link Op#CALL}), so it costs what {@code
   * f} costs per entry, and it has no derivative.
   */
  public static Expr call(Callback f, Expr a, Expr b, Expr c) {
    Objects.requireNonNull(f, "f");
    if (a.isConstant() && b.isConstant() && c.isConstant()) {
      return constant(f.apply(a.value, b.value, c.value));
    }
    return new Expr(Op.CALL, a, b, c, Double.NaN, null, a.domain.join(b.domain).join(c.domain),
        joinLayouts(Op.CALL, a, b, c), null, f);
  }

  /** The function of a {@link Op#CALL}, or null. */
  public Callback callback() {
    return callback;
  }

  /**
   * Sum {@code body} of {@code q} at the operands {@code a, b, c} ({@link Quadrature#sums} builds
   * it): folded where all three are constants.
   */
  static Expr quadrature(Quadrature q, int body, Expr a, Expr b, Expr c) {
    if (a.isConstant() && b.isConstant() && c.isConstant()) {
      return constant(q.evaluate(body, a.value, b.value, c.value));
    }
    return new Expr(Op.QUADRATURE, a, b, c, body, null, a.domain.join(b.domain).join(c.domain),
        joinLayouts(Op.QUADRATURE, a, b, c), null, null, q);
  }

  /** The table and bodies of a {@link Op#QUADRATURE} step (its {@link #value()} is which body), or null. */
  public Quadrature quadrature() {
    return quadrature;
  }

  /** {@code atan2(this, x)}: the angle of the point {@code (x, this)}. */
  public Expr atan2(Expr x) {
    return binary(Op.ATAN2, this, x);
  }

  /**
   * The derivative of this expression with respect to {@code wrt} (an {@link Op#INPUT}, or any
   * sub-expression, which counts as an independent variable), entry by entry: each operation's
   * rule is the {@link Derivative} its {@link Op} entry declares, and the result is simplified by
   * the same constant folding as every expression (a part that does not depend on {@code wrt} has
   * the derivative {@code 0}, which vanishes from products and sums). As JAX does, {@code sign}'s
   * derivative is {@code 0}, {@code abs}'s is {@code sign}, {@code max}, {@code min} and {@code
   * select} differentiate the operand they pick (its condition not at all).
   *
   * <pre>{@code
   * Expr k = Expr.input("cov12", Expr.Domain.TILE);
   * Expr dk = k.times(k).sin().derivative(k); // cos(k * k) * (k + k)
   * }</pre>
   *
   * @throws IllegalArgumentException naming the operation, where the expression depends on {@code
   *     wrt} through one that has no derivative (a structural operation)
   */
  public Expr derivative(Expr wrt) {
    Objects.requireNonNull(wrt, "wrt");
    java.util.Map<Expr, Expr> done = new java.util.IdentityHashMap<>();
    done.put(wrt, constant(1));
    return postOrder(done, e -> {
      java.util.List<Expr> operands = e.operands();
      Expr[] d = new Expr[operands.size()];
      boolean constant = true;
      for (int i = 0; i < d.length; i++) {
        d[i] = done.get(operands.get(i));
        constant &= d[i].is(0);
      }
      if (constant) {
        return constant(0);
      }
      if (e.op.derivative == null) {
        throw new IllegalArgumentException("no derivative through " + e.op.name().toLowerCase(java.util.Locale.ROOT)
            + " (" + e + "): only the entry-wise operations are differentiated");
      }
      return e.op.derivative.of(e, d);
    });
  }

  /** {@code d / b}, or {@code 0} where {@code d} is (a zero derivative stays zero, whatever {@code b}). */
  private static Expr quotient(Expr d, Expr b) {
    return d.is(0) ? d : d.div(b);
  }

  /**
   * This expression with each key of {@code replacements} replaced by its value (compared by
   * identity), rebuilt through the folding builders; what does not reach a replaced node is shared,
   * not copied. A closed form written over placeholder inputs becomes a rule this way.
   */
  public Expr substitute(java.util.Map<Expr, Expr> replacements) {
    java.util.Map<Expr, Expr> done = new java.util.IdentityHashMap<>(replacements);
    return postOrder(done, e -> {
      java.util.List<Expr> operands = e.operands();
      boolean same = true;
      for (Expr operand : operands) {
        same &= done.get(operand) == operand;
      }
      return same ? e : e.rebuilt(operands.stream().map(done::get).toArray(Expr[]::new));
    });
  }

  /**
   * {@code visit} of every node below this expression that {@code done} has no value for, each
   * after its operands, its result put into {@code done}; returns this expression's value.
   * Iterative, not recursive: an expression may be a deep graph (a whole network's).
   */
  private Expr postOrder(java.util.Map<Expr, Expr> done, java.util.function.UnaryOperator<Expr> visit) {
    java.util.ArrayDeque<Expr> stack = new java.util.ArrayDeque<>();
    stack.push(this);
    while (!stack.isEmpty()) {
      Expr e = stack.peek();
      if (done.containsKey(e)) {
        stack.pop();
        continue;
      }
      boolean ready = true;
      for (Expr operand : e.operands()) {
        if (!done.containsKey(operand)) {
          stack.push(operand);
          ready = false;
        }
      }
      if (!ready) {
        continue;
      }
      stack.pop();
      done.put(e, visit.apply(e));
    }
    return done.get(this);
  }

  /** This operation applied to {@code x} instead of its operands, through the folding builders. */
  private Expr rebuilt(Expr[] x) {
    return switch (op) {
      case CONST, INPUT, BLOCK -> this;
      case ADD -> x[0].plus(x[1]);
      case SUB -> x[0].minus(x[1]);
      case MUL -> x[0].times(x[1]);
      case DIV -> x[0].div(x[1]);
      case FMA -> x[0].times(x[1]).plus(x[2]);
      case SELECT -> x[0].select(x[1], x[2]);
      case CALL -> call(callback, x[0], x[1], x[2]);
      case QUADRATURE -> quadrature(quadrature, (int) value, x[0], x[1], x[2]);
      case DIAGONAL -> x[0].diagonal();
      case SPREAD_ROW -> x[0].spreadRow();
      case SPREAD_COL -> x[0].spreadCol();
      case PIXELS -> x[0].pixels(map);
      case REDUCE -> x[0].sum(value);
      case SOFTMAX -> x[0].softmax();
      case ATTEND -> x[0].attend(x[1], x[2]);
      default -> op.binary() ? binary(op, x[0], x[1]) : x[0].unary(op);
    };
  }

  /**
   * The expression as a formula over its inputs' names ({@code atan2(mul(2, cov12), ...)}), every
   * shared sub-expression written out again: for small expressions (a user's closed form), to
   * name or compare them; a whole network's graph would be exponentially long.
   */
  public String formula() {
    return switch (op) {
      case CONST -> Double.toString(value);
      case INPUT -> name;
      default -> op.name().toLowerCase(java.util.Locale.ROOT) + (op.structural() ? "[" + layout + "]" : "") + "("
          + String.join(", ", operands().stream().map(Expr::formula).toList()) + ")";
    };
  }

  /** The scalar meaning of each operation, the reference every backend agrees with. */
  public static double evaluate(Op op, double a, double b, double c) {
    return op == Op.FMA ? Math.fma(a, b, c) : op == Op.SELECT ? (a > 0 ? b : c) : evaluate(op, a, b);
  }

  /** The scalar meaning of each operation of at most two operands. */
  public static double evaluate(Op op, double a, double b) {
    if (op.scalar == null) {
      throw new IllegalArgumentException(op + " is not an arithmetic operation");
    }
    return op.scalar.applyAsDouble(a, b);
  }

  /** The operation and domain only: a whole network's expression is a large shared graph. */
  @Override
  public String toString() {
    return switch (op) {
      case CONST -> Double.toString(value);
      case INPUT -> name;
      default -> op.name().toLowerCase(java.util.Locale.ROOT) + "[" + domain.name().toLowerCase(java.util.Locale.ROOT)
          + (layout.isScalar() ? "" : ", " + layout) + "]";
    };
  }
}
