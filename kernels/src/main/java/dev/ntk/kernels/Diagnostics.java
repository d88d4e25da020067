package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.engine.CpuBackend;
import dev.ntk.kernels.engine.Expr;
import dev.ntk.kernels.engine.Schedule;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Finds where a kernel stops being finite: the model's plan is compiled with every layer's output
 * kernel as an output of its own, and run (on the {@code cpu} backend, in the inputs' dtype) on
 * the few rows involved. For error messages, not for whole kernels.
 */
public final class Diagnostics {
  private Diagnostics() {}

  /**
   * The path (as model errors name it, e.g. {@code serial[3].Relu}) of the first layer whose output
   * kernel between {@code x1} and {@code x2} ({@code null}: x1 itself) has an entry that is not
   * finite, or empty if every layer's kernel is finite.
   */
  public static Optional<String> firstNonFiniteLayer(Layer model, NDArray x1, NDArray x2) {
    NDArray other = x2 == null ? x1 : x2;
    Shape perExample = x1.getShape().slice(1);
    List<String> paths = new ArrayList<>();
    Map<String, Expr> outputs = new LinkedHashMap<>();
    Map<String, Expr> rows = new LinkedHashMap<>();
    Map<String, Expr> cols = new LinkedHashMap<>();
    Spec spec = Spec.input(perExample);
    KernelExpr in = Plan.inputKernel(model, spec, false, false);
    RuleContext.run(model, List.of(Spec.input(perExample)), List.of(in), (path, kernels) -> {
      for (KernelExpr k : kernels) {
        String key = Integer.toString(paths.size());
        paths.add(path);
        outputs.put(key + ".nngp", k.nngp());
        outputs.put(key + ".ntk", k.ntk());
        rows.put(key + ".var1", k.var1());
        cols.put(key + ".var2", k.var2());
      }
    });
    Schedule schedule = new Schedule(outputs, rows, cols);
    int n1 = Math.toIntExact(x1.getShape().get(0));
    int n2 = Math.toIntExact(other.getShape().get(0));
    Map<String, double[]> values = x1.getDataType() == DataType.FLOAT32
        ? run(CpuBackend.float32(), schedule, spec, x1.toFloatArray(), x2 == null ? null : x2.toFloatArray(), n1, n2)
        : run(CpuBackend.float64(), schedule, spec, Tensors.toDoubles(x1), x2 == null ? null : Tensors.toDoubles(x2),
            n1, n2);
    for (int i = 0; i < paths.size(); i++) {
      for (String term : new String[] {".nngp", ".ntk", ".var1", ".var2"}) {
        for (double v : values.get(i + term)) {
          if (!Double.isFinite(v)) {
            return Optional.of(paths.get(i));
          }
        }
      }
    }
    return Optional.empty();
  }

  private static <A> Map<String, double[]> run(CpuBackend<A> cpu, Schedule schedule, Spec spec, A x1, A x2,
      int n1, int n2) {
    Map<String, A> out = Plan.run(cpu, schedule, spec, x1, x2, Map.of(), n1, n2, 1, true, null);
    Map<String, double[]> values = new LinkedHashMap<>();
    out.forEach((name, v) -> values.put(name, cpu.toDoubles(v, java.lang.reflect.Array.getLength(v))));
    return values;
  }
}
