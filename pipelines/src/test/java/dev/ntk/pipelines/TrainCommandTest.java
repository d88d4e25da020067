package dev.ntk.pipelines;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.kernels.Layer;
import dev.ntk.kernels.ModelSpec;
import dev.ntk.kernels.Params;
import dev.ntk.kernels.Tensors;
import dev.ntk.kernels.train.Network;
import dev.ntk.kernels.train.Taylor;
import dev.ntk.transforms.ParamsFiles;
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

/** {@code ntk train} through {@link Ntk#run}: shapes, what t = 0 is, options, and errors for bad input. */
class TrainCommandTest {
  private static final String MODEL = """
      {"serial": [{"Dense": {"out_dim": 16, "W_std": 1.5, "b_std": 0.1}}, {"Erf": {}},
                  {"Dense": {"out_dim": 1, "W_std": 1.5, "b_std": 0.1}}]}""";

  @TempDir Path dir;
  private Path model;
  private Path x;
  private Path y;
  private Path xTest;
  private Path out;

  record Result(int status, String out, String err) {}

  @BeforeEach
  void inputs() throws IOException {
    model = dir.resolve("model.json");
    Files.writeString(model, MODEL);
    x = npy("x.npy", 6, 3, 1);
    y = npy("y.npy", 6, 1, 2);
    xTest = npy("x_test.npy", 4, 3, 3);
    out = dir.resolve("out");
  }

  /**
   * Outputs of shape (len(t), K, N, out); at t = 0 member i is the network that {@code init} draws
   * from seed S + i, and the linearized network equals it; training lowers the loss.
   */
  @Test
  void writesEveryMembersOutputsAtEveryTime() throws IOException {
    Result r = ntk("train", "--model", model, "--x-train", x, "--y-train", y, "--x-test", xTest, "--ensemble", 2,
        "--learning-rate", 0.5, "--t", "0,2.5,6", "--seed", 7, "--out", out);
    assertEquals(0, r.status(), r.err());
    assertTrue(r.out().contains("train: 2 networks, seeds 7..8, gd, 6 steps each"), r.out());
    assertEquals(List.of(3L, 2L, 4L, 1L), shape(out.resolve("test.npy")));
    assertEquals(List.of(3L, 2L, 6L, 1L), shape(out.resolve("train.npy")));
    double[] test = Npy.read(out.resolve("test.npy")).data();
    double[] train = Npy.read(out.resolve("train.npy")).data();
    Layer layer = ModelSpec.parse(MODEL);
    try (NDManager m = Tensors.newManager()) {
      for (int member = 0; member < 2; member++) {
        Params p = layer.init(7 + member, new Shape(3), m, DataType.FLOAT64);
        double[] f = Tensors.toDoubles(layer.apply(p, Tensors.create(m, Npy.read(xTest).data(), new Shape(4, 3),
            DataType.FLOAT64)));
        assertArrayEquals(f, Arrays.copyOfRange(test, member * 4, member * 4 + 4), 1e-12, "member " + member);
      }
    }
    double[] targets = Npy.read(y).data();
    for (int member = 0; member < 2; member++) {
      double before = sse(train, member * 6, targets);
      double after = sse(train, (2 * 2 + member) * 6, targets);
      assertTrue(after < 0.5 * before, "member " + member + ": loss " + before + " -> " + after);
    }

    Path lin = dir.resolve("lin");
    Result l = ntk("train", "--model", model, "--x-train", x, "--y-train", y, "--x-test", xTest, "--ensemble", 2,
        "--learning-rate", 0.5, "--t", "0,6", "--seed", 7, "--linearized", "--optimizer", "adam", "--out", lin);
    assertEquals(0, l.status(), l.err());
    assertTrue(l.out().contains("2 linearized networks"), l.out());
    double[] linTest = Npy.read(lin.resolve("test.npy")).data();
    assertArrayEquals(Arrays.copyOfRange(test, 0, 8), Arrays.copyOfRange(linTest, 0, 8), 1e-12);
  }

  /**
   * --width widens the hidden layers and keeps the readout; minibatches; float32; a warning above
   * the stable rate.
   */
  @Test
  void widthBatchesAndTheLearningRateWarning() throws IOException {
    Result r = ntk("train", "--model", model, "--x-train", x, "--y-train", y, "--x-test", xTest, "--width", 64,
        "--optimizer", "sgd", "--batch-size", 2, "--learning-rate", 1000, "--t", 3, "--dtype", "float32",
        "--out", out);
    assertEquals(0, r.status(), r.err());
    assertTrue(r.out().contains("of width 64") && r.out().contains("(batches of 2)"), r.out());
    assertTrue(r.err().contains("warning: --learning-rate 1000.0 is above the largest stable learning rate"),
        r.err());
    assertEquals(List.of(1L, 1L, 4L, 1L), shape(out.resolve("test.npy")));
    assertEquals(NpyDType.FLOAT32, Npy.readHeader(out.resolve("test.npy")).dtype());
  }

  /**
   * --params-out: one file per member ({@code p-0.npz}, {@code p-1.npz}) that {@link
   * ParamsFiles#read} accepts and whose network gives the member's test outputs at the last time;
   * for --linearized the parameters of the linearization around the member's initial ones; one
   * member writes {@code p.npz} itself, which {@code ntk empirical --params} reads.
   */
  @Test
  void paramsOutHoldsEachMembersTrainedNetwork() throws IOException {
    Layer layer = ModelSpec.parse(MODEL);
    for (boolean linearized : List.of(false, true)) {
      Path o = dir.resolve(linearized ? "lin" : "net");
      Path p = dir.resolve(linearized ? "params/lin.npz" : "params/net.npz"); // params/ does not exist yet
      List<Object> args = new ArrayList<>(List.of("train", "--model", model, "--x-train", x, "--y-train", y,
          "--x-test", xTest, "--ensemble", 2, "--learning-rate", 0.5, "--t", "0,2.5,4", "--seed", 7,
          "--params-out", p, "--out", o));
      if (linearized) {
        args.add("--linearized");
      }
      Result r = ntk(args.toArray());
      assertEquals(0, r.status(), r.err());
      assertFalse(Files.exists(p), "one file per member, none named " + p);
      double[] test = Npy.read(o.resolve("test.npy")).data();
      try (NDManager m = Tensors.newManager()) {
        var xt = Tensors.create(m, Npy.read(xTest).data(), new Shape(4, 3), DataType.FLOAT64);
        for (int member = 0; member < 2; member++) {
          Path file = dir.resolve("params").resolve((linearized ? "lin-" : "net-") + member + ".npz");
          assertTrue(r.out().contains("wrote " + file + ": the parameters of the network of seed " + (7 + member)),
              r.out());
          Params trained = ParamsFiles.read(layer, new Shape(3), file, m, null);
          Params initial = layer.init(7 + member, new Shape(3), m, DataType.FLOAT64);
          Network network = linearized ? Taylor.linearize(layer, initial) : Network.of(layer);
          double[] f = Tensors.toDoubles(network.apply(trained, xt));
          int last = (2 * 2 + member) * 4; // time index 2 of (3, K = 2, 4, 1)
          assertArrayEquals(Arrays.copyOfRange(test, last, last + 4), f, 1e-12, "member " + member);
          double[] f0 = Tensors.toDoubles(layer.apply(initial, xt));
          assertFalse(Arrays.equals(f0, f), "the trained parameters, not the initial ones");
        }
      }
    }
    // one member: P.npz itself, read back by ntk empirical
    Path one = dir.resolve("one.npz");
    Result r = ntk("train", "--model", model, "--x-train", x, "--y-train", y, "--x-test", xTest, "--t", 3,
        "--params-out", one, "--out", out);
    assertEquals(0, r.status(), r.err());
    Result e = ntk("empirical", "--model", model, "--x1", xTest, "--get", "nngp", "--params", one, "--out",
        dir.resolve("emp"));
    assertEquals(0, e.status(), e.err());
    double[] f = Arrays.copyOfRange(Npy.read(out.resolve("test.npy")).data(), 0, 4);
    double[] nngp = Npy.read(dir.resolve("emp").resolve("nngp.npy")).data(); // f f^T, one output
    for (int i = 0; i < 4; i++) {
      for (int j = 0; j < 4; j++) {
        assertEquals(f[i] * f[j], nngp[i * 4 + j], 1e-12 * (1 + Math.abs(f[i] * f[j])));
      }
    }
  }

  @Test
  void badInputIsAUsageErrorAndWritesNothing() throws IOException {
    Path y5 = npy("y5.npy", 5, 1, 4);
    Path y2 = npy("y2.npy", 6, 2, 4);
    bad("--y-train " + y5 + ": expected shape (6,) or (6, K)", "--y-train", y5, "--t", 1);
    bad("--t must be non-negative numbers or inf, got -1", "--y-train", y, "--t", "1,-1");
    bad("--t must be finite numbers of steps to train, got inf", "--y-train", y, "--t", "inf");
    bad("--optimizer: unknown optimizer \"rmsprop\": expected gd, sgd, momentum or adam", "--y-train", y, "--t", 1,
        "--optimizer", "rmsprop");
    bad("--loss: unknown loss \"hinge\"", "--y-train", y, "--t", 1, "--loss", "hinge");
    bad("--optimizer sgd needs --batch-size", "--y-train", y, "--t", 1, "--optimizer", "sgd");
    bad("--optimizer gd is full-batch gradient descent", "--y-train", y, "--t", 1, "--batch-size", 2);
    bad("--batch-size must be between 1 and the 6 training rows, got 7", "--y-train", y, "--t", 1,
        "--optimizer", "sgd", "--batch-size", 7);
    bad("--mass must be in [0, 1), got 1.5", "--y-train", y, "--t", 1, "--optimizer", "momentum", "--mass", 1.5);
    bad("--ensemble must be at least 1, got 0", "--y-train", y, "--t", 1, "--ensemble", 0);
    bad("--learning-rate must be a positive number, got -0.1", "--y-train", y, "--t", 1, "--learning-rate", -0.1);
    bad("outputs per example have shape (1), but --y-train " + y2 + " has 2 columns", "--y-train", y2, "--t", 1);
    bad("--params-out: " + dir + " is a directory", "--y-train", y, "--t", 1, "--params-out", dir);
    Path taken = Files.createDirectories(dir.resolve("p-1.npz"));
    bad("--params-out: " + taken + " is a directory", "--y-train", y, "--t", 1, "--ensemble", 2,
        "--params-out", dir.resolve("p.npz"));
    bad("--params-out: " + out.resolve("test.npy") + " is one of the outputs in --out", "--y-train", y, "--t", 1,
        "--params-out", out.resolve("test.npy"));
    Path file = Files.writeString(dir.resolve("file"), "");
    bad("--params-out: " + file.resolve("p.npz") + " cannot be created: " + file + " is not a directory",
        "--y-train", y, "--t", 1, "--params-out", file.resolve("p.npz"));
    bad("the largest --t, 2.5, is not a whole number of steps (add 3 to --t)", "--y-train", y, "--t", "1,2.5",
        "--params-out", dir.resolve("p.npz"));
    assertFalse(Files.exists(dir.resolve("p.npz")) || Files.exists(dir.resolve("p-0.npz")));
  }

  private void bad(String expected, Object... more) {
    List<Object> args = new ArrayList<>(List.of("train", "--model", model, "--x-train", x, "--x-test", xTest,
        "--out", out));
    args.addAll(List.of(more));
    Result r = ntk(args.toArray());
    assertEquals(2, r.status(), r.err());
    assertTrue(r.err().contains(expected), "expected \"" + expected + "\" in: " + r.err());
    assertFalse(r.err().contains("\tat ") || r.err().contains("Exception"), "a stack trace: " + r.err());
    assertFalse(Files.exists(out), "output left behind");
  }

  private static double sse(double[] f, int from, double[] y) {
    double s = 0;
    for (int i = 0; i < y.length; i++) {
      s += (f[from + i] - y[i]) * (f[from + i] - y[i]);
    }
    return s;
  }

  static Result ntk(Object... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    String[] strings = Arrays.stream(args).map(Object::toString).toArray(String[]::new);
    int status = Ntk.run(strings, new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8));
    return new Result(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
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

  static List<Long> shape(Path npy) throws IOException {
    return Arrays.stream(Npy.readHeader(npy).shape()).boxed().toList();
  }
}
