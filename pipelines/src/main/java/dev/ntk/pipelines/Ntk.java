package dev.ntk.pipelines;

import dev.ntk.io.Npy;
import dev.ntk.io.NpyDType;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.ModelException;
import dev.ntk.kernels.engine.Backend;
import dev.ntk.kernels.predict.ConjugateGradients;
import dev.ntk.kernels.predict.GpPosterior;
import dev.ntk.kernels.predict.GradientDescent;
import dev.ntk.runners.Runners;
import dev.ntk.transforms.NonFiniteKernelException;
import dev.ntk.transforms.ParamsFileException;
import java.io.IOException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code ntk} command line ({@code bin/ntk}), as {@code docs/MODEL_SPEC.md} specifies it:
 * {@code ntk kernel}, {@code ntk predict}, {@code ntk mc} and {@code ntk tiles}.
 *
 * <p>Inputs and {@code --out} are checked before anything runs; a usage or input error, an I/O
 * failure, a non-finite kernel or a heap too small prints one line on stderr and exits with 2, an internal failure
 * exits with 1; stack traces only with {@code --verbose}. Outputs appear all or nothing ({@link
 * Outputs}); a failed run keeps the tiles it computed.
 */
@Command(name = "ntk", mixinStandardHelpOptions = true, version = "ntk 0.1.0",
    description = "Kernels and predictions of infinite-width neural networks on Apache Beam.")
public final class Ntk implements Runnable {
  /**
   * The subcommands, in the order of {@code ntk --help}. A run registers only the one it names (see
   * {@link #commandLine}), each of the others being reflection over its options picocli would do
   * for nothing.
   */
  private static final List<Class<?>> COMMANDS = List.of(KernelCommand.class, PredictCommand.class, LrCommand.class,
      McCommand.class, TilesCommand.class, EmpiricalCommand.class, InitCommand.class, TrainCommand.class);

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
    if (args.length > 0 && COMPUTING.contains(args[0])) {
      preload(!backendNamed(args));
    }
    CommandLine cli = commandLine(args);
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

  /**
   * The command line for {@code args}: with the subcommand that {@code args[0]} names alone, else
   * (help, a misspelt or missing command) with all of them.
   */
  private static CommandLine commandLine(String[] args) {
    CommandLine cli = new CommandLine(new Ntk());
    List<Class<?>> named = COMMANDS.stream()
        .filter(c -> args.length > 0 && c.getAnnotation(Command.class).name().equals(args[0])).toList();
    for (Class<?> c : named.isEmpty() ? COMMANDS : named) {
      cli.addSubcommand(c);
    }
    return cli;
  }

  /** The commands that read a model and compute: {@link #preload} runs for them. */
  private static final java.util.Set<String> COMPUTING = java.util.Set.of("kernel", "predict", "mc", "lr", "tiles",
      "empirical", "train");

  /**
   * Starts, on a daemon thread, the set-up that a computing command needs later and that depends on
   * nothing of the command line: the JSON reader of model files ({@link dev.ntk.kernels.ModelSpec#warmUp}),
   * the logging binding (whose first use scans every jar of the class path, about 200 on
   * {@code bin/ntk}'s, opening each), and, unless {@code --backend} names one, the probe for a CUDA
   * device. In a new JVM each is class loading and initialization of its own library, which the
   * main thread would otherwise do after building the command line while a core idles (see
   * {@code bench/RESULTS.md}, "Convolutions"). The main thread waits for whatever it reaches
   * before this thread finished it (the JVM initializes a class once); a failure here is left for
   * the main thread to meet and report.
   */
  private static void preload(boolean probe) {
    Thread t = new Thread(() -> {
      try {
        dev.ntk.kernels.ModelSpec.warmUp();
        org.slf4j.LoggerFactory.getLogger(Ntk.class);
        if (probe) {
          Backend.AUTO.resolve();
        }
      } catch (RuntimeException | LinkageError e) {
        // the command reaches the same code and reports what went wrong
      }
    }, "ntk-preload");
    t.setDaemon(true);
    t.start();
  }

  /** Whether {@code args} name a backend other than {@code auto} (then no CUDA probe is preloaded). */
  private static boolean backendNamed(String[] args) {
    for (int i = 0; i < args.length; i++) {
      String value = args[i].startsWith("--backend=") ? args[i].substring("--backend=".length())
          : args[i].equals("--backend") && i + 1 < args.length ? args[i + 1] : null;
      if (value != null && !value.equalsIgnoreCase("auto")) {
        return true;
      }
    }
    return false;
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
   * One line for a failure: exit 2 for what a user can cause or fix (bad input, a parameters file
   * that does not fit the model, an I/O failure with its path and reason, a non-finite kernel, a
   * heap too small for the run), 1 for anything else. The stack trace follows only with {@code
   * --verbose}.
   */
  static int handle(Throwable e, PrintStream err, boolean verbose) {
    String message = null;
    int status = 2;
    for (Throwable t = e; t != null && message == null; t = t.getCause()) {
      if (t instanceof GpPosterior.NotPositiveDefiniteException) {
        message = t.getMessage() + " (option --diag-reg)";
      } else if (t instanceof ConjugateGradients.NotConvergedException) {
        message = t.getMessage().replace("cg_max_iter", "--cg-max-iter").replace("cg_tol", "--cg-tol")
            .replace("cg_rank", "--cg-rank").replace("diag_reg", "--diag-reg")
            .replace("solve by Cholesky", "--solver cholesky");
      } else if (t instanceof GradientDescent.LimitException) {
        message = t.getMessage().replace("max_steps", "--max-steps");
      } else if (t instanceof UsageException || t instanceof ModelException
          || t instanceof NonFiniteKernelException || t instanceof ParamsFileException) {
        message = t.getMessage();
      } else if (t instanceof IOException io) {
        message = "I/O error: " + Outputs.reason(io);
      } else if (t instanceof OutOfMemoryError) {
        message = "out of memory: the JVM's heap is too small for this run (kernel assembly "
            + "holds a band of rows, prediction its train kernel); give it more, e.g. "
            + "JAVA_OPTS=-Xmx16g bin/ntk ...; the tiles computed so far are kept for the rerun";
        status = 2; // the user can fix it: not an internal error
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

  /** An .npy file's shape and dtype as a command prints them: {@code (3, 4) float64}. */
  static String describe(Path npy) throws IOException {
    var h = Npy.readHeader(npy);
    StringBuilder s = new StringBuilder("(");
    for (int i = 0; i < h.shape().length; i++) {
      s.append(i == 0 ? "" : ", ").append(h.shape()[i]);
    }
    return s.append(h.shape().length == 1 ? ",)" : ")").append(' ').append(h.dtype().typeName()).toString();
  }
}
