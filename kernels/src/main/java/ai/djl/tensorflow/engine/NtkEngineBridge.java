package ai.djl.tensorflow.engine;

import ai.djl.engine.Engine;
import ai.djl.tensorflow.engine.javacpp.JavacppUtils;
import java.lang.reflect.Field;
import java.util.concurrent.atomic.AtomicReference;
import org.tensorflow.internal.c_api.TFE_Context;

/**
 * ntk's one bridge into DJL's TensorFlow engine, for what its public API does not offer.
 *
 * <p>DJL creates its eager context in asynchronous mode: every op of every thread is queued on the
 * context's one executor, so threads computing tiles side by side (Beam workers in one JVM) run
 * one at a time. {@link #useSynchronousExecution()} replaces that context, before any array
 * exists, with a synchronous one, in which each op runs on the calling thread.
 */
public final class NtkEngineBridge {
  private static boolean done;

  private NtkEngineBridge() {}

  /** Makes TensorFlow ops run on the calling thread; idempotent, before the first array only. */
  public static synchronized void useSynchronousExecution() {
    if (done) {
      return;
    }
    Engine.getEngine(TfEngine.ENGINE_NAME); // creates the engine and its asynchronous context
    try {
      Field field = TfEngine.class.getDeclaredField("eagerSessionHandle");
      field.setAccessible(true);
      @SuppressWarnings("unchecked")
      AtomicReference<TFE_Context> handle = (AtomicReference<TFE_Context>) field.get(null);
      handle.set(JavacppUtils.createEagerSession(false, 2, JavacppUtils.getSessionConfig()));
    } catch (ReflectiveOperationException e) {
      throw new IllegalStateException("this DJL TensorFlow engine has no eager context field to "
          + "configure; check the DJL version", e);
    }
    done = true;
  }
}
