package dev.ntk.pipelines;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.pipelines.TrainCommandTest.Result;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The graph network of {@code examples/graph/model.json} ({@code Aggregate} layers, a pattern per
 * input row) through the command line on a runner: the tiles read their rows' patterns beside their
 * input rows, so that the DirectRunner and Flink [local] in tiles of 4 rows (several tiles, each with
 * other rows' patterns than its neighbours'), on the {@code cpu} backend (the plan's {@code
 * pattern1}, {@code pattern2} inputs) and on {@code tensorflow} ({@code KernelFn} with patterns),
 * give the in-process kernels to 1e-12 (float32 to rounding), of x1 with x2 and of x1 with itself,
 * with dense and SPARSE patterns; the patterns are part of the tile set's identity, so a rerun with
 * other patterns into the same output directory computes every tile again (and gives that run's
 * in-process kernels), while a rerun with the same ones reuses every tile.
 */
class GraphExampleTest {
  private static final Path EXAMPLE = Path.of("..", "examples", "graph");
  private static final Path MODEL = EXAMPLE.resolve("model.json");
  private static final Path X1 = EXAMPLE.resolve("x_train.npy");
  private static final Path A1 = EXAMPLE.resolve("a_train.npy");
  private static final Path X2 = EXAMPLE.resolve("x_test.npy");
  private static final Path A2 = EXAMPLE.resolve("a_test.npy");

  @TempDir Path dir;

  @Test
  void runnersGiveTheInProcessKernels() throws IOException {
    for (boolean second : new boolean[] {true, false}) {
      List<Object> args = new ArrayList<>(List.of("kernel", "--model", MODEL, "--x1", X1, "--pattern1", A1));
      if (second) {
        args.addAll(List.of("--x2", X2, "--pattern2", A2));
      }
      String which = second ? "x1 and x2" : "x1 with itself";
      String suffix = second ? "" : "-x1";
      Path local = dir.resolve("local" + suffix);
      Result a = run(args, "--out", local);
      assertEquals(0, a.status(), a.err());
      assertTrue(a.out().contains("in-process (the kernels fit one tile"), a.out());
      List<String> runs = second ? List.of("DirectRunner cpu", "FlinkRunner cpu", "DirectRunner tensorflow")
          : List.of("DirectRunner cpu", "DirectRunner tensorflow");
      for (String on : runs) {
        String runner = on.split(" ")[0];
        Path beam = dir.resolve(on.replace(' ', '-') + suffix);
        Result b = run(args, "--tile", 4, "--runner", runner, "--backend", on.split(" ")[1], "--parallelism", 2,
            "--out", beam);
        assertEquals(0, b.status(), b.err());
        // 5 x 2 tiles of 20 x 8, or the 15 on and above the diagonal of 5 x 5.
        assertTrue(b.out().contains(runner + ": " + (second ? 10 : 15) + " tiles computed, 0 reused"), b.out());
        agree(local, beam, which + ", " + on);
      }
    }
  }

  @Test
  void otherPatternsNeverReuseTiles() throws IOException {
    // the patterns of x1 in another order: every example but the two swapped keeps its inputs and pattern
    NpyArray a = Npy.read(A1);
    int size = 16 * 16;
    double[] v = a.data().clone();
    System.arraycopy(a.data(), 0, v, 3 * size, size);
    System.arraycopy(a.data(), 3 * size, v, 0, size);
    Path other = dir.resolve("a_other.npy");
    Npy.write(other, new NpyArray(a.shape(), NpyDType.FLOAT64, v));
    Path beam = dir.resolve("beam");
    List<Object> common = List.of("kernel", "--model", MODEL, "--x1", X1, "--x2", X2, "--pattern2", A2);
    Result first = run(common, "--pattern1", A1, "--tile", 4, "--runner", "DirectRunner", "--out", beam);
    assertEquals(0, first.status(), first.err());
    double[] before = Npy.read(beam.resolve("nngp.npy")).data();
    Result again = run(common, "--pattern1", A1, "--tile", 4, "--runner", "DirectRunner", "--out", beam);
    assertEquals(0, again.status(), again.err());
    assertTrue(again.out().contains("DirectRunner: 0 tiles computed, 10 reused"), again.out());
    Result changed = run(common, "--pattern1", other, "--tile", 4, "--runner", "DirectRunner", "--out", beam);
    assertEquals(0, changed.status(), changed.err());
    assertTrue(changed.out().contains("DirectRunner: 10 tiles computed, 0 reused"), changed.out());
    Path local = dir.resolve("local-other");
    Result inProcess = run(common, "--pattern1", other, "--out", local);
    assertEquals(0, inProcess.status(), inProcess.err());
    agree(local, beam, "other patterns");
    // two sets, one per patterns of x1, each listed with its pattern files
    Result list = TrainCommandTest.ntk("tiles", "--out", beam, "--list");
    assertEquals(0, list.status(), list.err());
    String given = "patterns " + A1.toAbsolutePath().normalize() + ", " + A2.toAbsolutePath().normalize();
    assertTrue(list.out().contains(given), list.out());
    assertTrue(list.out().contains("patterns " + other.toAbsolutePath() + ", "), list.out());
    // the swapped examples' kernels changed (rows 0 and 3), so a reused tile would have been caught
    double[] after = Npy.read(beam.resolve("nngp.npy")).data();
    assertNotEquals(before[0], after[0], 1e-9 * Math.abs(before[0]));
  }

  /**
   * {@link KernelOptions#getPattern1}: the plain Beam main class computes a graph model's tiles with
   * their patterns, the in-process kernels; without patterns it stops before the pipeline runs.
   */
  @Test
  void theMainClassTakesPatterns() throws IOException {
    Path local = dir.resolve("main-local");
    Result a = run(List.of("kernel", "--model", MODEL, "--x1", X1, "--pattern1", A1, "--x2", X2, "--pattern2", A2),
        "--out", local);
    assertEquals(0, a.status(), a.err());
    Path main = dir.resolve("main");
    KernelPipeline.main(new String[] {"--model=" + MODEL, "--x1=" + X1, "--x2=" + X2, "--pattern1=" + A1,
        "--pattern2=" + A2, "--out=" + main, "--tileRows=4", "--runner=DirectRunner", "--targetParallelism=2"});
    agree(local, main, "KernelPipeline");
    IllegalArgumentException none = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
        () -> KernelPipeline.main(new String[] {"--model=" + MODEL, "--x1=" + X1, "--out=" + dir.resolve("none"),
            "--runner=DirectRunner"}));
    assertTrue(none.getMessage().contains("has Aggregate layers: give --pattern1"), none.getMessage());
  }

  /** float32 tiles (the patterns' aggregation matrices in float32 too) as float32 in-process, to rounding. */
  @Test
  void float32Tiles() throws IOException {
    List<Object> args = List.of("kernel", "--model", MODEL, "--x1", X1, "--pattern1", A1, "--dtype", "float32");
    Path local = dir.resolve("f32-local");
    Result a = run(args, "--out", local);
    assertEquals(0, a.status(), a.err());
    Path beam = dir.resolve("f32-beam");
    Result b = run(args, "--tile", 4, "--runner", "DirectRunner", "--out", beam);
    assertEquals(0, b.status(), b.err());
    for (String k : List.of("nngp.npy", "ntk.npy")) {
      NpyArray w = Npy.read(local.resolve(k));
      NpyArray g = Npy.read(beam.resolve(k));
      assertEquals(NpyDType.FLOAT32, g.dtype());
      for (int i = 0; i < w.data().length; i++) {
        assertEquals(w.data()[i], g.data()[i], 1e-5 * Math.abs(w.data()[i]), "float32 " + k + "[" + i + "]");
      }
    }
  }

  /** SPARSE patterns, edge lists {@code (N, n_edges, 2)} with padding edges, in tiles as in-process. */
  @Test
  void sparsePatternsInTiles() throws IOException {
    Path model = dir.resolve("sparse.json");
    java.nio.file.Files.writeString(model, "{\"serial\": [{\"Dense\": {\"out_dim\": 4, \"W_std\": 1.3}}, "
        + "{\"Relu\": {}}, {\"Aggregate\": {\"implementation\": \"SPARSE\"}}, {\"GlobalAvgPool\": {}}]}");
    Path e1 = edges("e1.npy", 20, 1);
    Path e2 = edges("e2.npy", 8, 2);
    List<Object> args = List.of("kernel", "--model", model, "--x1", X1, "--pattern1", e1, "--x2", X2, "--pattern2", e2);
    Path local = dir.resolve("sparse-local");
    Result a = run(args, "--out", local);
    assertEquals(0, a.status(), a.err());
    Path beam = dir.resolve("sparse-beam");
    Result b = run(args, "--tile", 4, "--runner", "DirectRunner", "--out", beam);
    assertEquals(0, b.status(), b.err());
    assertTrue(b.out().contains("DirectRunner: 10 tiles computed, 0 reused"), b.out());
    agree(local, beam, "SPARSE");
  }

  /** {@code n} lists of 12 random edges among 16 nodes, the last two of each padding ({@code -1}). */
  private Path edges(String name, int n, long seed) throws IOException {
    java.util.Random r = new java.util.Random(seed);
    double[] v = new double[n * 12 * 2];
    for (int e = 0; e < n; e++) {
      for (int k = 0; k < 12; k++) {
        v[(e * 12 + k) * 2] = k >= 10 ? -1 : r.nextInt(16);
        v[(e * 12 + k) * 2 + 1] = k >= 10 ? -1 : r.nextInt(16);
      }
    }
    Path file = dir.resolve(name);
    Npy.write(file, new NpyArray(new long[] {n, 12, 2}, NpyDType.FLOAT64, v));
    return file;
  }

  private static void agree(Path want, Path got, String what) throws IOException {
    for (String k : List.of("nngp.npy", "ntk.npy")) {
      double[] w = Npy.read(want.resolve(k)).data();
      double[] g = Npy.read(got.resolve(k)).data();
      assertEquals(w.length, g.length, what + " " + k);
      for (int i = 0; i < w.length; i++) {
        assertFalse(Double.isNaN(w[i]), what + " " + k + "[" + i + "] is NaN");
        assertEquals(w[i], g[i], 1e-12 * Math.abs(w[i]), what + " " + k + "[" + i + "]");
      }
    }
  }

  private static Result run(List<Object> args, Object... more) {
    List<Object> all = new ArrayList<>(args);
    all.addAll(Arrays.asList(more));
    return TrainCommandTest.ntk(all.toArray());
  }
}
