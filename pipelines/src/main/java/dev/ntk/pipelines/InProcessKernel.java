package dev.ntk.pipelines;

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
import dev.ntk.kernels.Tensors;
import dev.ntk.kernels.engine.Backend;
import dev.ntk.kernels.engine.CpuBackend;
import dev.ntk.kernels.engine.NativeBuffer;
import dev.ntk.transforms.NonFiniteKernelException;
import java.io.IOException;
import java.nio.Buffer;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;

/**
 * {@code ntk kernel} for a job whose kernels fit one tile of {@code --max-tile-bytes}, when no
 * runner is named: the same kernels as {@link KernelJob}, computed in this JVM on all cores (the
 * {@code cpu} backend from the Java arrays of the inputs, without loading TensorFlow), and written
 * as the same {@code .npy} files; no tiles. A Beam pipeline would compute the same single tile on
 * one worker thread after seconds of start-up and write it twice (an Arrow tile, then the {@code
 * .npy} files): 8192 x 8192 float32 took 22 s on the DirectRunner against 4.5 s here, whole
 * processes ({@code bench/RESULTS.md}).
 *
 * @param x2 {@code null} for the kernel of {@code x1} with itself
 */
record InProcessKernel(Layer layer, NpyArray x1, NpyArray x2, List<Get> get, NpyDType dtype, Backend backend) {

  /** Whether the kernels between {@code n1} and {@code n2} inputs fit one tile of {@code budget} bytes. */
  static boolean fits(Plan plan, long n1, long n2, NpyDType dtype, Backend backend, long budget) {
    return n1 * n2 < Integer.MAX_VALUE - 64 && plan.tileBytes((int) n1, (int) n2, dtype.bytes(), backend) <= budget;
  }

  /** Computes the kernels and writes {@code <get>.npy} into {@code out}; returns the seconds it took. */
  double run(Path out) throws IOException {
    long start = System.nanoTime();
    int n1 = Math.toIntExact(x1.shape()[0]);
    int n2 = x2 == null ? n1 : Math.toIntExact(x2.shape()[0]);
    long[] perExample = Arrays.copyOfRange(x1.shape(), 1, x1.shape().length);
    KernelFn fn = layer.kernelFn().withBackend(backend);
    Plan plan = fn.plan(new Shape(perExample), EnumSet.copyOf(get));
    List<NativeBuffer> natives = new ArrayList<>();
    try {
      Map<String, Buffer> kernels = backend == Backend.TENSORFLOW ? onTensorFlow(fn)
          : onCpu(plan, n1, n2, natives);
      for (Get g : get) {
        checkFinite(g.key(), kernels.get(g.key()), n2);
      }
      Files.createDirectories(out);
      for (Get g : get) {
        Path file = out.resolve(g.key() + ".npy");
        try (NpyWriter w = NpyWriter.open(FileChannel.open(file, StandardOpenOption.CREATE_NEW,
            StandardOpenOption.WRITE), file.toString(), new long[] {n1, n2}, dtype)) {
          w.write(kernels.get(g.key()));
        }
      }
    } finally {
      natives.forEach(NativeBuffer::close);
    }
    return (System.nanoTime() - start) / 1e9;
  }

  /** The kernels into native buffers (added to {@code natives}), which need neither zeroing nor a heap. */
  private Map<String, Buffer> onCpu(Plan plan, int n1, int n2, List<NativeBuffer> natives) {
    boolean f64 = dtype == NpyDType.FLOAT64;
    Map<String, Buffer> kernels = new HashMap<>();
    for (String name : plan.schedule().outputs().keySet()) {
      NativeBuffer b = NativeBuffer.allocate((long) n1 * n2, f64);
      natives.add(b);
      kernels.put(name, b.buffer());
    }
    plan.runInto(cpuArray(x1), x2 == null ? null : cpuArray(x2), n1, n2,
        Runtime.getRuntime().availableProcessors(), kernels);
    return kernels;
  }

  /** The values of {@code x} as the cpu backend takes them in this dtype. */
  private Object cpuArray(NpyArray x) {
    return dtype == NpyDType.FLOAT64 ? x.data() : CpuBackend.float32().fromDoubles(x.data());
  }

  private Map<String, Buffer> onTensorFlow(KernelFn fn) {
    try (NDManager m = Tensors.newManager()) {
      Kernel k = fn.apply(array(m, x1), x2 == null ? null : array(m, x2), EnumSet.copyOf(get));
      Map<String, Buffer> values = new HashMap<>();
      for (Get g : get) {
        values.put(g.key(), DoubleBuffer.wrap(Tensors.toDoubles(k.get(g))));
      }
      return values;
    }
  }

  private NDArray array(NDManager m, NpyArray x) {
    return Tensors.create(m, x.data(), new Shape(x.shape()),
        dtype == NpyDType.FLOAT32 ? DataType.FLOAT32 : DataType.FLOAT64);
  }

  /**
   * Stops, as the tile path does, at the first entry that is not finite, naming it and the layer
   * where the kernel of its two inputs first stops being finite.
   */
  private void checkFinite(String name, Buffer values, int n2) {
    OptionalLong bad = Npy.firstNonFinite(values);
    if (bad.isEmpty()) {
      return;
    }
    int at = (int) bad.getAsLong();
    double value = values instanceof FloatBuffer f ? f.get(at) : ((DoubleBuffer) values).get(at);
    NpyArray other = x2 == null ? x1 : x2;
    try (NDManager m = Tensors.newManager()) {
      throw new NonFiniteKernelException(dtype, name, at / n2, at % n2, value,
          Diagnostics.firstNonFiniteLayer(layer, row(m, x1, at / n2), row(m, other, at % n2)));
    }
  }

  private NDArray row(NDManager m, NpyArray x, int index) {
    long[] shape = x.shape().clone();
    int size = Math.toIntExact(x.data().length / shape[0]);
    shape[0] = 1;
    double[] one = Arrays.copyOfRange(x.data(), index * size, index * size + size);
    return Tensors.create(m, one, new Shape(shape), dtype == NpyDType.FLOAT32 ? DataType.FLOAT32 : DataType.FLOAT64);
  }
}
