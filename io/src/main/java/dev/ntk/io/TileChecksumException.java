package dev.ntk.io;

import java.io.IOException;

/** A tile file whose values do not match the checksum written with them: damaged on disk. */
public final class TileChecksumException extends IOException {
  private static final long serialVersionUID = 1L;

  public TileChecksumException(String message) {
    super(message);
  }
}
