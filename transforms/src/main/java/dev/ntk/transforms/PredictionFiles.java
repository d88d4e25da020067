package dev.ntk.transforms;

import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import java.io.IOException;
import java.nio.file.Path;
import java.util.OptionalLong;

/** The {@code .npy} outputs of a prediction, shared by {@link GpInference} and the in-process path. */
public final class PredictionFiles {
  private PredictionFiles() {}

  /**
   * Writes one array per time as {@code directory/name}, with a leading time axis when there are
   * several; fails, writing nothing, if a value is NaN or infinite.
   *
   * @param shape the shape of one time's array
   */
  public static Path write(Path directory, String name, long[] shape, double[][] perTime, NpyDType dtype)
      throws IOException {
    double[] data;
    long[] full;
    if (perTime.length == 1) {
      data = perTime[0];
      full = shape;
    } else {
      int size = perTime[0].length;
      data = new double[Math.multiplyExact(perTime.length, size)];
      for (int i = 0; i < perTime.length; i++) {
        System.arraycopy(perTime[i], 0, data, i * size, size);
      }
      full = new long[shape.length + 1];
      full[0] = perTime.length;
      System.arraycopy(shape, 0, full, 1, shape.length);
    }
    OptionalLong bad = Npy.firstNonFinite(data);
    if (bad.isPresent()) {
      throw new ArithmeticException(name + ": non-finite value " + data[(int) bad.getAsLong()]
          + " at flat index " + bad.getAsLong() + "; nothing was written");
    }
    Path file = directory.resolve(name);
    Npy.write(file, new NpyArray(full, dtype, data));
    return file;
  }
}
