package dev.ntk.transforms;

import dev.ntk.io.TileKey;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.apache.beam.sdk.coders.KvCoder;
import org.apache.beam.sdk.coders.ListCoder;
import org.apache.beam.sdk.coders.VarIntCoder;
import org.apache.beam.sdk.transforms.GroupByKey;
import org.apache.beam.sdk.transforms.MapElements;
import org.apache.beam.sdk.transforms.SimpleFunction;
import org.apache.beam.sdk.transforms.PTransform;
import org.apache.beam.sdk.transforms.Values;
import org.apache.beam.sdk.transforms.WithKeys;
import org.apache.beam.sdk.values.PCollection;

/**
 * Brings the keys of all finished tiles of a kernel together into one element, for a step that
 * needs the whole kernel (assembly, factoring). It waits for every tile by construction: a group
 * is emitted once its input is complete.
 */
final class GatherTiles extends PTransform<PCollection<TileKey>, PCollection<List<TileKey>>> {
  private static final long serialVersionUID = 1L;

  @Override
  public PCollection<List<TileKey>> expand(PCollection<TileKey> keys) {
    return keys
        .apply("OneGroup", WithKeys.<Integer, TileKey>of(0))
        .setCoder(KvCoder.of(VarIntCoder.of(), TileKeyCoder.of()))
        .apply("Group", GroupByKey.create())
        .apply("Keys", Values.create())
        // A group may be iterable only once (Flink): keep it as a list.
        .apply("AsList", MapElements.via(new SimpleFunction<Iterable<TileKey>, List<TileKey>>() {
          @Override
          public List<TileKey> apply(Iterable<TileKey> keys) {
            List<TileKey> list = new ArrayList<>();
            keys.forEach(list::add);
            return list;
          }
        }))
        .setCoder(ListCoder.of(TileKeyCoder.of()));
  }

  /** Checks that {@code keys} are exactly the planned tiles of {@code tiles}. */
  static void checkComplete(TileSet tiles, List<TileKey> keys) {
    Set<TileKey> done = new HashSet<>();
    keys.forEach(done::add);
    List<TileKey> planned = tiles.plan();
    if (!done.equals(new HashSet<>(planned))) {
      throw new IllegalStateException("expected the " + planned.size() + " planned tiles of "
          + tiles + ", got " + done.size() + " different ones");
    }
  }
}
