package dev.ntk.io;

import java.util.Arrays;
import java.util.Objects;

/**
 * The header of a {@code .npy} file: shape, element type and the byte offset where the C-order
 * data starts. The shape array is not copied.
 */
public record NpyHeader(long[] shape, NpyDType dtype, long dataOffset) {
  /** Validates the fields. */
  public NpyHeader {
    Objects.requireNonNull(shape, "shape");
    Objects.requireNonNull(dtype, "dtype");
  }

  /** The number of elements, the product of the shape. */
  public long count() {
    return Npy.product(shape, 0);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof NpyHeader h
        && Arrays.equals(shape, h.shape)
        && dtype == h.dtype
        && dataOffset == h.dataOffset;
  }

  @Override
  public int hashCode() {
    return Objects.hash(Arrays.hashCode(shape), dtype, dataOffset);
  }

  @Override
  public String toString() {
    return "NpyHeader[shape=" + Npy.shapeString(shape) + ", dtype=" + dtype.typeName()
        + ", dataOffset=" + dataOffset + "]";
  }
}
