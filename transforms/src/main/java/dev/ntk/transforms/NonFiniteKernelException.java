package dev.ntk.transforms;

import dev.ntk.io.NpyDType;
import java.util.Locale;
import java.util.Optional;

/**
 * A kernel or prediction with an {@code inf} or {@code NaN} entry: the run stops rather than write
 * it. The message names the entry, the layer where the kernel first stopped being finite (when it
 * is known) and the likely cause.
 */
public final class NonFiniteKernelException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public NonFiniteKernelException(String message) {
    super(message);
  }

  /** The entry {@code (row, col)} of kernel {@code name}, computed in {@code dtype}, is {@code value}. */
  public NonFiniteKernelException(NpyDType dtype, String name, long row, long col, double value,
      Optional<String> layer) {
    this(String.format(Locale.ROOT, "the %s kernel entry (%d, %d) is %s%s; the weights or the "
        + "inputs are likely too large for %s (check W_std and b_std in the model and the scale "
        + "of the inputs)%s", name, row, col, value,
        layer.map(l -> ", and the kernel first stops being finite at layer " + l).orElse(""),
        dtype.typeName(), layer.map(l -> ", or outside the inputs where that layer's kernel is defined (its "
            + "entry in docs/MODEL_SPEC.md: Hermite needs variances 1, Gaussian with b > 0 small ones)").orElse("")));
  }
}
