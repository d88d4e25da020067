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
import dev.ntk.kernels.Params;
import dev.ntk.kernels.Tensors;
import dev.ntk.transforms.ParamsFiles;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.OptionalLong;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code ntk empirical}: the empirical NNGP {@code f(x1) f(x2)^T} and NTK {@code J(x1) J(x2)^T} of
 * one finite network of the model ({@link EmpiricalKernels}), averaged over the output entries
 * (neural-tangents' {@code trace_axes=(-1,)}) unless {@code --keep-channels}, computed in-process
 * by the chosen implementation. The parameters are drawn by the model's {@code init} with {@code
 * --seed}, or read from a parameters file ({@code --params}, {@link ParamsFiles}) for the model
 * and the per-example shape of {@code --x1}; both at once are refused.
 */
@Command(name = "empirical", mixinStandardHelpOptions = true,
    description = "Empirical NNGP and NTK of one finite network: writes DIR/nngp.npy and DIR/ntk.npy (N1, N2).")
final class EmpiricalCommand implements Callable<Integer> {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @CommandLine.Mixin KernelInputs inputs;

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

  @Option(names = "--dtype", paramLabel = "DTYPE", defaultValue = "float64",
      description = "float64 (default) or float32: the parameters, the computation and the outputs.")
  NpyDType dtype;

  @Option(names = "--verbose", description = "Print the stack trace of a failure.")
  boolean verbose;

  @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output directory.")
  Path out;

  @Override
  public Integer call() throws IOException {
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
    Layer layer = InputChecks.model(inputs.model).layer();
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
    double seconds = (System.nanoTime() - start) / 1e9;
    PrintWriter w = spec.commandLine().getOut();
    w.println(String.format(Locale.ROOT, "empirical: %s, parameters %s, %s%s, in-process: %.1f s",
        kernels.contains(Get.NTK) ? impl.key() + " NTK" : "NNGP",
        params == null ? "drawn with seed " + seed : "from " + params, dtype.typeName(),
        keepChannels ? ", output channels kept" : "", seconds));
    for (String f : results) {
      w.println("wrote " + out.resolve(f) + " " + Ntk.describe(out.resolve(f)));
    }
    return 0;
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
