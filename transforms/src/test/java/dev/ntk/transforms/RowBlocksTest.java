package dev.ntk.transforms;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import dev.ntk.io.NpyDType;
import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link RowBlocks}: a worker reads each block of input rows once while it fits the budget. */
class RowBlocksTest {
  @TempDir Path dir;

  @Test
  void blocksAreReadOnceAndTheLeastRecentlyUsedGoFirst() throws IOException {
    Path x1 = Fixtures.randomNpy(dir, "x1.npy", 12, 3, 1);
    Path x2 = Fixtures.randomNpy(dir, "x2.npy", 8, 3, 2);
    TileSet set = TileSet.create(Fixtures.MODEL, x1, x2, 4, NpyDType.FLOAT64, dir.resolve("tiles"));
    // Room for two blocks of 4 rows x 3 values.
    RowBlocks rows = new RowBlocks(set, 24);

    double[] a = rows.get(set.x1(), 0, 4);
    assertArrayEquals(set.readRows(set.x1(), 0, 4), a);
    assertSame(a, rows.get(set.x1(), 0, 4), "kept");
    double[] b = rows.get(set.x2(), 4, 4);
    assertArrayEquals(set.readRows(set.x2(), 4, 4), b, "another file's rows");
    assertEquals(2, rows.reads());
    assertEquals(24, rows.values());

    rows.get(set.x1(), 0, 4); // now the most recently used
    rows.get(set.x1(), 8, 4); // over the budget: the x2 block goes
    assertEquals(3, rows.reads());
    assertEquals(24, rows.values());
    assertSame(a, rows.get(set.x1(), 0, 4), "still kept");
    rows.get(set.x2(), 4, 4);
    assertEquals(4, rows.reads(), "read again after it was dropped");

    double[] big = rows.get(set.x1(), 0, 12);
    assertEquals(36, big.length);
    assertEquals(5, rows.reads());
    assertEquals(24, rows.values(), "a block over the whole budget is not kept");
    rows.get(set.x1(), 0, 12);
    assertEquals(6, rows.reads());
  }
}
