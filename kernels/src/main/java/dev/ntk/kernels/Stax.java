package dev.ntk.kernels;

import java.util.List;

/**
 * Builds networks the way neural-tangents' {@code stax} does: each factory returns a {@link
 * Layer} whose finite network and infinite-width kernel come together.
 *
 * <pre>{@code
 * Layer model = Stax.serial(
 *     Stax.dense(2048, 1.5, 0.05), Stax.erf(),
 *     Stax.dense(2048, 1.5, 0.05), Stax.erf(),
 *     Stax.dense(1, 1.5, 0.05));
 * Kernel k = model.kernelFn().apply(xTrain, xTest);
 * }</pre>
 */
public final class Stax {
  private Stax() {}

  public static Layer serial(Layer... layers) {
    return new Branching.Serial(List.of(layers));
  }

  public static Layer parallel(Layer... layers) {
    return new Branching.Parallel(List.of(layers));
  }

  public static Layer fanOut(int num) {
    return new Branching.FanOut(num);
  }

  public static Layer fanInSum() {
    return new Branching.FanInSum();
  }

  public static Layer fanInProd() {
    return new Branching.FanInProd();
  }

  /** Concatenation along the channel axis. */
  public static Layer fanInConcat() {
    return new Branching.FanInConcat(-1);
  }

  public static Layer fanInConcat(int axis) {
    return new Branching.FanInConcat(axis);
  }

  /** Dense with {@code W_std = 1} and no bias, NTK parameterization. */
  public static Layer dense(int outDim) {
    return dense(outDim, 1.0, null);
  }

  /** Dense in NTK parameterization; {@code bStd == null} means no bias. */
  public static Layer dense(int outDim, double wStd, Double bStd) {
    return dense(outDim, wStd, bStd, Linear.Parameterization.NTK);
  }

  public static Layer dense(int outDim, double wStd, Double bStd, Linear.Parameterization parameterization) {
    return new Linear.Dense(outDim, wStd, bStd, parameterization);
  }

  public static Layer flatten() {
    return new Linear.Flatten();
  }

  public static Layer identity() {
    return new Linear.Identity();
  }

  public static Layer relu() {
    return Elementwise.ABRelu.relu();
  }

  public static Layer leakyRelu(double alpha) {
    return Elementwise.ABRelu.leakyRelu(alpha);
  }

  public static Layer abs() {
    return Elementwise.ABRelu.abs();
  }

  public static Layer abRelu(double a, double b) {
    return Elementwise.ABRelu.abRelu(a, b);
  }

  /** {@code erf(x)}. */
  public static Layer erf() {
    return erf(1.0, 1.0, 0.0);
  }

  /** {@code a * erf(b * x) + c}. */
  public static Layer erf(double a, double b, double c) {
    return new Elementwise.Erf(a, b, c);
  }
}
