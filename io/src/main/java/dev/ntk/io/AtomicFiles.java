package dev.ntk.io;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.HexFormat;
import java.util.concurrent.ThreadLocalRandom;
import java.util.regex.Pattern;

/**
 * Writes files atomically: into a hidden temporary sibling, then renamed over the target; and the
 * one form of name that every temporary file or directory of ntk carries ({@link
 * #temporaryName}), so that the clean-up after a killed process ({@link #isTemporary}) removes
 * what ntk left and nothing else.
 */
public final class AtomicFiles {
  private AtomicFiles() {}

  /** The start of every temporary name ntk gives: {@code .ntk-tmp-<name>.<16 hex digits>.tmp}. */
  public static final String TEMPORARY_PREFIX = ".ntk-tmp-";

  // A user's ".mydata.tmp" never matches: the prefix is ntk's, and the random part has a fixed length.
  private static final Pattern TEMPORARY =
      Pattern.compile(Pattern.quote(TEMPORARY_PREFIX) + ".+\\.[0-9a-f]{16}\\.tmp");

  /** Writes the content of a temporary file that does not exist yet. */
  public interface Content {
    void writeTo(Path tmp) throws IOException;
  }

  /**
   * Writes {@code target} through {@link #temporaryName}{@code (its name)} in the same directory,
   * renamed with {@code ATOMIC_MOVE}; the temporary file is deleted if anything fails. Creates the
   * directory.
   */
  public static Path write(Path target, Content content) throws IOException {
    Path file = target.toAbsolutePath();
    Path dir = file.getParent();
    Files.createDirectories(dir);
    Path tmp = dir.resolve(temporaryName(file.getFileName().toString()));
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

  /**
   * A fresh hidden name for a temporary file or directory standing for {@code name}: {@code
   * .ntk-tmp-<name>.<16 random hex digits>.tmp}. Every temporary that ntk creates is named so.
   */
  public static String temporaryName(String name) {
    return TEMPORARY_PREFIX + name + "." + HexFormat.of().toHexDigits(ThreadLocalRandom.current().nextLong())
        + ".tmp";
  }

  /**
   * Whether {@code file} has a name of {@link #temporaryName} (left behind by a killed process);
   * no other name is ntk's to remove.
   */
  public static boolean isTemporary(Path file) {
    Path name = file.getFileName();
    return name != null && isTemporaryName(name.toString());
  }

  /** Whether {@code name} (a file name, no directory) is one of {@link #temporaryName}. */
  public static boolean isTemporaryName(String name) {
    return TEMPORARY.matcher(name).matches();
  }
}
