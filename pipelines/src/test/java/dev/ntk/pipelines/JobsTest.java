package dev.ntk.pipelines;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Kernel;
import dev.ntk.kernels.ModelSpec;
import dev.ntk.kernels.Tensors;
import dev.ntk.kernels.predict.Predict;
import dev.ntk.kernels.predict.Prediction;
import dev.ntk.runners.Runners;
import dev.ntk.transforms.PredictSettings;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.beam.runners.direct.DirectOptions;
import org.apache.beam.sdk.options.PipelineOptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The jobs behind the command line, on the repository's sine example, against the in-process path. */
class JobsTest {
  private static final Path SINE = Path.of("..", "examples", "sine");

  @TempDir Path out;

  @Test
  void predictJobOnTheSineExampleEqualsInProcessInference() throws IOException {
    new PredictJob(SINE.resolve("model.json"), SINE.resolve("x_train.npy"), SINE.resolve("y_train.npy"),
        SINE.resolve("x_test.npy"), PredictSettings.exact(Get.NTK, 1e-4), true, out)
        .run(Runners.options(Runners.Kind.DIRECT, null, 2, List.of("--tileRows=16", "--dtype=float64")));
    try (NDManager m = Tensors.newManager()) {
      Prediction expected = Predict.gpInference(model(), load(m, "x_train.npy"), load(m, "y_train.npy"),
          load(m, "x_test.npy"), Get.NTK, 1e-4, true);
      NpyArray mean = Npy.read(out.resolve("mean.npy"));
      assertArrayEquals(new long[] {50, 1}, mean.shape());
      assertTrue(relativeError(mean.data(), Tensors.toDoubles(expected.mean())) <= 1e-10);
      assertTrue(relativeError(Npy.read(out.resolve("cov.npy")).data(), Tensors.toDoubles(expected.cov())) <= 1e-10);
      // The infinite ensemble fits the sine well inside the training range.
      double[] y = Npy.read(SINE.resolve("y_test.npy")).data();
      assertTrue(relativeError(mean.data(), y) < 0.5, "fit of the sine " + relativeError(mean.data(), y));
    }
  }

  /**
   * The progress shown while a DirectRunner job runs and the counts it reports are the job's Beam
   * metrics: every tile of the plan once, computed on the first run and found on disk on the second.
   */
  @Test
  void directRunnerProgressAndReportComeFromTheJobsMetrics() throws IOException {
    KernelJob job = new KernelJob(SINE.resolve("model.json"), SINE.resolve("x_test.npy"), null, List.of(Get.NTK), out);
    long tiles = 13 * 14 / 2; // 50 rows in 13 blocks of at most 4, tiles on and above the diagonal
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    PrintStream err = new PrintStream(bytes, true, StandardCharsets.UTF_8);
    PipelineOptions options = Runners.options(Runners.Kind.DIRECT, null, 2, List.of("--tileRows=4"));
    JobReport first = job.run(options, out, new Progress(err, false, 1));
    assertTrue(options.as(DirectOptions.class).isBlockOnRun(), "the caller's options are left as they were");
    assertEquals(tiles, first.tilesComputed(), first.toString());
    assertEquals(0, first.tilesReused(), first.toString());
    assertEquals(0, first.tilesDamaged(), first.toString());
    List<String> lines = bytes.toString(StandardCharsets.UTF_8).lines().toList();
    assertFalse(lines.isEmpty(), "the running job's metrics were polled: no progress line");
    long shown = 0;
    for (String line : lines) {
      Matcher m = Pattern.compile("^ntk: tiles (\\d+)/(\\d+) ").matcher(line);
      assertTrue(m.find(), line);
      assertEquals(tiles, Long.parseLong(m.group(2)), line);
      long done = Long.parseLong(m.group(1));
      assertTrue(done > shown && done <= tiles, "counts rise to the plan's tiles: " + lines);
      shown = done;
    }
    JobReport again = job.run(Runners.options(Runners.Kind.DIRECT, null, 2, List.of("--tileRows=4")), out,
        Progress.NONE);
    assertEquals(0, again.tilesComputed(), again.toString());
    assertEquals(tiles, again.tilesReused(), again.toString());
  }

  @Test
  void kernelJobOnFlinkEqualsInProcessKernels() throws IOException {
    JobReport report = new KernelJob(SINE.resolve("model.json"), SINE.resolve("x_test.npy"),
        SINE.resolve("x_train.npy"), List.of(Get.NNGP, Get.NTK), out)
        .run(Runners.options(Runners.Kind.FLINK, "[local]", 2, List.of("--tileRows=7")));
    // Flink commits no metrics: the report reads the attempted counts, one per tile (8 blocks of x1, 1 of x2)
    assertEquals(8, report.tilesComputed(), report.toString());
    assertEquals(0, report.tilesReused(), report.toString());
    try (NDManager m = Tensors.newManager()) {
      Kernel expected = model().apply(load(m, "x_test.npy"), load(m, "x_train.npy"));
      for (Get g : Get.values()) {
        double err = relativeError(Npy.read(out.resolve(g.key() + ".npy")).data(), Tensors.toDoubles(expected.get(g)));
        assertTrue(err <= 1e-12, g + " relative error " + err);
      }
    }
  }

  private static dev.ntk.kernels.KernelFn model() {
    return ModelSpec.read(SINE.resolve("model.json")).kernelFn();
  }

  private static NDArray load(NDManager m, String name) throws IOException {
    NpyArray a = Npy.read(SINE.resolve(name));
    return Tensors.create(m, a.data(), new Shape(a.shape()), DataType.FLOAT64);
  }

  private static double relativeError(double[] a, double[] b) {
    double num = 0;
    double den = 0;
    for (int i = 0; i < a.length; i++) {
      num += (a[i] - b[i]) * (a[i] - b[i]);
      den += b[i] * b[i];
    }
    return Math.sqrt(num / den);
  }
}
