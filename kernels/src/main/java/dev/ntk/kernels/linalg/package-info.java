/** Dense float64 linear algebra in native memory on OpenBLAS' LAPACK and BLAS. */
package dev.ntk.kernels.linalg;
