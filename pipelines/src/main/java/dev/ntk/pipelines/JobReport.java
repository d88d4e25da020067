package dev.ntk.pipelines;

import java.util.Locale;

/**
 * What a finished job did: its wall-clock seconds from submission to completion (the pipeline
 * alone, without the JVM start or the loading of inputs before it) and the kernel tiles it
 * computed or found on disk from an earlier run, and of those computed, how many replaced a
 * damaged tile (Beam metrics; {@code -1} where the runner reports none).
 */
public record JobReport(String runner, double seconds, long tilesComputed, long tilesReused,
    long tilesDamaged) {
  @Override
  public String toString() {
    String damaged = tilesDamaged <= 0 ? "" : "; " + tilesDamaged + (tilesDamaged == 1
        ? " damaged tile (failing its checksum) was" : " damaged tiles (failing their checksums) were")
        + " recomputed";
    return String.format(Locale.ROOT, "%s: %s tiles computed, %s reused, pipeline %.1f s%s", runner,
        count(tilesComputed), count(tilesReused), seconds, damaged);
  }

  private static String count(long n) {
    return n < 0 ? "?" : Long.toString(n);
  }
}
