package dev.ntk.pipelines;

import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.io.AtomicFiles;
import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.kernels.Layer;
import dev.ntk.kernels.Model;
import dev.ntk.kernels.Params;
import dev.ntk.kernels.Spec;
import dev.ntk.kernels.predict.Loss;
import dev.ntk.kernels.train.Ensemble;
import dev.ntk.kernels.train.Optimizer;
import dev.ntk.kernels.train.Trainer;
import dev.ntk.transforms.ParamsFiles;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicLong;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code ntk train}: trains an ensemble of finite networks of the model (or their linearizations)
 * from seeds {@code S, S+1, ...} and writes their train and test outputs after each number of
 * steps asked for ({@link Ensemble}, {@link Trainer}): {@code DIR/test.npy} of shape {@code
 * (len(t), K, N_test, out)} and {@code DIR/train.npy} of shape {@code (len(t), K, N_train, out)},
 * both or neither ({@link Outputs}). {@code --t} and {@code --learning-rate} mean what they mean
 * to {@code ntk predict}: under MSE, {@code t} steps of size {@code lr} approach the infinite
 * ensemble that {@code ntk predict --get ntk --t t --learning-rate lr} describes. With {@code
 * --params-out P.npz} it also writes each member's trained parameters as a parameters file
 * ({@link ParamsFiles}): {@code P.npz} for one member, {@code P-0.npz}, {@code P-1.npz}, ... for
 * more, with the other outputs, all or nothing.
 */
@Command(name = "train", mixinStandardHelpOptions = true,
    description = "Trains an ensemble of finite networks: writes DIR/test.npy (len(t), K, N_test, out) and "
        + "DIR/train.npy (len(t), K, N_train, out).")
final class TrainCommand implements Callable<Integer> {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Mixin TrainingInputs training;

  @Option(names = "--y-train", required = true, paramLabel = "Y.npy",
      description = "Training targets (N,) or (N, out).")
  Path yTrain;

  @Option(names = "--x-test", required = true, paramLabel = "XT.npy", description = "Test inputs.")
  Path xTest;

  @Option(names = "--ensemble", paramLabel = "K", defaultValue = "1",
      description = "Networks, from seeds S, S+1, ..., S+K-1 (default 1).")
  int ensemble;

  @Option(names = "--learning-rate", paramLabel = "LR", defaultValue = "1.0",
      description = "Learning rate (default 1.0); above the largest stable one of gradient descent on MSE "
          + "(ntk lr) it is warned about.")
  double learningRate;

  @Option(names = "--t", required = true, paramLabel = "T[,T...]",
      description = "Numbers of steps after which outputs are written, comma-separated; between steps the "
          + "parameters are taken as linear in t.")
  String t;

  @Option(names = "--optimizer", paramLabel = "OPT", defaultValue = "gd",
      description = "gd (default: full-batch gradient descent), sgd (with --batch-size), momentum or adam.")
  String optimizer;

  @Option(names = "--mass", paramLabel = "M", defaultValue = "0.9",
      description = "Mass of --optimizer momentum, in [0, 1) (default 0.9).")
  double mass;

  @Option(names = "--batch-size", paramLabel = "B",
      description = "Training rows per step (sgd: required; momentum, adam: default all).")
  Integer batchSize;

  @Option(names = "--loss", paramLabel = "LOSS", defaultValue = "mse",
      description = "mse (default, |f - y|^2 / (2 y.size)) or cross-entropy (softmax).")
  String loss;

  @Option(names = "--linearized", description = "Train the linearization of each network around its initial "
      + "parameters instead of the network.")
  boolean linearized;

  @Option(names = "--seed", paramLabel = "S", defaultValue = "0",
      description = "Seed of the first network (default 0).")
  long seed;

  @Option(names = "--width", paramLabel = "W",
      description = "out_dim of every Dense layer and out_chan of every convolution but the last (the readout), "
          + "as ntk mc --width (default: as in the model).")
  Integer width;

  @Option(names = "--dtype", paramLabel = "DTYPE", defaultValue = "float64",
      description = "float64 (default) or float32: the parameters, the training and the outputs.")
  NpyDType dtype;

  @Option(names = "--params-out", paramLabel = "P.npz",
      description = "Also write each network's parameters after the last --t (a whole number of steps) as a "
          + "parameters file: P.npz with --ensemble 1, else P-0.npz, P-1.npz, ... (seeds S, S+1, ...); with "
          + "--linearized the parameters p of the linearization. Written with DIR's outputs, all or nothing.")
  Path paramsOut;

  @Option(names = "--verbose", description = "Print the stack trace of a failure.")
  boolean verbose;

  @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output directory.")
  Path out;

  /**
   * Above this many training rows the learning rate is not checked: the check computes their
   * infinite NTK and its largest eigenvalue. Inputs with pixels are not checked either (an image
   * model's NTK can take far longer than the training).
   */
  static final int LR_CHECK_ROWS = 4096;

  @Override
  public Integer call() throws IOException {
    double[] times = times(t);
    if (ensemble < 1) {
      throw new UsageException("--ensemble must be at least 1, got " + ensemble);
    }
    if (!(learningRate > 0) || Double.isInfinite(learningRate)) {
      throw new UsageException("--learning-rate must be a positive number, got " + learningRate);
    }
    if (width != null && width < 1) {
      throw new UsageException("--width must be at least 1, got " + width);
    }
    Loss lossFn;
    Optimizer opt;
    try {
      lossFn = Loss.of(loss);
      opt = Optimizer.of(optimizer, mass);
    } catch (IllegalArgumentException e) {
      throw new UsageException((e.getMessage().startsWith("unknown loss") ? "--loss: " : "--optimizer: ")
          + e.getMessage().replace("momentum mass", "--mass"));
    }
    List<Path> paramsFiles = paramsFiles(times);
    Model parsed = InputChecks.model(training.model);
    Layer layer = (width == null ? parsed : parsed.withWidth(width, true)).layer();
    InputChecks.refuseGraph("ntk train", training.model, layer);
    TrainingInputs.Inputs inputs = training.read(layer, xTest);
    NpyArray train = inputs.train();
    NpyArray test = inputs.test();
    int n = (int) train.shape()[0];
    int m = (int) test.shape()[0];
    NpyArray y = InputChecks.targets("--y-train", yTrain, n);
    int k = y.data().length / n;
    Spec output = layer.check(new Shape(Arrays.copyOfRange(train.shape(), 1, train.shape().length)));
    if (output.shape().dimension() != 1 || output.shape().get(0) != k) {
      throw new UsageException(training.model + ": the network's outputs per example have shape " + output.shape()
          + ", but --y-train " + yTrain + " has " + k + " column" + (k == 1 ? "" : "s") + " (shape "
          + y.shapeString() + ")");
    }
    int batch = batch(n);
    int threads = membersAtOnce(ensemble);
    if (System.getProperty(JobOptions.INTRA_OP) == null) { // before the engine loads: members share the cores
      System.setProperty(JobOptions.INTRA_OP,
          Integer.toString(Math.max(1, Runtime.getRuntime().availableProcessors() / threads)));
    }
    warnAboveLargestStableRate(layer, train, k, opt, lossFn);

    Trainer.Settings settings = new Trainer.Settings(lossFn, opt, learningRate, batch, times);
    Trainer.Data data = new Trainer.Data(train.data(), new Shape(train.shape()), y.data(), k, test.data(),
        new Shape(test.shape()));
    DataType type = dtype == NpyDType.FLOAT32 ? DataType.FLOAT32 : DataType.FLOAT64;
    long totalSteps = settings.steps() * ensemble;
    AtomicLong done = new AtomicLong();
    long bytes = (long) dtype.bytes() * times.length * ensemble * (n + m) * k;
    Layer trained = layer;
    List<Path> beside = new ArrayList<>(); // the parameters files, staged beside their targets
    long start = System.nanoTime();
    try (Outputs outputs = Outputs.open(out, "train", bytes)) {
      outputs.produce("train", List.of("train.npy", "test.npy"), List.of("train.npy", "test.npy"), staging -> {
        Trainer.Outputs[] runs;
        try (Progress.Display progress = Ntk.progress.start(totalSteps, done::get, "steps")) {
          runs = Ensemble.train(trained, linearized, seed, ensemble, data, settings, type, threads,
              done::addAndGet, paramsOut == null ? null : (member, params) -> saveParams(trained, staging, member,
                  params));
        }
        write(staging.resolve("train.npy"), runs, times.length, n, k, true);
        write(staging.resolve("test.npy"), runs, times.length, m, k, false);
        for (int member = 0; member < paramsFiles.size(); member++) {
          Path target = paramsFiles.get(member).toAbsolutePath();
          try { // may copy across file systems: to a temporary name, renamed once DIR's outputs are in place
            Files.createDirectories(target.getParent());
            beside.add(Files.move(staging.resolve(staged(member)),
                target.resolveSibling(AtomicFiles.temporaryName(target.getFileName().toString()))));
          } catch (IOException e) {
            throw new UsageException("--params-out " + paramsFiles.get(member) + ": " + Outputs.reason(e)
                + " (nothing was written)");
          }
        }
        return null;
      });
      for (int member = 0; member < beside.size(); member++) {
        try {
          Files.move(beside.get(member), paramsFiles.get(member).toAbsolutePath(), StandardCopyOption.ATOMIC_MOVE,
              StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
          throw new UsageException("--params-out " + paramsFiles.get(member) + ": " + Outputs.reason(e)
              + "; DIR's outputs and the parameters files before it were written");
        }
      }
    } finally {
      for (Path p : beside) {
        try {
          Files.deleteIfExists(p);
        } catch (IOException e) {
          // a hidden temporary file of ntk's; the failure that led here is what the user needs to read
        }
      }
    }
    double seconds = (System.nanoTime() - start) / 1e9;
    PrintWriter w = spec.commandLine().getOut();
    w.println(String.format(Locale.ROOT, "train: %d %snetwork%s%s, seeds %d..%d, %s, %d step%s each%s: %.1f s, "
        + "%.1f steps/s", ensemble, linearized ? "linearized " : "", ensemble == 1 ? "" : "s",
        width == null ? "" : " of width " + width, seed, seed + ensemble - 1, optimizer.trim().toLowerCase(Locale.ROOT),
        settings.steps(), settings.steps() == 1 ? "" : "s", batch == 0 ? "" : " (batches of " + batch + ")",
        seconds, totalSteps / seconds));
    for (String f : List.of("train.npy", "test.npy")) {
      w.println("wrote " + out.resolve(f) + " " + Ntk.describe(out.resolve(f)));
    }
    for (int member = 0; member < paramsFiles.size(); member++) {
      w.println("wrote " + paramsFiles.get(member) + ": the parameters of the network of seed " + (seed + member));
    }
    return 0;
  }

  /**
   * Writes member {@code member}'s trained parameters ({@code --params-out}) into the staging
   * directory; called from the member's thread once it is trained.
   */
  private static void saveParams(Layer layer, Path staging, int member, Params params) {
    try {
      ParamsFiles.write(layer, params, staging.resolve(staged(member)));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The name of member {@code member}'s parameters file in the staging directory. */
  private static String staged(int member) {
    return "params-" + member + ".npz";
  }

  /**
   * The files of {@code --params-out} (none without it), checked before anything is trained: {@code
   * P.npz} for one member, {@code P-<i>.npz} for member {@code i} of more (a name without {@code
   * .npz} gets {@code -<i>} at its end), each a file that can be written or replaced, none of them
   * an output in {@code DIR}.
   */
  private List<Path> paramsFiles(double[] times) {
    if (paramsOut == null) {
      return List.of();
    }
    double last = Arrays.stream(times).max().orElse(0);
    if (last != Math.floor(last)) {
      throw new UsageException("--params-out writes the parameters after the last step, but the largest --t, "
          + last + ", is not a whole number of steps (add " + (long) Math.ceil(last) + " to --t)");
    }
    String name = paramsOut.getFileName() == null ? "" : paramsOut.getFileName().toString();
    List<Path> files = new ArrayList<>();
    for (int member = 0; member < ensemble; member++) {
      files.add(ensemble == 1 ? paramsOut : paramsOut.resolveSibling(name.endsWith(".npz")
          ? name.substring(0, name.length() - 4) + "-" + member + ".npz" : name + "-" + member));
    }
    Path dir = out.toAbsolutePath().normalize();
    for (Path file : files) {
      Path target = file.toAbsolutePath().normalize();
      String why = Files.isDirectory(target) ? "is a directory, expected the .npz file to write"
          : Files.exists(target) && !Files.isRegularFile(target) ? "is not a regular file"
          : Files.exists(target) && !Files.isWritable(target) ? "is read-only"
          : target.getParent() == null ? "is not a file"
          : target.getParent().equals(dir) && (List.of("train.npy", "test.npy").contains(
              target.getFileName().toString()) || target.getFileName().toString().startsWith("train.manifest"))
              ? "is one of the outputs in --out" : null;
      if (why == null) {
        Path parent = target.getParent();
        while (parent != null && !Files.exists(parent)) {
          parent = parent.getParent();
        }
        why = parent == null || !Files.isDirectory(parent) ? "cannot be created: " + parent + " is not a directory"
            : !Files.isWritable(parent) ? "cannot be written: " + parent + " is read-only" : null;
      }
      if (why != null) {
        throw new UsageException("--params-out: " + file + " " + why + " (nothing was trained)");
      }
    }
    return files;
  }

  /** The times of {@code --t}: finite non-negative numbers of steps. */
  static double[] times(String list) {
    double[] times = PredictCommand.times(list);
    for (double v : times) {
      if (Double.isInfinite(v)) {
        throw new UsageException("--t must be finite numbers of steps to train, got inf");
      }
    }
    return times;
  }

  /** The rows per step, 0 for all, from {@code --optimizer} and {@code --batch-size}. */
  private int batch(int n) {
    String name = optimizer.trim().toLowerCase(Locale.ROOT);
    if (batchSize == null) {
      if (name.equals("sgd")) {
        throw new UsageException("--optimizer sgd needs --batch-size (rows per step, at most " + n + ")");
      }
      return 0;
    }
    if (batchSize < 1 || batchSize > n) {
      throw new UsageException("--batch-size must be between 1 and the " + n + " training rows, got " + batchSize);
    }
    if (name.equals("gd") && batchSize < n) {
      throw new UsageException("--optimizer gd is full-batch gradient descent: for batches of " + batchSize
          + " rows use --optimizer sgd");
    }
    return batchSize == n ? 0 : batchSize;
  }

  /**
   * Warns on stderr if the learning rate is above the largest stable one of gradient descent on
   * MSE ({@code ntk lr}'s, with the momentum's mass): the bound of plain and heavy-ball steps on
   * the infinite network's NTK, which Adam's rescaled steps and cross-entropy do not follow.
   * Vector inputs of at most {@link #LR_CHECK_ROWS} rows only.
   */
  private void warnAboveLargestStableRate(Layer layer, NpyArray train, int k, Optimizer opt, Loss lossFn) {
    if (lossFn != Loss.MSE || opt instanceof Optimizer.Adam || train.shape()[0] > LR_CHECK_ROWS
        || train.ndim() > 2) {
      return;
    }
    double momentum = opt instanceof Optimizer.Momentum mo ? mo.mass() : 0;
    double largest;
    try {
      largest = LrCommand.largestLearningRate(layer, train, k, momentum);
    } catch (IllegalArgumentException e) {
      return; // no positive eigenvalue: nothing to compare with
    }
    if (learningRate > largest) {
      spec.commandLine().getErr().println(String.format(Locale.ROOT, "ntk: warning: --learning-rate %s is above "
          + "the largest stable learning rate %.6g of %s on MSE (ntk lr): training may diverge", learningRate,
          largest, momentum > 0 ? "momentum " + momentum : "gradient descent"));
    }
  }

  /**
   * How many members train at once: one, on all cores. Measured with {@code bench/train.sh}'s
   * ensemble runs (4 networks of the sine example, 30 steps each, warm JVM, a 2-core EPYC loaded by
   * other jobs, three alternating runs): width 512, 33 to 42 steps/s one at a time on both cores
   * against 19 to 23 two at a time on one core each; width 2048, 5.1 against 4.8.
   */
  static int membersAtOnce(int members) {
    return 1;
  }

  /** {@code (len(t), K, rows, k)} from each member's outputs at each time. */
  private void write(Path file, Trainer.Outputs[] runs, int times, int rows, int k, boolean train)
      throws IOException {
    int per = rows * k;
    double[] values = new double[times * runs.length * per];
    for (int i = 0; i < times; i++) {
      for (int member = 0; member < runs.length; member++) {
        double[] v = train ? runs[member].train()[i] : runs[member].test()[i];
        System.arraycopy(v, 0, values, (i * runs.length + member) * per, per);
      }
    }
    Npy.write(file, new NpyArray(new long[] {times, runs.length, rows, k}, dtype, values));
  }
}
