/**
 * The benchmark programs that {@code bench/*.sh} and {@code runners/flink-*-check.sh} run, kept in
 * the Maven module {@code bench} out of the production jars; not part of the library's API. {@link
 * dev.ntk.bench.Bench} (inputs, the engine alone, in-process kernels, plans, native loading),
 * {@link dev.ntk.bench.PredictBench} (the linear algebra of exact inference, OpenBLAS against
 * TensorFlow) and {@link dev.ntk.bench.NativeBench} (the Beam kernel path on native buffers) print
 * {@code RESULT} lines that the scripts read ({@code bench/README.md}).
 */
package dev.ntk.bench;
