package dev.ntk.kernels;

import dev.ntk.kernels.engine.Expr;
import dev.ntk.kernels.engine.Layout;
import dev.ntk.kernels.engine.PixelMap;
import java.util.ArrayList;
import java.util.List;

/**
 * Masking in the rules, neural-tangents' {@code mask_constant}: inputs of different lengths padded
 * with a constant. A position (pixel, token) of a raw input is masked when all its channels equal
 * the constant (the reduction neural-tangents' {@code Dense}, {@code Conv} and attention apply to
 * a mask over the channel axis, here applied once to the inputs, so that a pooling layer on the
 * raw inputs takes them too: neural-tangents issue #159); entries equal to the constant are zeroed
 * ({@link Masking}). The masks travel with the kernel ({@link KernelExpr#kept1()}, {@code kept2}: 1
 * kept, 0 masked, one per-pixel block per input), each layer maps them to its outputs' grid
 * ({@link Layer#outputMasks}) and {@link #remask} zeroes the covariances of every pair with a masked
 * position after each layer, as neural-tangents' {@code supports_masking} does. Pooling over all
 * positions divides by the kept ones; attention's weights ignore masked keys.
 */
public final class Masks {
  private Masks() {}

  /**
   * The default of {@link Layer#outputMasks}: an output without positions is unmasked; one on the
   * grid of its inputs is kept where any masked input keeps it (one input: the same mask;
   * neural-tangents' {@code FanInSum} masks a position masked in every input); a layer that
   * changes the grid and says nothing else rejects masked inputs, naming its path.
   */
  static List<Expr> sameGrid(Layer layer, List<Expr> masks, RuleContext context) {
    List<Expr> out = new ArrayList<>();
    for (Spec spec : context.outputs()) {
      if (!spec.hasSpatialAxes()) {
        out.add(null);
        continue;
      }
      Layout grid = Layout.diag(Plan.spatialGrid(spec));
      Expr kept = null;
      for (int i = 0; i < masks.size(); i++) {
        Expr m = masks.get(i);
        if (m == null) {
          continue;
        }
        if (!m.layout().equals(grid)) {
          throw unsupported(layer, context, "its output grid " + java.util.Arrays.toString(grid.grid())
              + " differs from input " + i + "'s " + java.util.Arrays.toString(m.layout().grid()));
        }
        kept = kept == null ? m : kept.max(m);
      }
      out.add(kept);
    }
    return out;
  }

  /** The error of a layer that cannot take masked inputs. */
  static ModelException unsupported(Layer layer, RuleContext context, String why) {
    return new ModelException(context.path(), layer.name() + " does not take masked inputs (mask_constant): "
        + why);
  }

  /**
   * The masks of a window sliding over the grid ({@code Conv}, {@code AvgPool}, {@code SumPool}):
   * output position {@code o} keeps the mask of the input position under the window's centre,
   * {@code o * stride + (size - 1) / 2 - pad_low} on each axis, as neural-tangents' {@code
   * _pool_mask} strides through the mask (the same mask where the grid is unchanged).
   */
  static Expr window(Expr kept, List<PixelMap.Window> windows) {
    if (kept == null) {
      return null;
    }
    List<double[][]> pick = new ArrayList<>();
    boolean same = true;
    for (PixelMap.Window w : windows) {
      double[][] a = new double[w.out()][w.in()];
      for (int o = 0; o < w.out(); o++) {
        int p = w.at(o, (w.size() - 1) / 2);
        if (p >= 0) {
          a[o][p] = 1;
        }
        same &= p == o;
      }
      same &= w.out() == w.in();
      pick.add(a);
    }
    return same ? kept : kept.pixels(PixelMap.linear(Layout.Kind.DIAG, pick));
  }

  /**
   * {@code k} with the covariance of every pair that has a masked position set to zero, and the
   * masks {@code kept1}, {@code kept2} attached (neural-tangents' {@code Kernel.mask}); {@code k}
   * unchanged where both are null.
   */
  static KernelExpr remask(KernelExpr k, Expr kept1, Expr kept2) {
    if (kept1 == null) {
      return k.withMasks(null, null);
    }
    if (!k.hasPixels()) {
      throw new IllegalStateException("a mask on a kernel without positions");
    }
    boolean full = k.isFull();
    Expr m12 = full ? kept1.spreadRow().times(kept2.spreadCol()) : kept1.times(kept2);
    Expr m11 = full ? kept1.spreadRow().times(kept1.spreadCol()) : kept1;
    Expr m22 = full ? kept2.spreadRow().times(kept2.spreadCol()) : kept2;
    return new KernelExpr(zeroed(k.nngp(), m12), zeroed(k.ntk(), m12), zeroed(k.var1(), m11),
        zeroed(k.var2(), m22), kept1, kept2);
  }

  /** {@code e} where {@code kept > 0}, else 0; a zero constant stays one. */
  static Expr zeroed(Expr e, Expr kept) {
    if (e.isConstant() && e.value() == 0) {
      return e;
    }
    return kept.select(e, Expr.constant(0));
  }

  /**
   * The pair masks of a full kernel's {@code nngp}, {@code var1}, {@code var2} (1 where both
   * positions are kept), for a rule that adds a constant block over positions (attention's
   * positional embeddings).
   */
  static Expr[] pairMasks(KernelExpr k) {
    Expr a = k.kept1();
    Expr b = k.kept2();
    return new Expr[] {a.spreadRow().times(b.spreadCol()), a.spreadRow().times(a.spreadCol()),
        b.spreadRow().times(b.spreadCol())};
  }

  /** The number of kept positions of each input: per-input scalars. */
  static Expr count(Expr kept) {
    return kept.sum(1);
  }
}
