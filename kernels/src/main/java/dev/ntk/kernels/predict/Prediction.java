package dev.ntk.kernels.predict;

import ai.djl.ndarray.NDArray;

/**
 * The predictive distribution on test inputs: {@code mean} has shape {@code (N_test,)} plus the
 * trailing shape of the targets; {@code cov} is {@code (N_test, N_test)}, or {@code null} when it
 * was not asked for.
 */
public record Prediction(NDArray mean, NDArray cov) {}
