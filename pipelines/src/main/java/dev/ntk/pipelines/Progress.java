package dev.ntk.pipelines;

import dev.ntk.kernels.predict.ConjugateGradients;
import dev.ntk.kernels.predict.GradientDescent;
import java.io.PrintStream;
import java.util.Locale;
import java.util.function.LongSupplier;

/**
 * Progress of a run on stderr: tiles done of the total, the rate and the time left. On a terminal
 * one live line is rewritten in place a few times a second; otherwise (a log file, a pipe) a line
 * is printed at most every {@link #LOG_INTERVAL_MS} milliseconds, once the first tile is done and
 * only when the count changed.
 */
final class Progress {
  /** The interval between lines when stderr is not a terminal. */
  static final long LOG_INTERVAL_MS = 5_000;
  private static final long LIVE_INTERVAL_MS = 250;

  /** Prints nothing. */
  static final Progress NONE = new Progress(null, false, Long.MAX_VALUE);

  private final PrintStream err;
  private final boolean live;
  private final long intervalMs;

  Progress(PrintStream err, boolean live, long intervalMs) {
    this.err = err;
    this.live = live;
    this.intervalMs = intervalMs;
  }

  /** Progress on {@code err}, live if it is the process's stderr and that is a terminal. */
  static Progress on(PrintStream err) {
    boolean terminal = err == System.err && System.console() != null;
    return new Progress(err, terminal, terminal ? LIVE_INTERVAL_MS : LOG_INTERVAL_MS);
  }

  /** A display of {@code done} out of {@code total} tiles, until closed. */
  interface Display extends AutoCloseable {
    @Override
    void close();
  }

  /** Starts showing {@code done.getAsLong()} (counted from now) out of {@code total} tiles. */
  Display start(long total, LongSupplier done) {
    return start(total, done, "tiles");
  }

  /** Starts showing {@code done.getAsLong()} (counted from now) out of {@code total} {@code units}. */
  Display start(long total, LongSupplier done, String units) {
    if (err == null || total <= 0) {
      return () -> {};
    }
    long start = System.nanoTime();
    long base = done.getAsLong();
    long[] shown = {-1};
    return every("ntk-progress", () -> {
      long n = Math.min(total, done.getAsLong() - base);
      if (live || (n != shown[0] && n > 0)) {
        print(line(n, total, (System.nanoTime() - start) / 1e9, units));
        shown[0] = n;
      }
    });
  }

  /**
   * Shows where the ODE integration running in this JVM stands ({@link GradientDescent#running}):
   * the time reached of the time asked and the solver steps, every interval while it runs, until
   * closed.
   */
  Display integration() {
    if (err == null) {
      return () -> {};
    }
    long[] shown = {-1};
    return every("ntk-integration-progress", () -> {
      GradientDescent.Status s = GradientDescent.running();
      if (s != null && (live || s.steps() != shown[0])) {
        print(String.format(Locale.ROOT, "ntk: integrating: t = %.4g of %.4g, %d solver steps", s.reached(),
            s.asked(), s.steps()));
        shown[0] = s.steps();
      }
    });
  }

  /**
   * Shows where the conjugate-gradient solve running in this JVM stands ({@link
   * ConjugateGradients#running}): the iterations and the relative residual against the tolerance,
   * every interval while it runs, until closed.
   */
  Display conjugateGradients() {
    if (err == null) {
      return () -> {};
    }
    long[] shown = {-1};
    return every("ntk-cg-progress", () -> {
      ConjugateGradients.Status s = ConjugateGradients.running();
      if (s != null && (live || s.iterations() != shown[0])) {
        print(String.format(Locale.ROOT, "ntk: conjugate gradients: iteration %d of at most %d, relative residual "
            + "%.2g (tolerance %.2g)", s.iterations(), s.maxIterations(), s.residual(), s.tolerance()));
        shown[0] = s.iterations();
      }
    });
  }

  /** Runs {@code tick} every interval on a daemon thread until the display is closed, then clears a live line. */
  private Display every(String name, Runnable tick) {
    Thread t = new Thread(() -> {
      try {
        while (true) {
          Thread.sleep(intervalMs);
          tick.run();
        }
      } catch (InterruptedException e) {
        // closed
      }
    }, name);
    t.setDaemon(true);
    t.start();
    return () -> {
      t.interrupt();
      try {
        t.join();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      if (live) {
        err.print("\r\033[K");
        err.flush();
      }
    };
  }

  private synchronized void print(String line) {
    if (live) {
      err.print("\r\033[K" + line);
      err.flush();
    } else {
      err.println(line);
    }
  }

  /** {@code tiles 12/40 (30%), 2.5 tiles/s, about 11 s left}. */
  static String line(long done, long total, double seconds) {
    return line(done, total, seconds, "tiles");
  }

  /** {@link #line(long, long, double)} counting {@code units} (tiles, steps). */
  static String line(long done, long total, double seconds, String units) {
    double rate = seconds > 0 ? done / seconds : 0;
    String left = done >= total ? units.equals("tiles") ? "finishing (assembly, inference, outputs)" : "finishing"
        : rate > 0 ? "about " + duration((total - done) / rate) + " left" : "time left unknown";
    return String.format(Locale.ROOT, "ntk: %s %d/%d (%d%%), %.1f %s/s, %s", units, done, total,
        done * 100 / total, rate, units, left);
  }

  private static String duration(double seconds) {
    long s = Math.round(seconds);
    return s < 60 ? s + " s" : s < 3600 ? (s / 60) + " min " + (s % 60) + " s"
        : (s / 3600) + " h " + (s % 3600 / 60) + " min";
  }
}
