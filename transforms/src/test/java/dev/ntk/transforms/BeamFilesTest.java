package dev.ntk.transforms;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ntk.io.AtomicFiles;
import java.nio.file.Path;
import org.apache.beam.sdk.io.fs.ResourceId;
import org.junit.jupiter.api.Test;

/** Files through Beam's file systems. */
class BeamFilesTest {
  /**
   * A temporary sibling carries the one temporary name of ntk's, which the clean-up of killed runs
   * recognises (and no user's hidden {@code .tmp} file has).
   */
  @Test
  void aTemporarySiblingHasTheNameOnlyNtkGives() {
    ResourceId target = BeamFiles.file(Path.of("/data/tiles/set/tile-r0-c4.arrow").toString());
    ResourceId tmp = BeamFiles.temporarySibling(target);
    assertEquals(target.getCurrentDirectory(), tmp.getCurrentDirectory());
    assertTrue(tmp.getFilename().startsWith(".ntk-tmp-tile-r0-c4.arrow."), tmp.toString());
    assertTrue(AtomicFiles.isTemporary(Path.of(tmp.getFilename())), tmp.toString());
  }
}
