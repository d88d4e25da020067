package dev.ntk.io;

import java.util.Optional;

/** The element types this package reads and writes: little-endian IEEE floats. */
public enum NpyDType {
  /** 32-bit float, numpy descr {@code <f4}. */
  FLOAT32("<f4", 4),
  /** 64-bit float, numpy descr {@code <f8}. */
  FLOAT64("<f8", 8);

  private final String descr;
  private final int bytes;

  NpyDType(String descr, int bytes) {
    this.descr = descr;
    this.bytes = bytes;
  }

  /** The numpy type descriptor, {@code <f4} or {@code <f8}. */
  public String descr() {
    return descr;
  }

  /** Bytes per element. */
  public int bytes() {
    return bytes;
  }

  /** The numpy name, {@code float32} or {@code float64}. */
  public String typeName() {
    return this == FLOAT32 ? "float32" : "float64";
  }

  /** The dtype named {@code float32} or {@code float64} (as numpy spells them). */
  public static NpyDType fromName(String name) {
    for (NpyDType t : values()) {
      if (t.typeName().equals(name)) {
        return t;
      }
    }
    throw new IllegalArgumentException("unknown dtype '" + name + "'; expected float32 or float64");
  }

  /** The dtype with numpy descriptor {@code descr}, if it is one of the supported ones. */
  public static Optional<NpyDType> fromDescr(String descr) {
    for (NpyDType t : values()) {
      if (t.descr.equals(descr)) {
        return Optional.of(t);
      }
    }
    return Optional.empty();
  }
}
