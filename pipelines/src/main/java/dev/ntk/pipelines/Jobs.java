package dev.ntk.pipelines;

import dev.ntk.transforms.KernelTiles;
import dev.ntk.transforms.TileSet;
import java.util.List;
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
   * Runs {@code pipeline}, which computes the tiles of {@code sets}, and waits for it, showing its
   * {@code progress}; a failed or cancelled run is an exception, so that no caller mistakes
   * partial outputs for complete ones.
   */
  static JobReport run(Pipeline pipeline, List<TileSet> sets, Progress progress) {
    long start = System.nanoTime();
    long total = sets.stream().mapToLong(s -> s.plan().size()).sum();
    PipelineResult.State state;
    PipelineResult result;
    try (Progress.Display display = progress.start(total,
        () -> sets.stream().mapToLong(KernelTiles::tilesDone).sum())) {
      result = pipeline.run();
      state = result.waitUntilFinish();
    }
    double seconds = (System.nanoTime() - start) / 1e9;
    if (state != PipelineResult.State.DONE) {
      throw new IllegalStateException("the pipeline ended in state " + state);
    }
    String runner = pipeline.getOptions().getRunner().getSimpleName();
    return new JobReport(runner, seconds, counter(result, KernelTiles.TILES_COMPUTED),
        counter(result, KernelTiles.TILES_SKIPPED), counter(result, KernelTiles.TILES_DAMAGED));
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
