package dev.ntk.pipelines;

import dev.ntk.io.Npy;
import dev.ntk.io.NpyDType;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Model;
import dev.ntk.transforms.BeamFiles;
import dev.ntk.transforms.KernelTiles;
import dev.ntk.transforms.NtkPipelineOptions;
import dev.ntk.transforms.TileSet;
import dev.ntk.transforms.WriteKernels;
import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.Channels;
import java.nio.channels.SeekableByteChannel;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import org.apache.beam.sdk.Pipeline;
import org.apache.beam.sdk.PipelineResult;
import org.apache.beam.sdk.io.FileSystems;
import org.apache.beam.sdk.options.PipelineOptionsFactory;

/**
 * The kernel job as a plain Beam main class: {@link KernelOptions} (with the tile settings of {@link
 * NtkPipelineOptions}: {@code --tileRows}, unset sized as {@code bin/ntk kernel --tile auto} sizes them)
 * and every Beam and runner option from the arguments, all files through Beam's {@code FileSystems},
 * for launchers that run a main class ({@code flink run -c}, Dataflow) and for inputs and outputs on
 * {@code gs://}, {@code s3://} or {@code hdfs://}. It is what {@code bin/ntk kernel} runs, without the
 * command line's local output directory (lock, staging, manifest) and progress display.
 */
public final class KernelPipeline {
  private KernelPipeline() {}

  public static void main(String[] args) throws IOException {
    PipelineOptionsFactory.register(KernelOptions.class);
    KernelOptions options = PipelineOptionsFactory.fromArgs(args).withValidation()
        .as(KernelOptions.class);
    PipelineResult.State state = build(options).run().waitUntilFinish();
    if (state != PipelineResult.State.DONE) {
      throw new IllegalStateException("the pipeline ended in state " + state);
    }
  }

  /**
   * The pipeline of {@code options}: the model is read, the inputs' headers checked and hashed and
   * the tile set described here, where the pipeline is built; the tiles and kernels are computed
   * and written by the runner.
   */
  public static Pipeline build(KernelOptions options) throws IOException {
    FileSystems.setDefaultPipelineOptions(options);
    String json;
    try (InputStream in = Channels.newInputStream(BeamFiles.openSeekable(BeamFiles.file(options.getModel())))) {
      json = new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
    List<Get> get = new ArrayList<>();
    for (String g : options.getGet().split(",")) {
      get.add(Get.of(g));
    }
    String tiles = options.getTileDirectory() != null ? options.getTileDirectory()
        : BeamFiles.childDirectory(BeamFiles.directory(options.getOut()), "tiles").toString();
    Double mask = options.getMaskConstant();
    if (mask != null) {
      dev.ntk.kernels.Masking.checkConstant(mask);
    }
    Model model = Model.parse(json);
    boolean graph = dev.ntk.kernels.Graph.readsPatterns(model.layer());
    if (graph != (options.getPattern1() != null) || (options.getPattern2() != null && options.getX2() == null)) {
      throw new IllegalArgumentException(graph ? "the model " + options.getModel() + " has Aggregate layers: give "
          + "--pattern1 (and --pattern2 with --x2), the graph patterns of the inputs' rows"
          : options.getPattern1() == null ? "--pattern2 is the pattern of --x2 beside --pattern1"
          : "--pattern1: the model " + options.getModel() + " has no Aggregate layer, which alone reads patterns");
    }
    TileSettings settings = TileSettings.of(options);
    List<Get> kernels = List.copyOf(new LinkedHashSet<>(get));
    long[] x1 = header(options.getX1());
    long n2 = options.getX2() == null ? x1[0] : header(options.getX2())[0];
    int rows = KernelJob.tileRows(settings, KernelJob.plan(model, x1, kernels, settings.dtype(), mask), x1[0], n2,
        options.getX2() == null, options);
    NpyDType dtype = settings.dtype();
    TileSet set = graph ? TileSet.create(model, options.getX1(), options.getX2(), rows, dtype, tiles,
        mask, options.getPattern1(), options.getPattern2())
        : TileSet.create(model, options.getX1(), options.getX2(), rows, dtype, tiles, mask);
    Pipeline pipeline = Pipeline.create(options);
    pipeline.apply("Kernel", KernelTiles.of(set).withBackend(settings.backend()))
        .apply("WriteKernels", WriteKernels.to(set, kernels, options.getOut()));
    return pipeline;
  }

  /** The shape of the {@code .npy} file {@code file} (a path or URI of any Beam file system). */
  private static long[] header(String file) throws IOException {
    try (SeekableByteChannel channel = BeamFiles.openSeekable(BeamFiles.file(file))) {
      return Npy.readHeader(channel, file).shape();
    }
  }
}
