package dev.ntk.kernels.cuda;

/**
 * Where the kernels of a {@link CudaSource} run: a CUDA device ({@link CudaDevice}) or the host
 * ({@link HostDevice}, the same source compiled as C). Memory is addressed by 64-bit addresses
 * (device pointers, or host pointers); every kernel parameter is one 64-bit value.
 */
public interface Device extends AutoCloseable {
  /** What it is, in words (the GPU's name, or "host"). */
  String name();

  /** {@code bytes} of memory (at least one), uninitialised. */
  long allocate(long bytes);

  /** Frees memory from {@link #allocate}. */
  void free(long address);

  /** Copies a {@code double[]}, {@code float[]} or {@code int[]} to {@code address}. */
  void upload(Object array, long address);

  /** Copies from {@code address} into a {@code double[]}, {@code float[]} or {@code int[]}, filling it. */
  void download(long address, Object array);

  /** Compiles {@code source} (cached by the caller); the handle of its module. */
  Object load(String source);

  /**
   * Runs kernel {@code kernel} of {@code module} on {@code grid} blocks of {@code threads} threads
   * (the host runs blocks of one thread, whatever {@code threads} says), and waits for it.
   */
  void launch(Object module, String kernel, long grid, int threads, long... args);

  /** Threads per block this device runs ({@code threads} of {@link #launch}; 1 on the host). */
  int threads(int wanted);

  /**
   * The gram {@code x1 x2^T / d} of row-major {@code x1 (n1, d)} and {@code x2 (n2, d)} ({@code
   * double[]} or {@code float[]}), all of it, into {@code out}.
   */
  void gram(Object x1, Object x2, int n1, int n2, int d, long out);

  /**
   * How many thread blocks keep this device busy: a kernel over fewer items splits each item's
   * block over several thread blocks.
   */
  int parallelBlocks();

  /** Scratch memory a batch of pixel-block items may take, in bytes. */
  long scratchBudget();

  @Override
  void close();
}
