package dev.ntk.kernels;

import dev.ntk.kernels.engine.Expr;
import dev.ntk.kernels.engine.Layout;
import java.util.Objects;

/**
 * A kernel as entry-wise expressions, what a translation rule takes and returns: {@code nngp} and
 * {@code ntk} vary over pairs of inputs, {@code var1} and {@code var2} are the variances of each
 * x1 and x2 input (the diagonal the nonlinearities need). A rule never sees arrays: the plan it
 * is compiled into runs on either backend ({@code cpu} or {@code tensorflow}).
 *
 * <p>With masked inputs (neural-tangents' {@code mask_constant}, {@link Masks}) {@code kept1} and
 * {@code kept2} are the per-position masks of each x1 and x2 input: per-pixel blocks of the
 * kernel's grid, 1 where a position is kept and 0 where it is masked; null without masking or
 * without positions. Rules read them where they reduce over positions ({@code GlobalAvgPool},
 * attention); {@link RuleContext} sets them on every layer's outputs.
 */
public record KernelExpr(Expr nngp, Expr ntk, Expr var1, Expr var2, Expr kept1, Expr kept2) {
  public KernelExpr {
    Objects.requireNonNull(nngp, "nngp");
    Objects.requireNonNull(ntk, "ntk");
    Objects.requireNonNull(var1, "var1");
    Objects.requireNonNull(var2, "var2");
    if ((kept1 == null) != (kept2 == null)) {
      throw new IllegalArgumentException("both inputs are masked or neither");
    }
  }

  /** A kernel of unmasked inputs. */
  public KernelExpr(Expr nngp, Expr ntk, Expr var1, Expr var2) {
    this(nngp, ntk, var1, var2, null, null);
  }

  /** Whether the inputs are masked ({@link #kept1}, {@link #kept2}). */
  public boolean masked() {
    return kept1 != null;
  }

  /** This kernel with the masks {@code newKept1}, {@code newKept2} (both null: unmasked). */
  public KernelExpr withMasks(Expr newKept1, Expr newKept2) {
    return new KernelExpr(nngp, ntk, var1, var2, newKept1, newKept2);
  }

  /**
   * Whether the kernel holds pixel-pair blocks ({@link Layout.Kind#FULL}); then {@code var1} and
   * {@code var2} are each input's own pixel-pair covariance, not only its per-pixel variances.
   */
  public boolean isFull() {
    return nngp.layout().kind() == Layout.Kind.FULL;
  }

  /** Whether the kernel holds pixel blocks of either kind. */
  public boolean hasPixels() {
    return !nngp.layout().isScalar();
  }

  /** The pixel-diagonal of a {@link #isFull() full} kernel. */
  public KernelExpr diagonal() {
    return new KernelExpr(diagonalOf(nngp), diagonalOf(ntk), diagonalOf(var1), diagonalOf(var2), kept1, kept2);
  }

  private static Expr diagonalOf(Expr e) {
    return e.isConstant() ? e : e.diagonal();
  }

  /** Every part mapped by {@code f} (a linear map of the pixels, a sum). */
  public KernelExpr map(java.util.function.UnaryOperator<Expr> f) {
    return new KernelExpr(mapped(nngp, f), mapped(ntk, f), mapped(var1, f), mapped(var2, f));
  }

  private static Expr mapped(Expr e, java.util.function.UnaryOperator<Expr> f) {
    return e.isConstant() ? e : f.apply(e);
  }

  /**
   * This kernel with {@code diagonal} applied to both variances: the rule of a layer evaluated
   * where both inputs coincide, which most rules have in a simpler (and more accurate) form.
   */
  public KernelExpr with(Expr newNngp, Expr newNtk, java.util.function.UnaryOperator<Expr> diagonal) {
    return new KernelExpr(newNngp, newNtk, diagonal.apply(var1), diagonal.apply(var2));
  }
}
