package dev.ntk.transforms;

import ai.djl.ndarray.types.Shape;
import dev.ntk.io.NpyDType;
import dev.ntk.io.Tile;
import dev.ntk.io.TileKey;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Layer;
import dev.ntk.kernels.Masking;
import dev.ntk.kernels.Model;
import dev.ntk.kernels.engine.Backend;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.SortedMap;
import java.util.TreeMap;
import org.apache.beam.sdk.coders.AtomicCoder;
import org.apache.beam.sdk.coders.KvCoder;
import org.apache.beam.sdk.coders.VarIntCoder;
import org.apache.beam.sdk.coders.VarLongCoder;
import org.apache.beam.sdk.metrics.Counter;
import org.apache.beam.sdk.metrics.Metrics;
import org.apache.beam.sdk.transforms.Combine;
import org.apache.beam.sdk.transforms.Create;
import org.apache.beam.sdk.transforms.DoFn;
import org.apache.beam.sdk.transforms.GroupByKey;
import org.apache.beam.sdk.transforms.PTransform;
import org.apache.beam.sdk.transforms.ParDo;
import org.apache.beam.sdk.transforms.Reshuffle;
import org.apache.beam.sdk.transforms.View;
import org.apache.beam.sdk.transforms.display.DisplayData;
import org.apache.beam.sdk.util.VarInt;
import org.apache.beam.sdk.values.KV;
import org.apache.beam.sdk.values.PCollection;
import org.apache.beam.sdk.values.PCollectionView;

/**
 * The NNGP and NTK tiles of a model over a {@code PCollection} of indexed examples, for pipelines
 * that already hold their inputs (read from Parquet, BigQuery, Kafka...) rather than {@code .npy}
 * files.
 *
 * <p>An example is a {@code KV<Long, double[]>}: its index (its row in the kernel) and its
 * features, flattened in C order ({@link DoubleArrayCoder}); the per-example shape is {@code
 * (length,)} unless {@link #withExampleShape} says otherwise (for images, {@code (H, W, C)}). The
 * indices of a collection must be {@code 0..N-1}, each exactly once, and every example must have
 * the same length: otherwise the pipeline fails with a message naming the collection and the
 * index before any tile is computed. The output holds one {@link Tile} per block of {@link
 * #withTileRows} rows of x1 against one of x2 (for the kernel of x1 with itself, only the tiles on
 * and above the diagonal), encoded with {@link TileCoder}.
 *
 * <pre>{@code
 * PCollection<KV<Long, double[]>> x = ...;
 * PCollection<Tile> tiles = x.apply("Kernel", Kernels.of(model).withTileRows(256));
 * tiles.apply(KernelIO.writeNpy("gs://bucket/run"));       // nngp.npy, ntk.npy, streamed
 * // the kernel between two collections: x1.apply(Kernels.of(model).withX2(x2))
 * }</pre>
 *
 * <p>Each worker holds the examples of both sides (a side input of blocks of rows), not the
 * kernel: inputs are O(N d), kernels O(N^2).
 */
public final class Kernels extends PTransform<PCollection<KV<Long, double[]>>, PCollection<Tile>> {
  /** The counter of tiles computed (namespace {@code dev.ntk.transforms.Kernels}). */
  public static final String TILES_COMPUTED = "tilesComputed";

  private static final long serialVersionUID = 1L;

  private final Model model;
  private final int tileRows;
  private final NpyDType dtype;
  private final Backend backend;
  private final List<Get> get;
  private final long[] exampleShape;
  private final transient PCollection<KV<Long, double[]>> x2;
  /** neural-tangents' {@code mask_constant}, or null. */
  private final Double maskConstant;

  private Kernels(Model model, int tileRows, NpyDType dtype, Backend backend, List<Get> get,
      long[] exampleShape, PCollection<KV<Long, double[]>> x2, Double maskConstant) {
    this.model = model;
    this.tileRows = tileRows;
    this.dtype = dtype;
    this.backend = backend;
    this.get = List.copyOf(get);
    this.exampleShape = exampleShape;
    this.x2 = x2;
    this.maskConstant = maskConstant;
  }

  /** The kernels of {@code model}, tiles of 256 rows, float64, both kernels, {@code auto} backend. */
  public static Kernels of(Layer model) {
    return of(Model.of(Objects.requireNonNull(model, "model")));
  }

  /** The kernels of {@code model}, tiles of 256 rows, float64, both kernels, {@code auto} backend. */
  public static Kernels of(Model model) {
    return new Kernels(Objects.requireNonNull(model, "model"), 256, NpyDType.FLOAT64, Backend.AUTO,
        List.of(Get.NNGP, Get.NTK), null, null, null);
  }

  /** The kernels of the model in the JSON model file format ({@code docs/MODEL_SPEC.md}). */
  public static Kernels of(String modelJson) {
    return of(Model.parse(Objects.requireNonNull(modelJson, "modelJson"))); // a bad model fails here
  }

  /** Rows of x1 (and of x2) per tile, at least 1. */
  public Kernels withTileRows(int rows) {
    if (rows < 1) {
      throw new IllegalArgumentException("tile rows must be at least 1, got " + rows);
    }
    return new Kernels(model, rows, dtype, backend, get, exampleShape, x2, maskConstant);
  }

  /** The dtype the kernels are computed in and their tiles stored with. */
  public Kernels withDType(NpyDType newDType) {
    return new Kernels(model, tileRows, Objects.requireNonNull(newDType, "dtype"), backend,
        get, exampleShape, x2, maskConstant);
  }

  /** Where tiles are computed ({@code auto} is decided on each worker). */
  public Kernels withBackend(Backend newBackend) {
    return new Kernels(model, tileRows, dtype, Objects.requireNonNull(newBackend, "backend"),
        get, exampleShape, x2, maskConstant);
  }

  /** The kernels each tile carries: {@code nngp}, {@code ntk} or both (the default). */
  public Kernels withGet(Get... kernels) {
    if (kernels.length == 0) {
      throw new IllegalArgumentException("select at least one kernel");
    }
    return new Kernels(model, tileRows, dtype, backend,
        List.copyOf(EnumSet.copyOf(Arrays.asList(kernels))), exampleShape, x2, maskConstant);
  }

  /** The per-example shape the flat features are read as, e.g. {@code (32, 32, 3)}. */
  public Kernels withExampleShape(long... shape) {
    for (long d : shape) {
      if (d < 1) {
        throw new IllegalArgumentException("example shape " + Arrays.toString(shape)
            + " needs positive dimensions");
      }
    }
    if (shape.length == 0) {
      throw new IllegalArgumentException("the example shape needs at least one axis");
    }
    return new Kernels(model, tileRows, dtype, backend, get, shape.clone(), x2, maskConstant);
  }

  /** The kernel between the input collection (x1) and {@code second} (x2), rather than x1 itself. */
  public Kernels withX2(PCollection<KV<Long, double[]>> second) {
    return new Kernels(model, tileRows, dtype, backend, get, exampleShape,
        Objects.requireNonNull(second, "x2"), maskConstant);
  }

  /**
   * The kernels of inputs padded with {@code constant} (neural-tangents' {@code mask_constant},
   * {@link dev.ntk.kernels.KernelFn#withMaskConstant}): entries equal to it are zeroed and positions
   * whose channels all equal it are left out of the kernels; tiles carry the hash of the model and
   * the constant ({@link Masking#hash}). An example whose entries all equal it fails the tile that
   * holds it, naming the example.
   */
  public Kernels withMaskConstant(double constant) {
    return new Kernels(model, tileRows, dtype, backend, get, exampleShape, x2, Masking.checkConstant(constant));
  }

  @Override
  public PCollection<Tile> expand(PCollection<KV<Long, double[]>> x1) {
    Side first = prepare("X1", x1);
    Side second = x2 == null ? null : prepare("X2", x2);
    List<PCollectionView<?>> views = new ArrayList<>(List.of(first.stats(), first.blocks()));
    if (second != null) {
      views.addAll(List.of(second.stats(), second.blocks()));
    }
    String modelHash = maskConstant == null ? model.hash() : Masking.hash(model.hash(), maskConstant);
    return x1.getPipeline()
        .apply("Start", Create.of(0).withCoder(VarIntCoder.of()))
        .apply("CheckAndPlanTiles", ParDo.of(new PlanFn(this, first, second)).withSideInputs(views))
        .setCoder(TileKeyCoder.of())
        .apply("SpreadTiles", Reshuffle.<TileKey>viaRandomKey().withNumBuckets(KernelTiles.SPREAD_BUCKETS))
        .apply("ComputeTiles", ParDo.of(new ComputeFn(this, modelHash, first, second))
            .withSideInputs(views))
        .setCoder(TileCoder.of());
  }

  /** The views of one input: its statistics and its blocks of rows by block number. */
  private record Side(String name, PCollectionView<Stats> stats,
      PCollectionView<Map<Long, Block>> blocks) implements java.io.Serializable {}

  private Side prepare(String name, PCollection<KV<Long, double[]>> examples) {
    PCollectionView<Stats> stats = examples
        .apply(name + "Stats", Combine.globally(new StatsFn()).withoutDefaults())
        .setCoder(StatsCoder.INSTANCE)
        .apply(name + "StatsView", View.asSingleton());
    int rows = tileRows;
    PCollectionView<Map<Long, Block>> blocks = examples
        .apply(name + "ByBlock", ParDo.of(new DoFn<KV<Long, double[]>, KV<Long, KV<Long, double[]>>>() {
          @ProcessElement
          public void process(@Element KV<Long, double[]> e, OutputReceiver<KV<Long, KV<Long, double[]>>> out) {
            out.output(KV.of(Math.floorDiv(e.getKey(), (long) rows), e));
          }
        }))
        .setCoder(KvCoder.of(VarLongCoder.of(), KvCoder.of(VarLongCoder.of(), DoubleArrayCoder.of())))
        .apply(name + "GroupBlocks", GroupByKey.create())
        .apply(name + "CheckBlocks", ParDo.of(new BlockFn(name.toLowerCase(java.util.Locale.ROOT),
            rows, stats)).withSideInputs(stats))
        .setCoder(KvCoder.of(VarLongCoder.of(), BlockCoder.INSTANCE))
        .apply(name + "BlocksView", View.asMap());
    return new Side(name.toLowerCase(java.util.Locale.ROOT), stats, blocks);
  }

  @Override
  public void populateDisplayData(DisplayData.Builder builder) {
    super.populateDisplayData(builder);
    builder.add(DisplayData.item("model", model.hash()).withLabel("Model hash"))
        .addIfNotNull(DisplayData.item("maskConstant", maskConstant).withLabel("Mask constant"))
        .add(DisplayData.item("tileRows", tileRows).withLabel("Rows per tile"))
        .add(DisplayData.item("dtype", dtype.typeName()).withLabel("Kernel dtype"))
        .add(DisplayData.item("backend", backend.key()).withLabel("Kernel backend"))
        .add(DisplayData.item("get", get.toString()).withLabel("Kernels"))
        .add(DisplayData.item("x2", x2 != null).withLabel("Kernel between two collections"));
    if (exampleShape != null) {
      builder.add(DisplayData.item("exampleShape", Arrays.toString(exampleShape))
          .withLabel("Per-example shape"));
    }
  }

  // ---- statistics of a collection of examples -------------------------------------------------

  /**
   * What the checks need from a whole collection: the count, the smallest and largest index, the
   * feature length of the example with the smallest index ({@code refIndex}) and, if any, one
   * example whose length differs from it, and an order-independent digest of the examples.
   */
  record Stats(long count, long minIndex, long maxIndex, long refIndex, int refLength,
      long otherIndex, int otherLength, long digest) {
    static final Stats EMPTY = new Stats(0, Long.MAX_VALUE, Long.MIN_VALUE, Long.MAX_VALUE, -1,
        -1, -1, 0);

    static Stats of(long index, double[] features) {
      long h = mix(index);
      for (double v : features) {
        h = mix(h ^ Double.doubleToLongBits(v));
      }
      return new Stats(1, index, index, index, features.length, -1, -1, h);
    }

    Stats merge(Stats o) {
      if (o.count == 0) {
        return this;
      }
      if (count == 0) {
        return o;
      }
      Stats ref = refIndex <= o.refIndex ? this : o;
      Stats other = ref == this ? o : this;
      long oi = ref.otherIndex;
      int ol = ref.otherLength;
      if (oi < 0 && other.refLength != ref.refLength) {
        oi = other.refIndex;
        ol = other.refLength;
      } else if (oi < 0 && other.otherIndex >= 0) {
        oi = other.otherIndex;
        ol = other.otherLength;
      }
      return new Stats(count + o.count, Math.min(minIndex, o.minIndex),
          Math.max(maxIndex, o.maxIndex), ref.refIndex, ref.refLength, oi, ol, digest + o.digest);
    }

    /** A 64-bit finalizer (SplitMix64's): spreads every input bit over the output. */
    private static long mix(long z) {
      z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
      z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
      return z ^ (z >>> 31);
    }
  }

  static final class StatsFn extends Combine.CombineFn<KV<Long, double[]>, Stats, Stats> {
    private static final long serialVersionUID = 1L;

    @Override
    public Stats createAccumulator() {
      return Stats.EMPTY;
    }

    @Override
    public Stats addInput(Stats acc, KV<Long, double[]> e) {
      return acc.merge(Stats.of(e.getKey(), e.getValue()));
    }

    @Override
    public Stats mergeAccumulators(Iterable<Stats> accs) {
      Stats s = Stats.EMPTY;
      for (Stats a : accs) {
        s = s.merge(a);
      }
      return s;
    }

    @Override
    public Stats extractOutput(Stats acc) {
      return acc;
    }

    @Override
    public org.apache.beam.sdk.coders.Coder<Stats> getAccumulatorCoder(
        org.apache.beam.sdk.coders.CoderRegistry registry,
        org.apache.beam.sdk.coders.Coder<KV<Long, double[]>> input) {
      return StatsCoder.INSTANCE;
    }
  }

  static final class StatsCoder extends AtomicCoder<Stats> {
    static final StatsCoder INSTANCE = new StatsCoder();

    @Override
    public void encode(Stats s, OutputStream out) throws IOException {
      for (long v : new long[] {s.count(), s.minIndex(), s.maxIndex(), s.refIndex(), s.refLength(),
          s.otherIndex(), s.otherLength(), s.digest()}) {
        VarInt.encode(v, out);
      }
    }

    @Override
    public Stats decode(InputStream in) throws IOException {
      return new Stats(VarInt.decodeLong(in), VarInt.decodeLong(in), VarInt.decodeLong(in),
          VarInt.decodeLong(in), (int) VarInt.decodeLong(in), VarInt.decodeLong(in),
          (int) VarInt.decodeLong(in), VarInt.decodeLong(in));
    }

    @Override
    public void verifyDeterministic() {}

    @Override
    public boolean consistentWithEquals() {
      return true;
    }
  }

  // ---- blocks of rows ---------------------------------------------------------------------------

  /** Rows {@code [first, first + rows)} of a collection, each {@code length} values, row-major. */
  record Block(long first, int rows, int length, double[] values) {
    @Override
    public boolean equals(Object o) {
      return o instanceof Block b && first == b.first && rows == b.rows && length == b.length
          && Arrays.equals(values, b.values);
    }

    @Override
    public int hashCode() {
      return Objects.hash(first, rows, length, Arrays.hashCode(values));
    }
  }

  static final class BlockCoder extends AtomicCoder<Block> {
    static final BlockCoder INSTANCE = new BlockCoder();

    @Override
    public void encode(Block b, OutputStream out) throws IOException {
      VarInt.encode(b.first(), out);
      VarInt.encode(b.rows(), out);
      VarInt.encode(b.length(), out);
      DoubleArrayCoder.of().encode(b.values(), out);
    }

    @Override
    public Block decode(InputStream in) throws IOException {
      return new Block(VarInt.decodeLong(in), VarInt.decodeInt(in), VarInt.decodeInt(in),
          DoubleArrayCoder.of().decode(in));
    }

    @Override
    public void verifyDeterministic() {}
  }

  /** The problem with a collection's indices or lengths that {@code stats} shows, if any. */
  static Optional<String> problem(String name, Stats stats) {
    if (stats.count() == 0) {
      return Optional.of(name + " has no examples");
    }
    if (stats.minIndex() < 0) {
      return Optional.of(name + ": example index " + stats.minIndex() + " is negative; the "
          + "indices must be 0..N-1, each once");
    }
    if (stats.otherIndex() >= 0) {
      return Optional.of(name + ": example " + stats.otherIndex() + " has " + stats.otherLength()
          + " features but example " + stats.refIndex() + " has " + stats.refLength()
          + "; every example needs the same number");
    }
    long n = stats.maxIndex() + 1;
    if (stats.count() > n) {
      return Optional.of(name + ": " + stats.count() + " examples but the largest index is "
          + stats.maxIndex() + ": an index is repeated");
    }
    if (stats.count() < n) {
      return Optional.of(name + ": " + stats.count() + " examples but the largest index is "
          + stats.maxIndex() + ": " + (n - stats.count()) + " of the indices 0.." + stats.maxIndex()
          + " are missing");
    }
    return Optional.empty();
  }

  /**
   * Puts the examples of one block together, checking that its indices are exactly the block's
   * rows, each once, and that every example has the collection's length.
   */
  private static final class BlockFn extends DoFn<KV<Long, Iterable<KV<Long, double[]>>>, KV<Long, Block>> {
    private static final long serialVersionUID = 1L;
    private final String name;
    private final int tileRows;
    private final PCollectionView<Stats> statsView;

    BlockFn(String name, int tileRows, PCollectionView<Stats> statsView) {
      this.name = name;
      this.tileRows = tileRows;
      this.statsView = statsView;
    }

    @ProcessElement
    public void process(ProcessContext c) {
      Stats stats = c.sideInput(statsView);
      long block = c.element().getKey();
      List<KV<Long, double[]>> examples = new ArrayList<>();
      c.element().getValue().forEach(examples::add);
      examples.sort((a, b) -> Long.compare(a.getKey(), b.getKey()));
      for (KV<Long, double[]> e : examples) {
        if (e.getKey() < 0) {
          throw new IllegalArgumentException(name + ": example index " + e.getKey()
              + " is negative; the indices must be 0..N-1, each once");
        }
        if (e.getValue() == null || e.getValue().length != stats.refLength()) {
          throw new IllegalArgumentException(name + ": example " + e.getKey() + " has "
              + (e.getValue() == null ? "no features (null)" : e.getValue().length + " features")
              + " but example " + stats.refIndex() + " has " + stats.refLength()
              + "; every example needs the same number");
        }
      }
      long n = stats.maxIndex() + 1;
      long first = block * tileRows;
      int rows = (int) Math.min(tileRows, n - first);
      for (int i = 0; i < examples.size(); i++) {
        long index = examples.get(i).getKey();
        if (i > 0 && index == examples.get(i - 1).getKey()) {
          throw new IllegalArgumentException(name + ": example index " + index
              + " appears more than once; the indices must be 0..N-1, each once");
        }
      }
      for (int i = 0; i < rows; i++) {
        if (i >= examples.size() || examples.get(i).getKey() != first + i) {
          throw new IllegalArgumentException(name + ": example index " + (first + i)
              + " is missing; the indices must be 0..N-1, each once (N = " + n
              + ", one more than the largest index)");
        }
      }
      int length = stats.refLength();
      double[] values = new double[Math.multiplyExact(rows, length)];
      for (int i = 0; i < rows; i++) {
        System.arraycopy(examples.get(i).getValue(), 0, values, i * length, length);
      }
      c.output(KV.of(block, new Block(first, rows, length, values)));
    }
  }

  // ---- planning and computing tiles --------------------------------------------------------------

  /** The per-example shape the model sees, from the collection's feature length. */
  private long[] shape(String name, int length) {
    if (exampleShape == null) {
      return new long[] {length};
    }
    long size = Arrays.stream(exampleShape).reduce(1, Math::multiplyExact);
    if (size != length) {
      throw new IllegalArgumentException(name + ": examples have " + length + " features but the "
          + "example shape " + Arrays.toString(exampleShape) + " needs " + size);
    }
    return exampleShape.clone();
  }

  /**
   * Runs once all checks of both collections have passed (it reads their statistics and blocks):
   * fails with the first problem found, else checks the model against the example shape and emits
   * the keys of the tiles.
   */
  private static final class PlanFn extends DoFn<Integer, TileKey> {
    private static final long serialVersionUID = 1L;
    private final Kernels spec;
    private final Side first;
    private final Side second;

    PlanFn(Kernels spec, Side first, Side second) {
      this.spec = spec;
      this.first = first;
      this.second = second;
    }

    @ProcessElement
    public void process(ProcessContext c) {
      Stats s1 = c.sideInput(first.stats());
      check(first, s1, c.sideInput(first.blocks()));
      Stats s2 = s1;
      if (second != null) {
        s2 = c.sideInput(second.stats());
        check(second, s2, c.sideInput(second.blocks()));
        if (s2.refLength() != s1.refLength()) {
          throw new IllegalArgumentException("x1 examples have " + s1.refLength()
              + " features but x2 examples have " + s2.refLength());
        }
      }
      long[] shape = spec.shape("x1", s1.refLength());
      spec.model.plan(new Shape(shape), TileComputer.dataType(spec.dtype), EnumSet.copyOf(spec.get),
          spec.maskConstant);
      for (TileKey key : new TilePlan(s1.maxIndex() + 1, s2.maxIndex() + 1, spec.tileRows,
          second == null).tiles()) {
        c.output(key);
      }
    }

    private void check(Side side, Stats stats, Map<Long, Block> blocks) {
      Optional<String> problem = problem(side.name(), stats);
      if (problem.isPresent()) {
        long n = stats.maxIndex() + 1;
        for (long b = 0; stats.count() > 0 && b * spec.tileRows < n; b++) {
          if (!blocks.containsKey(b)) {
            throw new IllegalArgumentException(side.name() + ": example indices " + b * spec.tileRows
                + ".." + (Math.min(n, (b + 1) * spec.tileRows) - 1) + " are missing; the "
                + "indices must be 0..N-1, each once (N = " + n + ", one more than the largest index)");
          }
        }
        throw new IllegalArgumentException(problem.get());
      }
    }
  }

  private static final class ComputeFn extends DoFn<TileKey, Tile> {
    private static final long serialVersionUID = 1L;
    private final Kernels spec;
    private final String modelHash;
    private final Side first;
    private final Side second;
    private final Counter computed = Metrics.counter(Kernels.class, TILES_COMPUTED);
    private transient TileComputer computer;

    ComputeFn(Kernels spec, String modelHash, Side first, Side second) {
      this.spec = spec;
      this.modelHash = modelHash;
      this.first = first;
      this.second = second;
    }

    @ProcessElement
    public void process(ProcessContext c) {
      TileKey key = c.element();
      Stats s1 = c.sideInput(first.stats());
      if (computer == null) {
        Stats s2 = second == null ? s1 : c.sideInput(second.stats());
        computer = new TileComputer(spec.model, spec.shape("x1", s1.refLength()), spec.dtype,
            spec.backend, (double) s1.count() * (second == null ? (s1.count() + 1) / 2.0 : s2.count()),
            spec.maskConstant);
        computer.setup();
      }
      Map<Long, Block> rows1 = c.sideInput(first.blocks());
      Map<Long, Block> rows2 = second == null ? rows1 : c.sideInput(second.blocks());
      boolean diagonal = second == null && key.rowOffset() == key.colOffset();
      double[] a = rows1.get(key.rowOffset() / spec.tileRows).values();
      double[] b = diagonal ? null : rows2.get(key.colOffset() / spec.tileRows).values();
      SortedMap<String, double[]> all;
      try {
        all = computer.compute(key, a, b);
      } catch (Masking.FullyMaskedException e) {
        boolean rows = e.input().equals("x1");
        throw e.at(rows || second == null ? "X1" : "X2", rows ? key.rowOffset() : key.colOffset());
      }
      Optional<Map.Entry<String, Long>> bad = TileComputer.firstNonFinite(all);
      if (bad.isPresent()) {
        long at = bad.get().getValue();
        int i = (int) (at / key.cols());
        int j = (int) (at % key.cols());
        int d = s1.refLength();
        double[] other = b == null ? a : b;
        throw new NonFiniteKernelException(spec.dtype, bad.get().getKey(), key.rowOffset() + i,
            key.colOffset() + j, all.get(bad.get().getKey())[(int) at],
            computer.diagnose(Arrays.copyOfRange(a, i * d, (i + 1) * d),
                Arrays.copyOfRange(other, j * d, (j + 1) * d)));
      }
      SortedMap<String, double[]> kept = new TreeMap<>();
      for (Get g : spec.get) {
        kept.put(g.key(), all.get(g.key()));
      }
      String inputs = "pcollection:" + Long.toHexString(s1.digest())
          + (second == null ? "" : "+" + Long.toHexString(c.sideInput(second.stats()).digest()));
      computed.inc();
      c.output(new Tile(key, modelHash, inputs, spec.dtype, kept));
    }

    @Teardown
    public void teardown() {
      if (computer != null) {
        computer.teardown();
      }
    }
  }
}
