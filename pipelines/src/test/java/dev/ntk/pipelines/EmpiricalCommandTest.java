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
import dev.ntk.kernels.EmpiricalKernels;
import dev.ntk.kernels.Layer;
import dev.ntk.kernels.ModelSpec;
import dev.ntk.kernels.Tensors;
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

/** {@code ntk empirical} through {@link Ntk#run}: its outputs, their shapes and values, and bad input. */
class EmpiricalCommandTest {
  private static final String MODEL = """
      {"serial": [{"Dense": {"out_dim": 16, "W_std": 1.5, "b_std": 0.1}}, {"Relu": {}},
                  {"Dense": {"out_dim": 3, "W_std": 1.2, "b_std": 0.1}}]}""";

  @TempDir Path dir;
  private Path model;
  private Path x;
  private Path xTest;
  private Path out;

  record Result(int status, String out, String err) {}

  @BeforeEach
  void inputs() throws IOException {
    model = Files.writeString(dir.resolve("model.json"), MODEL);
    x = npy("x.npy", 6, 4, 1);
    xTest = npy("x_test.npy", 5, 4, 2);
    out = dir.resolve("out"); // does not exist: every failure must leave it so
  }

  @Test
  void writesBothKernelsEqualToTheJavaApi() throws IOException {
    Result r = ntk("empirical", "--model", model, "--x1", x, "--x2", xTest, "--seed", 3, "--out", out);
    assertEquals(0, r.status(), r.err());
    assertTrue(r.out().contains("structured NTK, parameters drawn with seed 3"), r.out());
    assertTrue(r.out().contains("ntk.npy (6, 5) float64"), r.out());
    assertEquals(List.of(6L, 5L), shape(out.resolve("nngp.npy")));
    Layer layer = ModelSpec.parse(MODEL);
    try (NDManager m = Tensors.newManager()) {
      NDArray x1 = array(m, Npy.read(x));
      NDArray x2 = array(m, Npy.read(xTest));
      var params = layer.init(3, new Shape(4), m, DataType.FLOAT64);
      assertArrayEquals(EmpiricalKernels.ntk(layer, params, x1, x2,
          EmpiricalKernels.Implementation.JACOBIAN_CONTRACTION, true).toDoubleArray(),
          Npy.read(out.resolve("ntk.npy")).data(), 1e-10);
      assertArrayEquals(EmpiricalKernels.nngp(layer, params, x1, x2, true).toDoubleArray(),
          Npy.read(out.resolve("nngp.npy")).data(), 1e-12);
    }
  }

  @Test
  void theThreeImplementationsWriteTheSameNtk() throws IOException {
    double[] first = null;
    for (String impl : List.of("jacobian", "ntk-vp", "structured")) {
      Path o = dir.resolve(impl);
      Result r = ntk("empirical", "--model", model, "--x1", x, "--get", "ntk", "--implementation", impl, "--out", o);
      assertEquals(0, r.status(), r.err());
      assertFalse(Files.exists(o.resolve("nngp.npy")), "only the kernel asked for");
      double[] k = Npy.read(o.resolve("ntk.npy")).data();
      assertEquals(36, k.length);
      if (first == null) {
        first = k;
      } else {
        assertArrayEquals(first, k, 1e-10 * Arrays.stream(first).map(Math::abs).max().orElse(1), impl);
      }
    }
  }

  @Test
  void keepChannelsAndFloat32() throws IOException {
    Result r = ntk("empirical", "--model", model, "--x1", x, "--x2", xTest, "--keep-channels", "--dtype", "float32",
        "--out", out);
    assertEquals(0, r.status(), r.err());
    assertEquals(List.of(6L, 5L, 3L, 3L), shape(out.resolve("ntk.npy")));
    assertEquals(NpyDType.FLOAT32, Npy.readHeader(out.resolve("nngp.npy")).dtype());
  }

  /**
   * A parameters file from {@code ntk init} gives the kernels of the network that the same seed
   * draws, in float64 and float32.
   */
  @Test
  void paramsFromInitGiveTheKernelsOfTheSeed() throws IOException {
    for (String dtype : List.of("float64", "float32")) {
      Path p = dir.resolve("p-" + dtype + ".npz");
      Result init = ntk("init", "--model", model, "--input-shape", "4", "--seed", 11, "--dtype", dtype, "--out", p);
      assertEquals(0, init.status(), init.err());
      Path fromFile = dir.resolve("file-" + dtype);
      Path fromSeed = dir.resolve("seed-" + dtype);
      Result r = ntk("empirical", "--model", model, "--x1", x, "--x2", xTest, "--params", p, "--dtype", dtype,
          "--out", fromFile);
      assertEquals(0, r.status(), r.err());
      assertTrue(r.out().contains("parameters from " + p), r.out());
      Result s = ntk("empirical", "--model", model, "--x1", x, "--x2", xTest, "--seed", 11, "--dtype", dtype,
          "--out", fromSeed);
      assertEquals(0, s.status(), s.err());
      for (String k : List.of("nngp.npy", "ntk.npy")) {
        double[] expected = Npy.read(fromSeed.resolve(k)).data();
        assertArrayEquals(expected, Npy.read(fromFile.resolve(k)).data(), 0, dtype + " " + k);
        assertEquals(dtype, Npy.readHeader(fromFile.resolve(k)).dtype().typeName());
      }
    }
    // another draw gives other kernels: the file is what is read
    Path other = dir.resolve("other");
    assertEquals(0, ntk("empirical", "--model", model, "--x1", x, "--x2", xTest, "--seed", 12, "--out", other)
        .status());
    assertFalse(Arrays.equals(Npy.read(other.resolve("ntk.npy")).data(),
        Npy.read(dir.resolve("file-float64").resolve("ntk.npy")).data()));
  }

  /**
   * A parameters file that does not fit the model, or its dtype, exits 2 naming the file and the
   * array; --params with --seed is refused; nothing is written.
   */
  @Test
  void paramsThatDoNotFitExitTwoNamingTheArray() throws IOException {
    Path wider = dir.resolve("wider.npz"); // the same model for 5 input features
    assertEquals(0, ntk("init", "--model", model, "--input-shape", "5", "--out", wider).status());
    Path deep = Files.writeString(dir.resolve("deep.json"), """
        {"serial": [{"Dense": {"out_dim": 16, "b_std": 0.1}}, {"Relu": {}}, {"Dense": {"out_dim": 16, "b_std": 0.1}},
                    {"Relu": {}}, {"Dense": {"out_dim": 3, "b_std": 0.1}}]}""");
    Path deeper = dir.resolve("deeper.npz"); // another model
    assertEquals(0, ntk("init", "--model", deep, "--input-shape", "4", "--out", deeper).status());
    Path fits = dir.resolve("fits.npz");
    assertEquals(0, ntk("init", "--model", model, "--input-shape", "4", "--out", fits).status());
    Path none = dir.resolve("none.npz");
    List<Object[]> cases = List.of(
        new Object[] {wider + ": array serial[0].Dense/W has shape (5, 16), but the model needs (4, 16)",
            new Object[] {"--params", wider}},
        new Object[] {deeper + ": array serial[4].Dense/W is not a parameter of the model",
            new Object[] {"--params", deeper}},
        new Object[] {fits + ": array serial[0].Dense/W is float64, but the network is float32",
            new Object[] {"--params", fits, "--dtype", "float32"}},
        new Object[] {"not both", new Object[] {"--params", fits, "--seed", 0}},
        new Object[] {"--params " + none + ": ", new Object[] {"--params", none}});
    for (Object[] c : cases) {
      List<Object> args = new ArrayList<>(List.of("empirical", "--model", model, "--x1", x));
      args.addAll(Arrays.asList((Object[]) c[1]));
      args.addAll(List.of("--out", out));
      Result r = ntk(args.toArray());
      assertEquals(2, r.status(), Arrays.toString((Object[]) c[1]) + ": " + r.err());
      assertTrue(r.err().contains((String) c[0]), r.err());
      assertFalse(r.err().contains("\tat ") || r.err().contains("internal error"), r.err());
      assertFalse(Files.exists(out), "no output directory after " + r.err());
    }
  }

  /**
   * On a runner the kernels are computed over tiles (3 rows: tiles on, above and across the
   * diagonal, and ragged edges) and equal the in-process ones, for x1 with itself (the network
   * drawn from a seed) and with x2 (read from a parameters file); a second run reuses every tile, and
   * another network's tiles are never taken for this one's.
   */
  @Test
  void onTheDirectRunnerTilesGiveTheInProcessKernels() throws IOException {
    Path p = dir.resolve("p.npz");
    assertEquals(0, ntk("init", "--model", model, "--input-shape", "4", "--seed", 5, "--out", p).status());
    Path x7 = npy("x7.npy", 7, 4, 3);
    for (Object[] network : List.of(new Object[] {"--seed", 5}, new Object[] {"--params", p})) {
      for (Path second : network[0].equals("--seed") ? Arrays.asList((Path) null) : List.of(xTest)) {
        List<Object> args = new ArrayList<>(List.of("empirical", "--model", model, "--x1", x7));
        if (second != null) {
          args.addAll(List.of("--x2", second));
        }
        args.addAll(Arrays.asList(network));
        String name = network[0].toString().substring(2) + (second == null ? "-x1" : "-x2");
        Path local = dir.resolve("local-" + name);
        Path tiled = dir.resolve("tiled-" + name);
        List<Object> inProcess = new ArrayList<>(args);
        inProcess.addAll(List.of("--out", local));
        Result a = ntk(inProcess.toArray());
        assertEquals(0, a.status(), a.err());
        List<Object> pipeline = new ArrayList<>(args);
        pipeline.addAll(List.of("--runner", "DirectRunner", "--tile", 3, "--out", tiled));
        Result b = ntk(pipeline.toArray());
        assertEquals(0, b.status(), b.err());
        assertTrue(b.out().contains("DirectRunner") && b.out().contains("0 reused"), b.out());
        for (String k : List.of("nngp.npy", "ntk.npy")) {
          NpyArray expected = Npy.read(local.resolve(k));
          NpyArray actual = Npy.read(tiled.resolve(k));
          assertArrayEquals(expected.shape(), actual.shape(), name + " " + k);
          assertArrayEquals(expected.data(), actual.data(), 1e-12, name + " " + k);
        }
        if (second == null) {
          Result again = ntk(pipeline.toArray());
          assertEquals(0, again.status(), again.err());
          assertTrue(again.out().contains(" 0 tiles computed, 6 reused"), again.out());
        }
      }
    }
    // another seed into the same directory: its own tiles, other kernels
    Path tiled = dir.resolve("tiled-seed-x1");
    double[] before = Npy.read(tiled.resolve("ntk.npy")).data();
    Result other = ntk("empirical", "--model", model, "--x1", x7, "--seed", 6, "--runner", "DirectRunner",
        "--tile", 3, "--out", tiled);
    assertEquals(0, other.status(), other.err());
    assertTrue(other.out().contains("0 reused"), other.out());
    assertFalse(Arrays.equals(before, Npy.read(tiled.resolve("ntk.npy")).data()));
    Result keep = ntk("empirical", "--model", model, "--x1", x7, "--keep-channels", "--runner", "DirectRunner",
        "--out", out);
    assertEquals(2, keep.status(), keep.err());
    assertTrue(keep.err().contains("--keep-channels"), keep.err());
    assertFalse(Files.exists(out));
  }

  @Test
  void badInputIsAUsageErrorWithoutOutputs() throws IOException {
    Path wide = npy("wide.npy", 3, 5, 4);
    Path badModel = Files.writeString(dir.resolve("bad.json"), "{\"serial\": [{\"Dense\": {\"out_dim\": 0}}]}");
    List<Object[]> cases = List.of(
        new Object[] {"--implementation", new Object[] {"--implementation", "exact"}},
        new Object[] {"--x2", new Object[] {"--x2", wide}},
        new Object[] {"nngp or ntk", new Object[] {"--get", "cov"}},
        new Object[] {"float64", new Object[] {"--dtype", "int8"}});
    for (Object[] c : cases) {
      List<Object> args = new ArrayList<>(List.of("empirical", "--model", model, "--x1", x));
      args.addAll(Arrays.asList((Object[]) c[1]));
      args.addAll(List.of("--out", out));
      Result r = ntk(args.toArray());
      assertEquals(2, r.status(), Arrays.toString((Object[]) c[1]) + ": " + r.err());
      assertTrue(r.err().contains((String) c[0]), r.err());
      assertFalse(r.err().contains("\tat "), "no stack trace: " + r.err());
      assertFalse(Files.exists(out), "no output directory after " + r.err());
    }
    Result r = ntk("empirical", "--model", badModel, "--x1", x, "--out", out);
    assertEquals(2, r.status(), r.err());
    assertTrue(r.err().contains("out_dim"), r.err());
    assertFalse(Files.exists(out));
  }

  private static NDArray array(NDManager m, NpyArray a) {
    return Tensors.create(m, a.data(), new Shape(a.shape()), DataType.FLOAT64);
  }

  private static Result ntk(Object... args) {
    ByteArrayOutputStream o = new ByteArrayOutputStream();
    ByteArrayOutputStream e = new ByteArrayOutputStream();
    List<String> strings = new ArrayList<>();
    for (Object a : args) {
      strings.add(a.toString());
    }
    int status = Ntk.run(strings.toArray(String[]::new), new PrintStream(o, true, StandardCharsets.UTF_8),
        new PrintStream(e, true, StandardCharsets.UTF_8));
    return new Result(status, o.toString(StandardCharsets.UTF_8), e.toString(StandardCharsets.UTF_8));
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
