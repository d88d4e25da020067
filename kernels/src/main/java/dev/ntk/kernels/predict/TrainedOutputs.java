package dev.ntk.kernels.predict;

import ai.djl.ndarray.NDArray;

/** The outputs of a network trained for time {@code t}: on the train inputs and on the test inputs. */
public record TrainedOutputs(double t, NDArray train, NDArray test) {}
