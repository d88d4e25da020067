package dev.ntk.transforms;

import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.io.TileKey;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.predict.GpPosterior;
import java.io.IOException;
import java.io.Serializable;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import org.apache.beam.sdk.coders.KvCoder;
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
 * Exact GP inference with an infinite network's kernel, as a Beam transform ({@code t = inf} of
 * neural-tangents' {@code gradient_descent_mse_ensemble}: the NNGP posterior, or the NTK ensemble
 * trained to convergence); see {@link GpPosterior} for the formulas.
 *
 * <ol>
 *   <li>the train-train tiles are computed, assembled and factored once (Cholesky); the factor
 *       and the solution {@code (G_dd + r I)^-1 y} become a side input;
 *   <li>the test-train tiles are computed and grouped by block of test rows; each block's mean is
 *       predicted in parallel against the side input;
 *   <li>the blocks are gathered into {@code mean.npy}, and with a covariance the test-test tiles
 *       give {@code cov.npy}.
 * </ol>
 *
 * <p>Emits the paths written. The outputs take the train-train set's dtype; the mean has shape
 * {@code (N_test,) + y.shape[1:]}.
 */
public final class GpInference extends PTransform<PBegin, PCollection<String>> {
  private static final long serialVersionUID = 1L;

  private final TileSet trainTrain;
  private final TileSet testTrain;
  private final TileSet testTest;
  private final String yTrain;
  private final Get get;
  private final double diagReg;
  private final String directory;

  private GpInference(TileSet trainTrain, TileSet testTrain, TileSet testTest, String yTrain,
      Get get, double diagReg, String directory) {
    this.trainTrain = trainTrain;
    this.testTrain = testTrain;
    this.testTest = testTest;
    this.yTrain = yTrain;
    this.get = get;
    this.diagReg = diagReg;
    this.directory = directory;
  }

  /**
   * Inference from the tile sets of the train-train kernel ({@code x_train} with itself), the
   * test-train kernel ({@code x_test} against {@code x_train}) and, for a covariance, the test-test
   * kernel ({@code null} for the mean only); results go to {@code directory}.
   */
  public static GpInference of(TileSet trainTrain, TileSet testTrain, TileSet testTest, Path yTrain,
      Get get, double diagReg, Path directory) {
    if (!trainTrain.symmetric() || testTrain.symmetric() || (testTest != null && !testTest.symmetric())) {
      throw new IllegalArgumentException("expected train-train and test-test kernels of one input each "
          + "and a test-train kernel between two");
    }
    if (testTrain.n2() != trainTrain.n1() || (testTest != null && testTest.n1() != testTrain.n1())) {
      throw new IllegalArgumentException("the tile sets do not fit together: " + trainTrain + ", "
          + testTrain + ", " + testTest);
    }
    if (!(diagReg >= 0)) {
      throw new IllegalArgumentException("diag_reg must be non-negative, got " + diagReg);
    }
    return new GpInference(trainTrain, testTrain, testTest, yTrain.toAbsolutePath().toString(), get,
        diagReg, directory.toAbsolutePath().toString());
  }

  /** The train-side solution, shared with every test block. */
  record TrainFactor(GpPosterior.TrainSolve solve, long[] yShape, double[] trainNngp)
      implements Serializable {}

  /** The prediction for a block of test rows, and its test-train kernels if a covariance follows. */
  record Block(long rowOffset, int rows, double[] mean, double[] testTrainGet, double[] testTrainNngp)
      implements Serializable {}

  @Override
  public PCollection<String> expand(PBegin begin) {
    boolean cov = testTest != null;
    PCollectionView<TrainFactor> factor = begin
        .apply("TrainTrainTiles", KernelTiles.of(trainTrain))
        .apply("GatherTrainTrain", new GatherTiles())
        .apply("Factor", ParDo.of(new FactorFn(trainTrain, yTrain, get, diagReg, cov)))
        .setCoder(ValueCoder.of(TrainFactor.class))
        .apply("FactorView", View.asSingleton());
    PCollection<Block> blocks = begin
        .apply("TestTrainTiles", KernelTiles.of(testTrain))
        .apply("ByTestBlock", WithKeys.of(TileKey::rowOffset).withKeyType(TypeDescriptors.longs()))
        .setCoder(KvCoder.of(VarLongCoder.of(), TileKeyCoder.of()))
        .apply("GroupTestBlock", GroupByKey.create())
        .apply("PredictBlocks", ParDo.of(new PredictBlockFn(testTrain, get, factor, cov))
            .withSideInputs(factor))
        .setCoder(ValueCoder.of(Block.class));
    PCollectionView<List<TileKey>> testTestView = cov
        ? begin.apply("TestTestTiles", KernelTiles.of(testTest)).apply("TestTestView", View.asList())
        : null;
    WriteFn write = new WriteFn(testTrain.n1(), trainTrain.dtype(), testTest, get, directory, factor, testTestView);
    ParDo.SingleOutput<Iterable<Block>, String> writeStep = ParDo.of(write).withSideInputs(factor);
    if (cov) {
      writeStep = writeStep.withSideInputs(testTestView);
    }
    return blocks
        .apply("OneGroup", WithKeys.<Integer, Block>of(0))
        .setCoder(KvCoder.of(org.apache.beam.sdk.coders.VarIntCoder.of(), ValueCoder.of(Block.class)))
        .apply("GatherBlocks", GroupByKey.create())
        .apply("Blocks", Values.create())
        .apply("Write", writeStep);
  }

  private static final class FactorFn extends DoFn<List<TileKey>, TrainFactor> {
    private static final long serialVersionUID = 1L;
    private final TileSet tiles;
    private final String yTrain;
    private final Get get;
    private final double diagReg;
    private final boolean keepNngp;

    FactorFn(TileSet tiles, String yTrain, Get get, double diagReg, boolean cov) {
      this.tiles = tiles;
      this.yTrain = yTrain;
      this.get = get;
      this.diagReg = diagReg;
      this.keepNngp = cov && get == Get.NTK;
    }

    @ProcessElement
    public void process(@Element List<TileKey> keys, OutputReceiver<TrainFactor> out) throws IOException {
      GatherTiles.checkComplete(tiles, keys);
      int n = Math.toIntExact(tiles.n1());
      Map<String, double[]> k = tiles.assemble(0, n, keys);
      NpyArray y = Npy.read(Path.of(yTrain));
      if (y.ndim() < 1 || y.shape()[0] != n) {
        throw new IllegalArgumentException(yTrain + ": expected " + n + " rows of targets, got shape "
            + y.shapeString());
      }
      int outputs = y.data().length / n;
      GpPosterior.TrainSolve solve = GpPosterior.factor(k.get(get.key()), n, y.data(), outputs, diagReg);
      out.output(new TrainFactor(solve, y.shape(), keepNngp ? k.get(Get.NNGP.key()) : null));
    }
  }

  private static final class PredictBlockFn extends DoFn<KV<Long, Iterable<TileKey>>, Block> {
    private static final long serialVersionUID = 1L;
    private final TileSet tiles;
    private final Get get;
    private final PCollectionView<TrainFactor> factor;
    private final boolean cov;

    PredictBlockFn(TileSet tiles, Get get, PCollectionView<TrainFactor> factor, boolean cov) {
      this.tiles = tiles;
      this.get = get;
      this.factor = factor;
      this.cov = cov;
    }

    @ProcessElement
    public void process(ProcessContext c) {
      long rowOffset = c.element().getKey();
      List<TileKey> keys = new ArrayList<>();
      c.element().getValue().forEach(keys::add); // a group may be iterable only once
      int rows = keys.iterator().next().rows();
      Map<String, double[]> k = tiles.assemble(rowOffset, rows, keys);
      double[] kGet = k.get(get.key());
      double[] mean = GpPosterior.mean(kGet, rows, c.sideInput(factor).solve());
      c.output(new Block(rowOffset, rows, mean, cov ? kGet : null,
          cov && get == Get.NTK ? k.get(Get.NNGP.key()) : null));
    }
  }

  /**
   * A prediction with an entry that is inf or NaN, or that float32 cannot hold, is an error, never
   * an output.
   */
  private static void checkFinite(String what, double[] values, int rowLength, NpyDType dtype) {
    double max = dtype == NpyDType.FLOAT32 ? Float.MAX_VALUE : Double.MAX_VALUE;
    for (int i = 0; i < values.length; i++) {
      if (!(Math.abs(values[i]) <= max)) {
        throw new NonFiniteKernelException("the predictive " + what + " has the entry " + values[i]
            + " at row " + i / rowLength + ", which is not a finite " + dtype.typeName()
            + ": the kernels or the targets are too large or too ill-conditioned for the dtype "
            + "(check W_std and b_std in the model, the scale of the inputs and targets, and "
            + "--diag-reg)");
      }
    }
  }

  private static final class WriteFn extends DoFn<Iterable<Block>, String> {
    private static final long serialVersionUID = 1L;
    private final long testRows;
    private final NpyDType dtype;
    private final TileSet testTest;
    private final Get get;
    private final String directory;
    private final PCollectionView<TrainFactor> factor;
    private final PCollectionView<List<TileKey>> testTestKeys;

    WriteFn(long testRows, NpyDType dtype, TileSet testTest, Get get, String directory,
        PCollectionView<TrainFactor> factor, PCollectionView<List<TileKey>> testTestKeys) {
      this.testRows = testRows;
      this.dtype = dtype;
      this.testTest = testTest;
      this.get = get;
      this.directory = directory;
      this.factor = factor;
      this.testTestKeys = testTestKeys;
    }

    @ProcessElement
    public void process(ProcessContext c) throws IOException {
      List<Block> blocks = new ArrayList<>();
      c.element().forEach(blocks::add);
      blocks.sort(Comparator.comparingLong(Block::rowOffset));
      TrainFactor train = c.sideInput(factor);
      int m = Math.toIntExact(testRows);
      int n = train.solve().n();
      int outputs = train.solve().outputs();
      double[] mean = new double[m * outputs];
      double[] kGet = testTest == null ? null : new double[m * n];
      double[] kNngp = testTest == null || get == Get.NNGP ? kGet : new double[m * n];
      long next = 0;
      for (Block b : blocks) {
        if (b.rowOffset() != next) {
          throw new IllegalStateException("test rows from " + next + " have no prediction");
        }
        int at = Math.toIntExact(b.rowOffset());
        System.arraycopy(b.mean(), 0, mean, at * outputs, b.mean().length);
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
      long[] meanShape = train.yShape().clone();
      meanShape[0] = testRows;
      double[] cov = null;
      if (testTest != null) {
        List<TileKey> keys = c.sideInput(testTestKeys);
        GatherTiles.checkComplete(testTest, keys);
        double[] kTestTest = testTest.assemble(0, m, keys).get(Get.NNGP.key());
        cov = GpPosterior.covariance(get, train.solve(), train.trainNngp(), kGet, kNngp, kTestTest, m);
      }
      // Both are checked before either is written.
      checkFinite("mean", mean, outputs, dtype);
      if (cov != null) {
        checkFinite("covariance", cov, m, dtype);
      }
      Path meanFile = Path.of(directory, "mean.npy");
      Npy.write(meanFile, new NpyArray(meanShape, dtype, mean));
      c.output(meanFile.toString());
      if (cov != null) {
        Path covFile = Path.of(directory, "cov.npy");
        Npy.write(covFile, new NpyArray(new long[] {m, m}, dtype, cov));
        c.output(covFile.toString());
      }
    }
  }
}
