package dev.ntk.kernels.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.ModelSpec;
import dev.ntk.kernels.Plan;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The fused generated loops ({@link Fused}) against the interpreted steps: every model of the
 * elementwise family, both dtypes, rows longer and shorter than a chunk, x1 with itself and with
 * x2, and tiles that are not whole vectors.
 */
class FusedTest {
  private static final String DEEP = """
      {"serial": [%s {"Dense": {"out_dim": 1, "W_std": 1.4, "b_std": 0.1}}]}""".formatted(
      "{\"Dense\": {\"out_dim\": 8, \"W_std\": 1.4, \"b_std\": 0.1}}, {\"Relu\": {}}, ".repeat(9));

  private static final List<String> MODELS = List.of(DEEP, """
      {"serial": [{"Dense": {"out_dim": 8, "W_std": 1.4, "b_std": 0.1}}, {"LeakyRelu": {"alpha": 0.2}},
        {"Dense": {"out_dim": 8, "b_std": 0.2}}, {"Erf": {"a": 1.2, "b": 0.8, "c": 0.1}},
        {"Dense": {"out_dim": 8, "parameterization": "standard"}}, {"Abs": {}},
        {"Dense": {"out_dim": 1}}]}""", """
      {"serial": [{"Dense": {"out_dim": 8, "b_std": 0.3}}, {"FanOut": {"num": 2}},
        {"parallel": [{"serial": [{"Relu": {}}, {"Dense": {"out_dim": 8}}]}, {"Identity": {}}]},
        {"FanInSum": {}}, {"ABRelu": {"a": -0.5, "b": 2}}, {"Dense": {"out_dim": 1, "b_std": 0.05}}]}""");

  @Test
  void fusedLoopsGiveTheInterpretedNumbers() {
    assertTrue(Fused.available(), "the tests run on a JDK with --add-modules jdk.incubator.vector");
    for (String model : MODELS) {
      for (Set<Get> get : List.of(EnumSet.allOf(Get.class), EnumSet.of(Get.NNGP))) {
        Plan plan = Plan.compile(ModelSpec.parse(model), new Shape(7), get);
        // 1043 columns: rows of two whole chunks and a part that is not a whole vector; 37:
        // several rows per chunk; x2 == null: the upper triangle, from the diagonal.
        for (int[] n : new int[][] {{5, 1043}, {9, 37}, {70, -1}, {600, -1}}) {
          double[] x1 = gaussian(n[0] * 7, n[0]);
          double[] x2 = n[1] < 0 ? null : gaussian(n[1] * 7, n[1]);
          int n2 = n[1] < 0 ? n[0] : n[1];
          String where = model.substring(0, 40) + " " + get + " " + n[0] + " x " + n[1];
          compare(plan, CpuBackend.float64(), x1, x2, n[0], n2, 1e-13, 1e-7, where + " float64");
          CpuBackend<float[]> f32 = CpuBackend.float32();
          compare(plan, f32, f32.fromDoubles(x1), x2 == null ? null : f32.fromDoubles(x2), n[0], n2, 1e-5,
              3e-3, where + " float32");
        }
      }
    }
  }

  /**
   * Relative to the kernel's largest entry: within {@code tolerance}, and on the diagonal of x1 with
   * itself within {@code diagonal}. There the angle of a ReLU layer is near 0, from the square root
   * of {@code k11 k22 - k12^2}, which is 0 but for rounding: a last-bit difference (the {@code atan2}
   * of the Vector API differs in the last bit before and after the JIT compiles a loop, see
   * KernelsTest) moves the entry by about the square root of the dtype's precision, in any
   * implementation of the recursion.
   */
  private static <A> void compare(Plan plan, CpuBackend<A> cpu, A x1, A x2, int n1, int n2, double tolerance,
      double diagonal, String where) {
    Map<String, A> interpreted = plan.run(cpu.fused(false), x1, x2, n1, n2, 2);
    Map<String, A> fused = plan.run(cpu.fused(true), x1, x2, n1, n2, 2);
    assertEquals(interpreted.keySet(), fused.keySet(), where);
    for (String k : List.of(Plan.NNGP, Plan.NTK)) {
      if (!interpreted.containsKey(k)) {
        continue;
      }
      int length = Math.toIntExact((long) n1 * n2);
      double[] want = cpu.toDoubles(interpreted.get(k), length);
      double[] got = cpu.toDoubles(fused.get(k), length);
      double scale = 0;
      for (double w : want) {
        scale = Math.max(scale, Math.abs(w));
      }
      for (int i = 0; i < length; i++) {
        double t = x2 == null && i / n2 == i % n2 ? diagonal : tolerance;
        assertTrue(Math.abs(got[i] - want[i]) <= t * scale,
            where + " " + k + "[" + i + "]: " + got[i] + " vs " + want[i]);
      }
    }
  }

  /**
   * Quadrature rules as loops in the generated source (ElementwiseNumerical's two nested loops,
   * Elementwise tanh's product rule, selu's outer rule), the NNGP and NTK sums of one table in one
   * loop: the numbers of the interpreted sums, which run each sum by itself.
   */
  @Test
  void quadratureLoopsGiveTheInterpretedNumbers() {
    Plan plan = Plan.compile(ModelSpec.parse("""
        {"serial": [{"Dense": {"out_dim": 8, "W_std": 1.4, "b_std": 0.1}},
          {"ElementwiseNumerical": {"fn": "tanh", "deg": 5}}, {"Dense": {"out_dim": 8, "b_std": 0.2}},
          {"Elementwise": {"fn": "tanh"}}, {"Dense": {"out_dim": 8}}, {"Elementwise": {"fn": "selu"}},
          {"Dense": {"out_dim": 1}}]}"""), new Shape(7), EnumSet.allOf(Get.class));
    for (int[] n : new int[][] {{3, 43}, {9, 5}, {7, -1}}) {
      double[] x1 = gaussian(n[0] * 7, n[0]);
      double[] x2 = n[1] < 0 ? null : gaussian(n[1] * 7, n[1]);
      int n2 = n[1] < 0 ? n[0] : n[1];
      String where = "quadratures " + n[0] + " x " + n[1];
      compare(plan, CpuBackend.float64(), x1, x2, n[0], n2, 1e-13, 1e-7, where + " float64");
      CpuBackend<float[]> f32 = CpuBackend.float32();
      compare(plan, f32, f32.fromDoubles(x1), x2 == null ? null : f32.fromDoubles(x2), n[0], n2, 1e-5, 3e-3,
          where + " float32");
    }
  }

  /**
   * A depth-21 network of Elementwise tanh (a product rule of 9,216 points per entry for the NNGP
   * and the NTK factor in each of 20 layers) is a plan of a few steps per layer, not of 9,216
   * bodies: its fused loops compile and run (the plan of unrolled sums had not compiled after 5
   * minutes), and the equal layers share one generated method.
   */
  @Test
  void deepQuadraturePlansStaySmall() {
    String layer = "{\"Dense\": {\"out_dim\": 16, \"W_std\": 1.4, \"b_std\": 0.1}}, "
        + "{\"Elementwise\": {\"fn\": \"tanh\"}}, ";
    Plan plan = Plan.compile(ModelSpec.parse("{\"serial\": [" + layer.repeat(20)
        + "{\"Dense\": {\"out_dim\": 1}}]}"), new Shape(7), EnumSet.allOf(Get.class));
    int steps = plan.schedule().tileSteps().size();
    assertTrue(steps < 20 * 30, steps + " per-pair steps");
    double[] x1 = gaussian(5 * 7, 5);
    CpuBackend<float[]> f32 = CpuBackend.float32();
    compare(plan, f32, f32.fromDoubles(x1), null, 5, 5, 1e-4, 3e-3, "depth 21, exact tanh, float32");
    Fused.Program program = Fused.last();
    assertNotNull(program);
    assertTrue(program.methods() * 2 < program.segments(),
        program.methods() + " methods for " + program.segments() + " segments");
  }

  @Test
  void equalLayersShareOneGeneratedMethod() {
    String deeper = """
        {"serial": [%s {"Dense": {"out_dim": 1}}]}""".formatted(
        "{\"Dense\": {\"out_dim\": 8, \"W_std\": 1.4, \"b_std\": 0.1}}, {\"Relu\": {}}, ".repeat(20));
    Plan plan = Plan.compile(ModelSpec.parse(deeper), new Shape(7), EnumSet.allOf(Get.class));
    int steps = plan.schedule().tileSteps().size();
    int[] lastUse = new int[steps];
    java.util.IdentityHashMap<Expr, Integer> index = new java.util.IdentityHashMap<>();
    for (int i = 0; i < steps; i++) {
      Expr e = plan.schedule().tileSteps().get(i);
      index.put(e, i);
      lastUse[i] = i;
      for (Expr o : e.operands()) {
        Integer j = index.get(o);
        if (j != null) {
          lastUse[j] = i;
        }
      }
    }
    int[] starts = Fused.segments(lastUse);
    assertEquals(0, starts[0]);
    assertEquals(steps, starts[starts.length - 1]);
    for (int s = 0; s + 1 < starts.length; s++) {
      int length = starts[s + 1] - starts[s];
      assertTrue(length >= 1 && length <= Fused.SEGMENT, "segment " + s + " has " + length + " steps");
    }
    // Twenty equal Dense + Relu layers: the cuts fall between layers, so most segments repeat one
    // shape, and the generated class has far fewer methods than segments.
    Fused.Program program = compileProgram(plan);
    assertNotNull(program);
    assertTrue(program.methods() * 2 < program.segments(),
        program.methods() + " methods for " + program.segments() + " segments");
  }

  /** The program the cpu backend compiles for a plan's tiles of x1 with x2 (long rows). */
  private static Fused.Program compileProgram(Plan plan) {
    double[] x1 = gaussian(2 * 7, 1);
    double[] x2 = gaussian(600 * 7, 2);
    CpuBackend<double[]> cpu = CpuBackend.float64().fused(true);
    plan.run(cpu, x1, x2, 2, 600, 1);
    return Fused.last();
  }

  @Test
  void aBackgroundLoopIsUsedOnceReady() throws InterruptedException {
    Plan plan = Plan.compile(ModelSpec.parse(MODELS.get(1)), new Shape(7), EnumSet.allOf(Get.class));
    double[] x1 = gaussian(40 * 7, 3);
    CpuBackend<double[]> background = CpuBackend.float64().forWork(Double.POSITIVE_INFINITY);
    Map<String, double[]> want = plan.run(CpuBackend.float64().fused(false), x1, null, 40, 40, 1);
    // Whether or not the loop is ready yet, the numbers are the same.
    Map<String, double[]> first = plan.run(background, x1, null, 40, 40, 1);
    Fused.Program program = Fused.last();
    assertNotNull(program);
    long deadline = System.nanoTime() + 120_000_000_000L;
    while (!program.ready() && System.nanoTime() < deadline) {
      Thread.sleep(50);
    }
    assertTrue(program.ready(), "the background compiler warmed the loop");
    Map<String, double[]> later = plan.run(background, x1, null, 40, 40, 1);
    for (String k : List.of(Plan.NNGP, Plan.NTK)) {
      for (int i = 0; i < want.get(k).length; i++) {
        double w = want.get(k)[i];
        double t = (i / 40 == i % 40 ? 1e-7 : 1e-13) * Math.abs(w);
        assertTrue(Math.abs(first.get(k)[i] - w) <= t, k + "[" + i + "]: " + first.get(k)[i] + " vs " + w);
        assertTrue(Math.abs(later.get(k)[i] - w) <= t, k + "[" + i + "]: " + later.get(k)[i] + " vs " + w);
      }
    }
  }

  private static double[] gaussian(int n, long seed) {
    Random r = new Random(seed);
    double[] x = new double[n];
    for (int i = 0; i < n; i++) {
      x[i] = r.nextGaussian();
    }
    return x;
  }

  /**
   * A quadrature's sums over the same table and operands (siblings, one loop) form a segment of their
   * own, cut from the steps before and after them; two quadratures over different operands are two.
   */
  @Test
  void eachQuadratureIsASegmentOfItsOwn() {
    Expr a = Expr.input("a", Expr.Domain.TILE);
    Expr b = a.times(2);
    double[][] table = {{-1, 0, 1}, {0.25, 0.5, 0.25}};
    Expr[] sums = Quadrature.sums(table, new Expr[] {b}, (t, p) -> {
      Expr f = p[0].times(t[0]).tanh();
      return new Expr[] {f.times(t[1]), f.times(f).times(t[1])};
    });
    Expr[] other = Quadrature.sums(table, new Expr[] {a}, (t, p) -> new Expr[] {p[0].times(t[0]).exp().times(t[1])});
    Expr c = sums[0].plus(sums[1]);
    java.util.List<Expr> steps = java.util.List.of(b, sums[0], sums[1], other[0], c);
    assertArrayEquals(new int[] {0, 1, 3, 4, 5}, Fused.isolateQuadratures(new int[] {0, 5}, steps));
    // Cuts already there stay, none is added twice.
    assertArrayEquals(new int[] {0, 1, 3, 4, 5}, Fused.isolateQuadratures(new int[] {0, 1, 4, 5}, steps));
  }

  /**
   * ElementwiseNumerical tanh at deg 25, whose inner loop takes {@code tanh(c x_i + s x_j)} in the factored
   * form {@code 1 - 2 / (1 + e^(2 c x_i) e^(2 s x_j))} where the exponentials are normal numbers and as
   * written elsewhere ({@code FusedSource}): the numbers of the interpreted sums (neural-tangents' rule,
   * ElementwiseQuadratureTest) to 1e-12 of the kernel's scale in float64, for inputs whose norms spread
   * from 0.2 to 9 (variances from 0.04 to 80: the vectors of a tile mix entries in the exponent range
   * and beyond), and for layers whose variances are beyond the range everywhere (W_std 3, b_std 7).
   */
  @Test
  void factoredTanhGivesTheInterpretedNumbers() {
    String inRange = """
        {"serial": [{"Dense": {"out_dim": 8, "W_std": 1.0, "b_std": 0.1}},
          {"ElementwiseNumerical": {"fn": "tanh", "deg": 25}}, {"Dense": {"out_dim": 8, "W_std": 1.4, "b_std": 0.1}},
          {"ElementwiseNumerical": {"fn": "tanh", "deg": 25}}, {"Dense": {"out_dim": 1}}]}""";
    String beyond = """
        {"serial": [{"Dense": {"out_dim": 8, "W_std": 3.0, "b_std": 7.0}},
          {"ElementwiseNumerical": {"fn": "tanh", "deg": 25}}, {"Dense": {"out_dim": 8, "W_std": 3.0, "b_std": 7.0}},
          {"ElementwiseNumerical": {"fn": "tanh", "deg": 25}}, {"Dense": {"out_dim": 1}}]}""";
    for (String model : List.of(inRange, beyond)) {
      Plan plan = Plan.compile(ModelSpec.parse(model), new Shape(7), EnumSet.allOf(Get.class));
      for (int[] n : new int[][] {{5, 37}, {21, -1}}) {
        double[] x1 = spread(gaussian(n[0] * 7, n[0]), 7);
        double[] x2 = n[1] < 0 ? null : spread(gaussian(n[1] * 7, n[1]), 7);
        int n2 = n[1] < 0 ? n[0] : n[1];
        String where = (model == inRange ? "in range " : "beyond ") + n[0] + " x " + n[1];
        compare(plan, CpuBackend.float64(), x1, x2, n[0], n2, 1e-12, 1e-12, where + " float64");
        assertTrue(Fused.last().source().contains(".allTrue()"), "the factored loop is generated");
        CpuBackend<float[]> f32 = CpuBackend.float32();
        // Beyond the range the loop as written runs, with the JDK's tanh: a few ulps from the interpreted rational.
        double tolerance = model == inRange ? 2e-6 : 1e-5;
        compare(plan, f32, f32.fromDoubles(x1), x2 == null ? null : f32.fromDoubles(x2), n[0], n2, tolerance,
            tolerance, where + " float32");
      }
    }
  }

  /** Rows of {@code x} ({@code d} columns) scaled by factors from 0.2 to 9, in turn. */
  private static double[] spread(double[] x, int d) {
    double[] scales = {0.2, 9, 1, 3, 0.5, 6, 1.5};
    for (int i = 0; i < x.length; i++) {
      x[i] *= scales[(i / d) % scales.length];
    }
    return x;
  }

  /**
   * The factored tanh of a two-dimensional rule against the scalar sums ({@link Quadrature#evaluate},
   * with the JDK's tanh), lane by lane over entries chosen for it: in the exponent range, beyond it
   * through the slope {@code s} (the table {@code F_j}) or through the offset {@code c x_i} (point by
   * point of the outer loop), vectors that mix the two, arguments {@code c x_i + s x_j} that cancel to 0
   * (absolute error about an ulp of 1 there), tanh's saturation, and NaN. float64 to 1e-12; float32 to 2e-6 of
   * the sums' scale (1), against the sums of the float32-rounded operands and table: that is what the
   * loop as written gets too (it rounds {@code c x_i} to a float32 of up to 16, 1e-6).
   */
  @Test
  void factoredTanhGivesTheScalarSums() {
    int points = 25;
    double[][] outerTable = new double[2][points];
    double[][] innerTable = new double[2][points];
    double total = 0;
    for (int i = 0; i < points; i++) {
      double x = -6.875 + 13.75 * i / (points - 1);
      outerTable[0][i] = x;
      innerTable[0][i] = x;
      innerTable[1][i] = Math.exp(-x * x / 4);
      total += innerTable[1][i];
    }
    for (int i = 0; i < points; i++) {
      innerTable[1][i] /= total;
      outerTable[1][i] = innerTable[1][i];
    }
    Expr[] in = {Expr.input("u", Expr.Domain.TILE), Expr.input("c", Expr.Domain.TILE),
        Expr.input("s", Expr.Domain.TILE)};
    // (u, c, s): in range; s beyond (|2 s x_j| up to 137); c beyond at the outer ends; cancelling to 0; saturated.
    // Beyond float64's range too: s 60 or c 60 (|2 s x_j| up to 825).
    double[][] kinds = {{0.7, 0.4, 0.9}, {1.1, -1.2, 0.3}, {0.5, 0.3, 10}, {1.3, 9, 0.2}, {2, 3, 3}, {0.9, -4, 4},
        {1, 6, 0.01}, {0.2, 0.01, 6.3}, {0.5, 0.2, 60}, {0.4, 60, 0.3}};
    int n = 101;
    double[][] entries = new double[n][];
    Random r = new Random(5);
    for (int e = 0; e < n; e++) {
      // The first 48 entries (whole vectors of either dtype) in range, the others mixed.
      double[] k = e < 48 ? kinds[e % 2 == 0 ? 0 : e % 3 == 0 ? 4 : 1] : kinds[r.nextInt(kinds.length)];
      entries[e] = new double[] {k[0] * (1 + 0.1 * r.nextGaussian()), k[1] * (1 + 0.1 * r.nextGaussian()),
          k[2] * (1 + 0.1 * r.nextGaussian())};
    }
    // NaN operands fail the range check: the loop as written, NaN sums, the other lanes unchanged.
    entries[n - 2][2] = Double.NaN;
    entries[n - 1][1] = Double.NaN;
    // tanh and 1 - tanh^2 (the loop of w r and w r^2), and with t^3 beside them (the loop of t itself).
    for (boolean cubic : new boolean[] {false, true}) {
      Expr[] sums = nested(outerTable, innerTable, in, cubic);
      List<Expr> steps = List.of(sums);
      List<Fused.Operand[]> operands = steps.stream().map(e -> operandsOf()).toList();
      for (boolean float32 : new boolean[] {false, true}) {
        checkSums(steps, operands, float32, entries, float32 ? nested(roundToFloat(outerTable),
            roundToFloat(innerTable), in, cubic)[0].quadrature() : sums[0].quadrature(), cubic);
      }
    }
  }

  /** Sums of tanh(u x_i) times those of tanh(c x_i + s x_j), 1 - its square and, if {@code cubic}, its cube. */
  private static Expr[] nested(double[][] outerTable, double[][] innerTable, Expr[] in, boolean cubic) {
    return Quadrature.sums(outerTable, in, (x, p) -> {
      Expr row = p[0].times(x[0]).tanh();
      Expr[] inner = Quadrature.sums(innerTable, new Expr[] {p[1].times(x[0]), p[2]}, (y, q) -> {
        Expr t = q[1].times(y[0]).plus(q[0]).tanh();
        Expr[] terms = {t.times(y[1]), Expr.constant(1).minus(t.times(t)).times(y[1]), t.times(t).times(t).times(y[1])};
        return java.util.Arrays.copyOf(terms, cubic ? 3 : 2);
      });
      Expr[] outer = {row.times(x[1]).times(inner[0]), row.times(row).times(x[1]).times(inner[1]),
          cubic ? row.times(x[1]).times(inner[2]) : null};
      return java.util.Arrays.copyOf(outer, cubic ? 3 : 2);
    });
  }

  /** The program of {@code steps} (the sums of {@link #nested}) on {@code entries}, against {@code q}'s scalar sums. */
  private static void checkSums(List<Expr> steps, List<Fused.Operand[]> operands, boolean float32, double[][] entries,
      Quadrature q, boolean cubic) {
    int n = entries.length;
    int[] outputs = java.util.stream.IntStream.range(0, steps.size()).toArray();
    Fused.Program program = Fused.compile(float32, steps, operands, outputs, 3, Fused.When.COMPILED);
    assertNotNull(program);
    assertTrue(program.source().contains(".allTrue()"), program.source());
    Object[] slots = new Object[program.slots()];
    for (int s = 0; s < slots.length; s++) {
      slots[s] = float32 ? new float[n + CpuBackend.PAD] : new double[n + CpuBackend.PAD];
    }
    for (int e = 0; e < n; e++) {
      for (int p = 0; p < 3; p++) {
        if (float32) {
          ((float[]) slots[p])[e] = (float) entries[e][p];
        } else {
          ((double[]) slots[p])[e] = entries[e][p];
        }
      }
    }
    program.bind(slots, new int[slots.length]).accept(n);
    // The reference: the scalar sums of the operands the loop saw (and, for float32, of its table's floats).
    for (int j = 0; j < steps.size(); j++) {
      Object out = slots[program.outputSlot(j)];
      for (int e = 0; e < n; e++) {
        double[] x = new double[3];
        for (int p = 0; p < 3; p++) {
          x[p] = float32 ? ((float[]) slots[p])[e] : ((double[]) slots[p])[e];
        }
        double want = q.evaluate(j, x[0], x[1], x[2]);
        double got = float32 ? ((float[]) out)[e] : ((double[]) out)[e];
        assertEquals(want, got, float32 ? 2e-6 : 1e-12, (float32 ? "float32" : "float64") + (cubic ? " cubic" : "")
            + " sum " + j + " entry " + e + " " + java.util.Arrays.toString(x));
      }
    }
  }

  /** Which sums of a factored tanh the loop of {@code w r} and {@code w r^2} takes: polynomials of degree 2 at most. */
  @Test
  void polynomialsOfTheFactoredTanh() {
    Expr t = Expr.input("t", Expr.Domain.TILE).tanh();
    assertArrayEquals(new double[] {0, 1, 0}, FusedSource.polynomial(t, t));
    assertArrayEquals(new double[] {1, 0, -1}, FusedSource.polynomial(Expr.constant(1).minus(t.times(t)), t));
    assertArrayEquals(new double[] {-6, 5, 2}, FusedSource.polynomial(t.times(2).plus(3).times(t.plus(2))
        .plus(t.times(-2)).plus(-12), t));
    assertEquals(null, FusedSource.polynomial(t.times(t).times(t), t));
    assertEquals(null, FusedSource.polynomial(t.exp(), t));
    assertEquals(null, FusedSource.polynomial(t.plus(Expr.input("u", Expr.Domain.TILE)), t));
  }

  private static Fused.Operand[] operandsOf() {
    return new Fused.Operand[] {Fused.Operand.slot(0, false), Fused.Operand.slot(1, false),
        Fused.Operand.slot(2, false)};
  }

  private static double[][] roundToFloat(double[][] table) {
    double[][] t = new double[table.length][];
    for (int c = 0; c < t.length; c++) {
      t[c] = new double[table[c].length];
      for (int i = 0; i < t[c].length; i++) {
        t[c][i] = (float) table[c][i];
      }
    }
    return t;
  }
}
