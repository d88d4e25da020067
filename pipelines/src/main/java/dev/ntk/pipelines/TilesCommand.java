package dev.ntk.pipelines;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ntk.transforms.TileSet;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
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
 * takes the directory's lock, so it never removes tiles under a running job.
 */
@Command(name = "tiles", mixinStandardHelpOptions = true,
    description = "Lists (--list) or removes (--prune [SET...]; all by default) the tile sets under DIR/tiles/.")
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

  /** One entry of the tile store: a set's directory, or the loose files of an older version. */
  record Entry(List<Path> paths, String name, long tiles, long planned, long bytes, String what) {}

  /** The name of the entry that holds files of older versions lying directly in the store. */
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
      List<Entry> entries = entries(out.resolve(Outputs.TILES));
      long bytes = 0;
      for (Entry e : entries) {
        w.println(String.format(Locale.ROOT, "%s  %s tiles, %s  %s", e.name(),
            e.planned() < 0 ? Long.toString(e.tiles()) : e.tiles() + "/" + e.planned(), mb(e.bytes()),
            e.what()));
        bytes += e.bytes();
      }
      w.println(entries.size() + " tile set" + (entries.size() == 1 ? "" : "s") + ", " + mb(bytes)
          + " in " + out.resolve(Outputs.TILES));
      return 0;
    }
    try (Outputs owned = Outputs.open(out, "tiles", 0)) {
      List<Entry> entries = entries(owned.tiles());
      List<Entry> chosen = new ArrayList<>();
      for (String name : sets) {
        chosen.add(entries.stream().filter(e -> e.name().equals(name)).findFirst().orElseThrow(() ->
            new UsageException("tiles --prune: no tile set " + name + " in " + owned.tiles()
                + " (see tiles --list)")));
      }
      for (Entry e : sets.isEmpty() ? entries : chosen) {
        for (Path p : e.paths()) {
          Outputs.deleteTree(p);
        }
        w.println("removed " + e.name() + " (" + e.tiles() + " tiles, " + mb(e.bytes()) + ")");
      }
    }
    return 0;
  }

  /** The tile sets (and files of older versions) in a tile store, by name. */
  static List<Entry> entries(Path store) throws IOException {
    List<Entry> entries = new ArrayList<>();
    if (!Files.isDirectory(store)) {
      return entries;
    }
    List<Path> children;
    try (Stream<Path> list = Files.list(store)) {
      children = list.sorted().toList();
    }
    List<Path> loose = children.stream().filter(p -> !Files.isDirectory(p)).toList();
    for (Path p : children) {
      if (!Files.isDirectory(p)) {
        continue;
      }
      long[] count = count(p);
      Path description = p.resolve(TileSet.DESCRIPTION);
      String what = OLDER;
      long planned = -1;
      if (Files.isRegularFile(description)) {
        JsonNode d = new ObjectMapper().readTree(description.toFile());
        planned = d.path("tiles").asLong(-1);
        what = d.path("n1").asLong() + "x" + d.path("n2").asLong() + " " + d.path("dtype").asText()
            + ", tile " + d.path("tile").asInt() + ", x1 " + d.path("x1").asText()
            + (d.path("x2").isTextual() ? ", x2 " + d.path("x2").asText() : "");
      }
      entries.add(new Entry(List.of(p), p.getFileName().toString(), count[0], planned, count[1], what));
    }
    if (!loose.isEmpty()) {
      long tiles = 0;
      long bytes = 0;
      for (Path p : loose) {
        long[] count = count(p);
        tiles += count[0];
        bytes += count[1];
      }
      entries.add(new Entry(loose, LOOSE, tiles, -1, bytes, OLDER));
    }
    return entries;
  }

  /** Tile files and bytes under {@code path}. */
  private static long[] count(Path path) throws IOException {
    long[] count = new long[2];
    try (Stream<Path> walk = Files.walk(path)) {
      for (Path f : (Iterable<Path>) walk.filter(Files::isRegularFile)::iterator) {
        count[0] += f.getFileName().toString().endsWith(".arrow") ? 1 : 0;
        count[1] += Files.size(f);
      }
    }
    return count;
  }

  private static String mb(long bytes) {
    return String.format(Locale.ROOT, "%.1f MB", bytes / 1e6);
  }
}
