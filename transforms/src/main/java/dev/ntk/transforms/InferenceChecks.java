package dev.ntk.transforms;

import dev.ntk.io.Tile;
import dev.ntk.io.TileKey;
import dev.ntk.kernels.Get;
import dev.ntk.transforms.InferenceValues.Factored;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The checks of {@link GpInference}'s steps across its kernels: that test-train and test-test tiles belong
 * with the factored train side, that the train-train tiles are complete, and the kernel values a step needs.
 */
final class InferenceChecks {
  private InferenceChecks() {}

  static final String COLLECTION = "pcollection:";

  /**
   * The inputs a tile's inputs hash names: one for the kernel of an input with itself, two for a
   * kernel between two ({@code a+b}); tiles of {@link Kernels} prefix theirs with {@code
   * pcollection:}.
   */
  static String[] inputs(String inputsHash) {
    String h = inputsHash.startsWith(COLLECTION) ? inputsHash.substring(COLLECTION.length()) : inputsHash;
    return h.split("\\+", -1);
  }

  /** Whether the kernels of the settings need the NNGP beside the selected one (NTK covariance). */
  static boolean needsNngp(PredictSettings settings, boolean cov) {
    return cov && settings.get() == Get.NTK;
  }

  /** The kernel values {@code name} of {@code tile}, or a message saying how to compute them. */
  static double[] kernel(Tile tile, String name, String what, String why) {
    double[] v = tile.kernels().get(name);
    if (v == null) {
      throw new IllegalArgumentException(what + ": the tile " + tile.key().fileName() + " has no '" + name
          + "' kernel (it has " + tile.kernels().keySet() + "), which " + why + " needs: compute the "
          + "tiles with that kernel (Kernels.withGet)");
    }
    return v;
  }

  /** Checks that a tile of another kernel than train-train belongs with the factored train side. */
  static void checkAgainstTrain(Tile tile, Factored f, String what) {
    if (!tile.modelHash().equals(f.modelHash())) {
      throw new IllegalArgumentException(what + " are of another model than the train-train tiles (tile "
          + tile.key().fileName() + ": model hash " + tile.modelHash() + ", expected " + f.modelHash() + ")");
    }
    if (tile.dtype() != f.dtype()) {
      throw new IllegalArgumentException(what + " are " + tile.dtype().typeName()
          + " but the train-train tiles " + f.dtype().typeName());
    }
  }

  /** The test inputs of a test-train tile, checked to be against the train inputs. */
  static String testInputs(Tile tile, Factored f, String what) {
    checkAgainstTrain(tile, f, what);
    String[] in = inputs(tile.inputsHash());
    if (in.length != 2) {
      throw new IllegalArgumentException(what + " are the kernel of one input with itself (inputs "
          + tile.inputsHash() + "), not between the test and the train inputs: compute them with "
          + "Kernels.of(model).withX2(xTrain) applied to the test examples");
    }
    if (!in[1].equals(f.trainInputs())) {
      throw new IllegalArgumentException(what + " are not against the train inputs of the train-train "
          + "tiles (their inputs are " + tile.inputsHash() + ", the train inputs " + f.trainInputs() + ")");
    }
    return in[0];
  }

  /**
   * Checks that {@code keys} are exactly the tiles of an {@code n x n} kernel of an input with itself
   * in one tile size, naming the first missing or unexpected one: those on and above the diagonal
   * where no tile lies below it (a mirrored kernel, {@link TilePlan#mirrored}), else all of them (a
   * kernel computed whole, of a plan that is not symmetric in its inputs), so that a kernel is never
   * part mirrored, part whole.
   *
   * @return whether the kernel is mirrored
   */
  static boolean checkComplete(List<TileKey> keys, long n, String what) {
    if (keys.isEmpty()) {
      throw new IllegalArgumentException(what + ": there are none; the kernel is " + n + " x " + n);
    }
    int tileSize = 1;
    boolean mirrored = true;
    for (TileKey k : keys) {
      tileSize = Math.max(tileSize, Math.max(k.rows(), k.cols()));
      mirrored &= k.colOffset() >= k.rowOffset();
    }
    List<TileKey> planned = new TilePlan(n, n, tileSize, mirrored).tiles();
    Set<TileKey> have = new HashSet<>(keys);
    for (TileKey k : planned) {
      if (!have.contains(k)) {
        long missing = planned.stream().filter(p -> !have.contains(p)).count();
        throw new IllegalArgumentException(what + " lack " + missing + " of the " + planned.size()
            + " tiles of the " + n + " x " + n + " kernel in tiles of " + tileSize + " rows, first "
            + k.fileName() + " (rows " + k.rowOffset() + ".." + (k.rowOffset() + k.rows() - 1)
            + ", columns " + k.colOffset() + ".." + (k.colOffset() + k.cols() - 1) + ")");
      }
    }
    Set<TileKey> expected = new HashSet<>(planned);
    for (TileKey k : keys) {
      if (!expected.contains(k)) {
        throw new IllegalArgumentException(what + ": the tile " + k.fileName() + " (" + k.rows() + " x "
            + k.cols() + ") is not one of the " + n + " x " + n + " kernel in tiles of " + tileSize
            + " rows: the tiles are of different kernels or tile sizes");
      }
    }
    return mirrored;
  }

  /** A repeated tile, named. */
  static IllegalArgumentException repeated(TileKey key, String what) {
    return new IllegalArgumentException(what + ": the tile " + key.fileName() + " appears more than once");
  }
}
