package dev.ntk.kernels.cuda;

import dev.ntk.kernels.Plan;
import dev.ntk.kernels.engine.CpuBackend;
import dev.ntk.kernels.engine.Expr;
import dev.ntk.kernels.engine.Gram;
import dev.ntk.kernels.engine.Layout;
import dev.ntk.kernels.engine.Schedule;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The {@code cuda} engine: runs a {@link Plan} as the kernels of its {@link CudaSource} on a
 * {@link Device}. Without pixel blocks the input gram is one GEMM (cuBLAS on a GPU), the variances
 * its diagonal for x1 with itself; pass 0 runs once per row input, pass 1 once per column input,
 * pass 2 once per pair, one thread each. With pixel blocks the kernels take the raw images and
 * compute their pixel grams themselves, one thread block per item, in batches whose scratch fits
 * {@link Device#scratchBudget}; for x1 with itself only the pairs on and above the diagonal are
 * computed when every output is one number per pair and the plan is {@link Plan#symmetric}, and
 * mirrored.
 *
 * <pre>{@code
 * try (Device gpu = CudaDevice.open()) {
 *   Map<String, Object> k = new CudaEngine(gpu).run(plan, x1, null, n1, n1);
 *   double[] ntk = (double[]) k.get("ntk");
 * }
 * }</pre>
 *
 * <p>The plan's further inputs (masks, graph patterns: {@link Plan#inputs}) are uploaded as
 * buffers ({@link CudaSource#bufferInputs}). Every step of a plan has a kernel (attention and
 * constant pixel blocks included) but a user's Java function, which is refused ({@link
 * CudaSource#runs}).
 */
public final class CudaEngine {
  private final Device device;
  private final Map<String, Object> modules = new ConcurrentHashMap<>();
  private final Map<Plan, CudaSource> float32Sources = java.util.Collections.synchronizedMap(new java.util.WeakHashMap<>());
  private final Map<Plan, CudaSource> float64Sources = java.util.Collections.synchronizedMap(new java.util.WeakHashMap<>());

  public CudaEngine(Device device) {
    this.device = device;
  }

  /**
   * The system property that names the device of {@link #shared}: a CUDA device's ordinal ({@code
   * 0}, the default: the first of those {@code CUDA_VISIBLE_DEVICES} leaves) or {@code host}, the
   * generated source compiled by the host's C compiler ({@link HostDevice}: slow, for checking the
   * generated kernels and the paths that call them on a machine without a GPU).
   */
  public static final String DEVICE_PROPERTY = "ntk.cuda.device";

  /**
   * The engine of this JVM's device, the one {@link #DEVICE_PROPERTY} names (opened on first use,
   * kept until the JVM exits).
   */
  public static CudaEngine shared() {
    return Shared.ENGINE;
  }

  private static final class Shared {
    static final CudaEngine ENGINE = new CudaEngine(open(System.getProperty(DEVICE_PROPERTY, "0")));
  }

  /**
   * The device {@code name}d as {@link #DEVICE_PROPERTY} names one: a CUDA device's ordinal, or
   * {@code host}.
   *
   * @throws IllegalArgumentException for any other name
   * @throws IllegalStateException if there is no CUDA driver or device
   */
  public static Device open(String name) {
    if (name.trim().equals("host")) {
      return new HostDevice();
    }
    try {
      return CudaDevice.open(Integer.parseInt(name.trim()));
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(DEVICE_PROPERTY + " is a CUDA device's number or host, not \"" + name
          + "\"");
    }
  }

  /**
   * Why {@link #shared} cannot run here (no CUDA driver or device, unless {@link #DEVICE_PROPERTY}
   * is {@code host}), or null if it can.
   */
  public static String unavailable() {
    return System.getProperty(DEVICE_PROPERTY, "0").trim().equals("host") ? null : CudaDevice.unavailable();
  }

  /** The device it runs on. */
  public Device device() {
    return device;
  }

  /** The generated source of {@code plan} in float32 or float64 (cached per plan and dtype). */
  public CudaSource source(Plan plan, boolean float32) {
    Schedule s = plan.schedule();
    Layout layout = s.inputLayout(Plan.NNGP);
    int channels = layout.isScalar() ? 1 : Math.toIntExact(plan.requirements().input().channels());
    return (float32 ? float32Sources : float64Sources).computeIfAbsent(plan,
        k -> CudaSource.generate(s, float32, channels));
  }

  /**
   * The outputs of {@code plan} for {@code x1 (n1, ...)} and {@code x2 (n2, ...)} (row-major, both
   * {@code double[]} or both {@code float[]}; {@code x2 == null} for x1 with itself): each output
   * name to a new array of the inputs' dtype, {@code (n1, n2)} times its block size for a pair
   * output, {@code n1} or {@code n2} times it for a per-input one (as the {@code cpu} engine).
   * Inputs are masked with the plan's mask constant, if any ({@link Plan#inputs}).
   *
   * @throws IllegalArgumentException for a plan that reads graph patterns ({@link #run(Plan, Object,
   *     Object, Map, int, int)})
   */
  public Map<String, Object> run(Plan plan, Object x1, Object x2, int n1, int n2) {
    return run(plan, x1, x2, Map.of(), n1, n2);
  }

  /**
   * As {@link #run(Plan, Object, Object, int, int)} with the plan inputs {@code inputs}: a graph
   * network's patterns {@link Plan#PATTERN1}, {@link Plan#PATTERN2} ({@link Plan#patternInputs});
   * the masks {@link Plan#KEPT1}, {@link Plan#KEPT2} of a plan with a mask constant are made from
   * the inputs, as the {@code cpu} engine makes them ({@link Plan#inputs}).
   *
   * @throws IllegalArgumentException if the plan reads graph patterns and none were given, or an
   *     example is fully masked
   */
  public Map<String, Object> run(Plan plan, Object x1, Object x2, Map<String, ?> inputs, int n1, int n2) {
    if (x2 == null && n1 != n2) {
      throw new IllegalArgumentException("x1 with itself is square, got " + n1 + " x " + n2);
    }
    Plan.Inputs<Object> in = plan.inputs(x1, x2, inputs, n1, n2);
    return run(plan.schedule(), source(plan, x1 instanceof float[]),
        Math.toIntExact(plan.requirements().input().shape().size()), plan.symmetric(), in.x1(), in.x2(),
        in.further(), n1, n2);
  }

  /**
   * The outputs of {@code s}, generated as {@code src}, for raw inputs of {@code d} values each and
   * the further plan inputs {@code further} (by name, the dtype of {@code x1} or the other one);
   * {@code symmetric}: x1 with itself may be computed as a triangle and mirrored.
   */
  Map<String, Object> run(Schedule s, CudaSource src, int d, boolean symmetric, Object x1, Object x2,
      Map<String, ?> further, int n1, int n2) {
    boolean f32 = x1 instanceof float[];
    boolean same = x2 == null;
    Object module = modules.computeIfAbsent(src.source(), device::load);
    int bytes = f32 ? 4 : 8;
    List<Long> allocated = new ArrayList<>();
    Map<String, Long> buffers = new HashMap<>();
    try {
      java.util.function.LongUnaryOperator alloc = n -> {
        long a = device.allocate(Math.max(1, n) * bytes);
        allocated.add(a);
        return a;
      };
      long x1At = 0;
      long x2At = 0;
      if (src.blocks()) {
        x1At = alloc.applyAsLong(n1 * (long) d);
        device.upload(x1, x1At);
        x2At = x1At;
        if (!same) {
          x2At = alloc.applyAsLong(n2 * (long) d);
          device.upload(x2, x2At);
        }
      } else {
        scalarInputs(module, x1, same ? x1 : x2, n1, n2, d, same, alloc, buffers, f32);
      }
      Map<Object, Long> uploaded = new java.util.IdentityHashMap<>();
      for (Expr input : src.bufferInputs()) {
        String name = "in:" + input.name();
        if (!buffers.containsKey(name)) {
          buffers.put(name, upload(input, further, n1, n2, f32, alloc, uploaded));
        }
      }
      for (CudaSource.Export e : src.exports()) {
        buffers.put("ex:" + e.name(), alloc.applyAsLong((long) (e.pass() == 0 ? n1 : n2) * e.size()));
      }
      Map<String, Long> outSizes = new LinkedHashMap<>();
      s.outputs().forEach((name, e) -> outSizes.put(name, (long) n1 * n2 * e.layout().size()));
      s.rowOutputs().forEach((name, e) -> outSizes.put(name, (long) n1 * e.layout().size()));
      s.colOutputs().forEach((name, e) -> outSizes.put(name, (long) n2 * e.layout().size()));
      outSizes.forEach((name, n) -> buffers.put("out:" + name, alloc.applyAsLong(n)));
      // A rule that is not symmetric in its inputs (neural-tangents' quadrature, Plan#symmetric) gets
      // x1 with itself whole, as on the cpu engine.
      boolean mirror = same && symmetric && s.outputs().values().stream().allMatch(e -> e.layout().isScalar());
      int[][] pairs = src.blocks() ? pairs(n1, n2, mirror) : null;
      long piAt = 0;
      long pjAt = 0;
      if (pairs != null) {
        piAt = device.allocate(Math.max(1, pairs[0].length) * 4L);
        allocated.add(piAt);
        pjAt = device.allocate(Math.max(1, pairs[1].length) * 4L);
        allocated.add(pjAt);
        device.upload(pairs[0], piAt);
        device.upload(pairs[1], pjAt);
      }
      long[] counts = {n1, n2, pairs != null ? pairs[0].length : (long) n1 * n2};
      for (int pass = 0; pass < 3; pass++) {
        List<CudaSource.Launch> launches = src.launches(pass);
        if (launches.isEmpty() || counts[pass] == 0) {
          continue;
        }
        long[] args = new long[10 + src.buffers().size()];
        args[2] = n1;
        args[3] = n2;
        args[4] = piAt;
        args[5] = pjAt;
        args[7] = x1At;
        args[8] = x2At;
        List<String> names = src.buffers();
        for (int b = 0; b < names.size(); b++) {
          args[10 + b] = buffers.get(names.get(b));
        }
        if (src.blocks()) {
          long perItem = Math.max(1, src.scratchPerItem(pass)) * bytes;
          long batch = Math.max(1, Math.min(counts[pass], device.scratchBudget() / perItem));
          long scratch = device.allocate(batch * perItem);
          try {
            args[6] = scratch;
            int threads = device.threads(CudaSource.BLOCK_THREADS);
            for (long base = 0; base < counts[pass]; base += batch) {
              args[0] = base;
              args[1] = Math.min(batch, counts[pass] - base);
              for (CudaSource.Launch l : launches) {
                // Few items (a GlobalAvgPool tile of a few pairs): each item's blocks split over several
                // thread blocks, so that the device still has work for all of its multiprocessors.
                long chunks = l.whole() ? 1 : Math.max(1, Math.min((device.parallelBlocks() + args[1] - 1) / args[1],
                    (l.entries() + threads - 1) / threads));
                args[9] = chunks;
                device.launch(module, l.kernel(), args[1] * chunks, threads, args);
              }
            }
          } finally {
            device.free(scratch);
          }
        } else {
          int threads = device.threads(CudaSource.ITEM_THREADS);
          long chunk = (long) threads * Integer.MAX_VALUE;
          args[9] = 1;
          for (long base = 0; base < counts[pass]; base += chunk) {
            args[0] = base;
            args[1] = Math.min(chunk, counts[pass] - base);
            for (CudaSource.Launch l : launches) {
              device.launch(module, l.kernel(), (args[1] + threads - 1) / threads, threads, args);
            }
          }
        }
      }
      Map<String, Object> out = new LinkedHashMap<>();
      for (Map.Entry<String, Long> o : outSizes.entrySet()) {
        Object a = f32 ? new float[Math.toIntExact(o.getValue())] : new double[Math.toIntExact(o.getValue())];
        device.download(buffers.get("out:" + o.getKey()), a);
        out.put(o.getKey(), a);
      }
      if (mirror) {
        for (String name : s.outputs().keySet()) {
          mirror(out.get(name), n1);
        }
      }
      // a rule that tells an example with itself apart (Dropout) gives the diagonal its own values
      return Plan.sameExampleOnDiagonal(s, out, same, n1);
    } finally {
      for (long a : allocated) {
        device.free(a);
      }
    }
  }

  /**
   * Plan input {@code input} from {@code further} on the device, in the engine's dtype: {@code n1},
   * {@code n2} or {@code n1 n2} blocks as its domain says. An array given for two inputs (the row
   * inputs' masks or patterns again, for x1 with itself) is uploaded once.
   */
  private long upload(Expr input, Map<String, ?> further, int n1, int n2, boolean f32,
      java.util.function.LongUnaryOperator alloc, Map<Object, Long> uploaded) {
    Object value = further.get(input.name());
    if (value == null) {
      throw new IllegalArgumentException("the plan reads input " + input.name() + ", which was not given: the "
          + "cuda engine computes nngp, var1 and var2 from the raw inputs and takes the masks and graph patterns "
          + "of Plan.inputs");
    }
    Long at = uploaded.get(value);
    if (at != null) {
      return at;
    }
    long items = switch (input.domain()) {
      case ROW -> n1;
      case COL -> n2;
      default -> (long) n1 * n2;
    };
    long count = items * input.layout().size();
    long length = value instanceof double[] a ? a.length : value instanceof float[] f ? f.length : -1;
    if (length != count) {
      throw new IllegalArgumentException("plan input " + input.name() + " must hold " + count + " numbers ("
          + items + " inputs of " + input.layout().size() + "), got " + (length < 0
          ? "a " + value.getClass().getSimpleName() : length + ""));
    }
    Object typed = value instanceof float[] f ? (f32 ? f : CpuBackend.float32().toDoubles(f, f.length))
        : dtype((double[]) value, f32);
    long address = alloc.applyAsLong(count);
    device.upload(typed, address);
    uploaded.put(value, address);
    return address;
  }

  /** The gram and variances of a plan without pixel blocks, on the device. */
  private void scalarInputs(Object module, Object x1, Object x2, int n1, int n2, int d, boolean same,
      java.util.function.LongUnaryOperator alloc, Map<String, Long> buffers, boolean f32) {
    long gram = alloc.applyAsLong((long) n1 * n2);
    device.gram(x1, x2, n1, n2, d, gram);
    buffers.put("in:" + Plan.NNGP, gram);
    long var1 = alloc.applyAsLong(n1);
    long var2 = var1;
    if (same) {
      // The variances of x1 with itself are the gram's diagonal, to the bit (see Plan.run).
      int threads = device.threads(CudaSource.ITEM_THREADS);
      device.launch(module, "ntk_diagonal", (n1 + threads - 1) / threads, threads, n1, gram, var1);
    } else {
      device.upload(dtype(Gram.variances(x1, n1, d), f32), var1);
      var2 = alloc.applyAsLong(n2);
      device.upload(dtype(Gram.variances(x2, n2, d), f32), var2);
    }
    buffers.put("in:" + Plan.VAR1, var1);
    buffers.put("in:" + Plan.VAR2, var2);
  }

  private static Object dtype(double[] values, boolean f32) {
    return f32 ? CpuBackend.float32().fromDoubles(values) : values;
  }

  /** The pairs of a tile: all of them, or those on and above the diagonal. */
  private static int[][] pairs(int n1, int n2, boolean upper) {
    int count = Math.toIntExact(upper ? (long) n1 * (n1 + 1) / 2 : (long) n1 * n2);
    int[] pi = new int[count];
    int[] pj = new int[count];
    int k = 0;
    for (int i = 0; i < n1; i++) {
      for (int j = upper ? i : 0; j < n2; j++) {
        pi[k] = i;
        pj[k] = j;
        k++;
      }
    }
    return new int[][] {pi, pj};
  }

  /** Copies the upper triangle of the {@code n x n} matrix onto the lower one. */
  private static void mirror(Object m, int n) {
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < i; j++) {
        if (m instanceof double[] a) {
          a[i * n + j] = a[j * n + i];
        } else {
          float[] a = (float[]) m;
          a[i * n + j] = a[j * n + i];
        }
      }
    }
  }
}
