package dev.ntk.transforms;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.ModelSpec;
import dev.ntk.kernels.Tensors;
import dev.ntk.kernels.Kernel;
import dev.ntk.kernels.KernelFn;
import dev.ntk.kernels.predict.Loss;
import dev.ntk.kernels.predict.Predict;
import dev.ntk.kernels.predict.Prediction;
import dev.ntk.kernels.predict.TrainedOutputs;
import java.util.List;
import dev.ntk.runners.Runners;
import java.io.IOException;
import java.nio.file.Path;
import org.apache.beam.sdk.Pipeline;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** GP inference through Beam (factor once, side input, test blocks in parallel) equals the in-process one. */
class GpInferenceTest {
  @TempDir Path dir;

  @ParameterizedTest(name = "{0} get={1} tile={2} outputs={3}")
  @CsvSource({
    "DIRECT, NTK, 4, 2",
    "DIRECT, NNGP, 3, 1",
    "DIRECT, NTK, 64, 1",
    "FLINK, NTK, 5, 2",
  })
  void beamEqualsInProcess(Runners.Kind runner, Get get, int tile, int outputs) throws IOException {
    Path xTrain = Fixtures.randomNpy(dir, "x_train.npy", 11, 3, 10);
    Path yTrain = Fixtures.randomNpy(dir, "y_train.npy", 11, outputs, 11);
    Path xTest = Fixtures.randomNpy(dir, "x_test.npy", 9, 3, 12);
    Path out = dir.resolve("out");
    double diagReg = 1e-3;
    NpyDType f64 = NpyDType.FLOAT64;
    TileSet dd = TileSet.create(Fixtures.MODEL, xTrain, null, tile, f64, out.resolve("tiles/train-train"));
    TileSet td = TileSet.create(Fixtures.MODEL, xTest, xTrain, tile, f64, out.resolve("tiles/test-train"));
    TileSet tt = TileSet.create(Fixtures.MODEL, xTest, null, tile, f64, out.resolve("tiles/test-test"));
    Pipeline p = Fixtures.pipeline(runner, 2);
    p.apply(GpInference.of(dd, td, tt, yTrain, get, diagReg, out));
    Fixtures.run(p);

    try (NDManager m = Tensors.newManager()) {
      Prediction expected = Predict.gpInference(ModelSpec.parse(Fixtures.MODEL).kernelFn(),
          Fixtures.load(m, xTrain), Fixtures.load(m, yTrain), Fixtures.load(m, xTest), get, diagReg, true);
      NpyArray mean = Npy.read(out.resolve("mean.npy"));
      NpyArray cov = Npy.read(out.resolve("cov.npy"));
      assertArrayEquals(new long[] {9, outputs}, mean.shape());
      assertArrayEquals(new long[] {9, 9}, cov.shape());
      double meanErr = Fixtures.relativeError(mean.data(), Tensors.toDoubles(expected.mean()));
      double covErr = Fixtures.relativeError(cov.data(), Tensors.toDoubles(expected.cov()));
      assertTrue(meanErr <= 1e-10, "mean relative error " + meanErr);
      assertTrue(covErr <= 1e-10, "cov relative error " + covErr);
    }
  }

  @ParameterizedTest
  @CsvSource({"NNGP", "NTK"})
  void meanOnlyWritesNoCovariance(Get get) throws IOException {
    Path xTrain = Fixtures.randomNpy(dir, "x_train.npy", 6, 2, 20);
    Path yTrain = Fixtures.randomNpy(dir, "y_train.npy", 6, 1, 21);
    Path xTest = Fixtures.randomNpy(dir, "x_test.npy", 4, 2, 22);
    Path out = dir.resolve("out");
    TileSet dd = TileSet.create(Fixtures.MODEL, xTrain, null, 4, NpyDType.FLOAT64, out.resolve("tiles/dd"));
    TileSet td = TileSet.create(Fixtures.MODEL, xTest, xTrain, 4, NpyDType.FLOAT64, out.resolve("tiles/td"));
    Pipeline p = Fixtures.pipeline(Runners.Kind.DIRECT, 2);
    p.apply(GpInference.of(dd, td, null, yTrain, get, 1e-4, out));
    Fixtures.run(p);
    assertArrayEquals(new long[] {4, 1}, Npy.readHeader(out.resolve("mean.npy")).shape());
    assertTrue(!out.resolve("cov.npy").toFile().exists());
  }

  private static final double INF = Double.POSITIVE_INFINITY;

  private record Files3(Path xTrain, Path yTrain, Path xTest, Path out, TileSet dd, TileSet td, TileSet tt) {}

  private Files3 problem(int n, int m, int outputs, int tile) throws IOException {
    Path xTrain = Fixtures.randomNpy(dir, "x_train.npy", n, 3, 40);
    Path yTrain = Fixtures.randomNpy(dir, "y_train.npy", n, outputs, 41);
    Path xTest = Fixtures.randomNpy(dir, "x_test.npy", m, 3, 42);
    Path out = dir.resolve("out");
    NpyDType f64 = NpyDType.FLOAT64;
    return new Files3(xTrain, yTrain, xTest, out,
        TileSet.create(Fixtures.MODEL, xTrain, null, tile, f64, out.resolve("tiles/train-train")),
        TileSet.create(Fixtures.MODEL, xTest, xTrain, tile, f64, out.resolve("tiles/test-train")),
        TileSet.create(Fixtures.MODEL, xTest, null, tile, f64, out.resolve("tiles/test-test")));
  }

  private static void assertClose(double[] expected, double[] actual, String what) {
    double err = Fixtures.relativeError(actual, expected);
    assertTrue(err <= 1e-9, what + " relative error " + err);
  }

  @ParameterizedTest(name = "{0} get={1}")
  @CsvSource({"DIRECT, NTK", "DIRECT, NNGP", "FLINK, NTK"})
  void ensembleAtSeveralTimesEqualsInProcess(Runners.Kind runner, Get get) throws IOException {
    Files3 f = problem(10, 7, 2, 4);
    double[] times = {0.5, 20, INF};
    PredictSettings settings = new PredictSettings(get, 1e-3, times, 0.5, "mse", 0, null, null, true);
    Pipeline p = Fixtures.pipeline(runner, 2);
    p.apply(GpInference.of(f.dd(), f.td(), f.tt(), f.yTrain(), settings, f.out()));
    Fixtures.run(p);
    try (NDManager m = Tensors.newManager()) {
      KernelFn kf = ModelSpec.parse(Fixtures.MODEL).kernelFn();
      List<Prediction> expected = Predict.gradientDescentMseEnsemble(kf, Fixtures.load(m, f.xTrain()),
          Fixtures.load(m, f.yTrain()), Fixtures.load(m, f.xTest()), get, times, 0.5, 1e-3, true);
      NpyArray mean = Npy.read(f.out().resolve("mean.npy"));
      NpyArray cov = Npy.read(f.out().resolve("cov.npy"));
      assertArrayEquals(new long[] {3, 7, 2}, mean.shape());
      assertArrayEquals(new long[] {3, 7, 7}, cov.shape());
      for (int i = 0; i < times.length; i++) {
        assertClose(Tensors.toDoubles(expected.get(i).mean()),
            java.util.Arrays.copyOfRange(mean.data(), i * 14, (i + 1) * 14), "mean t=" + times[i]);
        assertClose(Tensors.toDoubles(expected.get(i).cov()),
            java.util.Arrays.copyOfRange(cov.data(), i * 49, (i + 1) * 49), "cov t=" + times[i]);
      }
      double nll = Predict.nll(kf.apply(Fixtures.load(m, f.xTrain())).get(get), Fixtures.load(m, f.yTrain()), 1e-3);
      assertEquals(nll, Npy.read(f.out().resolve("nll.npy")).data()[0], 1e-9 * Math.abs(nll));
      assertTrue(!java.nio.file.Files.exists(f.out().resolve("tiles/factor")), "the factor files are removed");
    }
  }

  @ParameterizedTest(name = "{0} loss={1} mass={2}")
  @CsvSource({"DIRECT, mse, 0", "DIRECT, cross-entropy, 0", "FLINK, mse, 0.5"})
  void oneNetworkFromInitialOutputsEqualsInProcess(Runners.Kind runner, String loss, double mass)
      throws IOException {
    Files3 f = problem(9, 6, 3, 4);
    Path fxTrain0 = Fixtures.randomNpy(dir, "fx_train_0.npy", 9, 3, 50);
    Path fxTest0 = Fixtures.randomNpy(dir, "fx_test_0.npy", 6, 3, 51);
    double[] times = {0, 2, 30};
    PredictSettings settings = new PredictSettings(Get.NTK, 0.0, times, 1.5, loss, mass,
        fxTrain0.toString(), fxTest0.toString(), false);
    Pipeline p = Fixtures.pipeline(runner, 2);
    p.apply(GpInference.of(f.dd(), f.td(), null, f.yTrain(), settings, f.out()));
    Fixtures.run(p);
    try (NDManager m = Tensors.newManager()) {
      KernelFn kf = ModelSpec.parse(Fixtures.MODEL).kernelFn();
      Kernel dd = kf.apply(Fixtures.load(m, f.xTrain()));
      Kernel td = kf.apply(Fixtures.load(m, f.xTest()), Fixtures.load(m, f.xTrain()));
      List<TrainedOutputs> expected = loss.equals("mse") && mass == 0
          ? Predict.gradientDescentMse(dd.ntk(), Fixtures.load(m, f.yTrain()), td.ntk(),
              Fixtures.load(m, fxTrain0), Fixtures.load(m, fxTest0), times, 1.5, 0.0)
          : Predict.gradientDescent(Loss.of(loss), dd.ntk(), Fixtures.load(m, f.yTrain()), td.ntk(),
              Fixtures.load(m, fxTrain0), Fixtures.load(m, fxTest0), times, 1.5, mass);
      NpyArray mean = Npy.read(f.out().resolve("mean.npy"));
      assertArrayEquals(new long[] {3, 6, 3}, mean.shape());
      for (int i = 0; i < times.length; i++) {
        assertClose(Tensors.toDoubles(expected.get(i).test()),
            java.util.Arrays.copyOfRange(mean.data(), i * 18, (i + 1) * 18), "t=" + times[i]);
      }
    }
  }

  @org.junit.jupiter.api.Test
  void settingsRejectBadInput() {
    var neg = assertThrows(IllegalArgumentException.class,
        () -> new PredictSettings(Get.NTK, 0, new double[] {-1}, 1, "mse", 0, null, null, false));
    assertTrue(neg.getMessage().contains("non-negative"), neg.getMessage());
    assertThrows(IllegalArgumentException.class,
        () -> new PredictSettings(Get.NTK, 0, new double[] {Double.NaN}, 1, "mse", 0, null, null, false));
    var loss = assertThrows(IllegalArgumentException.class,
        () -> new PredictSettings(Get.NTK, 0, new double[] {1}, 1, "hinge", 0, null, null, false));
    assertTrue(loss.getMessage().contains("unknown loss"), loss.getMessage());
    var inf = assertThrows(IllegalArgumentException.class,
        () -> new PredictSettings(Get.NTK, 0, new double[] {INF}, 1, "cross-entropy", 0, null, null, false));
    assertTrue(inf.getMessage().contains("finite times"), inf.getMessage());
  }
}
