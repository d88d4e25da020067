package dev.ntk.pipelines;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.kernels.Diagnostics;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Kernel;
import dev.ntk.kernels.KernelFn;
import dev.ntk.kernels.ModelSpec;
import dev.ntk.kernels.Tensors;
import dev.ntk.kernels.predict.Loss;
import dev.ntk.kernels.predict.Predict;
import dev.ntk.kernels.predict.Prediction;
import dev.ntk.kernels.predict.TrainedOutputs;
import dev.ntk.transforms.NonFiniteKernelException;
import dev.ntk.transforms.PredictSettings;
import dev.ntk.transforms.PredictionFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * {@code ntk predict} for a job so small that every kernel is one tile: the same predictions as
 * {@link PredictJob} from the in-process functions of {@link Predict}, without building and
 * running a Beam pipeline (which costs a small job several seconds of start-up: pipeline options,
 * the DirectRunner's stages, side inputs). Writes the same files; no tiles.
 */
record InProcessPredict(Path model, Path xTrain, Path yTrain, Path xTest, PredictSettings settings,
    boolean computeCov, NpyDType dtype, Path out) {

  /**
   * Stops, as the tile path does, if the kernel between {@code a} and {@code b} is not finite,
   * naming the layer where it first stops being finite (the job is one tile: this costs little).
   */
  private void checkFinite(KernelFn kf, NDArray a, NDArray b, String which) {
    Diagnostics.firstNonFiniteLayer(kf.layer(), a, b).ifPresent(layer -> {
      throw new NonFiniteKernelException("the " + which + " kernel first stops being finite at layer "
          + layer + "; the weights or the inputs are likely too large for " + dtype.typeName()
          + " (check W_std and b_std in the model and the scale of the inputs)");
    });
  }

  /** Whether a job of these sizes is one tile per kernel, so that a pipeline buys nothing. */
  static boolean small(long nTrain, long nTest, int tile) {
    return nTrain <= tile && nTest <= tile;
  }

  /** Predicts and writes the outputs; returns the seconds it took. */
  double run() throws IOException {
    long start = System.nanoTime();
    KernelFn kf = ModelSpec.read(model).kernelFn();
    DataType type = dtype == NpyDType.FLOAT32 ? DataType.FLOAT32 : DataType.FLOAT64;
    Files.createDirectories(out);
    try (NDManager m = Tensors.newManager()) {
      NDArray x = load(m, xTrain, type);
      NDArray xt = load(m, xTest, type);
      NDArray y = load(m, yTrain, DataType.FLOAT64);
      checkFinite(kf, x, null, "train-train");
      checkFinite(kf, xt, x, "test-train");
      Get get = settings.get();
      double[] times = settings.times();
      double[][] means = new double[times.length][];
      double[][] covs = computeCov ? new double[times.length][] : null;
      Kernel dd = null;
      switch (settings.mode()) {
        case CHOLESKY -> {
          Prediction p = Predict.gpInference(kf, x, y, xt, get, settings.diagReg(), computeCov);
          java.util.Arrays.fill(means, Tensors.toDoubles(p.mean()));
          if (computeCov) {
            java.util.Arrays.fill(covs, Tensors.toDoubles(p.cov()));
          }
        }
        case EIGEN -> {
          if (settings.singleNetwork()) {
            dd = kf.apply(x);
            Kernel td = kf.apply(xt, x);
            fill(means, Predict.gradientDescentMse(dd.get(get), y, td.get(get), initial(m, settings.fxTrain0()),
                initial(m, settings.fxTest0()), times, settings.learningRate(), settings.diagReg()));
          } else {
            List<Prediction> ps = Predict.gradientDescentMseEnsemble(kf, x, y, xt, get, times,
                settings.learningRate(), settings.diagReg(), computeCov);
            for (int i = 0; i < times.length; i++) {
              means[i] = Tensors.toDoubles(ps.get(i).mean());
              if (computeCov) {
                covs[i] = Tensors.toDoubles(ps.get(i).cov());
              }
            }
          }
        }
        case ODE -> {
          dd = kf.apply(x);
          Kernel td = kf.apply(xt, x);
          fill(means, Predict.gradientDescent(Loss.of(settings.loss()), dd.ntk(), y, td.ntk(),
              initial(m, settings.fxTrain0()), initial(m, settings.fxTest0()), times,
              settings.learningRate(), settings.mass(), settings.maxSteps()));
        }
        default -> throw new IllegalStateException(settings.mode().toString());
      }
      long[] meanShape = y.getShape().getShape().clone();
      meanShape[0] = xt.getShape().get(0);
      PredictionFiles.write(out, "mean.npy", meanShape, means, dtype);
      if (computeCov) {
        PredictionFiles.write(out, "cov.npy", new long[] {meanShape[0], meanShape[0]}, covs, dtype);
      }
      if (settings.nll()) {
        Kernel k = dd == null ? kf.apply(x) : dd;
        double nll = Predict.nll(k.get(get), y, settings.diagReg(), get.key());
        PredictionFiles.write(out, "nll.npy", new long[0], new double[][] {{nll}}, dtype);
      }
    }
    return (System.nanoTime() - start) / 1e9;
  }

  private static void fill(double[][] means, List<TrainedOutputs> outputs) {
    for (int i = 0; i < means.length; i++) {
      means[i] = Tensors.toDoubles(outputs.get(i).test());
    }
  }

  private static NDArray initial(NDManager m, String file) throws IOException {
    return file == null ? null : load(m, Path.of(file), DataType.FLOAT64);
  }

  private static NDArray load(NDManager m, Path file, DataType type) throws IOException {
    NpyArray a = Npy.read(file);
    return Tensors.create(m, a.data(), new Shape(a.shape()), type);
  }
}
