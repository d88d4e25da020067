package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.engine.CpuBackend;
import dev.ntk.kernels.engine.NativeBuffer;
import java.nio.Buffer;
import java.nio.DoubleBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * A plan's kernels are the same bits on any number of threads, into arrays or into native memory
 * (as tiles are computed). The cpu engine runs each step over chunks of whole rows, vector lanes
 * then a scalar tail, which round differently ({@code atan2}, {@code sqrt}, multiply-adds); the
 * threads' row blocks start on chunk boundaries ({@code CpuBackend.rowBlocks}), so an entry
 * falls in the same place of its chunk whatever the thread count. Before, a tile recomputed beside
 * other tiles (on fewer threads) differed from its first computation in the last bit ({@code
 * KernelsTest} failed once in CI), and 130 x 130 on 2 threads differed from 1 thread by an ulp.
 */
class ThreadsTest {
  @Test
  void kernelsAreTheSameBitsOnAnyNumberOfThreads() {
    Model model = Model.parse("""
        {"serial": [
          {"Dense": {"out_dim": 64, "W_std": 1.5, "b_std": 0.1}}, {"Relu": {}},
          {"Dense": {"out_dim": 64, "W_std": 1.3, "b_std": 0.2}}, {"Erf": {"a": 1.0, "b": 0.7, "c": 0.1}},
          {"Dense": {"out_dim": 1, "W_std": 1.2, "b_std": 0.05}}]}""");
    int d = 7;
    for (int[] size : new int[][] {{4, 4}, {9, 9}, {5, 4}, {37, 23}, {130, 70}, {41, 600}, {530, 530}}) {
      Random r = new Random(size[0] * 31 + size[1]);
      double[] x1 = gaussian(r, size[0] * d);
      double[] x2 = gaussian(r, size[1] * d);
      Plan plan = model.plan(new Shape(d), DataType.FLOAT64, Set.of(Get.NNGP, Get.NTK));
      for (boolean same : new boolean[] {false, true}) {
        int n1 = size[0];
        int n2 = same ? n1 : size[1];
        double[] other = same ? null : x2;
        Map<String, double[]> one = plan.run(CpuBackend.float64(), x1, other, n1, n2, 1);
        String where = n1 + "x" + n2 + (same ? " (x1 with itself)" : "");
        for (int threads : new int[] {2, 3, 8}) {
          Map<String, double[]> several = plan.run(CpuBackend.float64(), x1, other, n1, n2, threads);
          for (String k : List.of(Plan.NNGP, Plan.NTK)) {
            assertClose(one.get(k), several.get(k), k + " " + where + ", " + threads + " threads");
          }
        }
        for (int threads : new int[] {1, 2, 3, 8}) {
          Map<String, Buffer> into = new LinkedHashMap<>();
          List<NativeBuffer> natives = new ArrayList<>();
          for (String k : List.of(Plan.NNGP, Plan.NTK)) {
            NativeBuffer b = NativeBuffer.allocate((long) n1 * n2, true);
            natives.add(b);
            into.put(k, b.buffer());
          }
          plan.runInto(CpuBackend.float64(), x1, other, Map.of(), n1, n2, threads, into);
          for (String k : into.keySet()) {
            double[] values = new double[n1 * n2];
            ((DoubleBuffer) into.get(k)).get(0, values);
            assertClose(one.get(k), values, k + " into native memory, " + where + ", " + threads + " threads");
          }
          natives.forEach(NativeBuffer::close);
        }
      }
    }
  }

  private static double[] gaussian(Random r, int n) {
    double[] x = new double[n];
    for (int i = 0; i < n; i++) {
      x[i] = r.nextGaussian();
    }
    return x;
  }

  private static void assertClose(double[] want, double[] got, String what) {
    double scale = 0;
    double worst = 0;
    for (int i = 0; i < want.length; i++) {
      scale = Math.max(scale, Math.abs(want[i]));
      worst = Math.max(worst, Math.abs(want[i] - got[i]));
    }
    assertTrue(worst == 0, what + ": differs by " + worst + " of " + scale);
  }
}
