package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The empirical kernels of one finite network with parameters {@code theta}: the NNGP {@code
 * f(x1) f(x2)^T} and the NTK {@code J(x1) J(x2)^T}, {@code J} the Jacobian of the outputs with
 * respect to every parameter array as {@link Layer#init} stores it (in the NTK parameterization,
 * the N(0, 1) draws). As neural-tangents' {@code empirical_kernel_fn}: by default averaged over the
 * output entries of each example ({@code trace_axes=(-1,)} for outputs {@code (N, C)}), giving
 * {@code (N1, N2)}; with {@code traceChannels == false} kept, giving {@code (N1, N2, C, C)}, where
 * {@code C} counts every output entry of an example (outputs with pixels are flattened).
 *
 * <p>The NTK has neural-tangents' three implementations, equal to rounding:
 *
 * <ul>
 *   <li>{@link Implementation#JACOBIAN_CONTRACTION}: per-example Jacobians from one backward pass
 *       per output entry, contracted over the parameters (one output channel at a time when
 *       traced, so that the whole Jacobian is never held).
 *   <li>{@link Implementation#NTK_VECTOR_PRODUCTS}: for each output entry of each {@code x2}, the
 *       parameter cotangent {@code J(x2)^T e} by a VJP, then {@code J(x1)} of it by a JVP; the
 *       Jacobian is never formed.
 *   <li>{@link Implementation#STRUCTURED}: one backward pass per output channel for each input
 *       set, batched over the examples, with the affine layers recording their input patches and
 *       output cotangents ({@link AffineTape}) instead of weight gradients; each layer adds {@code
 *       s^2 sum_{p, q} (X1[p] . X2[q]) (G1[p] . G2[q])} (and its bias {@code beta^2 (B1 . B2)}),
 *       from an input gram and a cotangent gram. Neither the Jacobian nor a weight gradient is
 *       formed (Novak, Sohl-Dickstein and Schoenholz, "Fast Finite Width Neural Tangent Kernel",
 *       ICML 2022).
 * </ul>
 *
 * <pre>{@code
 * Params params = model.init(0, new Shape(784), manager, DataType.FLOAT64);
 * NDArray ntk = EmpiricalKernels.ntk(model, params, x1, x2, Implementation.STRUCTURED, true);
 * }</pre>
 */
public final class EmpiricalKernels {
  private EmpiricalKernels() {}

  /** How the empirical NTK is computed; all give the same kernel. */
  public enum Implementation {
    JACOBIAN_CONTRACTION("jacobian"),
    NTK_VECTOR_PRODUCTS("ntk-vp"),
    STRUCTURED("structured");

    private final String key;

    Implementation(String key) {
      this.key = key;
    }

    /** The name on the command line: {@code jacobian}, {@code ntk-vp}, {@code structured}. */
    public String key() {
      return key;
    }

    /** Parses a {@link #key()} (any case). */
    public static Implementation of(String name) {
      for (Implementation i : values()) {
        if (i.key.equals(name.trim().toLowerCase(Locale.ROOT))) {
          return i;
        }
      }
      throw new IllegalArgumentException("unknown implementation \"" + name
          + "\": expected jacobian, ntk-vp or structured");
    }
  }

  /**
   * The empirical NNGP {@code f(x1) f(x2)^T}, divided by {@code C} when traced; {@code x2 == null}
   * means {@code x1}. Float64, in {@code x1}'s manager.
   */
  public static NDArray nngp(Layer model, Params params, NDArray x1, NDArray x2, boolean traceChannels) {
    return compute(model, params, x1, x2, (in1, in2) -> {
      NDArray f1 = rows(model.apply(params, List.of(in1)));
      NDArray f2 = in2 == in1 ? f1 : rows(model.apply(params, List.of(in2)));
      long c = f1.getShape().get(1);
      if (traceChannels) {
        return Tensors.mul(f1.matMul(f2.transpose()), 1.0 / c);
      }
      long n1 = f1.getShape().get(0);
      long n2 = f2.getShape().get(0);
      return f1.reshape(n1, 1, c, 1).mul(f2.reshape(1, n2, 1, c));
    });
  }

  /**
   * The empirical NTK by {@code implementation}; {@code x2 == null} means {@code x1}. Float64, in
   * {@code x1}'s manager.
   */
  public static NDArray ntk(Layer model, Params params, NDArray x1, NDArray x2, Implementation implementation,
      boolean traceChannels) {
    return compute(model, params, x1, x2, (in1, in2) -> switch (implementation) {
      case JACOBIAN_CONTRACTION -> jacobianContraction(model, params, in1, in2, traceChannels);
      case NTK_VECTOR_PRODUCTS -> ntkVectorProducts(model, params, in1, in2, traceChannels);
      case STRUCTURED -> structured(model, params, in1, in2, traceChannels, Integer.MAX_VALUE);
    });
  }

  /**
   * The structured empirical NTK averaged over only the first {@code channels} channels (the last
   * output axis) at every output position. A network's output channels are exchangeable (their
   * weights are drawn alike), so this is an unbiased estimate of the traced NTK over parameter
   * draws, at {@code channels / C} of the cost: what {@link MonteCarlo#ntk} averages. Float64, in
   * {@code x1}'s manager; {@code x2 == null} means {@code x1}.
   */
  public static NDArray ntkOfChannels(Layer model, Params params, NDArray x1, NDArray x2, int channels) {
    if (channels < 1) {
      throw new IllegalArgumentException("need at least 1 channel, got " + channels);
    }
    return compute(model, params, x1, x2, (in1, in2) -> structured(model, params, in1, in2, true, channels));
  }

  @FunctionalInterface
  private interface Body {
    NDArray compute(NDArray x1, NDArray x2);
  }

  /**
   * Runs {@code body} in a scope that frees every intermediate array, on the inputs in the
   * parameters' dtype, and returns its result as float64 in {@code x1}'s manager.
   */
  private static NDArray compute(Layer model, Params params, NDArray x1, NDArray x2, Body body) {
    NDManager owner = x1.getManager();
    List<NDArray> leaves = params.leaves();
    DataType dtype = leaves.isEmpty() ? x1.getDataType() : leaves.get(0).getDataType();
    try (NDManager scope = owner.newSubManager()) {
      // Results of operations land in their first operand's manager: borrow the inputs and the
      // parameters into the scope so that every intermediate array is freed with it.
      x1.tempAttach(scope);
      if (x2 != null && x2 != x1) {
        x2.tempAttach(scope);
      }
      for (NDArray a : leaves) {
        a.tempAttach(scope);
      }
      NDArray in1 = x1.getDataType() == dtype ? x1 : x1.toType(dtype, false);
      NDArray in2 = x2 == null || x2 == x1 ? in1 : x2.getDataType() == dtype ? x2 : x2.toType(dtype, false);
      NDArray k;
      if (in2 != in1 && Normalization.drawsMasks(model)) {
        // Two batches meet independent dropout masks, as neural-tangents splits its random key for
        // x2: the kernel of both together, its x1-x2 block.
        long n1 = in1.getShape().get(0);
        NDArray both = in1.concat(in2, 0);
        k = body.compute(both, both).get("0:" + n1 + ", " + n1 + ":");
      } else {
        k = body.compute(in1, in2);
      }
      return Tensors.create(owner, Tensors.toDoubles(k), k.getShape(), DataType.FLOAT64);
    }
  }

  /** The only output of {@code outputs} as {@code (N, C)}. */
  private static NDArray rows(List<NDArray> outputs) {
    if (outputs.size() != 1) {
      throw new IllegalArgumentException("the network has " + outputs.size() + " outputs; empirical kernels "
          + "need one (combine branches with a FanIn layer)");
    }
    NDArray f = outputs.get(0);
    return f.reshape(f.getShape().get(0), -1);
  }

  /** {@code (n, C)} cotangents shaped as {@code like}: 1 at output entry {@code c} of every example, 0 elsewhere. */
  private static NDArray basis(NDArray like, int c) {
    Shape shape = like.getShape();
    int n = Math.toIntExact(shape.get(0));
    int channels = Math.toIntExact(shape.size() / n);
    double[] e = new double[n * channels];
    for (int i = 0; i < n; i++) {
      e[i * channels + c] = 1;
    }
    return Tensors.create(like.getManager(), e, shape, like.getDataType());
  }

  private static int channels(NDArray output) {
    return Math.toIntExact(output.getShape().size() / output.getShape().get(0));
  }

  private static NDArray example(NDArray x, long i) {
    return x.get(new NDIndex(i + ":" + (i + 1)));
  }

  /** Every leaf of {@code grad} flattened into one row {@code (1, P)}. */
  private static NDArray flatRow(Params grad) {
    List<NDArray> parts = new ArrayList<>();
    for (NDArray a : grad.leaves()) {
      parts.add(a.reshape(1, -1));
    }
    NDArray row = parts.size() == 1 ? parts.get(0) : NDArrays.concat(new NDList(parts), 1);
    if (parts.size() > 1) {
      for (NDArray p : parts) {
        p.close();
      }
    }
    return row;
  }

  /** Per-example backward passes of {@code x}, run once each and pulled once per output entry. */
  private static List<Vjp> perExample(Layer model, Params params, NDArray x) {
    List<Vjp> out = new ArrayList<>();
    for (long i = 0; i < x.getShape().get(0); i++) {
      out.add(model.vjp(params, List.of(example(x, i)), false));
    }
    return out;
  }

  /** {@code J_c(x)} {@code (N, P)}: the Jacobian of output entry {@code c} of every example. */
  private static NDArray jacobianOfChannel(List<Vjp> examples, int c) {
    List<NDArray> rowsOfC = new ArrayList<>();
    for (Vjp v : examples) {
      try (NDArray e = basis(v.output(), c)) {
        Cotangents grad = v.pull(List.of(e));
        rowsOfC.add(flatRow(grad.params()));
        for (NDArray a : grad.params().leaves()) {
          a.close();
        }
      }
    }
    NDArray j = NDArrays.concat(new NDList(rowsOfC), 0);
    for (NDArray r : rowsOfC) {
      r.close();
    }
    return j;
  }

  private static NDArray jacobianContraction(Layer model, Params params, NDArray x1, NDArray x2, boolean trace) {
    List<Vjp> e1 = perExample(model, params, x1);
    List<Vjp> e2 = x2 == x1 ? e1 : perExample(model, params, x2);
    int channels = channels(e1.get(0).output());
    long n1 = x1.getShape().get(0);
    long n2 = x2.getShape().get(0);
    if (trace) {
      NDArray sum = null;
      for (int c = 0; c < channels; c++) {
        try (NDArray j1 = jacobianOfChannel(e1, c);
            NDArray j2 = x2 == x1 ? null : jacobianOfChannel(e2, c);
            NDArray j2t = (j2 == null ? j1 : j2).transpose()) {
          NDArray k = j1.matMul(j2t);
          sum = sum == null ? k : sum.add(k);
        }
      }
      return Tensors.mul(sum, 1.0 / channels);
    }
    List<NDArray> j2 = new ArrayList<>();
    for (int c = 0; c < channels; c++) {
      j2.add(jacobianOfChannel(e2, c));
    }
    // (N2 C, P): row (j, c') is J_c'(x2_j).
    NDArray j2All = NDArrays.stack(new NDList(j2), 1).reshape(n2 * channels, -1);
    for (NDArray a : j2) {
      a.close();
    }
    NDArray j2t = j2All.transpose();
    List<NDArray> blocks = new ArrayList<>();
    for (int c = 0; c < channels; c++) {
      try (NDArray j1 = jacobianOfChannel(e1, c)) {
        blocks.add(j1.matMul(j2t).reshape(n1, n2, channels));
      }
    }
    // (N1, N2, C, C'): stack the rows' channel c on axis 2.
    return NDArrays.stack(new NDList(blocks), 2);
  }

  private static NDArray ntkVectorProducts(Layer model, Params params, NDArray x1, NDArray x2, boolean trace) {
    List<Vjp> e2 = perExample(model, params, x2);
    int channels = channels(e2.get(0).output());
    long n1 = x1.getShape().get(0);
    long n2 = x2.getShape().get(0);
    NDArray zeroInput = Tensors.mul(x1, 0.0);
    // Column (j, c') of the NTK: J(x1) J(x2_j)^T e_c', a JVP of a VJP.
    List<NDArray> columns = new ArrayList<>();
    for (int j = 0; j < n2; j++) {
      Vjp v = e2.get(j);
      List<NDArray> perChannel = new ArrayList<>();
      for (int c = 0; c < channels; c++) {
        Params u;
        try (NDArray e = basis(v.output(), c)) {
          u = v.pull(List.of(e)).params();
        }
        NDArray tangent = rows(model.jvp(params, u, List.of(x1), List.of(zeroInput)).tangents());
        perChannel.add(trace ? tangent.get(new NDIndex(":, " + c)) : tangent);
      }
      // traced: (N1,) = sum_c J_c(x1) J_c(x2_j)^T; otherwise (N1, C, C').
      columns.add(trace ? NDArrays.stack(new NDList(perChannel), 1).sum(new int[] {1})
          : NDArrays.stack(new NDList(perChannel), 2));
    }
    if (trace) {
      return Tensors.mul(NDArrays.stack(new NDList(columns), 1), 1.0 / channels);
    }
    // (N1, N2, C, C')
    return NDArrays.stack(new NDList(columns), 1).reshape(n1, n2, channels, channels);
  }

  /**
   * One backward pass per output entry of {@code entries}, batched over the examples, recording
   * the affine layers' factors.
   */
  private static List<List<AffineTape.Factors>> tapes(Vjp v, int[] entries) {
    List<List<AffineTape.Factors>> out = new ArrayList<>();
    for (int c : entries) {
      AffineTape tape = new AffineTape();
      try (NDArray e = basis(v.output(), c)) {
        v.pullback().pull(List.of(e), tape);
      }
      out.add(tape.factors());
    }
    return out;
  }

  /** The flat output entries of channels {@code [0, limit)} at every output position. */
  private static int[] entries(NDArray output, int limit) {
    Shape s = output.getShape();
    int last = Math.toIntExact(s.get(s.dimension() - 1));
    int positions = channels(output) / last;
    int k = Math.min(limit, last);
    int[] out = new int[positions * k];
    for (int p = 0; p < positions; p++) {
      for (int c = 0; c < k; c++) {
        out[p * k + c] = p * last + c;
      }
    }
    return out;
  }

  private static NDArray structured(Layer model, Params params, NDArray x1, NDArray x2, boolean trace,
      int channelLimit) {
    Vjp v1 = model.vjp(params, List.of(x1), false);
    int[] entries = entries(v1.output(), channelLimit);
    List<List<AffineTape.Factors>> t1 = tapes(v1, entries);
    List<List<AffineTape.Factors>> t2 = x2 == x1 ? t1 : tapes(model.vjp(params, List.of(x2), false), entries);
    int channels = t1.size();
    int layers = t1.get(0).size();
    long n1 = x1.getShape().get(0);
    long n2 = x2.getShape().get(0);
    NDArray k = null;
    for (int l = 0; l < layers; l++) {
      AffineTape.Factors first1 = t1.get(0).get(l);
      AffineTape.Factors first2 = t2.get(0).get(l);
      int p = first1.positions();
      int q = first2.positions();
      NDArray term;
      // Dense's patches are its input itself: left to the scope, not closed here.
      NDArray x1Patches = first1.patches().get();
      NDArray x2Patches = x2 == x1 ? x1Patches : first2.patches().get();
      try (NDArray x2t = x2Patches.transpose();
          NDArray inputGram = x1Patches.matMul(x2t)) {
        term = trace ? tracedTerm(t1, t2, l, inputGram, n1, p, n2, q)
            : channelTerm(t1, t2, l, inputGram, n1, p, n2, q, channels);
      }
      if (first1.biasCotangent() != null) {
        NDArray bias = trace ? cotangentGram(t1, t2, l, true, false)
            : cotangentGram(t1, t2, l, true, true).reshape(n1, channels, n2, channels).transpose(0, 2, 1, 3);
        term = term.add(bias);
      }
      k = k == null ? term : k.add(term);
    }
    if (k == null) {
      // No parameters: the NTK is zero.
      Shape shape = trace ? new Shape(n1, n2) : new Shape(n1, n2, channels, channels);
      return Tensors.create(x1.getManager(), new double[Math.toIntExact(shape.size())], shape, x1.getDataType());
    }
    return trace ? Tensors.mul(k, 1.0 / channels) : k;
  }

  /**
   * The gram of layer {@code l}'s weight (or bias) cotangents over every output channel: traced,
   * {@code sum_c G1_c G2_c^T} {@code (N1 P, N2 Q)}; per channel, {@code (N1 P C, N2 Q C')}.
   */
  private static NDArray cotangentGram(List<List<AffineTape.Factors>> t1, List<List<AffineTape.Factors>> t2,
      int l, boolean bias, boolean perChannel) {
    NDArray g1 = join(t1, l, bias, perChannel);
    NDArray g2 = t2 == t1 ? g1 : join(t2, l, bias, perChannel);
    try (NDArray g2t = g2.transpose()) {
      return g1.matMul(g2t);
    }
  }

  /** Layer {@code l}'s cotangents of every channel side by side {@code (N P, C O)}, or stacked {@code (N P C, O)}. */
  private static NDArray join(List<List<AffineTape.Factors>> tapes, int l, boolean bias, boolean perChannel) {
    List<NDArray> parts = new ArrayList<>();
    for (List<AffineTape.Factors> t : tapes) {
      parts.add(bias ? t.get(l).biasCotangent() : t.get(l).weightCotangent());
    }
    if (!perChannel) {
      return parts.size() == 1 ? parts.get(0) : NDArrays.concat(new NDList(parts), 1);
    }
    long o = parts.get(0).getShape().get(1);
    return NDArrays.stack(new NDList(parts), 1).reshape(-1, o);
  }

  /** {@code sum_{p, q} (X1[p] . X2[q]) sum_c (G1_c[p] . G2_c[q])}: {@code (N1, N2)}. */
  private static NDArray tracedTerm(List<List<AffineTape.Factors>> t1, List<List<AffineTape.Factors>> t2, int l,
      NDArray inputGram, long n1, int p, long n2, int q) {
    try (NDArray gram = cotangentGram(t1, t2, l, false, false);
        NDArray product = inputGram.mul(gram)) {
      return p == 1 && q == 1 ? product.duplicate() : product.reshape(n1, p, n2, q).sum(new int[] {1, 3});
    }
  }

  /** {@code sum_{p, q} (X1[p] . X2[q]) (G1_c[p] . G2_c'[q])}: {@code (N1, N2, C, C')}. */
  private static NDArray channelTerm(List<List<AffineTape.Factors>> t1, List<List<AffineTape.Factors>> t2, int l,
      NDArray inputGram, long n1, int p, long n2, int q, int channels) {
    try (NDArray gram = cotangentGram(t1, t2, l, false, true);
        NDArray g6 = gram.reshape(n1, p, channels, n2, q, channels);
        NDArray x6 = inputGram.reshape(n1, p, 1, n2, q, 1);
        NDArray product = g6.mul(x6);
        NDArray summed = product.sum(new int[] {1, 4})) {
      return summed.transpose(0, 2, 1, 3);
    }
  }
}
