package dev.ntk.kernels;

import java.util.Collection;
import java.util.EnumSet;
import java.util.Locale;

/** Which kernel a computation returns: the NNGP (Bayesian posterior) or the NTK (trained network). */
public enum Get {
  NNGP,
  NTK;

  /** The lower-case name used in model files, file names and the command line. */
  public String key() {
    return name().toLowerCase(Locale.ROOT);
  }

  /**
   * {@code gets} as a set in declaration order; empty where no kernel is asked for (only the
   * covariances {@code cov1}, {@code cov2}), which {@link EnumSet#copyOf(Collection)} refuses.
   */
  public static EnumSet<Get> setOf(Collection<Get> gets) {
    EnumSet<Get> set = EnumSet.noneOf(Get.class);
    set.addAll(gets);
    return set;
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
