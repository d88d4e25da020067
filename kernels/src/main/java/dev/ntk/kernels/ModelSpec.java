package dev.ntk.kernels;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Reads and writes JSON model files (see {@code MODEL_SPEC.md}): a layer is an object with one
 * key, the layer name, whose value holds its keyword arguments ({@code {"Dense": {"out_dim":
 * 512}}}); {@code serial} and {@code parallel} take a list of layers.
 *
 * <p>Errors name the offending layer by its path in the file, for example {@code serial[3].Erf:
 * unknown argument "bb" (expected one of: a, b, c)}.
 */
public final class ModelSpec {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Set<String> SUPPORTED = new TreeSet<>(List.of(
      "serial", "parallel", "FanOut", "FanInSum", "FanInProd", "FanInConcat", "Dense", "Relu",
      "LeakyRelu", "Abs", "ABRelu", "Erf", "Identity", "Flatten"));
  private static final Set<String> PLANNED = Set.of(
      "Conv", "AvgPool", "SumPool", "GlobalAvgPool", "GlobalSumPool", "Dropout", "LayerNorm",
      "GlobalSelfAttention", "Gelu", "Sin", "Cos", "Exp", "Sign", "Rbf", "Elementwise");

  private ModelSpec() {}

  /** Reads a model file; a problem with the file or its content is a {@link ModelException}. */
  public static Layer read(Path file) {
    String text;
    try {
      text = Files.readString(file, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new ModelException("", "cannot read model file " + file + ": " + e.getMessage());
    }
    try {
      return parse(text);
    } catch (ModelException e) {
      throw new ModelException("", file + ": " + e.getMessage());
    }
  }

  /** Parses a model from its JSON text. */
  public static Layer parse(String json) {
    JsonNode root;
    try {
      root = JSON.readTree(json);
    } catch (JsonProcessingException e) {
      var loc = e.getLocation();
      throw new ModelException("", "malformed JSON"
          + (loc == null ? "" : " at line " + loc.getLineNr() + ", column " + loc.getColumnNr())
          + ": " + e.getOriginalMessage());
    }
    if (root == null || root.isMissingNode()) {
      throw new ModelException("", "the model file is empty");
    }
    return layer(root, null);
  }

  /** The canonical JSON text of a model: stable across runs, so it can be hashed. */
  public static String toJson(Layer layer) {
    try {
      return JSON.writeValueAsString(node(layer));
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  /** A SHA-256 hex digest of {@link #toJson}, identifying the model in tile files. */
  public static String hash(Layer layer) {
    try {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      return HexFormat.of().formatHex(md.digest(toJson(layer).getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static JsonNode node(Layer layer) {
    ObjectNode out = JsonNodeFactory.instance.objectNode();
    if (layer instanceof Branching.Serial || layer instanceof Branching.Parallel) {
      ArrayNode children = out.putArray(layer.name());
      for (Layer child : layer.children()) {
        children.add(node(child));
      }
      return out;
    }
    ObjectNode args = out.putObject(layer.name());
    for (Map.Entry<String, Object> e : layer.arguments().entrySet()) {
      args.set(e.getKey(), JSON.valueToTree(e.getValue()));
    }
    return out;
  }

  private static Layer layer(JsonNode node, String parentPath) {
    String where = parentPath == null ? "" : parentPath;
    if (!node.isObject() || node.size() != 1) {
      throw new ModelException(where, "a layer must be an object with exactly one key, the layer "
          + "name (for example {\"Relu\": {}}), got " + abbreviate(node));
    }
    String name = node.fieldNames().next();
    String path = parentPath == null ? name : parentPath + "." + name;
    JsonNode value = node.get(name);
    if (!SUPPORTED.contains(name)) {
      if (PLANNED.contains(name)) {
        throw new ModelException(path, "layer " + name + " is part of the model format but not "
            + "supported by this version yet");
      }
      throw new ModelException(path, "unknown layer \"" + name + "\" (known layers: "
          + String.join(", ", SUPPORTED) + ")");
    }
    if (name.equals("serial") || name.equals("parallel")) {
      if (!value.isArray() || value.isEmpty()) {
        throw new ModelException(path, name + " takes a non-empty list of layers, got "
            + abbreviate(value));
      }
      List<Layer> children = new ArrayList<>();
      for (int i = 0; i < value.size(); i++) {
        children.add(layer(value.get(i), path + "[" + i + "]"));
      }
      return name.equals("serial") ? new Branching.Serial(children) : new Branching.Parallel(children);
    }
    Args args = new Args(value, path);
    Layer layer = switch (name) {
      case "FanOut" -> new Branching.FanOut(args.positiveInt("num", 2));
      case "FanInSum" -> new Branching.FanInSum();
      case "FanInProd" -> new Branching.FanInProd();
      case "FanInConcat" -> new Branching.FanInConcat(args.integer("axis", -1));
      case "Dense" -> new Linear.Dense(args.positiveInt("out_dim", 1), args.number("W_std", 1.0),
          args.nullableNumber("b_std"), Linear.Parameterization.valueOf(
              args.choice("parameterization", "ntk", "ntk", "standard").toUpperCase(Locale.ROOT)));
      case "Relu" -> Elementwise.ABRelu.relu();
      case "LeakyRelu" -> Elementwise.ABRelu.leakyRelu(args.number("alpha", 0.01));
      case "Abs" -> Elementwise.ABRelu.abs();
      case "ABRelu" -> Elementwise.ABRelu.abRelu(args.requiredNumber("a"), args.requiredNumber("b"));
      case "Erf" -> new Elementwise.Erf(args.number("a", 1.0), args.number("b", 1.0), args.number("c", 0.0));
      case "Identity" -> new Linear.Identity();
      case "Flatten" -> new Linear.Flatten();
      default -> throw new IllegalStateException("no parser for " + name);
    };
    args.checkAllUsed();
    return layer;
  }

  private static String abbreviate(JsonNode node) {
    String s = node.toString();
    return s.length() > 60 ? s.substring(0, 57) + "..." : s;
  }

  /** The keyword arguments of one layer, checked for type and for unknown names. */
  private static final class Args {
    private final JsonNode node;
    private final String path;
    private final Set<String> known = new LinkedHashSet<>();

    Args(JsonNode node, String path) {
      if (!node.isObject()) {
        throw new ModelException(path, "arguments must be an object such as {}, got " + abbreviate(node));
      }
      this.node = node;
      this.path = path;
    }

    private JsonNode get(String key) {
      known.add(key);
      return node.get(key);
    }

    double number(String key, double defaultValue) {
      JsonNode v = get(key);
      if (v == null) {
        return defaultValue;
      }
      if (!v.isNumber()) {
        throw typeError(key, "a number", v);
      }
      return v.doubleValue();
    }

    double requiredNumber(String key) {
      if (node.get(key) == null) {
        throw new ModelException(path, "missing required argument \"" + key + "\"");
      }
      return number(key, Double.NaN);
    }

    Double nullableNumber(String key) {
      JsonNode v = get(key);
      if (v == null || v.isNull()) {
        return null;
      }
      if (!v.isNumber()) {
        throw typeError(key, "a number or null", v);
      }
      return v.doubleValue();
    }

    int integer(String key, int defaultValue) {
      return integer(key, defaultValue, Integer.MIN_VALUE, "an integer");
    }

    int positiveInt(String key, int defaultValue) {
      return integer(key, defaultValue, 1, "a positive integer");
    }

    private int integer(String key, int defaultValue, int min, String expected) {
      JsonNode v = get(key);
      if (v == null) {
        return defaultValue;
      }
      if (!v.isIntegralNumber() || !v.canConvertToInt() || v.intValue() < min) {
        throw typeError(key, expected, v);
      }
      return v.intValue();
    }

    String choice(String key, String defaultValue, String... options) {
      JsonNode v = get(key);
      if (v == null) {
        return defaultValue;
      }
      if (v.isTextual()) {
        for (String o : options) {
          if (o.equalsIgnoreCase(v.textValue())) {
            return o;
          }
        }
      }
      throw typeError(key, "one of \"" + String.join("\", \"", options) + "\"", v);
    }

    void checkAllUsed() {
      Iterator<String> names = node.fieldNames();
      while (names.hasNext()) {
        String name = names.next();
        if (!known.contains(name)) {
          throw new ModelException(path, "unknown argument \"" + name + "\""
              + (known.isEmpty() ? " (this layer takes no arguments)"
                  : " (expected one of: " + String.join(", ", known) + ")"));
        }
      }
    }

    private ModelException typeError(String key, String expected, JsonNode got) {
      return new ModelException(path, "argument \"" + key + "\" must be " + expected + ", got "
          + abbreviate(got));
    }
  }
}
