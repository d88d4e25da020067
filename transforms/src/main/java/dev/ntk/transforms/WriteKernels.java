package dev.ntk.transforms;

import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.TileKey;
import dev.ntk.kernels.Get;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.apache.beam.sdk.transforms.DoFn;
import org.apache.beam.sdk.transforms.PTransform;
import org.apache.beam.sdk.transforms.ParDo;
import org.apache.beam.sdk.values.PCollection;

/**
 * Assembles the finished tiles of a {@link TileSet} into whole kernels and writes each selected
 * one as {@code <directory>/<get>.npy} ({@code nngp.npy}, {@code ntk.npy}; shape {@code (N1, N2)},
 * in the set's dtype), atomically. Emits the paths written.
 */
public final class WriteKernels extends PTransform<PCollection<TileKey>, PCollection<String>> {
  private static final long serialVersionUID = 1L;
  private final TileSet tiles;
  private final List<Get> get;
  private final String directory;

  private WriteKernels(TileSet tiles, List<Get> get, String directory) {
    this.tiles = tiles;
    this.get = List.copyOf(get);
    this.directory = directory;
  }

  public static WriteKernels of(TileSet tiles, List<Get> get, Path directory) {
    if (get.isEmpty()) {
      throw new IllegalArgumentException("select at least one kernel to write");
    }
    return new WriteKernels(tiles, get, directory.toAbsolutePath().toString());
  }

  @Override
  public PCollection<String> expand(PCollection<TileKey> done) {
    return done.apply("GatherTiles", new GatherTiles())
        .apply("Assemble", ParDo.of(new AssembleFn(tiles, get, directory)));
  }

  private static final class AssembleFn extends DoFn<List<TileKey>, String> {
    private static final long serialVersionUID = 1L;
    private final TileSet tiles;
    private final List<Get> get;
    private final String directory;

    AssembleFn(TileSet tiles, List<Get> get, String directory) {
      this.tiles = tiles;
      this.get = get;
      this.directory = directory;
    }

    @ProcessElement
    public void process(@Element List<TileKey> keys, OutputReceiver<String> out) throws IOException {
      GatherTiles.checkComplete(tiles, keys);
      Map<String, double[]> kernels = tiles.assemble(0, Math.toIntExact(tiles.n1()), keys);
      for (Get g : get) {
        Path file = Path.of(directory, g.key() + ".npy");
        Npy.write(file, new NpyArray(new long[] {tiles.n1(), tiles.n2()}, tiles.dtype(), kernels.get(g.key())));
        out.output(file.toString());
      }
    }
  }
}
