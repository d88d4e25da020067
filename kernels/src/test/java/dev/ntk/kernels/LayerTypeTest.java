package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Set;
import org.junit.jupiter.api.Test;

/** Layer descriptions: one per layer type, and everything derived from them agrees. */
class LayerTypeTest {
  @Test
  void everyFamilyLayerIsRegisteredByName() {
    assertEquals(Set.of("serial", "parallel", "repeat", "FanOut", "FanInSum", "FanInProd", "FanInConcat",
        "Dense", "Flatten", "Identity", "Relu", "LeakyRelu", "Abs", "ABRelu", "Erf", "Conv", "AvgPool",
        "SumPool", "GlobalAvgPool", "GlobalSumPool", "ConvTranspose", "Gelu", "Sin", "Cos", "Exp", "Sign", "Rbf",
        "Gaussian", "RectifiedMonomial", "Monomial", "Polynomial", "Sigmoid_like", "Gabor", "Hermite",
        "ExpNormalized", "ElementwiseNumerical", "Elementwise", "ImageResize", "Index",
        "LayerNorm", "Dropout", "GlobalSelfAttention", "Aggregate", "ConvLocal", "DotGeneral"),
        LayerType.registered().keySet());
    for (LayerType t : LayerType.registered().values()) {
      assertTrue(!t.summary().isBlank(), t.name());
    }
  }

  @Test
  void staxFactoriesAndModelFilesBuildTheSameLayers() {
    assertEquals(ModelSpec.toJson(ModelSpec.parse(
        "{\"Dense\": {\"out_dim\": 3, \"W_std\": 2, \"parameterization\": \"STANDARD\"}}")),
        ModelSpec.toJson(Stax.dense(3, 2.0, null, Linear.Parameterization.STANDARD)));
    assertEquals("{\"LeakyRelu\":{\"alpha\":0.01}}", ModelSpec.toJson(ModelSpec.parse("{\"LeakyRelu\": {}}")));
    assertEquals("{\"Erf\":{\"a\":1.0,\"b\":1.0,\"c\":0.0}}", ModelSpec.toJson(Stax.erf()));
    assertEquals(ModelSpec.toJson(ModelSpec.parse("{\"Conv\": {\"out_chan\": 4, \"filter_shape\": [3, 2], "
        + "\"padding\": \"same\", \"b_std\": 0.1}}")),
        ModelSpec.toJson(Stax.conv(4, new int[] {3, 2}, null, "SAME", 1.0, 0.1)));
    assertEquals("{\"AvgPool\":{\"window_shape\":[2,2],\"strides\":[2,2],\"padding\":\"SAME\","
        + "\"normalize_edges\":true}}",
        ModelSpec.toJson(Stax.avgPool(new int[] {2, 2}, new int[] {2, 2}, "SAME", true)));
    assertEquals("{\"Aggregate\":{\"aggregate_axis\":null,\"batch_axis\":0,\"channel_axis\":-1,"
        + "\"implementation\":\"DENSE\"}}", ModelSpec.toJson(ModelSpec.parse("{\"Aggregate\": {}}")));
    assertEquals(ModelSpec.toJson(ModelSpec.parse("{\"Aggregate\": {\"aggregate_axis\": [1, 2], "
        + "\"implementation\": \"sparse\"}}")), ModelSpec.toJson(Stax.aggregate(new int[] {1, 2}, "SPARSE")));
    assertEquals(ModelSpec.toJson(ModelSpec.parse("{\"ConvLocal\": {\"out_chan\": 4, \"filter_shape\": [3, 2], "
        + "\"strides\": [2, 1], \"b_std\": 0.1, \"parameterization\": \"standard\"}}")),
        ModelSpec.toJson(Stax.convLocal(4, new int[] {3, 2}, new int[] {2, 1}, "VALID", 1.0, 0.1,
            Linear.Parameterization.STANDARD)));
    assertEquals(ModelSpec.toJson(ModelSpec.parse("{\"DotGeneral\": {\"rhs\": [1, -1], \"dimension_numbers\": "
        + "[[[1], [0]], [[], []]]}}")),
        ModelSpec.toJson(Stax.dotGeneral(null, new double[] {1, -1}, new int[][][] {{{1}, {0}}, {{}, {}}})));
    for (var e : TestModels.all().entrySet()) {
      String json = ModelSpec.toJson(e.getValue());
      assertEquals(json, ModelSpec.toJson(ModelSpec.parse(json)), e.getKey());
    }
  }

  @Test
  void javaArgumentsAreCheckedLikeFileArguments() {
    ModelException e = assertThrows(ModelException.class, () -> Stax.dense(0));
    assertTrue(e.getMessage().contains("\"out_dim\" must be a positive integer, got 0"), e.getMessage());
    ModelException f = assertThrows(ModelException.class, () -> Stax.fanOut(-1));
    assertEquals("FanOut", f.path());
    assertThrows(IllegalArgumentException.class, () -> Linear.DENSE.create(1, 1.0, null, "ntk", 5));
  }
}
