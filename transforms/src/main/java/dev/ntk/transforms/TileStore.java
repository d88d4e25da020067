package dev.ntk.transforms;

import dev.ntk.io.Tile;
import dev.ntk.io.TileFiles;
import dev.ntk.io.TileKey;
import dev.ntk.io.TileMetadata;
import java.io.IOException;
import java.io.Serializable;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.NoSuchFileException;
import java.util.List;
import org.apache.beam.sdk.io.fs.ResourceId;

/**
 * A directory of tile files on any Beam file system, as a resumable source and sink of tiles: a
 * file that holds what a tile should hold (its metadata: model hash, inputs hash, dtype and kernel
 * names) and passes its checksum is a finished tile, read instead of computed; new tiles are
 * written whole, committed by a rename. The store of a {@link TileSet}, and of {@link Kernels}
 * given {@link Kernels#withTileDirectory a tile directory}.
 */
record TileStore(String directory) implements Serializable {
  /** What is on disk for one tile: its state, what is wrong with a damaged file, the tile if valid. */
  record Found(TileSet.TileState state, String problem, Tile tile) {}

  /** The file of the tile {@code key}. */
  ResourceId resource(TileKey key) {
    return resource(key.fileName());
  }

  /** The file {@code name} in the directory. */
  ResourceId resource(String name) {
    return BeamFiles.child(BeamFiles.directory(directory), name);
  }

  /**
   * The tile {@code expected.key()} if its file holds what {@code expected} says and passes its
   * checksum (every value is read); else why not.
   */
  Found find(TileMetadata expected) {
    try {
      Tile tile = readFile(expected.key());
      return tile.metadata().equals(expected) ? new Found(TileSet.TileState.VALID, "", tile)
          : new Found(TileSet.TileState.DAMAGED, resource(expected.key())
              + " belongs to another model, inputs or dtype: " + tile.metadata(), null);
    } catch (NoSuchFileException e) {
      return new Found(TileSet.TileState.ABSENT, "", null);
    } catch (IOException e) {
      return new Found(TileSet.TileState.DAMAGED, String.valueOf(e.getMessage()), null);
    }
  }

  /** Reads the file of the tile {@code key}, checking its checksum. */
  Tile readFile(TileKey key) throws IOException {
    ResourceId file = resource(key);
    try (SeekableByteChannel channel = BeamFiles.openSeekable(file)) {
      return TileFiles.read(channel, file.toString());
    }
  }

  /** The metadata of the tile file of {@code key}, without reading its values. */
  TileMetadata readMetadata(TileKey key) throws IOException {
    ResourceId file = resource(key);
    try (SeekableByteChannel channel = BeamFiles.openSeekable(file)) {
      return TileFiles.layout(channel, file.toString()).metadata();
    }
  }

  /** Writes {@code tile}, committed by a rename once complete. */
  void write(Tile tile) throws IOException {
    BeamFiles.writeAtomically(resource(tile.key()), channel -> TileFiles.write(channel, tile));
  }

  /** Writes the tile {@code metadata} from its values as stored, committed by a rename once complete. */
  void write(TileMetadata metadata, List<ByteBuffer> values) throws IOException {
    BeamFiles.writeAtomically(resource(metadata.key()), channel -> TileFiles.write(channel, metadata, values));
  }
}
