package dev.ntk.pipelines;

/** A mistake in the command line or its input files: reported in one line, exit status 2. */
final class UsageException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  UsageException(String message) {
    super(message);
  }
}
