package dev.ntk.transforms;

import dev.ntk.io.Tile;
import dev.ntk.io.TileFiles;
import dev.ntk.io.TileKey;
import dev.ntk.kernels.Get;
import java.io.IOException;
import java.nio.channels.SeekableByteChannel;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import org.apache.beam.sdk.io.FileIO;
import org.apache.beam.sdk.transforms.DoFn;
import org.apache.beam.sdk.transforms.PTransform;
import org.apache.beam.sdk.transforms.ParDo;
import org.apache.beam.sdk.transforms.display.DisplayData;
import org.apache.beam.sdk.values.PBegin;
import org.apache.beam.sdk.values.PCollection;

/**
 * Kernel tiles to and from files of any Beam file system (local paths, {@code gs://}, {@code
 * s3://}, {@code hdfs://}; see {@link BeamFiles}):
 *
 * <ul>
 *   <li>{@link #writeArrow}: each tile as an Arrow IPC tile file {@code tile-r<row>-c<col>.arrow}
 *       in a directory (the format of {@link dev.ntk.io}), committed by a rename;
 *   <li>{@link #readTiles}: the tiles of such a directory, each checked against its checksum;
 *   <li>{@link #writeNpy}: whole kernels {@code nngp.npy} and {@code ntk.npy}, streamed band by band
 *       from the tiles (which are written as Arrow files first, under {@code <directory>/tiles}),
 *       never held whole.
 * </ul>
 *
 * <pre>{@code
 * PCollection<Tile> tiles = examples.apply(Kernels.of(model));
 * tiles.apply(KernelIO.writeNpy("gs://bucket/run").withGet(Get.NTK));
 * p.apply(KernelIO.readTiles("/data/run/tiles")).apply(KernelIO.writeNpy("/data/again"));
 * }</pre>
 */
public final class KernelIO {
  private KernelIO() {}

  /** Writes each tile into {@code directory} as an Arrow tile file. */
  public static WriteArrow writeArrow(String directory) {
    return new WriteArrow(checkDirectory(directory));
  }

  /** Reads the tile files {@code tile-*.arrow} of {@code directory}. */
  public static ReadTiles readTiles(String directory) {
    return new ReadTiles(checkDirectory(directory));
  }

  /**
   * Writes the kernels of the tiles as {@code <directory>/nngp.npy} and {@code ntk.npy}, shape
   * {@code (N1, N2)} in the tiles' dtype, through Arrow tile files under {@code
   * <directory>/tiles}.
   */
  public static WriteNpy writeNpy(String directory) {
    String dir = checkDirectory(directory);
    return new WriteNpy(dir, BeamFiles.childDirectory(BeamFiles.directory(dir), "tiles").toString(),
        List.of(Get.NNGP, Get.NTK));
  }

  private static String checkDirectory(String directory) {
    if (directory == null || directory.isBlank()) {
      throw new IllegalArgumentException("the directory is empty");
    }
    return directory;
  }

  /** The transform of {@link #writeArrow}: emits the files written. */
  public static final class WriteArrow extends PTransform<PCollection<Tile>, PCollection<String>> {
    private static final long serialVersionUID = 1L;
    private final String directory;

    private WriteArrow(String directory) {
      this.directory = directory;
    }

    @Override
    public PCollection<String> expand(PCollection<Tile> tiles) {
      TileFiles.checkJvmFlags("KernelIO.writeArrow");
      return tiles.apply("WriteArrowTiles", ParDo.of(new WriteTileFn(directory)))
          .setCoder(TileKeyCoder.of())
          .apply("FileNames", ParDo.of(new DoFn<TileKey, String>() {
            @ProcessElement
            public void process(@Element TileKey key, OutputReceiver<String> out) {
              out.output(BeamFiles.child(BeamFiles.directory(directory), key.fileName()).toString());
            }
          }));
    }

    @Override
    public void populateDisplayData(DisplayData.Builder builder) {
      super.populateDisplayData(builder);
      builder.add(DisplayData.item("directory", directory).withLabel("Tile directory"));
    }
  }

  /** Writes each tile as an Arrow file and emits its key. */
  private static final class WriteTileFn extends DoFn<Tile, TileKey> {
    private static final long serialVersionUID = 1L;
    private final String directory;

    WriteTileFn(String directory) {
      this.directory = directory;
    }

    @ProcessElement
    public void process(@Element Tile tile, OutputReceiver<TileKey> out) throws IOException {
      BeamFiles.writeAtomically(BeamFiles.child(BeamFiles.directory(directory), tile.key().fileName()),
          channel -> TileFiles.write(channel, tile));
      out.output(tile.key());
    }
  }

  /** The transform of {@link #readTiles}. */
  public static final class ReadTiles extends PTransform<PBegin, PCollection<Tile>> {
    private static final long serialVersionUID = 1L;
    private final String directory;

    private ReadTiles(String directory) {
      this.directory = directory;
    }

    @Override
    public PCollection<Tile> expand(PBegin begin) {
      TileFiles.checkJvmFlags("KernelIO.readTiles");
      String pattern = BeamFiles.child(BeamFiles.directory(directory), "tile-*.arrow").toString();
      return begin.apply("MatchTiles", FileIO.match().filepattern(pattern))
          .apply("OpenTiles", FileIO.readMatches())
          .apply("ReadTiles", ParDo.of(new DoFn<FileIO.ReadableFile, Tile>() {
            @ProcessElement
            public void process(@Element FileIO.ReadableFile file, OutputReceiver<Tile> out)
                throws IOException {
              try (SeekableByteChannel channel = file.openSeekable()) {
                out.output(TileFiles.read(channel, file.getMetadata().resourceId().toString()));
              }
            }
          }))
          .setCoder(TileCoder.of());
    }

    @Override
    public void populateDisplayData(DisplayData.Builder builder) {
      super.populateDisplayData(builder);
      builder.add(DisplayData.item("directory", directory).withLabel("Tile directory"));
    }
  }

  /** The transform of {@link #writeNpy}: emits the {@code .npy} files written. */
  public static final class WriteNpy extends PTransform<PCollection<Tile>, PCollection<String>> {
    private static final long serialVersionUID = 1L;
    private final String directory;
    private final String tileDirectory;
    private final List<Get> get;

    private WriteNpy(String directory, String tileDirectory, List<Get> get) {
      this.directory = directory;
      this.tileDirectory = tileDirectory;
      this.get = get;
    }

    /** The kernels to write (default both; the tiles must carry them). */
    public WriteNpy withGet(Get... kernels) {
      if (kernels.length == 0) {
        throw new IllegalArgumentException("select at least one kernel to write");
      }
      return new WriteNpy(directory, tileDirectory, List.copyOf(EnumSet.copyOf(Arrays.asList(kernels))));
    }

    /** Where the Arrow tiles go on their way (default {@code <directory>/tiles}). */
    public WriteNpy withTileDirectory(String newTileDirectory) {
      return new WriteNpy(directory, checkDirectory(newTileDirectory), get);
    }

    @Override
    public PCollection<String> expand(PCollection<Tile> tiles) {
      TileFiles.checkJvmFlags("KernelIO.writeNpy");
      return tiles.apply("WriteArrowTiles", ParDo.of(new WriteTileFn(tileDirectory)))
          .setCoder(TileKeyCoder.of())
          .apply("WriteKernels", WriteKernels.covered(tileDirectory, get, directory));
    }

    @Override
    public void populateDisplayData(DisplayData.Builder builder) {
      super.populateDisplayData(builder);
      builder.add(DisplayData.item("directory", directory).withLabel("Output directory"))
          .add(DisplayData.item("tileDirectory", tileDirectory).withLabel("Tile directory"))
          .add(DisplayData.item("kernels", get.toString()).withLabel("Kernels written"));
    }
  }
}
