package dev.ntk.transforms;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.io.Tile;
import dev.ntk.io.TileFiles;
import dev.ntk.io.TileKey;
import dev.ntk.kernels.Diagnostics;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Kernel;
import dev.ntk.kernels.KernelFn;
import dev.ntk.kernels.ModelSpec;
import dev.ntk.kernels.Plan;
import dev.ntk.kernels.Tensors;
import dev.ntk.kernels.engine.Backend;
import dev.ntk.kernels.engine.CpuBackend;
import java.io.IOException;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.SortedMap;
import java.util.TreeMap;
import org.apache.beam.sdk.metrics.Counter;
import org.apache.beam.sdk.metrics.Metrics;
import org.apache.beam.sdk.transforms.DoFn;

/**
 * Computes one kernel tile per element and writes it as an Arrow IPC file, skipping tiles already
 * on disk for the same model, inputs and dtype whose values pass their checksum (a damaged tile is
 * recomputed, counted and reported on stderr). A tile with a non-finite entry stops the run with a
 * {@link NonFiniteKernelException}. Emits the key of every tile that is done.
 *
 * <p>Each instance compiles the model's {@link Plan} once in {@code @Setup} and runs it for every
 * tile on one thread (a Beam worker is one of several). On the {@code cpu} backend a tile is
 * plain Java arrays; on {@code tensorflow} the instance opens one {@code NDManager}, and each tile
 * is computed in a child manager closed with the tile, so a worker's memory stays bounded by one
 * tile's working set however many tiles it computes.
 */
final class ComputeTileFn extends DoFn<TileKey, TileKey> {
  private static final long serialVersionUID = 1L;

  private final TileSet tiles;
  private final Backend backend;
  private final Counter computed = Metrics.counter(KernelTiles.class, KernelTiles.TILES_COMPUTED);
  private final Counter skipped = Metrics.counter(KernelTiles.class, KernelTiles.TILES_SKIPPED);
  private final Counter damaged = Metrics.counter(KernelTiles.class, KernelTiles.TILES_DAMAGED);
  private transient Backend resolved;
  private transient KernelFn kernelFn;
  private transient Plan plan;
  private transient NDManager manager;

  ComputeTileFn(TileSet tiles, Backend backend) {
    this.tiles = tiles;
    this.backend = backend;
  }

  @Setup
  public void setup() {
    resolved = backend.resolve(); // on the worker: auto means this machine's GPU, if any
    kernelFn = ModelSpec.parse(tiles.modelJson()).kernelFn().withBackend(resolved);
    plan = kernelFn.plan(new Shape(tiles.featureShape()), EnumSet.allOf(Get.class));
    if (resolved == Backend.TENSORFLOW) {
      manager = Tensors.newManager();
    }
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
      checkFinite(key, tile);
      TileFiles.write(Path.of(tiles.directory()), tile);
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
    for (Map.Entry<String, double[]> kernel : tile.kernels().entrySet()) {
      OptionalLong bad = Npy.firstNonFinite(kernel.getValue());
      if (bad.isEmpty()) {
        continue;
      }
      long row = key.rowOffset() + bad.getAsLong() / key.cols();
      long col = key.colOffset() + bad.getAsLong() % key.cols();
      throw new NonFiniteKernelException(tiles, kernel.getKey(), row, col,
          kernel.getValue()[(int) bad.getAsLong()], diagnose(row, col));
    }
  }

  /** The layer where the kernel between x1's row {@code row} and x2's row {@code col} breaks. */
  private Optional<String> diagnose(long row, long col) throws IOException {
    DataType type = tiles.dtype() == NpyDType.FLOAT32 ? DataType.FLOAT32 : DataType.FLOAT64;
    String x2 = tiles.symmetric() ? tiles.x1() : tiles.x2();
    // On the cpu backend the worker has no NDManager: a failing run can pay for one.
    try (NDManager scope = manager != null ? manager.newSubManager() : Tensors.newManager()) {
      return Diagnostics.firstNonFiniteLayer(kernelFn.layer(),
          block(scope, tiles.x1(), row, 1, type), block(scope, x2, col, 1, type));
    }
  }

  private Tile compute(TileKey key) throws IOException {
    boolean diagonal = tiles.symmetric() && key.rowOffset() == key.colOffset();
    String x2 = tiles.symmetric() ? tiles.x1() : tiles.x2();
    if (resolved == Backend.CPU) {
      double[] a = Npy.readRows(Path.of(tiles.x1()), key.rowOffset(), key.rows()).data();
      double[] b = diagonal ? null : Npy.readRows(Path.of(x2), key.colOffset(), key.cols()).data();
      SortedMap<String, double[]> values = tiles.dtype() == NpyDType.FLOAT32
          ? onCpu(CpuBackend.float32(), a, b, key) : onCpu(CpuBackend.float64(), a, b, key);
      return new Tile(key, tiles.modelHash(), tiles.inputsHash(), tiles.dtype(), values);
    }
    DataType type = tiles.dtype() == NpyDType.FLOAT32 ? DataType.FLOAT32 : DataType.FLOAT64;
    try (NDManager scope = manager.newSubManager()) {
      NDArray a = block(scope, tiles.x1(), key.rowOffset(), key.rows(), type);
      NDArray b = diagonal ? null : block(scope, x2, key.colOffset(), key.cols(), type);
      Kernel k = kernelFn.apply(a, b);
      SortedMap<String, double[]> values = new TreeMap<>();
      values.put(Get.NNGP.key(), Tensors.toDoubles(k.nngp()));
      values.put(Get.NTK.key(), Tensors.toDoubles(k.ntk()));
      return new Tile(key, tiles.modelHash(), tiles.inputsHash(), tiles.dtype(), values);
    }
  }

  private <A> SortedMap<String, double[]> onCpu(CpuBackend<A> cpu, double[] a, double[] b, TileKey key) {
    int size = key.rows() * key.cols();
    Map<String, A> k = plan.run(cpu, cpu.fromDoubles(a), b == null ? null : cpu.fromDoubles(b),
        key.rows(), key.cols(), 1);
    SortedMap<String, double[]> values = new TreeMap<>();
    values.put(Get.NNGP.key(), cpu.toDoubles(k.get(Plan.NNGP), size));
    values.put(Get.NTK.key(), cpu.toDoubles(k.get(Plan.NTK), size));
    return values;
  }

  private NDArray block(NDManager scope, String file, long first, int rows, DataType type)
      throws IOException {
    NpyArray array = Npy.readRows(Path.of(file), first, rows);
    return Tensors.create(scope, array.data(), new Shape(array.shape()), type);
  }

  @Teardown
  public void teardown() {
    if (manager != null) {
      manager.close();
      manager = null;
    }
  }
}
