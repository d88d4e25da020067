package dev.ntk.kernels.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** What the {@code tensorflow} backend keeps exact that the rules rely on. */
class TensorFlowBackendTest {
  /**
   * A pixel map of a tile whose diagonal holds the per-input variances gives, on that diagonal,
   * the variances' map to the last bit, for any number of rows: then {@code k11 k22 - k^2} is
   * exactly 0 there and the ReLU family's angle exactly 0, as on the {@code cpu} backend (an ulp
   * there moves that angle to about 1e-8). The tile and the variances are maps of different
   * numbers of rows, and TensorFlow's float64 {@code MatMul} may sum a row in an order that depends
   * on the number of rows (measured: a row of a (R, 5) x (5, 5) product differs in the last bit
   * between R = 1000 and R = 2..13 for some rows), so this is checked, not assumed.
   */
  @Test
  void pixelMapOfTheDiagonalIsThePixelMapOfTheVariancesBitForBit() {
    Random r = new Random(7);
    try (NDManager manager = dev.ntk.kernels.Tensors.newManager()) {
      for (int[] grid : new int[][] {{5}, {9}, {12}, {28}, {5, 5}, {8, 7}, {12, 12}, {28, 28}}) {
        List<PixelMap.Window> windows = new java.util.ArrayList<>();
        for (int g : grid) {
          windows.add(new PixelMap.Window(g, 3, 1, 1, g, false));
        }
        PixelMap map = PixelMap.conv(Layout.Kind.DIAG, windows);
        Layout layout = Layout.diag(grid);
        Schedule schedule = new Schedule(Map.of("k", Expr.input("nngp", Expr.Domain.TILE, layout).pixels(map)),
            Map.of("v", Expr.input("var1", Expr.Domain.ROW, layout).pixels(map)), Map.of());
        for (int n = 1; n <= 8; n++) {
          int p = layout.pixels();
          double[] tile = new double[n * n * p];
          double[] var = new double[n * p];
          for (int i = 0; i < tile.length; i++) {
            tile[i] = r.nextGaussian();
          }
          for (int i = 0; i < n; i++) {
            for (int q = 0; q < p; q++) {
              var[i * p + q] = 1 + r.nextDouble();
              tile[(i * n + i) * p + q] = var[i * p + q];
            }
          }
          Map<String, NDArray> in = new HashMap<>();
          in.put("nngp", manager.create(tile, new Shape(n, n, p)));
          in.put("var1", manager.create(var, new Shape(n, p)));
          Map<String, NDArray> out = TensorFlowBackend.run(schedule, in, n, n, manager);
          double[] k = out.get("k").toDoubleArray();
          double[] v = out.get("v").toDoubleArray();
          int mismatches = 0;
          for (int i = 0; i < n; i++) {
            for (int q = 0; q < p; q++) {
              mismatches += k[(i * n + i) * p + q] == v[i * p + q] ? 0 : 1;
            }
          }
          assertEquals(0, mismatches, "grid " + java.util.Arrays.toString(grid) + ", " + n + " inputs: pixels of the "
              + "diagonal that differ from the variances'");
        }
      }
    }
  }
}
