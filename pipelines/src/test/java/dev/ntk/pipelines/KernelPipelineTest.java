package dev.ntk.pipelines;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link KernelOptions} through {@code fromArgs}: the plain Beam main class gives the kernels of
 * {@code bin/ntk kernel}, required options are named, and Beam flags pass through {@code bin/ntk}.
 */
class KernelPipelineTest {
  private static final String MODEL = """
      {"serial": [{"Dense": {"out_dim": 16, "W_std": 1.5, "b_std": 0.1}}, {"Relu": {}},
                  {"Dense": {"out_dim": 1, "W_std": 1.5, "b_std": 0.1}}]}""";

  @TempDir Path dir;
  private Path model;
  private Path x;

  @BeforeEach
  void inputs() throws IOException {
    model = Files.writeString(dir.resolve("model.json"), MODEL);
    Random r = new Random(5);
    double[] v = new double[7 * 3];
    for (int i = 0; i < v.length; i++) {
      v[i] = r.nextGaussian();
    }
    x = dir.resolve("x.npy");
    Npy.write(x, new NpyArray(new long[] {7, 3}, NpyDType.FLOAT64, v));
  }

  private int ntk(String... args) {
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int status = Ntk.run(args, new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8));
    lastErr = err.toString(StandardCharsets.UTF_8);
    return status;
  }

  private String lastErr = "";

  @Test
  void theMainClassWritesTheKernelsOfTheCommandLine() throws IOException {
    Path viaMain = dir.resolve("main");
    KernelPipeline.main(new String[] {"--model=" + model, "--x1=" + x, "--out=" + viaMain,
        "--tileRows=3", "--runner=DirectRunner", "--targetParallelism=1"});
    Path viaCli = dir.resolve("cli");
    assertEquals(0, ntk("kernel", "--model", model.toString(), "--x1", x.toString(), "--tile", "3",
        "--out", viaCli.toString()), lastErr);
    for (String k : new String[] {"nngp.npy", "ntk.npy"}) {
      NpyArray a = Npy.read(viaMain.resolve(k));
      assertArrayEquals(new long[] {7, 7}, a.shape());
      assertArrayEquals(Npy.read(viaCli.resolve(k)).data(), a.data(), 0.0, k);
    }
    assertTrue(Files.isDirectory(viaMain.resolve("tiles")));
  }

  @Test
  void requiredOptionsAreNamed() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> KernelPipeline.main(new String[] {"--x1=" + x, "--out=" + dir.resolve("o")}));
    assertTrue(e.getMessage().contains("--model"), e.getMessage());
  }

  @Test
  void beamFlagsPassThroughTheCommandLine() throws IOException {
    Path out = dir.resolve("flags");
    assertEquals(0, ntk("kernel", "--model", model.toString(), "--x1", x.toString(), "--out",
        out.toString(), "--enforceImmutability=false", "--jobName=ntk-test"), lastErr);
    assertArrayEquals(new long[] {7, 7}, Npy.readHeader(out.resolve("ntk.npy")).shape());

    assertEquals(2, ntk("kernel", "--model", model.toString(), "--x1", x.toString(), "--out",
        dir.resolve("bad").toString(), "--noSuchOption=1"));
    assertTrue(lastErr.contains("noSuchOption"), lastErr);
    assertTrue(!Files.exists(dir.resolve("bad")), "nothing is created for a bad flag");
  }
}
