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
 * <p>The factories live in the family files, each next to its layer ({@link Branching}, {@link
 * Linear}, {@link Elementwise}, {@link Convolutional}); {@code Stax} extends the last of that chain of families, so every
 * factory is reachable as {@code Stax.name(...)}, and {@link LayerType#registered()} finds every
 * layer type by walking the same chain. A new family joins by extending the last one and being
 * extended here.
 */
public final class Stax extends Convolutional {
  private Stax() {}
}
