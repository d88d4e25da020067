package dev.ntk.pipelines;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.kernels.Kernel;
import dev.ntk.kernels.Layer;
import dev.ntk.kernels.ModelSpec;
import dev.ntk.kernels.Tensors;
import dev.ntk.kernels.engine.Backend;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ntk kernel} of a model with {@code Dropout} and {@code LayerNorm}: the kernel of x1 with
 * itself cut into tiles (diagonal tiles are x1 with itself, the others two different batches) and
 * computed in-process are {@code KernelFn}'s, whose diagonal differs from a kernel of x1 and a copy.
 */
class DropoutKernelTest {
  private static final String MODEL = """
      {"serial": [{"Dense": {"out_dim": 16, "W_std": 1.5, "b_std": 0.1}}, {"LayerNorm": {}}, {"Relu": {}},
                  {"Dropout": {"rate": 0.7}}, {"Dense": {"out_dim": 1, "W_std": 1.2, "b_std": 0.1}}]}""";

  @TempDir Path dir;

  @Test
  void tilesAndInProcessRunsKeepTheDiagonalOfX1WithItself() throws IOException {
    int n = 6;
    int d = 3;
    java.util.Random r = new java.util.Random(5);
    double[] v = new double[n * d];
    for (int i = 0; i < v.length; i++) {
      v[i] = r.nextGaussian();
    }
    Path x = dir.resolve("x.npy");
    Npy.write(x, new NpyArray(new long[] {n, d}, NpyDType.FLOAT64, v));
    Path model = Files.writeString(dir.resolve("model.json"), MODEL);
    Layer layer = ModelSpec.parse(MODEL);
    double[][] expected = new double[2][];
    double[][] copy = new double[2][];
    try (NDManager m = Tensors.newManager()) {
      NDArray x1 = Tensors.create(m, v, new Shape(n, d), DataType.FLOAT64);
      Kernel k = layer.kernelFn().withBackend(Backend.CPU).apply(x1);
      Kernel two = layer.kernelFn().withBackend(Backend.CPU).apply(x1, x1.duplicate());
      expected[0] = k.nngp().toDoubleArray();
      expected[1] = k.ntk().toDoubleArray();
      copy[0] = two.nngp().toDoubleArray();
      copy[1] = two.ntk().toDoubleArray();
    }
    for (int i = 0; i < n; i++) {
      assertTrue(expected[0][i * n + i] > copy[0][i * n + i] * 1.01, "dropout scales the diagonal " + i);
      assertEquals(copy[0][i * n + (i + 1) % n], expected[0][i * n + (i + 1) % n], 1e-12, "and nothing else");
    }
    for (List<String> how : List.of(List.of("--tile", "2", "--runner", "DirectRunner"), List.<String>of())) {
      Path out = dir.resolve("out" + how.size());
      List<String> args = new java.util.ArrayList<>(List.of("kernel", "--model", model.toString(), "--x1",
          x.toString(), "--out", out.toString()));
      args.addAll(how);
      ByteArrayOutputStream o = new ByteArrayOutputStream();
      ByteArrayOutputStream e = new ByteArrayOutputStream();
      int status = Ntk.run(args.toArray(String[]::new), new PrintStream(o, true, StandardCharsets.UTF_8),
          new PrintStream(e, true, StandardCharsets.UTF_8));
      assertEquals(0, status, e.toString(StandardCharsets.UTF_8));
      String[] names = {"nngp.npy", "ntk.npy"};
      for (int g = 0; g < 2; g++) {
        double[] got = Npy.read(out.resolve(names[g])).data();
        for (int i = 0; i < got.length; i++) {
          assertEquals(expected[g][i], got[i], 1e-12 * Math.abs(expected[g][i]), how + " " + names[g] + "[" + i + "]");
        }
      }
    }
  }
}
