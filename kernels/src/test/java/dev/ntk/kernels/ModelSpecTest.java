package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class ModelSpecTest {
  static final String PAPER = """
      {"serial": [
        {"Dense": {"out_dim": 2048, "W_std": 1.5, "b_std": 0.05}}, {"Erf": {}},
        {"Dense": {"out_dim": 2048, "W_std": 1.5, "b_std": 0.05}}, {"Erf": {}},
        {"Dense": {"out_dim": 1, "W_std": 1.5, "b_std": 0.05}}
      ]}""";

  /**
   * The command line runs {@link ModelSpec#warmUp} on a thread of its own beside the command: it
   * must not count as (or be) a parse of a model ({@code ModelOnceTest} counts them), and a model
   * read after it is read as before.
   */
  @Test
  void warmUpParsesNoModel() {
    String text = "{\"serial\": [{\"Conv\": {\"out_chan\": 1, \"filter_shape\": [3, 3], \"padding\": \"SAME\"}}, "
        + "{\"Relu\": {}}, {\"Flatten\": {}}, {\"Dense\": {\"out_dim\": 1, \"W_std\": 1.5}}]}";
    String canonical = ModelSpec.toJson(ModelSpec.parse(text));
    long before = Model.parses();
    ModelSpec.warmUp();
    assertEquals(before, Model.parses(), "parses counted by warmUp");
    assertEquals(canonical, ModelSpec.toJson(ModelSpec.parse(text)));
  }

  @Test
  void fileAndJavaModelsGiveTheSameKernels() {
    Layer fromFile = ModelSpec.parse(PAPER);
    Layer fromJava = Stax.serial(
        Stax.dense(2048, 1.5, 0.05), Stax.erf(), Stax.dense(2048, 1.5, 0.05), Stax.erf(),
        Stax.dense(1, 1.5, 0.05));
    assertEquals(ModelSpec.toJson(fromJava), ModelSpec.toJson(fromFile));
    assertEquals(ModelSpec.hash(fromJava), ModelSpec.hash(fromFile));
    try (NDManager m = Tensors.newManager()) {
      NDArray x = KernelTesting.randomInputs(m, 4, 3, 1);
      assertArrayEquals(fromJava.kernelFn().apply(x).ntk().toDoubleArray(),
          fromFile.kernelFn().apply(x).ntk().toDoubleArray(), 0);
    }
  }

  @Test
  void everyLayerRoundTripsThroughJson() {
    String json = """
        {"serial": [{"FanOut": {"num": 2}}, {"parallel": [
          {"serial": [{"Dense": {"out_dim": 3, "parameterization": "standard"}}, {"LeakyRelu": {"alpha": 0.2}}]},
          {"serial": [{"Dense": {"out_dim": 3, "b_std": 0.1}}, {"ABRelu": {"a": -0.5, "b": 2}}]}]},
          {"FanInConcat": {}}, {"Dense": {}}, {"Abs": {}}, {"Identity": {}}, {"Flatten": {}},
          {"FanOut": {"num": 2}}, {"FanInProd": {}}, {"Dense": {}}, {"Relu": {}},
          {"FanOut": {"num": 2}}, {"FanInSum": {}}, {"Dense": {"W_std": 2}}, {"Erf": {"a": 2, "b": 0.5, "c": 0.1}}]}""";
    Layer layer = ModelSpec.parse(json);
    String canonical = ModelSpec.toJson(layer);
    assertEquals(canonical, ModelSpec.toJson(ModelSpec.parse(canonical)));
    assertEquals(new Shape(1), layer.check(new Shape(4)).shape());
    assertNotEquals(ModelSpec.hash(layer), ModelSpec.hash(ModelSpec.parse(PAPER)));
  }

  @ParameterizedTest
  @CsvSource(delimiter = '|', value = {
      "{\"serial\": [{\"Dense\": {}}, {\"Erf\": {\"bb\": 1}}]}|serial[1].Erf: unknown argument \"bb\" (expected one of: a, b, c)",
      "{\"serial\": [{\"Dense\": {}}, {\"Tanh\": {}}]}|serial[1].Tanh: unknown layer \"Tanh\"",
      "{\"serial\": [{\"Dense\": {\"out_dim\": \"wide\"}}]}|serial[0].Dense: argument \"out_dim\" must be a positive integer, got \"wide\"",
      "{\"serial\": [{\"Dense\": {\"out_dim\": 2.5}}]}|serial[0].Dense: argument \"out_dim\" must be a positive integer, got 2.5",
      "{\"serial\": [{\"Dense\": {\"out_dim\": 1e15}}]}|serial[0].Dense: argument \"out_dim\" must be a positive integer no larger than 2147483647 (2^31 - 1), got 1.0E15",
      "{\"serial\": [{\"Dense\": {\"out_dim\": 3000000000}}]}|serial[0].Dense: argument \"out_dim\" must be a positive integer no larger than 2147483647 (2^31 - 1), got 3000000000",
      "{\"serial\": [{\"Dense\": {\"W_std\": true}}]}|serial[0].Dense: argument \"W_std\" must be a number",
      "{\"serial\": [{\"Dense\": {\"parameterization\": \"NTK2\"}}]}|serial[0].Dense: argument \"parameterization\" must be one of",
      "{\"serial\": [{\"Dense\": {}, \"Relu\": {}}]}|serial[0]: a layer must be an object with exactly one key",
      "{\"serial\": {}}|serial: serial takes a non-empty list of layers",
      "{\"serial\": [{\"Sign\": {\"x\": 1}}]}|serial[0].Sign: unknown argument \"x\" (this layer takes no arguments)",
      "{\"serial\": [{\"Relu\": {\"x\": 1}}]}|serial[0].Relu: unknown argument \"x\" (expected one of: do_stabilize)",
      "{\"serial\": [{\"ABRelu\": {\"a\": 1}}]}|serial[0].ABRelu: missing required argument \"b\"",
      "{\"serial\": [{\"Dropout\": {}}]}|serial[0].Dropout: missing required argument \"rate\"",
      "{\"ConvTranspose\": {\"filter_shape\": [3], \"padding\": \"REFLECT\"}}|ConvTranspose: argument \"padding\" must be one of \"VALID\", \"SAME\", \"CIRCULAR\", got \"REFLECT\"",
      "{\"serial\": [{\"Conv\": {}}]}|serial[0].Conv: missing required argument \"filter_shape\"",
      "{\"Conv\": {\"filter_shape\": [3, 0]}}|Conv: argument \"filter_shape\" must be a list of positive integers",
      "{\"Conv\": {\"filter_shape\": [3, 3], \"strides\": [1]}}|Conv: strides [1] must have one entry per axis",
      "{\"AvgPool\": {\"window_shape\": [2], \"normalize_edges\": \"yes\"}}|AvgPool: argument \"normalize_edges\" must be true or false",
      "{\"serial\": [{\"Dense\": {}}, {\"Relu\": {}},|malformed JSON at line 1",
      "[]|a layer must be an object with exactly one key",
      "{\"serial\": [{\"Dense\": {}}]}{\"Relu\": {}}|unexpected text after the model at line 1, column 28: {\"Relu\": {}}",
      "{\"serial\": [{\"Dense\": {}}]}  garbage|unexpected text after the model at line 1, column 30: garbage",
      "{\"serial\": [{\"Dense\": {}}]}}|unexpected text after the model at line 1",
      "{\"Dense\": {\"out_dim\": 3}, \"Dense\": {\"out_dim\": 4}}|key \"Dense\" appears twice in one object at line 1",
      "{\"serial\": [{\"Relu\": {}}, {\"Dense\": {\"W_std\": 1, \"W_std\": 2}}]}|serial[1].Dense: key \"W_std\" appears twice in one object at line 1",
      "{\"serial\": [{\"Relu\": {}}], \"serial\": [{\"Erf\": {}}]}|key \"serial\" appears twice"})
  void badModelsAreRejectedWithThePathOfTheLayer(String json, String expected) {
    ModelException e = assertThrows(ModelException.class, () -> ModelSpec.parse(json));
    assertTrue(e.getMessage().startsWith(expected) || e.getMessage().contains(expected),
        "message was: " + e.getMessage());
  }

  @Test
  void aModelFileWithTextAfterTheModelIsRefusedNamingFileLineAndColumn(@TempDir Path dir) throws Exception {
    Path file = dir.resolve("model.json");
    Files.writeString(file, "{\"serial\": [\n  {\"Dense\": {}},\n  {\"Relu\": {}}\n]}\n{\"Erf\": {}}\n");
    ModelException e = assertThrows(ModelException.class, () -> ModelSpec.read(file));
    assertEquals(file + ": unexpected text after the model at line 5, column 1: {\"Erf\": {}} (a model "
        + "file holds exactly one layer object)", e.getMessage());
  }

  @Test
  void aRepeatedArgumentIsRefusedNamingTheLayerAndTheLine(@TempDir Path dir) throws Exception {
    Path file = dir.resolve("model.json");
    Files.writeString(file, "{\"serial\": [\n  {\"Relu\": {}},\n  {\"Dense\": {\"W_std\": 1.5,\n"
        + "    \"W_std\": 2}}\n]}\n");
    ModelException e = assertThrows(ModelException.class, () -> ModelSpec.read(file));
    assertTrue(e.getMessage().startsWith(file + ": serial[1].Dense: key \"W_std\" appears twice in one "
        + "object at line 4"), e.getMessage());
  }
}
