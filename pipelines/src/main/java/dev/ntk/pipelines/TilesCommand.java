package dev.ntk.pipelines;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ntk.io.AtomicFiles;
import dev.ntk.io.TileKey;
import dev.ntk.transforms.TileSet;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code ntk tiles --out DIR --list | --prune [SET...]}: the tile sets stored under {@code
 * DIR/tiles/} (one directory per model, inputs, dtype and tile size), and removing them. Pruning
 * takes the directory's lock, so it never removes tiles under a running job, and removes only the
 * files ntk wrote: a set's description, its tiles and ntk's temporary files, then the set's
 * directory if nothing else is left in it. Anything else in the store is listed as ignored and
 * never touched.
 */
@Command(name = "tiles", mixinStandardHelpOptions = true,
    description = "Lists (--list) or removes (--prune [SET...]; all by default) the tile sets under DIR/tiles/; "
        + "removes only the files ntk wrote there.")
final class TilesCommand implements Callable<Integer> {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Option(names = "--out", required = true, paramLabel = "DIR", description = "The output directory of earlier runs.")
  Path out;

  @ArgGroup(exclusive = true, multiplicity = "1")
  Action action;

  static final class Action {
    @Option(names = "--list", required = true, description = "List the tile sets.")
    boolean list;

    @Option(names = "--prune", required = true, description = "Remove the named tile sets (default: all).")
    boolean prune;
  }

  @Parameters(paramLabel = "SET", arity = "0..*", description = "Tile sets to prune, as --list names them.")
  List<String> sets = new ArrayList<>();

  @Option(names = "--verbose", description = "Print the stack trace of a failure.")
  boolean verbose;

  /**
   * One tile set of the store: its directory ({@code null} for the loose tile files of an older
   * version, which lie in the store itself) and the files in it that ntk wrote, which are all that
   * pruning removes.
   */
  record Entry(String name, Path directory, List<Path> files, long tiles, long planned, long bytes,
      String what) {}

  /** Something in the store that ntk did not write, and why it is not a tile set: never touched. */
  record Ignored(Path path, String why) {}

  /** What a tile store holds: its tile sets, and what ntk did not write there. */
  record Store(List<Entry> sets, List<Ignored> ignored) {}

  /** The name of the entry that holds tile files of older versions lying directly in the store. */
  static final String LOOSE = "loose-files";

  private static final String OLDER = "from an older version of ntk (not used by this one)";

  @Override
  public Integer call() throws IOException {
    if (!Files.isDirectory(out)) {
      throw new UsageException("--out " + out + " is not a directory");
    }
    if (action.list && !sets.isEmpty()) {
      throw new UsageException("tiles --list takes no tile set names, got " + sets);
    }
    PrintWriter w = spec.commandLine().getOut();
    if (action.list) {
      Store store = entries(out.resolve(Outputs.TILES));
      long bytes = 0;
      for (Entry e : store.sets()) {
        w.println(String.format(Locale.ROOT, "%s  %s tiles, %s  %s", e.name(),
            e.planned() < 0 ? Long.toString(e.tiles()) : e.tiles() + "/" + e.planned(), mb(e.bytes()),
            e.what()));
        bytes += e.bytes();
      }
      for (Ignored i : store.ignored()) {
        w.println(i.path().getFileName() + "  ignored, not a tile set: " + i.why());
      }
      int n = store.sets().size();
      w.println(n + " tile set" + (n == 1 ? "" : "s") + ", " + mb(bytes) + " in " + out.resolve(Outputs.TILES));
      return 0;
    }
    try (Outputs owned = Outputs.open(out, "tiles", 0)) {
      Store store = entries(owned.tiles());
      List<Entry> chosen = new ArrayList<>();
      for (String name : sets) {
        chosen.add(store.sets().stream().filter(e -> e.name().equals(name)).findFirst()
            .orElseThrow(() -> unknown(name, store, owned.tiles())));
      }
      for (Entry e : sets.isEmpty() ? store.sets() : chosen) {
        for (Path f : e.files()) {
          Files.deleteIfExists(f);
        }
        boolean kept = e.directory() != null && !deleteIfEmpty(e.directory());
        w.println("removed " + e.name() + " (" + e.tiles() + " tiles, " + mb(e.bytes()) + ")"
            + (kept ? "; kept " + e.directory() + ", which holds files ntk did not write" : ""));
      }
      if (sets.isEmpty()) {
        for (Ignored i : store.ignored()) {
          w.println("left " + i.path() + ", not a tile set: " + i.why());
        }
      }
    }
    return 0;
  }

  /** The refusal of {@code --prune name} when no tile set has that name (nothing is removed). */
  private static UsageException unknown(String name, Store store, Path tiles) {
    return store.ignored().stream().filter(i -> i.path().getFileName().toString().equals(name))
        .findFirst()
        .map(i -> new UsageException("tiles --prune: " + i.path() + " is not a tile set (" + i.why()
            + "); nothing was removed"))
        .orElseGet(() -> new UsageException("tiles --prune: no tile set " + name + " in " + tiles
            + " (see tiles --list)"));
  }

  /**
   * The tile sets in a tile store, by name, and what else is there. A directory is a tile set by
   * what ntk writes into it: a {@value TileSet#DESCRIPTION} of ntk's (a killed run's set may have
   * nothing else yet), or tile files (sets of older versions have no description). Symbolic links
   * are never followed.
   */
  static Store entries(Path store) throws IOException {
    List<Entry> entries = new ArrayList<>();
    List<Ignored> ignored = new ArrayList<>();
    if (!Files.isDirectory(store)) {
      return new Store(entries, ignored);
    }
    List<Path> loose = new ArrayList<>();
    for (Path p : list(store)) {
      String name = p.getFileName().toString();
      if (Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
        Entry set = set(p);
        if (set != null) {
          entries.add(set);
        } else {
          ignored.add(new Ignored(p, "no " + TileSet.DESCRIPTION + " of ntk's and no tile files in it"));
        }
      } else if (Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS) && TileKey.isFileName(name)) {
        loose.add(p);
      } else if (!AtomicFiles.isTemporary(p)) { // a killed run's, removed by the next run
        ignored.add(new Ignored(p, Files.isSymbolicLink(p) ? "a symbolic link, not followed"
            : "not a tile file of ntk's"));
      }
    }
    if (!loose.isEmpty()) {
      entries.add(new Entry(LOOSE, null, loose, loose.size(), -1, bytes(loose), OLDER));
    }
    return new Store(entries, ignored);
  }

  /** The tile set in {@code dir}, or {@code null} if ntk wrote none of what a set holds there. */
  private static Entry set(Path dir) throws IOException {
    List<Path> own = new ArrayList<>();
    long tiles = 0;
    JsonNode description = null;
    for (Path f : list(dir)) {
      if (!Files.isRegularFile(f, LinkOption.NOFOLLOW_LINKS)) {
        continue;
      }
      String name = f.getFileName().toString();
      if (name.equals(TileSet.DESCRIPTION)) {
        description = description(f);
        if (description == null) {
          continue; // someone else's set.json
        }
      } else if (TileKey.isFileName(name)) {
        tiles++;
      } else if (!AtomicFiles.isTemporary(f)) {
        continue;
      }
      own.add(f);
    }
    if (description == null && tiles == 0) {
      return null;
    }
    String what = OLDER;
    long planned = -1;
    if (description != null) {
      JsonNode d = description;
      planned = d.path("tiles").asLong(-1);
      what = d.path("n1").asLong() + "x" + d.path("n2").asLong() + " " + d.path("dtype").asText()
          + ", tile " + d.path("tile").asInt() + ", x1 " + d.path("x1").asText()
          + (d.path("x2").isTextual() ? ", x2 " + d.path("x2").asText() : "")
          + (d.path("pattern1").isTextual() ? ", patterns " + d.path("pattern1").asText()
              + (d.path("pattern2").isTextual() ? ", " + d.path("pattern2").asText() : "") : "");
    }
    return new Entry(dir.getFileName().toString(), dir, own, tiles, planned, bytes(own), what);
  }

  /** {@code file} as a set's description of ntk's, or {@code null} if it is not one. */
  private static JsonNode description(Path file) {
    try {
      JsonNode d = new ObjectMapper().readTree(file.toFile());
      return d != null && d.path("model_hash").isTextual() && d.path("inputs_hash").isTextual() ? d : null;
    } catch (IOException e) {
      return null;
    }
  }

  /** The entries of {@code dir}, sorted by name. */
  private static List<Path> list(Path dir) throws IOException {
    try (Stream<Path> list = Files.list(dir)) {
      return list.sorted().toList();
    }
  }

  /** The bytes of {@code files}; one that a run renamed away meanwhile counts nothing. */
  private static long bytes(List<Path> files) throws IOException {
    long bytes = 0;
    for (Path f : files) {
      try {
        bytes += Files.size(f);
      } catch (NoSuchFileException gone) {
        // a temporary file whose write has finished
      }
    }
    return bytes;
  }

  /** Removes {@code dir} if it is empty; whether it did. */
  private static boolean deleteIfEmpty(Path dir) throws IOException {
    try {
      Files.deleteIfExists(dir);
      return true;
    } catch (DirectoryNotEmptyException e) {
      return false;
    }
  }

  private static String mb(long bytes) {
    return String.format(Locale.ROOT, "%.1f MB", bytes / 1e6);
  }
}
