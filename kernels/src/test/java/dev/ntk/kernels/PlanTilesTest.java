package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.engine.Backend;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumSet;
import org.junit.jupiter.api.Test;

/** {@code --tile auto}: tiles sized by their memory and their work. */
class PlanTilesTest {
  private static Plan plan(String file, Shape shape) throws IOException {
    Path root = Path.of("").toAbsolutePath();
    while (!Files.exists(root.resolve(file))) {
      root = root.getParent();
    }
    return Plan.compile(ModelSpec.parse(Files.readString(root.resolve(file), StandardCharsets.UTF_8)), shape,
        EnumSet.allOf(Get.class));
  }

  @Test
  void aFullyConnectedKernelIsAFewLargeTilesAPoolingCnnSmallOnes() throws IOException {
    Plan relu = plan("bench/relu21.json", new Shape(784));
    // 8192 x 8192 float32 fits 1 GiB and 1.4e11 flops: one tile, as the in-process path computes it.
    assertEquals(8192, relu.autoTile(8192, 8192, 1L << 30, 4, Backend.CPU));
    // twice the rows: four times the memory and the work: tiles of half the rows (3 tiles above the diagonal)
    assertEquals(8192, relu.autoTile(16384, 16384, 1L << 30, 4, Backend.CPU));
    // a smaller budget: tiles of equal size that fit it
    int t = relu.autoTile(8192, 8192, 64L << 20, 4, Backend.CPU);
    assertTrue(relu.tileBytes(t, t, 4, Backend.CPU) <= 64L << 20, "" + t);
    assertTrue(relu.tileBytes((int) Math.ceil(8192.0 / (Math.ceil(8192.0 / t) - 1)),
        (int) Math.ceil(8192.0 / (Math.ceil(8192.0 / t) - 1)), 4, Backend.CPU) > 64L << 20, "the largest such: " + t);
    // a kernel smaller than a tile is one tile of its rows
    assertEquals(100, relu.autoTile(100, 30, 1L << 30, 8, Backend.CPU));

    Plan gap = plan("examples/cnn21/gap.json", new Shape(32, 32, 3));
    int small = gap.autoTile(4096, 4096, 1L << 30, 4, Backend.CPU);
    assertTrue(small >= 1 && small <= 16, "a pooling CNN's tiles stay small: " + small);
    assertTrue((double) small * small * gap.pairFlops() <= Plan.TILE_FLOPS);
  }
}
