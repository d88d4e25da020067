package dev.ntk.pipelines;

import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Model;
import dev.ntk.kernels.Plan;
import dev.ntk.kernels.engine.Backend;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import org.apache.beam.sdk.options.PipelineOptions;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code ntk kernel}: a model's kernels between two sets of inputs, in-process or on a runner. */
@Command(name = "kernel", mixinStandardHelpOptions = true,
    description = "Writes DIR/nngp.npy and DIR/ntk.npy (N1, N2) and the Arrow tiles under DIR/tiles/; "
        + "other --name=value options go to Beam and the runner.")
final class KernelCommand extends BeamArgs implements Callable<Integer> {
  @Mixin CommonOptions options;
  @Mixin KernelInputs inputs;
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Option(names = "--get", split = ",", paramLabel = "KERNELS", defaultValue = "nngp,ntk",
      description = "Kernels to write: nngp, ntk or both (default).")
  List<Get> get;

  @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output directory.")
  Path out;

  @Option(names = "--mask-constant", paramLabel = "C", description = "Inputs padded with C (neural-tangents' "
      + "mask_constant): entries equal to C are zeroed, a position whose channels all equal C is masked and left "
      + "out of the kernels (GlobalAvgPool averages over kept positions, attention ignores masked keys).")
  Double maskConstant;

  @Override
  public Integer call() throws IOException {
    options.beamArgs = unmatched;
    options.check();
    long maxTileBytes = options.maxTileBytes;
    long started = System.nanoTime();
    // A pipeline's options (Beam scans its registrars: about a second of class loading) are
    // built while the model and inputs are read, when a pipeline is sure to run.
    java.util.concurrent.CompletableFuture<PipelineOptions> early = options.pipelineUnasked() ? null
        : java.util.concurrent.CompletableFuture.supplyAsync(options::pipelineOptions);
    Model model = InputChecks.model(inputs.model);
    KernelInputs.Inputs x = inputs.read(model.layer());
    PrintWriter log = options.verbose ? spec.commandLine().getErr() : null;
    if (log != null) {
      log.printf(Locale.ROOT, "ntk: JVM start to command %.2f s; model and inputs read and checked in %.2f s%n",
          (System.currentTimeMillis() - java.lang.management.ManagementFactory.getRuntimeMXBean().getStartTime())
              / 1e3 - (System.nanoTime() - started) / 1e9, (System.nanoTime() - started) / 1e9);
    }
    List<Get> kernels = List.copyOf(new LinkedHashSet<>(get));
    long[] shape = x.x1().shape();
    if (maskConstant != null) {
      checkMasks(x);
    }
    Plan plan = model.plan(new Shape(java.util.Arrays.copyOfRange(shape, 1,
        shape.length)), InProcessKernel.dataType(options.dtype), java.util.EnumSet.copyOf(kernels), maskConstant);
    Backend resolved = options.backend.resolve(plan.schedule());
    if (maskConstant != null && resolved == Backend.CUDA && options.backend != Backend.AUTO) {
      throw new UsageException("--mask-constant runs on the cpu or tensorflow backend, not --backend cuda");
    }
    Backend backend = maskConstant != null && resolved == Backend.CUDA ? Backend.CPU : resolved;
    boolean inProcess = options.pipelineUnasked()
        && InProcessKernel.fits(plan, x.n1(), x.n2(), options.dtype, backend, maxTileBytes);

    int tile = options.autoTile()
        ? spread(plan.autoTile(x.n1(), x.n2(), maxTileBytes, options.dtype.bytes(), backend), x,
            options.remoteWorkers())
        : plan.largestTile(options.tile(), maxTileBytes, options.dtype.bytes(), backend);
    if (log != null && options.autoTile() && !inProcess) {
      log.printf(Locale.ROOT, "ntk: --tile auto: tiles of %d rows (%.2g flops per entry, --max-tile-bytes %d)%n",
          tile, plan.pairFlops(), maxTileBytes);
    }
    if (!options.autoTile() && tile < options.tile() && !inProcess) {
      spec.commandLine().getErr().printf("ntk: tiles of %d rows (not %d) fit --max-tile-bytes %d%n", tile,
          options.tile(), maxTileBytes);
    }
    long bytes = options.dtype.bytes() * x.n1() * x.n2() * (kernels.size() + (x.x2() == null ? 1 : 2));
    long optionsStarted = System.nanoTime();
    PipelineOptions pipelineOptions = inProcess ? null : early != null ? join(early) : options.pipelineOptions();
    if (log != null && !inProcess) {
      log.printf(Locale.ROOT, "ntk: pipeline options ready %.2f s later%n", (System.nanoTime() - optionsStarted) / 1e9);
    }
    List<String> results = kernels.stream().map(g -> g.key() + ".npy").toList();
    List<String> stale = Stream.of(Get.values()).map(g -> g.key() + ".npy").toList();
    JobReport report;
    try (Outputs outputs = Outputs.open(out, "kernel", bytes)) {
      KernelJob job = new KernelJob(model, inputs.x1, inputs.x2, kernels, tile,
          options.dtype, outputs.directory()).withBackend(options.backend).withMaskConstant(maskConstant);
      report = outputs.produce("kernel", stale, results, staging -> inProcess
          ? new JobReport(Ntk.IN_PROCESS, new InProcessKernel(model, x.x1(), x.x2(), kernels, options.dtype, backend,
              maskConstant)
              .run(staging, log), -1, -1, -1)
          : job.run(pipelineOptions, staging, Ntk.progress));
    }
    if (log != null && report.tileTimes() != null) {
      log.println(report.tileTimes());
    }
    if (log != null) {
      log.printf(Locale.ROOT, "ntk: command done %.2f s after it started%n", (System.nanoTime() - started) / 1e9);
    }
    PrintWriter w = spec.commandLine().getOut();
    w.println(inProcess ? String.format(Locale.ROOT, "in-process (the kernels fit one tile of "
        + "--max-tile-bytes; --runner DirectRunner runs the pipeline): %.1f s", report.seconds()) : report);
    for (String f : results) {
      w.println("wrote " + out.resolve(f) + " " + Ntk.describe(out.resolve(f)));
    }
    return 0;
  }

  /**
   * Checks {@code --mask-constant} against the inputs before anything runs: a finite number, and no
   * example whose entries all equal it.
   */
  private void checkMasks(KernelInputs.Inputs x) {
    if (!Double.isFinite(maskConstant)) {
      throw new UsageException("--mask-constant must be a finite number, got " + maskConstant);
    }
    long[] shape = x.x1().shape();
    int channels = shape.length > 2 ? Math.toIntExact(shape[shape.length - 1]) : 1;
    for (int k = 0; k < 2; k++) {
      dev.ntk.io.NpyArray a = k == 0 ? x.x1() : x.x2();
      if (a == null) {
        continue;
      }
      int n = Math.toIntExact(a.shape()[0]);
      int positions = Math.toIntExact(a.data().length / ((long) n * channels));
      try {
        dev.ntk.kernels.Masking.apply(a.data(), n, positions, channels, maskConstant,
            k == 0 ? "--x1 " + inputs.x1 : "--x2 " + inputs.x2);
      } catch (IllegalArgumentException e) {
        throw new UsageException(e.getMessage());
      }
    }
  }

  /** The value of {@code future}; its failure thrown as it was thrown. */
  static <T> T join(java.util.concurrent.CompletableFuture<T> future) {
    try {
      return future.join();
    } catch (java.util.concurrent.CompletionException e) {
      if (e.getCause() instanceof RuntimeException r) {
        throw r;
      }
      if (e.getCause() instanceof Error err) {
        throw err;
      }
      throw e;
    }
  }

  /**
   * {@code --tile auto}'s rows, made smaller where the job's workers are other machines until there
   * are at least two tiles per worker: one large tile is fastest in one JVM (it runs on all its
   * cores), but a cluster must have tiles to spread.
   */
  static int spread(int rows, KernelInputs.Inputs x, int workers) {
    int r = rows;
    while (r > 1 && tiles(x, r) < 2L * workers) {
      r = (r + 1) / 2;
    }
    return r;
  }

  /** The tiles of rows {@code r}: on and above the diagonal for x1 with itself. */
  private static long tiles(KernelInputs.Inputs x, int r) {
    long b1 = (x.n1() + r - 1) / r;
    long b2 = (x.n2() + r - 1) / r;
    return x.x2() == null ? b1 * (b1 + 1) / 2 : b1 * b2;
  }
}
