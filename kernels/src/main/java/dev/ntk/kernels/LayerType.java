package dev.ntk.kernels;

import com.fasterxml.jackson.databind.JsonNode;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.function.Function;

/**
 * The one description of a layer type: its name in model files, its keyword arguments with their
 * types and defaults, and how to build it. Model-file parsing and writing, the Java factories of
 * {@link Stax} and the error messages all come from it.
 *
 * <p>A family file ({@link Linear}, {@link Elementwise}, {@link Branching}) declares each of its
 * layer types as a {@code public static final LayerType} constant next to the layer's class and
 * its static factory; {@link #registered()} finds them, so a new layer touches its family file and
 * its tests only.
 *
 * <pre>{@code
 * public static final LayerType ERF = LayerType.of("Erf", "a * erf(b * x) + c", Erf::new,
 *     Argument.number("a", 1.0), Argument.number("b", 1.0), Argument.number("c", 0.0));
 * }</pre>
 */
public final class LayerType {
  /** The kinds of argument a model file may give. */
  public enum Kind {
    NUMBER("a number"),
    OPTIONAL_NUMBER("a number or null"),
    INTEGER("an integer"),
    POSITIVE_INTEGER("a positive integer"),
    CHOICE("one of the listed strings"),
    INTEGER_LIST("a list of positive integers, one per spatial axis"),
    SHAPE("a list of integers, one per axis of the batch, each positive or -1 (the axis unchanged)"),
    NUMBER_LIST("a list of numbers"),
    AXES("an axis or a non-empty list of axes (integers, negative counting from the last axis)"),
    BOOLEAN("true or false"),
    LAYER("a layer, an object such as {\"Relu\": {}}"),
    INDEX("a list of NumPy indices, each an integer, a slice \"start:stop:step\" (parts optional) or \"...\""),
    ARRAY("null, a number, or nested lists of numbers of one shape (an array, row-major)"),
    DIMENSION_NUMBERS("[[lhs_contracting, rhs_contracting], [lhs_batch, rhs_batch]], four lists of axes "
        + "(integers, possibly empty)");

    private final String expected;

    Kind(String expected) {
      this.expected = expected;
    }
  }

  /**
   * One keyword argument: its JSON name, kind, default (null for an optional number that is
   * absent; {@code required} arguments have none), for a choice the allowed strings, and whether a
   * model file leaves it out at its default ({@code omittedAtDefault}, see {@link #addedBool}).
   */
  public record Argument(String name, Kind kind, Object defaultValue, boolean required, List<String> choices,
      boolean omittedAtDefault) {
    public Argument(String name, Kind kind, Object defaultValue, boolean required, List<String> choices) {
      this(name, kind, defaultValue, required, choices, false);
    }

    public static Argument number(String name, double defaultValue) {
      return new Argument(name, Kind.NUMBER, defaultValue, false, List.of());
    }

    public static Argument requiredNumber(String name) {
      return new Argument(name, Kind.NUMBER, null, true, List.of());
    }

    /** A number that may be null (for example {@code b_std}: no bias); null by default. */
    public static Argument optionalNumber(String name) {
      return new Argument(name, Kind.OPTIONAL_NUMBER, null, false, List.of());
    }

    public static Argument integer(String name, int defaultValue) {
      return new Argument(name, Kind.INTEGER, defaultValue, false, List.of());
    }

    /** An integer that must be given (for example an activation's {@code degree}). */
    public static Argument requiredInteger(String name) {
      return new Argument(name, Kind.INTEGER, null, true, List.of());
    }

    public static Argument positiveInteger(String name, int defaultValue) {
      return new Argument(name, Kind.POSITIVE_INTEGER, defaultValue, false, List.of());
    }

    public static Argument bool(String name, boolean defaultValue) {
      return new Argument(name, Kind.BOOLEAN, defaultValue, false, List.of());
    }

    /**
     * A boolean added to a layer type after model files were written with it (neural-tangents'
     * {@code do_stabilize} on the ReLU family): written only when it is not the default, so that
     * the files, digests and stored tiles of models that do not use it stay what they were.
     */
    public static Argument addedBool(String name, boolean defaultValue) {
      return new Argument(name, Kind.BOOLEAN, defaultValue, false, List.of(), true);
    }

    /** A list of positive integers that must be given (a filter or window shape). */
    public static Argument requiredIntegers(String name) {
      return new Argument(name, Kind.INTEGER_LIST, null, true, List.of());
    }

    /** A list of positive integers that may be left out (null: as the layer documents, e.g. all 1). */
    public static Argument optionalIntegers(String name) {
      return new Argument(name, Kind.INTEGER_LIST, null, false, List.of());
    }

    /** A shape that must be given, one entry per axis, -1 for an axis left as it is (an image resize). */
    public static Argument requiredShape(String name) {
      return new Argument(name, Kind.SHAPE, null, true, List.of());
    }

    /** A list of numbers, possibly empty, that must be given (for example polynomial coefficients). */
    public static Argument requiredNumbers(String name) {
      return new Argument(name, Kind.NUMBER_LIST, null, true, List.of());
    }

    /** A NumPy index that must be given (neural-tangents' {@code stax.Slice[...]}), a list in a model file. */
    public static Argument requiredIndex(String name) {
      return new Argument(name, Kind.INDEX, null, true, List.of());
    }

    /** A layer that must be given (the block a {@code repeat} applies), an object in a model file. */
    public static Argument layer(String name) {
      return new Argument(name, Kind.LAYER, null, true, List.of());
    }

    /** One of {@code choices} (compared without case), required: a wrong or missing one lists them. */
    public static Argument requiredChoice(String name, String... choices) {
      return new Argument(name, Kind.CHOICE, null, true, List.of(choices));
    }

    /** One of {@code choices} (compared without case); the first is the default. */
    public static Argument choice(String name, String... choices) {
      return new Argument(name, Kind.CHOICE, choices[0], false, List.of(choices));
    }

    /**
     * Axes of an activation as neural-tangents takes them: one integer or a list, negative ones
     * counting from the last axis ({@code LayerNorm}'s {@code axis}); kept as given, checked
     * against the activation's rank by the layer.
     */
    public static Argument axes(String name, int defaultValue) {
      return new Argument(name, Kind.AXES, defaultValue, false, List.of());
    }

    /** A constant array (neural-tangents' {@code DotGeneral} {@code lhs}/{@code rhs}), null by default. */
    public static Argument optionalArray(String name) {
      return new Argument(name, Kind.ARRAY, null, false, List.of());
    }

    /**
     * {@code lax.dot_general}'s {@code dimension_numbers}, {@code ((lhs_contracting, rhs_contracting),
     * (lhs_batch, rhs_batch))}; no contraction and no batch axes by default.
     */
    public static Argument dimensionNumbers(String name) {
      List<Integer> none = List.of();
      return new Argument(name, Kind.DIMENSION_NUMBERS, List.of(List.of(none, none), List.of(none, none)), false,
          List.of());
    }

    /** The value as this argument holds it, or the reason it does not fit. */
    Object check(Object value, String path) {
      String problem = switch (kind) {
        case NUMBER -> value instanceof Number ? null : kind.expected;
        case OPTIONAL_NUMBER -> value == null || value instanceof Number ? null : kind.expected;
        case INTEGER, POSITIVE_INTEGER -> isInt(value) && (kind == Kind.INTEGER || ((Number) value).intValue() >= 1)
            ? null : tooLarge(value) ? kind.expected + " no larger than " + Integer.MAX_VALUE + " (2^31 - 1)"
            : kind.expected;
        case CHOICE -> choiceOf(value) != null ? null
            : "one of \"" + String.join("\", \"", choices) + "\"";
        case INTEGER_LIST -> value == null && !required || integers(value, false) != null ? null : kind.expected;
        case SHAPE -> integers(value, true) != null ? null : kind.expected;
        case NUMBER_LIST -> numbers(value) != null ? null : kind.expected;
        case BOOLEAN -> value instanceof Boolean || value instanceof JsonNode n && n.isBoolean() ? null : kind.expected;
        case AXES -> axes(value) != null ? null : kind.expected;
        case LAYER -> value instanceof Layer ? null : kind.expected;
        case INDEX -> index(value) != null ? null : kind.expected;
        case ARRAY -> value == null || NumberArray.canonical(value) != null ? null : kind.expected;
        case DIMENSION_NUMBERS -> dimensionNumbers(value) != null ? null : kind.expected;
      };
      if (problem != null) {
        throw new ModelException(path, "argument \"" + name + "\" must be " + problem + ", got "
            + (value instanceof String ? "\"" + value + "\"" : String.valueOf(value)));
      }
      return switch (kind) {
        case NUMBER -> ((Number) value).doubleValue();
        case OPTIONAL_NUMBER -> value == null ? null : ((Number) value).doubleValue();
        case INTEGER, POSITIVE_INTEGER -> ((Number) value).intValue();
        case CHOICE -> choiceOf(value);
        case INTEGER_LIST -> value == null ? null : integers(value, false);
        case SHAPE -> integers(value, true);
        case NUMBER_LIST -> numbers(value);
        case BOOLEAN -> value instanceof Boolean b ? b : ((JsonNode) value).booleanValue();
        case AXES -> axes(value);
        case LAYER -> value;
        case INDEX -> index(value);
        case ARRAY -> value == null ? null : NumberArray.canonical(value);
        case DIMENSION_NUMBERS -> dimensionNumbers(value);
      };
    }

    /** Two pairs of lists of ints (from lists, int arrays or JSON arrays), lists possibly empty; else null. */
    private static List<List<List<Integer>>> dimensionNumbers(Object value) {
      List<?> outer = items(value);
      if (outer == null || outer.size() != 2) {
        return null;
      }
      List<List<List<Integer>>> out = new ArrayList<>();
      for (Object pair : outer) {
        List<?> lists = items(pair);
        if (lists == null || lists.size() != 2) {
          return null;
        }
        List<List<Integer>> both = new ArrayList<>();
        for (Object axes : lists) {
          List<?> entries = items(axes);
          if (entries == null) {
            return null;
          }
          List<Integer> ints = new ArrayList<>();
          for (Object x : entries) {
            if (!isInt(x)) {
              return null;
            }
            ints.add(((Number) x).intValue());
          }
          both.add(List.copyOf(ints));
        }
        out.add(List.copyOf(both));
      }
      return List.copyOf(out);
    }

    /** One int, or a non-empty list of ints of any sign (from an int array, a list or a JSON array); else null. */
    private static Object axes(Object value) {
      return isInt(value) ? (Object) ((Number) value).intValue() : ints(value, x -> true);
    }

    /**
     * A non-empty list of positive ints (or -1, with {@code minusOne}) from an int array, a list or
     * a JSON array; else null.
     */
    private static List<Integer> integers(Object value, boolean minusOne) {
      return ints(value, x -> x >= 1 || minusOne && x == -1);
    }

    /**
     * The items of an int array, a list or a JSON array as a non-empty list of ints, each accepted
     * by {@code accepted}; null for anything else.
     */
    private static List<Integer> ints(Object value, java.util.function.IntPredicate accepted) {
      List<Object> items = items(value);
      if (items == null) {
        return null;
      }
      List<Integer> out = new ArrayList<>();
      for (Object x : items) {
        if (!isInt(x) || !accepted.test(((Number) x).intValue())) {
          return null;
        }
        out.add(((Number) x).intValue());
      }
      return out.isEmpty() ? null : List.copyOf(out);
    }

    /**
     * The items of a list, an array of ints, doubles or objects, or a JSON array (integral JSON
     * numbers as ints, other numbers as doubles): the one reader of list arguments; null for
     * anything else.
     */
    static List<Object> items(Object value) {
      List<Object> items = new ArrayList<>();
      if (value instanceof int[] a) {
        for (int x : a) {
          items.add(x);
        }
      } else if (value instanceof double[] a) {
        for (double x : a) {
          items.add(x);
        }
      } else if (value instanceof Object[] a) {
        items.addAll(java.util.Arrays.asList(a));
      } else if (value instanceof List<?> l) {
        items.addAll(l);
      } else if (value instanceof JsonNode n && n.isArray()) {
        for (JsonNode x : n) {
          items.add(x.isIntegralNumber() && x.canConvertToInt() ? (Object) x.intValue()
              : x.isNumber() ? (Object) x.doubleValue() : x);
        }
      } else {
        return null;
      }
      return items;
    }

    /** The pattern of one slice of a NumPy index: {@code start:stop} or {@code start:stop:step}, parts optional. */
    private static final java.util.regex.Pattern SLICE =
        java.util.regex.Pattern.compile("\\s*(-?\\d+)?\\s*:\\s*(-?\\d+)?\\s*(:\\s*(-?\\d+)?\\s*)?");

    /**
     * A NumPy index from a list or a JSON array: each entry an int (kept), or a string that is an
     * int, a slice or {@code "..."} (kept without white space); else null.
     */
    private static List<Object> index(Object value) {
      List<Object> items = new ArrayList<>();
      if (value instanceof List<?> l) {
        items.addAll(l);
      } else if (value instanceof JsonNode n && n.isArray()) {
        for (JsonNode x : n) {
          items.add(x.isIntegralNumber() && x.canConvertToInt() ? (Object) x.intValue()
              : x.isTextual() ? x.textValue() : x);
        }
      } else {
        return null;
      }
      List<Object> out = new ArrayList<>();
      for (Object x : items) {
        if (isInt(x)) {
          out.add(((Number) x).intValue());
        } else if (x instanceof String str && (str.strip().equals("...") || SLICE.matcher(str).matches())) {
          out.add(str.replaceAll("\\s", ""));
        } else if (x instanceof String str && str.strip().matches("-?\\d{1,9}")) {
          out.add(Integer.parseInt(str.strip()));
        } else {
          return null;
        }
      }
      return List.copyOf(out);
    }

    /** A list of finite doubles from a double array, a list or a JSON array; else null. */
    private static List<Double> numbers(Object value) {
      List<Object> items = items(value);
      if (items == null) {
        return null;
      }
      List<Double> out = new ArrayList<>();
      for (Object x : items) {
        if (!(x instanceof Number n) || !Double.isFinite(n.doubleValue())) {
          return null;
        }
        out.add(n.doubleValue());
      }
      return List.copyOf(out);
    }

    private String choiceOf(Object value) {
      String text = value instanceof Enum<?> e ? e.name() : value instanceof String s ? s : null;
      for (String c : choices) {
        if (c.equalsIgnoreCase(text)) {
          return c;
        }
      }
      return null;
    }

    /** A whole number beyond an {@code int}'s range (sizes and counts are Java ints). */
    private static boolean tooLarge(Object value) {
      if (!(value instanceof Number n)) {
        return false;
      }
      double d = n.doubleValue();
      return d == Math.rint(d) && Math.abs(d) > Integer.MAX_VALUE;
    }

    private static boolean isInt(Object value) {
      return (value instanceof Integer || value instanceof Long || value instanceof Short)
          && ((Number) value).longValue() == ((Number) value).intValue();
    }
  }

  /**
   * A constant array of a model file ({@link Argument#optionalArray}): its shape (empty for a
   * number) and its entries in row-major order.
   */
  public record NumberArray(int[] shape, double[] values) {
    /** The number of axes. */
    public int rank() {
      return shape.length;
    }

    /**
     * {@code value} (a number, nested lists, {@code double[]} or {@code double[][]}, a JSON array) as
     * a model file writes it: a {@code Double}, or nested lists of {@code Double}s of one shape, none
     * empty; null if it is none of these or a number is not finite.
     */
    static Object canonical(Object value) {
      if (value instanceof Number n) {
        return Double.isFinite(n.doubleValue()) ? (Object) n.doubleValue() : null;
      }
      if (value instanceof JsonNode n && n.isNumber()) {
        return canonical(n.doubleValue());
      }
      List<Object> items = Argument.items(value);
      if (items == null || items.isEmpty()) {
        return null;
      }
      List<Object> out = new ArrayList<>();
      for (Object x : items) {
        Object c = canonical(x);
        if (c == null) {
          return null;
        }
        out.add(c);
      }
      int[] first = of(out.get(0)).shape;
      for (Object c : out) {
        if (!java.util.Arrays.equals(of(c).shape, first)) {
          return null;
        }
      }
      return List.copyOf(out);
    }

    /** The array of a {@link #canonical} value. */
    static NumberArray of(Object canonical) {
      if (canonical instanceof Double d) {
        return new NumberArray(new int[0], new double[] {d});
      }
      List<?> items = (List<?>) canonical;
      List<NumberArray> parts = new ArrayList<>();
      for (Object x : items) {
        parts.add(of(x));
      }
      int[] inner = parts.get(0).shape;
      int[] shape = new int[inner.length + 1];
      shape[0] = parts.size();
      System.arraycopy(inner, 0, shape, 1, inner.length);
      int size = parts.get(0).values.length;
      double[] values = new double[size * parts.size()];
      for (int i = 0; i < parts.size(); i++) {
        System.arraycopy(parts.get(i).values, 0, values, i * size, size);
      }
      return new NumberArray(shape, values);
    }
  }

  private final String name;
  private final String summary;
  private final List<Argument> arguments;
  private final Function<Arguments, Layer> factory;
  private final Function<List<Layer>, Layer> combinator;

  private LayerType(String name, String summary, List<Argument> arguments,
      Function<Arguments, Layer> factory, Function<List<Layer>, Layer> combinator) {
    this.name = name;
    this.summary = summary;
    this.arguments = List.copyOf(arguments);
    this.factory = factory;
    this.combinator = combinator;
  }

  /** A layer type with keyword arguments. */
  public static LayerType of(String name, String summary, Function<Arguments, Layer> factory,
      Argument... arguments) {
    return new LayerType(name, summary, List.of(arguments), factory, null);
  }

  /** A combinator whose model-file value is a list of layers ({@code serial}, {@code parallel}). */
  public static LayerType combinator(String name, String summary, Function<List<Layer>, Layer> factory) {
    return new LayerType(name, summary, List.of(), null, factory);
  }

  public String name() {
    return name;
  }

  /** One line saying what the layer computes. */
  public String summary() {
    return summary;
  }

  public List<Argument> arguments() {
    return arguments;
  }

  /** Whether a model file gives this layer a list of layers rather than keyword arguments. */
  public boolean takesLayers() {
    return combinator != null;
  }

  /**
   * A layer of this type from Java values given in the order of {@link #arguments()}; arguments
   * left out take their defaults. This is what the {@link Stax} factories call.
   */
  public Layer create(Object... values) {
    if (takesLayers()) {
      List<Layer> children = new ArrayList<>();
      for (Object v : values) {
        children.add((Layer) v);
      }
      return combinator.apply(children);
    }
    if (values.length > arguments.size()) {
      throw new IllegalArgumentException(name + " takes " + arguments.size() + " arguments, got "
          + values.length);
    }
    Map<String, Object> given = new LinkedHashMap<>();
    for (int i = 0; i < values.length; i++) {
      given.put(arguments.get(i).name(), values[i]);
    }
    return build(given, name);
  }

  /** The layer a model file describes with {@code value} at {@code path}. */
  Layer parse(JsonNode value, String path, Function<JsonNode, Layer> child) {
    if (takesLayers()) {
      if (!value.isArray() || value.isEmpty()) {
        throw new ModelException(path, name + " takes a non-empty list of layers, got "
            + ModelSpec.abbreviate(value));
      }
      List<Layer> children = new ArrayList<>();
      for (JsonNode c : value) {
        children.add(child.apply(c));
      }
      return combinator.apply(children);
    }
    if (!value.isObject()) {
      throw new ModelException(path, "arguments must be an object such as {}, got "
          + ModelSpec.abbreviate(value));
    }
    Map<String, Object> given = new LinkedHashMap<>();
    for (Iterator<Map.Entry<String, JsonNode>> it = value.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      JsonNode v = e.getValue();
      Object javaValue = v.isNull() ? null : v.isIntegralNumber() && v.canConvertToLong() ? (Object) v.longValue()
          : v.isNumber() ? (Object) v.doubleValue() : v.isTextual() ? v.textValue() : v;
      if (v.isIntegralNumber() && !v.canConvertToLong()) {
        javaValue = v.doubleValue();
      }
      given.put(e.getKey(), javaValue);
    }
    for (Argument a : arguments) {
      // A layer argument is parsed as a child, its path under this layer's.
      if (a.kind() == Kind.LAYER && given.get(a.name()) instanceof JsonNode n && n.isObject()) {
        given.put(a.name(), child.apply(n));
      }
    }
    return build(given, path);
  }

  private Layer build(Map<String, Object> given, String path) {
    Map<String, Object> values = new LinkedHashMap<>();
    for (Argument a : arguments) {
      if (given.containsKey(a.name())) {
        values.put(a.name(), a.check(given.get(a.name()), path));
      } else if (a.required()) {
        throw new ModelException(path, "missing required argument \"" + a.name() + "\""
            + (a.kind() == Kind.CHOICE ? " (one of \"" + String.join("\", \"", a.choices()) + "\")" : ""));
      } else {
        values.put(a.name(), a.defaultValue());
      }
    }
    for (String key : given.keySet()) {
      if (!values.containsKey(key)) {
        List<String> known = arguments.stream().map(Argument::name).toList();
        throw new ModelException(path, "unknown argument \"" + key + "\""
            + (known.isEmpty() ? " (this layer takes no arguments)"
                : " (expected one of: " + String.join(", ", known) + ")"));
      }
    }
    try {
      return factory.apply(new Arguments(this, values));
    } catch (IllegalArgumentException e) {
      throw new ModelException(path, e.getMessage());
    }
  }

  /** The layer families: each declares its layer types as {@code public static final} constants. */
  static final List<Class<?>> FAMILIES = List.of(Branching.class, Linear.class, Elementwise.class,
      ElementwiseQuadrature.class, Convolutional.class,
      Normalization.class, Attention.class, Graph.class);

  /**
   * Every layer type, by name: the {@code public static final LayerType} constants of the
   * {@link #FAMILIES}.
   */
  public static Map<String, LayerType> registered() {
    return Registry.TYPES;
  }

  private static final class Registry {
    static final Map<String, LayerType> TYPES = scan();

    private static Map<String, LayerType> scan() {
      Map<String, LayerType> types = new TreeMap<>();
      for (Class<?> c : FAMILIES) {
        for (Field f : c.getDeclaredFields()) {
          int m = f.getModifiers();
          if (f.getType() == LayerType.class && Modifier.isStatic(m) && Modifier.isPublic(m)) {
            try {
              LayerType t = (LayerType) f.get(null);
              if (types.put(t.name(), t) != null) {
                throw new IllegalStateException("two layer types are named " + t.name());
              }
            } catch (IllegalAccessException e) {
              throw new IllegalStateException(e);
            }
          }
        }
      }
      return Collections.unmodifiableMap(types);
    }
  }

  /** The checked values of one layer's arguments, every argument present (defaults filled in). */
  public static final class Arguments {
    private final LayerType type;
    private final Map<String, Object> values;

    Arguments(LayerType type, Map<String, Object> values) {
      this.type = type;
      this.values = Collections.unmodifiableMap(new LinkedHashMap<>(values));
    }

    public LayerType type() {
      return type;
    }

    private Object get(String name) {
      if (!values.containsKey(name)) {
        throw new IllegalStateException(type.name() + " has no argument " + name);
      }
      return values.get(name);
    }

    public double number(String name) {
      return (Double) get(name);
    }

    /** An optional number: null when absent. */
    public Double optionalNumber(String name) {
      return (Double) get(name);
    }

    public int integer(String name) {
      return (Integer) get(name);
    }

    public String choice(String name) {
      return (String) get(name);
    }

    public boolean bool(String name) {
      return (Boolean) get(name);
    }

    /** A list of positive integers, or null when an optional one is absent. */
    @SuppressWarnings("unchecked")
    public int[] integers(String name) {
      List<Integer> l = (List<Integer>) get(name);
      return l == null ? null : l.stream().mapToInt(Integer::intValue).toArray();
    }

    /** Axes ({@link Argument#axes}): one, or the list given. */
    @SuppressWarnings("unchecked")
    public int[] axes(String name) {
      Object v = get(name);
      return v instanceof Integer i ? new int[] {i}
          : ((List<Integer>) v).stream().mapToInt(Integer::intValue).toArray();
  }

    /** A NumPy index: each entry an {@code Integer}, or a {@code String} slice or {@code "..."}. */
    @SuppressWarnings("unchecked")
    public List<Object> index(String name) {
      return (List<Object>) get(name);
    }

    /** A constant array, or null when absent. */
    public NumberArray array(String name) {
      Object v = get(name);
      return v == null ? null : NumberArray.of(v);
    }

    /** {@code lax.dot_general}'s {@code ((lhs_contracting, rhs_contracting), (lhs_batch, rhs_batch))}. */
    public int[][][] dimensionNumbers(String name) {
      @SuppressWarnings("unchecked")
      List<List<List<Integer>>> v = (List<List<List<Integer>>>) get(name);
      int[][][] out = new int[2][2][];
      for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 2; j++) {
          out[i][j] = v.get(i).get(j).stream().mapToInt(Integer::intValue).toArray();
        }
      }
      return out;
    }

    /** A layer argument. */
    public Layer layer(String name) {
      return (Layer) get(name);
    }

    /** A list of numbers. */
    @SuppressWarnings("unchecked")
    public double[] numbers(String name) {
      return ((List<Double>) get(name)).stream().mapToDouble(Double::doubleValue).toArray();
    }

    /**
     * The values in declaration order, as a model file writes them: every argument, except one
     * {@link Argument#omittedAtDefault} at its default (a layer made in Java, not read from a file,
     * writes the values it was given).
     */
    public Map<String, Object> asMap() {
      Map<String, Object> written = new LinkedHashMap<>(values);
      for (Argument a : type.arguments()) {
        if (a.omittedAtDefault() && Objects.equals(values.get(a.name()), a.defaultValue())) {
          written.remove(a.name());
        }
      }
      return Collections.unmodifiableMap(written);
    }
  }

  @Override
  public String toString() {
    return name + arguments.stream().map(Argument::name).toList();
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof LayerType t && t.name.equals(name);
  }

  @Override
  public int hashCode() {
    return Objects.hash(name);
  }
}
