package dev.ntk.transforms;

import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.io.TileKey;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.engine.Backend;
import dev.ntk.kernels.linalg.DenseMatrix;
import dev.ntk.kernels.predict.GpPosterior;
import dev.ntk.kernels.predict.GradientDescent;
import dev.ntk.kernels.predict.Loss;
import dev.ntk.kernels.predict.MseDynamics;
import dev.ntk.transforms.PredictSettings.Mode;
import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.stream.Stream;
import org.apache.beam.sdk.coders.KvCoder;
import org.apache.beam.sdk.coders.VarIntCoder;
import org.apache.beam.sdk.coders.VarLongCoder;
import org.apache.beam.sdk.transforms.DoFn;
import org.apache.beam.sdk.transforms.GroupByKey;
import org.apache.beam.sdk.transforms.PTransform;
import org.apache.beam.sdk.transforms.ParDo;
import org.apache.beam.sdk.transforms.Values;
import org.apache.beam.sdk.transforms.View;
import org.apache.beam.sdk.transforms.WithKeys;
import org.apache.beam.sdk.values.KV;
import org.apache.beam.sdk.values.PBegin;
import org.apache.beam.sdk.values.PCollection;
import org.apache.beam.sdk.values.PCollectionView;
import org.apache.beam.sdk.values.TypeDescriptors;

/**
 * Predictions of the infinite network as a Beam final transform over the kernel tiles: exact GP
 * inference ({@link GpPosterior}), gradient descent on MSE in closed form for the ensemble or one
 * network ({@link MseDynamics}), or gradient descent on any loss by ODE ({@link
 * GradientDescent}), as {@link PredictSettings} says.
 *
 * <ol>
 *   <li>the train-train tiles are computed and assembled once into a native matrix (never a
 *       Java-serialized element), factored (Cholesky) or decomposed (eigh) once, and the result
 *       is written to files beside the tiles; only their small description is a side input, and
 *       each worker JVM reads the files once (from the shared file system on a cluster);
 *   <li>the test-train tiles are grouped by block of test rows; each block's predictions at all
 *       times are computed in parallel;
 *   <li>the blocks are gathered into {@code mean.npy} ({@code (N_test,) + y.shape[1:]}, with a
 *       leading time axis for several times), with a covariance the test-test tiles give {@code
 *       cov.npy}, and with {@code nll} {@code nll.npy} (a scalar).
 * </ol>
 *
 * <p>Emits the paths written. Outputs take the train-train set's dtype; the solve is float64. A
 * NaN or infinity in a result fails the pipeline rather than reaching a file.
 */
public final class GpInference extends PTransform<PBegin, PCollection<String>> {
  private static final long serialVersionUID = 1L;

  private final TileSet trainTrain;
  private final TileSet testTrain;
  private final TileSet testTest;
  private final String yTrain;
  private final PredictSettings settings;
  private final String directory;
  private final Backend backend;

  private GpInference(TileSet trainTrain, TileSet testTrain, TileSet testTest, String yTrain,
      PredictSettings settings, String directory, Backend backend) {
    this.trainTrain = trainTrain;
    this.testTrain = testTrain;
    this.testTest = testTest;
    this.yTrain = yTrain;
    this.settings = settings;
    this.directory = directory;
    this.backend = backend;
  }

  /** The same transform with its kernel tiles computed on {@code newBackend} (see {@link KernelTiles}). */
  public GpInference withBackend(Backend newBackend) {
    return new GpInference(trainTrain, testTrain, testTest, yTrain, settings, directory,
        java.util.Objects.requireNonNull(newBackend, "backend"));
  }

  /** Exact inference ({@code t = inf}); see {@link #of(TileSet, TileSet, TileSet, Path, PredictSettings, Path)}. */
  public static GpInference of(TileSet trainTrain, TileSet testTrain, TileSet testTest, Path yTrain,
      Get get, double diagReg, Path directory) {
    return of(trainTrain, testTrain, testTest, yTrain, PredictSettings.exact(get, diagReg), directory);
  }

  /**
   * Predictions from the tile sets of the train-train kernel ({@code x_train} with itself), the
   * test-train kernel ({@code x_test} against {@code x_train}) and, for a covariance, the test-test
   * kernel ({@code null} for none); results go to {@code directory}.
   */
  public static GpInference of(TileSet trainTrain, TileSet testTrain, TileSet testTest, Path yTrain,
      PredictSettings settings, Path directory) {
    if (!trainTrain.symmetric() || testTrain.symmetric() || (testTest != null && !testTest.symmetric())) {
      throw new IllegalArgumentException("expected train-train and test-test kernels of one input each "
          + "and a test-train kernel between two");
    }
    if (testTrain.n2() != trainTrain.n1() || (testTest != null && testTest.n1() != testTrain.n1())) {
      throw new IllegalArgumentException("the tile sets do not fit together: " + trainTrain + ", "
          + testTrain + ", " + testTest);
    }
    if (testTest != null && (settings.mode() == Mode.ODE || settings.singleNetwork())) {
      throw new IllegalArgumentException("a covariance is that of the infinite ensemble under MSE: "
          + "not with initial outputs, another loss or momentum");
    }
    return new GpInference(trainTrain, testTrain, testTest, yTrain.toAbsolutePath().toString(), settings,
        directory.toAbsolutePath().toString(), Backend.AUTO);
  }

  /**
   * Where the factored train side lives: {@code dir} holds the files of {@code mode}; the {@code
   * id} is unique to the run (the key under which workers keep what they read).
   */
  record Factored(String dir, String id, int n, int outputs, long[] yShape, double nll) implements Serializable {
    private static final long serialVersionUID = 1L;
  }

  /** The predictions for a block of test rows at every time, and its kernels if a later step needs them. */
  record Block(long rowOffset, int rows, double[][] means, double[] testTrainGet, double[] testTrainNngp)
      implements Serializable {
    private static final long serialVersionUID = 1L;
  }

  @Override
  public PCollection<String> expand(PBegin begin) {
    boolean cov = testTest != null;
    String factorDir = Path.of(trainTrain.directory()).resolveSibling("factor").toString();
    PCollectionView<Factored> factor = begin
        .apply("TrainTrainTiles", KernelTiles.of(trainTrain).withBackend(backend))
        .apply("GatherTrainTrain", new GatherTiles())
        .apply("Factor", ParDo.of(new FactorFn(trainTrain, yTrain, settings, cov, factorDir)))
        .setCoder(ValueCoder.of(Factored.class))
        .apply("FactorView", View.asSingleton());
    PCollection<Block> blocks = begin
        .apply("TestTrainTiles", KernelTiles.of(testTrain).withBackend(backend))
        .apply("ByTestBlock", WithKeys.of(TileKey::rowOffset).withKeyType(TypeDescriptors.longs()))
        .setCoder(KvCoder.of(VarLongCoder.of(), TileKeyCoder.of()))
        .apply("GroupTestBlock", GroupByKey.create())
        .apply("PredictBlocks", ParDo.of(new PredictBlockFn(testTrain, settings, factor, cov))
            .withSideInputs(factor))
        .setCoder(ValueCoder.of(Block.class));
    PCollectionView<List<TileKey>> testTestView = cov
        ? begin.apply("TestTestTiles", KernelTiles.of(testTest).withBackend(backend)).apply("TestTestView", View.asList())
        : null;
    WriteFn write = new WriteFn(testTrain.n1(), trainTrain.dtype(), testTest, settings, yTrain, directory,
        factor, testTestView);
    ParDo.SingleOutput<Iterable<Block>, String> writeStep = ParDo.of(write).withSideInputs(factor);
    if (cov) {
      writeStep = writeStep.withSideInputs(testTestView);
    }
    return blocks
        .apply("OneGroup", WithKeys.<Integer, Block>of(0))
        .setCoder(KvCoder.of(VarIntCoder.of(), ValueCoder.of(Block.class)))
        .apply("GatherBlocks", GroupByKey.create())
        .apply("Blocks", Values.create())
        .apply("Write", writeStep);
  }

  /** Whether the NNGP train-train kernel is needed beside the selected one (NTK covariance). */
  private static boolean needsNngp(PredictSettings settings, boolean cov) {
    return cov && settings.get() == Get.NTK;
  }

  private static final class FactorFn extends DoFn<List<TileKey>, Factored> {
    private static final long serialVersionUID = 1L;
    private final TileSet tiles;
    private final String yTrain;
    private final PredictSettings settings;
    private final boolean cov;
    private final String factorDir;

    FactorFn(TileSet tiles, String yTrain, PredictSettings settings, boolean cov, String factorDir) {
      this.tiles = tiles;
      this.yTrain = yTrain;
      this.settings = settings;
      this.cov = cov;
      this.factorDir = factorDir;
    }

    @ProcessElement
    public void process(@Element List<TileKey> keys, OutputReceiver<Factored> out) throws IOException {
      GatherTiles.checkComplete(tiles, keys);
      int n = Math.toIntExact(tiles.n1());
      NpyArray y = Npy.read(Path.of(yTrain));
      if (y.ndim() < 1 || y.shape()[0] != n) {
        throw new IllegalArgumentException(yTrain + ": expected " + n + " rows of targets, got shape "
            + y.shapeString());
      }
      int outputs = y.data().length / n;
      double[] fxTrain0 = initial(settings.fxTrain0(), y.shape());
      Path dir = Path.of(factorDir);
      deleteTree(dir);
      Files.createDirectories(dir);
      boolean nngp = needsNngp(settings, cov);
      String get = settings.get().key();
      DenseMatrix g = DenseMatrix.zeros(n, n);
      DenseMatrix kdd = nngp ? DenseMatrix.zeros(n, n) : null;
      try {
        for (long r = 0; r < n; r += tiles.tileSize()) {   // one band of tile rows at a time
          int rows = (int) Math.min(tiles.tileSize(), n - r);
          Map<String, double[]> band = tiles.assemble(r, rows, keys);
          g.setRows(r, rows, band.get(get));
          if (nngp) {
            kdd.setRows(r, rows, band.get(Get.NNGP.key()));
          }
        }
        double nll = Double.NaN;
        if (settings.nll()) {
          try (GpPosterior p = GpPosterior.factor(g.copy(), y.data(), outputs, settings.diagReg(), get)) {
            nll = p.nll(y.data());
          }
        }
        switch (settings.mode()) {
          case CHOLESKY -> {
            try (GpPosterior p = GpPosterior.factor(g, y.data(), outputs, settings.diagReg(), get)) {
              g = null;
              p.write(dir);
            }
            if (nngp) {
              kdd.write(dir.resolve("nngp.f64"));
            }
          }
          case EIGEN -> {
            try (MseDynamics d = MseDynamics.decompose(g, outputs, settings.learningRate(), settings.diagReg(), get);
                DenseMatrix residual = d.residual(fxTrain0, y.data())) {
              g = null;
              d.write(dir);
              residual.write(dir.resolve("residual.f64"));
              if (nngp) {
                try (DenseMatrix projected = d.projectKernel(kdd)) {
                  projected.write(dir.resolve("projected.f64"));
                }
              }
            }
          }
          case ODE -> g.write(dir.resolve("kernel.f64"));
          default -> throw new IllegalStateException(settings.mode().toString());
        }
        out.output(new Factored(dir.toString(), UUID.randomUUID().toString(), n, outputs, y.shape(), nll));
      } finally {
        if (g != null) {
          g.close();
        }
        if (kdd != null) {
          kdd.close();
        }
      }
    }
  }

  /** What a worker reads once from the factor files, shared by its threads. */
  private static final class Loaded implements AutoCloseable {
    final GpPosterior posterior;
    final MseDynamics dynamics;
    final DenseMatrix residual;
    int users;

    Loaded(Factored f, PredictSettings settings) throws IOException {
      Path dir = Path.of(f.dir());
      Mode mode = settings.mode();
      posterior = mode == Mode.CHOLESKY ? GpPosterior.read(dir, f.n(), f.outputs(), false) : null;
      dynamics = mode == Mode.EIGEN ? MseDynamics.read(dir, f.n(), f.outputs(), settings.get().key()) : null;
      residual = mode == Mode.EIGEN ? DenseMatrix.read(dir.resolve("residual.f64"), f.n(), f.outputs()) : null;
    }

    private static final Map<String, Loaded> LOADED = new java.util.HashMap<>();

    static synchronized Loaded acquire(Factored f, PredictSettings settings) throws IOException {
      Loaded l = LOADED.get(f.id());
      if (l == null) {
        l = new Loaded(f, settings);
        LOADED.put(f.id(), l);
      }
      l.users++;
      return l;
    }

    static synchronized void release(Factored f) {
      Loaded l = LOADED.get(f.id());
      if (l != null && --l.users == 0) {
        LOADED.remove(f.id());
        l.close();
      }
    }

    @Override
    public void close() {
      if (posterior != null) {
        posterior.close();
      }
      if (dynamics != null) {
        dynamics.close();
      }
      if (residual != null) {
        residual.close();
      }
    }
  }

  private static final class PredictBlockFn extends DoFn<KV<Long, Iterable<TileKey>>, Block> {
    private static final long serialVersionUID = 1L;
    private final TileSet tiles;
    private final PredictSettings settings;
    private final PCollectionView<Factored> factor;
    private final boolean cov;
    private transient Factored held;
    private transient Loaded loaded;

    PredictBlockFn(TileSet tiles, PredictSettings settings, PCollectionView<Factored> factor, boolean cov) {
      this.tiles = tiles;
      this.settings = settings;
      this.factor = factor;
      this.cov = cov;
    }

    @ProcessElement
    public void process(ProcessContext c) throws IOException {
      long rowOffset = c.element().getKey();
      List<TileKey> keys = new ArrayList<>();
      c.element().getValue().forEach(keys::add); // a group may be iterable only once
      int rows = keys.iterator().next().rows();
      Map<String, double[]> k = tiles.assemble(rowOffset, rows, keys);
      double[] kGet = k.get(settings.get().key());
      Factored f = c.sideInput(factor);
      Mode mode = settings.mode();
      double[][] means = new double[settings.times().length][];
      if (mode != Mode.ODE) {
        Loaded l = load(f);
        if (mode == Mode.CHOLESKY) {
          double[] mean = l.posterior.mean(kGet, rows);
          java.util.Arrays.fill(means, mean);
        } else {
          double[] fxTest0 = settings.fxTest0() == null ? null
              : Npy.readRows(Path.of(settings.fxTest0()), rowOffset, rows).data();
          try (DenseMatrix rotated = l.dynamics.rotate(kGet, rows)) {
            for (int i = 0; i < means.length; i++) {
              means[i] = l.dynamics.testOutputs(settings.times()[i], fxTest0, rotated, l.residual);
            }
          }
        }
      }
      boolean keep = cov || mode == Mode.ODE;
      c.output(new Block(rowOffset, rows, means, keep ? kGet : null,
          needsNngp(settings, cov) ? k.get(Get.NNGP.key()) : null));
    }

    private Loaded load(Factored f) throws IOException {
      if (held == null || !held.id().equals(f.id())) {
        teardown();
        loaded = Loaded.acquire(f, settings);
        held = f;
      }
      return loaded;
    }

    @Teardown
    public void teardown() {
      if (held != null) {
        Loaded.release(held);
        held = null;
        loaded = null;
      }
    }
  }

  private static final class WriteFn extends DoFn<Iterable<Block>, String> {
    private static final long serialVersionUID = 1L;
    private final long testRows;
    private final NpyDType dtype;
    private final TileSet testTest;
    private final PredictSettings settings;
    private final String yTrain;
    private final String directory;
    private final PCollectionView<Factored> factor;
    private final PCollectionView<List<TileKey>> testTestKeys;

    WriteFn(long testRows, NpyDType dtype, TileSet testTest, PredictSettings settings, String yTrain,
        String directory, PCollectionView<Factored> factor, PCollectionView<List<TileKey>> testTestKeys) {
      this.testRows = testRows;
      this.dtype = dtype;
      this.testTest = testTest;
      this.settings = settings;
      this.yTrain = yTrain;
      this.directory = directory;
      this.factor = factor;
      this.testTestKeys = testTestKeys;
    }

    @ProcessElement
    public void process(ProcessContext c) throws IOException {
      List<Block> blocks = new ArrayList<>();
      c.element().forEach(blocks::add);
      blocks.sort(Comparator.comparingLong(Block::rowOffset));
      Factored f = c.sideInput(factor);
      int m = Math.toIntExact(testRows);
      int n = f.n();
      int outputs = f.outputs();
      int times = settings.times().length;
      double[][] means = new double[times][m * outputs];
      boolean keep = testTest != null || settings.mode() == Mode.ODE;
      double[] kGet = keep ? new double[Math.multiplyExact(m, n)] : null;
      double[] kNngp = needsNngp(settings, testTest != null) ? new double[m * n] : kGet;
      long next = 0;
      for (Block b : blocks) {
        if (b.rowOffset() != next) {
          throw new IllegalStateException("test rows from " + next + " have no prediction");
        }
        int at = Math.toIntExact(b.rowOffset());
        for (int i = 0; i < times && b.means()[i] != null; i++) {
          System.arraycopy(b.means()[i], 0, means[i], at * outputs, b.means()[i].length);
        }
        if (kGet != null) {
          System.arraycopy(b.testTrainGet(), 0, kGet, at * n, b.testTrainGet().length);
          if (kNngp != kGet) {
            System.arraycopy(b.testTrainNngp(), 0, kNngp, at * n, b.testTrainNngp().length);
          }
        }
        next += b.rows();
      }
      if (next != testRows) {
        throw new IllegalStateException("predicted " + next + " of " + testRows + " test rows");
      }
      Path dir = Path.of(f.dir());
      if (settings.mode() == Mode.ODE) {
        means = integrate(f, dir, kGet, m);
      }
      double[][] covs = testTest == null ? null : covariances(f, dir, kGet, kNngp, m, c.sideInput(testTestKeys));
      long[] meanShape = f.yShape().clone();
      meanShape[0] = testRows;
      List<Path> written = new ArrayList<>();
      written.add(write("mean.npy", meanShape, means));
      if (covs != null) {
        written.add(write("cov.npy", new long[] {m, m}, covs));
      }
      if (settings.nll()) {
        written.add(write("nll.npy", new long[0], new double[][] {{f.nll()}}));
      }
      deleteTree(dir);
      for (Path p : written) {
        c.output(p.toString());
      }
    }

    private double[][] integrate(Factored f, Path dir, double[] kTestTrain, int m) throws IOException {
      int n = f.n();
      double[] y = Npy.read(Path.of(yTrain)).data();
      double[] fxTrain0 = initial(settings.fxTrain0(), f.yShape());
      long[] testShape = f.yShape().clone();
      testShape[0] = m;
      double[] fxTest0 = initial(settings.fxTest0(), testShape);
      try (DenseMatrix dd = DenseMatrix.read(dir.resolve("kernel.f64"), n, n);
          DenseMatrix td = DenseMatrix.of(m, n, kTestTrain)) {
        GradientDescent.Outputs[] out = GradientDescent.integrate(Loss.of(settings.loss()), dd, td, y,
            f.outputs(), settings.learningRate(), settings.mass(), fxTrain0, fxTest0, settings.times(), 1e-10);
        double[][] means = new double[out.length][];
        for (int i = 0; i < out.length; i++) {
          means[i] = out[i].test();
        }
        return means;
      }
    }

    private double[][] covariances(Factored f, Path dir, double[] kGet, double[] kNngp, int m,
        List<TileKey> keys) throws IOException {
      int n = f.n();
      GatherTiles.checkComplete(testTest, keys);
      double[] kTestTest = testTest.assemble(0, m, keys).get(Get.NNGP.key());
      boolean ntk = settings.get() == Get.NTK;
      double[][] covs = new double[settings.times().length][];
      if (settings.mode() == Mode.CHOLESKY) {
        try (GpPosterior p = GpPosterior.read(dir, n, f.outputs(), true);
            DenseMatrix kdd = ntk ? DenseMatrix.read(dir.resolve("nngp.f64"), n, n) : null) {
          java.util.Arrays.fill(covs, p.covariance(settings.get(), kdd, kGet, kNngp, kTestTest, m));
        }
        return covs;
      }
      try (MseDynamics d = MseDynamics.read(dir, n, f.outputs(), settings.get().key());
          DenseMatrix rotated = d.rotate(kGet, m);
          DenseMatrix rotatedNngp = ntk ? d.rotate(kNngp, m) : null;
          DenseMatrix projected = ntk ? DenseMatrix.read(dir.resolve("projected.f64"), n, n) : null) {
        for (int i = 0; i < covs.length; i++) {
          covs[i] = d.covariance(settings.times()[i], ntk, rotated, ntk ? rotatedNngp : rotated, projected,
              kTestTest, m);
        }
      }
      return covs;
    }

    private Path write(String name, long[] shape, double[][] perTime) throws IOException {
      return PredictionFiles.write(Path.of(directory), name, shape, perTime, dtype);
    }
  }

  /** Initial outputs from {@code file} of shape {@code shape}, or null for none. */
  private static double[] initial(String file, long[] shape) throws IOException {
    if (file == null) {
      return null;
    }
    NpyArray a = Npy.read(Path.of(file));
    if (!java.util.Arrays.equals(a.shape(), shape)) {
      throw new IllegalArgumentException(file + ": expected initial outputs of shape "
          + Npy.shapeString(shape) + ", got " + a.shapeString());
    }
    return a.data();
  }

  private static void deleteTree(Path dir) {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> walk = Files.walk(dir)) {
      for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
