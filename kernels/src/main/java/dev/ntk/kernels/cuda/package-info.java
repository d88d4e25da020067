/**
 * The {@code cuda} engine: a plan's steps generated as CUDA C ({@link dev.ntk.kernels.cuda.CudaSource}),
 * compiled at run time by NVRTC and launched through the CUDA driver API ({@link
 * dev.ntk.kernels.cuda.CudaDevice}), the input gram on cuBLAS; every native library is found on the
 * machine and called through JNA. It runs every step of a plan, attention's included, but a user's
 * Java function, on the inputs it computes from the raw inputs ({@link
 * dev.ntk.kernels.cuda.CudaSource#runs}). The same source compiles as C on the host ({@link
 * dev.ntk.kernels.cuda.HostDevice}, with {@code gcc}), which is how machines without a GPU test it.
 */
package dev.ntk.kernels.cuda;
