package dev.ntk.transforms;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.kernels.Tensors;
import dev.ntk.runners.Runners;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Random;
import org.apache.beam.sdk.Pipeline;
import org.apache.beam.sdk.PipelineResult;

/** Inputs, runners and error measures shared by the transform tests. */
final class Fixtures {
  /** A fully connected model with both nonlinearity families, a residual-free but deep enough stack. */
  static final String MODEL = """
      {"serial": [
        {"Dense": {"out_dim": 64, "W_std": 1.5, "b_std": 0.1}}, {"Relu": {}},
        {"Dense": {"out_dim": 64, "W_std": 1.3, "b_std": 0.2}}, {"Erf": {"a": 1.0, "b": 0.7, "c": 0.1}},
        {"Dense": {"out_dim": 1, "W_std": 1.2, "b_std": 0.05}}
      ]}""";

  /**
   * A fully connected model with neural-tangents' Gauss-Hermite quadrature ({@code
   * ElementwiseNumerical}), whose rule is not symmetric in its two inputs ({@code Plan#symmetric}
   * false): its kernel of x1 with itself is computed whole, not mirrored.
   */
  static final String ASYMMETRIC = """
      {"serial": [{"Dense": {"out_dim": 8, "W_std": 1.2, "b_std": 0.1}},
                  {"ElementwiseNumerical": {"fn": "tanh", "deg": 5}},
                  {"Dense": {"out_dim": 8, "W_std": 1.1}}, {"Relu": {}}, {"Dense": {"out_dim": 1}}]}""";

  private Fixtures() {}

  /**
   * Writes an {@code n x d} array of normal values whose scale grows with the row ({@code 1 + 0.3 i}):
   * rows of different variances, where a rule not symmetric in its inputs tells {@code (i, j)} from
   * {@code (j, i)}.
   */
  static Path scaledNpy(Path dir, String name, int n, int d, long seed) throws IOException {
    Random r = new Random(seed);
    double[] v = new double[n * d];
    for (int i = 0; i < v.length; i++) {
      v[i] = r.nextGaussian() * (1 + 0.3 * (i / d));
    }
    Path file = dir.resolve(name);
    Npy.write(file, new NpyArray(new long[] {n, d}, NpyDType.FLOAT64, v));
    return file;
  }

  /** Asserts that every entry of {@code got} is {@code want}'s to {@code tolerance} times {@code want}'s largest. */
  static void assertEntries(double[] want, double[] got, double tolerance, String what) {
    if (want.length != got.length) {
      throw new AssertionError(what + ": lengths differ: " + want.length + " and " + got.length);
    }
    double scale = 0;
    for (double v : want) {
      scale = Math.max(scale, Math.abs(v));
    }
    for (int i = 0; i < want.length; i++) {
      if (!(Math.abs(want[i] - got[i]) <= tolerance * scale)) {
        throw new AssertionError(what + "[" + i + "]: expected " + want[i] + " but was " + got[i]);
      }
    }
  }

  /** Writes an {@code n x d} array of standard normal values. */
  static Path randomNpy(Path dir, String name, int n, int d, long seed) throws IOException {
    Random r = new Random(seed);
    double[] v = new double[n * d];
    for (int i = 0; i < v.length; i++) {
      v[i] = r.nextGaussian();
    }
    Path file = dir.resolve(name);
    Npy.write(file, new NpyArray(new long[] {n, d}, NpyDType.FLOAT64, v));
    return file;
  }

  static NDArray load(NDManager m, Path file) throws IOException {
    NpyArray a = Npy.read(file);
    return Tensors.create(m, a.data(), new Shape(a.shape()),
        a.dtype() == NpyDType.FLOAT32 ? DataType.FLOAT32 : DataType.FLOAT64);
  }

  /** Runs {@code pipeline} to completion, failing on any error. */
  static PipelineResult run(Pipeline pipeline) {
    PipelineResult result = pipeline.run();
    result.waitUntilFinish();
    return result;
  }

  static Pipeline pipeline(Runners.Kind kind, int parallelism) {
    return Pipeline.create(Runners.options(kind, "[local]", parallelism));
  }

  /** {@code ||a - b||_F / ||b||_F}. */
  static double relativeError(double[] a, double[] b) {
    if (a.length != b.length) {
      throw new AssertionError("lengths differ: " + a.length + " and " + b.length);
    }
    double num = 0;
    double den = 0;
    for (int i = 0; i < a.length; i++) {
      num += (a[i] - b[i]) * (a[i] - b[i]);
      den += b[i] * b[i];
    }
    return Math.sqrt(num / den);
  }
}
