package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.LayerType.Argument;
import dev.ntk.kernels.engine.Expr;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Attention layers: {@link GlobalSelfAttention}, neural-tangents' {@code GlobalSelfAttention}
 * (Hron, Bahri, Sohl-Dickstein and Novak, "Infinite attention: NNGP and NTK for deep attention
 * networks", ICML 2020), with its finite network, derivatives and translation rule side by side.
 *
 * <p>In the infinite-width limit with {@code linear_scaling} the attention matrix of an input is
 * deterministic: a function of that input's own pixel-pair covariance. The rule therefore needs the
 * covariance of every two positions of each input ({@code var1}, {@code var2} as pixel-pair blocks)
 * and mixes the pair's pixel-pair covariance by both inputs' attention matrices ({@link
 * Expr#attend}).
 */
public final class Attention {
  private Attention() {}

  public static final LayerType GLOBAL_SELF_ATTENTION = LayerType.of("GlobalSelfAttention",
      "scaled dot-product self-attention over all positions of a sequence or image", GlobalSelfAttention::new,
      Argument.requiredInteger("n_chan_out"), Argument.requiredInteger("n_chan_key"),
      Argument.requiredInteger("n_chan_val"), Argument.requiredInteger("n_heads"),
      Argument.bool("linear_scaling", true), Argument.number("W_key_std", 1.0), Argument.number("W_value_std", 1.0),
      Argument.number("W_query_std", 1.0), Argument.number("W_out_std", 1.0), Argument.optionalNumber("b_std"),
      Argument.choice("attention_mechanism", "SOFTMAX", "IDENTITY", "ABS", "RELU"),
      Argument.choice("pos_emb_type", "NONE", "SUM", "CONCAT"), Argument.number("pos_emb_p_norm", 2.0),
      Argument.number("W_pos_emb_std", 1.0), Argument.bool("val_pos_emb", false));

  /**
   * Global self-attention without positional embeddings; {@code bStd == null} means no bias,
   * {@code attentionMechanism} is {@code SOFTMAX}, {@code IDENTITY}, {@code ABS} or {@code RELU}.
   */
  public static Layer globalSelfAttention(int nChanOut, int nChanKey, int nChanVal, int nHeads,
      boolean linearScaling, double wKeyStd, double wValueStd, double wQueryStd, double wOutStd, Double bStd,
      String attentionMechanism) {
    return GLOBAL_SELF_ATTENTION.create(nChanOut, nChanKey, nChanVal, nHeads, linearScaling, wKeyStd, wValueStd,
        wQueryStd, wOutStd, bStd, attentionMechanism);
  }

  /**
   * Global self-attention with positional embeddings {@code posEmbType} ({@code NONE}, {@code SUM}
   * or {@code CONCAT}) of standard deviation {@code wPosEmbStd}, used for the values too if {@code
   * valPosEmb}.
   */
  public static Layer globalSelfAttention(int nChanOut, int nChanKey, int nChanVal, int nHeads,
      boolean linearScaling, double wKeyStd, double wValueStd, double wQueryStd, double wOutStd, Double bStd,
      String attentionMechanism, String posEmbType, double wPosEmbStd, boolean valPosEmb) {
    return GLOBAL_SELF_ATTENTION.create(nChanOut, nChanKey, nChanVal, nHeads, linearScaling, wKeyStd, wValueStd,
        wQueryStd, wOutStd, bStd, attentionMechanism, posEmbType, 2.0, wPosEmbStd, valPosEmb);
  }

  /** What turns the scaled dot products of keys and queries into attention weights. */
  enum Mechanism { SOFTMAX, IDENTITY, ABS, RELU }

  /** How positional embeddings join the inputs. */
  enum PositionalEmbedding { NONE, SUM, CONCAT }

  /**
   * {@code GlobalSelfAttention}: {@code n_heads} heads of scaled dot-product attention over all
   * positions (the spatial axes flattened), concatenated and mixed by an output layer, in NTK
   * parameterization as neural-tangents' layer. With inputs {@code X (P, C)} (positional embeddings
   * added or concatenated for the keys, and for the values with {@code val_pos_emb}), head {@code h}
   * is {@code f(c_s Q_h K_h^T) V_h} with {@code K_h = X W_K[h]}, {@code Q_h = K_h} under {@code
   * linear_scaling} (tied weights, {@code c_s = W_query_std W_key_std / (C n_chan_key)}) or {@code X
   * W_Q[h]} ({@code c_s = W_query_std W_key_std / (C sqrt(n_chan_key))}), {@code V_h = X W_V[h]},
   * {@code f} the {@code attention_mechanism} (softmax over the key position); the output is {@code
   * W_out_std W_value_std / sqrt(n_chan_val n_heads C_v) concat_h(heads) W_out + b_std b}. All
   * weights are N(0, 1).
   *
   * <p>Rule with {@code linear_scaling}: the attention matrix of an input becomes {@code G = f(W_query_std
   * W_key_std cov)}, {@code cov} that input's own pixel-pair covariance, and {@code nngp' = s^2 G1
   * nngp G2^T + b_std^2}, {@code ntk' = s^2 G1 (ntk + 2 nngp) G2^T + b_std^2}, {@code s = W_out_std
   * W_value_std} (keys and queries do not move the NTK in this limit). Without it only {@code
   * IDENTITY} has a closed form: {@code nngp' = t^2 <nngp, nngp> nngp + b_std^2} with {@code t =
   * W_query_std W_key_std W_out_std W_value_std} and {@code <.,.>} the sum over all pixel pairs;
   * the others are rejected naming the layer, as neural-tangents raises.
   *
   * <p>Positional embeddings ({@code pos_emb_type} {@code SUM} or {@code CONCAT}, neural-tangents'
   * {@code pos_emb_decay_fn = None}: N(0, 1) per position and channel, scaled by {@code
   * W_pos_emb_std}) enter the keys' input kernel, and with {@code val_pos_emb} the values', as
   * {@code w in + W_pos_emb_std^2 w' I} ({@code w = w' = 1/2} for {@code CONCAT}, else {@code 1}).
   */
  public static final class GlobalSelfAttention extends SingleInputLayer {
    private final int nChanOut;
    private final int nChanKey;
    private final int nChanVal;
    private final int nHeads;
    private final boolean linearScaling;
    private final double qkStd;
    private final double ovStd;
    private final Double bStd;
    private final Mechanism mechanism;
    private final PositionalEmbedding posEmb;
    private final double posEmbStd;
    private final boolean valPosEmb;

    GlobalSelfAttention(LayerType.Arguments args) {
      super(args);
      this.nChanOut = positive(args, "n_chan_out");
      this.nChanKey = positive(args, "n_chan_key");
      this.nChanVal = positive(args, "n_chan_val");
      this.nHeads = positive(args, "n_heads");
      this.linearScaling = args.bool("linear_scaling");
      this.qkStd = args.number("W_query_std") * args.number("W_key_std");
      this.ovStd = args.number("W_out_std") * args.number("W_value_std");
      this.bStd = args.optionalNumber("b_std");
      this.mechanism = Mechanism.valueOf(args.choice("attention_mechanism").toUpperCase(Locale.ROOT));
      this.posEmb = PositionalEmbedding.valueOf(args.choice("pos_emb_type").toUpperCase(Locale.ROOT));
      this.posEmbStd = args.number("W_pos_emb_std");
      this.valPosEmb = args.bool("val_pos_emb");
    }

    private static int positive(LayerType.Arguments args, String name) {
      int v = args.integer(name);
      if (v < 1) {
        throw new IllegalArgumentException("argument \"" + name + "\" must be a positive integer, got " + v);
      }
      return v;
    }

    @Override
    protected Spec outputSpec(Spec input, String path) {
      if (!input.hasSpatialAxes()) {
        throw new ModelException(path, name() + " takes sequences or images (N, spatial..., C), but its input has "
            + "per-example shape " + input.shape() + " (no spatial axis)");
      }
      long[] dims = input.shape().getShape().clone();
      dims[dims.length - 1] = nChanOut;
      return new Spec(new Shape(dims), true);
    }

    /** Attention mixes every two positions: the rule needs each input's pixel-pair covariance. */
    @Override
    public List<Boolean> inputsFull(List<Boolean> outputsFull, List<Spec> inputs) {
      return List.of(true);
    }

    /**
     * {@code W_query} {@code (n_heads, C_k, n_chan_key)} without {@code linear_scaling}, {@code
     * W_key} (the same shape), {@code W_value} {@code (n_heads, C_v, n_chan_val)}, {@code W_out}
     * {@code (n_chan_val n_heads, n_chan_out)}, {@code b} with a bias, {@code pos_emb} {@code
     * (spatial..., C)} with positional embeddings: neural-tangents' order.
     */
    @Override
    public List<String> parameterNames() {
      List<String> names = new ArrayList<>();
      if (!linearScaling) {
        names.add("W_query");
      }
      names.addAll(List.of("W_key", "W_value", "W_out"));
      if (bStd != null) {
        names.add("b");
      }
      if (posEmb != PositionalEmbedding.NONE) {
        names.add("pos_emb");
      }
      return names;
    }

    /** Channels of the keys' and queries' input. */
    private long keyChannels(long channels) {
      return posEmb == PositionalEmbedding.CONCAT ? 2 * channels : channels;
    }

    /** Channels of the values' input. */
    private long valueChannels(long channels) {
      return posEmb == PositionalEmbedding.CONCAT && valPosEmb ? 2 * channels : channels;
    }

    @Override
    protected Params init(SplittableRandom rng, Spec input, NDManager manager, DataType dtype) {
      long c = input.channels();
      long ck = keyChannels(c);
      List<NDArray> arrays = new ArrayList<>();
      if (!linearScaling) {
        arrays.add(Tensors.standardNormal(rng, manager, new Shape(nHeads, ck, nChanKey), dtype));
      }
      arrays.add(Tensors.standardNormal(rng, manager, new Shape(nHeads, ck, nChanKey), dtype));
      arrays.add(Tensors.standardNormal(rng, manager, new Shape(nHeads, valueChannels(c), nChanVal), dtype));
      arrays.add(Tensors.standardNormal(rng, manager, new Shape((long) nChanVal * nHeads, nChanOut), dtype));
      if (bStd != null) {
        arrays.add(Tensors.standardNormal(rng, manager, new Shape(nChanOut), dtype));
      }
      if (posEmb != PositionalEmbedding.NONE) {
        arrays.add(Tensors.standardNormal(rng, manager, input.shape(), dtype));
      }
      return Params.of(arrays.toArray(new NDArray[0]));
    }

    /** The parameter arrays by role (null where this layer has none). */
    private record Weights(NDArray query, NDArray key, NDArray value, NDArray out, NDArray bias, NDArray posEmb) {}

    private Weights weights(Params params) {
      int i = 0;
      NDArray q = linearScaling ? null : params.array(i++);
      NDArray k = params.array(i++);
      NDArray v = params.array(i++);
      NDArray o = params.array(i++);
      NDArray b = bStd == null ? null : params.array(i++);
      NDArray pe = posEmb == PositionalEmbedding.NONE ? null : params.array(i);
      return new Weights(q, k, v, o, b, pe);
    }

    /** The values of one forward pass that its derivatives reuse; arrays {@code (N, H, P, .)} per head. */
    private record Pass(long n, int positions, long channels, NDArray keysIn, NDArray valuesIn, NDArray keys,
        NDArray queries, NDArray scores, NDArray attention, NDArray values, NDArray heads, NDArray out) {}

    /** {@code c_s}: the factor of the dot products of queries and keys. */
    private double scoreScale(long keyChannels) {
      return qkStd / (keyChannels * (linearScaling ? nChanKey : Math.sqrt(nChanKey)));
    }

    /** {@code c_o}: the factor of the output layer's product. */
    private double outScale(long valueChannels) {
      return ovStd / Math.sqrt((double) nChanVal * nHeads * valueChannels);
    }

    private Pass forward(Params params, NDArray x) {
      Weights w = weights(params);
      Shape s = x.getShape();
      long n = s.get(0);
      long c = s.get(s.dimension() - 1);
      int p = Math.toIntExact(s.size() / (n * c));
      NDArray x3 = x.reshape(n, p, c);
      NDArray pe = w.posEmb() == null ? null : w.posEmb().reshape(1, p, c);
      NDArray keysIn = embedded(x3, pe, true);
      NDArray valuesIn = embedded(x3, pe, valPosEmb);
      NDArray keys = project(keysIn, w.key());
      NDArray queries = linearScaling ? keys : project(keysIn, w.query());
      NDArray scores = Tensors.mul(queries.matMul(keys.transpose(0, 1, 3, 2)),
          scoreScale(keysIn.getShape().get(2)));
      NDArray attention = weigh(scores);
      NDArray values = project(valuesIn, w.value());
      NDArray heads = concat(attention.matMul(values));
      NDArray out = output(heads, w.out(), w.bias(), valuesIn.getShape().get(2), x);
      return new Pass(n, p, c, keysIn, valuesIn, keys, queries, scores, attention, values, heads, out);
    }

    /**
     * The inputs {@code (N, P, C)} with positional embeddings {@code pe} {@code (1, P, C)} added or
     * concatenated, if {@code use}; linear in {@code (x, pe)} together, so it also maps tangents.
     */
    private NDArray embedded(NDArray x3, NDArray pe, boolean use) {
      if (pe == null || !use) {
        return x3;
      }
      NDArray scaled = Tensors.mul(pe, posEmbStd);
      return posEmb == PositionalEmbedding.SUM ? x3.add(scaled)
          : NDArrays.concat(new ai.djl.ndarray.NDList(x3, scaled.broadcast(x3.getShape())), 2);
    }

    /** {@code X W[h]} for every head: {@code (N, P, C)} and {@code (H, C, d)} to {@code (N, H, P, d)}. */
    private static NDArray project(NDArray x3, NDArray w) {
      long n = x3.getShape().get(0);
      long p = x3.getShape().get(1);
      long c = x3.getShape().get(2);
      long h = w.getShape().get(0);
      long d = w.getShape().get(2);
      NDArray z = x3.reshape(n * p, c).matMul(w.transpose(1, 0, 2).reshape(c, h * d));
      return z.reshape(n, p, h, d).transpose(0, 2, 1, 3);
    }

    /** The weights' cotangent {@code (H, C, d)} of {@link #project} for the output cotangent {@code dz}. */
    private static NDArray projectWeights(NDArray x3, NDArray dz) {
      long h = dz.getShape().get(1);
      long d = dz.getShape().get(3);
      long c = x3.getShape().get(2);
      long rows = x3.getShape().get(0) * x3.getShape().get(1);
      NDArray xt = x3.reshape(rows, c).transpose().broadcast(h, c, rows);
      return xt.matMul(dz.transpose(1, 0, 2, 3).reshape(h, rows, d));
    }

    /** The input's cotangent {@code (N, P, C)} of {@link #project} for the output cotangent {@code dz}. */
    private static NDArray projectInput(NDArray dz, NDArray w) {
      long n = dz.getShape().get(0);
      long h = dz.getShape().get(1);
      long p = dz.getShape().get(2);
      long d = dz.getShape().get(3);
      long c = w.getShape().get(1);
      return dz.transpose(0, 2, 1, 3).reshape(n * p, h * d).matMul(w.transpose(0, 2, 1).reshape(h * d, c))
          .reshape(n, p, c);
    }

    /** The attention weights from the scaled scores (softmax over the key position). */
    private NDArray weigh(NDArray scores) {
      return switch (mechanism) {
        case SOFTMAX -> scores.softmax(3);
        case IDENTITY -> scores;
        case ABS -> scores.abs();
        case RELU -> Tensors.max(scores, 0);
      };
    }

    /**
     * The derivative of {@link #weigh} applied to {@code ds}; its Jacobian is symmetric ({@code
     * diag(a) - a a^T} for a softmax row), so the same map takes cotangents back.
     */
    private NDArray weighDerivative(Pass f, NDArray ds) {
      return switch (mechanism) {
        case SOFTMAX -> {
          NDArray a = f.attention();
          NDArray mean = a.mul(ds).sum(new int[] {3}, true);
          yield a.mul(ds.sub(mean));
        }
        case IDENTITY -> ds;
        case ABS -> ds.mul(f.scores().sign());
        case RELU -> ds.mul(f.scores().gt(0).toType(ds.getDataType(), false));
      };
    }

    /** The heads {@code (N, H, P, dv)} side by side, {@code (N, P, dv H)} in neural-tangents' order. */
    private static NDArray concat(NDArray heads) {
      Shape s = heads.getShape();
      return heads.transpose(0, 2, 3, 1).reshape(s.get(0), s.get(2), s.get(3) * s.get(1));
    }

    /** {@link #concat}'s cotangent: {@code (N, P, dv H)} back to {@code (N, H, P, dv)}. */
    private NDArray split(NDArray dz, Pass f) {
      return dz.reshape(f.n(), f.positions(), nChanVal, nHeads).transpose(0, 3, 1, 2);
    }

    /** {@code c_o heads W_out + b_std b}, shaped as the input with {@code n_chan_out} channels. */
    private NDArray output(NDArray heads, NDArray wOut, NDArray bias, long valueChannels, NDArray x) {
      Shape s = heads.getShape();
      NDArray z = Tensors.mul(heads.reshape(s.get(0) * s.get(1), s.get(2)).matMul(wOut), outScale(valueChannels));
      if (bias != null) {
        z = z.add(Tensors.mul(bias, bStd));
      }
      long[] dims = x.getShape().getShape().clone();
      dims[dims.length - 1] = nChanOut;
      return z.reshape(new Shape(dims));
    }

    @Override
    public NDArray apply(Params params, NDArray x) {
      return forward(params, x).out();
    }

    /** The first derivatives of one forward pass's values along parameter and input tangents. */
    private record Tangent(NDArray keysIn, NDArray valuesIn, NDArray keys, NDArray queries, NDArray scores,
        NDArray attention, NDArray values, NDArray heads, NDArray out) {}

    private Tangent tangentOf(Pass f, Weights w, Weights dw, NDArray dx) {
      NDArray dx3 = dx.reshape(f.n(), f.positions(), f.channels());
      NDArray dpe = dw.posEmb() == null ? null : dw.posEmb().reshape(1, f.positions(), f.channels());
      NDArray dKeysIn = embeddedTangent(dx3, dpe, true);
      NDArray dValuesIn = embeddedTangent(dx3, dpe, valPosEmb);
      NDArray dKeys = project(dKeysIn, w.key()).add(project(f.keysIn(), dw.key()));
      NDArray dQueries = linearScaling ? dKeys : project(dKeysIn, w.query()).add(project(f.keysIn(), dw.query()));
      NDArray dScores = Tensors.mul(dQueries.matMul(f.keys().transpose(0, 1, 3, 2))
          .add(f.queries().matMul(dKeys.transpose(0, 1, 3, 2))), scoreScale(f.keysIn().getShape().get(2)));
      NDArray dAttention = weighDerivative(f, dScores);
      NDArray dValues = project(dValuesIn, w.value()).add(project(f.valuesIn(), dw.value()));
      NDArray dHeads = concat(dAttention.matMul(f.values()).add(f.attention().matMul(dValues)));
      Shape s = dHeads.getShape();
      long rows = s.get(0) * s.get(1);
      NDArray dz = dHeads.reshape(rows, s.get(2)).matMul(w.out())
          .add(f.heads().reshape(rows, s.get(2)).matMul(dw.out()));
      dz = Tensors.mul(dz, outScale(f.valuesIn().getShape().get(2)));
      if (dw.bias() != null) {
        dz = dz.add(Tensors.mul(dw.bias(), bStd));
      }
      return new Tangent(dKeysIn, dValuesIn, dKeys, dQueries, dScores, dAttention, dValues, dHeads,
          dz.reshape(f.out().getShape()));
    }

    @Override
    protected NDArray tangent(Params params, Params paramTangents, NDArray x, NDArray dx) {
      return tangentOf(forward(params, x), weights(params), weights(paramTangents), dx).out();
    }

    /**
     * The second derivative along {@code (v, dx)}: every projection is bilinear in its input and
     * weights ({@code K'' = 2 X' W'}), the scores bilinear in queries and keys, the heads in
     * attention and values, the output in heads and {@code W_out}; the softmax adds its own second
     * derivative {@code a' (s' - <a, s'>) - a <a', s'>} (the elementwise mechanisms none, almost
     * everywhere).
     */
    @Override
    protected NDArray curvature(Params params, Params paramTangents, NDArray x, NDArray dx) {
      Pass f = forward(params, x);
      Weights w = weights(params);
      Weights dw = weights(paramTangents);
      Tangent t = tangentOf(f, w, dw, dx);
      NDArray keys2 = Tensors.mul(project(t.keysIn(), dw.key()), 2);
      NDArray queries2 = linearScaling ? keys2 : Tensors.mul(project(t.keysIn(), dw.query()), 2);
      NDArray scores2 = Tensors.mul(queries2.matMul(f.keys().transpose(0, 1, 3, 2))
          .add(Tensors.mul(t.queries().matMul(t.keys().transpose(0, 1, 3, 2)), 2))
          .add(f.queries().matMul(keys2.transpose(0, 1, 3, 2))), scoreScale(f.keysIn().getShape().get(2)));
      NDArray attention2 = weighDerivative(f, scores2);
      if (mechanism == Mechanism.SOFTMAX) {
        NDArray ds = t.scores();
        NDArray mean = f.attention().mul(ds).sum(new int[] {3}, true);
        NDArray inner = t.attention().mul(ds).sum(new int[] {3}, true);
        attention2 = attention2.add(t.attention().mul(ds.sub(mean))).sub(f.attention().mul(inner));
      }
      NDArray values2 = Tensors.mul(project(t.valuesIn(), dw.value()), 2);
      NDArray heads2 = concat(attention2.matMul(f.values()).add(Tensors.mul(t.attention().matMul(t.values()), 2))
          .add(f.attention().matMul(values2)));
      Shape s = heads2.getShape();
      long rows = s.get(0) * s.get(1);
      NDArray z = heads2.reshape(rows, s.get(2)).matMul(w.out())
          .add(Tensors.mul(t.heads().reshape(rows, s.get(2)).matMul(dw.out()), 2));
      return Tensors.mul(z, outScale(f.valuesIn().getShape().get(2))).reshape(f.out().getShape());
    }

    /** {@link #embedded} of the tangents: the input tangent with the embeddings' tangent, if {@code use}. */
    private NDArray embeddedTangent(NDArray dx3, NDArray dpe, boolean use) {
      if (posEmb == PositionalEmbedding.NONE || !use) {
        return dx3;
      }
      return embedded(dx3, dpe, true);
    }

    @Override
    protected Cotangents backward(Params params, NDArray x, NDArray dy, AffineTape tape, boolean inputCotangent) {
      Pass f = forward(params, x);
      Weights w = weights(params);
      long rows = f.n() * f.positions();
      double co = outScale(f.valuesIn().getShape().get(2));
      NDArray dy2 = dy.reshape(rows, nChanOut);
      NDArray flatHeads = f.heads().reshape(rows, (long) nChanVal * nHeads);
      NDArray dHeads = split(Tensors.mul(dy2.matMul(w.out().transpose()), co), f);
      NDArray dAttention = dHeads.matMul(f.values().transpose(0, 1, 3, 2));
      NDArray dValues = f.attention().transpose(0, 1, 3, 2).matMul(dHeads);
      NDArray dScores = Tensors.mul(weighDerivative(f, dAttention), scoreScale(f.keysIn().getShape().get(2)));
      NDArray dQueries = dScores.matMul(f.keys());
      NDArray dKeys = dScores.transpose(0, 1, 3, 2).matMul(f.queries());
      if (linearScaling) {
        dKeys = dKeys.add(dQueries);
      }
      NDArray dKeysIn = projectInput(dKeys, w.key());
      if (!linearScaling) {
        dKeysIn = dKeysIn.add(projectInput(dQueries, w.query()));
      }
      NDArray dValuesIn = projectInput(dValues, w.value());
      List<NDArray> dx = new ArrayList<>();
      NDArray dPosEmb = inputs(f, dKeysIn, dValuesIn, dx);
      List<NDArray> inputs = inputCotangent ? List.of(dx.get(0).reshape(x.getShape())) : List.of();
      NDArray dBiasPerExample = bStd == null ? null
          : Tensors.mul(dy2.reshape(f.n(), f.positions(), nChanOut).sum(new int[] {1}), bStd);
      if (tape != null) {
        // Each projection is X W per head, the output layer heads W_out, the embeddings one-hot(position) pe:
        // the structured NTK needs their inputs and cotangents only.
        if (!linearScaling) {
          recordHeads(tape, f.keysIn(), dQueries, f.positions());
        }
        recordHeads(tape, f.keysIn(), dKeys, f.positions());
        recordHeads(tape, f.valuesIn(), dValues, f.positions());
        tape.record(new AffineTape.Factors(() -> flatHeads, f.positions(), Tensors.mul(dy2, co), dBiasPerExample));
        if (dPosEmb != null) {
          NDManager m = x.getManager();
          tape.record(new AffineTape.Factors(() -> oneHotPositions(m, f, x.getDataType()), f.positions(),
              Tensors.mul(dPosEmb, posEmbStd).reshape(rows, f.channels()), null));
        }
        return new Cotangents(Params.EMPTY, inputs);
      }
      List<NDArray> grads = new ArrayList<>();
      if (!linearScaling) {
        grads.add(projectWeights(f.keysIn(), dQueries));
      }
      grads.add(projectWeights(f.keysIn(), dKeys));
      grads.add(projectWeights(f.valuesIn(), dValues));
      grads.add(Tensors.mul(flatHeads.transpose().matMul(dy2), co));
      if (bStd != null) {
        grads.add(dBiasPerExample.sum(new int[] {0}));
      }
      if (dPosEmb != null) {
        grads.add(Tensors.mul(dPosEmb.sum(new int[] {0}), posEmbStd).reshape(params.array(grads.size()).getShape()));
      }
      return new Cotangents(Params.of(grads.toArray(new NDArray[0])), inputs);
    }

    /**
     * Splits the cotangents of the keys' and values' inputs into the input's (into {@code dx}) and
     * the positional embeddings' per example {@code (N, P, C)} (returned; null without them).
     */
    private NDArray inputs(Pass f, NDArray dKeysIn, NDArray dValuesIn, List<NDArray> dx) {
      long c = f.channels();
      switch (posEmb) {
        case NONE -> {
          dx.add(dKeysIn.add(dValuesIn));
          return null;
        }
        case SUM -> {
          dx.add(dKeysIn.add(dValuesIn));
          return valPosEmb ? dKeysIn.add(dValuesIn) : dKeysIn;
        }
        default -> {
          NDArray keysX = dKeysIn.get(":, :, :" + c);
          NDArray keysPe = dKeysIn.get(":, :, " + c + ":");
          if (!valPosEmb) {
            dx.add(keysX.add(dValuesIn));
            return keysPe;
          }
          dx.add(keysX.add(dValuesIn.get(":, :, :" + c)));
          return keysPe.add(dValuesIn.get(":, :, " + c + ":"));
        }
      }
    }

    /**
     * Records the projections {@code X W[h]} of all heads with their cotangents {@code dz} on {@code
     * tape} as one layer: the heads share their patches {@code X}, so their terms {@code sum_h (X1[p] .
     * X2[q]) (G1_h[p] . G2_h[q])} are one term of the heads' cotangents side by side.
     */
    private static void recordHeads(AffineTape tape, NDArray x3, NDArray dz, int positions) {
      long rows = x3.getShape().get(0) * x3.getShape().get(1);
      NDArray patches = x3.reshape(rows, x3.getShape().get(2));
      NDArray g = dz.transpose(0, 2, 1, 3).reshape(rows, dz.getShape().get(1) * dz.getShape().get(3));
      tape.record(new AffineTape.Factors(() -> patches, positions, g, null));
    }

    /** The patches of the positional embeddings as a layer: row {@code (n, p)} is the indicator of {@code p}. */
    private static NDArray oneHotPositions(NDManager m, Pass f, DataType dtype) {
      int p = f.positions();
      double[] v = new double[Math.toIntExact(f.n() * p * p)];
      for (int r = 0; r < f.n() * p; r++) {
        v[r * p + r % p] = 1;
      }
      return Tensors.create(m, v, new Shape(f.n() * p, p), dtype);
    }

    @Override
    protected KernelExpr rule(KernelExpr k, RuleContext context) {
      double b2 = bStd == null ? 0 : bStd * bStd;
      // With embeddings the keys' (and with val_pos_emb the values') input kernel is the input's
      // mixed with the embeddings' covariance R, the identity over positions (neural-tangents'
      // pos_emb_decay_fn = None), weighted by their shares of the channels.
      KernelExpr in = k;
      if (posEmb != PositionalEmbedding.NONE) {
        double share = posEmb == PositionalEmbedding.CONCAT ? 0.5 : 1.0;
        int p = k.nngp().layout().pixels();
        double[] identity = new double[p * p];
        for (int q = 0; q < p; q++) {
          identity[q * p + q] = posEmbStd * posEmbStd * share;
        }
        Expr r = Expr.block(k.nngp().layout(), identity);
        // Masked positions have no embedding (neural-tangents zeroes pos_emb there).
        Expr[] m = k.masked() ? Masks.pairMasks(k) : null;
        Expr r12 = m == null ? r : Masks.zeroed(r, m[0]);
        Expr r11 = m == null ? r : Masks.zeroed(r, m[1]);
        Expr r22 = m == null ? r : Masks.zeroed(r, m[2]);
        in = new KernelExpr(k.nngp().times(share).plus(r12), k.ntk().times(share).plus(r12),
            k.var1().times(share).plus(r11), k.var2().times(share).plus(r22));
      }
      KernelExpr values = valPosEmb ? in : k;
      if (linearScaling) {
        double s2 = ovStd * ovStd;
        Expr g1 = attentionMatrix(in.var1(), k.kept1());
        Expr g2 = attentionMatrix(in.var2(), k.kept2());
        Expr nngp = values.nngp().attend(g1, g2).times(s2);
        Expr ntk = values.ntk().isConstant() ? nngp.times(2)
            : values.ntk().attend(g1, g2).times(s2).plus(nngp.times(2));
        return new KernelExpr(nngp.plus(b2), ntk.plus(b2), values.var1().attend(g1, g1).times(s2).plus(b2),
            values.var2().attend(g2, g2).times(s2).plus(b2));
      }
      if (mechanism != Mechanism.IDENTITY) {
        throw new ModelException(context.path(), "attention_mechanism " + mechanism + " has no known closed-form "
            + "kernel without linear_scaling (scores scaled by 1 / sqrt(n_chan_key)); use linear_scaling true or "
            + "IDENTITY, as in neural-tangents");
      }
      // The scores are Gaussian with covariance t^2 in(p, p') in(q, q') (in: the keys' input kernel),
      // independent of the values: nngp' = t^2 <in, values> in + b^2.
      double t2 = qkStd * ovStd * qkStd * ovStd;
      Expr dot12 = total(in.nngp().times(values.nngp()));
      Expr nngp = dot12.times(in.nngp()).times(t2).plus(b2);
      Expr ntkDot = valPosEmb || posEmb == PositionalEmbedding.NONE ? total(in.nngp().times(in.ntk())).times(2)
          : total(in.nngp().times(k.ntk())).plus(total(k.nngp().times(in.ntk())));
      Expr ntk = ntkDot.times(in.nngp()).plus(dot12.times(in.ntk().plus(in.nngp().times(4)))).times(t2).plus(b2);
      return new KernelExpr(nngp, ntk, total(in.var1().times(values.var1())).times(in.var1()).times(t2).plus(b2),
          total(in.var2().times(values.var2())).times(in.var2()).times(t2).plus(b2));
    }

    /**
     * The attention matrix {@code f(W_query_std W_key_std cov)} of an input's pixel-pair covariance;
     * with a mask {@code kept} (null: none), masked keys get no weight: their scores are {@code
     * -1e20} before a softmax and 0 before the other mechanisms, as in neural-tangents.
     */
    private Expr attentionMatrix(Expr cov, Expr kept) {
      Expr scores = cov.times(qkStd);
      if (kept != null) {
        scores = kept.spreadCol().select(scores, Expr.constant(mechanism == Mechanism.SOFTMAX ? MASKED_SCORE : 0));
      }
      return switch (mechanism) {
        case SOFTMAX -> scores.softmax();
        case IDENTITY -> scores;
        case ABS -> scores.abs();
        case RELU -> scores.max(0);
      };
    }

    /** The score of a masked key before a softmax: neural-tangents' {@code _NEG_INF}, finite. */
    private static final double MASKED_SCORE = -1e20;

    /** The sum over all pixel pairs of a block ({@code 0} stays {@code 0}). */
    private static Expr total(Expr e) {
      return e.isConstant() ? e : e.sum(1);
    }
  }
}
