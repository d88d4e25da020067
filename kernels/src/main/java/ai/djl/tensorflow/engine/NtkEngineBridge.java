package ai.djl.tensorflow.engine;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import org.bytedeco.javacpp.PointerScope;
import org.tensorflow.internal.c_api.AbstractTFE_TensorHandle;
import org.tensorflow.internal.c_api.AbstractTF_Tensor;
import org.tensorflow.internal.c_api.TFE_TensorHandle;
import org.tensorflow.internal.c_api.TF_Status;
import org.tensorflow.internal.c_api.TF_Tensor;
import org.tensorflow.internal.c_api.global.tensorflow;
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

  /**
   * The TensorFlow op {@code name} (its raw name, such as {@code "Expm1"}) of {@code inputs}, on
   * the first input's manager, as DJL runs its own ops: so the engine can run ops that DJL's
   * {@code NDArray} has no method for ({@code Expm1}, {@code Log1p}).
   */
  public static NDArray op(String name, NDArray... inputs) {
    TfNDManager manager = (TfNDManager) inputs[0].getManager();
    TfOpExecutor executor = manager.opExecutor(name);
    for (NDArray x : inputs) {
      executor.addInput(x);
    }
    return executor.buildSingletonOrThrow();
  }

  /**
   * {@code count} new arrays of {@code shape} and {@code type} on {@code manager}'s CPU, whose
   * values {@code values} writes into the native-order buffers it is given, which are the tensors'
   * own memory (no copy): a 4096 x 4096 float32 kernel is 64 MiB that a direct buffer would take and
   * TensorFlow copy again. The buffers must not be used after {@code values} returns. Another
   * engine's manager, or an array too large for one buffer, gets filled direct buffers and
   * {@code create}.
   */
  public static List<NDArray> fill(NDManager manager, Shape shape, DataType type, int count,
      Consumer<List<ByteBuffer>> values) {
    long bytes = shape.size() * type.getNumOfBytes();
    List<ByteBuffer> buffers = new ArrayList<>();
    List<NDArray> arrays = new ArrayList<>();
    if (!(manager instanceof TfNDManager tf) || manager.getDevice().isGpu() || bytes > Integer.MAX_VALUE) {
      for (int i = 0; i < count; i++) {
        buffers.add(ByteBuffer.allocateDirect(Math.toIntExact(bytes)).order(ByteOrder.nativeOrder()));
      }
      values.accept(buffers);
      buffers.forEach(b -> arrays.add(manager.create(b.rewind(), shape, type)));
      return arrays;
    }
    try (PointerScope scope = new PointerScope()) {
      List<TF_Tensor> tensors = new ArrayList<>();
      for (int i = 0; i < count; i++) {
        TF_Tensor tensor = AbstractTF_Tensor.allocateTensor(TfDataType.toTf(type), shape.getShape(), bytes);
        if (tensor == null || tensor.isNull()) {
          throw new IllegalStateException("TensorFlow could not allocate a " + shape + " " + type + " tensor");
        }
        tensors.add(tensor);
        buffers.add(tensorflow.TF_TensorData(tensor).capacity(bytes).asByteBuffer().order(ByteOrder.nativeOrder()));
      }
      values.accept(buffers);
      for (TF_Tensor tensor : tensors) {
        TF_Status status = TF_Status.newStatus();
        TFE_TensorHandle handle = AbstractTFE_TensorHandle.newTensor(tensor, status);
        status.throwExceptionIfNotOK();
        // The handle outlives the scope (as in DJL's own JavacppUtils), the tensor does not.
        arrays.add(new TfNDArray(tf, (TFE_TensorHandle) handle.retainReference()));
      }
      return arrays;
    }
  }
}
