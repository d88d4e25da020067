package dev.ntk.transforms;

import ai.djl.ndarray.types.Shape;
import dev.ntk.io.NpyDType;
import dev.ntk.io.TileFiles;
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
import org.apache.beam.sdk.coders.AtomicCoder;
import org.apache.beam.sdk.coders.KvCoder;
import org.apache.beam.sdk.coders.VarIntCoder;
import org.apache.beam.sdk.coders.VarLongCoder;
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
 * #withTileRows} rows of x1 against one of x2, encoded with {@link TileCoder}; for the kernel of x1
 * with itself, only the tiles on and above the diagonal where the model's plan is symmetric in its
 * two inputs ({@link dev.ntk.kernels.Plan#symmetric}; the others are their transposes), and every
 * tile where it is not (neural-tangents' {@code ElementwiseNumerical}), as the in-process path
 * computes it whole.
 *
 * <pre>{@code
 * PCollection<KV<Long, double[]>> x = ...;
 * PCollection<Tile> tiles = x.apply("Kernel", Kernels.of(model).withTileRows(256));
 * tiles.apply(KernelIO.writeNpy("gs://bucket/run"));       // nngp.npy, ntk.npy, streamed
 * // the kernel between two collections: x1.apply(Kernels.of(model).withX2(x2))
 * }</pre>
 *
 * <p>Each worker holds the examples of both sides (a side input of blocks of rows), not the
 * kernel: inputs are O(N d), kernels O(N^2). The tiles are computed by the step that fills the
 * tile sets of {@link KernelTiles} ({@link ComputeTileFn}), with its metrics; given {@link
 * #withTileDirectory a tile directory}, finished tiles are read from it instead of computed, and
 * new ones written to it, so a failed run resumes.
 *
 * <p>The tile rows, dtype, backend and tile directory that no {@code withX} call gave come from the
 * pipeline's {@link NtkPipelineOptions} ({@code --tileRows=512} among the pipeline's arguments), read
 * when the transform is applied.
 */
public final class Kernels extends PTransform<PCollection<KV<Long, double[]>>, PCollection<Tile>> {
  /**
   * The counter of tiles computed: {@link KernelTiles#TILES_COMPUTED}, in the namespace {@code
   * dev.ntk.transforms.KernelTiles} that both Beam APIs count in (with {@link
   * KernelTiles#TILES_SKIPPED} for tiles read from {@link #withTileDirectory a tile directory}).
   */
  public static final String TILES_COMPUTED = KernelTiles.TILES_COMPUTED;

  private static final long serialVersionUID = 1L;

  private final Settings settings;
  /** The settings a {@code withX} method gave; the others come from the pipeline's {@link NtkPipelineOptions}. */
  private final EnumSet<Given> given;
  private final transient PCollection<KV<Long, double[]>> x2;
  /** The settings the transform was expanded with, for its display data; null before. */
  private transient Settings expanded;

  /** The settings that {@link NtkPipelineOptions} has a flag for. */
  private enum Given { TILE_ROWS, DTYPE, BACKEND, TILE_DIRECTORY }

  /**
   * What {@link Kernels} computes, as one value: the transform's configuration and what its steps
   * hold (never the transform itself). Immutable; each {@code withX} returns a new value.
   *
   * @param exampleShape the per-example shape, or {@code null} for {@code (length,)}
   * @param tileDirectory where finished tiles are read from and new ones written to, or {@code null}
   * @param maskConstant neural-tangents' {@code mask_constant}, or {@code null}
   */
  record Settings(Model model, int tileRows, NpyDType dtype, Backend backend, List<Get> get, long[] exampleShape,
      String tileDirectory, Double maskConstant) implements java.io.Serializable {
    Settings {
      get = List.copyOf(get);
      exampleShape = exampleShape == null ? null : exampleShape.clone();
    }

    Settings withTileRows(int rows) {
      return new Settings(model, rows, dtype, backend, get, exampleShape, tileDirectory, maskConstant);
    }

    Settings withDType(NpyDType newDType) {
      return new Settings(model, tileRows, newDType, backend, get, exampleShape, tileDirectory, maskConstant);
    }

    Settings withBackend(Backend newBackend) {
      return new Settings(model, tileRows, dtype, newBackend, get, exampleShape, tileDirectory, maskConstant);
    }

    Settings withGet(List<Get> newGet) {
      return new Settings(model, tileRows, dtype, backend, newGet, exampleShape, tileDirectory, maskConstant);
    }

    Settings withExampleShape(long[] shape) {
      return new Settings(model, tileRows, dtype, backend, get, shape, tileDirectory, maskConstant);
    }

    Settings withMaskConstant(Double constant) {
      return new Settings(model, tileRows, dtype, backend, get, exampleShape, tileDirectory, constant);
    }

    /** The hash the tiles carry: the model's, or {@link Masking#hash} of it and the mask constant. */
    String modelHash() {
      return maskConstant == null ? model.hash() : Masking.hash(model.hash(), maskConstant);
    }

    Settings withTileDirectory(String directory) {
      return new Settings(model, tileRows, dtype, backend, get, exampleShape, directory, maskConstant);
    }

    /** The per-example shape the model sees, from the collection's feature length. */
    long[] shape(String name, int length) {
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
     * What a worker runs for the tiles of an {@code n1 x n2} kernel of examples of {@code
     * featureShape}: the model's plan compiled for the kernels {@link #get} alone (without the NTK,
     * no NTK step), told the whole kernel's entries as {@link TileSet} tells it.
     */
    TileComputer function(long[] featureShape, long n1, long n2) {
      return new TileComputer(model, featureShape, dtype, backend, (double) n1 * n2, EnumSet.copyOf(get),
          maskConstant);
    }
  }

  private Kernels(Settings settings, EnumSet<Given> given, PCollection<KV<Long, double[]>> x2) {
    this.settings = settings;
    this.given = given;
    this.x2 = x2;
  }

  /** The same transform with {@code newSettings}, {@code also} given now. */
  private Kernels with(Settings newSettings, Given also) {
    EnumSet<Given> now = EnumSet.copyOf(given);
    if (also != null) {
      now.add(also);
    }
    return new Kernels(newSettings, now, x2);
  }

  /**
   * The settings of this transform in a pipeline of {@code options}: each one that no {@code withX}
   * method gave is the options' ({@code --tileRows}, {@code --dtype}, {@code --backend}, {@code
   * --tileDirectory}) where they have it.
   */
  Settings settings(NtkPipelineOptions options) {
    Settings s = settings;
    try {
      if (!given.contains(Given.TILE_ROWS) && options.getTileRows() != null) {
        s = s.withTileRows(checkTileRows(options.getTileRows(), "--tileRows"));
      }
      if (!given.contains(Given.DTYPE)) {
        s = s.withDType(NpyDType.fromName(options.getDtype()));
      }
      if (!given.contains(Given.BACKEND)) {
        s = s.withBackend(Backend.of(options.getBackend()));
      }
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("NtkPipelineOptions: " + e.getMessage(), e);
    }
    if (!given.contains(Given.TILE_DIRECTORY) && options.getTileDirectory() != null) {
      s = s.withTileDirectory(checkTileDirectory(options.getTileDirectory()));
    }
    return s;
  }

  private static int checkTileRows(int rows, String what) {
    if (rows < 1) {
      throw new IllegalArgumentException(what + " must be at least 1, got " + rows);
    }
    return rows;
  }

  private static String checkTileDirectory(String directory) {
    if (directory == null || directory.isBlank()) {
      throw new IllegalArgumentException("the tile directory is empty");
    }
    return directory;
  }

  /** The kernels of {@code model}, tiles of 256 rows, float64, both kernels, {@code auto} backend. */
  public static Kernels of(Layer model) {
    return of(Model.of(Objects.requireNonNull(model, "model")));
  }

  /**
   * The kernels of {@code model}, tiles of 256 rows, float64, both kernels, {@code auto} backend. A
   * graph model ({@code Aggregate}) is refused: collections of examples carry no graph patterns (its
   * tiles are computed from {@code .npy} files, {@link TileSet#create(Model, String, String, int,
   * NpyDType, String, Double, String, String)}).
   */
  public static Kernels of(Model model) {
    if (dev.ntk.kernels.Graph.readsPatterns(Objects.requireNonNull(model, "model").layer())) {
      throw new IllegalArgumentException("the model has Aggregate layers, whose inputs come with graph patterns, "
          + "which collections of examples do not carry: compute its tiles from .npy files (TileSet.create with "
          + "the pattern files, KernelTiles)");
    }
    return new Kernels(new Settings(Objects.requireNonNull(model, "model"), 256, NpyDType.FLOAT64, Backend.AUTO,
        List.of(Get.NNGP, Get.NTK), null, null, null), EnumSet.noneOf(Given.class), null);
  }

  /** The kernels of the model in the JSON model file format ({@code docs/MODEL_SPEC.md}). */
  public static Kernels of(String modelJson) {
    return of(Model.parse(Objects.requireNonNull(modelJson, "modelJson"))); // a bad model fails here
  }

  /** Rows of x1 (and of x2) per tile, at least 1 (unset: {@code --tileRows}, else 256). */
  public Kernels withTileRows(int rows) {
    return with(settings.withTileRows(checkTileRows(rows, "tile rows")), Given.TILE_ROWS);
  }

  /** The dtype the kernels are computed in and their tiles stored with (unset: {@code --dtype}, float64). */
  public Kernels withDType(NpyDType newDType) {
    return with(settings.withDType(Objects.requireNonNull(newDType, "dtype")), Given.DTYPE);
  }

  /** Where tiles are computed ({@code auto} is decided on each worker; unset: {@code --backend}, auto). */
  public Kernels withBackend(Backend newBackend) {
    return with(settings.withBackend(Objects.requireNonNull(newBackend, "backend")), Given.BACKEND);
  }

  /**
   * The kernels each tile carries: {@code nngp}, {@code ntk} or both (the default). The workers'
   * plan is compiled for these alone: {@code withGet(Get.NNGP)} computes no NTK step.
   */
  public Kernels withGet(Get... kernels) {
    if (kernels.length == 0) {
      throw new IllegalArgumentException("select at least one kernel");
    }
    return with(settings.withGet(List.copyOf(EnumSet.copyOf(Arrays.asList(kernels)))), null);
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
    return with(settings.withExampleShape(shape), null);
  }

  /** The kernel between the input collection (x1) and {@code second} (x2), rather than x1 itself. */
  public Kernels withX2(PCollection<KV<Long, double[]>> second) {
    return new Kernels(settings, given, Objects.requireNonNull(second, "x2"));
  }

  /**
   * Tiles kept in {@code directory} (a path or URI of any Beam file system), a resumable source
   * and sink: a tile file there of the same model, examples (their digest), dtype and kernels whose
   * values pass their checksum is read instead of computed, and every tile computed is written
   * there as an Arrow tile file ({@code tile-r<row>-c<col>.arrow}, committed by a rename), so a
   * run that failed part-way computes only the tiles it had not finished. Unset: {@code
   * --tileDirectory}, else none.
   */
  public Kernels withTileDirectory(String directory) {
    return with(settings.withTileDirectory(checkTileDirectory(directory)), Given.TILE_DIRECTORY);
  }

  /**
   * The kernels of inputs padded with {@code constant} (neural-tangents' {@code mask_constant},
   * {@link dev.ntk.kernels.KernelFn#withMaskConstant}): entries equal to it are zeroed and positions
   * whose channels all equal it are left out of the kernels; tiles carry the hash of the model and
   * the constant ({@link Masking#hash}). An example whose entries all equal it fails the tile that
   * holds it, naming the example.
   */
  public Kernels withMaskConstant(double constant) {
    return with(settings.withMaskConstant(Masking.checkConstant(constant)), null);
  }

  /** What a worker runs for an {@code n1 x n2} kernel of examples of {@code featureShape} (for tests). */
  TileComputer function(long[] featureShape, long n1, long n2) {
    return settings.function(featureShape, n1, n2);
  }

  @Override
  public PCollection<Tile> expand(PCollection<KV<Long, double[]>> x1) {
    Settings settings = settings(x1.getPipeline().getOptions().as(NtkPipelineOptions.class));
    expanded = settings;
    if (settings.tileDirectory() != null) {
      TileFiles.checkJvmFlags("Kernels.withTileDirectory");
    }
    Side first = prepare(settings, "X1", x1);
    Side second = x2 == null ? null : prepare(settings, "X2", x2);
    Blocks inputs = new Blocks(settings, first, second);
    TileStore store = settings.tileDirectory() == null ? null : new TileStore(settings.tileDirectory());
    return x1.getPipeline()
        .apply("Start", Create.of(0).withCoder(VarIntCoder.of()))
        .apply("CheckAndPlanTiles", ParDo.of(new PlanFn(settings, first, second)).withSideInputs(inputs.views()))
        .setCoder(TileKeyCoder.of())
        .apply("SpreadTiles", Reshuffle.<TileKey>viaRandomKey().withNumBuckets(KernelTiles.SPREAD_BUCKETS))
        .apply("ComputeTiles", ParDo.of(new ComputeTileFn.Tiles(inputs, settings.backend(), null, store))
            .withSideInputs(inputs.views()))
        .setCoder(TileCoder.of());
  }

  /** The views of one input: its statistics and its blocks of rows by block number. */
  record Side(String name, PCollectionView<Stats> stats,
      PCollectionView<Map<Long, Block>> blocks) implements java.io.Serializable {}

  private static Side prepare(Settings settings, String name, PCollection<KV<Long, double[]>> examples) {
    int rows = settings.tileRows();
    PCollectionView<Stats> stats = examples
        .apply(name + "Stats", Combine.globally(new StatsFn()).withoutDefaults())
        .setCoder(StatsCoder.INSTANCE)
        .apply(name + "StatsView", View.asSingleton());
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
    Settings settings = expanded == null ? this.settings : expanded;
    builder.add(DisplayData.item("model", settings.model().hash()).withLabel("Model hash"))
        .addIfNotNull(DisplayData.item("maskConstant", settings.maskConstant()).withLabel("Mask constant"))
        .add(DisplayData.item("tileRows", settings.tileRows()).withLabel("Rows per tile"))
        .add(DisplayData.item("dtype", settings.dtype().typeName()).withLabel("Kernel dtype"))
        .add(DisplayData.item("backend", settings.backend().key()).withLabel("Kernel backend"))
        .add(DisplayData.item("get", settings.get().toString()).withLabel("Kernels"))
        .add(DisplayData.item("x2", x2 != null).withLabel("Kernel between two collections"))
        .addIfNotNull(DisplayData.item("tileDirectory", settings.tileDirectory()).withLabel("Tile directory"));
    if (settings.exampleShape() != null) {
      builder.add(DisplayData.item("exampleShape", Arrays.toString(settings.exampleShape()))
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

  /**
   * Runs once all checks of both collections have passed (it reads their statistics and blocks):
   * fails with the first problem found, else checks the model against the example shape and emits
   * the keys of the tiles.
   */
  private static final class PlanFn extends DoFn<Integer, TileKey> {
    private static final long serialVersionUID = 1L;
    private final Settings settings;
    private final Side first;
    private final Side second;

    PlanFn(Settings settings, Side first, Side second) {
      this.settings = settings;
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
      long[] shape = settings.shape("x1", s1.refLength());
      boolean symmetric = settings.model().plan(new Shape(shape), TileComputer.dataType(settings.dtype()),
          EnumSet.copyOf(settings.get()), settings.maskConstant()).symmetric();
      for (TileKey key : new TilePlan(s1.maxIndex() + 1, s2.maxIndex() + 1, settings.tileRows(),
          second == null && symmetric).tiles()) {
        c.output(key);
      }
    }

    private void check(Side side, Stats stats, Map<Long, Block> blocks) {
      Optional<String> problem = problem(side.name(), stats);
      if (problem.isPresent()) {
        long n = stats.maxIndex() + 1;
        int rows = settings.tileRows();
        for (long b = 0; stats.count() > 0 && b * rows < n; b++) {
          if (!blocks.containsKey(b)) {
            throw new IllegalArgumentException(side.name() + ": example indices " + b * rows
                + ".." + (Math.min(n, (b + 1) * rows) - 1) + " are missing; the "
                + "indices must be 0..N-1, each once (N = " + n + ", one more than the largest index)");
          }
        }
        throw new IllegalArgumentException(problem.get());
      }
    }
  }

  /**
   * The inputs of the compute step ({@link ComputeTileFn}): the blocks of rows of the collections,
   * as side inputs; the tiles' inputs hash is {@code pcollection:} and the collections' digests.
   */
  static final class Blocks implements TileInputs {
    private static final long serialVersionUID = 1L;
    private final Settings settings;
    private final Side first;
    private final Side second;

    Blocks(Settings settings, Side first, Side second) {
      this.settings = settings;
      this.first = first;
      this.second = second;
    }

    @Override
    public List<PCollectionView<?>> views() {
      List<PCollectionView<?>> views = new ArrayList<>(List.of(first.stats(), first.blocks()));
      if (second != null) {
        views.addAll(List.of(second.stats(), second.blocks()));
      }
      return views;
    }

    @Override
    public Bound bind(SideInputs side) {
      Stats s1 = side.get(first.stats());
      Stats s2 = second == null ? s1 : side.get(second.stats());
      Map<Long, Block> rows1 = side.get(first.blocks());
      Map<Long, Block> rows2 = second == null ? rows1 : side.get(second.blocks());
      String inputs = "pcollection:" + Long.toHexString(s1.digest())
          + (second == null ? "" : "+" + Long.toHexString(s2.digest()));
      return new Bound() {
        @Override
        public String modelHash() {
          return settings.modelHash();
        }

        @Override
        public String inputsHash() {
          return inputs;
        }

        @Override
        public NpyDType dtype() {
          return settings.dtype();
        }

        @Override
        public boolean x1WithItself() {
          return second == null;
        }

        @Override
        public TileFunction function(Backend backend) {
          return settings.withBackend(backend).function(settings.shape("x1", s1.refLength()),
              s1.maxIndex() + 1, s2.maxIndex() + 1);
        }

        @Override
        public String inputName(boolean ofX2) {
          return ofX2 && second != null ? "X2" : "X1";
        }

        @Override
        public double[] rows(boolean ofX2, long from, int count) {
          Block block = (ofX2 ? rows2 : rows1).get(from / settings.tileRows());
          if (block.first() == from && block.rows() == count) {
            return block.values();
          }
          int at = Math.toIntExact(from - block.first());
          return Arrays.copyOfRange(block.values(), at * block.length(), (at + count) * block.length());
        }
      };
    }
  }
}
