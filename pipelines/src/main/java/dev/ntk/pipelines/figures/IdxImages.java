package dev.ntk.pipelines.figures;

import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.zip.GZIPInputStream;

/**
 * Images and labels in LeCun's IDX format, as MNIST and Fashion-MNIST ship them ({@code
 * train-images-idx3-ubyte.gz}, {@code train-labels-idx1-ubyte.gz}, gzip-compressed or not): unsigned
 * bytes after a big-endian header of a magic number ({@code 0x00000803} for images, {@code
 * 0x00000801} for labels) and the size of each axis.
 *
 * @param pixels the first {@code count} images, row-major {@code (count, rows, cols)}, each
 *     standardized to mean 0 and standard deviation 1 over its pixels (a constant image becomes 0)
 */
record IdxImages(double[] pixels, int count, int rows, int cols) {
  private static final int IMAGES = 0x803;
  private static final int LABELS = 0x801;

  /** The first {@code count} images of {@code file} (all if there are fewer), standardized per image. */
  static IdxImages read(Path file, int count) throws IOException {
    try (DataInputStream in = open(file)) {
      int magic = in.readInt();
      if (magic != IMAGES) {
        throw new IOException(file + ": not an IDX file of images (magic number " + Integer.toHexString(magic)
            + ", expected 803)");
      }
      int n = Math.min(count, in.readInt());
      int rows = in.readInt();
      int cols = in.readInt();
      int size = rows * cols;
      byte[] raw = new byte[size];
      double[] pixels = new double[n * size];
      for (int i = 0; i < n; i++) {
        readFully(in, raw, file);
        double mean = 0;
        for (byte b : raw) {
          mean += b & 0xff;
        }
        mean /= size;
        double var = 0;
        for (byte b : raw) {
          var += ((b & 0xff) - mean) * ((b & 0xff) - mean);
        }
        double scale = var > 0 ? 1 / Math.sqrt(var / size) : 0;
        for (int p = 0; p < size; p++) {
          pixels[i * size + p] = ((raw[p] & 0xff) - mean) * scale;
        }
      }
      return new IdxImages(pixels, n, rows, cols);
    }
  }

  /** The first {@code count} labels of {@code file} (all if there are fewer). */
  static int[] labels(Path file, int count) throws IOException {
    try (DataInputStream in = open(file)) {
      int magic = in.readInt();
      if (magic != LABELS) {
        throw new IOException(file + ": not an IDX file of labels (magic number " + Integer.toHexString(magic)
            + ", expected 801)");
      }
      int n = Math.min(count, in.readInt());
      byte[] raw = new byte[n];
      readFully(in, raw, file);
      int[] labels = new int[n];
      for (int i = 0; i < n; i++) {
        labels[i] = raw[i] & 0xff;
      }
      return labels;
    }
  }

  /** Opens {@code file}; one that is missing or not gzip data where its name ends in .gz is named in the error. */
  private static DataInputStream open(Path file) throws IOException {
    InputStream raw;
    try {
      raw = Files.newInputStream(file);
    } catch (NoSuchFileException e) {
      throw new IOException("no such file: " + file);
    }
    try {
      return new DataInputStream(file.toString().endsWith(".gz") ? new GZIPInputStream(raw, 1 << 16) : raw);
    } catch (IOException e) {
      raw.close();
      throw new IOException(file + ": " + e.getMessage());
    }
  }

  private static void readFully(DataInputStream in, byte[] into, Path file) throws IOException {
    try {
      in.readFully(into);
    } catch (EOFException e) {
      throw new IOException(file + ": ends before the number of items its header gives");
    }
  }
}
