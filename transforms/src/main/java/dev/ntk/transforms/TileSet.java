package dev.ntk.transforms;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ntk.io.FileHashes;
import dev.ntk.io.Npy;
import dev.ntk.io.NpyDType;
import dev.ntk.io.NpyHeader;
import dev.ntk.io.Tile;
import dev.ntk.io.TileFiles;
import dev.ntk.io.TileKey;
import dev.ntk.io.TileMetadata;
import dev.ntk.kernels.Model;
import java.io.IOException;
import java.io.InputStream;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import org.apache.beam.sdk.io.fs.ResourceId;

/**
 * One kernel matrix between the rows of two {@code .npy} files, as a set of tile files in a
 * directory: what to compute (model, inputs, dtype, tile size), where its tiles live, and how to
 * put tiles back together.
 *
 * <p>It is a plain serializable value, shared by the transforms that write tiles and those that
 * read them. The tiles live in a directory of their own under a tile store ({@link #create}'s
 * {@code store}), named after the model hash, the inputs hash, the dtype and the tile size
 * ({@link #setName}), so that kernels of different models or inputs kept in one store never mix;
 * the directory also holds {@value #DESCRIPTION}, which says what the set is. A tile belongs to
 * this set if its metadata names the same model hash, inputs hash, dtype and kernels and its values
 * pass their checksum; anything else in the directory is recomputed.
 *
 * <p>A set holds the model's infinite-width kernels, or, made by {@link #create(EmpiricalTiles,
 * String, String, int, NpyDType, String)}, the empirical kernels of one finite network of it; its
 * tiles then carry the network's hash ({@link EmpiricalTiles#hash}) where they carry the model's.
 *
 * <p>The kernel of x1 with itself ({@link #x1WithItself}: {@code x2} null) is <em>mirrored</em>
 * ({@link #mirrored}) when the model's plan is symmetric in its two inputs ({@link
 * dev.ntk.kernels.Plan#symmetric}): only the tiles on and above the diagonal are stored, their
 * transposes fill the rest. A plan that is not (neural-tangents' {@code ElementwiseNumerical}
 * quadrature) has every tile computed, as the in-process path computes such a kernel whole. Either
 * way the tiles on the diagonal are x1 with itself (rules that tell an example with itself apart see
 * it), and a tile holds the same values in both layouts: the layout follows from what the set's
 * name and every tile's metadata hash (the model, the inputs and so the per-example shape, the
 * dtype, the mask constant), so a resumed run cannot mix layouts; {@value #DESCRIPTION} states it.
 *
 * @param x2 {@code null} for the kernel of x1 with itself
 * @param empirical the finite network whose empirical kernels the tiles hold, or {@code null} for
 *     the model's infinite-width kernels
 * @param patterns the graph patterns of the inputs, for a model with {@code Aggregate}, or {@code null};
 *     their bytes' hashes join {@code inputsHash} ({@code x1&a1+x2&a2}), so that tiles of other patterns
 *     are never reused
 * @param mirrored whether only the tiles on and above the diagonal are stored, their transposes
 *     filling the rest: x1 with itself and a symmetric plan
 */
public record TileSet(
    Model model,
    String x1,
    String x2,
    long n1,
    long n2,
    long[] featureShape,
    int tileSize,
    NpyDType dtype,
    String directory,
    String inputsHash,
    EmpiricalTiles empirical,
    Double maskConstant,
    TilePatterns patterns,
    boolean mirrored)
    implements Serializable {
  /** The file in a set's directory that describes the set (JSON). */
  public static final String DESCRIPTION = "set.json";

  /** The kernels every tile holds, computed together. */
  public static final List<String> KERNEL_NAMES = List.of("nngp", "ntk");

  /** {@value #DESCRIPTION}'s {@code layout} of a mirrored set ({@link #mirrored}). */
  public static final String MIRRORED = "mirrored";

  /** {@value #DESCRIPTION}'s {@code layout} of a set whose every tile is stored. */
  public static final String WHOLE = "whole";

  private static final long serialVersionUID = 1L;

  /**
   * Describes the kernel of {@code model} between {@code x1} and {@code x2} ({@code null}: x1
   * itself), reading the inputs' headers and hashing their bytes. Its tiles go to the directory
   * {@code store/<setName>}, which is created with its {@value #DESCRIPTION}.
   */
  public static TileSet create(Model model, Path x1, Path x2, int tileSize, NpyDType dtype,
      Path store) throws IOException {
    return create(model, x1.toAbsolutePath().toString(),
        x2 == null ? null : x2.toAbsolutePath().toString(), tileSize, dtype,
        store.toAbsolutePath().toString());
  }

  /** {@link #create(Model, Path, Path, int, NpyDType, Path)} of a model given as its JSON text. */
  public static TileSet create(String modelJson, Path x1, Path x2, int tileSize, NpyDType dtype,
      Path store) throws IOException {
    return create(Model.parse(modelJson), x1, x2, tileSize, dtype, store);
  }

  /** {@link #create(Model, String, String, int, NpyDType, String)} of a model given as its JSON text. */
  public static TileSet create(String modelJson, String x1, String x2, int tileSize,
      NpyDType dtype, String store) throws IOException {
    return create(Model.parse(modelJson), x1, x2, tileSize, dtype, store);
  }

  /**
   * {@link #create(Model, Path, Path, int, NpyDType, Path)} with the inputs and the store given as
   * paths or URIs of any Beam file system ({@code gs://bucket/x.npy}, {@code s3://bucket/tiles};
   * see {@link BeamFiles}).
   */
  public static TileSet create(Model model, String x1, String x2, int tileSize,
      NpyDType dtype, String store) throws IOException {
    return create(model, null, x1, x2, tileSize, dtype, store, null, null, null);
  }

  /**
   * The kernel of {@code model} between inputs padded with {@code maskConstant} (neural-tangents'
   * {@code mask_constant}, {@link dev.ntk.kernels.KernelFn#withMaskConstant}; null: unmasked), as
   * {@link #create(Model, String, String, int, NpyDType, String)} describes the unmasked one; its
   * tiles carry {@link dev.ntk.kernels.Masking#hash} of the model hash and the constant.
   */
  public static TileSet create(Model model, String x1, String x2, int tileSize,
      NpyDType dtype, String store, Double maskConstant) throws IOException {
    return create(model, null, x1, x2, tileSize, dtype, store, maskConstant, null, null);
  }

  /**
   * The kernel of a graph model ({@code Aggregate}) between {@code x1} and {@code x2} ({@code null}:
   * x1 itself) whose rows have the graph patterns {@code pattern1} and {@code pattern2} ({@code .npy}
   * files, one pattern per row, batch first; {@code pattern2} {@code null} exactly where {@code x2}
   * is), as {@link #create(Model, String, String, int, NpyDType, String, Double)} describes the
   * others. The patterns' hashes join the inputs hash, which names the set's directory and which
   * every tile carries.
   */
  public static TileSet create(Model model, String x1, String x2, int tileSize, NpyDType dtype, String store,
      Double maskConstant, String pattern1, String pattern2) throws IOException {
    if (pattern1 == null) {
      throw new IllegalArgumentException("a graph model's tile set needs the patterns of x1");
    }
    return create(model, null, x1, x2, tileSize, dtype, store, maskConstant, pattern1, pattern2);
  }

  /**
   * The empirical kernels of the finite network {@code network} between {@code x1} and {@code x2}
   * ({@code null}: x1 itself), as {@link #create(Model, String, String, int, NpyDType, String)}
   * describes the infinite-width ones.
   */
  public static TileSet create(EmpiricalTiles network, String x1, String x2, int tileSize,
      NpyDType dtype, String store) throws IOException {
    return create(network.model(), network, x1, x2, tileSize, dtype, store, null, null, null);
  }

  private static TileSet create(Model model, EmpiricalTiles network, String x1, String x2, int tileSize,
      NpyDType dtype, String store, Double maskConstant, String pattern1, String pattern2) throws IOException {
    String file1 = spec(BeamFiles.file(x1));
    String file2 = x2 == null ? null : spec(BeamFiles.file(x2));
    NpyHeader h1 = header(file1);
    NpyHeader h2 = file2 == null ? h1 : header(file2);
    if (h1.shape().length < 2 || h2.shape().length < 2) {
      throw new IllegalArgumentException("inputs must be batch-first with at least 2 axes");
    }
    long[] features = Arrays.copyOfRange(h1.shape(), 1, h1.shape().length);
    if (!Arrays.equals(features, Arrays.copyOfRange(h2.shape(), 1, h2.shape().length))) {
      throw new IllegalArgumentException(x1 + " and " + x2 + " have different per-example shapes");
    }
    TilePatterns patterns = null;
    if (pattern1 != null) {
      if ((pattern2 == null) != (file2 == null)) {
        throw new IllegalArgumentException(file2 == null ? "the pattern " + pattern2 + " of x2 is given without x2"
            : "x2 " + file2 + " is given without its patterns");
      }
      String a1 = spec(BeamFiles.file(pattern1));
      String a2 = pattern2 == null ? null : spec(BeamFiles.file(pattern2));
      long[] s1 = patternShape(a1, h1.shape()[0]);
      long[] s2 = a2 == null ? null : patternShape(a2, h2.shape()[0]);
      patterns = new TilePatterns(a1, s1, a2, s2);
    }
    // an input with its graph pattern is one input: "x&pattern"
    String inputs = sha256(file1) + (patterns == null ? "" : "&" + sha256(patterns.a1()))
        + (file2 == null ? "" : "+" + sha256(file2) + (patterns == null ? "" : "&" + sha256(patterns.a2())));
    TilePlan plan = new TilePlan(h1.shape()[0], h2.shape()[0], tileSize,
        file2 == null && (network != null || symmetricPlan(model, features, dtype, maskConstant)));
    ResourceId directory = BeamFiles.childDirectory(BeamFiles.directory(store),
        setName(network != null ? network.hash() : maskConstant != null
            ? dev.ntk.kernels.Masking.hash(model.hash(), maskConstant) : model.hash(), inputs, dtype, tileSize));
    TileSet set = new TileSet(model, file1, file2, plan.n1(), plan.n2(), features,
        tileSize, dtype, spec(directory), inputs, network, maskConstant, patterns, plan.mirrored());
    set.describe();
    return set;
  }

  /**
   * Whether the plan of {@code model} on examples of {@code features} is symmetric in its two inputs
   * ({@link dev.ntk.kernels.Plan#symmetric}): the plan a worker runs ({@link TileComputer#setup}),
   * compiled here once and kept ({@link Model#plan}), so that the workers of this JVM reuse it.
   */
  private static boolean symmetricPlan(Model model, long[] features, NpyDType dtype, Double maskConstant) {
    return model.plan(new ai.djl.ndarray.types.Shape(features), TileComputer.dataType(dtype),
        java.util.EnumSet.allOf(dev.ntk.kernels.Get.class), maskConstant).symmetric();
  }

  /**
   * A resource as the set keeps it: a local path as a plain absolute path (no trailing slash), any
   * other as its URI without a trailing slash.
   */
  private static String spec(ResourceId resource) {
    String s = resource.toString();
    return s.length() > 1 && s.endsWith("/") ? s.substring(0, s.length() - 1) : s;
  }

  /** The shape of the pattern file {@code file}, checked to have a pattern for each of the {@code n} input rows. */
  private static long[] patternShape(String file, long n) throws IOException {
    long[] shape = header(file).shape();
    if (shape.length < 2 || shape[0] != n) {
      throw new IllegalArgumentException(file + ": graph patterns must be batch first, one per input row (" + n
          + "), got shape " + Arrays.toString(shape));
    }
    return shape;
  }

  private static NpyHeader header(String file) throws IOException {
    try (SeekableByteChannel channel = BeamFiles.openSeekable(BeamFiles.file(file))) {
      return Npy.readHeader(channel, file);
    }
  }

  /**
   * The name of a set's directory in its store: {@code m<12 hex digits of the model hash>-i<12 of
   * the inputs hash>-<dtype>-t<tile size>}.
   */
  public static String setName(String modelHash, String inputsHash, NpyDType dtype, int tileSize) {
    String inputs = HexFormat.of().formatHex(digest().digest(inputsHash.getBytes(StandardCharsets.UTF_8)));
    return "m" + modelHash.substring(0, Math.min(12, modelHash.length())) + "-i"
        + inputs.substring(0, 12) + "-" + dtype.typeName() + "-t" + tileSize;
  }

  /** Writes {@value #DESCRIPTION} into the set's directory (atomically; the same for every run). */
  private void describe() throws IOException {
    ObjectNode d = JsonNodeFactory.instance.objectNode();
    d.put("model_hash", modelHash());
    d.put("inputs_hash", inputsHash);
    d.put("x1", x1);
    d.put("x2", x2);
    d.put("n1", n1);
    d.put("n2", n2);
    d.put("dtype", dtype.typeName());
    d.put("tile", tileSize);
    d.put("layout", mirrored ? MIRRORED : WHOLE);
    d.put("tiles", plan().size());
    d.set("model", new ObjectMapper().readTree(model.json()));
    if (empirical != null) {
      d.put("empirical", empirical.describe());
    }
    if (maskConstant != null) {
      d.put("mask_constant", maskConstant);
    }
    if (patterns != null) {
      d.put("pattern1", patterns.a1());
      d.put("pattern2", patterns.a2());
    }
    byte[] bytes = new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsBytes(d);
    BeamFiles.writeAtomically(resource(DESCRIPTION), channel -> channel.write(ByteBuffer.wrap(bytes)));
  }

  /**
   * The model's hash ({@link Model#hash}), which the set's tiles carry; for a set of empirical
   * kernels, the finite network's ({@link EmpiricalTiles#hash}).
   */
  public String modelHash() {
    return empirical != null ? empirical.hash() : maskConstant != null
        ? dev.ntk.kernels.Masking.hash(model.hash(), maskConstant) : model.hash();
  }

  /**
   * What a worker runs to fill this set's tiles, for kernels of {@code backend}. The plan is told
   * the whole kernel's entries, as the in-process path counts them ({@code CpuBackend.FUSE_FROM}),
   * so that both paths run the per-pair steps the same way (fused loops or interpreted).
   */
  TileFunction function(dev.ntk.kernels.engine.Backend backend) {
    return empirical != null ? empirical.function(featureShape, dtype)
        : new TileComputer(model, featureShape, dtype, backend, (double) n1 * n2, maskConstant);
  }

  /**
   * Whether this is the kernel of x1 with itself: its column rows are x1's and the tiles on the
   * diagonal are computed as x1 with itself. Whether only the upper tiles are stored is {@link
   * #mirrored}.
   */
  public boolean x1WithItself() {
    return x2 == null;
  }

  /** The tiles that make up this kernel: for a {@link #mirrored} one, those on and above the diagonal. */
  public List<TileKey> plan() {
    return new TilePlan(n1, n2, tileSize, mirrored).tiles();
  }

  /** The file of the tile {@code key}, for a set on the local file system. */
  public Path file(TileKey key) {
    return Path.of(directory).resolve(key.fileName());
  }

  /** The set's directory as a store of tile files. */
  TileStore store() {
    return new TileStore(directory);
  }

  /** The file {@code name} in the set's directory, on any Beam file system. */
  public ResourceId resource(String name) {
    return store().resource(name);
  }

  /** Writes {@code tile} into the set's directory, committed by a rename once complete. */
  public void write(Tile tile) throws IOException {
    store().write(tile);
  }

  /**
   * Writes the tile {@code metadata} of this set from its values as stored ({@link
   * TileFiles#write(java.nio.channels.WritableByteChannel, TileMetadata, List)}), committed by a
   * rename once complete.
   */
  public void write(TileMetadata metadata, List<ByteBuffer> values) throws IOException {
    store().write(metadata, values);
  }

  /** Rows {@code [first, first + rows)} of the input {@code file} (x1 or x2), row-major. */
  double[] readRows(String file, long first, int rows) throws IOException {
    try (SeekableByteChannel channel = BeamFiles.openSeekable(BeamFiles.file(file))) {
      return Npy.readRows(channel, file, first, rows).data();
    }
  }

  /** The metadata a tile of this set carries. */
  public TileMetadata metadata(TileKey key) {
    return new TileMetadata(key, modelHash(), inputsHash, dtype, KERNEL_NAMES);
  }

  /** What is on disk for one tile. */
  public enum TileState {
    /** No file: the tile is to be computed. */
    ABSENT,
    /** A file of this set whose values pass their checksum: reused. */
    VALID,
    /** A file that cannot be read, fails its checksum or belongs to another set: recomputed. */
    DAMAGED
  }

  /**
   * The state of the tile {@code key} on disk; reading every value to verify the checksum.
   *
   * @return the state, and for {@link TileState#DAMAGED} what is wrong with the file
   */
  public Map.Entry<TileState, String> state(TileKey key) {
    TileStore.Found found = store().find(metadata(key));
    return Map.entry(found.state(), found.problem());
  }

  /**
   * Rows {@code [rowOffset, rowOffset + rows)} of every kernel, over all {@code n2} columns, from
   * the tiles {@code keys} (for a {@link #mirrored} set, the transposes of stored tiles fill the
   * part below the diagonal). Fails if a needed entry is not covered by a tile.
   *
   * @return kernel name to row-major {@code rows x n2} values
   */
  public Map<String, double[]> assemble(long rowOffset, int rows, Iterable<TileKey> keys) {
    return assemble(rowOffset, rows, keys, KERNEL_NAMES);
  }

  /** {@link #assemble(long, int, Iterable)} of the kernels {@code names} only. */
  public Map<String, double[]> assemble(long rowOffset, int rows, Iterable<TileKey> keys,
      List<String> names) {
    return Bands.assemble(n1, n2, mirrored, rowOffset, rows, keys, names, this::read,
        directory);
  }

  /** The tile {@code key} of this set, checked against the set's metadata and its checksum. */
  Tile read(TileKey key) {
    try {
      Tile tile = store().readFile(key);
      if (!tile.metadata().equals(metadata(key))) {
        throw new IllegalStateException(resource(key.fileName())
            + " belongs to another model, inputs or dtype: " + tile.metadata());
      }
      return tile;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static MessageDigest digest() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static String sha256(String file) throws IOException {
    ResourceId resource = BeamFiles.file(file);
    if (resource.getScheme().equals("file")) { // a local input the command line has read and hashed
      return FileHashes.sha256(Path.of(file));
    }
    MessageDigest digest = digest();
    byte[] buffer = new byte[1 << 16];
    try (InputStream in = Channels.newInputStream(BeamFiles.openSeekable(BeamFiles.file(file)))) {
      for (int n; (n = in.read(buffer)) > 0; ) {
        digest.update(buffer, 0, n);
      }
    }
    return HexFormat.of().formatHex(digest.digest());
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof TileSet t && t.toString().equals(toString());
  }

  @Override
  public int hashCode() {
    return toString().hashCode();
  }

  @Override
  public String toString() {
    return "TileSet[" + directory + ", " + n1 + "x" + n2 + ", tile " + tileSize + ", " + dtype.typeName()
        + ", features " + Arrays.toString(featureShape) + ", model " + modelHash() + ", inputs "
        + inputsHash + (mirrored ? ", mirrored" : "") + "]";
  }

}
