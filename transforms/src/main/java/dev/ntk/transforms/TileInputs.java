package dev.ntk.transforms;

import dev.ntk.io.NpyDType;
import dev.ntk.kernels.engine.Backend;
import java.io.IOException;
import java.io.Serializable;
import java.util.List;
import org.apache.beam.sdk.values.PCollectionView;

/**
 * What the one compute step ({@link ComputeTileFn}) fills tiles of, and from what: the kernel its
 * tiles belong to (model hash, inputs hash, dtype, the {@link TileFunction} a worker runs) and the
 * input rows of each tile. Two kinds: the {@code .npy} files of a {@link TileSet} ({@link Files},
 * for {@link KernelTiles}) and the blocks of rows of {@code PCollection}s, which arrive as side
 * inputs ({@link Kernels}). A plain serializable configuration value: the step holds it, not the
 * transform that made it.
 */
interface TileInputs extends Serializable {
  /** The side inputs {@link #bind} reads (none for files). */
  default List<PCollectionView<?>> views() {
    return List.of();
  }

  /** Prepares a worker; called once per {@code DoFn} instance before any {@link #bind}. */
  default void setup() {}

  /** The kernel and its rows as the current element sees them, side inputs read through {@code side}. */
  Bound bind(SideInputs side);

  /** The side inputs of the current element ({@code ProcessContext::sideInput}). */
  interface SideInputs {
    <T> T get(PCollectionView<T> view);
  }

  /** The kernel whose tiles are computed, and its input rows. */
  interface Bound {
    /** The hash of what the tiles hold (the model's, or a finite network's). */
    String modelHash();

    /** The hash of the inputs the tiles are of. */
    String inputsHash();

    NpyDType dtype();

    /**
     * Whether the kernel is of x1 with itself: the column rows are x1's, and a tile on the diagonal
     * has no x2 rows (it runs as x1 with itself). Whether tiles below the diagonal are computed is
     * the tile plan's ({@link TilePlan#mirrored}), not this.
     */
    boolean x1WithItself();

    /** What a worker runs for each tile, on {@code backend}; created once per worker. */
    TileFunction function(Backend backend);

    /** Rows {@code [first, first + count)} of x1, or of x2 for {@code second} (x1 for x1 with itself). */
    double[] rows(boolean second, long first, int count) throws IOException;

    /**
     * The graph patterns of the tile {@code key}'s rows of x1 and of its columns' rows of x2 (none
     * of x2 on the {@code diagonal} of x1 with itself), for a graph model; {@code null} where the
     * inputs have none.
     */
    default TilePatterns.Rows patterns(dev.ntk.io.TileKey key, boolean diagonal) throws IOException {
      return null;
    }

    /** The name of x1, or of x2 for {@code second}, in messages (its file, or its collection). */
    String inputName(boolean second);

    /** How many blocks of rows this worker has read from files so far. */
    default long blocksRead() {
      return 0;
    }
  }

  /** The inputs of a {@link TileSet}: its {@code .npy} files, blocks kept by the worker ({@link RowBlocks}). */
  final class Files implements TileInputs, Bound {
    private static final long serialVersionUID = 1L;
    /** The input values a worker keeps between tiles: 8 Mi doubles (64 MiB). */
    static final long ROW_CACHE_VALUES = 1L << 23;
    private final TileSet tiles;
    private transient RowBlocks rows;

    Files(TileSet tiles) {
      this.tiles = tiles;
    }

    @Override
    public void setup() {
      rows = new RowBlocks(tiles, ROW_CACHE_VALUES);
    }

    @Override
    public Bound bind(SideInputs side) {
      return this;
    }

    @Override
    public String modelHash() {
      return tiles.modelHash();
    }

    @Override
    public String inputsHash() {
      return tiles.inputsHash();
    }

    @Override
    public NpyDType dtype() {
      return tiles.dtype();
    }

    @Override
    public boolean x1WithItself() {
      return tiles.x1WithItself();
    }

    @Override
    public TileFunction function(Backend backend) {
      return tiles.function(backend);
    }

    @Override
    public String inputName(boolean second) {
      return second && !tiles.x1WithItself() ? tiles.x2() : tiles.x1();
    }

    @Override
    public double[] rows(boolean second, long first, int count) throws IOException {
      return rows.get(second && !tiles.x1WithItself() ? tiles.x2() : tiles.x1(), first, count);
    }

    @Override
    public TilePatterns.Rows patterns(dev.ntk.io.TileKey key, boolean diagonal) throws IOException {
      TilePatterns p = tiles.patterns();
      if (p == null) {
        return null;
      }
      double[] a = rows.get(p.file(false), key.rowOffset(), key.rows());
      return diagonal ? new TilePatterns.Rows(a, p.shape(false, key.rows()), null, null)
          : new TilePatterns.Rows(a, p.shape(false, key.rows()), rows.get(p.file(true), key.colOffset(), key.cols()),
              p.shape(true, key.cols()));
    }

    @Override
    public long blocksRead() {
      return rows.reads();
    }
  }
}
