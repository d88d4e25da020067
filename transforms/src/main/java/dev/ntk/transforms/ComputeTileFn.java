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
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Kernel;
import dev.ntk.kernels.KernelFn;
import dev.ntk.kernels.ModelSpec;
import dev.ntk.kernels.Tensors;
import java.io.IOException;
import java.nio.file.Path;
import java.util.SortedMap;
import java.util.TreeMap;
import org.apache.beam.sdk.metrics.Counter;
import org.apache.beam.sdk.metrics.Metrics;
import org.apache.beam.sdk.transforms.DoFn;

/**
 * Computes one kernel tile per element and writes it as an Arrow IPC file, skipping tiles already
 * on disk for the same model, inputs and dtype. Emits the key of every tile that is done.
 *
 * <p>Each instance parses the model and opens one {@code NDManager} in {@code @Setup}; each tile
 * is computed in a child manager that is closed with the tile, so a worker's memory stays bounded
 * by one tile's working set however many tiles it computes.
 */
final class ComputeTileFn extends DoFn<TileKey, TileKey> {
  private static final long serialVersionUID = 1L;

  private final TileSet tiles;
  private final Counter computed = Metrics.counter(KernelTiles.class, KernelTiles.TILES_COMPUTED);
  private final Counter skipped = Metrics.counter(KernelTiles.class, KernelTiles.TILES_SKIPPED);
  private transient KernelFn kernelFn;
  private transient NDManager manager;

  ComputeTileFn(TileSet tiles) {
    this.tiles = tiles;
  }

  @Setup
  public void setup() {
    kernelFn = ModelSpec.parse(tiles.modelJson()).kernelFn();
    manager = Tensors.newManager();
  }

  @ProcessElement
  public void process(@Element TileKey key, OutputReceiver<TileKey> out) throws IOException {
    if (tiles.isDone(key)) {
      skipped.inc();
    } else {
      TileFiles.write(Path.of(tiles.directory()), compute(key));
      computed.inc();
    }
    out.output(key);
  }

  private Tile compute(TileKey key) throws IOException {
    DataType type = tiles.dtype() == NpyDType.FLOAT32 ? DataType.FLOAT32 : DataType.FLOAT64;
    boolean diagonal = tiles.symmetric() && key.rowOffset() == key.colOffset();
    String x2 = tiles.symmetric() ? tiles.x1() : tiles.x2();
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
