package dev.ntk.pipelines;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Kernel;
import dev.ntk.kernels.ModelSpec;
import dev.ntk.kernels.Tensors;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ntk kernel --mask-constant}: the kernels of the Java API's {@code withMaskConstant}, the
 * same kernels whatever the padding and on a runner, and clear errors for a constant that is not a
 * number and a fully masked example.
 */
class MaskConstantCommandTest {
  private static final String MODEL = """
      {"serial": [{"Conv": {"out_chan": 8, "filter_shape": [3], "padding": "SAME", "W_std": 1.4, "b_std": 0.1}},
                  {"Relu": {}},
                  {"GlobalSelfAttention": {"n_chan_out": 8, "n_chan_key": 8, "n_chan_val": 4, "n_heads": 2}},
                  {"Relu": {}}, {"GlobalAvgPool": {}}, {"Dense": {"out_dim": 1, "W_std": 1.2, "b_std": 0.1}}]}""";
  private static final double PAD = -9;

  @TempDir Path dir;

  /** What a command printed and returned. */
  record Result(int status, String out, String err) {}

  private static Result ntk(Object... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    List<String> strings = new ArrayList<>();
    for (Object a : args) {
      strings.add(a.toString());
    }
    int status = Ntk.run(strings.toArray(String[]::new), new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8));
    return new Result(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  /** Sequences of {@code lengths} random positions of 2 channels, {@code lead} PAD positions first, PAD after. */
  private static double[] sequences(int[] lengths, int length, int lead, long seed) {
    java.util.Random r = new java.util.Random(seed);
    double[] v = new double[lengths.length * length * 2];
    java.util.Arrays.fill(v, PAD);
    for (int i = 0; i < lengths.length; i++) {
      for (int k = 0; k < lengths[i] * 2; k++) {
        v[(i * length + lead) * 2 + k] = r.nextGaussian();
      }
    }
    return v;
  }

  private Path npy(String name, double[] v, int n, int length) throws IOException {
    Path file = dir.resolve(name);
    Npy.write(file, new NpyArray(new long[] {n, length, 2}, NpyDType.FLOAT64, v));
    return file;
  }

  @Test
  void maskedKernelsAreTheApisAndIndependentOfPadding() throws IOException {
    Path model = Files.writeString(dir.resolve("model.json"), MODEL);
    int[] lengths1 = {3, 5, 1};
    int[] lengths2 = {2, 4};
    double[] v1 = sequences(lengths1, 5, 0, 1);
    double[] v2 = sequences(lengths2, 5, 0, 2);
    Path x1 = npy("x1.npy", v1, 3, 5);
    Path x2 = npy("x2.npy", v2, 2, 5);
    // the same sequences at other places in longer padded sequences
    Path y1 = npy("y1.npy", sequences(lengths1, 8, 2, 1), 3, 8);
    Path y2 = npy("y2.npy", sequences(lengths2, 8, 1, 2), 2, 8);
    Result a = ntk("kernel", "--model", model, "--x1", x1, "--x2", x2, "--mask-constant", PAD, "--out",
        dir.resolve("a"));
    assertEquals(0, a.status(), a.err());
    Result b = ntk("kernel", "--model", model, "--x1", y1, "--x2", y2, "--mask-constant", PAD, "--out",
        dir.resolve("b"));
    assertEquals(0, b.status(), b.err());
    try (NDManager m = Tensors.newManager()) {
      Kernel api = ModelSpec.parse(MODEL).kernelFn().withMaskConstant(PAD).apply(
          Tensors.create(m, v1, new Shape(3, 5, 2), DataType.FLOAT64),
          Tensors.create(m, v2, new Shape(2, 5, 2), DataType.FLOAT64));
      for (Get g : Get.values()) {
        double[] want = api.get(g).toDoubleArray();
        double[] got = Npy.read(dir.resolve("a").resolve(g.key() + ".npy")).data();
        double[] moved = Npy.read(dir.resolve("b").resolve(g.key() + ".npy")).data();
        for (int i = 0; i < want.length; i++) {
          assertEquals(want[i], got[i], 1e-12 * Math.abs(want[i]) + 1e-14, g + " entry " + i);
          assertEquals(want[i], moved[i], 1e-12 * Math.abs(want[i]) + 1e-14, g + " padded otherwise, entry " + i);
        }
      }
    }
    // the pipeline (tiles of 2 rows, each masking its own rows) writes the in-process kernels
    Result beam = ntk("kernel", "--model", model, "--x1", x1, "--x2", x2, "--mask-constant", PAD, "--runner",
        "DirectRunner", "--tile", 2, "--out", dir.resolve("d"));
    assertEquals(0, beam.status(), beam.err());
    for (Get g : Get.values()) {
      double[] want = Npy.read(dir.resolve("a").resolve(g.key() + ".npy")).data();
      double[] got = Npy.read(dir.resolve("d").resolve(g.key() + ".npy")).data();
      for (int i = 0; i < want.length; i++) {
        assertEquals(want[i], got[i], 1e-10 * Math.abs(want[i]) + 1e-14, g + " on the runner, entry " + i);
      }
    }
    Result unmasked = ntk("kernel", "--model", model, "--x1", x1, "--x2", x2, "--out", dir.resolve("c"));
    assertEquals(0, unmasked.status(), unmasked.err());
    assertFalse(java.util.Arrays.equals(Npy.read(dir.resolve("a").resolve("nngp.npy")).data(),
        Npy.read(dir.resolve("c").resolve("nngp.npy")).data()), "the mask changes the kernel");
  }

  /** {@link KernelOptions#getMaskConstant}: the plain Beam main class writes the command line's masked kernels. */
  @Test
  void theMainClassTakesTheMaskConstant() throws IOException {
    Path model = Files.writeString(dir.resolve("model.json"), MODEL);
    Path x1 = npy("x1.npy", sequences(new int[] {3, 5, 1, 2}, 5, 0, 5), 4, 5);
    KernelPipeline.main(new String[] {"--model=" + model, "--x1=" + x1, "--out=" + dir.resolve("main"),
        "--tileRows=2", "--maskConstant=" + PAD, "--runner=DirectRunner", "--targetParallelism=1"});
    Result cli = ntk("kernel", "--model", model, "--x1", x1, "--mask-constant", PAD, "--tile", 2, "--runner",
        "DirectRunner", "--out", dir.resolve("cli"));
    assertEquals(0, cli.status(), cli.err());
    for (Get g : Get.values()) {
      org.junit.jupiter.api.Assertions.assertArrayEquals(Npy.read(dir.resolve("cli").resolve(g.key() + ".npy")).data(),
          Npy.read(dir.resolve("main").resolve(g.key() + ".npy")).data(), 0.0, g.key());
    }
    // a fully masked example fails its tile, named by its file and its index there (3, not 1 in the tile)
    Path bad = npy("bad.npy", sequences(new int[] {3, 5, 1, 0}, 5, 0, 6), 4, 5);
    Exception e = org.junit.jupiter.api.Assertions.assertThrows(Exception.class, () -> KernelPipeline.main(
        new String[] {"--model=" + model, "--x1=" + bad, "--out=" + dir.resolve("bad"), "--tileRows=2",
            "--maskConstant=" + PAD, "--runner=DirectRunner", "--targetParallelism=1"}));
    StringBuilder messages = new StringBuilder();
    for (Throwable t = e; t != null; t = t.getCause()) {
      messages.append(t.getMessage()).append(" | ");
    }
    assertTrue(messages.toString().contains(bad + ", example 3: every entry equals the mask constant -9.0"),
        messages.toString());
  }

  @Test
  void badMasksAreUsageErrors() throws IOException {
    Path model = Files.writeString(dir.resolve("model.json"), MODEL);
    Path x1 = npy("x1.npy", sequences(new int[] {3, 0, 2}, 4, 0, 3), 3, 4);
    Path ok = npy("ok.npy", sequences(new int[] {3, 1}, 4, 0, 4), 2, 4);
    Path out = dir.resolve("out");
    Result empty = ntk("kernel", "--model", model, "--x1", ok, "--x2", x1, "--mask-constant", PAD, "--out", out);
    assertEquals(2, empty.status(), empty.err());
    assertTrue(empty.err().contains("--x2 " + x1 + ", example 1: every entry equals the mask constant -9.0"),
        empty.err());
    Result nan = ntk("kernel", "--model", model, "--x1", ok, "--mask-constant", "NaN", "--out", out);
    assertEquals(2, nan.status(), nan.err());
    assertTrue(nan.err().contains("--mask-constant must be a finite number, got NaN"), nan.err());
    Result runner = ntk("kernel", "--model", model, "--x1", x1, "--mask-constant", PAD, "--runner", "DirectRunner",
        "--out", out);
    assertEquals(2, runner.status(), runner.err());
    assertTrue(runner.err().contains("--x1 " + x1 + ", example 1: every entry equals"), runner.err());
    Result spatial = ntk("kernel", "--model", model, "--x1", ok, "--mask-constant", PAD, "--diagonal-spatial", "true",
        "--out", out);
    assertEquals(2, spatial.status(), spatial.err());
    assertTrue(spatial.err().contains("--mask-constant does not take --diagonal-spatial"), spatial.err());
    for (Result r : List.of(empty, nan, runner, spatial)) {
      assertFalse(r.err().contains("\tat "), "a stack trace: " + r.err());
    }
    assertFalse(Files.exists(out), "output left behind");
  }
}
