package dev.ntk.kernels.engine;

import dev.ntk.kernels.linalg.OpenBlas;
import java.nio.Buffer;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.openblas.global.openblas;

/**
 * The input kernel of a tile, the one step that is not entry-wise: {@code nngp = x1 x2^T / d} as
 * one GEMM on OpenBLAS (the JavaCPP preset, whose native library comes from Maven), or for x1 with
 * itself the upper triangle by GEMMs of row blocks ({@link #upperBlocks}); and the per-input
 * variances {@code |x|^2 / d}.
 *
 * <p>The result stays in native memory ({@link Result}): the {@code cpu} backend stages it chunk by
 * chunk into its registers, where copying a Java array in and out of the native call cost a third
 * of an in-process 4096 x 4096 float32 kernel's time (perf, 2-core AMD EPYC). Its first touch
 * cost more than the product: 0.18 s of a 0.32 s {@code ssyrk} into a new 64 MiB buffer, in 4 KiB
 * page faults, hence {@link NativeBuffer}'s huge pages. OpenBLAS runs with its own thread count (all
 * cores unless {@code OPENBLAS_NUM_THREADS} says otherwise), which is never changed while the JVM
 * computes.
 */
public final class Gram {
  static {
    OpenBlas.configure();
  }

  private Gram() {}

  /**
   * {@code x1 x2^T / d} for row-major {@code x1 (n1, d)} and {@code x2 (n2, d)}, both {@code
   * double[]} or both {@code float[]}; {@code x2 == null} for x1 with itself, of which only the
   * upper triangle (diagonal included) is computed.
   */
  public static NativeBuffer of(Object x1, Object x2, int n1, int n2, int d, int threads) {
    NativeBuffer result = NativeBuffer.allocate((long) n1 * n2, x1 instanceof double[]);
    into(x1, x2, n1, n2, d, result.buffer());
    return result;
  }

  /**
   * As {@link #of}, into {@code out}: a direct {@code DoubleBuffer} ({@code double[]} inputs) or
   * {@code FloatBuffer} ({@code float[]}) of at least {@code n1 n2} values, from its position 0.
   */
  public static void into(Object x1, Object x2, int n1, int n2, int d, Buffer out) {
    // OpenBLAS' thread count is left as it is (all cores, or OPENBLAS_NUM_THREADS): changing it
    // while another thread of the JVM is inside an OpenBLAS call (a Beam worker's tile beside a
    // prediction step's factorisation) is not safe.
    if (!out.isDirect() || out.capacity() < (long) n1 * n2) {
      throw new IllegalArgumentException("the gram needs a direct buffer of " + (long) n1 * n2 + " values");
    }
    boolean f64 = x1 instanceof double[];
    try (Pointer p1 = f64 ? new DoublePointer((double[]) x1) : new FloatPointer((float[]) x1);
        Pointer p2 = x2 == null ? null : f64 ? new DoublePointer((double[]) x2) : new FloatPointer((float[]) x2);
        Pointer o = f64 ? new DoublePointer((DoubleBuffer) out.duplicate().position(0))
            : new FloatPointer((FloatBuffer) out.duplicate().position(0))) {
      if (p2 == null) {
        for (int[] b : upperBlocks(n1)) {
          gemm(b[1] - b[0], n1 - b[0], d, p1, (long) b[0] * d, p1, (long) b[0] * d, o, (long) b[0] * n1 + b[0], n1);
        }
      } else {
        gemm(n1, n2, d, p1, 0, p2, 0, o, 0, n2);
      }
    }
  }

  /**
   * {@code c = a b^T / d} for the row-major {@code m x d} {@code a} and {@code n x d} {@code b} from
   * values {@code aAt}, {@code bAt} on, into {@code c} from {@code cAt} on (leading dimension {@code
   * ldc}): {@code dgemm} on {@code DoublePointer}s, {@code sgemm} on {@code FloatPointer}s.
   */
  private static void gemm(int m, int n, int d, Pointer a, long aAt, Pointer b, long bAt, Pointer c, long cAt,
      int ldc) {
    int order = openblas.CblasRowMajor;
    if (a instanceof DoublePointer da) {
      openblas.cblas_dgemm(order, openblas.CblasNoTrans, openblas.CblasTrans, m, n, d, 1.0 / d, da.getPointer(aAt), d,
          ((DoublePointer) b).getPointer(bAt), d, 0.0, ((DoublePointer) c).getPointer(cAt), ldc);
    } else {
      openblas.cblas_sgemm(order, openblas.CblasNoTrans, openblas.CblasTrans, m, n, d, 1.0f / d,
          ((FloatPointer) a).getPointer(aAt), d, ((FloatPointer) b).getPointer(bAt), d, 0.0f,
          ((FloatPointer) c).getPointer(cAt), ldc);
    }
  }

  /**
   * Row blocks {@code [from, to)} of the gram of x1 with itself whose upper parts (columns from
   * {@code from} on) cover the upper triangle: each is one {@code gemm} of OpenBLAS, which runs it
   * on all its threads, where its {@code syrk} used one (0.13 s against 0.08 s for n = 4096, d =
   * 784, float32, 2-core AMD EPYC; eight blocks compute 56% of the full product).
   */
  static List<int[]> upperBlocks(int n) {
    int blocks = n < 512 ? 1 : 8;
    List<int[]> list = new ArrayList<>();
    for (int b = 0; b < blocks; b++) {
      int from = (int) ((long) n * b / blocks);
      int to = (int) ((long) n * (b + 1) / blocks);
      if (to > from) {
        list.add(new int[] {from, to});
      }
    }
    return list;
  }

  /** The mean square of each row of {@code x (n, d)} ({@code double[]} or {@code float[]}), in float64. */
  public static double[] variances(Object x, int n, int d) {
    double[] v = new double[n];
    double[] xd = x instanceof double[] a ? a : null;
    float[] xf = xd == null ? (float[]) x : null;
    for (int i = 0; i < n; i++) {
      double s = 0;
      for (int k = i * d; k < (i + 1) * d; k++) {
        double value = xd != null ? xd[k] : xf[k];
        s += value * value;
      }
      v[i] = s / d;
    }
    return v;
  }

  /**
   * The input kernel of images, block by block: for row input {@code i} of {@code x1} and column
   * input {@code j} of {@code x2} (both {@code (n, P, C)} row-major, pixels then channels), the
   * per-pixel {@code sum_c x1[i, p, c] x2[j, p, c] / C} ({@code full == false}) or the pixel-pair
   * {@code sum_c x1[i, p, c] x2[j, q, c] / C}, accumulated in float64. A per-row block ({@code j
   * == -1}) is row input {@code i} with itself, a per-column block ({@code i == -1}) column input
   * {@code j} with itself: the same sums as the pair block of an input with itself, to the bit.
   */
  public static <A> BlockInput<A> pixels(A x1, A x2, int pixels, int channels, boolean full) {
    return (i, j, out) -> {
      A a = i < 0 ? x2 : x1;
      A b = j < 0 ? x1 : x2;
      int ai = i < 0 ? j : i;
      int bj = j < 0 ? i : j;
      long size = (long) pixels * channels;
      int ao = Math.toIntExact(ai * size);
      int bo = Math.toIntExact(bj * size);
      double scale = 1.0 / channels;
      if (a instanceof double[] da) {
        double[] db = (double[]) b;
        double[] o = (double[]) out;
        for (int p = 0; p < pixels; p++) {
          int pa = ao + p * channels;
          for (int q = full ? 0 : p; q < (full ? pixels : p + 1); q++) {
            int qb = bo + q * channels;
            double s = 0;
            for (int c = 0; c < channels; c++) {
              s += da[pa + c] * db[qb + c];
            }
            o[full ? p * pixels + q : p] = s * scale;
          }
        }
      } else {
        float[] fa = (float[]) a;
        float[] fb = (float[]) b;
        float[] o = (float[]) out;
        for (int p = 0; p < pixels; p++) {
          int pa = ao + p * channels;
          for (int q = full ? 0 : p; q < (full ? pixels : p + 1); q++) {
            int qb = bo + q * channels;
            double s = 0;
            for (int c = 0; c < channels; c++) {
              s += (double) fa[pa + c] * fb[qb + c];
            }
            o[full ? p * pixels + q : p] = (float) (s * scale);
          }
        }
      }
    };
  }
}
