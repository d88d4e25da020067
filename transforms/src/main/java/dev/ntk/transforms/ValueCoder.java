package dev.ntk.transforms;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.Serializable;
import org.apache.beam.sdk.coders.CustomCoder;
import org.apache.beam.sdk.coders.SerializableCoder;

/**
 * Java serialization for the small records passed between inference steps (factors, predicted
 * blocks). Unlike {@link SerializableCoder} it compares values by their encoding, as records
 * holding arrays need, so the DirectRunner's mutation checks work on them.
 */
final class ValueCoder<T extends Serializable> extends CustomCoder<T> {
  private static final long serialVersionUID = 1L;
  private final SerializableCoder<T> delegate;

  private ValueCoder(Class<T> type) {
    this.delegate = SerializableCoder.of(type);
  }

  static <T extends Serializable> ValueCoder<T> of(Class<T> type) {
    return new ValueCoder<>(type);
  }

  @Override
  public void encode(T value, OutputStream out) throws IOException {
    delegate.encode(value, out);
  }

  @Override
  public T decode(InputStream in) throws IOException {
    return delegate.decode(in);
  }
}
