package dev.ntk.pipelines;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.io.Npy;
import dev.ntk.io.NpyDType;
import dev.ntk.kernels.Layer;
import dev.ntk.kernels.Params;
import dev.ntk.kernels.Tensors;
import dev.ntk.transforms.ParamsFiles;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code ntk init}: draws the parameters of a finite network of the model, as {@link Layer#init}
 * does from {@code --seed}, and writes them as a parameters file ({@link ParamsFiles}): one array
 * per parameter, {@code <layer path>/W} and {@code <layer path>/b}, holding the N(0, 1) draws
 * under NTK parameterization and the weights under standard parameterization. The same model,
 * input shape, seed and dtype always give the same file, byte for byte; the file appears whole or
 * not at all.
 */
@Command(name = "init", mixinStandardHelpOptions = true,
    description = "Draws the parameters of a finite network of the model: writes P.npz, one array per "
        + "parameter named <layer path>/W and <layer path>/b.")
final class InitCommand implements Callable<Integer> {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Option(names = "--model", required = true, paramLabel = "M.json", description = "The model file.")
  Path model;

  @Option(names = "--input-shape", required = true, paramLabel = "D[,D...]",
      description = "The per-example input shape, channel last: 784 for vectors, 32,32,3 for images.")
  String inputShape;

  @Option(names = "--seed", paramLabel = "SEED", defaultValue = "0", description = "Random seed (default 0).")
  long seed;

  @Option(names = "--dtype", paramLabel = "DTYPE", defaultValue = "float64",
      description = "float64 (default) or float32.")
  NpyDType dtype;

  @Option(names = "--out", required = true, paramLabel = "P.npz", description = "The parameters file to write.")
  Path out;

  @Override
  public Integer call() throws IOException {
    Layer layer = InputChecks.model(model).layer();
    Shape shape = shape(inputShape);
    try {
      layer.check(shape);
    } catch (IllegalArgumentException e) {
      throw new UsageException(model + ": " + e.getMessage() + " (with --input-shape " + inputShape.trim() + ")");
    }
    if (Files.isDirectory(out)) {
      throw new UsageException("--out " + out + " is a directory, expected the .npz file to write");
    }
    long count = 0;
    PrintWriter w = spec.commandLine().getOut();
    try (NDManager manager = Tensors.newManager()) {
      Params params = layer.init(seed, shape, manager, dtype == NpyDType.FLOAT32 ? DataType.FLOAT32 : DataType.FLOAT64);
      ParamsFiles.write(layer, params, out);
      Map<String, NDArray> named = Params.named(layer, params);
      w.printf(Locale.ROOT, "wrote %s: %d arrays, %s%n", out, named.size(), dtype.typeName());
      for (Map.Entry<String, NDArray> e : named.entrySet()) {
        count += e.getValue().getShape().size();
        w.println("  " + e.getKey() + " " + Npy.shapeString(e.getValue().getShape().getShape()));
      }
    }
    w.printf(Locale.ROOT, "  %d parameters, seed %d%n", count, seed);
    return 0;
  }

  /** The per-example shape of {@code --input-shape}: comma-separated positive integers. */
  static Shape shape(String text) {
    String[] parts = text.split(",", -1);
    long[] dims = new long[parts.length];
    for (int i = 0; i < parts.length; i++) {
      try {
        dims[i] = Long.parseLong(parts[i].trim());
      } catch (NumberFormatException e) {
        dims[i] = -1;
      }
      if (dims[i] < 1) {
        throw new UsageException("--input-shape must be comma-separated positive integers (784, or 32,32,3 for "
            + "images, channel last), got \"" + text + "\"");
      }
    }
    return new Shape(dims);
  }
}
