package dev.ntk.transforms;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ntk.io.Npy;
import dev.ntk.io.NpyDType;
import dev.ntk.io.TileKey;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Kernel;
import dev.ntk.kernels.KernelFn;
import dev.ntk.kernels.ModelSpec;
import dev.ntk.kernels.Tensors;
import dev.ntk.kernels.engine.Backend;
import dev.ntk.kernels.linalg.DenseMatrix;
import dev.ntk.kernels.predict.ConjugateGradients;
import dev.ntk.kernels.predict.KernelOperator;
import dev.ntk.kernels.predict.Predict;
import dev.ntk.kernels.predict.Prediction;
import dev.ntk.runners.Runners;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.apache.beam.sdk.Pipeline;
import org.apache.beam.sdk.PipelineResult;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The layout of a tile set of x1 with itself: mirrored (only the tiles on and above the diagonal
 * stored) exactly when the model's plan is symmetric in its two inputs, else whole; either way the
 * kernels, the predictions and conjugate gradients' products from its tiles are the in-process
 * path's. The inputs are 10 rows in tiles of 4: tiles off the diagonal on both sides and a ragged
 * last one of 2 rows.
 */
class TileSetTest {
  private static final int N = 10;
  private static final int TILE = 4;

  @TempDir Path dir;

  @Test
  void aPlanThatIsNotSymmetricHasX1WithItselfComputedWhole() throws IOException {
    Path x1 = Fixtures.scaledNpy(dir, "x1.npy", N, 5, 1);
    Path out = dir.resolve("out");
    TileSet set = TileSet.create(Fixtures.ASYMMETRIC, x1, null, TILE, NpyDType.FLOAT64, out.resolve("tiles"));
    assertTrue(set.x1WithItself());
    assertFalse(set.mirrored());
    assertEquals(9, set.plan().size());
    PipelineResult result = run(set, out);
    assertEquals(9, KernelTilesTest.counter(result, KernelTiles.TILES_COMPUTED));
    assertEquals(9, tileFiles(set));
    assertEquals(TileSet.WHOLE, layout(set));
    for (Get g : Get.values()) {
      double[] want = inProcess(Fixtures.ASYMMETRIC, x1, null, g);
      // the rule tells (i, j) from (j, i): mirrored tiles would be this far off below the diagonal
      assertTrue(asymmetry(want) > 1e-5, g + ": the in-process kernel is not symmetric: " + asymmetry(want));
      Fixtures.assertEntries(want, Npy.read(out.resolve(g.key() + ".npy")).data(), 1e-12, g + " from the tiles");
      Fixtures.assertEntries(want, set.assemble(0, N, set.plan(), List.of(g.key())).get(g.key()), 1e-12,
          g + " assembled");
    }
  }

  @Test
  void aSymmetricPlanStoresOnlyTheTilesOnAndAboveTheDiagonal() throws IOException {
    Path x1 = Fixtures.scaledNpy(dir, "x1.npy", N, 5, 1);
    Path out = dir.resolve("out");
    TileSet set = TileSet.create(Fixtures.MODEL, x1, null, TILE, NpyDType.FLOAT64, out.resolve("tiles"));
    assertTrue(set.x1WithItself());
    assertTrue(set.mirrored());
    assertEquals(6, set.plan().size());
    PipelineResult result = run(set, out);
    assertEquals(6, KernelTilesTest.counter(result, KernelTiles.TILES_COMPUTED));
    assertEquals(6, tileFiles(set));
    assertEquals(TileSet.MIRRORED, layout(set));
    for (TileKey k : set.plan()) {
      assertTrue(k.colOffset() >= k.rowOffset(), k.fileName());
    }
    for (Get g : Get.values()) {
      Fixtures.assertEntries(inProcess(Fixtures.MODEL, x1, null, g), Npy.read(out.resolve(g.key() + ".npy")).data(),
          1e-12, g.key());
    }
  }

  /**
   * A tile holds the same values in either layout, so the tiles on and above the diagonal that a run
   * mirroring this plan left (before plans were asked) are reused, and the rest computed.
   */
  @Test
  void aRunResumedFromTheUpperTilesComputesOnlyTheOthers() throws IOException {
    Path x1 = Fixtures.scaledNpy(dir, "x1.npy", N, 5, 1);
    Path out = dir.resolve("out");
    TileSet set = TileSet.create(Fixtures.ASYMMETRIC, x1, null, TILE, NpyDType.FLOAT64, out.resolve("tiles"));
    run(set, out);
    byte[] first = Files.readAllBytes(out.resolve("nngp.npy"));
    int below = 0;
    for (TileKey k : set.plan()) {
      if (k.colOffset() < k.rowOffset()) {
        Files.delete(set.file(k));
        below++;
      }
    }
    assertEquals(3, below);
    PipelineResult again = run(set, out);
    assertEquals(3, KernelTilesTest.counter(again, KernelTiles.TILES_COMPUTED));
    assertEquals(6, KernelTilesTest.counter(again, KernelTiles.TILES_SKIPPED));
    assertArrayEquals(first, Files.readAllBytes(out.resolve("nngp.npy")));
  }

  /**
   * The train-train and test-test tiles of a plan that is not symmetric are whole: the mean and the
   * covariance are the in-process ones (whose Cholesky reads the lower triangle of the whole train
   * kernel, as the factor of the tiles does), and conjugate gradients multiply the symmetric matrix
   * of that lower triangle (on the whole kernel they stall at a residual of 3e-3) and find the same
   * mean.
   */
  @Test
  void predictionsFromWholeTilesEqualTheInProcessOnes() throws IOException {
    Path xTrain = Fixtures.scaledNpy(dir, "x_train.npy", N, 3, 10);
    Path yTrain = Fixtures.randomNpy(dir, "y_train.npy", N, 2, 11);
    Path xTest = Fixtures.scaledNpy(dir, "x_test.npy", 7, 3, 12);
    Path out = dir.resolve("out");
    NpyDType f64 = NpyDType.FLOAT64;
    String model = Fixtures.ASYMMETRIC;
    TileSet dd = TileSet.create(model, xTrain, null, TILE, f64, out.resolve("tiles/train-train"));
    TileSet td = TileSet.create(model, xTest, xTrain, TILE, f64, out.resolve("tiles/test-train"));
    TileSet tt = TileSet.create(model, xTest, null, TILE, f64, out.resolve("tiles/test-test"));
    assertFalse(dd.mirrored() || tt.mirrored());
    double diagReg = 1e-3;
    Pipeline p = Fixtures.pipeline(Runners.Kind.DIRECT, 2);
    p.apply(GpInference.of(dd, td, tt, yTrain, Get.NTK, diagReg, out));
    Fixtures.run(p);
    try (NDManager m = Tensors.newManager()) {
      KernelFn kernelFn = ModelSpec.parse(model).kernelFn().withBackend(Backend.CPU);
      Prediction expected = Predict.gpInference(kernelFn, Fixtures.load(m, xTrain), Fixtures.load(m, yTrain),
          Fixtures.load(m, xTest), Get.NTK, diagReg, true);
      Fixtures.assertEntries(Tensors.toDoubles(expected.mean()), Npy.read(out.resolve("mean.npy")).data(), 1e-10,
          "mean");
      Fixtures.assertEntries(Tensors.toDoubles(expected.cov()), Npy.read(out.resolve("cov.npy")).data(), 1e-10,
          "cov");

      // conjugate gradients on the same tiles (the whole kernel's products) find the same mean
      Path cg = dir.resolve("cg");
      Pipeline q = Fixtures.pipeline(Runners.Kind.DIRECT, 2);
      q.apply(GpInference.of(dd, td, null, yTrain, PredictSettings.exact(Get.NTK, diagReg), cg)
          .withConjugateGradients(new ConjugateGradients.Settings(1e-12, 1000, 4)));
      Fixtures.run(q);
      Fixtures.assertEntries(Tensors.toDoubles(expected.mean()), Npy.read(cg.resolve("mean.npy")).data(), 1e-8,
          "mean by conjugate gradients");

      double[] whole = Tensors.toDoubles(kernelFn.apply(Fixtures.load(m, xTrain)).get(Get.NTK));
      assertTrue(asymmetry(whole) > 1e-5, "the train kernel is not symmetric: " + asymmetry(whole));
      double[] x = new double[N * 3];
      Random r = new Random(13);
      for (int i = 0; i < x.length; i++) {
        x[i] = r.nextGaussian();
      }
      try (DenseMatrix g = DenseMatrix.of(N, N, whole); DenseMatrix v = DenseMatrix.of(N, 3, x)) {
        g.mirrorLower(); // the matrix Cholesky reads, and in-process conjugate gradients multiply
        TileKernel tiles = new TileKernel(dd, Get.NTK.key(), dd.plan(), Backend.CPU);
        try (DenseMatrix want = KernelOperator.of(g).multiply(v); DenseMatrix got = tiles.multiply(v)) {
          Fixtures.assertEntries(want.toArray(), got.toArray(), 1e-12, "product of the tiles");
          assertArrayEquals(KernelOperator.of(g).diagonal(), tiles.diagonal(), 0);
        } finally {
          tiles.close();
        }
      }
    }
  }

  private static PipelineResult run(TileSet set, Path out) {
    Pipeline p = Fixtures.pipeline(Runners.Kind.DIRECT, 2);
    p.apply(KernelTiles.of(set)).apply(WriteKernels.of(set, List.of(Get.NNGP, Get.NTK), out));
    return Fixtures.run(p);
  }

  private static double[] inProcess(String model, Path x1, Path x2, Get g) throws IOException {
    try (NDManager m = Tensors.newManager()) {
      Kernel k = ModelSpec.parse(model).kernelFn().withBackend(Backend.CPU)
          .apply(Fixtures.load(m, x1), x2 == null ? null : Fixtures.load(m, x2));
      return Tensors.toDoubles(k.get(g));
    }
  }

  /** The largest {@code |K[i][j] - K[j][i]|} of a square kernel, relative to its largest entry. */
  private static double asymmetry(double[] k) {
    int n = (int) Math.round(Math.sqrt(k.length));
    double scale = 0;
    double most = 0;
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < n; j++) {
        scale = Math.max(scale, Math.abs(k[i * n + j]));
        most = Math.max(most, Math.abs(k[i * n + j] - k[j * n + i]));
      }
    }
    return most / scale;
  }

  private static long tileFiles(TileSet set) throws IOException {
    try (var files = Files.list(Path.of(set.directory()))) {
      return files.filter(f -> f.toString().endsWith(".arrow")).count();
    }
  }

  private static String layout(TileSet set) throws IOException {
    return new ObjectMapper().readTree(Path.of(set.directory()).resolve(TileSet.DESCRIPTION).toFile())
        .get("layout").asText();
  }
}
