package dev.ntk.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.kernels.Kernel;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.KernelFn;
import dev.ntk.kernels.Plan;
import dev.ntk.kernels.Spatial;
import dev.ntk.kernels.engine.Backend;
import dev.ntk.kernels.engine.CpuBackend;
import dev.ntk.kernels.engine.Expr;
import dev.ntk.kernels.engine.Gram;
import dev.ntk.kernels.engine.NativeBuffer;
import dev.ntk.kernels.ModelSpec;
import dev.ntk.kernels.TensorFlowNative;
import dev.ntk.kernels.Tensors;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.FloatBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.TreeMap;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;

/**
 * A benchmark aid, not part of the library's API: the in-JVM halves of {@code bench/run.sh}.
 *
 * <p>Modes (each prints one {@code RESULT ...} line of {@code key=value} pairs that the script
 * parses, plus human-readable lines on stderr):
 *
 * <ul>
 *   <li>{@code data --n N --d D --seed S --dtype float32|float64 --out X.npy}: standard normal
 *       inputs of shape {@code (N, D)} drawn from {@code SplittableRandom(S)}, written in that
 *       dtype.
 *   <li>{@code inprocess --model M.json --x X.npy --dtype float32|float64 [--repeats 3]
 *       [--warmup-rows 256]}: the NNGP and NTK of the rows of X with themselves through {@link
 *       KernelFn#apply(NDArray)} in this process, after one warm-up on the first rows. Each repeat
 *       runs in its own sub-manager (closed after) and times the computation ({@code apply}, then
 *       reading the sum of each kernel, which makes sure that every op has run)
 *       and then the copy of both kernels to Java arrays ({@link Tensors#toDoubles}); the best
 *       total is reported, with its two parts.
 *   <li>{@code engine --model M.json --x X.npy --dtype float32|float64 [--repeats 3]}: the
 *       compiled plan alone on the {@code cpu} backend, Java arrays in and out, no DJL arrays.
 *   <li>{@code plan --model M.json --d D}: the work per kernel entry of the model's plan (GEMM
 *       flops, per-pair steps by operation).
 *   <li>{@code native-load}: milliseconds from JVM start to the result of the first TensorFlow op
 *       (extracting the native libraries into the cache folder if needed, loading the engine,
 *       one small op). Run it in a fresh JVM, with {@code -Dntk.cache=DIR} to choose the cache.
 * </ul>
 */
public final class Bench {
  private Bench() {}

  public static void main(String[] args) throws Exception {
    if (args.length == 0) {
      usage();
      System.exit(2);
    }
    Map<String, String> opts = options(Arrays.copyOfRange(args, 1, args.length));
    switch (args[0]) {
      case "data" -> data(opts);
      case "inprocess" -> inProcess(opts);
      case "native-load" -> nativeLoad();
      case "plan" -> plan(opts);
      case "engine" -> engine(opts);
      case "first-touch" -> firstTouch(opts);
      default -> {
        usage();
        System.exit(2);
      }
    }
  }

  private static void usage() {
    System.err.println("usage: Bench data --n N (--d D | --shape H,W,C) --seed S --dtype float32|float64 --out X.npy\n"
        + "       Bench inprocess --model M.json --x X.npy --dtype float32|float64 [--repeats 3]"
        + " [--warmup-rows 256] [--backend auto|cpu|tensorflow]\n"
        + "       Bench plan --model M.json --d D\n"
        + "       Bench engine --model M.json --x X.npy --dtype float32|float64 [--repeats 3] [--pattern A.npy]"
        + " [--spatial reduced|diagonal|full]\n"
        + "       Bench native-load   (with -Dntk.cache=DIR)\n"
        + "       Bench first-touch [--n 8192] [--d 784] [--repeats 3] [--blas-start ROWS]");
  }

  /**
   * What new memory and a JVM's first GEMMs cost, for {@code bin/ntk kernel}'s in-process path:
   * per repeat, a new float32 native buffer of {@code n x n} values written once per 4 KiB page
   * (its first touch) and written again, and the gram of {@code n} random rows of dimension {@code
   * d} (float32, x with itself, as {@code Gram.into} computes it) into that buffer. The first repeat
   * is a new JVM's; {@code --blas-start ROWS} first runs one small product of that many rows.
   */
  private static void firstTouch(Map<String, String> o) {
    int n = Integer.parseInt(o.getOrDefault("n", "8192"));
    int d = Integer.parseInt(o.getOrDefault("d", "784"));
    int repeats = Integer.parseInt(o.getOrDefault("repeats", "3"));
    long count = (long) n * n;
    float[] x = new float[Math.multiplyExact(n, d)];
    SplittableRandom rng = new SplittableRandom(0);
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) rng.nextGaussian();
    }
    int start = Integer.parseInt(o.getOrDefault("blas-start", "0"));
    if (start > 0) {
      long t = System.nanoTime();
      Gram.of(Arrays.copyOf(x, start * d), null, start, start, d, 1).close();
      System.out.printf(Locale.ROOT, "RESULT first-touch blas_start_rows=%d seconds=%.3f%n", start, (System.nanoTime() - t) / 1e9);
    }
    for (int r = 0; r < repeats; r++) {
      try (NativeBuffer a = NativeBuffer.allocate(count, false)) {
        FloatBuffer fa = (FloatBuffer) a.buffer();
        long t0 = System.nanoTime();
        touchPages(fa, 1f);
        long t1 = System.nanoTime();
        touchPages(fa, 2f);
        long t2 = System.nanoTime();
        Gram.into(x, null, n, n, d, a.buffer());
        long t3 = System.nanoTime();
        System.out.printf(Locale.ROOT, "RESULT first-touch repeat=%d mib=%d touch_seconds=%.3f again_seconds=%.3f "
            + "gram_n=%d gram_d=%d gram_seconds=%.3f%n", r, count * 4 >> 20, (t1 - t0) / 1e9, (t2 - t1) / 1e9, n, d,
            (t3 - t2) / 1e9);
      }
    }
  }

  private static void touchPages(FloatBuffer b, float value) {
    for (int i = 0; i < b.capacity(); i += 1024) {
      b.put(i, value);
    }
  }

  private static void data(Map<String, String> o) throws IOException {
    int n = Integer.parseInt(required(o, "n"));
    long[] perExample = o.containsKey("shape")
        ? Arrays.stream(o.get("shape").split(",")).mapToLong(Long::parseLong).toArray()
        : new long[] {Long.parseLong(required(o, "d"))};
    int d = Math.toIntExact(Arrays.stream(perExample).reduce(1, Math::multiplyExact));
    long seed = Long.parseLong(o.getOrDefault("seed", "0"));
    NpyDType dtype = NpyDType.fromName(o.getOrDefault("dtype", "float64"));
    Path out = Paths.get(required(o, "out"));
    SplittableRandom rng = new SplittableRandom(seed);
    double[] values = new double[Math.multiplyExact(n, d)];
    for (int i = 0; i < values.length; i++) {
      values[i] = rng.nextGaussian();
    }
    if (out.toAbsolutePath().getParent() != null) {
      Files.createDirectories(out.toAbsolutePath().getParent());
    }
    long[] shape = new long[perExample.length + 1];
    shape[0] = n;
    System.arraycopy(perExample, 0, shape, 1, perExample.length);
    Npy.write(out, new NpyArray(shape, dtype, values));
    System.out.printf(Locale.ROOT, "RESULT data n=%d d=%d seed=%d dtype=%s out=%s%n",
        n, d, seed, dtype.typeName(), out);
  }

  private static void inProcess(Map<String, String> o) throws IOException {
    String json = Files.readString(Paths.get(required(o, "model")), StandardCharsets.UTF_8);
    NpyArray x = Npy.read(Paths.get(required(o, "x")));
    String dtypeName = o.getOrDefault("dtype", "float64");
    DataType dtype = switch (dtypeName) {
      case "float32" -> DataType.FLOAT32;
      case "float64" -> DataType.FLOAT64;
      default -> throw new IllegalArgumentException("dtype must be float32 or float64: " + dtypeName);
    };
    int repeats = Integer.parseInt(o.getOrDefault("repeats", "3"));
    int warmupRows = Integer.parseInt(o.getOrDefault("warmup-rows", "256"));
    long n = x.shape()[0];
    long rowSize = x.data().length / Math.max(n, 1);
    Backend backend = Backend.of(o.getOrDefault("backend", "auto"));
    KernelFn fn = ModelSpec.parse(json).kernelFn().withBackend(backend);

    double best = Double.POSITIVE_INFINITY;
    double bestApply = 0; // compute: apply and waiting for its result
    double bestCopy = 0;
    double checksum = 0;
    try (NDManager m = Tensors.newManager()) {
      int w = (int) Math.min(warmupRows, n);
      try (NDManager sub = m.newSubManager()) {
        double[] head = Arrays.copyOf(x.data(), Math.toIntExact(w * rowSize));
        NDArray xw = Tensors.create(sub, head, shapeOf(x.shape(), w), dtype);
        Kernel k = fn.apply(xw);
        Tensors.toDoubles(k.nngp());
        Tensors.toDoubles(k.ntk());
      }
      for (int r = 0; r < repeats; r++) {
        try (NDManager sub = m.newSubManager()) {
          NDArray xs = Tensors.create(sub, x.data(), new Shape(x.shape()), dtype);
          long t0 = System.nanoTime();
          Kernel k = fn.apply(xs);
          // Reading one scalar that depends on each kernel makes sure every op has run (ntk runs
          // TensorFlow eagerly and synchronously; this keeps the timing right if that changes).
          double sums = Tensors.toDoubles(k.nngp().sum())[0] + Tensors.toDoubles(k.ntk().sum())[0];
          long t1 = System.nanoTime();
          double[] nngp = Tensors.toDoubles(k.nngp());
          double[] ntk = Tensors.toDoubles(k.ntk());
          long t2 = System.nanoTime();
          double compute = (t1 - t0) / 1e9;
          double copy = (t2 - t1) / 1e9;
          System.err.printf(Locale.ROOT, "repeat %d: compute %.3f s, copy-out %.3f s%n", r, compute, copy);
          if (compute + copy < best) {
            best = compute + copy;
            bestApply = compute;
            bestCopy = copy;
          }
          checksum = ntk[ntk.length - 1] + nngp[0] + 0 * sums;
        }
      }
    }
    System.out.printf(Locale.ROOT,
        "RESULT inprocess dtype=%s backend=%s n=%d seconds=%.6f compute_seconds=%.6f copy_seconds=%.6f "
            + "entries_per_s=%.6g repeats=%d checksum=%.6g%n",
        dtypeName, backend.resolve().key(), n, best, bestApply, bestCopy, (double) n * n / best,
        repeats, checksum);
  }

  /**
   * The engine alone: {@link Plan#run} on the {@code cpu} backend, from Java arrays to Java arrays
   * (all cores), best of {@code --repeats} after one warm-up run; no DJL arrays in or out.
   */
  private static void engine(Map<String, String> o) throws IOException {
    String json = Files.readString(Paths.get(required(o, "model")), StandardCharsets.UTF_8);
    NpyArray x = Npy.read(Paths.get(required(o, "x")));
    String dtype = o.getOrDefault("dtype", "float64");
    int repeats = Integer.parseInt(o.getOrDefault("repeats", "3"));
    int n = Math.toIntExact(x.shape()[0]);
    // --spatial: kernels that keep the last layer's pixels (dev.ntk.kernels.Spatial), for their cost
    Spatial spatial = Spatial.parse(o.getOrDefault("spatial", "reduced"));
    Plan plan = Plan.compile(ModelSpec.parse(json), new Shape(x.shape()).slice(1), EnumSet.allOf(Get.class), spatial);
    // A graph model reads its inputs' patterns (--pattern A.npy, (N, nodes, nodes)).
    NpyArray a = o.containsKey("pattern") ? Npy.read(Paths.get(o.get("pattern"))) : null;
    Map<String, Object> patterns = a == null ? Map.of() : plan.patternInputs(a.data(), a.shape(), null, null, n, n,
        dtype.equals("float32") ? new float[0] : new double[0]);
    int threads = Integer.parseInt(o.getOrDefault("threads",
        Integer.toString(Runtime.getRuntime().availableProcessors())));
    double best = Double.POSITIVE_INFINITY;
    double bestCpu = Double.POSITIVE_INFINITY;
    double first = 0;
    var os = (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
    for (int r = 0; r <= repeats; r++) {
      long c0 = os.getProcessCpuTime();
      long t0 = System.nanoTime();
      if (dtype.equals("float32")) {
        CpuBackend<float[]> cpu = CpuBackend.float32();
        plan.run(cpu, cpu.fromDoubles(x.data()), null, patterns, n, n, threads);
      } else {
        plan.run(CpuBackend.float64(), x.data(), null, patterns, n, n, threads);
      }
      double s = (System.nanoTime() - t0) / 1e9;
      double cpuSeconds = (os.getProcessCpuTime() - c0) / 1e9;
      System.err.printf(Locale.ROOT, "%s %d: %.3f s (cpu %.3f s)%n", r == 0 ? "warm-up" : "repeat", r, s, cpuSeconds);
      if (r > 0) {
        best = Math.min(best, s);
        bestCpu = Math.min(bestCpu, cpuSeconds);
      } else {
        first = s;
      }
    }
    System.out.printf(Locale.ROOT, "RESULT engine dtype=%s n=%d seconds=%.6f ms_per_entry=%.6g cpu_seconds=%.6f "
        + "threads=%d repeats=%d first_seconds=%.3f spatial=%s%n", dtype, n, best, best * 1e3 / ((double) n * n),
        bestCpu, threads, repeats, first, spatial.name().toLowerCase(Locale.ROOT));
  }

  /**
   * The work per kernel entry of a model's plan: the GEMM's {@code 2 d} flops, and the per-pair
   * steps by operation ({@code atan2} and {@code sqrt} are counted as one operation each).
   */
  private static void plan(Map<String, String> o) throws IOException {
    String json = Files.readString(Paths.get(required(o, "model")), StandardCharsets.UTF_8);
    if (o.containsKey("shape")) {
      blockPlan(json, Arrays.stream(o.get("shape").split(",")).mapToLong(Long::parseLong).toArray(),
          Long.parseLong(o.getOrDefault("budget", Long.toString(4L << 30))));
      return;
    }
    long d = Long.parseLong(required(o, "d"));
    Plan plan = Plan.compile(ModelSpec.parse(json), new Shape(d), EnumSet.allOf(Get.class));
    Map<Expr.Op, Integer> ops = new TreeMap<>();
    for (Expr e : plan.schedule().tileSteps()) {
      ops.merge(e.op(), 1, Integer::sum);
    }
    StringBuilder line = new StringBuilder("RESULT plan gemm_flops=" + 2 * d + " steps="
        + plan.schedule().tileSteps().size() + " registers=" + plan.schedule().registerCount());
    ops.forEach((op, count) -> line.append(' ').append(op.name().toLowerCase(Locale.ROOT)).append('=').append(count));
    System.out.println(line);
  }

  /**
   * The work of a plan on images, per pass of the {@code cpu} backend's block path (per row input,
   * per column input, per pair), in float32; and the largest square tile within {@code budget}
   * bytes on each backend.
   */
  private static void blockPlan(String json, long[] shape, long budget) {
    Plan plan = Plan.compile(ModelSpec.parse(json), new Shape(shape), EnumSet.allOf(Get.class));
    var s = plan.schedule();
    long[] row = s.blockWork(0, 4);
    long[] col = s.blockWork(1, 4);
    long[] pair = s.blockWork(2, 4);
    System.out.printf(Locale.ROOT, "RESULT plan layout=%s diagonal_spatial=%s pair_flops=%d pair_bytes=%d "
        + "row_flops=%d row_bytes=%d col_flops=%d pair_steps=%d registers=%d largest_tile_cpu=%d "
        + "largest_tile_tensorflow=%d budget=%d%n",
        s.inputLayout(Plan.NNGP), plan.requirements().diagonalSpatial(), pair[0], pair[1], row[0], row[1], col[0],
        s.tileSteps().size(), s.registerCount(), plan.largestTile(1 << 16, budget, 4, Backend.CPU),
        plan.largestTile(1 << 16, budget, 4, Backend.TENSORFLOW), budget);
  }

  private static Shape shapeOf(long[] shape, long rows) {
    long[] s = shape.clone();
    s[0] = rows;
    return new Shape(s);
  }

  private static void nativeLoad() throws IOException {
    long t0 = System.nanoTime();
    long jvmStart = ManagementFactory.getRuntimeMXBean().getStartTime();
    String cache = System.getProperty("ntk.cache", "");
    boolean cacheWasEmpty = cache.isEmpty() || isEmptyOrMissing(Paths.get(cache));
    Path lib = TensorFlowNative.ensureConfigured();
    long t1 = System.nanoTime();
    double value;
    long t2;
    try (NDManager m = Tensors.newManager()) {
      t2 = System.nanoTime();
      NDArray a = m.create(new float[] {1, 2, 3, 4}, new Shape(2, 2));
      value = a.matMul(a).sum().getFloat();
    }
    long t3 = System.nanoTime();
    long now = System.currentTimeMillis();
    System.out.printf(Locale.ROOT,
        "RESULT native-load jvm_start_to_result_ms=%d main_to_result_ms=%.1f configure_ms=%.1f "
            + "engine_ms=%.1f first_op_ms=%.1f cache_was_empty=%s value=%.1f library=%s%n",
        now - jvmStart, (t3 - t0) / 1e6, (t1 - t0) / 1e6, (t2 - t1) / 1e6, (t3 - t2) / 1e6,
        cacheWasEmpty, value, lib);
  }

  private static boolean isEmptyOrMissing(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      return true;
    }
    try (Stream<Path> s = Files.list(dir)) {
      return s.findAny().isEmpty();
    }
  }

  private static Map<String, String> options(String[] args) {
    Map<String, String> out = new HashMap<>();
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (!a.startsWith("--")) {
        throw new IllegalArgumentException("unexpected argument " + a);
      }
      String key = a.substring(2);
      String value;
      int eq = key.indexOf('=');
      if (eq >= 0) {
        value = key.substring(eq + 1);
        key = key.substring(0, eq);
      } else {
        if (i + 1 >= args.length) {
          throw new IllegalArgumentException(a + " needs a value");
        }
        value = args[++i];
      }
      out.put(key, value);
    }
    return out;
  }

  private static String required(Map<String, String> o, String key) {
    String v = o.get(key);
    if (v == null) {
      throw new IllegalArgumentException("--" + key + " is required");
    }
    return v;
  }
}
