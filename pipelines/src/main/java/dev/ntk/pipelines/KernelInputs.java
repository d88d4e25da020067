package dev.ntk.pipelines;

import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.kernels.Layer;
import dev.ntk.kernels.Plan;
import java.nio.file.Path;
import java.util.Arrays;
import picocli.CommandLine.Option;

/** The model and the inputs of a kernel between two sets of rows. */
final class KernelInputs {
  @Option(names = "--model", required = true, paramLabel = "M.json", description = "The model file.")
  Path model;

  @Option(names = "--x1", required = true, paramLabel = "X1.npy", description = "Inputs, batch first.")
  Path x1;

  @Option(names = "--x2", paramLabel = "X2.npy", description = "Second inputs (default: x1).")
  Path x2;

  @Option(names = "--pattern1", paramLabel = "A1.npy", description = "Graph patterns of x1 for a model with "
      + "Aggregate: (N1, nodes..., nodes...), or (N1, n_edges, 2) edges with implementation SPARSE.")
  Path pattern1;

  @Option(names = "--pattern2", paramLabel = "A2.npy", description = "Graph patterns of x2 (with --x2).")
  Path pattern2;

  /** The inputs, read whole and checked against each other and {@code layer}. */
  Inputs read(Layer layer) {
    NpyArray a = InputChecks.inputs("--x1", x1);
    NpyArray b = x2 == null ? null : InputChecks.inputs("--x2", x2);
    InputChecks.fit(model, layer, "--x1", x1, a, "--x2", x2, b);
    return new Inputs(a, b);
  }

  /**
   * The graph patterns {@code plan} reads ({@link Plan#patternNodes}), read and checked against it
   * and the inputs {@code x}, or null for a model without {@code Aggregate} (then none may be given).
   * Errors name the option, the file, the shape expected and the layer that reads the patterns.
   */
  Patterns patterns(Plan plan, Inputs x) {
    if (plan.patternNodes() == null) {
      if (pattern1 != null || pattern2 != null) {
        throw new UsageException((pattern1 != null ? "--pattern1 " + pattern1 : "--pattern2 " + pattern2)
            + ": the model " + model + " has no Aggregate layer, which alone reads graph patterns");
      }
      return null;
    }
    if (x.x2() == null && pattern2 != null) {
      throw new UsageException("--pattern2 " + pattern2 + " is the pattern of --x2, which is not given");
    }
    NpyArray a1 = pattern(plan, "--pattern1", pattern1, "--x1", x.n1());
    NpyArray a2 = x.x2() == null ? null : pattern(plan, "--pattern2", pattern2, "--x2", x.n2());
    return new Patterns("--pattern1 " + pattern1, a1, "--pattern2 " + pattern2, a2);
  }

  /**
   * The graph pattern of {@code option} ({@code file}) for the {@code n} rows of the inputs {@code
   * inputs}, read and checked against {@code plan}: required, finite, of the shape the plan reads.
   */
  static NpyArray pattern(Plan plan, String option, Path file, String inputs, long n) {
    String expected = plan.sparsePatterns() ? "(" + n + ", n_edges, 2) of (tail, head) node indices (SPARSE)"
        : Npy.shapeString(withBatch(n, plan.patternShape())) + " (batch, nodes..., nodes...)";
    if (file == null) {
      throw new UsageException(plan.patternPath() + " reads a graph pattern per input: give " + option + " A.npy of "
          + "shape " + expected + ", one per row of " + inputs);
    }
    NpyArray a = InputChecks.inputs(option, file);
    boolean fits = plan.sparsePatterns() ? a.ndim() == 3 && a.shape()[0] == n && a.shape()[2] == 2
        : Arrays.equals(a.shape(), withBatch(n, plan.patternShape()));
    if (!fits) {
      throw new UsageException(option + " " + file + ": " + plan.patternPath() + " reads a graph pattern of shape "
          + expected + ", one per row of " + inputs + ", got " + a.shapeString());
    }
    return a;
  }

  private static long[] withBatch(long n, long[] perExample) {
    long[] s = new long[perExample.length + 1];
    s[0] = n;
    System.arraycopy(perExample, 0, s, 1, perExample.length);
    return s;
  }

  /** Refuses graph patterns, and graph models ({@code layer}), in a command ({@code what}) that does not read them. */
  void refusePatterns(String what, Layer layer) {
    InputChecks.refuseGraph(what, model, layer);
    if (pattern1 != null || pattern2 != null) {
      throw new UsageException(what + " does not read graph patterns (--pattern1, --pattern2): only `ntk kernel` "
          + "takes them, for a model with Aggregate");
    }
  }

  /**
   * The graph patterns of x1 and x2 ({@code a2} null for x1 with itself), as read, with the names
   * errors give them ({@code --pattern1 A1.npy}).
   */
  record Patterns(String name1, NpyArray a1, String name2, NpyArray a2) {
    /** The patterns of x1 with itself. */
    Patterns first() {
      return new Patterns(name1, a1, null, null);
    }

    /** The patterns of x2 with x1. */
    Patterns swapped() {
      return new Patterns(name2, a2, name1, a1);
    }

    /** A graph pattern as {@code KernelFn} takes it, in float64 (it is made dense and cast by the plan). */
    static ai.djl.ndarray.NDArray array(ai.djl.ndarray.NDManager m, NpyArray a) {
      return dev.ntk.kernels.Tensors.create(m, a.data(), new ai.djl.ndarray.types.Shape(a.shape()),
          ai.djl.ndarray.types.DataType.FLOAT64);
    }

    /** The plan inputs {@link Plan#PATTERN1}, {@link Plan#PATTERN2} in the dtype of {@code like}. */
    java.util.Map<String, Object> inputs(Plan plan, Object like) {
      int n1 = Math.toIntExact(a1.shape()[0]);
      int n2 = a2 == null ? n1 : Math.toIntExact(a2.shape()[0]);
      try {
        return plan.patternInputs(name1, a1.data(), a1.shape(), name2,
            a2 == null ? null : a2.data(), a2 == null ? null : a2.shape(), n1, n2, like);
      } catch (IllegalArgumentException e) {
        throw new UsageException(e.getMessage());
      }
    }
  }

  /** {@code x2} is {@code null} for x1 with itself. */
  record Inputs(NpyArray x1, NpyArray x2) {
    long n1() {
      return x1.shape()[0];
    }

    long n2() {
      return x2 == null ? n1() : x2.shape()[0];
    }
  }
}
