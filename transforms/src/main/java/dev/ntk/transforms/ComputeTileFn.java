package dev.ntk.transforms;

import dev.ntk.io.Tile;
import dev.ntk.io.TileKey;
import dev.ntk.kernels.engine.Backend;
import java.io.IOException;
import java.util.Map;
import java.util.Optional;
import org.apache.beam.sdk.metrics.Counter;
import org.apache.beam.sdk.metrics.Distribution;
import org.apache.beam.sdk.metrics.Metrics;
import org.apache.beam.sdk.transforms.DoFn;
/**
 * Computes one kernel tile per element and writes it as an Arrow IPC file, skipping tiles already
 * on disk for the same model, inputs and dtype whose values pass their checksum (a damaged tile is
 * recomputed, counted and reported on stderr). A tile with a non-finite entry stops the run with a
 * {@link NonFiniteKernelException}. Emits the key of every tile that is done.
 *
 * <p>Each instance compiles the model's plan once in {@code @Setup} and runs it for every tile on
 * one thread (a Beam worker is one of several): {@link TileComputer}.
 */
final class ComputeTileFn extends DoFn<TileKey, TileKey> {
  private static final long serialVersionUID = 1L;

  private final TileSet tiles;
  private final TileComputer computer;
  private final Counter computed = Metrics.counter(KernelTiles.class, KernelTiles.TILES_COMPUTED);
  private final Counter skipped = Metrics.counter(KernelTiles.class, KernelTiles.TILES_SKIPPED);
  private final Counter damaged = Metrics.counter(KernelTiles.class, KernelTiles.TILES_DAMAGED);
  private final Distribution inputMicros = Metrics.distribution(KernelTiles.class, KernelTiles.TILE_INPUT_MICROS);
  private final Distribution computeMicros = Metrics.distribution(KernelTiles.class,
      KernelTiles.TILE_COMPUTE_MICROS);
  private final Distribution writeMicros = Metrics.distribution(KernelTiles.class, KernelTiles.TILE_WRITE_MICROS);
  private final Counter blocksRead = Metrics.counter(KernelTiles.class, KernelTiles.INPUT_BLOCKS_READ);
  /** The input values a worker keeps between tiles: 8 Mi doubles (64 MiB). */
  static final long ROW_CACHE_VALUES = 1L << 23;
  private transient RowBlocks rows;

  ComputeTileFn(TileSet tiles, Backend backend) {
    this.tiles = tiles;
    this.computer = new TileComputer(tiles.modelJson(), tiles.featureShape(), tiles.dtype(), backend,
        (double) tiles.n1() * (tiles.symmetric() ? (tiles.n1() + 1) / 2.0 : tiles.n2()));
  }

  @Setup
  public void setup() {
    computer.setup();
    rows = new RowBlocks(tiles, ROW_CACHE_VALUES);
  }

  @ProcessElement
  public void process(@Element TileKey key, OutputReceiver<TileKey> out) throws IOException {
    Map.Entry<TileSet.TileState, String> state = tiles.state(key);
    if (state.getKey() == TileSet.TileState.VALID) {
      skipped.inc();
    } else {
      if (state.getKey() == TileSet.TileState.DAMAGED) {
        damaged.inc();
        System.err.println("ntk: warning: recomputing a damaged tile: " + state.getValue());
      }
      Tile tile = compute(key);
      long written = System.nanoTime();
      checkFinite(key, tile);
      tiles.write(tile);
      writeMicros.update(microsSince(written));
      computed.inc();
    }
    KernelTiles.countDone(tiles);
    out.output(key);
  }

  /**
   * Stops the run at a tile with an {@code inf} or {@code NaN} entry, naming the entry and the
   * layer where the kernel of its two input rows first stops being finite.
   */
  private void checkFinite(TileKey key, Tile tile) throws IOException {
    Optional<Map.Entry<String, Long>> bad = TileComputer.firstNonFinite(tile.kernels());
    if (bad.isPresent()) {
      long at = bad.get().getValue();
      long row = key.rowOffset() + at / key.cols();
      long col = key.colOffset() + at % key.cols();
      String x2 = tiles.symmetric() ? tiles.x1() : tiles.x2();
      throw new NonFiniteKernelException(tiles.dtype(), bad.get().getKey(), row, col,
          tile.kernels().get(bad.get().getKey())[(int) at],
          computer.diagnose(tiles.readRows(tiles.x1(), row, 1), tiles.readRows(x2, col, 1)));
    }
  }

  private Tile compute(TileKey key) throws IOException {
    boolean diagonal = tiles.symmetric() && key.rowOffset() == key.colOffset();
    String x2 = tiles.symmetric() ? tiles.x1() : tiles.x2();
    long started = System.nanoTime();
    long read = rows.reads();
    double[] a = rows.get(tiles.x1(), key.rowOffset(), key.rows());
    double[] b = diagonal ? null : rows.get(x2, key.colOffset(), key.cols());
    blocksRead.inc(rows.reads() - read);
    long computing = System.nanoTime();
    inputMicros.update(microsSince(started));
    Tile tile = new Tile(key, tiles.modelHash(), tiles.inputsHash(), tiles.dtype(), computer.compute(key, a, b));
    computeMicros.update(microsSince(computing));
    return tile;
  }

  private static long microsSince(long nanos) {
    return (System.nanoTime() - nanos) / 1000;
  }

  @Teardown
  public void teardown() {
    computer.teardown();
  }
}
