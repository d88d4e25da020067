package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.Objects;

/**
 * The NNGP and NTK kernels between two batches of inputs at the output of a network, with what the
 * requirements pass decided about them.
 *
 * <p>{@code nngp} and {@code ntk} have shape {@code (N1, N2)}: the per-channel kernels, channels
 * being i.i.d. in the infinite-width limit; {@code ntk} is null when only the NNGP was asked for
 * ({@code get=nngp} computes no NTK). {@code cov1} and {@code cov2} hold the variances of each
 * input ({@code (N1)} and {@code (N2)}). A kernel function that keeps the spatial axes of the
 * model's last layer ({@link KernelFn#keepSpatial}) gives them in neural-tangents' layouts instead
 * ({@link Spatial}): {@code (N1, N2, H, W)} and {@code (N1, H, W)} per pixel, {@code (N1, N2, H,
 * H', W, W')} and {@code (N1, H, H', W, W')} for every two pixels. The metadata:
 *
 * <ul>
 *   <li>{@code spec}: the per-example shape of the finite network's output (channel last) and
 *       whether it is Gaussian;
 *   <li>{@code x1IsX2}: both batches are the same inputs, so the kernels are symmetric;
 *   <li>{@code diagonalBatch}: {@code cov1}/{@code cov2} hold only the per-input variances, not the
 *       covariance between inputs of one batch;
 *   <li>{@code diagonalSpatial}: only the pixel-diagonal of the spatial covariance was kept
 *       (always true for fully connected networks, which have no spatial axes); for kernels that
 *       keep the output's spatial axes, whether they are per pixel ({@link Spatial#DIAGONAL}).
 * </ul>
 *
 * <p>Arrays belong to the {@link NDManager} of the inputs they were computed from.
 */
public record Kernel(
    NDArray nngp,
    NDArray ntk,
    NDArray cov1,
    NDArray cov2,
    Spec spec,
    long n1,
    long n2,
    boolean x1IsX2,
    boolean diagonalBatch,
    boolean diagonalSpatial) {

  public Kernel {
    Objects.requireNonNull(cov1, "cov1");
    Objects.requireNonNull(cov2, "cov2");
    Objects.requireNonNull(spec, "spec");
  }

  /** The kernel {@code get} selects; an error if it was not computed. */
  public NDArray get(Get get) {
    NDArray k = get == Get.NNGP ? nngp : ntk;
    if (k == null) {
      throw new IllegalStateException("the " + get.key() + " kernel was not computed (see Get)");
    }
    return k;
  }

  /** The shape of the finite network's output for x1: batch first, channel last. */
  public Shape shape1() {
    return new Shape(n1).addAll(spec.shape());
  }

  /** The shape of the finite network's output for x2. */
  public Shape shape2() {
    return new Shape(n2).addAll(spec.shape());
  }

  /** Whether the output is Gaussian (after an affine layer). */
  public boolean isGaussian() {
    return spec.gaussian();
  }

  /** The manager the kernel arrays live in. */
  public NDManager manager() {
    return cov1.getManager();
  }
}
