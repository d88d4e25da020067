package dev.ntk.pipelines;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ntk.io.AtomicFiles;
import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The command line: exit codes, messages and outputs, for good and bad inputs. */
class NtkCommandTest {
  private static final String MODEL = """
      {"serial": [{"Dense": {"out_dim": 16, "W_std": 1.5, "b_std": 0.1}}, {"Relu": {}},
                  {"Dense": {"out_dim": 1, "W_std": 1.5, "b_std": 0.1}}]}""";

  @TempDir Path dir;
  private Path model;
  private Path x;
  private Path y;
  private Path xTest;
  private Path out;

  /** What a command printed and returned. */
  record Result(int status, String out, String err) {}

  @BeforeEach
  void inputs() throws IOException {
    model = write("model.json", MODEL);
    x = npy("x.npy", 6, 3, 1);
    y = npy("y.npy", 6, 1, 2);
    xTest = npy("x_test.npy", 4, 3, 3);
    out = dir.resolve("out"); // does not exist: every failure must leave it so
  }

  @Test
  void kernelWritesBothKernelsAndTiles() throws IOException {
    Result r = ntk("kernel", "--model", model, "--x1", x, "--x2", xTest, "--tile", 4, "--out", out);
    assertEquals(0, r.status(), r.err());
    assertTrue(r.out().contains("nngp.npy (6, 4) float64"), r.out());
    assertTrue(r.out().contains("DirectRunner: 2 tiles computed, 0 reused"), r.out());
    assertEquals(List.of(6L, 4L), shape(out.resolve("ntk.npy")));
    assertTrue(Files.isDirectory(out.resolve("tiles")));
  }

  /**
   * {@code --verbose} on a pipeline: where the workers' time went in the tiles they computed (Beam
   * metrics), and a worker reads each block of input rows once, not once per tile.
   */
  @Test
  void kernelVerboseTellsWhereTheTilesTimeWent() throws IOException {
    Result r = ntk("kernel", "--model", model, "--x1", x, "--x2", xTest, "--tile", 2, "--runner", "DirectRunner",
        "--parallelism", 1, "--verbose", "--out", out);
    assertEquals(0, r.status(), r.err());
    java.util.regex.Matcher m = java.util.regex.Pattern.compile("ntk: 6 tiles computed in [0-9.]+ s of worker "
        + "time: input rows [0-9.]+ s \\((\\d+) blocks read from files\\), kernels [0-9.]+ s \\(the longest tile "
        + "[0-9.]+ s\\), check and write [0-9.]+ s").matcher(r.err());
    assertTrue(m.find(), r.err());
    // 3 blocks of x1 and 2 of x2 at least; without the blocks a worker keeps, 2 a tile.
    int read = Integer.parseInt(m.group(1));
    assertTrue(read >= 5 && read < 12, "blocks read: " + read);
    Result again = ntk("kernel", "--model", model, "--x1", x, "--x2", xTest, "--tile", 2, "--runner",
        "DirectRunner", "--verbose", "--out", out);
    assertEquals(0, again.status(), again.err());
    assertTrue(again.out().contains("0 tiles computed, 6 reused"), again.out());
    assertFalse(again.err().contains("of worker time"), "no tile computed, no times: " + again.err());
  }

  /** Without a runner, kernels that fit one tile are computed in-process: the pipeline's numbers, no tiles. */
  @Test
  void kernelInProcessEqualsThePipeline() throws IOException {
    for (String dtype : List.of("float64", "float32")) {
      Path local = dir.resolve("local-" + dtype);
      Path beam = dir.resolve("beam-" + dtype);
      for (Path x2 : java.util.Arrays.asList(null, xTest)) {
        List<Object> args = new java.util.ArrayList<>(List.of("kernel", "--model", model, "--x1", x, "--dtype", dtype));
        if (x2 != null) {
          args.addAll(List.of("--x2", x2));
        }
        Result a = ntk(concat(args.toArray(), "--out", local));
        assertEquals(0, a.status(), a.err());
        assertTrue(a.out().contains("in-process (the kernels fit one tile"), a.out());
        assertFalse(Files.exists(local.resolve("tiles")), "tiles of an in-process run");
        Result b = ntk(concat(args.toArray(), "--runner", "DirectRunner", "--out", beam));
        assertEquals(0, b.status(), b.err());
        assertTrue(b.out().contains("DirectRunner: 1 tiles computed"), b.out());
        for (String k : List.of("nngp.npy", "ntk.npy")) {
          assertEquals(Npy.readHeader(beam.resolve(k)).dtype(), Npy.readHeader(local.resolve(k)).dtype());
          double[] want = Npy.read(beam.resolve(k)).data();
          double[] got = Npy.read(local.resolve(k)).data();
          assertEquals(want.length, got.length);
          double tol = dtype.equals("float64") ? 1e-12 : 1e-6;
          for (int i = 0; i < want.length; i++) {
            assertEquals(want[i], got[i], tol * Math.abs(want[i]), dtype + " " + k + "[" + i + "]");
          }
        }
      }
    }
  }

  @Test
  void kernelRerunReusesTheTilesOnDisk() throws IOException {
    Result first = ntk("kernel", "--model", model, "--x1", x, "--tile", 4, "--out", out);
    assertEquals(0, first.status(), first.err());
    assertTrue(first.out().contains("3 tiles computed, 0 reused"), first.out());
    byte[] ntk = Files.readAllBytes(out.resolve("ntk.npy"));
    Result again = ntk("kernel", "--model", model, "--x1", x, "--tile", 4, "--out", out);
    assertEquals(0, again.status(), again.err());
    assertTrue(again.out().contains("0 tiles computed, 3 reused"), again.out());
    assertArrayEquals(ntk, Files.readAllBytes(out.resolve("ntk.npy")), "the kernel of the rerun");
  }

  @Test
  void kernelWritesOnlyTheSelectedKernelInFloat32() throws IOException {
    Result r = ntk("kernel", "--model", model, "--x1", x, "--get", "ntk", "--dtype", "float32", "--out", out);
    assertEquals(0, r.status(), r.err());
    assertEquals(NpyDType.FLOAT32, Npy.readHeader(out.resolve("ntk.npy")).dtype());
    assertFalse(Files.exists(out.resolve("nngp.npy")));
  }

  /**
   * {@code GlobalSelfAttention} from a model file: both backends write the same kernels; a mechanism
   * without a closed form under 1 / sqrt scaling is a user error naming the layer.
   */
  @Test
  void attentionThroughTheCommandLine() throws IOException {
    Path images = dir.resolve("seq.npy");
    java.util.Random r = new java.util.Random(5);
    double[] v = new double[5 * 3 * 2];
    for (int i = 0; i < v.length; i++) {
      v[i] = r.nextGaussian();
    }
    Npy.write(images, new NpyArray(new long[] {5, 3, 2}, NpyDType.FLOAT64, v));
    String attention = "{\"GlobalSelfAttention\": {\"n_chan_out\": 8, \"n_chan_key\": 8, \"n_chan_val\": 8, "
        + "\"n_heads\": 2, \"b_std\": 0.1, \"pos_emb_type\": \"SUM\"%s}}";
    Path m = write("attention.json", "{\"serial\": [" + String.format(attention, "")
        + ", {\"Relu\": {}}, {\"GlobalAvgPool\": {}}, {\"Dense\": {\"out_dim\": 1}}]}");
    Path cpu = dir.resolve("attention-cpu");
    Path tf = dir.resolve("attention-tf");
    assertEquals(0, ntk("kernel", "--model", m, "--x1", images, "--backend", "cpu", "--out", cpu).status());
    Result b = ntk("kernel", "--model", m, "--x1", images, "--backend", "tensorflow", "--out", tf);
    assertEquals(0, b.status(), b.err());
    for (String k : List.of("nngp.npy", "ntk.npy")) {
      double[] want = Npy.read(cpu.resolve(k)).data();
      double[] got = Npy.read(tf.resolve(k)).data();
      for (int i = 0; i < want.length; i++) {
        assertEquals(want[i], got[i], 1e-12 * Math.abs(want[i]), k + "[" + i + "]");
      }
    }
    Path sqrt = write("sqrt.json", "{\"serial\": [" + String.format(attention, ", \"linear_scaling\": false")
        + ", {\"GlobalAvgPool\": {}}]}");
    bad(2, "serial[0].GlobalSelfAttention: attention_mechanism SOFTMAX has no known closed-form kernel", "kernel",
        "--model", sqrt, "--x1", images, "--out", out);
  }

  /**
   * The graph example ({@code examples/graph}: two {@code Aggregate} layers) with its patterns:
   * both backends write the kernels {@code KernelFn} gives for the same arrays; a missing, misshapen,
   * unasked or non-finite pattern, a graph model in {@code mc}, are user errors naming the option,
   * the file, the shape expected and the layer (on a runner: {@code GraphExampleTest}).
   */
  @Test
  void graphKernelsThroughTheCommandLine() throws IOException {
    Path example = Path.of("..", "examples", "graph");
    Path m = example.resolve("model.json");
    Path x1 = example.resolve("x_train.npy");
    Path a1 = example.resolve("a_train.npy");
    Path x2 = example.resolve("x_test.npy");
    Path a2 = example.resolve("a_test.npy");
    Path cpu = dir.resolve("graph-cpu");
    Path tf = dir.resolve("graph-tf");
    Result c = ntk("kernel", "--model", m, "--x1", x1, "--pattern1", a1, "--x2", x2, "--pattern2", a2, "--backend",
        "cpu", "--out", cpu);
    assertEquals(0, c.status(), c.err());
    assertTrue(c.out().contains("nngp.npy (20, 8) float64"), c.out());
    Result t = ntk("kernel", "--model", m, "--x1", x1, "--pattern1", a1, "--x2", x2, "--pattern2", a2, "--backend",
        "tensorflow", "--out", tf);
    assertEquals(0, t.status(), t.err());
    try (ai.djl.ndarray.NDManager nd = dev.ntk.kernels.Tensors.newManager()) {
      java.util.function.Function<Path, ai.djl.ndarray.NDArray> array = f -> {
        try {
          NpyArray a = Npy.read(f);
          return dev.ntk.kernels.Tensors.create(nd, a.data(), new ai.djl.ndarray.types.Shape(a.shape()),
              ai.djl.ndarray.types.DataType.FLOAT64);
        } catch (IOException e) {
          throw new java.io.UncheckedIOException(e);
        }
      };
      dev.ntk.kernels.Kernel k = dev.ntk.kernels.ModelSpec.read(m).kernelFn().withBackend(
          dev.ntk.kernels.engine.Backend.CPU).apply(array.apply(x1), array.apply(x2), array.apply(a1),
          array.apply(a2), java.util.EnumSet.allOf(dev.ntk.kernels.Get.class));
      for (String g : List.of("nngp", "ntk")) {
        double[] want = dev.ntk.kernels.Tensors.toDoubles(g.equals("nngp") ? k.nngp() : k.ntk());
        double[] got = Npy.read(cpu.resolve(g + ".npy")).data();
        double[] other = Npy.read(tf.resolve(g + ".npy")).data();
        for (int i = 0; i < want.length; i++) {
          assertEquals(want[i], got[i], 1e-12 * Math.abs(want[i]), g + "[" + i + "]");
          assertEquals(want[i], other[i], 1e-12 * Math.abs(want[i]), g + " tensorflow [" + i + "]");
        }
      }
    }
    Path f32 = dir.resolve("graph-f32");
    Result single = ntk("kernel", "--model", m, "--x1", x1, "--pattern1", a1, "--dtype", "float32", "--get", "nngp",
        "--out", f32);
    assertEquals(0, single.status(), single.err());
    double[] self = Npy.read(f32.resolve("nngp.npy")).data();
    assertEquals(400, self.length);
    for (int i = 0; i < 20; i++) {
      for (int j = 0; j < 20; j++) {
        assertEquals(self[i * 20 + j], self[j * 20 + i], 1e-6 * Math.abs(self[i * 20 + j]), "symmetric");
      }
    }
    bad(2, "serial[2].Aggregate reads a graph pattern per input: give --pattern1 A.npy of shape (20, 16, 16) "
        + "(batch, nodes..., nodes...), one per row of --x1", "kernel", "--model", m, "--x1", x1, "--out", out);
    bad(2, "--pattern2 " + a1 + ": serial[2].Aggregate reads a graph pattern of shape (8, 16, 16) (batch, nodes..., "
        + "nodes...), one per row of --x2, got (20, 16, 16)", "kernel", "--model", m, "--x1", x1, "--pattern1", a1,
        "--x2", x2, "--pattern2", a1, "--out", out);
    bad(2, "--pattern2 " + a2 + " is the pattern of --x2, which is not given", "kernel", "--model", m, "--x1", x1,
        "--pattern1", a1, "--pattern2", a2, "--out", out);
    bad(2, "--pattern1 " + a1 + ": the model " + model + " has no Aggregate layer", "kernel", "--model", model,
        "--x1", x, "--pattern1", a1, "--out", out);
    Path nan = dir.resolve("nan.npy");
    double[] v = Npy.read(a1).data();
    v[17] = Double.NaN;
    Npy.write(nan, new NpyArray(new long[] {20, 16, 16}, NpyDType.FLOAT64, v));
    bad(2, "--pattern1 " + nan + ": non-finite value NaN at flat index 17", "kernel", "--model", m, "--x1", x1,
        "--pattern1", nan, "--out", out);
    bad(2, "ntk mc does not take graph models (Aggregate in " + m + ")", "mc", "--model", m, "--x1", x1,
        "--pattern1", a1, "--samples", 2, "--width", 4, "--out", out);
    Path sparse = write("sparse.json", "{\"serial\": [{\"Dense\": {\"out_dim\": 4}}, {\"Aggregate\": "
        + "{\"implementation\": \"SPARSE\"}}, {\"GlobalAvgPool\": {}}]}");
    bad(2, "--pattern1 " + a1 + ": serial[1].Aggregate reads a graph pattern of shape (20, n_edges, 2) of (tail, "
        + "head) node indices (SPARSE)", "kernel", "--model", sparse, "--x1", x1, "--pattern1", a1, "--out", out);
  }

  /**
   * {@code ntk predict} of a graph model whose first layer is {@code Aggregate}: on raw inputs that
   * layer is the linear map {@code x -> A^T x} of each example, so the prediction must be the one
   * of the model without it on inputs mapped beforehand (which catches a pattern given to the wrong
   * inputs); a missing pattern and a runner are user errors naming the option and the layer.
   */
  @Test
  void graphPredictionThroughTheCommandLine() throws IOException {
    Path example = Path.of("..", "examples", "graph");
    String rest = "{\"Dense\": {\"out_dim\": 8, \"W_std\": 1.4, \"b_std\": 0.1}}, {\"Relu\": {}}, "
        + "{\"GlobalAvgPool\": {}}, {\"Dense\": {\"out_dim\": 1}}]}";
    Path graph = write("graph.json", "{\"serial\": [{\"Aggregate\": {}}, " + rest);
    Path plain = write("plain.json", "{\"serial\": [" + rest);
    Path[] mapped = new Path[2];
    String[] splits = {"train", "test"};
    for (int s = 0; s < 2; s++) {
      NpyArray xs = Npy.read(example.resolve("x_" + splits[s] + ".npy"));
      double[] a = Npy.read(example.resolve("a_" + splits[s] + ".npy")).data();
      double[] v = xs.data();
      int n = (int) xs.shape()[0];
      double[] w = new double[v.length];
      for (int e = 0; e < n; e++) {
        for (int j = 0; j < 16; j++) {
          for (int i = 0; i < 16; i++) {
            for (int c = 0; c < 4; c++) {
              w[(e * 16 + j) * 4 + c] += a[(e * 16 + i) * 16 + j] * v[(e * 16 + i) * 4 + c];
            }
          }
        }
      }
      mapped[s] = dir.resolve("mapped_" + splits[s] + ".npy");
      Npy.write(mapped[s], new NpyArray(xs.shape(), NpyDType.FLOAT64, w));
    }
    Path targets = npy("targets.npy", 20, 1, 7);
    Path g = dir.resolve("graph-predict");
    Path p = dir.resolve("plain-predict");
    Result r = ntk("predict", "--model", graph, "--x-train", example.resolve("x_train.npy"), "--pattern-train",
        example.resolve("a_train.npy"), "--y-train", targets, "--x-test", example.resolve("x_test.npy"),
        "--pattern-test", example.resolve("a_test.npy"), "--get", "nngp", "--compute-cov", "--out", g);
    assertEquals(0, r.status(), r.err());
    Result q = ntk("predict", "--model", plain, "--x-train", mapped[0], "--y-train", targets, "--x-test", mapped[1],
        "--get", "nngp", "--compute-cov", "--out", p);
    assertEquals(0, q.status(), q.err());
    for (String f : List.of("mean.npy", "cov.npy")) {
      double[] want = Npy.read(p.resolve(f)).data();
      double[] got = Npy.read(g.resolve(f)).data();
      assertEquals(want.length, got.length);
      for (int i = 0; i < want.length; i++) {
        assertEquals(want[i], got[i], 1e-9 * (1 + Math.abs(want[i])), f + "[" + i + "]");
      }
    }
    bad(2, "serial[0].Aggregate reads a graph pattern per input: give --pattern-test A.npy of shape (8, 16, 16)",
        "predict", "--model", graph, "--x-train", example.resolve("x_train.npy"), "--pattern-train",
        example.resolve("a_train.npy"), "--y-train", targets, "--x-test", example.resolve("x_test.npy"), "--out",
        out);
    bad(2, "serial[0].Aggregate: a graph model is predicted in-process only, not with --runner", "predict",
        "--model", graph, "--x-train", example.resolve("x_train.npy"), "--pattern-train",
        example.resolve("a_train.npy"), "--y-train", targets, "--x-test", example.resolve("x_test.npy"),
        "--pattern-test", example.resolve("a_test.npy"), "--runner", "DirectRunner", "--out", out);
  }

  /**
   * ConvLocal and DotGeneral from a model file: both backends write the same kernels, equal to the
   * in-process kernel function's; a DotGeneral over the channel axis stops with status 2 naming it.
   */
  @Test
  void locallyConnectedAndDotGeneralThroughTheCommandLine() throws IOException {
    Path images = dir.resolve("local.npy");
    java.util.Random r = new java.util.Random(7);
    double[] v = new double[4 * 4 * 3 * 2];
    for (int i = 0; i < v.length; i++) {
      v[i] = r.nextGaussian();
    }
    Npy.write(images, new NpyArray(new long[] {4, 4, 3, 2}, NpyDType.FLOAT64, v));
    String json = "{\"serial\": [{\"ConvLocal\": {\"out_chan\": 8, \"filter_shape\": [2, 2], \"padding\": \"SAME\", "
        + "\"b_std\": 0.1}}, {\"Relu\": {}}, {\"ConvLocal\": {\"out_chan\": 8, \"filter_shape\": [1, 2], "
        + "\"padding\": \"CIRCULAR\"}}, {\"DotGeneral\": {\"rhs\": [1, -1, 0.5, 2], \"dimension_numbers\": "
        + "[[[1], [0]], [[], []]]}}, {\"GlobalAvgPool\": {}}, {\"Dense\": {\"out_dim\": 1}}]}";
    Path m = write("local.json", json);
    Path cpu = dir.resolve("local-cpu");
    Path tf = dir.resolve("local-tf");
    assertEquals(0, ntk("kernel", "--model", m, "--x1", images, "--backend", "cpu", "--out", cpu).status());
    Result b = ntk("kernel", "--model", m, "--x1", images, "--backend", "tensorflow", "--out", tf);
    assertEquals(0, b.status(), b.err());
    try (ai.djl.ndarray.NDManager manager = dev.ntk.kernels.Tensors.newManager()) {
      ai.djl.ndarray.NDArray x = dev.ntk.kernels.Tensors.create(manager, v, new ai.djl.ndarray.types.Shape(4, 4, 3, 2),
          ai.djl.ndarray.types.DataType.FLOAT64);
      dev.ntk.kernels.Kernel k = dev.ntk.kernels.ModelSpec.parse(json).kernelFn().apply(x);
      for (String name : List.of("nngp", "ntk")) {
        double[] want = (name.equals("nngp") ? k.nngp() : k.ntk()).toDoubleArray();
        double[] got = Npy.read(cpu.resolve(name + ".npy")).data();
        double[] other = Npy.read(tf.resolve(name + ".npy")).data();
        for (int i = 0; i < want.length; i++) {
          assertEquals(want[i], got[i], 1e-12 * Math.abs(want[i]), name + "[" + i + "]");
          assertEquals(want[i], other[i], 1e-12 * Math.abs(want[i]), name + "[" + i + "] tensorflow");
        }
      }
    }
    Path channel = write("channel.json", "{\"serial\": [{\"Conv\": {\"filter_shape\": [1, 1]}}, {\"DotGeneral\": "
        + "{\"rhs\": [1], \"dimension_numbers\": [[[3], [0]], [[], []]]}}]}");
    bad(2, "serial[1].DotGeneral: dimension_numbers [[[3], [0]], [[], []]] contracts the channel axis 3", "kernel",
        "--model", channel, "--x1", images, "--out", out);
  }

  @Test
  void bothBackendsWriteTheSameKernels() throws IOException {
    Path cpu = dir.resolve("cpu");
    Path tf = dir.resolve("tf");
    Result a = ntk("kernel", "--model", model, "--x1", x, "--x2", xTest, "--backend", "cpu", "--out", cpu);
    assertEquals(0, a.status(), a.err());
    Result b = ntk("kernel", "--model", model, "--x1", x, "--x2", xTest, "--backend", "tensorflow", "--out", tf);
    assertEquals(0, b.status(), b.err());
    for (String k : List.of("nngp.npy", "ntk.npy")) {
      double[] want = Npy.read(cpu.resolve(k)).data();
      double[] got = Npy.read(tf.resolve(k)).data();
      for (int i = 0; i < want.length; i++) {
        assertEquals(want[i], got[i], 1e-12 * Math.abs(want[i]), k + "[" + i + "]");
      }
    }
    bad(2, "unknown backend \"gpu\": expected auto, cpu, tensorflow or cuda",
        "kernel", "--model", model, "--x1", x, "--backend", "gpu", "--out", out);
    if (!dev.ntk.kernels.cuda.CudaDevice.visible()) {
      // Without a CUDA driver (CI): asking for the cuda engine is a user error, in one line.
      bad(2, "--backend cuda: no CUDA driver on this machine (libcuda.so.1 could not be loaded)",
          "kernel", "--model", model, "--x1", x, "--backend", "cuda", "--out", out);
      assertEquals(1, ntk("kernel", "--model", model, "--x1", x, "--backend", "cuda", "--out", out).err().strip()
          .lines().count());
    } else {
      Path gpu = dir.resolve("cuda");
      Result c = ntk("kernel", "--model", model, "--x1", x, "--x2", xTest, "--backend", "cuda", "--out", gpu);
      assertEquals(0, c.status(), c.err());
      for (String k : List.of("nngp.npy", "ntk.npy")) {
        double[] want = Npy.read(cpu.resolve(k)).data();
        double[] got = Npy.read(gpu.resolve(k)).data();
        for (int i = 0; i < want.length; i++) {
          assertEquals(want[i], got[i], 1e-12 * Math.abs(want[i]), "cuda " + k + "[" + i + "]");
        }
      }
    }
  }

  /**
   * The paper's convolutional networks from their files in {@code examples/}, through the command
   * line on the DirectRunner and on Flink in tiles of one row, against the in-process kernel of the
   * same file.
   */
  @ParameterizedTest(name = "{0}")
  @CsvSource({"cnn21/flatten.json,32", "cnn21/gap.json,32", "myrtle5/model.json,32", "wideresnet/model.json,8",
      "wideresnet/model.json,32"})
  void convolutionalExamplesThroughTheCommandLine(String file, int size) throws IOException {
    Path example = Path.of("..", "examples").resolve(file);
    Path images = images("images.npy", 2, size, 5);
    for (String runner : List.of("DirectRunner", "FlinkRunner")) {
      Path o = dir.resolve(runner);
      Result r = ntk("kernel", "--model", example, "--x1", images, "--tile", 1, "--dtype", "float32",
          "--runner", runner, "--parallelism", 2, "--out", o);
      assertEquals(0, r.status(), r.err());
      assertTrue(r.out().contains(runner + ": 3 tiles computed"), r.out());
      try (ai.djl.ndarray.NDManager m = dev.ntk.kernels.Tensors.newManager()) {
        NpyArray x1 = Npy.read(images);
        dev.ntk.kernels.Kernel k = dev.ntk.kernels.ModelSpec.read(example).kernelFn().apply(
            dev.ntk.kernels.Tensors.create(m, x1.data(), new ai.djl.ndarray.types.Shape(x1.shape()),
                ai.djl.ndarray.types.DataType.FLOAT32));
        for (String g : List.of("nngp", "ntk")) {
          double[] want = dev.ntk.kernels.Tensors.toDoubles(g.equals("nngp") ? k.nngp() : k.ntk());
          double[] got = Npy.read(o.resolve(g + ".npy")).data();
          for (int i = 0; i < want.length; i++) {
            assertEquals(want[i], got[i], 1e-5 * Math.abs(want[i]), file + " " + runner + " " + g + "[" + i + "]");
          }
        }
      }
    }
  }

  /** A convolutional model on Flink (embedded, parallelism 2) against golden kernels of an independent implementation. */
  @Test
  void convolutionalKernelOnFlinkMatchesTheGoldenKernels() throws IOException {
    Path golden = Path.of("..", "transforms", "src", "test", "resources", "golden", "cnn2d_circular_avgpool_gap");
    Result r = ntk("kernel", "--model", golden.resolve("model.json"), "--x1", golden.resolve("x1.npy"), "--x2",
        golden.resolve("x2.npy"), "--tile", 2, "--runner", "FlinkRunner", "--parallelism", 2, "--out", out);
    assertEquals(0, r.status(), r.err());
    for (String g : List.of("nngp", "ntk")) {
      double[] want = Npy.read(golden.resolve(g + ".npy")).data();
      double[] got = Npy.read(out.resolve(g + ".npy")).data();
      for (int i = 0; i < want.length; i++) {
        assertEquals(want[i], got[i], 1e-12 * Math.abs(want[i]), g + "[" + i + "]");
      }
    }
  }

  private Path images(String name, int n, int size, long seed) throws IOException {
    java.util.Random r = new java.util.Random(seed);
    double[] v = new double[n * size * size * 3];
    for (int i = 0; i < v.length; i++) {
      v[i] = r.nextGaussian();
    }
    Path file = dir.resolve(name);
    Npy.write(file, new NpyArray(new long[] {n, size, size, 3}, NpyDType.FLOAT32, v));
    return file;
  }

  @Test
  void predictPrintsMeanAndVariance() throws IOException {
    Result r = ntk("predict", "--model", model, "--x-train", x, "--y-train", y, "--x-test", xTest,
        "--compute-cov", "--out", out);
    assertEquals(0, r.status(), r.err());
    assertTrue(r.out().contains("mean  variance"), r.out());
    assertEquals(List.of(4L, 1L), shape(out.resolve("mean.npy")));
    assertEquals(List.of(4L, 4L), shape(out.resolve("cov.npy")));
  }

  @Test
  void help() {
    Result r = ntk("predict", "--help");
    assertEquals(0, r.status());
    assertTrue(r.out().contains("--x-train"), r.out());
  }

  @Test
  void malformedJson() throws IOException {
    bad(2, "malformed JSON", "kernel", "--model", write("m.json", "{\"serial\": ["), "--x1", x, "--out", out);
  }

  @Test
  void unknownLayer() throws IOException {
    bad(2, "serial[1]", "kernel", "--model",
        write("m.json", "{\"serial\": [{\"Dense\": {}}, {\"Softmaxx\": {}}]}"), "--x1", x, "--out", out);
  }

  @Test
  void unknownArgument() throws IOException {
    bad(2, "serial[1].Erf: unknown argument \"bb\"", "kernel", "--model",
        write("m.json", "{\"serial\": [{\"Dense\": {}}, {\"Erf\": {\"bb\": 1}}]}"), "--x1", x, "--out", out);
  }

  @Test
  void wrongArgumentType() throws IOException {
    bad(2, "out_dim", "kernel", "--model", write("m.json", "{\"serial\": [{\"Dense\": {\"out_dim\": \"wide\"}}]}"),
        "--x1", x, "--out", out);
  }

  @Test
  void nonlinearityAfterNonlinearity() throws IOException {
    bad(2, "serial[2].Erf", "kernel", "--model",
        write("m.json", "{\"serial\": [{\"Dense\": {}}, {\"Relu\": {}}, {\"Erf\": {}}]}"), "--x1", x, "--out", out);
  }

  @Test
  void truncatedNpy() throws IOException {
    byte[] bytes = Files.readAllBytes(x);
    Path truncated = dir.resolve("truncated.npy");
    Files.write(truncated, Arrays.copyOf(bytes, bytes.length - 20));
    bad(2, "truncated.npy", "kernel", "--model", model, "--x1", truncated, "--out", out);
  }

  @Test
  void wrongDtype() throws IOException {
    Path ints = dir.resolve("ints.npy");
    String header = "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }";
    header = header + " ".repeat(128 - 10 - header.length() - 1) + "\n";
    byte[] h = header.getBytes(StandardCharsets.US_ASCII);
    byte[] file = new byte[10 + h.length + 24];
    byte[] magic = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (byte) h.length, 0};
    System.arraycopy(magic, 0, file, 0, 10);
    System.arraycopy(h, 0, file, 10, h.length);
    Files.write(ints, file);
    bad(2, "<i4", "kernel", "--model", model, "--x1", ints, "--out", out);
  }

  @Test
  void shapeMismatchBetweenInputs() throws IOException {
    bad(2, "same per-example shape", "kernel", "--model", model, "--x1", x, "--x2", npy("x2.npy", 4, 2, 5),
        "--out", out);
  }

  @Test
  void shapeMismatchBetweenModelAndData() throws IOException {
    Path concat = write("m.json", """
        {"serial": [{"FanOut": {"num": 2}}, {"parallel": [{"Dense": {}}, {"Flatten": {}}]},
                    {"FanInSum": {}}]}""");
    Result r = ntk("kernel", "--model", concat, "--x1", x, "--out", out);
    assertEquals(2, r.status(), r.err());
    assertTrue(r.err().contains("m.json") && r.err().contains("FanInSum"), r.err());
    assertNothingWritten(r);
  }

  @Test
  void oneDimensionalInputs() throws IOException {
    Path flat = dir.resolve("flat.npy");
    Npy.write(flat, new NpyArray(new long[] {5}, NpyDType.FLOAT64, new double[5]));
    bad(2, "at least 2 axes", "kernel", "--model", model, "--x1", flat, "--out", out);
  }

  @Test
  void nanInInputs() throws IOException {
    NpyArray a = Npy.read(x);
    a.data()[7] = Double.NaN;
    Path nan = dir.resolve("nan.npy");
    Npy.write(nan, a);
    bad(2, "row 2", "kernel", "--model", model, "--x1", nan, "--out", out);
  }

  @Test
  void missingInputFile() {
    bad(2, "does not exist", "kernel", "--model", model, "--x1", dir.resolve("nope.npy"), "--out", out);
  }

  @Test
  void targetsWithTheWrongNumberOfRows() {
    bad(2, "one row per training input", "predict", "--model", model, "--x-train", x, "--y-train", xTest,
        "--x-test", xTest, "--out", out);
  }

  @Test
  void predictAtSeveralTimesWithNllAndLr() throws IOException {
    Result r = ntk("predict", "--model", model, "--x-train", x, "--y-train", y, "--x-test", xTest,
        "--t", "1,10,inf", "--learning-rate", 0.5, "--compute-cov", "--nll", "--out", out);
    assertEquals(0, r.status(), r.err());
    assertEquals(List.of(3L, 4L, 1L), shape(out.resolve("mean.npy")));
    assertEquals(List.of(3L, 4L, 4L), shape(out.resolve("cov.npy")));
    assertEquals(List.of(), shape(out.resolve("nll.npy")));
    assertTrue(r.out().contains("3 times"), r.out());
    Result inf = ntk("predict", "--model", model, "--x-train", x, "--y-train", y, "--x-test", xTest,
        "--compute-cov", "--out", dir.resolve("inf"));
    assertEquals(0, inf.status(), inf.err());
    double[] last = Arrays.copyOfRange(Npy.read(out.resolve("mean.npy")).data(), 8, 12);
    assertArrayEquals(Npy.read(dir.resolve("inf/mean.npy")).data(), last, 1e-9, "t=inf of the list is exact inference");
    Result lr = ntk("lr", "--model", model, "--x-train", x, "--y-train", y);
    assertEquals(0, lr.status(), lr.err());
    assertTrue(Double.parseDouble(lr.out().trim()) > 0, lr.out());
  }

  /** A job of one tile per kernel runs in-process unless a runner is named; both write the same. */
  @Test
  void smallJobsRunInProcessWithThePipelinesResults() throws IOException {
    Path f0 = npy("f0.npy", 6, 1, 8);
    Object[][] variants = {
      {"--t", "2,inf", "--compute-cov", "--nll"},
      {"--get", "nngp", "--compute-cov"},
      {"--t", "0.5,3", "--fx-train-0", f0},
      {"--t", "1,4", "--loss", "cross-entropy"},
    };
    for (Object[] variant : variants) {
      sameInProcessAndOnTheDirectRunner(x, y, xTest, variant, 1e-10);
    }
  }

  /**
   * A job larger than one tile of --tile rows (300 training points, tiles of 256) runs in-process
   * by default too, in every mode: its predictions equal the DirectRunner's (which computes the
   * kernels in 3 + 2 + 1 tiles) to 1e-10 of the largest entry in float64.
   */
  @Test
  void largerJobsRunInProcessInEveryModeWithThePipelinesResults() throws IOException {
    Path xs = npy("x300.npy", 300, 3, 11);
    Path ys = npy("y300.npy", 300, 2, 12);
    Path xt = npy("xt30.npy", 30, 3, 13);
    Path f0 = npy("f0-300.npy", 300, 2, 14);
    Path g0 = npy("g0-30.npy", 30, 2, 15);
    Object[][] variants = {
      {"--get", "nngp", "--compute-cov", "--nll"},
      {"--compute-cov"},
      {"--t", "2,inf", "--compute-cov", "--nll"},
      {"--get", "nngp", "--t", "0.5,inf", "--compute-cov"},
      {"--t", "0.5,3", "--fx-train-0", f0, "--fx-test-0", g0},
      {"--t", "1,4", "--loss", "cross-entropy"},
      {"--t", "1,4", "--momentum", "0.5"},
    };
    for (Object[] variant : variants) {
      sameInProcessAndOnTheDirectRunner(xs, ys, xt, variant, 1e-10);
    }
    // float32: the kernels and the factor are float32 on both paths, the solves float64; they differ
    // by the float32 rounding of differently summed kernel entries, amplified by the solve.
    sameInProcessAndOnTheDirectRunner(xs, ys, xt, new Object[] {"--dtype", "float32", "--compute-cov"}, 1e-3);
  }

  /**
   * A float32 prediction factors its train kernel in float32 in-process (InProcessPredict) and on
   * the DirectRunner (FactorFn) alike: the NNGP's mean, covariance and NLL agree, and so does the
   * NLL of the eigendecomposition's mode (factored on its own). The paths' float32 kernels differ
   * in rounding; the float32 factor of the NNGP at the default diag_reg (1e-4) amplifies that to
   * 3e-3 of the largest mean (under 1e-3 with a float64 factor), as NumPy + SciPy's float32 {@code
   * cho_factor} would.
   */
  @Test
  void float32PredictionsFactorInFloat32OnBothPaths() throws IOException {
    Path xs = npy("x300.npy", 300, 3, 11);
    Path ys = npy("y300.npy", 300, 2, 12);
    Path xt = npy("xt30.npy", 30, 3, 13);
    sameInProcessAndOnTheDirectRunner(xs, ys, xt,
        new Object[] {"--dtype", "float32", "--get", "nngp", "--compute-cov", "--nll"}, 1e-2);
    sameInProcessAndOnTheDirectRunner(xs, ys, xt, new Object[] {"--dtype", "float32", "--t", "2", "--nll"}, 1e-4);
  }

  /**
   * Runs {@code predict} with {@code variant} by default (it must run in-process, without tiles)
   * and on the DirectRunner; every output must be there in both or neither, and equal to {@code
   * tolerance} times the DirectRunner's largest entry.
   */
  private void sameInProcessAndOnTheDirectRunner(Path xTrain, Path yTrain, Path xTests, Object[] variant,
      double tolerance) throws IOException {
    Object[] common = concat(new Object[] {"predict", "--model", model, "--x-train", xTrain, "--y-train", yTrain,
        "--x-test", xTests}, variant);
    Path small = dir.resolve("small");
    Path beam = dir.resolve("beam");
    Result r = ntk(concat(common, "--out", small));
    assertEquals(0, r.status(), r.err());
    assertTrue(r.out().startsWith("in-process"), r.out());
    assertFalse(Files.exists(small.resolve("tiles")));
    Result p = ntk(concat(common, "--runner", "DirectRunner", "--out", beam));
    assertEquals(0, p.status(), p.err());
    assertTrue(p.out().startsWith("DirectRunner"), p.out());
    for (String file : new String[] {"mean.npy", "cov.npy", "nll.npy"}) {
      assertEquals(Files.exists(beam.resolve(file)), Files.exists(small.resolve(file)), file);
      if (Files.exists(beam.resolve(file))) {
        NpyArray a = Npy.read(small.resolve(file));
        NpyArray b = Npy.read(beam.resolve(file));
        assertArrayEquals(b.shape(), a.shape(), file);
        assertEquals(b.dtype(), a.dtype(), file);
        double largest = 0;
        for (double v : b.data()) {
          largest = Math.max(largest, Math.abs(v));
        }
        assertArrayEquals(b.data(), a.data(), tolerance * largest, file + " " + Arrays.toString(variant));
      }
    }
  }

  @Test
  void predictOneNetworkByOde() throws IOException {
    Path f0 = npy("f0.npy", 6, 1, 7);
    Result r = ntk("predict", "--model", model, "--x-train", x, "--y-train", y, "--x-test", xTest,
        "--t", "0,5", "--loss", "cross-entropy", "--fx-train-0", f0, "--out", out);
    assertEquals(0, r.status(), r.err());
    assertEquals(List.of(2L, 4L, 1L), shape(out.resolve("mean.npy")));
  }

  /** One-hot targets, 6 x 2. */
  private Path oneHot() throws IOException {
    Path file = dir.resolve("onehot.npy");
    Npy.write(file, new NpyArray(new long[] {6, 2}, NpyDType.FLOAT64, new double[] {1, 0, 0, 1, 0, 1, 1, 0, 1, 0, 0, 1}));
    return file;
  }

  /**
   * The ODE modes end: MSE with momentum 1e-12 (before: "internal error: MathIllegalArgumentException:
   * minimal step size", exit 1) and 1e-9 (before: for ever) in closed form; cross-entropy at t = 1e308
   * and with momentum 1e-8 (before: for ever).
   */
  @Test
  @org.junit.jupiter.api.Timeout(value = 60, unit = java.util.concurrent.TimeUnit.SECONDS)
  void predictOdeModesEnd() throws IOException {
    Path labels = oneHot();
    Object[][] cases = {
      {"--y-train", y, "--momentum", "1e-12", "--t", "10"},
      {"--y-train", y, "--momentum", "1e-9", "--t", "10"},
      {"--y-train", labels, "--loss", "cross-entropy", "--t", "1e308"},
      {"--y-train", labels, "--loss", "cross-entropy", "--momentum", "1e-8", "--t", "10"},
    };
    for (int i = 0; i < cases.length; i++) {
      Object[] c = cases[i];
      Path o = dir.resolve("ode" + i);
      Result r = ntk(concat(new Object[] {"predict", "--model", model, "--x-train", x, "--x-test", xTest, "--out", o}, c));
      assertEquals(0, r.status(), Arrays.toString(c) + ": " + r.err());
      for (double v : Npy.read(o.resolve("mean.npy")).data()) {
        assertTrue(Double.isFinite(v), Arrays.toString(c));
      }
    }
  }

  /** An integration beyond --max-steps: exit 2, one line with the time reached, the time asked and the option. */
  @Test
  void predictMaxStepsIsAOneLineRefusal() throws IOException {
    Result r = ntk("predict", "--model", model, "--x-train", x, "--y-train", oneHot(), "--x-test", xTest,
        "--loss", "cross-entropy", "--momentum", 0.01, "--t", 1000, "--max-steps", 100, "--out", out);
    assertEquals(2, r.status(), r.err());
    assertEquals(1, r.err().strip().lines().count(), r.err());
    assertTrue(r.err().matches("(?s)ntk: gradient descent by ODE \\(momentum 0.01\\) reached t = [0-9.e+-]+ of t = 1000 "
        + "within 100 solver steps: allow more \\(--max-steps\\).*"), r.err());
    assertNothingWritten(r);
    bad(2, "--max-steps must be positive", "predict", "--model", model, "--x-train", x, "--y-train", y,
        "--x-test", xTest, "--t", 1, "--loss", "cross-entropy", "--max-steps", 0, "--out", out);
  }

  @Test
  void predictBadDynamics() throws IOException {
    Object[] inputs = {"predict", "--model", model, "--x-train", x, "--y-train", y, "--x-test", xTest,
        "--out", out};
    bad(2, "--t must be non-negative", concat(inputs, "--t", "1,-2"));
    bad(2, "--t must be non-negative", concat(inputs, "--t", "NaN"));
    bad(2, "unknown loss \"hinge\"", concat(inputs, "--loss", "hinge"));
    bad(2, "needs finite times", concat(inputs, "--loss", "cross-entropy"));
    bad(2, "--fx-train-0", concat(inputs, "--t", "1", "--fx-train-0", xTest));
    bad(2, "expected shape (4, 1)", concat(inputs, "--t", "1", "--fx-test-0", y));
    bad(2, "--compute-cov", concat(inputs, "--t", "1", "--momentum", 0.5, "--compute-cov"));
    bad(2, "momentum", concat(inputs, "--t", "1", "--momentum", -1));
  }

  @Test
  void usageErrors() throws IOException {
    bad(2, "--bogus", "kernel", "--model", model, "--x1", x, "--out", out, "--bogus");
    bad(2, "--out", "kernel", "--model", model, "--x1", x);
    bad(2, "--tile", "kernel", "--model", model, "--x1", x, "--tile", 0, "--out", out);
    bad(2, "--tile", "kernel", "--model", model, "--x1", x, "--tile", "many", "--out", out);
    bad(2, "--dtype", "kernel", "--model", model, "--x1", x, "--dtype", "float16", "--out", out);
    bad(2, "--runner", "kernel", "--model", model, "--x1", x, "--runner", "Spark", "--out", out);
    bad(2, "--get", "kernel", "--model", model, "--x1", x, "--get", "nngp,gp", "--out", out);
    Path file = write("a-file", "");
    Result r = ntk("kernel", "--model", model, "--x1", x, "--out", file);
    assertEquals(2, r.status(), r.err());
    assertTrue(r.err().contains("not a directory"), r.err());
  }

  @Test
  void kernelReplacesItsOwnOldOutputsOnly() throws IOException {
    Files.createDirectories(out);
    Path notes = Files.writeString(out.resolve("notes.txt"), "mine");
    Path oldNngp = Files.writeString(out.resolve("nngp.npy"), "stale");
    Path mean = Files.writeString(out.resolve("mean.npy"), "from predict");
    Result r = ntk("kernel", "--model", model, "--x1", x, "--get", "ntk", "--out", out);
    assertEquals(0, r.status(), r.err());
    assertEquals(List.of(6L, 6L), shape(out.resolve("ntk.npy")));
    assertFalse(Files.exists(oldNngp), "a stale nngp.npy beside the new ntk.npy");
    assertTrue(Files.exists(notes) && Files.exists(mean), "files that are not kernel outputs are kept");
  }

  @Test
  void noCommand() {
    bad(2, "missing command");
  }

  @Test
  void missingOrDirectoryModel() {
    bad(2, "does not exist", "kernel", "--model", dir.resolve("nope.json"), "--x1", x, "--out", out);
    bad(2, "is a directory", "kernel", "--model", dir, "--x1", x, "--out", out);
  }

  @Test
  void predictOptionErrors() {
    Object[] inputs = {"predict", "--model", model, "--x-train", x, "--y-train", y, "--x-test", xTest,
        "--out", out};
    bad(2, "--learning-rate", concat(inputs, "--learning-rate", 0));
    bad(2, "--diag-reg", concat(inputs, "--diag-reg", -1));
    bad(2, "--parallelism", concat(inputs, "--parallelism", 0));
    bad(2, "expected nngp or ntk", concat(inputs, "--get", "nngp,ntk"));
    bad(2, "--t must be comma-separated numbers or inf", concat(inputs, "--t", "soon"));
    bad(2, "--x-test", "predict", "--model", model, "--x-train", x, "--y-train", y, "--out", out);
  }

  /** The probe's messages: one line each, naming what was wrong and nothing that was not. */
  @Test
  void messagesNameOnlyWhatWasWrong() throws IOException {
    Object[] inputs = {"predict", "--model", model, "--x-train", x, "--y-train", y, "--x-test", xTest,
        "--out", out};
    Result cov = ntk(concat(inputs, "--t", "1", "--fx-train-0", y, "--compute-cov"));
    assertEquals(2, cov.status(), cov.err());
    assertTrue(cov.err().contains("cannot be used with --fx-train-0") && !cov.err().contains("--loss"), cov.err());
    assertNothingWritten(cov);

    Result beam = ntk("kernel", "--model", model, "--x1", x, "--out", out, "--targetParallelism=abc");
    assertEquals(2, beam.status(), beam.err());
    assertEquals(1, beam.err().strip().lines().count(), beam.err());
    assertTrue(beam.err().contains("targetParallelism") && !beam.err().contains("[Source"), beam.err());
    assertNothingWritten(beam);

    Path noBias = write("m.json", "{\"serial\": [{\"Dense\": {\"out_dim\": 4}}, {\"Relu\": {}}, {\"Dense\": {}}]}");
    Path zeros = dir.resolve("zeros.npy");
    Npy.write(zeros, new NpyArray(new long[] {6, 3}, NpyDType.FLOAT64, new double[18]));
    Result nll = ntk("predict", "--model", noBias, "--x-train", zeros, "--y-train", y, "--x-test", xTest,
        "--loss", "cross-entropy", "--t", 1, "--nll", "--diag-reg", 0, "--out", out);
    assertEquals(2, nll.status(), nll.err());
    assertTrue(nll.err().contains("the train-train ntk kernel plus diag_reg"), nll.err());
    assertNothingWritten(nll);
  }

  @Test
  void nanInTargetsNamesTheFileAndRow() throws IOException {
    NpyArray a = Npy.read(y);
    a.data()[3] = Double.POSITIVE_INFINITY;
    Path inf = dir.resolve("y_inf.npy");
    Npy.write(inf, a);
    Result r = ntk("predict", "--model", model, "--x-train", x, "--y-train", inf, "--x-test", xTest,
        "--out", out);
    assertEquals(2, r.status(), r.err());
    assertTrue(r.err().contains("y_inf.npy") && r.err().contains("row 3"), r.err());
    assertNothingWritten(r);
  }

  /**
   * A failure after the tile phase (the train kernel is singular) keeps an existing output
   * directory, what it held and every computed tile, writes no output, and the rerun reuses every
   * tile.
   */
  @Test
  void failureAfterTheTilePhaseKeepsTheTilesForTheRerun() throws IOException {
    Files.createDirectories(out);
    Path notes = Files.writeString(out.resolve("notes.txt"), "mine");
    NpyArray twice = Npy.read(x);
    System.arraycopy(twice.data(), 0, twice.data(), 15, 3); // row 5 = row 0: singular without diag-reg
    Path dup = dir.resolve("dup.npy");
    Npy.write(dup, twice);
    Object[] args = {"predict", "--model", model, "--x-train", dup, "--y-train", y, "--x-test", xTest,
        "--tile", 4, "--compute-cov", "--out", out};
    Result r = ntk(concat(args, "--diag-reg", 0));
    assertEquals(2, r.status(), r.err());
    assertTrue(r.err().contains("diag_reg"), r.err());
    assertNoTrace(r);
    assertTrue(Files.exists(notes));
    assertFalse(Files.exists(out.resolve("mean.npy")) || Files.exists(out.resolve("cov.npy")));
    assertFalse(Files.exists(out.resolve("predict.manifest.json")));
    // The train-train tiles were all written before the factor failed; the test tiles may be
    // (the failure stops the pipeline while they are computed): whatever was written is kept.
    long tiles = tileFiles();
    assertTrue(tiles >= 3 && tiles <= 3 + 2 + 1, tiles + " tiles kept");
    Result again = ntk(concat(args, "--diag-reg", 1e-3));
    assertEquals(0, again.status(), again.err());
    assertTrue(again.out().contains((6 - tiles) + " tiles computed, " + tiles + " reused"), again.out());
    assertTrue(Files.exists(out.resolve("predict.manifest.json")));
  }

  /** A failure in a directory that the run created, before any tile was written, leaves nothing. */
  @Test
  void failureBeforeAnyTileLeavesNoDirectory() throws IOException {
    Path noBias = write("m.json", "{\"serial\": [{\"Dense\": {\"out_dim\": 4}}, {\"Relu\": {}}, {\"Dense\": {\"W_std\": 1e200}}]}");
    bad(2, "serial[2].Dense", "kernel", "--model", noBias, "--x1", x, "--out", out);
  }

  /** One flipped value byte in a tile: the rerun says so, recomputes it and gives the same kernel. */
  @Test
  void aDamagedTileIsRecomputedAndReported() throws IOException {
    Result first = ntk("kernel", "--model", model, "--x1", x, "--tile", 4, "--out", out);
    assertEquals(0, first.status(), first.err());
    byte[] nngp = Files.readAllBytes(out.resolve("nngp.npy"));
    Path tile;
    try (var walk = Files.walk(out.resolve("tiles"))) {
      tile = walk.filter(p -> p.getFileName().toString().equals("tile-r0-c0.arrow")).findFirst().orElseThrow();
    }
    double v = dev.ntk.io.TileFiles.read(tile).kernels().get("nngp")[0];
    byte[] bytes = Files.readAllBytes(tile);
    byte[] pattern = java.nio.ByteBuffer.allocate(8).order(java.nio.ByteOrder.LITTLE_ENDIAN).putDouble(v).array();
    for (int i = 0; i + 8 <= bytes.length; i++) {
      if (Arrays.equals(bytes, i, i + 8, pattern, 0, 8)) {
        bytes[i + 7] ^= 0x40;
        break;
      }
    }
    Files.write(tile, bytes);
    Result again = ntk("kernel", "--model", model, "--x1", x, "--tile", 4, "--out", out);
    assertEquals(0, again.status(), again.err());
    assertTrue(again.out().contains("1 tiles computed, 2 reused") && again.out().contains("1 damaged tile"),
        again.out());
    assertArrayEquals(nngp, Files.readAllBytes(out.resolve("nngp.npy")));
  }

  /** Kernels of two models in one --out keep their own tiles; they can be listed and pruned. */
  @Test
  void twoModelsInOneOutKeepTheirOwnTiles() throws IOException {
    Path other = write("other.json", MODEL.replace("1.5", "2.0"));
    assertEquals(0, ntk("kernel", "--model", model, "--x1", x, "--tile", 4, "--out", out).status());
    Files.writeString(out.resolve("tiles/tile-r0-c0.arrow"), "a tile of format version 1");
    Result b = ntk("kernel", "--model", other, "--x1", x, "--tile", 4, "--out", out);
    assertTrue(b.out().contains("3 tiles computed, 0 reused"), b.out());
    Result a = ntk("kernel", "--model", model, "--x1", x, "--tile", 4, "--out", out);
    assertTrue(a.out().contains("0 tiles computed, 3 reused"), a.out());
    Result list = ntk("tiles", "--out", out, "--list");
    assertEquals(0, list.status(), list.err());
    assertTrue(list.out().contains("3 tile sets") && list.out().contains("3/3 tiles"), list.out());
    assertTrue(list.out().contains("loose-files  1 tiles") && list.out().contains("older version"), list.out());
    String name = list.out().lines().findFirst().orElseThrow().split(" ")[0];
    Result prune = ntk("tiles", "--out", out, "--prune", name);
    assertEquals(0, prune.status(), prune.err());
    assertEquals(4, tileFiles());
    assertEquals(0, ntk("tiles", "--out", out, "--prune", "loose-files").status());
    assertEquals(3, tileFiles());
    assertEquals(0, ntk("tiles", "--out", out, "--prune").status());
    assertEquals(0, tileFiles());
    Result missing = ntk("tiles", "--out", dir.resolve("nope"), "--list");
    assertEquals(2, missing.status());
    assertTrue(missing.err().contains("nope is not a directory"), missing.err());
    Result unknown = ntk("tiles", "--out", out, "--prune", "m123");
    assertEquals(2, unknown.status());
    assertTrue(unknown.err().contains("no tile set m123"), unknown.err());
  }

  /** A second run into a directory that a run holds stops at once with one line. */
  @Test
  void aSecondRunIntoABusyOutStops() throws IOException {
    try (Outputs held = Outputs.open(out, "kernel", 0)) {
      Result r = ntk("kernel", "--model", model, "--x1", x, "--out", out);
      assertEquals(2, r.status(), r.err());
      assertTrue(r.err().contains("in use by another run") && r.err().contains("process "), r.err());
      assertNoTrace(r);
    }
  }

  /** Leftovers of a killed run (temporary tile files, a staging directory) go with the next run. */
  @Test
  void leftoversOfAKilledRunAreRemoved() throws IOException {
    assertEquals(0, ntk("kernel", "--model", model, "--x1", x, "--tile", 4, "--out", out).status());
    Path set;
    try (var list = Files.list(out.resolve("tiles"))) {
      set = list.findFirst().orElseThrow();
    }
    Path tmp = Files.writeString(set.resolve(AtomicFiles.temporaryName("tile-r0-c4.arrow")), "half");
    Path staging = Files.createDirectories(out.resolve(AtomicFiles.temporaryName("staging-kernel")));
    Files.writeString(staging.resolve("nngp.npy"), "half");
    // A staging directory whose roll-back failed holds the previous outputs: it is not a leftover.
    Path unrestored = Files.createDirectories(out.resolve(AtomicFiles.temporaryName("staging-predict"))
        .resolve("previous"));
    Path oldMean = Files.writeString(unrestored.resolve("mean.npy"), "the user's");
    assertEquals(0, ntk("kernel", "--model", model, "--x1", x, "--tile", 4, "--out", out).status());
    assertFalse(Files.exists(tmp) || Files.exists(staging));
    assertTrue(Files.exists(oldMean), "previous outputs that could not be put back are kept");
  }

  /**
   * The probe of "nothing lost": a hidden {@code .tmp} file of the user's, at the top of --out and
   * in a tile set, is not a leftover of ntk's and survives the next runs.
   */
  @Test
  void aUsersHiddenTmpFilesAreKept() throws IOException {
    Files.createDirectories(out);
    Path mine = Files.writeString(out.resolve(".mydata.tmp"), "x");
    assertEquals(0, ntk("kernel", "--model", model, "--x1", x, "--tile", 4, "--out", out).status());
    Path set;
    try (var list = Files.list(out.resolve("tiles"))) {
      set = list.findFirst().orElseThrow();
    }
    Path inSet = Files.writeString(set.resolve(".notes.tmp"), "x");
    assertEquals(0, ntk("kernel", "--model", model, "--x1", x, "--tile", 4, "--out", out).status());
    assertTrue(Files.exists(mine) && Files.exists(inSet));
  }

  /**
   * The probe of "nothing lost": {@code tiles --prune} removes nothing that ntk did not write: a
   * directory without a set's files and a loose file are not tile sets, and naming the directory is
   * refused with one line.
   */
  @Test
  void pruneKeepsFilesNtkNeverWrote() throws IOException {
    Path results = Files.createDirectories(out.resolve("tiles/results_2024"));
    Path photo = Files.writeString(out.resolve("tiles/photo.png"), "x");
    Path thesis = Files.writeString(results.resolve("thesis.tex"), "x");
    Result prune = ntk("tiles", "--out", out, "--prune");
    assertEquals(0, prune.status(), prune.err());
    assertTrue(Files.exists(photo) && Files.exists(thesis), prune.out());
    Result named = ntk("tiles", "--out", out, "--prune", "results_2024");
    assertEquals(2, named.status(), named.err());
    assertTrue(named.err().contains("results_2024") && named.err().contains("not a tile set"), named.err());
    assertEquals(1, named.err().lines().count(), named.err());
    assertTrue(Files.exists(thesis));
    Result list = ntk("tiles", "--out", out, "--list");
    assertEquals(0, list.status(), list.err());
    assertTrue(list.out().contains("0 tile sets"), list.out());
  }

  /**
   * The probe of "a failed run destroys the previous outputs": a non-empty directory where an
   * output goes stops the next run with one line naming it, and the previous outputs and manifest
   * stay as they were.
   */
  @Test
  void aDirectoryInTheWayOfAnOutputKeepsThePreviousOutputs() throws IOException {
    assertEquals(0, ntk("kernel", "--model", model, "--x1", x, "--out", out).status());
    byte[] nngp = Files.readAllBytes(out.resolve("nngp.npy"));
    String manifest = Files.readString(out.resolve("kernel.manifest.json"));
    Files.delete(out.resolve("ntk.npy"));
    Path keep = Files.writeString(Files.createDirectories(out.resolve("ntk.npy")).resolve("keep.txt"), "mine");
    Path other = write("other.json", MODEL.replace("1.5", "2.0"));
    Result r = ntk("kernel", "--model", other, "--x1", x, "--out", out);
    assertEquals(2, r.status(), r.err());
    assertTrue(r.err().contains(out.resolve("ntk.npy").toString()) && r.err().contains("directory"), r.err());
    assertNoTrace(r);
    assertEquals(1, r.err().lines().count(), r.err());
    assertArrayEquals(nngp, Files.readAllBytes(out.resolve("nngp.npy")));
    assertEquals(manifest, Files.readString(out.resolve("kernel.manifest.json")));
    assertEquals("mine", Files.readString(keep));
    try (var top = Files.list(out)) {
      assertEquals(List.of(".ntk.lock", "kernel.manifest.json", "nngp.npy", "ntk.npy"),
          top.map(p -> p.getFileName().toString()).sorted().toList(), "no staging directory is left");
    }
  }

  @Test
  void unwritableOutIsAUsageError() throws IOException {
    Path file = write("afile.txt", "");
    Result r = ntk("kernel", "--model", model, "--x1", x, "--out", file.resolve("sub"));
    assertEquals(2, r.status(), r.err());
    assertTrue(r.err().contains("--out") && r.err().contains("afile.txt"), r.err());
    assertNoTrace(r);
    assertEquals(1, r.err().lines().count(), r.err());
  }

  /** W_std 1e100 gives finite 1e200 after the Dense layer; the Relu's 1e400 overflows. */
  @Test
  void hugeWeightsNameTheLayer() throws IOException {
    Path huge = write("m.json", MODEL.replaceFirst("1.5", "1e100"));
    // In-process (one tile, no runner) and tile by tile.
    for (List<Object> tiles : List.of(List.<Object>of(), List.<Object>of("--tile", 4))) {
      Result r = ntk(concat(concat(new Object[] {"kernel", "--model", huge, "--x1", x}, tiles.toArray()), "--out", out));
      assertEquals(2, r.status(), r.err());
      assertTrue(r.err().contains("serial[1].Relu") && r.err().contains("too large for float64"), r.err());
      assertNoTrace(r);
      assertFalse(Files.exists(out.resolve("nngp.npy")));
      // predict checks the kernels it computed, in-process and tile by tile, and names the layer
      // only once an entry was seen not to be finite
      Result p = ntk(concat(concat(new Object[] {"predict", "--model", huge, "--x-train", x, "--y-train", y,
          "--x-test", xTest}, tiles.toArray()), "--out", out));
      assertEquals(2, p.status(), p.err());
      // in-process the first entry in row order; tile by tile the first entry of whichever tile
      // failed first (every entry overflows here)
      String entry = tiles.isEmpty() ? "\\(0, \\d+\\)" : "\\(\\d+, \\d+\\)";
      assertTrue(p.err().matches("(?s).*kernel entry " + entry + ".*")
          && p.err().contains("serial[1].Relu") && p.err().contains("too large for float64"), p.err());
      // both paths name the kernel of the prediction it is (in-process the one kernel it computes;
      // tile by tile, the first of the tile's two kernels, and whichever tile set failed first)
      assertTrue(p.err().matches(tiles.isEmpty() ? "(?s).*the train-train ntk kernel entry.*"
          : "(?s).*the (train|test)-train nngp kernel entry.*"), p.err());
      assertNoTrace(p);
      assertFalse(Files.exists(out.resolve("mean.npy")));
    }
  }

  /**
   * A test input far larger than the others: predict in-process stops at the test-train kernel's
   * first non-finite entry, naming it and the layer.
   */
  @Test
  void predictInProcessNamesTheTestTrainEntryAndTheLayer() throws IOException {
    NpyArray t = Npy.read(xTest);
    for (int j = 0; j < 3; j++) {
      t.data()[2 * 3 + j] *= 1e160;
    }
    Path bigTest = dir.resolve("big_test.npy");
    Npy.write(bigTest, t);
    Result p = ntk("predict", "--model", model, "--x-train", x, "--y-train", y, "--x-test", bigTest, "--get", "nngp",
        "--out", out);
    assertEquals(2, p.status(), p.err());
    assertTrue(p.err().contains("the test-train nngp kernel entry (2, 0) is ")
        && p.err().contains("first stops being finite at layer serial[0].Dense"), p.err());
    assertNoTrace(p);
    assertFalse(Files.exists(out.resolve("mean.npy")));
  }

  /** As {@link #predictInProcessNamesTheTestTrainEntryAndTheLayer}, tile by tile: the pipeline names it alike. */
  @Test
  void predictPipelineNamesTheTestTrainEntryAndTheLayer() throws IOException {
    NpyArray t = Npy.read(xTest);
    for (int j = 0; j < 3; j++) {
      t.data()[2 * 3 + j] *= 1e160;
    }
    Path bigTest = dir.resolve("big_test.npy");
    Npy.write(bigTest, t);
    Result p = ntk("predict", "--model", model, "--x-train", x, "--y-train", y, "--x-test", bigTest, "--get", "nngp",
        "--tile", 4, "--out", out);
    assertEquals(2, p.status(), p.err());
    // every entry of test row 2 is non-finite: whichever of its tiles the workers computed first stops the run
    assertTrue(p.err().matches("(?s).*the test-train nngp kernel entry \\(2, [0-5]\\) is .*")
        && p.err().contains("first stops being finite at layer serial[0].Dense"), p.err());
    assertNoTrace(p);
    assertFalse(Files.exists(out.resolve("mean.npy")));
  }

  /**
   * --tile or a runner option send predict to the pipeline (whose tiles shrink to --max-tile-bytes);
   * a --max-memory that the kernels do not fit factors out of core ({@code OutOfCorePredictTest}).
   */
  @Test
  void predictRunsThePipelineWhenAskedOrWhenAKernelDoesNotFit() throws IOException {
    Object[] args = {"predict", "--model", model, "--x-train", x, "--y-train", y, "--x-test", xTest};
    Result tile = ntk(concat(args, "--tile", 256, "--out", dir.resolve("a")));
    assertEquals(0, tile.status(), tile.err());
    assertTrue(tile.out().startsWith("DirectRunner"), tile.out());
    // 6 x 6 + 4 x 6 float64 entries are 480 bytes
    Result tight = ntk(concat(args, "--max-memory", 400, "--solver", "cholesky", "--max-tile-bytes", 600,
        "--runner", "DirectRunner", "--out", dir.resolve("b")));
    assertEquals(0, tight.status(), tight.err());
    assertTrue(tight.out().startsWith("DirectRunner"), tight.out());
    assertTrue(tight.err().contains("fit --max-tile-bytes 600"), tight.err());
    Result roomy = ntk(concat(args, "--out", dir.resolve("c")));
    assertEquals(0, roomy.status(), roomy.err());
    assertTrue(roomy.out().startsWith("in-process"), roomy.out());
    assertArrayEquals(Npy.read(dir.resolve("a/mean.npy")).data(), Npy.read(dir.resolve("c/mean.npy")).data(), 1e-12);
    assertArrayEquals(Npy.read(dir.resolve("b/mean.npy")).data(), Npy.read(dir.resolve("c/mean.npy")).data(), 1e-12);
    bad(2, "--max-tile-bytes", concat(args, "--max-tile-bytes", 0, "--out", out));
    bad(2, "--max-memory must be a number of bytes", concat(args, "--max-memory", "lots", "--out", out));
    Result suffix = ntk(concat(args, "--max-memory", "1k", "--out", dir.resolve("d")));
    assertEquals(0, suffix.status(), suffix.err());
    assertTrue(suffix.out().startsWith("in-process (the kernels fit --max-memory 1024;"), suffix.out());
  }

  /**
   * Exact inference by conjugate gradients ({@code --solver cg}; {@code auto} when the kernels do
   * not fit {@code --max-memory} and there are more than {@code OutOfCorePredict.AUTO_BOUND} training
   * points) gives Cholesky's mean, in-process and on the pipeline (train kernel read from its tiles,
   * kernels too large for --max-memory), for the NNGP and the NTK, and says how it converged.
   */
  @Test
  void predictByConjugateGradientsGivesTheCholeskyMean() throws IOException {
    Path xs = npy("x60.npy", 60, 3, 31);
    Path ys = npy("y60.npy", 60, 2, 32);
    Path xt = npy("xt10.npy", 10, 3, 33);
    for (String get : List.of("nngp", "ntk")) {
      Object[] args = {"predict", "--model", model, "--x-train", xs, "--y-train", ys, "--x-test", xt, "--get", get,
          "--cg-tol", "1e-10"};
      Path cholesky = dir.resolve("cholesky-" + get);
      Result c = ntk(concat(args, "--out", cholesky));
      assertEquals(0, c.status(), c.err());
      assertTrue(c.out().startsWith("in-process") && c.out().contains("cholesky"), c.out());
      double[] want = Npy.read(cholesky.resolve("mean.npy")).data();
      Object[][] variants = { // where it runs, then the options; one pipeline a kernel (they take a while)
        {"in-process", "--solver", "cg"},
        get.equals("nngp") ? new Object[] {"DirectRunner", "--solver", "cg", "--runner", "DirectRunner", "--tile", 16}
            : new Object[] {"DirectRunner", "--solver", "cg", "--max-memory", "20k"},  // 60 x 60 + 10 x 60 float64
                                                                                       // entries: 33,600 bytes
      };
      for (int v = 0; v < variants.length; v++) {
        Object[] variant = Arrays.copyOfRange(variants[v], 1, variants[v].length);
        Path cg = dir.resolve("cg-" + get + "-" + v);
        Result r = ntk(concat(concat(args, variant), "--out", cg));
        assertEquals(0, r.status(), r.err());
        assertTrue(r.out().startsWith((String) variants[v][0]), r.out());
        assertTrue(r.err().matches("(?s).*ntk: conjugate gradients: \\d+ iterations, relative residual .*"), r.err());
        double[] got = Npy.read(cg.resolve("mean.npy")).data();
        double err = 0;
        double norm = 0;
        for (int i = 0; i < want.length; i++) {
          err += (got[i] - want[i]) * (got[i] - want[i]);
          norm += want[i] * want[i];
        }
        assertTrue(Math.sqrt(err / norm) <= 1e-6, get + " " + Arrays.toString(variant) + ": " + Math.sqrt(err / norm));
      }
    }
  }

  /**
   * A plan that is not symmetric in its inputs (neural-tangents' quadrature, inputs of different
   * variances): its train kernel is computed whole on every path and read as the Cholesky factor
   * reads it (the lower triangle), so Cholesky and conjugate gradients, in-process and on the
   * pipeline's tiles (4 rows: tiles off the diagonal, a ragged last one), give one mean (and the
   * Cholesky paths one covariance).
   */
  @Test
  void predictionsOfAPlanThatIsNotSymmetricAgreeOnEveryPath() throws IOException {
    Path numerical = write("numerical.json", """
        {"serial": [{"Dense": {"out_dim": 8, "W_std": 1.2, "b_std": 0.1}},
                    {"ElementwiseNumerical": {"fn": "tanh", "deg": 5}}, {"Dense": {"out_dim": 1}}]}""");
    java.util.Random random = new java.util.Random(41);
    Path[] xs = new Path[2];
    for (int s = 0; s < 2; s++) {
      int n = s == 0 ? 10 : 5;
      double[] v = new double[n * 3];
      for (int i = 0; i < v.length; i++) {
        v[i] = random.nextGaussian() * (1 + 0.3 * (i / 3));
      }
      xs[s] = dir.resolve("scaled" + s + ".npy");
      Npy.write(xs[s], new NpyArray(new long[] {n, 3}, NpyDType.FLOAT64, v));
    }
    Path ys = npy("y10.npy", 10, 2, 42);
    Object[] args = {"predict", "--model", numerical, "--x-train", xs[0], "--y-train", ys, "--x-test", xs[1],
        "--diag-reg", "1e-3"};
    Object[][] variants = {
      {"in-process", "--compute-cov"},
      {"in-process", "--solver", "cg", "--cg-tol", "1e-12"},
      {"DirectRunner", "--compute-cov", "--runner", "DirectRunner", "--tile", 4},
      {"DirectRunner", "--solver", "cg", "--cg-tol", "1e-12", "--runner", "DirectRunner", "--tile", 4},
    };
    double[] mean = null;
    double[] cov = null;
    for (int v = 0; v < variants.length; v++) {
      Object[] variant = Arrays.copyOfRange(variants[v], 1, variants[v].length);
      Path run = dir.resolve("numerical-" + v);
      Result r = ntk(concat(concat(args, variant), "--out", run));
      assertEquals(0, r.status(), Arrays.toString(variant) + ": " + r.err());
      assertTrue(r.out().startsWith((String) variants[v][0]), r.out());
      double[] m = Npy.read(run.resolve("mean.npy")).data();
      if (mean == null) {
        mean = m;
      }
      for (int i = 0; i < m.length; i++) {
        assertEquals(mean[i], m[i], 1e-8 * Math.abs(mean[i]) + 1e-12, Arrays.toString(variant) + " mean[" + i + "]");
      }
      if (Files.exists(run.resolve("cov.npy"))) {
        double[] c = Npy.read(run.resolve("cov.npy")).data();
        if (cov == null) {
          cov = c;
        }
        for (int i = 0; i < c.length; i++) {
          assertEquals(cov[i], c[i], 1e-10, Arrays.toString(variant) + " cov[" + i + "]");
        }
      }
    }
    assertTrue(cov != null);
  }

  /** What conjugate gradients cannot give, or a solve that does not converge, is exit 2 with one line. */
  @Test
  void predictByConjugateGradientsFailsInOneLine() throws IOException {
    Object[] args = {"predict", "--model", model, "--x-train", x, "--y-train", y, "--x-test", xTest, "--solver", "cg"};
    for (Object[] unable : new Object[][] {{"--compute-cov"}, {"--nll"}, {"--t", "1"}}) {
      Result r = ntk(concat(concat(args, unable), "--out", out));
      assertEquals(2, r.status(), r.err());
      assertEquals(1, r.err().lines().count(), r.err());
      assertTrue(r.err().contains("--solver cholesky"), r.err());
      assertNothingWritten(r);
    }
    Result r = ntk(concat(args, "--cg-max-iter", 1, "--cg-rank", 0, "--cg-tol", "1e-12", "--out", out));
    assertEquals(2, r.status(), r.err());
    assertEquals(1, r.err().lines().count(), r.err());
    assertTrue(r.err().contains("within 1 iterations (--cg-max-iter)"), r.err());
    assertNothingWritten(r);
    bad(2, "--cg-tol", concat(args, "--cg-tol", 2, "--out", out));
  }

  /** lr checks the train NTK as kernel does: exit 2 naming the layer, not LAPACK's "info -5". */
  @Test
  void lrOnHugeWeightsNamesTheLayer() throws IOException {
    Path huge = write("m.json", MODEL.replaceFirst("1.5", "1e100"));
    Result r = ntk("lr", "--model", huge, "--x-train", x);
    assertEquals(2, r.status(), r.err());
    assertTrue(r.err().contains("the ntk kernel entry (0, 0) is NaN")
        && r.err().contains("first stops being finite at layer serial[1].Relu"), r.err());
    assertNoTrace(r);
    assertEquals("", r.out());
  }

  /**
   * In-process kernels are checked and written chunk by chunk: an entry that is not finite past
   * the first chunk (262,144 entries) still stops the run with its entry named, and no kernel file.
   */
  @Test
  void aNonFiniteEntryPastTheFirstWrittenChunkStopsTheRun() throws IOException {
    NpyArray a = Npy.read(npy("x1.npy", 700, 3, 7));
    for (int j = 0; j < 3; j++) {
      a.data()[650 * 3 + j] *= 1e160;
    }
    Path big = dir.resolve("x1-big.npy");
    Npy.write(big, a);
    Path x2 = npy("x2.npy", 420, 3, 8);
    Result k = ntk("kernel", "--model", model, "--x1", big, "--x2", x2, "--out", out);
    assertEquals(2, k.status(), k.err());
    assertTrue(k.err().contains("the nngp kernel entry (650, 0)") && k.err().contains("serial[0].Dense"), k.err());
    assertNoTrace(k);
    assertFalse(Files.exists(out.resolve("nngp.npy")) || Files.exists(out.resolve("ntk.npy")));
    // The same inputs without the huge row are written whole, both kernels.
    Result fine = ntk("kernel", "--model", model, "--x1", npy("x1.npy", 700, 3, 7), "--x2", x2, "--dtype",
        "float32", "--out", out);
    assertEquals(0, fine.status(), fine.err());
    assertEquals(List.of(700L, 420L), shape(out.resolve("ntk.npy")));
    assertTrue(Npy.firstNonFinite(Npy.read(out.resolve("ntk.npy")).data()).isEmpty());
  }

  @Test
  void hugeInputsStopKernelAndPredict() throws IOException {
    NpyArray a = Npy.read(x);
    for (int i = 0; i < a.data().length; i++) {
      a.data()[i] *= 1e160;
    }
    Path big = dir.resolve("big.npy");
    Npy.write(big, a);
    Result k = ntk("kernel", "--model", model, "--x1", big, "--out", out);
    assertEquals(2, k.status(), k.err());
    assertTrue(k.err().contains("first stops being finite at layer serial[0].Dense"), k.err());
    Result p = ntk("predict", "--model", model, "--x-train", big, "--y-train", y, "--x-test", xTest,
        "--out", out);
    assertEquals(2, p.status(), p.err());
    assertNoTrace(p);
    assertFalse(Files.exists(out.resolve("mean.npy")));
  }

  /** Targets of 1e300 give a mean that float32 cannot hold: an error, not an output of inf. */
  @Test
  void predictNeverWritesANonFiniteMean() throws IOException {
    NpyArray t = Npy.read(y);
    for (int i = 0; i < t.data().length; i++) {
      t.data()[i] = 1e300 * (i + 1);
    }
    Path huge = dir.resolve("y_huge.npy");
    Npy.write(huge, t);
    Result r = ntk("predict", "--model", model, "--x-train", x, "--y-train", huge, "--x-test", xTest,
        "--dtype", "float32", "--out", out);
    assertEquals(2, r.status(), r.err());
    assertTrue(r.err().contains("predictive mean") && r.err().contains("float32"), r.err());
    assertNoTrace(r);
    assertFalse(Files.exists(out.resolve("mean.npy")));
  }

  @Test
  void unreachableFlinkMasterFailsFast() throws IOException {
    int port;
    try (java.net.ServerSocket s = new java.net.ServerSocket(0)) {
      port = s.getLocalPort();
    }
    long start = System.nanoTime();
    bad(2, "--flink-master localhost:" + port, "kernel", "--model", model, "--x1", x, "--runner",
        "FlinkRunner", "--flink-master", "localhost:" + port, "--out", out);
    assertTrue(System.nanoTime() - start < 10e9, "took " + (System.nanoTime() - start) / 1e9 + " s");
  }

  @Test
  void predictPrintsOneColumnPerTarget() throws IOException {
    Path y2 = npy("y2.npy", 6, 2, 5);
    Result r = ntk("predict", "--model", model, "--x-train", x, "--y-train", y2, "--x-test", xTest,
        "--compute-cov", "--out", out);
    assertEquals(0, r.status(), r.err());
    assertTrue(r.out().contains("    i  mean[0]  mean[1]  variance"), r.out());
    String row = r.out().lines().filter(l -> l.startsWith("    0 ")).findFirst().orElseThrow();
    assertEquals(4, row.trim().split("\\s+").length, row);
  }

  /** --tile auto keeps one large tile in one JVM, and gives a cluster's workers two tiles each at least. */
  @Test
  void autoTilesAreSpreadOverAClustersWorkers() {
    assertEquals(8192, TileSettings.spread(8192, 8192, 8192, true, 0));
    assertEquals(2048, TileSettings.spread(8192, 8192, 8192, true, 4)); // 10 tiles on and above the diagonal
    assertEquals(1024, TileSettings.spread(8192, 8192, 100, false, 4)); // 8 x 1 tiles
  }

  /** mc takes the runner options as every command does; the pipeline's estimate is the in-process one. */
  @Test
  void monteCarloOnARunnerEqualsTheInProcessEstimate() throws IOException {
    Object[] args = {"mc", "--model", model, "--x1", x, "--x2", xTest, "--get", "nngp,ntk", "--samples", 9,
        "--width", 32, "--seed", 4};
    Result local = ntk(concat(args, "--out", dir.resolve("local")));
    assertEquals(0, local.status(), local.err());
    assertTrue(local.out().contains("in-process"), local.out());
    Result direct = ntk(concat(args, "--runner", "DirectRunner", "--parallelism", 2, "--out", dir.resolve("direct")));
    assertEquals(0, direct.status(), direct.err());
    assertTrue(direct.out().contains("DirectRunner (8 batches of draws)"), direct.out());
    for (String f : List.of("nngp.npy", "nngp_stderr.npy", "ntk.npy", "ntk_stderr.npy")) {
      double[] a = Npy.read(dir.resolve("local").resolve(f)).data();
      double[] b = Npy.read(dir.resolve("direct").resolve(f)).data();
      assertEquals(6 * 4, a.length);
      for (int i = 0; i < a.length; i++) {
        assertEquals(a[i], b[i], 1e-9 * Math.abs(a[i]) + 1e-14, f + " entry " + i);
      }
    }
    bad(2, "--runner", concat(args, "--runner", "Spark", "--out", out));
  }

  /**
   * Lists of sample counts and widths: one leading axis each, {@code (widths, counts, N1, N2)}; the
   * last count of a width is the single-count run of that width and seed, and the pipeline's
   * estimates are the in-process ones.
   */
  @Test
  void monteCarloListsOfCountsAndWidthsGainLeadingAxes() throws IOException {
    Object[] args = {"mc", "--model", model, "--x1", x, "--x2", xTest, "--get", "nngp,ntk", "--n-samples", "2,5,9",
        "--width", "8,16", "--seed", 4};
    Result local = ntk(concat(args, "--out", dir.resolve("local")));
    assertEquals(0, local.status(), local.err());
    assertTrue(local.out().contains("mc: 2,5,9 samples of width 8,16, seed 4"), local.out());
    Result direct = ntk(concat(args, "--runner", "DirectRunner", "--parallelism", 1, "--out", dir.resolve("direct")));
    assertEquals(0, direct.status(), direct.err());
    // 4 even batches of 9 draws cut at 2, 5 and 9: {0,2,4,5,6,9}, 5 batches of each width
    assertTrue(direct.out().contains("DirectRunner (10 batches of draws)"), direct.out());
    Result single = ntk("mc", "--model", model, "--x1", x, "--x2", xTest, "--get", "nngp,ntk", "--samples", 9,
        "--width", 16, "--seed", 4, "--out", dir.resolve("single"));
    assertEquals(0, single.status(), single.err());
    for (String f : List.of("nngp.npy", "nngp_stderr.npy", "ntk.npy", "ntk_stderr.npy")) {
      NpyArray a = Npy.read(dir.resolve("local").resolve(f));
      assertArrayEquals(new long[] {2, 3, 6, 4}, a.shape(), f);
      double[] b = Npy.read(dir.resolve("direct").resolve(f)).data();
      for (int i = 0; i < b.length; i++) {
        assertEquals(a.data()[i], b[i], 1e-9 * Math.abs(a.data()[i]) + 1e-14, f + " entry " + i);
      }
      double[] one = Npy.read(dir.resolve("single").resolve(f)).data();
      assertArrayEquals(one, Arrays.copyOfRange(a.data(), a.data().length - 24, a.data().length), f);
    }
  }

  /** Bad sample counts and widths are usage errors: exit 2, one line, nothing written. */
  @Test
  void monteCarloRejectsBadListsOfCountsAndWidths() {
    bad(2, "--samples: sample counts must increase, got 4 after 8", "mc", "--model", model, "--x1", x,
        "--samples", "2,8,4", "--out", out);
    bad(2, "--samples: need at least 2 samples, got 0", "mc", "--model", model, "--x1", x, "--samples", "0,4",
        "--out", out);
    bad(2, "--samples: need at least 2 samples, got -3", "mc", "--model", model, "--x1", x, "--samples", "-3",
        "--out", out);
    bad(2, "--width must be at least 1, got 0", "mc", "--model", model, "--x1", x, "--width", "8,0", "--out", out);
    bad(2, "--widths: 3 widths for a model with 2 Dense, Conv, ConvTranspose and ConvLocal layers", "mc", "--model", model,
        "--x1", x, "--widths", "8,8,8", "--out", out);
    bad(2, "--widths must each be at least 1, got -1", "mc", "--model", model, "--x1", x, "--widths", "8,-1",
        "--out", out);
    bad(2, "give --width or --widths, not both", "mc", "--model", model, "--x1", x, "--widths", "8,1", "--width", 8,
        "--out", out);
    for (Object[] args : List.of(new Object[] {"--samples", "2,8,4"}, new Object[] {"--widths", "8,8,8"})) {
      Result r = ntk(concat(new Object[] {"mc", "--model", model, "--x1", x, "--out", out}, args));
      assertEquals(1, r.err().lines().count(), r.err());
    }
  }

  /** Per-layer widths give the finite network those widths: the NNGP estimate has the readout's channels. */
  @Test
  void monteCarloPerLayerWidths() throws IOException {
    Result r = ntk("mc", "--model", model, "--x1", x, "--widths", "64,1", "--samples", 4, "--out", out);
    assertEquals(0, r.status(), r.err());
    assertTrue(r.out().contains("samples of widths 64,1"), r.out());
    assertArrayEquals(new long[] {6, 6}, Npy.read(out.resolve("nngp.npy")).shape());
  }

  @Test
  void monteCarloNngpAgreesWithTheAnalyticKernel() throws IOException {
    Result r = ntk("mc", "--model", model, "--x1", x, "--samples", 64, "--width", 512, "--seed", 3,
        "--out", out);
    assertEquals(0, r.status(), r.err());
    double[] mc = Npy.read(out.resolve("nngp.npy")).data();
    double[] se = Npy.read(out.resolve("nngp_stderr.npy")).data();
    assertEquals(0, ntk("kernel", "--model", model, "--x1", x, "--get", "nngp", "--out", dir.resolve("k")).status());
    double[] exact = Npy.read(dir.resolve("k/nngp.npy")).data();
    for (int i = 0; i < exact.length; i++) {
      assertTrue(se[i] > 0 && se[i] < 0.1 * Math.abs(exact[i]) + 0.05, "standard error " + se[i]);
      assertTrue(Math.abs(mc[i] - exact[i]) <= 5 * se[i] + 0.01 * Math.abs(exact[i]),
          "entry " + i + ": " + mc[i] + " vs " + exact[i] + " +- " + se[i]);
    }
    Result ntk = ntk("mc", "--model", model, "--x1", x, "--get", "ntk", "--samples", 64, "--width", 512,
        "--out", dir.resolve("m2"));
    assertEquals(0, ntk.status(), ntk.err());
    double[] mcNtk = Npy.read(dir.resolve("m2/ntk.npy")).data();
    double[] seNtk = Npy.read(dir.resolve("m2/ntk_stderr.npy")).data();
    assertFalse(Files.exists(dir.resolve("m2/nngp.npy")));
    assertEquals(0, ntk("kernel", "--model", model, "--x1", x, "--get", "ntk", "--out", dir.resolve("k2")).status());
    double[] exactNtk = Npy.read(dir.resolve("k2/ntk.npy")).data();
    for (int i = 0; i < exactNtk.length; i++) {
      assertTrue(Math.abs(mcNtk[i] - exactNtk[i]) <= 5 * seNtk[i] + 0.02 * Math.abs(exactNtk[i]),
          "NTK entry " + i + ": " + mcNtk[i] + " vs " + exactNtk[i] + " +- " + seNtk[i]);
    }
  }

  /** Running out of heap is for the user to fix (a larger -Xmx): exit 2, one line saying how. */
  @Test
  void outOfMemoryIsAUserErrorThatSaysWhatToGive() {
    java.io.ByteArrayOutputStream buffer = new java.io.ByteArrayOutputStream();
    PrintStream err = new PrintStream(buffer, true, StandardCharsets.UTF_8);
    assertEquals(2, Ntk.handle(new OutOfMemoryError("Java heap space"), err, false));
    String said = buffer.toString(StandardCharsets.UTF_8);
    assertEquals(1, said.lines().count(), said);
    assertTrue(said.startsWith("ntk: out of memory") && said.contains("JAVA_OPTS=-Xmx"), said);
  }

  @Test
  void internalErrorsHaveATraceOnlyWithVerbose() {
    java.io.ByteArrayOutputStream buffer = new java.io.ByteArrayOutputStream();
    PrintStream err = new PrintStream(buffer, true, StandardCharsets.UTF_8);
    assertEquals(1, Ntk.handle(new IllegalStateException("boom"), err, false));
    assertEquals(1, buffer.toString(StandardCharsets.UTF_8).lines().count());
    assertEquals(1, Ntk.handle(new IllegalStateException("boom"), err, true));
    assertTrue(buffer.toString(StandardCharsets.UTF_8).contains("\tat "));
  }

  /**
   * A run killed (SIGKILL, then SIGTERM) in its tile phase leaves no output; the rerun reuses the
   * finished tiles and gives the kernel of an uninterrupted run, to the last bits of the kernel's
   * scale: the killed runs' tiles come from new JVMs, whose first tiles run the Vector API's Java
   * fallbacks (atan2 among them) before C2 compiles the intrinsics, while this JVM's tiles may
   * already run compiled code (after other tests), and the two differ in the last bit of some
   * entries.
   */
  @Test
  void killedRunsResumeFromTheirTiles() throws Exception {
    Path big = npy("big.npy", 160, 20, 9);
    Result clean = ntk("kernel", "--model", model, "--x1", big, "--tile", 8, "--out", dir.resolve("clean"));
    assertEquals(0, clean.status(), clean.err());
    for (boolean term : new boolean[] {false, true}) {
      Process p = subprocess("kernel", "--model", model, "--x1", big, "--tile", 8, "--parallelism", 1,
          "--out", out);
      long before = Files.isDirectory(out.resolve("tiles")) ? tileFiles() : 0;
      long deadline = System.nanoTime() + 60_000_000_000L;
      while (p.isAlive() && (!Files.isDirectory(out.resolve("tiles")) || tileFiles() < before + 20)
          && System.nanoTime() < deadline) {
        Thread.sleep(20);
      }
      assertTrue(p.isAlive(), "the run ended before it could be killed");
      if (term) {
        p.destroy();
      } else {
        p.destroyForcibly();
      }
      p.waitFor();
      assertFalse(Files.exists(out.resolve("nngp.npy")) || Files.exists(out.resolve("kernel.manifest.json")));
    }
    try (var top = Files.list(out)) {
      assertFalse(top.anyMatch(AtomicFiles::isTemporary),
          "SIGTERM removes the staging directory");
    }
    long kept = tileFiles();
    Result rerun = ntk("kernel", "--model", model, "--x1", big, "--tile", 8, "--out", out);
    assertEquals(0, rerun.status(), rerun.err());
    assertTrue(rerun.out().contains((210 - kept) + " tiles computed, " + kept + " reused"), rerun.out());
    for (String k : List.of("nngp.npy", "ntk.npy")) {
      double[] want = Npy.read(dir.resolve("clean").resolve(k)).data();
      double[] got = Npy.read(out.resolve(k)).data();
      assertEquals(want.length, got.length, k);
      // a last-bit difference in one layer's arc-cosine reaches an off-diagonal entry scaled by the
      // kernel's size, not by the entry's own (which cancellation may make small): the tolerance is
      // relative to the largest entry
      double scale = java.util.Arrays.stream(want).map(Math::abs).max().orElse(0);
      for (int i = 0; i < want.length; i++) {
        assertEquals(want[i], got[i], 1e-13 * scale, k + "[" + i + "]");
      }
    }
  }

  /** {@code ntk args} in a child JVM with this test JVM's module flags and class path, its output discarded. */
  static Process subprocess(Object... args) throws IOException {
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments().stream()
        .filter(a -> a.startsWith("--add-opens") || a.startsWith("--add-modules")).forEach(command::add);
    command.add("-cp");
    command.add(System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")));
    command.add(Ntk.class.getName());
    for (Object a : args) {
      command.add(a.toString());
    }
    return new ProcessBuilder(command).redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
  }

  /**
   * Finished tiles under {@code out/tiles}: in every set, and loose ones of an older layout. A
   * directory stream does not look at each
   * entry's attributes, so a run writing beside it (temporary files renamed away) cannot fail it,
   * as {@code Files.walk} did.
   */
  private long tileFiles() throws IOException {
    long n = 0;
    try (var sets = Files.newDirectoryStream(out.resolve("tiles"))) {
      for (Path set : sets) {
        if (!Files.isDirectory(set)) {
          String name = set.getFileName().toString();
          n += name.startsWith("tile-") && name.endsWith(".arrow") ? 1 : 0;
          continue;
        }
        try (var tiles = Files.newDirectoryStream(set, "tile-*.arrow")) {
          for (Path ignored : tiles) {
            n++;
          }
        }
      }
    }
    return n;
  }

  private static void assertNoTrace(Result r) {
    assertFalse(r.err().contains("\tat "), "a stack trace: " + r.err());
    assertFalse(r.err().contains("Exception"), "an exception name: " + r.err());
  }

  /**
   * Hermite on inputs whose variance is not 1 (its kernel is NaN there) and Monte Carlo of
   * ExpNormalized (no finite network): one line, exit 2, naming the layer, and no output.
   */
  @Test
  void activationsOutsideTheirDomainAreRefusedNamingTheLayer() throws IOException {
    Path hermite = write("h.json",
        "{\"serial\": [{\"Dense\": {\"out_dim\": 4}}, {\"Hermite\": {\"degree\": 2}}, {\"Dense\": {}}]}");
    bad(2, "first stops being finite at layer serial[1].Hermite", "kernel", "--model", hermite, "--x1", x,
        "--out", out);
    Path expNormalized = write("e.json",
        "{\"serial\": [{\"Dense\": {\"out_dim\": 4}}, {\"ExpNormalized\": {}}, {\"Dense\": {}}]}");
    bad(2, "ExpNormalized has no finite network", "mc", "--model", expNormalized, "--x1", x, "--samples", 4,
        "--width", 8, "--out", out);
    Result kernel = ntk("kernel", "--model", expNormalized, "--x1", x, "--out", out);
    assertEquals(0, kernel.status(), kernel.err());
  }

  /** A singular kernel with --diag-reg 0: exit 2 naming the smallest eigenvalue, and no output. */
  @Test
  void failureDuringTheRunRemovesItsOutputs() throws IOException {
    Path noBias = write("m.json", "{\"serial\": [{\"Dense\": {\"out_dim\": 4}}, {\"Relu\": {}}, {\"Dense\": {}}]}");
    Path zeros = dir.resolve("zeros.npy");
    Npy.write(zeros, new NpyArray(new long[] {6, 3}, NpyDType.FLOAT64, new double[18]));
    bad(2, "smallest eigenvalue", "predict", "--model", noBias, "--x-train", zeros, "--y-train", y, "--x-test", xTest,
        "--diag-reg", 0, "--out", out);
    bad(2, "--diag-reg", "predict", "--model", noBias, "--x-train", zeros, "--y-train", y, "--x-test", xTest,
        "--diag-reg", 0, "--t", "1,inf", "--out", out);
  }

  private void bad(int status, String expected, Object... args) {
    Result r = ntk(args);
    assertEquals(status, r.status(), r.err());
    assertTrue(r.err().contains(expected), "expected \"" + expected + "\" in: " + r.err());
    assertNothingWritten(r);
  }

  private void assertNothingWritten(Result r) {
    assertNoTrace(r);
    assertFalse(Files.exists(out), "output left behind");
  }

  private static Object[] concat(Object[] first, Object... more) {
    Object[] all = Arrays.copyOf(first, first.length + more.length);
    System.arraycopy(more, 0, all, first.length, more.length);
    return all;
  }

  static Result ntk(Object... args) {
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

  private Path write(String name, String text) throws IOException {
    return Files.writeString(dir.resolve(name), text);
  }

  private Path npy(String name, int n, int d, long seed) throws IOException {
    java.util.Random r = new java.util.Random(seed);
    double[] v = new double[n * d];
    for (int i = 0; i < v.length; i++) {
      v[i] = r.nextGaussian();
    }
    Path file = dir.resolve(name);
    Npy.write(file, new NpyArray(new long[] {n, d}, NpyDType.FLOAT64, v));
    return file;
  }

  private static List<Long> shape(Path npy) throws IOException {
    return Arrays.stream(Npy.readHeader(npy).shape()).boxed().toList();
  }
}
