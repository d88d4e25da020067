package dev.ntk.kernels.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Layer;
import dev.ntk.kernels.Plan;
import dev.ntk.kernels.Spatial;
import dev.ntk.kernels.Stax;
import dev.ntk.kernels.engine.Expr;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The shape of the generated source: what the kernels of a deep network share, that the host's C
 * compiler accepts it with warnings as errors, that NVRTC's language (checked with {@code nvcc}
 * where a CUDA toolkit is installed, in addition) accepts it, and that an operation without a CUDA
 * form is named.
 */
class CudaSourceTest {
  private static Layer cnn(int depth, Layer readout) {
    List<Layer> layers = new ArrayList<>();
    for (int k = 0; k < depth; k++) {
      layers.add(Stax.conv(1, new int[] {3, 3}, null, "SAME", 1.0, null));
      layers.add(Stax.relu());
    }
    layers.add(readout);
    layers.add(Stax.dense(1, 1.0, null));
    return Stax.serial(layers.toArray(new Layer[0]));
  }

  private static CudaSource source(Layer model, long[] shape, boolean float32) {
    Plan plan = Plan.compile(model, new Shape(shape), EnumSet.of(Get.NNGP, Get.NTK));
    int channels = (int) shape[shape.length - 1];
    return CudaSource.generate(plan.schedule(), float32, channels);
  }

  private static int count(String text, String regex) {
    Matcher m = Pattern.compile(regex).matcher(text);
    int n = 0;
    while (m.find()) {
      n++;
    }
    return n;
  }

  @Test
  void equalLayersShareTheirPixelMapTables() {
    CudaSource gap = source(cnn(21, Stax.globalAvgPool()), new long[] {8, 8, 3}, false);
    assertTrue(gap.blocks());
    // One 3x3 SAME convolution on pixel pairs: one table per axis (their strides differ), for every layer.
    assertEquals(2, count(gap.source(), "NTK_TABLE int T\\d+_start"), gap.toString());
    for (int pass = 0; pass < 3; pass++) {
      assertTrue(gap.source().contains("NTK_KERNEL ntk_pass" + pass + "_0("), "pass " + pass);
      assertTrue(!gap.launches(pass).isEmpty(), "pass " + pass);
    }
    CudaSource fc = source(Stax.serial(Stax.dense(8), Stax.relu(), Stax.dense(1)), new long[] {5}, true);
    assertTrue(!fc.blocks() && !fc.source().contains("NTK_TABLE int"));
    assertTrue(fc.source().contains("typedef float real;"));
  }

  /**
   * Constant blocks are tables, one per distinct block: two attention layers with equal positional
   * embeddings (in the keys and the values) read one; a third layer's other embedding scale adds one;
   * a block of one number (the NTK of a model without parameters, kept per pixel) is a literal.
   */
  @Test
  void equalConstantBlocksShareOneTable() {
    Layer twice = Stax.serial(attention(0.8), Stax.relu(), attention(0.8), Stax.globalAvgPool(), Stax.dense(1));
    assertEquals(1, count(source(twice, new long[] {3, 2}, false).source(), "NTK_TABLE real C\\d+\\["));
    Layer other = Stax.serial(attention(0.8), Stax.relu(), attention(0.8), Stax.relu(), attention(1.1),
        Stax.globalAvgPool(), Stax.dense(1));
    assertEquals(2, count(source(other, new long[] {3, 2}, false).source(), "NTK_TABLE real C\\d+\\["));
    Plan pooled = Plan.compile(Stax.avgPool(new int[] {2}, null, "SAME"), new Shape(3, 2),
        EnumSet.of(Get.NNGP, Get.NTK), Spatial.FULL);
    assertTrue(pooled.schedule().outputs().get(Plan.NTK).op() == Expr.Op.BLOCK, "a zero NTK block");
    assertTrue(!CudaSource.generate(pooled.schedule(), false, 2).source().contains("NTK_TABLE real C"));
  }

  private static Layer attention(double posEmbStd) {
    return Stax.globalSelfAttention(4, 4, 2, 2, true, 1.3, 1.1, 0.9, 1.2, 0.1, "SOFTMAX", "SUM", posEmbStd, true);
  }

  @Test
  void anOperationWithoutACudaFormIsNamed() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> CudaOps.expression(Expr.Op.DIAGONAL, false, "a"));
    assertTrue(e.getMessage().contains("DIAGONAL") && e.getMessage().contains("CudaOps"), e.getMessage());
    for (Expr.Op op : Expr.Op.values()) {
      if (op.arithmetic()) {
        assertTrue(CudaOps.supports(op), op + " has a scalar meaning but no CUDA C form");
      }
    }
  }

  @Test
  void hostAndCudaCompilersAcceptTheSource(@TempDir Path dir) throws Exception {
    List<CudaSource> sources = List.of(source(cnn(3, Stax.globalAvgPool()), new long[] {4, 4, 2}, false),
        source(cnn(2, Stax.flatten()), new long[] {5, 4, 2}, true),
        source(Stax.serial(Stax.dense(8), Stax.erf(), Stax.dense(8), Stax.relu(), Stax.dense(1)),
            new long[] {3}, false),
        // attention's softmax and attend, its embeddings and a DotGeneral's pair weights as tables
        source(Stax.serial(Stax.globalSelfAttention(4, 4, 2, 2, true, 1.3, 1.1, 0.9, 1.2, 0.1, "SOFTMAX", "SUM", 0.8,
            true), Stax.relu(), Stax.dotGeneral(null, new double[][] {{1, -2}, {0.5, 1}},
                new int[][][] {{{1, 2}, {0, 1}}, {{}, {}}}), Stax.dense(1)), new long[] {2, 2, 3}, true));
    String nvcc = nvcc();
    for (int k = 0; k < sources.size(); k++) {
      Path c = dir.resolve("k" + k + ".c");
      Files.writeString(c, sources.get(k).source());
      run(List.of("gcc", "-std=gnu11", "-Wall", "-Werror", "-Wno-unused-variable", "-Wno-unused-function",
          "-fsyntax-only", c.toString()));
      if (nvcc != null) {
        Path cu = dir.resolve("k" + k + ".cu");
        Files.writeString(cu, sources.get(k).source());
        run(List.of(nvcc, "--ptx", "-arch=compute_75", "-o", dir.resolve("k" + k + ".ptx").toString(),
            cu.toString()));
        String ptx = Files.readString(dir.resolve("k" + k + ".ptx"));
        assertTrue(ptx.contains(".entry ntk_pass2") && ptx.contains(".entry ntk_diagonal"), "unmangled entries");
      }
    }
  }

  /**
   * The forms of sign, select and pow compiled by the host's C compiler on the values where
   * {@link Math}'s meaning is easy to miss: signed zeros and NaN keep {@link Math#signum}'s
   * answers, a NaN or zero condition selects the last operand and a NaN or infinite operand not
   * selected does not reach the result (to the bit), and an integer power is {@link Math#pow} within
   * one ulp (the dtype's: float32 rounds the double result, as the {@code cpu} engine).
   */
  @Test
  void signSelectAndPowMeanWhatTheCpuEngineComputes(@TempDir Path dir) throws Exception {
    double nan = Double.NaN;
    double inf = Double.POSITIVE_INFINITY;
    double[] xs = {nan, 0.0, -0.0, 2.5, -3.0, 1e-310, -1e-40, inf, -inf};
    double[][] selects = {{nan, nan, 2}, {0.0, nan, -1}, {-0.0, inf, 3}, {1e-300, 4, nan}, {2, -0.0, inf},
        {-1, -inf, -0.0}};
    double[][] pows = {{-2.5, 3}, {0.7, 2}, {-0.0, 3}, {1.3, -2}, {-1.1, 5}, {10.5, 7}};
    for (boolean float32 : new boolean[] {false, true}) {
      String real = float32 ? "float" : "double";
      StringBuilder c = new StringBuilder("#include <math.h>\n#include <stdio.h>\n#include <string.h>\n"
          + "#define NTK_DEVICE static\ntypedef " + real + " real;\n" + CudaOps.FUNCTIONS
          + "static void put(double v) {\n  unsigned long long b;\n  memcpy(&b, &v, 8);\n  printf(\"%llx\\n\", b);\n}\n"
          + "int main(void) {\n  volatile real a, b, c;\n");
      List<Double> expected = new ArrayList<>();
      for (double x : xs) {
        c.append("  a = ").append(literal(x)).append("; put(").append(CudaOps.expression(Expr.Op.SIGN, float32, "a"))
            .append(");\n");
        expected.add(float32 ? (double) Math.signum((float) x) : Math.signum(x));
      }
      for (double[] t : selects) {
        c.append("  a = ").append(literal(t[0])).append("; b = ").append(literal(t[1])).append("; c = ")
            .append(literal(t[2])).append("; put(").append(CudaOps.expression(Expr.Op.SELECT, float32, "a", "b", "c"))
            .append(");\n");
        expected.add(float32 ? Expr.evaluate(Expr.Op.SELECT, (float) t[0], (float) t[1], (float) t[2])
            : Expr.evaluate(Expr.Op.SELECT, t[0], t[1], t[2]));
      }
      for (double[] t : pows) {
        c.append("  a = ").append(literal(t[0])).append("; b = ").append(literal(t[1])).append("; put(")
            .append(CudaOps.expression(Expr.Op.POW, float32, "a", "b")).append(");\n");
        double p = Expr.evaluate(Expr.Op.POW, float32 ? (float) t[0] : t[0], t[1]);
        expected.add(float32 ? (double) (float) p : p);
      }
      c.append("  return 0;\n}\n");
      Path source = dir.resolve(real + ".c");
      Path exe = dir.resolve(real);
      Files.writeString(source, c);
      run(List.of("gcc", "-std=gnu11", "-O1", "-ffp-contract=off", "-o", exe.toString(), source.toString(), "-lm"));
      Process p = new ProcessBuilder(exe.toString()).redirectErrorStream(true).start();
      String[] lines = new String(p.getInputStream().readAllBytes()).trim().split("\n");
      assertTrue(p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0, String.join("\n", lines));
      assertEquals(expected.size(), lines.length, String.join("\n", lines));
      for (int k = 0; k < lines.length; k++) {
        double got = Double.longBitsToDouble(Long.parseUnsignedLong(lines[k], 16));
        double want = expected.get(k);
        String what = real + " case " + k + ": C gives " + got + ", Java " + want;
        if (k >= xs.length + selects.length) {
          double ulp = float32 ? Math.ulp((float) want) : Math.ulp(want);
          assertEquals(want, got, ulp, what);
        } else {
          assertEquals(0, Double.compare(want, got), what);
        }
      }
    }
  }

  /** {@code v} as a C expression of type double (NaN and infinities through math.h's macros). */
  private static String literal(double v) {
    if (Double.isNaN(v)) {
      return "NAN";
    }
    if (Double.isInfinite(v)) {
      return v > 0 ? "INFINITY" : "-INFINITY";
    }
    return Double.toHexString(v);
  }

  /** {@code nvcc} on the PATH or in /usr/local/cuda*, or null. */
  private static String nvcc() throws IOException {
    for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
      if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, "nvcc"))) {
        return Path.of(dir, "nvcc").toString();
      }
    }
    try (var s = Files.newDirectoryStream(Path.of("/usr/local"), "cuda*")) {
      for (Path p : s) {
        if (Files.isExecutable(p.resolve("bin/nvcc"))) {
          return p.resolve("bin/nvcc").toString();
        }
      }
    } catch (java.nio.file.NoSuchFileException e) {
      return null;
    }
    return null;
  }

  private static void run(List<String> command) throws Exception {
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String log = new String(p.getInputStream().readAllBytes());
    assertTrue(p.waitFor(300, TimeUnit.SECONDS), command + " timed out");
    assertEquals(0, p.exitValue(), command + ":\n" + log);
  }
}
