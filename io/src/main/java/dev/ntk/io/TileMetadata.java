package dev.ntk.io;

import java.util.HashSet;
import java.util.List;
import java.util.Objects;

/**
 * Everything about a tile file except its values: where it lies, which model and inputs it was
 * computed for, its dtype and its kernel names in column order.
 */
public record TileMetadata(
    TileKey key, String modelHash, String inputsHash, NpyDType dtype, List<String> kernelNames) {
  /** Checks for nulls and that kernel names are non-empty, distinct and free of commas. */
  public TileMetadata {
    Objects.requireNonNull(key, "key");
    Objects.requireNonNull(modelHash, "modelHash");
    Objects.requireNonNull(inputsHash, "inputsHash");
    Objects.requireNonNull(dtype, "dtype");
    kernelNames = List.copyOf(kernelNames);
    if (kernelNames.isEmpty()) {
      throw new IllegalArgumentException("a tile needs at least one kernel");
    }
    for (String name : kernelNames) {
      if (name.isEmpty() || name.contains(",")) {
        throw new IllegalArgumentException("invalid kernel name '" + name
            + "': it must be non-empty and must not contain ','");
      }
    }
    if (new HashSet<>(kernelNames).size() != kernelNames.size()) {
      throw new IllegalArgumentException("duplicate kernel names in " + kernelNames);
    }
  }
}
