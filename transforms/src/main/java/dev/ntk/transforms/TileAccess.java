package dev.ntk.transforms;

import dev.ntk.io.Tile;
import dev.ntk.io.TileKey;
import java.io.Serializable;
import org.apache.beam.sdk.values.PCollection;

/** The tiles of one kernel as the elements a step receives: keys of files, or tiles. */
interface TileAccess<T> extends Serializable {
  TileKey key(T item);

  /** The tile, read from its file if need be. */
  Tile tile(T item);

  /** The kernel, for messages ({@code the train-train tiles}, or the tile set's directory). */
  String what();

  /** Where the tiles are, for messages that say {@code the tiles in ...}. */
  String where();

  /** Tiles by key, read from the files of {@code set} (checked against the set's metadata). */
  record FileTiles(TileSet set, String role) implements TileAccess<TileKey> {
    @Override
    public TileKey key(TileKey item) {
      return item;
    }

    @Override
    public Tile tile(TileKey item) {
      return set.read(item);
    }

    @Override
    public String what() {
      return "the " + role + " tiles in " + set.directory();
    }

    @Override
    public String where() {
      return set.directory();
    }
  }

  /** Tiles that are elements themselves. */
  record ElementTiles(String role) implements TileAccess<Tile> {
    @Override
    public TileKey key(Tile item) {
      return item.key();
    }

    @Override
    public Tile tile(Tile item) {
      return item;
    }

    @Override
    public String what() {
      return "the " + role + " tiles";
    }

    @Override
    public String where() {
      return "the PCollection of " + role + " tiles";
    }
  }
}
