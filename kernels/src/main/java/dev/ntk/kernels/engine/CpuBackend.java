package dev.ntk.kernels.engine;

import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntConsumer;
import java.util.stream.IntStream;

/**
 * The {@code cpu} backend: runs a {@link Schedule} on Java arrays. The per-input steps run over
 * whole vectors; the per-pair steps run fused, row by row, over chunks of {@link #CHUNK} entries
 * that stay in the core's cache, so each output entry is read and written once however deep the
 * network is. The arithmetic is {@link VectorOps} (SIMD) when the JVM has the {@code
 * jdk.incubator.vector} module, else {@link ScalarOps}, with one warning line.
 *
 * <pre>{@code
 * double[] nngp = CpuBackend.float64().run(schedule, inputs, n1, n2, 1).get("nngp");
 * }</pre>
 *
 * @param <A> {@code float[]} or {@code double[]}
 */
public final class CpuBackend<A> {
  /** Entries per chunk: a few buffers of this size fit in a core's L1 or L2 cache. */
  static final int CHUNK = Integer.getInteger("ntk.cpu.chunk", 512);
  /** Padding of chunk buffers: at least one vector of the widest species. */
  static final int PAD = 128;

  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(CpuBackend.class);
  private static final boolean VECTOR = vectorModulePresent();

  /**
   * The work ({@code n1 n2} entries times the per-pair steps, in all) from which the per-pair steps
   * run as fused generated loops ({@link Fused}) rather than one pass per step. The loops run
   * about 1.6 times faster, but compiling and warming them costs about 4 CPU-seconds of a new JVM
   * (see {@code bench/README.md}): below this, that would cost more than it saves.
   * {@code -Dntk.cpu.fused=true|false} decides for every run instead ({@code now}: compiled and
   * warmed before the first run that needs it, for benchmarks).
   */
  public static final double FUSE_FROM = Double.parseDouble(System.getProperty("ntk.cpu.fused.min", "3e10"));
  private static final String FUSED = System.getProperty("ntk.cpu.fused", "auto");

  /** When the per-pair steps run as fused loops. */
  private enum Fusion {
    /** By the size of each run ({@link #FUSE_FROM}), compiled in the background. */
    AUTO,
    /** From the first chunk at which the loop, compiled in the background, is ready. */
    BACKGROUND,
    /** Always: compiled and warmed before the run starts. */
    NOW,
    /** Always: compiled before the run starts, its first chunks run in the JIT's slow tiers (tests). */
    COMPILED,
    NEVER
  }

  private final ChunkOps<A> ops;
  private final Fusion fusion;

  private CpuBackend(ChunkOps<A> ops) {
    this(ops, switch (FUSED) {
      case "true" -> Fusion.BACKGROUND;
      case "now" -> Fusion.NOW;
      case "false" -> Fusion.NEVER;
      default -> Fusion.AUTO;
    });
  }

  private CpuBackend(ChunkOps<A> ops, Fusion fusion) {
    this.ops = ops;
    this.fusion = fusion;
  }

  /**
   * This backend for one of many runs whose total work is {@code entrySteps} (see {@link
   * #FUSE_FROM}): a worker computing the tiles of a large job compiles the fused loops once and
   * uses them in later tiles, where each tile alone is too small to pay for them.
   */
  public CpuBackend<A> forWork(double entrySteps) {
    return fusion == Fusion.AUTO && entrySteps >= FUSE_FROM ? new CpuBackend<>(ops, Fusion.BACKGROUND) : this;
  }

  /** This backend with fused loops compiled before every run ({@code true}), or never. */
  CpuBackend<A> fused(boolean on) {
    return new CpuBackend<>(ops, on ? Fusion.COMPILED : Fusion.NEVER);
  }

  /** The float64 backend, vectorised where the JVM allows. */
  public static CpuBackend<double[]> float64() {
    return new CpuBackend<>(VECTOR ? VectorOps.FLOAT64 : ScalarOps.FLOAT64);
  }

  /** The float32 backend, vectorised where the JVM allows. */
  public static CpuBackend<float[]> float32() {
    return new CpuBackend<>(VECTOR ? VectorOps.FLOAT32 : ScalarOps.FLOAT32);
  }

  /** The scalar float64 backend, whatever the JVM: the fallback, for tests. */
  static CpuBackend<double[]> scalarFloat64() {
    return new CpuBackend<>(ScalarOps.FLOAT64);
  }

  /** Whether the SIMD loops are in use. */
  public static boolean vectorised() {
    return VECTOR;
  }

  private static boolean vectorModulePresent() {
    boolean present = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent();
    if (!present) {
      LOG.warn("ntk: the JVM runs without --add-modules jdk.incubator.vector: kernels are "
          + "computed with scalar loops, several times slower (bin/ntk adds the flag)");
    }
    return present;
  }

  /** {@code float32} or {@code float64}. */
  public String dtype() {
    return ops.dtype();
  }

  public A allocate(int length) {
    return ops.allocate(length);
  }

  public A fromDoubles(double[] values) {
    return ops.fromDoubles(values);
  }

  public double[] toDoubles(A array, int length) {
    return ops.toDoubles(array, length);
  }

  /**
   * Runs {@code schedule} for an {@code n1 x n2} tile: {@code inputs} maps the schedule's inputs
   * to arrays ({@code n1} or {@code n2} values for per-input ones; {@code (n1, n2)} row-major for
   * pair inputs, which may also be a direct {@code FloatBuffer} or {@code DoubleBuffer});
   * the result maps each output name to a new row-major {@code n1 x n2} array (times the block size
   * of a pixel kernel, see {@link Layout}; pixel inputs may also be {@link BlockInput}s). {@code threads}
   * workers split the rows (1 inside a Beam worker, which is one thread already).
   */
  public Map<String, A> run(Schedule schedule, Map<String, ?> inputs, int n1, int n2, int threads) {
    return run(schedule, inputs, n1, n2, threads, false);
  }

  /**
   * As {@link #run(Schedule, Map, int, int, int)}; with {@code symmetric} (x1 with itself, so the
   * outputs are symmetric and the pair inputs need only their upper triangle, as a {@code syrk}
   * writes it), only the entries on and above the diagonal are computed, and mirrored.
   */
  public Map<String, A> run(Schedule schedule, Map<String, ?> inputs, int n1, int n2, int threads,
      boolean symmetric) {
    Map<String, A> out = new LinkedHashMap<>();
    schedule.outputs().forEach((name, e) ->
        out.put(name, ops.allocate(Math.multiplyExact(Math.multiplyExact(n1, n2), e.layout().size()))));
    schedule.rowOutputs().forEach((name, e) -> out.put(name, ops.allocate(n1 * e.layout().size())));
    schedule.colOutputs().forEach((name, e) -> out.put(name, ops.allocate(n2 * e.layout().size())));
    run(schedule, inputs, n1, n2, threads, symmetric, out);
    return out;
  }

  /**
   * As {@link #run(Schedule, Map, int, int, int, boolean)}, into the caller's outputs: arrays, or
   * for the pair outputs also direct {@code FloatBuffer}s or {@code DoubleBuffer}s (which a
   * TensorFlow tensor is then made from with one copy).
   */
  public void run(Schedule schedule, Map<String, ?> inputs, int n1, int n2, int threads, boolean symmetric,
      Map<String, ?> out) {
    if (symmetric && n1 != n2) {
      throw new IllegalArgumentException("a symmetric tile is square, got " + n1 + " x " + n2);
    }
    for (String name : schedule.inputs()) {
      if (!inputs.containsKey(name)) {
        throw new IllegalArgumentException("the plan needs input " + name + ", got " + inputs.keySet());
      }
    }
    if (schedule.blocks()) {
      new BlockRunner<>(ops, schedule, inputs, n1, n2).run(threads, symmetric, out);
      return;
    }
    Map<Expr, A> vectors = vectorPass(schedule, inputs, n1, n2);
    vectorOutputs(schedule.rowOutputs(), vectors, inputs, n1, out);
    vectorOutputs(schedule.colOutputs(), vectors, inputs, n2, out);
    int workers = Math.max(1, Math.min(threads, n1));
    // Forced on, the fused loop is compiled before the tile runs; by size, in the background,
    // the steps interpreted until it is ready.
    Fusion mode = fusion == Fusion.AUTO && (double) n1 * n2 * schedule.tileWork() >= FUSE_FROM
        ? Fusion.BACKGROUND : fusion;
    Fused.When wanted = switch (mode) {
      case BACKGROUND -> Fused.When.BACKGROUND;
      case NOW -> Fused.When.WARMED;
      case COMPILED -> Fused.When.COMPILED;
      default -> null;
    };
    Fused.When fuse = wanted != null && Fused.available() ? wanted : null;
    Fused.Program[] program = {null};
    if (workers == 1) {
      new TileWorker(schedule, inputs, vectors, n2, symmetric, out, fuse, program).rows(0, n1);
    } else {
      int[] bounds = rowBlocks(n1, n2, Math.min(n1, workers * 8), symmetric);
      IntStream.range(0, bounds.length - 1).parallel().forEach(b ->
          new TileWorker(schedule, inputs, vectors, n2, symmetric, out, fuse, program)
              .rows(bounds[b], bounds[b + 1]));
    }
    if (symmetric) {
      mirror(ops, schedule.outputs().keySet().stream().map(out::get).toList(), n1, threads);
    }
  }

  /** The rows of {@code n2} entries a {@link TileWorker} chunk holds: 1 where a row fills a chunk. */
  private static int rowsPerChunk(int n2) {
    return n2 >= CHUNK ? 1 : CHUNK / n2;
  }

  /**
   * Row boundaries of {@code blocks} blocks of equal work (rows of a symmetric tile shrink), each
   * on a multiple of the rows a {@link TileWorker} chunk holds ({@link #rowsPerChunk}): the chunks
   * are then the same on any number of threads, so every entry falls in the same place of its chunk
   * (a vector lane or the scalar tail, which round differently) and the kernels are the same to the
   * bit ({@code ThreadsTest}).
   */
  private static int[] rowBlocks(int n1, int n2, int blocks, boolean symmetric) {
    int step = rowsPerChunk(n2);
    int[] bounds = new int[blocks + 1];
    double total = symmetric ? (double) n1 * (n1 + 1) / 2 : (double) n1 * n2;
    int row = 0;
    double done = 0;
    for (int b = 1; b < blocks; b++) {
      while (row < n1 && done < total * b / blocks) {
        for (int end = Math.min(n1, row + step); row < end; row++) {
          done += symmetric ? n1 - row : n2;
        }
      }
      bounds[b] = row;
    }
    bounds[blocks] = n1;
    return bounds;
  }

  /**
   * Mirrors the upper triangles of the {@code n x n} {@code matrices} onto their lower ones, with
   * {@code threads} workers splitting the rows into blocks of equal work.
   */
  static void mirror(ChunkOps<?> ops, List<?> matrices, int n, int threads) {
    if (threads <= 1) {
      for (Object m : matrices) {
        ops.mirror(m, n, 0, n);
      }
      return;
    }
    int blocks = Math.max(1, Math.min(n / 64, threads * 4));
    int[] bounds = new int[blocks + 1];
    for (int b = 1; b <= blocks; b++) {
      // Row i of the lower triangle has i entries: equal areas end at n sqrt(b / blocks).
      bounds[b] = b == blocks ? n : (int) Math.round(n * Math.sqrt((double) b / blocks));
    }
    IntStream.range(0, blocks).parallel().forEach(b -> {
      for (Object m : matrices) {
        ops.mirror(m, n, bounds[b], bounds[b + 1]);
      }
    });
  }


  private void vectorOutputs(Map<String, Expr> outputs, Map<Expr, A> vectors, Map<String, ?> inputs, int n,
      Map<String, ?> out) {
    for (Map.Entry<String, Expr> o : outputs.entrySet()) {
      Expr e = o.getValue();
      A values = e.isConstant() ? ops.allocate(n) : vector(e, vectors, inputs, n);
      if (e.isConstant()) {
        ops.fill(values, 0, n, e.value());
      }
      ops.store(values, 0, out.get(o.getKey()), 0, n);
    }
  }

  /** The per-input steps over whole vectors; returns every per-input value by its expression. */
  private Map<Expr, A> vectorPass(Schedule schedule, Map<String, ?> inputs, int n1, int n2) {
    Map<Expr, A> values = new IdentityHashMap<>();
    for (Expr e : schedule.vectorSteps()) {
      int n = e.domain() == Expr.Domain.ROW ? n1 : n2;
      A result = ops.allocate(n);
      Expr b = e.b() == null ? e.a() : e.b();
      if (e.op().ternary()) {
        ops.ternary(e, vector(e.a(), values, inputs, n), 0, mask(e.a()), vector(b, values, inputs, n), 0, mask(b),
            vector(e.c(), values, inputs, n), 0, mask(e.c()), result, 0, n);
      } else {
        ops.apply(e.op(), vector(e.a(), values, inputs, n), 0, mask(e.a()),
            vector(b, values, inputs, n), 0, mask(b), result, 0, n);
      }
      values.put(e, result);
    }
    return values;
  }

  /** A per-input value over the whole vector; a constant as a broadcast buffer. */
  private A vector(Expr e, Map<Expr, A> values, Map<String, ?> inputs, int n) {
    return switch (e.op()) {
      case INPUT -> vectorInput(inputs, e.name());
      case CONST -> constant(e.value());
      default -> values.get(e);
    };
  }

  @SuppressWarnings("unchecked")
  private A vectorInput(Map<String, ?> inputs, String name) {
    return (A) inputs.get(name);
  }

  private static int mask(Expr e) {
    return e.isConstant() ? ChunkOps.BROADCAST : ChunkOps.ALL;
  }

  private A constant(double value) {
    A c = ops.allocate(ChunkOps.BROADCAST_LENGTH);
    ops.fill(c, 0, ChunkOps.BROADCAST_LENGTH, value);
    return c;
  }

  /** Where a tile step finds an operand in the current chunk. */
  private enum Source { REGISTER, COLUMN, ROW, CONSTANT }

  /**
   * One thread's share of the per-pair pass, with its own chunk registers. A chunk is a run of
   * {@link #CHUNK} columns of one row, or, when a row is shorter than that (a Beam tile of 256
   * columns), several whole rows, so that every step still runs over a full chunk: per-column
   * values are then read from a copy repeated once per row of the chunk, and per-row values from
   * a buffer filled for each chunk. With one row per chunk, per-row values are broadcast from a
   * short buffer filled once per row.
   */
  private final class TileWorker {
    private final Schedule schedule;
    private final int n2;
    private final boolean upper;
    private final int rowsPerChunk;
    private final Expr.Op[] opcodes;
    private final Expr[] steps;
    private final Source[][] sources;
    private final Object[][] arrays;
    private final A[] targets;
    private final Map<String, ?> out;
    private final Source[] outSource;
    private final Object[] outArray;
    private final A[] rowSources;
    private final A[] rowBuffers;
    private final Object[] pairSources;
    private final A constantChunk;
    private final A[] pairStages;
    /** The fused loop of the steps, or null; used from the first chunk at which it is ready. */
    private Fused.Program fusedProgram;
    /** The fused loop over the chunk once in use, else null (steps interpreted one pass each). */
    private IntConsumer fusedLoop;
    private Object[] fusedSlots;
    /** The fused loop's slot offsets: the chunk's first column, for per-column slots. */
    private int[] fusedOffsets;
    private final int[] columnSlots;
    private final Object[] fusedOutArray;

    @SuppressWarnings("unchecked")
    TileWorker(Schedule schedule, Map<String, ?> inputs, Map<Expr, A> vectors, int n2, boolean symmetric,
        Map<String, ?> out, Fused.When fuse, Fused.Program[] program) {
      this.schedule = schedule;
      this.n2 = n2;
      this.out = out;
      this.rowsPerChunk = rowsPerChunk(n2);
      // Rows of a symmetric tile start at the diagonal; several rows per chunk compute whole rows
      // (the lower triangle is then overwritten by the mirror).
      this.upper = symmetric && rowsPerChunk == 1;
      int chunk = rowsPerChunk == 1 ? CHUNK : rowsPerChunk * n2;
      // Chunk buffers are padded by a vector: a fused loop runs over whole vectors.
      int padded = chunk + PAD;
      A[] registers = (A[]) new Object[schedule.registerCount()];
      for (int r = 0; r < registers.length; r++) {
        registers[r] = ops.allocate(padded);
      }
      Map<Expr, A> rowBuffer = new IdentityHashMap<>();
      Map<String, A> staged = new java.util.LinkedHashMap<>();
      Map<Expr, A> columns = new IdentityHashMap<>();
      Map<Expr, A> constants = new IdentityHashMap<>();
      List<Expr> rows = new java.util.ArrayList<>();
      Resolver resolve = (e, sourceOut, arrayOut, i) -> {
        if (e.isConstant()) {
          sourceOut[i] = Source.CONSTANT;
          arrayOut[i] = constants.computeIfAbsent(e, c -> constant(c.value()));
          return;
        }
        boolean input = e.op() == Expr.Op.INPUT;
        switch (e.domain()) {
          case TILE -> {
            // A pair input is staged chunk by chunk into a register of its own (from an array,
            // or from the native buffer a GEMM wrote, which then needs no copy into the heap).
            sourceOut[i] = Source.REGISTER;
            arrayOut[i] = input ? staged.computeIfAbsent(e.name(), name -> ops.allocate(padded))
                : registers[schedule.register(e)];
          }
          case COL -> {
            sourceOut[i] = Source.COLUMN;
            A values = input ? vectorInput(inputs, e.name()) : vectors.get(e);
            arrayOut[i] = columns.computeIfAbsent(e, c -> repeat(values, n2, rowsPerChunk));
          }
          case ROW -> {
            sourceOut[i] = Source.ROW;
            arrayOut[i] = rowBuffer.computeIfAbsent(e, r -> {
              rows.add(r);
              return ops.allocate(rowsPerChunk == 1 ? ChunkOps.BROADCAST_LENGTH : padded);
            });
          }
          default -> throw new IllegalStateException(e.toString());
        }
      };
      List<Expr> steps = schedule.tileSteps();
      int k = steps.size();
      opcodes = new Expr.Op[k];
      this.steps = steps.toArray(new Expr[0]);
      sources = new Source[3][k];
      arrays = new Object[3][k];
      targets = (A[]) new Object[k];
      for (int i = 0; i < k; i++) {
        Expr e = steps.get(i);
        opcodes[i] = e.op();
        List<Expr> operands = e.operands();
        for (int o = 0; o < 3; o++) {
          resolve.at(operands.get(Math.min(o, operands.size() - 1)), sources[o], arrays[o], i);
        }
        targets[i] = registers[schedule.register(e)];
      }
      List<Expr> outputs = List.copyOf(schedule.outputs().values());
      outSource = new Source[outputs.size()];
      outArray = new Object[outputs.size()];
      for (int i = 0; i < outputs.size(); i++) {
        resolve.at(outputs.get(i), outSource, outArray, i);
      }
      rowSources = (A[]) new Object[rows.size()];
      rowBuffers = (A[]) new Object[rows.size()];
      for (int i = 0; i < rows.size(); i++) {
        Expr r = rows.get(i);
        rowSources[i] = r.op() == Expr.Op.INPUT ? vectorInput(inputs, r.name()) : vectors.get(r);
        rowBuffers[i] = rowBuffer.get(r);
      }
      pairSources = staged.keySet().stream().map(inputs::get).toArray();
      constantChunk = ops.allocate(chunk);
      pairStages = (A[]) staged.values().toArray();
      List<Integer> columnSlotList = new java.util.ArrayList<>();
      fusedOutArray = outArray.clone();
      // A Java function (Expr.Op.CALL) has no generated form: such a tile is interpreted.
      if (fuse != null && steps.stream().noneMatch(e -> e.op() == Expr.Op.CALL)) {
        fuse(steps, outputs, program, fuse, padded, columnSlotList);
      }
      columnSlots = columnSlotList.stream().mapToInt(Integer::intValue).toArray();
    }

    /**
     * The fused loop of this worker's steps over its own buffers (the program compiled once for
     * all workers of a run, in {@code program[0]}), with the outputs redirected to its output
     * slots; null if it cannot be compiled here.
     */
    private void fuse(List<Expr> steps, List<Expr> outputs, Fused.Program[] program, Fused.When when, int padded,
        List<Integer> columnSlotList) {
      Map<Expr, Integer> stepIndex = new IdentityHashMap<>();
      Map<Object, Integer> slotOf = new IdentityHashMap<>();
      List<Object> slotArrays = new java.util.ArrayList<>();
      List<Fused.Operand[]> operands = new java.util.ArrayList<>();
      for (int i = 0; i < steps.size(); i++) {
        Expr e = steps.get(i);
        stepIndex.put(e, i);
        List<Expr> in = e.operands();
        Fused.Operand[] resolved = new Fused.Operand[in.size()];
        for (int o = 0; o < in.size(); o++) {
          Expr x = in.get(o);
          if (x.isConstant()) {
            resolved[o] = Fused.Operand.constant(x.value());
          } else if (x.op() != Expr.Op.INPUT && x.domain() == Expr.Domain.TILE) {
            resolved[o] = Fused.Operand.step(stepIndex.get(x));
          } else {
            Object array = arrays[o][i];
            Source source = sources[o][i];
            int slot = slotOf.computeIfAbsent(array, a -> {
              slotArrays.add(a);
              if (source == Source.COLUMN && rowsPerChunk == 1) {
                columnSlotList.add(slotArrays.size() - 1);
              }
              return slotArrays.size() - 1;
            });
            resolved[o] = Fused.Operand.slot(slot, mask(source) == ChunkOps.BROADCAST);
          }
        }
        operands.add(resolved);
      }
      int[] outputSteps = outputs.stream().mapToInt(e -> stepIndex.getOrDefault(e, -1)).toArray();
      synchronized (program) {
        if (program[0] == null) {
          program[0] = Fused.compile(ops.dtype().equals("float32"), steps, operands, outputSteps,
              slotArrays.size(), when);
        }
      }
      Fused.Program p = program[0];
      if (p == null) {
        return;
      }
      Object[] slots = new Object[p.slots()];
      for (int s = 0; s < slots.length; s++) {
        slots[s] = s < slotArrays.size() ? slotArrays.get(s) : ops.allocate(padded);
      }
      for (int o = 0; o < outputSteps.length; o++) {
        if (outputSteps[o] >= 0) {
          fusedOutArray[o] = slots[p.outputSlot(o)];
        }
      }
      fusedOffsets = new int[slots.length];
      fusedSlots = slots;
      fusedProgram = p;
    }

    /** {@code values} ({@code n} of them) repeated {@code times} times, padded by a vector. */
    private A repeat(A values, int n, int times) {
      A r = ops.allocate(n * times + PAD);
      for (int t = 0; t < times; t++) {
        ops.copy(values, 0, r, t * n, n);
      }
      return r;
    }

    void rows(int from, int to) {
      List<Object> outArrays = schedule.outputs().keySet().stream().<Object>map(out::get).toList();
      if (rowsPerChunk == 1) {
        for (int i = from; i < to; i++) {
          for (int r = 0; r < rowSources.length; r++) {
            ops.broadcast(rowSources[r], i, rowBuffers[r], ChunkOps.BROADCAST_LENGTH);
          }
          for (int j0 = upper ? i : 0; j0 < n2; j0 += CHUNK) {
            chunk((long) i * n2, j0, Math.min(CHUNK, n2 - j0), outArrays);
          }
        }
        return;
      }
      for (int i = from; i < to; i += rowsPerChunk) {
        int rows = Math.min(rowsPerChunk, to - i);
        for (int r = 0; r < rowSources.length; r++) {
          for (int q = 0; q < rows; q++) {
            ops.broadcast(rowSources[r], i + q, rowBuffers[r], q * n2, n2);
          }
        }
        chunk((long) i * n2, 0, rows * n2, outArrays);
      }
    }

    /** Every step over entries {@code [rowBase + j0, rowBase + j0 + len)} of the tile. */
    @SuppressWarnings("unchecked")
    private void chunk(long rowBase, int j0, int len, List<Object> outArrays) {
      for (int p = 0; p < pairSources.length; p++) {
        ops.load(pairSources[p], (int) (rowBase + j0), pairStages[p], len);
      }
      if (fusedLoop == null && fusedProgram != null && fusedProgram.ready()) {
        fusedLoop = fusedProgram.bind(fusedSlots, fusedOffsets);
      }
      if (fusedLoop != null) {
        for (int s : columnSlots) {
          fusedOffsets[s] = j0;
        }
        fusedLoop.accept(len);
      }
      for (int s = 0; fusedLoop == null && s < opcodes.length; s++) {
        A a = (A) arrays[0][s];
        A b = (A) arrays[1][s];
        int ao = offset(sources[0][s], rowBase, j0);
        int bo = offset(sources[1][s], rowBase, j0);
        if (opcodes[s].ternary()) {
          ops.ternary(steps[s], a, ao, mask(sources[0][s]), b, bo, mask(sources[1][s]), (A) arrays[2][s],
              offset(sources[2][s], rowBase, j0), mask(sources[2][s]), targets[s], 0, len);
        } else {
          ops.apply(opcodes[s], a, ao, mask(sources[0][s]), b, bo, mask(sources[1][s]), targets[s], 0, len);
        }
      }
      int at = (int) (rowBase + j0);
      Object[] results = fusedLoop != null ? fusedOutArray : outArray;
      for (int o = 0; o < outArrays.size(); o++) {
        A from = (A) results[o];
        if (mask(outSource[o]) == ChunkOps.BROADCAST) {
          ops.fill(constantChunk, 0, len, ops.get(from, 0));
          ops.store(constantChunk, 0, outArrays.get(o), at, len);
        } else {
          ops.store(from, offset(outSource[o], rowBase, j0), outArrays.get(o), at, len);
        }
      }
    }

    private int mask(Source source) {
      return source == Source.CONSTANT || (source == Source.ROW && rowsPerChunk == 1)
          ? ChunkOps.BROADCAST : ChunkOps.ALL;
    }

    private int offset(Source source, long rowBase, int j0) {
      return source == Source.COLUMN && rowsPerChunk == 1 ? j0 : 0;
    }
  }

  @FunctionalInterface
  private interface Resolver {
    void at(Expr e, Source[] sourceOut, Object[] arrayOut, int i);
  }
}
