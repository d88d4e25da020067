package dev.ntk.pipelines;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.io.NpyDType;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Model;
import dev.ntk.kernels.Plan;
import dev.ntk.kernels.engine.Backend;
import dev.ntk.transforms.NtkPipelineOptions;
import java.util.EnumSet;
import org.apache.beam.sdk.options.PipelineOptionsFactory;
import org.junit.jupiter.api.Test;

/** The tile settings as the pipeline's options carry them, and the rules that size tiles from them. */
class TileSettingsTest {
  private static final Plan PLAN = Model.parse("""
      {"serial": [{"Dense": {"out_dim": 16}}, {"Relu": {}}, {"Dense": {"out_dim": 1}}]}""")
      .plan(new Shape(3), DataType.FLOAT64, EnumSet.of(Get.NNGP, Get.NTK));

  @Test
  void writtenIntoTheOptionsAndReadBack() {
    for (TileSettings s : new TileSettings[] {new TileSettings(12, 4096, NpyDType.FLOAT32, Backend.CPU),
        new TileSettings(null, 1L << 30, NpyDType.FLOAT64, Backend.AUTO)}) {
      NtkPipelineOptions options = PipelineOptionsFactory.create().as(NtkPipelineOptions.class);
      s.writeTo(options);
      assertEquals(s, TileSettings.of(options));
    }
    NtkPipelineOptions defaults = PipelineOptionsFactory.create().as(NtkPipelineOptions.class);
    assertEquals(new TileSettings(null, 1L << 30, NpyDType.FLOAT64, Backend.AUTO), TileSettings.of(defaults));
    IllegalArgumentException zero = assertThrows(IllegalArgumentException.class, () -> TileSettings.of(
        PipelineOptionsFactory.fromArgs("--tileRows=0").as(NtkPipelineOptions.class)));
    assertTrue(zero.getMessage().contains("--tileRows must be at least 1, got 0"), zero.getMessage());
    IllegalArgumentException bytes = assertThrows(IllegalArgumentException.class, () -> TileSettings.of(
        PipelineOptionsFactory.fromArgs("--maxTileBytes=0").as(NtkPipelineOptions.class)));
    assertTrue(bytes.getMessage().contains("--maxTileBytes must be positive, got 0"), bytes.getMessage());
  }

  /** A given size shrinks until its tile fits; unset, a kernel's tile is as large as fits, a prediction's 256. */
  @Test
  void tileRowsFitTheMemoryBound() {
    long budget = PLAN.tileBytes(10, 10, 8, Backend.CPU);
    TileSettings given = new TileSettings(40, budget, NpyDType.FLOAT64, Backend.CPU);
    int rows = given.kernelRows(PLAN, 100, 100, true, Backend.CPU, 0);
    assertTrue(rows <= 10 && PLAN.tileBytes(rows, rows, 8, Backend.CPU) <= budget, "rows " + rows);
    assertEquals(rows, given.predictRows(PLAN, Backend.CPU));
    TileSettings auto = new TileSettings(null, budget, NpyDType.FLOAT64, Backend.CPU);
    assertEquals(PLAN.autoTile(100, 100, budget, 8, Backend.CPU), auto.kernelRows(PLAN, 100, 100, true, Backend.CPU,
        0));
    TileSettings roomy = new TileSettings(null, 1L << 30, NpyDType.FLOAT64, Backend.CPU);
    assertEquals(100, roomy.kernelRows(PLAN, 100, 100, true, Backend.CPU, 0), "one tile in one JVM");
    assertEquals(25, roomy.kernelRows(PLAN, 100, 100, true, Backend.CPU, 4), "10 tiles for 4 remote workers");
    assertEquals(TileSettings.PREDICT_TILE, roomy.predictRows(PLAN, Backend.CPU));
  }
}
