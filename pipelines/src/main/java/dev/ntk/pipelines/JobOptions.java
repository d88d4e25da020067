package dev.ntk.pipelines;

import dev.ntk.io.NpyDType;
import dev.ntk.runners.Runners;
import dev.ntk.transforms.NtkPipelineOptions;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.beam.sdk.options.PipelineOptions;
import picocli.CommandLine.Option;

/** Where and in what precision a job runs: every command that computes takes these. */
class JobOptions {
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
      description = "Worker threads (Direct) or task slots (Flink); default: the number of cores "
          + "(kernel and predict on the DirectRunner: 1, each tile on every core).")
  Integer parallelism;

  /** Beam and runner options ({@code --name=value}), given to {@code fromArgs}: see {@link JobCommand}. */
  List<String> beamArgs = new ArrayList<>();

  /**
   * The job's pipeline options: the runner's, the Beam options given, and this command's own flags
   * as {@link NtkPipelineOptions} ({@code --dtype} here; {@link CommonOptions} adds the tile flags).
   */
  PipelineOptions pipelineOptions() {
    int p = parallelism == null ? defaultParallelism() : parallelism;
    if (p < 1) {
      throw new UsageException("--parallelism must be at least 1, got " + p);
    }
    for (String arg : beamArgs) {
      String name = arg.replaceFirst("^--", "").split("=", 2)[0];
      String own = OWN_FLAGS.get(name);
      if (own != null) {
        throw new UsageException(arg + ": the command line takes this setting as its own flag " + own
            + " (see --help)");
      }
    }
    shareCores(p);
    try {
      PipelineOptions options = Runners.options(runner == null ? Runners.Kind.DIRECT : runner, flinkMaster, p,
          beamArgs);
      options.as(NtkPipelineOptions.class).setDtype(dtype.typeName());
      return options;
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

  /** The {@link NtkPipelineOptions} flags and the command line's own flag for each. */
  private static final Map<String, String> OWN_FLAGS = Map.of("tileRows", "--tile", "maxTileBytes",
      "--max-tile-bytes", "dtype", "--dtype", "backend", "--backend", "tileDirectory",
      "--out (its tiles are under OUT/tiles)");

  /** The workers of a job that names no {@code --parallelism}: the number of cores. */
  int defaultParallelism() {
    return Runtime.getRuntime().availableProcessors();
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
