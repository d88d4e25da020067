package dev.ntk.pipelines;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ntk.io.AtomicFiles;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.FileSystemLoopException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.NotLinkException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.stream.Stream;

/**
 * An output directory ({@code --out}) owned by one run, and the outputs of a command produced in
 * it all or nothing.
 *
 * <ul>
 *   <li><b>Owner.</b> A run holds an operating-system lock on {@code DIR/.ntk.lock}, which also
 *       names its process; a second run into the same directory gets a {@link UsageException}
 *       naming it. The lock ends with the process, however it ends. The owner removes the
 *       temporary files and staging directories that killed runs left: the names of {@link
 *       AtomicFiles#temporaryName}, which only ntk gives, never another hidden file.
 *   <li><b>All or nothing.</b> A command writes its outputs into a staging directory {@code
 *       DIR/.ntk-tmp-staging-<command>.*.tmp}. Once all are there it moves its old manifest and
 *       outputs aside (into the staging directory), moves the new ones into {@code DIR} and writes
 *       {@code DIR/<command>.manifest.json} last, listing them; if any of that fails, the new
 *       files go and the old ones are moved back. Something in the way of an output (a
 *       directory, a read-only file) is found before the job runs and again before anything
 *       moves. Outputs without their manifest are not a result. A failure, or a SIGTERM before
 *       the move, removes the staging directory; a SIGTERM during the move lets it finish.
 *   <li><b>Tiles are kept.</b> Nothing here deletes tiles: a failure after the tile phase keeps
 *       every tile for the next run. Only a directory that this run created and in which no tile
 *       was written is removed on failure.
 * </ul>
 */
final class Outputs implements AutoCloseable {
  /** The lock file in an output directory. */
  static final String LOCK = ".ntk.lock";
  /** The tile store in an output directory. */
  static final String TILES = "tiles";

  private final Path out;
  private final boolean created;
  private final FileChannel channel;
  private final FileLock lock;

  private Outputs(Path out, boolean created, FileChannel channel, FileLock lock) {
    this.out = out;
    this.created = created;
    this.channel = channel;
    this.lock = lock;
  }

  /**
   * Checks that {@code out} can hold {@code bytes} more bytes, creates it if needed, takes its lock
   * for {@code command} and removes what killed runs left behind.
   *
   * @throws UsageException if {@code out} is not a writable directory, lacks space, or another
   *     run holds it
   */
  static Outputs open(Path out, String command, long bytes) {
    Path dir = out.toAbsolutePath();
    if (Files.exists(dir) && !Files.isDirectory(dir)) {
      throw new UsageException("--out " + out + " exists and is not a directory");
    }
    boolean created = !Files.exists(dir);
    try {
      Files.createDirectories(dir);
    } catch (IOException e) {
      throw new UsageException("--out " + out + ": cannot create the directory: " + reason(e));
    }
    Outputs owned = null;
    try {
      Path probe = Files.createFile(dir.resolve(AtomicFiles.temporaryName("probe")));
      Files.delete(probe);
      long free = Files.getFileStore(dir).getUsableSpace();
      if (bytes > free) {
        throw new UsageException(String.format(java.util.Locale.ROOT,
            "--out %s: the outputs and tiles need about %.1f MB, but its file system has %.1f MB free",
            out, bytes / 1e6, free / 1e6));
      }
      owned = lock(dir, command, created);
      owned.removeLeftovers();
      return owned;
    } catch (IOException e) {
      if (owned != null) {
        owned.close();
      }
      throw new UsageException("--out " + out + ": cannot write there: " + reason(e));
    } catch (RuntimeException e) {
      if (owned != null) {
        owned.close();
      }
      if (created) {
        deleteQuietly(dir);
      }
      throw e;
    }
  }

  private static Outputs lock(Path dir, String command, boolean created) throws IOException {
    Path file = dir.resolve(LOCK);
    FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ,
        StandardOpenOption.WRITE);
    FileLock lock;
    try {
      lock = channel.tryLock();
    } catch (OverlappingFileLockException e) {
      lock = null; // held by this JVM
    }
    if (lock == null) {
      String owner = Files.readString(file, StandardCharsets.UTF_8).trim();
      channel.close();
      throw new UsageException("--out " + dir + " is in use by another run ("
          + (owner.isEmpty() ? "unknown process" : owner) + "); wait for it to end or use another --out");
    }
    String who = "ntk " + command + ", process " + ProcessHandle.current().pid() + ", since "
        + Instant.now();
    channel.truncate(0);
    channel.write(ByteBuffer.wrap((who + "\n").getBytes(StandardCharsets.UTF_8)), 0);
    channel.force(false);
    return new Outputs(dir, created, channel, lock);
  }

  /** The output directory (absolute). */
  Path directory() {
    return out;
  }

  /** The tile store of this directory. */
  Path tiles() {
    return out.resolve(TILES);
  }

  /** Removes temporary files and staging directories of killed runs (this run owns the directory). */
  private void removeLeftovers() throws IOException {
    List<Path> leftovers = new ArrayList<>();
    try (Stream<Path> top = Files.list(out)) {
      // A staging directory that still holds previous outputs (a commit whose roll-back failed too,
      // reported with its path) is the user's data until they take it back: it stays.
      top.filter(p -> AtomicFiles.isTemporary(p) && !Files.isDirectory(p.resolve(PREVIOUS)))
          .forEach(leftovers::add);
    }
    if (Files.isDirectory(tiles())) {
      try (Stream<Path> walk = Files.walk(tiles(), 2)) {
        walk.filter(AtomicFiles::isTemporary).forEach(leftovers::add);
      }
    }
    for (Path p : leftovers) {
      deleteTree(p);
    }
  }

  /** A job that writes its outputs into the directory it is given. */
  interface Job<T> {
    T run(Path staging) throws IOException;
  }

  /** How a commit moves one file; tests replace it to make a move fail part way. */
  interface Move {
    void move(Path from, Path to) throws IOException;
  }

  /** The directory in a staging directory that holds the previous outputs during a commit. */
  private static final String PREVIOUS = "previous";

  // Renames within DIR: atomic, never a copy that a failure could leave half done.
  Move move = (from, to) -> Files.move(from, to, StandardCopyOption.ATOMIC_MOVE);

  /**
   * Runs {@code job} into a staging directory and, if it succeeds and wrote every file of {@code
   * results} (names), replaces the command's old outputs {@code stale} (names; removed even if
   * this run does not write them again, so that no old file is left beside new ones) with them.
   * On failure the old outputs, their manifest and every tile stay as they were.
   *
   * @throws UsageException before the job runs, if something in {@code DIR} is in the way of an
   *     output (a directory, a read-only file)
   */
  <T> T produce(String command, List<String> stale, List<String> results, Job<T> job)
      throws IOException {
    List<String> replaced = new ArrayList<>(new LinkedHashSet<>(
        Stream.of(List.of(manifest(command).getFileName().toString()), stale, results)
            .flatMap(List::stream).toList()));
    checkDestinations(replaced); // before the job: an obstacle found at the end would waste the run
    Path staging = out.resolve(AtomicFiles.temporaryName("staging-" + command));
    Files.createDirectory(staging);
    Object commit = new Object();
    Thread onTerm = new Thread(() -> {
      synchronized (commit) { // a commit under way finishes first
        deleteQuietly(staging);
      }
    }, "ntk-staging-cleanup");
    Runtime.getRuntime().addShutdownHook(onTerm);
    boolean keepStaging = false;
    try {
      T value = job.run(staging);
      for (String name : results) {
        if (!Files.isRegularFile(staging.resolve(name))) {
          throw new IllegalStateException("the run finished without writing " + name);
        }
      }
      synchronized (commit) {
        commit(command, staging, replaced, results);
      }
      return value;
    } catch (NotRestoredException e) {
      keepStaging = true; // it holds the previous outputs that could not be put back
      throw e;
    } finally {
      if (!keepStaging) {
        deleteQuietly(staging);
      }
      try {
        Runtime.getRuntime().removeShutdownHook(onTerm);
      } catch (IllegalStateException shuttingDown) {
        // the hook is running or has run
      }
    }
  }

  /**
   * Moves the entries {@code replaced} of {@code DIR} (the manifest and old outputs) aside into
   * the staging directory, the new {@code results} from it into {@code DIR}, and writes the
   * manifest; if any step fails, undoes the steps before it.
   */
  private void commit(String command, Path staging, List<String> replaced, List<String> results)
      throws IOException {
    checkDestinations(replaced); // again: DIR may have changed while the job ran
    Path previous = Files.createDirectory(staging.resolve(PREVIOUS));
    List<String> aside = new ArrayList<>();
    List<String> placed = new ArrayList<>();
    try {
      for (String name : replaced) {
        if (Files.exists(out.resolve(name), LinkOption.NOFOLLOW_LINKS)) {
          move.move(out.resolve(name), previous.resolve(name));
          aside.add(name);
        }
      }
      for (String name : results) {
        move.move(staging.resolve(name), out.resolve(name));
        placed.add(name);
      }
      writeManifest(manifest(command), command, results);
    } catch (IOException | RuntimeException | Error e) {
      restore(previous, aside, placed, e);
      throw e;
    }
  }

  /**
   * Undoes a commit that failed with {@code failure}: removes the new outputs {@code placed} and
   * any new manifest, and moves the previous entries {@code aside} back.
   *
   * @throws NotRestoredException if they cannot all be moved back (they stay in {@code previous})
   */
  private void restore(Path previous, List<String> aside, List<String> placed, Throwable failure)
      throws NotRestoredException {
    try {
      for (String name : placed) {
        Files.deleteIfExists(out.resolve(name));
      }
      for (String name : aside) {
        // Replacing: whatever a failed step may have left at the name is not the user's.
        Files.move(previous.resolve(name), out.resolve(name), StandardCopyOption.ATOMIC_MOVE,
            StandardCopyOption.REPLACE_EXISTING);
      }
    } catch (IOException | RuntimeException e) {
      NotRestoredException lost = new NotRestoredException(out + ": the new outputs could not be "
          + "moved in (" + (failure instanceof IOException io ? reason(io) : failure.toString())
          + ") nor the previous ones all moved back (" + (e instanceof IOException io ? reason(io) : e)
          + "); the previous outputs are in " + previous, failure);
      lost.addSuppressed(e);
      throw lost;
    }
  }

  /** A commit failed and the previous outputs are not all back in place. */
  static final class NotRestoredException extends IOException {
    private static final long serialVersionUID = 1L;

    NotRestoredException(String message, Throwable cause) {
      super(message, cause);
    }
  }

  /**
   * Checks that a commit can replace each entry {@code names} of {@code DIR}: nothing is there, or
   * a file it may replace (a writable regular file, or a symbolic link, which the move replaces
   * itself).
   *
   * @throws UsageException naming the first entry in the way and why
   */
  private void checkDestinations(List<String> names) {
    if (!Files.isWritable(out)) {
      throw new UsageException("--out " + out + ": cannot write there: permission denied");
    }
    for (String name : names) {
      Path p = out.resolve(name);
      String why = !Files.exists(p, LinkOption.NOFOLLOW_LINKS) || Files.isSymbolicLink(p) ? null
          : Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS) ? "is a directory"
          : !Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS) ? "is not a regular file"
          : !Files.isWritable(p) ? "is read-only" : null;
      if (why != null) {
        throw new UsageException(p + " " + why + ", in the way of this run's outputs; move it away "
            + "or use another --out (nothing was changed)");
      }
    }
  }

  /** The manifest of {@code command}'s outputs. */
  Path manifest(String command) {
    return out.resolve(command + ".manifest.json");
  }

  private void writeManifest(Path manifest, String command, List<String> results) throws IOException {
    ObjectNode m = JsonNodeFactory.instance.objectNode();
    m.put("command", command);
    m.put("written", Instant.now().toString());
    ObjectNode files = m.putObject("files");
    for (String name : results) {
      files.put(name, Files.size(out.resolve(name)));
    }
    byte[] bytes = new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsBytes(m);
    AtomicFiles.write(manifest, tmp -> Files.write(tmp, bytes));
  }

  /**
   * Releases the directory. If this run created it and it holds no tile, it is removed (a run that
   * failed before computing anything leaves nothing behind).
   */
  @Override
  public void close() {
    try {
      lock.release();
      channel.close();
    } catch (IOException e) {
      // the lock ends with the process anyway
    }
    if (created && !holdsResults()) {
      deleteQuietly(out);
    }
  }

  private boolean holdsResults() {
    try (Stream<Path> walk = Files.walk(out)) {
      return walk.anyMatch(p -> {
        String name = p.getFileName().toString();
        return name.endsWith(".arrow") || name.endsWith(".manifest.json");
      });
    } catch (IOException | UncheckedIOException e) {
      return true;
    }
  }

  /**
   * The system's reason for an I/O failure, without the exception's class name: a file system
   * failure is {@code <file>: <reason in words>}.
   */
  static String reason(IOException e) {
    if (e instanceof FileSystemException f) {
      String why = f.getReason() != null ? f.getReason() : words(f);
      return (f.getFile() == null ? "" : f.getFile() + ": ") + why;
    }
    return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
  }

  /** What a file system failure without a reason of the system's means, in words. */
  private static String words(FileSystemException e) {
    return e instanceof DirectoryNotEmptyException ? "a directory that is not empty is in the way"
        : e instanceof FileAlreadyExistsException ? "a file is in the way"
        : e instanceof AccessDeniedException ? "permission denied"
        : e instanceof NoSuchFileException ? "no such file or directory"
        : e instanceof NotDirectoryException ? "not a directory"
        : e instanceof NotLinkException ? "not a symbolic link"
        : e instanceof FileSystemLoopException ? "a loop of symbolic links"
        : e instanceof AtomicMoveNotSupportedException ? "cannot be renamed there (another file system?)"
        : "the file system refused the operation";
  }

  static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    List<Path> paths = new ArrayList<>();
    try (Stream<Path> walk = Files.walk(dir)) {
      walk.sorted(Comparator.reverseOrder()).forEach(paths::add);
    }
    for (Path p : paths) {
      Files.deleteIfExists(p);
    }
  }

  private static void deleteQuietly(Path dir) {
    try {
      deleteTree(dir);
    } catch (IOException | UncheckedIOException e) {
      // best effort: the next run that owns the directory removes what is left
    }
  }
}
