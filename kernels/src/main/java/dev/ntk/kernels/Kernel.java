package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Objects;
import java.util.Set;

/**
 * The NNGP and NTK kernels between two batches of inputs at one point of a network, with the
 * metadata the translation rules need.
 *
 * <p>{@code nngp} and {@code ntk} have shape {@code (N1, N2)}: the per-channel kernels, channels
 * being i.i.d. in the infinite-width limit. {@code cov1} and {@code cov2} hold the variances of
 * each input ({@code (N1)} and {@code (N2)}), which the nonlinearities need. The metadata:
 *
 * <ul>
 *   <li>{@code shape1}, {@code shape2}: the shapes of the finite network's activations here, batch
 *       first and channel last; the channel count weighs concatenations and standard
 *       parameterization;
 *   <li>{@code isGaussian}: whether the activations are Gaussian (after an affine layer), which a
 *       nonlinearity requires;
 *   <li>{@code x1IsX2}: both batches are the same inputs, so the kernels are symmetric;
 *   <li>{@code diagonalBatch}: {@code cov1}/{@code cov2} hold only the per-input variances, not the
 *       covariance between inputs of one batch;
 *   <li>{@code diagonalSpatial}: only the pixel-diagonal of the spatial covariance is kept (always
 *       true for fully connected networks, which have no spatial axes).
 * </ul>
 *
 * <p>Arrays belong to the {@link NDManager} of the inputs they were computed from.
 */
public record Kernel(
    NDArray nngp,
    NDArray ntk,
    NDArray cov1,
    NDArray cov2,
    Shape shape1,
    Shape shape2,
    boolean isGaussian,
    boolean x1IsX2,
    boolean diagonalBatch,
    boolean diagonalSpatial) {

  public Kernel {
    Objects.requireNonNull(nngp, "nngp");
    Objects.requireNonNull(ntk, "ntk");
    Objects.requireNonNull(cov1, "cov1");
    Objects.requireNonNull(cov2, "cov2");
  }

  /** The kernel {@code get} selects. */
  public NDArray get(Get get) {
    return get == Get.NNGP ? nngp : ntk;
  }

  /** The same metadata with new kernel values. */
  public Kernel withValues(NDArray newNngp, NDArray newNtk, NDArray newCov1, NDArray newCov2) {
    return new Kernel(newNngp, newNtk, newCov1, newCov2, shape1, shape2, isGaussian, x1IsX2,
        diagonalBatch, diagonalSpatial);
  }

  public Kernel withShapes(Shape newShape1, Shape newShape2) {
    return new Kernel(nngp, ntk, cov1, cov2, newShape1, newShape2, isGaussian, x1IsX2,
        diagonalBatch, diagonalSpatial);
  }

  public Kernel withGaussian(boolean gaussian) {
    return new Kernel(nngp, ntk, cov1, cov2, shape1, shape2, gaussian, x1IsX2, diagonalBatch,
        diagonalSpatial);
  }

  /** The manager the kernel arrays live in. */
  public NDManager manager() {
    return nngp.getManager();
  }

  /** The distinct arrays of some kernels (an array shared by several is listed once). */
  static Set<NDArray> arraysOf(List<Kernel> kernels) {
    Set<NDArray> arrays = Collections.newSetFromMap(new IdentityHashMap<>());
    for (Kernel k : kernels) {
      arrays.addAll(List.of(k.nngp, k.ntk, k.cov1, k.cov2));
    }
    return arrays;
  }
}
