package dev.ntk.pipelines.figures;

import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Model;
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
 * Figure 3 of the Neural Tangents paper on Fashion-MNIST: test accuracy and test mean squared
 * error of exact inference ({@code t = inf}) with the NNGP and the NTK of a fully connected
 * network, a CNN with a {@code Flatten} readout and a WideResNet with {@code GlobalAvgPool},
 * against the size of the training set. Each point is {@code ntk predict --get nngp|ntk} as it runs
 * in-process ({@link InProcessPredict}) on the first {@code N} training images and the first
 * {@code --test} test images, standardized per image, with the targets one-hot minus 0.1 (the mean
 * of a one-hot label), so that a zero prediction is unbiased.
 *
 * <p>Writes into {@code --out}: {@code figure3.png} (left: accuracy, right: MSE, both against
 * {@code log10 N}) and, per network {@code fc}, {@code cnn}, {@code wrn}, its data: {@code
 * <net>_sizes.npy} {@code (S,)}, {@code <net>_accuracy.npy} and {@code <net>_mse.npy} {@code (2,
 * S)} (row 0 the NNGP, row 1 the NTK), and {@code <net>_seconds.npy} {@code (2, S)}, the seconds
 * each prediction took. The MSE is {@code |mean - y|^2} averaged over the test images and the 10
 * classes. A network with no sizes ({@code --wrn-sizes ""}) is left out. Run through {@code
 * examples/fashion-mnist/figure.sh OUT}.
 */
@Command(name = "figure3", mixinStandardHelpOptions = true,
    description = "The Neural Tangents paper's Figure 3 on Fashion-MNIST: writes OUT/figure3.png and its data.")
public final class Figure3 implements Callable<Integer> {
  @Option(names = "--data", paramLabel = "DIR", defaultValue = "/usr/share/datasets/fashion-mnist",
      description = "Directory with train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz "
          + "and t10k-labels-idx1-ubyte.gz (default: where Debian's dataset-fashion-mnist puts them).")
  Path data;

  @Option(names = "--models", required = true, paramLabel = "DIR",
      description = "Directory with the model files fc.json, cnn.json and wrn.json.")
  Path models;

  @Option(names = "--fc-sizes", paramLabel = "N,...", defaultValue = "100,300,1000,3000,10000",
      description = "Training-set sizes of the fully connected network, increasing (empty: none).")
  String fcSizes;

  @Option(names = "--cnn-sizes", paramLabel = "N,...", defaultValue = "100,300,1000,3000",
      description = "Training-set sizes of the CNN, increasing (empty: none).")
  String cnnSizes;

  @Option(names = "--wrn-sizes", paramLabel = "N,...", defaultValue = "30,100,300",
      description = "Training-set sizes of the WideResNet (its kernel costs the most per pair), increasing (empty: none).")
  String wrnSizes;

  @Option(names = "--test", paramLabel = "M", defaultValue = "1000", description = "Test images (default 1000).")
  int test;

  @Option(names = "--diag-reg", paramLabel = "R", defaultValue = "1e-4",
      description = "Diagonal regularizer, relative to the mean diagonal (default 1e-4, as ntk predict).")
  double diagReg;

  @Option(names = "--dtype", paramLabel = "DTYPE", defaultValue = "float64",
      description = "float64 (default) or float32: the kernels' precision (the solve is float64).")
  NpyDType dtype;

  @Option(names = "--out", required = true, paramLabel = "OUT", description = "Output directory.")
  Path out;

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  /** The networks, in the order they are drawn: file name, legend name, colour. */
  private record Network(String key, String name, Color color) {}

  private static final List<Network> NETWORKS = List.of(
      new Network("fc", "FC", Figures.BLUE),
      new Network("cnn", "CNN (Flatten)", Figures.VERMILION),
      new Network("wrn", "WideResNet (GAP)", Figures.GREEN));

  /** Classes of Fashion-MNIST. */
  private static final int CLASSES = 10;

  public static void main(String[] args) {
    System.exit(run(args, System.out, System.err));
  }

  /**
   * Runs with {@code args}; returns 0, 2 for a problem with the inputs (one line on {@code err}),
   * or 1 for an internal failure.
   */
  public static int run(String[] args, PrintStream out, PrintStream err) {
    return Figures.run(new Figure3(), args, out, err);
  }

  @Override
  public Integer call() throws IOException {
    List<List<Integer>> sizes = List.of(sizes("--fc-sizes", fcSizes), sizes("--cnn-sizes", cnnSizes),
        sizes("--wrn-sizes", wrnSizes));
    int largest = sizes.stream().flatMap(List::stream).mapToInt(Integer::intValue).max().orElse(0);
    if (test < 1) {
      throw new IllegalArgumentException("--test must be at least 1, got " + test);
    }
    PrintWriter w = spec.commandLine().getOut();
    IdxImages trainImages = IdxImages.read(data.resolve("train-images-idx3-ubyte.gz"), largest);
    int[] trainLabels = IdxImages.labels(data.resolve("train-labels-idx1-ubyte.gz"), largest);
    IdxImages testImages = IdxImages.read(data.resolve("t10k-images-idx3-ubyte.gz"), test);
    int[] testLabels = IdxImages.labels(data.resolve("t10k-labels-idx1-ubyte.gz"), test);
    if (trainImages.count() < largest || trainLabels.length < largest || testImages.count() < test
        || testLabels.length < test) {
      throw new IllegalArgumentException(data + " holds " + trainImages.count() + " training and "
          + testImages.count() + " test images, fewer than the " + largest + " and " + test + " asked for");
    }
    NpyArray xTest = images(testImages, test);
    Files.createDirectories(out);
    List<Figures.Curve> accuracyCurves = new ArrayList<>();
    List<Figures.Curve> mseCurves = new ArrayList<>();
    for (int k = 0; k < NETWORKS.size(); k++) {
      Network net = NETWORKS.get(k);
      List<Integer> ns = sizes.get(k);
      if (ns.isEmpty()) {
        continue;
      }
      Model model = Model.read(models.resolve(net.key() + ".json"));
      int s = ns.size();
      double[] logN = new double[s];
      double[][] accuracy = new double[2][s];
      double[][] mse = new double[2][s];
      double[][] seconds = new double[2][s];
      for (int i = 0; i < s; i++) {
        int n = ns.get(i);
        logN[i] = Math.log10(n);
        NpyArray xTrain = images(trainImages, n);
        NpyArray yTrain = targets(trainLabels, n);
        for (int g = 0; g < 2; g++) {
          Get get = g == 0 ? Get.NNGP : Get.NTK;
          long start = System.nanoTime();
          NpyArray mean = StagedPredict.run(new InProcessPredict(model, xTrain, yTrain, xTest,
              PredictSettings.exact(get, diagReg), false, dtype, Backend.AUTO.resolve()), out,
              "figure3-" + net.key() + "-" + get.key(), "mean.npy").get(0);
          seconds[g][i] = (System.nanoTime() - start) / 1e9;
          accuracy[g][i] = accuracy(mean.data(), testLabels, test);
          mse[g][i] = mse(mean.data(), testLabels, test);
          w.println(String.format(Locale.ROOT, "figure3: %s %s N = %d: accuracy %.4f, MSE %.5f (%.1f s)",
              net.key(), get.key(), n, accuracy[g][i], mse[g][i], seconds[g][i]));
        }
      }
      Npy.write(out.resolve(net.key() + "_sizes.npy"), new NpyArray(new long[] {s}, NpyDType.FLOAT64,
          ns.stream().mapToDouble(Integer::doubleValue).toArray()));
      write(net.key() + "_accuracy.npy", accuracy);
      write(net.key() + "_mse.npy", mse);
      write(net.key() + "_seconds.npy", seconds);
      for (int g = 0; g < 2; g++) {
        String label = net.name() + (g == 0 ? " NNGP" : " NTK");
        Color c = g == 0 ? net.color() : net.color().darker().darker();
        accuracyCurves.add(Figures.Curve.line(label, logN, accuracy[g], c));
        mseCurves.add(Figures.Curve.line(label, logN, mse[g], c));
      }
    }
    if (accuracyCurves.isEmpty()) {
      throw new IllegalArgumentException("no training-set sizes were given for any network");
    }
    String testSet = " (" + test + " test images)";
    Path png = out.resolve("figure3.png");
    Figures.writePng(List.of(
        new Figures.Panel("Test accuracy" + testSet, "log10 training set size", "accuracy", accuracyCurves,
            List.of()),
        new Figures.Panel("Test mean squared error" + testSet, "log10 training set size", "MSE", mseCurves,
            List.of())), png);
    w.println("wrote " + png + " (" + 2 * Figures.PANEL_WIDTH + " x " + Figures.PANEL_HEIGHT + ")");
    return 0;
  }

  /** The sizes of {@code option}: increasing positive integers, separated by commas; none if blank. */
  private static List<Integer> sizes(String option, String value) {
    List<Integer> sizes = new ArrayList<>();
    if (value.isBlank()) {
      return sizes;
    }
    for (String part : value.split(",")) {
      int n;
      try {
        n = Integer.parseInt(part.trim());
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException(option + ": \"" + part.trim() + "\" is not a number of images");
      }
      if (n < 1 || (!sizes.isEmpty() && n <= sizes.get(sizes.size() - 1))) {
        throw new IllegalArgumentException(option + ": sizes must be increasing positive numbers, got " + value);
      }
      sizes.add(n);
    }
    return sizes;
  }

  /** The first {@code n} images as inputs {@code (n, rows, cols, 1)}. */
  private static NpyArray images(IdxImages images, int n) {
    int size = images.rows() * images.cols();
    return new NpyArray(new long[] {n, images.rows(), images.cols(), 1}, NpyDType.FLOAT64,
        java.util.Arrays.copyOf(images.pixels(), n * size));
  }

  /** One-hot targets minus {@code 1 / classes}, {@code (n, classes)}. */
  private static NpyArray targets(int[] labels, int n) {
    double[] y = new double[n * CLASSES];
    for (int i = 0; i < n; i++) {
      for (int c = 0; c < CLASSES; c++) {
        y[i * CLASSES + c] = (labels[i] == c ? 1.0 : 0.0) - 1.0 / CLASSES;
      }
    }
    return new NpyArray(new long[] {n, CLASSES}, NpyDType.FLOAT64, y);
  }

  /** The fraction of the {@code m} test images whose largest mean output is their label. */
  static double accuracy(double[] mean, int[] labels, int m) {
    int right = 0;
    for (int i = 0; i < m; i++) {
      int best = 0;
      for (int c = 1; c < CLASSES; c++) {
        if (mean[i * CLASSES + c] > mean[i * CLASSES + best]) {
          best = c;
        }
      }
      right += best == labels[i] ? 1 : 0;
    }
    return (double) right / m;
  }

  /** {@code |mean - y|^2} averaged over the {@code m} test images and the classes, {@code y} as {@link #targets}. */
  static double mse(double[] mean, int[] labels, int m) {
    double sum = 0;
    for (int i = 0; i < m; i++) {
      for (int c = 0; c < CLASSES; c++) {
        double d = mean[i * CLASSES + c] - ((labels[i] == c ? 1.0 : 0.0) - 1.0 / CLASSES);
        sum += d * d;
      }
    }
    return sum / ((double) m * CLASSES);
  }

  private void write(String name, double[][] rows) throws IOException {
    int s = rows[0].length;
    double[] flat = new double[rows.length * s];
    for (int r = 0; r < rows.length; r++) {
      System.arraycopy(rows[r], 0, flat, r * s, s);
    }
    Npy.write(out.resolve(name), new NpyArray(new long[] {rows.length, s}, NpyDType.FLOAT64, flat));
  }
}
