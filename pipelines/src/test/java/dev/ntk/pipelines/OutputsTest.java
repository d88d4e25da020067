package dev.ntk.pipelines;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ntk.kernels.Get;
import dev.ntk.runners.Runners;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Output directories: owned by one run, outputs all or nothing, tiles kept through failures. */
class OutputsTest {
  private static final Path SINE = Path.of("..", "examples", "sine");
  private static final List<String> KERNELS = List.of("nngp.npy", "ntk.npy");

  @TempDir Path dir;

  /**
   * The assembly fails (its output file cannot be written) after every tile is computed: no output
   * appears, every tile stays, and the rerun reuses all of them.
   */
  @Test
  void aFailedAssemblyKeepsEveryTileForTheRerun() throws IOException {
    Path out = dir.resolve("out");
    KernelJob job = new KernelJob(SINE.resolve("model.json"), SINE.resolve("x_test.npy"), null,
        List.of(Get.NNGP, Get.NTK), out);
    var options = Runners.options(Runners.Kind.DIRECT, null, 2, List.of("--tileRows=16"));
    try (Outputs outputs = Outputs.open(out, "kernel", 0)) {
      Exception e = assertThrows(Exception.class, () -> outputs.produce("kernel", KERNELS, KERNELS, staging -> {
        Files.createDirectories(staging.resolve("ntk.npy").resolve("in-the-way"));
        return job.run(options, staging, Progress.NONE);
      }));
      assertTrue(Ntk.handle(e, new java.io.PrintStream(java.io.OutputStream.nullOutputStream()), false) == 2,
          "an I/O failure is exit 2: " + e);
    }
    assertFalse(Files.exists(out.resolve("nngp.npy")) || Files.exists(out.resolve("ntk.npy")));
    assertFalse(Files.exists(out.resolve("kernel.manifest.json")));
    assertEquals(10, tiles(out), "50 test points in tiles of 16: 4 x 5 / 2 tiles");
    try (Outputs outputs = Outputs.open(out, "kernel", 0)) {
      JobReport report = outputs.produce("kernel", KERNELS, KERNELS,
          staging -> job.run(options, staging, Progress.NONE));
      assertEquals(0, report.tilesComputed());
      assertEquals(10, report.tilesReused());
    }
    assertTrue(Files.exists(out.resolve("nngp.npy")) && Files.exists(out.resolve("ntk.npy")));
    assertTrue(Files.readString(out.resolve("kernel.manifest.json")).contains("\"ntk.npy\""));
  }

  /** A run that fails part way leaves the previous complete set and its manifest untouched. */
  @Test
  void outputsAreReplacedAllOrNothing() throws IOException {
    Path out = dir.resolve("out");
    try (Outputs outputs = Outputs.open(out, "kernel", 0)) {
      outputs.produce("kernel", KERNELS, KERNELS, staging -> write(staging, "old", KERNELS));
    }
    String manifest = Files.readString(out.resolve("kernel.manifest.json"));
    try (Outputs outputs = Outputs.open(out, "kernel", 0)) {
      assertThrows(IOException.class, () -> outputs.produce("kernel", KERNELS, KERNELS, staging -> {
        write(staging, "new", List.of("nngp.npy"));
        throw new IOException("No space left on device");
      }));
      assertThrows(IllegalStateException.class, () -> outputs.produce("kernel", KERNELS, KERNELS,
          staging -> write(staging, "new", List.of("nngp.npy"))));
    }
    for (String name : KERNELS) {
      assertEquals("old", Files.readString(out.resolve(name)));
    }
    assertEquals(manifest, Files.readString(out.resolve("kernel.manifest.json")));
    try (Stream<Path> files = Files.list(out)) {
      assertEquals(List.of(".ntk.lock", "kernel.manifest.json", "nngp.npy", "ntk.npy"),
          files.map(p -> p.getFileName().toString()).sorted().toList(), "no staging directory left");
    }
    try (Outputs outputs = Outputs.open(out, "kernel", 0)) {
      outputs.produce("kernel", KERNELS, List.of("ntk.npy"), staging -> write(staging, "new", List.of("ntk.npy")));
    }
    assertEquals("new", Files.readString(out.resolve("ntk.npy")));
    assertFalse(Files.exists(out.resolve("nngp.npy")), "an old output is not left beside new ones");
  }

  /**
   * A directory where an output goes is found before the job runs and before anything is moved or
   * deleted: one line naming it, and the previous outputs and manifest stay.
   */
  @Test
  void anObstacleAtAnOutputStopsTheRunBeforeAnythingMoves() throws IOException {
    Path out = dir.resolve("out");
    try (Outputs outputs = Outputs.open(out, "kernel", 0)) {
      outputs.produce("kernel", KERNELS, KERNELS, staging -> write(staging, "old", KERNELS));
    }
    String manifest = Files.readString(out.resolve("kernel.manifest.json"));
    Files.delete(out.resolve("ntk.npy"));
    Files.writeString(Files.createDirectories(out.resolve("ntk.npy")).resolve("keep.txt"), "mine");
    boolean[] ran = {false};
    try (Outputs outputs = Outputs.open(out, "kernel", 0)) {
      UsageException e = assertThrows(UsageException.class, () -> outputs.produce("kernel", KERNELS, KERNELS,
          staging -> {
            ran[0] = true;
            return write(staging, "new", KERNELS);
          }));
      assertTrue(e.getMessage().contains(out.resolve("ntk.npy") + " is a directory"), e.getMessage());
      assertFalse(e.getMessage().contains("Exception") || e.getMessage().contains("\n"), e.getMessage());
    }
    assertFalse(ran[0], "the job ran although its outputs could not be put in place");
    assertEquals("old", Files.readString(out.resolve("nngp.npy")));
    assertEquals("mine", Files.readString(out.resolve("ntk.npy").resolve("keep.txt")));
    assertEquals(manifest, Files.readString(out.resolve("kernel.manifest.json")));
  }

  /**
   * A move that fails after others succeeded (the new ntk.npy cannot be put in place, after the
   * old outputs went aside and the new nngp.npy went in) puts the previous outputs and their
   * manifest back and leaves no staging directory.
   */
  @Test
  void aMoveThatFailsPartWayRestoresThePreviousOutputs() throws IOException {
    Path out = dir.resolve("out");
    try (Outputs outputs = Outputs.open(out, "kernel", 0)) {
      outputs.produce("kernel", KERNELS, KERNELS, staging -> write(staging, "old", KERNELS));
    }
    String manifest = Files.readString(out.resolve("kernel.manifest.json"));
    try (Outputs outputs = Outputs.open(out, "kernel", 0)) {
      Outputs.Move rename = outputs.move;
      List<Path> moved = new java.util.ArrayList<>();
      outputs.move = (from, to) -> {
        if (to.equals(out.resolve("ntk.npy"))) {
          throw new java.nio.file.AccessDeniedException(to.toString());
        }
        rename.move(from, to);
        moved.add(to);
      };
      IOException e = assertThrows(IOException.class, () -> outputs.produce("kernel", KERNELS, KERNELS,
          staging -> write(staging, "new", KERNELS)));
      assertEquals(out.resolve("ntk.npy") + ": permission denied", Outputs.reason(e));
      assertTrue(moved.contains(out.resolve("nngp.npy")), "the failure came part way: " + moved);
    }
    for (String name : KERNELS) {
      assertEquals("old", Files.readString(out.resolve(name)), name);
    }
    assertEquals(manifest, Files.readString(out.resolve("kernel.manifest.json")));
    try (Stream<Path> files = Files.list(out)) {
      assertEquals(List.of(".ntk.lock", "kernel.manifest.json", "nngp.npy", "ntk.npy"),
          files.map(p -> p.getFileName().toString()).sorted().toList(), "no staging directory left");
    }
  }

  /** The reasons of common file system failures are words, never an exception's class name. */
  @Test
  void reasonsAreWords() {
    for (java.nio.file.FileSystemException e : List.of(new java.nio.file.DirectoryNotEmptyException("/d/ntk.npy"),
        new java.nio.file.NotDirectoryException("/d/x"), new java.nio.file.FileSystemLoopException("/d/x"),
        new java.nio.file.NotLinkException("/d/x"), new java.nio.file.AccessDeniedException("/d/x"),
        new java.nio.file.FileAlreadyExistsException("/d/x"), new java.nio.file.NoSuchFileException("/d/x"),
        new java.nio.file.FileSystemException("/d/x"))) {
      String reason = Outputs.reason(e);
      assertTrue(reason.startsWith(e.getFile() + ": ") && reason.length() > e.getFile().length() + 6, reason);
      assertFalse(reason.contains("Exception"), reason);
    }
    assertEquals("/d/ntk.npy: a directory that is not empty is in the way",
        Outputs.reason(new java.nio.file.DirectoryNotEmptyException("/d/ntk.npy")));
  }

  @Test
  void oneRunOwnsADirectory() throws IOException {
    Path out = dir.resolve("out");
    try (Outputs first = Outputs.open(out, "kernel", 0)) {
      UsageException e = assertThrows(UsageException.class, () -> Outputs.open(out, "predict", 0));
      assertTrue(e.getMessage().contains("ntk kernel, process " + ProcessHandle.current().pid()), e.getMessage());
    }
    Outputs.open(out, "predict", 0).close();
  }

  @Test
  void anOutThatNeedsMoreSpaceThanThereIsIsRefused() {
    UsageException e = assertThrows(UsageException.class,
        () -> Outputs.open(dir.resolve("out"), "kernel", Long.MAX_VALUE));
    assertTrue(e.getMessage().contains("MB free"), e.getMessage());
    assertFalse(Files.exists(dir.resolve("out")));
  }

  private static String write(Path staging, String text, List<String> names) throws IOException {
    for (String name : names) {
      Files.writeString(staging.resolve(name), text);
    }
    return text;
  }

  private static long tiles(Path out) throws IOException {
    try (Stream<Path> walk = Files.walk(out.resolve("tiles"))) {
      return walk.filter(p -> p.toString().endsWith(".arrow")).count();
    }
  }
}
