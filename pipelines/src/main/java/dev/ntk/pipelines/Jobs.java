package dev.ntk.pipelines;

import dev.ntk.transforms.KernelTiles;
import dev.ntk.transforms.TileSet;
import java.util.List;
import org.apache.beam.sdk.Pipeline;
import org.apache.beam.sdk.PipelineResult;
import org.apache.beam.sdk.metrics.DistributionResult;
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
        counter(result, KernelTiles.TILES_SKIPPED), counter(result, KernelTiles.TILES_DAMAGED),
        tileTimes(result));
  }

  /** The {@link KernelTiles} distributions of the computed tiles' times, or null if there are none. */
  private static JobReport.TileTimes tileTimes(PipelineResult result) {
    try {
      DistributionResult input = distribution(result, KernelTiles.TILE_INPUT_MICROS);
      DistributionResult compute = distribution(result, KernelTiles.TILE_COMPUTE_MICROS);
      DistributionResult write = distribution(result, KernelTiles.TILE_WRITE_MICROS);
      DistributionResult assembly = distribution(result, KernelTiles.ASSEMBLY_MICROS);
      if (compute.getCount() == 0) {
        return null;
      }
      return new JobReport.TileTimes(compute.getCount(), input.getSum() / 1e6,
          Math.max(0, counter(result, KernelTiles.INPUT_BLOCKS_READ)), compute.getSum() / 1e6,
          compute.getMax() / 1e6, write.getSum() / 1e6,
          assembly.getCount() == 0 ? -1 : assembly.getSum() / 1e6);
    } catch (UnsupportedOperationException e) {
      return null;
    }
  }

  /** A {@link KernelTiles} distribution merged over all steps. */
  private static DistributionResult distribution(PipelineResult result, String name) {
    MetricQueryResults metrics = result.metrics().queryMetrics(MetricsFilter.builder()
        .addNameFilter(MetricNameFilter.named(KernelTiles.class, name)).build());
    long sum = 0;
    long count = 0;
    long min = Long.MAX_VALUE;
    long max = Long.MIN_VALUE;
    for (MetricResult<DistributionResult> d : metrics.getDistributions()) {
      DistributionResult v = d.getAttempted();
      if (v != null && v.getCount() > 0) {
        sum += v.getSum();
        count += v.getCount();
        min = Math.min(min, v.getMin());
        max = Math.max(max, v.getMax());
      }
    }
    return count == 0 ? DistributionResult.IDENTITY_ELEMENT : DistributionResult.create(sum, count, min, max);
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
