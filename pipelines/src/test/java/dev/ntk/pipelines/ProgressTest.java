package dev.ntk.pipelines;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class ProgressTest {
  @Test
  void lineSaysDoneTotalRateAndTimeLeft() {
    assertEquals("ntk: tiles 12/40 (30%), 2.0 tiles/s, about 14 s left", Progress.line(12, 40, 6.0));
    assertEquals("ntk: tiles 30/9000 (0%), 0.5 tiles/s, about 4 h 59 min left", Progress.line(30, 9000, 60));
    assertEquals("ntk: tiles 0/5 (0%), 0.0 tiles/s, time left unknown", Progress.line(0, 5, 1));
    assertEquals("ntk: tiles 5/5 (100%), 2.5 tiles/s, finishing (assembly, inference, outputs)",
        Progress.line(5, 5, 2));
  }

  /** Off a terminal: plain lines, no more often than the interval, only when the count moved. */
  @Test
  void logLinesOnANonTerminal() throws InterruptedException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    PrintStream err = new PrintStream(bytes, true, StandardCharsets.UTF_8);
    assertFalse(err == System.err);
    AtomicLong done = new AtomicLong(7); // counted from the start: 7 are an earlier run's
    try (Progress.Display d = new Progress(err, false, 100).start(10, done::get)) {
      Thread.sleep(250);
      done.addAndGet(4);
      Thread.sleep(600);
    }
    List<String> lines = bytes.toString(StandardCharsets.UTF_8).lines().toList();
    assertFalse(bytes.toString(StandardCharsets.UTF_8).contains("\r"));
    assertEquals(1, lines.size(), "nothing before the first tile, then one line per change: " + lines);
    assertTrue(lines.get(0).startsWith("ntk: tiles 4/10 (40%)"), lines.toString());
  }
}
