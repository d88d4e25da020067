package dev.ntk.kernels.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Plan;
import dev.ntk.kernels.Stax;
import dev.ntk.kernels.engine.CpuBackend;
import dev.ntk.kernels.engine.Expr;
import dev.ntk.kernels.engine.Expr.Domain;
import dev.ntk.kernels.engine.Layout;
import dev.ntk.kernels.engine.Schedule;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The {@code cuda} engine's plan inputs beyond the raw inputs' gram ({@link CudaSource#bufferInputs}),
 * on the host ({@link HostDevice}): a row and a column input read at the item's row and column, in
 * the pixel-block passes and in the passes of one thread per item, against closed forms. Graph
 * patterns reach the engine only through {@code Aggregate}'s {@code attend} step, so these schedules
 * read inputs named {@link Plan#PATTERN1}, {@link Plan#PATTERN2} entry-wise instead.
 */
class CudaEngineTest {
  private static final int P = 3;
  private static final int C = 2;
  private static Device device;
  private static CudaEngine engine;

  /** The host device, or the one {@link CudaEngine#DEVICE_PROPERTY} names (the device check's GPU). */
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
    return new Random(seed).doubles(n, -1, 1).toArray();
  }

  /** The pixel-pair gram of images {@code a[i]} and {@code b[j]} of {@code P} pixels of {@code C} channels. */
  private static double gram(double[] a, int i, double[] b, int j, int p, int q) {
    double s = 0;
    for (int c = 0; c < C; c++) {
      s += a[(i * P + p) * C + c] * b[(j * P + q) * C + c];
    }
    return s / C;
  }

  /**
   * Pixel blocks: the pair pass reads both patterns entry-wise before a sum and in a block output,
   * the row pass sums its pattern, reads it beside a diagonal and writes it out as it is, the column
   * pass reads its own; for x1 with x2, and for x1 with itself given one array for both patterns
   * (uploaded once).
   */
  @Test
  void pixelBlockPassesReadTheRowAndColumnInputs() {
    Layout full = Layout.full(P);
    Expr nngp = Expr.input(Plan.NNGP, Domain.TILE, full);
    Expr p1 = Expr.input(Plan.PATTERN1, Domain.ROW, full);
    Expr p2 = Expr.input(Plan.PATTERN2, Domain.COL, full);
    Expr var1 = Expr.input(Plan.VAR1, Domain.ROW, full);
    Expr var2 = Expr.input(Plan.VAR2, Domain.COL, full);
    Schedule s = new Schedule(
        Map.of("sum", nngp.times(p1).times(p2).sum(0.5), "block", nngp.times(p1).plus(p2)),
        Map.of("total", p1.sum(1.0), "diagonal", var1.times(p1).diagonal(), "pattern", p1),
        Map.of("col", var2.times(p2)));
    CudaSource src = CudaSource.generate(s, false, C);
    assertTrue(src.blocks());
    assertTrue(src.buffers().containsAll(List.of("in:" + Plan.PATTERN1, "in:" + Plan.PATTERN2)), "" + src.buffers());
    assertTrue(src.buffers().stream().noneMatch(b -> b.equals("in:" + Plan.NNGP)), "pixel grams come from images");
    int n1 = 3;
    int n2 = 2;
    double[] x1 = random(n1 * P * C, 1);
    double[] x2 = random(n2 * P * C, 2);
    double[] a1 = random(n1 * P * P, 3);
    double[] a2 = random(n2 * P * P, 4);
    for (boolean same : new boolean[] {false, true}) {
      int m2 = same ? n1 : n2;
      double[] y = same ? x1 : x2;
      double[] b = same ? a1 : a2;
      // not symmetric in its inputs (a1 and b are not symmetric matrices): x1 with itself computed whole
      Map<String, Object> out = engine.run(s, src, P * C, false, x1, same ? null : x2,
          Map.of(Plan.PATTERN1, a1, Plan.PATTERN2, b), n1, m2);
      double[] sum = (double[]) out.get("sum");
      double[] block = (double[]) out.get("block");
      for (int i = 0; i < n1; i++) {
        for (int j = 0; j < m2; j++) {
          double expected = 0;
          for (int e = 0; e < P * P; e++) {
            double g = gram(x1, i, y, j, e / P, e % P);
            expected += 0.5 * g * a1[i * P * P + e] * b[j * P * P + e];
            assertClose(g * a1[i * P * P + e] + b[j * P * P + e], block[(i * m2 + j) * P * P + e], "block");
          }
          assertClose(expected, sum[i * m2 + j], "sum" + (same ? " of x1 with itself" : ""));
        }
      }
      for (int i = 0; i < n1; i++) {
        double total = 0;
        for (int e = 0; e < P * P; e++) {
          total += a1[i * P * P + e];
          assertEquals(a1[i * P * P + e], ((double[]) out.get("pattern"))[i * P * P + e], "pattern");
        }
        assertClose(total, ((double[]) out.get("total"))[i], "total");
        for (int p = 0; p < P; p++) {
          assertClose(gram(x1, i, x1, i, p, p) * a1[i * P * P + p * P + p], ((double[]) out.get("diagonal"))[i * P + p],
              "diagonal");
        }
      }
      for (int j = 0; j < m2; j++) {
        for (int e = 0; e < P * P; e++) {
          assertClose(gram(y, j, y, j, e / P, e % P) * b[j * P * P + e], ((double[]) out.get("col"))[j * P * P + e],
              "col");
        }
      }
    }
  }

  /**
   * One thread per item: the pair pass reads both inputs beside the gram, the row and column passes
   * their own; float64 and float32 (the inputs given in float64 are converted).
   */
  @Test
  void itemPassesReadTheRowAndColumnInputs() {
    Expr nngp = Expr.input(Plan.NNGP, Domain.TILE);
    Expr p1 = Expr.input(Plan.PATTERN1, Domain.ROW);
    Expr p2 = Expr.input(Plan.PATTERN2, Domain.COL);
    Schedule s = new Schedule(Map.of("pair", nngp.times(p1).times(p2).plus(p1)),
        Map.of("row", Expr.input(Plan.VAR1, Domain.ROW).times(p1)), Map.of("col", Expr.input(Plan.VAR2,
            Domain.COL).plus(p2)));
    int d = 5;
    int n1 = 4;
    int n2 = 3;
    double[] x1 = random(n1 * d, 5);
    double[] x2 = random(n2 * d, 6);
    double[] a1 = random(n1, 7);
    double[] a2 = random(n2, 8);
    for (boolean f32 : new boolean[] {false, true}) {
      CudaSource src = CudaSource.generate(s, f32, 1);
      assertTrue(!src.blocks() && src.buffers().containsAll(List.of("in:" + Plan.PATTERN1, "in:" + Plan.PATTERN2)));
      Map<String, Object> out = engine.run(s, src, d, true, f32 ? floats(x1) : x1, f32 ? floats(x2) : x2,
          Map.of(Plan.PATTERN1, a1, Plan.PATTERN2, a2), n1, n2);
      double tolerance = f32 ? 1e-5 : 1e-12;
      for (int i = 0; i < n1; i++) {
        for (int j = 0; j < n2; j++) {
          double g = 0;
          for (int k = 0; k < d; k++) {
            g += x1[i * d + k] * x2[j * d + k];
          }
          assertEquals(g / d * a1[i] * a2[j] + a1[i], value(out.get("pair"), i * n2 + j), tolerance, "pair");
        }
        assertEquals(norm(x1, i, d) * a1[i], value(out.get("row"), i), tolerance, "row");
      }
      for (int j = 0; j < n2; j++) {
        assertEquals(norm(x2, j, d) + a2[j], value(out.get("col"), j), tolerance, "col");
      }
    }
  }

  /**
   * A graph plan run without patterns fails as on the {@code cpu} engine, naming the layer; an
   * input of the wrong size names the input and its size.
   */
  @Test
  void missingOrMisshapedInputsAreErrors() {
    Plan graph = Plan.compile(Stax.serial(Stax.dense(2), Stax.aggregate(), Stax.globalAvgPool()), new Shape(4, 2),
        EnumSet.of(Get.NNGP));
    double[] x = random(3 * 8, 9);
    IllegalArgumentException cpu = assertThrows(IllegalArgumentException.class,
        () -> graph.run(CpuBackend.float64(), x, null, 3, 3, 1));
    IllegalArgumentException cuda = assertThrows(IllegalArgumentException.class,
        () -> engine.run(graph, x, null, 3, 3));
    assertEquals(cpu.getMessage(), cuda.getMessage());
    assertTrue(cuda.getMessage().startsWith("serial[1].Aggregate reads a graph pattern"), cuda.getMessage());
    Schedule s = new Schedule(Map.of("pair", Expr.input(Plan.NNGP, Domain.TILE).times(
        Expr.input(Plan.PATTERN1, Domain.ROW))));
    CudaSource src = CudaSource.generate(s, false, 1);
    IllegalArgumentException size = assertThrows(IllegalArgumentException.class,
        () -> engine.run(s, src, 8, true, x, null, Map.of(Plan.PATTERN1, new double[2]), 3, 3));
    assertEquals("plan input pattern1 must hold 3 numbers (3 inputs of 1), got 2", size.getMessage());
    IllegalArgumentException none = assertThrows(IllegalArgumentException.class,
        () -> engine.run(s, src, 8, true, x, null, Map.of(), 3, 3));
    assertTrue(none.getMessage().startsWith("the plan reads input pattern1, which was not given"), none.getMessage());
  }

  private static void assertClose(double expected, double actual, String what) {
    assertEquals(expected, actual, 1e-12 * Math.max(1, Math.abs(expected)), what);
  }

  private static double norm(double[] x, int i, int d) {
    double s = 0;
    for (int k = 0; k < d; k++) {
      s += x[i * d + k] * x[i * d + k];
    }
    return s / d;
  }

  private static double value(Object a, int at) {
    return a instanceof double[] d ? d[at] : ((float[]) a)[at];
  }

  private static float[] floats(double[] v) {
    float[] f = new float[v.length];
    for (int k = 0; k < v.length; k++) {
      f[k] = (float) v[k];
    }
    return f;
  }
}
