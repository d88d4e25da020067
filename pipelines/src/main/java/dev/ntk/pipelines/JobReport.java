package dev.ntk.pipelines;

import java.util.Locale;

/**
 * What a finished job did: its wall-clock seconds from submission to completion (the pipeline
 * alone, without the JVM start or the loading of inputs before it) and the kernel tiles it
 * computed or found on disk from an earlier run, and of those computed, how many replaced a
 * damaged tile (Beam metrics; {@code -1} where the runner reports none), and where the computed
 * tiles' time went ({@code null} where the runner reports no distributions or none were computed).
 */
public record JobReport(String runner, double seconds, long tilesComputed, long tilesReused,
    long tilesDamaged, TileTimes tileTimes) {
  /** A report without tile times. */
  public JobReport(String runner, double seconds, long tilesComputed, long tilesReused, long tilesDamaged) {
    this(runner, seconds, tilesComputed, tilesReused, tilesDamaged, null);
  }

  /**
   * The workers' time in the tiles they computed, summed over the workers: getting the input rows
   * (of which {@code blocksRead} blocks were read from their files, the rest kept by the worker),
   * computing the kernels (and the longest tile) and checking and writing the tile files; and the
   * seconds the assembly of the kernel files from the tiles took ({@code -1}: not measured).
   */
  public record TileTimes(long tiles, double inputSeconds, long blocksRead, double computeSeconds,
      double longestComputeSeconds, double writeSeconds, double assemblySeconds) {
    @Override
    public String toString() {
      return String.format(Locale.ROOT, "ntk: %d tiles computed in %.2f s of worker time: input rows %.2f s "
          + "(%d blocks read from files), kernels %.2f s (the longest tile %.3f s), check and write %.2f s",
          tiles, inputSeconds + computeSeconds + writeSeconds, inputSeconds, blocksRead, computeSeconds,
          longestComputeSeconds, writeSeconds)
          + (assemblySeconds < 0 ? "" : String.format(Locale.ROOT, "; assembly of the kernel files %.2f s",
              assemblySeconds));
    }
  }

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
