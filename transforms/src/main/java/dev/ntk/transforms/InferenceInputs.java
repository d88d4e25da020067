package dev.ntk.transforms;

import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import java.io.IOException;
import java.nio.channels.SeekableByteChannel;
import java.util.Arrays;
import org.apache.beam.sdk.io.fs.ResourceId;

/** The inputs {@link GpInference}'s steps read themselves: targets, initial outputs, rows of {@code .npy} files. */
final class InferenceInputs {
  private InferenceInputs() {}

  /** The whole {@code .npy} array at {@code spec}, a path or URI of any Beam file system. */
  static NpyArray readNpy(String spec) throws IOException {
    ResourceId file = BeamFiles.file(spec);
    try (SeekableByteChannel channel = BeamFiles.openSeekable(file)) {
      return Npy.read(channel, spec);
    }
  }

  /** Rows of the {@code .npy} array at {@code spec}. */
  static NpyArray readNpyRows(String spec, long first, int rows) throws IOException {
    try (SeekableByteChannel channel = BeamFiles.openSeekable(BeamFiles.file(spec))) {
      return Npy.readRows(channel, spec, first, rows);
    }
  }

  /** Initial outputs from {@code file} of shape {@code shape}, or null for none. */
  static double[] initial(String file, long[] shape) throws IOException {
    if (file == null) {
      return null;
    }
    NpyArray a = readNpy(file);
    if (!Arrays.equals(a.shape(), shape)) {
      throw new IllegalArgumentException(file + ": expected initial outputs of shape "
          + Npy.shapeString(shape) + ", got " + a.shapeString());
    }
    return a.data();
  }
}
