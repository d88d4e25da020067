import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Layer;
import dev.ntk.kernels.ModelSpec;
import dev.ntk.kernels.Plan;
import dev.ntk.kernels.cuda.CudaDevice;
import dev.ntk.kernels.cuda.CudaEngine;
import dev.ntk.kernels.cuda.Device;
import dev.ntk.kernels.cuda.HostDevice;
import dev.ntk.kernels.engine.CpuBackend;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

/**
 * The device check of {@code bench/gpu/check.sh} (not part of any jar: prepare.sh compiles it
 * against the kernels jar). For each case (the CNN benchmark with a Flatten and a GlobalAvgPool
 * readout, the depth-21 fully connected network) and dtype, it times the {@code cuda} engine on
 * x with itself (first run, which compiles the kernels with NVRTC, then the best of the repeats),
 * writes the kernels and the inputs as .npy for the neural-tangents peer, and checks the first
 * {@code check} rows against the {@code cpu} engine (float64 to 1e-12). Results go to {@code
 * OUT/results.tsv} and {@code OUT/results.md}; the exit status is 1 if a float64 check fails.
 *
 * <pre>
 * java -cp ... GpuCheck --root REPO --out OUT [--device cuda|host] [--flatten-n 256] [--gap-n 8]
 *     [--fc-n 4096] [--fc-d 784] [--check 32] [--repeats 3] [--cases flatten,gap,fc21]
 * java -cp ... GpuCheck --root REPO --sources DIR [--cases ...]   (only writes the generated sources)
 * </pre>
 */
public final class GpuCheck {
  private GpuCheck() {}

  public static void main(String[] args) throws Exception {
    Map<String, String> o = new LinkedHashMap<>();
    for (int k = 0; k + 1 < args.length; k += 2) {
      o.put(args[k].replaceFirst("^--", ""), args[k + 1]);
    }
    Path root = Path.of(o.getOrDefault("root", "."));
    Path out = Path.of(o.getOrDefault("out", "bench/out/gpu"));
    Files.createDirectories(out);
    int repeats = Integer.parseInt(o.getOrDefault("repeats", "3"));
    int check = Integer.parseInt(o.getOrDefault("check", "32"));
    List<String> cases = List.of(o.getOrDefault("cases", "flatten,gap,fc21").split(","));
    boolean host = o.getOrDefault("device", "cuda").equals("host");
    if (o.containsKey("sources")) {
      sources(root, Path.of(o.get("sources")), cases, o);
      return;
    }
    int threads = Runtime.getRuntime().availableProcessors();
    List<String> rows = new ArrayList<>();
    boolean ok = true;
    try (Device device = host ? new HostDevice() : CudaDevice.open(0)) {
      CudaEngine engine = new CudaEngine(device);
      System.out.println("device: " + device.name());
      Files.writeString(out.resolve("device.txt"), device.name() + "\n");
      for (String c : cases) {
        Case benchmark = of(c, o);
        String model = benchmark.model();
        long[] shape = benchmark.shape();
        int n = benchmark.n();
        Layer layer = ModelSpec.read(root.resolve(model));
        Plan plan = Plan.compile(layer, new Shape(shape), EnumSet.of(Get.NNGP, Get.NTK));
        int d = Math.toIntExact(new Shape(shape).size());
        for (String dtype : List.of("float32", "float64")) {
          boolean f32 = dtype.equals("float32");
          Random r = new Random(0);
          double[] xd = new double[n * d];
          for (int k = 0; k < xd.length; k++) {
            xd[k] = r.nextGaussian();
          }
          Object x = f32 ? floats(xd) : xd;
          long[] xShape = new long[shape.length + 1];
          xShape[0] = n;
          System.arraycopy(shape, 0, xShape, 1, shape.length);
          npy(out.resolve("x-" + c + "-" + dtype + ".npy"), x, xShape);
          long t0 = System.nanoTime();
          Map<String, Object> k = engine.run(plan, x, null, n, n);
          double first = (System.nanoTime() - t0) / 1e9;
          double best = Double.MAX_VALUE;
          for (int rep = 0; rep < repeats; rep++) {
            long t = System.nanoTime();
            k = engine.run(plan, x, null, n, n);
            best = Math.min(best, (System.nanoTime() - t) / 1e9);
          }
          for (String name : List.of("nngp", "ntk")) {
            npy(out.resolve(name + "-" + c + "-" + dtype + ".npy"), k.get(name), new long[] {n, n});
          }
          int m = Math.min(n, check);
          Object xs = f32 ? java.util.Arrays.copyOf((float[]) x, m * d) : java.util.Arrays.copyOf((double[]) x, m * d);
          long c0 = System.nanoTime();
          Map<String, ?> cpu = f32 ? plan.run(CpuBackend.float32(), (float[]) xs, null, m, m, threads)
              : plan.run(CpuBackend.float64(), (double[]) xs, null, m, m, threads);
          double cpuSeconds = (System.nanoTime() - c0) / 1e9;
          Map<String, Object> gpu = engine.run(plan, xs, null, m, m);
          double err = 0;
          for (String name : List.of("nngp", "ntk")) {
            err = Math.max(err, relative(doubles(gpu.get(name)), doubles(cpu.get(name))));
          }
          boolean pass = f32 ? err < 1e-4 : err < 1e-12;
          ok &= pass;
          String row = String.format(Locale.ROOT, "%s\t%d\t%s\t%.3f\t%.6f\t%.6g\t%d\t%.3g\t%s\t%.3f", c, n, dtype,
              first, best, best * 1000 / ((double) n * n), m, err, pass ? "pass" : "FAIL", cpuSeconds);
          System.out.println(row);
          rows.add(row);
        }
      }
    }
    StringBuilder tsv = new StringBuilder("case\tN\tdtype\tfirst_s\tbest_s\tms_per_entry\tcheck_n\tcheck_rel_err"
        + "\tcheck\tcpu_check_s\n");
    StringBuilder md = new StringBuilder("| case | N | dtype | first run (s, NVRTC included) | best of " + repeats
        + " (s) | ms per NTK entry | cpu = cuda on the first rows (N, max relative Frobenius difference) |\n"
        + "|---|---|---|---|---|---|---|\n");
    for (String row : rows) {
      tsv.append(row).append('\n');
      String[] f = row.split("\t");
      md.append(String.format("| %s | %s | %s | %s | %s | %s | %s, %s (%s) |%n", f[0], f[1], f[2], f[3], f[4], f[5],
          f[6], f[7], f[8]));
    }
    Files.writeString(out.resolve("results.tsv"), tsv);
    Files.writeString(out.resolve("results.md"), md);
    System.out.print(md);
    System.exit(ok ? 0 : 1);
  }

  /** A case: its model file, per-example input shape and N. */
  private record Case(String model, long[] shape, int n) {}

  private static Case of(String c, Map<String, String> o) {
    return switch (c) {
      case "flatten" -> new Case("examples/cnn21/flatten.json", new long[] {32, 32, 3},
          Integer.parseInt(o.getOrDefault("flatten-n", "256")));
      case "gap" -> new Case("examples/cnn21/gap.json", new long[] {32, 32, 3},
          Integer.parseInt(o.getOrDefault("gap-n", "8")));
      case "fc21" -> new Case("bench/relu21.json", new long[] {Long.parseLong(o.getOrDefault("fc-d", "784"))},
          Integer.parseInt(o.getOrDefault("fc-n", "4096")));
      default -> throw new IllegalArgumentException("unknown case " + c + ": expected flatten, gap or fc21");
    };
  }

  /**
   * Writes the generated CUDA C of each case and dtype to {@code dir} ({@code CASE-DTYPE.cu}), for
   * a device compiler on a machine without a GPU ({@code bench/gpu/ptxas.sh}).
   */
  private static void sources(Path root, Path dir, List<String> cases, Map<String, String> o) throws IOException {
    Files.createDirectories(dir);
    for (String c : cases) {
      Case k = of(c, o);
      Plan plan = Plan.compile(ModelSpec.read(root.resolve(k.model())), new Shape(k.shape()),
          EnumSet.of(Get.NNGP, Get.NTK));
      for (String dtype : List.of("float32", "float64")) {
        Path file = dir.resolve(c + "-" + dtype + ".cu");
        Files.writeString(file, new CudaEngine(new HostDevice()).source(plan, dtype.equals("float32")).source());
        System.out.println(file);
      }
    }
  }

  private static float[] floats(double[] v) {
    float[] f = new float[v.length];
    for (int i = 0; i < v.length; i++) {
      f[i] = (float) v[i];
    }
    return f;
  }

  private static double[] doubles(Object a) {
    if (a instanceof double[] d) {
      return d;
    }
    float[] f = (float[]) a;
    double[] d = new double[f.length];
    for (int i = 0; i < f.length; i++) {
      d[i] = f[i];
    }
    return d;
  }

  private static double relative(double[] a, double[] b) {
    double num = 0;
    double den = 0;
    for (int i = 0; i < a.length; i++) {
      num += (a[i] - b[i]) * (a[i] - b[i]);
      den += b[i] * b[i];
    }
    return Math.sqrt(num / den);
  }

  /** A little-endian .npy file of a {@code double[]} or {@code float[]}. */
  private static void npy(Path file, Object data, long[] shape) throws IOException {
    boolean f64 = data instanceof double[];
    StringBuilder dims = new StringBuilder();
    for (long s : shape) {
      dims.append(s).append(", ");
    }
    String header = "{'descr': '" + (f64 ? "<f8" : "<f4") + "', 'fortran_order': False, 'shape': ("
        + (shape.length == 1 ? dims : dims.substring(0, dims.length() - 2)) + "), }";
    int pad = 64 - (10 + header.length() + 1) % 64;
    header = header + " ".repeat(pad % 64) + "\n";
    int n = f64 ? ((double[]) data).length : ((float[]) data).length;
    ByteBuffer b = ByteBuffer.allocate(10 + header.length() + n * (f64 ? 8 : 4)).order(ByteOrder.LITTLE_ENDIAN);
    b.put((byte) 0x93).put("NUMPY".getBytes()).put((byte) 1).put((byte) 0).putShort((short) header.length());
    b.put(header.getBytes());
    if (f64) {
      b.asDoubleBuffer().put((double[]) data);
    } else {
      b.asFloatBuffer().put((float[]) data);
    }
    try (OutputStream os = Files.newOutputStream(file)) {
      os.write(b.array());
    }
  }
}
