package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.tensorflow.engine.NtkEngineBridge;
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
 * ({@code auto} by default: {@code tensorflow} when a GPU is visible, else {@code cpu}, which uses
 * every core).
 *
 * <pre>{@code
 * Kernel k = model.kernelFn().apply(xTrain, xTest);
 * NDArray ntk = k.ntk();
 * NDArray nngp = model.kernelFn().withBackend(Backend.TENSORFLOW).apply(xTrain, xTest, Get.NNGP);
 * // sequences of different lengths padded with -1 (neural-tangents' mask_constant=-1):
 * Kernel padded = model.kernelFn().withMaskConstant(-1).apply(tokens1, tokens2);
 * }</pre>
 */
public final class KernelFn {
  private final Layer layer;
  private final Backend backend;
  private final Map<List<Object>, Plan> plans;
  /** neural-tangents' {@code mask_constant}, or null. */
  private final Double maskConstant;

  KernelFn(Layer layer) {
    this(layer, Backend.AUTO, new ConcurrentHashMap<>(), null);
  }

  private KernelFn(Layer layer, Backend backend, Map<List<Object>, Plan> plans, Double maskConstant) {
    this.layer = layer;
    this.backend = backend;
    this.plans = plans;
    this.maskConstant = maskConstant;
  }

  /**
   * The same kernel function on inputs padded with {@code constant} (neural-tangents' {@code
   * kernel_fn(x1, x2, mask_constant=constant)}): entries equal to it are zeroed, a position (pixel,
   * token) whose channels all equal it is masked, and masked positions are left out of the
   * kernels: {@code GlobalAvgPool} averages over the kept positions, attention gives masked keys no
   * weight ({@link Masks}). {@code constant} must be finite; an example whose entries all equal it
   * is an error. Runs on {@code cpu} or {@code tensorflow}.
   */
  public KernelFn withMaskConstant(double constant) {
    return new KernelFn(layer, backend, plans, Masking.checkConstant(constant));
  }

  /** The mask constant of {@link #withMaskConstant}, or null. */
  public Double maskConstant() {
    return maskConstant;
  }

  /** The network this kernel function belongs to. */
  public Layer layer() {
    return layer;
  }

  /** The same kernel function on {@code backend}. */
  public KernelFn withBackend(Backend newBackend) {
    return new KernelFn(layer, newBackend, plans, maskConstant);
  }

  public Backend backend() {
    return backend;
  }

  /** The compiled plan for inputs of per-example shape {@code perExample} (cached). */
  public Plan plan(Shape perExample, Set<Get> gets) {
    return plans.computeIfAbsent(java.util.Arrays.asList(perExample, EnumSet.copyOf(gets), maskConstant),
        k -> Plan.compile(layer, perExample, gets, maskConstant));
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

  /** The kernels in {@code gets} between {@code x1} and {@code x2} ({@code null}: x1 again). */
  public Kernel apply(NDArray x1, NDArray x2, Set<Get> gets) {
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
    Backend resolved = backend.resolve(plan.schedule());
    if (maskConstant != null && resolved == Backend.CUDA) {
      if (backend != Backend.AUTO) {
        throw new IllegalArgumentException("the cuda backend does not take masked inputs (mask constant "
            + maskConstant + "); use cpu or tensorflow");
      }
      resolved = Backend.CPU;
    }
    Map<String, NDArray> out = switch (resolved) {
      case TENSORFLOW -> sameExampleOnDiagonal(plan, maskedOnTensorFlow(plan, x1, other, same, n1, n2, m), same, n1);
      case CUDA -> onCuda(plan, x1, same ? null : other, n1, n2, m);
      default -> onCpu(plan, x1, same ? null : other, n1, n2, m);
    };
    return new Kernel(out.get(Plan.NNGP), out.get(Plan.NTK), out.get(Plan.VAR1), out.get(Plan.VAR2),
        plan.requirements().output(), n1, n2, same, plan.requirements().diagonalBatch(),
        plan.requirements().diagonalSpatial());
  }

  /**
   * The plan on the {@code cpu} backend, with every core. The kernels are written straight into the
   * memory of their TensorFlow tensors ({@link NtkEngineBridge#fill}), not into direct buffers that
   * TensorFlow then copies (allocating and zeroing those was most of the difference between 1.16 s
   * and 0.45 s for float32 at 4096 x 4096, {@code bench/RESULTS.md}).
   */
  private static Map<String, NDArray> onCpu(Plan plan, NDArray x1, NDArray x2, int n1, int n2, NDManager m) {
    int threads = Runtime.getRuntime().availableProcessors();
    DataType type = x1.getDataType();
    boolean f64 = type == DataType.FLOAT64;
    Object a = f64 ? x1.toDoubleArray() : x1.toFloatArray();
    Object b = x2 == null ? null : f64 ? x2.toDoubleArray() : x2.toFloatArray();
    List<String> names = List.copyOf(plan.schedule().outputs().keySet());
    Map<String, Object> vars = new HashMap<>();
    List<NDArray> kernels = NtkEngineBridge.fill(m, new Shape(n1, n2), type, names.size(), buffers -> {
      Map<String, Object> out = new HashMap<>();
      for (int i = 0; i < names.size(); i++) {
        out.put(names.get(i), f64 ? buffers.get(i).asDoubleBuffer() : buffers.get(i).asFloatBuffer());
      }
      vars.putAll(plan.runInto(a, b, n1, n2, threads, out));
    });
    Map<String, NDArray> arrays = new HashMap<>();
    for (int i = 0; i < names.size(); i++) {
      arrays.put(names.get(i), kernels.get(i));
    }
    vars.forEach((name, v) -> arrays.put(name, v instanceof double[] d ? m.create(d) : m.create((float[]) v)));
    return arrays;
  }

  /** The plan on the {@code cuda} engine of this JVM's GPU ({@link dev.ntk.kernels.cuda.CudaEngine#shared}). */
  private static Map<String, NDArray> onCuda(Plan plan, NDArray x1, NDArray x2, int n1, int n2, NDManager m) {
    boolean f64 = x1.getDataType() == DataType.FLOAT64;
    Object a = f64 ? x1.toDoubleArray() : x1.toFloatArray();
    Object b = x2 == null ? null : f64 ? x2.toDoubleArray() : x2.toFloatArray();
    Map<String, NDArray> arrays = new HashMap<>();
    Map<String, Object> values = Plan.sameExampleOnDiagonal(plan.schedule(),
        dev.ntk.kernels.cuda.CudaEngine.shared().run(plan, a, b, n1, n2), x2 == null, n1);
    values.forEach((name, v) -> {
      boolean pair = plan.schedule().outputs().containsKey(name);
      Shape shape = pair ? new Shape(n1, n2) : new Shape(name.equals(Plan.VAR2) ? n2 : n1);
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
      try (NDArray ones = m.create(identity, new Shape(n, n));
          NDArray eye = ones.gt(0.5);
          NDArray column = diagonal.reshape(n, 1)) {
        NDArray kernel = out.get(name);
        result.put(name, NtkEngineBridge.op("SelectV2", eye, column, kernel));
        kernel.close();
      }
    }
    return result;
  }

  /**
   * {@link #onTensorFlow} on inputs masked as the {@code cpu} backend masks them ({@link Masking}),
   * with the masks as plan inputs.
   */
  private Map<String, NDArray> maskedOnTensorFlow(Plan plan, NDArray x1, NDArray x2, boolean same,
      int n1, int n2, NDManager m) {
    if (maskConstant == null) {
      return onTensorFlow(plan, x1, x2, same, n1, n2, m, Map.of());
    }
    Spec in = plan.requirements().input();
    int positions = in.hasSpatialAxes() ? Math.toIntExact(in.shape().size() / in.channels()) : 1;
    int channels = Math.toIntExact(in.shape().size() / positions);
    boolean f64 = x1.getDataType() == DataType.FLOAT64;
    Masking<Object> a = Masking.apply(f64 ? x1.toDoubleArray() : x1.toFloatArray(), n1, positions, channels,
        maskConstant, "x1");
    Masking<Object> b = same ? a : Masking.apply(f64 ? x2.toDoubleArray() : x2.toFloatArray(), n2, positions,
        channels, maskConstant, "x2");
    try (NDManager scope = m.newSubManager()) {
      NDArray y1 = created(scope, a.x(), x1.getShape());
      NDArray y2 = same ? y1 : created(scope, b.x(), x2.getShape());
      Map<String, NDArray> kept = Map.of(Plan.KEPT1, scope.create(a.kept()).toType(x1.getDataType(), false),
          Plan.KEPT2, scope.create(b.kept()).toType(x1.getDataType(), false));
      return onTensorFlow(plan, y1, y2, same, n1, n2, m, kept);
    }
  }

  private static NDArray created(NDManager m, Object values, Shape shape) {
    return values instanceof double[] d ? m.create(d, shape) : m.create((float[]) values, shape);
  }

  private static Map<String, NDArray> onTensorFlow(Plan plan, NDArray x1, NDArray x2, boolean same,
      int n1, int n2, NDManager m, Map<String, NDArray> kept) {
    long d = plan.requirements().input().shape().size();
    dev.ntk.kernels.engine.Layout layout = plan.schedule().inputLayout(Plan.NNGP);
    if (!layout.isScalar()) {
      return pixelsOnTensorFlow(plan, layout, x1, same ? x1 : x2, n1, n2, m, kept);
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
      NDArray x1, NDArray x2, int n1, int n2, NDManager m, Map<String, NDArray> kept) {
    int channels = Math.toIntExact(plan.requirements().input().channels());
    boolean full = layout.kind() == dev.ntk.kernels.engine.Layout.Kind.FULL;
    int size = layout.size();
    boolean f64 = x1.getDataType() == DataType.FLOAT64;
    Object a = f64 ? x1.toDoubleArray() : x1.toFloatArray();
    Object b = f64 ? x2.toDoubleArray() : x2.toFloatArray();
    Map<String, NDArray> inputs = new HashMap<>();
    inputs.put(Plan.NNGP, blocks(dev.ntk.kernels.engine.Gram.pixels(a, b, layout.pixels(), channels, full),
        n1, n2, size, f64, m));
    inputs.put(Plan.VAR1, blocks(dev.ntk.kernels.engine.Gram.pixels(a, a, layout.pixels(), channels, full),
        n1, -1, size, f64, m));
    inputs.put(Plan.VAR2, blocks(dev.ntk.kernels.engine.Gram.pixels(b, b, layout.pixels(), channels, full),
        -1, n2, size, f64, m));
    try {
      Map<String, NDArray> all = new HashMap<>(inputs);
      all.putAll(kept);
      return TensorFlowBackend.run(plan.schedule(), all, n1, n2, m);
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
