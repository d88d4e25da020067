package dev.ntk.pipelines;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.kernels.Model;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A job parses its model once: the command line reads it, and the jobs, tile sets, transforms and
 * DoFns (serialized and copied by the runner) carry the parsed value. Each test uses a model text
 * no other test parses, since a JVM does not parse a text twice.
 */
class ModelOnceTest {
  @TempDir Path dir;

  private Path model(double wStd) throws IOException {
    return Files.writeString(dir.resolve("model.json"), "{\"serial\": [{\"Dense\": {\"out_dim\": 8, \"W_std\": "
        + wStd + ", \"b_std\": 0.1}}, {\"Relu\": {}}, {\"Dense\": {\"out_dim\": 1, \"W_std\": " + wStd + "}}]}");
  }

  private Path npy(String name, int n, int d, long seed) throws IOException {
    Random r = new Random(seed);
    double[] v = new double[n * d];
    for (int i = 0; i < v.length; i++) {
      v[i] = r.nextGaussian();
    }
    Path file = dir.resolve(name);
    Npy.write(file, new NpyArray(new long[] {n, d}, NpyDType.FLOAT64, v));
    return file;
  }

  private static int ntk(String... args) {
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int status = Ntk.run(args, new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8));
    assertEquals(0, status, err.toString(StandardCharsets.UTF_8));
    return status;
  }

  @Test
  void aKernelPipelineParsesItsModelOnce() throws IOException {
    Path m = model(1.21875);
    Path x = npy("x.npy", 7, 3, 1);
    long before = Model.parses();
    ntk("kernel", "--model", m.toString(), "--x1", x.toString(), "--tile", "3", "--runner", "DirectRunner",
        "--parallelism", "2", "--out", dir.resolve("pipeline").toString());
    assertEquals(before + 1, Model.parses(), "parses of the model in one kernel job on the DirectRunner");
    ntk("kernel", "--model", m.toString(), "--x1", x.toString(), "--out", dir.resolve("in-process").toString());
    assertEquals(before + 1, Model.parses(), "a second job in this JVM reuses the parsed model");
    assertArrayEquals(Npy.read(dir.resolve("in-process/ntk.npy")).data(),
        Npy.read(dir.resolve("pipeline/ntk.npy")).data(), 1e-12);
  }

  @Test
  void aPredictPipelineParsesItsModelOnce() throws IOException {
    Path m = model(1.234375);
    Path x = npy("x.npy", 6, 2, 2);
    Path y = npy("y.npy", 6, 1, 3);
    Path t = npy("t.npy", 4, 2, 4);
    long before = Model.parses();
    ntk("predict", "--model", m.toString(), "--x-train", x.toString(), "--y-train", y.toString(), "--x-test",
        t.toString(), "--tile", "4", "--runner", "DirectRunner", "--compute-cov", "--out", dir.resolve("p").toString());
    assertEquals(before + 1, Model.parses(), "parses of the model in one predict job on the DirectRunner");
  }
}
