package dev.ntk.kernels;

import java.util.Locale;

/** Which kernel a computation returns: the NNGP (Bayesian posterior) or the NTK (trained network). */
public enum Get {
  NNGP,
  NTK;

  /** The lower-case name used in model files, file names and the command line. */
  public String key() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** Parses {@code nngp} or {@code ntk} (any case). */
  public static Get of(String name) {
    for (Get g : values()) {
      if (g.key().equalsIgnoreCase(name.trim())) {
        return g;
      }
    }
    throw new IllegalArgumentException("unknown kernel \"" + name + "\": expected nngp or ntk");
  }
}
