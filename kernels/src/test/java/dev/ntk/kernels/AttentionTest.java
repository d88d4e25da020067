package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.engine.Backend;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@code GlobalSelfAttention}: its kernel computed by hand on a two-position input, against Monte
 * Carlo of wide finite networks for every mechanism (x2 given and absent), the {@code cpu} and
 * {@code tensorflow} backends against each other, and its errors naming the layer.
 */
class AttentionTest extends MonteCarloFixture {
  private static final int WIDTH = 256;

  private static Layer attention(int width, boolean linear, String mechanism, Double bStd) {
    return attention(width, 4, linear, mechanism, bStd);
  }

  /** Attention of {@code width} output channels and keys, and {@code heads} heads of {@code width / heads} values. */
  private static Layer attention(int width, int heads, boolean linear, String mechanism, Double bStd) {
    return Stax.globalSelfAttention(width, width, width / heads, heads, linear, 1.3, 1.1, 0.9, 1.2, bStd, mechanism);
  }

  /**
   * Positions {@code x1 = (1, 2)}, {@code x2 = (0.5, -1)}, one channel: {@code cov1 = [[1, 2], [2,
   * 4]]}, {@code cov2 = [[0.25, -0.5], [-0.5, 1]]}, {@code nngp = [[0.5, -1], [1, -2]]}. IDENTITY,
   * {@code W_key_std = 2} (so {@code G = 2 cov}), {@code W_value_std = 1.5}, {@code b_std = 0.5},
   * then {@code GlobalSumPool}: {@code 1^T cov1 = (3, 6)}, {@code (3, 6) nngp = (7.5, -15)}, {@code
   * cov2 1 = (-0.25, 0.5)}, so {@code 1^T cov1 nngp cov2^T 1 = -9.375}; times {@code 2 * 2 * 2.25}
   * and plus {@code 4 * 0.25}: {@code -83.375}. The NTK (the input's is 0) is {@code 2 (-84.375) +
   * 1}. For x1 with itself, {@code 1^T cov1 cov1 cov1 1 = (15, 30) . (3, 6) = 225}: {@code 2026}.
   */
  @Test
  void handComputedIdentityAttention() {
    Layer model = Stax.serial(Stax.globalSelfAttention(3, 4, 5, 2, true, 2.0, 1.5, 1.0, 1.0, 0.5, "IDENTITY"),
        Stax.globalSumPool());
    NDArray x1 = Tensors.create(manager, new double[] {1, 2}, new Shape(1, 2, 1), DataType.FLOAT64);
    NDArray x2 = Tensors.create(manager, new double[] {0.5, -1}, new Shape(1, 2, 1), DataType.FLOAT64);
    for (Backend backend : new Backend[] {Backend.CPU, Backend.TENSORFLOW}) {
      Kernel k = model.kernelFn().withBackend(backend).apply(x1, x2);
      assertEquals(-83.375, k.nngp().toDoubleArray()[0], 1e-12, backend.key());
      assertEquals(2 * -84.375 + 1, k.ntk().toDoubleArray()[0], 1e-12, backend.key());
      assertEquals(2026, model.kernelFn().withBackend(backend).apply(x1).nngp().toDoubleArray()[0], 1e-10);
    }
    // Without linear scaling: sum(nngp * nngp) = 6.25 and sum(nngp) = -1.5, times (2 * 1.5)^2, plus 4 * 0.25.
    Layer sqrt = Stax.serial(Stax.globalSelfAttention(3, 4, 5, 2, false, 2.0, 1.5, 1.0, 1.0, 0.5, "IDENTITY"),
        Stax.globalSumPool());
    assertEquals(6.25 * -1.5 * 9 + 1, sqrt.kernelFn().apply(x1, x2).nngp().toDoubleArray()[0], 1e-12);
  }

  static Stream<Arguments> models() {
    int w = WIDTH;
    return Stream.of(
        Arguments.of("identity, sequence, flatten", new long[] {4, 3}, 96, Stax.serial(
            attention(w, 16, true, "IDENTITY", 0.2), Stax.flatten(), Stax.dense(w, 1.0, 0.1))),
        Arguments.of("softmax, image, global average pool", new long[] {2, 3, 2}, 48, Stax.serial(
            Stax.conv(w, a(2, 2), null, "SAME", 1.4, 0.1), Stax.erf(), attention(w, true, "SOFTMAX", null),
            Stax.relu(), Stax.globalAvgPool(), Stax.dense(w, 1.0, null))),
        Arguments.of("relu, sequence", new long[] {3, 2}, 96, Stax.serial(
            Stax.conv(w, a(2), null, "SAME", 1.3, 0.1), attention(w, true, "RELU", 0.1), Stax.relu(),
            Stax.globalSumPool(), Stax.dense(w, 1.0, null))),
        Arguments.of("abs, sequence", new long[] {3, 2}, 96, Stax.serial(
            Stax.conv(w, a(2), null, "SAME", 1.3, 0.1), attention(w, true, "ABS", null), Stax.erf(),
            Stax.flatten(), Stax.dense(w, 1.0, null))),
        Arguments.of("softmax, SUM embeddings", new long[] {3, 2}, 48, Stax.serial(
            Stax.conv(w, a(2), null, "SAME", 1.3, 0.1), Stax.relu(), Attention.globalSelfAttention(w, w, w / 4, 4,
                true, 1.3, 1.1, 0.9, 1.2, 0.1, "SOFTMAX", "SUM", 0.8, false), Stax.globalAvgPool(),
            Stax.dense(w, 1.0, null))),
        Arguments.of("relu, CONCAT embeddings in the values too", new long[] {3, 2}, 96, Stax.serial(
            Stax.conv(w, a(2), null, "SAME", 1.3, 0.1), Stax.erf(), Attention.globalSelfAttention(w, w, w / 4, 4,
                true, 1.3, 1.1, 0.9, 1.2, null, "RELU", "CONCAT", 1.2, true), Stax.flatten(),
            Stax.dense(w, 1.0, null))),
        // The block of examples/transformer/model.json, pre-LayerNorm, both residual branches.
        Arguments.of("transformer block, LayerNorm, SUM embeddings, MLP, residuals", new long[] {3, 2}, 48,
            Stax.serial(Stax.dense(w, 1.0, 0.1),
                Stax.fanOut(2), Stax.parallel(Stax.serial(Stax.layerNorm(), Attention.globalSelfAttention(w, w,
                    w / 4, 4, true, 1.3, 1.1, 0.9, 1.2, 0.1, "SOFTMAX", "SUM", 0.8, false)), Stax.identity()),
                Stax.fanInSum(),
                Stax.fanOut(2), Stax.parallel(Stax.serial(Stax.layerNorm(), Stax.dense(w, 1.4, 0.1), Stax.relu(),
                    Stax.dense(w, 1.0, 0.1)), Stax.identity()),
                Stax.fanInSum(), Stax.globalAvgPool(), Stax.dense(w, 1.0, null))),
        // Without linear scaling each head's attention matrix stays random: many heads average it.
        Arguments.of("identity without linear scaling", new long[] {3, 2}, 96, Stax.serial(
            attention(w, 64, false, "IDENTITY", 0.1), Stax.globalAvgPool(), Stax.dense(w, 1.0, null))));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("models")
  void analyticKernelsMatchWideFiniteNetworks(String name, long[] shape, int samples, Layer model) {
    NDArray x1 = KernelTesting.randomImages(manager, 3, shape, 201);
    NDArray x2 = KernelTesting.randomImages(manager, 2, shape, 202);
    assertMatchesWideNetworksWithAndWithoutX2(name, model, x1, x2, samples, 7, 11, 3.0 / WIDTH);
  }

  /**
   * Without linear scaling, with {@code SUM} embeddings in the keys only: the NTK mixes the inputs'
   * and the embeddings' kernels ({@code <in, ntk> + <nngp, in_ntk>}). The embeddings' covariance is
   * the identity only for wide inputs, so the layer reads 128 raw channels; many small heads average
   * the random scores (with the identity mechanism the kernel is exact for any key width), and the
   * inputs share a common part so that no kernel entry is near 0.
   */
  @Test
  void embeddingsWithoutLinearScalingMatchWideFiniteNetworks() {
    Layer model = Stax.serial(Attention.globalSelfAttention(WIDTH, 16, 4, 64, false, 1.3, 1.1, 0.9, 1.2, 0.1,
        "IDENTITY", "SUM", 0.7, false), Stax.globalAvgPool(), Stax.dense(WIDTH, 1.0, null));
    long[] shape = {3, 128};
    NDArray common = KernelTesting.randomImages(manager, 1, shape, 200);
    NDArray x1 = KernelTesting.randomImages(manager, 3, shape, 201).mul(0.6).add(common);
    NDArray x2 = KernelTesting.randomImages(manager, 2, shape, 202).mul(0.6).add(common);
    assertMatchesWideNetworksWithAndWithoutX2("1 / sqrt scaling, SUM embeddings", model, x1, x2, 96, 7, 11,
        3.0 / WIDTH);
  }

  /** Attention models for the backends, with the per-example input shape each takes. */
  static Map<String, Object[]> backendModels() {
    Map<String, Object[]> m = new LinkedHashMap<>();
    for (String mechanism : new String[] {"SOFTMAX", "IDENTITY", "ABS", "RELU"}) {
      m.put(mechanism + ", flatten", new Object[] {Stax.serial(Stax.conv(8, a(2, 2), null, "SAME", 1.3, 0.1),
          Stax.relu(), attention(8, true, mechanism, 0.1), Stax.erf(), Stax.flatten(), Stax.dense(1)),
          new long[] {3, 2, 2}});
    }
    m.put("two layers, pooling after", new Object[] {Stax.serial(attention(8, true, "SOFTMAX", null),
        Stax.relu(), attention(8, true, "SOFTMAX", 0.2), Stax.avgPool(a(2), null, "VALID"), Stax.flatten(),
        Stax.dense(1)), new long[] {5, 3}});
    m.put("identity without linear scaling", new Object[] {Stax.serial(attention(8, false, "IDENTITY", 0.3),
        Stax.erf(), Stax.globalAvgPool(), Stax.dense(1)), new long[] {4, 2}});
    for (String type : new String[] {"SUM", "CONCAT"}) {
      for (boolean values : new boolean[] {false, true}) {
        m.put(type + " embeddings" + (values ? " in the values" : ""), new Object[] {Stax.serial(
            Attention.globalSelfAttention(8, 8, 2, 4, true, 1.3, 1.1, 0.9, 1.2, 0.1, "SOFTMAX", type, 0.8, values),
            Stax.relu(), Attention.globalSelfAttention(8, 8, 2, 4, false, 1.3, 1.1, 0.9, 1.2, null, "IDENTITY", type,
                1.1, values), Stax.globalAvgPool(), Stax.dense(1)), new long[] {2, 2, 3}});
      }
    }
    return m;
  }

  @Test
  void cpuAndTensorFlowAgreeInFloat64() {
    for (Map.Entry<String, Object[]> e : backendModels().entrySet()) {
      Layer model = (Layer) e.getValue()[0];
      long[] shape = (long[]) e.getValue()[1];
      KernelTesting.assertBackendsAgree(e.getKey(), model, KernelTesting.randomImages(manager, 4, shape, 21),
          KernelTesting.randomImages(manager, 3, shape, 22));
    }
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(delimiter = '|', value = {
      "softmax without linear scaling|{\"serial\": [{\"Conv\": {\"filter_shape\": [1]}}, {\"GlobalSelfAttention\": "
          + "{\"n_chan_out\": 2, \"n_chan_key\": 2, \"n_chan_val\": 2, \"n_heads\": 1, \"linear_scaling\": false}}]}"
          + "|serial[1].GlobalSelfAttention: attention_mechanism SOFTMAX has no known closed-form kernel",
      "vectors|{\"serial\": [{\"Flatten\": {}}, {\"GlobalSelfAttention\": {\"n_chan_out\": 2, \"n_chan_key\": 2, "
          + "\"n_chan_val\": 2, \"n_heads\": 1}}]}|serial[1].GlobalSelfAttention: GlobalSelfAttention takes sequences "
          + "or images",
      "no heads|{\"serial\": [{\"GlobalSelfAttention\": {\"n_chan_out\": 2, \"n_chan_key\": 2, \"n_chan_val\": 2, "
          + "\"n_heads\": 0}}]}|serial[0].GlobalSelfAttention: argument \"n_heads\" must be a positive integer, got 0",
      "missing width|{\"GlobalSelfAttention\": {\"n_chan_out\": 2, \"n_chan_key\": 2, \"n_heads\": 1}}"
          + "|GlobalSelfAttention: missing required argument \"n_chan_val\"",
      "unknown mechanism|{\"GlobalSelfAttention\": {\"n_chan_out\": 2, \"n_chan_key\": 2, \"n_chan_val\": 2, "
          + "\"n_heads\": 1, \"attention_mechanism\": \"TANH\"}}|argument \"attention_mechanism\" must be one of"})
  void badModelsNameTheLayer(String what, String json, String expected) {
    NDArray x = KernelTesting.randomImages(manager, 2, new long[] {3, 2}, 1);
    ModelException e = assertThrows(ModelException.class, () -> ModelSpec.parse(json).kernelFn().apply(x), what);
    assertTrue(e.getMessage().contains(expected), what + ": " + e.getMessage());
  }

  @Test
  void modelFilesRoundTripWithNeuralTangentsDefaults() {
    Layer parsed = ModelSpec.parse("{\"GlobalSelfAttention\": {\"n_chan_out\": 4, \"n_chan_key\": 3, "
        + "\"n_chan_val\": 2, \"n_heads\": 5}}");
    String json = ModelSpec.toJson(parsed);
    assertEquals("{\"GlobalSelfAttention\":{\"n_chan_out\":4,\"n_chan_key\":3,\"n_chan_val\":2,\"n_heads\":5,"
        + "\"linear_scaling\":true,\"W_key_std\":1.0,\"W_value_std\":1.0,\"W_query_std\":1.0,\"W_out_std\":1.0,"
        + "\"b_std\":null,\"attention_mechanism\":\"SOFTMAX\",\"pos_emb_type\":\"NONE\",\"pos_emb_p_norm\":2.0,"
        + "\"W_pos_emb_std\":1.0,\"val_pos_emb\":false}}", json);
    assertEquals(json, ModelSpec.toJson(ModelSpec.parse(json)));
    assertEquals(json, ModelSpec.toJson(Stax.globalSelfAttention(4, 3, 2, 5, true, 1, 1, 1, 1, null, "SOFTMAX")));
  }

  /**
   * The structured empirical NTK (each projection, the output layer and the embeddings recorded as
   * affine factors) equals the Jacobian contraction, for every way parameters enter the layer.
   */
  @Test
  void structuredEmpiricalNtkEqualsTheJacobians() {
    Layer[] layers = {attention(8, true, "SOFTMAX", 0.3), attention(8, false, "IDENTITY", null),
        Attention.globalSelfAttention(4, 3, 2, 2, true, 1.0, 1.2, 0.8, 1.0, 0.2, "RELU", "SUM", 0.7, true),
        Attention.globalSelfAttention(4, 3, 2, 2, false, 1.1, 1.0, 0.9, 1.0, null, "SOFTMAX", "CONCAT", 0.8, false)};
    for (Layer layer : layers) {
      Layer model = Stax.serial(layer, Stax.flatten(), Stax.dense(2, 1.0, 0.1));
      Params params = model.init(3, new Shape(3, 2), manager, DataType.FLOAT64);
      NDArray x1 = KernelTesting.randomImages(manager, 3, new long[] {3, 2}, 31);
      NDArray x2 = KernelTesting.randomImages(manager, 2, new long[] {3, 2}, 32);
      double[] structured = Tensors.toDoubles(EmpiricalKernels.ntk(model, params, x1, x2,
          EmpiricalKernels.Implementation.STRUCTURED, true));
      double[] jacobian = Tensors.toDoubles(EmpiricalKernels.ntk(model, params, x1, x2,
          EmpiricalKernels.Implementation.JACOBIAN_CONTRACTION, true));
      assertTrue(KernelTesting.relativeError(structured, jacobian) < 1e-12, ModelSpec.toJson(layer));
    }
  }

  /**
   * The {@code cuda} engine runs attention ({@code CudaEngineModelsTest} checks its numbers): the
   * softmax and the attend are kernels of the generated source, the embeddings a constant table, and
   * {@code auto} may pick it.
   */
  @Test
  void theCudaEngineRunsAttention() {
    Layer model = Stax.serial(Attention.globalSelfAttention(4, 4, 1, 4, true, 1.3, 1.1, 0.9, 1.2, null, "SOFTMAX",
        "SUM", 0.8, false), Stax.globalAvgPool(), Stax.dense(1));
    Plan plan = Plan.compile(model, new Shape(3, 2), EnumSet.of(Get.NNGP, Get.NTK));
    assertTrue(dev.ntk.kernels.cuda.CudaSource.runs(plan.schedule()));
    String source = dev.ntk.kernels.cuda.CudaSource.generate(plan.schedule(), false, 2).source();
    assertTrue(source.contains("exp((double)") && source.contains("NTK_TABLE real C"), "softmax and embeddings");
    assertEquals(dev.ntk.kernels.cuda.CudaDevice.visible() ? Backend.CUDA : Backend.CPU,
        Backend.AUTO.resolve(plan.schedule()));
  }
}
