package dev.ntk.kernels;

import dev.ntk.kernels.engine.Expr;
import dev.ntk.kernels.engine.Layout;
import java.util.Objects;

/**
 * A kernel as entry-wise expressions, what a translation rule takes and returns: {@code nngp} and
 * {@code ntk} vary over pairs of inputs, {@code var1} and {@code var2} are the variances of each
 * x1 and x2 input (the diagonal the nonlinearities need). A rule never sees arrays: the plan it
 * is compiled into runs on either backend ({@code cpu} or {@code tensorflow}).
 */
public record KernelExpr(Expr nngp, Expr ntk, Expr var1, Expr var2) {
  public KernelExpr {
    Objects.requireNonNull(nngp, "nngp");
    Objects.requireNonNull(ntk, "ntk");
    Objects.requireNonNull(var1, "var1");
    Objects.requireNonNull(var2, "var2");
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
    return new KernelExpr(diagonalOf(nngp), diagonalOf(ntk), diagonalOf(var1), diagonalOf(var2));
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
