package dev.ntk.pipelines;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.kernels.Layer;
import dev.ntk.kernels.Tensors;
import dev.ntk.kernels.predict.Predict;
import java.io.IOException;
import java.nio.file.Path;
import java.util.OptionalLong;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code ntk lr}: the largest learning rate at which gradient descent on MSE converges. */
@Command(name = "lr", mixinStandardHelpOptions = true,
    description = "Prints the largest learning rate for which gradient descent on MSE converges: "
        + "2 N K / (largest eigenvalue of the train NTK).")
final class LrCommand implements Callable<Integer> {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Mixin TrainingInputs training;

  @Option(names = "--y-train", paramLabel = "Y.npy",
      description = "Training targets (N,) or (N, K), for K (default: K = 1).")
  Path yTrain;

  @Override
  public Integer call() throws IOException {
    Layer layer = InputChecks.model(training.model).layer();
    InputChecks.refuseGraph("ntk lr", training.model, layer);
    NpyArray x = training.read(layer, null).train();
    int n = (int) x.shape()[0];
    int outputs = yTrain == null ? 1 : InputChecks.targets("--y-train", yTrain, n).data().length / n;
    spec.commandLine().getOut().println(largestLearningRate(layer, x, outputs, 0.0));
    return 0;
  }

  /**
   * The largest learning rate for which gradient descent on MSE, with heavy-ball {@code momentum}
   * (0 for none), converges on the training inputs {@code x} with {@code outputs} target columns,
   * from the infinite network's NTK ({@link Predict#maxLearningRate}).
   */
  static double largestLearningRate(Layer layer, NpyArray x, int outputs, double momentum) {
    int n = (int) x.shape()[0];
    try (NDManager m = Tensors.newManager()) {
      NDArray xs = Tensors.create(m, x.data(), new Shape(x.shape()), DataType.FLOAT64);
      NDArray ntk = layer.kernelFn().apply(xs).ntk();
      double[] values = Tensors.toDoubles(ntk);
      OptionalLong bad = Npy.firstNonFinite(values);
      if (bad.isPresent()) { // stops as kernel does, naming the entry and the layer
        throw InProcessKernel.nonFinite(layer, x, null, false, NpyDType.FLOAT64, "ntk", bad.getAsLong(),
            values[Math.toIntExact(bad.getAsLong())], n);
      }
      return Predict.maxLearningRate(ntk, outputs, momentum);
    }
  }
}
