package dev.ntk.transforms;

import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.io.NpyWriter;
import java.io.IOException;
import java.nio.file.Path;
import org.apache.beam.sdk.io.fs.ResourceId;

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
    NpyArray array = checked(name, shape, perTime, dtype);
    Path file = directory.resolve(name);
    Npy.write(file, array);
    return file;
  }

  /**
   * {@link #write(Path, String, long[], double[][], NpyDType)} into a directory of any Beam file
   * system ({@link BeamFiles}), committed by a rename.
   */
  public static ResourceId write(ResourceId directory, String name, long[] shape, double[][] perTime,
      NpyDType dtype) throws IOException {
    NpyArray array = checked(name, shape, perTime, dtype);
    ResourceId file = BeamFiles.child(directory, name);
    return BeamFiles.writeAtomically(file, channel -> {
      NpyWriter w = NpyWriter.open(channel, file.toString(), array.shape(), array.dtype());
      w.write(array.data());
      w.close(); // checks that every value was written; closing the channel twice is harmless
    });
  }

  /** The array to write, with the time axis in front; fails if a value is not finite in {@code dtype}. */
  private static NpyArray checked(String name, long[] shape, double[][] perTime, NpyDType dtype) {
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
    // Finite in the output's dtype: a float64 value beyond float32's range is inf once written.
    double max = dtype == NpyDType.FLOAT32 ? Float.MAX_VALUE : Double.MAX_VALUE;
    for (int i = 0; i < data.length; i++) {
      if (!(Math.abs(data[i]) <= max)) {
        throw new NonFiniteKernelException("the predictive " + name.replace(".npy", "") + " (" + name
            + ") has the entry " + data[i] + " at flat index " + i
            + ", which is not a finite " + dtype.typeName() + ": the kernels or the targets are too "
            + "large or too ill-conditioned for the dtype (check W_std and b_std in the model, the "
            + "scale of the inputs and targets, and --diag-reg); nothing was written");
      }
    }
    return new NpyArray(full, dtype, data);
  }
}
