package dev.ntk.pipelines;

import org.apache.beam.sdk.Pipeline;
import org.apache.beam.sdk.PipelineResult;

/** Running pipelines to completion. */
final class Jobs {
  private Jobs() {}

  /**
   * Runs {@code pipeline} and waits for it; a failed or cancelled run is an exception, so that no
   * caller mistakes partial outputs for complete ones.
   */
  static PipelineResult run(Pipeline pipeline) {
    PipelineResult result = pipeline.run();
    PipelineResult.State state = result.waitUntilFinish();
    if (state != PipelineResult.State.DONE) {
      throw new IllegalStateException("the pipeline ended in state " + state);
    }
    return result;
  }
}
