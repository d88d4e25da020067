package dev.ntk.transforms;

import dev.ntk.io.Tile;
import dev.ntk.io.TileFiles;
import dev.ntk.io.TileKey;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.engine.Backend;
import dev.ntk.kernels.predict.ConjugateGradients;
import dev.ntk.transforms.InferenceValues.Block;
import dev.ntk.transforms.InferenceValues.BlockCoder;
import dev.ntk.transforms.InferenceValues.Factored;
import dev.ntk.transforms.InferenceValues.FactoredCoder;
import dev.ntk.transforms.PredictSettings.Mode;
import dev.ntk.transforms.TileAccess.ElementTiles;
import dev.ntk.transforms.TileAccess.FileTiles;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import org.apache.beam.sdk.coders.KvCoder;
import org.apache.beam.sdk.coders.VarIntCoder;
import org.apache.beam.sdk.coders.VarLongCoder;
import org.apache.beam.sdk.transforms.DoFn;
import org.apache.beam.sdk.transforms.GroupByKey;
import org.apache.beam.sdk.transforms.PTransform;
import org.apache.beam.sdk.transforms.ParDo;
import org.apache.beam.sdk.transforms.View;
import org.apache.beam.sdk.transforms.WithKeys;
import org.apache.beam.sdk.transforms.display.DisplayData;
import org.apache.beam.sdk.values.KV;
import org.apache.beam.sdk.values.PBegin;
import org.apache.beam.sdk.values.PCollection;
import org.apache.beam.sdk.values.PCollectionView;
import org.apache.beam.sdk.values.TypeDescriptors;

/**
 * Predictions of the infinite network as a Beam final transform over the kernel tiles: exact GP
 * inference ({@link dev.ntk.kernels.predict.GpPosterior}), gradient descent on MSE in closed form
 * for the ensemble or one network ({@link dev.ntk.kernels.predict.MseDynamics}), or gradient
 * descent on any loss by ODE ({@link dev.ntk.kernels.predict.GradientDescent}), as {@link
 * PredictSettings} says. The tiles come either from {@link TileSet}s (this transform: computed or
 * reused by {@link KernelTiles}, read from their files) or from {@code PCollection}s of {@link
 * Tile}s, such as {@link Kernels} gives ({@link #fromTiles}):
 *
 * <pre>{@code
 * PCollection<Tile> trainTrain = xTrain.apply("TrainTrain", Kernels.of(model));
 * PCollection<Tile> testTrain = xTest.apply("TestTrain", Kernels.of(model).withX2(xTrain));
 * PCollection<Tile> testTest = xTest.apply("TestTest", Kernels.of(model).withGet(Get.NNGP));
 * testTrain.apply("Predict", GpInference.fromTiles(trainTrain, "gs://bucket/y_train.npy", "gs://bucket/out")
 *     .withGet(Get.NTK).withDiagReg(1e-4).withTestTest(testTest));   // mean.npy, cov.npy
 * }</pre>
 *
 * <ol>
 *   <li>the train-train tiles are put into one native matrix tile by tile (never a Java-serialized
 *       element), factored (Cholesky) or decomposed (eigh) once, and the result is written to
 *       files (a directory on any Beam file system); only their small description is a side input,
 *       and each worker JVM reads the files once;
 *   <li>the test-train tiles are grouped by block of test rows; each block's predictions at all
 *       times are computed in parallel;
 *   <li>the blocks are gathered into {@code mean.npy} ({@code (N_test,) + y.shape[1:]}, with a
 *       leading time axis for several times), with a covariance the test-test tiles give {@code
 *       cov.npy}, and with {@code nll} {@code nll.npy} (a scalar).
 * </ol>
 *
 * <p>{@link #withConjugateGradients} solves exact inference's mean by conjugate gradients instead of
 * step 1's factor ({@link dev.ntk.kernels.predict.ConjugateGradients}): the train-train tiles are
 * read from their files, one at a time, once per iteration, and only the solution is written for
 * step 2, so no step holds the {@code n x n} kernel.
 *
 * <p>Emits the files written. The targets, the initial outputs of the settings, the factor files
 * and the outputs go through Beam's {@code FileSystems} ({@link BeamFiles}). Outputs take the
 * train-train tiles' dtype; the solve is float64. A NaN or infinity in a result fails the pipeline
 * rather than reaching a file. Tiles that do not fit together (another model, dtype or inputs, a
 * tile missing or repeated, sizes that disagree with each other or with the targets) fail it with
 * a message naming the kernel and the tile.
 */
public final class GpInference extends PTransform<PBegin, PCollection<String>> {
  private static final long serialVersionUID = 1L;

  private final TileSet trainTrain;
  private final TileSet testTrain;
  private final TileSet testTest;
  private final String yTrain;
  private final PredictSettings settings;
  private final String directory;
  private final Backend backend;
  private final ConjugateGradients.Settings cg;

  private GpInference(TileSet trainTrain, TileSet testTrain, TileSet testTest, String yTrain,
      PredictSettings settings, String directory, Backend backend, ConjugateGradients.Settings cg) {
    this.trainTrain = trainTrain;
    this.testTrain = testTrain;
    this.testTest = testTest;
    this.yTrain = yTrain;
    this.settings = settings;
    this.directory = directory;
    this.backend = backend;
    this.cg = cg;
  }

  /** The same transform with its kernel tiles computed on {@code newBackend} (see {@link KernelTiles}). */
  public GpInference withBackend(Backend newBackend) {
    return new GpInference(trainTrain, testTrain, testTest, yTrain, settings, directory,
        Objects.requireNonNull(newBackend, "backend"), cg);
  }

  /**
   * The same transform solving by {@link ConjugateGradients} with {@code newCg} instead of
   * factoring the train-train kernel: the train-train tiles are read from their files once per
   * iteration, never gathered into one matrix. Only the mean at {@code t = inf} (no covariance,
   * NLL, finite time or ODE).
   */
  public GpInference withConjugateGradients(ConjugateGradients.Settings newCg) {
    checkConjugateGradients(settings, testTest != null);
    return new GpInference(trainTrain, testTrain, testTest, yTrain, settings, directory, backend,
        Objects.requireNonNull(newCg, "conjugate gradients settings"));
  }

  /**
   * Checks that conjugate gradients can give what {@code settings} ask; the message names what they
   * cannot (they solve for the mean of exact inference alone).
   */
  public static void checkConjugateGradients(PredictSettings settings, boolean cov) {
    String why = settings.mode() == Mode.EIGEN ? "finite training times (or initial outputs)"
        : settings.mode() == Mode.ODE ? "gradient descent by ODE" : cov ? "the covariance"
        : settings.nll() ? "the negative log-likelihood" : null;
    if (why != null) {
      throw new IllegalArgumentException("conjugate gradients solve for the mean of exact inference (t = inf) "
          + "only, not " + why + ": solve by Cholesky");
    }
  }

  /** Exact inference ({@code t = inf}); see {@link #of(TileSet, TileSet, TileSet, Path, PredictSettings, Path)}. */
  public static GpInference of(TileSet trainTrain, TileSet testTrain, TileSet testTest, Path yTrain,
      Get get, double diagReg, Path directory) {
    return of(trainTrain, testTrain, testTest, yTrain, PredictSettings.exact(get, diagReg), directory);
  }

  /**
   * Predictions from the tile sets of the train-train kernel ({@code x_train} with itself), the
   * test-train kernel ({@code x_test} against {@code x_train}) and, for a covariance, the test-test
   * kernel ({@code null} for none); results go to the local {@code directory}.
   */
  public static GpInference of(TileSet trainTrain, TileSet testTrain, TileSet testTest, Path yTrain,
      PredictSettings settings, Path directory) {
    return to(trainTrain, testTrain, testTest, yTrain.toAbsolutePath().toString(), settings,
        directory.toAbsolutePath().toString());
  }

  /**
   * {@link #of(TileSet, TileSet, TileSet, Path, PredictSettings, Path)} with the targets and the
   * output directory as paths or URIs of any Beam file system ({@code gs://bucket/run}).
   */
  public static GpInference to(TileSet trainTrain, TileSet testTrain, TileSet testTest, String yTrain,
      PredictSettings settings, String directory) {
    if (!trainTrain.x1WithItself() || testTrain.x1WithItself() || (testTest != null && !testTest.x1WithItself())) {
      throw new IllegalArgumentException("expected train-train and test-test kernels of one input each "
          + "and a test-train kernel between two");
    }
    if (testTrain.n2() != trainTrain.n1() || (testTest != null && testTest.n1() != testTrain.n1())) {
      throw new IllegalArgumentException("the tile sets do not fit together: " + trainTrain + ", "
          + testTrain + ", " + testTest);
    }
    checkCovariance(settings, testTest != null);
    return new GpInference(trainTrain, testTrain, testTest, nonBlank(yTrain, "targets"),
        Objects.requireNonNull(settings, "settings"), nonBlank(directory, "output directory"), Backend.AUTO, null);
  }

  /**
   * Predictions from tiles in {@code PCollection}s, applied to the test-train tiles ({@link
   * Kernels} applied to the test examples {@code withX2} the train examples); {@code trainTrain}
   * are the tiles of the train examples with themselves ({@link Kernels} applied to them alone),
   * {@code yTrain} the targets ({@code .npy}, {@code (N_train, ...)}, a path or URI) and {@code
   * directory} where the outputs go. Exact inference with the NTK and a diagonal regularizer of
   * {@code 1e-4} until configured otherwise; no covariance without {@link FromTiles#withTestTest}.
   */
  public static FromTiles fromTiles(PCollection<Tile> trainTrain, String yTrain, String directory) {
    String dir = nonBlank(directory, "output directory");
    return new FromTiles(Objects.requireNonNull(trainTrain, "trainTrain"), null, nonBlank(yTrain, "targets"),
        dir, null, PredictSettings.exact(Get.NTK, 1e-4));
  }

  private static String nonBlank(String s, String what) {
    if (s == null || s.isBlank()) {
      throw new IllegalArgumentException("the " + what + " is empty");
    }
    return s;
  }

  private static void checkCovariance(PredictSettings settings, boolean cov) {
    if (cov && (settings.mode() == Mode.ODE || settings.singleNetwork())) {
      throw new IllegalArgumentException("a covariance is that of the infinite ensemble under MSE: "
          + "not with initial outputs, another loss or momentum");
    }
  }

  @Override
  public PCollection<String> expand(PBegin begin) {
    TileFiles.checkJvmFlags("GpInference");
    boolean cov = testTest != null;
    String store = trainTrain.directory().substring(0, trainTrain.directory().lastIndexOf('/') + 1);
    String factorDir = BeamFiles.childDirectory(BeamFiles.directory(store), "factor").toString();
    DoFn<KV<Integer, Iterable<TileKey>>, Factored> solve = cg == null
        ? new FactorFn<>(new FileTiles(trainTrain, "train-train"), yTrain, settings, cov, factorDir, directory)
        : new CgFn(trainTrain, yTrain, settings, cg, factorDir, directory, backend);
    PCollection<TileKey> trainTrainKeys = begin.apply("TrainTrainTiles",
        KernelTiles.of(trainTrain).withBackend(backend).withRole("train-train"));
    PCollection<TileKey> testTrainKeys = begin.apply("TestTrainTiles",
        KernelTiles.of(testTrain).withBackend(backend).withRole("test-train"));
    PCollection<TileKey> testTestKeys = cov ? begin.apply("TestTestTiles",
        KernelTiles.of(testTest).withBackend(backend).withRole("test-test")) : null;
    return graph(trainTrainKeys, testTrainKeys, testTestKeys, TileKeyCoder.of(),
        cg == null ? "Factor" : "ConjugateGradients", solve, new FileTiles(testTrain, "test-train"),
        cov ? new FileTiles(testTest, "test-test") : null, testTrain.n1(), settings, directory, yTrain);
  }

  /**
   * The inference graph of both APIs, over tiles as keys of tile files ({@link FileTiles}) or as
   * elements ({@link ElementTiles}): the train-train tiles gathered and solved by {@code solve}
   * ({@link FactorFn}, or {@link CgFn} on tile files) into a side input, the test-train tiles
   * grouped by block of test rows and predicted ({@link PredictBlockFn}), the test-test tiles (or
   * {@code null}: no covariance) a side input of the step that writes the outputs ({@link WriteFn}).
   * {@code testRows} is the number of test rows, or {@code -1} when only the tiles say it.
   */
  private static <T> PCollection<String> graph(PCollection<T> trainTrain, PCollection<T> testTrain,
      PCollection<T> testTest, org.apache.beam.sdk.coders.Coder<T> coder, String solveName,
      DoFn<KV<Integer, Iterable<T>>, Factored> solve, TileAccess<T> testTrainAccess, TileAccess<T> testTestAccess,
      long testRows, PredictSettings settings, String directory, String yTrain) {
    boolean cov = testTest != null;
    PCollectionView<Factored> factor = trainTrain
        .apply("OneTrainGroup", WithKeys.<Integer, T>of(0))
        .setCoder(KvCoder.of(VarIntCoder.of(), coder))
        .apply("GatherTrainTrain", GroupByKey.create())
        .apply(solveName, ParDo.of(solve))
        .setCoder(FactoredCoder.INSTANCE)
        .apply("FactorView", View.asSingleton());
    PCollection<Block> blocks = testTrain
        .apply("ByTestBlock", WithKeys.of((T t) -> testTrainAccess.key(t).rowOffset())
            .withKeyType(TypeDescriptors.longs()))
        .setCoder(KvCoder.of(VarLongCoder.of(), coder))
        .apply("GroupTestBlock", GroupByKey.create())
        .apply("PredictBlocks", ParDo.of(new PredictBlockFn<>(testTrainAccess, settings, factor, cov))
            .withSideInputs(factor))
        .setCoder(BlockCoder.INSTANCE);
    PCollectionView<List<T>> testTestView = cov ? testTest.apply("TestTestView", View.asList()) : null;
    return WriteFn.gatherAndWrite(blocks, testRows, settings, directory, yTrain, factor,
        cov ? testTestAccess : null, testTestView);
  }

  @Override
  public void populateDisplayData(DisplayData.Builder builder) {
    super.populateDisplayData(builder);
    builder.add(DisplayData.item("trainTrain", trainTrain.toString()).withLabel("Train-train tile set"))
        .add(DisplayData.item("testTrain", testTrain.toString()).withLabel("Test-train tile set"))
        .addIfNotNull(DisplayData.item("testTest", testTest == null ? null : testTest.toString())
            .withLabel("Test-test tile set"))
        .add(DisplayData.item("backend", backend.key()).withLabel("Kernel backend"))
        .add(DisplayData.item("solver", cg == null ? "cholesky" : "conjugate gradients " + cg)
            .withLabel("Exact inference by"));
    displaySettings(builder, settings, yTrain, directory);
  }

  private static void displaySettings(DisplayData.Builder builder, PredictSettings settings, String yTrain,
      String directory) {
    builder.add(DisplayData.item("yTrain", yTrain).withLabel("Targets"))
        .add(DisplayData.item("directory", directory).withLabel("Output directory"))
        .add(DisplayData.item("get", settings.get().key()).withLabel("Kernel"))
        .add(DisplayData.item("diagReg", settings.diagReg()).withLabel("Diagonal regularizer"))
        .add(DisplayData.item("times", Arrays.toString(settings.times())).withLabel("Training times"))
        .add(DisplayData.item("mode", settings.mode().toString()).withLabel("Solver"));
  }

  /**
   * {@link GpInference} from tiles in {@code PCollection}s ({@link #fromTiles}), applied to the
   * test-train tiles. Immutable: each {@code withX} returns a new transform.
   */
  public static final class FromTiles extends PTransform<PCollection<Tile>, PCollection<String>> {
    private static final long serialVersionUID = 1L;
    private final transient PCollection<Tile> trainTrain;
    private final transient PCollection<Tile> testTest;
    private final String yTrain;
    private final String directory;
    private final String factorDirectory;
    private final PredictSettings settings;

    private FromTiles(PCollection<Tile> trainTrain, PCollection<Tile> testTest, String yTrain, String directory,
        String factorDirectory, PredictSettings settings) {
      this.trainTrain = trainTrain;
      this.testTest = testTest;
      this.yTrain = yTrain;
      this.directory = directory;
      this.factorDirectory = factorDirectory;
      this.settings = settings;
    }

    /** What to predict and how ({@link PredictSettings}): times, learning rate, loss, initial outputs... */
    public FromTiles withSettings(PredictSettings newSettings) {
      return new FromTiles(trainTrain, testTest, yTrain, directory, factorDirectory,
          Objects.requireNonNull(newSettings, "settings"));
    }

    /** The kernel the prediction uses: {@code NTK} (the default) or {@code NNGP}. */
    public FromTiles withGet(Get get) {
      PredictSettings s = settings;
      return withSettings(new PredictSettings(Objects.requireNonNull(get, "get"), s.diagReg(), s.times(),
          s.learningRate(), s.loss(), s.mass(), s.fxTrain0(), s.fxTest0(), s.nll(), s.maxSteps()));
    }

    /** The relative diagonal regularizer of the train-train kernel (default {@code 1e-4}). */
    public FromTiles withDiagReg(double diagReg) {
      PredictSettings s = settings;
      return withSettings(new PredictSettings(s.get(), diagReg, s.times(), s.learningRate(), s.loss(), s.mass(),
          s.fxTrain0(), s.fxTest0(), s.nll(), s.maxSteps()));
    }

    /**
     * The test-test tiles ({@link Kernels} applied to the test examples alone, with the NNGP), for
     * the predictive covariance {@code cov.npy}.
     */
    public FromTiles withTestTest(PCollection<Tile> newTestTest) {
      return new FromTiles(trainTrain, Objects.requireNonNull(newTestTest, "testTest"), yTrain, directory,
          factorDirectory, settings);
    }

    /**
     * Where the factored train side is kept while the pipeline runs (default {@code
     * <directory>/.factor/}, removed at the end); workers read it, so on a cluster it must be on a
     * file system they share.
     */
    public FromTiles withFactorDirectory(String newFactorDirectory) {
      return new FromTiles(trainTrain, testTest, yTrain, directory,
          nonBlank(newFactorDirectory, "factor directory"), settings);
    }

    @Override
    public PCollection<String> expand(PCollection<Tile> testTrain) {
      boolean cov = testTest != null;
      checkCovariance(settings, cov);
      return graph(trainTrain, testTrain, testTest, TileCoder.of(), "Factor",
          new FactorFn<>(new ElementTiles("train-train"), yTrain, settings, cov, factorDirectory, directory),
          new ElementTiles("test-train"), cov ? new ElementTiles("test-test") : null, -1, settings, directory,
          yTrain);
    }

    @Override
    public void populateDisplayData(DisplayData.Builder builder) {
      super.populateDisplayData(builder);
      displaySettings(builder, settings, yTrain, directory);
      String factor = factorDirectory != null ? factorDirectory
          : directory + (directory.endsWith("/") ? "" : "/") + ".factor/";
      builder.add(DisplayData.item("factorDirectory", factor).withLabel("Factor directory"))
          .add(DisplayData.item("covariance", testTest != null).withLabel("Predictive covariance"));
    }
  }
}
