package dev.ntk.io;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Writes files atomically: into a hidden temporary sibling, then renamed over the target. A
 * process killed while writing leaves a {@code .*.tmp} file, which {@link #isTemporary} recognises.
 */
public final class AtomicFiles {
  private AtomicFiles() {}

  /** Writes the content of a temporary file that does not exist yet. */
  public interface Content {
    void writeTo(Path tmp) throws IOException;
  }

  /**
   * Writes {@code target} through {@code .<name>.<random>.tmp} in the same directory, renamed with
   * {@code ATOMIC_MOVE}; the temporary file is deleted if anything fails. Creates the directory.
   */
  public static Path write(Path target, Content content) throws IOException {
    Path file = target.toAbsolutePath();
    Path dir = file.getParent();
    Files.createDirectories(dir);
    String random = Long.toHexString(ThreadLocalRandom.current().nextLong());
    Path tmp = dir.resolve("." + file.getFileName() + "." + random + ".tmp");
    try {
      content.writeTo(tmp);
      Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } catch (IOException e) {
      deleteQuietly(tmp, e);
      throw FileErrors.naming(e, target.toString());
    } catch (RuntimeException | Error e) {
      deleteQuietly(tmp, e);
      throw e;
    }
    return target;
  }

  private static void deleteQuietly(Path tmp, Throwable cause) {
    try {
      Files.deleteIfExists(tmp);
    } catch (IOException suppressed) {
      cause.addSuppressed(suppressed);
    }
  }

  /** Whether {@code file} is a temporary file of {@link #write} (left behind by a killed process). */
  public static boolean isTemporary(Path file) {
    String name = file.getFileName().toString();
    return name.startsWith(".") && name.endsWith(".tmp");
  }
}
