package dev.ntk.transforms;

import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.io.Tile;
import dev.ntk.io.TileKey;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.linalg.DenseMatrix;
import dev.ntk.kernels.predict.GpPosterior;
import dev.ntk.kernels.predict.GradientDescent;
import dev.ntk.kernels.predict.Loss;
import dev.ntk.kernels.predict.MseDynamics;
import dev.ntk.transforms.PredictSettings.Mode;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.Serializable;
import java.nio.channels.SeekableByteChannel;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import org.apache.beam.sdk.coders.AtomicCoder;
import org.apache.beam.sdk.coders.BooleanCoder;
import org.apache.beam.sdk.coders.DoubleCoder;
import org.apache.beam.sdk.coders.KvCoder;
import org.apache.beam.sdk.coders.StringUtf8Coder;
import org.apache.beam.sdk.coders.VarIntCoder;
import org.apache.beam.sdk.io.fs.ResourceId;
import org.apache.beam.sdk.transforms.Create;
import org.apache.beam.sdk.transforms.DoFn;
import org.apache.beam.sdk.transforms.Flatten;
import org.apache.beam.sdk.transforms.GroupByKey;
import org.apache.beam.sdk.transforms.ParDo;
import org.apache.beam.sdk.transforms.Values;
import org.apache.beam.sdk.transforms.WithKeys;
import org.apache.beam.sdk.util.VarInt;
import org.apache.beam.sdk.values.KV;
import org.apache.beam.sdk.values.PCollection;
import org.apache.beam.sdk.values.PCollectionList;
import org.apache.beam.sdk.values.PCollectionView;

/**
 * The steps of {@link GpInference}, shared by its two forms: tiles named by key and read from a
 * {@link TileSet}'s files, or the {@link Tile}s of a {@code PCollection} ({@link
 * GpInference.FromTiles}). A step sees its tiles through a {@link TileAccess}; everything else
 * (checks, the factorisation, the predictions, the files) is the same code.
 */
final class InferenceSteps {
  private InferenceSteps() {}

  // ---- how a step gets at its tiles ----------------------------------------------------------

  /** The tiles of one kernel as the elements a step receives: keys of files, or tiles. */
  interface TileAccess<T> extends Serializable {
    TileKey key(T item);

    /** The tile, read from its file if need be. */
    Tile tile(T item);

    /** The kernel, for messages ({@code the train-train tiles}, or the tile set's directory). */
    String what();

    /** Where the tiles are, for messages that say {@code the tiles in ...}. */
    String where();
  }

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

  // ---- what passes between the steps ---------------------------------------------------------

  /**
   * Where the factored train side lives: {@code dir} (a Beam resource) holds the files of the mode;
   * the {@code id} is unique to the run (the key under which workers keep what they read). The
   * train-train tiles' model hash, dtype and inputs are what the other kernels are checked against.
   */
  record Factored(String dir, String id, int n, int outputs, long[] yShape, double nll,
      NpyDType dtype, String modelHash, String trainInputs) {
    @Override
    public boolean equals(Object o) {
      return o instanceof Factored f && dir.equals(f.dir) && id.equals(f.id) && n == f.n && outputs == f.outputs
          && Arrays.equals(yShape, f.yShape) && Double.compare(nll, f.nll) == 0 && dtype == f.dtype
          && modelHash.equals(f.modelHash) && trainInputs.equals(f.trainInputs);
    }

    @Override
    public int hashCode() {
      return java.util.Objects.hash(dir, id, n, outputs, Arrays.hashCode(yShape), nll, dtype, modelHash, trainInputs);
    }
  }

  /** The predictions for a block of test rows at every time, and its kernels if a later step needs them. */
  record Block(long rowOffset, int rows, double[][] means, double[] testTrainGet, double[] testTrainNngp,
      String testInputs) {
    @Override
    public boolean equals(Object o) {
      return o instanceof Block b && rowOffset == b.rowOffset && rows == b.rows && Arrays.deepEquals(means, b.means)
          && Arrays.equals(testTrainGet, b.testTrainGet) && Arrays.equals(testTrainNngp, b.testTrainNngp)
          && testInputs.equals(b.testInputs);
    }

    @Override
    public int hashCode() {
      return java.util.Objects.hash(rowOffset, rows, Arrays.deepHashCode(means), Arrays.hashCode(testTrainGet),
          Arrays.hashCode(testTrainNngp), testInputs);
    }
  }

  /** The block {@link #gatherAndWrite} adds to the others: no rows, skipped by the write step. */
  static final Block NO_ROWS = new Block(-1, 0, new double[0][], null, null, "");

  /** {@link Factored} as a length-prefixed sequence of its fields (no Java serialization). */
  static final class FactoredCoder extends AtomicCoder<Factored> {
    static final FactoredCoder INSTANCE = new FactoredCoder();
    private static final StringUtf8Coder STRING = StringUtf8Coder.of();

    @Override
    public void encode(Factored f, OutputStream out) throws IOException {
      STRING.encode(f.dir(), out);
      STRING.encode(f.id(), out);
      VarInt.encode(f.n(), out);
      VarInt.encode(f.outputs(), out);
      VarInt.encode(f.yShape().length, out);
      for (long d : f.yShape()) {
        VarInt.encode(d, out);
      }
      DoubleCoder.of().encode(f.nll(), out);
      STRING.encode(f.dtype().typeName(), out);
      STRING.encode(f.modelHash(), out);
      STRING.encode(f.trainInputs(), out);
    }

    @Override
    public Factored decode(InputStream in) throws IOException {
      String dir = STRING.decode(in);
      String id = STRING.decode(in);
      int n = VarInt.decodeInt(in);
      int outputs = VarInt.decodeInt(in);
      long[] shape = new long[VarInt.decodeInt(in)];
      for (int i = 0; i < shape.length; i++) {
        shape[i] = VarInt.decodeLong(in);
      }
      double nll = DoubleCoder.of().decode(in);
      return new Factored(dir, id, n, outputs, shape, nll, NpyDType.fromName(STRING.decode(in)),
          STRING.decode(in), STRING.decode(in));
    }

    @Override
    public void verifyDeterministic() {}
  }

  /** {@link Block}; absent arrays are marked by a flag. */
  static final class BlockCoder extends AtomicCoder<Block> {
    static final BlockCoder INSTANCE = new BlockCoder();

    @Override
    public void encode(Block b, OutputStream out) throws IOException {
      VarInt.encode(b.rowOffset() + 1, out); // -1 for NO_ROWS
      VarInt.encode(b.rows(), out);
      VarInt.encode(b.means().length, out);
      for (double[] m : b.means()) {
        nullable(m, out);
      }
      nullable(b.testTrainGet(), out);
      nullable(b.testTrainNngp(), out);
      StringUtf8Coder.of().encode(b.testInputs(), out);
    }

    @Override
    public Block decode(InputStream in) throws IOException {
      long rowOffset = VarInt.decodeLong(in) - 1;
      int rows = VarInt.decodeInt(in);
      double[][] means = new double[VarInt.decodeInt(in)][];
      for (int i = 0; i < means.length; i++) {
        means[i] = nullable(in);
      }
      return new Block(rowOffset, rows, means, nullable(in), nullable(in), StringUtf8Coder.of().decode(in));
    }

    private static void nullable(double[] values, OutputStream out) throws IOException {
      BooleanCoder.of().encode(values != null, out);
      if (values != null) {
        DoubleArrayCoder.of().encode(values, out);
      }
    }

    private static double[] nullable(InputStream in) throws IOException {
      return BooleanCoder.of().decode(in) ? DoubleArrayCoder.of().decode(in) : null;
    }

    @Override
    public void verifyDeterministic() {}
  }

  // ---- checks across the kernels ---------------------------------------------------------------

  private static final String COLLECTION = "pcollection:";

  /**
   * The inputs a tile's inputs hash names: one for the kernel of an input with itself, two for a
   * kernel between two ({@code a+b}); tiles of {@link Kernels} prefix theirs with {@code
   * pcollection:}.
   */
  static String[] inputs(String inputsHash) {
    String h = inputsHash.startsWith(COLLECTION) ? inputsHash.substring(COLLECTION.length()) : inputsHash;
    return h.split("\\+", -1);
  }

  /** Whether the kernels of the settings need the NNGP beside the selected one (NTK covariance). */
  static boolean needsNngp(PredictSettings settings, boolean cov) {
    return cov && settings.get() == Get.NTK;
  }

  /** The kernel values {@code name} of {@code tile}, or a message saying how to compute them. */
  static double[] kernel(Tile tile, String name, String what, String why) {
    double[] v = tile.kernels().get(name);
    if (v == null) {
      throw new IllegalArgumentException(what + ": the tile " + tile.key().fileName() + " has no '" + name
          + "' kernel (it has " + tile.kernels().keySet() + "), which " + why + " needs: compute the "
          + "tiles with that kernel (Kernels.withGet)");
    }
    return v;
  }

  /** Checks that a tile of another kernel than train-train belongs with the factored train side. */
  static void checkAgainstTrain(Tile tile, Factored f, String what) {
    if (!tile.modelHash().equals(f.modelHash())) {
      throw new IllegalArgumentException(what + " are of another model than the train-train tiles (tile "
          + tile.key().fileName() + ": model hash " + tile.modelHash() + ", expected " + f.modelHash() + ")");
    }
    if (tile.dtype() != f.dtype()) {
      throw new IllegalArgumentException(what + " are " + tile.dtype().typeName()
          + " but the train-train tiles " + f.dtype().typeName());
    }
  }

  /** The test inputs of a test-train tile, checked to be against the train inputs. */
  static String testInputs(Tile tile, Factored f, String what) {
    checkAgainstTrain(tile, f, what);
    String[] in = inputs(tile.inputsHash());
    if (in.length != 2) {
      throw new IllegalArgumentException(what + " are the kernel of one input with itself (inputs "
          + tile.inputsHash() + "), not between the test and the train inputs: compute them with "
          + "Kernels.of(model).withX2(xTrain) applied to the test examples");
    }
    if (!in[1].equals(f.trainInputs())) {
      throw new IllegalArgumentException(what + " are not against the train inputs of the train-train "
          + "tiles (their inputs are " + tile.inputsHash() + ", the train inputs " + f.trainInputs() + ")");
    }
    return in[0];
  }

  /**
   * Checks that {@code keys} are exactly the tiles on and above the diagonal of an {@code n x n}
   * kernel of one tile size, naming the first missing or unexpected one.
   */
  static void checkSymmetricComplete(List<TileKey> keys, long n, String what) {
    if (keys.isEmpty()) {
      throw new IllegalArgumentException(what + ": there are none; the kernel is " + n + " x " + n);
    }
    int tileSize = 1;
    for (TileKey k : keys) {
      tileSize = Math.max(tileSize, Math.max(k.rows(), k.cols()));
    }
    List<TileKey> planned = new TilePlan(n, n, tileSize, true).tiles();
    Set<TileKey> have = new HashSet<>(keys);
    for (TileKey k : planned) {
      if (!have.contains(k)) {
        long missing = planned.stream().filter(p -> !have.contains(p)).count();
        throw new IllegalArgumentException(what + " lack " + missing + " of the " + planned.size()
            + " tiles of the " + n + " x " + n + " kernel in tiles of " + tileSize + " rows, first "
            + k.fileName() + " (rows " + k.rowOffset() + ".." + (k.rowOffset() + k.rows() - 1)
            + ", columns " + k.colOffset() + ".." + (k.colOffset() + k.cols() - 1) + ")");
      }
    }
    Set<TileKey> expected = new HashSet<>(planned);
    for (TileKey k : keys) {
      if (!expected.contains(k)) {
        throw new IllegalArgumentException(what + ": the tile " + k.fileName() + " (" + k.rows() + " x "
            + k.cols() + ") is not one of the " + n + " x " + n + " kernel in tiles of " + tileSize
            + " rows: the tiles are of different kernels or tile sizes");
      }
    }
  }

  /** A repeated tile, named. */
  private static IllegalArgumentException repeated(TileKey key, String what) {
    return new IllegalArgumentException(what + ": the tile " + key.fileName() + " appears more than once");
  }

  // ---- reading inputs --------------------------------------------------------------------------

  /** The whole {@code .npy} array at {@code spec}, a path or URI of any Beam file system. */
  static NpyArray readNpy(String spec) throws IOException {
    ResourceId file = BeamFiles.file(spec);
    try (SeekableByteChannel channel = BeamFiles.openSeekable(file)) {
      return Npy.read(channel, spec);
    }
  }

  /** Rows of the {@code .npy} array at {@code spec}. */
  static NpyArray readNpyRows(String spec, long first, int rows) throws IOException {
    try (SeekableByteChannel channel = BeamFiles.openSeekable(BeamFiles.file(spec))) {
      return Npy.readRows(channel, spec, first, rows);
    }
  }

  /** Initial outputs from {@code file} of shape {@code shape}, or null for none. */
  static double[] initial(String file, long[] shape) throws IOException {
    if (file == null) {
      return null;
    }
    NpyArray a = readNpy(file);
    if (!Arrays.equals(a.shape(), shape)) {
      throw new IllegalArgumentException(file + ": expected initial outputs of shape "
          + Npy.shapeString(shape) + ", got " + a.shapeString());
    }
    return a.data();
  }

  // ---- the steps -------------------------------------------------------------------------------

  /**
   * Puts the train-train tiles (one group) into the native {@code n x n} kernel (and the NNGP beside it when
   * the covariance with the NTK needs it), tile by tile, checking them; factors it as the settings
   * say and writes the result into {@code factorDir}. {@code n} is the number of targets.
   */
  static final class FactorFn<T> extends DoFn<KV<Integer, Iterable<T>>, Factored> {
    private static final long serialVersionUID = 1L;
    private final TileAccess<T> access;
    private final String yTrain;
    private final PredictSettings settings;
    private final boolean cov;
    private final String factorDir;
    private final String directory;

    /**
     * @param factorDir where the factored train side goes, or null for {@code directory/.factor/}
     *     (resolved when the step runs, once the pipeline's file systems are registered)
     */
    FactorFn(TileAccess<T> access, String yTrain, PredictSettings settings, boolean cov, String factorDir,
        String directory) {
      this.access = access;
      this.yTrain = yTrain;
      this.settings = settings;
      this.cov = cov;
      this.factorDir = factorDir;
      this.directory = directory;
    }

    @ProcessElement
    public void process(ProcessContext c) throws IOException {
      NpyArray y = readNpy(yTrain);
      if (y.ndim() < 1 || y.shape()[0] < 1) {
        throw new IllegalArgumentException(yTrain + ": expected targets of shape (N_train, ...), got "
            + y.shapeString());
      }
      int n = Math.toIntExact(y.shape()[0]);
      int outputs = y.data().length / n;
      double[] fxTrain0 = initial(settings.fxTrain0(), y.shape());
      boolean nngp = needsNngp(settings, cov);
      String get = settings.get().key();
      String what = access.what();
      DenseMatrix g = DenseMatrix.zeros(n, n);
      DenseMatrix kdd = nngp ? DenseMatrix.zeros(n, n) : null;
      try {
        List<TileKey> keys = new ArrayList<>();
        Set<TileKey> seen = new HashSet<>();
        Tile reference = null;
        for (T item : c.element().getValue()) { // iterated once: a group may allow no more
          Tile t = access.tile(item);
          TileKey k = t.key();
          if (!seen.add(k)) {
            throw repeated(k, what);
          }
          if (reference == null) {
            reference = t;
            String[] in = inputs(t.inputsHash());
            if (in.length != 1) {
              throw new IllegalArgumentException(what + " are a kernel between two inputs (" + t.inputsHash()
                  + "), not of the train inputs with themselves: compute them with Kernels.of(model) "
                  + "applied to the train examples alone");
            }
          } else if (!t.modelHash().equals(reference.modelHash()) || !t.inputsHash().equals(reference.inputsHash())
              || t.dtype() != reference.dtype()) {
            throw new IllegalArgumentException(what + ": the tiles " + k.fileName() + " and "
                + reference.key().fileName() + " belong to different kernels (model, inputs or dtype)");
          }
          if (k.colOffset() < k.rowOffset()) {
            throw new IllegalArgumentException(what + ": the tile " + k.fileName() + " lies below the "
                + "diagonal; the train-train kernel is given by the tiles on and above it, as Kernels.of(model) "
                + "computes them for one collection");
          }
          if (k.rowOffset() + k.rows() > n || k.colOffset() + k.cols() > n) {
            throw new IllegalArgumentException(what + ": the tile " + k.fileName() + " (" + k.rows() + " x "
                + k.cols() + ") lies outside the " + n + " x " + n + " kernel of the " + n + " targets in "
                + yTrain + ": the targets and the train-train tiles do not fit together");
          }
          place(g, k, kernel(t, get, what, "the prediction with " + get));
          if (nngp) {
            place(kdd, k, kernel(t, Get.NNGP.key(), what, "the covariance with the NTK"));
          }
          keys.add(k);
        }
        checkSymmetricComplete(keys, n, what);
        double nll = Double.NaN;
        if (settings.nll()) {
          try (GpPosterior p = GpPosterior.factor(g.copy(), y.data(), outputs, settings.diagReg(), get)) {
            nll = p.nll(y.data());
          }
        }
        ResourceId dir = factorDir == null
            ? BeamFiles.childDirectory(BeamFiles.directory(directory), ".factor")
            : BeamFiles.directory(factorDir);
        DenseMatrix kernel = g;
        g = null;
        FactorFiles.write(dir, local -> {
          write(local, kernel, kdd, y.data(), fxTrain0, outputs, nngp);
          return null;
        });
        c.output(new Factored(dir.toString(), UUID.randomUUID().toString(), n, outputs, y.shape(), nll,
            reference.dtype(), reference.modelHash(), inputs(reference.inputsHash())[0]));
      } finally {
        if (g != null) {
          g.close();
        }
        if (kdd != null) {
          kdd.close();
        }
      }
    }

    /** Factors {@code g} (which it closes) and writes what the later steps read into {@code dir}. */
    private void write(java.nio.file.Path dir, DenseMatrix g, DenseMatrix kdd, double[] y, double[] fxTrain0,
        int outputs, boolean nngp) throws IOException {
      String get = settings.get().key();
      switch (settings.mode()) {
        case CHOLESKY -> {
          try (GpPosterior p = GpPosterior.factor(g, y, outputs, settings.diagReg(), get)) {
            p.write(dir);
          }
          if (nngp) {
            kdd.write(dir.resolve("nngp.f64"));
          }
        }
        case EIGEN -> {
          try (MseDynamics d = MseDynamics.decompose(g, outputs, settings.learningRate(), settings.diagReg(), get);
              DenseMatrix residual = d.residual(fxTrain0, y)) {
            d.write(dir);
            residual.write(dir.resolve("residual.f64"));
            if (nngp) {
              try (DenseMatrix projected = d.projectKernel(kdd)) {
                projected.write(dir.resolve("projected.f64"));
              }
            }
          }
        }
        case ODE -> {
          try (g) {
            g.write(dir.resolve("kernel.f64"));
          }
        }
        default -> throw new IllegalStateException(settings.mode().toString());
      }
    }
  }

  /**
   * Copies the tile {@code key}'s values into the symmetric native matrix {@code m}: the block
   * at its place and, off the diagonal, its transpose.
   */
  static void place(DenseMatrix m, TileKey key, double[] values) {
    long n = m.cols();
    for (int i = 0; i < key.rows(); i++) {
      m.put((key.rowOffset() + i) * n + key.colOffset(), values, i * key.cols(), key.cols());
    }
    if (key.rowOffset() != key.colOffset()) {
      double[] column = new double[key.rows()];
      for (int j = 0; j < key.cols(); j++) {
        for (int i = 0; i < key.rows(); i++) {
          column[i] = values[i * key.cols() + j];
        }
        m.put((key.colOffset() + j) * n + key.rowOffset(), column, 0, key.rows());
      }
    }
  }

  /** What a worker reads once from the factor files, shared by its threads. */
  private static final class Loaded implements AutoCloseable {
    final GpPosterior posterior;
    final MseDynamics dynamics;
    final DenseMatrix residual;
    int users;

    private Loaded(GpPosterior posterior, MseDynamics dynamics, DenseMatrix residual) {
      this.posterior = posterior;
      this.dynamics = dynamics;
      this.residual = residual;
    }

    static Loaded read(Factored f, PredictSettings settings) throws IOException {
      Mode mode = settings.mode();
      ResourceId dir = BeamFiles.directory(f.dir());
      if (mode == Mode.CHOLESKY) {
        return FactorFiles.read(dir, List.of("alpha.f64"),
            local -> new Loaded(GpPosterior.read(local, f.n(), f.outputs(), false), null, null));
      }
      return FactorFiles.read(dir, List.of("eigenvalues.f64", "eigenvectors.f64", "residual.f64"), local -> {
        MseDynamics d = MseDynamics.read(local, f.n(), f.outputs(), settings.get().key());
        try {
          return new Loaded(null, d, DenseMatrix.read(local.resolve("residual.f64"), f.n(), f.outputs()));
        } catch (IOException | RuntimeException e) {
          d.close();
          throw e;
        }
      });
    }

    private static final Map<String, Loaded> LOADED = new HashMap<>();

    static synchronized Loaded acquire(Factored f, PredictSettings settings) throws IOException {
      Loaded l = LOADED.get(f.id());
      if (l == null) {
        l = read(f, settings);
        LOADED.put(f.id(), l);
      }
      l.users++;
      return l;
    }

    static synchronized void release(Factored f) {
      Loaded l = LOADED.get(f.id());
      if (l != null && --l.users == 0) {
        LOADED.remove(f.id());
        l.close();
      }
    }

    @Override
    public void close() {
      if (posterior != null) {
        posterior.close();
      }
      if (dynamics != null) {
        dynamics.close();
      }
      if (residual != null) {
        residual.close();
      }
    }
  }

  /** The kernels a step reads from the test-train tiles. */
  static List<String> testTrainKernels(PredictSettings settings, boolean cov) {
    return needsNngp(settings, cov) ? List.of(settings.get().key(), Get.NNGP.key())
        : List.of(settings.get().key());
  }

  /** The predictions of one block of test rows from its test-train tiles (all {@code N_train} columns). */
  static final class PredictBlockFn<T> extends DoFn<KV<Long, Iterable<T>>, Block> {
    private static final long serialVersionUID = 1L;
    private final TileAccess<T> access;
    private final PredictSettings settings;
    private final PCollectionView<Factored> factor;
    private final boolean cov;
    private transient Factored held;
    private transient Loaded loaded;

    PredictBlockFn(TileAccess<T> access, PredictSettings settings, PCollectionView<Factored> factor, boolean cov) {
      this.access = access;
      this.settings = settings;
      this.factor = factor;
      this.cov = cov;
    }

    @ProcessElement
    public void process(ProcessContext c) throws IOException {
      long rowOffset = c.element().getKey();
      Factored f = c.sideInput(factor);
      String what = access.what();
      Map<TileKey, Tile> tiles = new LinkedHashMap<>();
      String testInputs = null;
      int rows = -1;
      for (T item : c.element().getValue()) { // a group may be iterable only once
        Tile t = access.tile(item);
        TileKey k = t.key();
        if (tiles.put(k, t) != null) {
          throw repeated(k, what);
        }
        String in = testInputs(t, f, what);
        if (testInputs != null && !testInputs.equals(in)) {
          throw new IllegalArgumentException(what + ": the tile " + k.fileName() + " is of other test inputs "
              + "than the tiles before it");
        }
        testInputs = in;
        if (rows >= 0 && k.rows() != rows) {
          throw new IllegalArgumentException(what + ": the tiles of test rows from " + rowOffset
              + " are of different heights (" + rows + " and " + k.rows() + ")");
        }
        rows = k.rows();
        if (k.colOffset() + k.cols() > f.n()) {
          throw new IllegalArgumentException(what + ": the tile " + k.fileName() + " reaches column "
              + (k.colOffset() + k.cols() - 1) + " but there are " + f.n() + " train examples "
              + "(targets): the test-train and train-train tiles do not fit together");
        }
      }
      List<String> names = testTrainKernels(settings, cov);
      Map<String, double[]> k = Bands.assemble(rowOffset + rows, f.n(), false, rowOffset, rows, tiles.keySet(),
          names, key -> {
            Tile t = tiles.get(key);
            for (String name : names) {
              kernel(t, name, what, "the prediction");
            }
            return t;
          }, access.where());
      double[] kGet = k.get(settings.get().key());
      Mode mode = settings.mode();
      double[][] means = new double[settings.times().length][];
      if (mode != Mode.ODE) {
        Loaded l = load(f);
        if (mode == Mode.CHOLESKY) {
          Arrays.fill(means, l.posterior.mean(kGet, rows));
        } else {
          double[] fxTest0 = settings.fxTest0() == null ? null
              : readNpyRows(settings.fxTest0(), rowOffset, rows).data();
          try (DenseMatrix rotated = l.dynamics.rotate(kGet, rows)) {
            for (int i = 0; i < means.length; i++) {
              means[i] = l.dynamics.testOutputs(settings.times()[i], fxTest0, rotated, l.residual);
            }
          }
        }
      }
      boolean keep = cov || mode == Mode.ODE;
      c.output(new Block(rowOffset, rows, means, keep ? kGet : null,
          needsNngp(settings, cov) ? k.get(Get.NNGP.key()) : null, testInputs));
    }

    private Loaded load(Factored f) throws IOException {
      if (held == null || !held.id().equals(f.id())) {
        teardown();
        loaded = Loaded.acquire(f, settings);
        held = f;
      }
      return loaded;
    }

    @Teardown
    public void teardown() {
      if (held != null) {
        Loaded.release(held);
        held = null;
        loaded = null;
      }
    }
  }

  /**
   * The shared tail: gathers the blocks into one element and writes the outputs. {@code testRows}
   * is the number of test rows, or {@code -1} when only the tiles say it.
   */
  static <T> PCollection<String> gatherAndWrite(PCollection<Block> blocks, long testRows,
      PredictSettings settings, String directory, String yTrain, PCollectionView<Factored> factor,
      TileAccess<T> testTest, PCollectionView<List<T>> testTestView) {
    WriteFn<T> write = new WriteFn<>(testRows, settings, yTrain, directory, factor, testTest, testTestView);
    ParDo.SingleOutput<Iterable<Block>, String> writeStep = ParDo.of(write).withSideInputs(factor);
    if (testTestView != null) {
      writeStep = writeStep.withSideInputs(testTestView);
    }
    KvCoder<Integer, Block> coder = KvCoder.of(VarIntCoder.of(), BlockCoder.INSTANCE);
    PCollection<KV<Integer, Block>> keyed = blocks.apply("OneGroup", WithKeys.<Integer, Block>of(0)).setCoder(coder);
    // One block more that holds no rows, so that the group, and the write step, exist even when
    // there are no test-train tiles at all (which the write step then reports).
    PCollection<KV<Integer, Block>> none = blocks.getPipeline()
        .apply("NoRows", Create.of(KV.of(0, NO_ROWS)).withCoder(coder));
    return PCollectionList.of(keyed).and(none)
        .apply("WithNoRows", Flatten.pCollections())
        .apply("GatherBlocks", GroupByKey.create())
        .apply("Blocks", Values.create())
        .apply("Write", writeStep);
  }

  /** Puts the blocks together, adds the covariance or the ODE solution, writes the outputs. */
  static final class WriteFn<T> extends DoFn<Iterable<Block>, String> {
    private static final long serialVersionUID = 1L;
    private final long testRows;
    private final PredictSettings settings;
    private final String yTrain;
    private final String directory;
    private final PCollectionView<Factored> factor;
    private final TileAccess<T> testTest;
    private final PCollectionView<List<T>> testTestView;

    WriteFn(long testRows, PredictSettings settings, String yTrain, String directory,
        PCollectionView<Factored> factor, TileAccess<T> testTest, PCollectionView<List<T>> testTestView) {
      this.testRows = testRows;
      this.settings = settings;
      this.yTrain = yTrain;
      this.directory = directory;
      this.factor = factor;
      this.testTest = testTest;
      this.testTestView = testTestView;
    }

    @ProcessElement
    public void process(ProcessContext c) throws IOException {
      List<Block> blocks = new ArrayList<>();
      for (Block b : c.element()) {
        if (b.rowOffset() >= 0) {
          blocks.add(b);
        }
      }
      if (blocks.isEmpty()) {
        throw new IllegalArgumentException("there are no test-train tiles, so no test row to predict");
      }
      blocks.sort(Comparator.comparingLong(Block::rowOffset));
      Factored f = c.sideInput(factor);
      long next = 0;
      for (Block b : blocks) {
        if (b.rowOffset() != next) {
          throw new IllegalArgumentException(b.rowOffset() < next
              ? "the test-train tiles give test rows from " + b.rowOffset() + " twice"
              : "the test-train tiles give no test rows " + next + ".." + (b.rowOffset() - 1));
        }
        if (!b.testInputs().equals(blocks.get(0).testInputs())) {
          throw new IllegalArgumentException("the test-train tiles of test rows from " + b.rowOffset()
              + " are of other test inputs than those from 0");
        }
        next += b.rows();
      }
      if (testRows >= 0 && next != testRows) {
        throw new IllegalStateException("predicted " + next + " of " + testRows + " test rows");
      }
      int m = Math.toIntExact(next);
      int n = f.n();
      int outputs = f.outputs();
      int times = settings.times().length;
      double[][] means = new double[times][m * outputs];
      boolean cov = testTestView != null;
      boolean keep = cov || settings.mode() == Mode.ODE;
      double[] kGet = keep ? new double[Math.multiplyExact(m, n)] : null;
      double[] kNngp = needsNngp(settings, cov) ? new double[m * n] : kGet;
      for (Block b : blocks) {
        int at = Math.toIntExact(b.rowOffset());
        for (int i = 0; i < times && b.means()[i] != null; i++) {
          System.arraycopy(b.means()[i], 0, means[i], at * outputs, b.means()[i].length);
        }
        if (kGet != null) {
          System.arraycopy(b.testTrainGet(), 0, kGet, at * n, b.testTrainGet().length);
          if (kNngp != kGet) {
            System.arraycopy(b.testTrainNngp(), 0, kNngp, at * n, b.testTrainNngp().length);
          }
        }
      }
      ResourceId dir = BeamFiles.directory(f.dir());
      if (settings.mode() == Mode.ODE) {
        means = integrate(f, dir, kGet, m);
      }
      double[][] covs = cov ? covariances(f, dir, kGet, kNngp, m, c.sideInput(testTestView),
          blocks.get(0).testInputs()) : null;
      long[] meanShape = f.yShape().clone();
      meanShape[0] = m;
      ResourceId out = BeamFiles.directory(directory);
      List<ResourceId> written = new ArrayList<>();
      written.add(PredictionFiles.write(out, "mean.npy", meanShape, means, f.dtype()));
      if (covs != null) {
        written.add(PredictionFiles.write(out, "cov.npy", new long[] {m, m}, covs, f.dtype()));
      }
      if (settings.nll()) {
        written.add(PredictionFiles.write(out, "nll.npy", new long[0], new double[][] {{f.nll()}}, f.dtype()));
      }
      FactorFiles.delete(dir);
      for (ResourceId file : written) {
        c.output(file.toString());
      }
    }

    private double[][] integrate(Factored f, ResourceId dir, double[] kTestTrain, int m) throws IOException {
      int n = f.n();
      double[] y = readNpy(yTrain).data();
      double[] fxTrain0 = initial(settings.fxTrain0(), f.yShape());
      long[] testShape = f.yShape().clone();
      testShape[0] = m;
      double[] fxTest0 = initial(settings.fxTest0(), testShape);
      return FactorFiles.read(dir, List.of("kernel.f64"), local -> {
        try (DenseMatrix dd = DenseMatrix.read(local.resolve("kernel.f64"), n, n);
            DenseMatrix td = DenseMatrix.of(m, n, kTestTrain)) {
          GradientDescent.Outputs[] out = GradientDescent.integrate(Loss.of(settings.loss()), dd, td, y,
              f.outputs(), settings.learningRate(), settings.mass(), fxTrain0, fxTest0, settings.times(), 1e-10,
              settings.maxSteps());
          double[][] means = new double[out.length][];
          for (int i = 0; i < out.length; i++) {
            means[i] = out[i].test();
          }
          return means;
        }
      });
    }

    /** The test-test NNGP ({@code m x m}) from its tiles, checked against the other kernels. */
    private double[] testTestKernel(Factored f, List<T> items, int m, String testInputs) {
      String what = testTest.what();
      Map<TileKey, Tile> tiles = new HashMap<>();
      for (T item : items) {
        Tile t = testTest.tile(item);
        if (tiles.put(t.key(), t) != null) {
          throw repeated(t.key(), what);
        }
        checkAgainstTrain(t, f, what);
        String[] in = inputs(t.inputsHash());
        if (in.length != 1 || !in[0].equals(testInputs)) {
          throw new IllegalArgumentException(what + " are not the kernel of the test inputs of the "
              + "test-train tiles with themselves (their inputs are " + t.inputsHash() + ", the test inputs "
              + testInputs + ")");
        }
        kernel(t, Get.NNGP.key(), what, "the covariance");
        TileKey k = t.key();
        if (k.rowOffset() + k.rows() > m || k.colOffset() + k.cols() > m) {
          throw new IllegalArgumentException(what + ": the tile " + k.fileName() + " lies outside the "
              + m + " x " + m + " kernel of the " + m + " test rows of the test-train tiles");
        }
        if (k.colOffset() < k.rowOffset()) {
          throw new IllegalArgumentException(what + ": the tile " + k.fileName() + " lies below the diagonal; "
              + "the test-test kernel is given by the tiles on and above it");
        }
      }
      checkSymmetricComplete(new ArrayList<>(tiles.keySet()), m, what);
      return Bands.assemble(m, m, true, 0, m, tiles.keySet(), List.of(Get.NNGP.key()), tiles::get,
          testTest.where())
          .get(Get.NNGP.key());
    }

    private double[][] covariances(Factored f, ResourceId dir, double[] kGet, double[] kNngp, int m,
        List<T> testTestItems, String testInputs) throws IOException {
      int n = f.n();
      double[] kTestTest = testTestKernel(f, testTestItems, m, testInputs);
      boolean ntk = settings.get() == Get.NTK;
      double[][] covs = new double[settings.times().length][];
      if (settings.mode() == Mode.CHOLESKY) {
        List<String> names = ntk ? List.of("cholesky.f64", "alpha.f64", "nngp.f64")
            : List.of("cholesky.f64", "alpha.f64");
        return FactorFiles.read(dir, names, local -> {
          try (GpPosterior p = GpPosterior.read(local, n, f.outputs(), true);
              DenseMatrix kdd = ntk ? DenseMatrix.read(local.resolve("nngp.f64"), n, n) : null) {
            Arrays.fill(covs, p.covariance(settings.get(), kdd, kGet, kNngp, kTestTest, m));
          }
          return covs;
        });
      }
      List<String> names = ntk ? List.of("eigenvalues.f64", "eigenvectors.f64", "projected.f64")
          : List.of("eigenvalues.f64", "eigenvectors.f64");
      return FactorFiles.read(dir, names, local -> {
        try (MseDynamics d = MseDynamics.read(local, n, f.outputs(), settings.get().key());
            DenseMatrix rotated = d.rotate(kGet, m);
            DenseMatrix rotatedNngp = ntk ? d.rotate(kNngp, m) : null;
            DenseMatrix projected = ntk ? DenseMatrix.read(local.resolve("projected.f64"), n, n) : null) {
          for (int i = 0; i < covs.length; i++) {
            covs[i] = d.covariance(settings.times()[i], ntk, rotated, ntk ? rotatedNngp : rotated, projected,
                kTestTest, m);
          }
        }
        return covs;
      });
    }
  }
}
