/**
 * Infinite-width networks without Beam: {@link dev.ntk.kernels.Layer}s built with {@link
 * dev.ntk.kernels.Stax} or read from model files by {@link dev.ntk.kernels.ModelSpec}, their
 * translation rules grouped by family ({@link dev.ntk.kernels.Linear}, {@link
 * dev.ntk.kernels.Elementwise}, {@link dev.ntk.kernels.Branching}), the {@link
 * dev.ntk.kernels.Kernel} value they pass along, and Monte Carlo estimates from finite networks.
 */
package dev.ntk.kernels;
