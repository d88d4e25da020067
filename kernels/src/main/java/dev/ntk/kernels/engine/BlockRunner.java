package dev.ntk.kernels.engine;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * The {@code cpu} backend's path for plans with pixel blocks (convolutional networks): the steps
 * run item by item over whole blocks, first for every row input, then for every column input,
 * then for every pair, each thread with registers of its own. A block of {@code P} numbers is one
 * vectorised pass per step; structural steps (convolutions, pooling, diagonals, sums) run between
 * them on the same registers.
 *
 * @param <A> {@code float[]} or {@code double[]}
 */
final class BlockRunner<A> {
  private final ChunkOps<A> ops;
  private final Schedule schedule;
  private final Map<String, ?> inputs;
  private final int n1;
  private final int n2;
  private final Map<Expr, A> exports = new IdentityHashMap<>();

  BlockRunner(ChunkOps<A> ops, Schedule schedule, Map<String, ?> inputs, int n1, int n2) {
    this.ops = ops;
    this.schedule = schedule;
    this.inputs = inputs;
    this.n1 = n1;
    this.n2 = n2;
  }

  void run(int threads, boolean symmetric, Map<String, ?> out) {
    for (int pass = 0; pass < 2; pass++) {
      for (Expr e : schedule.blockSteps(pass)) {
        if (schedule.exported(e)) {
          exports.put(e, ops.allocate(Math.multiplyExact(pass == 0 ? n1 : n2, e.layout().size())));
        }
      }
    }
    // The per-input passes, each input on one of the workers (a full covariance per input costs
    // as much as a pair).
    Item rows = perInput(0, n1, threads);
    Item cols = perInput(1, n2, threads);
    vectorOutputs(schedule.rowOutputs(), rows, n1, true, out);
    vectorOutputs(schedule.colOutputs(), cols, n2, false, out);
    boolean mirror = symmetric && schedule.outputs().values().stream().allMatch(e -> e.layout().isScalar());
    int workers = Math.max(1, Math.min(threads, n1));
    if (workers == 1) {
      Item pairs = new Item(2);
      for (int i = 0; i < n1; i++) {
        for (int j = mirror ? i : 0; j < n2; j++) {
          pairs.run(i, j, out);
        }
      }
    } else {
      // Pairs handed out one by one (a few heavy pairs, as with a full covariance, balance too),
      // each worker thread with an item of its own.
      ThreadLocal<Item> items = ThreadLocal.withInitial(() -> new Item(2));
      long count = mirror ? (long) n1 * (n1 + 1) / 2 : (long) n1 * n2;
      int[] rowStart = new int[n1 + 1];
      for (int i = 0; i < n1; i++) {
        rowStart[i + 1] = rowStart[i] + (mirror ? n1 - i : n2);
      }
      IntStream.range(0, Math.toIntExact(count)).parallel().forEach(k -> {
        int i = java.util.Arrays.binarySearch(rowStart, k);
        i = i >= 0 ? i : -i - 2;
        while (rowStart[i + 1] <= k) {
          i++;
        }
        int j = (mirror ? i : 0) + k - rowStart[i];
        items.get().run(i, j, out);
      });
    }
    if (mirror) {
      CpuBackend.mirror(ops, schedule.outputs().keySet().stream().map(out::get).toList(), n1, workers);
    }
  }

  /** Runs per-input pass {@code pass} for its {@code n} inputs on up to {@code threads} workers; one of its items. */
  private Item perInput(int pass, int n, int threads) {
    int workers = Math.max(1, Math.min(threads, n));
    List<Item> items = IntStream.range(0, workers).parallel().mapToObj(w -> {
      Item item = new Item(pass);
      for (int k = w; k < n; k += workers) {
        item.run(pass == 0 ? k : -1, pass == 0 ? -1 : k, null);
      }
      return item;
    }).toList();
    return items.get(0);
  }

  /** The per-input outputs, from the values the pass kept for every input (or inputs, constants). */
  private void vectorOutputs(Map<String, Expr> outputs, Item item, int n, boolean row, Map<String, ?> out) {
    for (Map.Entry<String, Expr> o : outputs.entrySet()) {
      for (int k = 0; k < n; k++) {
        item.store(o.getValue(), row ? k : -1, row ? -1 : k, out.get(o.getKey()), k);
      }
    }
  }

  /** Where a step finds an operand: an array and offset, broadcast if it is one number. */
  private static final class Operand {
    /** What the operand is bound to once per pass: see {@link Item#bind}. */
    static final int CONST = 0;
    static final int REGISTER = 1;
    static final int ARRAY = 2;
    static final int BLOCK = 3;
    /** A value computed and read within one chunk of a run (see {@link Item#local}). */
    static final int LOCAL = 4;
    int kind = -1;
    Object base;
    Expr.Domain domain;
    int size;
    boolean scalarInBlock;
    String name;
    Object array;
    int offset;
    boolean broadcast;
  }

  /** A pixel map that runs chunk by chunk ({@link PixelMap#chunked}). */
  private static boolean chunkedMap(Expr e) {
    return e.op() == Expr.Op.PIXELS && e.map().chunked();
  }

  private static boolean isSpread(Expr.Op op) {
    return op == Expr.Op.SPREAD_ROW || op == Expr.Op.SPREAD_COL;
  }

  /** One pass's registers and buffers, run for one item at a time. */
  private final class Item {
    private final int pass;
    private final List<Expr> steps;
    private final A[] registers;
    private final Map<String, A> staged = new HashMap<>();
    private final Map<String, long[]> stagedAt = new HashMap<>();
    private final Map<Expr, List<String>> outputNames = new IdentityHashMap<>();
    private final java.util.Set<Expr> mine = java.util.Collections.newSetFromMap(new IdentityHashMap<>());

    @SuppressWarnings({"unchecked", "rawtypes"})
    Item(int pass) {
      this.pass = pass;
      this.steps = schedule.blockSteps(pass);
      mine.addAll(steps);
      int size = schedule.blockSize(pass);
      registers = (A[]) new Object[schedule.blockRegisterCount(pass)];
      for (int r = 0; r < registers.length; r++) {
        registers[r] = ops.allocate(size);
      }
      if (pass == 2) {
        schedule.outputs().forEach((name, e) -> outputNames.computeIfAbsent(e, x -> new ArrayList<>()).add(name));
      }
      int scratch = 1;
      int product = 1;
      for (Expr e : steps) {
        if (e.op() == Expr.Op.PIXELS) {
          scratch = Math.max(scratch, e.map().scratchSize());
        } else if (e.op() == Expr.Op.ATTEND) {
          product = Math.max(product, e.layout().size());
        }
      }
      this.scratch = new PixelMap.Scratch<>(ops.allocate(scratch));
      this.product = ops.allocate(product);
      stepArray = steps.toArray(new Expr[0]);
      targets = new int[stepArray.length];
      operands = new Operand[stepArray.length][3];
      broadcastBuffers = (A[][]) new Object[stepArray.length][3];
      spreadInputs = (A[]) new Object[stepArray.length];
      exportArrays = (A[]) new Object[stepArray.length];
      sizes = new int[stepArray.length];
      structural = new boolean[stepArray.length];
      arity = new int[stepArray.length];
      stepOutputs = new List[stepArray.length];
      for (int k = 0; k < stepArray.length; k++) {
        targets[k] = schedule.blockRegister(pass, stepArray[k]);
        sizes[k] = stepArray[k].layout().size();
        // A spread, and a stride-1 convolution, are computed chunk by chunk within a run, like an
        // entry-wise step.
        structural[k] = stepArray[k].op().structural() && !isSpread(stepArray[k].op()) && !chunkedMap(stepArray[k]);
        List<Expr> args = stepArray[k].operands();
        arity[k] = args.size();
        stepOutputs[k] = outputNames.get(stepArray[k]);
        for (int o = 0; o < 3; o++) {
          operands[k][o] = new Operand();
          broadcastBuffers[k][o] = ops.allocate(ChunkOps.BROADCAST_LENGTH);
        }
        if (pass < 2 && schedule.exported(stepArray[k])) {
          exportArrays[k] = exports.get(stepArray[k]);
        }
        if (isSpread(stepArray[k].op()) && sizes[k] > CHUNK) {
          spreadInputs[k] = ops.allocate(stepArray[k].a().layout().size());
        }
      }
      for (int k = 0; k < stepArray.length; k++) {
        List<Expr> args = stepArray[k].operands();
        for (int o = 0; o < args.size(); o++) {
          bind(args.get(o), operands[k][o], broadcastBuffers[k][o], sizes[k] > 1 && !structural[k]);
        }
      }
      local = chunkLocals();
    }

    /**
     * Which steps of a run of entry-wise steps (see {@link #run}) keep their value in a chunk-sized
     * buffer instead of their block-sized register: those read only by later steps of the same
     * run, and neither exported nor written out. A run over large blocks (a pixel-pair covariance
     * of 32 x 32 images has a million entries) then writes only the values that outlive it to
     * memory, not every intermediate of every layer. Binds their readers to those buffers.
     */
    private boolean[] chunkLocals() {
      int n = stepArray.length;
      boolean[] result = new boolean[n];
      Map<Expr, Integer> index = new IdentityHashMap<>();
      int[] runStart = new int[n];
      int[] lastReader = new int[n];
      java.util.Arrays.fill(lastReader, -1);
      boolean[] readElsewhere = new boolean[n];
      int longest = 0;
      for (int k = 0; k < n; k++) {
        boolean continues = k > 0 && !structural[k] && !structural[k - 1] && sizes[k] == sizes[k - 1];
        if (continues && chunkedMap(stepArray[k])) {
          // A convolution reads its whole input block before the run's first chunk: not from the run.
          Integer j = index.get(stepArray[k].a());
          continues = j == null || runStart[j] != runStart[k - 1];
        }
        index.put(stepArray[k], k);
        runStart[k] = continues ? runStart[k - 1] : k;
        longest = Math.max(longest, k - runStart[k] + 1);
        for (Expr arg : stepArray[k].operands()) {
          Integer j = index.get(arg);
          if (j != null) {
            if (runStart[j] != runStart[k] || structural[k]) {
              readElsewhere[j] = true;
            }
            lastReader[j] = k;
          }
        }
      }
      temps = (A[]) new Object[longest];
      for (int k = 0; k < n; k++) {
        result[k] = !structural[k] && sizes[k] > CHUNK && !readElsewhere[k] && lastReader[k] >= 0
            && stepOutputs[k] == null && exportArrays[k] == null
            && !schedule.outputs().containsValue(stepArray[k]);
        if (result[k] && temps[k - runStart[k]] == null) {
          temps[k - runStart[k]] = ops.allocate(CHUNK);
        }
      }
      for (int k = 0; k < n; k++) {
        List<Expr> args = stepArray[k].operands();
        for (int o = 0; o < args.size(); o++) {
          Integer j = index.get(args.get(o));
          if (j != null && result[j]) {
            operands[k][o].kind = Operand.LOCAL;
            operands[k][o].base = temps[j - runStart[j]];
          }
        }
      }
      runStarts = runStart;
      runEnds = new int[n];
      int[] ordinal = new int[n];
      int maps = 0;
      int padSize = 1;
      for (int k = 0; k < n; k++) {
        runEnds[runStart[k]] = k + 1;
        if (chunkedMap(stepArray[k])) {
          ordinal[k] = k > runStart[k] ? count(runStart[k], k) : 0;
          maps = Math.max(maps, ordinal[k] + 1);
          padSize = Math.max(padSize, stepArray[k].map().scratchSize());
        }
      }
      padOrdinal = ordinal;
      pads = new PixelMap.Scratch[maps];
      for (int p = 0; p < maps; p++) {
        pads[p] = new PixelMap.Scratch<>(ops.allocate(padSize));
      }
      return result;
    }

    /** The convolutions of steps {@code [from, to)}. */
    private int count(int from, int to) {
      int c = 0;
      for (int k = from; k < to; k++) {
        c += chunkedMap(stepArray[k]) ? 1 : 0;
      }
      return c;
    }

    /** Decides once where operand {@code e} of a step is found, for every item of the pass. */
    private Operand bind(Expr e, Operand o, A buffer, boolean inBlock) {
      o.domain = e.domain();
      o.size = e.layout().size();
      o.scalarInBlock = inBlock && e.layout().isScalar();
      if (e.isConstant()) {
        o.kind = Operand.CONST;
        ops.fill(buffer, 0, ChunkOps.BROADCAST_LENGTH, e.value());
        o.base = buffer;
      } else if (e.op() == Expr.Op.BLOCK) {
        o.kind = Operand.ARRAY;
        o.base = ops.fromDoubles(e.blockValues());
      } else if (e.op() == Expr.Op.INPUT) {
        Object in = inputs.get(e.name());
        o.kind = in instanceof BlockInput<?> ? Operand.BLOCK : Operand.ARRAY;
        o.base = in;
        o.name = e.name();
      } else if (!mine.contains(e) && exports.containsKey(e)) {
        o.kind = Operand.ARRAY;
        o.base = exports.get(e);
      } else {
        o.kind = Operand.REGISTER;
        o.base = registers[schedule.blockRegister(pass, e)];
      }
      return o;
    }

    /** The operand bound by {@link #bind} for row input {@code i} and column input {@code j}. */
    private Operand fast(Operand o, int i, int j) {
      switch (o.kind) {
        case Operand.CONST -> {
          o.array = o.base;
          o.offset = 0;
          o.broadcast = true;
        }
        case Operand.REGISTER, Operand.LOCAL -> {
          o.array = o.base;
          o.offset = 0;
          o.broadcast = false;
        }
        case Operand.ARRAY -> {
          o.array = o.base;
          o.offset = switch (o.domain) {
            case ROW -> i;
            case COL -> j;
            case TILE -> i * n2 + j;
            case CONST -> 0; // a constant block
          } * o.size;
          o.broadcast = false;
        }
        default -> {
          o.array = staged(o.name, o.domain, o.size, i, j);
          o.offset = 0;
          o.broadcast = false;
        }
      }
      return o;
    }

    /** The block of input {@code name} for this item, computed once per item ({@link BlockInput}). */
    private A staged(String name, Expr.Domain domain, int m, int i, int j) {
      long[] at = stagedAt.computeIfAbsent(name, x -> new long[] {Long.MIN_VALUE, Long.MIN_VALUE});
      A buffer = staged.computeIfAbsent(name, x -> ops.allocate(m));
      int bi = domain == Expr.Domain.COL ? -1 : i;
      int bj = domain == Expr.Domain.ROW ? -1 : j;
      if (at[0] != bi || at[1] != bj) {
        @SuppressWarnings("unchecked")
        BlockInput<A> typed = (BlockInput<A>) inputs.get(name);
        typed.fill(bi, bj, buffer);
        at[0] = bi;
        at[1] = bj;
      }
      return buffer;
    }

    private final PixelMap.Scratch<A> scratch;
    /** The left product {@code b a} of an {@link Expr.Op#ATTEND} step. */
    private final A product;
    private final Expr[] stepArray;
    private final int[] sizes;
    private final boolean[] structural;
    private final int[] arity;
    private final List<String>[] stepOutputs;
    /** Whether a step's value lives in a chunk buffer, {@code temps[k - runStarts[k]]}. */
    private final boolean[] local;
    private A[] temps;
    private int[] runStarts;
    /** For a run's first step, the step after its last. */
    private int[] runEnds;
    /** Padded grids of the convolutions of a run, by their order in it ({@code padOrdinal}). */
    private PixelMap.Scratch<A>[] pads;
    private int[] padOrdinal;
    private final int[] targets;
    private final Operand[][] operands;
    private final A[][] broadcastBuffers;
    /** The per-pixel block a spread over several chunks reads, copied before its run (see {@link #run}). */
    private final A[] spreadInputs;
    private final A[] exportArrays;

    /** Entries per chunk of a run of entry-wise steps over large blocks: a few registers stay in cache. */
    private static final int CHUNK = 2048;

    /** Every step of this pass for row input {@code i} and column input {@code j}. */
    void run(int i, int j, Map<String, ?> out) {
      int pair = pass == 2 ? i * n2 + j : -1;
      int item = pass == 0 ? i : pass == 1 ? j : pair;
      int n = stepArray.length;
      for (int s = 0; s < n; ) {
        Expr e = stepArray[s];
        if (structural[s]) {
          structural(e, fast(operands[s][0], i, j), e.op() == Expr.Op.ATTEND ? fast(operands[s][1], i, j) : null,
              e.op() == Expr.Op.ATTEND ? fast(operands[s][2], i, j) : null, target(s));
          finish(s, item, 0, sizes[s], out);
          s++;
          continue;
        }
        // A run of entry-wise steps over blocks of one size, fused chunk by chunk: each entry's
        // operations happen in the same order as step by step, so registers may be reused.
        int m = sizes[s];
        int end = s;
        while (end < runEnds[s]) {
          if (chunkedMap(stepArray[end])) {
            Operand in = fast(operands[end][0], i, j);
            stepArray[end].map().prepare(ops, array(in), in.offset, pads[padOrdinal[end]]);
            end++;
            continue;
          }
          if (spreadInputs[end] != null) {
            // Every chunk of a spread reads the whole per-pixel block, whose register a later step of
            // the run may take once the spread is its last reader (step by step it would be): a copy.
            Operand in = fast(operands[end][0], i, j);
            ops.copy(array(in), in.offset, spreadInputs[end], 0, stepArray[end].a().layout().size());
            end++;
            continue;
          }
          for (int k = 0; k < arity[end]; k++) {
            Operand o = fast(operands[end][k], i, j);
            if (!o.broadcast && o.scalarInBlock) {
              ops.fill(broadcastBuffers[end][k], 0, ChunkOps.BROADCAST_LENGTH, ops.get(array(o), o.offset));
              o.array = broadcastBuffers[end][k];
              o.offset = 0;
              o.broadcast = true;
            }
          }
          end++;
        }
        for (int c0 = 0; c0 < m; c0 += CHUNK) {
          int len = Math.min(CHUNK, m - c0);
          for (int k = s; k < end; k++) {
            Operand[] o = operands[k];
            Operand b = stepArray[k].b() == null ? o[0] : o[1];
            int ao = at(o[0], c0);
            int bo = at(b, c0);
            A target = local[k] ? temps[k - runStarts[k]] : target(k);
            int to = local[k] ? 0 : c0;
            if (chunkedMap(stepArray[k])) {
              stepArray[k].map().chunk(ops, pads[padOrdinal[k]], target, to, c0, len);
            } else if (isSpread(stepArray[k].op())) {
              A in = spreadInputs[k] != null ? spreadInputs[k] : array(o[0]);
              spread(stepArray[k].op(), in, spreadInputs[k] != null ? 0 : o[0].offset, stepArray[k].layout().pixels(),
                  target, to, c0, len);
            } else if (stepArray[k].op().ternary()) {
              ops.ternary(stepArray[k], array(o[0]), ao, mask(o[0]), array(b), bo, mask(b), array(o[2]), at(o[2], c0), mask(o[2]),
                  target, to, len);
            } else {
              ops.apply(stepArray[k].op(), array(o[0]), ao, mask(o[0]), array(b), bo, mask(b), target, to, len);
            }
            if (!local[k]) {
              finish(k, item, c0, len, out);
            }
          }
        }
        s = end;
      }
      if (pass == 2) {
        for (Map.Entry<String, Expr> o : schedule.outputs().entrySet()) {
          if (!mine.contains(o.getValue())) {
            store(o.getValue(), i, j, out.get(o.getKey()), pair);
          }
        }
      }
    }

    /**
     * Writes the value of {@code e} for row input {@code i} and column input {@code j} as entry
     * {@code index} (of its block size) of {@code to}: an output that is not a step of this pass
     * (an input, a constant, a per-input value kept for every input).
     */
    void store(Expr e, int i, int j, Object to, int index) {
      int m = e.layout().size();
      A kept = exports.get(e);
      if (kept != null) {
        ops.store(kept, (e.domain() == Expr.Domain.ROW ? i : j) * m, to, index * m, m);
        return;
      }
      Operand v = fast(bind(e, new Operand(), ops.allocate(ChunkOps.BROADCAST_LENGTH), false), i, j);
      A block = v.broadcast ? spread(v, m) : array(v);
      ops.store(block, v.broadcast ? 0 : v.offset, to, index * m, m);
    }

    private A target(int step) {
      return registers[targets[step]];
    }

    /** Entries {@code [c0, c0 + len)} of step {@code s}'s value: exported, or written out. */
    private void finish(int s, int item, int c0, int len, Map<String, ?> out) {
      int m = sizes[s];
      if (exportArrays[s] != null) {
        ops.copy(target(s), c0, exportArrays[s], item * m + c0, len);
      }
      List<String> names = stepOutputs[s];
      if (names != null) {
        for (String name : names) {
          ops.store(target(s), c0, out.get(name), item * m + c0, len);
        }
      }
    }

    private int mask(Operand o) {
      return o.broadcast ? ChunkOps.BROADCAST : ChunkOps.ALL;
    }

    /**
     * Entries {@code [c0, c0 + len)} of the pixel-pair block {@code [p, q] = in[p]} ({@code
     * SPREAD_ROW}) or {@code in[q]} ({@code SPREAD_COL}) of {@code pixels} x {@code pixels}, from
     * the per-pixel block at {@code in[io]}, into {@code out[oo]}: a chunk of a spread costs what
     * the chunk holds, where the whole block would be written to memory and read back.
     */
    private void spread(Expr.Op op, A in, int io, int pixels, A out, int oo, int c0, int len) {
      for (int e = c0; e < c0 + len; ) {
        int p = e / pixels;
        int q = e % pixels;
        int run = Math.min(pixels - q, c0 + len - e);
        if (op == Expr.Op.SPREAD_ROW) {
          ops.broadcast(in, io + p, out, oo + e - c0, run);
        } else {
          ops.copy(in, io + q, out, oo + e - c0, run);
        }
        e += run;
      }
    }

    /** Where chunk {@code c0} of an operand starts: a chunk buffer and a broadcast start at 0. */
    private static int at(Operand o, int c0) {
      return o.offset + (o.broadcast || o.kind == Operand.LOCAL ? 0 : c0);
    }

    @SuppressWarnings("unchecked")
    A array(Operand o) {
      return (A) o.array;
    }

    /** A broadcast value as a block of {@code m} equal numbers (for outputs). */
    A spread(Operand v, int m) {
      A block = ops.allocate(m);
      ops.fill(block, 0, m, ops.get(array(v), v.offset));
      return block;
    }

    private void structural(Expr e, Operand in, Operand left, Operand right, A target) {
      int m = e.a().layout().size();
      A a = array(in);
      int ao = in.offset;
      switch (e.op()) {
        case SOFTMAX -> softmax(a, ao, e.layout().pixels(), target);
        case ATTEND -> attend(a, ao, array(left), left.offset, array(right), right.offset, e.layout().pixels(),
            target);
        case DIAGONAL -> {
          int p = e.layout().pixels();
          for (int k = 0; k < p; k++) {
            ops.copy(a, ao + k * p + k, target, k, 1);
          }
        }
        case PIXELS -> {
          e.map().apply(ops, a, ao, target, 0, scratch);
        }
        case REDUCE -> {
          double s = 0;
          for (int k = 0; k < m; k++) {
            s += ops.get(a, ao + k);
          }
          ops.fill(target, 0, 1, s * e.value());
        }
        default -> throw new IllegalStateException(e.op().name());
      }
    }

    /** {@link Expr.Op#SOFTMAX}: each row of the {@code p x p} block at {@code a[ao]}, shifted by its maximum. */
    private void softmax(A a, int ao, int p, A target) {
      for (int r = 0; r < p; r++) {
        double max = Double.NEGATIVE_INFINITY;
        for (int q = 0; q < p; q++) {
          max = Math.max(max, ops.get(a, ao + r * p + q));
        }
        double sum = 0;
        double[] row = new double[p];
        for (int q = 0; q < p; q++) {
          row[q] = Math.exp(ops.get(a, ao + r * p + q) - max);
          sum += row[q];
        }
        for (int q = 0; q < p; q++) {
          ops.fill(target, r * p + q, 1, row[q] / sum);
        }
      }
    }

    /**
     * {@link Expr.Op#ATTEND}: {@code b a c^T} of the {@code p x p} blocks at {@code a[ao]}, {@code
     * b[bo]}, {@code c[co]}, as rows of multiply-adds: row {@code r} of {@code b a} is {@code sum_q
     * b[r, q] a[q, :]}, row {@code r} of the result {@code sum_q (b a)[r, q] c[:, q]}.
     */
    private void attend(A a, int ao, A b, int bo, A c, int co, int p, A target) {
      int m = p * p;
      ops.fill(product, 0, m, 0);
      ops.fill(target, 0, m, 0);
      for (int r = 0; r < p; r++) {
        for (int q = 0; q < p; q++) {
          double w = ops.get(b, bo + r * p + q);
          if (w != 0) {
            ops.axpy(w, a, ao + q * p, 1, product, r * p, p);
          }
        }
      }
      for (int r = 0; r < p; r++) {
        for (int q = 0; q < p; q++) {
          double w = ops.get(product, r * p + q);
          if (w != 0) {
            ops.axpy(w, c, co + q, p, target, r * p, p);
          }
        }
      }
    }
  }
}
