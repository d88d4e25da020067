package dev.ntk.transforms;

import dev.ntk.io.Npy;
import dev.ntk.io.Tile;
import dev.ntk.io.TileKey;
import dev.ntk.io.TileMetadata;
import dev.ntk.kernels.engine.Backend;
import java.io.IOException;
import java.nio.Buffer;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.SortedMap;
import java.util.TreeMap;
import org.apache.beam.sdk.metrics.Counter;
import org.apache.beam.sdk.metrics.Distribution;
import org.apache.beam.sdk.metrics.Metrics;
import org.apache.beam.sdk.transforms.DoFn;

/**
 * The one step that fills kernel tiles, for both Beam APIs: the tile sets of {@link KernelTiles}
 * ({@link Keys}: emits the key of each finished tile file) and the {@code PCollection<Tile>} of
 * {@link Kernels} ({@link Tiles}: emits the tiles). Where a tile comes from is {@link TileInputs};
 * the step holds that configuration, a backend, a role for messages and, optionally, a store.
 *
 * <p>With a store ({@link TileStore}: a tile set's directory, or {@link Kernels#withTileDirectory}),
 * a tile already there for the same model, inputs, dtype and kernels whose values pass their
 * checksum is read, not computed (counted {@value KernelTiles#TILES_SKIPPED}); a damaged one is
 * recomputed (counted {@value KernelTiles#TILES_DAMAGED}, reported on stderr); a computed tile is
 * written whole, committed by a rename. A tile with a non-finite entry stops the run with a {@link
 * NonFiniteKernelException} naming the entry and the layer where it breaks.
 *
 * <p>Each instance sets up its {@link TileFunction} once (the model's plan, compiled for the
 * kernels asked for) and runs it for every tile: on the {@code cpu} backend with the in-process
 * path's own call ({@code Plan.runInto}) into native memory, on this tile's share of the cores,
 * and a tile file is written from that memory. Metrics are those of {@link KernelTiles}'
 * namespace, for both APIs.
 *
 * @param <O> the output: {@link TileKey} or {@link Tile}
 */
abstract class ComputeTileFn<O> extends DoFn<TileKey, O> {
  private static final long serialVersionUID = 1L;

  private final TileInputs inputs;
  private final Backend backend;
  /** The kernel's role for messages ({@code train-train}), or null. */
  private final String role;
  /** Where finished tiles are read from and new ones written to, or null (tiles are elements only). */
  private final TileStore store;
  private final Counter computed = Metrics.counter(KernelTiles.class, KernelTiles.TILES_COMPUTED);
  private final Counter skipped = Metrics.counter(KernelTiles.class, KernelTiles.TILES_SKIPPED);
  private final Counter damaged = Metrics.counter(KernelTiles.class, KernelTiles.TILES_DAMAGED);
  private final Distribution inputMicros = Metrics.distribution(KernelTiles.class, KernelTiles.TILE_INPUT_MICROS);
  private final Distribution computeMicros = Metrics.distribution(KernelTiles.class,
      KernelTiles.TILE_COMPUTE_MICROS);
  private final Distribution writeMicros = Metrics.distribution(KernelTiles.class, KernelTiles.TILE_WRITE_MICROS);
  private final Counter blocksRead = Metrics.counter(KernelTiles.class, KernelTiles.INPUT_BLOCKS_READ);
  private final Counter entries = Metrics.counter(KernelTiles.class, KernelTiles.ENTRIES_COMPUTED);
  private transient TileFunction computer;

  ComputeTileFn(TileInputs inputs, Backend backend, String role, TileStore store) {
    this.inputs = inputs;
    this.backend = backend;
    this.role = role;
    this.store = store;
  }

  /** Whether the output carries the tile's values (else only its key). */
  abstract boolean emitsTiles();

  /** The element for a finished tile ({@code tile} is null where {@link #emitsTiles} is false). */
  abstract O element(TileKey key, Tile tile);

  /** Emits the key of every finished tile (written to the store, which is required). */
  static final class Keys extends ComputeTileFn<TileKey> {
    private static final long serialVersionUID = 1L;

    Keys(TileInputs inputs, Backend backend, String role, TileStore store) {
      super(inputs, backend, role, java.util.Objects.requireNonNull(store, "store"));
    }

    @Override
    boolean emitsTiles() {
      return false;
    }

    @Override
    TileKey element(TileKey key, Tile tile) {
      return key;
    }
  }

  /** Emits every tile, read from the store or computed. */
  static final class Tiles extends ComputeTileFn<Tile> {
    private static final long serialVersionUID = 1L;

    Tiles(TileInputs inputs, Backend backend, String role, TileStore store) {
      super(inputs, backend, role, store);
    }

    @Override
    boolean emitsTiles() {
      return true;
    }

    @Override
    Tile element(TileKey key, Tile tile) {
      return tile;
    }
  }

  @Setup
  public void setup() {
    inputs.setup();
  }

  @ProcessElement
  public void process(ProcessContext c) throws IOException {
    TileKey key = c.element();
    TileInputs.Bound job = inputs.bind(c::sideInput);
    if (computer == null) {
      TileFunction f = job.function(backend);
      f.setup();
      computer = f;
    }
    TileMetadata metadata = new TileMetadata(key, job.modelHash(), job.inputsHash(), job.dtype(), computer.names());
    if (store != null) {
      TileStore.Found found = store.find(metadata);
      if (found.state() == TileSet.TileState.VALID) {
        skipped.inc();
        c.output(element(key, found.tile()));
        return;
      }
      if (found.state() == TileSet.TileState.DAMAGED) {
        damaged.inc();
        System.err.println("ntk: warning: recomputing a damaged tile: " + found.problem());
      }
    }
    Tile tile = null;
    if (computer.storesValues() && (long) key.size() * job.dtype().bytes() <= Integer.MAX_VALUE - 64) {
      try (TileComputer.StoredTile values = computeStored(job, key)) {
        long written = System.nanoTime();
        checkFinite(job, key, values);
        if (store != null) {
          store.write(metadata, values.bytes(metadata.kernelNames()));
        }
        if (emitsTiles()) {
          SortedMap<String, double[]> kernels = new TreeMap<>();
          for (String name : metadata.kernelNames()) {
            kernels.put(name, values.doubles(name));
          }
          tile = new Tile(key, job.modelHash(), job.inputsHash(), job.dtype(), kernels);
        }
        writeMicros.update(microsSince(written));
      }
    } else {
      tile = compute(job, key);
      long written = System.nanoTime();
      checkFinite(job, key, tile);
      if (store != null) {
        store.write(tile);
      }
      writeMicros.update(microsSince(written));
    }
    computed.inc();
    entries.inc((long) key.size() * computer.names().size());
    c.output(element(key, tile));
  }

  /**
   * Stops the run at a tile with an {@code inf} or {@code NaN} entry, naming the entry and the
   * layer where the kernel of its two input rows first stops being finite.
   */
  private void checkFinite(TileInputs.Bound job, TileKey key, Tile tile) throws IOException {
    Optional<Map.Entry<String, Long>> bad = TileComputer.firstNonFinite(tile.kernels());
    if (bad.isPresent()) {
      long at = bad.get().getValue();
      nonFinite(job, key, bad.get().getKey(), at, tile.kernels().get(bad.get().getKey())[(int) at]);
    }
  }

  /** As {@link #checkFinite(TileInputs.Bound, TileKey, Tile)}, the kernels checked side by side, one per thread. */
  private void checkFinite(TileInputs.Bound job, TileKey key, TileComputer.StoredTile tile) throws IOException {
    List<String> names = computer.names();
    List<OptionalLong> bad = names.parallelStream().map(name -> Npy.firstNonFinite(tile.values(name))).toList();
    for (int k = 0; k < bad.size(); k++) {
      if (bad.get(k).isPresent()) {
        String name = names.get(k);
        int at = (int) bad.get(k).getAsLong();
        Buffer values = tile.values(name);
        nonFinite(job, key, name, at, values instanceof FloatBuffer f ? f.get(at) : ((DoubleBuffer) values).get(at));
      }
    }
  }

  private void nonFinite(TileInputs.Bound job, TileKey key, String kernel, long at, double value)
      throws IOException {
    long row = key.rowOffset() + at / key.cols();
    long col = key.colOffset() + at % key.cols();
    throw new NonFiniteKernelException(job.dtype(), role == null ? kernel : role + " " + kernel, row, col, value,
        computer.diagnose(job.rows(false, row, 1), job.rows(true, col, 1)));
  }

  /**
   * A tile's input rows ({@code b} null on the diagonal of x1 with itself) and, for a graph model,
   * their patterns.
   */
  private record Rows(double[] a, double[] b, TilePatterns.Rows patterns) {}

  /** Reads a tile's input rows, counting the blocks read and the time. */
  private Rows rows(TileInputs.Bound job, TileKey key) throws IOException {
    boolean diagonal = job.x1WithItself() && key.rowOffset() == key.colOffset();
    long started = System.nanoTime();
    long read = job.blocksRead();
    double[] a = job.rows(false, key.rowOffset(), key.rows());
    double[] b = diagonal ? null : job.rows(true, key.colOffset(), key.cols());
    TilePatterns.Rows patterns = job.patterns(key, diagonal);
    blocksRead.inc(job.blocksRead() - read);
    inputMicros.update(microsSince(started));
    return new Rows(a, b, patterns);
  }

  private TileComputer.StoredTile computeStored(TileInputs.Bound job, TileKey key) throws IOException {
    Rows in = rows(job, key);
    long computing = System.nanoTime();
    try {
      TileComputer.StoredTile tile = computer.computeStored(key, in.a(), in.b(), in.patterns());
      computeMicros.update(microsSince(computing));
      return tile;
    } catch (dev.ntk.kernels.Masking.FullyMaskedException e) {
      throw named(job, key, e);
    }
  }

  /** A fully masked example named by its file (or collection) and its index there, not in the tile. */
  private static RuntimeException named(TileInputs.Bound job, TileKey key,
      dev.ntk.kernels.Masking.FullyMaskedException e) {
    boolean rows = e.input().equals("x1");
    return e.at(job.inputName(!rows), rows ? key.rowOffset() : key.colOffset());
  }

  private Tile compute(TileInputs.Bound job, TileKey key) throws IOException {
    Rows in = rows(job, key);
    long computing = System.nanoTime();
    try {
      Tile tile = new Tile(key, job.modelHash(), job.inputsHash(), job.dtype(),
          computer.compute(key, in.a(), in.b(), in.patterns()));
      computeMicros.update(microsSince(computing));
      return tile;
    } catch (dev.ntk.kernels.Masking.FullyMaskedException e) {
      throw named(job, key, e);
    }
  }

  private static long microsSince(long nanos) {
    return (System.nanoTime() - nanos) / 1000;
  }

  @Teardown
  public void teardown() {
    if (computer != null) {
      computer.teardown();
    }
  }
}
