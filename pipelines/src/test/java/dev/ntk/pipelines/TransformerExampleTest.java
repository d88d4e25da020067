package dev.ntk.pipelines;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.pipelines.TrainCommandTest.Result;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The transformer of {@code examples/transformer/model.json} (attention blocks with {@code SUM}
 * positional embeddings, {@code LayerNorm}, residual {@code FanInSum}s, under {@code repeat})
 * through the command line: in-process, on the DirectRunner and on Flink [local] in tiles of one
 * row, so that every tile sees other inputs' rows than its neighbours'; the kernels agree to 1e-12.
 * The example's widths do not enter the infinite-width kernel, so short sequences keep it fast.
 */
class TransformerExampleTest {
  private static final Path MODEL = Path.of("..", "examples", "transformer", "model.json");

  @TempDir Path dir;

  @Test
  void inProcessDirectRunnerAndFlinkAgree() throws IOException {
    Path x1 = sequences("x1.npy", 3, 11);
    Path x2 = sequences("x2.npy", 2, 12);
    for (Path second : Arrays.asList(x2, null)) {
      List<Object> args = new ArrayList<>(List.of("kernel", "--model", MODEL, "--x1", x1));
      if (second != null) {
        args.addAll(List.of("--x2", second));
      }
      String which = second == null ? "x1 with itself" : "x1 and x2";
      String suffix = second == null ? "-x1" : "";
      Path local = dir.resolve("local" + suffix);
      Result a = run(args, "--out", local);
      assertEquals(0, a.status(), a.err());
      assertTrue(a.out().contains("in-process (the kernels fit one tile"), a.out());
      List<String> runners = second == null ? List.of("DirectRunner") : List.of("DirectRunner", "FlinkRunner");
      for (String runner : runners) {
        Path beam = dir.resolve(runner + suffix);
        Result b = run(args, "--tile", 1, "--runner", runner, "--parallelism", 2, "--out", beam);
        assertEquals(0, b.status(), b.err());
        // 3 x 2 tiles of one row, or the 6 on and above the diagonal of 3 x 3.
        assertTrue(b.out().contains(runner + ": 6 tiles computed"), b.out());
        for (String k : List.of("nngp.npy", "ntk.npy")) {
          double[] want = Npy.read(local.resolve(k)).data();
          double[] got = Npy.read(beam.resolve(k)).data();
          assertEquals(want.length, got.length);
          for (int i = 0; i < want.length; i++) {
            assertFalse(Double.isNaN(want[i]), which + " " + k + "[" + i + "] is NaN");
            assertEquals(want[i], got[i], 1e-12 * Math.abs(want[i]), which + ", " + runner + " " + k + "[" + i + "]");
          }
        }
      }
    }
  }

  /** Vectors instead of sequences: one line naming the attention layer's path, exit status 2, nothing written. */
  @Test
  void vectorsAreRefusedNamingTheAttentionLayer() throws IOException {
    Path vectors = dir.resolve("vectors.npy");
    Npy.write(vectors, new NpyArray(new long[] {2, 3}, NpyDType.FLOAT64, new double[] {1, 2, 3, 4, 5, 6}));
    Path out = dir.resolve("out");
    Result r = TrainCommandTest.ntk("kernel", "--model", MODEL, "--x1", vectors, "--out", out);
    assertEquals(2, r.status(), r.err());
    assertTrue(r.err().contains("serial[1].repeat[0].serial[1].parallel[0].serial[1].GlobalSelfAttention: "
        + "GlobalSelfAttention takes sequences or images"), r.err());
    assertEquals(1, r.err().strip().lines().count(), r.err());
    assertFalse(Files.exists(out), "output written");
  }

  private static Result run(List<Object> args, Object... more) {
    List<Object> all = new ArrayList<>(args);
    all.addAll(Arrays.asList(more));
    return TrainCommandTest.ntk(all.toArray());
  }

  /** {@code n} standard normal sequences of 4 positions and 3 channels, {@code (n, 4, 3)}. */
  private Path sequences(String name, int n, long seed) throws IOException {
    Random r = new Random(seed);
    double[] v = new double[n * 4 * 3];
    for (int i = 0; i < v.length; i++) {
      v[i] = r.nextGaussian();
    }
    Path file = dir.resolve(name);
    Npy.write(file, new NpyArray(new long[] {n, 4, 3}, NpyDType.FLOAT64, v));
    return file;
  }
}
