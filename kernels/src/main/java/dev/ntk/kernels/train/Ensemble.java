package dev.ntk.kernels.train;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import dev.ntk.kernels.Layer;
import dev.ntk.kernels.Params;
import dev.ntk.kernels.Tensors;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.LongConsumer;

/**
 * An ensemble of finite networks trained alike from different initializations: member {@code i}
 * is initialized by {@link Layer#init(long, ai.djl.ndarray.types.Shape, NDManager, DataType)}
 * from seed {@code seed + i} (the parameters {@code ntk init --seed} draws) and trained by {@link
 * Trainer} (its minibatches drawn from the same seed), as the network itself or as its
 * linearization around its initial parameters ({@link Taylor#linearize}). Over many members the
 * outputs' mean and variance approach the infinite network's ({@code ntk predict --get ntk}).
 *
 * <pre>{@code
 * Trainer.Outputs[] runs = Ensemble.train(model, false, 0, 16, data,
 *     new Trainer.Settings(Loss.MSE, new Optimizer.Sgd(), 0.1, 0, new double[] {100}),
 *     DataType.FLOAT64, 1, steps -> {});
 * }</pre>
 */
public final class Ensemble {
  private Ensemble() {}

  /**
   * Trains {@code members} networks, {@code threads} at a time (each member's operations use the
   * engine's own threads as well), and returns each member's outputs in order.
   *
   * @param linearized whether each member is the linearization of the network around its initial
   *     parameters
   * @param stepDone called after every step of every member (from any thread)
   */
  public static Trainer.Outputs[] train(Layer model, boolean linearized, long seed, int members,
      Trainer.Data data, Trainer.Settings settings, DataType dtype, int threads, LongConsumer stepDone) {
    return train(model, linearized, seed, members, data, settings, dtype, threads, stepDone, null);
  }

  /** What is done with a member's trained parameters, before they are closed. */
  @FunctionalInterface
  public interface Trained {
    /** Member {@code member} (seed {@code seed + member}) ended with {@code params}. */
    void accept(int member, Params params);
  }

  /**
   * {@link #train(Layer, boolean, long, int, Trainer.Data, Trainer.Settings, DataType, int,
   * LongConsumer)}, handing each member's trained parameters to {@code trained} (if not null, from
   * the member's thread) before they are closed.
   */
  public static Trainer.Outputs[] train(Layer model, boolean linearized, long seed, int members,
      Trainer.Data data, Trainer.Settings settings, DataType dtype, int threads, LongConsumer stepDone,
      Trained trained) {
    if (members < 1) {
      throw new IllegalArgumentException("an ensemble needs at least one member, got " + members);
    }
    if (threads < 1) {
      throw new IllegalArgumentException("threads must be at least 1, got " + threads);
    }
    model.check(data.perExample());
    Trainer.Outputs[] out = new Trainer.Outputs[members];
    if (threads == 1) {
      for (int i = 0; i < members; i++) {
        out[i] = member(model, linearized, seed, i, data, settings, dtype, stepDone, trained);
      }
      return out;
    }
    ExecutorService pool = Executors.newFixedThreadPool(Math.min(threads, members), r -> {
      Thread t = new Thread(r, "ntk-train");
      t.setDaemon(true);
      return t;
    });
    try {
      List<Future<Trainer.Outputs>> runs = new ArrayList<>();
      for (int i = 0; i < members; i++) {
        int member = i;
        runs.add(pool.submit(() -> member(model, linearized, seed, member, data, settings, dtype, stepDone,
            trained)));
      }
      for (int i = 0; i < members; i++) {
        out[i] = runs.get(i).get();
      }
      return out;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new CompletionException(e);
    } catch (ExecutionException e) {
      if (e.getCause() instanceof RuntimeException r) {
        throw r;
      }
      if (e.getCause() instanceof Error err) {
        throw err;
      }
      throw new CompletionException(e.getCause());
    } finally {
      pool.shutdownNow();
    }
  }

  /** One member: its parameters from {@code seed}, trained in a manager of its own. */
  private static Trainer.Outputs member(Layer model, boolean linearized, long seed, int member, Trainer.Data data,
      Trainer.Settings settings, DataType dtype, LongConsumer stepDone, Trained trained) {
    try (NDManager manager = Tensors.newManager()) {
      Params params0 = model.init(seed + member, data.perExample(), manager, dtype);
      Network network = linearized ? Taylor.linearize(model, params0) : Network.of(model);
      return Trainer.train(network, params0, data, settings, seed + member, manager, dtype, stepDone,
          trained == null ? null : p -> trained.accept(member, p));
    }
  }
}
