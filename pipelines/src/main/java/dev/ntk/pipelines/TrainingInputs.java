package dev.ntk.pipelines;

import dev.ntk.io.NpyArray;
import dev.ntk.kernels.Layer;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** The model and the training inputs of the commands that learn from a training set: predict, train and lr. */
final class TrainingInputs {
  @Option(names = "--model", required = true, paramLabel = "M.json", description = "The model file.")
  Path model;

  @Option(names = "--x-train", required = true, paramLabel = "X.npy", description = "Training inputs.")
  Path xTrain;

  /**
   * The training inputs and the test inputs {@code xTest} ({@code --x-test}; {@code null}: none),
   * read whole and checked against each other and {@code layer}.
   */
  Inputs read(Layer layer, Path xTest) {
    NpyArray train = InputChecks.inputs("--x-train", xTrain);
    NpyArray test = xTest == null ? null : InputChecks.inputs("--x-test", xTest);
    InputChecks.fit(model, layer, "--x-train", xTrain, train, xTest == null ? null : "--x-test", xTest, test);
    return new Inputs(train, test);
  }

  /** The training inputs and the test inputs ({@code null}: none), batch first. */
  record Inputs(NpyArray train, NpyArray test) {}
}
