/**
 * The engine that runs a compiled plan: a {@link dev.ntk.kernels.engine.Schedule} of entry-wise
 * {@link dev.ntk.kernels.engine.Expr} steps (per input and per pair of inputs), executed on the
 * {@code cpu} backend ({@link dev.ntk.kernels.engine.CpuBackend}: the Gram matrix on OpenBLAS
 * ({@link dev.ntk.kernels.engine.Gram}), then the per-pair steps as vectorised loops, interpreted
 * chunk by chunk or generated, compiled and fused per segment by {@code Fused}, pixel blocks item by
 * item by {@code BlockRunner}) or on {@code tensorflow} ({@link
 * dev.ntk.kernels.engine.TensorFlowBackend}: the same steps as TensorFlow ops through DJL). Entry
 * points are {@link dev.ntk.kernels.engine.Backend} (which backend runs), {@link
 * dev.ntk.kernels.engine.CpuBackend#float64()} and {@link dev.ntk.kernels.engine.CpuBackend#float32()}
 * as given to {@link dev.ntk.kernels.Plan#run} and {@link dev.ntk.kernels.Plan#runInto}, and {@link
 * dev.ntk.kernels.engine.NativeBuffer} for kernels written into native memory. Layers never see this
 * package's loops: their rules are expressions ({@code Expr}) that the engine schedules.
 */
package dev.ntk.kernels.engine;
