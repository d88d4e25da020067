package dev.ntk.transforms;

import static dev.ntk.transforms.InferenceChecks.checkComplete;
import static dev.ntk.transforms.InferenceChecks.inputs;
import static dev.ntk.transforms.InferenceChecks.kernel;
import static dev.ntk.transforms.InferenceChecks.needsNngp;
import static dev.ntk.transforms.InferenceChecks.repeated;
import static dev.ntk.transforms.InferenceInputs.initial;
import static dev.ntk.transforms.InferenceInputs.readNpy;

import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.io.Tile;
import dev.ntk.io.TileKey;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.linalg.DenseMatrix;
import dev.ntk.kernels.predict.GpPosterior;
import dev.ntk.kernels.predict.MseDynamics;
import dev.ntk.transforms.InferenceValues.Factored;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import org.apache.beam.sdk.io.fs.ResourceId;
import org.apache.beam.sdk.transforms.DoFn;
import org.apache.beam.sdk.values.KV;

/**
 * Puts the train-train tiles (one group) into the native {@code n x n} kernel (and the NNGP beside it when
 * the covariance with the NTK needs it), tile by tile, checking them; factors it as the settings
 * say and writes the result into {@code factorDir}. {@code n} is the number of targets.
 *
 * <p>The tiles are those of the train inputs with themselves as they were computed: mirrored, the
 * tiles on and above the diagonal whose transposes fill the rest (a plan symmetric in its inputs,
 * {@link TilePlan#mirrored}), or whole, every tile (a plan that is not, e.g. neural-tangents'
 * {@code ElementwiseNumerical} quadrature); a group that is neither is refused. Either way the
 * matrix is the in-process path's train kernel entry for entry ({@code KernelFn} computes a
 * non-symmetric plan's kernel of x1 with itself whole), and is used as that path uses it: the
 * Cholesky factor and the eigendecomposition read its lower triangle ({@code Lapack}: row-major
 * lower is LAPACK's column-major upper), so a whole kernel is factored from its entries {@code (i, j)}
 * with {@code i >= j}, the tiles on and below the diagonal, as in-process (and conjugate gradients on
 * tiles, {@link TileKernel}, multiply that triangle's symmetric matrix, as in-process); the ODE's
 * products read it all. The two paths give the same predictions.
 */
final class FactorFn<T> extends DoFn<KV<Integer, Iterable<T>>, Factored> {
  private static final long serialVersionUID = 1L;
  private final TileAccess<T> access;
  private final String yTrain;
  private final PredictSettings settings;
  private final boolean cov;
  private final String factorDir;
  private final String directory;

  /**
   * @param factorDir where the factored train side goes, or null for {@code directory/.factor/}
   *     (resolved when the step runs, once the pipeline's file systems are registered)
   */
  FactorFn(TileAccess<T> access, String yTrain, PredictSettings settings, boolean cov, String factorDir,
      String directory) {
    this.access = access;
    this.yTrain = yTrain;
    this.settings = settings;
    this.cov = cov;
    this.factorDir = factorDir;
    this.directory = directory;
  }

  @ProcessElement
  public void process(ProcessContext c) throws IOException {
    NpyArray y = readNpy(yTrain);
    if (y.ndim() < 1 || y.shape()[0] < 1) {
      throw new IllegalArgumentException(yTrain + ": expected targets of shape (N_train, ...), got "
          + y.shapeString());
    }
    int n = Math.toIntExact(y.shape()[0]);
    int outputs = y.data().length / n;
    double[] fxTrain0 = initial(settings.fxTrain0(), y.shape());
    boolean nngp = needsNngp(settings, cov);
    String get = settings.get().key();
    String what = access.what();
    DenseMatrix g = DenseMatrix.zeros(n, n);
    DenseMatrix kdd = nngp ? DenseMatrix.zeros(n, n) : null;
    try {
      List<TileKey> keys = new ArrayList<>();
      Set<TileKey> seen = new HashSet<>();
      Tile reference = null;
      for (T item : c.element().getValue()) { // iterated once: a group may allow no more
        Tile t = access.tile(item);
        TileKey k = t.key();
        if (!seen.add(k)) {
          throw repeated(k, what);
        }
        if (reference == null) {
          reference = t;
          String[] in = inputs(t.inputsHash());
          if (in.length != 1) {
            throw new IllegalArgumentException(what + " are a kernel between two inputs (" + t.inputsHash()
                + "), not of the train inputs with themselves: compute them with Kernels.of(model) "
                + "applied to the train examples alone");
          }
        } else if (!t.modelHash().equals(reference.modelHash()) || !t.inputsHash().equals(reference.inputsHash())
            || t.dtype() != reference.dtype()) {
          throw new IllegalArgumentException(what + ": the tiles " + k.fileName() + " and "
              + reference.key().fileName() + " belong to different kernels (model, inputs or dtype)");
        }
        if (k.rowOffset() + k.rows() > n || k.colOffset() + k.cols() > n) {
          throw new IllegalArgumentException(what + ": the tile " + k.fileName() + " (" + k.rows() + " x "
              + k.cols() + ") lies outside the " + n + " x " + n + " kernel of the " + n + " targets in "
              + yTrain + ": the targets and the train-train tiles do not fit together");
        }
        // A tile above the diagonal also fills its transpose's place, unless the tile there has come
        // (a kernel computed whole), which a tile below the diagonal overwrites whenever it comes.
        boolean transposeToo = k.colOffset() > k.rowOffset() && !seen.contains(mirror(k));
        place(g, k, kernel(t, get, what, "the prediction with " + get), transposeToo);
        if (nngp) {
          place(kdd, k, kernel(t, Get.NNGP.key(), what, "the covariance with the NTK"), transposeToo);
        }
        keys.add(k);
      }
      checkComplete(keys, n, what);
      // Float32 kernels are factored in float32, as in-process (InProcessPredict) and NumPy's.
      boolean float32 = reference.dtype() == NpyDType.FLOAT32;
      double nll = Double.NaN;
      if (settings.nll()) {
        try (GpPosterior p = GpPosterior.factor(g.copy(), y.data(), outputs, settings.diagReg(), get, float32)) {
          nll = p.nll(y.data());
        }
      }
      ResourceId dir = factorDir == null
          ? BeamFiles.childDirectory(BeamFiles.directory(directory), ".factor")
          : BeamFiles.directory(factorDir);
      DenseMatrix kernel = g;
      g = null;
      FactorFiles.write(dir, local -> {
        write(local, kernel, kdd, y.data(), fxTrain0, outputs, nngp, float32);
        return null;
      });
      c.output(new Factored(dir.toString(), UUID.randomUUID().toString(), n, outputs, y.shape(), nll,
          reference.dtype(), reference.modelHash(), inputs(reference.inputsHash())[0]));
    } finally {
      if (g != null) {
        g.close();
      }
      if (kdd != null) {
        kdd.close();
      }
    }
  }

  /**
   * Factors {@code g} (which it closes; in float32 with {@code float32}) and writes what the later
   * steps read into {@code dir}.
   */
  private void write(java.nio.file.Path dir, DenseMatrix g, DenseMatrix kdd, double[] y, double[] fxTrain0,
      int outputs, boolean nngp, boolean float32) throws IOException {
    String get = settings.get().key();
    switch (settings.mode()) {
      case CHOLESKY -> {
        try (GpPosterior p = GpPosterior.factor(g, y, outputs, settings.diagReg(), get, float32)) {
          p.write(dir);
        }
        if (nngp) {
          kdd.write(dir.resolve("nngp.f64"));
        }
      }
      case EIGEN -> {
        try (MseDynamics d = MseDynamics.decompose(g, outputs, settings.learningRate(), settings.diagReg(), get);
            DenseMatrix residual = d.residual(fxTrain0, y)) {
          d.write(dir);
          residual.write(dir.resolve("residual.f64"));
          if (nngp) {
            try (DenseMatrix projected = d.projectKernel(kdd)) {
              projected.write(dir.resolve("projected.f64"));
            }
          }
        }
      }
      case ODE -> {
        try (g) {
          g.write(dir.resolve("kernel.f64"));
        }
      }
      default -> throw new IllegalStateException(settings.mode().toString());
    }
  }

  /** The place of the tile {@code key}'s transpose. */
  private static TileKey mirror(TileKey key) {
    return new TileKey(key.colOffset(), key.rowOffset(), key.cols(), key.rows());
  }

  /**
   * Copies the tile {@code key}'s values into the symmetric native matrix {@code m}: the block
   * at its place and, off the diagonal, its transpose.
   */
  static void place(DenseMatrix m, TileKey key, double[] values) {
    place(m, key, values, key.rowOffset() != key.colOffset());
  }

  /**
   * Copies the tile {@code key}'s values into the native matrix {@code m}: the block at its place
   * and, with {@code transposeToo}, its transpose at the mirrored place.
   */
  static void place(DenseMatrix m, TileKey key, double[] values, boolean transposeToo) {
    long n = m.cols();
    for (int i = 0; i < key.rows(); i++) {
      m.put((key.rowOffset() + i) * n + key.colOffset(), values, i * key.cols(), key.cols());
    }
    if (transposeToo) {
      double[] column = new double[key.rows()];
      for (int j = 0; j < key.cols(); j++) {
        for (int i = 0; i < key.rows(); i++) {
          column[i] = values[i * key.cols() + j];
        }
        m.put((key.colOffset() + j) * n + key.rowOffset(), column, 0, key.rows());
      }
    }
  }
}
