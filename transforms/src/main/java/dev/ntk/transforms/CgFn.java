package dev.ntk.transforms;

import static dev.ntk.transforms.InferenceChecks.checkComplete;
import static dev.ntk.transforms.InferenceChecks.repeated;
import static dev.ntk.transforms.InferenceInputs.readNpy;

import dev.ntk.io.NpyArray;
import dev.ntk.io.TileKey;
import dev.ntk.kernels.engine.Backend;
import dev.ntk.kernels.predict.ConjugateGradients;
import dev.ntk.kernels.predict.GpPosterior;
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
 * {@link FactorFn}'s step for exact inference by {@link ConjugateGradients}: given the keys of the
 * train-train tiles (one group, checked to be complete), solves for {@code alpha} reading the tile
 * files a tile at a time ({@link TileKernel}) and writes {@code alpha} alone into the factor
 * directory, where {@link PredictBlockFn} reads it as it reads the Cholesky path's.
 */
final class CgFn extends DoFn<KV<Integer, Iterable<TileKey>>, Factored> {
  private static final long serialVersionUID = 1L;
  private final TileSet set;
  private final String yTrain;
  private final PredictSettings settings;
  private final ConjugateGradients.Settings cg;
  private final String factorDir;
  private final String directory;
  private final Backend backend;

  CgFn(TileSet set, String yTrain, PredictSettings settings, ConjugateGradients.Settings cg, String factorDir,
      String directory, Backend backend) {
    this.set = set;
    this.yTrain = yTrain;
    this.settings = settings;
    this.cg = cg;
    this.factorDir = factorDir;
    this.directory = directory;
    this.backend = backend;
  }

  @ProcessElement
  public void process(ProcessContext c) throws IOException {
    NpyArray y = readNpy(yTrain);
    String what = "the train-train tiles in " + set.directory();
    long n = set.n1();
    if (y.ndim() < 1 || y.shape()[0] != n) {
      throw new IllegalArgumentException(yTrain + ": expected targets of shape (" + n + ", ...) for " + what
          + ", got " + y.shapeString());
    }
    int outputs = Math.toIntExact(y.data().length / n);
    List<TileKey> keys = new ArrayList<>();
    Set<TileKey> seen = new HashSet<>();
    for (TileKey k : c.element().getValue()) {
      if (!seen.add(k)) {
        throw repeated(k, what);
      }
      keys.add(k);
    }
    checkComplete(keys, n, what);
    GatherTiles.checkComplete(set, keys); // and laid out as the set is (mirrored or whole)
    String get = settings.get().key();
    TileKernel kernel = new TileKernel(set, get, keys, backend);
    ConjugateGradients.Solved solved;
    try {
      solved = ConjugateGradients.solve(kernel, y.data(), outputs, settings.diagReg(), cg, get);
    } finally {
      kernel.close();
    }
    ResourceId dir = factorDir == null
        ? BeamFiles.childDirectory(BeamFiles.directory(directory), ".factor")
        : BeamFiles.directory(factorDir);
    try (GpPosterior p = solved.posterior()) {
      FactorFiles.write(dir, local -> {
        p.write(local);
        return null;
      });
    }
    c.output(new Factored(dir.toString(), UUID.randomUUID().toString(), (int) n, outputs, y.shape(), Double.NaN,
        set.dtype(), set.modelHash(), set.inputsHash()));
  }
}
