package dev.ntk.kernels.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Layer;
import dev.ntk.kernels.Plan;
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
            new long[] {3}, false));
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
