package dev.ntk.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A full disk reports its reason alone; the writers add the file they were writing. */
class FileErrorsTest {
  private static final String FULL = "No space left on device";

  @TempDir Path dir;

  @Test
  void anAtomicWriteOnAFullDiskNamesItsTarget() throws IOException {
    Path target = dir.resolve("nngp.npy");
    FileSystemException e = assertThrows(FileSystemException.class,
        () -> AtomicFiles.write(target, tmp -> {
          Files.write(tmp, new byte[10]);
          throw new IOException(FULL);
        }));
    assertEquals(target.toString(), e.getFile());
    assertEquals(FULL, e.getReason());
    try (Stream<Path> left = Files.list(dir)) {
      assertEquals(0, left.count(), "the temporary file must be removed");
    }
  }

  @Test
  void anNpyWriterOnAFullDiskNamesItsFile() throws IOException {
    boolean[] full = {false};
    WritableByteChannel channel = new WritableByteChannel() {
      @Override
      public int write(ByteBuffer src) throws IOException {
        if (full[0]) {
          throw new IOException(FULL);
        }
        int n = src.remaining();
        src.position(src.limit());
        return n;
      }

      @Override
      public boolean isOpen() {
        return true;
      }

      @Override
      public void close() {}
    };
    NpyWriter w = NpyWriter.open(channel, "/data/out/ntk.npy", new long[] {2, 2}, NpyDType.FLOAT64);
    full[0] = true;
    FileSystemException e = assertThrows(FileSystemException.class, () -> w.write(new double[4]));
    assertEquals("/data/out/ntk.npy", e.getFile());
    assertEquals(FULL, e.getReason());
  }

  @Test
  void aFailureThatNamesItsFileIsKept() {
    IOException named = new NoSuchFileException("/a/b.npy");
    assertSame(named, FileErrors.naming(named, "/other"));
    IOException mentions = new IOException("/a/b.npy: closed after 3 of its 4 values");
    assertSame(mentions, FileErrors.naming(mentions, "/a/b.npy"));
    assertFalse(FileErrors.naming(new IOException(FULL), "/a/b.npy").getMessage().contains("IOException"));
  }
}
