package dev.ntk.runners;

import java.util.Locale;
import org.apache.beam.runners.direct.DirectOptions;
import org.apache.beam.runners.direct.DirectRunner;
import org.apache.beam.runners.flink.FlinkPipelineOptions;
import org.apache.beam.runners.flink.FlinkRunner;
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
    FLINK("FlinkRunner");

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
      throw new IllegalArgumentException("unknown runner \"" + name + "\": expected DirectRunner or FlinkRunner");
    }
  }

  private Runners() {}

  /**
   * Options for {@code kind}. {@code parallelism} is the number of worker threads (Direct) or task
   * slots (Flink); {@code flinkMaster} is {@code [local]} for an embedded cluster.
   */
  public static PipelineOptions options(Kind kind, String flinkMaster, int parallelism) {
    if (parallelism < 1) {
      throw new IllegalArgumentException("parallelism must be at least 1, got " + parallelism);
    }
    switch (kind) {
      case DIRECT -> {
        DirectOptions options = PipelineOptionsFactory.as(DirectOptions.class);
        options.setRunner(DirectRunner.class);
        options.setTargetParallelism(parallelism);
        options.setBlockOnRun(true);
        return options;
      }
      case FLINK -> {
        FlinkPipelineOptions options = PipelineOptionsFactory.as(FlinkPipelineOptions.class);
        options.setRunner(FlinkRunner.class);
        options.setFlinkMaster(flinkMaster == null || flinkMaster.isBlank() ? "[local]" : flinkMaster);
        options.setParallelism(parallelism);
        options.setMaxParallelism(Math.max(parallelism, 1));
        options.setAttachedMode(true);
        return options;
      }
      default -> throw new IllegalStateException(kind.toString());
    }
  }
}
