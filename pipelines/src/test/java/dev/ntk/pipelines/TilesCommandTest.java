package dev.ntk.pipelines;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ntk tiles}: a tile set is recognised by the files ntk writes in it, and pruning removes
 * those files only, never a file that ntk did not write.
 */
class TilesCommandTest {
  /** A set's description as {@code TileSet} writes it (the fields the command reads). */
  private static final String DESCRIPTION = """
      {"model_hash": "0123456789abcdef", "inputs_hash": "fedcba9876543210", "x1": "/data/x.npy",
       "x2": null, "n1": 6, "n2": 6, "dtype": "float64", "tile": 4, "tiles": 3}""";

  @TempDir Path dir;
  private Path out;
  private Path store;

  /** What a command printed and returned. */
  record Result(int status, String out, String err) {}

  @BeforeEach
  void store() throws IOException {
    out = dir.resolve("out");
    store = Files.createDirectories(out.resolve(Outputs.TILES));
  }

  /** Pruning a set removes its description and tiles; a file of the user's in it keeps the directory. */
  @Test
  void pruneRemovesOnlyTheFilesOfASet() throws IOException {
    Path set = set("m0123456789ab-ifedcba987654-float64-t4", "tile-r0-c0.arrow", "tile-r0-c4.arrow");
    Path notes = Files.writeString(set.resolve("notes.txt"), "mine");
    Path sub = Files.createDirectories(set.resolve("plots"));
    Result r = ntk("tiles", "--out", out, "--prune");
    assertEquals(0, r.status(), r.err());
    assertTrue(Files.exists(notes) && Files.isDirectory(sub), r.out());
    assertFalse(Files.exists(set.resolve("set.json")) || Files.exists(set.resolve("tile-r0-c0.arrow"))
        || Files.exists(set.resolve("tile-r0-c4.arrow")), r.out());
    assertTrue(r.out().contains("removed m0123456789ab-ifedcba987654-float64-t4 (2 tiles")
        && r.out().contains("kept " + set), r.out());
  }

  /**
   * A killed run's set (its description and no tile yet) is a set: listed with its planned tiles,
   * pruned with its directory.
   */
  @Test
  void aSetWithItsDescriptionOnlyIsASet() throws IOException {
    Path set = set("m1-i1-float64-t4");
    Result list = ntk("tiles", "--out", out, "--list");
    assertEquals(0, list.status(), list.err());
    assertTrue(list.out().startsWith("m1-i1-float64-t4  0/3 tiles") && list.out().contains("1 tile set,"),
        list.out());
    Result prune = ntk("tiles", "--out", out, "--prune", "m1-i1-float64-t4");
    assertEquals(0, prune.status(), prune.err());
    assertFalse(Files.exists(set));
  }

  /**
   * A directory whose {@code set.json} is not a set's description, with no tile files, is not a
   * set: listed as ignored, left by {@code --prune}, and naming it is refused.
   */
  @Test
  void aDirectoryOfTheUsersIsNeverPruned() throws IOException {
    Path mine = Files.createDirectories(store.resolve("results_2024"));
    Files.writeString(mine.resolve("set.json"), "{\"experiment\": 3}");
    Files.writeString(mine.resolve("data.csv"), "1,2");
    Result list = ntk("tiles", "--out", out, "--list");
    assertEquals(0, list.status(), list.err());
    assertTrue(list.out().contains("results_2024") && list.out().contains("ignored")
        && list.out().contains("0 tile sets"), list.out());
    Result all = ntk("tiles", "--out", out, "--prune");
    assertEquals(0, all.status(), all.err());
    Result named = ntk("tiles", "--out", out, "--prune", "results_2024");
    assertEquals(2, named.status(), named.err());
    assertEquals(1, named.err().lines().count(), named.err());
    assertTrue(named.err().contains(mine.toString()) && named.err().contains("not a tile set"), named.err());
    assertTrue(Files.exists(mine.resolve("set.json")) && Files.exists(mine.resolve("data.csv")));
  }

  /** Loose files of an older version are tile files only: any other file in the store stays. */
  @Test
  void looseFilesAreTileFilesOnly() throws IOException {
    Path tile = Files.writeString(store.resolve("tile-r0-c0.arrow"), "a tile of format version 1");
    Path readme = Files.writeString(store.resolve("README.txt"), "mine");
    Result list = ntk("tiles", "--out", out, "--list");
    assertTrue(list.out().contains("loose-files  1 tiles, 0.0 MB"), list.out());
    Result prune = ntk("tiles", "--out", out, "--prune", "loose-files");
    assertEquals(0, prune.status(), prune.err());
    assertFalse(Files.exists(tile));
    assertTrue(Files.exists(readme));
    Result none = ntk("tiles", "--out", out, "--list");
    assertFalse(none.out().contains("loose-files"), none.out());
  }

  private Path set(String name, String... tiles) throws IOException {
    Path set = Files.createDirectories(store.resolve(name));
    Files.writeString(set.resolve("set.json"), DESCRIPTION);
    for (String tile : tiles) {
      Files.writeString(set.resolve(tile), "tile");
    }
    return set;
  }

  private static Result ntk(Object... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    List<String> strings = new ArrayList<>();
    for (Object a : args) {
      strings.add(a.toString());
    }
    int status = Ntk.run(strings.toArray(String[]::new), new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8));
    return new Result(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }
}
