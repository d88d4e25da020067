package dev.ntk.pipelines;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.pipelines.NtkCommandTest.Result;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ntk predict} with a train kernel that does not fit {@code --max-memory}: factored out of
 * core ({@link OutOfCorePredict}), it gives the in-memory Cholesky's mean and NLL for the NNGP and
 * the NTK, in float64 and float32, says which solver ran, leaves no scratch file (not even when
 * stopped by SIGTERM), and fails as the in-memory path does; {@code --solver auto} takes it up to
 * {@link OutOfCorePredict#AUTO_BOUND} training points.
 */
class OutOfCorePredictTest {
  private static final String MODEL = """
      {"serial": [{"Dense": {"out_dim": 16, "W_std": 1.5, "b_std": 0.1}}, {"Relu": {}},
                  {"Dense": {"out_dim": 16, "W_std": 1.5, "b_std": 0.1}}, {"Relu": {}},
                  {"Dense": {"out_dim": 1, "W_std": 1.5, "b_std": 0.1}}]}""";

  @TempDir Path dir;
  private Path model;
  private Path x;
  private Path y;
  private Path xTest;
  private Path scratch;

  @BeforeEach
  void inputs() throws IOException {
    model = dir.resolve("model.json");
    Files.writeString(model, MODEL);
    x = npy("x.npy", 50, 3, 1, NpyDType.FLOAT64);
    y = npy("y.npy", 50, 2, 2, NpyDType.FLOAT64);
    xTest = npy("x_test.npy", 7, 3, 3, NpyDType.FLOAT64);
    scratch = Files.createDirectories(dir.resolve("scratch"));
  }

  private Path npy(String name, int n, int d, long seed, NpyDType dtype) throws IOException {
    Random r = new Random(seed);
    double[] v = new double[n * d];
    for (int i = 0; i < v.length; i++) {
      v[i] = r.nextGaussian();
    }
    Path file = dir.resolve(name);
    Npy.write(file, new NpyArray(new long[] {n, d}, dtype, v));
    return file;
  }

  private Result predict(String get, String dtype, Path out, Object... more) {
    Object[] args = {"predict", "--model", model, "--x-train", x, "--y-train", y, "--x-test", xTest, "--get", get,
        "--dtype", dtype, "--diag-reg", "1e-3", "--nll", "--out", out};
    Object[] all = java.util.Arrays.copyOf(args, args.length + more.length);
    System.arraycopy(more, 0, all, args.length, more.length);
    return NtkCommandTest.ntk(all);
  }

  private void assertScratchEmpty() throws IOException {
    try (Stream<Path> left = Files.list(scratch)) {
      assertEquals(List.of(), left.toList(), "scratch files left behind");
    }
  }

  /**
   * 50 training points in 5 panels of 10 columns in float64 (--max-memory 7000 bytes), in 3 of 17,
   * 17 and 16 in float32, give
   * the in-memory mean and NLL to 1e-10 in float64, to float32's precision in float32; --solver
   * cholesky and auto alike.
   */
  @Test
  void outOfCoreEqualsInMemory() throws IOException {
    for (String dtype : List.of("float64", "float32")) {
      double tolerance = dtype.equals("float64") ? 1e-10 : 2e-4;
      for (String get : List.of("nngp", "ntk")) {
        Path memory = dir.resolve("memory-" + get + "-" + dtype);
        Result inMemory = predict(get, dtype, memory);
        assertEquals(0, inMemory.status(), inMemory.err());
        assertTrue(inMemory.out().startsWith("in-process (the kernels fit"), inMemory.out());
        double[] want = Npy.read(memory.resolve("mean.npy")).data();
        double wantNll = Npy.read(memory.resolve("nll.npy")).data()[0];
        for (String solver : List.of("cholesky", "auto")) {
          Path out = dir.resolve("ooc-" + get + "-" + dtype + "-" + solver);
          Result r = predict(get, dtype, out, "--max-memory", 7000, "--solver", solver, "--scratch", scratch,
              "--verbose");
          assertEquals(0, r.status(), r.err());
          // float64: 8 (50 w + 2 w^2) <= 7000 up to w = 11: 5 panels of 10; float32: up to 19: 17, 17, 16
          boolean f64 = dtype.equals("float64");
          assertTrue(r.out().startsWith("in-process (the kernels do not fit --max-memory 7000), out-of-core "
              + "Cholesky, " + (f64 ? "5 panels of 10" : "3 panels of 17") + " columns:"), r.out());
          assertTrue(r.err().contains("ntk: out-of-core Cholesky: panel " + (f64 ? "5 of 5 (columns 40..50)"
              : "3 of 3 (columns 34..50)")), r.err());
          double[] got = Npy.read(out.resolve("mean.npy")).data();
          assertEquals(want.length, got.length);
          double scale = 0;
          for (double v : want) {
            scale = Math.max(scale, Math.abs(v));
          }
          for (int i = 0; i < want.length; i++) {
            assertEquals(want[i], got[i], tolerance * scale, get + " " + dtype + " mean " + i);
          }
          assertEquals(wantNll, Npy.read(out.resolve("nll.npy")).data()[0], tolerance * Math.abs(wantNll),
              get + " " + dtype + " nll");
          assertScratchEmpty();
        }
      }
    }
  }

  /** Duplicate inputs without a regularizer: the in-memory path's error in one line, no output, no scratch file. */
  @Test
  void notPositiveDefiniteFailsInOneLineAndLeavesNothing() throws IOException {
    Path twice = dir.resolve("twice.npy");
    double[] v = Npy.read(x).data();
    System.arraycopy(v, 0, v, 3 * 20, 3 * 20);   // rows 20..39 repeat rows 0..19
    Npy.write(twice, new NpyArray(new long[] {50, 3}, NpyDType.FLOAT64, v));
    Path out = dir.resolve("out");
    Result r = NtkCommandTest.ntk("predict", "--model", model, "--x-train", twice, "--y-train", y, "--x-test", xTest,
        "--get", "nngp", "--diag-reg", 0, "--max-memory", 7000, "--scratch", scratch, "--out", out);
    assertEquals(2, r.status(), r.err());
    assertEquals(1, r.err().lines().count(), r.err());
    assertTrue(r.err().contains("the train-train nngp kernel plus diag_reg ") && r.err().contains(" times its mean "
        + "diagonal is not positive definite (its leading minor of order 21 is not"), r.err());
    assertFalse(r.err().contains("Exception"), r.err());
    assertFalse(Files.exists(out), "output left behind");
    assertScratchEmpty();
  }

  /** An entry that is not finite names the entry and the layer, as in memory. */
  @Test
  void nonFiniteKernelNamesTheEntryAndTheLayer() throws IOException {
    NpyArray a = Npy.read(x);
    for (int j = 0; j < 3; j++) {
      a.data()[30 * 3 + j] *= 1e160;
    }
    Path big = dir.resolve("big.npy");
    Npy.write(big, a);
    Path out = dir.resolve("out");
    Result r = NtkCommandTest.ntk("predict", "--model", model, "--x-train", big, "--y-train", y, "--x-test", xTest,
        "--get", "nngp", "--max-memory", 7000, "--scratch", scratch, "--out", out);
    assertEquals(2, r.status(), r.err());
    assertTrue(r.err().contains("the train-train nngp kernel entry (0, 30) is ")
        && r.err().contains("first stops being finite at layer serial[0].Dense"), r.err());
    assertFalse(Files.exists(out), "output left behind");
    assertScratchEmpty();
  }

  /**
   * SIGTERM to a child {@code ntk predict} while its factor is on disk (4000 points in float64 under
   * --max-memory 20m: 8 panels of 500, a 64 MB file) stops it before it writes an output and leaves
   * no {@code cholesky-*} file.
   */
  @Test
  void sigtermDeletesTheScratchFile() throws Exception {
    Path big = npy("big.npy", 4000, 3, 4, NpyDType.FLOAT64);
    Path bigY = npy("big_y.npy", 4000, 2, 5, NpyDType.FLOAT64);
    Path out = dir.resolve("out");
    Process p = NtkCommandTest.subprocess("predict", "--model", model, "--x-train", big, "--y-train", bigY,
        "--x-test", xTest, "--get", "nngp", "--diag-reg", "1e-3", "--solver", "cholesky", "--max-memory", "20m",
        "--scratch", scratch, "--out", out);
    try {
      long deadline = System.nanoTime() + 60_000_000_000L;
      while (!scratchFileExists()) {
        assertTrue(p.isAlive(), "ntk predict exited with " + (p.isAlive() ? 0 : p.exitValue())
            + " before its scratch file appeared");
        assertTrue(System.nanoTime() < deadline, "no scratch file after 60 s");
        Thread.sleep(5);
      }
      p.destroy(); // SIGTERM
      assertTrue(p.waitFor(30, java.util.concurrent.TimeUnit.SECONDS), "ntk predict did not stop on SIGTERM");
    } finally {
      p.destroyForcibly();
    }
    assertEquals(143, p.exitValue(), "stopped by SIGTERM (128 + 15), not finished");
    assertFalse(Files.exists(out.resolve("mean.npy")), "the run finished before SIGTERM: make it larger");
    assertScratchEmpty();
  }

  private boolean scratchFileExists() throws IOException {
    try (Stream<Path> files = Files.list(scratch)) {
      return files.anyMatch(f -> f.getFileName().toString().startsWith("cholesky-"));
    }
  }

  /**
   * {@code --solver auto} factors out of core up to {@link OutOfCorePredict#AUTO_BOUND} training
   * points and turns to conjugate gradients above; {@code cholesky} factors at any size, {@code cg} never.
   */
  @Test
  void autoFactorsUpToTheBoundThenConjugateGradients() {
    long bound = OutOfCorePredict.AUTO_BOUND;
    assertTrue(PredictCommand.Solver.AUTO.factorsOutOfCore(bound));
    assertFalse(PredictCommand.Solver.AUTO.factorsOutOfCore(bound + 1));
    assertTrue(PredictCommand.Solver.CHOLESKY.factorsOutOfCore(bound + 1));
    assertTrue(PredictCommand.Solver.CHOLESKY.factorsOutOfCore(Integer.MAX_VALUE - 1L));
    assertFalse(PredictCommand.Solver.CG.factorsOutOfCore(50));
  }
}
