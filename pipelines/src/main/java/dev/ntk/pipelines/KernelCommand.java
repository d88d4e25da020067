package dev.ntk.pipelines;

import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Model;
import dev.ntk.kernels.Plan;
import dev.ntk.kernels.Spatial;
import dev.ntk.kernels.engine.Backend;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;
import org.apache.beam.sdk.options.PipelineOptions;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code ntk kernel}: a model's kernels between two sets of inputs, in-process or on a runner. */
@Command(name = "kernel", mixinStandardHelpOptions = true,
    description = "Writes DIR/nngp.npy and DIR/ntk.npy (N1, N2) and the Arrow tiles under DIR/tiles/; "
        + "with --diagonal-spatial, the kernels of the last layer's pixels (N1, N2, H, W) or "
        + "(N1, N2, H, H', W, W'), in-process; other --name=value options go to Beam and the runner.")
final class KernelCommand extends JobCommand {
  @Mixin CommonOptions options;
  @Mixin KernelInputs inputs;

  @Option(names = "--get", split = ",", paramLabel = "KERNELS", defaultValue = "nngp,ntk",
      description = "What to write: nngp, ntk (default: both), cov1, cov2 (each x1 or x2 input's covariance "
          + "with itself, (N1) or per pixel; cov2 needs --x2).")
  List<String> get;

  @Option(names = "--diagonal-spatial", paramLabel = "true|false",
      description = "For a model whose last layer keeps spatial axes (no readout): keep them, per pixel "
          + "(true: (N1, N2, H, W)) or for every two pixels (false: (N1, N2, H, H', W, W')), as "
          + "neural-tangents' diagonal_spatial. Default: averaged over the pixels, (N1, N2). In-process only.")
  String diagonalSpatial;

  @Option(names = "--diagonal-batch", paramLabel = "true|false", defaultValue = "true",
      description = "cov1 and cov2 per input (true, the default: (N1) or (N1, pixels...)) or between every two "
          + "inputs of their batch (false: (N1, N1, ...), the NNGP of x1 with itself), as neural-tangents' "
          + "diagonal_batch.")
  String diagonalBatch;

  /** The covariances {@code --get} may name beside the kernels. */
  static final List<String> COVARIANCES = List.of("cov1", "cov2");

  /** {@code --diagonal-spatial} as a {@link Spatial}. */
  private Spatial spatial() {
    if (diagonalSpatial == null) {
      return Spatial.REDUCED;
    }
    String v = diagonalSpatial.trim().toLowerCase(Locale.ROOT);
    if (!v.equals("true") && !v.equals("false")) {
      throw new UsageException("--diagonal-spatial must be true or false, got " + diagonalSpatial);
    }
    return Spatial.of(v.equals("true"));
  }

  @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output directory.")
  Path out;

  @Option(names = "--mask-constant", paramLabel = "C", description = "Inputs padded with C (neural-tangents' "
      + "mask_constant): entries equal to C are zeroed, a position whose channels all equal C is masked and left "
      + "out of the kernels (GlobalAvgPool averages over kept positions, attention ignores masked keys).")
  Double maskConstant;

  @Override
  public Integer call() throws IOException {
    checked(options);
    TileSettings settings = options.tileSettings();
    long maxTileBytes = settings.maxTileBytes();
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
    List<Get> kernels = new java.util.ArrayList<>();
    List<String> covariances = new java.util.ArrayList<>();
    for (String g : new LinkedHashSet<>(get)) {
      String name = g.trim().toLowerCase(Locale.ROOT);
      if (COVARIANCES.contains(name)) {
        if (!covariances.contains(name)) {
          covariances.add(name);
        }
      } else if (name.equals("nngp") || name.equals("ntk")) {
        if (!kernels.contains(Get.of(name))) {
          kernels.add(Get.of(name));
        }
      } else {
        throw new UsageException("--get: unknown output \"" + g + "\": expected nngp, ntk, cov1 or cov2");
      }
    }
    if (kernels.isEmpty() && covariances.isEmpty()) {
      throw new UsageException("--get names nothing to write: expected nngp, ntk, cov1 or cov2");
    }
    if (covariances.contains("cov2") && x.x2() == null) {
      throw new UsageException("--get cov2 needs --x2 (cov2 is the covariance of each x2 input with itself; "
          + "for x1 ask for cov1)");
    }
    Spatial spatial = spatial();
    String batch = diagonalBatch.trim().toLowerCase(Locale.ROOT);
    if (!batch.equals("true") && !batch.equals("false")) {
      throw new UsageException("--diagonal-batch must be true or false, got " + diagonalBatch);
    }
    if (batch.equals("false") && covariances.isEmpty()) {
      throw new UsageException("--diagonal-batch false shapes only cov1 and cov2: ask for them with --get");
    }
    long[] shape = x.x1().shape();
    if (maskConstant != null) {
      checkMasks(x);
      if (spatial.keepsAxes()) {
        throw new UsageException("--mask-constant does not take --diagonal-spatial (kernels that keep spatial axes "
            + "of masked inputs are not supported); drop one of them");
      }
    }
    Plan plan = model.plan(new Shape(java.util.Arrays.copyOfRange(shape, 1,
        shape.length)), InProcessKernel.dataType(settings.dtype()), Get.setOf(kernels), spatial, maskConstant);
    Backend backend = settings.sizedFor(plan);
    KernelInputs.Patterns patterns = inputs.patterns(plan, x);
    boolean fits = InProcessKernel.fits(plan, x.n1(), x.n2(), settings.dtype(), backend, maxTileBytes);
    boolean inProcess = options.pipelineUnasked() && fits;
    if (spatial.keepsAxes() || !covariances.isEmpty()) {
      // The tiles and their assembly hold (N1, N2) kernels: these outputs are computed in-process only.
      String what = spatial.keepsAxes() ? "--diagonal-spatial" : "--get " + String.join(",", covariances);
      if (!options.pipelineUnasked()) {
        throw new UsageException(what + " is computed in-process only (the tiles of a pipeline hold (N1, N2) "
            + "kernels): drop --runner, --parallelism, Beam options and --tile");
      }
      if (!fits) {
        throw new UsageException(what + ": the kernels take " + plan.tileBytes(Math.toIntExact(x.n1()),
            Math.toIntExact(x.n2()), settings.dtype().bytes(), backend) + " bytes to compute, more than "
            + "--max-tile-bytes " + maxTileBytes + "; raise it or use fewer inputs");
      }
    }
    long block = plan.schedule().rowOutputs().get(Plan.VAR1).layout().size();
    long bytes = settings.dtype().bytes() * x.n1() * x.n2() * block * (kernels.size() + (x.x2() == null ? 1 : 2));
    long optionsStarted = System.nanoTime();
    PipelineOptions pipelineOptions = inProcess ? null : early != null ? join(early) : options.pipelineOptions();
    if (log != null && !inProcess) {
      log.printf(Locale.ROOT, "ntk: pipeline options ready %.2f s later%n", (System.nanoTime() - optionsStarted) / 1e9);
    }
    if (!inProcess) { // the tiles the job will take from the options
      int tile = KernelJob.tileRows(settings, plan, x.n1(), x.n2(), x.x2() == null, pipelineOptions);
      if (log != null && settings.tileRows() == null) {
        log.printf(Locale.ROOT, "ntk: --tile auto: tiles of %d rows (%.2g flops per entry, --max-tile-bytes %d)%n",
            tile, plan.pairFlops(), maxTileBytes);
      }
      if (settings.tileRows() != null && tile < settings.tileRows()) {
        spec.commandLine().getErr().printf("ntk: tiles of %d rows (not %d) fit --max-tile-bytes %d%n", tile,
            settings.tileRows(), maxTileBytes);
      }
    }
    List<String> results = Stream.concat(kernels.stream().map(Get::key), covariances.stream())
        .map(name -> name + ".npy").toList();
    List<String> stale = Stream.concat(Stream.of(Get.values()).map(Get::key), COVARIANCES.stream())
        .map(name -> name + ".npy").toList();
    JobReport report;
    try (Outputs outputs = Outputs.open(out, "kernel", bytes)) {
      KernelJob job = new KernelJob(model, inputs.x1, inputs.x2, kernels, outputs.directory())
          .withMaskConstant(maskConstant)
          .withPatterns(patterns == null ? null : inputs.pattern1, patterns == null ? null : inputs.pattern2);
      report = outputs.produce("kernel", stale, results, staging -> inProcess
          ? new JobReport(Ntk.IN_PROCESS, new InProcessKernel(model, x.x1(), x.x2(), patterns, kernels, settings.dtype(),
              backend, spatial, covariances, batch.equals("true"), maskConstant)
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

}
