package dev.ntk.kernels.engine;

import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.logging.Logger;
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
  static final int CHUNK = 512;

  private static final Logger LOG = Logger.getLogger(CpuBackend.class.getName());
  private static final boolean VECTOR = vectorModulePresent();

  private final ChunkOps<A> ops;

  private CpuBackend(ChunkOps<A> ops) {
    this.ops = ops;
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
      LOG.warning("ntk: the JVM runs without --add-modules jdk.incubator.vector: kernels are "
          + "computed with scalar loops, several times slower (bin/ntk adds the flag)");
    }
    return present;
  }

  /** The array operations of this backend's dtype. */
  ChunkOps<A> ops() {
    return ops;
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

  /** Entry {@code index} of {@code array}. */
  public double get(A array, int index) {
    return ops.get(array, index);
  }

  public double[] toDoubles(A array, int length) {
    return ops.toDoubles(array, length);
  }

  /**
   * Runs {@code schedule} for an {@code n1 x n2} tile: {@code inputs} maps the schedule's inputs
   * to arrays ({@code (n1, n2)} for pair inputs, {@code n1} or {@code n2} for per-input ones);
   * the result maps each output name to a new row-major {@code n1 x n2} array. {@code threads}
   * workers split the rows (1 inside a Beam worker, which is one thread already).
   */
  public Map<String, A> run(Schedule schedule, Map<String, A> inputs, int n1, int n2, int threads) {
    Map<String, A> out = new LinkedHashMap<>();
    for (String name : schedule.outputs().keySet()) {
      out.put(name, ops.allocate(Math.multiplyExact(n1, n2)));
    }
    schedule.rowOutputs().keySet().forEach(name -> out.put(name, ops.allocate(n1)));
    schedule.colOutputs().keySet().forEach(name -> out.put(name, ops.allocate(n2)));
    run(schedule, inputs, n1, n2, threads, out);
    return out;
  }

  /** As {@link #run(Schedule, Map, int, int, int)}, into the caller's output arrays. */
  public void run(Schedule schedule, Map<String, A> inputs, int n1, int n2, int threads, Map<String, A> out) {
    for (String name : schedule.inputs()) {
      if (!inputs.containsKey(name)) {
        throw new IllegalArgumentException("the plan needs input " + name + ", got " + inputs.keySet());
      }
    }
    Map<Expr, A> vectors = vectorPass(schedule, inputs, n1, n2);
    vectorOutputs(schedule.rowOutputs(), vectors, inputs, n1, out);
    vectorOutputs(schedule.colOutputs(), vectors, inputs, n2, out);
    int workers = Math.max(1, Math.min(threads, n1));
    if (workers == 1) {
      new TileWorker(schedule, inputs, vectors, n2, out).rows(0, n1);
    } else {
      int blocks = Math.min(n1, workers * 4);
      IntStream.range(0, blocks).parallel().forEach(b -> new TileWorker(schedule, inputs, vectors, n2, out)
          .rows((int) ((long) n1 * b / blocks), (int) ((long) n1 * (b + 1) / blocks)));
    }
  }

  private void vectorOutputs(Map<String, Expr> outputs, Map<Expr, A> vectors, Map<String, A> inputs, int n,
      Map<String, A> out) {
    for (Map.Entry<String, Expr> o : outputs.entrySet()) {
      Expr e = o.getValue();
      if (e.isConstant()) {
        ops.fill(out.get(o.getKey()), 0, n, e.value());
      } else {
        ops.copy(vector(e, vectors, inputs, n), 0, out.get(o.getKey()), 0, n);
      }
    }
  }

  /** The per-input steps over whole vectors; returns every per-input value by its expression. */
  private Map<Expr, A> vectorPass(Schedule schedule, Map<String, A> inputs, int n1, int n2) {
    Map<Expr, A> values = new IdentityHashMap<>();
    for (Expr e : schedule.vectorSteps()) {
      int n = e.domain() == Expr.Domain.ROW ? n1 : n2;
      A result = ops.allocate(n);
      Expr b = e.b() == null ? e.a() : e.b();
      if (e.op() == Expr.Op.FMA) {
        ops.fma(vector(e.a(), values, inputs, n), 0, mask(e.a()), vector(b, values, inputs, n), 0, mask(b),
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
  private A vector(Expr e, Map<Expr, A> values, Map<String, A> inputs, int n) {
    return switch (e.op()) {
      case INPUT -> inputs.get(e.name());
      case CONST -> constant(e.value());
      default -> values.get(e);
    };
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
  private enum Source { REGISTER, PAIR_INPUT, COLUMN, ROW_BROADCAST, CONSTANT }

  /**
   * One thread's share of the per-pair pass: its own chunk registers, and one broadcast buffer per
   * per-row value that the tile steps read, refilled once per row.
   */
  private final class TileWorker {
    private final Schedule schedule;
    private final int n2;
    private final List<Expr> steps;
    private final Expr.Op[] opcodes;
    private final Source[] sourceA;
    private final Source[] sourceB;
    private final Source[] sourceC;
    private final A[] arrayA;
    private final A[] arrayB;
    private final A[] arrayC;
    private final A[] targets;
    private final Map<String, A> out;
    private final Source[] outSource;
    private final A[] outArray;
    private final List<Expr> rowValues;
    private final A[] rowSources;
    private final int[] rowIndexInput;
    private final A[] rowBuffers;

    @SuppressWarnings("unchecked")
    TileWorker(Schedule schedule, Map<String, A> inputs, Map<Expr, A> vectors, int n2, Map<String, A> out) {
      this.schedule = schedule;
      this.n2 = n2;
      this.out = out;
      this.steps = schedule.tileSteps();
      A[] registers = (A[]) new Object[schedule.registerCount()];
      for (int r = 0; r < registers.length; r++) {
        registers[r] = ops.allocate(CHUNK);
      }
      Map<Expr, A> broadcast = new IdentityHashMap<>();
      Map<Expr, A> constants = new IdentityHashMap<>();
      List<Expr> rows = new java.util.ArrayList<>();
      int k = steps.size();
      sourceA = new Source[k];
      sourceB = new Source[k];
      sourceC = new Source[k];
      arrayA = (A[]) new Object[k];
      arrayB = (A[]) new Object[k];
      arrayC = (A[]) new Object[k];
      targets = (A[]) new Object[k];
      Resolver resolve = (e, sources, arrays, i) -> {
        switch (e.op()) {
          case CONST -> {
            sources[i] = Source.CONSTANT;
            arrays[i] = constants.computeIfAbsent(e, c -> constant(c.value()));
          }
          default -> {
            switch (e.domain()) {
              case TILE -> {
                sources[i] = e.op() == Expr.Op.INPUT ? Source.PAIR_INPUT : Source.REGISTER;
                arrays[i] = e.op() == Expr.Op.INPUT ? inputs.get(e.name()) : registers[schedule.register(e)];
              }
              case COL -> {
                sources[i] = Source.COLUMN;
                arrays[i] = e.op() == Expr.Op.INPUT ? inputs.get(e.name()) : vectors.get(e);
              }
              case ROW -> {
                sources[i] = Source.ROW_BROADCAST;
                arrays[i] = broadcast.computeIfAbsent(e, r -> {
                  rows.add(r);
                  return ops.allocate(ChunkOps.BROADCAST_LENGTH);
                });
              }
              default -> throw new IllegalStateException(e.toString());
            }
          }
        }
      };
      opcodes = new Expr.Op[k];
      for (int i = 0; i < k; i++) {
        Expr e = steps.get(i);
        opcodes[i] = e.op();
        resolve.at(e.a(), sourceA, arrayA, i);
        resolve.at(e.b() == null ? e.a() : e.b(), sourceB, arrayB, i);
        resolve.at(e.c() == null ? e.a() : e.c(), sourceC, arrayC, i);
        targets[i] = registers[schedule.register(e)];
      }
      List<Expr> outputs = List.copyOf(schedule.outputs().values());
      outSource = new Source[outputs.size()];
      outArray = (A[]) new Object[outputs.size()];
      for (int i = 0; i < outputs.size(); i++) {
        resolve.at(outputs.get(i), outSource, outArray, i);
      }
      rowValues = rows;
      rowSources = (A[]) new Object[rows.size()];
      rowIndexInput = new int[rows.size()];
      rowBuffers = (A[]) new Object[rows.size()];
      for (int i = 0; i < rows.size(); i++) {
        Expr r = rows.get(i);
        rowSources[i] = r.op() == Expr.Op.INPUT ? inputs.get(r.name()) : vectors.get(r);
        rowBuffers[i] = broadcast.get(r);
      }
    }

    void rows(int from, int to) {
      List<A> outArrays = schedule.outputs().keySet().stream().map(out::get).toList();
      for (int i = from; i < to; i++) {
        for (int r = 0; r < rowValues.size(); r++) {
          ops.broadcast(rowSources[r], i, rowBuffers[r], ChunkOps.BROADCAST_LENGTH);
        }
        long rowBase = (long) i * n2;
        for (int j0 = 0; j0 < n2; j0 += CHUNK) {
          int len = Math.min(CHUNK, n2 - j0);
          for (int s = 0; s < opcodes.length; s++) {
            if (opcodes[s] == Expr.Op.FMA) {
              ops.fma(arrayA[s], offset(sourceA[s], rowBase, j0), maskOf(sourceA[s]),
                  arrayB[s], offset(sourceB[s], rowBase, j0), maskOf(sourceB[s]),
                  arrayC[s], offset(sourceC[s], rowBase, j0), maskOf(sourceC[s]), targets[s], 0, len);
            } else {
              ops.apply(opcodes[s], arrayA[s], offset(sourceA[s], rowBase, j0), maskOf(sourceA[s]),
                  arrayB[s], offset(sourceB[s], rowBase, j0), maskOf(sourceB[s]), targets[s], 0, len);
            }
          }
          for (int o = 0; o < outArrays.size(); o++) {
            if (maskOf(outSource[o]) == ChunkOps.BROADCAST) {
              ops.fill(outArrays.get(o), (int) (rowBase + j0), len, outValue(o));
            } else {
              ops.copy(outArray[o], offset(outSource[o], rowBase, j0), outArrays.get(o), (int) (rowBase + j0), len);
            }
          }
        }
      }
    }

    private double outValue(int o) {
      return ops.get(outArray[o], 0);
    }

    private int maskOf(Source source) {
      return source == Source.CONSTANT || source == Source.ROW_BROADCAST ? ChunkOps.BROADCAST : ChunkOps.ALL;
    }

    private int offset(Source source, long rowBase, int j0) {
      return switch (source) {
        case PAIR_INPUT -> (int) (rowBase + j0);
        case COLUMN -> j0;
        default -> 0;
      };
    }
  }

  @FunctionalInterface
  private interface Resolver {
    void at(Expr e, Source[] sources, Object[] arrays, int i);
  }
}
