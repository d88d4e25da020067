package dev.ntk.kernels;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonStreamContext;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayDeque;
import java.util.HexFormat;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Reads and writes JSON model files (see {@code MODEL_SPEC.md}): a layer is an object with one
 * key, the layer name, whose value holds its keyword arguments ({@code {"Dense": {"out_dim":
 * 512}}}); {@code serial} and {@code parallel} take a list of layers, {@code repeat} a layer among
 * its arguments ({@code {"repeat": {"layer": {...}, "n": 5}}}).
 *
 * <p>Errors name the offending layer by its path in the file, for example {@code serial[3].Erf:
 * unknown argument "bb" (expected one of: a, b, c)}.
 */
public final class ModelSpec {
  private static final ObjectMapper JSON = new ObjectMapper();
  /**
   * The reader of model files: a key given twice in one object (two layer names, an argument
   * twice) or text after the model is an error, not a silent choice of one of them.
   */
  private static final ObjectMapper STRICT = JsonMapper.builder()
      .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
      .build();
  private ModelSpec() {}

  /** How many times {@link #parse} has run in this JVM ({@link Model#parses}). */
  static final AtomicLong PARSES = new AtomicLong();

  /** Reads a model file; a problem with the file or its content is a {@link ModelException}. */
  public static Layer read(Path file) {
    String text = readText(file);
    try {
      return parse(text);
    } catch (ModelException e) {
      throw new ModelException("", file + ": " + e.getMessage());
    }
  }

  /** A model file's text; a file that cannot be read is a {@link ModelException}. */
  static String readText(Path file) {
    try {
      return Files.readString(file, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new ModelException("", "cannot read model file " + file + ": " + e.getMessage());
    }
  }

  /**
   * Initializes the JSON readers and writers of this class (Jackson's classes, its tree parser and
   * the serializers of argument values) on a tiny document, touching no layer: the command line
   * calls it on a thread of its own at start-up, so that this part of the first model's parse, a
   * few hundred milliseconds of class loading and initialization in a new JVM, runs beside the
   * command line's own set-up instead of after it.
   */
  public static void warmUp() {
    try {
      JsonNode node;
      try (JsonParser parser = STRICT.createParser("{\"a\": [1, 2.5, \"s\", true, null, {}]}")) {
        node = STRICT.readTree(parser);
        parser.currentLocation();
      }
      ObjectNode out = JsonNodeFactory.instance.objectNode();
      out.set("a", node);
      out.set("b", JSON.valueToTree(java.util.List.of(1, 2.5, "s", true)));
      JSON.writeValueAsString(out);
    } catch (IOException e) {
      throw new UncheckedIOException(e); // reading a String does no I/O
    }
  }

  /** The JSON tree of a canonical model text ({@link #toJson}), to be edited and parsed again. */
  static JsonNode tree(String canonicalJson) {
    try {
      return JSON.readTree(canonicalJson);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("a canonical model text that is not JSON: " + e.getMessage(), e);
    }
  }

  /** Parses a model from its JSON text. */
  public static Layer parse(String json) {
    PARSES.incrementAndGet();
    JsonNode root;
    try {
      try (JsonParser parser = STRICT.createParser(json)) {
        root = STRICT.readTree(parser);
        int end = (int) parser.currentLocation().getCharOffset();
        trailing(json, end);
      }
    } catch (JsonProcessingException e) {
      var loc = e.getLocation();
      String where = loc == null ? "" : " at line " + loc.getLineNr() + ", column " + loc.getColumnNr();
      String message = e.getOriginalMessage();
      if (message.startsWith("Duplicate field")) {
        String key = message.substring("Duplicate field ".length()).replace('\'', '"');
        throw new ModelException(jsonPath(e), "key " + key + " appears twice in one object" + where
            + " (a layer is an object with exactly one key, and each argument is given once)");
      }
      throw new ModelException("", "malformed JSON" + where + ": " + message);
    } catch (IOException e) {
      throw new UncheckedIOException(e); // reading a String does no I/O
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
    return hash(toJson(layer));
  }

  /** A SHA-256 hex digest of a canonical JSON text. */
  static String hash(String canonicalJson) {
    try {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      return HexFormat.of().formatHex(md.digest(canonicalJson.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static JsonNode node(Layer layer) {
    ObjectNode out = JsonNodeFactory.instance.objectNode();
    if (layer.type().takesLayers()) {
      ArrayNode children = out.putArray(layer.name());
      for (Layer child : layer.children()) {
        children.add(node(child));
      }
      return out;
    }
    ObjectNode args = out.putObject(layer.name());
    for (Map.Entry<String, Object> e : layer.arguments().entrySet()) {
      args.set(e.getKey(), e.getValue() instanceof Layer child ? node(child) : JSON.valueToTree(e.getValue()));
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
    LayerType type = LayerType.registered().get(name);
    if (type == null) {
      throw new ModelException(path, "unknown layer \"" + name + "\" (known layers: "
          + String.join(", ", LayerType.registered().keySet()) + ")");
    }
    int[] index = {0};
    return type.parse(node.get(name), path, child -> layer(child, path + "[" + index[0]++ + "]"));
  }

  /** Rejects anything but white space after the model's closing brace, at {@code end}. */
  private static void trailing(String json, int end) {
    for (int i = end; i < json.length(); i++) {
      if (!Character.isWhitespace(json.charAt(i))) {
        int line = 1;
        int lineStart = 0;
        for (int j = 0; j < i; j++) {
          if (json.charAt(j) == '\n') {
            line++;
            lineStart = j + 1;
          }
        }
        throw new ModelException("", "unexpected text after the model at line " + line + ", column "
            + (i - lineStart + 1) + ": " + abbreviate(json.substring(i).strip())
            + " (a model file holds exactly one layer object)");
      }
    }
  }

  private static String abbreviate(String text) {
    return text.length() > 30 ? text.substring(0, 27) + "..." : text;
  }

  /**
   * Where a parse error happened, in the model's path notation ({@code serial[1].Dense}), from the
   * parser's nesting at the error; empty at the top.
   */
  private static String jsonPath(JsonProcessingException e) {
    if (!(e.getProcessor() instanceof JsonParser parser)) {
      return "";
    }
    ArrayDeque<String> segments = new ArrayDeque<>();
    // the innermost context is the object whose key is repeated: its own key is not part of the path
    for (JsonStreamContext c = parser.getParsingContext().getParent(); c != null && !c.inRoot();
        c = c.getParent()) {
      if (c.inArray()) {
        segments.push("[" + c.getCurrentIndex() + "]");
      } else if (c.getCurrentName() != null) {
        segments.push(c.getCurrentName());
      }
    }
    StringBuilder path = new StringBuilder();
    for (String s : segments) {
      path.append(path.length() == 0 || s.startsWith("[") ? "" : ".").append(s);
    }
    return path.toString();
  }

  static String abbreviate(JsonNode node) {
    String s = node.toString();
    return s.length() > 60 ? s.substring(0, 57) + "..." : s;
  }
}
