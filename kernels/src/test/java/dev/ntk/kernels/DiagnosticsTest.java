package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** Naming the layer where a kernel first stops being finite. */
class DiagnosticsTest {
  private static final String MODEL = """
      {"serial": [{"Dense": {"out_dim": 8, "W_std": 1.5, "b_std": 0.1}}, {"Relu": {}},
                  {"Dense": {"out_dim": 8, "W_std": %s, "b_std": 0.1}}, {"Erf": {}},
                  {"Dense": {"out_dim": 1, "W_std": 1.5}}]}""";

  @Test
  void aFiniteModelHasNoBadLayer() {
    assertEquals(Optional.empty(), find(MODEL.formatted("1.5"), 1.0, DataType.FLOAT64));
  }

  @Test
  void namesTheLayerWhoseWeightsOverflow() {
    assertEquals(Optional.of("serial[2].Dense"), find(MODEL.formatted("1e200"), 1.0, DataType.FLOAT64));
    // 1e30^2 overflows float32 but not float64.
    assertEquals(Optional.of("serial[2].Dense"), find(MODEL.formatted("1e30"), 1.0, DataType.FLOAT32));
    assertEquals(Optional.empty(), find(MODEL.formatted("1e30"), 1.0, DataType.FLOAT64));
  }

  @Test
  void hugeInputsOverflowAtTheFirstLayer() {
    assertEquals(Optional.of("serial[0].Dense"), find(MODEL.formatted("1.5"), 1e160, DataType.FLOAT64));
  }

  @Test
  void nestedSerialLayersAreNamedByTheirPath() {
    String nested = """
        {"serial": [{"Dense": {}}, {"serial": [{"Relu": {}}, {"Dense": {"W_std": 1e200}}]}]}""";
    assertEquals(Optional.of("serial[1].serial[1].Dense"), find(nested, 1.0, DataType.FLOAT64));
  }

  @Test
  void anOverflowInsideARuleNamesThatRule() {
    try (NDManager m = Tensors.newManager()) {
      NDArray x = KernelTesting.randomInputs(m, 3, 4, 5);
      Layer model = Stax.serial(Stax.dense(8, 1.0, 0.1), Stax.relu(), Stax.dense(8, 1e100, 0.1),
          Stax.relu(), Stax.dense(1));
      // W_std^2 = 1e200 is finite in float64 after serial[2], but the next Relu multiplies two
      // such variances (1e400); in float32 the Dense overflows already.
      assertEquals(Optional.of("serial[3].Relu"), Diagnostics.firstNonFiniteLayer(model, x, null));
      assertEquals(Optional.of("serial[2].Dense"),
          Diagnostics.firstNonFiniteLayer(model, x.toType(DataType.FLOAT32, false), null));
    }
  }

  private static Optional<String> find(String json, double scale, DataType dtype) {
    Layer model = ModelSpec.parse(json);
    try (NDManager m = Tensors.newManager()) {
      NDArray x1 = Tensors.fromRows(m, new double[][] {{0.3 * scale, -1.2 * scale, 0.5 * scale}}, dtype);
      NDArray x2 = Tensors.fromRows(m, new double[][] {{1.1 * scale, 0.4 * scale, -0.7 * scale}}, dtype);
      return Diagnostics.firstNonFiniteLayer(model, x1, x2);
    }
  }
}
