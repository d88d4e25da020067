package dev.ntk.transforms;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.io.Npy;
import dev.ntk.io.NpyDType;
import dev.ntk.io.TileKey;
import dev.ntk.kernels.Diagnostics;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Kernel;
import dev.ntk.kernels.KernelFn;
import dev.ntk.kernels.Model;
import dev.ntk.kernels.Plan;
import dev.ntk.kernels.Tensors;
import dev.ntk.kernels.engine.Backend;
import dev.ntk.kernels.engine.CpuBackend;
import dev.ntk.kernels.engine.NativeBuffer;
import java.nio.Buffer;
import java.nio.ByteBuffer;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.EnumSet;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.OptionalLong;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * Computes kernel tiles from blocks of input rows on one worker thread: the model's {@link Plan} is
 * compiled once ({@link #setup}) and run for every tile. On the {@code cpu} backend a tile is plain
 * Java arrays; on {@code tensorflow} one {@code NDManager} is opened and each tile is computed in a
 * child manager closed with the tile, so a worker's memory stays bounded by one tile's working set.
 * Shared by the file path ({@link ComputeTileFn}) and the {@code PCollection} path ({@link Kernels}).
 */
final class TileComputer implements TileFunction {
  private static final long serialVersionUID = 1L;

  private final Model model;
  private final long[] featureShape;
  private final NpyDType dtype;
  private final Backend backend;
  /** The kernels computed: the plan is compiled for these alone ({@code nngp} alone has no NTK step). */
  private final EnumSet<Get> gets;
  /** The entries of the whole job this worker computes tiles of (for {@link CpuBackend#forWork}). */
  private final double entries;
  private transient Backend resolved;
  private transient double work;
  private transient KernelFn kernelFn;
  private transient Plan plan;
  private transient NDManager manager;

  /** neural-tangents' {@code mask_constant}, or null. */
  private final Double maskConstant;

  TileComputer(Model model, long[] featureShape, NpyDType dtype, Backend backend, double entries) {
    this(model, featureShape, dtype, backend, entries, EnumSet.allOf(Get.class), null);
  }

  /** A computer of the kernels {@code gets} only. */
  TileComputer(Model model, long[] featureShape, NpyDType dtype, Backend backend, double entries,
      Set<Get> gets) {
    this(model, featureShape, dtype, backend, entries, gets, null);
  }

  /** A computer of all kernels, for inputs masked with {@code maskConstant} (null: none; {@link
   * KernelFn#withMaskConstant}).
   */
  TileComputer(Model model, long[] featureShape, NpyDType dtype, Backend backend, double entries,
      Double maskConstant) {
    this(model, featureShape, dtype, backend, entries, EnumSet.allOf(Get.class), maskConstant);
  }

  /** A computer of the kernels {@code gets} for inputs masked with {@code maskConstant} (null: none). */
  TileComputer(Model model, long[] featureShape, NpyDType dtype, Backend backend, double entries,
      Set<Get> gets, Double maskConstant) {
    this.maskConstant = maskConstant;
    this.model = model;
    this.featureShape = featureShape.clone();
    this.dtype = dtype;
    this.backend = backend;
    this.entries = entries;
    this.gets = EnumSet.copyOf(gets);
  }

  /** The names of the kernels computed, sorted ({@code nngp}, {@code ntk}), as a tile stores them. */
  @Override
  public List<String> names() {
    return gets.stream().map(Get::key).sorted().toList();
  }

  /** The plan compiled by {@link #setup} (for tests: what a worker runs). */
  Plan plan() {
    return plan;
  }

  /** Compiles the plan; on the worker, so that {@code auto} means this machine's GPU, if any. */
  @Override
  public void setup() {
    plan = model.plan(new Shape(featureShape), dataType(dtype), gets, maskConstant);
    resolved = backend.resolve(plan.schedule());
    kernelFn = model.layer().kernelFn().withBackend(resolved);
    if (maskConstant != null) {
      kernelFn = kernelFn.withMaskConstant(maskConstant);
    }
    work = entries * plan.schedule().tileWork();
    if (!resolved.runsInto()) {
      manager = Tensors.newManager();
    }
  }

  /**
   * The {@code nngp} and {@code ntk} of the tile {@code key} between the rows {@code a} of x1 and
   * {@code b} of x2 (row-major, {@code null} for a tile on the diagonal of x1 with itself).
   */
  @Override
  public SortedMap<String, double[]> compute(TileKey key, double[] a, double[] b) {
    return compute(key, a, b, null);
  }

  /** As {@link #compute(TileKey, double[], double[])}, the rows with their graph patterns ({@code null}: none). */
  @Override
  public SortedMap<String, double[]> compute(TileKey key, double[] a, double[] b, TilePatterns.Rows patterns) {
    if (resolved.runsInto()) {
      return dtype == NpyDType.FLOAT32 ? onCpu(CpuBackend.float32().forWork(work), a, b, patterns, key)
          : onCpu(CpuBackend.float64().forWork(work), a, b, patterns, key);
    }
    try (NDManager scope = manager.newSubManager()) {
      NDArray x = block(scope, a, key.rows());
      NDArray y = b == null ? null : block(scope, b, key.cols());
      Kernel k = patterns == null ? kernelFn.apply(x, y, gets)
          : kernelFn.apply(x, y, pattern(scope, patterns.rows1(), patterns.shape1()),
              patterns.rows2() == null ? null : pattern(scope, patterns.rows2(), patterns.shape2()), gets);
      SortedMap<String, double[]> values = new TreeMap<>();
      for (Get g : gets) {
        values.put(g.key(), Tensors.toDoubles(k.get(g)));
      }
      return values;
    }
  }

  /** Graph patterns as {@link KernelFn} takes them, in float64 (the plan makes them dense and casts them). */
  private static NDArray pattern(NDManager scope, double[] rows, long[] shape) {
    return Tensors.create(scope, rows, new Shape(shape), DataType.FLOAT64);
  }

  /**
   * The plan inputs {@link Plan#PATTERN1}, {@link Plan#PATTERN2} of a tile's {@code n1} rows and
   * {@code n2} columns in the dtype of {@code like}, as masks are {@code kept1}, {@code kept2}; none
   * for {@code patterns} null.
   */
  private Map<String, Object> patternInputs(TilePatterns.Rows patterns, int n1, int n2, Object like) {
    return patterns == null ? Map.of() : plan.patternInputs(Plan.PATTERN1, patterns.rows1(), patterns.shape1(),
        Plan.PATTERN2, patterns.rows2(), patterns.shape2(), n1, n2, like);
  }

  /** Tile computations under way in this JVM, which share its cores ({@link #threads}). */
  private static final AtomicInteger COMPUTING = new AtomicInteger();

  /**
   * The threads for a tile that starts while {@code computing} tiles (itself included) are being
   * computed in this JVM: its share of the cores. A tile computed alone (a job of one large tile,
   * or the last tile of a job) uses every core, as the in-process path does; tiles computed side by
   * side (the workers of a DirectRunner or of an embedded Flink cluster, each one thread) use one
   * core each.
   */
  static int threads(int computing) {
    return Math.max(1, Runtime.getRuntime().availableProcessors() / Math.max(1, computing));
  }

  /** Whether {@link #computeStored} computes tiles here (the {@code cpu} backend), else {@link #compute}. */
  @Override
  public boolean storesValues() {
    return resolved.runsInto();
  }

  /**
   * The kernels of a tile as they are stored: on the {@code cpu} backend, in native memory in the
   * tile's dtype (a float32 tile stays float32 from the computation to its file), computed by the
   * same plan run as the in-process path ({@link Plan#runInto}) on this tile's share of the cores.
   * The caller closes the result.
   */
  @Override
  public StoredTile computeStored(TileKey key, double[] a, double[] b, TilePatterns.Rows patterns) {
    int computing = COMPUTING.incrementAndGet();
    try {
      int threads = threads(computing);
      return dtype == NpyDType.FLOAT32 ? stored(CpuBackend.float32().forWork(work), a, b, patterns, key, threads)
          : stored(CpuBackend.float64().forWork(work), a, b, patterns, key, threads);
    } finally {
      COMPUTING.decrementAndGet();
    }
  }

  private <A> StoredTile stored(CpuBackend<A> cpu, double[] a, double[] b, TilePatterns.Rows patterns, TileKey key,
      int threads) {
    long size = (long) key.rows() * key.cols();
    Map<String, NativeBuffer> natives = new LinkedHashMap<>();
    try {
      Map<String, Buffer> kernels = new LinkedHashMap<>();
      for (String name : names()) {
        NativeBuffer buffer = NativeBuffer.allocate(size, dtype == NpyDType.FLOAT64);
        natives.put(name, buffer);
        kernels.put(name, buffer.buffer());
      }
      A x1 = cpu.fromDoubles(a);
      plan.runInto(cpu, x1, b == null ? null : cpu.fromDoubles(b), patternInputs(patterns, key.rows(), key.cols(), x1),
          key.rows(), key.cols(), threads, kernels);
      return new StoredTile(natives);
    } catch (RuntimeException | Error e) {
      natives.values().forEach(NativeBuffer::close);
      throw e;
    }
  }

  /** A tile's kernels in native memory, by name ({@link #names}), freed by {@link #close}. */
  static final class StoredTile implements AutoCloseable {
    private final Map<String, NativeBuffer> kernels;

    StoredTile(Map<String, NativeBuffer> kernels) {
      this.kernels = kernels;
    }

    /** The values of kernel {@code name} as a {@code FloatBuffer} or {@code DoubleBuffer}. */
    Buffer values(String name) {
      return kernels.get(name).buffer();
    }

    /** The values of kernel {@code name} as doubles (for a tile that is an element). */
    double[] doubles(String name) {
      Buffer values = values(name);
      double[] out = new double[values.capacity()];
      if (values instanceof java.nio.FloatBuffer f) {
        for (int i = 0; i < out.length; i++) {
          out[i] = f.get(i);
        }
      } else {
        ((java.nio.DoubleBuffer) values).get(0, out);
      }
      return out;
    }

    /** The bytes of each kernel, in the order of {@code names}, as the tile file stores them (native order). */
    List<ByteBuffer> bytes(List<String> names) {
      return names.stream().map(n -> {
        NativeBuffer b = kernels.get(n);
        return b.bytes(0, b.count());
      }).toList();
    }

    @Override
    public void close() {
      kernels.values().forEach(NativeBuffer::close);
    }
  }

  private <A> SortedMap<String, double[]> onCpu(CpuBackend<A> cpu, double[] a, double[] b,
      TilePatterns.Rows patterns, TileKey key) {
    int size = key.rows() * key.cols();
    A x1 = cpu.fromDoubles(a);
    Map<String, A> k = plan.run(cpu, x1, b == null ? null : cpu.fromDoubles(b),
        patternInputs(patterns, key.rows(), key.cols(), x1), key.rows(), key.cols(), 1);
    SortedMap<String, double[]> values = new TreeMap<>();
    for (Get g : gets) {
      values.put(g.key(), cpu.toDoubles(k.get(g.key()), size));
    }
    return values;
  }

  /**
   * The first non-finite entry of {@code values}, as (kernel name, index), if any.
   */
  static Optional<Map.Entry<String, Long>> firstNonFinite(Map<String, double[]> values) {
    for (Map.Entry<String, double[]> kernel : values.entrySet()) {
      OptionalLong bad = Npy.firstNonFinite(kernel.getValue());
      if (bad.isPresent()) {
        return Optional.of(Map.entry(kernel.getKey(), bad.getAsLong()));
      }
    }
    return Optional.empty();
  }

  /** The layer where the kernel between the input rows {@code x1Row} and {@code x2Row} breaks. */
  @Override
  public Optional<String> diagnose(double[] x1Row, double[] x2Row) {
    if (plan.patternNodes() != null) {
      return Optional.empty(); // the layer by layer run takes no graph patterns: the entry is named without its layer
    }
    // On the cpu backend the worker has no NDManager: a failing run can pay for one.
    try (NDManager scope = manager != null ? manager.newSubManager() : Tensors.newManager()) {
      return Diagnostics.firstNonFiniteLayer(kernelFn.layer(), block(scope, x1Row, 1),
          block(scope, x2Row, 1));
    }
  }

  private NDArray block(NDManager scope, double[] rows, int n) {
    return block(scope, rows, n, featureShape, dtype);
  }

  /** {@code n} input rows (row-major) as an array of shape {@code (n, *featureShape)} in {@code dtype}. */
  static NDArray block(NDManager scope, double[] rows, int n, long[] featureShape, NpyDType dtype) {
    long[] shape = new long[featureShape.length + 1];
    shape[0] = n;
    System.arraycopy(featureShape, 0, shape, 1, featureShape.length);
    return Tensors.create(scope, rows, new Shape(shape), dataType(dtype));
  }

  /** The array type of a dtype. */
  static DataType dataType(NpyDType dtype) {
    return dtype == NpyDType.FLOAT32 ? DataType.FLOAT32 : DataType.FLOAT64;
  }

  @Override
  public void teardown() {
    if (manager != null) {
      manager.close();
      manager = null;
    }
  }
}
