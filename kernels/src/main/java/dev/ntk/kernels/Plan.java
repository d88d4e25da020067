package dev.ntk.kernels;

import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.engine.CpuBackend;
import dev.ntk.kernels.engine.Expr;
import dev.ntk.kernels.engine.Expr.Domain;
import dev.ntk.kernels.engine.Gram;
import dev.ntk.kernels.engine.NativeBuffer;
import dev.ntk.kernels.engine.Layout;
import dev.ntk.kernels.engine.Schedule;
import java.nio.Buffer;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A model compiled for one per-example input shape and a choice of kernels: the requirements pass
 * has run (shapes, Gaussianity, which kernels are needed, which covariances are kept), every rule
 * has been turned into entry-wise expressions, and their {@link Schedule} is ready for either
 * backend. Built once per worker and run for every tile.
 *
 * <pre>{@code
 * Plan plan = Plan.compile(model, new Shape(784), EnumSet.of(Get.NNGP));   // no NTK step at all
 * Map<String, double[]> k = plan.run(CpuBackend.float64(), x1, x2, n1, n2, 1);
 * }</pre>
 */
public final class Plan {
  /** Names of a plan's inputs and outputs. */
  public static final String NNGP = "nngp";
  public static final String NTK = "ntk";
  public static final String VAR1 = "var1";
  public static final String VAR2 = "var2";
  /**
   * The prefix of the per-input outputs that hold, for a model whose rules give the kernel of an
   * example with itself apart ({@link RuleContext#sameExample()}, {@code Dropout}), each input's
   * kernel with itself: {@code same:nngp}, {@code same:ntk}. Runs of x1 with itself write them on
   * the diagonal of the kernels ({@link #sameExampleOnDiagonal}).
   */
  public static final String SAME = "same:";
  /**
   * The per-input plan inputs of a graph network ({@code Aggregate}): each row input's and each
   * column input's aggregation matrix {@code M = A^T} of its pattern {@code A}, {@code nodes^2}
   * numbers per input, row-major ({@link #aggregationMatrices} makes them from the user's patterns).
   */
  public static final String PATTERN1 = "pattern1";
  public static final String PATTERN2 = "pattern2";
  /**
   * The per-position masks of the inputs of a plan with a mask constant ({@link Masks}): {@code
   * P} numbers per x1 (x2) input, 1 kept and 0 masked.
   */
  public static final String KEPT1 = "kept1";
  public static final String KEPT2 = "kept2";

  /**
   * What the requirements pass decided: the input and output specs, the kernels computed, and
   * whether covariances are kept only per input ({@code diagonalBatch}) and only per pixel
   * ({@code diagonalSpatial}), and what the outputs keep of the last layer's spatial axes ({@code
   * spatial}).
   */
  public record Requirements(Spec input, Spec output, Set<Get> gets, boolean diagonalBatch,
      boolean diagonalSpatial, Spatial spatial) {}

  private final Requirements requirements;
  private final Schedule schedule;
  private final boolean fromInputs;
  private final boolean symmetric;
  private final Layout patternNodes;
  private final String patternPath;
  private final boolean sparsePatterns;
  /** neural-tangents' {@code mask_constant}, or null. */
  private final Double maskConstant;

  private Plan(Requirements requirements, Schedule schedule, boolean fromInputs, boolean symmetric,
      Layout patternNodes, String patternPath, boolean sparsePatterns, Double maskConstant) {
    this.requirements = requirements;
    this.schedule = schedule;
    this.fromInputs = fromInputs;
    this.symmetric = symmetric;
    this.patternNodes = patternNodes;
    this.patternPath = patternPath;
    this.sparsePatterns = sparsePatterns;
    this.maskConstant = maskConstant;
  }

  /**
   * The node grid of the graph pattern each input comes with ({@code Aggregate}), as a pixel-pair
   * layout; null for a model that reads none.
   */
  public Layout patternNodes() {
    return patternNodes;
  }

  /** The path of the first layer that reads the graph patterns ({@code serial[2].Aggregate}), or null. */
  public String patternPath() {
    return patternPath;
  }

  /** Whether the graph patterns are edge lists {@code (N, n_edges, 2)} ({@code implementation} {@code SPARSE}). */
  public boolean sparsePatterns() {
    return sparsePatterns;
  }

  /**
   * The per-example shape a dense graph pattern must have for this plan, neural-tangents' {@code
   * (nodes..., nodes...)} after the batch axis; null for a model that reads none.
   */
  public long[] patternShape() {
    if (patternNodes == null) {
      return null;
    }
    int[] grid = patternNodes.grid();
    long[] shape = new long[2 * grid.length];
    for (int k = 0; k < grid.length; k++) {
      shape[k] = grid[k];
      shape[k + grid.length] = grid[k];
    }
    return shape;
  }

  /**
   * Checks the patterns of {@code n1} row and {@code n2} column inputs ({@code pattern2} null: the
   * row inputs' again) against {@link #patternShape}, naming each and the layer that reads them, and
   * returns the plan inputs {@link #PATTERN1}, {@link #PATTERN2} in the dtype of {@code like}
   * ({@code double[]} or {@code float[]}); an empty map for a model that reads none (then the
   * patterns must be null).
   *
   * @param shape1 the shape of {@code pattern1} with its batch axis ({@code pattern1} holds it row-major)
   */
  public Map<String, Object> patternInputs(double[] pattern1, long[] shape1, double[] pattern2, long[] shape2,
      int n1, int n2, Object like) {
    return patternInputs("pattern1", pattern1, shape1, "pattern2", pattern2, shape2, n1, n2, like);
  }

  /** {@link #patternInputs(double[], long[], double[], long[], int, int, Object)}, errors naming the patterns so. */
  public Map<String, Object> patternInputs(String name1, double[] pattern1, long[] shape1, String name2,
      double[] pattern2, long[] shape2, int n1, int n2, Object like) {
    if (patternNodes == null) {
      if (pattern1 != null || pattern2 != null) {
        throw new IllegalArgumentException("a graph pattern was given, but the model has no Aggregate layer");
      }
      return Map.of();
    }
    boolean same = pattern2 == null;
    double[] m1 = aggregationMatrices(name1, pattern1, shape1, n1);
    double[] m2 = same ? m1 : aggregationMatrices(name2, pattern2, shape2, n2);
    boolean f32 = like instanceof float[];
    return Map.of(PATTERN1, f32 ? CpuBackend.float32().fromDoubles(m1) : m1,
        PATTERN2, f32 ? CpuBackend.float32().fromDoubles(m2) : m2);
  }

  /**
   * The aggregation matrices {@code M[n] = A[n]^T} of the patterns {@code A (n, nodes..., nodes...)}
   * given as {@code name}, each {@code nodes^2} numbers row-major: {@code A[i, j]} weighs the edge from
   * node {@code i} to node {@code j}, which adds node {@code i}'s value to node {@code j}'s (neural-tangents'
   * {@code dot_general} of the inputs' node axes with the pattern's first ones). Errors name the pattern,
   * the expected shape and the layer that reads it.
   */
  double[] aggregationMatrices(String name, double[] pattern, long[] shape, int n) {
    long[] expected = patternShape();
    long[] want = new long[expected.length + 1];
    want[0] = n;
    System.arraycopy(expected, 0, want, 1, expected.length);
    if (pattern == null) {
      throw new IllegalArgumentException(patternPath + " reads a graph pattern per input: " + name
          + " of shape " + (sparsePatterns ? "[" + n + ", n_edges, 2] (batch, edges, (tail, head))"
          : java.util.Arrays.toString(want) + " (batch, nodes..., nodes...)") + " is missing");
    }
    if (sparsePatterns) {
      if (shape.length != 3 || shape[0] != n || shape[2] != 2) {
        throw new IllegalArgumentException(patternPath + " reads " + name + " as SPARSE edges of shape [" + n
            + ", n_edges, 2] (batch, edges, (tail, head)), got " + java.util.Arrays.toString(shape));
      }
      pattern = Graph.densePattern(name, Graph.edges(name, pattern), shape, patternNodes.pixels());
      shape = want;
    }
    if (!java.util.Arrays.equals(shape, want)) {
      throw new IllegalArgumentException(patternPath + " reads " + name + " of shape " + java.util.Arrays.toString(
          want) + " (batch, nodes..., nodes...), got " + java.util.Arrays.toString(shape));
    }
    int p = patternNodes.pixels();
    double[] m = new double[pattern.length];
    for (int e = 0; e < n; e++) {
      int at = e * p * p;
      for (int i = 0; i < p; i++) {
        for (int j = 0; j < p; j++) {
          m[at + j * p + i] = pattern[at + i * p + j];
        }
      }
    }
    return m;
  }

  /**
   * The mask constant this plan was compiled for ({@link #compile(Layer, Shape, Set, Spatial, Double)}),
   * or null.
   */
  public Double maskConstant() {
    return maskConstant;
  }

  /**
   * Whether every rule is symmetric in its two inputs, so that the kernel of x1 with itself may be
   * computed as a triangle and mirrored; not with neural-tangents' {@code ElementwiseNumerical}.
   */
  public boolean symmetric() {
    return symmetric;
  }

  /**
   * The plan of {@code model} on raw inputs of per-example shape {@code perExample}, computing the
   * kernels in {@code gets}; a {@link ModelException} naming the layer if the model cannot take
   * such inputs.
   */
  public static Plan compile(Layer model, Shape perExample, Set<Get> gets) {
    return compile(model, perExample, gets, Spatial.REDUCED, null);
  }

  /**
   * As {@link #compile(Layer, Shape, Set)}, with outputs that keep the spatial axes of the model's
   * last layer as {@code spatial} says: the pair outputs and {@code var1}, {@code var2} then hold a
   * block per pair (or input), {@code P} numbers per pixel for {@link Spatial#DIAGONAL}, {@code P^2}
   * row-major (x1 pixel, x2 pixel) for {@link Spatial#FULL}. An empty {@code gets} computes only
   * {@code var1} and {@code var2} (neural-tangents' {@code cov1}, {@code cov2}). A {@link
   * ModelException} naming the readout if the model's output has no spatial axes to keep.
   */
  public static Plan compile(Layer model, Shape perExample, Set<Get> gets, Spatial spatial) {
    return compile(model, perExample, gets, spatial, null);
  }

  /**
   * As {@link #compile(Layer, Shape, Set)}, for inputs masked with {@code maskConstant}
   * (neural-tangents' {@code mask_constant}, null for none): entries equal to it are zeroed when
   * the plan runs, a position whose channels all equal it is masked, and the rules exclude masked
   * positions ({@link Masks}).
   */
  public static Plan compile(Layer model, Shape perExample, Set<Get> gets, Double maskConstant) {
    return compile(model, perExample, gets, Spatial.REDUCED, maskConstant);
  }

  /**
   * As {@link #compile(Layer, Shape, Set, Spatial)} for inputs masked with {@code maskConstant} (null:
   * none, {@link #compile(Layer, Shape, Set, Double)}). Masks are taken only with reduced outputs
   * ({@link Spatial#REDUCED}) and without graph patterns; other combinations are an error.
   */
  public static Plan compile(Layer model, Shape perExample, Set<Get> gets, Spatial spatial, Double maskConstant) {
    if (maskConstant != null) {
      Masking.checkConstant(maskConstant);
      if (spatial != Spatial.REDUCED) {
        throw new IllegalArgumentException("masked inputs (mask constant " + maskConstant
            + ") are not supported with kernels that keep spatial axes; ask for the reduced kernel");
      }
    }
    Spec spec = Spec.input(perExample);
    KernelExpr in = inputKernel(model, spec, false, spatial == Spatial.FULL);
    if (maskConstant != null && in.hasPixels()) {
      Layout grid = Layout.diag(spatialGrid(spec));
      in = in.withMasks(Expr.input(KEPT1, Domain.ROW, grid), Expr.input(KEPT2, Domain.COL, grid));
    }
    return compile(model, spec, in, gets, true, spatial, maskConstant);
  }

  /**
   * The plan's inputs as a kernel: {@code nngp} per pair, {@code var1} and {@code var2} per input,
   * zero NTK ({@code withNtk == false}, raw inputs) or an {@code ntk} input. For images they hold
   * pixel blocks: per pixel, or per pixel pair where the requirements pass found that a layer
   * needs the full covariance (a pooling layer, {@code GlobalAvgPool}).
   */
  static KernelExpr inputKernel(Layer model, Spec spec, boolean withNtk, boolean outputFull) {
    Layout layout = layout(model, spec, outputFull);
    return new KernelExpr(Expr.input(NNGP, Domain.TILE, layout),
        withNtk ? Expr.input(NTK, Domain.TILE, layout) : Expr.constant(0),
        Expr.input(VAR1, Domain.ROW, layout), Expr.input(VAR2, Domain.COL, layout));
  }

  /**
   * The blocks of the kernel of inputs described by {@code spec}, as the requirements pass decides
   * for a model whose output is needed with its pixel-pair covariance ({@code outputFull}) or not.
   */
  static Layout layout(Layer model, Spec spec, boolean outputFull) {
    if (!spec.hasSpatialAxes()) {
      return Layout.SCALAR;
    }
    int[] grid = spatialGrid(spec);
    return RuleContext.inputFull(model, spec, outputFull) ? Layout.full(grid) : Layout.diag(grid);
  }

  /** The pixel grid of an activation: its shape without the channel axis. */
  static int[] spatialGrid(Spec spec) {
    Shape s = spec.shape();
    int[] grid = new int[s.dimension() - 1];
    for (int k = 0; k < grid.length; k++) {
      grid[k] = Math.toIntExact(s.get(k));
    }
    return grid;
  }

  /**
   * The kernel a model's output gives: unchanged without pixels; with pixels (a model that ends
   * before a readout), averaged over the pixel-diagonal, as {@code Flatten} would, for {@link
   * Spatial#REDUCED}; its per-pixel blocks for {@link Spatial#DIAGONAL}; its pixel-pair blocks, which
   * the requirements pass kept, for {@link Spatial#FULL}.
   */
  static KernelExpr readout(KernelExpr k, Spatial spatial) {
    if (!k.hasPixels()) {
      return k;
    }
    if (spatial == Spatial.FULL) {
      if (!k.isFull()) {
        throw new IllegalStateException("the requirements pass kept only the pixel-diagonal of " + k.nngp());
      }
      return k;
    }
    if (spatial == Spatial.DIAGONAL) {
      return k.isFull() ? k.diagonal() : k;
    }
    KernelExpr diag = k.isFull() ? k.diagonal() : k;
    double mean = 1.0 / diag.nngp().layout().pixels();
    return diag.map(e -> e.sum(mean));
  }

  /**
   * The plan of {@code model} applied to a given kernel (inputs {@code nngp}, {@code ntk} per
   * pair, {@code var1}, {@code var2} per input) described by {@code input}: a rule on its own,
   * as the rule tests run it.
   */
  public static Plan compileOnKernel(Layer model, Spec input, Set<Get> gets) {
    if (gets.isEmpty()) {
      throw new IllegalArgumentException("a plan computes at least one kernel");
    }
    return compile(model, input, inputKernel(model, input, true, false), gets, false, Spatial.REDUCED,
        null);
  }

  private static Plan compile(Layer model, Spec input, KernelExpr in, Set<Get> gets, boolean fromInputs,
      Spatial spatial, Double maskConstant) {
    boolean outputFull = spatial == Spatial.FULL;
    RuleContext.Result r = RuleContext.run(model, List.of(input), List.of(in), null, false, outputFull);
    if (r.specs().size() != 1) {
      throw new ModelException(model.name(), "the model must end with one output, it has "
          + r.specs().size());
    }
    if (spatial.keepsAxes() && !r.specs().get(0).hasSpatialAxes()) {
      throw noSpatialAxes(model, input, in, spatial);
    }
    if (maskConstant != null && r.patternLayout() != null) {
      throw new ModelException(r.patternPath(), "masked inputs (mask constant " + maskConstant
          + ") are not supported with graph patterns (Aggregate)");
    }
    KernelExpr out = blocks(readout(r.kernels().get(0), spatial));
    Map<String, Expr> pairs = new LinkedHashMap<>();
    for (Get g : Get.setOf(gets)) {
      pairs.put(g.key(), g == Get.NNGP ? out.nngp() : out.ntk());
    }
    Map<String, Expr> rows = new LinkedHashMap<>();
    rows.put(VAR1, out.var1());
    if (r.asksSameExample() && fromInputs) {
      // The pair (i, i) of x1 with itself from input i alone: its nngp is input i's own covariance
      // (to the last bit, see run) and its NTK zero, so the rules run once more per input.
      KernelExpr self = new KernelExpr(in.var1(), in.ntk(), in.var1(), in.var1(), in.kept1(), in.kept1());
      KernelExpr same = blocks(readout(RuleContext.run(model, List.of(input), List.of(self), null, true,
          outputFull).kernels().get(0), spatial));
      for (Get g : Get.setOf(gets)) {
        rows.put(SAME + g.key(), g == Get.NNGP ? same.nngp() : same.ntk());
      }
    }
    Schedule schedule = new Schedule(pairs, rows, Map.of(VAR2, out.var2()));
    // No layer keeps the covariance between inputs of a batch; the pixel-pair covariance is kept
    // only where a layer needs it, and then from the inputs up.
    boolean diagonalSpatial = in.nngp().layout().kind() != Layout.Kind.FULL;
    return new Plan(new Requirements(input, r.specs().get(0), Set.copyOf(gets), true, diagonalSpatial, spatial),
        schedule, fromInputs, r.symmetric(), r.patternLayout(), r.patternPath(), r.sparsePatterns(), maskConstant);
  }

  /**
   * {@code k} with each constant part (the zero NTK of a model without parameters) as a constant
   * block of the pixel layout of {@code k}, so that every output holds one block per pair or input.
   */
  private static KernelExpr blocks(KernelExpr k) {
    Layout layout = k.nngp().layout();
    if (layout.isScalar()) {
      return k;
    }
    java.util.function.UnaryOperator<Expr> block = e -> {
      if (!e.isConstant()) {
        return e;
      }
      double[] values = new double[layout.size()];
      java.util.Arrays.fill(values, e.value());
      return Expr.block(layout, values);
    };
    return new KernelExpr(k.nngp(), block.apply(k.ntk()), block.apply(k.var1()), block.apply(k.var2()));
  }

  /**
   * The error for a model asked to keep spatial axes its output does not have: it names the layer
   * that removed them (the first whose output kernel has no pixels), or says that the inputs had none.
   */
  private static ModelException noSpatialAxes(Layer model, Spec input, KernelExpr in, Spatial spatial) {
    String asked = "the kernel per pixel" + (spatial == Spatial.FULL ? " pair (diagonal_spatial=false)"
        : " (diagonal_spatial=true)") + " was asked for";
    if (!input.hasSpatialAxes()) {
      return new ModelException(model.name(), asked + ", but the inputs (per-example shape "
          + input.shape() + ") have no spatial axes; ask for the reduced kernel");
    }
    String[] readout = new String[1];
    RuleContext.run(model, List.of(input), List.of(in), (path, kernels) -> {
      if (readout[0] == null && kernels.stream().noneMatch(KernelExpr::hasPixels)) {
        readout[0] = path;
      }
    });
    return new ModelException(readout[0] == null ? model.name() : readout[0], asked + ", but this layer (a"
        + " readout) removes the spatial axes, so the model's output has none; end the model before its readout"
        + " or ask for the reduced kernel");
  }

  public Requirements requirements() {
    return requirements;
  }

  public Schedule schedule() {
    return schedule;
  }

  /**
   * An estimate of the memory one tile of {@code rows x cols} takes while {@code backend} computes
   * it, in bytes of {@code dtypeBytes} each ({@link dev.ntk.kernels.engine.Backend#tileValues}): on
   * the {@code cpu} backend little more than the tile's outputs (pixel-pair blocks are computed pair
   * by pair), on the {@code tensorflow} backend every live value of the whole tile's blocks at once.
   */
  public long tileBytes(int rows, int cols, int dtypeBytes, dev.ntk.kernels.engine.Backend backend) {
    return backend.tileValues(schedule, schedule.inputLayout(NNGP), rows, cols) * dtypeBytes;
  }

  /** The largest square tile, at most {@code rows} rows, whose {@link #tileBytes} fit {@code budget}. */
  public int largestTile(int rows, long budget, int dtypeBytes, dev.ntk.kernels.engine.Backend backend) {
    int r = Math.max(1, rows);
    while (r > 1 && tileBytes(r, r, dtypeBytes, backend) > budget) {
      r = Math.max(1, r * 3 / 4);
    }
    return r;
  }

  /**
   * The most work one tile of {@link #autoTile} may hold, in flops ({@link #pairFlops}): about
   * 2^37, a few seconds of the cores of a small machine. A fully connected model's 8192 x 8192
   * kernel (relu21: 1.3e11) is then one tile, computed on all cores as the in-process path would;
   * a pooling CNN's tiles stay a few rows (1e9 flops per pair: tiles of 11 rows).
   */
  public static final double TILE_FLOPS = Double.parseDouble(System.getProperty("ntk.tile.flops", "1.4e11"));

  /**
   * An estimate of the work of one kernel entry, in flops: the input gram's multiply-adds ({@code
   * 2 d}) and the per-pair steps ({@code fma} two, any other one), or for pixel blocks the pair
   * pass's work ({@link Schedule#blockWork}).
   */
  public double pairFlops() {
    if (schedule.blocks()) {
      return Math.max(1, schedule.blockWork(2, 4)[0]);
    }
    double flops = 2.0 * requirements.input().shape().size();
    for (Expr e : schedule.tileSteps()) {
      flops += e.op() == Expr.Op.FMA ? 2 : 1;
    }
    return flops;
  }

  /**
   * The tile size of {@code --tile auto} for an {@code n1 x n2} kernel: the largest of {@code
   * ceil(max(n1, n2) / b)}, {@code b = 1, 2, ...} (tiles of equal size), whose tile fits {@code
   * budget} bytes ({@link #tileBytes}) and holds at most {@link #TILE_FLOPS} of work. Large tiles
   * cost a pipeline least (fewer files, fewer transposes to assemble, one tile's computation on all
   * cores); the work bound keeps tiles of expensive models (pooling CNNs) small enough to spread
   * over workers and to show progress.
   */
  public int autoTile(long n1, long n2, long budget, int dtypeBytes, dev.ntk.kernels.engine.Backend backend) {
    long n = Math.max(n1, n2);
    double perPair = pairFlops();
    for (long b = 1; b <= n; b++) {
      long t = (n + b - 1) / b;
      if (t > Integer.MAX_VALUE / 2) {
        continue;
      }
      int rows = (int) Math.min(t, n1);
      int cols = (int) Math.min(t, n2);
      if ((long) rows * cols < Integer.MAX_VALUE - 64 && tileBytes(rows, cols, dtypeBytes, backend) <= budget
          && (double) rows * cols * perPair <= TILE_FLOPS) {
        return (int) t;
      }
      if (t == 1) {
        break;
      }
      // the next b that gives a smaller tile
      b = (n + t - 2) / (t - 1) - 1;
    }
    return 1;
  }

  /** Whether this plan computes {@code get}. */
  public boolean computes(Get get) {
    return requirements.gets().contains(get);
  }

  /**
   * Runs this plan (compiled from raw inputs) on the {@code cpu} backend: {@code x1 (n1, d)} and
   * {@code x2 (n2, d)} row-major, {@code x2 == null} for x1 itself. Returns {@code nngp} and/or
   * {@code ntk} ({@code n1 x n2}) and {@code var1}, {@code var2}.
   */
  public <A> Map<String, A> run(CpuBackend<A> cpu, A x1, A x2, int n1, int n2, int threads) {
    return run(cpu, x1, x2, Map.of(), n1, n2, threads);
  }

  /**
   * As {@link #run(CpuBackend, Object, Object, int, int, int)} for a graph network: {@code patterns}
   * holds the plan inputs {@link #PATTERN1} and {@link #PATTERN2} ({@link #patternInputs}).
   */
  public <A> Map<String, A> run(CpuBackend<A> cpu, A x1, A x2, Map<String, ?> patterns, int n1, int n2,
      int threads) {
    if (!fromInputs) {
      throw new IllegalStateException("this plan starts from a kernel, not from inputs");
    }
    Inputs<A> m = inputs(x1, x2, patterns, n1, n2);
    return run(cpu, schedule, requirements.input(), m.x1(), m.x2(), m.further(), n1, n2, threads, symmetric, null);
  }

  /**
   * The inputs of this plan as every engine takes them: {@code x1} and {@code x2} ({@code null}: x1
   * with itself) masked with the plan's mask constant ({@link Masking}: entries equal to it zeroed, a
   * copy), and the further plan inputs: the graph patterns {@code patterns} ({@link #PATTERN1},
   * {@link #PATTERN2} of {@link #patternInputs}) and, for a plan with a mask constant, the masks
   * {@link #KEPT1}, {@link #KEPT2} ({@code KEPT2} the row inputs' for x1 with itself), in the dtype
   * of {@code x1}. Without a mask constant the inputs are returned as they are.
   *
   * @param x2 the column inputs, or {@code null} for x1 with itself
   * @throws IllegalArgumentException if the plan reads graph patterns and none were given, or an
   *     example of x1 or x2 is fully masked ({@link Masking.FullyMaskedException})
   */
  public <A> Inputs<A> inputs(A x1, A x2, Map<String, ?> patterns, int n1, int n2) {
    if (patternNodes != null && !patterns.containsKey(PATTERN1)) {
      throw new IllegalArgumentException(patternPath + " reads a graph pattern per input, and none was given");
    }
    if (maskConstant == null) {
      return new Inputs<>(x1, x2, Map.copyOf(patterns));
    }
    Spec in = requirements.input();
    int positions = in.hasSpatialAxes() ? Math.toIntExact(in.shape().size() / in.channels()) : 1;
    int channels = Math.toIntExact(in.shape().size() / positions);
    Masking<A> a = Masking.apply(x1, n1, positions, channels, maskConstant, "x1");
    Masking<A> b = x2 == null ? a : Masking.apply(x2, n2, positions, channels, maskConstant, "x2");
    CpuBackend<?> dtype = x1 instanceof float[] ? CpuBackend.float32() : CpuBackend.float64();
    Map<String, Object> further = new java.util.HashMap<>(patterns);
    further.put(KEPT1, dtype.fromDoubles(a.kept()));
    further.put(KEPT2, dtype.fromDoubles(b.kept()));
    return new Inputs<>(a.x(), x2 == null ? null : b.x(), Map.copyOf(further));
  }

  /**
   * The inputs of a plan as its engines take them ({@link #inputs}): {@code x1}, {@code x2} ({@code
   * null} for x1 with itself) masked where the plan has a mask constant, and the further plan inputs
   * by name (graph patterns, masks).
   */
  public record Inputs<A>(A x1, A x2, Map<String, Object> further) {}

  /**
   * As {@link #run(CpuBackend, Object, Object, int, int, int)}, in the dtype of {@code x1} ({@code
   * double[]}: float64, {@code float[]}: float32), with the pair outputs written into the caller's
   * {@code kernels} (by output name: arrays, or direct buffers of that dtype, see {@link
   * CpuBackend}). Returns {@code var1} and {@code var2} as new arrays. A direct buffer among them
   * first receives the input gram, which the pass then overwrites: no buffer of its own (a whole
   * 8192 x 8192 float32 {@code bin/ntk kernel} run peaked at 820 to 870 MiB resident, 1060 to 1130
   * MiB before).
   */
  public Map<String, Object> runInto(Object x1, Object x2, int n1, int n2, int threads, Map<String, ?> kernels) {
    return runInto(x1, x2, Map.of(), n1, n2, threads, kernels);
  }

  /**
   * As {@link #runInto(Object, Object, int, int, int, Map)} for a graph network, with the plan
   * inputs {@link #PATTERN1}, {@link #PATTERN2} of {@link #patternInputs}.
   */
  public Map<String, Object> runInto(Object x1, Object x2, Map<String, ?> patterns, int n1, int n2, int threads,
      Map<String, ?> kernels) {
    return x1 instanceof double[] a
        ? into(CpuBackend.float64(), a, (double[]) x2, patterns, n1, n2, threads, kernels)
        : into(CpuBackend.float32(), (float[]) x1, (float[]) x2, patterns, n1, n2, threads, kernels);
  }

  /**
   * As {@link #runInto(Object, Object, int, int, int, Map)} on {@code cpu} (e.g. {@link
   * CpuBackend#forWork} for one tile of a larger job).
   */
  public <A> Map<String, Object> runInto(CpuBackend<A> cpu, A x1, A x2, int n1, int n2, int threads,
      Map<String, ?> kernels) {
    return into(cpu, x1, x2, Map.of(), n1, n2, threads, kernels);
  }

  /**
   * As {@link #runInto(CpuBackend, Object, Object, int, int, int, Map)} for a graph network, with the
   * plan inputs {@link #PATTERN1}, {@link #PATTERN2} of {@link #patternInputs} (a tile of a larger
   * job passes its rows' patterns).
   */
  public <A> Map<String, Object> runInto(CpuBackend<A> cpu, A x1, A x2, Map<String, ?> patterns, int n1, int n2,
      int threads, Map<String, ?> kernels) {
    return into(cpu, x1, x2, patterns, n1, n2, threads, kernels);
  }

  private <A> Map<String, Object> into(CpuBackend<A> cpu, A x1, A x2, Map<String, ?> patterns, int n1, int n2,
      int threads, Map<String, ?> kernels) {
    Inputs<A> m = inputs(x1, x2, patterns, n1, n2);
    Map<String, Object> vars = new java.util.HashMap<>();
    // a block per input where the outputs keep pixels
    schedule.rowOutputs().forEach((name, e) -> vars.put(name,
        cpu.fromDoubles(new double[Math.multiplyExact(n1, e.layout().size())])));
    schedule.colOutputs().forEach((name, e) -> vars.put(name,
        cpu.fromDoubles(new double[Math.multiplyExact(n2, e.layout().size())])));
    Map<String, Object> out = new java.util.HashMap<>(kernels);
    out.putAll(vars);
    run(cpu, schedule, requirements.input(), m.x1(), m.x2(), m.further(), n1, n2, threads, symmetric, out);
    return vars;
  }

  /**
   * Runs {@code schedule} (whose inputs are those of a plan from raw inputs described by {@code
   * input}) on {@code x1 (n1, d)} and {@code x2 (n2, d)}, into {@code out} or, if it is null, new
   * arrays; for {@code x2 == null}, x1 with itself, only the upper triangle is computed (a {@code
   * syrk} for the gram, the rules on and above the diagonal) and mirrored. Images give their
   * pixel blocks to the plan block by block ({@link Gram#pixels}).
   */
  static <A> Map<String, A> run(CpuBackend<A> cpu, Schedule schedule, Spec input, A x1, A x2,
      Map<String, ?> patterns, int n1, int n2, int threads, boolean symmetric, Map<String, ?> out) {
    boolean same = x2 == null;
    // A rule that is not symmetric in its inputs (Plan#symmetric) gets x1 with itself whole.
    boolean triangle = same && symmetric;
    A second = same ? x1 : x2;
    int d = Math.toIntExact(input.shape().size());
    Layout layout = schedule.inputLayout(NNGP);
    if (!layout.isScalar()) {
      int channels = Math.toIntExact(input.channels());
      Map<String, Object> inputs = new java.util.HashMap<>(patterns);
      inputs.putAll(Map.of(NNGP, Gram.pixels(x1, second, layout.pixels(), channels,
          layout.kind() == Layout.Kind.FULL), VAR1, Gram.pixels(x1, x1, layout.pixels(), channels,
          layout.kind() == Layout.Kind.FULL), VAR2, Gram.pixels(second, second, layout.pixels(),
          channels, layout.kind() == Layout.Kind.FULL)));
      if (out == null) {
        return sameExampleOnDiagonal(schedule, cpu.run(schedule, inputs, n1, n2, threads, triangle), same, n1);
      }
      cpu.run(schedule, inputs, n1, n2, threads, triangle, out);
      sameExampleOnDiagonal(schedule, out, same, n1);
      return null;
    }
    if (schedule.outputs().isEmpty()) {
      // the covariances alone (cov1, cov2): the inputs' own variances, no gram of two batches
      double[] var1 = Gram.variances(x1, n1, d);
      Map<String, Object> inputs = Map.of(VAR1, cpu.fromDoubles(var1),
          VAR2, cpu.fromDoubles(same ? var1 : Gram.variances(x2, n2, d)));
      if (out == null) {
        return cpu.run(schedule, inputs, n1, n2, threads, false);
      }
      cpu.run(schedule, inputs, n1, n2, threads, false, out);
      return null;
    }
    // The gram is written into a caller's output buffer when one can hold it: each chunk of the
    // tile pass reads its gram entries before it writes its outputs over them, and the pass needs
    // only the upper triangle of x1 with itself, which the mirror overwrites last. That spares a
    // buffer as large as a kernel and its first-touch page faults.
    Buffer shared = out == null ? null : gramOutput(schedule, out, x1 instanceof double[], (long) n1 * n2);
    A gramSecond = triangle ? null : second;
    try (NativeBuffer own = shared == null ? Gram.of(x1, gramSecond, n1, n2, d, threads) : null) {
      Buffer gram = own != null ? own.buffer() : shared;
      if (own == null) {
        Gram.into(x1, gramSecond, n1, n2, d, gram);
      }
      double[] var1 = Gram.variances(x1, n1, d);
      double[] var2 = same ? var1 : Gram.variances(x2, n2, d);
      if (same) {
        // The variances of x1 with itself are the diagonal of the gram, to the last bit: then
        // k11 k22 - k^2 is exactly 0 there, and the angle of the ReLU rule exactly 0 (a separately
        // summed |x|^2 / d differs in rounding, which moved the NTK's diagonal by about 1e-8).
        for (int i = 0; i < n1; i++) {
          int at = i * n2 + i;
          var1[i] = gram instanceof DoubleBuffer g ? g.get(at) : ((FloatBuffer) gram).get(at);
        }
        var2 = var1;
      }
      Map<String, Object> inputs = Map.of(NNGP, gram, VAR1, cpu.fromDoubles(var1),
          VAR2, cpu.fromDoubles(var2));
      if (out == null) {
        return sameExampleOnDiagonal(schedule, cpu.run(schedule, inputs, n1, n2, threads, triangle), same, n1);
      }
      cpu.run(schedule, inputs, n1, n2, threads, triangle, out);
      sameExampleOnDiagonal(schedule, out, same, n1);
      return null;
    }
  }

  /**
   * For x1 with itself ({@code same}), writes each per-input output {@link #SAME}{@code name} of
   * {@code schedule} on the diagonal of the {@code n x n} pair output {@code name} in {@code out}
   * ({@code double[]}, {@code float[]}, or direct buffers); returns {@code out}.
   */
  public static <M extends Map<String, ?>> M sameExampleOnDiagonal(Schedule schedule, M out, boolean same, int n) {
    if (!same) {
      return out;
    }
    for (String name : schedule.outputs().keySet()) {
      Object diagonal = out.get(SAME + name);
      if (!schedule.rowOutputs().containsKey(SAME + name) || diagonal == null) {
        continue;
      }
      Object kernel = out.get(name);
      // a kernel that keeps spatial axes holds a block of m numbers per pair, and each input's own one
      int m = schedule.outputs().get(name).layout().size();
      for (int i = 0; i < n; i++) {
        for (int p = 0; p < m; p++) {
          double v = diagonal instanceof double[] d ? d[i * m + p] : ((float[]) diagonal)[i * m + p];
          int at = (i * n + i) * m + p;
          if (kernel instanceof double[] k) {
            k[at] = v;
          } else if (kernel instanceof float[] k) {
            k[at] = (float) v;
          } else if (kernel instanceof DoubleBuffer k) {
            k.put(at, v);
          } else {
            ((FloatBuffer) kernel).put(at, (float) v);
          }
        }
      }
    }
    return out;
  }

  /** A tile output in {@code out} that is a direct buffer of the compute dtype with room for the gram, if any. */
  private static Buffer gramOutput(Schedule schedule, Map<String, ?> out, boolean f64, long count) {
    for (String name : schedule.outputs().keySet()) {
      if (out.get(name) instanceof Buffer b && b.isDirect() && b.capacity() >= count
          && (f64 ? b instanceof DoubleBuffer : b instanceof FloatBuffer)) {
        return b;
      }
    }
    return null;
  }

  @Override
  public String toString() {
    return "Plan[" + requirements + ", " + schedule + "]";
  }
}
