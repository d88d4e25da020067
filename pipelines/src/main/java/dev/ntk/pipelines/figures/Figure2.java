package dev.ntk.pipelines.figures;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.kernels.Kernel;
import dev.ntk.kernels.Layer;
import dev.ntk.kernels.Model;
import dev.ntk.kernels.MonteCarlo;
import dev.ntk.kernels.Tensors;
import java.awt.Color;
import java.io.IOException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Figure 2 of the Neural Tangents paper: Monte Carlo estimates of a network's NNGP and NTK
 * converging to the analytic kernels as the number of sampled networks and their width grow. For
 * each width of {@code --widths} (every {@code Dense} layer's {@code out_dim} and every
 * convolution's {@code out_chan}, as {@code ntk mc --width}), one sequence of parameter draws gives
 * the estimates after each count of {@code --samples} ({@link MonteCarlo#nngp(Layer, NDArray,
 * NDArray, int[], long)}); the figure plots their relative distance {@code ||K_mc - K||_F /
 * ||K||_F} to the analytic kernel against the count, log-log, one line per width. The distance
 * falls as {@code 1/sqrt(samples)} until it meets the {@code O(1/width)} bias of finite networks.
 *
 * <p>Writes into {@code --out}: {@code figure2.png} (the NNGP panel and the NTK panel), {@code
 * x.npy} the inputs {@code (N, H, H, 3)} (standard normal from {@code --seed}), {@code
 * samples.npy} {@code (S,)} and {@code widths.npy} {@code (W,)}, {@code nngp.npy} and {@code
 * ntk.npy} the analytic kernels {@code (N, N)}, {@code nngp_mc.npy} and {@code ntk_mc.npy} the
 * estimates {@code (W, S, N, N)} (what {@code ntk mc --samples S.. --width W..} writes) and
 * {@code nngp_error.npy} and {@code ntk_error.npy} the relative distances {@code (W, S)}. Run
 * through {@code examples/wideresnet/figure.sh OUT} on a small WideResNet.
 */
@Command(name = "figure2", mixinStandardHelpOptions = true,
    description = "The Neural Tangents paper's Figure 2: Monte Carlo kernels converging to the analytic ones; "
        + "writes OUT/figure2.png and its data.")
public final class Figure2 implements Callable<Integer> {
  @Option(names = "--model", required = true, paramLabel = "M.json", description = "The model file.")
  Path model;

  @Option(names = "--images", paramLabel = "N", defaultValue = "4",
      description = "Number of input images (default 4).")
  int images;

  @Option(names = "--image-size", paramLabel = "H", defaultValue = "8",
      description = "Height and width of the H x H x 3 input images (default 8).")
  int imageSize;

  @Option(names = "--widths", split = ",", paramLabel = "W[,W...]", defaultValue = "8,16,32",
      description = "Widths of the finite networks, one line each (default 8,16,32).")
  int[] widths;

  @Option(names = "--samples", split = ",", paramLabel = "S[,S...]", defaultValue = "2,4,8,16,32",
      description = "Increasing numbers of sampled networks (default 2,4,8,16,32).")
  int[] samples;

  @Option(names = "--seed", paramLabel = "SEED", defaultValue = "0",
      description = "Seed of the inputs and of the parameter draws (default 0).")
  long seed;

  @Option(names = "--out", required = true, paramLabel = "OUT", description = "Output directory.")
  Path out;

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  /** The colours of the widths' lines, in order (then repeated). */
  private static final List<Color> COLOURS =
      List.of(Figures.ORANGE, Figures.BLUE, Figures.GREEN, Figures.VERMILION, Figures.PURPLE);

  public static void main(String[] args) {
    System.exit(run(args, System.out, System.err));
  }

  /**
   * Runs with {@code args}; returns 0, 2 for a problem with the inputs (one line on {@code err}),
   * or 1 for an internal failure.
   */
  public static int run(String[] args, PrintStream out, PrintStream err) {
    return Figures.run(new Figure2(), args, out, err);
  }

  @Override
  public Integer call() throws IOException {
    MonteCarlo.checkCounts(samples);
    if (images < 1 || imageSize < 1) {
      throw new IllegalArgumentException("--images and --image-size must be at least 1, got " + images + " and "
          + imageSize);
    }
    if (widths.length == 0) {
      throw new IllegalArgumentException("--widths: need at least one width");
    }
    Model parsed = Model.read(model);
    List<Model> finite = new ArrayList<>();
    for (int w : widths) {
      if (w < 1) {
        throw new IllegalArgumentException("--widths must be at least 1, got " + w);
      }
      finite.add(parsed.withWidth(w, false));
    }
    PrintWriter log = spec.commandLine().getOut();
    int n = images;
    int s = samples.length;
    double[] pixels = new double[n * imageSize * imageSize * 3];
    SplittableRandom rng = new SplittableRandom(seed);
    for (int i = 0; i < pixels.length; i++) {
      pixels[i] = rng.nextGaussian();
    }
    Shape shape = new Shape(n, imageSize, imageSize, 3);
    double[] nngp;
    double[] ntk;
    double[] nngpMc = new double[widths.length * s * n * n];
    double[] ntkMc = new double[nngpMc.length];
    double[] nngpError = new double[widths.length * s];
    double[] ntkError = new double[nngpError.length];
    try (NDManager m = Tensors.newManager()) {
      NDArray x = Tensors.create(m, pixels, shape, DataType.FLOAT64);
      parsed.layer().check(shape.slice(1));
      long start = System.nanoTime();
      Kernel analytic = parsed.layer().kernelFn().apply(x, x);
      nngp = Tensors.toDoubles(analytic.nngp());
      ntk = Tensors.toDoubles(analytic.ntk());
      log.println(String.format(Locale.ROOT, "figure2: analytic kernels of %d images %dx%dx3: %.1f s", n, imageSize,
          imageSize, (System.nanoTime() - start) / 1e9));
      for (int w = 0; w < widths.length; w++) {
        Layer layer = finite.get(w).layer();
        start = System.nanoTime();
        List<MonteCarlo.Estimate> nngpCurve = MonteCarlo.nngp(layer, x, x, samples, seed);
        double nngpSeconds = (System.nanoTime() - start) / 1e9;
        start = System.nanoTime();
        List<MonteCarlo.Estimate> ntkCurve = MonteCarlo.ntk(layer, x, x, samples, MonteCarlo.NTK_CHANNELS, seed);
        double ntkSeconds = (System.nanoTime() - start) / 1e9;
        for (int k = 0; k < s; k++) {
          System.arraycopy(nngpCurve.get(k).mean(), 0, nngpMc, (w * s + k) * n * n, n * n);
          System.arraycopy(ntkCurve.get(k).mean(), 0, ntkMc, (w * s + k) * n * n, n * n);
          nngpError[w * s + k] = relativeDistance(nngpCurve.get(k).mean(), nngp);
          ntkError[w * s + k] = relativeDistance(ntkCurve.get(k).mean(), ntk);
        }
        log.println(String.format(Locale.ROOT, "figure2: width %d, %d samples: NNGP %.1f s (distance %.4f), "
            + "NTK %.1f s (distance %.4f)", widths[w], samples[s - 1], nngpSeconds, nngpError[w * s + s - 1],
            ntkSeconds, ntkError[w * s + s - 1]));
      }
    }

    Files.createDirectories(out);
    List<Path> written = new ArrayList<>();
    long[] wide = {widths.length, s};
    write("x.npy", new long[] {n, imageSize, imageSize, 3}, pixels, written);
    write("samples.npy", new long[] {s}, toDoubles(samples), written);
    write("widths.npy", new long[] {widths.length}, toDoubles(widths), written);
    write("nngp.npy", new long[] {n, n}, nngp, written);
    write("ntk.npy", new long[] {n, n}, ntk, written);
    write("nngp_mc.npy", new long[] {widths.length, s, n, n}, nngpMc, written);
    write("ntk_mc.npy", new long[] {widths.length, s, n, n}, ntkMc, written);
    write("nngp_error.npy", wide, nngpError, written);
    write("ntk_error.npy", wide, ntkError, written);

    List<Figures.Panel> panels = List.of(panel("NNGP", nngpError), panel("NTK", ntkError));
    Path png = out.resolve("figure2.png");
    Figures.writePng(panels, png);
    log.println("wrote " + png + " (" + Figures.PANEL_WIDTH * panels.size() + " x " + Figures.PANEL_HEIGHT + ")");
    for (Path f : written) {
      log.println("wrote " + f + " " + Npy.shapeString(Npy.readHeader(f).shape()));
    }
    return 0;
  }

  /**
   * One kernel's panel: a line per width, and a grey {@code 1/sqrt(samples)} through the
   * narrowest width's first point, the rate the Monte Carlo error alone would fall at.
   */
  private Figures.Panel panel(String kernel, double[] errors) {
    int s = samples.length;
    double[] counts = toDoubles(samples);
    List<Figures.Curve> curves = new ArrayList<>();
    for (int w = 0; w < widths.length; w++) {
      double[] e = java.util.Arrays.copyOfRange(errors, w * s, (w + 1) * s);
      curves.add(Figures.Curve.line("width " + widths[w], counts, e, COLOURS.get(w % COLOURS.size())));
    }
    double[] rate = new double[s];
    for (int k = 0; k < s; k++) {
      rate[k] = errors[0] * Math.sqrt(counts[0] / counts[k]);
    }
    curves.add(Figures.Curve.line("1/\u221an", counts, rate, Figures.GREY));
    return new Figures.Panel(kernel + ": Monte Carlo vs analytic", "samples n",
        "||K_mc - K||_F / ||K||_F", curves, List.of(), true);
  }

  private void write(String name, long[] shape, double[] values, List<Path> written) throws IOException {
    Path f = out.resolve(name);
    Npy.write(f, new NpyArray(shape, NpyDType.FLOAT64, values));
    written.add(f);
  }

  /** {@code ||a - b||_F / ||b||_F}. */
  static double relativeDistance(double[] a, double[] b) {
    double num = 0;
    double den = 0;
    for (int i = 0; i < a.length; i++) {
      num += (a[i] - b[i]) * (a[i] - b[i]);
      den += b[i] * b[i];
    }
    return Math.sqrt(num / den);
  }

  private static double[] toDoubles(int[] values) {
    double[] d = new double[values.length];
    for (int i = 0; i < d.length; i++) {
      d[i] = values[i];
    }
    return d;
  }
}
