package dev.ntk.kernels.engine;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.IntConsumer;

/**
 * The per-pair steps of a {@link Schedule} as generated Java: one SIMD loop per segment of steps,
 * in which every intermediate value stays in a vector register, where the interpreted path
 * ({@link ChunkOps}) makes one pass over a chunk buffer per step. The source is written from the
 * steps, compiled in memory with the JDK's compiler ({@code javax.tools}) and then by the JIT like
 * any other loop. Each step is the same Vector API operation the interpreted path runs ({@code
 * fma} stays {@code fma}, {@code atan2} the same SVML call), so the two agree entry by entry,
 * except the last few entries of a chunk that is not a whole number of vectors: the interpreted
 * path computes those in scalar code ({@code Math.atan2} can differ from SVML's in the last bit),
 * here they are lanes of a vector over padded buffers; and float32 {@code tanh} outside the loop over
 * a quadrature's points, which here is the JDK's intrinsic and there {@link VectorMath#tanh(
 * jdk.incubator.vector.FloatVector)} (a few ulps apart: {@link FusedSource#expression(Expr.Op,
 * String[], boolean)}).
 *
 * <p>A segment holds at most {@link #SEGMENT} steps, so that the JIT inlines every Vector API
 * call of its loop, and each quadrature is a segment of its own ({@link #isolateQuadratures});
 * values read by a later segment pass through chunk buffers. Constants are
 * parameters, not literals: models of the same structure share one compiled class.
 *
 * <p>Without a Java compiler (a JRE), without the {@code jdk.incubator.vector} module, or if the
 * compilation fails, {@link #compile} returns null and the caller keeps the interpreted path.
 */
final class Fused {
  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(Fused.class);

  /** Vectors per iteration of a generated loop (chunk buffers are padded for them). */
  static final int UNROLL = Integer.getInteger("ntk.cpu.fused.unroll", 2);

  /** The most segment calls per generated method. */
  private static final int CALLS = 1000;

  /** The most steps per generated loop. */
  static final int SEGMENT = Integer.getInteger("ntk.cpu.fused.segment", 16);

  /** Calls of a new loop before tiles use it (see {@link Program#ready}). */
  static final int WARM_CALLS = Integer.getInteger("ntk.cpu.fused.warmup", 6_000);
  private static final int WARM_LENGTH = 256;
  private static final int WARM_EVERY = Integer.getInteger("ntk.cpu.fused.warmevery", 64);
  private static final boolean TRACE = Boolean.getBoolean("ntk.cpu.fused.trace");

  /** Compiled code by source: a model's tiles, and models of one structure, compile once. */
  private static final Map<String, Code> CODE = new ConcurrentHashMap<>();
  private static volatile boolean unavailable;
  private static final java.util.concurrent.ExecutorService COMPILER =
      java.util.concurrent.Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "ntk-fused-compiler");
        t.setDaemon(true);
        return t;
      });

  /** One generated class: compiled once, then warmed once. */
  private static final class Code {
    private final String source;
    private MethodHandle constructor;
    private boolean compiled;
    private boolean started;
    private volatile boolean ready;

    Code(String source) {
      this.source = source;
    }

    /** The class's constructor (compiling it on first use), or null where it does not compile. */
    synchronized MethodHandle constructor() {
      if (!compiled) {
        constructor = javac(NAME, source);
        compiled = true;
      }
      return constructor;
    }
  }

  /** When a program is compiled and warmed. */
  enum When {
    /** In the background; it is used once {@link Program#ready}. */
    BACKGROUND,
    /** Compiled now, and ready at once: its first runs are in the JIT's slow tiers (tests). */
    COMPILED,
    /** Compiled and warmed now. */
    WARMED
  }

  /** Where a step finds an operand. */
  enum Kind {
    /** The value of an earlier step. */
    STEP,
    /** A slot's array at the chunk's entry ({@code array[offset + k]}). */
    SLOT,
    /** A slot's array's first value, the same for the whole chunk. */
    BROADCAST,
    /** A constant. */
    CONST
  }

  /** An operand: a step index, a slot index, or a constant value. */
  record Operand(Kind kind, int index, double value) {
    static Operand step(int i) {
      return new Operand(Kind.STEP, i, Double.NaN);
    }

    static Operand slot(int s, boolean broadcast) {
      return new Operand(broadcast ? Kind.BROADCAST : Kind.SLOT, s, Double.NaN);
    }

    static Operand constant(double v) {
      return new Operand(Kind.CONST, -1, v);
    }
  }

  /** A program: the compiled segments, and how many chunk buffers it needs besides the caller's slots. */
  static final class Program {
    private final Code code;
    private final boolean float32;
    private final Object constants;
    private final int inputSlots;
    private final int registers;
    private final long steps;
    private final int segments;
    private final int methods;
    private final int[] outputSlots;
    private final int[][] bindings;

    private Program(Code code, boolean float32, Object constants, int[][] bindings, int inputSlots, int registers,
        int[] outputSlots, long steps, int segments, int methods) {
      this.code = code;
      this.bindings = bindings;
      this.float32 = float32;
      this.constants = constants;
      this.inputSlots = inputSlots;
      this.registers = registers;
      this.steps = steps;
      this.segments = segments;
      this.methods = methods;
      this.outputSlots = outputSlots;
    }

    /** Slots the caller fills: its inputs, then {@link #registers} chunk buffers, then the outputs. */
    int slots() {
      return inputSlots + registers + outputSlots.length;
    }

    /** The segments the steps are cut into. */
    int segments() {
      return segments;
    }

    /** The generated Java source (for tests). */
    String source() {
      return code.source;
    }

    /** The distinct segment loops: equal layers share one. */
    int methods() {
      return methods;
    }

    /** The slot into which output {@code o} is written. */
    int outputSlot(int o) {
      return outputSlots[o];
    }

    /**
     * The loop over {@code slots} (arrays padded by a vector beyond what a chunk reads) at
     * {@code offsets} (read at each call): {@code accept(length)} runs every step over entries
     * {@code [0, length)} of the chunk, rounded up to whole vectors.
     */
    IntConsumer bind(Object[] slots, int[] offsets) {
      try {
        return (IntConsumer) code.constructor().invoke(slots, offsets, constants, bindings);
      } catch (Throwable t) {
        throw new IllegalStateException("generated kernel loop", t);
      }
    }

    /**
     * Whether the loop is compiled and warm. Until then a caller interprets the steps: the JIT
     * first runs a new loop in the interpreter and then in C1, where each Vector API operation
     * allocates, tens of times slower than the interpreted steps, until C2 compiles it. It does
     * so after thousands of calls, which tiles of 512-entry chunks would reach only after seconds.
     */
    boolean ready() {
      return code.ready;
    }

    /** Compiles and warms the loop in the background, once per generated class. */
    private void start() {
      synchronized (code) {
        if (code.started) {
          return;
        }
        code.started = true;
      }
      COMPILER.execute(() -> {
        long t0 = System.nanoTime();
        if (code.constructor() == null) {
          return;
        }
        long t1 = System.nanoTime();
        code.ready = warm();
        LOG.debug("ntk: fused loop compiled in {} ms, {} in {} ms", (t1 - t0) / 1_000_000,
            code.ready ? "warmed" : "not warm (steps stay interpreted)", (System.nanoTime() - t1) / 1_000_000);
        if (TRACE) {
          System.err.printf("ntk: fused loop compiled in %d ms, ready %s after %d ms%n", (t1 - t0) / 1_000_000,
              code.ready, (System.nanoTime() - t1) / 1_000_000);
        }
      });
    }

    /**
     * Runs the loop on dummy buffers of {@link #WARM_LENGTH} entries (several iterations: a loop
     * profiled with one would be compiled for one) until the JIT has had the calls it needs.
     */
    private boolean warm() {
      Object[] slots = new Object[slots()];
      for (int i = 0; i < slots.length; i++) {
        if (float32) {
          float[] a = new float[WARM_LENGTH + CpuBackend.PAD];
          java.util.Arrays.fill(a, 1f);
          slots[i] = a;
        } else {
          double[] a = new double[WARM_LENGTH + CpuBackend.PAD];
          java.util.Arrays.fill(a, 1d);
          slots[i] = a;
        }
      }
      IntConsumer loop = bind(slots, new int[slots.length]);
      // With quadratures a loop runs thousands of operations per entry: its runs here cover one
      // iteration (UNROLL vectors), not WARM_LENGTH entries, which the slow tiers would take seconds over.
      int length = steps > 100L * segments * SEGMENT ? 1 : WARM_LENGTH;
      for (int i = 0; i < WARM_CALLS; i++) {
        // Mostly empty calls: the JIT counts calls, and an empty one costs nothing in the slow
        // tiers; every WARM_EVERY-th runs the loop, so that its profile has the loop body in it.
        loop.accept(i % WARM_EVERY == 0 ? length : 0);
      }
      // Then wait for C2, which compiles the segments one after another: its loop takes well
      // under a nanosecond per entry and step, the slower tiers tens.
      long deadline = System.nanoTime() + 60_000_000_000L;
      double fast = (double) steps * Math.max(length, 32);
      while (System.nanoTime() < deadline) {
        long t = System.nanoTime();
        loop.accept(length);
        if (System.nanoTime() - t < fast) {
          return true;
        }
        for (int i = 0; i < WARM_EVERY; i++) {
          loop.accept(0);
        }
        try {
          Thread.sleep(2);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          return false;
        }
      }
      return false;
    }
  }

  private static volatile Program last;

  private Fused() {}

  /** The program compiled last (for tests). */
  static Program last() {
    return last;
  }

  /** Whether this JVM can compile fused loops (a JDK with the Vector API module). */
  static boolean available() {
    return !unavailable && CpuBackend.vectorised() && InMemoryJavac.COMPILER != null;
  }

  /**
   * The program of {@code ops} (each with its {@code operands}; a value's operands come before it),
   * writing step {@code outputs[o]} into an output slot, over {@code inputSlots} caller slots;
   * null where fused loops cannot be compiled here; {@code when} says when it is compiled and warmed.
   */
  static Program compile(boolean float32, List<Expr> steps, List<Operand[]> operands, int[] outputs,
      int inputSlots, When when) {
    if (!available()) {
      return null;
    }
    int n = steps.size();
    // Per entry: a quadrature's loop counts what it runs, not one.
    long work = steps.stream().mapToLong(e -> e.op() == Expr.Op.QUADRATURE ? e.quadrature().work() : 1).sum();
    int[] lastUse = new int[n];
    for (int i = 0; i < n; i++) {
      lastUse[i] = i;
      for (Operand o : operands.get(i)) {
        if (o.kind() == Kind.STEP) {
          lastUse[o.index()] = Math.max(lastUse[o.index()], i);
        }
      }
    }
    int[] starts = isolateQuadratures(segments(lastUse), steps);
    int segments = starts.length - 1;
    int[] segmentOf = new int[n];
    for (int s = 0; s < segments; s++) {
      java.util.Arrays.fill(segmentOf, starts[s], starts[s + 1], s);
    }
    // Chunk buffers for values read by a later segment, reused once dead.
    int[] register = new int[n];
    java.util.Arrays.fill(register, -1);
    List<Integer> free = new ArrayList<>();
    int registers = 0;
    List<List<Integer>> dying = new ArrayList<>();
    for (int s = 0; s < segments; s++) {
      dying.add(new ArrayList<>());
    }
    for (int s = 0; s < segments; s++) {
      for (int i = starts[s]; i < starts[s + 1]; i++) {
        if (segmentOf[lastUse[i]] > s) {
          register[i] = free.isEmpty() ? registers++ : free.remove(free.size() - 1);
          dying.get(segmentOf[lastUse[i]]).add(register[i]);
        }
      }
      // Free after the segment that reads them last: later segments may reuse the buffer.
      free.addAll(dying.get(s));
    }
    int[] outputSlots = new int[outputs.length];
    for (int o = 0; o < outputs.length; o++) {
      outputSlots[o] = inputSlots + registers + o;
    }
    List<Double> constants = new ArrayList<>();
    Map<Double, Integer> constantIndex = new HashMap<>();
    java.util.function.DoubleToIntFunction constant = value -> constantIndex.computeIfAbsent(value, v -> {
      constants.add(v);
      return constants.size() - 1;
    });
    // A quadrature's table columns are runs of constants, read at the loop's index.
    Map<double[], Integer> tableIndex = new java.util.IdentityHashMap<>();
    java.util.function.ToIntFunction<double[]> table = column -> tableIndex.computeIfAbsent(column, v -> {
      for (double x : v) {
        constants.add(x);
      }
      return constants.size() - v.length;
    });
    Map<String, String> methods = new java.util.LinkedHashMap<>();
    String vector = float32 ? "FloatVector" : "DoubleVector";
    String scalar = float32 ? "float" : "double";
    List<String> calls = new ArrayList<>();
    List<int[]> bindings = new ArrayList<>();
    for (int s = 0; s < segments; s++) {
      FusedSource.Segment g = new FusedSource.Segment(vector, scalar);
      for (int i = starts[s]; i < starts[s + 1]; i++) {
        Operand[] in = operands.get(i);
        String[] names = new String[in.length];
        for (int k = 0; k < in.length; k++) {
          Operand o = in[k];
          names[k] = switch (o.kind()) {
            case STEP -> o.index() >= starts[s] ? g.local(o.index())
                : g.load("r" + o.index(), inputSlots + register[o.index()]);
            case SLOT -> g.load("s" + o.index(), o.index());
            case BROADCAST -> g.broadcast("b" + o.index(), o.index());
            case CONST -> g.constant(constant.applyAsInt(o.value()));
          };
        }
        Expr e = steps.get(i);
        if (e.op() != Expr.Op.QUADRATURE) {
          g.step(i, FusedSource.expression(e.op(), names));
        } else if (g.local(i) == null) {
          // Sums of the same table and operands later in the segment run in this loop.
          List<Integer> group = new ArrayList<>();
          for (int j = i; j < starts[s + 1]; j++) {
            if (Quadrature.together(e, steps.get(j))) {
              group.add(j);
            }
          }
          g.quadrature(group.stream().mapToInt(Integer::intValue).toArray(),
              group.stream().map(steps::get).toArray(Expr[]::new), names, constant, table);
        }
        if (register[i] >= 0) {
          g.store(i, inputSlots + register[i]);
        }
        for (int o = 0; o < outputs.length; o++) {
          if (outputs[o] == i) {
            g.store(i, outputSlots[o]);
          }
        }
      }
      // Segments of the same shape (the layers of a deep network) share one method.
      String method = methods.computeIfAbsent(g.body(), b -> "m" + methods.size());
      calls.add("    " + method + "(a, o, c, B[" + s + "], n);\n");
      bindings.add(g.binding());
    }
    // The segment calls, in methods of at most CALLS each: a deep network's quadrature has thousands
    // of segments, more than one method's 64 KiB of bytecode can call. The bindings are a
    // constructor argument, not a static initializer, for the same reason.
    StringBuilder accept = new StringBuilder();
    StringBuilder callers = new StringBuilder();
    for (int from = 0; from < calls.size(); from += CALLS) {
      accept.append("    s").append(from / CALLS).append("(n);\n");
      callers.append("\n  private void s").append(from / CALLS).append("(int n) {\n");
      calls.subList(from, Math.min(calls.size(), from + CALLS)).forEach(callers::append);
      callers.append("  }\n");
    }
    StringBuilder source = new StringBuilder()
        .append("import jdk.incubator.vector.*;\n\n")
        .append("public final class ").append(NAME).append(" implements java.util.function.IntConsumer {\n")
        .append("  private static final VectorSpecies<").append(float32 ? "Float" : "Double").append("> S = ")
        .append(vector).append(".SPECIES_PREFERRED;\n")
        .append("  private static final int L = S.length();\n")
        .append("  private final int[][] B;\n")
        .append("  private final Object[] a;\n  private final int[] o;\n  private final ").append(scalar)
        .append("[] c;\n\n")
        .append("  public ").append(NAME).append("(Object[] a, int[] o, Object c, int[][] b) {\n")
        .append("    this.a = a;\n    this.o = o;\n    this.c = (").append(scalar).append("[]) c;\n")
        .append("    this.B = b;\n  }\n\n")
        .append("  @Override\n  public void accept(int n) {\n").append(accept).append("  }\n").append(callers);
    methods.forEach((body, name) -> source.append("\n  private static void ").append(name).append("(Object[] a, int[] o, ")
        .append(scalar).append("[] c, int[] b, int n) {\n").append(body).append("  }\n"));
    source.append("}\n");
    Code code = CODE.computeIfAbsent(source.toString(), Code::new);
    if (when != When.BACKGROUND && code.constructor() == null) {
      return null;
    }
    Object c;
    if (float32) {
      float[] values = new float[constants.size()];
      for (int i = 0; i < values.length; i++) {
        values[i] = (float) (double) constants.get(i);
      }
      c = values;
    } else {
      c = constants.stream().mapToDouble(Double::doubleValue).toArray();
    }
    Program program = new Program(code, float32, c, bindings.toArray(new int[0][]), inputSlots, registers,
        outputSlots, work, segments, methods.size());
    last = program;
    switch (when) {
      case BACKGROUND -> program.start();
      case COMPILED -> code.ready = true;
      case WARMED -> {
        synchronized (code) {
          if (!code.ready) {
            code.ready = program.warm();
          }
        }
      }
    }
    return program;
  }

  private static final String NAME = "FusedTile";

  /**
   * Where the steps are cut into segments: {@code starts[s]} is the first step of segment {@code
   * s}, {@code starts[last] = n}. Cuts go where the fewest values are alive (between the layers of
   * a network, where only its kernels are), so that segments follow the layers and equal layers
   * give equal segments: each is as long as it can be up to {@link #SEGMENT} steps, ending at
   * such a cut if there is one past a quarter of that.
   */
  static int[] segments(int[] lastUse) {
    int n = lastUse.length;
    // live[i]: values computed before step i and read at or after it.
    int[] live = new int[n + 2];
    for (int j = 0; j < n; j++) {
      if (lastUse[j] > j) {
        live[j + 1]++;
        live[lastUse[j] + 1]--;
      }
    }
    for (int i = 1; i <= n; i++) {
      live[i] += live[i - 1];
    }
    // The fewest values alive past the first layers (which read fewer, the inputs).
    int minimum = Math.max(1, SEGMENT / 4);
    int min = Integer.MAX_VALUE;
    for (int i = Math.min(minimum, n - 1); i < n; i++) {
      min = Math.min(min, live[i]);
    }
    List<Integer> starts = new ArrayList<>(List.of(0));
    int start = 0;
    while (n - start > SEGMENT) {
      // The last cut with the fewest values alive that leaves at most SEGMENT steps behind it.
      int cut = start + SEGMENT;
      for (int i = start + SEGMENT; i >= start + minimum; i--) {
        if (live[i] <= min) {
          cut = i;
          break;
        }
      }
      starts.add(cut);
      start = cut;
    }
    starts.add(n);
    return starts.stream().mapToInt(Integer::intValue).toArray();
  }

  /**
   * {@code starts} with cuts before each quadrature's first sum and after its last sibling ({@link
   * Quadrature#together}), so that its loop is a segment of its own: C2 inlines a method's Vector API
   * calls up to a node budget, and the inlined {@code tanh} of a quadrature's points ({@link
   * FusedSource#expression(Expr.Op, String[], boolean)}) needs what the other steps of a layer would take.
   */
  static int[] isolateQuadratures(int[] starts, List<Expr> steps) {
    java.util.TreeSet<Integer> cuts = new java.util.TreeSet<>();
    for (int s : starts) {
      cuts.add(s);
    }
    int n = steps.size();
    for (int i = 0; i < n; i++) {
      if (steps.get(i).op() != Expr.Op.QUADRATURE) {
        continue;
      }
      int last = i;
      for (int j = i + 1; j < n; j++) {
        if (Quadrature.together(steps.get(i), steps.get(j))) {
          last = j;
        }
      }
      cuts.add(i);
      cuts.add(last + 1);
      i = last;
    }
    return cuts.stream().mapToInt(Integer::intValue).toArray();
  }

  /** Compiles {@code source} in memory; its public constructor, or null (logged once) on failure. */
  private static MethodHandle javac(String name, String source) {
    if (System.getProperty("ntk.cpu.fused.dump") != null) {
      try {
        java.nio.file.Files.writeString(java.nio.file.Path.of(System.getProperty("ntk.cpu.fused.dump")), source);
      } catch (java.io.IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    }
    try {
      Class<?> type = InMemoryJavac.load(name, source, Fused.class.getClassLoader());
      return MethodHandles.publicLookup().findConstructor(type,
          MethodType.methodType(void.class, Object[].class, int[].class, Object.class, int[][].class));
    } catch (Exception | LinkageError e) {
      unavailable = true;
      LOG.warn("ntk: fused kernel loops could not be compiled, the cpu backend interprets its steps "
          + "(slower): {}", e.toString().lines().findFirst().orElse(""));
      LOG.debug("ntk: fused loop source:\n{}", source, e);
      return null;
    }
  }
}
