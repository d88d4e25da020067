package dev.ntk.transforms;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.io.FileHashes;
import dev.ntk.io.NpyDType;
import dev.ntk.io.TileKey;
import dev.ntk.kernels.EmpiricalKernels;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Layer;
import dev.ntk.kernels.Model;
import dev.ntk.kernels.Params;
import dev.ntk.kernels.Tensors;
import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Optional;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * The empirical kernels of one finite network of a model, as the content of a {@link TileSet}
 * ({@link TileSet#create(EmpiricalTiles, String, String, int, NpyDType, String)}): every tile holds
 * the empirical NNGP and NTK ({@link EmpiricalKernels}, averaged over the output channels) between
 * its input rows, so that the empirical kernels of many inputs are computed over tiles on a
 * runner's workers, resumed and assembled as the infinite-width kernels are.
 *
 * <p>The network's parameters are drawn by the model's {@code init} from {@code seed} on every
 * worker (the same draw as in-process: {@code init} is a function of the seed, the per-example
 * shape and the dtype), or read by each worker from the parameters file {@code params}, which must
 * then be readable at that path where the workers run. The tiles carry {@link #hash()}: the model's
 * hash and the parameters' (the seed, or the file's SHA-256), so that tiles of another network
 * are never reused.
 *
 * @param params the parameters file ({@code .npz}, {@link ParamsFiles}), or {@code null} for {@code seed}
 * @param paramsHash the SHA-256 of {@code params}' bytes, or {@code null}
 */
public record EmpiricalTiles(Model model, String params, String paramsHash, long seed,
    EmpiricalKernels.Implementation implementation) implements Serializable {
  private static final long serialVersionUID = 1L;

  /** The network of {@code model} drawn with {@code seed}. */
  public static EmpiricalTiles drawn(Model model, long seed, EmpiricalKernels.Implementation implementation) {
    return new EmpiricalTiles(model, null, null, seed, implementation);
  }

  /** The network of {@code model} with the parameters in the file {@code params} (hashed now). */
  public static EmpiricalTiles fromFile(Model model, Path params, EmpiricalKernels.Implementation implementation)
      throws IOException {
    Path file = params.toAbsolutePath();
    return new EmpiricalTiles(model, file.toString(), FileHashes.sha256(file), 0, implementation);
  }

  /**
   * What the tiles of this network carry in place of a model hash: the SHA-256 of the model's hash
   * and of the parameters (the implementation is left out: all give the same kernels).
   */
  public String hash() {
    String text = "empirical\nmodel " + model.hash() + "\n"
        + (params == null ? "seed " + seed : "params " + paramsHash) + "\n";
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256")
          .digest(text.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** How the set describes this network in its {@code set.json}. */
  String describe() {
    return (params == null ? "parameters drawn with seed " + seed : "parameters from " + params)
        + ", " + implementation.key() + " NTK";
  }

  /** The function a worker runs for a tile of inputs of {@code featureShape} in {@code dtype}. */
  TileFunction function(long[] featureShape, NpyDType dtype) {
    return new Function(this, featureShape.clone(), dtype);
  }

  /** The network's parameters, drawn or read once per worker, and its empirical kernels per tile. */
  private static final class Function implements TileFunction {
    private static final long serialVersionUID = 1L;

    private final EmpiricalTiles network;
    private final long[] featureShape;
    private final NpyDType dtype;
    private transient NDManager manager;
    private transient Layer layer;
    private transient Params theta;

    Function(EmpiricalTiles network, long[] featureShape, NpyDType dtype) {
      this.network = network;
      this.featureShape = featureShape;
      this.dtype = dtype;
    }

    @Override
    public void setup() {
      manager = Tensors.newManager();
      layer = network.model().layer();
      Shape shape = new Shape(featureShape);
      DataType type = TileComputer.dataType(dtype);
      if (network.params() == null) {
        theta = layer.init(network.seed(), shape, manager, type);
      } else {
        try {
          theta = ParamsFiles.read(layer, shape, Path.of(network.params()), manager, type);
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        }
      }
    }

    @Override
    public SortedMap<String, double[]> compute(TileKey key, double[] a, double[] b) {
      try (NDManager scope = manager.newSubManager()) {
        NDArray x1 = TileComputer.block(scope, a, key.rows(), featureShape, dtype);
        NDArray x2 = b == null ? null : TileComputer.block(scope, b, key.cols(), featureShape, dtype);
        SortedMap<String, double[]> values = new TreeMap<>();
        values.put(Get.NNGP.key(), Tensors.toDoubles(EmpiricalKernels.nngp(layer, theta, x1, x2, true)));
        values.put(Get.NTK.key(), Tensors.toDoubles(
            EmpiricalKernels.ntk(layer, theta, x1, x2, network.implementation(), true)));
        return values;
      }
    }

    /** A finite network has no layer-by-layer kernel to search: its outputs or derivatives overflowed. */
    @Override
    public Optional<String> diagnose(double[] x1Row, double[] x2Row) {
      return Optional.empty();
    }

    @Override
    public void teardown() {
      if (manager != null) {
        manager.close();
        manager = null;
      }
    }
  }
}
