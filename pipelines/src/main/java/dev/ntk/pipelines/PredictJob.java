package dev.ntk.pipelines;

import dev.ntk.io.NpyDType;
import dev.ntk.kernels.Get;
import dev.ntk.transforms.GpInference;
import dev.ntk.transforms.TileSet;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.apache.beam.sdk.Pipeline;
import org.apache.beam.sdk.options.PipelineOptions;

/**
 * {@code ntk predict --t inf}: exact GP inference with the infinite network's kernel {@code get}
 * (NNGP posterior, or the NTK infinite ensemble trained to convergence), on a Beam runner. Writes
 * {@code out/mean.npy} ({@code (N_test, K)}) and with {@code computeCov} {@code out/cov.npy}
 * ({@code (N_test, N_test)}); kernel tiles go under {@code out/tiles/<set>/}, one set per kernel.
 *
 * <p>Inputs are expected to be valid (the command line checks them first).
 */
public record PredictJob(Path model, Path xTrain, Path yTrain, Path xTest, Get get, double diagReg,
    boolean computeCov, int tile, NpyDType dtype, Path out) {

  /** Builds and runs the pipeline, returning when its outputs are written. */
  public JobReport run(PipelineOptions options) throws IOException {
    return run(options, out, Progress.NONE);
  }

  /** Runs with the predictions written to {@code outputs} rather than {@code out}, showing progress. */
  JobReport run(PipelineOptions options, Path outputs, Progress progress) throws IOException {
    String json = Files.readString(model, StandardCharsets.UTF_8);
    Path tiles = out.resolve(Outputs.TILES);
    TileSet trainTrain = TileSet.create(json, xTrain, null, tile, dtype, tiles);
    TileSet testTrain = TileSet.create(json, xTest, xTrain, tile, dtype, tiles);
    TileSet testTest = computeCov ? TileSet.create(json, xTest, null, tile, dtype, tiles) : null;
    Pipeline pipeline = Pipeline.create(options);
    pipeline.apply("GpInference", GpInference.of(trainTrain, testTrain, testTest, yTrain, get, diagReg, outputs));
    List<TileSet> sets = testTest == null ? List.of(trainTrain, testTrain) : List.of(trainTrain, testTrain, testTest);
    return Jobs.run(pipeline, sets, progress);
  }
}
