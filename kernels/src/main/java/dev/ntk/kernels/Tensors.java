package dev.ntk.kernels;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.tensorflow.engine.NtkEngineBridge;

/**
 * Entry point to the tensor engine: managers on DJL's TensorFlow engine, and conversions between
 * Java arrays and {@link NDArray}s.
 *
 * <pre>{@code
 * try (NDManager manager = Tensors.newManager()) {
 *   NDArray x = Tensors.fromRows(manager, new double[][] {{1, 2}, {3, 4}}, DataType.FLOAT64);
 * }
 * }</pre>
 */
public final class Tensors {
  /** The DJL engine every array of this library lives on. */
  public static final String ENGINE = "TensorFlow";

  private Tensors() {}

  /** A new root manager on the TensorFlow engine (CPU); the native library is loaded offline. */
  public static NDManager newManager() {
    TensorFlowNative.ensureConfigured();
    NtkEngineBridge.useSynchronousExecution();
    return NDManager.newBaseManager(Device.cpu(), ENGINE);
  }

  /** An array of the given shape and dtype holding {@code values} (C order). */
  public static NDArray create(NDManager manager, double[] values, Shape shape, DataType dtype) {
    if (shape.size() != values.length) {
      throw new IllegalArgumentException(
          "shape " + shape + " needs " + shape.size() + " values, got " + values.length);
    }
    if (dtype == DataType.FLOAT64) {
      return manager.create(values, shape);
    }
    if (dtype == DataType.FLOAT32) {
      float[] f = new float[values.length];
      for (int i = 0; i < f.length; i++) {
        f[i] = (float) values[i];
      }
      return manager.create(f, shape);
    }
    throw new IllegalArgumentException("dtype must be float32 or float64, got " + dtype);
  }

  /** Standard normal samples drawn from {@code rng} (reproducible for a given seed). */
  public static NDArray standardNormal(
      java.util.SplittableRandom rng, NDManager manager, Shape shape, DataType dtype) {
    double[] values = new double[Math.toIntExact(shape.size())];
    for (int i = 0; i < values.length; i++) {
      values[i] = rng.nextGaussian();
    }
    return create(manager, values, shape, dtype);
  }

  /**
   * A scalar with {@code like}'s dtype, in {@code like}'s manager. On a float32 array DJL's {@code
   * x.mul(double)} and its kin make a float64 scalar and cast it, an extra native op each time; the
   * rules call {@link #mul}, {@link #add} and {@link #max} instead, which make the scalar in the
   * right dtype and free it at once (in float32 this took the DirectRunner pipeline of {@code
   * bench/run.sh} from 15.8 s to 12.3 s).
   */
  public static NDArray scalar(NDArray like, double value) {
    NDManager manager = like.getManager();
    return switch (like.getDataType()) {
      case FLOAT64 -> manager.create(value);
      case FLOAT32 -> manager.create((float) value);
      default -> manager.create(value).toType(like.getDataType(), false);
    };
  }

  /** {@code x * value}, elementwise. */
  public static NDArray mul(NDArray x, double value) {
    try (NDArray s = scalar(x, value)) {
      return x.mul(s);
    }
  }

  /** {@code x + value}, elementwise. */
  public static NDArray add(NDArray x, double value) {
    try (NDArray s = scalar(x, value)) {
      return x.add(s);
    }
  }

  /** {@code max(x, value)}, elementwise. */
  public static NDArray max(NDArray x, double value) {
    try (NDArray s = scalar(x, value)) {
      return x.maximum(s);
    }
  }

  /** A {@code (rows.length, rows[0].length)} matrix. */
  public static NDArray fromRows(NDManager manager, double[][] rows, DataType dtype) {
    int n = rows.length;
    int d = n == 0 ? 0 : rows[0].length;
    double[] flat = new double[n * d];
    for (int i = 0; i < n; i++) {
      if (rows[i].length != d) {
        throw new IllegalArgumentException("row " + i + " has " + rows[i].length + " values, not " + d);
      }
      System.arraycopy(rows[i], 0, flat, i * d, d);
    }
    return create(manager, flat, new Shape(n, d), dtype);
  }

  /**
   * {@code f} of each entry, in float64, as an array of {@code x}'s shape and dtype on its manager:
   * the finite network of an activation given as a scalar function.
   */
  public static NDArray map(NDArray x, java.util.function.DoubleUnaryOperator f) {
    double[] v = toDoubles(x);
    for (int i = 0; i < v.length; i++) {
      v[i] = f.applyAsDouble(v[i]);
    }
    return create(x.getManager(), v, x.getShape(), x.getDataType());
  }

  /** The values of {@code array} as doubles, in C order. */
  public static double[] toDoubles(NDArray array) {
    if (array.getDataType() == DataType.FLOAT64) {
      return array.toDoubleArray();
    }
    if (array.getDataType() == DataType.FLOAT32) {
      float[] f = array.toFloatArray();
      double[] d = new double[f.length];
      for (int i = 0; i < f.length; i++) {
        d[i] = f[i];
      }
      return d;
    }
    return array.toType(DataType.FLOAT64, false).toDoubleArray();
  }

  /** A matrix as rows of doubles. */
  public static double[][] toRows(NDArray matrix) {
    Shape s = matrix.getShape();
    if (s.dimension() != 2) {
      throw new IllegalArgumentException("expected a matrix, got shape " + s);
    }
    int n = (int) s.get(0);
    int d = (int) s.get(1);
    double[] flat = toDoubles(matrix);
    double[][] rows = new double[n][d];
    for (int i = 0; i < n; i++) {
      System.arraycopy(flat, i * d, rows[i], 0, d);
    }
    return rows;
  }
}
