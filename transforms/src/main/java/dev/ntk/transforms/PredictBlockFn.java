package dev.ntk.transforms;

import static dev.ntk.transforms.InferenceChecks.kernel;
import static dev.ntk.transforms.InferenceChecks.needsNngp;
import static dev.ntk.transforms.InferenceChecks.repeated;
import static dev.ntk.transforms.InferenceChecks.testInputs;
import static dev.ntk.transforms.InferenceInputs.readNpyRows;

import dev.ntk.io.Tile;
import dev.ntk.io.TileKey;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.linalg.DenseMatrix;
import dev.ntk.kernels.predict.GpPosterior;
import dev.ntk.kernels.predict.MseDynamics;
import dev.ntk.transforms.InferenceValues.Block;
import dev.ntk.transforms.InferenceValues.Factored;
import dev.ntk.transforms.PredictSettings.Mode;
import java.io.IOException;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.beam.sdk.io.fs.ResourceId;
import org.apache.beam.sdk.transforms.DoFn;
import org.apache.beam.sdk.values.KV;
import org.apache.beam.sdk.values.PCollectionView;

/** The predictions of one block of test rows from its test-train tiles (all {@code N_train} columns). */
final class PredictBlockFn<T> extends DoFn<KV<Long, Iterable<T>>, Block> {
  private static final long serialVersionUID = 1L;
  private final TileAccess<T> access;
  private final PredictSettings settings;
  private final PCollectionView<Factored> factor;
  private final boolean cov;
  private transient Factored held;
  private transient Loaded loaded;

  PredictBlockFn(TileAccess<T> access, PredictSettings settings, PCollectionView<Factored> factor, boolean cov) {
    this.access = access;
    this.settings = settings;
    this.factor = factor;
    this.cov = cov;
  }

  @ProcessElement
  public void process(ProcessContext c) throws IOException {
    long rowOffset = c.element().getKey();
    Factored f = c.sideInput(factor);
    String what = access.what();
    Map<TileKey, Tile> tiles = new LinkedHashMap<>();
    String testInputs = null;
    int rows = -1;
    for (T item : c.element().getValue()) { // a group may be iterable only once
      Tile t = access.tile(item);
      TileKey k = t.key();
      if (tiles.put(k, t) != null) {
        throw repeated(k, what);
      }
      String in = testInputs(t, f, what);
      if (testInputs != null && !testInputs.equals(in)) {
        throw new IllegalArgumentException(what + ": the tile " + k.fileName() + " is of other test inputs "
            + "than the tiles before it");
      }
      testInputs = in;
      if (rows >= 0 && k.rows() != rows) {
        throw new IllegalArgumentException(what + ": the tiles of test rows from " + rowOffset
            + " are of different heights (" + rows + " and " + k.rows() + ")");
      }
      rows = k.rows();
      if (k.colOffset() + k.cols() > f.n()) {
        throw new IllegalArgumentException(what + ": the tile " + k.fileName() + " reaches column "
            + (k.colOffset() + k.cols() - 1) + " but there are " + f.n() + " train examples "
            + "(targets): the test-train and train-train tiles do not fit together");
      }
    }
    List<String> names = testTrainKernels(settings, cov);
    Map<String, double[]> k = Bands.assemble(rowOffset + rows, f.n(), false, rowOffset, rows, tiles.keySet(),
        names, key -> {
          Tile t = tiles.get(key);
          for (String name : names) {
            kernel(t, name, what, "the prediction");
          }
          return t;
        }, access.where());
    double[] kGet = k.get(settings.get().key());
    Mode mode = settings.mode();
    double[][] means = new double[settings.times().length][];
    if (mode != Mode.ODE) {
      Loaded l = load(f);
      if (mode == Mode.CHOLESKY) {
        Arrays.fill(means, l.posterior.mean(kGet, rows));
      } else {
        double[] fxTest0 = settings.fxTest0() == null ? null
            : readNpyRows(settings.fxTest0(), rowOffset, rows).data();
        try (DenseMatrix rotated = l.dynamics.rotate(kGet, rows)) {
          for (int i = 0; i < means.length; i++) {
            means[i] = l.dynamics.testOutputs(settings.times()[i], fxTest0, rotated, l.residual);
          }
        }
      }
    }
    boolean keep = cov || mode == Mode.ODE;
    c.output(new Block(rowOffset, rows, means, keep ? kGet : null,
        needsNngp(settings, cov) ? k.get(Get.NNGP.key()) : null, testInputs));
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

  /** The kernels a step reads from the test-train tiles. */
  static List<String> testTrainKernels(PredictSettings settings, boolean cov) {
    return needsNngp(settings, cov) ? List.of(settings.get().key(), Get.NNGP.key())
        : List.of(settings.get().key());
  }

  /** What a worker reads once from the factor files, shared by its threads. */
  private static final class Loaded implements AutoCloseable {
    final GpPosterior posterior;
    final MseDynamics dynamics;
    final DenseMatrix residual;
    int users;

    private Loaded(GpPosterior posterior, MseDynamics dynamics, DenseMatrix residual) {
      this.posterior = posterior;
      this.dynamics = dynamics;
      this.residual = residual;
    }

    static Loaded read(Factored f, PredictSettings settings) throws IOException {
      Mode mode = settings.mode();
      ResourceId dir = BeamFiles.directory(f.dir());
      if (mode == Mode.CHOLESKY) {
        return FactorFiles.read(dir, List.of("alpha.f64"),
            local -> new Loaded(GpPosterior.read(local, f.n(), f.outputs(), false), null, null));
      }
      return FactorFiles.read(dir, List.of("eigenvalues.f64", "eigenvectors.f64", "residual.f64"), local -> {
        MseDynamics d = MseDynamics.read(local, f.n(), f.outputs(), settings.get().key());
        try {
          return new Loaded(null, d, DenseMatrix.read(local.resolve("residual.f64"), f.n(), f.outputs()));
        } catch (IOException | RuntimeException e) {
          d.close();
          throw e;
        }
      });
    }

    private static final Map<String, Loaded> LOADED = new HashMap<>();

    static synchronized Loaded acquire(Factored f, PredictSettings settings) throws IOException {
      Loaded l = LOADED.get(f.id());
      if (l == null) {
        l = read(f, settings);
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
}
