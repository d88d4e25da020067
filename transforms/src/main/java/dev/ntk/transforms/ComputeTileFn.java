package dev.ntk.transforms;

import dev.ntk.io.Tile;
import dev.ntk.io.TileKey;
import dev.ntk.kernels.engine.Backend;
import dev.ntk.io.Npy;
import java.io.IOException;
import java.nio.Buffer;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.util.List;
import java.util.OptionalLong;
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
 * <p>Each instance compiles the model's plan once in {@code @Setup} and runs it for every tile
 * ({@link TileComputer}): on the {@code cpu} backend with the in-process path's own call ({@code
 * Plan.runInto}) into native memory, on this tile's share of the cores (all of them for a tile
 * computed alone), and the tile file is written from that memory.
 */
final class ComputeTileFn extends DoFn<TileKey, TileKey> {
  private static final long serialVersionUID = 1L;

  private final TileSet tiles;
  /** The kernel's role for messages ({@code train-train}), or null. */
  private final String role;
  private final TileFunction computer;
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

  ComputeTileFn(TileSet tiles, Backend backend, String role) {
    this.tiles = tiles;
    this.role = role;
    this.computer = tiles.function(backend);
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
      if (computer.storesValues() && (long) key.size() * tiles.dtype().bytes() <= Integer.MAX_VALUE - 64) {
        try (TileComputer.StoredTile tile = computeStored(key)) {
          long written = System.nanoTime();
          checkFinite(key, tile);
          tiles.write(tiles.metadata(key), tile.bytes(TileSet.KERNEL_NAMES));
          writeMicros.update(microsSince(written));
        }
      } else {
        Tile tile = compute(key);
        long written = System.nanoTime();
        checkFinite(key, tile);
        tiles.write(tile);
        writeMicros.update(microsSince(written));
      }
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
      nonFinite(key, bad.get().getKey(), at, tile.kernels().get(bad.get().getKey())[(int) at]);
    }
  }

  /** As {@link #checkFinite(TileKey, Tile)}, the kernels checked side by side, one per thread. */
  private void checkFinite(TileKey key, TileComputer.StoredTile tile) throws IOException {
    List<OptionalLong> bad = TileSet.KERNEL_NAMES.parallelStream()
        .map(name -> Npy.firstNonFinite(tile.values(name))).toList();
    for (int k = 0; k < bad.size(); k++) {
      if (bad.get(k).isPresent()) {
        String name = TileSet.KERNEL_NAMES.get(k);
        int at = (int) bad.get(k).getAsLong();
        Buffer values = tile.values(name);
        nonFinite(key, name, at, values instanceof FloatBuffer f ? f.get(at) : ((DoubleBuffer) values).get(at));
      }
    }
  }

  private void nonFinite(TileKey key, String kernel, long at, double value) throws IOException {
    long row = key.rowOffset() + at / key.cols();
    long col = key.colOffset() + at % key.cols();
    String x2 = tiles.symmetric() ? tiles.x1() : tiles.x2();
    throw new NonFiniteKernelException(tiles.dtype(), role == null ? kernel : role + " " + kernel, row, col, value,
        computer.diagnose(tiles.readRows(tiles.x1(), row, 1), tiles.readRows(x2, col, 1)));
  }

  /** A tile's input rows ({@code b} null on the diagonal of x1 with itself). */
  private record Inputs(double[] a, double[] b) {}

  /** Reads a tile's input rows, counting the blocks read and the time. */
  private Inputs inputs(TileKey key) throws IOException {
    boolean diagonal = tiles.symmetric() && key.rowOffset() == key.colOffset();
    String x2 = tiles.symmetric() ? tiles.x1() : tiles.x2();
    long started = System.nanoTime();
    long read = rows.reads();
    double[] a = rows.get(tiles.x1(), key.rowOffset(), key.rows());
    double[] b = diagonal ? null : rows.get(x2, key.colOffset(), key.cols());
    blocksRead.inc(rows.reads() - read);
    inputMicros.update(microsSince(started));
    return new Inputs(a, b);
  }

  private TileComputer.StoredTile computeStored(TileKey key) throws IOException {
    Inputs in = inputs(key);
    long computing = System.nanoTime();
    try {
      TileComputer.StoredTile tile = computer.computeStored(key, in.a(), in.b());
      computeMicros.update(microsSince(computing));
      return tile;
    } catch (dev.ntk.kernels.Masking.FullyMaskedException e) {
      throw named(key, e);
    }
  }

  /** A fully masked example named by its file and its index there, not in the tile. */
  private RuntimeException named(TileKey key, dev.ntk.kernels.Masking.FullyMaskedException e) {
    boolean rows = e.input().equals("x1");
    return e.at(rows || tiles.symmetric() ? tiles.x1() : tiles.x2(), rows ? key.rowOffset() : key.colOffset());
  }

  private Tile compute(TileKey key) throws IOException {
    Inputs in = inputs(key);
    long computing = System.nanoTime();
    try {
      Tile tile = new Tile(key, tiles.modelHash(), tiles.inputsHash(), tiles.dtype(),
          computer.compute(key, in.a(), in.b()));
      computeMicros.update(microsSince(computing));
      return tile;
    } catch (dev.ntk.kernels.Masking.FullyMaskedException e) {
      throw named(key, e);
    }
  }

  private static long microsSince(long nanos) {
    return (System.nanoTime() - nanos) / 1000;
  }

  @Teardown
  public void teardown() {
    computer.teardown();
  }
}
