package dev.ntk.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class TileFilesTest {
  @TempDir Path dir;

  private static Tile tile(NpyDType dtype, double scale) {
    TileKey key = new TileKey(8, 16, 3, 4);
    SortedMap<String, double[]> kernels = new TreeMap<>();
    double[] nngp = new double[key.size()];
    double[] ntk = new double[key.size()];
    for (int i = 0; i < nngp.length; i++) {
      nngp[i] = i * scale;
      ntk[i] = -i * scale + 1;
    }
    kernels.put("ntk", ntk);
    kernels.put("nngp", nngp);
    return new Tile(key, "model-abc", "inputs-def", dtype, kernels);
  }

  @ParameterizedTest
  @EnumSource(NpyDType.class)
  void roundTrips(NpyDType dtype) throws IOException {
    Tile tile = tile(dtype, 0.25);
    Path file = TileFiles.write(dir.resolve("tiles"), tile);
    assertEquals(dir.resolve("tiles/tile-r8-c16.arrow"), file);
    assertEquals(tile, TileFiles.read(file));
    assertEquals(Optional.of(tile.metadata()), TileFiles.readMetadata(file));
    assertEquals(List.of("nngp", "ntk"), tile.metadata().kernelNames());
    try (Stream<Path> files = Files.list(file.getParent())) {
      assertEquals(List.of(file), files.toList());
    }
  }

  /**
   * A tile larger than the 8 MiB windows its columns are written and read in (2,160,000 values: 2
   * windows of float32, 3 of float64) round-trips to the last bit, each window at its place.
   */
  @ParameterizedTest
  @EnumSource(NpyDType.class)
  void roundTripsATileOfSeveralWindows(NpyDType dtype) throws IOException {
    TileKey key = new TileKey(0, 0, 1200, 1800);
    double[] nngp = new double[key.size()];
    for (int i = 0; i < nngp.length; i++) {
      nngp[i] = i * 0.25 - 7;
    }
    SortedMap<String, double[]> kernels = new TreeMap<>();
    kernels.put("nngp", nngp);
    Tile tile = new Tile(key, "model-abc", "inputs-def", dtype, kernels);
    assertEquals(tile, TileFiles.read(TileFiles.write(dir.resolve("tiles"), tile)));
  }

  /** The values of {@code tile}'s kernels as stored: dtype, little-endian; direct or heap buffers. */
  private static List<java.nio.ByteBuffer> stored(Tile tile, boolean direct) {
    int width = tile.dtype() == NpyDType.FLOAT64 ? 8 : 4;
    return tile.kernels().values().stream().map(v -> {
      java.nio.ByteBuffer b = (direct ? java.nio.ByteBuffer.allocateDirect(v.length * width)
          : java.nio.ByteBuffer.allocate(v.length * width)).order(java.nio.ByteOrder.LITTLE_ENDIAN);
      for (double x : v) {
        if (width == 8) {
          b.putDouble(x);
        } else {
          b.putFloat((float) x);
        }
      }
      return b.flip();
    }).toList();
  }

  @ParameterizedTest
  @EnumSource(NpyDType.class)
  void tilesWrittenFromStoredBytesReadBackAsTheSameFile(NpyDType dtype) throws IOException {
    Tile tile = tile(dtype, 0.1);
    Path reference = TileFiles.write(dir, tile);
    for (boolean direct : new boolean[] {true, false}) {
      Path file = dir.resolve("from-bytes-" + direct + ".arrow");
      try (var channel = java.nio.channels.FileChannel.open(file, java.nio.file.StandardOpenOption.CREATE_NEW,
          java.nio.file.StandardOpenOption.WRITE)) {
        TileFiles.write(channel, tile.metadata(), stored(tile, direct));
      }
      Tile back = TileFiles.read(file);
      assertEquals(TileFiles.read(reference), back);
      assertArrayEquals(Files.readAllBytes(reference), Files.readAllBytes(file));
    }
  }

  @ParameterizedTest
  @EnumSource(NpyDType.class)
  void layoutReadsRowsOfATileAndVerifiesItsChecksum(NpyDType dtype) throws IOException {
    Tile tile = tile(dtype, 0.25);
    Path file = TileFiles.write(dir, tile);
    try (var channel = java.nio.channels.FileChannel.open(file)) {
      TileFiles.Layout layout = TileFiles.layout(channel, file.toString());
      assertEquals(tile.metadata(), layout.metadata());
      layout.verify(channel);
      List<java.nio.ByteBuffer> expected = stored(tile, false);
      for (int k = 0; k < 2; k++) {
        // row 1, columns 1..3
        java.nio.ByteBuffer got = java.nio.ByteBuffer.allocate(3 * layout.width());
        layout.readValues(channel, k, 5, got);
        assertEquals(expected.get(k).slice(5 * layout.width(), 3 * layout.width()), got.flip());
      }
    }
    byte[] bytes = Files.readAllBytes(file);
    int at = (int) (layout(file).dataOffsets()[1] + 5L * layout(file).width());
    bytes[at] ^= 1;
    Files.write(file, bytes);
    try (var channel = java.nio.channels.FileChannel.open(file)) {
      TileFiles.Layout layout = TileFiles.layout(channel, file.toString());
      assertThrows(TileChecksumException.class, () -> layout.verify(channel));
    }
  }

  private static TileFiles.Layout layout(Path file) throws IOException {
    try (var channel = java.nio.channels.FileChannel.open(file)) {
      return TileFiles.layout(channel, file.toString());
    }
  }


  @Test
  void float32RoundsValues() throws IOException {
    Tile tile = tile(NpyDType.FLOAT32, 0.1);
    Tile back = TileFiles.read(TileFiles.write(dir, tile));
    double[] expected = tile.kernels().get("nngp").clone();
    for (int i = 0; i < expected.length; i++) {
      expected[i] = (float) expected[i];
    }
    assertArrayEquals(expected, back.kernels().get("nngp"));
  }

  @Test
  void overwritesAnOldTile() throws IOException {
    TileFiles.write(dir, tile(NpyDType.FLOAT64, 1));
    Tile newer = tile(NpyDType.FLOAT64, 2);
    Path file = TileFiles.write(dir, newer);
    assertEquals(newer, TileFiles.read(file));
    try (Stream<Path> files = Files.list(dir)) {
      assertEquals(List.of(file), files.toList());
    }
  }

  @Test
  void missingFileHasNoMetadata() throws IOException {
    assertEquals(Optional.empty(), TileFiles.readMetadata(dir.resolve("tile-r0-c0.arrow")));
  }

  @Test
  void truncatedFileIsAnError() throws IOException {
    Path file = TileFiles.write(dir, tile(NpyDType.FLOAT64, 1));
    byte[] bytes = Files.readAllBytes(file);
    for (int cut : new int[] {10, bytes.length / 2, bytes.length - 1}) {
      Files.write(file, Arrays.copyOf(bytes, cut));
      IOException e = assertThrows(IOException.class, () -> TileFiles.read(file));
      assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
      e = assertThrows(IOException.class, () -> TileFiles.readMetadata(file));
      assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
    }
  }

  /** Any one flipped byte among the values is caught by the checksum, not read as a number. */
  @ParameterizedTest
  @EnumSource(NpyDType.class)
  void aFlippedValueByteFailsTheChecksum(NpyDType dtype) throws IOException {
    Tile tile = tile(dtype, 0.928);
    Path file = TileFiles.write(dir, tile);
    byte[] bytes = Files.readAllBytes(file);
    // The ntk column's last value (-(n-1) * 0.928 + 1) as stored, located by its bytes.
    double last = tile.kernels().get("ntk")[tile.key().size() - 1];
    java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(8).order(java.nio.ByteOrder.LITTLE_ENDIAN);
    byte[] pattern = dtype == NpyDType.FLOAT64 ? b.putDouble(last).array()
        : Arrays.copyOf(b.putFloat((float) last).array(), 4);
    int at = indexOf(bytes, pattern);
    assertTrue(at > 0, "value bytes not found");
    bytes[at + pattern.length - 1] ^= 0x40;
    Files.write(file, bytes);
    TileChecksumException e = assertThrows(TileChecksumException.class, () -> TileFiles.read(file));
    assertTrue(e.getMessage().contains(file.toString()) && e.getMessage().contains("checksum"),
        e.getMessage());
  }

  private static int indexOf(byte[] bytes, byte[] pattern) {
    outer:
    for (int i = 0; i + pattern.length <= bytes.length; i++) {
      for (int j = 0; j < pattern.length; j++) {
        if (bytes[i + j] != pattern[j]) {
          continue outer;
        }
      }
      return i;
    }
    return -1;
  }

  @Test
  void validatesTiles() {
    TileKey key = new TileKey(0, 0, 2, 2);
    SortedMap<String, double[]> kernels = new TreeMap<>();
    kernels.put("ntk", new double[3]);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> new Tile(key, "m", "i", NpyDType.FLOAT64, kernels));
    assertTrue(e.getMessage().contains("'ntk' has 3 values"), e.getMessage());
    assertThrows(IllegalArgumentException.class,
        () -> new Tile(key, "m", "i", NpyDType.FLOAT64, new TreeMap<>()));
    kernels.clear();
    kernels.put("a,b", new double[4]);
    assertThrows(IllegalArgumentException.class,
        () -> new Tile(key, "m", "i", NpyDType.FLOAT64, kernels));
    assertThrows(IllegalArgumentException.class, () -> new TileKey(-1, 0, 2, 2));
    assertEquals("tile-r100-c0.arrow", new TileKey(100, 0, 1, 1).fileName());
  }

  /** A JVM without Arrow's flag is told which flag to pass, in one message, before any file is touched. */
  @Test
  void aJvmWithoutArrowsFlagIsToldWhichFlag() throws Exception {
    TileFiles.checkJvmFlags("this test"); // the tests run with it
    Path javaBin = Path.of(System.getProperty("java.home"), "bin", "java");
    Process p = new ProcessBuilder(javaBin.toString(), "-cp", System.getProperty("java.class.path"),
        WithoutFlags.class.getName()).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
    assertEquals(3, p.waitFor(), out);
    assertEquals("KernelIO.writeNpy reads and writes Arrow tile files, and Apache Arrow needs the JVM flag "
        + "--add-opens=java.base/java.nio=ALL-UNNAMED: add it to the java command (with Maven, to "
        + "surefire's argLine and exec's jvmArgs; see the README, \"Depending on ntk\")", out.strip());
  }

  /** Runs the check in a JVM started without the flag. */
  static final class WithoutFlags {
    public static void main(String[] args) {
      try {
        TileFiles.checkJvmFlags("KernelIO.writeNpy");
      } catch (IllegalStateException e) {
        System.out.println(e.getMessage());
        System.exit(3);
      }
    }
  }
}
