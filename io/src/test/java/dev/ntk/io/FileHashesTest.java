package dev.ntk.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** An input's digest, computed while it is read for its checks, equals the digest of its bytes. */
class FileHashesTest {
  @TempDir Path dir;

  private static String sha256(Path file) throws IOException, NoSuchAlgorithmException {
    return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
  }

  private static NpyArray array(long rows, long cols, NpyDType dtype, double offset) {
    double[] v = new double[(int) (rows * cols)];
    for (int i = 0; i < v.length; i++) {
      v[i] = Math.sin(i + offset);
    }
    return new NpyArray(new long[] {rows, cols}, dtype, v);
  }

  @Test
  void readingHashesTheWholeFile() throws Exception {
    // one array of several read chunks (8 MiB each) and small ones of both dtypes
    for (NpyArray a : new NpyArray[] {array(3, 2, NpyDType.FLOAT64, 0), array(5, 7, NpyDType.FLOAT32, 1),
        array(1100, 1000, NpyDType.FLOAT64, 2)}) {
      Path file = dir.resolve("x" + a.size() + ".npy");
      Npy.write(file, a);
      NpyArray read = FileHashes.readNpy(file);
      assertArrayEquals(a.shape(), read.shape());
      assertArrayEquals(Npy.read(file).data(), read.data());
      assertEquals(sha256(file), FileHashes.sha256(file));
    }
  }

  @Test
  void aChangedFileIsHashedAgain() throws Exception {
    Path file = dir.resolve("x.npy");
    Npy.write(file, array(4, 3, NpyDType.FLOAT64, 0));
    FileHashes.readNpy(file);
    String before = FileHashes.sha256(file);
    Npy.write(file, array(4, 3, NpyDType.FLOAT64, 1)); // same size, other bytes
    Files.setLastModifiedTime(file, FileTime.fromMillis(Files.getLastModifiedTime(file).toMillis() + 2000));
    assertEquals(sha256(file), FileHashes.sha256(file));
    assertNotEquals(before, FileHashes.sha256(file));
  }
}
