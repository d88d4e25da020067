package dev.ntk.pipelines;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ntk.kernels.Get;
import dev.ntk.kernels.Model;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** How the pipeline of {@code ntk mc} cuts its draws into batches. */
class McJobTest {
  private static final Model MODEL = Model.parse("{\"serial\": [{\"Dense\": {\"out_dim\": 4}}]}");

  private static McJob job(List<Integer> samples, int batches, int widths) {
    List<Model> models = java.util.Collections.nCopies(widths, MODEL);
    return new McJob(models, "x.npy", null, List.of(Get.NNGP), samples, 0, batches);
  }

  /** Batches as even as they go, cut at every sample count, so each belongs to one count's segment. */
  @Test
  void batchesAreCutAtEveryCount() {
    assertArrayEquals(new int[] {0, 2, 4, 5, 6, 9}, job(List.of(2, 5, 9), 4, 1).bounds());
    assertEquals(10, job(List.of(2, 5, 9), 4, 2).batchCount());
    assertArrayEquals(new int[] {0, 1, 2, 3, 4, 5, 6, 7, 9}, job(List.of(9), 8, 1).bounds());
    for (int batches : new int[] {1, 3, 7, 64, 1000}) {
      List<Integer> counts = List.of(2, 3, 17, 100, 128);
      int[] bounds = job(counts, batches, 1).bounds();
      assertEquals(0, bounds[0]);
      assertEquals(128, bounds[bounds.length - 1]);
      for (int c : counts) {
        assertTrue(Arrays.binarySearch(bounds, c) >= 0, c + " in " + Arrays.toString(bounds));
      }
      // never more batches than asked for (at most the draws) plus the cuts
      assertTrue(bounds.length - 1 <= Math.min(batches, 128) + counts.size(), Arrays.toString(bounds));
    }
  }
}
