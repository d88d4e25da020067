package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.engine.Backend;
import java.util.EnumSet;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Kernels that keep the spatial axes of a model's last layer ({@link Spatial}, neural-tangents'
 * {@code diagonal_spatial}): a single convolution by hand, the average over positions against the
 * {@code GlobalAvgPool} and {@code Flatten} readouts, the per-pixel kernel against the diagonal of
 * the pixel-pair one, {@code cov1} against the kernel of x1 with itself, the two backends, and Monte
 * Carlo of the finite network.
 */
class SpatialTest {
  private static NDManager manager;

  @BeforeAll
  static void setUp() {
    manager = Tensors.newManager();
  }

  @AfterAll
  static void tearDown() {
    manager.close();
  }

  private static int[] a(int... v) {
    return v;
  }

  /** Convolutional bodies without a readout: per pixel, with a pooling layer inside, with dropout. */
  static List<Layer> bodies() {
    return List.of(
        Stax.serial(Stax.conv(4, a(3, 2), null, "SAME", 1.4, 0.1), Stax.relu(),
            Stax.conv(4, a(2, 2), null, "CIRCULAR", 1.2, 0.2), Stax.erf()),
        Stax.serial(Stax.conv(4, a(2, 2), null, "VALID", 1.3, 0.1), Stax.relu(),
            Stax.avgPool(a(2, 1), a(1, 1), "SAME"), Stax.conv(4, a(2, 2), null, "SAME", 1.1, null)),
        Stax.serial(Stax.conv(4, a(2, 2), null, "SAME", 1.3, 0.1), Stax.relu(), Stax.dropout(0.7, "train"),
            Stax.conv(4, a(1, 2), null, "VALID", 1.2, 0.1)));
  }

  static final long[] IMAGE = {4, 3, 2};

  /**
   * One VALID convolution with a bias: its pixel-pair NNGP is the input covariance {@code x1[p] .
   * x2[q] / C} summed over the filter's offsets (shifting both pixels), times {@code W_std^2} over
   * the filter size, plus {@code b_std^2}; its NTK equals it (no layer below it has parameters).
   */
  @Test
  void singleConvolutionIsThePatchSummedInputCovariance() {
    int h = 4;
    int w = 5;
    int c = 2;
    int fh = 2;
    int fw = 3;
    double wStd = 1.3;
    double bStd = 0.2;
    Layer conv = Stax.conv(3, a(fh, fw), null, "VALID", wStd, bStd);
    NDArray x1 = KernelTesting.randomImages(manager, 2, new long[] {h, w, c}, 1);
    NDArray x2 = KernelTesting.randomImages(manager, 3, new long[] {h, w, c}, 2);
    double[] a1 = x1.toDoubleArray();
    double[] a2 = x2.toDoubleArray();
    int oh = h - fh + 1;
    int ow = w - fw + 1;
    double[] expected = new double[2 * 3 * oh * oh * ow * ow];
    int at = 0;
    for (int i = 0; i < 2; i++) {
      for (int j = 0; j < 3; j++) {
        // neural-tangents' layout (N1, N2, H, H', W, W')
        for (int p = 0; p < oh; p++) {
          for (int q = 0; q < oh; q++) {
            for (int r = 0; r < ow; r++) {
              for (int s = 0; s < ow; s++) {
                double sum = 0;
                for (int u = 0; u < fh; u++) {
                  for (int v = 0; v < fw; v++) {
                    for (int k = 0; k < c; k++) {
                      sum += a1[((i * h + p + u) * w + r + v) * c + k] * a2[((j * h + q + u) * w + s + v) * c + k];
                    }
                  }
                }
                expected[at++] = wStd * wStd * sum / c / (fh * fw) + bStd * bStd;
              }
            }
          }
        }
      }
    }
    for (Backend backend : new Backend[] {Backend.CPU, Backend.TENSORFLOW}) {
      Kernel full = conv.kernelFn().withBackend(backend).keepSpatial(Spatial.FULL).apply(x1, x2);
      assertEquals(new Shape(2, 3, oh, oh, ow, ow), full.nngp().getShape());
      assertEquals(new Shape(2, 3, oh, oh, ow, ow), full.ntk().getShape());
      assertFalse(full.diagonalSpatial());
      double err = KernelTesting.relativeError(full.nngp().toDoubleArray(), expected);
      assertTrue(err < 1e-14, backend + ": nngp off the hand-computed one by " + err);
      err = KernelTesting.relativeError(full.ntk().toDoubleArray(), expected);
      assertTrue(err < 1e-14, backend + ": ntk off the hand-computed one by " + err);
      Kernel diagonal = conv.kernelFn().withBackend(backend).keepSpatial(Spatial.DIAGONAL).apply(x1, x2);
      assertEquals(new Shape(2, 3, oh, ow), diagonal.nngp().getShape());
      assertEquals(new Shape(2, oh, ow), diagonal.cov1().getShape());
      assertEquals(new Shape(3, oh, oh, ow, ow), full.cov2().getShape());
      assertTrue(diagonal.diagonalSpatial());
    }
  }

  /**
   * The pixel-pair kernel averaged over every two positions is the kernel after {@code
   * GlobalAvgPool}; the per-pixel kernel averaged over positions is the reduced kernel ({@code
   * Flatten}'s): NNGP, NTK, and both covariances, for x1 with itself and against x2.
   */
  @Test
  void averagesOverPositionsAreTheReadoutsKernels() {
    NDArray x1 = KernelTesting.randomImages(manager, 3, IMAGE, 5);
    NDArray x2 = KernelTesting.randomImages(manager, 2, IMAGE, 6);
    for (Layer body : bodies()) {
      for (NDArray other : new NDArray[] {null, x2}) {
        Kernel full = body.kernelFn().keepSpatial(Spatial.FULL).apply(x1, other);
        Kernel pooled = Stax.serial(body, Stax.globalAvgPool()).kernelFn().apply(x1, other);
        Kernel diagonal = body.kernelFn().keepSpatial(Spatial.DIAGONAL).apply(x1, other);
        Kernel reduced = body.kernelFn().apply(x1, other);
        for (Get g : Get.values()) {
          assertClose(meanOverPixels(full.get(g), 2), pooled.get(g).toDoubleArray(), 1e-13, body + " " + g);
          assertClose(meanOverPixels(diagonal.get(g), 2), reduced.get(g).toDoubleArray(), 1e-13, body + " " + g);
        }
        assertClose(meanOverPixels(full.cov1(), 1), pooled.cov1().toDoubleArray(), 1e-13, body + " cov1");
        assertClose(meanOverPixels(full.cov2(), 1), pooled.cov2().toDoubleArray(), 1e-13, body + " cov2");
        assertClose(meanOverPixels(diagonal.cov1(), 1), reduced.cov1().toDoubleArray(), 1e-13, body + " cov1");
      }
    }
  }

  /**
   * {@code diagonal_spatial=true} is the diagonal of {@code diagonal_spatial=false}; {@code cov1}
   * (and {@code cov2}) is the diagonal of the kernel of x1 (x2) with itself, in both layouts.
   */
  @Test
  void diagonalsAgree() {
    NDArray x1 = KernelTesting.randomImages(manager, 3, IMAGE, 7);
    NDArray x2 = KernelTesting.randomImages(manager, 2, IMAGE, 8);
    for (Layer body : bodies()) {
      Kernel full = body.kernelFn().keepSpatial(Spatial.FULL).apply(x1, x2);
      Kernel diagonal = body.kernelFn().keepSpatial(Spatial.DIAGONAL).apply(x1, x2);
      for (Get g : Get.values()) {
        assertClose(pixelDiagonal(full.get(g), 2), diagonal.get(g).toDoubleArray(), 1e-13, body + " " + g);
      }
      assertClose(pixelDiagonal(full.cov1(), 1), diagonal.cov1().toDoubleArray(), 1e-13, body + " cov1");
      for (Spatial s : new Spatial[] {Spatial.FULL, Spatial.DIAGONAL}) {
        Kernel k = s == Spatial.FULL ? full : diagonal;
        Kernel self1 = body.kernelFn().keepSpatial(s).apply(x1);
        Kernel self2 = body.kernelFn().keepSpatial(s).apply(x2);
        assertClose(k.cov1().toDoubleArray(), batchDiagonal(self1.nngp()), 1e-13, body + " " + s + " cov1");
        assertClose(k.cov2().toDoubleArray(), batchDiagonal(self2.nngp()), 1e-13, body + " " + s + " cov2");
        assertClose(self1.cov1().toDoubleArray(), k.cov1().toDoubleArray(), 1e-13, body + " " + s + " cov1");
      }
    }
  }

  /** Both layouts on {@code cpu} and {@code tensorflow} agree to 1e-12 in float64. */
  @Test
  void cpuAndTensorFlowAgree() {
    NDArray x1 = KernelTesting.randomImages(manager, 3, IMAGE, 9);
    NDArray x2 = KernelTesting.randomImages(manager, 2, IMAGE, 10);
    for (Layer body : bodies()) {
      for (Spatial s : new Spatial[] {Spatial.FULL, Spatial.DIAGONAL}) {
        for (NDArray other : new NDArray[] {null, x2}) {
          Kernel cpu = body.kernelFn().withBackend(Backend.CPU).keepSpatial(s).apply(x1, other);
          Kernel tf = body.kernelFn().withBackend(Backend.TENSORFLOW).keepSpatial(s).apply(x1, other);
          for (Get g : Get.values()) {
            assertEquals(cpu.get(g).getShape(), tf.get(g).getShape());
            assertClose(cpu.get(g).toDoubleArray(), tf.get(g).toDoubleArray(), 1e-12, body + " " + s + " " + g);
          }
          assertEquals(cpu.cov1().getShape(), tf.cov1().getShape());
          assertClose(cpu.cov1().toDoubleArray(), tf.cov1().toDoubleArray(), 1e-12, body + " " + s + " cov1");
          assertClose(cpu.cov2().toDoubleArray(), tf.cov2().toDoubleArray(), 1e-12, body + " " + s + " cov2");
        }
      }
    }
  }

  /** No kernel asked for: only the covariances, equal to those computed beside the kernels. */
  @Test
  void covariancesAlone() {
    NDArray x1 = KernelTesting.randomImages(manager, 3, IMAGE, 11);
    NDArray x2 = KernelTesting.randomImages(manager, 2, IMAGE, 12);
    Layer body = bodies().get(0);
    for (Backend backend : new Backend[] {Backend.CPU, Backend.TENSORFLOW}) {
      for (Spatial s : Spatial.values()) {
        KernelFn fn = body.kernelFn().withBackend(backend).keepSpatial(s);
        Kernel alone = fn.apply(x1, x2, EnumSet.noneOf(Get.class));
        Kernel all = fn.apply(x1, x2);
        assertNull(alone.nngp());
        assertNull(alone.ntk());
        assertArrayEquals(all.cov1().toDoubleArray(), alone.cov1().toDoubleArray(), 1e-14);
        assertArrayEquals(all.cov2().toDoubleArray(), alone.cov2().toDoubleArray(), 1e-14);
      }
      // a fully connected model: no pixel blocks, a plan of per-input steps alone
      Layer fc = Stax.serial(Stax.dense(8, 1.5, 0.1), Stax.erf(), Stax.dense(1, 1.2, 0.1));
      NDArray v1 = KernelTesting.randomInputs(manager, 4, 5, 15);
      NDArray v2 = KernelTesting.randomInputs(manager, 3, 5, 16);
      KernelFn fn = fc.kernelFn().withBackend(backend);
      for (NDArray other : new NDArray[] {null, v2}) {
        Kernel alone = fn.apply(v1, other, EnumSet.noneOf(Get.class));
        Kernel all = fn.apply(v1, other);
        assertNull(alone.nngp());
        assertArrayEquals(all.cov1().toDoubleArray(), alone.cov1().toDoubleArray(), 1e-14);
        assertArrayEquals(all.cov2().toDoubleArray(), alone.cov2().toDoubleArray(), 1e-14);
      }
    }
  }

  /**
   * The pixel-pair NNGP against Monte Carlo of the finite network, {@code f1[i, h, w, c] f2[j, h', w', c]}
   * averaged over channels and draws, in neural-tangents' layout: exchanging the two pixels of an axis
   * moves the analytic kernel away from the estimate.
   */
  @Test
  void pixelPairKernelMatchesMonteCarlo() {
    int width = 256;
    int samples = 96;
    Layer model = Stax.serial(Stax.conv(width, a(2, 2), null, "SAME", 1.3, 0.1), Stax.relu(),
        Stax.conv(width, a(2, 1), null, "VALID", 1.2, 0.1));
    NDArray x1 = KernelTesting.randomImages(manager, 2, IMAGE, 17);
    NDArray x2 = KernelTesting.randomImages(manager, 2, IMAGE, 18);
    NDArray analytic = model.kernelFn().keepSpatial(Spatial.FULL).apply(x1, x2).nngp();
    Shape shape = analytic.getShape();
    double[] estimate = new double[Math.toIntExact(shape.size())];
    try (NDManager m = manager.newSubManager()) {
      for (int s = 0; s < samples; s++) {
        Params params = model.init(100 + s, x1.getShape().slice(1), m, x1.getDataType());
        NDArray f1 = model.apply(params, x1);
        NDArray f2 = model.apply(params, x2);
        long h = f1.getShape().get(1);
        long w = f1.getShape().get(2);
        // (N1 h w, N2 h' w') -> (N1, N2, h, h', w, w')
        NDArray k = f1.reshape(-1, width).matMul(f2.reshape(-1, width).transpose()).div(width)
            .reshape(2, h, w, 2, h, w).transpose(0, 3, 1, 4, 2, 5);
        double[] v = k.toDoubleArray();
        for (int e = 0; e < v.length; e++) {
          estimate[e] += v[e] / samples;
        }
      }
    }
    // the draws' noise: 0.039 at 24 draws, 0.020 at 96 (halved by four times the draws, no bias seen)
    double err = KernelTesting.relativeError(estimate, analytic.toDoubleArray());
    assertTrue(err < 0.035, "Monte Carlo off the analytic pixel-pair NNGP by " + err);
    double swapped = KernelTesting.relativeError(estimate, analytic.transpose(0, 1, 3, 2, 4, 5).toDoubleArray());
    assertTrue(swapped > 3 * err, "the layout is not told apart: " + swapped + " against " + err);
  }

  /** A model that ends with a readout has no spatial axes to keep: the error names the readout. */
  @Test
  void readoutModelsAreRefusedNamingTheReadout() {
    NDArray x = KernelTesting.randomImages(manager, 2, IMAGE, 13);
    Layer flattened = Stax.serial(Stax.conv(4, a(2, 2), null, "SAME", 1.0, 0.1), Stax.relu(), Stax.flatten(),
        Stax.dense(1));
    ModelException e = assertThrows(ModelException.class,
        () -> flattened.kernelFn().keepSpatial(Spatial.FULL).apply(x));
    assertEquals("serial[2].Flatten", e.path(), e.getMessage());
    assertTrue(e.getMessage().contains("diagonal_spatial=false") && e.getMessage().contains("readout"),
        e.getMessage());
    Layer pooled = Stax.serial(Stax.conv(4, a(2, 2), null, "SAME", 1.0, 0.1), Stax.globalAvgPool());
    e = assertThrows(ModelException.class, () -> pooled.kernelFn().keepSpatial(Spatial.DIAGONAL).apply(x));
    assertEquals("serial[1].GlobalAvgPool", e.path(), e.getMessage());
    NDArray vectors = KernelTesting.randomInputs(manager, 2, 5, 14);
    e = assertThrows(ModelException.class,
        () -> Stax.dense(3).kernelFn().keepSpatial(Spatial.DIAGONAL).apply(vectors));
    assertTrue(e.getMessage().contains("no spatial axes"), e.getMessage());
  }

  private static void assertClose(double[] actual, double[] expected, double tolerance, String what) {
    assertEquals(expected.length, actual.length, what + ": sizes");
    double err = KernelTesting.relativeError(actual, expected);
    assertTrue(err < tolerance, what + ": off by " + err);
  }

  /** The mean of {@code k} over every axis after its {@code batch} leading ones. */
  private static double[] meanOverPixels(NDArray k, int batch) {
    double[] v = k.toDoubleArray();
    long items = 1;
    for (int d = 0; d < batch; d++) {
      items *= k.getShape().get(d);
    }
    int per = Math.toIntExact(v.length / items);
    double[] out = new double[Math.toIntExact(items)];
    for (int i = 0; i < out.length; i++) {
      double s = 0;
      for (int p = 0; p < per; p++) {
        s += v[i * per + p];
      }
      out[i] = s / per;
    }
    return out;
  }

  /** The entries {@code [..., h, h, w, w]} of a kernel {@code (batch..., H, H', W, W')}. */
  private static double[] pixelDiagonal(NDArray k, int batch) {
    Shape s = k.getShape();
    int axes = (s.dimension() - batch) / 2;
    long items = 1;
    for (int d = 0; d < batch; d++) {
      items *= s.get(d);
    }
    int pixels = 1;
    for (int d = 0; d < axes; d++) {
      pixels *= Math.toIntExact(s.get(batch + 2 * d));
    }
    double[] v = k.toDoubleArray();
    double[] out = new double[Math.toIntExact(items) * pixels];
    for (int i = 0; i < items; i++) {
      for (int p = 0; p < pixels; p++) {
        // pixel p's index on each axis, then its place on the paired axes
        int rest = p;
        long offset = 0;
        long stride = 1;
        for (int d = axes - 1; d >= 0; d--) {
          int g = Math.toIntExact(s.get(batch + 2 * d));
          int idx = rest % g;
          rest /= g;
          offset += idx * stride + (long) idx * g * stride;
          stride *= (long) g * g;
        }
        out[i * pixels + p] = v[Math.toIntExact(i * stride + offset)];
      }
    }
    return out;
  }

  /** The blocks {@code k[i, i]} of a kernel of x1 with itself {@code (N, N, ...)}. */
  private static double[] batchDiagonal(NDArray k) {
    int n = Math.toIntExact(k.getShape().get(0));
    double[] v = k.toDoubleArray();
    int block = v.length / (n * n);
    double[] out = new double[n * block];
    for (int i = 0; i < n; i++) {
      System.arraycopy(v, (i * n + i) * block, out, i * block, block);
    }
    return out;
  }
}
