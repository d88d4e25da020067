package dev.ntk.transforms;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;
import org.apache.beam.sdk.io.FileSystems;
import org.apache.beam.sdk.io.fs.MatchResult;
import org.apache.beam.sdk.io.fs.MoveOptions;
import org.apache.beam.sdk.io.fs.ResourceId;

/**
 * The directory of the factored train side of a prediction (Cholesky factor, eigendecomposition,
 * kernels the later steps need), on any Beam file system.
 *
 * <p>The linear algebra reads and writes its matrices as local files ({@code
 * dev.ntk.kernels.linalg.DenseMatrix}); a directory on the local file system is used as it is,
 * one on any other ({@code gs://}, {@code s3://}) through a local staging directory: written there
 * and copied up file by file through {@link BeamFiles}, or copied down once per reader.
 */
final class FactorFiles {
  private FactorFiles() {}

  /** What writes or reads the factor files in a local directory. */
  interface LocalAction<T> {
    T apply(Path directory) throws IOException;
  }

  /** Whether {@code directory} is on the local file system. */
  static boolean isLocal(ResourceId directory) {
    return "file".equals(directory.getScheme());
  }

  private static Path localPath(ResourceId directory) {
    return Path.of(directory.toString());
  }

  /**
   * Empties {@code directory}, lets {@code write} fill a local directory, and puts what it wrote
   * into {@code directory} (each file committed by a rename).
   */
  static void write(ResourceId directory, LocalAction<Void> write) throws IOException {
    delete(directory);
    if (isLocal(directory)) {
      Path dir = localPath(directory);
      Files.createDirectories(dir);
      write.apply(dir);
      return;
    }
    Path staging = Files.createTempDirectory("ntk-factor");
    try {
      write.apply(staging);
      try (Stream<Path> files = Files.list(staging)) {
        for (Path file : files.sorted().toList()) {
          BeamFiles.writeAtomically(BeamFiles.child(directory, file.getFileName().toString()), channel -> {
            try (FileChannel in = FileChannel.open(file, StandardOpenOption.READ)) {
              long size = in.size();
              for (long at = 0; at < size; ) {
                at += in.transferTo(at, size - at, channel);
              }
            }
          });
        }
      }
    } finally {
      deleteLocal(staging);
    }
  }

  /**
   * Lets {@code read} read the files {@code names} of {@code directory} from a local directory:
   * the directory itself if it is local, else a staging copy of those files, removed afterwards.
   */
  static <T> T read(ResourceId directory, List<String> names, LocalAction<T> read) throws IOException {
    if (isLocal(directory)) {
      return read.apply(localPath(directory));
    }
    Path staging = Files.createTempDirectory("ntk-factor");
    try {
      for (String name : names) {
        ResourceId file = BeamFiles.child(directory, name);
        try (SeekableByteChannel in = BeamFiles.openSeekable(file);
            FileChannel out = FileChannel.open(staging.resolve(name), StandardOpenOption.CREATE_NEW,
                StandardOpenOption.WRITE)) {
          long size = in.size();
          for (long at = 0; at < size; ) {
            long n = out.transferFrom(in, at, size - at);
            if (n <= 0) {
              throw new IOException(file + ": unexpected end of file after " + at + " of " + size + " bytes");
            }
            at += n;
          }
        }
      }
      return read.apply(staging);
    } finally {
      deleteLocal(staging);
    }
  }

  /** Deletes the files of {@code directory} (and, on the local file system, the directory). */
  static void delete(ResourceId directory) throws IOException {
    if (isLocal(directory)) {
      deleteLocal(localPath(directory));
      return;
    }
    MatchResult match = FileSystems.match(BeamFiles.child(directory, "*").toString());
    if (match.status() != MatchResult.Status.OK) {
      return;
    }
    List<ResourceId> files = new ArrayList<>();
    for (MatchResult.Metadata m : match.metadata()) {
      files.add(m.resourceId());
    }
    FileSystems.delete(files, MoveOptions.StandardMoveOptions.IGNORE_MISSING_FILES);
  }

  private static void deleteLocal(Path dir) {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> walk = Files.walk(dir)) {
      for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
