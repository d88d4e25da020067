package dev.ntk.pipelines;

import ai.djl.ndarray.types.Shape;
import dev.ntk.io.Npy;
import dev.ntk.io.NpyDType;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Model;
import dev.ntk.kernels.Plan;
import dev.ntk.kernels.engine.Backend;
import dev.ntk.runners.Runners;
import dev.ntk.transforms.KernelTiles;
import dev.ntk.transforms.NtkPipelineOptions;
import dev.ntk.transforms.TileSet;
import dev.ntk.transforms.WriteKernels;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.apache.beam.sdk.Pipeline;
import org.apache.beam.sdk.options.PipelineOptions;

/**
 * {@code ntk kernel}: the NNGP and NTK between every pair of rows of {@code x1} and {@code x2},
 * computed tile by tile on a Beam runner and written as {@code out/<get>.npy} (shape {@code (N1,
 * N2)}) with the Arrow tiles under {@code out/tiles/<set>/} (see {@link TileSet#setName}). Its tile
 * settings are the pipeline's {@link NtkPipelineOptions} ({@code --tileRows}, unset sized as {@code
 * bin/ntk kernel --tile auto} sizes them, {@code --maxTileBytes}, {@code --dtype}, {@code --backend}),
 * read when it runs, as {@link KernelPipeline} reads them.
 *
 * <pre>{@code
 * new KernelJob(Path.of("model.json"), Path.of("x.npy"), null, List.of(Get.NTK), Path.of("out"))
 *     .run(PipelineOptionsFactory.fromArgs("--tileRows=512", "--dtype=float32").create());
 * }</pre>
 *
 * <p>Inputs are expected to be valid (the command line checks them first).
 *
 * @param x2 {@code null} for the kernel of {@code x1} with itself
 * @param pattern1 the graph patterns of {@code x1}'s rows for a model with {@code Aggregate}, else {@code null}
 * @param pattern2 the graph patterns of {@code x2}'s rows ({@code null} with {@code x2})
 */
public record KernelJob(Model model, Path x1, Path x2, List<Get> get, Path out, Double maskConstant, Path pattern1,
    Path pattern2) {
  public KernelJob {
    get = List.copyOf(get);
  }

  /** The job of unmasked inputs. */
  public KernelJob(Model model, Path x1, Path x2, List<Get> get, Path out) {
    this(model, x1, x2, get, out, null, null, null);
  }

  /** The job of the model in the file {@code model}. */
  public KernelJob(Path model, Path x1, Path x2, List<Get> get, Path out) {
    this(Model.read(model), x1, x2, get, out, null, null, null);
  }

  /** The same job on inputs padded with {@code constant} (neural-tangents' {@code mask_constant}; null: none). */
  public KernelJob withMaskConstant(Double constant) {
    return new KernelJob(model, x1, x2, get, out, constant, pattern1, pattern2);
  }

  /**
   * The same job of a graph model whose inputs' rows have the graph patterns {@code a1} (of x1) and
   * {@code a2} (of x2, {@code null} with it); both {@code null}: none.
   */
  public KernelJob withPatterns(Path a1, Path a2) {
    return new KernelJob(model, x1, x2, get, out, maskConstant, a1, a2);
  }

  /** Builds and runs the pipeline, returning when its outputs are written. */
  public JobReport run(PipelineOptions options) throws IOException {
    return run(options, out, Progress.NONE);
  }

  /** Runs with the kernels written to {@code outputs} rather than {@code out}, showing progress. */
  JobReport run(PipelineOptions options, Path outputs, Progress progress) throws IOException {
    TileSettings settings = TileSettings.of(options.as(NtkPipelineOptions.class));
    String a = x1.toAbsolutePath().toString();
    String b = x2 == null ? null : x2.toAbsolutePath().toString();
    long[] shape = Npy.readHeader(x1).shape();
    long n2 = x2 == null ? shape[0] : Npy.readHeader(x2).shape()[0];
    int rows = tileRows(settings, plan(model, shape, get, settings.dtype(), maskConstant), shape[0], n2,
        x2 == null, maskConstant, options);
    String store = out.resolve(Outputs.TILES).toAbsolutePath().toString();
    TileSet tiles = pattern1 == null ? TileSet.create(model, a, b, rows, settings.dtype(), store, maskConstant)
        : TileSet.create(model, a, b, rows, settings.dtype(), store, maskConstant, pattern1.toAbsolutePath().toString(),
            pattern2 == null ? null : pattern2.toAbsolutePath().toString());
    return run(tiles, get, options, outputs, progress);
  }

  /** The plan of the kernels {@code get} of {@code model} between inputs of shape {@code x1} (batch first). */
  static Plan plan(Model model, long[] x1, List<Get> get, NpyDType dtype, Double maskConstant) {
    return model.plan(new Shape(Arrays.copyOfRange(x1, 1, x1.length)), InProcessKernel.dataType(dtype),
        Get.setOf(get), maskConstant);
  }

  /**
   * The rows per tile of an {@code n1 x n2} kernel of {@code plan} on {@code options}' runner, by
   * {@link TileSettings#kernelRows}: auto tiles spread over a Flink cluster's workers.
   */
  static int tileRows(TileSettings settings, Plan plan, long n1, long n2, boolean selfKernel, Double maskConstant,
      PipelineOptions options) {
    return settings.kernelRows(plan, n1, n2, selfKernel, settings.sizedFor(plan, maskConstant),
        Runners.remoteWorkers(options));
  }

  /**
   * Computes the tiles of {@code tiles} that are not on disk yet on {@code options}' runner and
   * backend ({@link NtkPipelineOptions#getBackend}) and writes the kernels {@code get} from them into
   * {@code outputs}: the pipeline of every job whose outputs are whole kernels ({@code ntk kernel},
   * {@code ntk empirical}).
   */
  static JobReport run(TileSet tiles, List<Get> get, PipelineOptions options, Path outputs, Progress progress) {
    Backend backend = Backend.of(options.as(NtkPipelineOptions.class).getBackend());
    Pipeline pipeline = Pipeline.create(options);
    pipeline.apply("Kernel", KernelTiles.of(tiles).withBackend(backend))
        .apply("WriteKernels", WriteKernels.of(tiles, get, outputs));
    return Jobs.run(pipeline, List.of(tiles), progress);
  }
}
