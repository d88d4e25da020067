package dev.ntk.kernels.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.Layer;
import dev.ntk.kernels.Params;
import dev.ntk.kernels.Stax;
import dev.ntk.kernels.Tensors;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@link Taylor#linearize} in float64: equal to the network at {@code params0}, within {@code
 * O(|dp|^2)} of it near {@code params0} (the error falls 4-fold when the step halves), exactly
 * linear (central differences along any direction are the JVP), and its gradient against
 * central differences and against the network's own at {@code params0}.
 */
class TaylorTest {
  private static NDManager manager;

  @BeforeAll
  static void setUp() {
    manager = Tensors.newManager();
  }

  @AfterAll
  static void tearDown() {
    manager.close();
  }

  /** A small smooth network with branches. */
  static Layer model() {
    return Stax.serial(Stax.dense(6, 1.5, 0.1), Stax.erf(), Stax.fanOut(2),
        Stax.parallel(Stax.serial(Stax.dense(5, 1.2, 0.2), Stax.gelu()), Stax.dense(5, 1.0, null)),
        Stax.fanInSum(), Stax.dense(4, 1.1, 0.1), Stax.sin(), Stax.dense(2, 1.3, 0.05));
  }

  @Test
  void linearizationIsTheNetworkToFirstOrder() {
    try (NDManager scope = manager.newSubManager()) {
      Layer model = model();
      SplittableRandom rng = new SplittableRandom(3);
      Params p0 = model.init(11, new Shape(3), scope, DataType.FLOAT64);
      NDArray x = Tensors.standardNormal(rng, scope, new Shape(4, 3), DataType.FLOAT64);
      Network f = Network.of(model);
      Network lin = Taylor.linearize(model, p0);
      assertArrayEquals(Tensors.toDoubles(f.apply(p0, x)), Tensors.toDoubles(lin.apply(p0, x)), 1e-14);

      Params v = direction(p0, rng, scope);
      double[] errors = new double[3];
      for (int i = 0; i < errors.length; i++) {
        double h = 0.1 / (1 << i);
        Params p = along(p0, v, h);
        double[] a = Tensors.toDoubles(f.apply(p, x));
        double[] b = Tensors.toDoubles(lin.apply(p, x));
        errors[i] = maxDiff(a, b);
      }
      for (int i = 1; i < errors.length; i++) {
        double ratio = errors[i - 1] / errors[i];
        assertTrue(ratio > 3.5 && ratio < 4.5, "error " + errors[i - 1] + " -> " + errors[i]
            + ": not second order in the step (ratio " + ratio + ")");
      }

      // Linear in the parameters: a central difference of any size is the JVP, at any point.
      Params p = along(p0, v, 0.3);
      double[] jvp = Tensors.toDoubles(model.jvp(p0, v, List.of(x), List.of(x.zerosLike())).tangent());
      double[] plus = Tensors.toDoubles(lin.apply(along(p, v, 0.5), x));
      double[] minus = Tensors.toDoubles(lin.apply(along(p, v, -0.5), x));
      double[] fd = new double[plus.length];
      for (int i = 0; i < fd.length; i++) {
        fd[i] = plus[i] - minus[i];
      }
      assertArrayEquals(jvp, fd, 1e-12);
    }
  }

  @Test
  void linearizationGradientIsTheNetworkGradientAtParams0() {
    try (NDManager scope = manager.newSubManager()) {
      Layer model = model();
      SplittableRandom rng = new SplittableRandom(5);
      Params p0 = model.init(12, new Shape(3), scope, DataType.FLOAT64);
      NDArray x = Tensors.standardNormal(rng, scope, new Shape(3, 3), DataType.FLOAT64);
      Network lin = Taylor.linearize(model, p0);
      Params p = along(p0, direction(p0, rng, scope), 0.2);
      NDArray u = Tensors.standardNormal(rng, scope, new Shape(3, 2), DataType.FLOAT64);
      var vjp = lin.vjp(p, x);
      assertArrayEquals(Tensors.toDoubles(lin.apply(p, x)), Tensors.toDoubles(vjp.output()), 1e-14);
      List<NDArray> grad = vjp.pull(List.of(u)).params().leaves();
      List<NDArray> atP0 = Network.of(model).vjp(p0, x).pull(List.of(u)).params().leaves();
      double[] uu = Tensors.toDoubles(u);
      for (int j = 0; j < grad.size(); j++) {
        assertArrayEquals(Tensors.toDoubles(atP0.get(j)), Tensors.toDoubles(grad.get(j)), 1e-14);
        // central differences of <u, f_lin> coordinate by coordinate, for this array
        double[] g = Tensors.toDoubles(grad.get(j));
        double[] values = Tensors.toDoubles(p.leaves().get(j));
        for (int c = 0; c < values.length; c++) {
          double step = 1e-3;
          double up = dot(uu, Tensors.toDoubles(lin.apply(replace(p, j, values, c, step, scope), x)));
          double down = dot(uu, Tensors.toDoubles(lin.apply(replace(p, j, values, c, -step, scope), x)));
          assertEquals((up - down) / (2 * step), g[c], 1e-9, "array " + j + " entry " + c);
        }
      }
    }
  }

  /**
   * Degree 1 is the linearization; degree 2 is within {@code O(|dp|^3)} of the network near
   * {@code params0} (the error falls 8-fold when the step halves).
   */
  @Test
  void taylorExpansionOfDegreeTwoIsTheNetworkToSecondOrder() {
    try (NDManager scope = manager.newSubManager()) {
      Layer model = model();
      SplittableRandom rng = new SplittableRandom(8);
      Params p0 = model.init(13, new Shape(3), scope, DataType.FLOAT64);
      NDArray x = Tensors.standardNormal(rng, scope, new Shape(4, 3), DataType.FLOAT64);
      Params v = direction(p0, rng, scope);
      Params p = along(p0, v, 0.05);
      assertArrayEquals(Tensors.toDoubles(Taylor.linearize(model, p0).apply(p, x)),
          Tensors.toDoubles(Taylor.taylorExpand(model, p0, 1).apply(p, x)), 1e-15);
      Taylor.Expansion second = Taylor.taylorExpand(model, p0, 2);
      double[] errors = new double[3];
      double[] linearErrors = new double[3];
      for (int i = 0; i < errors.length; i++) {
        Params q = along(p0, v, 0.02 / (1 << i));
        double[] f = Tensors.toDoubles(Network.of(model).apply(q, x));
        errors[i] = maxDiff(f, Tensors.toDoubles(second.apply(q, x)));
        linearErrors[i] = maxDiff(f, Tensors.toDoubles(Taylor.linearize(model, p0).apply(q, x)));
        assertTrue(errors[i] < 0.2 * linearErrors[i], "degree 2 no better than 1 at step " + i + ": "
            + errors[i] + " against " + linearErrors[i]);
      }
      for (int i = 1; i < errors.length; i++) {
        double ratio = errors[i - 1] / errors[i];
        assertTrue(ratio > 7 && ratio < 9, "error " + errors[i - 1] + " -> " + errors[i]
            + ": not third order in the step (ratio " + ratio + ")");
      }
    }
  }

  static Params direction(Params like, SplittableRandom rng, NDManager m) {
    List<NDArray> out = new ArrayList<>();
    for (NDArray a : like.leaves()) {
      out.add(Tensors.standardNormal(rng, m, a.getShape(), DataType.FLOAT64));
    }
    return like.withLeaves(out);
  }

  static Params along(Params p, Params v, double h) {
    List<NDArray> a = p.leaves();
    List<NDArray> b = v.leaves();
    List<NDArray> out = new ArrayList<>();
    for (int i = 0; i < a.size(); i++) {
      out.add(a.get(i).add(Tensors.mul(b.get(i), h)));
    }
    return p.withLeaves(out);
  }

  private static Params replace(Params p, int j, double[] values, int c, double step, NDManager m) {
    double[] v = values.clone();
    v[c] += step;
    List<NDArray> leaves = new ArrayList<>(p.leaves());
    leaves.set(j, Tensors.create(m, v, leaves.get(j).getShape(), DataType.FLOAT64));
    return p.withLeaves(leaves);
  }

  static double maxDiff(double[] a, double[] b) {
    double d = 0;
    for (int i = 0; i < a.length; i++) {
      d = Math.max(d, Math.abs(a[i] - b[i]));
    }
    return d;
  }

  static double dot(double[] a, double[] b) {
    double s = 0;
    for (int i = 0; i < a.length; i++) {
      s += a[i] * b[i];
    }
    return s;
  }
}
