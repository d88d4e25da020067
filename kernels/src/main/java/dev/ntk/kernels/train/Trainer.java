package dev.ntk.kernels.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.Params;
import dev.ntk.kernels.Tensors;
import dev.ntk.kernels.Vjp;
import dev.ntk.kernels.predict.Loss;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.function.Consumer;
import java.util.function.LongConsumer;

/**
 * Trains one finite network ({@link Network}: the network or its linearization) from its initial
 * parameters and reports its train and test outputs at the times asked.
 *
 * <p>Time is counted as by {@code ntk predict} and neural-tangents' {@code predict_fn(t)}: {@code
 * t} is the number of steps of size {@code learning_rate}, so that gradient descent on MSE after
 * {@code t} steps approaches the infinite network's continuous dynamics at time {@code t} (both
 * take the loss {@code |f - y|^2 / (2 y.size)}, {@link Loss#MSE}). A non-integer {@code t} gives
 * the outputs at the parameters a fraction {@code t - floor(t)} of the way from step {@code
 * floor(t)} to the next (the parameters are taken as linear in {@code t} between steps; for plain
 * gradient descent this is a last step of size {@code (t - floor(t)) lr}). The gradient of each
 * step comes from {@link Network#vjp} on the whole training set or, with a batch size, on a
 * minibatch: the batches are consecutive slices of a stream of random permutations of the
 * training rows (a new permutation every epoch) drawn from {@code seed}, each of exactly {@code
 * batchSize} rows, the loss normalized by the batch's own size.
 */
public final class Trainer {
  private Trainer() {}

  /**
   * How to train.
   *
   * @param batchSize rows per step; 0 for the whole training set
   * @param times the numbers of steps at which outputs are reported: finite, non-negative, any
   *     order
   */
  public record Settings(Loss loss, Optimizer optimizer, double learningRate, int batchSize, double[] times) {
    public Settings {
      if (!(learningRate > 0) || Double.isInfinite(learningRate)) {
        throw new IllegalArgumentException("learning_rate must be positive, got " + learningRate);
      }
      if (batchSize < 0) {
        throw new IllegalArgumentException("batch_size must be positive (or 0 for full batch), got " + batchSize);
      }
      if (times.length == 0) {
        throw new IllegalArgumentException("expected at least one time t");
      }
      for (double t : times) {
        if (!(t >= 0) || Double.isInfinite(t)) {
          throw new IllegalArgumentException("training times t must be finite non-negative numbers of steps, got "
              + t);
        }
      }
      times = times.clone();
    }

    /** The steps a run takes: {@code ceil(max t)}. */
    public long steps() {
      return (long) Math.ceil(Arrays.stream(times).max().orElse(0));
    }
  }

  /**
   * Training and test inputs and targets as row-major Java arrays.
   *
   * @param xTrain the training inputs of shape {@code trainShape} (batch first)
   * @param yTrain the targets, {@code N x outputs}
   * @param xTest the test inputs of shape {@code testShape}, whose per-example shape is the
   *     training inputs'
   */
  public record Data(double[] xTrain, Shape trainShape, double[] yTrain, int outputs, double[] xTest,
      Shape testShape) {
    public Data {
      if (trainShape.size() != xTrain.length || testShape.size() != xTest.length) {
        throw new IllegalArgumentException("inputs do not have their shapes' sizes");
      }
      if (!trainShape.slice(1).equals(testShape.slice(1))) {
        throw new IllegalArgumentException("train inputs " + trainShape + " and test inputs " + testShape
            + " differ per example");
      }
      if (yTrain.length != trainShape.get(0) * outputs) {
        throw new IllegalArgumentException(yTrain.length + " targets do not fill " + trainShape.get(0) + " rows of "
            + outputs);
      }
    }

    /** Training rows. */
    public int n() {
      return (int) trainShape.get(0);
    }

    /** Test rows. */
    public int m() {
      return (int) testShape.get(0);
    }

    /** The per-example input shape. */
    public Shape perExample() {
      return trainShape.slice(1);
    }
  }

  /**
   * The outputs at each time, in the order asked: {@code train[i]} is {@code N x outputs}, {@code
   * test[i]} {@code M x outputs}, row-major.
   */
  public record Outputs(double[][] train, double[][] test) {}

  /**
   * Trains {@code network} from {@code params0} (not changed nor closed) and returns its outputs
   * at {@code settings.times()}. Every array of the run lives in {@code manager} or a scope below
   * it and is closed as soon as it is not needed; {@code params0}, and any array the network
   * holds, must be among {@code params0}'s leaves or live in {@code manager}.
   *
   * @param seed the minibatch order's seed (unused for full batches)
   * @param stepDone called after every step (progress)
   */
  public static Outputs train(Network network, Params params0, Data data, Settings settings, long seed,
      NDManager manager, DataType dtype, LongConsumer stepDone) {
    return train(network, params0, data, settings, seed, manager, dtype, stepDone, null);
  }

  /**
   * {@link #train(Network, Params, Data, Settings, long, NDManager, DataType, LongConsumer)}, handing
   * the trained parameters to {@code trained} (if not null) before they are closed.
   */
  public static Outputs train(Network network, Params params0, Data data, Settings settings, long seed,
      NDManager manager, DataType dtype, LongConsumer stepDone, Consumer<Params> trained) {
    return new Run(network, params0, data, settings, seed, manager, dtype).run(stepDone, trained);
  }

  /** One training run: its arrays and where it stands. */
  private static final class Run {
    private final Network network;
    private final Params params0;
    private final Data data;
    private final Settings settings;
    private final NDManager manager;
    private final DataType dtype;
    private final NDArray xTrain;
    private final NDArray xAll;
    private final SplittableRandom batches;
    private final int batch;
    private final double[][] train;
    private final double[][] test;
    private int[] order;
    private int at;

    Run(Network network, Params params0, Data data, Settings settings, long seed, NDManager manager,
        DataType dtype) {
      this.network = network;
      this.params0 = params0;
      this.data = data;
      this.settings = settings;
      this.manager = manager;
      this.dtype = dtype;
      this.xTrain = Tensors.create(manager, data.xTrain(), data.trainShape(), dtype);
      double[] all = Arrays.copyOf(data.xTrain(), data.xTrain().length + data.xTest().length);
      System.arraycopy(data.xTest(), 0, all, data.xTrain().length, data.xTest().length);
      this.xAll = Tensors.create(manager, all, new Shape(data.n() + data.m()).addAll(data.perExample()), dtype);
      this.batches = new SplittableRandom(seed).split();
      this.batch = settings.batchSize() == 0 || settings.batchSize() >= data.n() ? 0 : settings.batchSize();
      this.train = new double[settings.times().length][];
      this.test = new double[settings.times().length][];
      this.at = data.n();
    }

    Outputs run(LongConsumer stepDone, Consumer<Params> trained) {
      double[] times = settings.times();
      long steps = settings.steps();
      Optimizer optimizer = settings.optimizer();
      List<NDArray> current = params0.leaves();
      List<List<NDArray>> state = new ArrayList<>();
      for (NDArray p : current) {
        List<NDArray> s = new ArrayList<>();
        for (int j = 0; j < optimizer.stateArrays(); j++) {
          s.add(manager.zeros(p.getShape(), p.getDataType()));
        }
        state.add(s);
      }
      Set<NDArray> initial = Collections.newSetFromMap(new IdentityHashMap<>());
      initial.addAll(current);
      try {
        for (long step = 0; ; step++) {
          for (int i = 0; i < times.length; i++) {
            if (times[i] == step) {
              try (NDManager scope = borrow(current, state)) {
                record(i, params0.withLeaves(current));
              }
            }
          }
          if (step >= steps) {
            break;
          }
          List<NDArray> next = new ArrayList<>();
          List<List<NDArray>> nextState = new ArrayList<>();
          try (NDManager scope = borrow(current, state)) {
            List<NDArray> grads = gradient(scope, params0.withLeaves(current));
            for (int j = 0; j < current.size(); j++) {
              List<NDArray> u = optimizer.update(current.get(j), grads.get(j), state.get(j), step,
                  settings.learningRate());
              next.add(u.get(0));
              nextState.add(new ArrayList<>(u.subList(1, u.size())));
            }
            for (int i = 0; i < times.length; i++) {
              double fraction = times[i] - step;
              if (fraction > 0 && fraction < 1) {
                record(i, params0.withLeaves(between(current, next, fraction)));
              }
            }
            next.forEach(a -> a.attach(manager));
            nextState.forEach(s -> s.forEach(a -> a.attach(manager)));
          }
          release(current, state, initial);
          current = next;
          state = nextState;
          stepDone.accept(1);
        }
        if (trained != null) {
          trained.accept(params0.withLeaves(current));
        }
      } finally {
        release(current, state, initial);
        xTrain.close();
        xAll.close();
      }
      return new Outputs(train, test);
    }

    /**
     * A scope for one step that borrows the arrays the step reads: results of operations land in
     * their first operand's manager, so every array made during the step is freed with the scope.
     */
    private NDManager borrow(List<NDArray> current, List<List<NDArray>> state) {
      NDManager scope = manager.newSubManager();
      Set<NDArray> seen = Collections.newSetFromMap(new IdentityHashMap<>());
      List<NDArray> all = new ArrayList<>(current);
      all.addAll(params0.leaves());
      state.forEach(all::addAll);
      all.add(xTrain);
      all.add(xAll);
      for (NDArray a : all) {
        if (seen.add(a)) {
          a.tempAttach(scope);
        }
      }
      return scope;
    }

    /** Closes the arrays of a finished step that the run made (not the initial parameters). */
    private static void release(List<NDArray> current, List<List<NDArray>> state, Set<NDArray> initial) {
      for (NDArray a : current) {
        if (!initial.contains(a)) {
          a.close();
        }
      }
      state.forEach(s -> s.forEach(NDArray::close));
    }

    /** The loss's gradient in the parameters on this step's batch. */
    private List<NDArray> gradient(NDManager scope, Params params) {
      NDArray x;
      double[] y;
      int rows;
      int k = data.outputs();
      if (batch == 0) {
        x = xTrain;
        y = data.yTrain();
        rows = data.n();
      } else {
        int[] idx = nextBatch();
        int per = (int) data.perExample().size();
        double[] xb = new double[batch * per];
        y = new double[batch * k];
        for (int r = 0; r < batch; r++) {
          System.arraycopy(data.xTrain(), idx[r] * per, xb, r * per, per);
          System.arraycopy(data.yTrain(), idx[r] * k, y, r * k, k);
        }
        x = Tensors.create(scope, xb, new Shape(batch).addAll(data.perExample()), dtype);
        rows = batch;
      }
      Vjp vjp = network.vjp(params, x);
      NDArray out = vjp.output();
      double[] f = Tensors.toDoubles(out);
      if (f.length != y.length) {
        throw new IllegalArgumentException("the network has " + f.length / rows + " outputs per example, the "
            + "targets " + k);
      }
      double[] g = settings.loss().gradient(f, y, rows, k);
      NDArray cotangent = Tensors.create(scope, g, out.getShape(), out.getDataType());
      return vjp.pull(List.of(cotangent)).params().leaves();
    }

    private int[] nextBatch() {
      int n = data.n();
      int[] idx = new int[batch];
      for (int r = 0; r < batch; r++) {
        if (at == n) {
          order = permutation(n);
          at = 0;
        }
        idx[r] = order[at++];
      }
      return idx;
    }

    private int[] permutation(int n) {
      int[] p = new int[n];
      for (int i = 0; i < n; i++) {
        p[i] = i;
      }
      for (int i = n - 1; i > 0; i--) {
        int j = batches.nextInt(i + 1);
        int tmp = p[i];
        p[i] = p[j];
        p[j] = tmp;
      }
      return p;
    }

    /** {@code a + fraction (b - a)}, array by array. */
    private static List<NDArray> between(List<NDArray> a, List<NDArray> b, double fraction) {
      List<NDArray> out = new ArrayList<>();
      for (int j = 0; j < a.size(); j++) {
        out.add(a.get(j).add(Tensors.mul(b.get(j).sub(a.get(j)), fraction)));
      }
      return out;
    }

    /** The train and test outputs at {@code params} as time {@code i}'s. */
    private void record(int i, Params params) {
      double[] f = Tensors.toDoubles(network.apply(params, xAll));
      int split = data.n() * data.outputs();
      if (f.length != (long) (data.n() + data.m()) * data.outputs()) {
        throw new IllegalArgumentException("the network has " + f.length / (data.n() + data.m())
            + " outputs per example, the targets " + data.outputs());
      }
      train[i] = Arrays.copyOfRange(f, 0, split);
      test[i] = Arrays.copyOfRange(f, split, f.length);
    }
  }
}
