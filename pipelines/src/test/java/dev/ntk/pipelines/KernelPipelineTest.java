package dev.ntk.pipelines;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.engine.Backend;
import dev.ntk.runners.Runners;
import dev.ntk.transforms.NtkPipelineOptions;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
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

  /**
   * The tile settings as {@link NtkPipelineOptions}: unset {@code --tileRows} sizes tiles to {@code
   * --maxTileBytes} as {@code bin/ntk kernel}'s {@code --tile auto} does (the same tile set, named by
   * its tile size, and the same kernels), in the main class and in a {@link KernelJob} run on such
   * options, and {@code --tileDirectory} moves the tiles; a job's {@code --dtype=float32} computes and
   * writes float32 kernels.
   */
  @Test
  void tileSettingsFromPipelineOptionsMatchTheCommandLine() throws IOException {
    Path viaCli = dir.resolve("cli");
    assertEquals(0, ntk("kernel", "--model", model.toString(), "--x1", x.toString(), "--max-tile-bytes", "20000",
        "--runner", "DirectRunner", "--parallelism", "1", "--out", viaCli.toString()), lastErr);
    Path viaMain = dir.resolve("main");
    Path tiles = dir.resolve("elsewhere");
    KernelPipeline.main(new String[] {"--model=" + model, "--x1=" + x, "--out=" + viaMain, "--maxTileBytes=20000",
        "--tileDirectory=" + tiles, "--runner=DirectRunner", "--targetParallelism=1"});
    List<String> sets = names(viaCli.resolve("tiles"));
    assertEquals(1, sets.size(), sets.toString());
    assertEquals(sets, names(tiles), "the tile set (named by its tile size) of --tile auto");
    assertTrue(!Files.exists(viaMain.resolve("tiles")), "--tileDirectory replaces OUT/tiles");
    assertTrue(names(tiles.resolve(sets.get(0))).size() > 2, "several tiles: " + names(tiles.resolve(sets.get(0))));
    Path viaJob = dir.resolve("job");
    new KernelJob(model, x, null, List.of(Get.NNGP, Get.NTK), viaJob)
        .run(Runners.options(Runners.Kind.DIRECT, null, 1, List.of("--maxTileBytes=20000")));
    assertEquals(sets, names(viaJob.resolve("tiles")), "a job's tile set of unset --tileRows");
    for (String k : new String[] {"nngp.npy", "ntk.npy"}) {
      assertArrayEquals(Npy.read(viaCli.resolve(k)).data(), Npy.read(viaMain.resolve(k)).data(), 0.0, k);
      assertArrayEquals(Npy.read(viaCli.resolve(k)).data(), Npy.read(viaJob.resolve(k)).data(), 0.0, k);
    }
    Path float32 = dir.resolve("float32");
    new KernelJob(model, x, null, List.of(Get.NTK), float32)
        .run(Runners.options(Runners.Kind.DIRECT, null, 1, List.of("--dtype=float32", "--tileRows=4")));
    NpyArray ntk32 = Npy.read(float32.resolve("ntk.npy"));
    assertEquals(NpyDType.FLOAT32, ntk32.dtype());
    double[] ntk64 = Npy.read(viaCli.resolve("ntk.npy")).data();
    for (int i = 0; i < ntk64.length; i++) {
      assertEquals(ntk64[i], ntk32.data()[i], 1e-4 * Math.abs(ntk64[i]) + 1e-6, "entry " + i);
    }
    IllegalArgumentException zero = assertThrows(IllegalArgumentException.class, () -> KernelPipeline.main(
        new String[] {"--model=" + model, "--x1=" + x, "--out=" + dir.resolve("zero"), "--tileRows=0"}));
    assertTrue(zero.getMessage().contains("--tileRows must be at least 1"), zero.getMessage());
  }

  /** {@code bin/ntk}'s flags are its tile settings' names; the Beam names of the same settings are refused. */
  @Test
  void theCommandLineMapsItsFlagsIntoThePipelineOptions() {
    CommonOptions o = new CommonOptions();
    o.tileOption = "5";
    o.maxTileBytes = 123456;
    o.backend = Backend.CPU;
    o.dtype = NpyDType.FLOAT32;
    o.runner = Runners.Kind.DIRECT;
    o.parallelism = 1;
    NtkPipelineOptions tiles = o.pipelineOptions().as(NtkPipelineOptions.class);
    assertEquals(5, tiles.getTileRows());
    assertEquals(123456, tiles.getMaxTileBytes());
    assertEquals("cpu", tiles.getBackend());
    assertEquals("float32", tiles.getDtype());
    o.tileOption = "auto";
    assertNull(o.pipelineOptions().as(NtkPipelineOptions.class).getTileRows());

    assertEquals(2, ntk("kernel", "--model", model.toString(), "--x1", x.toString(), "--out",
        dir.resolve("beamName").toString(), "--tileRows=3"));
    assertTrue(lastErr.contains("--tileRows=3: the command line takes this setting as its own flag --tile"), lastErr);
  }

  private static List<String> names(Path directory) throws IOException {
    try (Stream<Path> s = Files.list(directory)) {
      return s.map(p -> p.getFileName().toString()).sorted().toList();
    }
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
