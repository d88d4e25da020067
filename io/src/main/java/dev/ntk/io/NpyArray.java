package dev.ntk.io;

import java.util.Arrays;
import java.util.Objects;

/**
 * An n-dimensional array as stored in a {@code .npy} file: its shape, the element type it is (or
 * will be) stored with, and its values in C (row-major) order, always held as doubles.
 *
 * <p>Neither {@code shape} nor {@code data} is copied: the record shares the arrays it is given
 * and hands out the same arrays, so callers must not change them afterwards.
 */
public record NpyArray(long[] shape, NpyDType dtype, double[] data) {
  /** Checks that the shape has no negative dimension and matches the number of values. */
  public NpyArray {
    Objects.requireNonNull(shape, "shape");
    Objects.requireNonNull(dtype, "dtype");
    Objects.requireNonNull(data, "data");
    for (long d : shape) {
      if (d < 0) {
        throw new IllegalArgumentException("negative dimension in shape " + Npy.shapeString(shape));
      }
    }
    if (Npy.product(shape, 0) != data.length) {
      throw new IllegalArgumentException("shape " + Npy.shapeString(shape) + " needs "
          + Npy.product(shape, 0) + " values but data has " + data.length);
    }
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
        && Arrays.equals(data, a.data);
  }

  @Override
  public int hashCode() {
    return Objects.hash(Arrays.hashCode(shape), dtype, Arrays.hashCode(data));
  }

  @Override
  public String toString() {
    int shown = Math.min(data.length, 8);
    String values = Arrays.toString(Arrays.copyOf(data, shown));
    if (shown < data.length) {
      values = values.substring(0, values.length() - 1) + ", ...]";
    }
    return "NpyArray[shape=" + shapeString() + ", dtype=" + dtype.typeName() + ", data=" + values
        + "]";
  }
}
