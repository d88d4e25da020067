package dev.ntk.pipelines;

import dev.ntk.io.NpyDType;
import dev.ntk.kernels.Model;
import dev.ntk.kernels.engine.Backend;
import dev.ntk.kernels.predict.ConjugateGradients;
import dev.ntk.transforms.GpInference;
import dev.ntk.transforms.PredictSettings;
import dev.ntk.transforms.TileSet;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.apache.beam.sdk.Pipeline;
import org.apache.beam.sdk.options.PipelineOptions;

/**
 * {@code ntk predict}: predictions of the infinite network as {@code settings} say (exact GP
 * inference, gradient descent on MSE for the ensemble or one network, or by ODE), on a Beam
 * runner. Writes {@code out/mean.npy} ({@code (N_test, K)}, with a leading time axis for several
 * times), with {@code computeCov} {@code out/cov.npy} ({@code (N_test, N_test)}), and with {@code
 * settings.nll()} {@code out/nll.npy}; kernel tiles go under {@code out/tiles/<set>/}, one set per kernel.
 * Exact inference factors the train-train kernel, or with {@code cg} solves by conjugate gradients
 * on its tiles.
 *
 * <p>Inputs are expected to be valid (the command line checks them first).
 */
public record PredictJob(Model model, Path xTrain, Path yTrain, Path xTest, PredictSettings settings,
    boolean computeCov, int tile, NpyDType dtype, Path out, Backend backend, ConjugateGradients.Settings cg) {

  /** The job on the {@code auto} backend, exact inference by Cholesky. */
  public PredictJob(Model model, Path xTrain, Path yTrain, Path xTest, PredictSettings settings,
      boolean computeCov, int tile, NpyDType dtype, Path out) {
    this(model, xTrain, yTrain, xTest, settings, computeCov, tile, dtype, out, Backend.AUTO, null);
  }

  /** The job of the model in the file {@code model} on the {@code auto} backend. */
  public PredictJob(Path model, Path xTrain, Path yTrain, Path xTest, PredictSettings settings,
      boolean computeCov, int tile, NpyDType dtype, Path out) {
    this(Model.read(model), xTrain, yTrain, xTest, settings, computeCov, tile, dtype, out, Backend.AUTO, null);
  }

  /** The same job with its kernel tiles on {@code newBackend}. */
  public PredictJob withBackend(Backend newBackend) {
    return new PredictJob(model, xTrain, yTrain, xTest, settings, computeCov, tile, dtype, out, newBackend, cg);
  }

  /**
   * The same job solving by conjugate gradients on the train-train tiles ({@link
   * GpInference#withConjugateGradients}), or by Cholesky for {@code null}.
   */
  public PredictJob withConjugateGradients(ConjugateGradients.Settings newCg) {
    return new PredictJob(model, xTrain, yTrain, xTest, settings, computeCov, tile, dtype, out, backend, newCg);
  }

  /** Builds and runs the pipeline, returning when its outputs are written. */
  public JobReport run(PipelineOptions options) throws IOException {
    return run(options, out, Progress.NONE);
  }

  /** Runs with the predictions written to {@code outputs} rather than {@code out}, showing progress. */
  JobReport run(PipelineOptions options, Path outputs, Progress progress) throws IOException {
    Path tiles = out.resolve(Outputs.TILES);
    TileSet trainTrain = TileSet.create(model, xTrain, null, tile, dtype, tiles);
    TileSet testTrain = TileSet.create(model, xTest, xTrain, tile, dtype, tiles);
    TileSet testTest = computeCov ? TileSet.create(model, xTest, null, tile, dtype, tiles) : null;
    Pipeline pipeline = Pipeline.create(options);
    GpInference inference = GpInference.of(trainTrain, testTrain, testTest, yTrain, settings, outputs)
        .withBackend(backend);
    pipeline.apply("GpInference", cg == null ? inference : inference.withConjugateGradients(cg));
    List<TileSet> sets = testTest == null ? List.of(trainTrain, testTrain) : List.of(trainTrain, testTrain, testTest);
    return Jobs.run(pipeline, sets, progress);
  }
}
