package dev.ntk.runners;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.apache.beam.runners.direct.DirectOptions;
import org.apache.beam.runners.direct.DirectRunner;
import org.apache.beam.runners.flink.FlinkPipelineOptions;
import org.apache.beam.runners.flink.FlinkRunner;
import org.junit.jupiter.api.Test;

/** Options come from this project's defaults and any Beam or runner flag, through fromArgs. */
class RunnersTest {
  @Test
  void defaultsForEachRunner() {
    DirectOptions direct = Runners.options(Runners.Kind.DIRECT, null, 3).as(DirectOptions.class);
    assertEquals(DirectRunner.class, direct.getRunner());
    assertEquals(3, direct.getTargetParallelism());
    assertTrue(direct.isBlockOnRun());
    FlinkPipelineOptions flink = Runners.options(Runners.Kind.FLINK, "localhost:8081", 2)
        .as(FlinkPipelineOptions.class);
    assertEquals(FlinkRunner.class, flink.getRunner());
    assertEquals("localhost:8081", flink.getFlinkMaster());
    assertEquals(2, flink.getParallelism());
    assertTrue(flink.getAttachedMode());
  }

  @Test
  void runnerFlagsPassThroughAndReplaceDefaults() {
    DirectOptions direct = Runners.options(Runners.Kind.DIRECT, null, 3,
        List.of("--targetParallelism=1", "--enforceImmutability=false", "--jobName=k1"))
        .as(DirectOptions.class);
    assertEquals(1, direct.getTargetParallelism());
    assertEquals(false, direct.isEnforceImmutability());
    assertEquals("k1", direct.getJobName());
    FlinkPipelineOptions flink = Runners.options(Runners.Kind.FLINK, "[local]", 2,
        List.of("--checkpointingInterval=60000", "--numberOfExecutionRetries=3"))
        .as(FlinkPipelineOptions.class);
    assertEquals(60000L, flink.getCheckpointingInterval());
    assertEquals(3, flink.getNumberOfExecutionRetries());
    assertEquals(2, flink.getParallelism());
  }

  @Test
  void unknownOrMalformedFlagsAreNamed() {
    IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class,
        () -> Runners.options(Runners.Kind.DIRECT, null, 1, List.of("--noSuchOption=1")));
    assertTrue(unknown.getMessage().contains("noSuchOption"), unknown.getMessage());
    IllegalArgumentException bare = assertThrows(IllegalArgumentException.class,
        () -> Runners.options(Runners.Kind.DIRECT, null, 1, List.of("value")));
    assertTrue(bare.getMessage().contains("\"value\""), bare.getMessage());
    assertThrows(IllegalArgumentException.class, () -> Runners.Kind.of("SparkRunner"));
    assertEquals(Runners.Kind.DATAFLOW, Runners.Kind.of("DataflowRunner"));
  }

  /** Only a Flink cluster's task slots are workers on other machines; in-JVM runners have none. */
  @Test
  void remoteWorkersAreAFlinkClustersSlots() {
    assertEquals(0, Runners.remoteWorkers(Runners.options(Runners.Kind.DIRECT, null, 4)));
    assertEquals(0, Runners.remoteWorkers(Runners.options(Runners.Kind.FLINK, "[local]", 4)));
    assertEquals(3, Runners.remoteWorkers(Runners.options(Runners.Kind.FLINK, "jobmanager:8081", 3)));
    assertEquals(5, Runners.remoteWorkers(Runners.options(Runners.Kind.FLINK, "[local]", 3,
        List.of("--flinkMaster=jobmanager:8081", "--parallelism=5"))), "the options' own flags decide");
  }
}
