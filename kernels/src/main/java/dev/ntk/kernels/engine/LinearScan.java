package dev.ntk.kernels.engine;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Register allocation for a {@link Schedule}'s steps: each step's value goes to a register (a
 * chunk buffer, or a block of one) freed by an operand at its last use, so that a depth-21
 * network needs a handful of buffers, not one per step.
 */
final class LinearScan {
  private LinearScan() {}

  /**
   * Registers for {@code steps} by a linear scan over last uses, into {@code registers}; returns
   * how many. An entry-wise step may write over an operand it has just read; a structural one
   * (which reads neighbouring entries) may not.
   */
  static int allocate(List<Expr> steps, Set<Expr> kept, Map<Expr, Integer> registers) {
    Map<Expr, Integer> lastUse = new IdentityHashMap<>();
    for (int k = 0; k < steps.size(); k++) {
      for (Expr operand : steps.get(k).operands()) {
        lastUse.put(operand, k);
      }
    }
    Set<Expr> mine = Collections.newSetFromMap(new IdentityHashMap<>());
    mine.addAll(steps);
    int count = 0;
    List<Integer> free = new ArrayList<>();
    for (int k = 0; k < steps.size(); k++) {
      Expr e = steps.get(k);
      List<Integer> released = new ArrayList<>();
      for (Expr operand : e.operands()) {
        Integer r = mine.contains(operand) ? registers.get(operand) : null;
        if (r != null && lastUse.get(operand) == k && !kept.contains(operand) && !free.contains(r)
            && !released.contains(r)) {
          released.add(r);
        }
      }
      if (!e.op().structural()) {
        free.addAll(released);
      }
      registers.put(e, free.isEmpty() ? count++ : free.remove(free.size() - 1));
      if (e.op().structural()) {
        free.addAll(released);
      }
    }
    return count;
  }
}
