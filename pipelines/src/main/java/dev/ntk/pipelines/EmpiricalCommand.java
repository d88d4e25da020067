package dev.ntk.pipelines;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.kernels.EmpiricalKernels;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Layer;
import dev.ntk.kernels.Model;
import dev.ntk.kernels.engine.Backend;
import dev.ntk.kernels.Params;
import dev.ntk.kernels.Tensors;
import dev.ntk.transforms.EmpiricalTiles;
import dev.ntk.transforms.NtkPipelineOptions;
import dev.ntk.transforms.ParamsFiles;
import dev.ntk.transforms.TileSet;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.OptionalLong;
import org.apache.beam.sdk.options.PipelineOptions;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code ntk empirical}: the empirical NNGP {@code f(x1) f(x2)^T} and NTK {@code J(x1) J(x2)^T} of
 * one finite network of the model ({@link EmpiricalKernels}), averaged over the output entries
 * (neural-tangents' {@code trace_axes=(-1,)}) unless {@code --keep-channels}, computed by the
 * chosen implementation. The parameters are drawn by the model's {@code init} with {@code --seed},
 * or read from a parameters file ({@code --params}, {@link ParamsFiles}) for the model and the
 * per-example shape of {@code --x1}; both at once are refused.
 *
 * <p>In-process unless a runner, {@code --parallelism} or a Beam option is named; then as the
 * kernel command's pipeline over tiles of {@code --tile} rows ({@link EmpiricalTiles}), whose
 * finished tiles a later run of the same network and inputs reuses.
 */
@Command(name = "empirical", mixinStandardHelpOptions = true,
    description = "Empirical NNGP and NTK of one finite network: writes DIR/nngp.npy and DIR/ntk.npy (N1, N2); "
        + "other --name=value options go to Beam and the runner.")
final class EmpiricalCommand extends JobCommand {

  @CommandLine.Mixin KernelInputs inputs;

  @CommandLine.Mixin JobOptions job;

  @Option(names = "--tile", paramLabel = "ROWS", defaultValue = "128",
      description = "Rows of x1 and x2 per tile when a runner computes the kernels (default 128).")
  int tile;

  @Option(names = "--params", paramLabel = "P.npz",
      description = "The network's parameters, a parameters file as ntk init and ntk train --params-out write "
          + "(default: drawn by the model's init with --seed; not both).")
  Path params;

  @Option(names = "--seed", paramLabel = "SEED", defaultValue = "0",
      description = "Seed of the parameters drawn without --params (default 0).")
  long seed;

  @Option(names = "--get", split = ",", paramLabel = "KERNELS", defaultValue = "nngp,ntk",
      description = "Kernels to compute: nngp, ntk or both (default).")
  List<Get> get;

  @Option(names = "--implementation", paramLabel = "IMPL", defaultValue = "structured",
      description = "How the NTK is computed: jacobian (Jacobian contraction), ntk-vp (NTK-vector products) "
          + "or structured (default; structured derivatives). All give the same kernel.")
  String implementation;

  @Option(names = "--keep-channels",
      description = "Keep the output entries: write (N1, N2, C, C) instead of their average (N1, N2).")
  boolean keepChannels;

  @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output directory.")
  Path out;

  @Override
  public Integer call() throws IOException {
    checked(job);
    boolean inProcess = job.runnerUnasked();
    if (tile < 1) {
      throw new UsageException("--tile must be at least 1, got " + tile);
    }
    if (!inProcess && keepChannels) {
      throw new UsageException("--keep-channels is computed in-process only: leave out --runner, --parallelism "
          + "and Beam options, or the kernels averaged over the channels are computed on the runner");
    }
    NpyDType dtype = job.dtype;
    EmpiricalKernels.Implementation impl;
    try {
      impl = EmpiricalKernels.Implementation.of(implementation);
    } catch (IllegalArgumentException e) {
      throw new UsageException("--implementation: " + e.getMessage());
    }
    if (params != null && spec.commandLine().getParseResult().hasMatchedOption("--seed")) {
      throw new UsageException("--params " + params + " and --seed: the parameters are read from the file or "
          + "drawn with the seed, not both; leave out one");
    }
    Model model = InputChecks.model(inputs.model);
    Layer layer = model.layer();
    inputs.refusePatterns("ntk empirical", layer);
    KernelInputs.Inputs x = inputs.read(layer);
    List<Get> kernels = List.copyOf(new LinkedHashSet<>(get));
    List<String> results = new ArrayList<>();
    for (Get g : kernels) {
      results.add(g.key() + ".npy");
    }
    DataType type = dtype == NpyDType.FLOAT32 ? DataType.FLOAT32 : DataType.FLOAT64;
    Shape perExample = new Shape(x.x1().shape()).slice(1);
    long channels = layer.check(perExample).shape().size();
    long bytes = kernels.size() * x.n1() * x.n2() * (keepChannels ? channels * channels : 1) * dtype.bytes();
    long start = System.nanoTime();
    JobReport report = null;
    if (inProcess) {
      inProcess(layer, x, kernels, results, type, perExample, impl, bytes);
    } else {
      if (params != null) {
        read(layer, perExample, type); // a file that does not fit the model fails here, not on a worker
      }
      EmpiricalTiles network = params == null ? EmpiricalTiles.drawn(model, seed, impl)
          : EmpiricalTiles.fromFile(model, params, impl);
      PipelineOptions options = job.pipelineOptions();
      NtkPipelineOptions own = options.as(NtkPipelineOptions.class); // --dtype written by JobOptions
      own.setTileRows(tile);
      own.setBackend(Backend.CPU.key()); // a finite network's derivatives are computed on the cpu
      TileSettings settings = TileSettings.of(own);
      try (Outputs outputs = Outputs.open(out, "empirical", bytes)) {
        TileSet tiles = TileSet.create(network, inputs.x1.toAbsolutePath().toString(),
            inputs.x2 == null ? null : inputs.x2.toAbsolutePath().toString(), settings.tileRows(), settings.dtype(),
            outputs.tiles().toString());
        report = outputs.produce("empirical", List.of("nngp.npy", "ntk.npy"), results,
            staging -> KernelJob.run(tiles, kernels, options, staging, Ntk.progress));
      }
    }
    double seconds = (System.nanoTime() - start) / 1e9;
    PrintWriter w = spec.commandLine().getOut();
    w.println(String.format(Locale.ROOT, "empirical: %s, parameters %s, %s%s, %s",
        kernels.contains(Get.NTK) ? impl.key() + " NTK" : "NNGP",
        params == null ? "drawn with seed " + seed : "from " + params, dtype.typeName(),
        keepChannels ? ", output channels kept" : "", report == null
            ? String.format(Locale.ROOT, "%s: %.1f s", Ntk.IN_PROCESS, seconds) : report.toString()));
    for (String f : results) {
      w.println("wrote " + out.resolve(f) + " " + Ntk.describe(out.resolve(f)));
    }
    return 0;
  }

  /** Computes the kernels in this process into the outputs. */
  private void inProcess(Layer layer, KernelInputs.Inputs x, List<Get> kernels, List<String> results, DataType type,
      Shape perExample, EmpiricalKernels.Implementation impl, long bytes) throws IOException {
    NpyDType dtype = job.dtype;
    try (NDManager m = Tensors.newManager()) {
      Params theta = params == null ? layer.init(seed, perExample, m, type) : read(layer, perExample, m, type);
      NDArray x1 = Tensors.create(m, x.x1().data(), new Shape(x.x1().shape()), type);
      NDArray x2 = x.x2() == null ? null : Tensors.create(m, x.x2().data(), new Shape(x.x2().shape()), type);
      try (Outputs outputs = Outputs.open(out, "empirical", bytes)) {
        outputs.produce("empirical", List.of("nngp.npy", "ntk.npy"), results, staging -> {
          for (int i = 0; i < kernels.size(); i++) {
            Get g = kernels.get(i);
            NDArray k = g == Get.NNGP ? EmpiricalKernels.nngp(layer, theta, x1, x2, !keepChannels)
                : EmpiricalKernels.ntk(layer, theta, x1, x2, impl, !keepChannels);
            double[] values = Tensors.toDoubles(k);
            OptionalLong bad = Npy.firstNonFinite(values);
            if (bad.isPresent()) {
              throw new UsageException(String.format(Locale.ROOT, "the empirical %s has a non-finite entry (%s "
                  + "at flat index %d): the network's outputs or derivatives overflow in %s", g.key(),
                  values[Math.toIntExact(bad.getAsLong())], bad.getAsLong(), dtype.typeName()));
            }
            Npy.write(staging.resolve(results.get(i)), new NpyArray(k.getShape().getShape(), dtype, values));
          }
          return null;
        });
      }
    }
  }

  /** Reads {@code --params} once to check it against the model, before a pipeline starts. */
  private void read(Layer layer, Shape perExample, DataType type) {
    try (NDManager m = Tensors.newManager()) {
      read(layer, perExample, m, type);
    }
  }

  /** The parameters of {@code --params}; a file that cannot be read is a usage error naming the option. */
  private Params read(Layer layer, Shape perExample, NDManager m, DataType type) {
    try {
      return ParamsFiles.read(layer, perExample, params, m, type);
    } catch (IOException e) {
      throw new UsageException("--params " + params + ": " + Outputs.reason(e));
    }
  }
}
