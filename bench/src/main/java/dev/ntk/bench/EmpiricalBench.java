package dev.ntk.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.EmpiricalKernels;
import dev.ntk.kernels.EmpiricalKernels.Implementation;
import dev.ntk.kernels.Layer;
import dev.ntk.kernels.Params;
import dev.ntk.kernels.Stax;
import dev.ntk.kernels.Tensors;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * A benchmark aid, not part of the library's API: the empirical NTK of neural-tangents' "Fast
 * Finite Width NTK" benchmark network, 3 x Dense(2048) with ReLU and a Dense(8) readout, on N = 16
 * inputs of 3,072 dimensions (CIFAR-10's), traced over the 8 outputs, by each of {@link
 * EmpiricalKernels}' implementations (neural-tangents on a T4 GPU: Jacobian contraction 243 ms,
 * NTK-vector products 81 ms, structured derivatives 3.5 ms).
 *
 * <p>{@code EmpiricalBench [DTYPE float32|float64] [REPEATS] [IMPLEMENTATIONS jacobian,ntk-vp,structured]
 * [NETWORK dense|resnet] [N]}: draws the parameters and inputs (not timed), runs the structured
 * implementation once to warm up, then times each implementation {@code REPEATS} times (default 2)
 * and prints, for each, a {@code RESULT} line with the best time and the largest difference from
 * the structured kernel relative to its largest entry. {@code resnet} is a small residual
 * convolutional network instead ({@link #resnet}): N = 8 images of 16 x 16 x 3. {@code N} sets the
 * number of inputs; each line gives the bytes the Jacobian contraction's whole Jacobian {@code (N,
 * outputs, parameters)} would take, which structured derivatives never form.
 */
public final class EmpiricalBench {
  private EmpiricalBench() {}

  public static void main(String[] args) {
    DataType dtype = args.length > 0 && args[0].equals("float64") ? DataType.FLOAT64 : DataType.FLOAT32;
    int repeats = args.length > 1 ? Integer.parseInt(args[1]) : 2;
    List<Implementation> implementations = new ArrayList<>();
    for (String name : (args.length > 2 ? args[2] : "structured,ntk-vp,jacobian").split(",")) {
      implementations.add(Implementation.of(name));
    }
    boolean resnet = args.length > 3 && args[3].equals("resnet");
    int width = resnet ? 32 : 2048;
    int n = args.length > 4 ? Integer.parseInt(args[4]) : resnet ? 8 : 16;
    Shape example = resnet ? new Shape(16, 16, 3) : new Shape(3072);
    Layer model = resnet ? resnet(width) : Stax.serial(Stax.dense(width, 1.4, 0.1), Stax.relu(),
        Stax.dense(width, 1.4, 0.1), Stax.relu(), Stax.dense(width, 1.4, 0.1), Stax.relu(), Stax.dense(8, 1.0, 0.1));
    try (NDManager manager = Tensors.newManager()) {
      Params params = model.init(0, example, manager, dtype);
      NDArray x = Tensors.standardNormal(new SplittableRandom(1), manager, new Shape(n).addAll(example), dtype);
      double[] reference = EmpiricalKernels.ntk(model, params, x, null, Implementation.STRUCTURED, true)
          .toDoubleArray();
      double scale = 0;
      for (double v : reference) {
        scale = Math.max(scale, Math.abs(v));
      }
      for (Implementation impl : implementations) {
        double best = Double.POSITIVE_INFINITY;
        double difference = 0;
        for (int r = 0; r < repeats; r++) {
          long start = System.nanoTime();
          NDArray k = EmpiricalKernels.ntk(model, params, x, null, impl, true);
          double[] values = k.toDoubleArray();
          best = Math.min(best, (System.nanoTime() - start) / 1e6);
          k.close();
          for (int i = 0; i < values.length; i++) {
            difference = Math.max(difference, Math.abs(values[i] - reference[i]) / scale);
          }
        }
        System.out.println(String.format(Locale.ROOT,
            "RESULT network=%s implementation=%s dtype=%s n=%d example=%s width=%d outputs=8 parameters=%d "
                + "jacobian_gb=%.1f best_ms=%.1f repeats=%d max_relative_difference=%.2e", resnet ? "resnet" : "dense",
            impl.key(), dtype == DataType.FLOAT32 ? "float32" : "float64", n, example, width, parameters(params),
            (double) n * 8 * parameters(params) * (dtype == DataType.FLOAT32 ? 4 : 8) / 1e9, best, repeats,
            difference));
      }
    }
  }

  /**
   * A small ResNet: a 3 x 3 convolution of {@code width} channels, two residual blocks (two 3 x 3
   * convolutions with a ReLU before each, added to the block's input), a ReLU, global average
   * pooling and a Dense(8) readout.
   */
  static Layer resnet(int width) {
    int[] f = {3, 3};
    int[] s = {1, 1};
    Layer[] layers = new Layer[6];
    layers[0] = Stax.conv(width, f, s, "SAME", 1.4, 0.1);
    for (int b = 1; b <= 2; b++) {
      layers[b] = Stax.serial(Stax.fanOut(2), Stax.parallel(
          Stax.serial(Stax.relu(), Stax.conv(width, f, s, "SAME", 1.4, 0.1), Stax.relu(),
              Stax.conv(width, f, s, "SAME", 1.4, 0.1)), Stax.identity()), Stax.fanInSum());
    }
    layers[3] = Stax.relu();
    layers[4] = Stax.globalAvgPool();
    layers[5] = Stax.dense(8, 1.0, 0.1);
    return Stax.serial(layers);
  }

  /** How many numbers the network's parameters hold. */
  private static long parameters(Params params) {
    long total = 0;
    for (NDArray a : params.leaves()) {
      total += a.size();
    }
    return total;
  }
}
