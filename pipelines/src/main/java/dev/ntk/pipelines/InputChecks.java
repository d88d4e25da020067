package dev.ntk.pipelines;

import ai.djl.ndarray.types.Shape;
import dev.ntk.io.FileHashes;
import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.kernels.Layer;
import dev.ntk.kernels.Model;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.OptionalLong;

/**
 * Checks a command's inputs before anything runs or is written: the model parses and accepts the
 * inputs' shape, the {@code .npy} files are well formed, finite and fit together. Every problem is
 * a {@link UsageException} naming the file and what was expected.
 */
final class InputChecks {
  private InputChecks() {}

  /** The model in {@code file}; its layer errors name their path ({@code serial[3].Erf}). */
  static Model model(Path file) {
    if (Files.isDirectory(file)) {
      throw new UsageException("--model " + file + " is a directory, expected a JSON model file");
    }
    if (!Files.isRegularFile(file)) {
      throw new UsageException("--model: file " + file + " does not exist");
    }
    return Model.read(file); // a ModelException is a usage error with its own message
  }

  /**
   * A batch-first input array, read whole and checked to be finite; hashed on the way ({@link
   * FileHashes}), so that a job's tile sets need not read it again to name it.
   */
  static NpyArray inputs(String option, Path file) {
    NpyArray array = read(option, file, true);
    if (array.ndim() < 2) {
      throw new UsageException(option + " " + file + ": expected a batch-first array with at least 2 axes "
          + "(N, features...), got shape " + array.shapeString());
    }
    if (array.shape()[0] == 0) {
      throw new UsageException(option + " " + file + ": the array has no rows");
    }
    checkFinite(option, file, array);
    return array;
  }

  /** Training targets: {@code (N,)} or {@code (N, K)} with one row per training input. */
  static NpyArray targets(String option, Path file, long rows) {
    NpyArray array = read(option, file, false);
    if (array.ndim() < 1 || array.ndim() > 2 || array.shape()[0] != rows) {
      throw new UsageException(option + " " + file + ": expected shape (" + rows + ",) or (" + rows
          + ", K), one row per training input, got " + array.shapeString());
    }
    checkFinite(option, file, array);
    return array;
  }

  /** An array of exactly {@code shape} (initial outputs), finite. */
  static NpyArray like(String option, Path file, long[] shape) {
    NpyArray array = read(option, file, false);
    if (!Arrays.equals(array.shape(), shape)) {
      throw new UsageException(option + " " + file + ": expected shape " + Npy.shapeString(shape) + ", got "
          + array.shapeString());
    }
    checkFinite(option, file, array);
    return array;
  }

  /**
   * Refuses a graph model (one with {@code Aggregate}, read from {@code modelFile}) in a command,
   * {@code what}, that does not read graph patterns yet: {@code ntk kernel} alone takes them.
   */
  static void refuseGraph(String what, Path modelFile, Layer layer) {
    if (dev.ntk.kernels.Graph.readsPatterns(layer)) {
      throw new UsageException(what + " does not take graph models (Aggregate in " + modelFile + ") or their "
          + "patterns yet: `ntk kernel --pattern1 A1.npy` computes the kernels of a graph model");
    }
  }

  /** Two inputs must have one per-example shape, and the model must accept it. */
  static void fit(Path modelFile, Layer model, String option1, Path file1, NpyArray x1, String option2, Path file2, NpyArray x2) {
    long[] f1 = features(x1);
    if (x2 != null && !Arrays.equals(f1, features(x2))) {
      throw new UsageException(option1 + " " + file1 + " and " + option2 + " " + file2
          + " must have the same per-example shape, got " + x1.shapeString() + " and " + x2.shapeString());
    }
    try {
      model.check(new Shape(f1));
    } catch (IllegalArgumentException e) {
      throw new UsageException(modelFile + ": " + e.getMessage() + " (with the inputs of "
          + option1 + " " + file1 + ", shape " + x1.shapeString() + ")");
    }
  }

  private static long[] features(NpyArray a) {
    return Arrays.copyOfRange(a.shape(), 1, a.ndim());
  }

  private static NpyArray read(String option, Path file, boolean hashed) {
    try {
      return hashed ? FileHashes.readNpy(file) : Npy.read(file);
    } catch (NoSuchFileException e) {
      throw new UsageException(option + ": file " + file + " does not exist");
    } catch (IOException e) {
      String message = e.getMessage() == null ? e.toString() : e.getMessage();
      throw new UsageException(option + " " + (message.contains(file.toString()) ? "" : file + ": ") + message);
    }
  }

  private static void checkFinite(String option, Path file, NpyArray array) {
    OptionalLong bad = array.firstNonFinite();
    if (bad.isPresent()) {
      long i = bad.getAsLong();
      long rowSize = Math.max(1, array.size() / array.shape()[0]);
      throw new UsageException(option + " " + file + ": non-finite value " + array.value(i)
          + " at flat index " + i + " (row " + i / rowSize + ")");
    }
  }
}
