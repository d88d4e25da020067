package dev.ntk.pipelines;

import dev.ntk.kernels.Model;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Kernel;
import dev.ntk.kernels.KernelFn;
import dev.ntk.kernels.Layer;
import dev.ntk.kernels.Plan;
import dev.ntk.kernels.Tensors;
import dev.ntk.kernels.engine.Backend;
import dev.ntk.kernels.engine.NativeBuffer;
import dev.ntk.kernels.linalg.DenseMatrix;
import dev.ntk.kernels.predict.ConjugateGradients;
import dev.ntk.kernels.predict.GradientDescent;
import dev.ntk.kernels.predict.KernelOperator;
import dev.ntk.kernels.predict.Loss;
import dev.ntk.kernels.predict.Solve;
import dev.ntk.transforms.PredictSettings;
import dev.ntk.transforms.PredictSettings.Mode;
import dev.ntk.transforms.PredictionFiles;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.Buffer;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * {@code ntk predict} when its kernels fit memory ({@code --max-memory}) and no runner is named: the
 * same predictions as {@link PredictJob}, without a pipeline, tiles or factor files. With {@code cg}
 * exact inference is solved by conjugate gradients on the train kernel in memory, else by Cholesky.
 * The kernels are computed in this JVM on all cores straight into native float64 matrices ({@link DenseMatrix}: on the {@code cpu}
 * backend the fused loops and OpenBLAS's gram write into the matrices' own memory, as {@link
 * InProcessKernel} writes into its buffers), each checked for entries that are not finite, and
 * handed to the one solver of the prediction's mode ({@link Solve}: {@code GpPosterior}, {@code
 * MseDynamics}; {@link GradientDescent} for the ODE), the solver calls the pipeline's steps make.
 * Only when an entry is not finite are the two input rows involved run layer by layer to name the
 * layer ({@link InProcessKernel#nonFinite}). Writes the same files.
 *
 * <p>A Beam pipeline of the same job computes the train kernel in tiles on workers, writes them as
 * Arrow files, reads them back into the native matrix, and shares the factor with the workers
 * through files: for N = 5,000 training points that was most of a 17 to 33 s run ({@code
 * bench/RESULTS.md}, "Prediction").
 */
public record InProcessPredict(Model model, NpyArray xTrain, NpyArray yTrain, NpyArray xTest, PredictSettings settings,
    boolean computeCov, NpyDType dtype, Backend backend, ConjugateGradients.Settings cg,
    KernelInputs.Patterns patterns) {

  /** The prediction of a model without graph patterns; {@code cg} null for exact inference by Cholesky. */
  public InProcessPredict(Model model, NpyArray xTrain, NpyArray yTrain, NpyArray xTest, PredictSettings settings,
      boolean computeCov, NpyDType dtype, Backend backend, ConjugateGradients.Settings cg) {
    this(model, xTrain, yTrain, xTest, settings, computeCov, dtype, backend, cg, null);
  }

  /** The prediction with exact inference by Cholesky. */
  public InProcessPredict(Model model, NpyArray xTrain, NpyArray yTrain, NpyArray xTest, PredictSettings settings,
      boolean computeCov, NpyDType dtype, Backend backend) {
    this(model, xTrain, yTrain, xTest, settings, computeCov, dtype, backend, null);
  }

  /** The kernels computed between train and train, and between test and train. */
  static Set<Get> kernels(PredictSettings settings, boolean computeCov) {
    return computeCov && settings.get() == Get.NTK ? EnumSet.of(settings.get(), Get.NNGP) : EnumSet.of(settings.get());
  }

  /**
   * The bytes of the float64 kernels the prediction holds at once: train-train ({@code n x n}) and
   * test-train ({@code m x n}) of each kernel computed, and for the covariance test-test ({@code m x
   * m}). {@code ntk predict --solver auto} factors the train kernel while these fit {@code
   * --max-memory}.
   */
  static long bytes(long n, long m, PredictSettings settings, boolean computeCov) {
    long entries = kernels(settings, computeCov).size() * (n * n + m * n) + (computeCov ? m * m : 0);
    return Double.BYTES * entries;
  }

  /**
   * Whether the prediction runs in {@code budget} bytes in this JVM: its kernels ({@link #bytes}),
   * and on a backend other than {@code cpu} the live values of computing the largest of them whole
   * ({@code Plan.tileBytes}; the {@code cpu} backend computes each kernel into its matrix). A
   * kernel must also have fewer than 2^31 entries, as one buffer holds it.
   */
  static boolean fits(Model model, long[] perExample, long n, long m, PredictSettings settings, boolean computeCov,
      NpyDType dtype, Backend backend, long budget) {
    if (Math.max(n, m) * n >= Integer.MAX_VALUE - 64 || (computeCov && m * m >= Integer.MAX_VALUE - 64)) {
      return false;
    }
    long working = 0;
    if (!backend.runsInto()) {
      DataType type = InProcessKernel.dataType(dtype);
      Plan plan = model.plan(new Shape(perExample), type, kernels(settings, computeCov));
      working = Math.max(plan.tileBytes((int) n, (int) n, dtype.bytes(), backend),
          plan.tileBytes((int) m, (int) n, dtype.bytes(), backend));
      if (computeCov) {
        working = Math.max(working, model.plan(new Shape(perExample), type, EnumSet.of(Get.NNGP))
            .tileBytes((int) m, (int) m, dtype.bytes(), backend));
      }
    }
    return bytes(n, m, settings, computeCov) + working <= budget;
  }

  /**
   * Predicts and writes the outputs into {@code out}; returns the seconds it took. With a {@code
   * log}, says how long computing the kernels, solving and writing took.
   */
  public double run(Path out, PrintWriter log) throws IOException {
    long start = System.nanoTime();
    int n = Math.toIntExact(xTrain.shape()[0]);
    int m = Math.toIntExact(xTest.shape()[0]);
    double[] y = yTrain.data();
    int outputs = y.length / n;
    Get get = settings.get();
    Mode mode = settings.mode();
    // A float32 prediction factors in float32, as the DirectRunner's (FactorFn) and NumPy's.
    boolean float32 = dtype == NpyDType.FLOAT32;
    double[] times = settings.times();
    KernelFn fn = model.layer().kernelFn().withBackend(backend);
    Set<Get> gets = kernels(settings, computeCov);
    Map<Get, DenseMatrix> dd = new EnumMap<>(Get.class);
    Map<Get, DenseMatrix> td = new EnumMap<>(Get.class);
    Map<Get, DenseMatrix> tt = new EnumMap<>(Get.class);
    double[][] means;
    double[][] covs = null;
    double nll = Double.NaN;
    long computed;
    try {
      // A graph model's patterns: a1 the training inputs', a2 the test inputs'.
      dd.putAll(compute(fn, xTrain, null, patterns == null ? null : patterns.first(), gets, "train-train"));
      td.putAll(compute(fn, xTest, xTrain, patterns == null ? null : patterns.swapped(), gets, "test-train"));
      if (computeCov) {
        tt.putAll(compute(fn, xTest, null, patterns == null ? null : patterns.swapped().first(),
            EnumSet.of(Get.NNGP), "test-test"));
      }
      computed = System.nanoTime();
      Solve.CovarianceKernels cov = computeCov
          ? new Solve.CovarianceKernels(get == Get.NTK ? dd.get(Get.NNGP) : null, td.get(Get.NNGP), tt.get(Get.NNGP))
          : null;
      if (settings.nll() && mode != Mode.CHOLESKY) {
        nll = Solve.nll(dd.get(get).copy(), y, outputs, settings.diagReg(), get.key(), float32);
      }
      switch (mode) {
        case CHOLESKY -> {
          if (cg != null && !model.plan(new Shape(xTrain.shape()).slice(1), InProcessKernel.dataType(dtype), gets)
              .symmetric()) {
            // The matrix that Cholesky would read (the lower triangle): a kernel of a rule that is not
            // symmetric in its inputs, computed whole, is not, and conjugate gradients need a symmetric one.
            dd.get(get).mirrorLower();
          }
          Solve.Solution s = cg != null
              ? Solve.gpInference(KernelOperator.of(dd.get(get)), td.get(get), y, outputs, get, settings.diagReg(), cg)
              : Solve.gpInference(dd.remove(get), td.get(get), y, outputs, get, settings.diagReg(), cov,
                  settings.nll(), float32);
          means = new double[times.length][];
          Arrays.fill(means, s.means()[0]);
          if (computeCov) {
            covs = new double[times.length][];
            Arrays.fill(covs, s.covs()[0]);
          }
          nll = s.nll();
        }
        case EIGEN -> {
          Solve.Solution s = Solve.mse(dd.remove(get), td.get(get), y, outputs, get, times, settings.learningRate(),
              settings.diagReg(), initial(settings.fxTrain0()), initial(settings.fxTest0()), cov, false);
          means = s.means();
          covs = s.covs();
        }
        case ODE -> {
          GradientDescent.Outputs[] o = GradientDescent.integrate(Loss.of(settings.loss()), dd.get(get), td.get(get),
              y, outputs, settings.learningRate(), settings.mass(), initial(settings.fxTrain0()),
              initial(settings.fxTest0()), times, 1e-10, settings.maxSteps());
          means = new double[o.length][];
          for (int i = 0; i < o.length; i++) {
            means[i] = o[i].test();
          }
        }
        default -> throw new IllegalStateException(mode.toString());
      }
    } finally {
      for (Map<Get, DenseMatrix> k : java.util.List.of(dd, td, tt)) {
        k.values().forEach(DenseMatrix::close);
      }
    }
    long solved = System.nanoTime();
    Files.createDirectories(out);
    long[] meanShape = yTrain.shape().clone();
    meanShape[0] = m;
    PredictionFiles.write(out, "mean.npy", meanShape, means, dtype);
    if (computeCov) {
      PredictionFiles.write(out, "cov.npy", new long[] {m, m}, covs, dtype);
    }
    if (settings.nll()) {
      PredictionFiles.write(out, "nll.npy", new long[0], new double[][] {{nll}}, dtype);
    }
    long end = System.nanoTime();
    if (log != null) {
      log.printf(Locale.ROOT, "ntk: kernels computed in %.2f s, solved (%s) in %.2f s, written in %.2f s%n",
          (computed - start) / 1e9, cg != null ? "conjugate gradients" : mode.toString().toLowerCase(Locale.ROOT),
          (solved - computed) / 1e9,
          (end - solved) / 1e9);
    }
    return (end - start) / 1e9;
  }

  /**
   * The kernels {@code gets} between {@code x1} and {@code x2} ({@code null}: x1 with itself) as
   * float64 native matrices, checked: the first entry that is not finite stops the run, naming
   * the entry, the kernel ({@code which}) and the layer where the kernel of its two inputs first
   * stops being finite.
   */
  private Map<Get, DenseMatrix> compute(KernelFn fn, NpyArray x1, NpyArray x2, KernelInputs.Patterns pair,
      Set<Get> gets, String which) {
    int n1 = Math.toIntExact(x1.shape()[0]);
    int n2 = x2 == null ? n1 : Math.toIntExact(x2.shape()[0]);
    Map<Get, DenseMatrix> out = new EnumMap<>(Get.class);
    try {
      if (!backend.runsInto()) {
        onTensorFlow(fn, x1, x2, pair, gets, n1, n2, out);
      } else {
        onCpu(fn, x1, x2, pair, gets, n1, n2, out);
      }
      for (Get g : gets) {
        DenseMatrix k = out.get(g);
        long at = k.firstNonFinite();
        if (at >= 0) {
          throw InProcessKernel.nonFinite(model.layer(), x1, x2, pair != null, dtype, which + " " + g.key(), at,
              k.get(at / n2, at % n2), n2);
        }
      }
      return out;
    } catch (RuntimeException | Error e) {
      out.values().forEach(DenseMatrix::close);
      throw e;
    }
  }

  /**
   * The plan's kernels written into the matrices' memory: float64 directly, float32 in place then
   * widened; a matrix of more than {@link #BAND_BYTES} in bands of rows ({@link #inBands}).
   */
  private void onCpu(KernelFn fn, NpyArray x1, NpyArray x2, KernelInputs.Patterns pair, Set<Get> gets, int n1,
      int n2, Map<Get, DenseMatrix> out) {
    long[] perExample = Arrays.copyOfRange(x1.shape(), 1, x1.shape().length);
    Plan plan = model.plan(new Shape(perExample), InProcessKernel.dataType(dtype), EnumSet.copyOf(gets));
    for (Get g : gets) {
      out.put(g, DenseMatrix.uninitialized(n1, n2));
    }
    if ((long) n1 * n2 * Double.BYTES > BAND_BYTES) {
      if (pair != null) {
        throw new IllegalArgumentException("a graph model's kernels of " + n1 + " x " + n2 + " inputs exceed "
            + (BAND_BYTES >> 20) + " MiB, which graph patterns do not yet split into bands: use fewer inputs");
      }
      inBands(plan, cpuArray(x1), x2 == null ? null : cpuArray(x2), n1, n2, out, BAND_BYTES);
      return;
    }
    boolean f64 = dtype == NpyDType.FLOAT64;
    Map<String, Buffer> buffers = new HashMap<>();
    for (Get g : gets) {
      buffers.put(g.key(), f64 ? out.get(g).buffer() : out.get(g).float32Buffer());
    }
    Object a = cpuArray(x1);
    plan.runInto(a, x2 == null ? null : cpuArray(x2), pair == null ? Map.of() : pair.inputs(plan, a), n1, n2,
        Runtime.getRuntime().availableProcessors(), buffers);
    if (!f64) {
      out.values().forEach(DenseMatrix::widenFloat32);
    }
  }

  /**
   * The bytes of kernel a band of rows holds at most: a direct buffer, which the {@code cpu}
   * backend writes into, holds under 2 GiB, and a 30,000 x 30,000 train kernel is 7.2 GB.
   */
  static final long BAND_BYTES = 1L << 29;

  /**
   * The kernels computed by bands of rows of {@code x1} into the matrices {@code out}, for kernels
   * larger than one buffer ({@code bandBytes} of float64 rows a band), float64 or float32 as {@code
   * x1} is {@code double[]} or {@code float[]}. Between x1 and x2 each band is rows of the result; for x1 with itself
   * (x2 {@code null}) each band's block on the diagonal is computed as x1 with itself (its upper
   * triangle, the diagonal's own rules) and the block right of it against the later rows, then
   * written transposed below the diagonal too: the upper triangle once, as the whole run does. A
   * plan that is not symmetric in its inputs ({@link Plan#symmetric}) has the block left of the
   * diagonal computed too, against the earlier rows, and nothing mirrored: whole, as the whole run.
   */
  static void inBands(Plan plan, Object x1, Object x2, int n1, int n2, Map<Get, DenseMatrix> out,
      long bandBytes) {
    int size = java.lang.reflect.Array.getLength(x1) / n1;
    int band = (int) Math.max(1, Math.min(n1, bandBytes / ((long) n2 * Double.BYTES)));
    for (int r0 = 0; r0 < n1; r0 += band) {
      int r1 = Math.min(n1, r0 + band);
      Object rows = rows(x1, r0, r1, size);
      if (x2 != null) {
        place(plan, rows, x2, r1 - r0, n2, out, r0, 0, false);
      } else {
        if (r0 > 0 && !plan.symmetric()) {
          place(plan, rows, rows(x1, 0, r0, size), r1 - r0, r0, out, r0, 0, false);
        }
        place(plan, rows, null, r1 - r0, r1 - r0, out, r0, r0, false);
        if (r1 < n1) {
          place(plan, rows, rows(x1, r1, n1, size), r1 - r0, n1 - r1, out, r0, r1, plan.symmetric());
        }
      }
    }
  }

  /**
   * Computes the {@code nb x nc} kernels of {@code a} and {@code b} and writes them into {@code out}
   * from entry ({@code row}, {@code col}), and with {@code mirror} also transposed from ({@code col},
   * {@code row}).
   */
  private static void place(Plan plan, Object a, Object b, int nb, int nc, Map<Get, DenseMatrix> out, long row,
      long col, boolean mirror) {
    boolean f64 = a instanceof double[];
    Map<Get, NativeBuffer> blocks = new EnumMap<>(Get.class);
    try {
      Map<String, Buffer> buffers = new HashMap<>();
      for (Get g : out.keySet()) {
        blocks.put(g, NativeBuffer.allocate((long) nb * nc, f64));
        buffers.put(g.key(), blocks.get(g).buffer());
      }
      plan.runInto(a, b, nb, nc, Runtime.getRuntime().availableProcessors(), buffers);
      double[] line = new double[nc];
      for (Get g : out.keySet()) {
        DenseMatrix k = out.get(g);
        NativeBuffer block = blocks.get(g);
        for (int i = 0; i < nb; i++) {
          read(block.buffer(), (long) i * nc, line, nc);
          k.put((row + i) * k.cols() + col, line, 0, nc);
        }
        if (mirror) {
          // Column j of the block is row (col + j) of the matrix, from column row: read in strips of
          // columns so that each strip of the block stays in cache.
          int strip = 64;
          double[] column = new double[nb * strip];
          for (int j0 = 0; j0 < nc; j0 += strip) {
            int w = Math.min(strip, nc - j0);
            for (int i = 0; i < nb; i++) {
              read(block.buffer(), (long) i * nc + j0, line, w);
              for (int j = 0; j < w; j++) {
                column[j * nb + i] = line[j];
              }
            }
            for (int j = 0; j < w; j++) {
              k.put((col + j0 + j) * k.cols() + row, column, j * nb, nb);
            }
          }
        }
      }
    } finally {
      blocks.values().forEach(NativeBuffer::close);
    }
  }

  /** Values {@code [from, from + count)} of a float32 or float64 buffer, as doubles into {@code to}. */
  private static void read(Buffer from, long at, double[] to, int count) {
    int index = Math.toIntExact(at);
    if (from instanceof DoubleBuffer d) {
      d.get(index, to, 0, count);
    } else {
      FloatBuffer f = (FloatBuffer) from;
      for (int i = 0; i < count; i++) {
        to[i] = f.get(index + i);
      }
    }
  }

  /** Rows {@code [from, to)} of the row-major examples {@code x} ({@code float[]} or {@code double[]}). */
  static Object rows(Object x, int from, int to, int size) {
    return x instanceof double[] d ? Arrays.copyOfRange(d, from * size, to * size)
        : Arrays.copyOfRange((float[]) x, from * size, to * size);
  }

  private Object cpuArray(NpyArray x) {
    return dtype == NpyDType.FLOAT64 ? x.data() : x.toFloats();
  }

  /** The kernels by TensorFlow ops ({@code --backend tensorflow}), copied into the matrices. */
  private void onTensorFlow(KernelFn fn, NpyArray x1, NpyArray x2, KernelInputs.Patterns pair, Set<Get> gets,
      int n1, int n2, Map<Get, DenseMatrix> out) {
    DataType type = dtype == NpyDType.FLOAT32 ? DataType.FLOAT32 : DataType.FLOAT64;
    try (NDManager m = Tensors.newManager()) {
      NDArray a = Tensors.create(m, x1.data(), new Shape(x1.shape()), type);
      NDArray b = x2 == null ? null : Tensors.create(m, x2.data(), new Shape(x2.shape()), type);
      Kernel k = pair == null ? fn.apply(a, b, EnumSet.copyOf(gets))
          : fn.apply(a, b, KernelInputs.Patterns.array(m, pair.a1()),
              pair.a2() == null ? null : KernelInputs.Patterns.array(m, pair.a2()),
              EnumSet.copyOf(gets));
      for (Get g : gets) {
        out.put(g, DenseMatrix.of(n1, n2, Tensors.toDoubles(k.get(g))));
      }
    }
  }

  /** Initial outputs from a {@code .npy} file (checked by the command line), or null. */
  private static double[] initial(String file) throws IOException {
    return file == null ? null : Npy.read(Path.of(file)).data();
  }
}
