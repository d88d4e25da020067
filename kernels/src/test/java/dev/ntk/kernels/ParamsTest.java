package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Parameters by name: the layer paths of the model's errors, and arrays replaced by name. */
class ParamsTest {
  private static final Layer RESIDUAL = TestModels.all().get("residual");

  @Test
  void namesAreLayerPathsInDrawOrder() {
    try (NDManager m = Tensors.newManager()) {
      Params p = RESIDUAL.init(1, new Shape(3), m, DataType.FLOAT64);
      Map<String, NDArray> named = Params.named(RESIDUAL, p);
      assertEquals(List.of("serial[0].Dense/W", "serial[0].Dense/b", "serial[2].parallel[1].serial[1].Dense/W",
          "serial[2].parallel[1].serial[1].Dense/b", "serial[5].Dense/W"), List.copyOf(named.keySet()));
      assertEquals(new Shape(3, 16), named.get("serial[0].Dense/W").getShape());
      assertEquals(new Shape(16), named.get("serial[0].Dense/b").getShape());
      assertEquals(new Shape(16, 1), named.get("serial[5].Dense/W").getShape());
      assertSame(p.child(0).array(0), named.get("serial[0].Dense/W"));
      // the path of a layer in an error is the prefix of its arrays' names
      Layer conv = Stax.serial(Stax.dense(4), Stax.conv(2, new int[] {5}, null, "VALID", 1.0, null));
      assertTrue(Params.named(conv, conv.init(1, new Shape(6, 2), m, DataType.FLOAT64))
          .containsKey("serial[1].Conv/W"));
      ModelException e = assertThrows(ModelException.class, () -> conv.check(new Shape(3, 2)));
      assertTrue(e.getMessage().startsWith("serial[1].Conv:"), e.getMessage());
    }
  }

  @Test
  void withArraysReplacesByNameAndKeepsTheTree() {
    try (NDManager m = Tensors.newManager()) {
      Params p = RESIDUAL.init(1, new Shape(3), m, DataType.FLOAT64);
      Params q = RESIDUAL.init(2, new Shape(3), m, DataType.FLOAT64);
      Params r = p.withArrays(RESIDUAL, Params.named(RESIDUAL, q));
      NDArray x = Tensors.standardNormal(new java.util.SplittableRandom(4), m, new Shape(5, 3), DataType.FLOAT64);
      assertArrayEquals(Tensors.toDoubles(RESIDUAL.apply(q, x)), Tensors.toDoubles(RESIDUAL.apply(r, x)), 0.0);
      Map<String, NDArray> missing = new HashMap<>(Params.named(RESIDUAL, q));
      missing.remove("serial[5].Dense/W");
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> p.withArrays(RESIDUAL, missing));
      assertTrue(e.getMessage().contains("serial[5].Dense/W"), e.getMessage());
    }
  }

  @Test
  void paramsOfAnotherModelAreRejected() {
    try (NDManager m = Tensors.newManager()) {
      Layer other = Stax.serial(Stax.dense(4, 1.0, null), Stax.relu());
      Params p = other.init(1, new Shape(3), m, DataType.FLOAT64);
      assertThrows(IllegalArgumentException.class, () -> Params.named(RESIDUAL, p));
    }
  }
}
