package dev.ntk.pipelines;

import dev.ntk.transforms.KernelTiles;
import dev.ntk.transforms.TileSet;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Function;
import org.apache.beam.runners.direct.DirectOptions;
import org.apache.beam.runners.direct.DirectRunner;
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
   *
   * <p>Progress and the report come from the job's Beam metrics ({@link KernelTiles}' counters), which
   * count wherever the workers run. While it runs, the progress polls the running result's attempted
   * counts: a DirectRunner is started with {@code blockOnRun} off for that (this method waits itself);
   * a runner whose {@code run} returns only at the end (Flink, attached) shows its counts then. The
   * report reads the committed counts where the runner has them, else the attempted.
   */
  static JobReport run(Pipeline pipeline, List<TileSet> sets, Progress progress) {
    long start = System.nanoTime();
    long total = sets.stream().mapToLong(s -> s.plan().size()).sum();
    DirectOptions direct = pipeline.getOptions().getRunner() == DirectRunner.class
        ? pipeline.getOptions().as(DirectOptions.class) : null;
    boolean blockOnRun = direct != null && direct.isBlockOnRun();
    AtomicReference<PipelineResult> running = new AtomicReference<>();
    PipelineResult.State state;
    PipelineResult result;
    try (Progress.Display display = progress.start(total, () -> tilesDone(running.get()))) {
      if (direct != null) {
        direct.setBlockOnRun(false);
      }
      result = pipeline.run();
      running.set(result);
      state = result.waitUntilFinish();
    } finally {
      if (direct != null) {
        direct.setBlockOnRun(blockOnRun); // the caller's options as they were
      }
    }
    double seconds = (System.nanoTime() - start) / 1e9;
    if (state != PipelineResult.State.DONE) {
      throw new IllegalStateException("the pipeline ended in state " + state);
    }
    String runner = pipeline.getOptions().getRunner().getSimpleName();
    return new JobReport(runner, seconds, counter(result, KernelTiles.TILES_COMPUTED, Jobs::committedElseAttempted),
        counter(result, KernelTiles.TILES_SKIPPED, Jobs::committedElseAttempted),
        counter(result, KernelTiles.TILES_DAMAGED, Jobs::committedElseAttempted), tileTimes(result));
  }

  /**
   * The tiles computed or found on disk so far by the job of {@code result} (its attempted counts:
   * those of work in flight too, as a progress display wants), 0 before it runs or where its
   * runner cannot say yet.
   */
  static long tilesDone(PipelineResult result) {
    if (result == null) {
      return 0;
    }
    try {
      return Math.max(0, counter(result, KernelTiles.TILES_COMPUTED, MetricResult::getAttempted))
          + Math.max(0, counter(result, KernelTiles.TILES_SKIPPED, MetricResult::getAttempted));
    } catch (RuntimeException e) { // a runner whose job is starting or gone: no count now
      return 0;
    }
  }

  /** A metric's committed value where the runner commits metrics, else its attempted one. */
  private static <T> T committedElseAttempted(MetricResult<T> m) {
    return m.hasCommitted() ? m.getCommitted() : m.getAttempted();
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
      long blocks = Math.max(0, counter(result, KernelTiles.INPUT_BLOCKS_READ, Jobs::committedElseAttempted));
      return new JobReport.TileTimes(compute.getCount(), input.getSum() / 1e6, blocks, compute.getSum() / 1e6,
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
      DistributionResult v = committedElseAttempted(d);
      if (v != null && v.getCount() > 0) {
        sum += v.getSum();
        count += v.getCount();
        min = Math.min(min, v.getMin());
        max = Math.max(max, v.getMax());
      }
    }
    return count == 0 ? DistributionResult.IDENTITY_ELEMENT : DistributionResult.create(sum, count, min, max);
  }

  /**
   * The sum over all steps of a {@link KernelTiles} counter's {@code value} (committed, attempted),
   * or -1 if the runner has no metrics.
   */
  private static long counter(PipelineResult result, String name, Function<MetricResult<Long>, Long> value) {
    try {
      MetricQueryResults metrics = result.metrics().queryMetrics(MetricsFilter.builder()
          .addNameFilter(MetricNameFilter.named(KernelTiles.class, name)).build());
      long sum = 0;
      for (MetricResult<Long> c : metrics.getCounters()) {
        Long v = value.apply(c);
        sum += v == null ? 0 : v;
      }
      return sum;
    } catch (UnsupportedOperationException e) {
      return -1;
    }
  }
}
