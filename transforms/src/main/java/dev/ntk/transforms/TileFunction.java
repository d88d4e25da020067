package dev.ntk.transforms;

import dev.ntk.io.TileKey;
import java.io.Serializable;
import java.util.Optional;
import java.util.SortedMap;

/**
 * What a worker runs to fill one tile of a {@link TileSet} from the tile's input rows: the model's
 * infinite-width kernels ({@link TileComputer}, the default) or the empirical kernels of one finite
 * network ({@link EmpiricalTiles}). {@link ComputeTileFn} holds one, set up once per worker.
 */
interface TileFunction extends Serializable {
  /** Prepares the worker (compiles a plan, draws or reads parameters); called once per instance. */
  void setup();

  /**
   * The kernels ({@link #names}) of the tile {@code key} between the rows {@code a} of x1 and
   * {@code b} of x2 (row-major, {@code null} for a tile on the diagonal of x1 with itself), as
   * {@code key.rows() x key.cols()} values each.
   */
  SortedMap<String, double[]> compute(TileKey key, double[] a, double[] b);

  /**
   * {@link #compute(TileKey, double[], double[])} of a graph model, whose rows come with their graph
   * patterns {@code patterns} ({@code null}: none).
   */
  default SortedMap<String, double[]> compute(TileKey key, double[] a, double[] b, TilePatterns.Rows patterns) {
    if (patterns != null) {
      throw new UnsupportedOperationException(getClass().getSimpleName() + " takes no graph patterns");
    }
    return compute(key, a, b);
  }

  /** The names of the kernels a tile holds, in the order a tile file stores them. */
  default java.util.List<String> names() {
    return TileSet.KERNEL_NAMES;
  }

  /** Whether {@link #computeStored} computes tiles here instead of {@link #compute}. */
  default boolean storesValues() {
    return false;
  }

  /** The kernels of a tile in native memory in the tile's dtype; only where {@link #storesValues}. */
  default TileComputer.StoredTile computeStored(TileKey key, double[] a, double[] b) {
    return computeStored(key, a, b, null);
  }

  /** {@link #computeStored(TileKey, double[], double[])} with the rows' graph patterns ({@code null}: none). */
  default TileComputer.StoredTile computeStored(TileKey key, double[] a, double[] b, TilePatterns.Rows patterns) {
    throw new UnsupportedOperationException(getClass().getSimpleName() + " computes tiles as doubles");
  }

  /** Where the kernel between the input rows {@code x1Row} and {@code x2Row} stops being finite, if known. */
  Optional<String> diagnose(double[] x1Row, double[] x2Row);

  /** Frees what {@link #setup} holds. */
  void teardown();
}
