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
  private final Map<Expr, Integer> registers = new IdentityHashMap<>();
  private int registerCount;

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
    for (Expr e : order) {
      switch (e.op()) {
        case INPUT -> inputs.add(e.name());
        case CONST -> { }
        default -> (e.domain() == Expr.Domain.TILE ? tileSteps : vectorSteps).add(e);
      }
    }
    allocateRegisters();
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
    Map<Expr, Integer> lastUse = new IdentityHashMap<>();
    for (int k = 0; k < tileSteps.size(); k++) {
      for (Expr operand : tileSteps.get(k).operands()) {
        lastUse.put(operand, k);
      }
    }
    Set<Expr> kept = Collections.newSetFromMap(new IdentityHashMap<>());
    kept.addAll(outputs.values());
    List<Integer> free = new ArrayList<>();
    for (int k = 0; k < tileSteps.size(); k++) {
      Expr e = tileSteps.get(k);
      for (Expr operand : e.operands()) {
        Integer r = registers.get(operand);
        if (r != null && lastUse.get(operand) == k && !kept.contains(operand) && !free.contains(r)) {
          free.add(r); // an entry-wise step may write over an operand it has just read
        }
      }
      registers.put(e, free.isEmpty() ? registerCount++ : free.remove(free.size() - 1));
    }
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

  /** The per-input steps (ROW and COL), operands first. */
  public List<Expr> vectorSteps() {
    return Collections.unmodifiableList(vectorSteps);
  }

  /** The per-pair steps, operands first. */
  public List<Expr> tileSteps() {
    return Collections.unmodifiableList(tileSteps);
  }

  /** The chunk buffer a tile step writes to. */
  int register(Expr tileStep) {
    return registers.get(tileStep);
  }

  /** How many chunk buffers the tile steps need. */
  public int registerCount() {
    return registerCount;
  }

  @Override
  public String toString() {
    return "Schedule[outputs " + outputs.keySet() + ", inputs " + inputs + ", " + vectorSteps.size()
        + " per-input steps, " + tileSteps.size() + " per-pair steps, " + registerCount + " registers]";
  }
}
