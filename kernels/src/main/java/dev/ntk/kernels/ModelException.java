package dev.ntk.kernels;

/**
 * A model that cannot be built or does not fit its inputs; the message starts with the path of the
 * offending layer in the model ({@code serial[3].Erf: ...}).
 */
public class ModelException extends IllegalArgumentException {
  private static final long serialVersionUID = 1L;
  private final String path;

  public ModelException(String path, String message) {
    super(path.isEmpty() ? message : path + ": " + message);
    this.path = path;
  }

  /** Where in the model the problem is, for example {@code serial[3].Erf}. */
  public String path() {
    return path;
  }
}
