package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.util.EnumSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The model value: one parse per text and JVM, its JSON as its serialized form, and the per-JVM plan cache. */
class ModelTest {
  /** A model text no other test parses: {@code W_std} is unique to this test. */
  private static String model(double wStd) {
    return "{\"serial\": [{\"Dense\": {\"out_dim\": 8, \"W_std\": " + wStd + ", \"b_std\": 0.05}}, {\"Erf\": {}},"
        + " {\"Dense\": {\"out_dim\": 1}}]}";
  }

  @Test
  void jsonRoundTripKeepsTheHash() {
    Model m = Model.parse(model(1.3125));
    Model again = Model.parse(m.json());
    assertEquals(m.hash(), again.hash());
    assertEquals(m.json(), again.json());
    assertEquals(ModelSpec.hash(m.layer()), m.hash()); // the hash tile files have always carried
    assertEquals(m.hash(), Model.of(ModelSpec.parse(m.json())).hash());
    assertNotEquals(m.hash(), Model.parse(model(1.3126)).hash());
  }

  @Test
  void aTextIsParsedOncePerJvm() {
    String text = model(1.40625);
    long before = Model.parses();
    Model first = Model.parse(text);
    assertEquals(before + 1, Model.parses());
    Model second = Model.parse(text);
    Model canonical = Model.parse(first.json());
    assertEquals(before + 1, Model.parses(), "the same text, or its canonical JSON, is not parsed again");
    assertSame(first, second);
    assertSame(first, canonical);
  }

  @Test
  void serializedAsItsJsonAndNotParsedAgainWhenRead() throws IOException, ClassNotFoundException {
    Model m = Model.parse(model(1.453125));
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
      out.writeObject(m);
    }
    // the layer tree is not written: the form is the canonical JSON
    assertTrue(bytes.size() < m.json().length() + 200, "serialized size " + bytes.size());
    long before = Model.parses();
    Model read;
    try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
      read = (Model) in.readObject();
    }
    assertEquals(before, Model.parses());
    assertEquals(m, read);
    assertEquals(m.hash(), read.hash());
    assertSame(m.layer(), read.layer());
  }

  @Test
  void planCacheReturnsOnePlanPerKey() {
    Model m = Model.parse(model(1.5625));
    Shape shape = new Shape(3);
    Set<Get> both = EnumSet.allOf(Get.class);
    Plan plan = m.plan(shape, DataType.FLOAT64, both);
    assertSame(plan, m.plan(new Shape(3), DataType.FLOAT64, EnumSet.of(Get.NTK, Get.NNGP)));
    assertSame(plan, Model.parse(m.json()).plan(shape, DataType.FLOAT64, both), "keyed by the hash, not the object");
    assertNotSame(plan, Model.parse(model(1.578125)).plan(shape, DataType.FLOAT64, both), "another model");
    assertNotSame(plan, m.plan(new Shape(4), DataType.FLOAT64, both), "another example shape");
    assertNotSame(plan, m.plan(shape, DataType.FLOAT32, both), "another dtype");
    assertNotSame(plan, m.plan(shape, DataType.FLOAT64, EnumSet.of(Get.NNGP)), "other kernels");
    assertEquals(EnumSet.of(Get.NNGP), m.plan(shape, DataType.FLOAT64, EnumSet.of(Get.NNGP)).requirements().gets());
  }

  @Test
  void aBadModelNamesTheLayer() {
    ModelException e = assertThrows(ModelException.class,
        () -> Model.parse("{\"serial\": [{\"Dense\": {\"out_dim\": 0}}]}"));
    assertTrue(e.getMessage().contains("serial[0].Dense"), e.getMessage());
  }
  /** Widths are set per Dense, Conv and ConvTranspose layer in file order; the rest of the model is kept. */
  @Test
  void withWidthsSetsEachAffineLayerInFileOrder() {
    Model m = Model.parse("{\"serial\": [{\"Conv\": {\"out_chan\": 4, \"filter_shape\": [3, 3], \"W_std\": 1.7}},"
        + " {\"Relu\": {}}, {\"Flatten\": {}}, {\"Dense\": {\"out_dim\": 3}}]}");
    assertEquals(2, m.widthLayers());
    Shape image = new Shape(6, 6, 2);
    Model both = m.withWidths(5, 7);
    assertEquals(new Shape(7), both.layer().check(image).shape());
    assertTrue(both.json().contains("\"out_chan\":5") && both.json().contains("1.7"), both.json());
    assertEquals(new Shape(3), m.withWidths(5, -1).layer().check(image).shape());
    assertEquals(new Shape(3), m.withWidth(64, true).layer().check(image).shape());
    assertTrue(m.withWidth(64, true).json().contains("\"out_chan\":64"), m.withWidth(64, true).json());
    assertEquals(new Shape(64), m.withWidth(64, false).layer().check(image).shape());
    assertEquals("3 widths for a model with 2 Dense, Conv, ConvTranspose and ConvLocal layers (one width each, in file "
        + "order)",
        assertThrows(IllegalArgumentException.class, () -> m.withWidths(1, 2, 3)).getMessage());
    assertThrows(IllegalArgumentException.class, () -> m.withWidths(0, 2));
    Model sum = Model.parse("{\"serial\": [{\"FanOut\": {\"num\": 2}}, {\"parallel\": [{\"Dense\": {\"out_dim\": 4}},"
        + " {\"Dense\": {\"out_dim\": 4}}]}, {\"FanInSum\": {}}]}");
    Layer mismatched = sum.withWidths(4, 5).layer();
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> mismatched.check(new Shape(3)));
    assertTrue(e.getMessage().startsWith("serial[2].FanInSum: "), e.getMessage());
    Model local = Model.parse("{\"serial\": [{\"ConvLocal\": {\"filter_shape\": [2, 2]}}, {\"Flatten\": {}},"
        + " {\"Dense\": {}}]}");
    assertEquals(2, local.widthLayers());
    assertTrue(local.withWidth(16, true).json().contains("\"out_chan\":16"), local.withWidth(16, true).json());
  }
}
