/**
 * Finite networks as functions of their parameters: the network itself and its linearization
 * ({@link dev.ntk.kernels.train.Taylor#linearize}), and training them by gradient descent, SGD,
 * momentum and Adam ({@link dev.ntk.kernels.train.Trainer}), alone or as an ensemble of seeds
 * ({@link dev.ntk.kernels.train.Ensemble}).
 */
package dev.ntk.kernels.train;
