package dev.ntk.kernels.engine;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The dtype- and backend-independent program of a plan: the expressions its outputs need, in an
 * order where operands come first, split into the per-input ({@link Expr.Domain#ROW}, {@link
 * Expr.Domain#COL}) steps, which cost O(N), and the per-pair ({@link Expr.Domain#TILE}) steps,
 * which cost O(N1 N2) and which the {@code cpu} backend fuses into one pass over the tile. Only
 * what an output needs is scheduled: a plan for the NNGP alone holds no NTK step.
 *
 * <p>Tile steps get registers (chunk buffers) by a linear scan over their last uses, so a
 * depth-21 network needs a handful of buffers, not one per step.
 */
public final class Schedule {
  private final Map<String, Expr> outputs;
  private final Map<String, Expr> rowOutputs;
  private final Map<String, Expr> colOutputs;
  private final List<Expr> vectorSteps = new ArrayList<>();
  private final List<Expr> tileSteps = new ArrayList<>();
  private final Set<String> inputs = new LinkedHashSet<>();
  private final Map<String, Layout> inputLayouts = new LinkedHashMap<>();
  private final Map<Expr, Integer> registers = new IdentityHashMap<>();
  private int registerCount;
  private final boolean blocks;
  private final List<Expr> rowSteps = new ArrayList<>();
  private final List<Expr> colSteps = new ArrayList<>();
  private final List<Expr> blockTileSteps = new ArrayList<>();
  private final List<Map<Expr, Integer>> blockRegisters = List.of(new IdentityHashMap<>(),
      new IdentityHashMap<>(), new IdentityHashMap<>());
  private final int[] blockRegisterCounts = new int[3];
  private final int[] blockSizes = new int[3];
  private final Set<Expr> exported = Collections.newSetFromMap(new IdentityHashMap<>());

  /** The program computing the pair {@code outputs} (by name, in order), and no per-input output. */
  public Schedule(Map<String, Expr> outputs) {
    this(outputs, Map.of(), Map.of());
  }

  /**
   * The program computing the pair {@code outputs} ({@code (n1, n2)} each), {@code rowOutputs}
   * ({@code n1} values each) and {@code colOutputs} ({@code n2} values each).
   */
  public Schedule(Map<String, Expr> outputs, Map<String, Expr> rowOutputs, Map<String, Expr> colOutputs) {
    this.outputs = Collections.unmodifiableMap(new LinkedHashMap<>(outputs));
    this.rowOutputs = Collections.unmodifiableMap(new LinkedHashMap<>(rowOutputs));
    this.colOutputs = Collections.unmodifiableMap(new LinkedHashMap<>(colOutputs));
    for (Expr e : rowOutputs.values()) {
      checkDomain(e, Expr.Domain.ROW);
    }
    for (Expr e : colOutputs.values()) {
      checkDomain(e, Expr.Domain.COL);
    }
    Set<Expr> seen = Collections.newSetFromMap(new IdentityHashMap<>());
    List<Expr> order = new ArrayList<>();
    for (Map<String, Expr> m : List.of(this.outputs, this.rowOutputs, this.colOutputs)) {
      for (Expr out : m.values()) {
        visit(out, seen, order);
      }
    }
    // Build order, not depth-first order: depth-first would finish the whole NNGP chain before
    // the NTK chain, keeping every layer's derivative factor alive in between (42 registers for
    // a depth-21 network, against 5 in build order).
    order.sort(java.util.Comparator.comparingLong(Expr::sequence));
    boolean anyBlock = false;
    for (Expr e : order) {
      anyBlock |= !e.layout().isScalar() || e.op().structural();
      switch (e.op()) {
        case INPUT -> {
          inputs.add(e.name());
          inputLayouts.put(e.name(), e.layout());
        }
        case CONST, BLOCK -> { }
        default -> (e.domain() == Expr.Domain.TILE ? tileSteps : vectorSteps).add(e);
      }
    }
    this.blocks = anyBlock;
    allocateRegisters();
    if (blocks) {
      splitBlockSteps();
    }
  }

  /**
   * The passes of a plan with pixel blocks, which run item by item ({@link BlockRunner}): per row
   * input, per column input, then per pair. A per-input value that a pair step reads is exported
   * (kept for every input); a per-input spread to a pixel-pair block is recomputed where it is
   * read rather than exported, which would keep {@code P^2} numbers per input.
   */
  private void splitBlockSteps() {
    Map<Expr, List<Expr>> readers = new IdentityHashMap<>();
    List<Expr> all = new ArrayList<>(vectorSteps);
    all.addAll(tileSteps);
    for (Expr e : all) {
      for (Expr operand : e.operands()) {
        readers.computeIfAbsent(operand, x -> new ArrayList<>()).add(e);
      }
    }
    Set<Expr> inTile = Collections.newSetFromMap(new IdentityHashMap<>());
    inTile.addAll(tileSteps);
    // Spreads read by pair steps run in the pair pass (walking back, a spread of a spread too).
    for (int k = vectorSteps.size() - 1; k >= 0; k--) {
      Expr e = vectorSteps.get(k);
      if (isSpread(e) && readers.getOrDefault(e, List.of()).stream().anyMatch(inTile::contains)) {
        inTile.add(e);
      }
    }
    for (Expr e : all) {
      if (inTile.contains(e)) {
        blockTileSteps.add(e);
      }
      if (e.domain() != Expr.Domain.TILE && (!inTile.contains(e)
          || readers.getOrDefault(e, List.of()).stream().anyMatch(r -> !inTile.contains(r)))) {
        (e.domain() == Expr.Domain.ROW ? rowSteps : colSteps).add(e);
      }
    }
    blockTileSteps.sort(java.util.Comparator.comparingLong(Expr::sequence));
    for (Expr e : blockTileSteps) {
      for (Expr operand : e.operands()) {
        if (operand.domain() != Expr.Domain.TILE && !inTile.contains(operand) && !operand.isConstant()
            && operand.op() != Expr.Op.INPUT && operand.op() != Expr.Op.BLOCK) {
          exported.add(operand);
        }
      }
    }
    for (Map<String, Expr> m : List.of(rowOutputs, colOutputs)) {
      for (Expr e : m.values()) {
        if (!e.isConstant() && e.op() != Expr.Op.INPUT && e.op() != Expr.Op.BLOCK) {
          exported.add(e);
        }
      }
    }
    List<List<Expr>> passes = List.of(rowSteps, colSteps, blockTileSteps);
    for (int pass = 0; pass < 3; pass++) {
      Set<Expr> kept = Collections.newSetFromMap(new IdentityHashMap<>());
      if (pass == 2) {
        kept.addAll(outputs.values());
      }
      blockRegisterCounts[pass] = LinearScan.allocate(passes.get(pass), kept, blockRegisters.get(pass));
      int size = 1;
      for (Expr e : passes.get(pass)) {
        size = Math.max(size, e.layout().size());
        if (e.op() == Expr.Op.PIXELS) {
          size = Math.max(size, e.map().input().size());
        }
      }
      blockSizes[pass] = size;
    }
  }

  private static boolean isSpread(Expr e) {
    return e.op() == Expr.Op.SPREAD_ROW || e.op() == Expr.Op.SPREAD_COL;
  }

  private static void checkDomain(Expr e, Expr.Domain domain) {
    if (e.domain() != domain && e.domain() != Expr.Domain.CONST) {
      throw new IllegalArgumentException("a " + domain + " output varies over " + e.domain());
    }
  }

  private static void visit(Expr e, Set<Expr> seen, List<Expr> order) {
    // Iterative post-order: a deep network is a deep expression graph.
    List<Expr> stack = new ArrayList<>();
    List<Boolean> expanded = new ArrayList<>();
    stack.add(e);
    expanded.add(false);
    while (!stack.isEmpty()) {
      int top = stack.size() - 1;
      Expr x = stack.get(top);
      if (seen.contains(x)) {
        stack.remove(top);
        expanded.remove(top);
        continue;
      }
      if (expanded.get(top)) {
        stack.remove(top);
        expanded.remove(top);
        seen.add(x);
        order.add(x);
        continue;
      }
      expanded.set(top, true);
      for (Expr operand : x.operands()) {
        if (!seen.contains(operand)) {
          stack.add(operand);
          expanded.add(false);
        }
      }
    }
  }

  private void allocateRegisters() {
    Set<Expr> kept = Collections.newSetFromMap(new IdentityHashMap<>());
    kept.addAll(outputs.values());
    registerCount = LinearScan.allocate(tileSteps, kept, registers);
  }

  /** The outputs by name. */
  public Map<String, Expr> outputs() {
    return outputs;
  }

  /** The per-row outputs by name. */
  public Map<String, Expr> rowOutputs() {
    return rowOutputs;
  }

  /** The per-column outputs by name. */
  public Map<String, Expr> colOutputs() {
    return colOutputs;
  }

  /** The names of the inputs the outputs depend on. */
  public Set<String> inputs() {
    return Collections.unmodifiableSet(inputs);
  }

  /**
   * The blocks of input {@code name}; for an input the outputs do not read, those of the other
   * inputs (all inputs of a plan share one pixel grid), or scalars.
   */
  public Layout inputLayout(String name) {
    Layout l = inputLayouts.get(name);
    return l != null ? l : inputLayouts.values().stream().findFirst().orElse(Layout.SCALAR);
  }

  /** The per-input steps (ROW and COL), operands first. */
  public List<Expr> vectorSteps() {
    return Collections.unmodifiableList(vectorSteps);
  }

  /** The per-pair steps, operands first. */
  public List<Expr> tileSteps() {
    return Collections.unmodifiableList(tileSteps);
  }

  /**
   * The entry-wise operations per entry of the per-pair steps: one per step, a {@link
   * Quadrature}'s loop what it runs ({@link Quadrature#work}).
   */
  public long tileWork() {
    return tileSteps.stream().mapToLong(e -> e.op() == Expr.Op.QUADRATURE ? e.quadrature().work() : 1).sum();
  }

  /** The chunk buffer a tile step writes to. */
  int register(Expr tileStep) {
    return registers.get(tileStep);
  }

  /** How many chunk buffers the tile steps need. */
  public int registerCount() {
    return registerCount;
  }

  /** Whether any value is a pixel block, so that the plan runs item by item ({@link BlockRunner}). */
  public boolean blocks() {
    return blocks;
  }

  /**
   * The steps of pass {@code pass} of a block plan: 0 per row input, 1 per column input, 2 per pair
   * (empty for a plan without pixel blocks); the {@code cuda} engine generates one kernel per pass.
   */
  public List<Expr> blockSteps(int pass) {
    return pass == 0 ? rowSteps : pass == 1 ? colSteps : blockTileSteps;
  }

  /** The register of {@code step} in block pass {@code pass}. */
  int blockRegister(int pass, Expr step) {
    return blockRegisters.get(pass).get(step);
  }

  /** How many registers block pass {@code pass} needs, each of {@link #blockSize(int)} entries. */
  int blockRegisterCount(int pass) {
    return blockRegisterCounts[pass];
  }

  /** The largest block of pass {@code pass}. */
  int blockSize(int pass) {
    return blockSizes[pass];
  }

  /**
   * The work of block pass {@code pass} per item: {@code {flops, bytes}}, counting an entry-wise
   * operation as one flop per entry ({@code fma} two; {@code atan2} and {@code sqrt} one each), a
   * quadrature as its {@link Quadrature#work}, a pixel map as two per multiply-add, and as bytes the
   * operands read and the result written per step (what a step-by-step evaluation moves; chunk
   * fusion keeps some of it in cache).
   */
  public long[] blockWork(int pass, int dtypeBytes) {
    long flops = 0;
    long bytes = 0;
    for (Expr e : blockSteps(pass)) {
      long m = e.layout().size();
      switch (e.op()) {
        case PIXELS -> {
          flops += 2 * e.map().multiplyAdds();
          bytes += (long) (e.map().input().size() + m) * dtypeBytes;
        }
        case REDUCE -> {
          long in = e.a().layout().size();
          flops += in;
          bytes += (in + 1) * dtypeBytes;
        }
        case DIAGONAL, SPREAD_ROW, SPREAD_COL -> bytes += (e.a().layout().size() + m) * dtypeBytes;
        case SOFTMAX -> {
          flops += 4 * m;
          bytes += 2 * m * dtypeBytes;
        }
        case ATTEND -> {
          // Two P x P matrix products.
          flops += 4 * m * e.layout().pixels();
          bytes += 4 * m * dtypeBytes;
        }
        default -> {
          flops += (e.op() == Expr.Op.FMA ? 2 : e.op() == Expr.Op.QUADRATURE ? e.quadrature().work() : 1) * m;
          long read = 0;
          for (Expr o : e.operands()) {
            read += o.isConstant() ? 0 : o.layout().size();
          }
          bytes += (read + m) * dtypeBytes;
        }
      }
    }
    return new long[] {flops, bytes};
  }

  /** The entries kept per input by block pass {@code pass} (0: per row input, 1: per column input). */
  public long exportedEntries(int pass) {
    long n = 0;
    for (Expr e : blockSteps(pass)) {
      if (exported.contains(e)) {
        n += e.layout().size();
      }
    }
    return n;
  }

  /** The entries of one worker's registers over the three block passes. */
  public long blockWorkingSet() {
    long n = 0;
    for (int pass = 0; pass < 3; pass++) {
      n += (long) blockRegisterCounts[pass] * blockSizes[pass];
    }
    return n;
  }

  /** Whether the per-input value {@code e} is kept for every input, for the pair pass or as an output. */
  boolean exported(Expr e) {
    return exported.contains(e);
  }

  @Override
  public String toString() {
    return "Schedule[outputs " + outputs.keySet() + ", inputs " + inputs + ", " + vectorSteps.size()
        + " per-input steps, " + tileSteps.size() + " per-pair steps, " + registerCount + " registers]";
  }
}
