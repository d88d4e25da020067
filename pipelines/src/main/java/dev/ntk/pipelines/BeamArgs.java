package dev.ntk.pipelines;

import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine;

/**
 * Any option the command does not know, kept for Beam ({@code --name=value}: runner and Beam
 * options, checked by {@code PipelineOptionsFactory.fromArgs}). picocli takes {@code @Unmatched}
 * from the command, not from a mixin.
 */
abstract class BeamArgs {
  @CommandLine.Unmatched
  List<String> unmatched = new ArrayList<>();
}
