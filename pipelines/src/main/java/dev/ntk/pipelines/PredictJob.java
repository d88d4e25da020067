package dev.ntk.pipelines;

import ai.djl.ndarray.types.Shape;
import dev.ntk.io.Npy;
import dev.ntk.io.NpyDType;
import dev.ntk.kernels.Model;
import dev.ntk.kernels.Plan;
import dev.ntk.kernels.predict.ConjugateGradients;
import dev.ntk.transforms.GpInference;
import dev.ntk.transforms.NtkPipelineOptions;
import dev.ntk.transforms.PredictSettings;
import dev.ntk.transforms.TileSet;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
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
 * on its tiles. Its tile settings are the pipeline's {@link NtkPipelineOptions} ({@code --tileRows},
 * unset {@value TileSettings#PREDICT_TILE}, made smaller until a tile fits {@code --maxTileBytes};
 * {@code --dtype}, {@code --backend}), read when it runs.
 *
 * <p>Inputs are expected to be valid (the command line checks them first).
 */
public record PredictJob(Model model, Path xTrain, Path yTrain, Path xTest, PredictSettings settings,
    boolean computeCov, Path out, ConjugateGradients.Settings cg) {

  /** The job solving exact inference by Cholesky. */
  public PredictJob(Model model, Path xTrain, Path yTrain, Path xTest, PredictSettings settings,
      boolean computeCov, Path out) {
    this(model, xTrain, yTrain, xTest, settings, computeCov, out, null);
  }

  /** The job of the model in the file {@code model}. */
  public PredictJob(Path model, Path xTrain, Path yTrain, Path xTest, PredictSettings settings,
      boolean computeCov, Path out) {
    this(Model.read(model), xTrain, yTrain, xTest, settings, computeCov, out, null);
  }

  /**
   * The same job solving by conjugate gradients on the train-train tiles ({@link
   * GpInference#withConjugateGradients}), or by Cholesky for {@code null}.
   */
  public PredictJob withConjugateGradients(ConjugateGradients.Settings newCg) {
    return new PredictJob(model, xTrain, yTrain, xTest, settings, computeCov, out, newCg);
  }

  /** Builds and runs the pipeline, returning when its outputs are written. */
  public JobReport run(PipelineOptions options) throws IOException {
    return run(options, out, Progress.NONE);
  }

  /** Runs with the predictions written to {@code outputs} rather than {@code out}, showing progress. */
  JobReport run(PipelineOptions options, Path outputs, Progress progress) throws IOException {
    TileSettings tiles = TileSettings.of(options.as(NtkPipelineOptions.class));
    NpyDType dtype = tiles.dtype();
    Plan plan = plan(model, Npy.readHeader(xTrain).shape(), settings, computeCov, dtype);
    int rows = tiles.predictRows(plan, tiles.backend().resolve(plan.schedule()));
    Path store = out.resolve(Outputs.TILES);
    TileSet trainTrain = TileSet.create(model, xTrain, null, rows, dtype, store);
    TileSet testTrain = TileSet.create(model, xTest, xTrain, rows, dtype, store);
    TileSet testTest = computeCov ? TileSet.create(model, xTest, null, rows, dtype, store) : null;
    Pipeline pipeline = Pipeline.create(options);
    GpInference inference = GpInference.of(trainTrain, testTrain, testTest, yTrain, settings, outputs)
        .withBackend(tiles.backend());
    pipeline.apply("GpInference", cg == null ? inference : inference.withConjugateGradients(cg));
    List<TileSet> sets = testTest == null ? List.of(trainTrain, testTrain) : List.of(trainTrain, testTrain, testTest);
    return Jobs.run(pipeline, sets, progress);
  }

  /**
   * The plan of the kernels a prediction as {@code settings} say computes ({@link
   * InProcessPredict#kernels}) between inputs of shape {@code xTrain} (batch first).
   */
  static Plan plan(Model model, long[] xTrain, PredictSettings settings, boolean computeCov, NpyDType dtype) {
    return model.plan(new Shape(Arrays.copyOfRange(xTrain, 1, xTrain.length)), InProcessKernel.dataType(dtype),
        InProcessPredict.kernels(settings, computeCov));
  }
}
