package dev.ntk.pipelines.figures;

import ai.djl.ndarray.types.Shape;
import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Layer;
import dev.ntk.kernels.ModelSpec;
import dev.ntk.kernels.engine.Backend;
import dev.ntk.pipelines.InProcessPredict;
import dev.ntk.transforms.PredictSettings;
import java.awt.Color;
import java.io.IOException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Figure 1 of the Neural Tangents paper on its sine task ({@code examples/sine}): the posterior
 * means of the infinite networks with their two-sigma bands, the NNGP's (the Bayesian posterior)
 * and the NTK's (the infinite ensemble trained by gradient descent on MSE), computed in this JVM
 * by the code of {@code ntk predict --compute-cov} ({@link InProcessPredict}); beside them, when
 * given, the mean and two-sigma band of an ensemble of trained finite networks and of their
 * linearizations.
 *
 * <p>Writes into {@code --out}:
 *
 * <ul>
 *   <li>{@code figure1.png}: the left panel the two posteriors, the right panel (with {@code
 *       --ensemble} or {@code --linearized}) the NTK posterior against the finite networks; the
 *       training points and, if {@code y_test.npy} is there, the target on both.
 *   <li>{@code nngp_mean.npy}, {@code ntk_mean.npy} {@code (N_test, 1)} and {@code nngp_cov.npy},
 *       {@code ntk_cov.npy} {@code (N_test, N_test)}: what {@code ntk predict --get nngp|ntk
 *       --compute-cov} writes for the same {@code --t}, {@code --learning-rate} and {@code
 *       --diag-reg}. A band is {@code mean +- 2 sqrt(diag(cov))}.
 *   <li>with {@code --ensemble E.npy}: {@code ensemble_mean.npy} and {@code ensemble_std.npy}
 *       {@code (N_test, 1)}, the mean and standard deviation over the networks (numpy's {@code
 *       np.std}, divided by K); with {@code --linearized L.npy}, {@code linearized_mean.npy} and
 *       {@code linearized_std.npy} likewise.
 * </ul>
 *
 * <p>The ensembles are the test outputs of K networks, {@code (K, N_test, 1)}, or {@code
 * (len(t), K, N_test, 1)} as {@code ntk train} writes them (the last time is drawn). Each file is
 * written atomically. Run through {@code examples/sine/figure.sh OUT}.
 */
@Command(name = "figure1", mixinStandardHelpOptions = true,
    description = "The Neural Tangents paper's Figure 1 on the sine task: writes OUT/figure1.png and its data.")
public final class Figure1 implements Callable<Integer> {
  @Option(names = "--data", required = true, paramLabel = "DIR",
      description = "Directory with x_train.npy, y_train.npy, x_test.npy and optionally y_test.npy (scalar inputs).")
  Path data;

  @Option(names = "--model", paramLabel = "M.json", description = "The model file (default DIR/model.json).")
  Path model;

  @Option(names = "--ensemble", paramLabel = "E.npy",
      description = "Test outputs of trained finite networks, (K, N_test, 1) or (T, K, N_test, 1).")
  Path ensemble;

  @Option(names = "--linearized", paramLabel = "L.npy",
      description = "Test outputs of the trained linearized networks, shaped as --ensemble.")
  Path linearized;

  @Option(names = "--t", paramLabel = "T", defaultValue = "inf",
      description = "Training time in steps of --learning-rate (default inf: the posteriors).")
  String t;

  @Option(names = "--learning-rate", paramLabel = "LR", defaultValue = "1.0",
      description = "Learning rate of gradient descent, with a finite --t (default 1.0).")
  double learningRate;

  @Option(names = "--diag-reg", paramLabel = "R", defaultValue = "1e-4",
      description = "Diagonal regularizer, relative to the mean diagonal (default 1e-4, as ntk predict).")
  double diagReg;

  @Option(names = "--out", required = true, paramLabel = "OUT", description = "Output directory.")
  Path out;

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  public static void main(String[] args) {
    System.exit(run(args, System.out, System.err));
  }

  /**
   * Runs with {@code args}; returns 0, 2 for a problem with the inputs (one line on {@code err}),
   * or 1 for an internal failure.
   */
  public static int run(String[] args, PrintStream out, PrintStream err) {
    return Figures.run(new Figure1(), args, out, err);
  }

  /** The mean and standard deviation of each test point, {@code (N_test,)} each. */
  record Band(double[] mean, double[] sigma) {}

  @Override
  public Integer call() throws IOException {
    double time = t.trim().equalsIgnoreCase("inf") ? Double.POSITIVE_INFINITY : Double.parseDouble(t.trim());
    Layer layer = ModelSpec.read(model != null ? model : data.resolve("model.json"));
    NpyArray xTrain = scalarInputs(data.resolve("x_train.npy"));
    NpyArray yTrain = Npy.read(data.resolve("y_train.npy"));
    NpyArray xTest = scalarInputs(data.resolve("x_test.npy"));
    Path yTestFile = data.resolve("y_test.npy");
    NpyArray yTest = Files.exists(yTestFile) ? Npy.read(yTestFile) : null;
    int m = xTest.rows();
    if (yTrain.size() != xTrain.rows() || (yTest != null && yTest.size() != m)) {
      throw new IllegalArgumentException(data + ": y_train.npy and y_test.npy need one target per input, got "
          + yTrain.shapeString() + (yTest == null ? "" : " and " + yTest.shapeString()));
    }
    yTrain = new NpyArray(new long[] {xTrain.rows(), 1}, NpyDType.FLOAT64, yTrain.data());
    layer.check(new Shape(1));
    Band ens = ensemble == null ? null : ensembleBand("--ensemble", ensemble, m);
    Band lin = linearized == null ? null : ensembleBand("--linearized", linearized, m);
    PredictSettings nngpSettings = settings(Get.NNGP, time);
    PredictSettings ntkSettings = settings(Get.NTK, time);

    PrintWriter w = spec.commandLine().getOut();
    Files.createDirectories(out);
    List<Path> written = new ArrayList<>();
    Band nngp = posterior(layer, xTrain, yTrain, xTest, nngpSettings, "nngp", written);
    Band ntk = posterior(layer, xTrain, yTrain, xTest, ntkSettings, "ntk", written);
    if (ens != null) {
      written.addAll(writeBand("ensemble", ens));
    }
    if (lin != null) {
      written.addAll(writeBand("linearized", lin));
    }

    double[] xs = xTest.data();
    Figures.Points train = new Figures.Points("training points", xTrain.data(), yTrain.data(), Color.BLACK);
    List<Figures.Curve> left = new ArrayList<>();
    List<Figures.Curve> right = new ArrayList<>();
    if (yTest != null) {
      left.add(Figures.Curve.line("target", xs, yTest.data(), Figures.GREY));
      right.add(Figures.Curve.line("target", xs, yTest.data(), Figures.GREY));
    }
    left.add(new Figures.Curve("NNGP posterior", xs, nngp.mean(), nngp.sigma(), Figures.ORANGE));
    left.add(new Figures.Curve("NTK posterior", xs, ntk.mean(), ntk.sigma(), Figures.BLUE));
    right.add(new Figures.Curve("NTK posterior", xs, ntk.mean(), ntk.sigma(), Figures.BLUE));
    if (ens != null) {
      right.add(new Figures.Curve("finite networks", xs, ens.mean(), ens.sigma(), Figures.VERMILION));
    }
    if (lin != null) {
      right.add(new Figures.Curve("linearized networks", xs, lin.mean(), lin.sigma(), Figures.GREEN));
    }
    String when = Double.isInfinite(time) ? "t = \u221e"
        : String.format(Locale.ROOT, "t = %s steps, learning rate %s", t.trim(), learningRate);
    List<Figures.Panel> panels = new ArrayList<>();
    panels.add(new Figures.Panel("Infinite networks, " + when, "x", "f(x)", left, List.of(train)));
    if (ens != null || lin != null) {
      panels.add(new Figures.Panel("Finite networks, " + when, "x", "f(x)", right, List.of(train)));
    }
    Path png = out.resolve("figure1.png");
    Figures.writePng(panels, png);
    w.println("wrote " + png + " (" + Figures.PANEL_WIDTH * panels.size() + " x " + Figures.PANEL_HEIGHT + ")");
    for (Path f : written) {
      w.println("wrote " + f + " " + Npy.shapeString(Npy.readHeader(f).shape()));
    }
    return 0;
  }

  private PredictSettings settings(Get get, double time) {
    return new PredictSettings(get, diagReg, new double[] {time}, learningRate, "mse", 0.0, null, null, false);
  }

  /**
   * The posterior of {@code get}, computed as {@code ntk predict --compute-cov} computes it, into a
   * staging directory; its mean and covariance are written as {@code <key>_mean.npy} and {@code
   * <key>_cov.npy}.
   */
  private Band posterior(Layer layer, NpyArray xTrain, NpyArray yTrain, NpyArray xTest, PredictSettings settings,
      String key, List<Path> written) throws IOException {
    List<NpyArray> outputs = StagedPredict.run(new InProcessPredict(dev.ntk.kernels.Model.of(layer), xTrain, yTrain,
        xTest, settings, true, NpyDType.FLOAT64, Backend.AUTO.resolve()), out, "figure1-" + key, "mean.npy", "cov.npy");
    NpyArray mean = outputs.get(0);
    NpyArray cov = outputs.get(1);
    Path meanFile = out.resolve(key + "_mean.npy");
    Path covFile = out.resolve(key + "_cov.npy");
    Npy.write(meanFile, mean);
    Npy.write(covFile, cov);
    written.add(meanFile);
    written.add(covFile);
    int m = mean.rows();
    double[] sigma = new double[m];
    for (int i = 0; i < m; i++) {
      sigma[i] = Math.sqrt(Math.max(cov.data()[i * m + i], 0.0));
    }
    return new Band(mean.data(), sigma);
  }

  private List<Path> writeBand(String key, Band band) throws IOException {
    Path mean = out.resolve(key + "_mean.npy");
    Path std = out.resolve(key + "_std.npy");
    long[] shape = {band.mean().length, 1};
    Npy.write(mean, new NpyArray(shape, NpyDType.FLOAT64, band.mean()));
    Npy.write(std, new NpyArray(shape, NpyDType.FLOAT64, band.sigma()));
    return List.of(mean, std);
  }

  /** Inputs of one feature, {@code (N, 1)}: the figure draws outputs against them. */
  private static NpyArray scalarInputs(Path file) throws IOException {
    NpyArray x = Npy.read(file);
    if (x.ndim() != 2 || x.shape()[1] != 1 || x.shape()[0] == 0) {
      throw new IllegalArgumentException(file + ": Figure 1 needs scalar inputs of shape (N, 1), got "
          + x.shapeString());
    }
    return x;
  }

  /**
   * The mean and standard deviation over K networks ({@code np.std}, divided by K) of {@code
   * (K, N_test, 1)} outputs, or of the last time of {@code (T, K, N_test, 1)}.
   */
  static Band ensembleBand(String option, Path file, int m) throws IOException {
    NpyArray a = Npy.read(file);
    long[] s = a.shape();
    boolean timed = s.length == 4;
    if ((s.length != 3 && !timed) || s[s.length - 1] != 1 || s[s.length - 2] != m || s[s.length - 3] < 1
        || (timed && s[0] < 1)) {
      throw new IllegalArgumentException(option + " " + file + ": expected the test outputs of K networks, (K, " + m
          + ", 1) or (T, K, " + m + ", 1), got " + a.shapeString());
    }
    int k = Math.toIntExact(s[s.length - 3]);
    int offset = timed ? Math.toIntExact((s[0] - 1) * k * m) : 0;
    double[] v = a.data();
    double[] mean = new double[m];
    double[] sigma = new double[m];
    for (int i = 0; i < m; i++) {
      double sum = 0;
      for (int j = 0; j < k; j++) {
        sum += v[offset + j * m + i];
      }
      mean[i] = sum / k;
      double sq = 0;
      for (int j = 0; j < k; j++) {
        double d = v[offset + j * m + i] - mean[i];
        sq += d * d;
      }
      sigma[i] = Math.sqrt(sq / k);
    }
    return new Band(mean, sigma);
  }
}
