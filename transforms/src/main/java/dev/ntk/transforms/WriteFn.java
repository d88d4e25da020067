package dev.ntk.transforms;

import static dev.ntk.transforms.InferenceChecks.checkAgainstTrain;
import static dev.ntk.transforms.InferenceChecks.checkComplete;
import static dev.ntk.transforms.InferenceChecks.inputs;
import static dev.ntk.transforms.InferenceChecks.kernel;
import static dev.ntk.transforms.InferenceChecks.needsNngp;
import static dev.ntk.transforms.InferenceChecks.repeated;
import static dev.ntk.transforms.InferenceInputs.initial;
import static dev.ntk.transforms.InferenceInputs.readNpy;
import static dev.ntk.transforms.InferenceValues.NO_ROWS;

import dev.ntk.io.Tile;
import dev.ntk.io.TileKey;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.linalg.DenseMatrix;
import dev.ntk.kernels.predict.GpPosterior;
import dev.ntk.kernels.predict.GradientDescent;
import dev.ntk.kernels.predict.Loss;
import dev.ntk.kernels.predict.MseDynamics;
import dev.ntk.transforms.InferenceValues.Block;
import dev.ntk.transforms.InferenceValues.BlockCoder;
import dev.ntk.transforms.InferenceValues.Factored;
import dev.ntk.transforms.PredictSettings.Mode;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.beam.sdk.coders.KvCoder;
import org.apache.beam.sdk.coders.VarIntCoder;
import org.apache.beam.sdk.io.fs.ResourceId;
import org.apache.beam.sdk.transforms.Create;
import org.apache.beam.sdk.transforms.DoFn;
import org.apache.beam.sdk.transforms.Flatten;
import org.apache.beam.sdk.transforms.GroupByKey;
import org.apache.beam.sdk.transforms.ParDo;
import org.apache.beam.sdk.transforms.Values;
import org.apache.beam.sdk.transforms.WithKeys;
import org.apache.beam.sdk.values.KV;
import org.apache.beam.sdk.values.PCollection;
import org.apache.beam.sdk.values.PCollectionList;
import org.apache.beam.sdk.values.PCollectionView;

/** Puts the blocks together, adds the covariance or the ODE solution, writes the outputs. */
final class WriteFn<T> extends DoFn<Iterable<Block>, String> {
  private static final long serialVersionUID = 1L;
  private final long testRows;
  private final PredictSettings settings;
  private final String yTrain;
  private final String directory;
  private final PCollectionView<Factored> factor;
  private final TileAccess<T> testTest;
  private final PCollectionView<List<T>> testTestView;

  WriteFn(long testRows, PredictSettings settings, String yTrain, String directory,
      PCollectionView<Factored> factor, TileAccess<T> testTest, PCollectionView<List<T>> testTestView) {
    this.testRows = testRows;
    this.settings = settings;
    this.yTrain = yTrain;
    this.directory = directory;
    this.factor = factor;
    this.testTest = testTest;
    this.testTestView = testTestView;
  }

  @ProcessElement
  public void process(ProcessContext c) throws IOException {
    List<Block> blocks = new ArrayList<>();
    for (Block b : c.element()) {
      if (b.rowOffset() >= 0) {
        blocks.add(b);
      }
    }
    if (blocks.isEmpty()) {
      throw new IllegalArgumentException("there are no test-train tiles, so no test row to predict");
    }
    blocks.sort(Comparator.comparingLong(Block::rowOffset));
    Factored f = c.sideInput(factor);
    long next = 0;
    for (Block b : blocks) {
      if (b.rowOffset() != next) {
        throw new IllegalArgumentException(b.rowOffset() < next
            ? "the test-train tiles give test rows from " + b.rowOffset() + " twice"
            : "the test-train tiles give no test rows " + next + ".." + (b.rowOffset() - 1));
      }
      if (!b.testInputs().equals(blocks.get(0).testInputs())) {
        throw new IllegalArgumentException("the test-train tiles of test rows from " + b.rowOffset()
            + " are of other test inputs than those from 0");
      }
      next += b.rows();
    }
    if (testRows >= 0 && next != testRows) {
      throw new IllegalStateException("predicted " + next + " of " + testRows + " test rows");
    }
    int m = Math.toIntExact(next);
    int n = f.n();
    int outputs = f.outputs();
    int times = settings.times().length;
    double[][] means = new double[times][m * outputs];
    boolean cov = testTestView != null;
    boolean keep = cov || settings.mode() == Mode.ODE;
    double[] kGet = keep ? new double[Math.multiplyExact(m, n)] : null;
    double[] kNngp = needsNngp(settings, cov) ? new double[m * n] : kGet;
    for (Block b : blocks) {
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
    }
    ResourceId dir = BeamFiles.directory(f.dir());
    if (settings.mode() == Mode.ODE) {
      means = integrate(f, dir, kGet, m);
    }
    double[][] covs = cov ? covariances(f, dir, kGet, kNngp, m, c.sideInput(testTestView),
        blocks.get(0).testInputs()) : null;
    long[] meanShape = f.yShape().clone();
    meanShape[0] = m;
    ResourceId out = BeamFiles.directory(directory);
    List<ResourceId> written = new ArrayList<>();
    written.add(PredictionFiles.write(out, "mean.npy", meanShape, means, f.dtype()));
    if (covs != null) {
      written.add(PredictionFiles.write(out, "cov.npy", new long[] {m, m}, covs, f.dtype()));
    }
    if (settings.nll()) {
      written.add(PredictionFiles.write(out, "nll.npy", new long[0], new double[][] {{f.nll()}}, f.dtype()));
    }
    FactorFiles.delete(dir);
    for (ResourceId file : written) {
      c.output(file.toString());
    }
  }

  private double[][] integrate(Factored f, ResourceId dir, double[] kTestTrain, int m) throws IOException {
    int n = f.n();
    double[] y = readNpy(yTrain).data();
    double[] fxTrain0 = initial(settings.fxTrain0(), f.yShape());
    long[] testShape = f.yShape().clone();
    testShape[0] = m;
    double[] fxTest0 = initial(settings.fxTest0(), testShape);
    return FactorFiles.read(dir, List.of("kernel.f64"), local -> {
      try (DenseMatrix dd = DenseMatrix.read(local.resolve("kernel.f64"), n, n);
          DenseMatrix td = DenseMatrix.of(m, n, kTestTrain)) {
        GradientDescent.Outputs[] out = GradientDescent.integrate(Loss.of(settings.loss()), dd, td, y,
            f.outputs(), settings.learningRate(), settings.mass(), fxTrain0, fxTest0, settings.times(), 1e-10,
            settings.maxSteps());
        double[][] means = new double[out.length][];
        for (int i = 0; i < out.length; i++) {
          means[i] = out[i].test();
        }
        return means;
      }
    });
  }

  /** The test-test NNGP ({@code m x m}) from its tiles, checked against the other kernels. */
  private double[] testTestKernel(Factored f, List<T> items, int m, String testInputs) {
    String what = testTest.what();
    Map<TileKey, Tile> tiles = new HashMap<>();
    for (T item : items) {
      Tile t = testTest.tile(item);
      if (tiles.put(t.key(), t) != null) {
        throw repeated(t.key(), what);
      }
      checkAgainstTrain(t, f, what);
      String[] in = inputs(t.inputsHash());
      if (in.length != 1 || !in[0].equals(testInputs)) {
        throw new IllegalArgumentException(what + " are not the kernel of the test inputs of the "
            + "test-train tiles with themselves (their inputs are " + t.inputsHash() + ", the test inputs "
            + testInputs + ")");
      }
      kernel(t, Get.NNGP.key(), what, "the covariance");
      TileKey k = t.key();
      if (k.rowOffset() + k.rows() > m || k.colOffset() + k.cols() > m) {
        throw new IllegalArgumentException(what + ": the tile " + k.fileName() + " lies outside the "
            + m + " x " + m + " kernel of the " + m + " test rows of the test-train tiles");
      }
    }
    // mirrored (the tiles on and above the diagonal) or whole, as the in-process path computes it
    boolean mirrored = checkComplete(new ArrayList<>(tiles.keySet()), m, what);
    return Bands.assemble(m, m, mirrored, 0, m, tiles.keySet(), List.of(Get.NNGP.key()), tiles::get,
        testTest.where())
        .get(Get.NNGP.key());
  }

  private double[][] covariances(Factored f, ResourceId dir, double[] kGet, double[] kNngp, int m,
      List<T> testTestItems, String testInputs) throws IOException {
    int n = f.n();
    double[] kTestTest = testTestKernel(f, testTestItems, m, testInputs);
    boolean ntk = settings.get() == Get.NTK;
    double[][] covs = new double[settings.times().length][];
    if (settings.mode() == Mode.CHOLESKY) {
      List<String> names = ntk ? List.of("cholesky.f64", "alpha.f64", "nngp.f64")
          : List.of("cholesky.f64", "alpha.f64");
      return FactorFiles.read(dir, names, local -> {
        try (GpPosterior p = GpPosterior.read(local, n, f.outputs(), true);
            DenseMatrix kdd = ntk ? DenseMatrix.read(local.resolve("nngp.f64"), n, n) : null) {
          Arrays.fill(covs, p.covariance(settings.get(), kdd, kGet, kNngp, kTestTest, m));
        }
        return covs;
      });
    }
    List<String> names = ntk ? List.of("eigenvalues.f64", "eigenvectors.f64", "projected.f64")
        : List.of("eigenvalues.f64", "eigenvectors.f64");
    return FactorFiles.read(dir, names, local -> {
      try (MseDynamics d = MseDynamics.read(local, n, f.outputs(), settings.get().key());
          DenseMatrix rotated = d.rotate(kGet, m);
          DenseMatrix rotatedNngp = ntk ? d.rotate(kNngp, m) : null;
          DenseMatrix projected = ntk ? DenseMatrix.read(local.resolve("projected.f64"), n, n) : null) {
        for (int i = 0; i < covs.length; i++) {
          covs[i] = d.covariance(settings.times()[i], ntk, rotated, ntk ? rotatedNngp : rotated, projected,
              kTestTest, m);
        }
      }
      return covs;
    });
  }

  /**
   * The shared tail: gathers the blocks into one element and writes the outputs. {@code testRows}
   * is the number of test rows, or {@code -1} when only the tiles say it.
   */
  static <T> PCollection<String> gatherAndWrite(PCollection<Block> blocks, long testRows,
      PredictSettings settings, String directory, String yTrain, PCollectionView<Factored> factor,
      TileAccess<T> testTest, PCollectionView<List<T>> testTestView) {
    WriteFn<T> write = new WriteFn<>(testRows, settings, yTrain, directory, factor, testTest, testTestView);
    ParDo.SingleOutput<Iterable<Block>, String> writeStep = ParDo.of(write).withSideInputs(factor);
    if (testTestView != null) {
      writeStep = writeStep.withSideInputs(testTestView);
    }
    KvCoder<Integer, Block> coder = KvCoder.of(VarIntCoder.of(), BlockCoder.INSTANCE);
    PCollection<KV<Integer, Block>> keyed = blocks.apply("OneGroup", WithKeys.<Integer, Block>of(0)).setCoder(coder);
    // One block more that holds no rows, so that the group, and the write step, exist even when
    // there are no test-train tiles at all (which the write step then reports).
    PCollection<KV<Integer, Block>> none = blocks.getPipeline()
        .apply("NoRows", Create.of(KV.of(0, NO_ROWS)).withCoder(coder));
    return PCollectionList.of(keyed).and(none)
        .apply("WithNoRows", Flatten.pCollections())
        .apply("GatherBlocks", GroupByKey.create())
        .apply("Blocks", Values.create())
        .apply("Write", writeStep);
  }
}
