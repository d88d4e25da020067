package dev.ntk.transforms;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ntk.io.NpyDType;
import dev.ntk.io.Tile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ServiceLoader;
import java.util.stream.Stream;
import org.apache.beam.sdk.Pipeline;
import org.apache.beam.sdk.options.PipelineOptionsFactory;
import org.apache.beam.sdk.options.PipelineOptionsRegistrar;
import org.apache.beam.sdk.testing.PAssert;
import org.apache.beam.sdk.values.PCollection;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The tile settings as Beam flags: typed and checked by {@code fromArgs}, found through the
 * registrar, and read by {@link Kernels} for each setting its {@code withX} methods left unset.
 */
class NtkPipelineOptionsTest {
  @TempDir Path dir;

  @Test
  void flagsAreTypedWithDefaults() {
    NtkPipelineOptions o = PipelineOptionsFactory.fromArgs("--tileRows=64", "--maxTileBytes=1000", "--dtype=float32",
        "--backend=cpu", "--tileDirectory=gs://bucket/tiles").withValidation().as(NtkPipelineOptions.class);
    assertEquals(64, o.getTileRows());
    assertEquals(1000, o.getMaxTileBytes());
    assertEquals("float32", o.getDtype());
    assertEquals("cpu", o.getBackend());
    assertEquals("gs://bucket/tiles", o.getTileDirectory());
    NtkPipelineOptions d = PipelineOptionsFactory.fromArgs().as(NtkPipelineOptions.class);
    assertNull(d.getTileRows(), "unset: auto (KernelPipeline) or 256 (Kernels)");
    assertEquals(1L << 30, d.getMaxTileBytes());
    assertEquals("float64", d.getDtype());
    assertEquals("auto", d.getBackend());
    assertNull(d.getTileDirectory());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> PipelineOptionsFactory.fromArgs("--tileRows=many").as(NtkPipelineOptions.class));
    // Beam's message names the value and the type it is not (bin/ntk adds the flags: "Beam options [...]")
    assertTrue(e.getMessage().contains("\"many\"") && e.getMessage().contains("Integer"), e.getMessage());
  }

  /** {@code fromArgs(...).create()} knows the flags without a {@code register} call: the registrar is a service. */
  @Test
  void theRegistrarIsFoundOnTheClassPath() {
    assertTrue(ServiceLoader.load(PipelineOptionsRegistrar.class).stream()
        .anyMatch(r -> r.type() == NtkPipelineOptionsRegistrar.class));
    assertEquals(7, PipelineOptionsFactory.fromArgs("--tileRows=7").create().as(NtkPipelineOptions.class)
        .getTileRows());
  }

  @Test
  void kernelsTakeTheSettingsTheyWereNotGivenFromTheOptions() throws IOException {
    Path x = Fixtures.randomNpy(dir, "x.npy", 10, 5, 1);
    Path tiles = dir.resolve("tiles");
    Pipeline p = Pipeline.create(PipelineOptionsFactory.fromArgs("--runner=DirectRunner", "--tileRows=3",
        "--dtype=float32", "--backend=cpu", "--tileDirectory=" + tiles).create());
    PCollection<Tile> fromFlags = KernelsTest.examples(p, "X", dev.ntk.io.Npy.read(x))
        .apply("FromFlags", Kernels.of(Fixtures.MODEL));
    PCollection<Tile> given = KernelsTest.examples(p, "Y", dev.ntk.io.Npy.read(x))
        .apply("Given", Kernels.of(Fixtures.MODEL).withTileRows(4).withDType(NpyDType.FLOAT64)
            .withTileDirectory(dir.resolve("given").toString()));
    PAssert.that(fromFlags).satisfies(all -> {
      int count = 0;
      for (Tile t : all) {
        count++;
        assertTrue(t.key().rows() <= 3 && t.dtype() == NpyDType.FLOAT32, t.key() + " " + t.dtype());
      }
      assertEquals(new TilePlan(10, 10, 3, true).tiles().size(), count);
      return null;
    });
    PAssert.that(given).satisfies(all -> {
      int count = 0;
      for (Tile t : all) {
        count++;
        assertTrue(t.dtype() == NpyDType.FLOAT64, t.dtype().toString());
      }
      assertEquals(new TilePlan(10, 10, 4, true).tiles().size(), count, "withTileRows wins over --tileRows");
      return null;
    });
    p.run().waitUntilFinish();
    try (Stream<Path> files = Files.walk(tiles)) {
      assertTrue(files.anyMatch(f -> f.getFileName().toString().endsWith(".arrow")), "tiles kept in --tileDirectory");
    }

    Pipeline bad = Pipeline.create(PipelineOptionsFactory.fromArgs("--tileRows=0").create());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> KernelsTest.examples(bad, "X", dev.ntk.io.Npy.read(x)).apply(Kernels.of(Fixtures.MODEL)));
    assertTrue(e.getMessage().contains("--tileRows must be at least 1, got 0"), e.getMessage());
  }
}
