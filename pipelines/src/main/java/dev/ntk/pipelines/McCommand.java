package dev.ntk.pipelines;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Model;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import org.apache.beam.sdk.options.PipelineOptions;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code ntk mc}: Monte Carlo estimates of the NNGP and NTK from finite networks of the model,
 * with every {@code Dense} layer {@code --width} wide and every convolution {@code --width}
 * channels, averaged over {@code --samples} parameter draws. Runs in-process unless a runner,
 * {@code --parallelism} or a Beam option is named; then as a pipeline whose workers draw batches
 * of parameters ({@link McJob}), with the same estimate. The NTK is the average of each draw's
 * exact empirical NTK ({@link dev.ntk.kernels.MonteCarlo#ntk}).
 */
@Command(name = "mc", mixinStandardHelpOptions = true,
    description = "Monte Carlo NNGP and NTK of finite networks: writes DIR/<get>.npy and DIR/<get>_stderr.npy (N1, N2).")
final class McCommand extends BeamArgs implements Callable<Integer> {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @CommandLine.Mixin KernelInputs inputs;

  @CommandLine.Mixin JobOptions job;

  @Option(names = "--samples", paramLabel = "S", defaultValue = "128",
      description = "Parameter draws (default 128, at least 2).")
  int samples;

  @Option(names = "--width", paramLabel = "W", defaultValue = "512",
      description = "out_dim of every Dense layer and out_chan of every convolution of the finite networks "
          + "(default 512).")
  int width;

  @Option(names = "--seed", paramLabel = "SEED", defaultValue = "0", description = "Random seed (default 0).")
  long seed;

  @Option(names = "--get", split = ",", paramLabel = "KERNELS", defaultValue = "nngp",
      description = "Kernels to estimate: nngp (default), ntk or both.")
  List<Get> get;

  @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output directory.")
  Path out;

  @Override
  public Integer call() throws IOException {
    job.beamArgs = unmatched;
    job.check();
    if (samples < 2) {
      throw new UsageException("--samples must be at least 2, got " + samples);
    }
    if (width < 1) {
      throw new UsageException("--width must be at least 1, got " + width);
    }
    Model model = withWidth(InputChecks.model(inputs.model), width);
    KernelInputs.Inputs x = inputs.read(model.layer());
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
    McJob draws = new McJob(model, inputs.x1.toAbsolutePath().toString(),
        inputs.x2 == null ? null : inputs.x2.toAbsolutePath().toString(), kernels, samples, seed, job.dtype,
        BATCHES_PER_WORKER * workers);
    List<String> stale = List.of("nngp.npy", "nngp_stderr.npy", "ntk.npy", "ntk_stderr.npy");
    JobReport report;
    try (Outputs outputs = Outputs.open(out, "mc", results.size() * job.dtype.bytes() * n1 * n2)) {
      report = outputs.produce("mc", stale, results, staging -> {
        if (inProcess) {
          long start = System.nanoTime();
          draws.runInProcess(staging, x.x1(), x.x2());
          return new JobReport(Ntk.IN_PROCESS, (System.nanoTime() - start) / 1e9, -1, -1, -1);
        }
        return draws.run(options, staging, Ntk.progress);
      });
    }
    PrintWriter w = spec.commandLine().getOut();
    w.println(String.format(Locale.ROOT, "mc: %d samples of width %d, seed %d, %s%s: %.1f s", samples, width,
        seed, report.runner(), inProcess ? "" : " (" + draws.batches() + " batches of draws)", report.seconds()));
    for (String f : results) {
      w.println("wrote " + out.resolve(f) + " " + Ntk.describe(out.resolve(f)));
    }
    return 0;
  }

  /** Batches of draws per worker: enough that a slow worker does not hold the others up. */
  private static final int BATCHES_PER_WORKER = 4;

  /** The model of {@code json} with {@code out_dim = width} in every Dense layer, {@code out_chan} in every convolution. */
  static Model withWidth(Model model, int width) throws IOException {
    return withWidth(model, width, false);
  }

  /**
   * {@link #withWidth(Model, int)}, but with {@code keepReadout} the last affine layer of the file
   * (the readout, whose outputs training compares with the targets) keeps its width.
   */
  static Model withWidth(Model model, int width, boolean keepReadout) throws IOException {
    JsonNode root = new ObjectMapper().readTree(model.json());
    List<Map.Entry<String, ObjectNode>> affine = new java.util.ArrayList<>();
    affineLayers(root, affine);
    for (int i = 0; i < affine.size() - (keepReadout ? 1 : 0); i++) {
      affine.get(i).getValue().put(affine.get(i).getKey().equals("Dense") ? "out_dim" : "out_chan", width);
    }
    return Model.parse(root.toString());
  }

  /** The Dense, Conv and ConvTranspose layers under {@code node} with their arguments, in file order. */
  private static void affineLayers(JsonNode node, List<Map.Entry<String, ObjectNode>> out) {
    if (node instanceof ObjectNode o) {
      for (Map.Entry<String, JsonNode> field : o.properties()) {
        String name = field.getKey();
        if ((name.equals("Dense") || name.equals("Conv") || name.equals("ConvTranspose"))
            && field.getValue() instanceof ObjectNode args) {
          out.add(Map.entry(name, args));
        } else {
          affineLayers(field.getValue(), out);
        }
      }
    } else if (node.isArray()) {
      node.forEach(child -> affineLayers(child, out));
    }
  }
}
