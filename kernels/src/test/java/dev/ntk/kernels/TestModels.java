package dev.ntk.kernels;

import java.util.LinkedHashMap;
import java.util.Map;

/** Every fully connected model the kernel tests use, by name: each rule and combinator appears. */
final class TestModels {
  private TestModels() {}

  static Map<String, Layer> all() {
    Map<String, Layer> m = new LinkedHashMap<>();
    m.put("relu depth 5", Stax.serial(Stax.dense(64, 1.4, 0.1), Stax.relu(), Stax.dense(64, 1.4, 0.1),
        Stax.relu(), Stax.dense(64, 1.4, 0.1), Stax.relu(), Stax.dense(64, 1.4, 0.1), Stax.relu(),
        Stax.dense(1, 1.4, 0.1)));
    m.put("erf (the paper's first network)", Stax.serial(Stax.dense(64, 1.5, 0.05), Stax.erf(),
        Stax.dense(64, 1.5, 0.05), Stax.erf(), Stax.dense(1, 1.5, 0.05)));
    m.put("leaky, abs, abrelu, scaled erf", Stax.serial(Stax.dense(32, 1.1, 0.2), Stax.leakyRelu(0.1),
        Stax.dense(32, 1.2, null), Stax.abs(), Stax.dense(32, 0.9, 0.3), Stax.abRelu(-0.3, 1.7),
        Stax.dense(32, 1.0, 0.1), Stax.erf(1.3, 0.7, 0.2), Stax.dense(2)));
    m.put("stabilized relu family, sigmoid_like, gabor, exp-normalized", Stax.serial(Stax.dense(16, 1.3, 0.1),
        Stax.relu(true), Stax.dense(16, 1.1, 0.2), Stax.abs(true), Stax.dense(16, 1.0, 0.1),
        Stax.leakyRelu(0.2, true), Stax.dense(16, 1.0, null), Stax.abRelu(-0.4, 1.2, true), Stax.dense(16, 1.2, 0.1),
        Stax.sigmoidLike(), Stax.dense(16, 1.4, 0.1), Stax.gabor(), Stax.dense(16, 1.5, 0.1),
        Stax.expNormalized(0.8, -0.5, true), Stax.dense(2)));
    m.put("standard parameterization", Stax.serial(
        Stax.dense(16, 1.3, 0.2, Linear.Parameterization.STANDARD), Stax.relu(),
        Stax.dense(8, 1.1, null, Linear.Parameterization.STANDARD)));
    m.put("residual", Stax.serial(Stax.dense(16, 1.0, 0.1), Stax.fanOut(2),
        Stax.parallel(Stax.identity(), Stax.serial(Stax.relu(), Stax.dense(16, 1.2, 0.0))),
        Stax.fanInSum(), Stax.relu(), Stax.dense(1)));
    m.put("product and concatenation", Stax.serial(Stax.fanOut(3), Stax.parallel(
        Stax.serial(Stax.dense(8, 1.4, 0.1), Stax.relu(), Stax.dense(6, 1.1, 0.2)),
        Stax.serial(Stax.dense(8, 0.9, 0.3), Stax.erf(), Stax.dense(6, 1.3, null)),
        Stax.serial(Stax.dense(4), Stax.abs())), Stax.fanInConcat(), Stax.dense(5), Stax.fanOut(2),
        Stax.fanInProd(), Stax.flatten(), Stax.dense(3)));
    m.put("layer norm and dropout", Stax.serial(Stax.dense(16, 1.4, 0.2), Stax.layerNorm(), Stax.relu(),
        Stax.dropout(0.7), Stax.dense(16, 1.2, 0.1), Stax.layerNorm(new int[] {-1}, 0.1), Stax.erf(),
        Stax.dropout(0.9, "test"), Stax.dense(2, 1.0, 0.1)));
    m.put("repeat", Stax.serial(Stax.dense(16, 1.1, 0.1), Stax.repeat(Stax.serial(Stax.relu(),
        Stax.dense(16, 1.3, 0.1)), 3), Stax.erf(), Stax.dense(2)));
    return m;
  }
}
