package dev.ntk.transforms;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.ntk.io.NpyDType;
import dev.ntk.io.TileKey;
import dev.ntk.kernels.engine.Backend;
import java.nio.Buffer;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.SortedMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/** Tiles computed into native memory equal the tiles computed as arrays, also when tiles are computed side by side. */
class TileComputerTest {
  @Test
  void storedTilesEqualArrayTilesOnConcurrentWorkers() throws Exception {
    for (NpyDType dtype : NpyDType.values()) {
      Random r = new Random(3);
      int d = 6;
      ExecutorService pool = Executors.newFixedThreadPool(3);
      try {
        List<Future<?>> tasks = new ArrayList<>();
        for (int t = 0; t < 3; t++) {
          TileComputer computer = new TileComputer(dev.ntk.kernels.Model.parse(Fixtures.MODEL), new long[] {d}, dtype, Backend.CPU, 100);
          computer.setup();
          tasks.add(pool.submit(() -> {
            Random rr;
            synchronized (r) {
              rr = new Random(r.nextLong());
            }
            for (int i = 0; i < 200; i++) {
              int rows = 1 + rr.nextInt(5);
              boolean diagonal = rr.nextBoolean();
              int cols = diagonal ? rows : 1 + rr.nextInt(5);
              double[] a = gaussian(rr, rows * d);
              double[] b = diagonal ? null : gaussian(rr, cols * d);
              TileKey key = new TileKey(0, diagonal ? 0 : 100, rows, cols);
              SortedMap<String, double[]> want = computer.compute(key, a, b);
              try (TileComputer.StoredTile got = computer.computeStored(key, a, b)) {
                var file = java.nio.file.Files.createTempFile("tile", ".arrow");
                java.nio.file.Files.delete(file);
                try (var channel = java.nio.channels.FileChannel.open(file, java.nio.file.StandardOpenOption.CREATE_NEW,
                    java.nio.file.StandardOpenOption.WRITE)) {
                  dev.ntk.io.TileFiles.write(channel, new dev.ntk.io.TileMetadata(key, "m", "i", dtype,
                      TileSet.KERNEL_NAMES), got.bytes(TileSet.KERNEL_NAMES));
                }
                var back = dev.ntk.io.TileFiles.read(file);
                java.nio.file.Files.delete(file);
                for (String name : TileSet.KERNEL_NAMES) {
                  Buffer values = got.values(name);
                  for (int k = 0; k < rows * cols; k++) {
                    double v = values instanceof FloatBuffer f ? f.get(k) : ((DoubleBuffer) values).get(k);
                    assertEquals(v, back.kernels().get(name)[k], 0.0, "file " + name + " [" + k + "]");
                    double w = dtype == NpyDType.FLOAT32 ? (float) want.get(name)[k] : want.get(name)[k];
                    assertEquals(w, v, Math.abs(w) * (dtype == NpyDType.FLOAT32 ? 1e-5 : 1e-12) + 1e-12,
                        name + " " + rows + "x" + cols + " [" + k + "]");
                  }
                }
              }
            }
            return null;
          }));
        }
        for (Future<?> f : tasks) {
          f.get();
        }
      } finally {
        pool.shutdownNow();
      }
    }
  }

  private static double[] gaussian(Random r, int n) {
    double[] x = new double[n];
    for (int i = 0; i < n; i++) {
      x[i] = r.nextGaussian();
    }
    return x;
  }
}
