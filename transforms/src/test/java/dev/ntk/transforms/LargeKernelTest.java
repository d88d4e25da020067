package dev.ntk.transforms;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.io.Tile;
import dev.ntk.io.TileFiles;
import dev.ntk.io.TileKey;
import dev.ntk.kernels.Get;
import dev.ntk.runners.Runners;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.TreeMap;
import org.apache.beam.sdk.Pipeline;
import org.apache.beam.sdk.transforms.Create;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Kernels larger than the JVM's heap are assembled: Surefire runs the tests tagged {@code small-heap} alone in a JVM with a
 * small heap ({@code transforms/pom.xml}, execution {@code larger-than-heap}), and each kernel
 * written here is larger than that whole heap, so an assembly that held one kernel in one object
 * would fail with {@code OutOfMemoryError}.
 *
 * <p>The tiles are synthetic, with a value per entry that says where it belongs ({@code min(i, j)
 * * N + max(i, j)}, exact in float64), so every entry of the files is checked, including those that
 * come from the transposes of the stored tiles above the diagonal.
 */
@Tag("small-heap")
class LargeKernelTest {
  private static final int N = 4200;
  private static final int TILE = 300;

  @TempDir Path dir;

  private static double nngp(long i, long j) {
    return (double) Math.min(i, j) * N + Math.max(i, j);
  }

  private static double ntk(long i, long j) {
    return -0.5 - nngp(i, j);
  }

  @Test
  void aKernelLargerThanTheHeapIsStreamedIntoNpyFiles() throws IOException {
    long kernelBytes = 8L * N * N;
    assertTrue(Runtime.getRuntime().maxMemory() < kernelBytes, "the heap ("
        + Runtime.getRuntime().maxMemory() + " bytes) must be smaller than one kernel ("
        + kernelBytes + " bytes) for this test to mean anything");

    Path x = Fixtures.randomNpy(dir, "x.npy", N, 2, 7);
    TileSet set = TileSet.create(Fixtures.MODEL, x, null, TILE, NpyDType.FLOAT64, dir.resolve("tiles"));
    for (TileKey key : set.plan()) {
      double[] a = new double[key.size()];
      double[] b = new double[key.size()];
      for (int r = 0; r < key.rows(); r++) {
        for (int c = 0; c < key.cols(); c++) {
          a[r * key.cols() + c] = nngp(key.rowOffset() + r, key.colOffset() + c);
          b[r * key.cols() + c] = ntk(key.rowOffset() + r, key.colOffset() + c);
        }
      }
      TreeMap<String, double[]> kernels = new TreeMap<>();
      kernels.put("nngp", a);
      kernels.put("ntk", b);
      TileFiles.write(Path.of(set.directory()),
          new Tile(key, set.modelHash(), set.inputsHash(), set.dtype(), kernels));
    }

    Path out = dir.resolve("out");
    Pipeline p = Fixtures.pipeline(Runners.Kind.DIRECT, 2);
    p.apply(Create.of(set.plan()).withCoder(TileKeyCoder.of()))
        .apply(WriteKernels.of(set, List.of(Get.NNGP, Get.NTK), out));
    Fixtures.run(p);

    for (Get g : Get.values()) {
      Path file = out.resolve(g.key() + ".npy");
      assertArrayEquals(new long[] {N, N}, Npy.readHeader(file).shape());
      assertTrue(Files.size(file) > Runtime.getRuntime().maxMemory());
      for (int r0 = 0; r0 < N; r0 += 500) {
        int rows = Math.min(500, N - r0);
        NpyArray band = Npy.readRows(file, r0, rows);
        for (int r = 0; r < rows; r++) {
          for (int c = 0; c < N; c++) {
            double expected = g == Get.NNGP ? nngp(r0 + r, c) : ntk(r0 + r, c);
            double actual = band.data()[r * N + c];
            if (actual != expected) {
              assertEquals(expected, actual, g + " entry (" + (r0 + r) + ", " + c + ")");
            }
          }
        }
      }
    }
    try (var files = Files.list(out)) {
      assertEquals(List.of("nngp.npy", "ntk.npy"),
          files.map(f -> f.getFileName().toString()).sorted().toList(), "no temporary files left");
    }
  }
}
