package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.List;
import java.util.Set;

/**
 * The kernel function of an infinite network, like neural-tangents' {@code kernel_fn(x1, x2)}:
 * NNGP and NTK between two batches of inputs, computed in-process.
 *
 * <p>Inputs are batch-first and channel-last ({@code (N, D)} vectors; higher-rank inputs must be
 * flattened by the model first). The result lives in the inputs' {@code NDManager} and has their
 * dtype (float32 or float64); NNGP and NTK are always computed together.
 *
 * <pre>{@code
 * Kernel k = model.kernelFn().apply(xTrain, xTest);
 * NDArray ntk = k.ntk();
 * }</pre>
 */
public final class KernelFn {
  private final Layer layer;

  KernelFn(Layer layer) {
    this.layer = layer;
  }

  /** The network this kernel function belongs to. */
  public Layer layer() {
    return layer;
  }

  /** The kernels between {@code x1} and itself. */
  public Kernel apply(NDArray x1) {
    return apply(x1, null);
  }

  /** The kernels between {@code x1} and {@code x2} ({@code null} means {@code x1} again). */
  public Kernel apply(NDArray x1, NDArray x2) {
    Kernel input = inputKernel(x1, x2);
    layer.check(perExample(input.shape1()));
    List<Kernel> out = layer.kernel(List.of(input));
    Kernel result = out.get(0);
    Set<NDArray> kept = Kernel.arraysOf(out);
    for (NDArray a : Kernel.arraysOf(List.of(input))) {
      if (!kept.contains(a)) {
        a.close();
      }
    }
    return result;
  }

  /** Only the kernel {@code get} selects (both are computed regardless). */
  public NDArray apply(NDArray x1, NDArray x2, Get get) {
    Kernel k = apply(x1, x2);
    NDArray other = k.get(get == Get.NNGP ? Get.NTK : Get.NNGP);
    NDArray chosen = k.get(get);
    if (other != chosen) {
      other.close();
    }
    return chosen;
  }

  /**
   * The kernel of the raw inputs: {@code nngp = x1 x2^T / D} over the flattened features, zero
   * NTK, not Gaussian.
   */
  public static Kernel inputKernel(NDArray x1, NDArray x2) {
    boolean same = x2 == null || x2 == x1;
    NDArray other = same ? x1 : x2;
    checkInput(x1, "x1");
    checkInput(other, "x2");
    Shape s1 = x1.getShape();
    Shape s2 = other.getShape();
    if (!perExample(s1).equals(perExample(s2))) {
      throw new IllegalArgumentException("x1 and x2 must have the same per-example shape, got "
          + s1 + " and " + s2);
    }
    if (x1.getDataType() != other.getDataType()) {
      throw new IllegalArgumentException("x1 and x2 must have one dtype, got "
          + x1.getDataType() + " and " + other.getDataType());
    }
    long d = s1.size() / s1.get(0);
    NDArray f1 = x1.reshape(s1.get(0), d);
    NDArray f2 = same ? f1 : other.reshape(s2.get(0), d);
    NDArray nngp = f1.matMul(f2.transpose()).div((double) d);
    NDArray cov1 = f1.square().sum(new int[] {1}).div((double) d);
    NDArray cov2 = same ? cov1 : f2.square().sum(new int[] {1}).div((double) d);
    NDArray ntk = nngp.zerosLike();
    return new Kernel(nngp, ntk, cov1, cov2, s1, s2, false, same, true, true);
  }

  private static void checkInput(NDArray x, String name) {
    if (x.getShape().dimension() < 2) {
      throw new IllegalArgumentException(name + " must be batch-first with at least 2 axes, got shape "
          + x.getShape());
    }
    DataType t = x.getDataType();
    if (t != DataType.FLOAT32 && t != DataType.FLOAT64) {
      throw new IllegalArgumentException(name + " must be float32 or float64, got " + t);
    }
  }

  private static Shape perExample(Shape batch) {
    return batch.slice(1);
  }
}
