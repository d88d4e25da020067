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
import dev.ntk.io.NpyDType;
import dev.ntk.kernels.Kernel;
import dev.ntk.kernels.ModelSpec;
import dev.ntk.kernels.Spatial;
import dev.ntk.kernels.Tensors;
import dev.ntk.kernels.engine.Backend;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ntk kernel} with kernels that keep the last layer's spatial axes ({@code --diagonal-spatial})
 * and the covariances of each input with itself ({@code --get cov1,cov2}): the shapes of the files
 * written, their values against {@code KernelFn}'s, and the refusals.
 */
class KernelCommandTest {
  /** Ends without a readout: the output keeps a 3 x 3 grid of the 4 x 3 images. */
  private static final String CONV = """
      {"serial": [{"Conv": {"out_chan": 4, "filter_shape": [2, 2], "padding": "SAME", "W_std": 1.3, "b_std": 0.1}},
                  {"Relu": {}},
                  {"Conv": {"out_chan": 4, "filter_shape": [2, 1], "padding": "VALID", "W_std": 1.2}}]}""";

  @TempDir Path dir;

  /**
   * A kernel of more than 2 GiB does not fit one in-process buffer whatever {@code --max-tile-bytes}
   * allows (it failed in the gram before): 20,000 x 20,000 float32 (1.6 GB) fits, 30,000 x 30,000
   * float32 (3.6 GB) and 20,000 x 20,000 float64 (3.2 GB) go through tiles.
   */
  @Test
  void kernelsOverTwoGibibytesGoThroughTiles() {
    dev.ntk.kernels.Plan plan = dev.ntk.kernels.Model.parse("{\"serial\": [{\"Dense\": {\"out_dim\": 1}}, {\"Relu\": {}}]}")
        .plan(new Shape(3), DataType.FLOAT32, java.util.Set.of(dev.ntk.kernels.Get.NNGP));
    assertTrue(InProcessKernel.fits(plan, 20_000, 20_000, NpyDType.FLOAT32, Backend.CPU, Long.MAX_VALUE));
    assertFalse(InProcessKernel.fits(plan, 30_000, 30_000, NpyDType.FLOAT32, Backend.CPU, Long.MAX_VALUE));
    assertFalse(InProcessKernel.fits(plan, 20_000, 20_000, NpyDType.FLOAT64, Backend.CPU, Long.MAX_VALUE));
  }

  @Test
  void spatialKernelsAndCovariancesInNeuralTangentsLayouts() throws IOException {
    Path model = Files.writeString(dir.resolve("conv.json"), CONV);
    Path x1 = images("x1.npy", 5, 1);
    Path x2 = images("x2.npy", 4, 2);
    for (String diagonal : List.of("false", "true")) {
      Path out = dir.resolve("out-" + diagonal);
      NtkCommandTest.Result r = NtkCommandTest.ntk("kernel", "--model", model, "--x1", x1, "--x2", x2,
          "--diagonal-spatial", diagonal, "--get", "nngp,ntk,cov1,cov2", "--out", out);
      assertEquals(0, r.status(), r.err());
      boolean full = diagonal.equals("false");
      long[] pair = full ? new long[] {5, 4, 3, 3, 3, 3} : new long[] {5, 4, 3, 3};
      String described = full ? "nngp.npy (5, 4, 3, 3, 3, 3) float64" : "nngp.npy (5, 4, 3, 3) float64";
      assertTrue(r.out().contains(described), r.out());
      assertArrayEquals(pair, Npy.readHeader(out.resolve("nngp.npy")).shape());
      assertArrayEquals(pair, Npy.readHeader(out.resolve("ntk.npy")).shape());
      assertArrayEquals(full ? new long[] {5, 3, 3, 3, 3} : new long[] {5, 3, 3},
          Npy.readHeader(out.resolve("cov1.npy")).shape());
      assertArrayEquals(full ? new long[] {4, 3, 3, 3, 3} : new long[] {4, 3, 3},
          Npy.readHeader(out.resolve("cov2.npy")).shape());
      try (NDManager m = Tensors.newManager()) {
        Kernel k = ModelSpec.parse(CONV).kernelFn().withBackend(Backend.CPU).keepSpatial(Spatial.of(!full))
            .apply(array(m, x1), array(m, x2));
        assertClose(k.nngp(), out.resolve("nngp.npy"));
        assertClose(k.ntk(), out.resolve("ntk.npy"));
        assertClose(k.cov1(), out.resolve("cov1.npy"));
        assertClose(k.cov2(), out.resolve("cov2.npy"));
      }
      // float32, of x1 with itself: the float64 run's blocks (i, j) of x1 within float32's rounding
      Path single = dir.resolve("out32-" + diagonal);
      NtkCommandTest.Result f = NtkCommandTest.ntk("kernel", "--model", model, "--x1", x1, "--dtype", "float32",
          "--diagonal-spatial", diagonal, "--get", "nngp,cov1", "--out", single);
      assertEquals(0, f.status(), f.err());
      assertEquals(NpyDType.FLOAT32, Npy.readHeader(single.resolve("nngp.npy")).dtype());
      long[] self = pair.clone();
      self[1] = 5;
      assertArrayEquals(self, Npy.readHeader(single.resolve("nngp.npy")).shape());
      double[] cov1 = Npy.read(out.resolve("cov1.npy")).data();
      double[] cov1f = Npy.read(single.resolve("cov1.npy")).data();
      for (int i = 0; i < cov1.length; i++) {
        assertEquals(cov1[i], cov1f[i], 1e-5 * Math.max(1, Math.abs(cov1[i])), "float32 cov1[" + i + "]");
      }
      // the blocks (i, i) of the kernel of x1 with itself are cov1
      double[] nngp = Npy.read(single.resolve("nngp.npy")).data();
      int block = cov1.length / 5;
      assertEquals(25 * block, nngp.length);
      for (int i = 0; i < 5; i++) {
        for (int p = 0; p < block; p++) {
          assertEquals(cov1f[i * block + p], nngp[(i * 5 + i) * block + p], 1e-5 * Math.max(1, Math.abs(cov1[i])),
              "nngp[" + i + ", " + i + "] block entry " + p);
        }
      }
    }
  }

  /**
   * {@code --diagonal-batch false}: cov1 and cov2 between every two inputs of their batch, {@code (N,
   * N, H, W)}: the NNGP of x1 (x2) with itself, whose blocks {@code (i, i)} are the per-input cov1.
   */
  @Test
  void covariancesOfWholeBatches() throws IOException {
    Path model = Files.writeString(dir.resolve("conv.json"), CONV);
    Path x1 = images("x1.npy", 5, 1);
    Path x2 = images("x2.npy", 4, 2);
    Path batch = dir.resolve("batch");
    NtkCommandTest.Result r = NtkCommandTest.ntk("kernel", "--model", model, "--x1", x1, "--x2", x2,
        "--diagonal-spatial", "true", "--diagonal-batch", "false", "--get", "cov1,cov2", "--out", batch);
    assertEquals(0, r.status(), r.err());
    assertArrayEquals(new long[] {5, 5, 3, 3}, Npy.readHeader(batch.resolve("cov1.npy")).shape());
    assertArrayEquals(new long[] {4, 4, 3, 3}, Npy.readHeader(batch.resolve("cov2.npy")).shape());
    Path perInput = dir.resolve("per-input");
    r = NtkCommandTest.ntk("kernel", "--model", model, "--x1", x1, "--x2", x2, "--diagonal-spatial", "true",
        "--get", "cov1,cov2", "--out", perInput);
    assertEquals(0, r.status(), r.err());
    try (NDManager m = Tensors.newManager()) {
      var fn = ModelSpec.parse(CONV).kernelFn().withBackend(Backend.CPU).keepSpatial(Spatial.DIAGONAL);
      assertClose(fn.apply(array(m, x1)).nngp(), batch.resolve("cov1.npy"));
      assertClose(fn.apply(array(m, x2)).nngp(), batch.resolve("cov2.npy"));
    }
    for (String c : List.of("cov1", "cov2")) {
      double[] whole = Npy.read(batch.resolve(c + ".npy")).data();
      double[] each = Npy.read(perInput.resolve(c + ".npy")).data();
      int n = c.equals("cov1") ? 5 : 4;
      for (int i = 0; i < n; i++) {
        for (int p = 0; p < 9; p++) {
          assertEquals(each[i * 9 + p], whole[(i * n + i) * 9 + p], 1e-12 * Math.abs(each[i * 9 + p]), c);
        }
      }
    }
  }

  /** Covariances alone, of a fully connected model: {@code (N1)}, the diagonal of the kernel of x1 with itself. */
  @Test
  void covarianceAloneIsTheDiagonalOfTheKernelOfX1WithItself() throws IOException {
    Path model = Files.writeString(dir.resolve("fc.json"), """
        {"serial": [{"Dense": {"out_dim": 8, "W_std": 1.5, "b_std": 0.1}}, {"Erf": {}}, {"Dense": {"out_dim": 1}}]}""");
    Path x = images("x.npy", 6, 3);
    NtkCommandTest.Result cov = NtkCommandTest.ntk("kernel", "--model", model, "--x1", x, "--get", "cov1",
        "--out", dir.resolve("cov"));
    assertEquals(0, cov.status(), cov.err());
    assertFalse(Files.exists(dir.resolve("cov/nngp.npy")), "only what --get names");
    NtkCommandTest.Result kernel = NtkCommandTest.ntk("kernel", "--model", model, "--x1", x, "--get", "nngp",
        "--out", dir.resolve("kernel"));
    assertEquals(0, kernel.status(), kernel.err());
    double[] cov1 = Npy.read(dir.resolve("cov/cov1.npy")).data();
    double[] nngp = Npy.read(dir.resolve("kernel/nngp.npy")).data();
    assertArrayEquals(new long[] {6}, Npy.readHeader(dir.resolve("cov/cov1.npy")).shape());
    for (int i = 0; i < 6; i++) {
      assertEquals(nngp[i * 6 + i], cov1[i], 1e-12 * Math.abs(cov1[i]), "cov1[" + i + "]");
    }
  }

  @Test
  void refusals() throws IOException {
    Path conv = Files.writeString(dir.resolve("conv.json"), CONV);
    Path readout = Files.writeString(dir.resolve("readout.json"), """
        {"serial": [{"Conv": {"out_chan": 4, "filter_shape": [2, 2], "padding": "SAME"}}, {"Relu": {}},
                    {"Flatten": {}}, {"Dense": {"out_dim": 1}}]}""");
    Path x = images("x.npy", 3, 4);
    Path out = dir.resolve("out");
    Object[][] cases = {
        {"--model", conv, "--diagonal-spatial", "true", "--runner", "DirectRunner", "--out", out},
        {"--model", conv, "--diagonal-spatial", "false", "--tile", 2, "--out", out},
        {"--model", conv, "--get", "cov1", "--runner", "DirectRunner", "--out", out},
        {"--model", conv, "--diagonal-spatial", "maybe", "--out", out},
        {"--model", conv, "--get", "nngp,cov2", "--out", out},
        {"--model", conv, "--get", "nngp,covariance", "--out", out},
        {"--model", readout, "--diagonal-spatial", "false", "--out", out},
        {"--model", conv, "--diagonal-spatial", "false", "--max-tile-bytes", 1000, "--out", out},
        {"--model", conv, "--diagonal-batch", "false", "--out", out},
        {"--model", conv, "--diagonal-batch", "no", "--get", "cov1", "--out", out}};
    String[] messages = {
        "--diagonal-spatial is computed in-process only", "--diagonal-spatial is computed in-process only",
        "--get cov1 is computed in-process only", "--diagonal-spatial must be true or false, got maybe",
        "--get cov2 needs --x2", "--get: unknown output \"covariance\"",
        "serial[2].Flatten: the kernel per pixel pair (diagonal_spatial=false) was asked for, but this layer",
        "more than --max-tile-bytes 1000", "--diagonal-batch false shapes only cov1 and cov2",
        "--diagonal-batch must be true or false, got no"};
    for (int c = 0; c < cases.length; c++) {
      Object[] args = new Object[cases[c].length + 5];
      args[0] = "kernel";
      args[1] = "--x1";
      args[2] = x;
      System.arraycopy(cases[c], 0, args, 3, cases[c].length);
      args[args.length - 2] = "--dtype";
      args[args.length - 1] = "float64";
      NtkCommandTest.Result r = NtkCommandTest.ntk(args);
      assertEquals(2, r.status(), messages[c] + ": " + r.err());
      assertTrue(r.err().contains(messages[c]), r.err());
      assertEquals(1, r.err().strip().lines().count(), "one line: " + r.err());
      assertFalse(Files.exists(out), "no output for a refused run");
    }
  }

  /**
   * {@code ntk kernel --tile 3} of 7 inputs with themselves (tiles off the diagonal and a ragged last
   * one) equals the in-process run to 1e-12 on the {@code cpu} backend: whole, 9 tile files, for a
   * plan that is not symmetric in its inputs (neural-tangents' quadrature, inputs of different
   * variances), the 6 on and above the diagonal for a symmetric one.
   */
  @Test
  void tilesOfX1WithItselfAreMirroredOnlyForASymmetricPlan() throws IOException {
    String fc = """
        {"serial": [{"Dense": {"out_dim": 8, "W_std": 1.2, "b_std": 0.1}}, %s,
                    {"Dense": {"out_dim": 8, "W_std": 1.1}}, {"Relu": {}}, {"Dense": {"out_dim": 1}}]}""";
    java.util.Random r = new java.util.Random(7);
    double[] v = new double[7 * 5];
    for (int i = 0; i < v.length; i++) {
      v[i] = r.nextGaussian() * (1 + 0.3 * (i / 5));
    }
    Path x1 = dir.resolve("x1.npy");
    Npy.write(x1, new NpyArray(new long[] {7, 5}, NpyDType.FLOAT64, v));
    for (String[] m : new String[][] {
        {"numerical", fc.formatted("{\"ElementwiseNumerical\": {\"fn\": \"tanh\", \"deg\": 5}}"), "9"},
        {"closed", fc.formatted("{\"Erf\": {}}"), "6"}}) {
      Path model = Files.writeString(dir.resolve(m[0] + ".json"), m[1]);
      Path whole = dir.resolve(m[0] + "-in-process");
      Path tiles = dir.resolve(m[0] + "-tiles");
      for (Path out : List.of(whole, tiles)) {
        List<Object> args = new java.util.ArrayList<>(List.of("kernel", "--model", model, "--x1", x1,
            "--backend", "cpu", "--out", out));
        if (out == tiles) {
          args.addAll(List.of("--tile", 3));
        }
        NtkCommandTest.Result result = NtkCommandTest.ntk(args.toArray());
        assertEquals(0, result.status(), m[0] + ": " + result.err());
      }
      try (var files = Files.walk(tiles.resolve(Outputs.TILES))) {
        assertEquals(Long.parseLong(m[2]), files.filter(f -> f.toString().endsWith(".arrow")).count(), m[0]);
      }
      for (String k : List.of("nngp.npy", "ntk.npy")) {
        double[] want = Npy.read(whole.resolve(k)).data();
        double[] got = Npy.read(tiles.resolve(k)).data();
        double scale = 0;
        double asymmetry = 0;
        for (int i = 0; i < 7; i++) {
          for (int j = 0; j < 7; j++) {
            scale = Math.max(scale, Math.abs(want[i * 7 + j]));
            asymmetry = Math.max(asymmetry, Math.abs(want[i * 7 + j] - want[j * 7 + i]));
          }
        }
        assertEquals(m[0].equals("numerical"), asymmetry > 1e-5 * scale, m[0] + " " + k + " asymmetry " + asymmetry);
        for (int i = 0; i < want.length; i++) {
          assertEquals(want[i], got[i], 1e-12 * scale, m[0] + " " + k + "[" + i + "]");
        }
      }
    }
  }

  private void assertClose(NDArray expected, Path file) throws IOException {
    NpyArray got = Npy.read(file);
    assertArrayEquals(expected.getShape().getShape(), got.shape(), file.toString());
    double[] want = expected.toDoubleArray();
    for (int i = 0; i < want.length; i++) {
      assertEquals(want[i], got.data()[i], 1e-12 * Math.max(1, Math.abs(want[i])), file + "[" + i + "]");
    }
  }

  private static NDArray array(NDManager m, Path file) throws IOException {
    NpyArray a = Npy.read(file);
    return Tensors.create(m, a.data(), new Shape(a.shape()), DataType.FLOAT64);
  }

  /** {@code n} Gaussian images of 4 x 3 pixels and 2 channels. */
  private Path images(String name, int n, long seed) throws IOException {
    java.util.Random r = new java.util.Random(seed);
    double[] v = new double[n * 4 * 3 * 2];
    for (int i = 0; i < v.length; i++) {
      v[i] = r.nextGaussian();
    }
    Path file = dir.resolve(name);
    Npy.write(file, new NpyArray(new long[] {n, 4, 3, 2}, NpyDType.FLOAT64, v));
    return file;
  }
}
