package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.tensorflow.engine.NtkEngineBridge;
import dev.ntk.kernels.cuda.CudaEngine;
import dev.ntk.kernels.engine.Backend;
import dev.ntk.kernels.engine.TensorFlowBackend;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The kernel function of an infinite network, like neural-tangents' {@code kernel_fn(x1, x2)}:
 * NNGP and NTK between two batches of inputs, computed in-process.
 *
 * <p>Inputs are batch-first and channel-last. The result lives in the inputs' {@code NDManager}
 * and has their dtype (float32 or float64). The model is compiled into a {@link Plan} once per
 * input shape and choice of kernels, and run on the {@link Backend} of {@link #withBackend}
 * ({@code auto} by default: {@code cuda} when a CUDA device is visible, else {@code cpu}, which uses
 * every core).
 *
 * <pre>{@code
 * Kernel k = model.kernelFn().apply(xTrain, xTest);
 * NDArray ntk = k.ntk();
 * NDArray nngp = model.kernelFn().withBackend(Backend.TENSORFLOW).apply(xTrain, xTest, Get.NNGP);
 * // sequences of different lengths padded with -1 (neural-tangents' mask_constant=-1):
 * Kernel padded = model.kernelFn().withMaskConstant(-1).apply(tokens1, tokens2);
 * }</pre>
 *
 * <p>A model that ends without a readout (its last layer keeps spatial axes) gives kernels averaged
 * over its output pixels; {@link #keepSpatial} keeps them in neural-tangents' layouts ({@link
 * Spatial}).
 */
public final class KernelFn {
  private final Layer layer;
  private final Backend backend;
  private final Spatial spatial;
  private final Map<List<Object>, Plan> plans;
  /** neural-tangents' {@code mask_constant}, or null. */
  private final Double maskConstant;
  /** The engine of backend {@code cuda} ({@link #withCuda}), or null for {@link CudaEngine#shared}. */
  private final CudaEngine cuda;

  KernelFn(Layer layer) {
    this(layer, Backend.AUTO, Spatial.REDUCED, new ConcurrentHashMap<>(), null, null);
  }

  private KernelFn(Layer layer, Backend backend, Spatial spatial, Map<List<Object>, Plan> plans,
      Double maskConstant, CudaEngine cuda) {
    this.layer = layer;
    this.backend = backend;
    this.spatial = spatial;
    this.plans = plans;
    this.maskConstant = maskConstant;
    this.cuda = cuda;
  }

  /**
   * The same kernel function on inputs padded with {@code constant} (neural-tangents' {@code
   * kernel_fn(x1, x2, mask_constant=constant)}): entries equal to it are zeroed, a position (pixel,
   * token) whose channels all equal it is masked, and masked positions are left out of the
   * kernels: {@code GlobalAvgPool} averages over the kept positions, attention gives masked keys no
   * weight ({@link Masks}). {@code constant} must be finite; an example whose entries all equal it
   * is an error. Every backend takes masks ({@link Plan#inputs}).
   */
  public KernelFn withMaskConstant(double constant) {
    return new KernelFn(layer, backend, spatial, plans, Masking.checkConstant(constant), cuda);
  }

  /** The mask constant of {@link #withMaskConstant}, or null. */
  public Double maskConstant() {
    return maskConstant;
  }

  /** The network this kernel function belongs to. */
  public Layer layer() {
    return layer;
  }

  /**
   * The same kernel function on {@code backend}; {@code cuda} runs on the engine of {@link #withCuda}
   * if one was given, else on that of this JVM's first GPU ({@link CudaEngine#shared}).
   */
  public KernelFn withBackend(Backend newBackend) {
    return new KernelFn(layer, newBackend, spatial, plans, maskConstant, cuda);
  }

  /**
   * The same kernel function on backend {@code cuda}, run by {@code engine}: a GPU other than the
   * first ({@code new CudaEngine(CudaDevice.open(1))}), or the host ({@link
   * dev.ntk.kernels.cuda.HostDevice}, as tests run the generated kernels without a GPU). The caller
   * keeps and closes the engine's device.
   *
   * <pre>{@code
   * try (Device gpu = CudaDevice.open(1)) {
   *   Kernel k = model.kernelFn().withCuda(new CudaEngine(gpu)).apply(x1, x2);
   * }
   * }</pre>
   */
  public KernelFn withCuda(CudaEngine engine) {
    return new KernelFn(layer, Backend.CUDA, spatial, plans, maskConstant,
        java.util.Objects.requireNonNull(engine, "engine"));
  }

  /**
   * The same kernel function with kernels that keep the spatial axes of the model's last layer as
   * {@code newSpatial} says (neural-tangents' {@code diagonal_spatial}, {@link Spatial#of}): {@code
   * nngp}, {@code ntk} {@code (N1, N2, H, W)} or {@code (N1, N2, H, H', W, W')}, {@code cov1} {@code
   * (N1, H, W)} or {@code (N1, H, H', W, W')}. A {@link ModelException} naming the readout when the
   * model's output has no spatial axes.
   */
  public KernelFn keepSpatial(Spatial newSpatial) {
    return new KernelFn(layer, backend, java.util.Objects.requireNonNull(newSpatial, "spatial"), plans,
        maskConstant, cuda);
  }

  /** What the kernels keep of the output's spatial axes ({@link Spatial#REDUCED} by default). */
  public Spatial spatial() {
    return spatial;
  }

  public Backend backend() {
    return backend;
  }

  /** The compiled plan for inputs of per-example shape {@code perExample} (cached). */
  public Plan plan(Shape perExample, Set<Get> gets) {
    return plans.computeIfAbsent(java.util.Arrays.asList(perExample, Get.setOf(gets), spatial, maskConstant),
        k -> Plan.compile(layer, perExample, gets, spatial, maskConstant));
  }

  /** The kernels between {@code x1} and itself. */
  public Kernel apply(NDArray x1) {
    return apply(x1, null);
  }

  /** Both kernels between {@code x1} and {@code x2} ({@code null} means {@code x1} again). */
  public Kernel apply(NDArray x1, NDArray x2) {
    return apply(x1, x2, EnumSet.allOf(Get.class));
  }

  /** Only the kernel {@code get} selects: the other is not computed. */
  public NDArray apply(NDArray x1, NDArray x2, Get get) {
    return apply(x1, x2, EnumSet.of(get)).get(get);
  }

  /**
   * The kernels in {@code gets} between {@code x1} and {@code x2} ({@code null}: x1 again); an empty
   * {@code gets} computes only {@code cov1} and {@code cov2}.
   */
  public Kernel apply(NDArray x1, NDArray x2, Set<Get> gets) {
    return apply(x1, x2, null, null, gets);
  }

  /**
   * The kernels in {@code gets} of a graph network ({@link Graph.Aggregate}) between {@code x1} and
   * {@code x2} ({@code null}: x1 again, and {@code pattern2} is then ignored), whose examples come
   * with the patterns {@code pattern1 (N1, nodes..., nodes...)} and {@code pattern2 (N2, nodes...,
   * nodes...)}: neural-tangents' {@code kernel_fn(x1, x2, pattern=(pattern1, pattern2))}.
   */
  public Kernel apply(NDArray x1, NDArray x2, NDArray pattern1, NDArray pattern2, Set<Get> gets) {
    boolean same = x2 == null || x2 == x1;
    NDArray other = same ? x1 : x2;
    checkInput(x1, "x1");
    checkInput(other, "x2");
    Shape s1 = x1.getShape();
    Shape s2 = other.getShape();
    if (!s1.slice(1).equals(s2.slice(1))) {
      throw new IllegalArgumentException("x1 and x2 must have the same per-example shape, got "
          + s1 + " and " + s2);
    }
    if (x1.getDataType() != other.getDataType()) {
      throw new IllegalArgumentException("x1 and x2 must have one dtype, got "
          + x1.getDataType() + " and " + other.getDataType());
    }
    Plan plan = plan(s1.slice(1), gets);
    int n1 = Math.toIntExact(s1.get(0));
    int n2 = Math.toIntExact(s2.get(0));
    NDManager m = x1.getManager();
    if (!same && pattern1 != null && pattern2 == null) {
      throw new IllegalArgumentException(plan.patternPath() + " reads a graph pattern per input: pattern2 is missing");
    }
    Map<String, Object> patterns = plan.patternInputs(pattern1 == null ? null : Tensors.toDoubles(pattern1),
        pattern1 == null ? null : pattern1.getShape().getShape(),
        same || pattern2 == null ? null : Tensors.toDoubles(pattern2),
        same || pattern2 == null ? null : pattern2.getShape().getShape(), n1, n2,
        x1.getDataType() == DataType.FLOAT64 ? new double[0] : new float[0]);
    Backend resolved = backend.resolve(plan.schedule());
    Map<String, NDArray> out = switch (resolved) {
      case TENSORFLOW -> sameExampleOnDiagonal(plan, maskedOnTensorFlow(plan, x1, other, same, patterns, n1, n2, m),
          same, n1);
      case CUDA -> onCuda(plan, x1, same ? null : other, patterns, n1, n2, m);
      default -> onCpu(plan, x1, same ? null : other, patterns, n1, n2, m);
    };
    Spatial kept = plan.requirements().spatial();
    long[] pair = {n1, n2};
    return new Kernel(ntLayout(out.get(Plan.NNGP), pair, plan), ntLayout(out.get(Plan.NTK), pair, plan),
        ntLayout(out.get(Plan.VAR1), new long[] {n1}, plan), ntLayout(out.get(Plan.VAR2), new long[] {n2}, plan),
        plan.requirements().output(), n1, n2, same, plan.requirements().diagonalBatch(),
        kept.keepsAxes() ? kept == Spatial.DIAGONAL : plan.requirements().diagonalSpatial());
  }

  /**
   * A plan's output {@code a} (blocks of the output's pixels after the {@code batch} axes) in
   * neural-tangents' layout ({@link Spatial#shape}, {@link Spatial#axes}); as it is where the plan
   * reduced the spatial axes.
   */
  private static NDArray ntLayout(NDArray a, long[] batch, Plan plan) {
    Spatial s = plan.requirements().spatial();
    if (a == null || !s.keepsAxes()) {
      return a;
    }
    int[] grid = Plan.spatialGrid(plan.requirements().output());
    long[] blocked = new long[batch.length + (s == Spatial.FULL ? 2 : 1) * grid.length];
    System.arraycopy(batch, 0, blocked, 0, batch.length);
    for (int k = batch.length; k < blocked.length; k++) {
      blocked[k] = grid[(k - batch.length) % grid.length];
    }
    NDArray shaped = a.reshape(new Shape(blocked));
    return s == Spatial.FULL ? shaped.transpose(s.axes(batch.length, grid.length)) : shaped;
  }

  /**
   * The plan on the {@code cpu} backend, with every core. The kernels are written straight into the
   * memory of their TensorFlow tensors ({@link NtkEngineBridge#fill}), not into direct buffers that
   * TensorFlow then copies (allocating and zeroing those was most of the difference between 1.16 s
   * and 0.45 s for float32 at 4096 x 4096, {@code bench/RESULTS.md}).
   */
  private static Map<String, NDArray> onCpu(Plan plan, NDArray x1, NDArray x2, Map<String, Object> patterns,
      int n1, int n2, NDManager m) {
    int threads = Runtime.getRuntime().availableProcessors();
    DataType type = x1.getDataType();
    boolean f64 = type == DataType.FLOAT64;
    Object a = f64 ? x1.toDoubleArray() : x1.toFloatArray();
    Object b = x2 == null ? null : f64 ? x2.toDoubleArray() : x2.toFloatArray();
    List<String> names = List.copyOf(plan.schedule().outputs().keySet());
    Map<String, Object> vars = new HashMap<>();
    if (names.isEmpty()) {
      // only cov1 and cov2
      vars.putAll(plan.runInto(a, b, n1, n2, threads, Map.of()));
    }
    List<NDArray> kernels = names.isEmpty() ? List.of() : NtkEngineBridge.fill(m, pairShape(plan, n1, n2), type,
        names.size(), buffers -> {
      Map<String, Object> out = new HashMap<>();
      for (int i = 0; i < names.size(); i++) {
        out.put(names.get(i), f64 ? buffers.get(i).asDoubleBuffer() : buffers.get(i).asFloatBuffer());
      }
      vars.putAll(plan.runInto(a, b, patterns, n1, n2, threads, out));
    });
    Map<String, NDArray> arrays = new HashMap<>();
    for (int i = 0; i < names.size(); i++) {
      arrays.put(names.get(i), kernels.get(i));
    }
    vars.forEach((name, v) -> arrays.put(name, v instanceof double[] d ? m.create(d) : m.create((float[]) v)));
    return arrays;
  }

  /** The shape of a pair output of {@code plan}: {@code (n1, n2)}, then its block where it keeps pixels. */
  private static Shape pairShape(Plan plan, int n1, int n2) {
    int block = plan.schedule().outputs().values().stream().mapToInt(e -> e.layout().size()).max().orElse(1);
    return block == 1 ? new Shape(n1, n2) : new Shape(n1, n2, block);
  }

  /**
   * The plan on the {@code cuda} engine of {@link #withCuda}, or of this JVM's GPU ({@link
   * CudaEngine#shared}), with the graph {@code patterns}; the engine masks the inputs.
   */
  private Map<String, NDArray> onCuda(Plan plan, NDArray x1, NDArray x2, Map<String, Object> patterns, int n1,
      int n2, NDManager m) {
    boolean f64 = x1.getDataType() == DataType.FLOAT64;
    Object a = f64 ? x1.toDoubleArray() : x1.toFloatArray();
    Object b = x2 == null ? null : f64 ? x2.toDoubleArray() : x2.toFloatArray();
    Map<String, NDArray> arrays = new HashMap<>();
    CudaEngine engine = cuda != null ? cuda : CudaEngine.shared();
    Map<String, Object> values = engine.run(plan, a, b, patterns, n1, n2);
    values.forEach((name, v) -> {
      boolean pair = plan.schedule().outputs().containsKey(name);
      Shape shape = pair ? pairShape(plan, n1, n2)
          : new Shape(v instanceof double[] d ? d.length : ((float[]) v).length);
      arrays.put(name, v instanceof double[] d ? m.create(d, shape) : m.create((float[]) v, shape));
    });
    return arrays;
  }

  /**
   * {@link Plan#sameExampleOnDiagonal} on TensorFlow arrays: for x1 with itself, each input's kernel
   * with itself ({@link Plan#SAME}) in place of the diagonal of the kernels.
   */
  private static Map<String, NDArray> sameExampleOnDiagonal(Plan plan, Map<String, NDArray> out, boolean same,
      int n) {
    if (!same) {
      return out;
    }
    Map<String, NDArray> result = new HashMap<>(out);
    for (String name : plan.schedule().outputs().keySet()) {
      NDArray diagonal = out.get(Plan.SAME + name);
      if (diagonal == null) {
        continue;
      }
      NDManager m = diagonal.getManager();
      double[] identity = new double[Math.multiplyExact(n, n)];
      for (int i = 0; i < n; i++) {
        identity[i * n + i] = 1;
      }
      // a kernel that keeps pixels is (n, n, m), each input's own block (n * m)
      NDArray kernel = out.get(name);
      long block = kernel.getShape().dimension() == 3 ? kernel.getShape().get(2) : 1;
      try (NDArray ones = m.create(identity, block == 1 ? new Shape(n, n) : new Shape(n, n, 1));
          NDArray eye = ones.gt(0.5);
          NDArray column = block == 1 ? diagonal.reshape(n, 1) : diagonal.reshape(n, 1, block)) {
        result.put(name, NtkEngineBridge.op("SelectV2", eye, column, kernel));
        kernel.close();
      }
    }
    return result;
  }

  /**
   * {@link #onTensorFlow} on inputs masked as every engine masks them ({@link Plan#inputs}), with
   * the masks as plan inputs beside the graph {@code patterns}.
   */
  private Map<String, NDArray> maskedOnTensorFlow(Plan plan, NDArray x1, NDArray x2, boolean same,
      Map<String, Object> patterns, int n1, int n2, NDManager m) {
    if (maskConstant == null) {
      return onTensorFlow(plan, x1, x2, same, patterns, n1, n2, m);
    }
    boolean f64 = x1.getDataType() == DataType.FLOAT64;
    Plan.Inputs<Object> in = plan.inputs(f64 ? x1.toDoubleArray() : x1.toFloatArray(),
        same ? null : f64 ? x2.toDoubleArray() : x2.toFloatArray(), patterns, n1, n2);
    try (NDManager scope = m.newSubManager()) {
      NDArray y1 = created(scope, in.x1(), x1.getShape());
      NDArray y2 = same ? y1 : created(scope, in.x2(), x2.getShape());
      return onTensorFlow(plan, y1, y2, same, in.further(), n1, n2, m);
    }
  }

  private static NDArray created(NDManager m, Object values, Shape shape) {
    return values instanceof double[] d ? m.create(d, shape) : m.create((float[]) values, shape);
  }

  /**
   * The plan on the {@code tensorflow} backend, with the further plan inputs {@code extra} (graph
   * patterns, masks: {@code double[]} or {@code float[]} in the dtype of the inputs).
   */
  private static Map<String, NDArray> onTensorFlow(Plan plan, NDArray x1, NDArray x2, boolean same,
      Map<String, Object> extra, int n1, int n2, NDManager m) {
    long d = plan.requirements().input().shape().size();
    dev.ntk.kernels.engine.Layout layout = plan.schedule().inputLayout(Plan.NNGP);
    if (!layout.isScalar()) {
      return pixelsOnTensorFlow(plan, layout, x1, same ? x1 : x2, extra, n1, n2, m);
    }
    try (NDManager scope = m.newSubManager()) {
      NDArray f1 = x1.reshape(n1, d);
      NDArray f2 = same ? f1 : x2.reshape(n2, d);
      f1.attach(scope);
      if (!same) {
        f2.attach(scope);
      }
      NDArray gram = f1.matMul(f2.transpose()).div((double) d);
      // For x1 with itself, the variances are the gram's diagonal to the last bit (see Plan.run).
      NDArray var1 = same ? gram.reshape(-1).get("::" + (n1 + 1))
          : f1.square().sum(new int[] {1}).div((double) d);
      NDArray var2 = same ? var1 : f2.square().sum(new int[] {1}).div((double) d);
      for (NDArray a : List.of(gram, var1, var2)) {
        a.attach(scope);
      }
      return TensorFlowBackend.run(plan.schedule(),
          Map.of(Plan.NNGP, gram, Plan.VAR1, var1, Plan.VAR2, var2), n1, n2, m);
    }
  }

  /**
   * A plan on images on the {@code tensorflow} backend: the input pixel blocks of the whole tile
   * are computed as the {@code cpu} backend computes them ({@link dev.ntk.kernels.engine.Gram#pixels}),
   * then the plan runs as TensorFlow ops.
   */
  private static Map<String, NDArray> pixelsOnTensorFlow(Plan plan, dev.ntk.kernels.engine.Layout layout,
      NDArray x1, NDArray x2, Map<String, Object> extra, int n1, int n2, NDManager m) {
    int channels = Math.toIntExact(plan.requirements().input().channels());
    boolean full = layout.kind() == dev.ntk.kernels.engine.Layout.Kind.FULL;
    int size = layout.size();
    boolean f64 = x1.getDataType() == DataType.FLOAT64;
    Object a = f64 ? x1.toDoubleArray() : x1.toFloatArray();
    Object b = f64 ? x2.toDoubleArray() : x2.toFloatArray();
    Map<String, NDArray> inputs = new HashMap<>();
    extra.forEach((name, v) -> inputs.put(name, v instanceof double[] dv ? m.create(dv) : m.create((float[]) v)));
    inputs.put(Plan.NNGP, blocks(dev.ntk.kernels.engine.Gram.pixels(a, b, layout.pixels(), channels, full),
        n1, n2, size, f64, m));
    inputs.put(Plan.VAR1, blocks(dev.ntk.kernels.engine.Gram.pixels(a, a, layout.pixels(), channels, full),
        n1, -1, size, f64, m));
    inputs.put(Plan.VAR2, blocks(dev.ntk.kernels.engine.Gram.pixels(b, b, layout.pixels(), channels, full),
        -1, n2, size, f64, m));
    try {
      return TensorFlowBackend.run(plan.schedule(), inputs, n1, n2, m);
    } finally {
      inputs.values().forEach(NDArray::close);
    }
  }

  /** Every block of {@code source} for {@code n1} rows and/or {@code n2} columns (-1: none) in one array. */
  @SuppressWarnings({"unchecked", "rawtypes"})
  private static NDArray blocks(dev.ntk.kernels.engine.BlockInput source, int n1, int n2, int size, boolean f64,
      NDManager m) {
    int rows = Math.max(n1, 1);
    int cols = Math.max(n2, 1);
    int items = rows * cols;
    double[] d = f64 ? new double[Math.multiplyExact(items, size)] : null;
    float[] f = f64 ? null : new float[Math.multiplyExact(items, size)];
    Object block = f64 ? new double[size] : new float[size];
    for (int i = 0; i < rows; i++) {
      for (int j = 0; j < cols; j++) {
        source.fill(n1 < 0 ? -1 : i, n2 < 0 ? -1 : j, block);
        System.arraycopy(block, 0, f64 ? d : f, (i * cols + j) * size, size);
      }
    }
    return f64 ? m.create(d) : m.create(f);
  }

  /**
   * The kernel of the raw inputs: {@code nngp = x1 x2^T / D} over the flattened features, zero
   * NTK, not Gaussian.
   */
  public static Kernel inputKernel(NDArray x1, NDArray x2) {
    return Stax.identity().kernelFn().apply(x1, x2);
  }

  private static void checkInput(NDArray x, String name) {
    if (x.getShape().dimension() < 2) {
      throw new IllegalArgumentException(name + " must be batch-first with at least 2 axes, got shape "
          + x.getShape());
    }
    DataType t = x.getDataType();
    if (t != DataType.FLOAT32 && t != DataType.FLOAT64) {
      throw new IllegalArgumentException(name + " must be float32 or float64, got " + t);
    }
  }
}
