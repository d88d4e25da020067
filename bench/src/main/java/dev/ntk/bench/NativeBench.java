package dev.ntk.bench;

import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.kernels.Get;
import dev.ntk.runners.Runners;
import dev.ntk.transforms.DoubleArrayCoder;
import dev.ntk.transforms.KernelIO;
import dev.ntk.transforms.KernelTiles;
import dev.ntk.transforms.Kernels;
import dev.ntk.transforms.TileSet;
import dev.ntk.transforms.WriteKernels;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import org.apache.beam.sdk.Pipeline;
import org.apache.beam.sdk.coders.KvCoder;
import org.apache.beam.sdk.coders.VarLongCoder;
import org.apache.beam.sdk.transforms.Create;
import org.apache.beam.sdk.values.KV;

/**
 * The Beam-native path against the file path, in one JVM on the DirectRunner: {@code KernelTiles}
 * + {@code WriteKernels} from a {@code .npy} file, and {@code Kernels} + {@code KernelIO.writeNpy}
 * from a {@code PCollection} of the same rows (built with {@code Create}), each into a fresh
 * directory, alternating, {@code repeats} times after one untimed run of each; prints the best
 * seconds of each and checks that their {@code ntk.npy} agree to 1e-12 of the largest entry. A benchmark aid.
 *
 * <pre>{@code
 * java -cp ... dev.ntk.bench.NativeBench MODEL.json X.npy OUT_DIR TILE REPEATS PARALLELISM
 * }</pre>
 */
public final class NativeBench {
  private NativeBench() {}

  public static void main(String[] args) throws Exception {
    String json = Files.readString(Path.of(args[0]), StandardCharsets.UTF_8);
    Path x = Path.of(args[1]);
    Path out = Path.of(args[2]);
    int tile = Integer.parseInt(args[3]);
    int repeats = Integer.parseInt(args[4]);
    int parallelism = Integer.parseInt(args[5]);
    NpyArray rows = Npy.read(x);
    int d = (int) rows.rowSize();
    List<KV<Long, double[]>> examples = new ArrayList<>();
    for (int i = 0; i < rows.rows(); i++) {
      examples.add(KV.of((long) i, Arrays.copyOfRange(rows.data(), i * d, (i + 1) * d)));
    }
    double bestFiles = Double.MAX_VALUE;
    double bestNative = Double.MAX_VALUE;
    double worst = 0;
    for (int r = 0; r <= repeats; r++) {
      Path files = out.resolve("files-" + r);
      long t0 = System.nanoTime();
      TileSet set = TileSet.create(json, x, null, tile, rows.dtype(), files.resolve("tiles"));
      Pipeline p = Pipeline.create(Runners.options(Runners.Kind.DIRECT, null, parallelism));
      p.apply(KernelTiles.of(set)).apply(WriteKernels.of(set, List.of(Get.NNGP, Get.NTK), files));
      p.run().waitUntilFinish();
      double sFiles = (System.nanoTime() - t0) / 1e9;

      Path nat = out.resolve("native-" + r);
      t0 = System.nanoTime();
      Pipeline q = Pipeline.create(Runners.options(Runners.Kind.DIRECT, null, parallelism));
      q.apply(Create.of(examples).withCoder(KvCoder.of(VarLongCoder.of(), DoubleArrayCoder.of())))
          .apply(Kernels.of(json).withTileRows(tile).withDType(rows.dtype()))
          .apply(KernelIO.writeNpy(nat.toString()));
      q.run().waitUntilFinish();
      double sNative = (System.nanoTime() - t0) / 1e9;
      double[] a = Npy.read(files.resolve("ntk.npy")).data();
      double[] b = Npy.read(nat.resolve("ntk.npy")).data();
      double diff = 0;
      double max = 0;
      for (int i = 0; i < a.length; i++) {
        diff = Math.max(diff, Math.abs(a[i] - b[i]));
        max = Math.max(max, Math.abs(a[i]));
      }
      if (!(diff <= 1e-12 * max)) {
        throw new IllegalStateException("the two paths' NTKs differ by " + diff / max + " in run " + r);
      }
      worst = Math.max(worst, diff / max);
      System.out.printf(Locale.ROOT, "run %d: files %.2f s, native %.2f s%s%n", r, sFiles, sNative,
          r == 0 ? " (untimed warm-up)" : "");
      if (r > 0) {
        bestFiles = Math.min(bestFiles, sFiles);
        bestNative = Math.min(bestNative, sNative);
      }
    }
    System.out.printf(Locale.ROOT, "RESULT native-vs-files n=%d d=%d tile=%d dtype=%s files=%.2f native=%.2f ratio=%.2f "
        + "ntk-max-rel-diff=%.2g%n", rows.rows(), d, tile, rows.dtype().typeName(), bestFiles, bestNative,
        bestNative / bestFiles, worst);
  }
}
