package dev.ntk.pipelines;

import dev.ntk.kernels.Get;
import dev.ntk.kernels.Model;
import dev.ntk.kernels.MonteCarlo;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.stream.Collectors;
import org.apache.beam.sdk.options.PipelineOptions;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code ntk mc}: Monte Carlo estimates of the NNGP and NTK from finite networks of the model,
 * with every {@code Dense} layer {@code --width} wide and every convolution {@code --width}
 * channels (or each its own width, {@code --widths}), averaged over {@code --samples} parameter
 * draws. Several sample counts give the estimate after each from one sequence of draws, and
 * several widths one estimate per width: the outputs gain a leading width axis, then a leading
 * samples axis, {@code ([widths,] [counts,] N1, N2)}. Runs in-process unless a runner, {@code
 * --parallelism} or a Beam option is named; then as a pipeline whose workers draw batches of
 * parameters ({@link McJob}), with the same estimate. The NTK is the average of each draw's exact
 * empirical NTK ({@link dev.ntk.kernels.MonteCarlo#ntk}).
 */
@Command(name = "mc", mixinStandardHelpOptions = true,
    description = "Monte Carlo NNGP and NTK of finite networks: writes DIR/<get>.npy and DIR/<get>_stderr.npy "
        + "([widths,] [counts,] N1, N2).")
final class McCommand extends JobCommand {

  @CommandLine.Mixin KernelInputs inputs;

  @CommandLine.Mixin JobOptions job;

  @Option(names = {"--samples", "--n-samples"}, split = ",", paramLabel = "S[,S...]", defaultValue = "128",
      description = "Parameter draws (default 128, at least 2); an increasing list gives the estimate after each "
          + "count from one sequence of draws, with a leading samples axis.")
  List<Integer> samples;

  @Option(names = "--width", split = ",", paramLabel = "W[,W...]", defaultValue = "512",
      description = "out_dim of every Dense layer and out_chan of every convolution of the finite networks "
          + "(default 512); several widths give a leading width axis.")
  List<Integer> width;

  @Option(names = "--widths", split = ",", paramLabel = "W1,W2,...",
      description = "One width per Dense, Conv, ConvTranspose and ConvLocal layer, in file order, instead of --width.")
  int[] widths;

  @Option(names = "--seed", paramLabel = "SEED", defaultValue = "0", description = "Random seed (default 0).")
  long seed;

  @Option(names = "--get", split = ",", paramLabel = "KERNELS", defaultValue = "nngp",
      description = "Kernels to estimate: nngp (default), ntk or both.")
  List<Get> get;

  @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output directory.")
  Path out;

  @Override
  public Integer call() throws IOException {
    checked(job);
    try {
      MonteCarlo.checkCounts(samples.stream().mapToInt(Integer::intValue).toArray());
    } catch (IllegalArgumentException e) {
      throw new UsageException("--samples: " + e.getMessage());
    }
    for (int w : width) {
      if (w < 1) {
        throw new UsageException("--width must be at least 1, got " + w);
      }
    }
    List<Model> models = models(InputChecks.model(inputs.model));
    // the models differ in widths alone, all equal or given per layer for one model: one check fits all
    inputs.refusePatterns("ntk mc", models.get(0).layer());
    KernelInputs.Inputs x = inputs.read(models.get(0).layer());
    long n1 = x.n1();
    long n2 = x.n2();
    List<Get> kernels = List.copyOf(new java.util.LinkedHashSet<>(get));
    List<String> results = new java.util.ArrayList<>();
    for (Get g : kernels) {
      results.add(g.key() + ".npy");
      results.add(g.key() + "_stderr.npy");
    }
    boolean inProcess = job.runnerUnasked();
    PipelineOptions options = inProcess ? null : job.pipelineOptions();
    int workers = job.parallelism == null ? Runtime.getRuntime().availableProcessors() : job.parallelism;
    McJob draws = new McJob(models, inputs.x1.toAbsolutePath().toString(),
        inputs.x2 == null ? null : inputs.x2.toAbsolutePath().toString(), kernels, samples, seed,
        BATCHES_PER_WORKER * workers);
    List<String> stale = List.of("nngp.npy", "nngp_stderr.npy", "ntk.npy", "ntk_stderr.npy");
    long bytes = results.size() * job.dtype.bytes() * n1 * n2 * models.size() * samples.size();
    JobReport report;
    try (Outputs outputs = Outputs.open(out, "mc", bytes)) {
      report = outputs.produce("mc", stale, results, staging -> {
        if (inProcess) {
          long start = System.nanoTime();
          draws.runInProcess(staging, x.x1(), x.x2(), job.dtype);
          return new JobReport(Ntk.IN_PROCESS, (System.nanoTime() - start) / 1e9, -1, -1, -1);
        }
        return draws.run(options, staging, Ntk.progress);
      });
    }
    PrintWriter w = spec.commandLine().getOut();
    String counts = samples.stream().map(String::valueOf).collect(Collectors.joining(","));
    String sizes = widths != null ? "widths " + Arrays.stream(widths).mapToObj(String::valueOf)
        .collect(Collectors.joining(",")) : "width " + width.stream().map(String::valueOf)
        .collect(Collectors.joining(","));
    w.println(String.format(Locale.ROOT, "mc: %s samples of %s, seed %d, %s%s: %.1f s", counts, sizes,
        seed, report.runner(), inProcess ? "" : " (" + draws.batchCount() + " batches of draws)", report.seconds()));
    for (String f : results) {
      w.println("wrote " + out.resolve(f) + " " + Ntk.describe(out.resolve(f)));
    }
    return 0;
  }

  /** Batches of draws per worker: enough that a slow worker does not hold the others up. */
  private static final int BATCHES_PER_WORKER = 4;

  /** The finite networks of {@code --width} (one per width) or {@code --widths} (one). */
  private List<Model> models(Model model) {
    if (widths != null) {
      if (spec.commandLine().getParseResult().hasMatchedOption("--width")) {
        throw new UsageException("give --width or --widths, not both");
      }
      for (int w : widths) {
        if (w < 1) {
          throw new UsageException("--widths must each be at least 1, got " + w);
        }
      }
      try {
        return List.of(model.withWidths(widths));
      } catch (IllegalArgumentException e) {
        throw new UsageException("--widths: " + e.getMessage());
      }
    }
    List<Model> models = new java.util.ArrayList<>();
    for (int w : width) {
      models.add(model.withWidth(w, false));
    }
    return models;
  }
}
