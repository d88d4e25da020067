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
    Item rows = new Item(0);
    for (int i = 0; i < n1; i++) {
      rows.run(i, -1, null);
    }
    Item cols = new Item(1);
    for (int j = 0; j < n2; j++) {
      cols.run(-1, j, null);
    }
    vectorOutputs(schedule.rowOutputs(), rows, n1, true, out);
    vectorOutputs(schedule.colOutputs(), cols, n2, false, out);
    boolean mirror = symmetric && schedule.outputs().values().stream().allMatch(e -> e.layout().isScalar());
    int workers = Math.max(1, Math.min(threads, n1));
    int blocks = workers == 1 ? 1 : Math.min(n1, workers * 8);
    IntStream.range(0, blocks).parallel().forEach(b -> {
      Item pairs = new Item(2);
      for (int i = b; i < n1; i += blocks) {
        for (int j = mirror ? i : 0; j < n2; j++) {
          pairs.run(i, j, out);
        }
      }
    });
    if (mirror) {
      for (String name : schedule.outputs().keySet()) {
        ops.mirror(out.get(name), n1);
      }
    }
  }

  private void vectorOutputs(Map<String, Expr> outputs, Item item, int n, boolean row, Map<String, ?> out) {
    for (Map.Entry<String, Expr> o : outputs.entrySet()) {
      Expr e = o.getValue();
      int m = e.layout().size();
      for (int k = 0; k < n; k++) {
        Operand v = item.resolve(e, row ? k : -1, row ? -1 : k, new Operand(), ops.allocate(ChunkOps.BROADCAST_LENGTH));
        A block = v.broadcast ? item.spread(v, m) : item.array(v);
        ops.store(block, v.broadcast ? 0 : v.offset, out.get(o.getKey()), k * m, m);
      }
    }
  }

  /** Where a step finds an operand: an array and offset, broadcast if it is one number. */
  private static final class Operand {
    Object array;
    int offset;
    boolean broadcast;
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

    @SuppressWarnings("unchecked")
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
      stepArray = steps.toArray(new Expr[0]);
      targets = new int[stepArray.length];
      operands = new Operand[stepArray.length][3];
      broadcastBuffers = (A[][]) new Object[stepArray.length][3];
      exportArrays = (A[]) new Object[stepArray.length];
      for (int k = 0; k < stepArray.length; k++) {
        targets[k] = schedule.blockRegister(pass, stepArray[k]);
        for (int o = 0; o < 3; o++) {
          operands[k][o] = new Operand();
          broadcastBuffers[k][o] = ops.allocate(ChunkOps.BROADCAST_LENGTH);
        }
        if (pass < 2 && schedule.exported(stepArray[k])) {
          exportArrays[k] = exports.get(stepArray[k]);
        }
      }
    }

    private final Expr[] stepArray;
    private final int[] targets;
    private final Operand[][] operands;
    private final A[][] broadcastBuffers;
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
        if (e.op().structural()) {
          structural(e, resolve(e.a(), i, j, operands[s][0], broadcastBuffers[s][0]), target(s));
          finish(s, item, 0, e.layout().size(), out);
          s++;
          continue;
        }
        // A run of entry-wise steps over blocks of one size, fused chunk by chunk: each entry's
        // operations happen in the same order as step by step, so registers may be reused.
        int m = e.layout().size();
        int end = s;
        while (end < n && !stepArray[end].op().structural() && stepArray[end].layout().size() == m) {
          List<Expr> args = stepArray[end].operands();
          for (int k = 0; k < args.size(); k++) {
            Operand o = resolve(args.get(k), i, j, operands[end][k], broadcastBuffers[end][k]);
            if (!o.broadcast && m > 1 && args.get(k).layout().isScalar()) {
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
            int ao = o[0].offset + (o[0].broadcast ? 0 : c0);
            int bo = b.offset + (b.broadcast ? 0 : c0);
            if (stepArray[k].op() == Expr.Op.FMA) {
              ops.fma(array(o[0]), ao, mask(o[0]), array(b), bo, mask(b), array(o[2]),
                  o[2].offset + (o[2].broadcast ? 0 : c0), mask(o[2]), target(k), c0, len);
            } else {
              ops.apply(stepArray[k].op(), array(o[0]), ao, mask(o[0]), array(b), bo, mask(b), target(k), c0, len);
            }
            finish(k, item, c0, len, out);
          }
        }
        s = end;
      }
      if (pass == 2) {
        for (Map.Entry<String, Expr> o : schedule.outputs().entrySet()) {
          Expr e = o.getValue();
          if (!mine.contains(e)) {
            int m = e.layout().size();
            Operand v = resolve(e, i, j, new Operand(), ops.allocate(ChunkOps.BROADCAST_LENGTH));
            A block = v.broadcast ? spread(v, m) : array(v);
            ops.store(block, v.broadcast ? 0 : v.offset, out.get(o.getKey()), pair * m, m);
          }
        }
      }
    }

    private A target(int step) {
      return registers[targets[step]];
    }

    /** Entries {@code [c0, c0 + len)} of step {@code s}'s value: exported, or written out. */
    private void finish(int s, int item, int c0, int len, Map<String, ?> out) {
      int m = stepArray[s].layout().size();
      if (exportArrays[s] != null) {
        ops.copy(target(s), c0, exportArrays[s], item * m + c0, len);
      }
      List<String> names = outputNames.get(stepArray[s]);
      if (names != null) {
        for (String name : names) {
          ops.store(target(s), c0, out.get(name), item * m + c0, len);
        }
      }
    }

    private int mask(Operand o) {
      return o.broadcast ? ChunkOps.BROADCAST : ChunkOps.ALL;
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

    Operand resolve(Expr e, int i, int j, Operand slot, A broadcastBuffer) {
      slot.broadcast = false;
      slot.offset = 0;
      if (e.isConstant()) {
        A c = broadcastBuffer;
        ops.fill(c, 0, ChunkOps.BROADCAST_LENGTH, e.value());
        slot.array = c;
        slot.broadcast = true;
        return slot;
      }
      int item = e.domain() == Expr.Domain.ROW ? i : e.domain() == Expr.Domain.COL ? j : i * n2 + j;
      int m = e.layout().size();
      if (e.op() == Expr.Op.INPUT) {
        Object in = inputs.get(e.name());
        if (in instanceof BlockInput<?> source) {
          long[] at = stagedAt.computeIfAbsent(e.name(), x -> new long[] {Long.MIN_VALUE, Long.MIN_VALUE});
          A buffer = staged.computeIfAbsent(e.name(), x -> ops.allocate(m));
          int bi = e.domain() == Expr.Domain.COL ? -1 : i;
          int bj = e.domain() == Expr.Domain.ROW ? -1 : j;
          if (at[0] != bi || at[1] != bj) {
            @SuppressWarnings("unchecked")
            BlockInput<A> typed = (BlockInput<A>) source;
            typed.fill(bi, bj, buffer);
            at[0] = bi;
            at[1] = bj;
          }
          slot.array = buffer;
        } else {
          @SuppressWarnings("unchecked")
          A array = (A) in;
          slot.array = array;
          slot.offset = item * m;
        }
        return slot;
      }
      A exported = exports.get(e);
      if (exported != null && !mine.contains(e)) {
        slot.array = exported;
        slot.offset = item * m;
        return slot;
      }
      slot.array = registers[schedule.blockRegister(pass, e)];
      return slot;
    }

    private void structural(Expr e, Operand in, A target) {
      int m = e.a().layout().size();
      A a = array(in);
      int ao = in.offset;
      switch (e.op()) {
        case DIAGONAL -> {
          int p = e.layout().pixels();
          for (int k = 0; k < p; k++) {
            ops.copy(a, ao + k * p + k, target, k, 1);
          }
        }
        case SPREAD_ROW -> {
          int p = e.layout().pixels();
          for (int k = 0; k < p; k++) {
            ops.broadcast(a, ao + k, target, k * p, p);
          }
        }
        case SPREAD_COL -> {
          int p = e.layout().pixels();
          for (int k = 0; k < p; k++) {
            ops.copy(a, ao, target, k * p, p);
          }
        }
        case PIXELS -> {
          e.map().apply(ops, a, ao, target, 0);
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
  }
}
