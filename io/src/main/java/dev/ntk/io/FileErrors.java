package dev.ntk.io;

import java.io.IOException;
import java.nio.file.FileSystemException;

/**
 * I/O failures that name their file. A channel's write on a full disk fails with the system's
 * reason alone ({@code No space left on device}); the code that knows which file it was writing
 * passes the failure through {@link #naming} so that the user reads the path beside the reason.
 */
public final class FileErrors {
  private FileErrors() {}

  /**
   * {@code e} if it already names a file, else a {@link FileSystemException} for {@code file} with
   * {@code e}'s message as the reason and {@code e} as its cause.
   */
  public static IOException naming(IOException e, String file) {
    if (e instanceof FileSystemException f && f.getFile() != null) {
      return e;
    }
    String reason = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    if (reason.contains(file)) {
      return e;
    }
    FileSystemException named = new FileSystemException(file, null, reason);
    named.initCause(e);
    return named;
  }
}
