package dev.ntk.transforms;

/**
 * A parameters file that does not fit its model (a missing or extra array, a wrong shape or
 * dtype, a non-finite value): the message starts with the file and names the array ({@code
 * p.npz: array serial[0].Dense/W has shape (3, 16), but the model needs (4, 16)}).
 */
public final class ParamsFileException extends IllegalArgumentException {
  private static final long serialVersionUID = 1L;
  private final String array;

  public ParamsFileException(String file, String array, String problem) {
    super(file + ": " + problem);
    this.array = array;
  }

  /** The name of the offending array ({@code serial[0].Dense/W}), or null if none is to blame. */
  public String array() {
    return array;
  }
}
