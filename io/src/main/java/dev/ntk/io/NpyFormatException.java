package dev.ntk.io;

import java.io.IOException;
import java.nio.file.Path;

/** A malformed or unsupported {@code .npy} file; the message starts with the file's path. */
public class NpyFormatException extends IOException {
  private static final long serialVersionUID = 1L;

  /** An error about {@code file}: the message is {@code "<file>: <problem>"}. */
  public NpyFormatException(Path file, String problem) {
    super(file + ": " + problem);
  }

  /** An error about the file named {@code file} (a path or a URI). */
  public NpyFormatException(String file, String problem) {
    super(file + ": " + problem);
  }
}
