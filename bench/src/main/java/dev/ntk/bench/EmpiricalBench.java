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
 * <p>{@code EmpiricalBench [DTYPE float32|float64] [REPEATS] [IMPLEMENTATIONS jacobian,ntk-vp,structured]}:
 * draws the parameters and inputs (not timed), runs the structured implementation once to warm
 * up, then times each implementation {@code REPEATS} times (default 2) and prints, for each, a
 * {@code RESULT} line with the best time and the largest difference from the structured kernel
 * relative to its largest entry.
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
    int width = 2048;
    int n = 16;
    int d = 3072;
    Layer model = Stax.serial(Stax.dense(width, 1.4, 0.1), Stax.relu(), Stax.dense(width, 1.4, 0.1), Stax.relu(),
        Stax.dense(width, 1.4, 0.1), Stax.relu(), Stax.dense(8, 1.0, 0.1));
    try (NDManager manager = Tensors.newManager()) {
      Params params = model.init(0, new Shape(d), manager, dtype);
      NDArray x = Tensors.standardNormal(new SplittableRandom(1), manager, new Shape(n, d), dtype);
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
            "RESULT implementation=%s dtype=%s n=%d d=%d width=%d outputs=8 best_ms=%.1f repeats=%d "
                + "max_relative_difference=%.2e", impl.key(), dtype == DataType.FLOAT32 ? "float32" : "float64",
            n, d, width, best, repeats, difference));
      }
    }
  }
}
