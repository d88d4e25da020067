package dev.ntk.pipelines;

import dev.ntk.io.NpyDType;
import dev.ntk.transforms.GpInference;
import dev.ntk.transforms.PredictSettings;
import dev.ntk.transforms.TileSet;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.beam.sdk.Pipeline;
import org.apache.beam.sdk.options.PipelineOptions;

/**
 * {@code ntk predict}: predictions of the infinite network as {@code settings} say (exact GP
 * inference, gradient descent on MSE for the ensemble or one network, or by ODE), on a Beam
 * runner. Writes {@code out/mean.npy} ({@code (N_test, K)}, with a leading time axis for several
 * times), with {@code computeCov} {@code out/cov.npy} ({@code (N_test, N_test)}), and with {@code
 * settings.nll()} {@code out/nll.npy}; kernel tiles go under {@code out/tiles/}.
 *
 * <p>Inputs are expected to be valid (the command line checks them first).
 */
public record PredictJob(Path model, Path xTrain, Path yTrain, Path xTest, PredictSettings settings,
    boolean computeCov, int tile, NpyDType dtype, Path out) {

  /** Builds and runs the pipeline, returning when its outputs are written. */
  public JobReport run(PipelineOptions options) throws IOException {
    String json = Files.readString(model, StandardCharsets.UTF_8);
    Path tiles = out.resolve("tiles");
    TileSet trainTrain = TileSet.create(json, xTrain, null, tile, dtype, tiles.resolve("train-train"));
    TileSet testTrain = TileSet.create(json, xTest, xTrain, tile, dtype, tiles.resolve("test-train"));
    TileSet testTest = computeCov ? TileSet.create(json, xTest, null, tile, dtype, tiles.resolve("test-test")) : null;
    Pipeline pipeline = Pipeline.create(options);
    pipeline.apply("GpInference", GpInference.of(trainTrain, testTrain, testTest, yTrain, settings, out));
    return Jobs.run(pipeline);
  }
}
