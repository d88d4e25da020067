/**
 * Apache Beam transforms for kernels and predictions. Entry points: {@link
 * dev.ntk.transforms.Kernels} (the kernel tiles of a {@code PCollection} of examples), {@link
 * dev.ntk.transforms.KernelIO} (tiles to {@code .npy} files), {@link dev.ntk.transforms.GpInference}
 * (predictions from tiles: exact inference, gradient descent and ODE dynamics as {@link
 * dev.ntk.transforms.PredictSettings} says), and, for kernels kept as files, {@link
 * dev.ntk.transforms.TileSet} (a kernel as a resumable set of tile files, named by the model's and
 * the inputs' hashes), {@link dev.ntk.transforms.KernelTiles} (computes a set's missing tiles) and
 * {@link dev.ntk.transforms.WriteKernels} (assembles them). {@code GpInference}'s steps ({@code
 * FactorFn}, {@code PredictBlockFn}, {@code WriteFn}) see tiles through a {@code TileAccess}, keys of
 * files or tiles as elements, so that both forms share one code path; {@code TileComputer} is the
 * compute step both kernel paths share. Paths may be local or any Beam file system ({@link
 * dev.ntk.transforms.BeamFiles}).
 */
package dev.ntk.transforms;
