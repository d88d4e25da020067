package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.LayerType.Argument;
import dev.ntk.kernels.engine.Expr;
import dev.ntk.kernels.engine.Layout;
import java.util.Arrays;
import java.util.List;

/**
 * Graph layers: {@link Aggregate}, neural-tangents' {@code Aggregate} (graph neural networks, Du et
 * al. 2019, "Graph Neural Tangent Kernel"), with its finite network, derivatives and rule side by
 * side.
 *
 * <p>Each input comes with a pattern: a weighted adjacency {@code A (N, nodes..., nodes...)} over the
 * spatial axes of the activation, {@code A[n, i, j]} the weight of the edge from node {@code i} to node
 * {@code j} of example {@code n}. Every {@code Aggregate} of a model reads the same pattern (neural-tangents'
 * {@code pattern} keyword, passed to every layer). Kernels take the patterns with the inputs ({@link
 * KernelFn#apply(NDArray, NDArray, NDArray, NDArray, java.util.Set)}); a finite network reads the pattern
 * of the batch it runs on from {@link #withPattern}:
 *
 * <pre>{@code
 * Layer gnn = Stax.serial(Stax.dense(256), Stax.relu(), Stax.aggregate(), Stax.globalAvgPool(), Stax.dense(1));
 * Kernel k = gnn.kernelFn().apply(x1, x2, a1, a2, EnumSet.allOf(Get.class));   // x (N, nodes, C), a (N, nodes, nodes)
 * try (Graph.PatternScope s = Graph.withPattern(a1)) {
 *   NDArray y = gnn.apply(params, List.of(x1)).get(0);
 * }
 * }</pre>
 */
public final class Graph {
  private Graph() {}

  public static final LayerType AGGREGATE = LayerType.of("Aggregate",
      "sum of each node's predecessors in the graph pattern given with the inputs (graph neural networks)",
      Aggregate::new, Argument.optionalIntegers("aggregate_axis"), Argument.integer("batch_axis", 0),
      Argument.integer("channel_axis", -1), Argument.choice("implementation", "DENSE", "SPARSE"));

  /** Aggregation over every spatial axis (neural-tangents' default), with dense patterns. */
  public static Layer aggregate() {
    return AGGREGATE.create();
  }

  /**
   * Aggregation over {@code aggregateAxis} (null: every spatial axis; only all of them are supported);
   * {@code implementation} is neural-tangents' choice of how patterns are given: {@code DENSE}
   * adjacencies or {@code SPARSE} edge lists {@code (N, n_edges, 2)}, which are made dense ({@link
   * #densePattern}) for the same kernel and the same finite network.
   */
  public static Layer aggregate(int[] aggregateAxis, String implementation) {
    return AGGREGATE.create(aggregateAxis, 0, -1, implementation);
  }

  /** Whether {@code layer} or a layer inside it is an {@code Aggregate}: a model whose inputs come with patterns. */
  public static boolean readsPatterns(Layer layer) {
    return layer instanceof Aggregate || layer.children().stream().anyMatch(Graph::readsPatterns);
  }

  /** The pattern a finite network's {@code Aggregate} layers read on this thread, or null. */
  private static final ThreadLocal<NDArray> PATTERN = new ThreadLocal<>();

  /** While open, a finite network's {@code Aggregate} layers on this thread read {@code pattern}. */
  public static final class PatternScope implements AutoCloseable {
    private final NDArray previous;

    private PatternScope(NDArray previous) {
      this.previous = previous;
    }

    @Override
    public void close() {
      if (previous == null) {
        PATTERN.remove();
      } else {
        PATTERN.set(previous);
      }
    }
  }

  /**
   * Gives {@code pattern} {@code (N, nodes..., nodes...)} to the {@code Aggregate} layers of finite
   * networks run on this thread until the scope closes (neural-tangents' {@code apply_fn(params, x,
   * pattern=A)}); scopes nest.
   */
  public static PatternScope withPattern(NDArray pattern) {
    PatternScope scope = new PatternScope(PATTERN.get());
    PATTERN.set(pattern);
    return scope;
  }

  /**
   * The dense pattern {@code (N, nodes, nodes)} (row-major) of neural-tangents' sparse one: {@code
   * edges (N, E, 2)} of (tail, head) node indices, each edge adding 1 (repeated edges add up), edges
   * with a negative index left out (padding). {@code name} names the array in errors.
   */
  public static double[] densePattern(String name, long[] edges, long[] shape, int nodes) {
    if (shape.length != 3 || shape[2] != 2) {
      throw new IllegalArgumentException(name + ": a SPARSE pattern has shape (batch, n_edges, 2) of (tail, head) "
          + "node indices, got " + Arrays.toString(shape));
    }
    int n = Math.toIntExact(shape[0]);
    int e = Math.toIntExact(shape[1]);
    double[] dense = new double[Math.multiplyExact(n, nodes * nodes)];
    for (int b = 0; b < n; b++) {
      for (int k = 0; k < e; k++) {
        long tail = edges[(b * e + k) * 2];
        long head = edges[(b * e + k) * 2 + 1];
        if (tail < 0 || head < 0) {
          continue;
        }
        if (tail >= nodes || head >= nodes) {
          throw new IllegalArgumentException(name + ": edge " + k + " of example " + b + " is (" + tail + ", "
              + head + "), outside the " + nodes + " nodes");
        }
        dense[b * nodes * nodes + (int) tail * nodes + (int) head] += 1;
      }
    }
    return dense;
  }

  /** Edge indices given as numbers (a {@code .npy} of floats, an {@code NDArray}), checked to be integers. */
  static long[] edges(String name, double[] values) {
    long[] e = new long[values.length];
    for (int i = 0; i < e.length; i++) {
      e[i] = (long) values[i];
      if (e[i] != values[i]) {
        throw new IllegalArgumentException(name + ": a SPARSE pattern holds node indices, got " + values[i]
            + " at flat index " + i);
      }
    }
    return e;
  }

  /**
   * {@code Aggregate}: each node's value becomes the weighted sum of its predecessors', {@code out[n,
   * j, c] = sum_i A[n, i, j] x[n, i, c]} over the spatial axes flattened (neural-tangents' {@code
   * dot_general} of the inputs with the pattern), without parameters. Linear, so Gaussian inputs stay
   * Gaussian.
   *
   * <p>With {@code implementation} {@code SPARSE} the pattern is neural-tangents' edge list {@code (N,
   * n_edges, 2)} of (tail, head) node indices (flattened over the node axes), made dense by {@link
   * #densePattern}: the same layer on the same graph.
   *
   * <p>Rule: with {@code M = A^T} per input, {@code nngp' = M1 nngp M2^T}, the NTK alike, each
   * variance with its own input's matrix on both sides ({@link Expr#attend}, as attention mixes
   * positions by its data-dependent matrices): the covariance of every two nodes is needed, so
   * the layer takes and gives pixel-pair blocks. Batch-first and channel-last activations only
   * ({@code batch_axis} 0, {@code channel_axis} -1), aggregated over all spatial axes.
   */
  public static final class Aggregate extends SingleInputLayer {
    private final int[] aggregateAxis;
    private final int batchAxis;
    private final int channelAxis;
    private final boolean sparse;

    Aggregate(LayerType.Arguments args) {
      super(args);
      this.aggregateAxis = args.integers("aggregate_axis");
      this.batchAxis = args.integer("batch_axis");
      this.channelAxis = args.integer("channel_axis");
      this.sparse = args.choice("implementation").equals("SPARSE");
    }

    @Override
    protected Spec outputSpec(Spec input, String path) {
      if (!input.hasSpatialAxes()) {
        throw new ModelException(path, name() + " takes graphs (N, nodes..., C), but its input has per-example "
            + "shape " + input.shape() + " (no node axis)");
      }
      int rank = input.shape().dimension() + 1;
      if (Math.floorMod(batchAxis, rank) != 0 || Math.floorMod(channelAxis, rank) != rank - 1
          || batchAxis < -rank || batchAxis >= rank || channelAxis < -rank || channelAxis >= rank) {
        throw new ModelException(path, "activations here are batch-first and channel-last (N, nodes..., C): "
            + "batch_axis must be 0 and channel_axis -1 (or " + (rank - 1) + "), got batch_axis=" + batchAxis
            + ", channel_axis=" + channelAxis);
      }
      if (aggregateAxis != null) {
        int[] all = new int[rank - 2];
        for (int k = 0; k < all.length; k++) {
          all[k] = k + 1;
        }
        int[] given = aggregateAxis.clone();
        Arrays.sort(given);
        if (!Arrays.equals(given, all)) {
          throw new ModelException(path, "argument \"aggregate_axis\" must be every spatial axis " + Arrays.toString(
              all) + " (or left out), got " + Arrays.toString(aggregateAxis) + ": aggregation over some of them "
              + "is not supported");
        }
      }
      return input;
    }

    /** The aggregation mixes every two nodes: the rule needs the covariance of every two. */
    @Override
    public List<Boolean> inputsFull(List<Boolean> outputsFull, List<Spec> inputs) {
      return List.of(true);
    }

    /** The pattern of the batch {@code x}, checked against it, as {@code (N, P, P)} in {@code x}'s dtype. */
    private NDArray pattern(NDArray x) {
      NDArray a = PATTERN.get();
      Shape s = x.getShape();
      long n = s.get(0);
      long p = s.size() / (n * s.get(s.dimension() - 1));
      Shape want = new Shape(n).addAll(s.slice(1, s.dimension() - 1)).addAll(s.slice(1, s.dimension() - 1));
      if (a == null) {
        throw new ModelException(name(), "a finite graph network reads its pattern " + want + " from "
            + "Graph.withPattern(pattern) around the call, and none is open");
      }
      if (sparse) {
        if (a.getShape().get(0) != n) {
          throw new ModelException(name(), "the SPARSE pattern of Graph.withPattern must have " + n
              + " examples (batch, n_edges, 2) for inputs " + s + ", got " + a.getShape());
        }
        double[] dense = densePattern("the pattern of Graph.withPattern",
            edges("the pattern of Graph.withPattern", Tensors.toDoubles(a)),
            a.getShape().getShape(), Math.toIntExact(p));
        return Tensors.create(x.getManager(), dense, new Shape(n, p, p), x.getDataType());
      }
      if (!a.getShape().equals(want)) {
        throw new ModelException(name(), "the pattern of Graph.withPattern must have shape " + want
            + " (batch, nodes..., nodes...) for inputs " + s + ", got " + a.getShape());
      }
      return a.toType(x.getDataType(), false).reshape(n, p, p);
    }

    /** {@code A^T x} per example ({@code transpose} false) or {@code A x} ({@code true}), shaped as {@code x}. */
    private NDArray aggregate(NDArray x, boolean transpose) {
      Shape s = x.getShape();
      long n = s.get(0);
      long c = s.get(s.dimension() - 1);
      NDArray a = pattern(x);
      NDArray m = transpose ? a : a.transpose(0, 2, 1);
      return m.matMul(x.reshape(n, s.size() / (n * c), c)).reshape(s);
    }

    @Override
    public NDArray apply(Params params, NDArray x) {
      return aggregate(x, false);
    }

    @Override
    protected NDArray tangent(Params params, Params paramTangents, NDArray x, NDArray dx) {
      return aggregate(dx, false);
    }

    @Override
    protected NDArray curvature(Params params, Params paramTangents, NDArray x, NDArray dx) {
      return null;
    }

    @Override
    protected Cotangents backward(Params params, NDArray x, NDArray dy, AffineTape tape, boolean inputCotangent) {
      return inputOnly(() -> aggregate(dy, true), inputCotangent);
    }

    @Override
    protected KernelExpr rule(KernelExpr k, RuleContext context) {
      Layout nodes = k.nngp().layout();
      Expr[] m = context.patterns(nodes, sparse);
      Expr ntk = k.ntk().isConstant() && k.ntk().value() == 0 ? k.ntk()
          : full(k.ntk(), nodes).attend(m[0], m[1]);
      return new KernelExpr(k.nngp().attend(m[0], m[1]), ntk, k.var1().attend(m[0], m[0]),
          k.var2().attend(m[1], m[1]));
    }

    /** {@code e} as a pixel-pair block of {@code nodes}: a constant spread over every entry. */
    private static Expr full(Expr e, Layout nodes) {
      if (!e.isConstant()) {
        return e;
      }
      double[] v = new double[nodes.size()];
      Arrays.fill(v, e.value());
      return Expr.block(nodes, v);
    }
  }
}
