package dev.ntk.pipelines;

import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Layer;
import dev.ntk.kernels.Model;
import dev.ntk.kernels.Plan;
import dev.ntk.kernels.engine.Backend;
import dev.ntk.kernels.predict.ConjugateGradients;
import dev.ntk.kernels.predict.Loss;
import dev.ntk.transforms.GpInference;
import dev.ntk.transforms.PredictSettings;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import org.apache.beam.sdk.options.PipelineOptions;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code ntk predict}: the infinite network's predictions on test inputs, trained on the given targets. */
@Command(name = "predict", mixinStandardHelpOptions = true,
    description = "Writes DIR/mean.npy (N_test, K) and with --compute-cov DIR/cov.npy (N_test, N_test).")
final class PredictCommand extends JobCommand {
  @Mixin CommonOptions options;

  @Mixin TrainingInputs training;

  @Option(names = "--y-train", required = true, paramLabel = "Y.npy", description = "Training targets (N,) or (N, K).")
  Path yTrain;

  @Option(names = "--x-test", required = true, paramLabel = "XT.npy", description = "Test inputs.")
  Path xTest;

  @Option(names = "--pattern-train", paramLabel = "A.npy", description = "Graph patterns of the training inputs "
      + "for a model with Aggregate (as ntk kernel's --pattern1).")
  Path patternTrain;

  @Option(names = "--pattern-test", paramLabel = "AT.npy", description = "Graph patterns of the test inputs.")
  Path patternTest;

  @Option(names = "--get", paramLabel = "KERNEL", defaultValue = "ntk",
      description = "ntk (default: the trained infinite ensemble) or nngp (the Bayesian posterior).")
  Get get;

  @Option(names = "--t", paramLabel = "T[,T...]", defaultValue = "inf",
      description = "Training times, comma-separated (default inf: exact inference); with several, "
          + "outputs gain a leading time axis.")
  String t;

  @Option(names = "--loss", paramLabel = "LOSS", defaultValue = "mse",
      description = "mse (default, closed form) or cross-entropy (integrated as an ODE).")
  String loss;

  @Option(names = "--momentum", paramLabel = "MASS", defaultValue = "0",
      description = "Mass m of the second-order dynamics m f'' + f' = -lr Θ ∇L (default 0: none; "
          + "closed form with mse, else integrated as an ODE).")
  double momentum;

  @Option(names = "--fx-train-0", paramLabel = "F.npy",
      description = "Initial train outputs of one network, shaped as --y-train (default zeros).")
  Path fxTrain0;

  @Option(names = "--fx-test-0", paramLabel = "F.npy",
      description = "Initial test outputs of one network, (N_test, K) (default zeros).")
  Path fxTest0;

  @Option(names = "--nll", description = "Also write the marginal negative log-likelihood of the targets (nll.npy).")
  boolean nll;

  @Option(names = "--diag-reg", paramLabel = "R", defaultValue = "1e-4",
      description = "Diagonal regularizer, relative to the mean diagonal (default 1e-4).")
  double diagReg;

  @Option(names = "--compute-cov", description = "Also write the predictive covariance.")
  boolean computeCov;

  @Option(names = "--learning-rate", paramLabel = "LR", defaultValue = "1.0",
      description = "Learning rate of gradient descent (used with a finite --t).")
  double learningRate;

  @Option(names = "--max-steps", paramLabel = "STEPS", defaultValue = "1000000",
      description = "Solver steps an ODE integration (--loss other than mse) may take before it stops "
          + "with exit 2, naming the time it reached (default 1000000).")
  long maxSteps;

  @Option(names = "--solver", paramLabel = "SOLVER", defaultValue = "auto",
      description = "How exact inference (--t inf) solves with the train kernel: auto (default: cholesky; "
          + "for more than " + OutOfCorePredict.AUTO_BOUND + " training points whose kernels do not fit "
          + "--max-memory, cg), cholesky (factor it: in memory while the float64 train-train and test-train "
          + "kernels fit --max-memory, else out of core, in panels kept in a scratch file; with --compute-cov "
          + "on the pipeline), or cg (conjugate gradients on its tiles, read one at a time: the mean only).")
  Solver solver;

  @Option(names = "--scratch", paramLabel = "DIR",
      description = "Directory for the out-of-core Cholesky factor's file (the train kernel's lower triangle: "
          + "N^2 / 2 values of --dtype), deleted at the end (default: the directory that holds --out).")
  Path scratch;

  @Option(names = "--max-memory", paramLabel = "BYTES",
      description = "Memory the kernels may take in this JVM, in bytes or with a suffix k, m, g or t (powers of "
          + "1024; default: half the physical memory). Without a runner, a prediction whose float64 kernels fit "
          + "runs in-process; one whose kernels do not is factored out of core in panels that fit it (see "
          + "--solver).")
  String maxMemory;

  @Option(names = "--cg-tol", paramLabel = "TOL", defaultValue = "1e-6",
      description = "Relative residual ||y - (K + r I) alpha|| / ||y|| each target column must reach with "
          + "--solver cg (default 1e-6).")
  double cgTol;

  @Option(names = "--cg-max-iter", paramLabel = "ITER", defaultValue = "10000",
      description = "Iterations conjugate gradients may take before stopping with exit 2 (default 10000).")
  int cgMaxIter;

  @Option(names = "--cg-rank", paramLabel = "RANK", defaultValue = "1024",
      description = "Rank of conjugate gradients' Nystrom preconditioner (randomly pivoted Cholesky; default "
          + "1024, 0 for none).")
  int cgRank;

  @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output directory.")
  Path out;

  /** How exact inference solves with the train kernel ({@code --solver}). */
  enum Solver {
    /**
     * Cholesky, out of core when the kernels do not fit the memory budget; conjugate gradients
     * when they do not and the training set is larger than {@link OutOfCorePredict#AUTO_BOUND}.
     */
    AUTO,
    /** Factor the train kernel: in memory ({@code GpPosterior}) or out of core ({@code OutOfCoreCholesky}). */
    CHOLESKY,
    /** Conjugate gradients ({@code ConjugateGradients}). */
    CG;

    /**
     * Whether this solver factors a train kernel of {@code n} points that does not fit the memory
     * budget out of core: {@code cholesky} always, {@code auto} up to {@link OutOfCorePredict#AUTO_BOUND}
     * points (above it, conjugate gradients), {@code cg} never.
     */
    boolean factorsOutOfCore(long n) {
      return this == CHOLESKY || (this == AUTO && n <= OutOfCorePredict.AUTO_BOUND);
    }
  }

  /**
   * The graph patterns of the training and test inputs for a graph model's {@code plan} (null for
   * another model, which may be given none), read and checked as {@code ntk kernel} checks them; a
   * graph model is predicted in-process only.
   */
  private KernelInputs.Patterns patterns(Plan plan, long n, long m, boolean inProcess, long budget) {
    if (plan.patternNodes() == null) {
      if (patternTrain != null || patternTest != null) {
        throw new UsageException((patternTrain != null ? "--pattern-train " + patternTrain : "--pattern-test "
            + patternTest) + ": the model " + training.model + " has no Aggregate layer, which alone reads graph patterns");
      }
      return null;
    }
    NpyArray train = KernelInputs.pattern(plan, "--pattern-train", patternTrain, "--x-train", n);
    NpyArray test = KernelInputs.pattern(plan, "--pattern-test", patternTest, "--x-test", m);
    if (!inProcess) {
      // The tiles of a pipeline read rows of the inputs, not yet the rows of their patterns.
      throw new UsageException(plan.patternPath() + ": a graph model is predicted in-process only, "
          + (options.pipelineUnasked() ? "and its kernels do not fit --max-memory " + budget
          : "not with --runner or other pipeline options"));
    }
    return new KernelInputs.Patterns("--pattern-train " + patternTrain, train, "--pattern-test " + patternTest,
        test);
  }

  @Override
  public Integer call() throws IOException {
    checked(options);
    TileSettings tiles = options.tileSettings();
    double[] times = times(t);
    Model parsed = InputChecks.model(training.model);
    Layer layer = parsed.layer();
    TrainingInputs.Inputs inputs = training.read(layer, xTest);
    NpyArray train = inputs.train();
    NpyArray test = inputs.test();
    NpyArray y = InputChecks.targets("--y-train", yTrain, train.shape()[0]);
    if (fxTrain0 != null) {
      InputChecks.like("--fx-train-0", fxTrain0, y.shape());
    }
    if (fxTest0 != null) {
      long[] shape = y.shape().clone();
      shape[0] = test.shape()[0];
      InputChecks.like("--fx-test-0", fxTest0, shape);
    }
    PredictSettings settings;
    try {
      settings = new PredictSettings(get, diagReg, times, learningRate, loss, momentum,
          fxTrain0 == null ? null : fxTrain0.toAbsolutePath().toString(),
          fxTest0 == null ? null : fxTest0.toAbsolutePath().toString(), nll, maxSteps);
    } catch (IllegalArgumentException e) {
      throw new UsageException(e.getMessage().replace("diag_reg", "--diag-reg").replace("max_steps", "--max-steps")
          .replace("learning_rate", "--learning-rate").replace("times t", "--t"));
    }
    if (computeCov) {
      List<String> conflicts = new ArrayList<>();
      if (fxTrain0 != null) {
        conflicts.add("--fx-train-0");
      }
      if (fxTest0 != null) {
        conflicts.add("--fx-test-0");
      }
      if (momentum > 0) {
        conflicts.add("--momentum " + momentum);
      }
      if (Loss.of(loss) != Loss.MSE) {
        conflicts.add("--loss " + loss);
      }
      if (!conflicts.isEmpty()) {
        throw new UsageException("--compute-cov is the infinite ensemble's covariance under MSE "
            + "gradient descent from zero outputs: it cannot be used with " + String.join(", ", conflicts));
      }
    }
    long n = train.shape()[0];
    long m = test.shape()[0];
    long k = y.data().length / n;
    long bytes = tiles.dtype().bytes()
        * (n * n + m * n + times.length * (m * k + (computeCov ? 2 * m * m : 0)));
    long[] perExample = Arrays.copyOfRange(train.shape(), 1, train.shape().length);
    Plan plan = PredictJob.plan(parsed, train.shape(), settings, computeCov, tiles.dtype());
    Backend backend = tiles.backend().resolve(plan.schedule());
    long budget = maxMemory == null ? defaultMemory() : bytes("--max-memory", maxMemory);
    boolean fits = InProcessPredict.fits(parsed, perExample, n, m, settings, computeCov, tiles.dtype(), backend,
        budget);
    OutOfCorePredict outOfCore = outOfCore(parsed, tiles.dtype(), fits, backend, settings, train, y, test, budget);
    ConjugateGradients.Settings cg = outOfCore != null ? null : conjugateGradients(settings, n, m, budget);
    boolean inProcess = options.pipelineUnasked() && (fits || outOfCore != null);
    KernelInputs.Patterns patterns = patterns(plan, n, m, inProcess, budget);
    int tile = inProcess ? options.tile() : tiles.predictRows(plan, backend); // as the job sizes them
    if (tile < options.tile()) {
      spec.commandLine().getErr().printf("ntk: tiles of %d rows (not %d) fit --max-tile-bytes %d%n", tile,
          options.tile(), tiles.maxTileBytes());
    }
    PrintWriter log = options.verbose ? spec.commandLine().getErr() : null;
    PipelineOptions pipelineOptions = inProcess ? null : options.pipelineOptions();
    List<String> results = new ArrayList<>(List.of("mean.npy"));
    if (computeCov) {
      results.add("cov.npy");
    }
    if (nll) {
      results.add("nll.npy");
    }
    JobReport report;
    ConjugateGradients.Status before = ConjugateGradients.last();
    try (Outputs outputs = Outputs.open(out, "predict", bytes);
        Progress.Display solving = settings.mode() == PredictSettings.Mode.ODE ? Ntk.progress.integration()
            : cg != null ? Ntk.progress.conjugateGradients() : () -> {}) {
      PredictJob job = new PredictJob(parsed, training.xTrain, yTrain, xTest, settings, computeCov, outputs.directory())
          .withConjugateGradients(cg);
      report = outputs.produce("predict", List.of("mean.npy", "cov.npy", "nll.npy"), results,
          staging -> outOfCore != null
              ? new JobReport(Ntk.IN_PROCESS, outOfCore.run(staging, log), -1, -1, -1)
              : inProcess
              ? new JobReport(Ntk.IN_PROCESS, new InProcessPredict(parsed, train, y, test, settings,
                  computeCov, tiles.dtype(), backend, cg, patterns).run(staging, log), -1, -1, -1)
              : job.run(pipelineOptions, staging, Ntk.progress));
    }
    ConjugateGradients.Status solved = ConjugateGradients.last();
    if (cg != null && solved != null && solved != before) {
      spec.commandLine().getErr().println("ntk: conjugate gradients: " + solved);
    }
    Path mean = out.resolve("mean.npy");
    Path cov = out.resolve("cov.npy");
    Path nllFile = out.resolve("nll.npy");
    spec.commandLine().getOut().println(outOfCore != null ? String.format(Locale.ROOT, "in-process (the kernels "
        + "do not fit --max-memory %d), %s: %.1f s", budget, outOfCore.describe(), report.seconds())
        : inProcess ? String.format(Locale.ROOT, "in-process (the kernels "
        + "fit --max-memory %d; --runner DirectRunner runs the pipeline), %s: %.1f s", budget,
        cg == null ? settings.mode().toString().toLowerCase(Locale.ROOT) : "conjugate gradients", report.seconds())
        : report);
    print(spec.commandLine().getOut(), mean, computeCov ? cov : null, times.length);
    if (nll) {
      spec.commandLine().getOut().println("wrote " + nllFile + " " + Ntk.describe(nllFile) + ": "
          + Npy.read(nllFile).data()[0]);
    }
    return 0;
  }


  /**
   * The out-of-core prediction when it runs this one, else null: exact inference without a pipeline
   * asked for, on the {@code cpu} backend, with kernels that do not fit {@code budget} ({@code
   * fits}), without the covariance (the pipeline computes it) or graph patterns, by {@code --solver
   * cholesky} or by {@code auto} up to {@link OutOfCorePredict#AUTO_BOUND} training points. Its
   * scratch directory must hold the factor's file: if it does not, {@code auto} turns to conjugate
   * gradients and {@code cholesky} is a usage error.
   */
  private OutOfCorePredict outOfCore(Model parsed, NpyDType dtype, boolean fits, Backend backend,
      PredictSettings settings, NpyArray train, NpyArray y, NpyArray test, long budget) throws IOException {
    long n = train.shape()[0];
    if (fits || !solver.factorsOutOfCore(n) || !options.pipelineUnasked()
        || settings.mode() != PredictSettings.Mode.CHOLESKY
        || computeCov || !backend.runsInto()
        || PredictJob.plan(parsed, train.shape(), settings, false, dtype).patternNodes() != null
        || n >= Integer.MAX_VALUE) {
      return null;
    }
    Path directory = (scratch != null ? scratch : out.toAbsolutePath().getParent()).toAbsolutePath();
    if (scratch != null && !Files.isDirectory(scratch)) {
      throw new UsageException("--scratch " + scratch + " is not a directory");
    }
    java.nio.file.Path existing = directory;
    while (existing != null && !Files.exists(existing)) {
      existing = existing.getParent();
    }
    long need = OutOfCorePredict.scratchBytes(n, OutOfCorePredict.width(n, dtype, budget), dtype);
    long free = existing == null ? 0 : Files.getFileStore(existing).getUsableSpace();
    if (need > free) {
      if (solver == Solver.AUTO) {
        return null;
      }
      throw new UsageException(String.format(Locale.ROOT, "--solver cholesky: the train kernel does not fit "
          + "--max-memory %d, and its out-of-core factor needs %.1f GB in %s, which has %.1f GB free: give "
          + "--scratch a directory with room, or raise --max-memory", budget, need / 1e9, directory, free / 1e9));
    }
    return new OutOfCorePredict(parsed, train, y, test, settings, dtype, budget, directory);
  }

  /**
   * The settings of conjugate gradients when they solve this prediction, or null for the solver of
   * the mode (Cholesky for exact inference): {@code --solver cg}, or {@code auto} when the float64
   * kernels ({@link InProcessPredict#bytes}) do not fit {@code budget} and conjugate gradients can give
   * what is asked.
   */
  private ConjugateGradients.Settings conjugateGradients(PredictSettings settings, long n, long m, long budget) {
    ConjugateGradients.Settings cg;
    try {
      cg = new ConjugateGradients.Settings(cgTol, cgMaxIter, cgRank);
    } catch (IllegalArgumentException e) {
      throw new UsageException(e.getMessage().replace("cg_tol", "--cg-tol").replace("cg_max_iter", "--cg-max-iter")
          .replace("cg_rank", "--cg-rank"));
    }
    String unable = null;
    try {
      GpInference.checkConjugateGradients(settings, computeCov);
    } catch (IllegalArgumentException e) {
      unable = e.getMessage();
    }
    if (solver == Solver.CG && unable != null) {
      throw new UsageException("--solver cg: " + unable.replace("t = inf", "--t inf").replace("the covariance",
          "--compute-cov").replace("the negative log-likelihood", "--nll").replace("solve by Cholesky",
          "use --solver cholesky"));
    }
    boolean fits = InProcessPredict.bytes(n, m, settings, computeCov) <= budget;
    return solver == Solver.CG || (solver == Solver.AUTO && !fits && unable == null) ? cg : null;
  }

  /** The default {@code --max-memory}: half the physical memory (the JVM's heap and the OS need the rest). */
  static long defaultMemory() {
    java.lang.management.OperatingSystemMXBean os = java.lang.management.ManagementFactory.getOperatingSystemMXBean();
    long physical = os instanceof com.sun.management.OperatingSystemMXBean sun ? sun.getTotalMemorySize() : 0;
    return physical > 0 ? physical / 2 : Runtime.getRuntime().maxMemory();
  }

  /** A number of bytes: digits with an optional suffix k, m, g or t (powers of 1024), b or ib after it allowed. */
  static long bytes(String option, String value) {
    java.util.regex.Matcher match = java.util.regex.Pattern.compile("(\\d+(?:\\.\\d+)?)\\s*([kmgt]?)(?:i?b)?")
        .matcher(value.trim().toLowerCase(Locale.ROOT));
    if (!match.matches()) {
      throw new UsageException(option + " must be a number of bytes, with a suffix k, m, g or t if you like "
          + "(8g), got " + value);
    }
    int power = "kmgt".indexOf(match.group(2)) + 1;
    double bytes = Double.parseDouble(match.group(1)) * Math.pow(1024, match.group(2).isEmpty() ? 0 : power);
    if (!(bytes >= 1) || bytes > Long.MAX_VALUE) {
      throw new UsageException(option + " must be at least 1 byte, got " + value);
    }
    return (long) bytes;
  }

  /** The times of {@code --t}: comma-separated numbers or inf. */
  static double[] times(String list) {
    String[] parts = list.split(",", -1);
    double[] times = new double[parts.length];
    for (int i = 0; i < parts.length; i++) {
      String value = parts[i].trim().toLowerCase(Locale.ROOT);
      if (value.equals("inf") || value.equals("infinity")) {
        times[i] = Double.POSITIVE_INFINITY;
        continue;
      }
      try {
        times[i] = Double.parseDouble(parts[i].trim());
      } catch (NumberFormatException e) {
        throw new UsageException("--t must be comma-separated numbers or inf, got \"" + parts[i].trim() + "\"");
      }
      if (!(times[i] >= 0)) {
        throw new UsageException("--t must be non-negative numbers or inf, got " + parts[i].trim());
      }
    }
    return times;
  }

  private static void print(PrintWriter w, Path meanFile, Path covFile, int times) throws IOException {
    NpyArray mean = Npy.read(meanFile);
    w.println("wrote " + meanFile + " " + Ntk.describe(meanFile));
    NpyArray cov = null;
    if (covFile != null) {
      cov = Npy.read(covFile);
      w.println("wrote " + covFile + " " + Ntk.describe(covFile));
    }
    if (times > 1) {
      w.println("  (" + times + " times: the table shows the last)");
      int perMean = mean.data().length / times;
      long[] meanShape = java.util.Arrays.copyOfRange(mean.shape(), 1, mean.shape().length);
      mean = new NpyArray(meanShape, mean.dtype(),
          java.util.Arrays.copyOfRange(mean.data(), perMean * (times - 1), perMean * times));
      if (cov != null) {
        int perCov = cov.data().length / times;
        cov = new NpyArray(new long[] {cov.shape()[1], cov.shape()[2]}, cov.dtype(),
            java.util.Arrays.copyOfRange(cov.data(), perCov * (times - 1), perCov * times));
      }
    }
    int m = (int) mean.shape()[0];
    int k = mean.data().length / m;
    int shown = Math.min(m, 20);
    StringBuilder header = new StringBuilder("    i");
    for (int j = 0; j < k; j++) {
      header.append(k == 1 ? "  mean" : "  mean[" + j + "]");
    }
    w.println(header.append(cov == null ? "" : "  variance"));
    for (int i = 0; i < shown; i++) {
      StringBuilder line = new StringBuilder(String.format(Locale.ROOT, "%5d", i));
      for (int j = 0; j < k; j++) {
        line.append(String.format(Locale.ROOT, "  %.6g", mean.data()[i * k + j]));
      }
      if (cov != null) {
        line.append(String.format(Locale.ROOT, "  %.6g", cov.data()[i * m + i]));
      }
      w.println(line);
    }
    if (shown < m) {
      w.println("  ... (" + (m - shown) + " more test points in " + meanFile + ")");
    }
  }
}
