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
import dev.ntk.transforms.NtkPipelineOptions;
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
import org.apache.beam.sdk.transforms.GroupByKey;
import org.apache.beam.sdk.transforms.MapElements;
import org.apache.beam.sdk.transforms.ParDo;
import org.apache.beam.sdk.transforms.Reshuffle;
import org.apache.beam.sdk.transforms.SimpleFunction;
import org.apache.beam.sdk.util.VarInt;
import org.apache.beam.sdk.values.KV;

/**
 * {@code ntk mc}: Monte Carlo kernels of finite networks, in-process or as a Beam pipeline whose
 * workers each draw a batch of parameters and whose sums are combined into the estimate. Draw
 * {@code s} is the same on every path ({@link MonteCarlo#sums}), so a pipeline's estimate equals
 * the in-process one to the rounding of its sums.
 *
 * <p>One job estimates every kernel of {@link #get} for every model of {@link #models} (the same
 * layers at several widths) after each of the increasing sample counts {@link #samples}: the
 * estimate for {@code samples[k]} averages the first {@code samples[k]} draws of one sequence, so a
 * convergence curve costs the draws of its last count. Each output gains a leading width axis when
 * there are several models and a leading samples axis when there are several counts: {@code
 * ([widths,] [counts,] N1, N2)}. The estimates' dtype is the in-process run's, or the pipeline
 * options' ({@link NtkPipelineOptions#getDtype}).
 *
 * @param models the finite networks' models (widths already set), one per width
 * @param x1 the inputs' {@code .npy} file
 * @param x2 {@code null} for the kernel of {@code x1} with itself
 * @param samples the increasing sample counts, each at least 2
 * @param batches how many batches of draws the pipeline spreads over its workers, per model
 */
record McJob(List<Model> models, String x1, String x2, List<Get> get, List<Integer> samples, long seed,
    int batches) implements Serializable {
  McJob {
    models = List.copyOf(models);
    get = List.copyOf(get);
    samples = List.copyOf(samples);
    batches = Math.max(1, Math.min(batches, samples.get(samples.size() - 1)));
  }

  /**
   * Estimates every kernel in this process from the inputs the command has read and checked
   * ({@code b} null for x1 with itself) in {@code dtype}, and writes them into {@code dir}.
   */
  void runInProcess(Path dir, NpyArray a, NpyArray b, NpyDType dtype) throws IOException {
    int[] counts = counts();
    List<List<List<MonteCarlo.Sums>>> byModel = new ArrayList<>();
    for (Model m : models) {
      byModel.add(sums(m, 0, counts, a, b, dtype));
    }
    for (int g = 0; g < get.size(); g++) {
      MonteCarlo.Estimate[][] estimates = new MonteCarlo.Estimate[models.size()][counts.length];
      for (int w = 0; w < models.size(); w++) {
        for (int k = 0; k < counts.length; k++) {
          estimates[w][k] = byModel.get(w).get(g).get(k).estimate();
        }
      }
      write(dir, get.get(g), estimates, dtype);
    }
  }

  /**
   * Runs the pipeline on {@code options} in their dtype ({@link NtkPipelineOptions#getDtype}), writing
   * into {@code dir}; returns the pipeline's seconds.
   */
  JobReport run(PipelineOptions options, Path dir, Progress progress) {
    NpyDType dtype = NpyDType.fromName(options.as(NtkPipelineOptions.class).getDtype());
    List<Integer> elements = new ArrayList<>();
    for (int e = 0; e < models.size() * (bounds().length - 1); e++) {
      elements.add(e);
    }
    Pipeline pipeline = Pipeline.create(options);
    pipeline.apply("Batches", Create.of(elements).withCoder(VarIntCoder.of()))
        .apply("Spread", Reshuffle.viaRandomKey())
        .apply("Draw", ParDo.of(new DrawFn(this, dtype)))
        .setCoder(KvCoder.of(StringUtf8Coder.of(), SumsCoder.INSTANCE))
        .apply("Add", Combine.perKey(McJob::add))
        .apply("ByKernel", MapElements.via(new ByKernel()))
        .setCoder(KvCoder.of(StringUtf8Coder.of(), KvCoder.of(StringUtf8Coder.of(), SumsCoder.INSTANCE)))
        .apply("Gather", GroupByKey.create())
        .apply("Write", ParDo.of(new WriteFn(this, dir.toString(), dtype)));
    JobReport report = Jobs.run(pipeline, List.of(), progress);
    return new JobReport(report.runner(), report.seconds(), -1, -1, -1);
  }

  /** The batches of draws of the pipeline, over every model. */
  int batchCount() {
    return models.size() * (bounds().length - 1);
  }

  private int[] counts() {
    return samples.stream().mapToInt(Integer::intValue).toArray();
  }

  /**
   * The draws where the pipeline's batches start and end: {@link #batches} ranges of draws as
   * even as they go, split further at every sample count so that each batch adds to one count's
   * estimate and those after it.
   */
  int[] bounds() {
    int last = samples.get(samples.size() - 1);
    java.util.TreeSet<Integer> bounds = new java.util.TreeSet<>(samples);
    for (int b = 0; b < batches; b++) {
      bounds.add((int) ((long) last * b / batches));
    }
    return bounds.stream().mapToInt(Integer::intValue).toArray();
  }

  /** The index of the first sample count that the draws up to {@code end} are part of. */
  private int segment(int end) {
    int k = 0;
    while (samples.get(k) < end) {
      k++;
    }
    return k;
  }

  /**
   * The sums over draws {@code [from, ends[k])} of {@code model} for every kernel of {@link #get}
   * (outer list, in its order) and every end (inner list), in {@code dtype}.
   */
  private List<List<MonteCarlo.Sums>> sums(Model model, int from, int[] ends, NpyArray a, NpyArray b,
      NpyDType dtype) {
    DataType type = dtype == NpyDType.FLOAT32 ? DataType.FLOAT32 : DataType.FLOAT64;
    Layer layer = model.layer();
    try (NDManager m = Tensors.newManager()) {
      NDArray x = Tensors.create(m, a.data(), new Shape(a.shape()), type);
      NDArray y = b == null ? x : Tensors.create(m, b.data(), new Shape(b.shape()), type);
      List<List<MonteCarlo.Sums>> sums = new ArrayList<>();
      for (Get g : get) {
        sums.add(MonteCarlo.sums(g, layer, x, y, from, ends, seed));
      }
      return sums;
    }
  }

  /**
   * Writes {@code <get>.npy} and {@code <get>_stderr.npy} from the estimates by model and sample
   * count, {@code ([models,] [counts,] N1, N2)}, in {@code dtype}; a non-finite estimate is an error.
   */
  private void write(Path dir, Get g, MonteCarlo.Estimate[][] estimates, NpyDType dtype) throws IOException {
    MonteCarlo.Estimate first = estimates[0][0];
    int size = first.rows() * first.cols();
    int counts = estimates[0].length;
    double[] mean = new double[estimates.length * counts * size];
    double[] se = new double[mean.length];
    for (int w = 0; w < estimates.length; w++) {
      for (int k = 0; k < counts; k++) {
        MonteCarlo.Estimate e = estimates[w][k];
        OptionalLong bad = Npy.firstNonFinite(e.mean());
        if (bad.isPresent()) {
          throw new NonFiniteKernelException("the Monte Carlo " + g.key().toUpperCase(Locale.ROOT)
              + (estimates.length > 1 ? " of width index " + w : "") + " after " + e.samples()
              + " samples has the non-finite entry " + e.mean()[(int) bad.getAsLong()] + " at flat index "
              + bad.getAsLong() + ": the weights or the inputs are likely too large for " + dtype.typeName());
        }
        System.arraycopy(e.mean(), 0, mean, (w * counts + k) * size, size);
        System.arraycopy(e.standardError(), 0, se, (w * counts + k) * size, size);
      }
    }
    List<Long> shape = new ArrayList<>();
    if (estimates.length > 1) {
      shape.add((long) estimates.length);
    }
    if (counts > 1) {
      shape.add((long) counts);
    }
    shape.add((long) first.rows());
    shape.add((long) first.cols());
    long[] dims = shape.stream().mapToLong(Long::longValue).toArray();
    Npy.write(dir.resolve(g.key() + ".npy"), new NpyArray(dims, dtype, mean));
    Npy.write(dir.resolve(g.key() + "_stderr.npy"), new NpyArray(dims, dtype, se));
  }

  private static MonteCarlo.Sums add(Iterable<MonteCarlo.Sums> parts) {
    MonteCarlo.Sums total = null;
    for (MonteCarlo.Sums p : parts) {
      total = total == null ? p : total.plus(p);
    }
    return total;
  }

  /**
   * Draws one batch of parameters of one model for every kernel asked for: element {@code e} is
   * batch {@code e % ranges} of model {@code e / ranges}. Its sums are keyed {@code
   * get/model/segment}, the segment being the first sample count they are part of.
   */
  private static final class DrawFn extends DoFn<Integer, KV<String, MonteCarlo.Sums>> {
    private final McJob job;
    private final NpyDType dtype;

    DrawFn(McJob job, NpyDType dtype) {
      this.job = job;
      this.dtype = dtype;
    }

    @ProcessElement
    public void process(@Element Integer element, OutputReceiver<KV<String, MonteCarlo.Sums>> out)
        throws IOException {
      int[] bounds = job.bounds();
      int ranges = bounds.length - 1;
      int model = element / ranges;
      int batch = element % ranges;
      NpyArray a = Npy.read(Path.of(job.x1()));
      NpyArray b = job.x2() == null ? null : Npy.read(Path.of(job.x2()));
      List<List<MonteCarlo.Sums>> sums = job.sums(job.models().get(model), bounds[batch],
          new int[] {bounds[batch + 1]}, a, b, dtype);
      int segment = job.segment(bounds[batch + 1]);
      for (int i = 0; i < sums.size(); i++) {
        out.output(KV.of(job.get().get(i).key() + "/" + model + "/" + segment, sums.get(i).get(0)));
      }
    }
  }

  /** {@code get/model/segment} to {@code get} with {@code model/segment}: a kernel's parts together. */
  private static final class ByKernel
      extends SimpleFunction<KV<String, MonteCarlo.Sums>, KV<String, KV<String, MonteCarlo.Sums>>> {
    @Override
    public KV<String, KV<String, MonteCarlo.Sums>> apply(KV<String, MonteCarlo.Sums> part) {
      int slash = part.getKey().indexOf('/');
      return KV.of(part.getKey().substring(0, slash), KV.of(part.getKey().substring(slash + 1), part.getValue()));
    }
  }

  /**
   * Writes one kernel's estimates: for each model, the sums of its segments up to each sample
   * count.
   */
  private static final class WriteFn extends DoFn<KV<String, Iterable<KV<String, MonteCarlo.Sums>>>, Void> {
    private final McJob job;
    private final String dir;
    private final NpyDType dtype;

    WriteFn(McJob job, String dir, NpyDType dtype) {
      this.job = job;
      this.dir = dir;
      this.dtype = dtype;
    }

    @ProcessElement
    public void process(@Element KV<String, Iterable<KV<String, MonteCarlo.Sums>>> parts) throws IOException {
      int counts = job.samples().size();
      MonteCarlo.Sums[][] segments = new MonteCarlo.Sums[job.models().size()][counts];
      for (KV<String, MonteCarlo.Sums> part : parts.getValue()) {
        String[] index = part.getKey().split("/");
        segments[Integer.parseInt(index[0])][Integer.parseInt(index[1])] = part.getValue();
      }
      MonteCarlo.Estimate[][] estimates = new MonteCarlo.Estimate[segments.length][counts];
      for (int w = 0; w < segments.length; w++) {
        MonteCarlo.Sums total = null;
        for (int k = 0; k < counts; k++) {
          MonteCarlo.Sums s = segments[w][k];
          if (s == null) {
            throw new IllegalStateException(parts.getKey() + ": no draws of model " + w + " before sample count "
                + job.samples().get(k));
          }
          total = total == null ? s : total.plus(s);
          if (total.draws() != job.samples().get(k)) {
            throw new IllegalStateException(parts.getKey() + ": " + total.draws() + " draws were added up, not "
                + job.samples().get(k));
          }
          estimates[w][k] = total.estimate();
        }
      }
      job.write(Path.of(dir), Get.of(parts.getKey()), estimates, dtype);
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
