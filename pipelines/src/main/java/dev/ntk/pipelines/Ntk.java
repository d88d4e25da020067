package dev.ntk.pipelines;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Plan;
import dev.ntk.kernels.Layer;
import dev.ntk.kernels.ModelException;
import dev.ntk.kernels.engine.Backend;
import dev.ntk.kernels.Tensors;
import dev.ntk.kernels.predict.GpPosterior;
import dev.ntk.kernels.predict.GradientDescent;
import dev.ntk.kernels.predict.Loss;
import dev.ntk.kernels.predict.Predict;
import dev.ntk.runners.Runners;
import dev.ntk.transforms.NonFiniteKernelException;
import dev.ntk.transforms.PredictSettings;
import java.io.IOException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.OptionalLong;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import org.apache.beam.sdk.options.PipelineOptions;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * The {@code ntk} command line ({@code bin/ntk}), as {@code docs/MODEL_SPEC.md} specifies it:
 * {@code ntk kernel}, {@code ntk predict}, {@code ntk mc} and {@code ntk tiles}.
 *
 * <p>Inputs and {@code --out} are checked before anything runs; a usage or input error, an I/O
 * failure or a non-finite kernel prints one line on stderr and exits with 2, an internal failure
 * exits with 1; stack traces only with {@code --verbose}. Outputs appear all or nothing ({@link
 * Outputs}); a failed run keeps the tiles it computed.
 */
@Command(name = "ntk", mixinStandardHelpOptions = true, version = "ntk 0.1.0",
    description = "Kernels and predictions of infinite-width neural networks on Apache Beam.",
    subcommands = {Ntk.KernelCommand.class, Ntk.PredictCommand.class, Ntk.LrCommand.class,
        McCommand.class, TilesCommand.class})
public final class Ntk implements Runnable {
  /** The runner name of a job computed without a pipeline. */
  static final String IN_PROCESS = "in-process";

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    throw new CommandLine.ParameterException(spec.commandLine(), "missing command: kernel, predict, mc or tiles");
  }

  public static void main(String[] args) {
    System.exit(run(args, System.out, System.err));
  }

  /** Runs the command line with {@code args}, returning its exit status. */
  public static int run(String[] args, PrintStream out, PrintStream err) {
    boolean verbose = Arrays.asList(args).contains("--verbose");
    CommandLine cli = new CommandLine(new Ntk());
    cli.setOut(new PrintWriter(out, true));
    cli.setErr(new PrintWriter(err, true));
    cli.setCaseInsensitiveEnumValuesAllowed(true);
    cli.registerConverter(NpyDType.class, converter(NpyDType::fromName));
    cli.registerConverter(Runners.Kind.class, converter(Runners.Kind::of));
    cli.registerConverter(Get.class, converter(Get::of));
    cli.registerConverter(Backend.class, converter(Backend::of));
    cli.setParameterExceptionHandler((e, arguments) -> {
      err.println("ntk: " + e.getMessage());
      err.println("Run 'ntk " + commandPath(e.getCommandLine()) + "--help' for usage.");
      return 2;
    });
    cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> handle(e, err, verbose));
    progress = Progress.on(err);
    try {
      return cli.execute(args);
    } catch (OutOfMemoryError e) {
      return handle(e, err, verbose);
    }
  }

  /** Where the running command shows its progress. */
  static Progress progress = Progress.NONE;

  /** A converter whose {@code IllegalArgumentException} message is the whole story. */
  private static <T> CommandLine.ITypeConverter<T> converter(java.util.function.Function<String, T> parse) {
    return value -> {
      try {
        return parse.apply(value);
      } catch (IllegalArgumentException e) {
        throw new CommandLine.TypeConversionException(e.getMessage());
      }
    };
  }

  private static String commandPath(CommandLine cli) {
    String name = cli.getCommandSpec().qualifiedName(" ");
    return name.startsWith("ntk") ? name.substring(3).trim() + (name.length() > 3 ? " " : "") : "";
  }

  /**
   * One line for a failure: exit 2 for what a user can cause or fix (bad input, an I/O failure
   * with its path and reason, a non-finite kernel), 1 for anything else. The stack trace follows
   * only with {@code --verbose}.
   */
  static int handle(Throwable e, PrintStream err, boolean verbose) {
    String message = null;
    int status = 2;
    for (Throwable t = e; t != null && message == null; t = t.getCause()) {
      if (t instanceof GpPosterior.NotPositiveDefiniteException) {
        message = t.getMessage() + " (option --diag-reg)";
      } else if (t instanceof GradientDescent.LimitException) {
        message = t.getMessage().replace("max_steps", "--max-steps");
      } else if (t instanceof UsageException || t instanceof ModelException
          || t instanceof NonFiniteKernelException) {
        message = t.getMessage();
      } else if (t instanceof IOException io) {
        message = "I/O error: " + Outputs.reason(io);
      } else if (t instanceof OutOfMemoryError) {
        message = "out of memory: the JVM's heap is too small for this run (kernel assembly "
            + "holds a band of rows, prediction its train kernel); give it more, e.g. "
            + "JAVA_OPTS=-Xmx16g bin/ntk ...; the tiles computed so far are kept for the rerun";
        status = 1;
      }
    }
    if (message == null) {
      message = "internal error: " + e + (verbose ? "" : " (run with --verbose for the stack trace)");
      status = 1;
    }
    err.println("ntk: " + message);
    if (verbose) {
      e.printStackTrace(err);
    }
    return status;
  }

  /** Where and in what precision a job runs: every command that computes takes these. */
  static class JobOptions {
    @Option(names = "--verbose", description = "Print the stack trace of a failure, and where a run spent its time.")
    boolean verbose;

    @Option(names = "--dtype", paramLabel = "DTYPE", defaultValue = "float64",
        description = "float64 (default) or float32.")
    NpyDType dtype;

    @Option(names = "--runner", paramLabel = "RUNNER",
        description = "DirectRunner (default) or FlinkRunner. A small job runs in-process unless a "
            + "runner, --parallelism or a Beam option is named.")
    Runners.Kind runner;

    @Option(names = "--flink-master", paramLabel = "MASTER", defaultValue = "[local]",
        description = "Flink master: [local] (default, an embedded mini-cluster) or host:port.")
    String flinkMaster;

    @Option(names = "--parallelism", paramLabel = "P",
        description = "Worker threads (Direct) or task slots (Flink); default: the number of cores.")
    Integer parallelism;

    /** Beam and runner options ({@code --name=value}), given to {@code fromArgs}: see {@link BeamArgs}. */
    List<String> beamArgs = new ArrayList<>();

    PipelineOptions pipelineOptions() {
      int p = parallelism == null ? Runtime.getRuntime().availableProcessors() : parallelism;
      if (p < 1) {
        throw new UsageException("--parallelism must be at least 1, got " + p);
      }
      shareCores(p);
      try {
        return Runners.options(runner == null ? Runners.Kind.DIRECT : runner, flinkMaster, p, beamArgs);
      } catch (IllegalArgumentException e) {
        // Jackson's messages add a second line ("at [Source: UNKNOWN; ...]") that names nothing useful
        String message = e.getMessage() == null ? e.toString() : e.getMessage().lines().findFirst().orElse("");
        throw new UsageException("Beam options " + beamArgs + ": " + message.strip());
      }
    }

    /**
     * Gives each of the {@code p} workers of this JVM its share of the cores for TensorFlow's
     * intra-op threads (unless {@value #INTRA_OP} is set): the workers, not the ops, are the unit
     * of parallelism, and oversubscribed cores slow both down. Must run before TensorFlow loads.
     */
    private static void shareCores(int p) {
      if (System.getProperty(INTRA_OP) == null) {
        int cores = Runtime.getRuntime().availableProcessors();
        System.setProperty(INTRA_OP, Integer.toString(Math.max(1, cores / p)));
      }
    }

    static final String INTRA_OP = "ai.djl.tensorflow.num_intraop_threads";

    /**
     * The workers of a job that runs on other machines (a Flink cluster at host:port), 0 for one
     * that runs in this JVM (the DirectRunner, Flink's [local] mini-cluster).
     */
    int remoteWorkers() {
      String m = flinkMaster == null ? "[local]" : flinkMaster.trim();
      boolean remote = runner == Runners.Kind.FLINK && !m.isEmpty() && !m.startsWith("[");
      return !remote ? 0 : parallelism == null ? Runtime.getRuntime().availableProcessors() : parallelism;
    }

    /** Whether no runner, parallelism or Beam option was named. */
    boolean runnerUnasked() {
      return runner == null && parallelism == null && beamArgs.isEmpty();
    }

    /** Checks the runner options; a problem is a {@link UsageException}. */
    void check() {
      if (parallelism != null && parallelism < 1) {
        throw new UsageException("--parallelism must be at least 1, got " + parallelism);
      }
      if (runner == Runners.Kind.FLINK) {
        checkFlinkMaster(flinkMaster);
      }
      if (runner == Runners.Kind.DATAFLOW) {
        throw new UsageException("--runner DataflowRunner: the command line reads and writes local "
            + "files, which Dataflow's workers cannot see; run dev.ntk.pipelines.KernelPipeline with "
            + "gs:// paths instead (README, \"On Dataflow\")");
      }
    }

    /** A Flink cluster's REST address must accept a connection within a few seconds. */
    static void checkFlinkMaster(String master) {
      String m = master == null ? "[local]" : master.trim();
      if (m.isEmpty() || m.equals("[local]") || m.equals("[auto]") || m.equals("[collection]")) {
        return;
      }
      String address = m.replaceFirst("^https?://", "").replaceFirst("/.*$", "");
      int colon = address.lastIndexOf(':');
      String host = colon < 0 ? address : address.substring(0, colon);
      int port;
      try {
        port = colon < 0 ? 8081 : Integer.parseInt(address.substring(colon + 1));
      } catch (NumberFormatException e) {
        throw new UsageException("--flink-master " + master + ": expected [local] or host:port");
      }
      try (Socket socket = new Socket()) {
        socket.connect(new InetSocketAddress(host, port), 3000);
      } catch (IOException | IllegalArgumentException e) {
        throw new UsageException("--flink-master " + master + ": cannot connect to " + host + ":"
            + port + " (" + (e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage())
            + "); is the Flink JobManager running there?");
      }
    }
  }

  /** Options every command that computes kernels takes. */
  static final class CommonOptions extends JobOptions {
    @Option(names = "--backend", paramLabel = "BACKEND", defaultValue = "auto",
        description = "Where kernels are computed: auto (default: cuda when a CUDA device is visible, "
            + "else cpu), cpu (vectorised Java loops), tensorflow (TensorFlow ops) or cuda (kernels generated "
            + "as CUDA C for the GPU).")
    Backend backend;

    @Option(names = "--tile", paramLabel = "ROWS|auto",
        description = "Rows of x1 and x2 per tile; any value works with any N. kernel: auto (default), "
            + "tiles as large as --max-tile-bytes and the model's work per entry allow; predict: "
            + DEFAULT_TILE + " (default; auto means " + DEFAULT_TILE + ").")
    String tileOption;

    static final int DEFAULT_TILE = 256;

    @Option(names = "--max-tile-bytes", paramLabel = "BYTES", defaultValue = "1073741824",
        description = "Memory one tile may take while it is computed (default 1 GiB, 1073741824); "
            + "--tile is reduced until a tile fits. Without a runner, a job whose kernels each fit "
            + "one such tile runs in-process.")
    long maxTileBytes;

    /** Whether the tile size is {@code auto} (given, or not given). */
    boolean autoTile() {
      return tileOption == null || tileOption.trim().equalsIgnoreCase("auto");
    }

    /** The rows per tile: {@code --tile N}, or {@value #DEFAULT_TILE} for {@code auto}. */
    int tile() {
      if (autoTile()) {
        return DEFAULT_TILE;
      }
      try {
        return Integer.parseInt(tileOption.trim());
      } catch (NumberFormatException e) {
        throw new UsageException("--tile must be a number of rows or auto, got " + tileOption);
      }
    }

    /**
     * Whether no runner, parallelism, Beam option or tile size (other than {@code auto}) was
     * named: then a job whose kernels fit one tile runs in-process.
     */
    boolean pipelineUnasked() {
      return runnerUnasked() && autoTile();
    }

    @Override
    void check() {
      if (tile() < 1) {
        throw new UsageException("--tile must be at least 1, got " + tile());
      }
      if (maxTileBytes < 1) {
        throw new UsageException("--max-tile-bytes must be positive, got " + maxTileBytes);
      }
      if (backend == Backend.CUDA && !dev.ntk.kernels.cuda.CudaDevice.visible()) {
        throw new UsageException("--backend cuda: " + dev.ntk.kernels.cuda.CudaDevice.unavailable());
      }
      super.check();
    }
  }

  /** The model and the inputs of a kernel between two sets of rows. */
  static final class KernelInputs {
    @Option(names = "--model", required = true, paramLabel = "M.json", description = "The model file.")
    Path model;

    @Option(names = "--x1", required = true, paramLabel = "X1.npy", description = "Inputs, batch first.")
    Path x1;

    @Option(names = "--x2", paramLabel = "X2.npy", description = "Second inputs (default: x1).")
    Path x2;

    /** The inputs, read whole and checked against each other and {@code layer}. */
    Inputs read(Layer layer) {
      NpyArray a = InputChecks.inputs("--x1", x1);
      NpyArray b = x2 == null ? null : InputChecks.inputs("--x2", x2);
      InputChecks.fit(model, layer, "--x1", x1, a, "--x2", x2, b);
      return new Inputs(a, b);
    }

    /** {@code x2} is {@code null} for x1 with itself. */
    record Inputs(NpyArray x1, NpyArray x2) {
      long n1() {
        return x1.shape()[0];
      }

      long n2() {
        return x2 == null ? n1() : x2.shape()[0];
      }
    }
  }

  /**
   * Any option the command does not know, kept for Beam ({@code --name=value}: runner and Beam
   * options, checked by {@code PipelineOptionsFactory.fromArgs}). picocli takes {@code @Unmatched}
   * from the command, not from a mixin.
   */
  abstract static class BeamArgs {
    @CommandLine.Unmatched
    List<String> unmatched = new ArrayList<>();
  }

  @Command(name = "kernel", mixinStandardHelpOptions = true,
      description = "Writes DIR/nngp.npy and DIR/ntk.npy (N1, N2) and the Arrow tiles under DIR/tiles/; "
          + "other --name=value options go to Beam and the runner.")
  static final class KernelCommand extends BeamArgs implements Callable<Integer> {
    @Mixin CommonOptions options;
    @Mixin KernelInputs inputs;
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Option(names = "--get", split = ",", paramLabel = "KERNELS", defaultValue = "nngp,ntk",
        description = "Kernels to write: nngp, ntk or both (default).")
    List<Get> get;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output directory.")
    Path out;

    @Override
    public Integer call() throws IOException {
      options.beamArgs = unmatched;
      options.check();
      long maxTileBytes = options.maxTileBytes;
      long started = System.nanoTime();
      // A pipeline's options (Beam scans its registrars: about a second of class loading) are
      // built while the model and inputs are read, when a pipeline is sure to run.
      java.util.concurrent.CompletableFuture<PipelineOptions> early = options.pipelineUnasked() ? null
          : java.util.concurrent.CompletableFuture.supplyAsync(options::pipelineOptions);
      Layer layer = InputChecks.model(inputs.model);
      KernelInputs.Inputs x = inputs.read(layer);
      PrintWriter log = options.verbose ? spec.commandLine().getErr() : null;
      if (log != null) {
        log.printf(Locale.ROOT, "ntk: JVM start to command %.2f s; model and inputs read and checked in %.2f s%n",
            (System.currentTimeMillis() - java.lang.management.ManagementFactory.getRuntimeMXBean().getStartTime())
                / 1e3 - (System.nanoTime() - started) / 1e9, (System.nanoTime() - started) / 1e9);
      }
      List<Get> kernels = List.copyOf(new LinkedHashSet<>(get));
      long[] shape = x.x1().shape();
      Plan plan = layer.kernelFn().plan(new Shape(java.util.Arrays.copyOfRange(shape, 1,
          shape.length)), java.util.EnumSet.copyOf(kernels));
      Backend backend = options.backend.resolve();
      boolean inProcess = options.pipelineUnasked()
          && InProcessKernel.fits(plan, x.n1(), x.n2(), options.dtype, backend, maxTileBytes);
      int tile = options.autoTile()
          ? spread(plan.autoTile(x.n1(), x.n2(), maxTileBytes, options.dtype.bytes(), backend), x,
              options.remoteWorkers())
          : plan.largestTile(options.tile(), maxTileBytes, options.dtype.bytes(), backend);
      if (log != null && options.autoTile() && !inProcess) {
        log.printf(Locale.ROOT, "ntk: --tile auto: tiles of %d rows (%.2g flops per entry, --max-tile-bytes %d)%n",
            tile, plan.pairFlops(), maxTileBytes);
      }
      if (!options.autoTile() && tile < options.tile() && !inProcess) {
        spec.commandLine().getErr().printf("ntk: tiles of %d rows (not %d) fit --max-tile-bytes %d%n", tile,
            options.tile(), maxTileBytes);
      }
      long bytes = options.dtype.bytes() * x.n1() * x.n2() * (kernels.size() + (x.x2() == null ? 1 : 2));
      long optionsStarted = System.nanoTime();
      PipelineOptions pipelineOptions = inProcess ? null : early != null ? join(early) : options.pipelineOptions();
      if (log != null && !inProcess) {
        log.printf(Locale.ROOT, "ntk: pipeline options ready %.2f s later%n", (System.nanoTime() - optionsStarted) / 1e9);
      }
      List<String> results = kernels.stream().map(g -> g.key() + ".npy").toList();
      List<String> stale = Stream.of(Get.values()).map(g -> g.key() + ".npy").toList();
      JobReport report;
      try (Outputs outputs = Outputs.open(out, "kernel", bytes)) {
        KernelJob job = new KernelJob(inputs.model, inputs.x1, inputs.x2, kernels, tile,
            options.dtype, outputs.directory()).withBackend(options.backend);
        report = outputs.produce("kernel", stale, results, staging -> inProcess
            ? new JobReport(IN_PROCESS, new InProcessKernel(layer, x.x1(), x.x2(), kernels, options.dtype, backend)
                .run(staging, log), -1, -1, -1)
            : job.run(pipelineOptions, staging, progress));
      }
      if (log != null && report.tileTimes() != null) {
        log.println(report.tileTimes());
      }
      if (log != null) {
        log.printf(Locale.ROOT, "ntk: command done %.2f s after it started%n", (System.nanoTime() - started) / 1e9);
      }
      PrintWriter w = spec.commandLine().getOut();
      w.println(inProcess ? String.format(Locale.ROOT, "in-process (the kernels fit one tile of "
          + "--max-tile-bytes; --runner DirectRunner runs the pipeline): %.1f s", report.seconds()) : report);
      for (String f : results) {
        w.println("wrote " + out.resolve(f) + " " + describe(out.resolve(f)));
      }
      return 0;
    }
  }

  /** The value of {@code future}; its failure thrown as it was thrown. */
  static <T> T join(java.util.concurrent.CompletableFuture<T> future) {
    try {
      return future.join();
    } catch (java.util.concurrent.CompletionException e) {
      if (e.getCause() instanceof RuntimeException r) {
        throw r;
      }
      if (e.getCause() instanceof Error err) {
        throw err;
      }
      throw e;
    }
  }

  /**
   * {@code --tile auto}'s rows, made smaller where the job's workers are other machines until there
   * are at least two tiles per worker: one large tile is fastest in one JVM (it runs on all its
   * cores), but a cluster must have tiles to spread.
   */
  static int spread(int rows, KernelInputs.Inputs x, int workers) {
    int r = rows;
    while (r > 1 && tiles(x, r) < 2L * workers) {
      r = (r + 1) / 2;
    }
    return r;
  }

  /** The tiles of rows {@code r}: on and above the diagonal for x1 with itself. */
  private static long tiles(KernelInputs.Inputs x, int r) {
    long b1 = (x.n1() + r - 1) / r;
    long b2 = (x.n2() + r - 1) / r;
    return x.x2() == null ? b1 * (b1 + 1) / 2 : b1 * b2;
  }

  @Command(name = "predict", mixinStandardHelpOptions = true,
      description = "Writes DIR/mean.npy (N_test, K) and with --compute-cov DIR/cov.npy (N_test, N_test).")
  static final class PredictCommand extends BeamArgs implements Callable<Integer> {
    @Mixin CommonOptions options;
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Option(names = "--model", required = true, paramLabel = "M.json", description = "The model file.")
    Path model;

    @Option(names = "--x-train", required = true, paramLabel = "X.npy", description = "Training inputs.")
    Path xTrain;

    @Option(names = "--y-train", required = true, paramLabel = "Y.npy", description = "Training targets (N,) or (N, K).")
    Path yTrain;

    @Option(names = "--x-test", required = true, paramLabel = "XT.npy", description = "Test inputs.")
    Path xTest;

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

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output directory.")
    Path out;

    @Override
    public Integer call() throws IOException {
      options.beamArgs = unmatched;
      options.check();
      double[] times = times(t);
      Layer layer = InputChecks.model(model);
      NpyArray train = InputChecks.inputs("--x-train", xTrain);
      NpyArray test = InputChecks.inputs("--x-test", xTest);
      InputChecks.fit(model, layer, "--x-train", xTrain, train, "--x-test", xTest, test);
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
      long bytes = options.dtype.bytes()
          * (n * n + m * n + times.length * (m * k + (computeCov ? 2 * m * m : 0)));
      Backend backend = options.backend.resolve();
      long[] perExample = Arrays.copyOfRange(train.shape(), 1, train.shape().length);
      boolean inProcess = options.pipelineUnasked() && InProcessPredict.fits(layer, perExample, n, m, settings,
          computeCov, options.dtype, backend, options.maxTileBytes);
      int tile = inProcess ? options.tile() : layer.kernelFn().plan(new Shape(perExample),
          InProcessPredict.kernels(settings, computeCov)).largestTile(options.tile(), options.maxTileBytes,
          options.dtype.bytes(), backend);
      if (tile < options.tile()) {
        spec.commandLine().getErr().printf("ntk: tiles of %d rows (not %d) fit --max-tile-bytes %d%n", tile,
            options.tile(), options.maxTileBytes);
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
      try (Outputs outputs = Outputs.open(out, "predict", bytes);
          Progress.Display integration = settings.mode() == PredictSettings.Mode.ODE
              ? progress.integration() : () -> {}) {
        PredictJob job = new PredictJob(model, xTrain, yTrain, xTest, settings, computeCov,
            tile, options.dtype, outputs.directory()).withBackend(options.backend);
        report = outputs.produce("predict", List.of("mean.npy", "cov.npy", "nll.npy"), results,
            staging -> inProcess
                ? new JobReport(IN_PROCESS, new InProcessPredict(layer, train, y, test, settings,
                    computeCov, options.dtype, backend).run(staging, log), -1, -1, -1)
                : job.run(pipelineOptions, staging, progress));
      }
      Path mean = out.resolve("mean.npy");
      Path cov = out.resolve("cov.npy");
      Path nllFile = out.resolve("nll.npy");
      spec.commandLine().getOut().println(inProcess ? String.format(Locale.ROOT, "in-process (the kernels "
          + "fit one tile of --max-tile-bytes each; --runner DirectRunner runs the pipeline): %.1f s",
          report.seconds()) : report);
      print(spec.commandLine().getOut(), mean, computeCov ? cov : null, times.length);
      if (nll) {
        spec.commandLine().getOut().println("wrote " + nllFile + " " + describe(nllFile) + ": "
            + Npy.read(nllFile).data()[0]);
      }
      return 0;
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
      w.println("wrote " + meanFile + " " + describe(meanFile));
      NpyArray cov = null;
      if (covFile != null) {
        cov = Npy.read(covFile);
        w.println("wrote " + covFile + " " + describe(covFile));
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

  @Command(name = "lr", mixinStandardHelpOptions = true,
      description = "Prints the largest learning rate for which gradient descent on MSE converges: "
          + "2 N K / (largest eigenvalue of the train NTK).")
  static final class LrCommand implements Callable<Integer> {
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Option(names = "--model", required = true, paramLabel = "M.json", description = "The model file.")
    Path model;

    @Option(names = "--x-train", required = true, paramLabel = "X.npy", description = "Training inputs.")
    Path xTrain;

    @Option(names = "--y-train", paramLabel = "Y.npy",
        description = "Training targets (N,) or (N, K), for K (default: K = 1).")
    Path yTrain;

    @Override
    public Integer call() throws IOException {
      Layer layer = InputChecks.model(model);
      NpyArray x = InputChecks.inputs("--x-train", xTrain);
      InputChecks.fit(model, layer, "--x-train", xTrain, x, null, null, null);
      int n = (int) x.shape()[0];
      int outputs = yTrain == null ? 1 : InputChecks.targets("--y-train", yTrain, n).data().length / n;
      double lr;
      try (NDManager m = Tensors.newManager()) {
        NDArray xs = Tensors.create(m, x.data(), new Shape(x.shape()), DataType.FLOAT64);
        NDArray ntk = layer.kernelFn().apply(xs).ntk();
        double[] values = Tensors.toDoubles(ntk);
        OptionalLong bad = Npy.firstNonFinite(values);
        if (bad.isPresent()) { // stops as kernel does, naming the entry and the layer
          throw InProcessKernel.nonFinite(layer, x, null, NpyDType.FLOAT64, "ntk", bad.getAsLong(),
              values[Math.toIntExact(bad.getAsLong())], n);
        }
        lr = Predict.maxLearningRate(ntk, outputs, 0.0);
      }
      spec.commandLine().getOut().println(lr);
      return 0;
    }
  }

  static String describe(Path npy) throws IOException {
    var h = Npy.readHeader(npy);
    StringBuilder s = new StringBuilder("(");
    for (int i = 0; i < h.shape().length; i++) {
      s.append(i == 0 ? "" : ", ").append(h.shape()[i]);
    }
    return s.append(h.shape().length == 1 ? ",)" : ")").append(' ').append(h.dtype().typeName()).toString();
  }
}
