package dev.ntk.transforms;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.io.Npz;
import dev.ntk.kernels.Layer;
import dev.ntk.kernels.Params;
import dev.ntk.kernels.Spec;
import dev.ntk.kernels.Tensors;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.SplittableRandom;

/**
 * Parameters files of finite networks: a numpy {@code .npz} archive ({@link Npz}) with one array
 * per parameter, named {@code <layer path>/W} and {@code <layer path>/b} ({@link Params#named}),
 * the layer path as the model's errors name it ({@code serial[0].Dense}, {@code
 * serial[3].parallel[1].serial[0].Conv}).
 *
 * <ul>
 *   <li>{@code Dense}: {@code W} {@code (in, out)}; {@code Conv} and {@code ConvTranspose}:
 *       {@code W} {@code (*filter_shape, in, out)}; with a bias, {@code b} {@code (out,)}.
 *   <li>Under NTK parameterization the arrays are the N(0, 1) draws, which the layer scales by
 *       {@code W_std / sqrt(fan_in)} and {@code b_std}; under standard parameterization the
 *       weights and biases themselves, with variances {@code W_std^2 / fan_in} and {@code
 *       b_std^2} at initialization. Both are what neural-tangents' {@code init_fn} returns.
 *   <li>float32 or float64, one dtype for the whole file; numpy reads it with {@code
 *       np.load("p.npz")["serial[0].Dense/W"]}.
 * </ul>
 *
 * <pre>{@code
 * Params p = model.init(seed, new Shape(784), manager, DataType.FLOAT64);
 * ParamsFiles.write(model, p, Path.of("p.npz"));
 * Params back = ParamsFiles.read(model, new Shape(784), Path.of("p.npz"), manager, null);
 * }</pre>
 */
public final class ParamsFiles {
  private ParamsFiles() {}

  /** Writes {@code params} of {@code model} to {@code npz}, atomically. */
  public static void write(Layer model, Params params, Path npz) throws IOException {
    Map<String, NpyArray> arrays = new LinkedHashMap<>();
    for (Map.Entry<String, NDArray> e : Params.named(model, params).entrySet()) {
      NDArray a = e.getValue();
      long[] shape = a.getShape().getShape();
      arrays.put(e.getKey(), a.getDataType() == DataType.FLOAT32 ? NpyArray.ofFloats(shape, a.toFloatArray())
          : new NpyArray(shape, NpyDType.FLOAT64, Tensors.toDoubles(a)));
    }
    Npz.write(npz, arrays);
  }

  /**
   * The parameters of {@code model}, for inputs of per-example shape {@code inputShape}, from
   * {@code npz}, as arrays of {@code manager}.
   *
   * @param dtype the arrays' dtype, or null for the file's; a float32 file is read exactly as
   *     float64, but a float64 file is not rounded to float32
   * @throws ParamsFileException naming the array, if the file lacks an array of the model, holds one
   *     the model does not have, or one of another shape, of float64 for float32, of a dtype that
   *     differs from the file's other arrays, or with a non-finite value
   * @throws dev.ntk.kernels.ModelException if the model does not accept {@code inputShape}
   * @throws IOException if the file cannot be read or is not a {@code .npz} of float arrays
   *     ({@link dev.ntk.io.NpyFormatException}, naming the file and entry)
   */
  public static Params read(Layer model, Shape inputShape, Path npz, NDManager manager, DataType dtype)
      throws IOException {
    model.check(inputShape);
    Map<String, NpyArray> file = Npz.read(npz);
    NpyDType fileType = fileType(npz, file);
    DataType type = dtype != null ? dtype : fileType == NpyDType.FLOAT32 ? DataType.FLOAT32 : DataType.FLOAT64;
    if (type != DataType.FLOAT32 && type != DataType.FLOAT64) {
      throw new IllegalArgumentException("dtype must be float32 or float64, got " + type);
    }
    try (NDManager scratch = manager.newSubManager()) {
      // the model's own draw tells every array's name and shape; it is thrown away
      Params template = model.init(new SplittableRandom(0), List.of(Spec.input(inputShape)),
          scratch, type);
      Map<String, NDArray> expected = Params.named(model, template);
      check(npz, model, inputShape, expected, file, type);
      Map<String, NDArray> arrays = new LinkedHashMap<>();
      for (Map.Entry<String, NDArray> e : expected.entrySet()) {
        NpyArray a = file.get(e.getKey());
        arrays.put(e.getKey(), type == DataType.FLOAT32 ? manager.create(a.toFloats(), e.getValue().getShape())
            : manager.create(a.data(), e.getValue().getShape()));
      }
      return template.withArrays(model, arrays);
    }
  }

  /** The one dtype of the file's arrays (float64 for a file without arrays). */
  private static NpyDType fileType(Path npz, Map<String, NpyArray> file) {
    NpyDType type = null;
    String first = null;
    for (Map.Entry<String, NpyArray> e : file.entrySet()) {
      if (type == null) {
        type = e.getValue().dtype();
        first = e.getKey();
      } else if (e.getValue().dtype() != type) {
        throw new ParamsFileException(npz.toString(), e.getKey(), "array " + e.getKey() + " is "
            + e.getValue().dtype().typeName() + " but " + first + " is " + type.typeName()
            + "; a parameters file holds one dtype");
      }
    }
    return type == null ? NpyDType.FLOAT64 : type;
  }

  private static void check(Path npz, Layer model, Shape inputShape, Map<String, NDArray> expected,
      Map<String, NpyArray> file, DataType type) {
    String where = npz.toString();
    String input = " (the model " + model.name() + " on inputs of per-example shape "
        + Npy.shapeString(inputShape.getShape()) + ")";
    List<String> missing = new ArrayList<>(expected.keySet());
    missing.removeAll(file.keySet());
    List<String> names = new ArrayList<>(expected.keySet());
    if (!missing.isEmpty()) {
      throw new ParamsFileException(where, missing.get(0), "missing array " + missing.get(0)
          + (missing.size() > 1 ? " (and " + (missing.size() - 1) + " more: "
              + list(missing.subList(1, missing.size())) + ")" : "") + "; the model's parameters are " + list(names));
    }
    List<String> extra = new ArrayList<>(file.keySet());
    extra.removeAll(expected.keySet());
    if (!extra.isEmpty()) {
      throw new ParamsFileException(where, extra.get(0), "array " + extra.get(0) + " is not a parameter of the model"
          + (extra.size() > 1 ? " (nor " + list(extra.subList(1, extra.size())) + ")" : "")
          + "; its parameters are " + list(names));
    }
    for (Map.Entry<String, NDArray> e : expected.entrySet()) {
      String name = e.getKey();
      NpyArray a = file.get(name);
      long[] shape = e.getValue().getShape().getShape();
      if (!Arrays.equals(a.shape(), shape)) {
        throw new ParamsFileException(where, name, "array " + name + " has shape " + a.shapeString()
            + ", but the model needs " + Npy.shapeString(shape) + input);
      }
      if (type == DataType.FLOAT32 && a.dtype() == NpyDType.FLOAT64) {
        throw new ParamsFileException(where, name, "array " + name + " is float64, but the network is "
            + "float32; rounding is not done silently (compute in float64, or write the file in float32)");
      }
      OptionalLong bad = a.firstNonFinite();
      if (bad.isPresent()) {
        throw new ParamsFileException(where, name, "array " + name + " has the non-finite value "
            + a.value(bad.getAsLong()) + " at flat index " + bad.getAsLong());
      }
    }
  }

  /** Names for a message: the first few, then how many more. */
  private static String list(List<String> names) {
    int shown = Math.min(names.size(), 6);
    String s = String.join(", ", names.subList(0, shown));
    return names.isEmpty() ? "none" : shown < names.size() ? s + ", ... (" + names.size() + " in all)" : s;
  }
}
