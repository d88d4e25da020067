package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.cuda.CudaEngine;
import dev.ntk.kernels.cuda.HostDevice;
import dev.ntk.kernels.engine.Backend;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Masking (neural-tangents' {@code mask_constant}, {@link Masks}): a sequence padded with the
 * constant has the kernel of the unpadded sequence under {@code GlobalAvgPool} and under attention
 * then pooling; {@code Flatten} averages over all positions, masked ones adding zero; Monte Carlo
 * of the finite network with masked positions zeroed after each layer and the average over kept
 * positions; {@code cpu} against {@code tensorflow} and {@code cuda}; bad constants, fully masked examples and
 * layers without a mask rule are errors.
 */
class MasksTest {
  static final double PAD = -7.5;
  private static NDManager manager;
  /** The {@code cuda} engine's kernels compiled as C on the host: one compiler's files for the class. */
  private static HostDevice host;

  @BeforeAll
  static void setUp() {
    manager = Tensors.newManager();
    host = new HostDevice();
  }

  @AfterAll
  static void tearDown() {
    manager.close();
    host.close();
  }

  private static int[] a(int... v) {
    return v;
  }

  /**
   * Sequences of {@code lengths[i]} random positions of {@code channels} channels, each padded
   * with {@link #PAD} to {@code length} (trailing), as one array {@code (n, length, channels)}.
   */
  private static double[] sequences(int[] lengths, int length, int channels, long seed) {
    Random r = new Random(seed);
    double[] v = new double[lengths.length * length * channels];
    java.util.Arrays.fill(v, PAD);
    for (int i = 0; i < lengths.length; i++) {
      for (int p = 0; p < lengths[i]; p++) {
        for (int c = 0; c < channels; c++) {
          v[(i * length + p) * channels + c] = r.nextGaussian();
        }
      }
    }
    return v;
  }

  /** Example {@code i} of {@code v} cut to its first {@code length} positions. */
  private static NDArray cut(double[] v, int i, int padded, int length, int channels) {
    double[] out = java.util.Arrays.copyOfRange(v, i * padded * channels, (i * padded + length) * channels);
    return Tensors.create(manager, out, new Shape(1, length, channels), DataType.FLOAT64);
  }

  private static NDArray array(double[] v, int n, int length, int channels) {
    return Tensors.create(manager, v, new Shape(n, length, channels), DataType.FLOAT64);
  }

  /**
   * The defining property: padding does not change a pooled kernel. Each pair of sequences padded
   * at the end to 6 positions has the kernel of the same pair padded at both ends to 9, and where
   * the two lengths are equal, the unmasked kernel of the unpadded pair; for GlobalAvgPool on the
   * raw inputs (neural-tangents issue #159) and after convolutions, and attention (with and without
   * positional embeddings), x2 given and x1 with itself, on both backends.
   */
  @Test
  void paddingLeavesPooledKernelsUnchanged() {
    int w = 8;
    List<Layer> attention = attentionSequenceModels(w);
    Layer positional = attention.get(1);
    List<Layer> models = new ArrayList<>(pooledSequenceModels(w));
    models.addAll(attention);
    int[] lengths1 = PADDED_LENGTHS1;
    int[] lengths2 = PADDED_LENGTHS2;
    int channels = 2;
    double[] v1 = sequences(lengths1, 6, channels, 1);
    double[] v2 = sequences(lengths2, 6, channels, 2);
    NDArray x1 = array(v1, 3, 6, channels);
    NDArray x2 = array(v2, 2, 6, channels);
    NDArray y1 = array(shifted(v1, 3, 6, 9, channels, 2), 3, 9, channels);
    // Positional embeddings tie position p of x1 to position p of x2: their pair moves both inputs alike.
    NDArray y2 = array(shifted(v2, 2, 6, 9, channels, 1), 2, 9, channels);
    NDArray y2Aligned = array(shifted(v2, 2, 6, 9, channels, 2), 2, 9, channels);
    for (Layer model : models) {
      for (Backend backend : new Backend[] {Backend.CPU, Backend.TENSORFLOW}) {
        KernelFn fn = model.kernelFn().withBackend(backend).withMaskConstant(PAD);
        String what = model.name() + " " + backend.key();
        Kernel k12 = fn.apply(x1, x2);
        Kernel k11 = fn.apply(x1);
        Kernel longer12 = fn.apply(y1, model == positional ? y2Aligned : y2);
        Kernel longer11 = fn.apply(y1);
        for (Get g : Get.values()) {
          double e12 = difference(longer12.get(g).toDoubleArray(), k12.get(g).toDoubleArray());
          double e11 = difference(longer11.get(g).toDoubleArray(), k11.get(g).toDoubleArray());
          assertTrue(e12 < 1e-12 && e11 < 1e-12, what + " " + g + ": padded to 6 and 9 differ by " + e12 + ", " + e11);
        }
        for (int[] ij : new int[][] {{0, 0}, {2, 1}}) {
          int i = ij[0];
          int j = ij[1];
          Kernel plain = model.kernelFn().withBackend(backend).apply(cut(v1, i, 6, lengths1[i], channels),
              cut(v2, j, 6, lengths2[j], channels));
          assertEquals(plain.nngp().toDoubleArray()[0], k12.nngp().toDoubleArray()[i * 2 + j], 1e-12, what);
          assertEquals(plain.ntk().toDoubleArray()[0], k12.ntk().toDoubleArray()[i * 2 + j], 1e-12, what);
        }
        for (int i = 0; i < 3; i++) {
          NDArray xi = cut(v1, i, 6, lengths1[i], channels);
          Kernel plain = model.kernelFn().withBackend(backend).apply(xi, xi);
          assertEquals(plain.nngp().toDoubleArray()[0], k11.nngp().toDoubleArray()[i * 3 + i], 1e-12, what);
          assertEquals(plain.ntk().toDoubleArray()[0], k11.ntk().toDoubleArray()[i * 3 + i], 1e-12, what);
        }
      }
    }
  }

  /**
   * The attention models of {@link #paddingLeavesPooledKernelsUnchanged}, of width {@code w}: softmax
   * after a convolution, and relu attention with positional embeddings (masked positions have none).
   */
  private static List<Layer> attentionSequenceModels(int w) {
    return List.of(
        Stax.serial(Stax.conv(w, a(1), null, "SAME", 1.3, 0.1), Stax.relu(),
            Stax.globalSelfAttention(w, w, w, 2, true, 1.3, 1.1, 0.9, 1.2, 0.1, "SOFTMAX"), Stax.relu(),
            Stax.globalAvgPool(), Stax.dense(1)),
        Stax.serial(Stax.dense(w, 1.2, 0.1), Attention.globalSelfAttention(w, w, w, 2, true, 1.3, 1.1, 0.9, 1.2, 0.1,
            "RELU", "SUM", 0.8, true), Stax.erf(), Stax.globalAvgPool(), Stax.dense(1)));
  }

  /** The lengths of the sequences of x1 and x2 of {@link #paddingLeavesPooledKernelsUnchanged}, padded to 6. */
  private static final int[] PADDED_LENGTHS1 = {3, 5, 2};
  private static final int[] PADDED_LENGTHS2 = {3, 2};

  /**
   * The pooled models of {@link #paddingLeavesPooledKernelsUnchanged} without attention, of width
   * {@code w}: convolutions, GlobalAvgPool on the raw inputs, an index that reverses the mask, and
   * Dropout's kernel of an example with itself.
   */
  private static List<Layer> pooledSequenceModels(int w) {
    return List.of(
        Stax.serial(Stax.conv(w, a(3), null, "SAME", 1.4, 0.2), Stax.relu(), Stax.conv(w, a(2), null, "SAME", 1.2,
            0.1), Stax.erf(), Stax.globalAvgPool(), Stax.dense(1, 1.1, 0.3)),
        Stax.globalAvgPool(),
        // the mask follows an index that reverses the sequence (neural-tangents' mask[idx])
        Stax.serial(Stax.conv(w, a(2), null, "SAME", 1.3, 0.1), Stax.index("...", "::-1", ":"), Stax.relu(),
            Stax.conv(w, a(2), null, "SAME", 1.2, 0.1), Stax.relu(), Stax.globalAvgPool()),
        // the kernel of an example with itself apart (Plan.SAME), masked with that example's mask
        Stax.serial(Stax.conv(w, a(2), null, "SAME", 1.3, 0.1), Stax.relu(), Stax.dropout(0.4, "train"),
            Stax.globalAvgPool(), Stax.dense(1, 1.1, 0.1)));
  }

  /** {@code ||a - b||_F / max(||b||_F, 1)}: relative, and absolute for a zero kernel (the NTK of pooling alone). */
  private static double difference(double[] a, double[] b) {
    double[] d = new double[a.length];
    for (int i = 0; i < d.length; i++) {
      d[i] = a[i] - b[i];
    }
    return KernelTesting.norm(d) / Math.max(KernelTesting.norm(b), 1);
  }

  /** Sequences {@code (n, from, c)} moved {@code by} positions later in sequences of {@code to}, padded with PAD. */
  private static double[] shifted(double[] v, int n, int from, int to, int c, int by) {
    double[] out = new double[n * to * c];
    java.util.Arrays.fill(out, PAD);
    for (int i = 0; i < n; i++) {
      System.arraycopy(v, i * from * c, out, (i * to + by) * c, from * c);
    }
    return out;
  }

  /** float32 inputs are compared with the constant in float32, and give the float64 kernel to rounding. */
  @Test
  void float32InputsAreMaskedAsFloat64Ones() {
    Layer model = Stax.serial(Stax.conv(4, a(2), null, "SAME", 1.3, 0.2), Stax.relu(), Stax.globalAvgPool());
    double pad = 0.1;
    double[] v = sequences(new int[] {2, 4, 3}, 5, 2, 12);
    float[] f = new float[v.length];
    for (int i = 0; i < v.length; i++) {
      v[i] = v[i] == PAD ? pad : v[i];
      f[i] = (float) v[i];
    }
    for (Backend backend : new Backend[] {Backend.CPU, Backend.TENSORFLOW}) {
      KernelFn fn = model.kernelFn().withBackend(backend).withMaskConstant(pad);
      double[] k64 = fn.apply(array(v, 3, 5, 2)).ntk().toDoubleArray();
      double[] k32 = Tensors.toDoubles(fn.apply(manager.create(f, new Shape(3, 5, 2))).ntk());
      double[] plain = model.kernelFn().apply(array(v, 3, 5, 2)).ntk().toDoubleArray();
      double err = KernelTesting.relativeError(k32, k64);
      assertTrue(err < 1e-5, backend.key() + ": float32 and float64 differ by " + err);
      assertTrue(KernelTesting.relativeError(plain, k64) > 1e-2, "0.1 masks the float64 inputs");
    }
  }

  /**
   * {@code Flatten}, as neural-tangents' kernel: the mean over every position of the per-position
   * covariance, masked positions adding zero, so padding {@code L} positions to {@code P} scales
   * the kernel of a readout without bias by {@code L / P} (for two sequences of one length).
   */
  @Test
  void flattenAveragesOverEveryPosition() {
    Layer model = Stax.serial(Stax.conv(4, a(2), null, "SAME", 1.3, 0.2), Stax.relu(), Stax.flatten(),
        Stax.dense(1, 1.1, null));
    double[] v = sequences(new int[] {3, 3}, 5, 2, 3);
    Kernel masked = model.kernelFn().withMaskConstant(PAD).apply(array(v, 2, 5, 2));
    Kernel plain = model.kernelFn().apply(cut(v, 0, 5, 3, 2), cut(v, 1, 5, 3, 2));
    assertEquals(plain.nngp().toDoubleArray()[0] * 3 / 5, masked.nngp().toDoubleArray()[1], 1e-12);
    assertEquals(plain.ntk().toDoubleArray()[0] * 3 / 5, masked.ntk().toDoubleArray()[1], 1e-12);
  }

  /**
   * The finite network as neural-tangents' {@code apply_fn(..., mask_constant=PAD)} computes it:
   * the padded entries zeroed, every layer's output zeroed at masked positions (the mask under a
   * VALID convolution's centre), and {@code GlobalAvgPool} the sum over kept positions divided by
   * their number; its NNGP over many draws against the kernel, masks inside the sequences too.
   */
  @Test
  void kernelMatchesMaskedFiniteNetworks() {
    int width = 256;
    Layer conv1 = Stax.conv(width, a(3), null, "VALID", 1.4, 0.3);
    Layer conv2 = Stax.conv(width, a(2), null, "SAME", 1.2, 0.2);
    Layer relu = Stax.relu();
    Layer erf = Stax.erf();
    Layer model = Stax.serial(conv1, relu, conv2, erf, Stax.globalAvgPool());
    int length = 7;
    double[] v = sequences(new int[] {7, 5, 4}, length, 3, 4);
    // a masked position inside the first sequence, and a partly masked one (kept) in the second
    for (int c = 0; c < 3; c++) {
      v[(2) * 3 + c] = PAD;
    }
    v[(length + 1) * 3] = PAD;
    NDArray x = array(v, 3, length, 3);
    double[] analytic = model.kernelFn().withMaskConstant(PAD).apply(x).nngp().toDoubleArray();
    // the kept positions of the inputs, after the VALID convolution (centre p + 1) and after the SAME one
    boolean[][] kept = new boolean[3][length];
    for (int i = 0; i < 3; i++) {
      for (int p = 0; p < length; p++) {
        for (int c = 0; c < 3; c++) {
          kept[i][p] |= v[(i * length + p) * 3 + c] != PAD;
        }
      }
    }
    double[] zeroed = v.clone();
    for (int k = 0; k < zeroed.length; k++) {
      zeroed[k] = zeroed[k] == PAD ? 0 : zeroed[k];
    }
    int out = length - 2;
    boolean[][] keptOut = new boolean[3][out];
    for (int i = 0; i < 3; i++) {
      for (int o = 0; o < out; o++) {
        keptOut[i][o] = kept[i][o + 1];
      }
    }
    int samples = 64;
    double[] sum = new double[9];
    double[] sumSq = new double[9];
    SplittableRandom rng = new SplittableRandom(11);
    for (int s = 0; s < samples; s++) {
      try (NDManager scope = manager.newSubManager()) {
        Params p1 = conv1.init(rng.split(), java.util.List.of(Spec.input(new Shape(length, 3))), scope,
            DataType.FLOAT64);
        Params p2 = conv2.init(rng.split(), java.util.List.of(Spec.input(new Shape(out, width))), scope,
            DataType.FLOAT64);
        NDArray h = zeroAt(relu.apply(Params.EMPTY, zeroAt(conv1.apply(p1, array(zeroed, 3, length, 3)), keptOut)),
            keptOut);
        double[] f = zeroAt(erf.apply(Params.EMPTY, zeroAt(conv2.apply(p2, h), keptOut)), keptOut).toDoubleArray();
        double[][] pooled = new double[3][width];
        for (int i = 0; i < 3; i++) {
          int count = 0;
          for (int o = 0; o < out; o++) {
            count += keptOut[i][o] ? 1 : 0;
          }
          for (int o = 0; o < out; o++) {
            for (int c = 0; c < width; c++) {
              pooled[i][c] += f[(i * out + o) * width + c] / count;
            }
          }
        }
        for (int i = 0; i < 3; i++) {
          for (int j = 0; j < 3; j++) {
            double d = 0;
            for (int c = 0; c < width; c++) {
              d += pooled[i][c] * pooled[j][c];
            }
            d /= width;
            sum[i * 3 + j] += d;
            sumSq[i * 3 + j] += d * d;
          }
        }
      }
    }
    double[] mean = new double[9];
    double[] se = new double[9];
    for (int e = 0; e < 9; e++) {
      mean[e] = sum[e] / samples;
      se[e] = Math.sqrt(Math.max(sumSq[e] / samples - mean[e] * mean[e], 0) / (samples - 1));
    }
    KernelTesting.assertMatchesMonteCarlo("masked conv, relu, conv, erf, GlobalAvgPool", analytic,
        new MonteCarlo.Estimate(mean, se, 3, 3, samples), 3.0 / width, 0.15);
  }

  /** {@code x} {@code (n, P, C)} with the positions {@code kept[i][p] == false} zeroed. */
  private static NDArray zeroAt(NDArray x, boolean[][] kept) {
    Shape s = x.getShape();
    double[] v = x.toDoubleArray();
    int p = Math.toIntExact(s.get(1));
    int c = Math.toIntExact(s.get(2));
    for (int i = 0; i < kept.length; i++) {
      for (int q = 0; q < p; q++) {
        if (!kept[i][q]) {
          java.util.Arrays.fill(v, (i * p + q) * c, (i * p + q + 1) * c, 0);
        }
      }
    }
    return Tensors.create(x.getManager(), v, s, DataType.FLOAT64);
  }

  /** Models with masks inside the images, strides, windows and branches: cpu and tensorflow to 1e-12. */
  @Test
  void cpuAndTensorFlowAgreeInFloat64() {
    Layer[] models = {
        IMAGE_MODEL,
        Stax.serial(Stax.fanOut(2), Stax.parallel(Stax.conv(3, a(3, 1), null, "SAME", 1.1, 0.1),
            Stax.serial(Stax.conv(3, a(1, 1), null, "SAME", 1.2, null), Stax.gelu())), Stax.fanInSum(),
            Stax.globalSelfAttention(4, 4, 2, 2, true, 1.3, 1.1, 0.9, 1.2, 0.1, "SOFTMAX"), Stax.sumPool(a(1, 2),
                null, "SAME"), Stax.relu(), Stax.flatten(), Stax.dense(1))};
    NDArray x1 = maskedImages(true);
    NDArray x2 = maskedImages(false);
    for (Layer model : models) {
      for (NDArray other : new NDArray[] {null, x2}) {
        Kernel cpu = model.kernelFn().withBackend(Backend.CPU).withMaskConstant(PAD).apply(x1, other);
        Kernel tf = model.kernelFn().withBackend(Backend.TENSORFLOW).withMaskConstant(PAD).apply(x1, other);
        Kernel unmasked = model.kernelFn().withBackend(Backend.CPU).apply(x1, other);
        for (Get g : Get.values()) {
          double err = KernelTesting.relativeError(cpu.get(g).toDoubleArray(), tf.get(g).toDoubleArray());
          assertTrue(err < 1e-12, model + " " + g + ": cpu and tensorflow differ by " + err);
          assertTrue(KernelTesting.relativeError(cpu.get(g).toDoubleArray(), unmasked.get(g).toDoubleArray()) > 1e-3,
              "the mask changes the kernel");
        }
      }
    }
  }

  /** A model on images with strides, windows and a pooled readout (no attention). */
  static final Layer IMAGE_MODEL = Stax.serial(Stax.conv(3, a(2, 2), a(2, 1), "SAME", 1.3, 0.2), Stax.relu(),
      Stax.avgPool(a(2, 2), null, "VALID"), Stax.conv(3, a(1, 2), null, "SAME", 1.1, 0.1), Stax.erf(),
      Stax.globalAvgPool(), Stax.dense(1));

  /**
   * Images {@code (3, 4, 3, 2)} ({@code first}) or {@code (2, 4, 3, 2)} with masked pixels inside
   * them and a pixel with one channel equal to the constant (zeroed, kept).
   */
  private static NDArray maskedImages(boolean first) {
    long[] shape = {4, 3, 2};
    int n = first ? 3 : 2;
    double[] v = KernelTesting.randomImages(manager, n, shape, first ? 5 : 6).toDoubleArray();
    if (first) {
      for (int p : new int[] {0, 5, 11}) {
        v[p * 2] = PAD;
        v[p * 2 + 1] = PAD;
      }
      v[(12 + 3) * 2] = PAD;
    } else {
      v[(12 + 7) * 2 + 1] = PAD;
      v[(12 + 7) * 2] = PAD;
    }
    return Tensors.create(manager, v, new Shape(n, 4, 3, 2), DataType.FLOAT64);
  }

  /**
   * The {@code cuda} engine (its kernels compiled as C on the host, {@link HostDevice}) takes masks
   * as the {@code cpu} engine does, float64 to 1e-12 ({@link #difference}), x2 given and x1 with
   * itself: the image model of {@link #cpuAndTensorFlowAgreeInFloat64}, the models of {@link
   * #paddingLeavesPooledKernelsUnchanged} (attention too) on its padded sequences, and a fully
   * connected network, whose inputs have no positions: its entries equal to the constant are zeroed,
   * which changes its kernel. The padded sequences in float32 too, to float32's rounding.
   */
  @Test
  void cudaAgreesWithCpuInFloat64() {
    CudaEngine cuda = new CudaEngine(host);
    Map<Layer, NDArray[]> cases = new LinkedHashMap<>();
    cases.put(IMAGE_MODEL, new NDArray[] {maskedImages(true), maskedImages(false)});
    NDArray[] sequences = {array(sequences(PADDED_LENGTHS1, 6, 2, 1), 3, 6, 2),
        array(sequences(PADDED_LENGTHS2, 6, 2, 2), 2, 6, 2)};
    pooledSequenceModels(4).forEach(m -> cases.put(m, sequences));
    attentionSequenceModels(4).forEach(m -> cases.put(m, sequences));
    Layer dense = Stax.serial(Stax.dense(6, 1.3, 0.2), Stax.relu(), Stax.dense(1, 1.1, 0.1));
    double[] v = new Random(9).doubles(5 * 4).toArray();
    v[3] = PAD;
    v[9] = PAD;
    v[10] = PAD;
    cases.put(dense, new NDArray[] {Tensors.create(manager, java.util.Arrays.copyOf(v, 12), new Shape(3, 4),
        DataType.FLOAT64), Tensors.create(manager, java.util.Arrays.copyOfRange(v, 12, 20), new Shape(2, 4),
        DataType.FLOAT64)});
    for (Map.Entry<Layer, NDArray[]> c : cases.entrySet()) {
      Layer model = c.getKey();
      NDArray x1 = c.getValue()[0];
      for (NDArray other : new NDArray[] {null, c.getValue()[1]}) {
        Kernel cpu = model.kernelFn().withBackend(Backend.CPU).withMaskConstant(PAD).apply(x1, other);
        Kernel onCuda = model.kernelFn().withCuda(cuda).withMaskConstant(PAD).apply(x1, other);
        String what = model + (other == null ? " (x1 with itself) " : " ");
        for (Get g : Get.values()) {
          double err = difference(onCuda.get(g).toDoubleArray(), cpu.get(g).toDoubleArray());
          assertTrue(err < 1e-12, what + g + ": cuda and cpu differ by " + err);
        }
        double err = difference(onCuda.cov1().toDoubleArray(), cpu.cov1().toDoubleArray());
        assertTrue(err < 1e-12, what + "cov1: cuda and cpu differ by " + err);
      }
    }
    Kernel plain = dense.kernelFn().withBackend(Backend.CPU).apply(cases.get(dense)[0]);
    Kernel masked = dense.kernelFn().withCuda(cuda).withMaskConstant(PAD).apply(cases.get(dense)[0]);
    assertTrue(KernelTesting.relativeError(masked.ntk().toDoubleArray(), plain.ntk().toDoubleArray()) > 1e-3,
        "the constant's entries are zeroed");
    Layer pooled = pooledSequenceModels(4).get(0);
    NDArray f1 = sequences[0].toType(DataType.FLOAT32, false);
    NDArray f2 = sequences[1].toType(DataType.FLOAT32, false);
    double[] cpu32 = Tensors.toDoubles(pooled.kernelFn().withBackend(Backend.CPU).withMaskConstant(PAD).apply(f1, f2)
        .ntk());
    Kernel cuda32 = pooled.kernelFn().withCuda(cuda).withMaskConstant(PAD).apply(f1, f2);
    assertEquals(DataType.FLOAT32, cuda32.ntk().getDataType());
    double err = KernelTesting.relativeError(Tensors.toDoubles(cuda32.ntk()), cpu32);
    assertTrue(err < 1e-5, "float32: cuda and cpu differ by " + err);
  }

  @Test
  void badMasksAreClearErrors() {
    Layer model = Stax.serial(Stax.conv(2, a(2), null, "SAME", 1.0, null), Stax.globalAvgPool());
    IllegalArgumentException nan = assertThrows(IllegalArgumentException.class,
        () -> model.kernelFn().withMaskConstant(Double.NaN));
    assertTrue(nan.getMessage().contains("mask constant must be a finite number"), nan.getMessage());
    double[] v = sequences(new int[] {2, 0}, 3, 2, 7);
    IllegalArgumentException empty = assertThrows(IllegalArgumentException.class,
        () -> model.kernelFn().withMaskConstant(PAD).apply(array(v, 2, 3, 2)));
    assertTrue(empty.getMessage().startsWith("x1, example 1: every entry equals the mask constant -7.5"),
        empty.getMessage());
    Layer transposed = Stax.serial(Stax.dense(2), Stax.convTranspose(2, a(2), a(2), "SAME", 1.0, null),
        Stax.globalAvgPool());
    ModelException e = assertThrows(ModelException.class,
        () -> transposed.kernelFn().withMaskConstant(PAD).apply(array(sequences(new int[] {2}, 3, 2, 8), 1, 3, 2)));
    assertTrue(e.getMessage().startsWith("serial[1].ConvTranspose: ConvTranspose does not take masked inputs"),
        e.getMessage());
    Layer norm = Stax.serial(Stax.dense(2), Stax.layerNorm(a(-1, -2), 1e-12), Stax.globalAvgPool());
    ModelException n = assertThrows(ModelException.class,
        () -> norm.kernelFn().withMaskConstant(PAD).apply(array(sequences(new int[] {2}, 3, 2, 8), 1, 3, 2)));
    assertTrue(n.getMessage().startsWith("serial[1].LayerNorm: LayerNorm does not take masked inputs"),
        n.getMessage());
    Layer resize = Stax.serial(Stax.dense(2), Stax.imageResize(a(-1, 5, -1), "linear", false), Stax.globalAvgPool());
    ModelException r = assertThrows(ModelException.class,
        () -> resize.kernelFn().withMaskConstant(PAD).apply(array(sequences(new int[] {2}, 3, 2, 8), 1, 3, 2)));
    assertTrue(r.getMessage().startsWith("serial[1].ImageResize: ImageResize does not take masked inputs "
        + "(mask_constant): it mixes positions"), r.getMessage());
    // over the channel axis alone it does: the padded sequence has the unpadded one's kernel
    Layer perPosition = Stax.serial(Stax.dense(2), Stax.layerNorm(a(-1), 1e-12), Stax.globalAvgPool());
    double[] v2 = sequences(new int[] {2}, 4, 2, 9);
    assertEquals(perPosition.kernelFn().apply(cut(v2, 0, 4, 2, 2)).nngp().toDoubleArray()[0],
        perPosition.kernelFn().withMaskConstant(PAD).apply(array(v2, 1, 4, 2)).nngp().toDoubleArray()[0], 1e-12);
  }

  /** Masks with kernels that keep spatial axes, or with graph patterns, are refused in one line (not supported). */
  @Test
  void masksWithSpatialOutputsOrPatternsAreRefused() {
    double[] v = sequences(new int[] {2}, 3, 2, 10);
    Layer conv = Stax.serial(Stax.conv(2, a(2), null, "SAME", 1.0, null));
    IllegalArgumentException spatial = assertThrows(IllegalArgumentException.class,
        () -> conv.kernelFn().keepSpatial(Spatial.DIAGONAL).withMaskConstant(PAD).apply(array(v, 1, 3, 2)));
    assertTrue(spatial.getMessage().contains("not supported with kernels that keep spatial axes"),
        spatial.getMessage());
    Layer graph = Stax.serial(Stax.dense(2), Stax.aggregate(), Stax.globalAvgPool());
    ModelException patterns = assertThrows(ModelException.class,
        () -> graph.kernelFn().withMaskConstant(PAD).apply(array(v, 1, 3, 2)));
    assertTrue(patterns.getMessage().startsWith("serial[1].Aggregate: masked inputs (mask constant -7.5) are not "
        + "supported with graph patterns"), patterns.getMessage());
  }
}
