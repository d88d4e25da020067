package dev.ntk.transforms;

import java.util.List;
import org.apache.beam.sdk.options.PipelineOptions;
import org.apache.beam.sdk.options.PipelineOptionsRegistrar;

/**
 * Registers {@link NtkPipelineOptions} with {@code PipelineOptionsFactory} through {@code
 * META-INF/services}, so that {@code fromArgs} knows {@code --tileRows} and the other tile flags
 * wherever this jar is on the class path, and {@code --help=NtkPipelineOptions} describes them.
 */
public final class NtkPipelineOptionsRegistrar implements PipelineOptionsRegistrar {
  @Override
  public Iterable<Class<? extends PipelineOptions>> getPipelineOptions() {
    return List.of(NtkPipelineOptions.class);
  }
}
