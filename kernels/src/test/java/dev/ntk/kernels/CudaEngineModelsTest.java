package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.cuda.CudaEngine;
import dev.ntk.kernels.cuda.CudaSource;
import dev.ntk.kernels.cuda.Device;
import dev.ntk.kernels.cuda.HostDevice;
import dev.ntk.kernels.engine.Backend;
import dev.ntk.kernels.engine.CpuBackend;
import dev.ntk.kernels.engine.Expr;
import dev.ntk.kernels.engine.Schedule;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The {@code cuda} engine's generated kernels, compiled as C on the host ({@link HostDevice}),
 * against the {@code cpu} engine on every model of the kernel tests (the fully connected ones of
 * {@link TestModels}, the convolutional ones of {@link ConvolutionalTest}, a deep convolutional
 * network with both readouts) and against the golden kernels: float64 to 1e-12. This is the check
 * machines without a GPU run. With the system property {@code ntk.cuda.device=0} ({@link
 * CudaEngine#DEVICE_PROPERTY}; {@code host} by default here) the same tests run on GPU 0 through
 * NVRTC and the driver: bench/gpu/check.sh runs them so on the device machine ({@code
 * bench/gpu/GpuTests.java}).
 */
class CudaEngineModelsTest {
  private static Device device;
  private static CudaEngine engine;

  @BeforeAll
  static void setUp() {
    device = CudaEngine.open(System.getProperty(CudaEngine.DEVICE_PROPERTY, "host"));
    engine = new CudaEngine(device);
  }

  @AfterAll
  static void tearDown() {
    device.close();
  }

  private static double[] random(int n, long seed) {
    Random r = new Random(seed);
    double[] v = new double[n];
    for (int i = 0; i < n; i++) {
      v[i] = r.nextGaussian();
    }
    return v;
  }

  private static float[] floats(double[] v) {
    float[] f = new float[v.length];
    for (int i = 0; i < v.length; i++) {
      f[i] = (float) v[i];
    }
    return f;
  }

  private static double[] doubles(Object a) {
    if (a instanceof double[] d) {
      return d;
    }
    float[] f = (float[]) a;
    double[] d = new double[f.length];
    for (int i = 0; i < f.length; i++) {
      d[i] = f[i];
    }
    return d;
  }

  /**
   * cuda (host-compiled) against cpu on {@code model} for inputs of per-example {@code shape}, both
   * dtypes; the operations of its plan.
   */
  private static Set<Expr.Op> agree(String name, Layer model, long[] shape, int n1, int n2, boolean float32) {
    Plan plan = Plan.compile(model, new Shape(shape), EnumSet.of(Get.NNGP, Get.NTK));
    int d = Math.toIntExact(new Shape(shape).size());
    agree(name, plan, random(n1 * d, 11), random(n2 * d, 12), n1, n2, float32);
    return operations(plan);
  }

  /** {@link #agree(String, Layer, long[], int, int, boolean)} on a compiled plan and given inputs. */
  private static void agree(String name, Plan plan, double[] x1, double[] x2, int n1, int n2, boolean float32) {
    agree(name, plan, x1, x2, null, n1, n2, float32);
  }

  /**
   * As {@link #agree(String, Plan, double[], double[], int, int, boolean)} for a graph model, with
   * the patterns {@code patterns[0] (n1, nodes, nodes)} of x1 and {@code patterns[1]} of x2 (null
   * for a model without {@code Aggregate}).
   */
  private static void agree(String name, Plan plan, double[] x1, double[] x2, double[][] patterns, int n1, int n2,
      boolean float32) {
    for (boolean same : new boolean[] {true, false}) {
      int m2 = same ? n1 : n2;
      Map<String, Object> inputs = patternInputs(plan, patterns, same, n1, n2, new double[0]);
      Map<String, double[]> cpu = plan.run(CpuBackend.float64(), x1, same ? null : x2, inputs, n1, m2, 1);
      Map<String, Object> cuda = engine.run(plan, x1, same ? null : x2, inputs, n1, m2);
      assertEquals(cpu.keySet(), cuda.keySet(), name);
      for (String k : cpu.keySet()) {
        double err = difference(doubles(cuda.get(k)), cpu.get(k));
        assertTrue(err < 1e-12, name + (same ? " (x1 with itself) " : " ") + k + ": cuda and cpu differ by " + err);
      }
      if (!float32) {
        continue;
      }
      Map<String, Object> inputs32 = patternInputs(plan, patterns, same, n1, n2, new float[0]);
      Map<String, float[]> cpu32 = plan.run(CpuBackend.float32(), floats(x1), same ? null : floats(x2), inputs32, n1,
          m2, 1);
      Map<String, Object> cuda32 = engine.run(plan, floats(x1), same ? null : floats(x2), inputs32, n1, m2);
      for (String k : cpu32.keySet()) {
        assertTrue(cuda32.get(k) instanceof float[], name + " " + k + " in float32");
        double err = difference(doubles(cuda32.get(k)), doubles(cpu32.get(k)));
        assertTrue(err < 1e-5, name + " float32 " + k + ": cuda and cpu differ by " + err);
      }
    }
  }

  /** The plan inputs of the patterns of x1 and (unless {@code same}) x2, in the dtype of {@code like}. */
  private static Map<String, Object> patternInputs(Plan plan, double[][] patterns, boolean same, int n1, int n2,
      Object like) {
    return patterns == null ? Map.of() : plan.patternInputs(patterns[0], patternShape(patterns[0], n1),
        same ? null : patterns[1], same ? null : patternShape(patterns[1], n2), n1, same ? n1 : n2, like);
  }

  /** The shape {@code (n, nodes, nodes)} of {@code n} square patterns. */
  private static long[] patternShape(double[] patterns, int n) {
    long nodes = Math.round(Math.sqrt(patterns.length / (double) n));
    return new long[] {n, nodes, nodes};
  }

  /**
   * {@link KernelTesting#relativeError}, or where the expected kernel is all zeros (a {@code Sign}
   * layer zeroes the NTK below it) the norm of the actual one.
   */
  private static double difference(double[] actual, double[] expected) {
    return KernelTesting.norm(expected) == 0 ? KernelTesting.norm(actual) : KernelTesting.relativeError(actual,
        expected);
  }

  @Test
  void fullyConnectedModelsAgreeWithTheCpuEngine() {
    boolean float32 = true;
    for (Map.Entry<String, Layer> e : TestModels.all().entrySet()) {
      agree(e.getKey(), e.getValue(), new long[] {5}, 5, 4, float32);
      float32 = false; // float32 on the first model only: each dtype is a compilation, the test's main cost
    }
  }

  @Test
  void convolutionalModelsAgreeWithTheCpuEngine() {
    boolean float32 = true;
    for (Map.Entry<String, Object[]> e : ConvolutionalTest.models().entrySet()) {
      agree(e.getKey(), (Layer) e.getValue()[0], (long[]) e.getValue()[1], 3, 2, float32);
      float32 = false;
    }
  }

  /**
   * Locally connected layers: per-pixel blocks, and before the pools each one's per-pixel output
   * spread and kept on the diagonal of a pixel-pair block; then a DotGeneral over one spatial axis
   * (a pixel map that drops the axis). One plan, one compilation.
   */
  @Test
  void locallyConnectedAndDotGeneralModelAgreesWithTheCpuEngine() {
    Layer model = Stax.serial(Stax.convLocal(2, new int[] {2, 2}, new int[] {1, 2}, "CIRCULAR", 1.3, 0.1),
        Stax.relu(), Stax.convLocal(2, new int[] {2, 1}, null, "SAME", 1.1, 0.2,
            Linear.Parameterization.STANDARD), Stax.avgPool(new int[] {2, 1}, null, "VALID"), Stax.erf(),
        Stax.convLocal(2, new int[] {1, 1}, null, "VALID", 1.2, 0.1),
        Stax.dotGeneral(null, new double[] {1, -1, 0.5}, new int[][][] {{{1}, {0}}, {{}, {}}}), Stax.globalAvgPool(),
        Stax.dense(1));
    agree("ConvLocal and DotGeneral network", model, new long[] {4, 3, 2}, 3, 2, false);
  }

  /** The benchmark's network (21 x [Conv(3x3, SAME), Relu]) on small images, with both readouts. */
  @Test
  void deepConvolutionalNetworkAgreesWithTheCpuEngine() {
    for (Layer readout : List.of(Stax.flatten(), Stax.globalAvgPool())) {
      Layer[] layers = new Layer[44];
      for (int k = 0; k < 21; k++) {
        layers[2 * k] = Stax.conv(1, new int[] {3, 3}, null, "SAME", 1.0, null);
        layers[2 * k + 1] = Stax.relu();
      }
      layers[42] = readout;
      layers[43] = Stax.dense(1, 1.0, null);
      agree("cnn21 " + readout, Stax.serial(layers), new long[] {4, 4, 3}, 3, 2, false);
    }
  }

  /**
   * Attention ({@code GlobalSelfAttention}: the softmax, the attend's two products, positional
   * embeddings as constant blocks) on every model of {@link AttentionTest#backendModels}, float32
   * on the first; the models are checked to contain each of the three.
   */
  @Test
  void attentionModelsAgreeWithTheCpuEngine() {
    Set<Expr.Op> ops = EnumSet.noneOf(Expr.Op.class);
    boolean float32 = true;
    for (Map.Entry<String, Object[]> e : AttentionTest.backendModels().entrySet()) {
      ops.addAll(agree(e.getKey(), (Layer) e.getValue()[0], (long[]) e.getValue()[1], 3, 2, float32));
      float32 = false;
    }
    assertTrue(ops.containsAll(EnumSet.of(Expr.Op.SOFTMAX, Expr.Op.ATTEND, Expr.Op.BLOCK)), "the models use " + ops);
  }

  /**
   * {@code DotGeneral} over several spatial axes ({@link DotGeneralTest#severalAxesModels}), which
   * weighs the pixel-pair block by a constant block before summing it or mapping it.
   */
  @Test
  void dotGeneralOverSeveralSpatialAxesAgreesWithTheCpuEngine() {
    for (Map.Entry<String, Object[]> e : DotGeneralTest.severalAxesModels().entrySet()) {
      Set<Expr.Op> ops = agree(e.getKey(), (Layer) e.getValue()[0], (long[]) e.getValue()[1], 3, 2, false);
      assertTrue(ops.contains(Expr.Op.BLOCK), e.getKey() + " uses " + ops);
    }
  }

  /**
   * Attention between convolutions: two attention layers (softmax, then identity with summed
   * embeddings in the values) in a conv net with pooling, on a 3 x 3 grid, float32 too; and on one
   * row input against two, so that the host splits each item over several thread blocks ({@link
   * HostDevice#parallelBlocks}), the softmax's rows and the attend's entries among them.
   */
  @Test
  void attentionInsideAConvolutionalNetworkAgreesWithTheCpuEngine() {
    Layer model = Stax.serial(Stax.conv(4, new int[] {2, 2}, null, "SAME", 1.3, 0.1), Stax.relu(),
        Stax.conv(4, new int[] {2, 2}, null, "SAME", 1.2, 0.2), Stax.relu(),
        Stax.globalSelfAttention(4, 4, 2, 2, true, 1.3, 1.1, 0.9, 1.2, 0.1, "SOFTMAX"), Stax.erf(),
        Stax.conv(4, new int[] {3, 3}, null, "SAME", 1.1, 0.1),
        Attention.globalSelfAttention(4, 4, 2, 2, true, 1.2, 1.0, 0.8, 1.1, null, "IDENTITY", "SUM", 0.7, true),
        Stax.relu(), Stax.avgPool(new int[] {2, 2}, null, "VALID"), Stax.flatten(), Stax.dense(1));
    Plan plan = Plan.compile(model, new Shape(3, 3, 2), EnumSet.of(Get.NNGP, Get.NTK));
    agree("attention in a conv net", plan, random(3 * 18, 11), random(2 * 18, 12), 3, 2, true);
    agree("attention in a conv net, items in chunks", plan, random(18, 13), random(2 * 18, 14), 1, 2, false);
    Set<Expr.Op> ops = operations(plan);
    assertTrue(ops.containsAll(EnumSet.of(Expr.Op.SOFTMAX, Expr.Op.ATTEND, Expr.Op.BLOCK, Expr.Op.PIXELS)),
        "the model uses " + ops);
  }

  /**
   * The operations added after the engine (erfc, tanh, atan, integer pow, sign, select) through the
   * layers that use them: the named functions of ElementwiseNumerical and Elementwise, Gelu,
   * Sigmoid_like, Gabor, Hermite (on inputs of norm sqrt(d), so that its input variance is 1) and a
   * user closed form, each group one plan (one compilation per dtype), checked to contain every op.
   */
  @Test
  void layersOfTheLaterOperationsAgreeWithTheCpuEngine() {
    Layer named = Stax.serial(Stax.fanOut(8), Stax.parallel(
        Stax.serial(Stax.dense(6, 1.0, null), Stax.hermite(3)),
        Stax.serial(Stax.dense(6, 1.3, 0.1), Stax.sigmoidLike()),
        Stax.serial(Stax.dense(6, 1.2, 0.2), Stax.gelu()),
        Stax.serial(Stax.dense(6, 1.1, 0.1), Stax.gelu(true)),
        Stax.serial(Stax.dense(6, 1.4, 0.1), Stax.gabor()),
        Stax.serial(Stax.dense(6, 1.2, 0.1), Stax.elementwiseNumerical("tanh", 5)),
        Stax.serial(Stax.dense(6, 1.1, 0.3), Stax.elementwiseNumerical("elu", 5)),
        Stax.serial(Stax.dense(6, 1.0, 0.1), Stax.elementwise("selu"))), Stax.fanInSum(), Stax.dense(2));
    // A made-up form (only the engines' agreement matters) whose cov12-derivative needs sign and pow.
    Layer user = Stax.serial(Stax.dense(6, 1.2, 0.1), Stax.elementwise((k, q1, q2) -> {
      Expr t = k.div(q1.times(q2).sqrt().plus(1));
      return t.atan().plus(t.pow(3).times(0.2)).plus(k.abs().times(0.3)).plus(t.tanh().times(0.4))
          .plus(t.times(-1).erfc().times(0.1)).plus(t.select(t.times(t), t.times(0.5)));
    }), Stax.dense(1));
    Set<Expr.Op> ops = EnumSet.noneOf(Expr.Op.class);
    boolean float32 = true;
    for (Map.Entry<String, Layer> e : List.of(Map.entry("named functions", named), Map.entry("user closed form", user))) {
      Plan plan = Plan.compile(e.getValue(), new Shape(5), EnumSet.of(Get.NNGP, Get.NTK));
      ops.addAll(operations(plan));
      agree(e.getKey(), plan, unitRows(random(4 * 5, 11), 5), unitRows(random(3 * 5, 12), 5), 4, 3, float32);
      float32 = false;
    }
    assertTrue(ops.containsAll(EnumSet.of(Expr.Op.ERFC, Expr.Op.TANH, Expr.Op.ATAN, Expr.Op.POW, Expr.Op.SIGN,
        Expr.Op.SELECT)), "the models use " + ops);
  }

  /**
   * Every named function of {@code Elementwise} (its exact kernel: closed forms, and the nested
   * quadratures of those without one) and of {@code ElementwiseNumerical} (neural-tangents'
   * Gauss–Hermite rule, folded for the odd and even functions), each after its own Dense layer, in one
   * plan per layer kind. Inputs of different variances: neural-tangents' rule is then not symmetric in
   * its two inputs, so the kernel of x1 with itself is computed whole, not mirrored (the cuda engine
   * mirrored it, 1e-2 off below the diagonal, before it read {@link Plan#symmetric}).
   */
  @Test
  void everyNamedFunctionAgreesWithTheCpuEngine() {
    ElementwiseFunction[] fns = ElementwiseFunction.values();
    for (boolean exact : new boolean[] {true, false}) {
      Layer[] branches = new Layer[fns.length];
      for (int f = 0; f < fns.length; f++) {
        String fn = fns[f].jsonName();
        branches[f] = Stax.serial(Stax.dense(6, 1.0 + 0.05 * f, 0.1),
            exact ? Stax.elementwise(fn) : Stax.elementwiseNumerical(fn, 6));
      }
      Layer model = Stax.serial(Stax.fanOut(fns.length), Stax.parallel(branches), Stax.fanInSum(), Stax.dense(1));
      Plan plan = Plan.compile(model, new Shape(5), EnumSet.of(Get.NNGP, Get.NTK));
      agree((exact ? "Elementwise" : "ElementwiseNumerical") + " of every named function", plan,
          random(4 * 5, 13), random(3 * 5, 14), 4, 3, !exact);
    }
  }

  /**
   * The model families of the other kernel tests, each on the inputs its test uses: the activations
   * of {@link ActivationsTest#models}, the locally connected networks of {@link ConvLocalTest},
   * the users' closed forms of {@link UserElementwiseTest}, LayerNorm and Dropout on images ({@link
   * NormalizationTest#imageModel}), and the bodies of {@link SpatialTest} keeping the covariance of
   * every two output pixels or of each pixel with itself (outputs with blocks). A user's quadrature
   * ({@link UserElementwiseTest#quadratureModels}) calls Java per entry: refused by name, and {@code
   * auto} runs it on {@code cpu}.
   */
  @Test
  void theOtherModelFamiliesAgreeWithTheCpuEngine() {
    long[] dense = {5};
    long[] image = {5, 4, 2};
    Map<String, Object[]> models = new LinkedHashMap<>();
    ActivationsTest.models().forEach((name, m) -> models.put("activations, " + name,
        new Object[] {m, name.startsWith("convolutional") ? image : dense}));
    ConvLocalTest.networks().forEach(a -> models.put((String) a.get()[0], new Object[] {a.get()[2], a.get()[1]}));
    UserElementwiseTest.models().forEach((name, m) -> models.put("user closed forms, " + name,
        new Object[] {m[1], name.equals("convolutional") ? image : dense}));
    for (boolean pool : new boolean[] {false, true}) {
      models.put("LayerNorm and Dropout" + (pool ? ", GlobalAvgPool" : ", Flatten"),
          new Object[] {NormalizationTest.imageModel(pool), new long[] {3, 4, 2}});
    }
    boolean float32 = true;
    for (Map.Entry<String, Object[]> e : models.entrySet()) {
      agree(e.getKey(), (Layer) e.getValue()[0], (long[]) e.getValue()[1], 3, 2, float32);
      float32 = false;
    }
    for (Layer m : UserElementwiseTest.quadratureModels().values()) {
      Plan plan = Plan.compile(m, new Shape(4, 3, 2), EnumSet.of(Get.NNGP, Get.NTK));
      assertFalse(CudaSource.runs(plan.schedule()), m.toString());
      assertEquals(Backend.CPU, Backend.AUTO.resolve(plan.schedule()));
      IllegalArgumentException refused = assertThrows(IllegalArgumentException.class,
          () -> CudaSource.generate(plan.schedule(), false, 2));
      assertTrue(refused.getMessage().contains("Stax.elementwise(phi, dphi)"), refused.getMessage());
    }
    int d = Math.toIntExact(new Shape(SpatialTest.IMAGE).size());
    for (Layer body : SpatialTest.bodies()) {
      for (Spatial kept : new Spatial[] {Spatial.FULL, Spatial.DIAGONAL}) {
        Plan plan = Plan.compile(body, new Shape(SpatialTest.IMAGE), EnumSet.of(Get.NNGP, Get.NTK), kept);
        agree(body + " keeping " + kept, plan, random(3 * d, 15), random(2 * d, 16), 3, 2, false);
      }
    }
  }

  /**
   * Inputs with a mask constant (neural-tangents' {@code mask_constant}): masked pixels, a pixel
   * with one channel equal to the constant (zeroed, kept), and a fully connected network whose
   * entries equal to it are zeroed. The engine takes the plan's masks as per-input buffers.
   */
  @Test
  void maskedInputsAgreeWithTheCpuEngine() {
    long[] image = {4, 3, 2};
    double[] x1 = random(3 * 24, 17);
    double[] x2 = random(2 * 24, 18);
    for (int p : new int[] {0, 5, 11, 12 + 2}) {
      x1[p * 2] = MasksTest.PAD;
      x1[p * 2 + 1] = MasksTest.PAD;
    }
    x1[(24 + 3) * 2] = MasksTest.PAD;
    x2[(12 + 7) * 2] = MasksTest.PAD;
    x2[(12 + 7) * 2 + 1] = MasksTest.PAD;
    Plan conv = Plan.compile(MasksTest.IMAGE_MODEL, new Shape(image), EnumSet.of(Get.NNGP, Get.NTK),
        Double.valueOf(MasksTest.PAD));
    agree("masked images", conv, x1, x2, 3, 2, true);
    Layer dense = Stax.serial(Stax.dense(6, 1.3, 0.2), Stax.relu(), Stax.dense(1, 1.1, 0.1));
    double[] v1 = random(3 * 4, 19);
    double[] v2 = random(2 * 4, 20);
    v1[3] = MasksTest.PAD;
    v2[1] = MasksTest.PAD;
    agree("masked dense inputs", Plan.compile(dense, new Shape(4), EnumSet.of(Get.NNGP, Get.NTK),
        Double.valueOf(MasksTest.PAD)), v1, v2, 3, 2, false);
  }

  /** The rows of {@code x} scaled to norm {@code sqrt(d)}: variance 1 after a Dense of W_std 1 and no bias. */
  private static double[] unitRows(double[] x, int d) {
    for (int i = 0; i < x.length / d; i++) {
      double s = 0;
      for (int k = 0; k < d; k++) {
        s += x[i * d + k] * x[i * d + k];
      }
      double scale = Math.sqrt(d / s);
      for (int k = 0; k < d; k++) {
        x[i * d + k] *= scale;
      }
    }
    return x;
  }

  /** Every operation in the expressions of {@code plan}'s outputs. */
  private static Set<Expr.Op> operations(Plan plan) {
    Set<Expr.Op> ops = EnumSet.noneOf(Expr.Op.class);
    Set<Expr> seen = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
    java.util.ArrayDeque<Expr> todo = new java.util.ArrayDeque<>();
    Schedule s = plan.schedule();
    for (Map<String, Expr> outputs : List.of(s.outputs(), s.rowOutputs(), s.colOutputs())) {
      todo.addAll(outputs.values());
    }
    while (!todo.isEmpty()) {
      Expr e = todo.pop();
      if (seen.add(e)) {
        ops.add(e.op());
        todo.addAll(e.operands());
      }
    }
    return ops;
  }

  /**
   * The model files of {@code examples/} (the paper's networks, the Fashion-MNIST and sine models, the
   * transformer, the graph network on the first graphs of its data) on small inputs: the files a
   * researcher starts from, each one plan.
   */
  @Test
  void exampleModelsAgreeWithTheCpuEngine() throws IOException {
    Map<String, long[]> shapes = new LinkedHashMap<>();
    shapes.put("sine/model.json", new long[] {1});
    shapes.put("fashion-mnist/fc.json", new long[] {12});
    shapes.put("fashion-mnist/cnn.json", new long[] {6, 6, 1});
    shapes.put("fashion-mnist/wrn.json", new long[] {4, 4, 1});
    shapes.put("cnn21/flatten.json", new long[] {4, 4, 3});
    shapes.put("cnn21/gap.json", new long[] {4, 4, 3});
    shapes.put("myrtle5/model.json", new long[] {32, 32, 1});
    shapes.put("wideresnet/model.json", new long[] {4, 4, 3});
    shapes.put("transformer/model.json", new long[] {5, 4});
    for (Map.Entry<String, long[]> e : shapes.entrySet()) {
      Layer model = ModelSpec.read(example(e.getKey()));
      // Myrtle-5 pools 32 x 32 down to one pixel: a 1024 x 1024 pixel-pair block per pair, so fewer pairs.
      boolean large = e.getKey().startsWith("myrtle5");
      agree(e.getKey(), model, e.getValue(), large ? 2 : 3, large ? 1 : 2, e.getKey().startsWith("cnn21/gap"));
    }
    Layer graph = ModelSpec.read(example("graph/model.json"));
    double[] x = (double[]) npy(Files.readAllBytes(example("graph/x_train.npy"))).get("data");
    double[] a = (double[]) npy(Files.readAllBytes(example("graph/a_train.npy"))).get("data");
    int nodes = 16;
    int channels = 4;
    Plan plan = Plan.compile(graph, new Shape(nodes, channels), EnumSet.of(Get.NNGP, Get.NTK));
    int graphSize = nodes * channels;
    agree("graph/model.json", plan, java.util.Arrays.copyOf(x, 3 * graphSize),
        java.util.Arrays.copyOfRange(x, 3 * graphSize, 5 * graphSize),
        new double[][] {java.util.Arrays.copyOf(a, 3 * nodes * nodes),
            java.util.Arrays.copyOfRange(a, 3 * nodes * nodes, 5 * nodes * nodes)}, 3, 2, true);
  }

  /** A file of {@code examples/}, from the kernels module (Maven) or the repository root (the device check). */
  private static java.nio.file.Path example(String file) {
    java.nio.file.Path inModule = java.nio.file.Path.of("..", "examples", file);
    return Files.exists(inModule) ? inModule : java.nio.file.Path.of("examples", file);
  }

  @Test
  void goldenKernels() throws IOException {
    for (String g : List.of("fc_relu_erf", "cnn1d_sumpool_flatten", "cnn2d_circular_avgpool_gap",
        "cnn2d_same_stride2_valid")) {
      Layer model = ModelSpec.parse(new String(resource(g + "/model.json"), java.nio.charset.StandardCharsets.UTF_8));
      Map<String, Object> x1 = npy(resource(g + "/x1.npy"));
      Map<String, Object> x2 = npy(resource(g + "/x2.npy"));
      long[] shape1 = (long[]) x1.get("shape");
      long[] perExample = java.util.Arrays.copyOfRange(shape1, 1, shape1.length);
      Plan plan = Plan.compile(model, new Shape(perExample), EnumSet.of(Get.NNGP, Get.NTK));
      int n1 = (int) shape1[0];
      int n2 = (int) ((long[]) x2.get("shape"))[0];
      Map<String, Object> cuda = engine.run(plan, x1.get("data"), x2.get("data"), n1, n2);
      for (String k : List.of("nngp", "ntk")) {
        double[] expected = (double[]) npy(resource(g + "/" + k + ".npy")).get("data");
        double err = KernelTesting.relativeError((double[]) cuda.get(k), expected);
        assertTrue(err < 1e-12, g + " " + k + ": cuda and the golden kernel differ by " + err);
      }
    }
  }

  private static byte[] resource(String path) throws IOException {
    try (InputStream in = CudaEngineModelsTest.class.getResourceAsStream("/golden/" + path)) {
      if (in == null) {
        throw new IOException("no test resource golden/" + path);
      }
      return in.readAllBytes();
    }
  }

  /** A little-endian float64 .npy array: its shape and data. */
  private static Map<String, Object> npy(byte[] bytes) {
    ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
    int major = bytes[6];
    int headerLength = major == 1 ? b.getShort(8) & 0xffff : b.getInt(8);
    int start = major == 1 ? 10 : 12;
    String header = new String(bytes, start, headerLength, java.nio.charset.StandardCharsets.US_ASCII);
    assertTrue(header.contains("'<f8'") && header.contains("'fortran_order': False"), header);
    String dims = header.substring(header.indexOf("'shape': (") + 10, header.indexOf(')', header.indexOf("'shape'")));
    long[] shape = java.util.Arrays.stream(dims.split(",")).map(String::trim).filter(s -> !s.isEmpty())
        .mapToLong(Long::parseLong).toArray();
    int count = Math.toIntExact(java.util.Arrays.stream(shape).reduce(1, (x, y) -> x * y));
    double[] data = new double[count];
    b.position(start + headerLength);
    b.asDoubleBuffer().get(data);
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("shape", shape);
    m.put("data", data);
    return m;
  }
}
