package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;

/** TEMPORARY: replaced by the finite-conv branch. */
final class FiniteConv {
  private FiniteConv() {}

  public enum Padding { VALID, SAME, CIRCULAR }

  static NDArray conv(NDArray x, NDArray w, int[] strides, Padding padding) {
    throw new UnsupportedOperationException("finite conv");
  }

  static NDArray pool(NDArray x, int[] window, int[] strides, Padding padding, boolean average,
      boolean normalizeEdges) {
    throw new UnsupportedOperationException("finite pool");
  }
}
