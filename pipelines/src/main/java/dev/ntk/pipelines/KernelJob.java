package dev.ntk.pipelines;

import dev.ntk.io.NpyDType;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Model;
import dev.ntk.kernels.engine.Backend;
import dev.ntk.transforms.KernelTiles;
import dev.ntk.transforms.TileSet;
import dev.ntk.transforms.WriteKernels;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.apache.beam.sdk.Pipeline;
import org.apache.beam.sdk.options.PipelineOptions;

/**
 * {@code ntk kernel}: the NNGP and NTK between every pair of rows of {@code x1} and {@code x2},
 * computed tile by tile on a Beam runner and written as {@code out/<get>.npy} (shape {@code (N1,
 * N2)}) with the Arrow tiles under {@code out/tiles/<set>/} (see {@link TileSet#setName}).
 *
 * <p>Inputs are expected to be valid (the command line checks them first).
 *
 * @param x2 {@code null} for the kernel of {@code x1} with itself
 * @param pattern1 the graph patterns of {@code x1}'s rows for a model with {@code Aggregate}, else {@code null}
 * @param pattern2 the graph patterns of {@code x2}'s rows ({@code null} with {@code x2})
 */
public record KernelJob(Model model, Path x1, Path x2, List<Get> get, int tile, NpyDType dtype, Path out,
    Backend backend, Double maskConstant, Path pattern1, Path pattern2) {
  public KernelJob {
    get = List.copyOf(get);
  }

  /** The job on the {@code auto} backend. */
  public KernelJob(Model model, Path x1, Path x2, List<Get> get, int tile, NpyDType dtype, Path out) {
    this(model, x1, x2, get, tile, dtype, out, Backend.AUTO, null, null, null);
  }

  /** The job of the model in the file {@code model} on the {@code auto} backend. */
  public KernelJob(Path model, Path x1, Path x2, List<Get> get, int tile, NpyDType dtype, Path out) {
    this(Model.read(model), x1, x2, get, tile, dtype, out, Backend.AUTO, null, null, null);
  }

  /** The same job on {@code newBackend}. */
  public KernelJob withBackend(Backend newBackend) {
    return new KernelJob(model, x1, x2, get, tile, dtype, out, newBackend, maskConstant, pattern1, pattern2);
  }

  /** The same job on inputs padded with {@code constant} (neural-tangents' {@code mask_constant}; null: none). */
  public KernelJob withMaskConstant(Double constant) {
    return new KernelJob(model, x1, x2, get, tile, dtype, out, backend, constant, pattern1, pattern2);
  }

  /**
   * The same job of a graph model whose inputs' rows have the graph patterns {@code a1} (of x1) and
   * {@code a2} (of x2, {@code null} with it); both {@code null}: none.
   */
  public KernelJob withPatterns(Path a1, Path a2) {
    return new KernelJob(model, x1, x2, get, tile, dtype, out, backend, maskConstant, a1, a2);
  }

  /** Builds and runs the pipeline, returning when its outputs are written. */
  public JobReport run(PipelineOptions options) throws IOException {
    return run(options, out, Progress.NONE);
  }

  /** Runs with the kernels written to {@code outputs} rather than {@code out}, showing progress. */
  JobReport run(PipelineOptions options, Path outputs, Progress progress) throws IOException {
    String a = x1.toAbsolutePath().toString();
    String b = x2 == null ? null : x2.toAbsolutePath().toString();
    String store = out.resolve(Outputs.TILES).toAbsolutePath().toString();
    TileSet tiles = pattern1 == null ? TileSet.create(model, a, b, tile, dtype, store, maskConstant)
        : TileSet.create(model, a, b, tile, dtype, store, maskConstant, pattern1.toAbsolutePath().toString(),
            pattern2 == null ? null : pattern2.toAbsolutePath().toString());
    return run(tiles, get, backend, options, outputs, progress);
  }

  /**
   * Computes the tiles of {@code tiles} that are not on disk yet on {@code options}' runner and
   * writes the kernels {@code get} from them into {@code outputs}: the pipeline of every job whose
   * outputs are whole kernels ({@code ntk kernel}, {@code ntk empirical}).
   */
  static JobReport run(TileSet tiles, List<Get> get, Backend backend, PipelineOptions options, Path outputs,
      Progress progress) {
    Pipeline pipeline = Pipeline.create(options);
    pipeline.apply("Kernel", KernelTiles.of(tiles).withBackend(backend))
        .apply("WriteKernels", WriteKernels.of(tiles, get, outputs));
    return Jobs.run(pipeline, List.of(tiles), progress);
  }
}
