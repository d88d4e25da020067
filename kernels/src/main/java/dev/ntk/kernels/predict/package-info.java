/** Predictions of infinite networks: exact GP inference and the infinite trained ensemble. */
package dev.ntk.kernels.predict;
