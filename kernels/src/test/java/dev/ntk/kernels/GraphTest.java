package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.engine.Backend;
import java.util.EnumSet;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@code Aggregate}: kernels computed by hand on a two-node graph (identity, all-ones and one-edge
 * patterns), Monte Carlo of a wide finite graph network, the {@code cpu} and {@code tensorflow}
 * backends against each other, the dense form of sparse patterns, and errors naming the layer.
 */
class GraphTest {
  private static final int WIDTH = 256;
  private static final Set<Get> BOTH = EnumSet.allOf(Get.class);
  private static NDManager manager;

  @BeforeAll
  static void setUp() {
    manager = Tensors.newManager();
  }

  @AfterAll
  static void tearDown() {
    manager.close();
  }

  private static NDArray array(double[] v, long... shape) {
    return Tensors.create(manager, v, new Shape(shape), DataType.FLOAT64);
  }

  /** {@code n} random 0/1 adjacencies of {@code nodes} nodes with self-loops, weights 0.5. */
  private static NDArray randomPatterns(int n, int nodes, long seed) {
    Random r = new Random(seed);
    double[] a = new double[n * nodes * nodes];
    for (int b = 0; b < n; b++) {
      for (int i = 0; i < nodes; i++) {
        for (int j = 0; j < nodes; j++) {
          a[(b * nodes + i) * nodes + j] = i == j || r.nextBoolean() ? 0.5 : 0;
        }
      }
    }
    return array(a, n, nodes, nodes);
  }

  /**
   * Nodes {@code x1 = (1, 2)}, {@code x2 = (0.5, -1)}, one channel, then {@code GlobalSumPool}:
   * the identity pattern leaves the kernel {@code (1 + 2)(0.5 - 1) = -1.5}; the all-ones pattern
   * makes every node the sum, {@code (3, 3)} and {@code (-0.5, -0.5)}: {@code 4 * 3 * -0.5 = -6};
   * the single edge from node 0 to node 1 ({@code A[0, 1] = 1}) moves node 0 to node 1 and
   * empties node 0, {@code (0, 1)} and {@code (0, 0.5)}: {@code 0.5} (the reverse edge would give
   * {@code 2 * -1 = -2}). A {@code Dense(W_std 1.5, b_std 0.1)} on top gives {@code 2.25 k +
   * 0.01} for both kernels (the inputs' NTK is 0).
   */
  @Test
  void handComputedPatterns() {
    Layer model = Stax.serial(Stax.aggregate(), Stax.globalSumPool(), Stax.dense(3, 1.5, 0.1));
    NDArray x1 = array(new double[] {1, 2}, 1, 2, 1);
    NDArray x2 = array(new double[] {0.5, -1}, 1, 2, 1);
    double[][] patterns = {{1, 0, 0, 1}, {1, 1, 1, 1}, {0, 1, 0, 0}, {0, 0, 1, 0}};
    double[] expected = {-1.5, -6, 0.5, -2};
    for (Backend backend : new Backend[] {Backend.CPU, Backend.TENSORFLOW}) {
      for (int c = 0; c < patterns.length; c++) {
        NDArray a = array(patterns[c], 1, 2, 2);
        Kernel k = model.kernelFn().withBackend(backend).apply(x1, x2, a, a, BOTH);
        String what = backend.key() + " pattern " + c;
        assertEquals(2.25 * expected[c] + 0.01, k.nngp().toDoubleArray()[0], 1e-12, what);
        assertEquals(2.25 * expected[c] + 0.01, k.ntk().toDoubleArray()[0], 1e-12, what);
      }
      // x1 with itself under the all-ones pattern: 4 * 3 * 3.
      NDArray ones = array(new double[] {1, 1, 1, 1}, 1, 2, 2);
      assertEquals(2.25 * 36 + 0.01,
          model.kernelFn().withBackend(backend).apply(x1, null, ones, null, BOTH).nngp().toDoubleArray()[0], 1e-12);
    }
  }

  /** Identity patterns leave any kernel as the model without its {@code Aggregate} layers gives it. */
  @Test
  void identityPatternsChangeNothing() {
    Layer body = Stax.serial(Stax.dense(8, 1.3, 0.1), Stax.relu(), Stax.aggregate(), Stax.dense(8, 1.2, 0.2),
        Stax.erf(), Stax.aggregate(), Stax.globalAvgPool(), Stax.dense(1));
    Layer plain = Stax.serial(Stax.dense(8, 1.3, 0.1), Stax.relu(), Stax.dense(8, 1.2, 0.2), Stax.erf(),
        Stax.globalAvgPool(), Stax.dense(1));
    NDArray x1 = KernelTesting.randomImages(manager, 3, new long[] {4, 2}, 1);
    NDArray x2 = KernelTesting.randomImages(manager, 2, new long[] {4, 2}, 2);
    double[] eye = new double[16];
    for (int i = 0; i < 4; i++) {
      eye[i * 5] = 1;
    }
    NDArray i1 = Tensors.create(manager, eye, new Shape(1, 4, 4), DataType.FLOAT64).broadcast(3, 4, 4);
    NDArray i2 = Tensors.create(manager, eye, new Shape(1, 4, 4), DataType.FLOAT64).broadcast(2, 4, 4);
    Kernel k = body.kernelFn().apply(x1, x2, i1, i2, BOTH);
    Kernel p = plain.kernelFn().apply(x1, x2);
    for (Get g : Get.values()) {
      assertArrayEquals(p.get(g).toDoubleArray(), k.get(g).toDoubleArray(), 1e-12, g.key());
    }
  }

  /**
   * Dense-Relu-Aggregate-Dense-Relu-Aggregate-GlobalAvgPool-Dense, finite and wide, against its
   * kernels: the finite network runs on x1 and x2 together with their patterns stacked, so the
   * estimate holds the x1-x2 block next to the blocks of each with itself, and the analytic
   * kernels of x1 with x2 (given patterns apart) must equal that block of the stacked kernel.
   */
  @Test
  void analyticKernelsMatchWideFiniteGraphNetwork() {
    int w = WIDTH;
    Layer model = Stax.serial(Stax.dense(w, 1.4, 0.1), Stax.relu(), Stax.aggregate(), Stax.dense(w, 1.2, 0.1),
        Stax.relu(), Stax.aggregate(), Stax.globalAvgPool(), Stax.dense(w, 1.0, null));
    long[] shape = {4, 3};
    NDArray x1 = KernelTesting.randomImages(manager, 3, shape, 301);
    NDArray x2 = KernelTesting.randomImages(manager, 2, shape, 302);
    NDArray a1 = randomPatterns(3, 4, 303);
    NDArray a2 = randomPatterns(2, 4, 304);
    NDArray x = x1.concat(x2, 0);
    NDArray a = a1.concat(a2, 0);
    Kernel both = model.kernelFn().apply(x, null, a, null, BOTH);
    Kernel cross = model.kernelFn().apply(x1, x2, a1, a2, BOTH);
    for (Get g : Get.values()) {
      double[] block = both.get(g).get("0:3, 3:").toDoubleArray();
      assertArrayEquals(block, cross.get(g).toDoubleArray(), 1e-12, g.key() + ": x1-x2 block");
    }
    try (Graph.PatternScope s = Graph.withPattern(a)) {
      KernelTesting.assertMatchesMonteCarlo("graph NNGP", both.nngp().toDoubleArray(),
          MonteCarlo.nngp(model, x, x, 64, 7), 3.0 / w, 0.15);
      KernelTesting.assertMatchesMonteCarlo("graph NTK", both.ntk().toDoubleArray(),
          MonteCarlo.ntk(model, x, x, 32, 11), 3.0 / w, 0.15);
    }
  }

  @Test
  void cpuAndTensorFlowAgreeInFloat64() {
    Layer model = Stax.serial(Stax.conv(6, new int[] {2}, null, "SAME", 1.3, 0.1), Stax.relu(), Stax.aggregate(),
        Stax.dense(6, 1.2, 0.1), Stax.erf(), Stax.aggregate(), Stax.avgPool(new int[] {2}, null, "VALID"),
        Stax.flatten(), Stax.dense(1));
    NDArray x1 = KernelTesting.randomImages(manager, 4, new long[] {5, 3}, 21);
    NDArray x2 = KernelTesting.randomImages(manager, 3, new long[] {5, 3}, 22);
    NDArray a1 = randomPatterns(4, 5, 23);
    NDArray a2 = randomPatterns(3, 5, 24);
    for (boolean same : new boolean[] {true, false}) {
      Kernel cpu = model.kernelFn().withBackend(Backend.CPU).apply(x1, same ? null : x2, a1, a2, BOTH);
      Kernel tf = model.kernelFn().withBackend(Backend.TENSORFLOW).apply(x1, same ? null : x2, a1, a2, BOTH);
      for (Get g : Get.values()) {
        double err = KernelTesting.relativeError(cpu.get(g).toDoubleArray(), tf.get(g).toDoubleArray());
        assertTrue(err < 1e-12, g + (same ? " (x1 itself)" : "") + ": cpu and tensorflow differ by " + err);
      }
      double cov1 = KernelTesting.relativeError(cpu.cov1().toDoubleArray(), tf.cov1().toDoubleArray());
      assertTrue(cov1 < 1e-12, "variances differ by " + cov1);
    }
  }

  /**
   * With {@code Dropout} in train mode the kernel of x1 with itself runs the rules once more per
   * input (each example with itself), where both sides read the row input's pattern: off the
   * diagonal it is the kernel of x1 against a copy of itself, on it larger (the variance over the
   * keep probability); both backends agree, and float32 follows float64.
   */
  @Test
  void dropoutSameExampleRunReadsTheRowPattern() {
    Layer model = Stax.serial(Stax.dense(6, 1.3, 0.1), Stax.relu(), Stax.dropout(0.8, "train"), Stax.aggregate(),
        Stax.globalAvgPool(), Stax.dense(1));
    NDArray x = KernelTesting.randomImages(manager, 3, new long[] {4, 2}, 41);
    NDArray a = randomPatterns(3, 4, 42);
    Kernel same = model.kernelFn().withBackend(Backend.CPU).apply(x, null, a, null, BOTH);
    Kernel copy = model.kernelFn().withBackend(Backend.CPU).apply(x, x.duplicate(), a, a, BOTH);
    Kernel tf = model.kernelFn().withBackend(Backend.TENSORFLOW).apply(x, null, a, null, BOTH);
    Kernel f32 = model.kernelFn().apply(x.toType(DataType.FLOAT32, false), null, a, null, BOTH);
    for (Get g : Get.values()) {
      double[] s = same.get(g).toDoubleArray();
      double[] c = copy.get(g).toDoubleArray();
      for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++) {
          if (i != j) {
            assertEquals(c[i * 3 + j], s[i * 3 + j], 1e-12, g + " off the diagonal");
          } else {
            assertTrue(s[i * 4] > c[i * 4] * 1.01, g + " on the diagonal: " + s[i * 4] + " against " + c[i * 4]);
          }
        }
      }
      assertTrue(KernelTesting.relativeError(tf.get(g).toDoubleArray(), s) < 1e-12, g + ": cpu and tensorflow");
      assertTrue(KernelTesting.relativeError(Tensors.toDoubles(f32.get(g)), s) < 1e-5, g + ": float32");
    }
  }

  /** An edge list makes the dense pattern that counts each edge, padding (-1) left out. */
  @Test
  void sparsePatternsBecomeDense() {
    long[] edges = {0, 1, 2, 0, 0, 1, -1, 2, /* example 1: */ 1, 1, -1, -1, -1, -1, -1, -1};
    double[] dense = Graph.densePattern("p.npy", edges, new long[] {2, 4, 2}, 3);
    assertArrayEquals(new double[] {0, 2, 0, 0, 0, 0, 1, 0, 0, /* example 1: */ 0, 0, 0, 0, 1, 0, 0, 0, 0}, dense);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Graph.densePattern("p.npy", new long[] {0, 3}, new long[] {1, 1, 2}, 3));
    assertTrue(e.getMessage().contains("p.npy") && e.getMessage().contains("outside the 3 nodes"), e.getMessage());
  }

  /**
   * A {@code SPARSE} model given edge lists gives the kernels and the finite outputs of the {@code
   * DENSE} model given the adjacency they make (a repeated edge counts twice, a padding edge not).
   */
  @Test
  void sparseEdgeListsGiveTheDenseKernels() {
    Layer dense = Stax.serial(Stax.dense(4, 1.2, 0.1), Stax.relu(), Stax.aggregate(), Stax.globalAvgPool(),
        Stax.dense(1));
    Layer sparse = Stax.serial(Stax.dense(4, 1.2, 0.1), Stax.relu(), Stax.aggregate(null, "SPARSE"),
        Stax.globalAvgPool(), Stax.dense(1));
    NDArray x1 = KernelTesting.randomImages(manager, 2, new long[] {3, 2}, 31);
    NDArray x2 = KernelTesting.randomImages(manager, 1, new long[] {3, 2}, 32);
    double[] e1 = {0, 1, 1, 2, 1, 2, -1, 0, /* example 1: */ 2, 2, 0, 1, 1, 0, -1, -1};
    double[] e2 = {0, 0, 2, 1, 2, 1, 1, 2};
    NDArray s1 = array(e1, 2, 4, 2);
    NDArray s2 = array(e2, 1, 4, 2);
    NDArray d1 = array(Graph.densePattern("e1", Graph.edges("e1", e1), new long[] {2, 4, 2}, 3), 2, 3, 3);
    NDArray d2 = array(Graph.densePattern("e2", Graph.edges("e2", e2), new long[] {1, 4, 2}, 3), 1, 3, 3);
    Kernel k = sparse.kernelFn().apply(x1, x2, s1, s2, BOTH);
    Kernel want = dense.kernelFn().apply(x1, x2, d1, d2, BOTH);
    for (Get g : Get.values()) {
      assertArrayEquals(want.get(g).toDoubleArray(), k.get(g).toDoubleArray(), 1e-14, g.key());
    }
    Params params = sparse.init(new java.util.SplittableRandom(3), java.util.List.of(Spec.input(new Shape(3, 2))),
        manager, DataType.FLOAT64);
    NDArray ySparse;
    NDArray yDense;
    try (Graph.PatternScope s = Graph.withPattern(s1)) {
      ySparse = sparse.apply(params, x1);
    }
    try (Graph.PatternScope s = Graph.withPattern(d1)) {
      yDense = dense.apply(params, x1);
    }
    assertArrayEquals(yDense.toDoubleArray(), ySparse.toDoubleArray(), 1e-14);
    IllegalArgumentException notIndices = assertThrows(IllegalArgumentException.class,
        () -> sparse.kernelFn().apply(x1, x2, s1.add(0.5), s2, BOTH));
    assertTrue(notIndices.getMessage().contains("pattern1") && notIndices.getMessage().contains("node indices"),
        notIndices.getMessage());
    IllegalArgumentException dims = assertThrows(IllegalArgumentException.class,
        () -> sparse.kernelFn().apply(x1, x2, d1, s2, BOTH));
    assertTrue(dims.getMessage().contains("serial[2].Aggregate") && dims.getMessage().contains("SPARSE")
        && dims.getMessage().contains("[2, 3, 3]"), dims.getMessage());
  }

  @Test
  void errorsNameTheLayerAndThePattern() {
    Layer model = Stax.serial(Stax.dense(4), Stax.aggregate(), Stax.globalAvgPool());
    NDArray x1 = KernelTesting.randomImages(manager, 2, new long[] {3, 2}, 1);
    NDArray x2 = KernelTesting.randomImages(manager, 1, new long[] {3, 2}, 2);
    NDArray good1 = randomPatterns(2, 3, 3);
    NDArray good2 = randomPatterns(1, 3, 4);
    IllegalArgumentException missing = assertThrows(IllegalArgumentException.class,
        () -> model.kernelFn().apply(x1, x2));
    assertTrue(missing.getMessage().contains("serial[1].Aggregate") && missing.getMessage().contains("pattern1")
        && missing.getMessage().contains("[2, 3, 3]"), missing.getMessage());
    IllegalArgumentException shape = assertThrows(IllegalArgumentException.class,
        () -> model.kernelFn().apply(x1, x2, good1, randomPatterns(1, 4, 5), BOTH));
    assertTrue(shape.getMessage().contains("serial[1].Aggregate") && shape.getMessage().contains("pattern2")
        && shape.getMessage().contains("[1, 3, 3]") && shape.getMessage().contains("[1, 4, 4]"), shape.getMessage());
    IllegalArgumentException none = assertThrows(IllegalArgumentException.class,
        () -> model.kernelFn().apply(x1, x2, good1, null, BOTH));
    assertTrue(none.getMessage().contains("pattern2 is missing"), none.getMessage());
    assertThrows(IllegalArgumentException.class,
        () -> Stax.dense(1).kernelFn().apply(x1, x2, good1, good2, BOTH));

    ModelException vectors = assertThrows(ModelException.class, () -> Stax.serial(Stax.flatten(), Stax.aggregate())
        .kernelFn().apply(x1, x2, good1, good2, BOTH));
    assertTrue(vectors.getMessage().contains("serial[1].Aggregate") && vectors.getMessage().contains("no node axis"),
        vectors.getMessage());
    ModelException axes = assertThrows(ModelException.class, () -> ModelSpec.parse(
        "{\"serial\": [{\"Dense\": {\"out_dim\": 2}}, {\"Aggregate\": {\"channel_axis\": 1}}]}").kernelFn()
        .apply(x1, x2, good1, good2, BOTH));
    assertTrue(axes.getMessage().contains("serial[1].Aggregate") && axes.getMessage().contains("channel_axis"),
        axes.getMessage());
    ModelException grids = assertThrows(ModelException.class, () -> Stax.serial(Stax.aggregate(),
        Stax.avgPool(new int[] {2}, null, "VALID"), Stax.aggregate(), Stax.globalAvgPool()).kernelFn()
        .apply(x1, x2, good1, good2, BOTH));
    assertTrue(grids.getMessage().contains("serial[2].Aggregate") && grids.getMessage().contains("serial[0]"),
        grids.getMessage());

    assertTrue(Graph.readsPatterns(model) && Graph.readsPatterns(Stax.repeat(Stax.aggregate(), 2)));
    assertTrue(!Graph.readsPatterns(Stax.serial(Stax.dense(4), Stax.globalAvgPool())));

    ModelException finite = assertThrows(ModelException.class, () -> Stax.aggregate().apply(Params.EMPTY, x1));
    assertTrue(finite.getMessage().contains("Graph.withPattern"), finite.getMessage());
  }

  /** The finite layer: {@code A^T x} per example, the pattern checked against the batch. */
  @Test
  void finiteAggregateSumsPredecessors() {
    NDArray x = array(new double[] {1, 10, 2, 20, 3, 30}, 1, 3, 2);
    NDArray a = array(new double[] {0, 1, 1, 0, 0, 1, 0, 0, 0}, 1, 3, 3);
    try (Graph.PatternScope s = Graph.withPattern(a)) {
      // node 1 <- node 0; node 2 <- nodes 0 and 1; node 0 has none.
      assertArrayEquals(new double[] {0, 0, 1, 10, 3, 30}, Stax.aggregate().apply(Params.EMPTY, x).toDoubleArray(),
          1e-15);
      ModelException wrong = assertThrows(ModelException.class,
          () -> Stax.aggregate().apply(Params.EMPTY, x.concat(x, 0)));
      assertTrue(wrong.getMessage().contains("(2, 3, 3)"), wrong.getMessage());
    }
  }

  /**
   * The {@code cuda} engine (host-compiled) runs graph networks: the patterns are plan inputs in
   * buffers, each {@code Aggregate} an attend of two launches, a constant NTK spread over the nodes
   * a constant block; it equals {@code cpu} to 1e-12, x1 with itself and with x2, and {@code auto}
   * may pick it.
   */
  @Test
  void cudaAgreesWithCpuOnGraphs() {
    Layer conv = Stax.serial(Stax.conv(4, new int[] {2}, null, "SAME", 1.3, 0.1), Stax.relu(), Stax.aggregate(),
        Stax.conv(4, new int[] {2}, null, "SAME", 1.2, 0.2), Stax.erf(), Stax.aggregate(), Stax.globalAvgPool(),
        Stax.dense(1));
    Layer raw = Stax.serial(Stax.aggregate(), Stax.dense(4, 1.1, 0.1), Stax.relu(), Stax.aggregate(),
        Stax.flatten(), Stax.dense(1));
    NDArray x1 = KernelTesting.randomImages(manager, 3, new long[] {4, 2}, 41);
    NDArray x2 = KernelTesting.randomImages(manager, 2, new long[] {4, 2}, 42);
    NDArray a1 = randomPatterns(3, 4, 43);
    NDArray a2 = randomPatterns(2, 4, 44);
    try (dev.ntk.kernels.cuda.HostDevice host = new dev.ntk.kernels.cuda.HostDevice()) {
      dev.ntk.kernels.cuda.CudaEngine engine = new dev.ntk.kernels.cuda.CudaEngine(host);
      for (Layer model : new Layer[] {conv, raw}) {
        Plan plan = Plan.compile(model, new Shape(4, 2), BOTH);
        assertTrue(dev.ntk.kernels.cuda.CudaSource.runs(plan.schedule()), model.toString());
        for (boolean same : new boolean[] {true, false}) {
          Kernel cpu = model.kernelFn().withBackend(Backend.CPU).apply(x1, same ? null : x2, a1, same ? null : a2,
              BOTH);
          Kernel cuda = model.kernelFn().withCuda(engine).apply(x1, same ? null : x2, a1, same ? null : a2, BOTH);
          for (Get g : Get.values()) {
            double err = KernelTesting.relativeError(cuda.get(g).toDoubleArray(), cpu.get(g).toDoubleArray());
            assertTrue(err < 1e-12, model + (same ? " (x1 with itself) " : " ") + g + ": cuda and cpu differ by "
                + err);
          }
        }
      }
    }
  }
}
