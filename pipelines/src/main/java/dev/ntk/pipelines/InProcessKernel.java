package dev.ntk.pipelines;

import dev.ntk.kernels.Model;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.io.NpyWriter;
import dev.ntk.kernels.Diagnostics;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Kernel;
import dev.ntk.kernels.KernelFn;
import dev.ntk.kernels.Layer;
import dev.ntk.kernels.Plan;
import dev.ntk.kernels.Spatial;
import dev.ntk.kernels.Tensors;
import dev.ntk.kernels.engine.Backend;
import dev.ntk.kernels.engine.NativeBuffer;
import dev.ntk.transforms.NonFiniteKernelException;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.Buffer;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.OptionalLong;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * {@code ntk kernel} for a job whose kernels fit one tile of {@code --max-tile-bytes}, when no
 * runner is named: the same kernels as {@link KernelJob}, computed in this JVM on all cores (the
 * {@code cpu} backend from the Java arrays of the inputs, without loading TensorFlow), and written
 * as the same {@code .npy} files; no tiles. A Beam pipeline would compute the same single tile on
 * one worker thread after seconds of start-up and write it twice (an Arrow tile, then the {@code
 * .npy} files): 8192 x 8192 float32 took 17.9 s on the DirectRunner against 3.4 s here, whole
 * processes ({@code bench/RESULTS.md}).
 *
 * <p>Kernels that keep the last layer's spatial axes ({@code spatial}) and the covariances of each
 * input with itself ({@code cov1}, {@code cov2}) are written in neural-tangents' layouts ({@link
 * Spatial}), through {@link KernelFn}.
 *
 * @param x2 {@code null} for the kernel of {@code x1} with itself
 * @param covariances {@code cov1} and/or {@code cov2}, written beside the kernels
 * @param diagonalBatch neural-tangents' {@code diagonal_batch}: each covariance per input ({@code (N1,
 *     ...)}), or between every two inputs of its batch ({@code (N1, N1, ...)}, the NNGP of x1 with itself)
 * @param maskConstant {@code --mask-constant}, or null
 */
record InProcessKernel(Model model, NpyArray x1, NpyArray x2, KernelInputs.Patterns patterns, List<Get> get,
    NpyDType dtype, Backend backend, Spatial spatial, List<String> covariances, boolean diagonalBatch,
    Double maskConstant) {
  InProcessKernel {
    get = List.copyOf(get);
    covariances = List.copyOf(covariances);
  }

  /** The reduced kernels {@code get} alone ({@code patterns} null but for a graph model), unmasked. */
  InProcessKernel(Model model, NpyArray x1, NpyArray x2, KernelInputs.Patterns patterns, List<Get> get,
      NpyDType dtype, Backend backend) {
    this(model, x1, x2, patterns, get, dtype, backend, Spatial.REDUCED, List.of(), true, null);
  }

  /** The array type of {@code dtype}. */
  static DataType dataType(NpyDType dtype) {
    return dtype == NpyDType.FLOAT32 ? DataType.FLOAT32 : DataType.FLOAT64;
  }

  /**
   * Whether the kernels between {@code n1} and {@code n2} inputs fit one tile of {@code budget}
   * bytes, and each kernel one buffer ({@link java.nio.Buffer}s end at 2 GiB: a larger kernel goes
   * through tiles whatever the budget).
   */
  static boolean fits(Plan plan, long n1, long n2, NpyDType dtype, Backend backend, long budget) {
    return n1 * n2 < Integer.MAX_VALUE - 64 && n1 * n2 * dtype.bytes() <= Integer.MAX_VALUE
        && plan.tileBytes((int) n1, (int) n2, dtype.bytes(), backend) <= budget;
  }

  /**
   * Computes the kernels and writes {@code <get>.npy} into {@code out}; returns the seconds it
   * took. With a {@code log}, says how long computing and writing took.
   */
  double run(Path out, PrintWriter log) throws IOException {
    long start = System.nanoTime();
    int n1 = Math.toIntExact(x1.shape()[0]);
    int n2 = x2 == null ? n1 : Math.toIntExact(x2.shape()[0]);
    long[] perExample = Arrays.copyOfRange(x1.shape(), 1, x1.shape().length);
    KernelFn fn = model.layer().kernelFn().withBackend(backend).keepSpatial(spatial);
    if (maskConstant != null) {
      fn = fn.withMaskConstant(maskConstant);
    }
    Plan plan = model.plan(new Shape(perExample), dataType(dtype), Get.setOf(get), spatial, maskConstant);
    Map<String, NativeBuffer> natives = new HashMap<>();
    Map<String, long[]> shapes = new LinkedHashMap<>();
    try {
      Map<String, Buffer> kernels;
      if (!backend.runsInto() || spatial.keepsAxes() || !covariances.isEmpty()) {
        kernels = throughKernelFn(fn, shapes);
      } else {
        kernels = onCpu(plan, n1, n2, natives);
        get.forEach(g -> shapes.put(g.key(), new long[] {n1, n2}));
      }
      Files.createDirectories(out);
      long written = System.nanoTime();
      Map<String, Long> bad = writeChecked(out, kernels, shapes, natives);
      if (log != null) {
        log.printf(Locale.ROOT, "ntk: kernels computed in %.2f s, checked and written in %.2f s%n",
            (written - start) / 1e9, (System.nanoTime() - written) / 1e9);
      }
      for (String name : shapes.keySet()) {
        Long at = bad.get(name);
        if (at != null) {
          throw nonFinite(name, kernels.get(name), at, shapes.get(name), n1, n2);
        }
      }
    } finally {
      natives.values().forEach(NativeBuffer::close);
    }
    return (System.nanoTime() - start) / 1e9;
  }

  /** Values checked and written per step: small enough to be read again from cache for the write. */
  private static final int CHUNK = 1 << 18;

  /**
   * Writes each kernel to {@code <name>.npy} in {@code out}, the kernels on threads of their own,
   * each chunk checked for NaN and infinities just before it is written (while it is in cache); a
   * kernel's file stops at its first non-finite entry, whose index is returned by kernel name (its
   * files are then incomplete, in the staging directory that the failure removes). A native buffer
   * is written from its own memory; on a 2-core AMD EPYC, checking then writing 8192 x 8192
   * float32 NNGP and NTK one after the other through a copy took 0.6 to 0.8 s.
   */
  private Map<String, Long> writeChecked(Path out, Map<String, Buffer> kernels, Map<String, long[]> shapes,
      Map<String, NativeBuffer> natives) throws IOException {
    boolean raw = ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN;
    ExecutorService pool = Executors.newFixedThreadPool(Math.max(1, Math.min(shapes.size(),
        Runtime.getRuntime().availableProcessors())), r -> {
          Thread t = new Thread(r, "ntk-write");
          t.setDaemon(true);
          return t;
        });
    try {
      Map<String, Future<Long>> tasks = new LinkedHashMap<>();
      for (Map.Entry<String, long[]> array : shapes.entrySet()) {
        String name = array.getKey();
        tasks.put(name, pool.submit(() -> {
          Buffer values = kernels.get(name);
          NativeBuffer memory = raw ? natives.get(name) : null;
          Path file = out.resolve(name + ".npy");
          try (FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            NpyWriter w = NpyWriter.open(channel, file.toString(), array.getValue(), dtype);
            int count = values.limit();
            for (int off = 0; off < count; off += CHUNK) {
              int k = Math.min(CHUNK, count - off);
              Buffer chunk = values instanceof FloatBuffer f ? f.slice(off, k) : ((DoubleBuffer) values).slice(off, k);
              OptionalLong at = Npy.firstNonFinite(chunk);
              if (at.isPresent()) {
                return off + at.getAsLong();
              }
              if (memory != null) {
                w.writeBytes(memory.bytes(off, k));
              } else {
                w.write(chunk);
              }
            }
            w.close();
            return null;
          }
        }));
      }
      Map<String, Long> bad = new HashMap<>();
      for (Map.Entry<String, Future<Long>> t : tasks.entrySet()) {
        Long at = join(t.getValue());
        if (at != null) {
          bad.put(t.getKey(), at);
        }
      }
      return bad;
    } finally {
      pool.shutdownNow();
    }
  }

  private static <T> T join(Future<T> task) throws IOException {
    try {
      return task.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new java.io.InterruptedIOException("interrupted while writing the kernels");
    } catch (ExecutionException e) {
      Throwable cause = e.getCause();
      if (cause instanceof IOException io) {
        throw io;
      }
      if (cause instanceof RuntimeException r) {
        throw r;
      }
      if (cause instanceof Error err) {
        throw err;
      }
      throw new IllegalStateException(cause);
    }
  }

  /** The kernels into native buffers (added to {@code natives} by name), which need neither zeroing nor a heap. */
  private Map<String, Buffer> onCpu(Plan plan, int n1, int n2, Map<String, NativeBuffer> natives) {
    boolean f64 = dtype == NpyDType.FLOAT64;
    Map<String, Buffer> kernels = new HashMap<>();
    for (String name : plan.schedule().outputs().keySet()) {
      NativeBuffer b = NativeBuffer.allocate((long) n1 * n2, f64);
      natives.put(name, b);
      kernels.put(name, b.buffer());
    }
    Object a = cpuArray(x1);
    plan.runInto(a, x2 == null ? null : cpuArray(x2), patterns == null ? Map.of() : patterns.inputs(plan, a), n1, n2,
        Runtime.getRuntime().availableProcessors(), kernels);
    return kernels;
  }

  /** The values of {@code x} as the cpu backend takes them in this dtype. */
  private Object cpuArray(NpyArray x) {
    return dtype == NpyDType.FLOAT64 ? x.data() : x.toFloats();
  }

  /**
   * The kernels and covariances by {@link KernelFn} (on the {@code tensorflow} or {@code cuda}
   * backend, or in neural-tangents' layouts on any), their shapes put into {@code shapes} by name.
   */
  private Map<String, Buffer> throughKernelFn(KernelFn fn, Map<String, long[]> shapes) {
    try (NDManager m = Tensors.newManager()) {
      NDArray a1 = array(m, x1);
      NDArray a2 = x2 == null ? null : array(m, x2);
      NDArray p1 = patterns == null ? null : KernelInputs.Patterns.array(m, patterns.a1());
      NDArray p2 = patterns == null || patterns.a2() == null ? null : KernelInputs.Patterns.array(m, patterns.a2());
      Kernel k = patterns == null ? fn.apply(a1, a2, Get.setOf(get)) : fn.apply(a1, a2, p1, p2, Get.setOf(get));
      Map<String, NDArray> arrays = new LinkedHashMap<>();
      get.forEach(g -> arrays.put(g.key(), k.get(g)));
      for (String c : covariances) {
        boolean first = c.equals("cov1");
        // diagonal_batch=false: the covariance of every two inputs of the batch, its NNGP with itself
        NDArray x = first ? a1 : a2;
        NDArray p = first ? p1 : p2;
        arrays.put(c, diagonalBatch ? (first ? k.cov1() : k.cov2())
            : patterns == null ? fn.apply(x, null, Get.NNGP)
            : fn.apply(x, null, p, null, java.util.EnumSet.of(Get.NNGP)).get(Get.NNGP));
      }
      Map<String, Buffer> values = new HashMap<>();
      arrays.forEach((name, a) -> {
        values.put(name, DoubleBuffer.wrap(Tensors.toDoubles(a)));
        shapes.put(name, a.getShape().getShape());
      });
      return values;
    }
  }

  private NDArray array(NDManager m, NpyArray x) {
    return Tensors.create(m, x.data(), new Shape(x.shape()),
        dtype == NpyDType.FLOAT32 ? DataType.FLOAT32 : DataType.FLOAT64);
  }

  /**
   * The error the tile path gives for entry {@code at} of kernel {@code name}, which is not
   * finite: it names the entry and the layer where the kernel of its two inputs first stops being
   * finite.
   */
  private NonFiniteKernelException nonFinite(String name, Buffer values, long at, long[] shape, int n1, int n2) {
    int i = Math.toIntExact(at);
    double value = values instanceof FloatBuffer f ? f.get(i) : ((DoubleBuffer) values).get(i);
    long size = 1;
    for (long s : shape) {
      size *= s;
    }
    if (covariances.contains(name)) {
      // entry at of one input's covariance with itself: the pair (input, input)
      boolean first = name.equals("cov1");
      int n = first ? n1 : n2;
      long items = diagonalBatch ? n : (long) n * n;
      long item = at / (size / items);
      return nonFinite(model.layer(), first ? x1 : x2, null, patterns != null, dtype, name,
          diagonalBatch ? item * n + item : item, value, n);
    }
    // a kernel that keeps pixels holds a block per pair
    return nonFinite(model.layer(), x1, x2, patterns != null, dtype, name, at / (size / ((long) n1 * n2)), value, n2);
  }

  /**
   * The error for entry {@code at} (row-major, {@code n2} columns) of the kernel {@code name}
   * between {@code x1} and {@code x2} ({@code null}: x1 with itself), whose value is not finite:
   * it names the entry and the layer where the kernel of the two input rows involved first stops
   * being finite, found by running them layer by layer ({@code Diagnostics}) only now (not for a
   * {@code graph} model, whose inputs come with patterns).
   */
  static NonFiniteKernelException nonFinite(Layer layer, NpyArray x1, NpyArray x2, boolean graph, NpyDType dtype,
      String name, long at, double value, int n2) {
    int row = Math.toIntExact(at / n2);
    int col = Math.toIntExact(at % n2);
    if (graph) {
      // The layer by layer run takes no graph patterns: the entry is named without its layer.
      return new NonFiniteKernelException(dtype, name, row, col, value, java.util.Optional.empty());
    }
    NpyArray other = x2 == null ? x1 : x2;
    try (NDManager m = Tensors.newManager()) {
      return new NonFiniteKernelException(dtype, name, row, col, value,
          Diagnostics.firstNonFiniteLayer(layer, row(m, x1, row, dtype), row(m, other, col, dtype)));
    }
  }

  private static NDArray row(NDManager m, NpyArray x, int index, NpyDType dtype) {
    long[] shape = x.shape().clone();
    int size = Math.toIntExact(x.data().length / shape[0]);
    shape[0] = 1;
    double[] one = Arrays.copyOfRange(x.data(), index * size, index * size + size);
    return Tensors.create(m, one, new Shape(shape), dtype == NpyDType.FLOAT32 ? DataType.FLOAT32 : DataType.FLOAT64);
  }
}
