package dev.ntk.transforms;

import dev.ntk.io.AtomicFiles;
import dev.ntk.io.FileErrors;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.SeekableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.NoSuchFileException;
import java.util.List;
import org.apache.beam.sdk.io.FileSystems;
import org.apache.beam.sdk.io.fs.MatchResult;
import org.apache.beam.sdk.io.fs.MoveOptions;
import org.apache.beam.sdk.io.fs.ResolveOptions.StandardResolveOptions;
import org.apache.beam.sdk.io.fs.ResourceId;
import org.apache.beam.sdk.util.MimeTypes;

/**
 * Files through Beam's {@link FileSystems}: every path the transforms read or write is a {@link
 * ResourceId} spec, so a local path, {@code gs://bucket/dir} or {@code s3://bucket/dir} work alike
 * once the file system's Beam module is on the class path (and its options, such as credentials,
 * are in the pipeline options).
 *
 * <p>A file is committed by writing a hidden temporary sibling and renaming it over the target,
 * as {@link dev.ntk.io.AtomicFiles} does for local paths: Beam's local file system renames with
 * {@code ATOMIC_MOVE}; on an object store the rename is a copy and a delete, and the object appears
 * at its name whole or not at all.
 */
public final class BeamFiles {
  private BeamFiles() {}

  /** Writes a file's content to a channel that the caller need not close. */
  public interface Content {
    void writeTo(WritableByteChannel channel) throws IOException;
  }

  /** The resource of a file, from a path or URI ({@code /tmp/x.npy}, {@code gs://b/x.npy}). */
  public static ResourceId file(String spec) {
    return FileSystems.matchNewResource(spec, false);
  }

  /** The resource of a directory, from a path or URI. */
  public static ResourceId directory(String spec) {
    return FileSystems.matchNewResource(spec, true);
  }

  /** The file {@code name} in {@code directory}. */
  public static ResourceId child(ResourceId directory, String name) {
    return directory.resolve(name, StandardResolveOptions.RESOLVE_FILE);
  }

  /** The sub-directory {@code name} of {@code directory}. */
  public static ResourceId childDirectory(ResourceId directory, String name) {
    return directory.resolve(name, StandardResolveOptions.RESOLVE_DIRECTORY);
  }

  /**
   * Writes {@code target} through a temporary name beside it ({@link
   * AtomicFiles#temporaryName}), renamed over it when
   * {@code content} is written and the channel closed; the temporary file is removed if anything
   * fails.
   */
  public static ResourceId writeAtomically(ResourceId target, Content content) throws IOException {
    ResourceId tmp = temporarySibling(target);
    try {
      try (WritableByteChannel channel = create(tmp)) {
        content.writeTo(channel);
      }
      rename(List.of(tmp), List.of(target));
    } catch (IOException e) {
      deleteQuietly(List.of(tmp), e);
      throw FileErrors.naming(e, target.toString());
    } catch (RuntimeException | Error e) {
      deleteQuietly(List.of(tmp), e);
      throw e;
    }
    return target;
  }

  /**
   * A fresh hidden name beside {@code target}, {@code .ntk-tmp-<name>.<random>.tmp}: the one form
   * of {@link AtomicFiles#temporaryName}, which the clean-up of killed runs recognises.
   */
  static ResourceId temporarySibling(ResourceId target) {
    return child(target.getCurrentDirectory(), AtomicFiles.temporaryName(target.getFilename()));
  }

  /**
   * Creates (or replaces) {@code file} for writing. A local file is a {@code FileChannel} (as Beam's
   * local file system does, its directory is created first): Beam's own channel wraps a {@code
   * FileOutputStream} and copies a direct buffer through a small heap array on the way, which made
   * writing a 512 MB tile or kernel several times slower than the in-process path's writes.
   */
  static WritableByteChannel create(ResourceId file) throws IOException {
    if ("file".equals(file.getScheme())) {
      java.nio.file.Path path = java.nio.file.Paths.get(file.toString());
      if (path.getParent() != null) {
        java.nio.file.Files.createDirectories(path.getParent());
      }
      return java.nio.channels.FileChannel.open(path, java.nio.file.StandardOpenOption.CREATE,
          java.nio.file.StandardOpenOption.WRITE, java.nio.file.StandardOpenOption.TRUNCATE_EXISTING);
    }
    return FileSystems.create(file, MimeTypes.BINARY);
  }

  /** Renames each of {@code from} over the file at the same place in {@code to}. */
  static void rename(List<ResourceId> from, List<ResourceId> to) throws IOException {
    FileSystems.rename(from, to);
  }

  /** Deletes {@code files} if they exist, adding any failure to {@code cause}. */
  static void deleteQuietly(List<ResourceId> files, Throwable cause) {
    try {
      FileSystems.delete(files, MoveOptions.StandardMoveOptions.IGNORE_MISSING_FILES);
    } catch (IOException | RuntimeException suppressed) {
      cause.addSuppressed(suppressed);
    }
  }

  /** Whether {@code file} exists. */
  public static boolean exists(ResourceId file) throws IOException {
    MatchResult match = FileSystems.match(file.toString());
    return match.status() == MatchResult.Status.OK && !match.metadata().isEmpty();
  }

  /**
   * Opens {@code file} for reading at any position.
   *
   * @throws NoSuchFileException if it does not exist
   * @throws IOException if its file system gives no seekable channel
   */
  public static SeekableByteChannel openSeekable(ResourceId file) throws IOException {
    ReadableByteChannel channel;
    try {
      channel = FileSystems.open(file);
    } catch (FileNotFoundException e) {
      NoSuchFileException missing = new NoSuchFileException(file.toString());
      missing.initCause(e);
      throw missing;
    }
    if (channel instanceof SeekableByteChannel seekable) {
      return seekable;
    }
    channel.close();
    throw new IOException(file + ": its file system (" + file.getScheme()
        + ") gives no seekable channel, which reading rows or tiles needs");
  }
}
