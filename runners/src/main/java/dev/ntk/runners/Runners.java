package dev.ntk.runners;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.apache.beam.runners.direct.DirectOptions;
import org.apache.beam.runners.flink.FlinkPipelineOptions;
import org.apache.beam.sdk.options.PipelineOptions;
import org.apache.beam.sdk.options.PipelineOptionsFactory;

/**
 * Pipeline options for the runners this project supports, with its defaults: the embedded {@code
 * DirectRunner}, and the {@code FlinkRunner} on an embedded mini-cluster ({@code [local]}) or a
 * cluster ({@code host:port}).
 *
 * <p>Flink and Arrow reflect into JDK internals: on Java 17 the JVM needs {@link #JVM_FLAGS}
 * ({@code bin/ntk} and the test configuration pass them).
 */
public final class Runners {
  /** The {@code --add-opens} flags Flink and Arrow need on Java 17. */
  public static final String JVM_FLAGS = "--add-opens=java.base/java.nio=ALL-UNNAMED "
      + "--add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.util=ALL-UNNAMED";

  /** The runners a pipeline can be given to. */
  public enum Kind {
    DIRECT("DirectRunner"),
    FLINK("FlinkRunner"),
    /** Google Cloud Dataflow: needs the {@code dataflow} Maven profile's runner on the class path. */
    DATAFLOW("DataflowRunner");

    private final String runnerName;

    Kind(String runnerName) {
      this.runnerName = runnerName;
    }

    public String runnerName() {
      return runnerName;
    }

    /** Parses {@code DirectRunner}, {@code FlinkRunner} (or {@code direct}, {@code flink}). */
    public static Kind of(String name) {
      String n = name.trim().toLowerCase(Locale.ROOT);
      for (Kind k : values()) {
        if (k.runnerName.toLowerCase(Locale.ROOT).equals(n) || k.name().toLowerCase(Locale.ROOT).equals(n)) {
          return k;
        }
      }
      throw new IllegalArgumentException("unknown runner \"" + name
          + "\": expected DirectRunner, FlinkRunner or DataflowRunner");
    }
  }

  private Runners() {}

  /**
   * Options for {@code kind}. {@code parallelism} is the number of worker threads (Direct) or task
   * slots (Flink); {@code flinkMaster} is {@code [local]} for an embedded cluster.
   */
  public static PipelineOptions options(Kind kind, String flinkMaster, int parallelism) {
    return options(kind, flinkMaster, parallelism, List.of());
  }

  /**
   * Options for {@code kind} with this project's defaults, then {@code args}: any Beam or runner
   * flag ({@code --name=value}, as {@link PipelineOptionsFactory#fromArgs} reads them, e.g. {@code
   * --checkpointingInterval=60000} for Flink, {@code --project=p --region=r --tempLocation=gs://b/t}
   * for Dataflow). A flag in {@code args} replaces the default of the same name.
   *
   * @throws IllegalArgumentException naming an unknown or malformed flag
   */
  public static PipelineOptions options(Kind kind, String flinkMaster, int parallelism,
      List<String> args) {
    if (parallelism < 1) {
      throw new IllegalArgumentException("parallelism must be at least 1, got " + parallelism);
    }
    Map<String, String> defaults = new LinkedHashMap<>();
    defaults.put("runner", kind.runnerName());
    Class<? extends PipelineOptions> type = PipelineOptions.class;
    switch (kind) {
      case DIRECT -> {
        type = DirectOptions.class;
        defaults.put("targetParallelism", Integer.toString(parallelism));
        defaults.put("blockOnRun", "true");
      }
      case FLINK -> {
        type = FlinkPipelineOptions.class;
        defaults.put("flinkMaster", flinkMaster == null || flinkMaster.isBlank() ? "[local]" : flinkMaster);
        defaults.put("parallelism", Integer.toString(parallelism));
        defaults.put("maxParallelism", Integer.toString(parallelism));
        defaults.put("attachedMode", "true");
      }
      case DATAFLOW -> defaults.put("numWorkers", Integer.toString(parallelism));
      default -> throw new IllegalStateException(kind.toString());
    }
    List<String> all = new ArrayList<>();
    for (String arg : args) {
      if (!arg.startsWith("--")) {
        throw new IllegalArgumentException("unexpected argument \"" + arg
            + "\": Beam and runner options are --name=value");
      }
      defaults.remove(arg.substring(2).split("=", 2)[0]);
    }
    defaults.forEach((name, value) -> all.add("--" + name + "=" + value));
    all.addAll(args);
    return PipelineOptionsFactory.fromArgs(all.toArray(String[]::new)).as(type);
  }

  /**
   * The workers of a job on {@code options} that run on other machines: a {@code FlinkRunner}'s
   * parallelism when its master is a cluster ({@code host:port}); 0 for a job that runs in this JVM
   * (the DirectRunner, Flink's {@code [local]}, {@code [auto]} or {@code [collection]}) or whose
   * parallelism is left to the cluster.
   */
  public static int remoteWorkers(PipelineOptions options) {
    if (!options.getRunner().getSimpleName().equals(Kind.FLINK.runnerName())) {
      return 0;
    }
    FlinkPipelineOptions flink = options.as(FlinkPipelineOptions.class);
    String master = flink.getFlinkMaster() == null ? "[local]" : flink.getFlinkMaster().trim();
    boolean remote = !master.isEmpty() && !master.startsWith("[");
    return remote && flink.getParallelism() != null ? Math.max(0, flink.getParallelism()) : 0;
  }
}
