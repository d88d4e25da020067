package dev.ntk.transforms;

import java.io.IOException;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Blocks of input rows that one worker has read, kept for its next tiles: a block of x1's rows is
 * in every tile of its row, and the blocks of a small input are all read many times. The least
 * recently used blocks are dropped once the values kept pass {@code maxValues}. Not thread-safe:
 * one per {@code DoFn} instance.
 */
final class RowBlocks {
  private final TileSet tiles;
  private final long maxValues;
  private final LinkedHashMap<String, double[]> blocks = new LinkedHashMap<>(16, 0.75f, true);
  private long values;
  private long reads;

  RowBlocks(TileSet tiles, long maxValues) {
    this.tiles = tiles;
    this.maxValues = maxValues;
  }

  /** Rows {@code [first, first + count)} of the input {@code file}, row-major; the caller must not change them. */
  double[] get(String file, long first, int count) throws IOException {
    String key = file + '\u0000' + first + '\u0000' + count;
    double[] block = blocks.get(key);
    if (block == null) {
      block = tiles.readRows(file, first, count);
      reads++;
      if (block.length <= maxValues) {
        blocks.put(key, block);
        values += block.length;
        for (Iterator<Map.Entry<String, double[]>> it = blocks.entrySet().iterator();
            values > maxValues && it.hasNext(); ) {
          values -= it.next().getValue().length;
          it.remove();
        }
      }
    }
    return block;
  }

  /** How many blocks were read from their files (not found kept). */
  long reads() {
    return reads;
  }

  /** How many input values are kept. */
  long values() {
    return values;
  }
}
