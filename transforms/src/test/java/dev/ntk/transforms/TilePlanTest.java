package dev.ntk.transforms;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ntk.io.TileKey;
import java.util.List;
import org.apache.beam.sdk.util.CoderUtils;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class TilePlanTest {
  @ParameterizedTest
  @CsvSource({"10,10,5,true", "10,10,3,true", "10,7,3,false", "1,1,256,true", "7,10,7,false", "9,9,1,true"})
  void tilesCoverEveryEntryOnce(long n1, long n2, int tile, boolean symmetric) {
    int[][] covered = new int[(int) n1][(int) n2];
    for (TileKey k : new TilePlan(n1, n2, tile, symmetric).tiles()) {
      assertTrue(k.rows() <= tile && k.cols() <= tile, k.toString());
      for (long r = k.rowOffset(); r < k.rowOffset() + k.rows(); r++) {
        for (long c = k.colOffset(); c < k.colOffset() + k.cols(); c++) {
          covered[(int) r][(int) c]++;
          if (symmetric && k.rowOffset() != k.colOffset()) {
            covered[(int) c][(int) r]++;
          }
        }
      }
    }
    for (int[] row : covered) {
      for (int count : row) {
        assertEquals(1, count);
      }
    }
  }

  @Test
  void symmetricPlanKeepsTilesOnOrAboveTheDiagonal() {
    List<TileKey> tiles = new TilePlan(10, 10, 3, true).tiles();
    assertEquals(4 * 5 / 2, tiles.size());
    assertTrue(tiles.stream().allMatch(k -> k.colOffset() >= k.rowOffset()));
    assertEquals(new TileKey(9, 9, 1, 1), tiles.get(tiles.size() - 1));
  }

  @Test
  void rejectsBadPlans() {
    assertThrows(IllegalArgumentException.class, () -> new TilePlan(10, 10, 0, true));
    assertThrows(IllegalArgumentException.class, () -> new TilePlan(10, 9, 3, true));
    assertThrows(IllegalArgumentException.class, () -> new TilePlan(0, 9, 3, false));
  }

  @Test
  void coderRoundTrips() throws Exception {
    TileKey key = new TileKey(1L << 40, 7, 256, 3);
    byte[] bytes = CoderUtils.encodeToByteArray(TileKeyCoder.of(), key);
    assertEquals(key, CoderUtils.decodeFromByteArray(TileKeyCoder.of(), bytes));
    assertEquals(24, bytes.length);
  }
}
