package dev.ntk.pipelines;

import dev.ntk.transforms.KernelTiles;
import org.apache.beam.sdk.Pipeline;
import org.apache.beam.sdk.PipelineResult;
import org.apache.beam.sdk.metrics.MetricNameFilter;
import org.apache.beam.sdk.metrics.MetricQueryResults;
import org.apache.beam.sdk.metrics.MetricResult;
import org.apache.beam.sdk.metrics.MetricsFilter;

/** Running pipelines to completion. */
final class Jobs {
  private Jobs() {}

  /**
   * Runs {@code pipeline} and waits for it; a failed or cancelled run is an exception, so that no
   * caller mistakes partial outputs for complete ones.
   */
  static JobReport run(Pipeline pipeline) {
    long start = System.nanoTime();
    PipelineResult result = pipeline.run();
    PipelineResult.State state = result.waitUntilFinish();
    double seconds = (System.nanoTime() - start) / 1e9;
    if (state != PipelineResult.State.DONE) {
      throw new IllegalStateException("the pipeline ended in state " + state);
    }
    String runner = pipeline.getOptions().getRunner().getSimpleName();
    return new JobReport(runner, seconds, counter(result, KernelTiles.TILES_COMPUTED),
        counter(result, KernelTiles.TILES_SKIPPED));
  }

  /** The sum of a {@link KernelTiles} counter over all steps, or -1 if the runner has none. */
  private static long counter(PipelineResult result, String name) {
    try {
      MetricQueryResults metrics = result.metrics().queryMetrics(MetricsFilter.builder()
          .addNameFilter(MetricNameFilter.named(KernelTiles.class, name)).build());
      long sum = 0;
      for (MetricResult<Long> c : metrics.getCounters()) {
        Long v = c.getAttempted();
        sum += v == null ? 0 : v;
      }
      return sum;
    } catch (UnsupportedOperationException e) {
      return -1;
    }
  }
}
