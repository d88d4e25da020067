package dev.ntk.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.kernels.Layer;
import dev.ntk.kernels.ModelSpec;
import dev.ntk.kernels.Params;
import dev.ntk.kernels.Tensors;
import dev.ntk.kernels.predict.Loss;
import dev.ntk.kernels.train.Ensemble;
import dev.ntk.kernels.train.Network;
import dev.ntk.kernels.train.Optimizer;
import dev.ntk.kernels.train.Trainer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A benchmark aid, not part of the library's API: training steps per second of a finite network
 * ({@code bench/train.sh}), full-batch gradient descent on MSE in float64 as {@code ntk train}
 * runs it ({@link Trainer}).
 *
 * <pre>
 * TrainBench --model M.json --x-train X.npy --y-train Y.npy --x-test XT.npy [--steps 50] [--repeats 3]
 *            [--lr 0.1] [--ensemble K --at-once P] [--save DIR]
 * </pre>
 *
 * <p>Without {@code --ensemble}: one network (seed 0), one warm-up run of 5 steps, then {@code
 * repeats} runs of {@code steps} steps from the same initial parameters; prints {@code RESULT
 * train steps_per_s=...} for the best. With {@code --save DIR} it writes the initial parameters
 * ({@code DIR/p0_<i>.npy}, in {@link Params#leaves} order) and the test outputs after the steps
 * ({@code DIR/test_after.npy}) so that {@code bench/train_numpy.py} can check its own steps
 * against them. With {@code --ensemble K --at-once P}: {@code K} networks, {@code P} at a time
 * ({@link Ensemble}); prints the steps of all members per second.
 */
public final class TrainBench {
  private TrainBench() {}

  public static void main(String[] args) throws IOException {
    Map<String, String> o = new HashMap<>();
    for (int i = 0; i + 1 < args.length; i += 2) {
      o.put(args[i].replaceFirst("^--", ""), args[i + 1]);
    }
    Layer model = ModelSpec.parse(Files.readString(Path.of(o.get("model"))));
    NpyArray x = Npy.read(Path.of(o.get("x-train")));
    NpyArray y = Npy.read(Path.of(o.get("y-train")));
    NpyArray xt = Npy.read(Path.of(o.get("x-test")));
    int steps = Integer.parseInt(o.getOrDefault("steps", "50"));
    int repeats = Integer.parseInt(o.getOrDefault("repeats", "3"));
    double lr = Double.parseDouble(o.getOrDefault("lr", "0.1"));
    int n = (int) x.shape()[0];
    Trainer.Data data = new Trainer.Data(x.data(), new Shape(x.shape()), y.data(), y.data().length / n, xt.data(),
        new Shape(xt.shape()));
    Trainer.Settings settings = new Trainer.Settings(Loss.MSE, new Optimizer.Sgd(), lr, 0, new double[] {steps});
    if (o.containsKey("ensemble")) {
      int k = Integer.parseInt(o.get("ensemble"));
      int atOnce = Integer.parseInt(o.getOrDefault("at-once", "1"));
      Ensemble.train(model, false, 100, Math.min(k, atOnce), data,
          new Trainer.Settings(Loss.MSE, new Optimizer.Sgd(), lr, 0, new double[] {5}), DataType.FLOAT64, atOnce,
          s -> {});
      long start = System.nanoTime();
      Ensemble.train(model, false, 0, k, data, settings, DataType.FLOAT64, atOnce, s -> {});
      double seconds = (System.nanoTime() - start) / 1e9;
      System.out.printf(Locale.ROOT, "RESULT train-ensemble members=%d at_once=%d steps=%d seconds=%.3f "
          + "steps_per_s=%.1f%n", k, atOnce, steps, seconds, k * steps / seconds);
      return;
    }
    try (NDManager m = Tensors.newManager()) {
      Params p0 = model.init(0, data.perExample(), m, DataType.FLOAT64);
      Network f = Network.of(model);
      Trainer.train(f, p0, data, new Trainer.Settings(Loss.MSE, new Optimizer.Sgd(), lr, 0, new double[] {5}), 0,
          m, DataType.FLOAT64, s -> {});
      double best = Double.POSITIVE_INFINITY;
      Trainer.Outputs out = null;
      for (int r = 0; r < repeats; r++) {
        long start = System.nanoTime();
        out = Trainer.train(f, p0, data, settings, 0, m, DataType.FLOAT64, s -> {});
        best = Math.min(best, (System.nanoTime() - start) / 1e9);
      }
      System.out.printf(Locale.ROOT, "RESULT train steps=%d best_seconds=%.3f steps_per_s=%.1f%n", steps, best,
          steps / best);
      if (o.containsKey("save")) {
        Path dir = Path.of(o.get("save"));
        Files.createDirectories(dir);
        List<NDArray> leaves = p0.leaves();
        for (int i = 0; i < leaves.size(); i++) {
          long[] shape = leaves.get(i).getShape().getShape();
          Npy.write(dir.resolve("p0_" + i + ".npy"), new NpyArray(shape, NpyDType.FLOAT64,
              Tensors.toDoubles(leaves.get(i))));
        }
        Npy.write(dir.resolve("test_after.npy"), new NpyArray(xt.shape().length == 2
            ? new long[] {xt.shape()[0], data.outputs()} : new long[] {out.test()[0].length}, NpyDType.FLOAT64,
            out.test()[0]));
      }
    }
  }
}
