package dev.ntk.kernels;

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
 *
 * <p>The layers and their factories live in the family files, each next to its layer ({@link
 * Branching}, {@link Linear}, {@link Elementwise}, {@link Convolutional}, {@link Normalization}); this
 * facade re-exports the factories, as neural-tangents' {@code stax/__init__} re-exports its
 * families, and {@link LayerType#registered()} lists the families' layer types. A new layer adds
 * its factory here; a new family also joins {@link LayerType#FAMILIES}.
 */
public final class Stax {
  private Stax() {}
  // Combinators (Branching)
  /** {@link Branching#serial}. */
  public static Layer serial(Layer... layers) {
    return Branching.serial(layers);
  }

  /** {@link Branching#parallel}. */
  public static Layer parallel(Layer... layers) {
    return Branching.parallel(layers);
  }

  /** {@link Branching#fanOut}. */
  public static Layer fanOut(int num) {
    return Branching.fanOut(num);
  }

  /** {@link Branching#repeat}. */
  public static Layer repeat(Layer layer, int n) {
    return Branching.repeat(layer, n);
  }

  /** {@link Branching#fanInSum}. */
  public static Layer fanInSum() {
    return Branching.fanInSum();
  }

  /** {@link Branching#fanInProd}. */
  public static Layer fanInProd() {
    return Branching.fanInProd();
  }

  /** Concatenation along the channel axis. */
  public static Layer fanInConcat() {
    return Branching.fanInConcat();
  }

  /** {@link Branching#fanInConcat}. */
  public static Layer fanInConcat(int axis) {
    return Branching.fanInConcat(axis);
  }

  // Linear layers (Linear)
  /** Dense with {@code W_std = 1} and no bias, NTK parameterization. */
  public static Layer dense(int outDim) {
    return Linear.dense(outDim);
  }

  /** Dense in NTK parameterization; {@code bStd == null} means no bias. */
  public static Layer dense(int outDim, double wStd, Double bStd) {
    return Linear.dense(outDim, wStd, bStd);
  }

  /** {@link Linear#dense}. */
  public static Layer dense(int outDim, double wStd, Double bStd, Linear.Parameterization parameterization) {
    return Linear.dense(outDim, wStd, bStd, parameterization);
  }

  /** {@link Linear#flatten}. */
  public static Layer flatten() {
    return Linear.flatten();
  }

  /** {@link Linear#identity}. */
  public static Layer identity() {
    return Linear.identity();
  }

  // Nonlinearities (Elementwise)
  /** {@link Elementwise#relu}. */
  public static Layer relu() {
    return Elementwise.relu();
  }

  /** {@link Elementwise#relu(boolean)}: {@code do_stabilize}. */
  public static Layer relu(boolean doStabilize) {
    return Elementwise.relu(doStabilize);
  }

  /** {@code x} for {@code x > 0}, {@code alpha x} otherwise. */
  public static Layer leakyRelu(double alpha) {
    return Elementwise.leakyRelu(alpha);
  }

  /** {@link Elementwise#leakyRelu(double, boolean)}: {@code do_stabilize}. */
  public static Layer leakyRelu(double alpha, boolean doStabilize) {
    return Elementwise.leakyRelu(alpha, doStabilize);
  }

  /** {@code |x|}. */
  public static Layer abs() {
    return Elementwise.abs();
  }

  /** {@link Elementwise#abs(boolean)}: {@code do_stabilize}. */
  public static Layer abs(boolean doStabilize) {
    return Elementwise.abs(doStabilize);
  }

  /** {@code a x} for {@code x < 0}, {@code b x} for {@code x > 0}. */
  public static Layer abRelu(double a, double b) {
    return Elementwise.abRelu(a, b);
  }

  /** {@link Elementwise#abRelu(double, double, boolean)}: {@code do_stabilize}. */
  public static Layer abRelu(double a, double b, boolean doStabilize) {
    return Elementwise.abRelu(a, b, doStabilize);
  }

  /** {@code erf(x)}. */
  public static Layer erf() {
    return Elementwise.erf();
  }

  /** {@code a * erf(b * x) + c}. */
  public static Layer erf(double a, double b, double c) {
    return Elementwise.erf(a, b, c);
  }

  /** {@code x Phi(x)}. */
  public static Layer gelu() {
    return Elementwise.gelu();
  }

  /** GELU, with the tanh form in the finite network if {@code approximate}. */
  public static Layer gelu(boolean approximate) {
    return Elementwise.gelu(approximate);
  }

  /** {@code sin(x)}. */
  public static Layer sin() {
    return Elementwise.sin();
  }

  /** {@code a * sin(b * x + c)}. */
  public static Layer sin(double a, double b, double c) {
    return Elementwise.sin(a, b, c);
  }

  /** {@code cos(x)}. */
  public static Layer cos() {
    return Elementwise.cos();
  }

  /** {@code a * cos(b * x + c)}. */
  public static Layer cos(double a, double b, double c) {
    return Elementwise.cos(a, b, c);
  }

  /** {@code sqrt(2) sin(sqrt(2 gamma) x + pi/4)}. */
  public static Layer rbf(double gamma) {
    return Elementwise.rbf(gamma);
  }

  /** {@code exp(x)}. */
  public static Layer exp() {
    return Elementwise.exp();
  }

  /** {@code a * exp(b * x)}. */
  public static Layer exp(double a, double b) {
    return Elementwise.exp(a, b);
  }

  /** {@code sign(x)}. */
  public static Layer sign() {
    return Elementwise.sign();
  }

  /** {@code x^degree} for {@code x >= 0}, 0 otherwise. */
  public static Layer rectifiedMonomial(int degree) {
    return Elementwise.rectifiedMonomial(degree);
  }

  /** {@code x^degree}, {@code degree} from 0 to 5. */
  public static Layer monomial(int degree) {
    return Elementwise.monomial(degree);
  }

  /** {@code sum_k coef[k] x^k}, ascending powers. */
  public static Layer polynomial(double... coef) {
    return Elementwise.polynomial(coef);
  }

  /** {@link ElementwiseQuadrature#elementwiseNumerical}: neural-tangents' Gauss–Hermite rule of degree {@code deg}. */
  public static Layer elementwiseNumerical(String fn, int deg) {
    return ElementwiseQuadrature.elementwiseNumerical(fn, deg);
  }

  /** {@link ElementwiseQuadrature#elementwise}: the exact kernel of a named function. */
  public static Layer elementwise(String fn) {
    return ElementwiseQuadrature.elementwise(fn);
  }

  /** {@code exp(-x^2)}. */
  public static Layer gaussian() {
    return Elementwise.gaussian();
  }

  /** {@code a * exp(b * x^2)}. */
  public static Layer gaussian(double a, double b) {
    return Elementwise.gaussian(a, b);
  }

  /** {@link Elementwise#sigmoidLike}. */
  public static Layer sigmoidLike() {
    return Elementwise.sigmoidLike();
  }

  /** {@code exp(-x^2) sin(x)}. */
  public static Layer gabor() {
    return Elementwise.gabor();
  }

  /** {@link Elementwise#hermite}: its input must have variance 1. */
  public static Layer hermite(int degree) {
    return Elementwise.hermite(degree);
  }

  /** {@link Elementwise#expNormalized()}. */
  public static Layer expNormalized() {
    return Elementwise.expNormalized();
  }

  /** {@link Elementwise#expNormalized(double, double, boolean)}. */
  public static Layer expNormalized(double gamma, double shift, boolean doClip) {
    return Elementwise.expNormalized(gamma, shift, doClip);
  }

  // User activations from Java (UserElementwise)
  /** {@link UserElementwise#closedForm(UserElementwise.ClosedForm)}: a user closed form, kernels only. */
  public static Layer elementwise(UserElementwise.ClosedForm nngp) {
    return UserElementwise.closedForm(nngp);
  }

  /** {@link UserElementwise#closedForm(UserElementwise.ClosedForm, java.util.function.DoubleUnaryOperator)}. */
  public static Layer elementwise(UserElementwise.ClosedForm nngp, java.util.function.DoubleUnaryOperator phi) {
    return UserElementwise.closedForm(nngp, phi);
  }

  /** {@link UserElementwise#quadrature}: {@code phi} and its derivative {@code dphi} through quadrature. */
  public static Layer elementwise(java.util.function.DoubleUnaryOperator phi,
      java.util.function.DoubleUnaryOperator dphi) {
    return UserElementwise.quadrature(phi, dphi);
  }

  /** {@link UserElementwise#quadrature}: {@code phi} and {@code dphi} through a quadrature of degree {@code deg}. */
  public static Layer elementwise(java.util.function.DoubleUnaryOperator phi,
      java.util.function.DoubleUnaryOperator dphi, int deg) {
    return UserElementwise.quadrature(phi, dphi, deg);
  }

  /**
   * {@link UserElementwise#quadrature(java.util.function.DoubleUnaryOperator, java.util.function.DoubleUnaryOperator,
   * java.util.function.DoubleUnaryOperator)}: with {@code phi''} for {@link Layer#jet}.
   */
  public static Layer elementwise(java.util.function.DoubleUnaryOperator phi,
      java.util.function.DoubleUnaryOperator dphi, java.util.function.DoubleUnaryOperator d2phi) {
    return UserElementwise.quadrature(phi, dphi, d2phi);
  }

  /**
   * {@link UserElementwise#quadrature(java.util.function.DoubleUnaryOperator, java.util.function.DoubleUnaryOperator,
   * java.util.function.DoubleUnaryOperator, int)}.
   */
  public static Layer elementwise(java.util.function.DoubleUnaryOperator phi,
      java.util.function.DoubleUnaryOperator dphi, java.util.function.DoubleUnaryOperator d2phi, int deg) {
    return UserElementwise.quadrature(phi, dphi, d2phi, deg);
  }

  // Convolutions and pooling (Convolutional)
  /** A convolution with {@code W_std = 1}, no bias, strides 1, NTK parameterization. */
  public static Layer conv(int outChan, int[] filterShape, String padding) {
    return Convolutional.conv(outChan, filterShape, padding);
  }

  /** A convolution in NTK parameterization; {@code strides == null} means all 1, {@code bStd == null} no bias. */
  public static Layer conv(int outChan, int[] filterShape, int[] strides, String padding, double wStd, Double bStd) {
    return Convolutional.conv(outChan, filterShape, strides, padding, wStd, bStd);
  }

  /** {@link Convolutional#conv}. */
  public static Layer conv(int outChan, int[] filterShape, int[] strides, String padding, double wStd, Double bStd, Linear.Parameterization parameterization) {
    return Convolutional.conv(outChan, filterShape, strides, padding, wStd, bStd, parameterization);
  }

  /** A transposed convolution in NTK parameterization; {@code strides == null} means all 1. */
  public static Layer convTranspose(int outChan, int[] filterShape, int[] strides, String padding, double wStd, Double bStd) {
    return Convolutional.convTranspose(outChan, filterShape, strides, padding, wStd, bStd);
  }

  /** A locally connected layer (unshared convolution) in NTK parameterization; {@code strides == null}: all 1. */
  public static Layer convLocal(int outChan, int[] filterShape, int[] strides, String padding, double wStd,
      Double bStd) {
    return Convolutional.convLocal(outChan, filterShape, strides, padding, wStd, bStd);
  }

  public static Layer convLocal(int outChan, int[] filterShape, int[] strides, String padding, double wStd,
      Double bStd, Linear.Parameterization parameterization) {
    return Convolutional.convLocal(outChan, filterShape, strides, padding, wStd, bStd, parameterization);
  }

  /**
   * {@code lax.dot_general} of the input with a constant {@code rhs}, or of a constant {@code lhs}
   * with the input (neural-tangents' {@code DotGeneral}); {@code dimensionNumbers} null for none.
   */
  public static Layer dotGeneral(Object lhs, Object rhs, int[][][] dimensionNumbers) {
    return Linear.dotGeneral(lhs, rhs, dimensionNumbers);
  }

  /** Average pooling; {@code strides == null} means all 1 (as in neural-tangents). */
  public static Layer avgPool(int[] window, int[] strides, String padding) {
    return Convolutional.avgPool(window, strides, padding);
  }

  /** Average pooling dividing, with {@code SAME} padding, by the pixels inside the image. */
  public static Layer avgPool(int[] window, int[] strides, String padding, boolean normalizeEdges) {
    return Convolutional.avgPool(window, strides, padding, normalizeEdges);
  }

  /** {@link Convolutional#sumPool}. */
  public static Layer sumPool(int[] window, int[] strides, String padding) {
    return Convolutional.sumPool(window, strides, padding);
  }

  /** {@link Convolutional#globalAvgPool}. */
  public static Layer globalAvgPool() {
    return Convolutional.globalAvgPool();
  }

  /** {@link Convolutional#globalSumPool}. */
  public static Layer globalSumPool() {
    return Convolutional.globalSumPool();
  }

  // Normalization
  /** {@link Normalization#layerNorm()}. */
  public static Layer layerNorm() {
    return Normalization.layerNorm();
  }

  /** {@link Normalization#layerNorm(int[], double)}. */
  public static Layer layerNorm(int[] axis, double eps) {
    return Normalization.layerNorm(axis, eps);
  }

  /** {@link Normalization#dropout(double)}. */
  public static Layer dropout(double rate) {
    return Normalization.dropout(rate);
  }

  /** {@link Normalization#dropout(double, String)}. */
  public static Layer dropout(double rate, String mode) {
    return Normalization.dropout(rate, mode);
  }

  // Attention
  /** {@link Attention#globalSelfAttention}. */
  public static Layer globalSelfAttention(int nChanOut, int nChanKey, int nChanVal, int nHeads,
      boolean linearScaling, double wKeyStd, double wValueStd, double wQueryStd, double wOutStd, Double bStd,
      String attentionMechanism) {
    return Attention.globalSelfAttention(nChanOut, nChanKey, nChanVal, nHeads, linearScaling, wKeyStd, wValueStd,
        wQueryStd, wOutStd, bStd, attentionMechanism);
  }

  /** {@link Attention#globalSelfAttention}, with positional embeddings. */
  public static Layer globalSelfAttention(int nChanOut, int nChanKey, int nChanVal, int nHeads,
      boolean linearScaling, double wKeyStd, double wValueStd, double wQueryStd, double wOutStd, Double bStd,
      String attentionMechanism, String posEmbType, double wPosEmbStd, boolean valPosEmb) {
    return Attention.globalSelfAttention(nChanOut, nChanKey, nChanVal, nHeads, linearScaling, wKeyStd, wValueStd,
        wQueryStd, wOutStd, bStd, attentionMechanism, posEmbType, wPosEmbStd, valPosEmb);
  }

  // Pixel maps
  /** {@link Convolutional#index}. */
  public static Layer index(String... idx) {
    return Convolutional.index(idx);
  }

  /** {@link Convolutional#imageResize}. */
  public static Layer imageResize(int[] shape, String method, boolean antialias) {
    return Convolutional.imageResize(shape, method, antialias);
  }

  /** {@link Graph#aggregate()}. */
  public static Layer aggregate() {
    return Graph.aggregate();
  }

  /** {@link Graph#aggregate(int[], String)}. */
  public static Layer aggregate(int[] aggregateAxis, String implementation) {
    return Graph.aggregate(aggregateAxis, implementation);
  }
}
