package dev.ntk.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Atomic writes, and the temporary names that only ntk gives (the clean-up removes only those). */
class AtomicFilesTest {
  @TempDir Path dir;

  /** Hidden {@code .tmp} files of users (or of ntk's older versions) are not ntk's temporaries. */
  @Test
  void onlyNamesNtkGivesAreTemporary() {
    for (String name : List.of(".mydata.tmp", ".tile-r0-c4.arrow.1234abcd.tmp", "x.tmp", ".ntk-tmp-x.tmp",
        ".ntk-tmp-x.1234abcd.tmp", ".ntk-tmp-x.0123456789ABCDEF.tmp", ".ntk-tmp-.0123456789abcdef.tmp")) {
      assertFalse(AtomicFiles.isTemporary(Path.of(name)), name);
    }
  }

  /** A write goes through a temporary name that {@link AtomicFiles#isTemporary} recognises, and leaves none. */
  @Test
  void aWriteGoesThroughANameOnlyNtkUses() throws IOException {
    Path[] seen = new Path[1];
    AtomicFiles.write(dir.resolve("a.npy"), tmp -> {
      seen[0] = tmp;
      Files.writeString(tmp, "a");
    });
    assertTrue(seen[0].getFileName().toString().startsWith(".ntk-tmp-a.npy."), seen[0].toString());
    assertTrue(AtomicFiles.isTemporary(seen[0]), seen[0].toString());
    try (Stream<Path> files = Files.list(dir)) {
      assertEquals(List.of("a.npy"), files.map(p -> p.getFileName().toString()).toList());
    }
  }
}
