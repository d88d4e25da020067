package dev.ntk.kernels;

/**
 * neural-tangents' {@code mask_constant} on raw inputs: entries equal to the constant are zeroed
 * and a position (all channels of one pixel or token) is masked when all its channels equal it
 * ({@link Masks}). Inputs are flat per example, channel last: {@code n} examples of {@code
 * positions * channels} values.
 *
 * <pre>{@code
 * Masking.Masked<double[]> m = Masking.apply(x, n, positions, channels, -1.0, "x1");
 * // m.x(): x with every -1.0 zeroed; m.kept(): n * positions flags, 1 kept, 0 masked
 * }</pre>
 *
 * @param <A> {@code double[]} or {@code float[]}
 * @param x the inputs with the constant's entries zeroed (a copy)
 * @param kept per example and position, 1 where the position is kept and 0 where it is masked
 */
public record Masking<A>(A x, double[] kept) {
  /**
   * Checks a mask constant: a finite number ({@code NaN} equals nothing, so it would mask nothing,
   * and non-finite inputs are rejected anyway).
   */
  public static double checkConstant(double constant) {
    if (!Double.isFinite(constant)) {
      throw new IllegalArgumentException("the mask constant must be a finite number, got " + constant);
    }
    return constant;
  }

  /**
   * An example whose entries all equal the mask constant: no position is left to compute its
   * kernel from (a pooled kernel would be {@code 0 / 0}).
   */
  public static final class FullyMaskedException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;
    private final String input;
    private final long example;
    private final double constant;

    FullyMaskedException(String input, long example, double constant) {
      super(input + ", example " + example + ": every entry equals the mask constant " + constant
          + ", so no position is left to compute its kernel from");
      this.input = input;
      this.example = example;
      this.constant = constant;
    }

    /**
     * This error for the same example in {@code newInput}, {@code offset} examples further on: its
     * index in a whole collection or file rather than in the tile whose rows were masked.
     */
    public FullyMaskedException at(String newInput, long offset) {
      FullyMaskedException e = new FullyMaskedException(newInput, offset + example, constant);
      e.initCause(this);
      return e;
    }

    /** The name of the inputs given to {@link #apply} ({@code x1}, {@code x2}). */
    public String input() {
      return input;
    }

    /** The example's index in those inputs. */
    public long example() {
      return example;
    }
  }

  /**
   * The hash that names the masked kernels of the model of hash {@code modelHash} (in tiles, as
   * the model hash names a model's kernels): the SHA-256 hex digest of the model hash and the
   * constant.
   */
  public static String hash(String modelHash, double constant) {
    try {
      String named = modelHash + " mask_constant " + Double.toString(constant);
      byte[] d = java.security.MessageDigest.getInstance("SHA-256").digest(
          named.getBytes(java.nio.charset.StandardCharsets.UTF_8));
      return java.util.HexFormat.of().formatHex(d);
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * Masks {@code x} ({@code double[]} or {@code float[]}, {@code n} examples of {@code positions *
   * channels}) with {@code constant}; an {@link IllegalArgumentException} naming {@code name} and
   * the example if every position of an example is masked (its pooled kernel would be 0 / 0).
   */
  @SuppressWarnings("unchecked")
  public static <A> Masking<A> apply(A x, int n, int positions, int channels, double constant, String name) {
    checkConstant(constant);
    double[] kept = new double[Math.multiplyExact(n, positions)];
    Object copy;
    if (x instanceof double[] d) {
      double[] c = d.clone();
      for (int i = 0; i < c.length; i++) {
        if (c[i] == constant) {
          c[i] = 0;
        } else {
          kept[i / channels] = 1;
        }
      }
      copy = c;
    } else {
      float[] f = ((float[]) x).clone();
      // compared in the inputs' dtype, as jax compares a float32 array with a Python float
      float fc = (float) constant;
      for (int i = 0; i < f.length; i++) {
        if (f[i] == fc) {
          f[i] = 0;
        } else {
          kept[i / channels] = 1;
        }
      }
      copy = f;
    }
    for (int e = 0; e < n; e++) {
      boolean any = false;
      for (int p = 0; p < positions && !any; p++) {
        any = kept[e * positions + p] != 0;
      }
      if (!any) {
        throw new FullyMaskedException(name, e, constant);
      }
    }
    return new Masking<>((A) copy, kept);
  }
}
