package dev.ntk.io;

import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * A block of one or more kernel matrices (such as {@code nngp} and {@code ntk}) between rows of x1
 * and columns of x2, each held row-major as {@code rows * cols} doubles.
 *
 * <p>The map is copied into an unmodifiable one sorted by name; the value arrays are not copied.
 * With {@link NpyDType#FLOAT32} the values are rounded to float when written.
 */
public record Tile(
    TileKey key,
    String modelHash,
    String inputsHash,
    NpyDType dtype,
    SortedMap<String, double[]> kernels) {
  /** Checks the metadata and that every kernel has {@code rows * cols} values. */
  public Tile {
    Objects.requireNonNull(kernels, "kernels");
    // As a plain Map so that the copy sorts by name even if the caller's map has a comparator.
    kernels = Collections.unmodifiableSortedMap(new TreeMap<>((Map<String, double[]>) kernels));
    new TileMetadata(key, modelHash, inputsHash, dtype, List.copyOf(kernels.keySet()));
    for (Map.Entry<String, double[]> e : kernels.entrySet()) {
      Objects.requireNonNull(e.getValue(), e.getKey());
      if (e.getValue().length != key.size()) {
        throw new IllegalArgumentException("kernel '" + e.getKey() + "' has "
            + e.getValue().length + " values but a " + key.rows() + "x" + key.cols()
            + " tile needs " + key.size());
      }
    }
  }

  /** The tile's metadata, as {@link TileFiles#readMetadata} returns it. */
  public TileMetadata metadata() {
    return new TileMetadata(key, modelHash, inputsHash, dtype, List.copyOf(kernels.keySet()));
  }

  @Override
  public boolean equals(Object o) {
    if (!(o instanceof Tile t) || !metadata().equals(t.metadata())) {
      return false;
    }
    for (Map.Entry<String, double[]> e : kernels.entrySet()) {
      if (!Arrays.equals(e.getValue(), t.kernels.get(e.getKey()))) {
        return false;
      }
    }
    return true;
  }

  @Override
  public int hashCode() {
    int h = metadata().hashCode();
    for (double[] values : kernels.values()) {
      h = 31 * h + Arrays.hashCode(values);
    }
    return h;
  }

  @Override
  public String toString() {
    return "Tile[key=" + key + ", modelHash=" + modelHash + ", inputsHash=" + inputsHash
        + ", dtype=" + dtype.typeName() + ", kernels=" + kernels.keySet() + "]";
  }
}
