package dev.ntk.kernels.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Layer;
import dev.ntk.kernels.Plan;
import dev.ntk.kernels.Stax;
import dev.ntk.kernels.cuda.CudaDevice;
import java.util.EnumSet;
import org.junit.jupiter.api.Test;

/** What callers ask of a {@link Backend} instead of asking which one it is. */
class BackendTest {
  private static final Layer CNN = Stax.serial(Stax.conv(4, new int[] {2}, null, "SAME", 1.3, 0.2), Stax.relu(),
      Stax.globalAvgPool());

  private static Plan cnn(Double maskConstant) {
    return Plan.compile(CNN, new Shape(5, 2), EnumSet.allOf(Get.class), maskConstant);
  }

  /**
   * Masked inputs resolve as unmasked ones: every engine takes masks, {@code cuda} included (its
   * kernels read them as buffers), so {@code auto} picks {@code cuda} for a masked plan wherever a
   * device is visible, and a {@code cuda} asked for by name stays {@code cuda}.
   */
  @Test
  void maskedInputsResolveAsUnmaskedOnes() {
    Schedule masked = cnn(-1.0).schedule();
    assertTrue(masked.inputs().containsAll(java.util.Set.of(Plan.KEPT1, Plan.KEPT2)), "" + masked.inputs());
    assertTrue(dev.ntk.kernels.cuda.CudaSource.runs(masked));
    for (Backend b : Backend.values()) {
      assertEquals(b.resolve(cnn(null).schedule()), b.resolve(masked), b.key());
    }
    assertEquals(Backend.CUDA, Backend.CUDA.resolve(masked));
    assertEquals(CudaDevice.visible() ? Backend.CUDA : Backend.CPU, Backend.AUTO.resolve(masked));
  }

  /** Only the {@code cpu} engine writes into its caller's memory; {@code auto} must be resolved first. */
  @Test
  void onlyCpuRunsInto() {
    for (Backend b : Backend.values()) {
      assertEquals(b == Backend.CPU, b.runsInto(), b.key());
    }
  }

  /**
   * Only {@code cuda} can be unavailable, and it says why exactly when no device is visible (on a
   * machine without a CUDA driver, as CI: that the driver could not be loaded).
   */
  @Test
  void cudaSaysWhyItIsUnavailable() {
    assertNull(Backend.AUTO.unavailable());
    assertNull(Backend.CPU.unavailable());
    assertNull(Backend.TENSORFLOW.unavailable());
    assertEquals(CudaDevice.visible(), Backend.CUDA.unavailable() == null);
    assertEquals(CudaDevice.unavailable(), Backend.CUDA.unavailable());
    if (!CudaDevice.visible()) {
      assertFalse(Backend.CUDA.unavailable().isBlank());
    }
  }

  /**
   * A tile's memory: at least its outputs on every engine; on {@code tensorflow} every live value
   * holds the whole tile's pixel blocks, far more than the {@code cpu} engine's pair-by-pair blocks
   * (which {@code cuda} and {@code auto} are estimated as); {@link Plan#tileBytes} is this in bytes.
   */
  @Test
  void tensorFlowHoldsTheWholeTilesBlocks() {
    Plan plan = cnn(null);
    Schedule s = plan.schedule();
    Layout input = s.inputLayout(Plan.NNGP);
    assertTrue(input.size() > 1, "the input gram has pixel blocks: " + input.size());
    int rows = 300;
    int cols = 200;
    long outputs = (long) rows * cols * s.outputs().size();
    long cpu = Backend.CPU.tileValues(s, input, rows, cols);
    long tf = Backend.TENSORFLOW.tileValues(s, input, rows, cols);
    assertTrue(cpu >= outputs, cpu + " < " + outputs);
    assertTrue(tf >= (long) rows * cols * input.size() * s.inputs().size(), "" + tf);
    assertTrue(tf > 2 * cpu, tf + " vs " + cpu);
    assertEquals(cpu, Backend.CUDA.tileValues(s, input, rows, cols));
    assertEquals(cpu, Backend.AUTO.tileValues(s, input, rows, cols));
    for (Backend b : Backend.values()) {
      assertEquals(8 * b.tileValues(s, input, rows, cols), plan.tileBytes(rows, cols, 8, b), b.key());
    }
  }
}
