package dev.ntk.pipelines;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.io.Npz;
import dev.ntk.kernels.Layer;
import dev.ntk.kernels.ModelSpec;
import dev.ntk.kernels.Params;
import dev.ntk.kernels.Tensors;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code ntk init}: the parameters file's names, shapes and values, reproducibility, and its errors. */
class InitCommandTest {
  private static final String MLP = """
      {"serial": [{"Dense": {"out_dim": 16, "W_std": 1.5, "b_std": 0.1}}, {"Relu": {}},
                  {"Dense": {"out_dim": 1, "W_std": 1.5}}]}""";
  private static final String CNN = """
      {"serial": [{"Conv": {"out_chan": 4, "filter_shape": [3, 3], "padding": "SAME", "b_std": 0.1}},
                  {"Relu": {}}, {"Flatten": {}}, {"Dense": {"out_dim": 2, "b_std": 0.1}}]}""";

  @TempDir Path dir;

  record Result(int status, String out, String err) {}

  @Test
  void writesOneArrayPerParameterWithTheDrawsOfInit() throws IOException {
    Path model = Files.writeString(dir.resolve("mlp.json"), MLP);
    Path out = dir.resolve("p.npz");
    Result r = ntk("init", "--model", model, "--input-shape", "3", "--seed", "42", "--out", out);
    assertEquals(0, r.status(), r.err());
    assertTrue(r.out().contains("serial[0].Dense/W (3, 16)"), r.out());
    assertTrue(r.out().contains("80 parameters, seed 42"), r.out());
    Map<String, NpyArray> arrays = Npz.read(out);
    assertEquals(List.of("serial[0].Dense/W", "serial[0].Dense/b", "serial[2].Dense/W"),
        new ArrayList<>(arrays.keySet()));
    assertArrayEquals(new long[] {3, 16}, arrays.get("serial[0].Dense/W").shape());
    assertArrayEquals(new long[] {16}, arrays.get("serial[0].Dense/b").shape());
    assertArrayEquals(new long[] {16, 1}, arrays.get("serial[2].Dense/W").shape());
    Layer layer = ModelSpec.parse(MLP);
    try (NDManager m = Tensors.newManager()) {
      Map<String, NDArray> drawn = Params.named(layer, layer.init(42, new Shape(3), m, DataType.FLOAT64));
      for (String name : drawn.keySet()) {
        assertArrayEquals(Tensors.toDoubles(drawn.get(name)), arrays.get(name).data(), 0.0, name);
      }
    }
  }

  @Test
  void imagesAndFloat32() throws IOException {
    Path model = Files.writeString(dir.resolve("cnn.json"), CNN);
    Path out = dir.resolve("cnn.npz");
    Result r = ntk("init", "--model", model, "--input-shape", "5, 5, 2", "--dtype", "float32", "--out", out);
    assertEquals(0, r.status(), r.err());
    Map<String, NpyArray> arrays = Npz.read(out);
    assertArrayEquals(new long[] {3, 3, 2, 4}, arrays.get("serial[0].Conv/W").shape());
    assertArrayEquals(new long[] {4}, arrays.get("serial[0].Conv/b").shape());
    assertArrayEquals(new long[] {100, 2}, arrays.get("serial[3].Dense/W").shape());
    assertArrayEquals(new long[] {2}, arrays.get("serial[3].Dense/b").shape());
    arrays.values().forEach(a -> assertEquals(NpyDType.FLOAT32, a.dtype()));
  }

  @Test
  void sameSeedSameFileOtherSeedOtherFile() throws IOException {
    Path model = Files.writeString(dir.resolve("mlp.json"), MLP);
    Path a = dir.resolve("a.npz");
    Path b = dir.resolve("b.npz");
    Path c = dir.resolve("c.npz");
    assertEquals(0, ntk("init", "--model", model, "--input-shape", "3", "--seed", "7", "--out", a).status());
    assertEquals(0, ntk("init", "--model", model, "--input-shape", "3", "--seed", "7", "--out", b).status());
    assertEquals(0, ntk("init", "--model", model, "--input-shape", "3", "--seed", "8", "--out", c).status());
    assertArrayEquals(Files.readAllBytes(a), Files.readAllBytes(b));
    assertFalse(Npz.read(a).equals(Npz.read(c)));
  }

  @Test
  void badModelExitsTwoNamingTheLayer() throws IOException {
    Path model = Files.writeString(dir.resolve("bad.json"), """
        {"serial": [{"Dense": {"out_dim": 4}}, {"Rellu": {}}]}""");
    Path out = dir.resolve("p.npz");
    Result r = ntk("init", "--model", model, "--input-shape", "3", "--out", out);
    assertEquals(2, r.status());
    assertEquals(1, r.err().strip().lines().count(), r.err());
    assertTrue(r.err().contains("serial[1].Rellu: unknown layer \"Rellu\""), r.err());
    assertFalse(Files.exists(out));
  }

  @Test
  void shapeTheModelRejectsExitsTwoNamingTheLayer() throws IOException {
    Path model = Files.writeString(dir.resolve("conv1d.json"), """
        {"serial": [{"Conv": {"out_chan": 4, "filter_shape": [3]}}, {"Flatten": {}}, {"Dense": {}}]}""");
    Path out = dir.resolve("p.npz");
    Result r = ntk("init", "--model", model, "--input-shape", "32,32,3", "--out", out);
    assertEquals(2, r.status());
    assertEquals(1, r.err().strip().lines().count(), r.err());
    assertTrue(r.err().contains("serial[0].Conv: filter_shape [3] has 1 entries but the input has 2 spatial axes"),
        r.err());
    assertTrue(r.err().contains("--input-shape 32,32,3"), r.err());
    assertFalse(Files.exists(out));
  }

  @Test
  void malformedShapeExitsTwo() throws IOException {
    Path model = Files.writeString(dir.resolve("mlp.json"), MLP);
    for (String shape : List.of("3,x", "0", "3,,2", "-4")) {
      Result r = ntk("init", "--model", model, "--input-shape", shape, "--out", dir.resolve("p.npz"));
      assertEquals(2, r.status(), shape);
      assertEquals(1, r.err().strip().lines().count(), r.err());
      assertTrue(r.err().contains("--input-shape must be comma-separated positive integers"), r.err());
    }
    assertFalse(Files.exists(dir.resolve("p.npz")));
  }

  @Test
  void outThatIsADirectoryExitsTwo() throws IOException {
    Path model = Files.writeString(dir.resolve("mlp.json"), MLP);
    Result r = ntk("init", "--model", model, "--input-shape", "3", "--out", dir);
    assertEquals(2, r.status());
    assertTrue(r.err().contains("is a directory"), r.err());
  }

  private static Result ntk(Object... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    List<String> strings = new ArrayList<>();
    for (Object a : args) {
      strings.add(a.toString());
    }
    int status = Ntk.run(strings.toArray(String[]::new), new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8));
    return new Result(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }
}
