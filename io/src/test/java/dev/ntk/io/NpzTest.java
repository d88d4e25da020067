package dev.ntk.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

class NpzTest {
  @TempDir Path dir;

  /** The arrays of the numpy-written fixtures (see resources/dev/ntk/io/README.txt). */
  private static Map<String, NpyArray> fixtureArrays() {
    Map<String, NpyArray> arrays = new LinkedHashMap<>();
    double[] a = new double[6];
    double[] w = new double[6];
    for (int i = 0; i < 6; i++) {
      a[i] = i * 0.5 - 1;
      w[i] = i * 0.25;
    }
    arrays.put("a", new NpyArray(new long[] {2, 3}, NpyDType.FLOAT64, a));
    arrays.put("serial[0].Dense/W", new NpyArray(new long[] {3, 2}, NpyDType.FLOAT64, w));
    arrays.put("b", NpyArray.ofFloats(new long[] {4}, new float[] {1.5f, -2.0f, 3.25f, 0.0f}));
    return arrays;
  }

  private Path resource(String name) throws IOException {
    Path file = dir.resolve(name);
    try (InputStream in = NpzTest.class.getResourceAsStream(name)) {
      Files.copy(in, file);
    }
    return file;
  }

  @ParameterizedTest
  @ValueSource(strings = {"numpy-savez.npz", "numpy-savez-compressed.npz"})
  void readsWhatNumpyWrote(String name) throws IOException {
    Map<String, NpyArray> read = Npz.read(resource(name));
    assertEquals(List.of("a", "serial[0].Dense/W", "b"), new ArrayList<>(read.keySet()));
    assertEquals(fixtureArrays(), read);
    assertEquals(NpyDType.FLOAT32, read.get("b").dtype());
  }

  @ParameterizedTest
  @EnumSource(Npz.Compression.class)
  void roundTrips(Npz.Compression compression) throws IOException {
    Path file = dir.resolve("sub/p.npz");
    Npz.write(file, fixtureArrays(), compression);
    Map<String, NpyArray> read = Npz.read(file);
    assertEquals(fixtureArrays(), read);
    assertEquals(List.of("a", "serial[0].Dense/W", "b"), new ArrayList<>(read.keySet()));
    try (ZipFile zip = new ZipFile(file.toFile())) {
      int method = compression == Npz.Compression.STORED ? ZipEntry.STORED : ZipEntry.DEFLATED;
      zip.stream().forEach(e -> assertEquals(method, e.getMethod(), e.getName()));
    }
    try (Stream<Path> files = Files.list(file.getParent())) {
      assertEquals(List.of(file), files.toList(), "no temporary file is left");
    }
  }

  @Test
  void entriesAreTheNpyFilesNpyWrites() throws IOException {
    Path archive = dir.resolve("p.npz");
    Npz.write(archive, fixtureArrays());
    try (ZipFile zip = new ZipFile(archive.toFile())) {
      for (Map.Entry<String, NpyArray> a : fixtureArrays().entrySet()) {
        Path single = dir.resolve("single.npy");
        Npy.write(single, a.getValue());
        try (InputStream in = zip.getInputStream(zip.getEntry(a.getKey() + ".npy"))) {
          assertArrayEquals(Files.readAllBytes(single), in.readAllBytes(), a.getKey());
        }
      }
    }
  }

  @Test
  void sameArraysGiveTheSameBytes() throws IOException {
    Path first = dir.resolve("1.npz");
    Path second = dir.resolve("2.npz");
    Npz.write(first, fixtureArrays(), Npz.Compression.DEFLATED);
    Npz.write(second, fixtureArrays(), Npz.Compression.DEFLATED);
    assertArrayEquals(Files.readAllBytes(first), Files.readAllBytes(second));
  }

  @Test
  void emptyArchiveHasNoArrays() throws IOException {
    Path file = dir.resolve("empty.npz");
    Npz.write(file, Map.of());
    assertTrue(Npz.read(file).isEmpty());
  }

  @Test
  void notAZipNamesTheFile() throws IOException {
    Path file = dir.resolve("bad.npz");
    Files.writeString(file, "not a zip archive");
    NpyFormatException e = assertThrows(NpyFormatException.class, () -> Npz.read(file));
    assertTrue(e.getMessage().startsWith(file + ": not a .npz file"), e.getMessage());
  }

  @Test
  void missingFileIsNoSuchFile() {
    assertThrows(NoSuchFileException.class, () -> Npz.read(dir.resolve("absent.npz")));
  }

  @Test
  void entryThatIsNotNpyNamesTheEntry() throws IOException {
    Path file = zip("other.npz", Map.of("notes.txt", "hello".getBytes()));
    NpyFormatException e = assertThrows(NpyFormatException.class, () -> Npz.read(file));
    assertTrue(e.getMessage().startsWith(file + ", entry notes.txt: not an array"), e.getMessage());
  }

  @Test
  void malformedNpyEntryNamesTheEntry() throws IOException {
    Path file = zip("trunc.npz", Map.of("x.npy", "\u0093NUMPY".getBytes(java.nio.charset.StandardCharsets.ISO_8859_1)));
    NpyFormatException e = assertThrows(NpyFormatException.class, () -> Npz.read(file));
    assertTrue(e.getMessage().startsWith(file + ", entry x.npy: truncated header"), e.getMessage());
  }

  @Test
  void corruptDeflatedEntryNamesTheEntry() throws IOException {
    Path file = dir.resolve("corrupt.npz");
    Npz.write(file, fixtureArrays(), Npz.Compression.DEFLATED);
    byte[] bytes = Files.readAllBytes(file);
    // the first entry's deflated data starts after its 30-byte local header and its name "a.npy"
    for (int i = 40; i < 60; i++) {
      bytes[i] ^= (byte) 0x5a;
    }
    Files.write(file, bytes);
    NpyFormatException e = assertThrows(NpyFormatException.class, () -> Npz.read(file));
    assertTrue(e.getMessage().startsWith(file + ", entry a.npy: "), e.getMessage());
  }

  @Test
  void badNameIsRejectedBeforeWriting() {
    Path file = dir.resolve("p.npz");
    Map<String, NpyArray> arrays = Map.of("", fixtureArrays().get("a"));
    assertThrows(IllegalArgumentException.class, () -> Npz.write(file, arrays));
    assertFalse(Files.exists(file));
  }

  private Path zip(String name, Map<String, byte[]> entries) throws IOException {
    Path file = dir.resolve(name);
    try (OutputStream os = Files.newOutputStream(file); ZipOutputStream zip = new ZipOutputStream(os)) {
      for (Map.Entry<String, byte[]> e : entries.entrySet()) {
        zip.putNextEntry(new ZipEntry(e.getKey()));
        zip.write(e.getValue());
        zip.closeEntry();
      }
    }
    return file;
  }
}
