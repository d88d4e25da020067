package dev.ntk.pipelines;

import dev.ntk.io.NpyArray;
import dev.ntk.kernels.Layer;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** The model and the inputs of a kernel between two sets of rows. */
final class KernelInputs {
  @Option(names = "--model", required = true, paramLabel = "M.json", description = "The model file.")
  Path model;

  @Option(names = "--x1", required = true, paramLabel = "X1.npy", description = "Inputs, batch first.")
  Path x1;

  @Option(names = "--x2", paramLabel = "X2.npy", description = "Second inputs (default: x1).")
  Path x2;

  /** The inputs, read whole and checked against each other and {@code layer}. */
  Inputs read(Layer layer) {
    NpyArray a = InputChecks.inputs("--x1", x1);
    NpyArray b = x2 == null ? null : InputChecks.inputs("--x2", x2);
    InputChecks.fit(model, layer, "--x1", x1, a, "--x2", x2, b);
    return new Inputs(a, b);
  }

  /** {@code x2} is {@code null} for x1 with itself. */
  record Inputs(NpyArray x1, NpyArray x2) {
    long n1() {
      return x1.shape()[0];
    }

    long n2() {
      return x2 == null ? n1() : x2.shape()[0];
    }
  }
}
