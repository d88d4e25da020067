package dev.ntk.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class NpyWriterTest {
  @TempDir Path dir;

  private FileChannel create(Path file) throws IOException {
    return FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
  }

  @ParameterizedTest
  @EnumSource(NpyDType.class)
  void piecesWrittenInOrderReadBackAsOneArray(NpyDType dtype) throws IOException {
    double[] all = new double[7 * 5];
    for (int i = 0; i < all.length; i++) {
      all[i] = i * 0.25 - 4;
    }
    Path file = dir.resolve("k.npy");
    try (NpyWriter w = NpyWriter.open(create(file), "k.npy", new long[] {7, 5}, dtype)) {
      w.write(all, 0, 10);
      w.write(all, 10, 0);
      w.write(all, 10, 25);
      assertEquals(35, w.written());
    }
    NpyArray read = Npy.read(file);
    assertArrayEquals(new long[] {7, 5}, read.shape());
    assertEquals(dtype, read.dtype());
    assertArrayEquals(all, read.data());
    // The same bytes as writing the array whole.
    Path whole = dir.resolve("whole.npy");
    Npy.write(whole, new NpyArray(new long[] {7, 5}, dtype, all));
    assertArrayEquals(Files.readAllBytes(whole), Files.readAllBytes(file));
  }

  /** Values given as their little-endian bytes are written as they are, between other pieces. */
  @ParameterizedTest
  @EnumSource(NpyDType.class)
  void bytesWrittenAsTheyAreReadBackAsTheValues(NpyDType dtype) throws IOException {
    double[] all = new double[4 * 3];
    for (int i = 0; i < all.length; i++) {
      all[i] = i * 0.5 - 3;
    }
    java.nio.ByteBuffer bytes = java.nio.ByteBuffer.allocateDirect(8 * dtype.bytes()).order(java.nio.ByteOrder.LITTLE_ENDIAN);
    for (int i = 2; i < 10; i++) {
      if (dtype == NpyDType.FLOAT32) {
        bytes.putFloat((float) all[i]);
      } else {
        bytes.putDouble(all[i]);
      }
    }
    bytes.flip();
    Path file = dir.resolve("b.npy");
    try (NpyWriter w = NpyWriter.open(create(file), "b.npy", new long[] {4, 3}, dtype)) {
      w.write(all, 0, 2);
      w.writeBytes(bytes);
      w.write(all, 10, 2);
      assertEquals(12, w.written());
    }
    assertArrayEquals(all, Npy.read(file).data());
    // Bytes that are not whole values, or more values than the shape holds, are refused.
    NpyWriter w = NpyWriter.open(create(dir.resolve("bad.npy")), "bad.npy", new long[] {2}, dtype);
    IllegalArgumentException partial = assertThrows(IllegalArgumentException.class,
        () -> w.writeBytes(java.nio.ByteBuffer.allocate(dtype.bytes() + 1)));
    assertTrue(partial.getMessage().contains("bad.npy") && partial.getMessage().contains("not whole"), partial.getMessage());
    IllegalStateException tooMany = assertThrows(IllegalStateException.class,
        () -> w.writeBytes(java.nio.ByteBuffer.allocate(3 * dtype.bytes())));
    assertTrue(tooMany.getMessage().contains("exceed"), tooMany.getMessage());
    assertEquals(0, w.written());
    w.writeBytes(java.nio.ByteBuffer.allocate(2 * dtype.bytes()));
    w.close();
    assertArrayEquals(new double[2], Npy.read(dir.resolve("bad.npy")).data());
  }

  @Test
  void closingBeforeTheLastValueFailsAndTooManyValuesAreRefused() throws IOException {
    Path file = dir.resolve("short.npy");
    NpyWriter w = NpyWriter.open(create(file), "short.npy", new long[] {3, 3}, NpyDType.FLOAT64);
    w.write(new double[8]);
    IOException e = assertThrows(IOException.class, w::close);
    assertTrue(e.getMessage().contains("short.npy: closed after 8 of its 9 values"), e.getMessage());

    try (NpyWriter full = NpyWriter.open(create(dir.resolve("long.npy")), "long.npy",
        new long[] {2}, NpyDType.FLOAT32)) {
      IllegalStateException over = assertThrows(IllegalStateException.class,
          () -> full.write(new double[3]));
      assertTrue(over.getMessage().contains("3 values exceed the 2"), over.getMessage());
      full.write(new double[2]);
    }
  }
}
