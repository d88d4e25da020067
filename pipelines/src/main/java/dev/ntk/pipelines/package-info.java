/**
 * Runnable jobs and the {@code ntk} command line ({@code bin/ntk}). {@link dev.ntk.pipelines.Ntk}
 * is the command line's entry point ({@code main}, and {@code Ntk.run} for tests), with one class per
 * subcommand ({@code KernelCommand}, {@code PredictCommand}, {@code LrCommand}, {@code McCommand},
 * {@code TilesCommand}), the option mixins they share ({@code JobOptions}, {@code CommonOptions},
 * {@code KernelInputs}) and the base of those that run jobs ({@code JobCommand}); commands check their inputs first ({@code InputChecks}) and
 * write their outputs all or nothing ({@code Outputs}). The jobs, {@link dev.ntk.pipelines.KernelJob}
 * and {@link dev.ntk.pipelines.PredictJob}, build and run a Beam pipeline of the {@code
 * dev.ntk.transforms} transforms; a job whose kernels fit one tile (predict: {@code --max-memory})
 * runs in-process instead ({@code
 * InProcessKernel}, {@code InProcessPredict}), and a prediction whose train kernel does not fit is
 * factored out of core in-process ({@code OutOfCorePredict}). {@link dev.ntk.pipelines.KernelPipeline} is the
 * kernel job for runners with their own launchers (Dataflow), configured by {@link
 * dev.ntk.pipelines.KernelOptions}.
 */
package dev.ntk.pipelines;
