package dev.ntk.pipelines;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.kernels.cuda.CudaEngine;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ntk kernel --backend cuda} on the host device ({@code -Dntk.cuda.device=host}: the
 * generated kernels compiled by {@code gcc}), in process and in tiles on the DirectRunner, of x1
 * with itself and with x2: its files equal those of {@code --backend cpu}. This checks, without a
 * GPU, the paths that call the cuda engine ({@code KernelFn}'s, the tiles' {@code TileComputer},
 * the kernel files) besides the engine itself ({@code CudaEngineModelsTest}).
 */
class CudaCommandTest {
  /**
   * A convolutional network read out by GlobalAvgPool (pixel-pair blocks), and a fully connected one
   * with neural-tangents' quadrature on inputs of different variances (a rule that is not
   * symmetric in its inputs: x1 with itself is computed whole).
   */
  private static final Map<String, String> MODELS = Map.of(
      "conv", """
          {"serial": [{"Conv": {"out_chan": 4, "filter_shape": [2, 2], "padding": "SAME", "W_std": 1.3, "b_std": 0.1}},
                      {"Relu": {}}, {"AvgPool": {"window_shape": [2, 1], "padding": "VALID"}},
                      {"Conv": {"out_chan": 4, "filter_shape": [1, 2], "padding": "SAME", "W_std": 1.2}},
                      {"Erf": {}}, {"GlobalAvgPool": {}}, {"Dense": {"out_dim": 1}}]}""",
      "fc", """
          {"serial": [{"Dense": {"out_dim": 8, "W_std": 1.2, "b_std": 0.1}},
                      {"ElementwiseNumerical": {"fn": "tanh", "deg": 5}},
                      {"Dense": {"out_dim": 8, "W_std": 1.1}}, {"Relu": {}}, {"Dense": {"out_dim": 1}}]}""");

  @TempDir Path dir;

  @BeforeAll
  static void onTheHost() {
    System.setProperty(CudaEngine.DEVICE_PROPERTY, "host");
  }

  @AfterAll
  static void clear() {
    System.clearProperty(CudaEngine.DEVICE_PROPERTY);
  }

  @Test
  void kernelFilesEqualTheCpuBackendsInProcessAndInTiles() throws IOException {
    for (Map.Entry<String, String> m : MODELS.entrySet()) {
      boolean conv = m.getKey().equals("conv");
      Path model = Files.writeString(dir.resolve(m.getKey() + ".json"), m.getValue());
      long[] shape = conv ? new long[] {4, 3, 2} : new long[] {5};
      Path x1 = inputs(m.getKey() + "-x1.npy", 5, shape, 1);
      Path x2 = inputs(m.getKey() + "-x2.npy", 3, shape, 2);
      for (Path other : new Path[] {null, x2}) {
        String run = m.getKey() + (other == null ? "-self" : "-x2");
        Path cpu = kernel(run + "-cpu", model, x1, other, "cpu", null);
        for (Object[] c : new Object[][] {{"cuda", null}, {"cuda", 2}}) {
          Integer tile = (Integer) c[1];
          Path cuda = kernel(run + "-" + c[0] + (tile == null ? "" : "-tiles"), model, x1, other, (String) c[0], tile);
          for (String k : List.of("nngp.npy", "ntk.npy")) {
            NpyArray want = Npy.read(cpu.resolve(k));
            NpyArray got = Npy.read(cuda.resolve(k));
            assertArrayEquals(want.shape(), got.shape(), run + " " + k);
            double scale = 0;
            for (double v : want.data()) {
              scale = Math.max(scale, Math.abs(v));
            }
            for (int i = 0; i < want.data().length; i++) {
              assertEquals(want.data()[i], got.data()[i], 1e-12 * scale, run + " " + c[0] + (tile == null ? "" : " in tiles")
                  + " " + k + "[" + i + "]");
            }
          }
        }
      }
    }
  }

  private Path kernel(String name, Path model, Path x1, Path x2, String backend, Integer tile) {
    Path out = dir.resolve(name);
    List<Object> args = new ArrayList<>(List.of("kernel", "--model", model, "--x1", x1, "--backend", backend,
        "--out", out));
    if (x2 != null) {
      args.addAll(List.of("--x2", x2));
    }
    if (tile != null) {
      args.addAll(List.of("--tile", tile));
    }
    NtkCommandTest.Result r = NtkCommandTest.ntk(args.toArray());
    assertEquals(0, r.status(), name + ": " + r.err());
    assertTrue(Files.exists(out.resolve("ntk.npy")), name);
    return out;
  }

  /** {@code n} Gaussian inputs of per-example {@code shape}, their scales varying (different variances). */
  private Path inputs(String name, int n, long[] shape, long seed) throws IOException {
    java.util.Random r = new java.util.Random(seed);
    int d = 1;
    for (long s : shape) {
      d *= (int) s;
    }
    double[] v = new double[n * d];
    for (int i = 0; i < v.length; i++) {
      v[i] = r.nextGaussian() * (1 + 0.3 * (i / d));
    }
    long[] full = new long[shape.length + 1];
    full[0] = n;
    System.arraycopy(shape, 0, full, 1, shape.length);
    Path file = dir.resolve(name);
    Npy.write(file, new NpyArray(full, NpyDType.FLOAT64, v));
    return file;
  }
}
