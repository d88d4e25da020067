package dev.ntk.io;

import java.util.Arrays;
import java.util.Objects;

/**
 * An n-dimensional array as stored in a {@code .npy} file: its shape, the element type it is (or
 * will be) stored with, and its values in C (row-major) order, as doubles ({@link #data}).
 *
 * <p>A {@code float32} file is read into floats ({@link #ofFloats}), which {@link #toFloats} hands
 * to float32 computations as they are; the doubles are made from them the first time {@link
 * #data} is asked for, and from then on they are the values. An 8192 x 784 float32 input held as
 * doubles, then rounded back to floats for the kernels, cost a quarter of a second in first
 * touches of the two new arrays' pages on a 2-core virtual machine.
 *
 * <p>Neither {@code shape} nor the values are copied: the array shares the arrays it is given and
 * hands out the same arrays, so callers must not change them afterwards.
 */
public final class NpyArray {
  private final long[] shape;
  private final NpyDType dtype;
  /** The values; null while they are only {@link #floats}. */
  private double[] data;
  /** float32 values as read, until {@link #data} is asked for. */
  private float[] floats;

  /** Checks that the shape has no negative dimension and matches the number of values. */
  public NpyArray(long[] shape, NpyDType dtype, double[] data) {
    this(shape, dtype, Objects.requireNonNull(data, "data"), null, data == null ? 0 : data.length);
  }

  private NpyArray(long[] shape, NpyDType dtype, double[] data, float[] floats, long count) {
    Objects.requireNonNull(shape, "shape");
    Objects.requireNonNull(dtype, "dtype");
    for (long d : shape) {
      if (d < 0) {
        throw new IllegalArgumentException("negative dimension in shape " + Npy.shapeString(shape));
      }
    }
    if (Npy.product(shape, 0) != count) {
      throw new IllegalArgumentException("shape " + Npy.shapeString(shape) + " needs "
          + Npy.product(shape, 0) + " values but data has " + count);
    }
    this.shape = shape;
    this.dtype = dtype;
    this.data = data;
    this.floats = floats;
  }

  /** A {@code float32} array of {@code values} (shared, not copied). */
  public static NpyArray ofFloats(long[] shape, float[] values) {
    return new NpyArray(shape, NpyDType.FLOAT32, null, Objects.requireNonNull(values, "values"), values.length);
  }

  public long[] shape() {
    return shape;
  }

  public NpyDType dtype() {
    return dtype;
  }

  /** The values as doubles (made from the floats of a float32 file the first time). */
  public synchronized double[] data() {
    if (data == null) {
      double[] d = new double[floats.length];
      for (int i = 0; i < d.length; i++) {
        d[i] = floats[i];
      }
      data = d;
      floats = null;
    }
    return data;
  }

  /**
   * The values as floats: a float32 file's values as read (shared) while {@link #data} has not
   * been asked for, otherwise a new array of the doubles rounded to float.
   */
  public synchronized float[] toFloats() {
    if (floats != null) {
      return floats;
    }
    float[] f = new float[data.length];
    for (int i = 0; i < f.length; i++) {
      f[i] = (float) data[i];
    }
    return f;
  }

  /** The number of values. */
  public synchronized long size() {
    return floats != null ? floats.length : data.length;
  }

  /** Value {@code index} in C order. */
  public synchronized double value(long index) {
    return floats != null ? floats[Math.toIntExact(index)] : data[Math.toIntExact(index)];
  }

  /** The index of the first NaN or infinite value, if any. */
  public synchronized java.util.OptionalLong firstNonFinite() {
    return Npy.firstNonFinite(floats != null ? java.nio.FloatBuffer.wrap(floats) : java.nio.DoubleBuffer.wrap(data));
  }

  /** A 2-d array from rectangular rows; with no rows the shape is {@code (0, 0)}. */
  public static NpyArray of(double[][] rows, NpyDType dtype) {
    int cols = rows.length == 0 ? 0 : rows[0].length;
    double[] data = new double[Math.multiplyExact(rows.length, cols)];
    for (int i = 0; i < rows.length; i++) {
      if (rows[i].length != cols) {
        throw new IllegalArgumentException(
            "ragged rows: row 0 has " + cols + " values but row " + i + " has " + rows[i].length);
      }
      System.arraycopy(rows[i], 0, data, i * cols, cols);
    }
    return new NpyArray(new long[] {rows.length, cols}, dtype, data);
  }

  /** The number of dimensions. */
  public int ndim() {
    return shape.length;
  }

  /** The length of the leading axis ({@code shape[0]}); requires at least one dimension. */
  public int rows() {
    if (shape.length == 0) {
      throw new IllegalStateException("a 0-d array has no rows");
    }
    return Math.toIntExact(shape[0]);
  }

  /** The number of values in one row of the leading axis, the product of {@code shape[1..]}. */
  public long rowSize() {
    return Npy.product(shape, 1);
  }

  /** A copy of a 2-d array as {@code double[rows][cols]}. */
  public double[][] toMatrix() {
    if (shape.length != 2) {
      throw new IllegalStateException("toMatrix needs a 2-d array, not shape " + shapeString());
    }
    int cols = Math.toIntExact(shape[1]);
    double[] data = data();
    double[][] m = new double[rows()][];
    for (int i = 0; i < m.length; i++) {
      m[i] = Arrays.copyOfRange(data, i * cols, (i + 1) * cols);
    }
    return m;
  }

  /** The shape as numpy prints it: {@code ()}, {@code (5,)}, {@code (4, 3)}. */
  public String shapeString() {
    return Npy.shapeString(shape);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof NpyArray a
        && dtype == a.dtype
        && Arrays.equals(shape, a.shape)
        && Arrays.equals(data(), a.data());
  }

  @Override
  public int hashCode() {
    return Objects.hash(Arrays.hashCode(shape), dtype, Arrays.hashCode(data()));
  }

  @Override
  public String toString() {
    double[] data = data();
    int shown = Math.min(data.length, 8);
    String values = Arrays.toString(Arrays.copyOf(data, shown));
    if (shown < data.length) {
      values = values.substring(0, values.length() - 1) + ", ...]";
    }
    return "NpyArray[shape=" + shapeString() + ", dtype=" + dtype.typeName() + ", data=" + values
        + "]";
  }
}
