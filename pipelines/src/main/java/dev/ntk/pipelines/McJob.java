package dev.ntk.pipelines;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Layer;
import dev.ntk.kernels.Model;
import dev.ntk.kernels.MonteCarlo;
import dev.ntk.kernels.Tensors;
import dev.ntk.transforms.DoubleArrayCoder;
import dev.ntk.transforms.NonFiniteKernelException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.Serializable;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.OptionalLong;
import org.apache.beam.sdk.Pipeline;
import org.apache.beam.sdk.coders.AtomicCoder;
import org.apache.beam.sdk.coders.KvCoder;
import org.apache.beam.sdk.coders.StringUtf8Coder;
import org.apache.beam.sdk.coders.VarIntCoder;
import org.apache.beam.sdk.options.PipelineOptions;
import org.apache.beam.sdk.transforms.Combine;
import org.apache.beam.sdk.transforms.Create;
import org.apache.beam.sdk.transforms.DoFn;
import org.apache.beam.sdk.transforms.ParDo;
import org.apache.beam.sdk.transforms.Reshuffle;
import org.apache.beam.sdk.util.VarInt;
import org.apache.beam.sdk.values.KV;

/**
 * {@code ntk mc}: Monte Carlo kernels of finite networks, in-process or as a Beam pipeline whose
 * workers each draw a batch of parameters and whose sums are combined into the estimate. Draw
 * {@code s} is the same on every path ({@link MonteCarlo#sums}), so a pipeline's estimate equals
 * the in-process one to the rounding of its sums.
 *
 * @param model the finite network's model (widths already set)
 * @param x1 the inputs' {@code .npy} file
 * @param x2 {@code null} for the kernel of {@code x1} with itself
 * @param batches how many batches of draws the pipeline spreads over its workers
 */
record McJob(Model model, String x1, String x2, List<Get> get, int samples, long seed, NpyDType dtype,
    int batches) implements Serializable {
  McJob {
    get = List.copyOf(get);
    batches = Math.max(1, Math.min(batches, samples));
  }

  /**
   * Estimates every kernel in this process from the inputs the command has read and checked
   * ({@code b} null for x1 with itself), and writes them into {@code dir}.
   */
  void runInProcess(Path dir, NpyArray a, NpyArray b) throws IOException {
    List<MonteCarlo.Sums> sums = sums(0, samples, a, b);
    for (int i = 0; i < get.size(); i++) {
      write(dir, get.get(i), sums.get(i).estimate());
    }
  }

  /** Runs the pipeline on {@code options}, writing into {@code dir}; returns the pipeline's seconds. */
  JobReport run(PipelineOptions options, Path dir, Progress progress) {
    List<Integer> batchIndices = new ArrayList<>();
    for (int b = 0; b < batches; b++) {
      batchIndices.add(b);
    }
    Pipeline pipeline = Pipeline.create(options);
    pipeline.apply("Batches", Create.of(batchIndices).withCoder(VarIntCoder.of()))
        .apply("Spread", Reshuffle.viaRandomKey())
        .apply("Draw", ParDo.of(new DrawFn(this)))
        .setCoder(KvCoder.of(StringUtf8Coder.of(), SumsCoder.INSTANCE))
        .apply("Add", Combine.perKey(McJob::add))
        .apply("Write", ParDo.of(new WriteFn(this, dir.toString())));
    JobReport report = Jobs.run(pipeline, List.of(), progress);
    return new JobReport(report.runner(), report.seconds(), -1, -1, -1);
  }

  /** The first draw of batch {@code b}: the draws are split as evenly as they go. */
  int firstDraw(int b) {
    return (int) ((long) samples * b / batches);
  }

  /** The sums over draws {@code [from, to)} of every kernel of {@link #get}, in its order. */
  private List<MonteCarlo.Sums> sums(int from, int to, NpyArray a, NpyArray b) {
    DataType type = dtype == NpyDType.FLOAT32 ? DataType.FLOAT32 : DataType.FLOAT64;
    Layer layer = model.layer();
    try (NDManager m = Tensors.newManager()) {
      NDArray x = Tensors.create(m, a.data(), new Shape(a.shape()), type);
      NDArray y = b == null ? x : Tensors.create(m, b.data(), new Shape(b.shape()), type);
      List<MonteCarlo.Sums> sums = new ArrayList<>();
      for (Get g : get) {
        sums.add(MonteCarlo.sums(g, layer, x, y, from, to, seed));
      }
      return sums;
    }
  }

  /** Writes {@code <get>.npy} and {@code <get>_stderr.npy}; a non-finite estimate is an error. */
  private void write(Path dir, Get g, MonteCarlo.Estimate e) throws IOException {
    OptionalLong bad = Npy.firstNonFinite(e.mean());
    if (bad.isPresent()) {
      throw new NonFiniteKernelException("the Monte Carlo " + g.key().toUpperCase(Locale.ROOT)
          + " has the non-finite entry " + e.mean()[(int) bad.getAsLong()] + " at flat index "
          + bad.getAsLong() + ": the weights or the inputs are likely too large for " + dtype.typeName());
    }
    long[] shape = {e.rows(), e.cols()};
    Npy.write(dir.resolve(g.key() + ".npy"), new NpyArray(shape, dtype, e.mean()));
    Npy.write(dir.resolve(g.key() + "_stderr.npy"), new NpyArray(shape, dtype, e.standardError()));
  }

  private static MonteCarlo.Sums add(Iterable<MonteCarlo.Sums> parts) {
    MonteCarlo.Sums total = null;
    for (MonteCarlo.Sums p : parts) {
      total = total == null ? p : total.plus(p);
    }
    return total;
  }

  /** Draws one batch of parameters for every kernel asked for. */
  private static final class DrawFn extends DoFn<Integer, KV<String, MonteCarlo.Sums>> {
    private final McJob job;

    DrawFn(McJob job) {
      this.job = job;
    }

    @ProcessElement
    public void process(@Element Integer batch, OutputReceiver<KV<String, MonteCarlo.Sums>> out)
        throws IOException {
      NpyArray a = Npy.read(Path.of(job.x1()));
      NpyArray b = job.x2() == null ? null : Npy.read(Path.of(job.x2()));
      List<MonteCarlo.Sums> sums = job.sums(job.firstDraw(batch), job.firstDraw(batch + 1), a, b);
      for (int i = 0; i < sums.size(); i++) {
        out.output(KV.of(job.get().get(i).key(), sums.get(i)));
      }
    }
  }

  /** Writes one kernel's estimate from the sums of all draws. */
  private static final class WriteFn extends DoFn<KV<String, MonteCarlo.Sums>, Void> {
    private final McJob job;
    private final String dir;

    WriteFn(McJob job, String dir) {
      this.job = job;
      this.dir = dir;
    }

    @ProcessElement
    public void process(@Element KV<String, MonteCarlo.Sums> sums) throws IOException {
      MonteCarlo.Sums s = sums.getValue();
      if (s.draws() != job.samples()) {
        throw new IllegalStateException(sums.getKey() + ": " + s.draws() + " draws were added up, not "
            + job.samples());
      }
      job.write(Path.of(dir), Get.of(sums.getKey()), s.estimate());
    }
  }

  /** Sums as their sizes and two arrays of doubles (no Java serialization). */
  static final class SumsCoder extends AtomicCoder<MonteCarlo.Sums> {
    static final SumsCoder INSTANCE = new SumsCoder();

    @Override
    public void encode(MonteCarlo.Sums s, OutputStream out) throws IOException {
      VarInt.encode(s.rows(), out);
      VarInt.encode(s.cols(), out);
      VarInt.encode(s.draws(), out);
      DoubleArrayCoder.of().encode(s.sum(), out);
      DoubleArrayCoder.of().encode(s.sumOfSquares(), out);
    }

    @Override
    public MonteCarlo.Sums decode(InputStream in) throws IOException {
      int rows = VarInt.decodeInt(in);
      int cols = VarInt.decodeInt(in);
      long draws = VarInt.decodeLong(in);
      return new MonteCarlo.Sums(rows, cols, draws, DoubleArrayCoder.of().decode(in),
          DoubleArrayCoder.of().decode(in));
    }
  }
}
