package dev.ntk.pipelines;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;

/**
 * A command that runs a job, in-process or on a runner: its spec, and any option it does not know,
 * kept for Beam ({@code --name=value}: runner and Beam options, checked by {@code
 * PipelineOptionsFactory.fromArgs}) and handed to the job's options by {@link #checked}. picocli
 * takes {@code @Unmatched} from the command or its superclass, not from a mixin.
 */
abstract class JobCommand implements Callable<Integer> {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @CommandLine.Unmatched
  List<String> unmatched = new ArrayList<>();

  /** Gives {@code options} the command line's Beam options and checks them; a problem is a {@link UsageException}. */
  void checked(JobOptions options) {
    options.beamArgs = unmatched;
    options.check();
  }
}
