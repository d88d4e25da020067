package dev.ntk.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;

/**
 * A channel that forwards every call to another one; subclasses override what they change (a
 * reader that must not close its caller's channel, a digest of the bytes read).
 */
abstract class ForwardingChannel implements SeekableByteChannel {
  /** The channel the calls go to. */
  protected final SeekableByteChannel in;

  ForwardingChannel(SeekableByteChannel in) {
    this.in = in;
  }

  @Override
  public int read(ByteBuffer dst) throws IOException {
    return in.read(dst);
  }

  @Override
  public int write(ByteBuffer src) throws IOException {
    return in.write(src);
  }

  @Override
  public long position() throws IOException {
    return in.position();
  }

  @Override
  public SeekableByteChannel position(long newPosition) throws IOException {
    in.position(newPosition);
    return this;
  }

  @Override
  public long size() throws IOException {
    return in.size();
  }

  @Override
  public SeekableByteChannel truncate(long size) throws IOException {
    in.truncate(size);
    return this;
  }

  @Override
  public boolean isOpen() {
    return in.isOpen();
  }

  @Override
  public void close() throws IOException {
    in.close();
  }
}
