package dev.ntk.kernels;

import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ObjectStreamException;
import java.io.Serial;
import java.io.Serializable;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * A model as a job carries it: the layer tree, its canonical JSON and that JSON's hash, computed
 * once when the model is read. Serialized it is its canonical JSON alone (a Beam DoFn or tile set
 * holding a model stays small and readable); a JVM that deserializes a model it has seen before
 * gets that model back rather than parsing the JSON again, so a job parses its model once per JVM.
 *
 * <p>{@link #plan} compiles the model once per JVM for each example shape, dtype and choice of
 * kernels: the workers and DoFns of one JVM share their plans.
 *
 * <pre>{@code
 * Model model = Model.read(Path.of("model.json"));
 * Plan plan = model.plan(new Shape(784), DataType.FLOAT32, EnumSet.allOf(Get.class));
 * String id = model.hash();     // names the model in tile files
 * }</pre>
 */
public final class Model implements Serializable {
  @Serial
  private static final long serialVersionUID = 1L;

  /** How many models (by canonical JSON) and plans a JVM keeps; a job holds a few. */
  private static final int KEPT = 64;

  /** The models this JVM has parsed, by canonical JSON and by the text they were parsed from. */
  private static final Map<String, Model> MODELS = lru();

  /** The plans this JVM has compiled. */
  private static final Map<PlanKey, Plan> PLANS = lru();

  private final String json;
  private final transient Layer layer;
  private final transient String hash;

  private Model(Layer layer, String json) {
    this.layer = layer;
    this.json = json;
    this.hash = ModelSpec.hash(json);
  }

  /** The model of {@code layer}. */
  public static Model of(Layer layer) {
    Objects.requireNonNull(layer, "layer");
    String json = ModelSpec.toJson(layer);
    synchronized (MODELS) {
      return MODELS.computeIfAbsent(json, j -> new Model(layer, j));
    }
  }

  /**
   * The model of a JSON text ({@code MODEL_SPEC.md}), parsed unless this JVM has parsed the same
   * text before; a problem with it is a {@link ModelException} naming the layer.
   */
  public static Model parse(String text) {
    Objects.requireNonNull(text, "json");
    synchronized (MODELS) {
      Model known = MODELS.get(text);
      if (known != null) {
        return known;
      }
    }
    Model model = of(ModelSpec.parse(text));
    synchronized (MODELS) {
      MODELS.put(text, model);
    }
    return model;
  }

  /** The model in a JSON file; a problem with the file or its content is a {@link ModelException}. */
  public static Model read(Path file) {
    String text = ModelSpec.readText(file);
    try {
      return parse(text);
    } catch (ModelException e) {
      throw new ModelException("", file + ": " + e.getMessage());
    }
  }

  /** The layer tree. */
  public Layer layer() {
    return layer;
  }

  /** The canonical JSON text ({@link ModelSpec#toJson}): stable across runs and JVMs. */
  public String json() {
    return json;
  }

  /** The SHA-256 hex digest of {@link #json}, which names the model in tile files. */
  public String hash() {
    return hash;
  }

  /**
   * The plan of this model for examples of shape {@code perExample} in {@code dtype}, computing
   * {@code gets}: compiled on the first call in this JVM with these arguments, the same plan after.
   */
  public Plan plan(Shape perExample, DataType dtype, Set<Get> gets) {
    return plan(perExample, dtype, gets, Spatial.REDUCED, null);
  }

  /**
   * As {@link #plan(Shape, DataType, Set)}, with kernels that keep the spatial axes of the model's
   * last layer as {@code spatial} says ({@link Plan#compile(Layer, Shape, Set, Spatial)}).
   */
  public Plan plan(Shape perExample, DataType dtype, Set<Get> gets, Spatial spatial) {
    return plan(perExample, dtype, gets, spatial, null);
  }

  /**
   * As {@link #plan(Shape, DataType, Set)}, for inputs masked with {@code maskConstant} (null: none;
   * {@link Plan#compile(Layer, Shape, Set, Double)}).
   */
  public Plan plan(Shape perExample, DataType dtype, Set<Get> gets, Double maskConstant) {
    return plan(perExample, dtype, gets, Spatial.REDUCED, maskConstant);
  }

  /**
   * As {@link #plan(Shape, DataType, Set, Spatial)} for inputs masked with {@code maskConstant} (null:
   * none; {@link Plan#compile(Layer, Shape, Set, Spatial, Double)}).
   */
  public Plan plan(Shape perExample, DataType dtype, Set<Get> gets, Spatial spatial, Double maskConstant) {
    PlanKey key = new PlanKey(hash, perExample, dtype, Get.setOf(gets), spatial, maskConstant);
    synchronized (PLANS) {
      Plan plan = PLANS.get(key);
      if (plan != null) {
        return plan;
      }
    }
    // compiled outside the lock: plans of other models need not wait for this one
    Plan plan = Plan.compile(layer, perExample, gets, spatial, maskConstant);
    synchronized (PLANS) {
      return PLANS.computeIfAbsent(key, k -> plan);
    }
  }

  /**
   * This model with {@code out_dim = width} in every {@code Dense} layer and {@code out_chan =
   * width} in every {@code Conv}, {@code ConvTranspose} and {@code ConvLocal}: the same
   * infinite-width kernels, a finite network of another width. With {@code keepReadout} the last
   * of them in file order (the readout, whose outputs training compares with the targets) keeps
   * its width.
   */
  public Model withWidth(int width, boolean keepReadout) {
    int[] widths = new int[widthLayers()];
    Arrays.fill(widths, width);
    if (keepReadout && widths.length > 0) {
      widths[widths.length - 1] = -1;
    }
    return withWidths(widths);
  }

  /**
   * This model with the widths {@code widths[i]} ({@code out_dim} of a {@code Dense}, {@code
   * out_chan} of a {@code Conv}, {@code ConvTranspose} or {@code ConvLocal}) for its {@link
   * #widthLayers} layers in file order; a negative width keeps that layer's own.
   *
   * <p>Widths that do not fit together (a {@code FanInSum} of branches of different widths) are
   * found, with the layer's path, when the model is checked against its inputs ({@link Layer#check}).
   *
   * @throws IllegalArgumentException when {@code widths} has not one width per such layer, or one is 0
   */
  public Model withWidths(int... widths) {
    JsonNode root = ModelSpec.tree(json);
    List<Map.Entry<String, ObjectNode>> affine = new ArrayList<>();
    affineLayers(root, affine);
    if (widths.length != affine.size()) {
      throw new IllegalArgumentException(widths.length + " width" + (widths.length == 1 ? "" : "s") + " for a model"
          + " with " + affine.size() + " Dense, Conv, ConvTranspose and ConvLocal layer"
          + (affine.size() == 1 ? "" : "s")
          + " (one width each, in file order)");
    }
    for (int i = 0; i < widths.length; i++) {
      if (widths[i] == 0) {
        throw new IllegalArgumentException("widths must be at least 1, got 0 for layer " + i + " ("
            + affine.get(i).getKey() + ")");
      }
      if (widths[i] > 0) {
        affine.get(i).getValue().put(affine.get(i).getKey().equals("Dense") ? "out_dim" : "out_chan", widths[i]);
      }
    }
    return parse(root.toString());
  }

  /**
   * How many layers have a width ({@code Dense}, {@code Conv}, {@code ConvTranspose}, {@code
   * ConvLocal}): the widths {@link #withWidths} takes.
   */
  public int widthLayers() {
    List<Map.Entry<String, ObjectNode>> affine = new ArrayList<>();
    affineLayers(ModelSpec.tree(json), affine);
    return affine.size();
  }

  /** The Dense, Conv, ConvTranspose and ConvLocal layers under {@code node} with their arguments, in file order. */
  private static void affineLayers(JsonNode node, List<Map.Entry<String, ObjectNode>> out) {
    if (node instanceof ObjectNode o) {
      for (Map.Entry<String, JsonNode> field : o.properties()) {
        String name = field.getKey();
        boolean affine = name.equals("Dense") || name.equals("Conv") || name.equals("ConvTranspose")
            || name.equals("ConvLocal");
        if (affine && field.getValue() instanceof ObjectNode args) {
          out.add(Map.entry(name, args));
        } else {
          affineLayers(field.getValue(), out);
        }
      }
    } else if (node.isArray()) {
      node.forEach(child -> affineLayers(child, out));
    }
  }

  /**
   * A compiled plan's identity: the model, the example shape, the dtype, the kernels, their spatial
   * axes and the mask constant.
   */
  private record PlanKey(String hash, Shape perExample, DataType dtype, Set<Get> gets, Spatial spatial,
      Double maskConstant) {}

  /** How many model texts this JVM has parsed ({@link ModelSpec#parse} calls); for tests. */
  public static long parses() {
    return ModelSpec.PARSES.get();
  }

  @Serial
  private Object readResolve() throws ObjectStreamException {
    return parse(json);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Model m && m.json.equals(json);
  }

  @Override
  public int hashCode() {
    return json.hashCode();
  }

  @Override
  public String toString() {
    return "Model[" + hash.substring(0, 12) + ": " + (json.length() > 80 ? json.substring(0, 77) + "..." : json) + "]";
  }

  private static <K, V> Map<K, V> lru() {
    return new LinkedHashMap<>(16, 0.75f, true) {
      @Override
      protected boolean removeEldestEntry(Map.Entry<K, V> eldest) {
        return size() > KEPT;
      }
    };
  }
}
