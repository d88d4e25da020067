package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** Naming the layer where a kernel first stops being finite. */
class DiagnosticsTest {
  @Test
  void namesTheFirstLayerWithANonFiniteKernel() {
    try (NDManager m = Tensors.newManager()) {
      NDArray x = KernelTesting.randomInputs(m, 3, 4, 5);
      Layer model = Stax.serial(Stax.dense(8, 1.0, 0.1), Stax.relu(), Stax.dense(8, 1e100, 0.1),
          Stax.relu(), Stax.dense(8, 1e100, 0.0), Stax.relu(), Stax.dense(1));
      // W_std^2 = 1e200 is finite in float64 after serial[2], but the next Relu multiplies two
      // such variances (1e400).
      assertEquals(Optional.of("serial[3].Relu"), Diagnostics.firstNonFiniteLayer(model, x, null));
      // In float32 the Dense overflows already.
      assertEquals(Optional.of("serial[2].Dense"),
          Diagnostics.firstNonFiniteLayer(model, x.toType(DataType.FLOAT32, false), null));
      assertEquals(Optional.empty(), Diagnostics.firstNonFiniteLayer(Stax.serial(Stax.dense(8), Stax.relu()), x, x));
    }
  }
}
