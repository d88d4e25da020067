package dev.ntk.transforms;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.io.Npz;
import dev.ntk.kernels.Layer;
import dev.ntk.kernels.ModelException;
import dev.ntk.kernels.ModelSpec;
import dev.ntk.kernels.Params;
import dev.ntk.kernels.Tensors;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Parameters files: names, shapes and values as documented, round trips, and every mismatch named. */
class ParamsFilesTest {
  /** Every parameterized layer type, with and without bias, nested in serial and parallel. */
  private static final Layer MODEL = ModelSpec.parse("""
      {"serial": [
        {"Conv": {"out_chan": 3, "filter_shape": [2, 2], "padding": "SAME", "W_std": 1.5, "b_std": 0.1}},
        {"Relu": {}},
        {"FanOut": {"num": 2}},
        {"parallel": [
          {"Conv": {"out_chan": 3, "filter_shape": [1, 1], "W_std": 1.1}},
          {"serial": [{"Conv": {"out_chan": 3, "filter_shape": [3, 3], "padding": "SAME", "b_std": 0.2}}]}]},
        {"FanInSum": {}},
        {"ConvTranspose": {"out_chan": 2, "filter_shape": [2, 2], "strides": [2, 2], "b_std": 0.3}},
        {"Flatten": {}},
        {"Dense": {"out_dim": 4, "W_std": 1.2, "b_std": 0.05}}]}""");
  private static final Shape INPUT = new Shape(5, 5, 2);

  @TempDir Path dir;
  private NDManager manager;

  @BeforeEach
  void open() {
    manager = Tensors.newManager();
  }

  @AfterEach
  void close() {
    manager.close();
  }

  @Test
  void namesAndShapesFollowTheLayerPaths() throws IOException {
    Path file = dir.resolve("p.npz");
    ParamsFiles.write(MODEL, MODEL.init(7, INPUT, manager, DataType.FLOAT64), file);
    Map<String, long[]> expected = new LinkedHashMap<>();
    expected.put("serial[0].Conv/W", new long[] {2, 2, 2, 3});
    expected.put("serial[0].Conv/b", new long[] {3});
    expected.put("serial[3].parallel[0].Conv/W", new long[] {1, 1, 3, 3});
    expected.put("serial[3].parallel[1].serial[0].Conv/W", new long[] {3, 3, 3, 3});
    expected.put("serial[3].parallel[1].serial[0].Conv/b", new long[] {3});
    expected.put("serial[5].ConvTranspose/W", new long[] {2, 2, 3, 2});
    expected.put("serial[5].ConvTranspose/b", new long[] {2});
    expected.put("serial[7].Dense/W", new long[] {200, 4});
    expected.put("serial[7].Dense/b", new long[] {4});
    Map<String, NpyArray> arrays = Npz.read(file);
    assertEquals(new ArrayList<>(expected.keySet()), new ArrayList<>(arrays.keySet()));
    expected.forEach((name, shape) -> assertArrayEquals(shape, arrays.get(name).shape(), name));
  }

  @Test
  void roundTripGivesTheSameArraysAndOutputs() throws IOException {
    for (DataType dtype : List.of(DataType.FLOAT64, DataType.FLOAT32)) {
      Path file = dir.resolve("p-" + dtype + ".npz");
      Params original = MODEL.init(11, INPUT, manager, dtype);
      ParamsFiles.write(MODEL, original, file);
      Params loaded = ParamsFiles.read(MODEL, INPUT, file, manager, null);
      Map<String, NDArray> a = Params.named(MODEL, original);
      Map<String, NDArray> b = Params.named(MODEL, loaded);
      assertEquals(a.keySet(), b.keySet());
      for (String name : a.keySet()) {
        assertEquals(dtype, b.get(name).getDataType(), name);
        assertArrayEquals(Tensors.toDoubles(a.get(name)), Tensors.toDoubles(b.get(name)), 0.0, name);
      }
      NDArray x = Tensors.standardNormal(new SplittableRandom(3), manager, new Shape(3, 5, 5, 2), dtype);
      assertArrayEquals(Tensors.toDoubles(MODEL.apply(original, x)), Tensors.toDoubles(MODEL.apply(loaded, x)), 0.0,
          dtype.toString());
    }
  }

  @Test
  void float32FileReadsExactlyAsFloat64() throws IOException {
    Path file = dir.resolve("p.npz");
    Params original = MODEL.init(5, INPUT, manager, DataType.FLOAT32);
    ParamsFiles.write(MODEL, original, file);
    Params loaded = ParamsFiles.read(MODEL, INPUT, file, manager, DataType.FLOAT64);
    NDArray w = Params.named(MODEL, loaded).get("serial[7].Dense/W");
    assertEquals(DataType.FLOAT64, w.getDataType());
    assertArrayEquals(Tensors.toDoubles(Params.named(MODEL, original).get("serial[7].Dense/W")),
        Tensors.toDoubles(w), 0.0);
  }

  /**
   * The file holds the N(0, 1) draws under NTK parameterization and the weights under standard
   * parameterization: from the same draws, standard = draws * W_std / sqrt(fan_in) and b_std * b,
   * and each network's output is the documented formula of the file's arrays.
   */
  @Test
  void fileHoldsDrawsUnderNtkAndWeightsUnderStandard() throws IOException {
    double wStd = 1.7;
    double bStd = 0.4;
    Layer ntk = ModelSpec.parse("{\"Dense\": {\"out_dim\": 3, \"W_std\": 1.7, \"b_std\": 0.4}}");
    Layer standard = ModelSpec.parse(
        "{\"Dense\": {\"out_dim\": 3, \"W_std\": 1.7, \"b_std\": 0.4, \"parameterization\": \"standard\"}}");
    Shape in = new Shape(6);
    Path ntkFile = dir.resolve("ntk.npz");
    Path standardFile = dir.resolve("standard.npz");
    Params pNtk = ntk.init(9, in, manager, DataType.FLOAT64);
    Params pStandard = standard.init(9, in, manager, DataType.FLOAT64);
    ParamsFiles.write(ntk, pNtk, ntkFile);
    ParamsFiles.write(standard, pStandard, standardFile);
    Map<String, NpyArray> drawn = Npz.read(ntkFile);
    Map<String, NpyArray> weights = Npz.read(standardFile);
    double[] w = drawn.get("Dense/W").data();
    double[] b = drawn.get("Dense/b").data();
    double[] ws = weights.get("Dense/W").data();
    double[] bs = weights.get("Dense/b").data();
    double scale = wStd / Math.sqrt(6);
    for (int i = 0; i < w.length; i++) {
      assertEquals(w[i] * scale, ws[i], 1e-15 * Math.abs(ws[i]) + 1e-300);
    }
    for (int i = 0; i < b.length; i++) {
      assertEquals(b[i] * bStd, bs[i], 1e-15 * Math.abs(bs[i]));
    }
    double[] x = {0.3, -1.2, 0.8, 2.0, -0.5, 0.1};
    NDArray xs = Tensors.create(manager, x, new Shape(1, 6), DataType.FLOAT64);
    double[] fNtk = Tensors.toDoubles(ntk.apply(ParamsFiles.read(ntk, in, ntkFile, manager, null), xs));
    double[] fStandard = Tensors.toDoubles(standard.apply(ParamsFiles.read(standard, in, standardFile, manager, null),
        xs));
    for (int o = 0; o < 3; o++) {
      double xw = 0;
      double xws = 0;
      for (int i = 0; i < 6; i++) {
        xw += x[i] * w[i * 3 + o];
        xws += x[i] * ws[i * 3 + o];
      }
      assertEquals(scale * xw + bStd * b[o], fNtk[o], 1e-12);
      assertEquals(xws + bs[o], fStandard[o], 1e-12);
    }
  }

  @Test
  void missingArrayIsNamed() throws IOException {
    ParamsFileException e = mismatch(a -> a.remove("serial[3].parallel[1].serial[0].Conv/b"));
    assertEquals("serial[3].parallel[1].serial[0].Conv/b", e.array());
    assertTrue(e.getMessage().contains("missing array serial[3].parallel[1].serial[0].Conv/b"), e.getMessage());
  }

  @Test
  void extraArrayIsNamed() throws IOException {
    ParamsFileException e = mismatch(a -> a.put("serial[3].parallel[0].Conv/b",
        new NpyArray(new long[] {3}, NpyDType.FLOAT64, new double[3])));
    assertEquals("serial[3].parallel[0].Conv/b", e.array());
    assertTrue(e.getMessage().contains("array serial[3].parallel[0].Conv/b is not a parameter of the model"),
        e.getMessage());
  }

  @Test
  void wrongShapeIsNamed() throws IOException {
    ParamsFileException e = mismatch(a -> a.put("serial[7].Dense/W",
        new NpyArray(new long[] {4, 200}, NpyDType.FLOAT64, new double[800])));
    assertTrue(e.getMessage().contains("array serial[7].Dense/W has shape (4, 200), but the model needs (200, 4)"),
        e.getMessage());
  }

  @Test
  void mixedDtypesAreNamed() throws IOException {
    ParamsFileException e = mismatch(a -> a.put("serial[0].Conv/b", NpyArray.ofFloats(new long[] {3}, new float[3])));
    assertEquals("serial[0].Conv/b", e.array());
    assertTrue(e.getMessage().contains("is float32 but serial[0].Conv/W is float64"), e.getMessage());
  }

  @Test
  void float64FileIsNotRoundedToFloat32() throws IOException {
    Path file = dir.resolve("p.npz");
    ParamsFiles.write(MODEL, MODEL.init(1, INPUT, manager, DataType.FLOAT64), file);
    ParamsFileException e = assertThrows(ParamsFileException.class,
        () -> ParamsFiles.read(MODEL, INPUT, file, manager, DataType.FLOAT32));
    assertTrue(e.getMessage().startsWith(file + ": array serial[0].Conv/W is float64"), e.getMessage());
  }

  @Test
  void nonFiniteValueIsNamed() throws IOException {
    ParamsFileException e = mismatch(a -> {
      double[] values = new double[4];
      values[2] = Double.NaN;
      a.put("serial[7].Dense/b", new NpyArray(new long[] {4}, NpyDType.FLOAT64, values));
    });
    assertTrue(e.getMessage().contains("array serial[7].Dense/b has the non-finite value NaN at flat index 2"),
        e.getMessage());
  }

  @Test
  void inputTheModelRejectsIsAModelError() throws IOException {
    Path file = dir.resolve("p.npz");
    ParamsFiles.write(MODEL, MODEL.init(1, INPUT, manager, DataType.FLOAT64), file);
    ModelException e = assertThrows(ModelException.class,
        () -> ParamsFiles.read(MODEL, new Shape(10), file, manager, null));
    assertTrue(e.getMessage().startsWith("serial[0].Conv"), e.getMessage());
  }

  /** The error of reading a file of the model's parameters changed by {@code change}. */
  private ParamsFileException mismatch(Consumer<Map<String, NpyArray>> change) throws IOException {
    Path good = dir.resolve("good.npz");
    ParamsFiles.write(MODEL, MODEL.init(1, INPUT, manager, DataType.FLOAT64), good);
    Map<String, NpyArray> arrays = new LinkedHashMap<>(Npz.read(good));
    change.accept(arrays);
    Path bad = dir.resolve("bad.npz");
    Npz.write(bad, arrays);
    ParamsFileException e = assertThrows(ParamsFileException.class,
        () -> ParamsFiles.read(MODEL, INPUT, bad, manager, null));
    assertTrue(e.getMessage().startsWith(bad + ": "), e.getMessage());
    assertTrue(e.getMessage().contains(e.array()), e.getMessage());
    return e;
  }
}
