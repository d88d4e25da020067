package dev.ntk.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.OptionalLong;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class NpyTest {
  @TempDir Path dir;

  private static NpyArray ramp(NpyDType dtype, long... shape) {
    double[] data = new double[(int) Arrays.stream(shape).reduce(1, (a, b) -> a * b)];
    for (int i = 0; i < data.length; i++) {
      data[i] = i * 0.5 - 3; // exact in float32 too
    }
    return new NpyArray(shape, dtype, data);
  }

  @ParameterizedTest
  @EnumSource(NpyDType.class)
  void roundTripsShapes(NpyDType dtype) throws IOException {
    for (long[] shape : List.of(new long[] {5}, new long[] {4, 3}, new long[] {2, 3, 4})) {
      NpyArray a = ramp(dtype, shape);
      Path file = dir.resolve("a" + shape.length + ".npy");
      Npy.write(file, a);
      assertEquals(a, Npy.read(file));
      NpyHeader h = Npy.readHeader(file);
      assertEquals(0, h.dataOffset() % 64);
      assertEquals(new NpyHeader(shape, dtype, h.dataOffset()), h);
      assertEquals(h.dataOffset() + a.data().length * dtype.bytes(), Files.size(file));
    }
  }

  @Test
  void writesNumpyStyleHeader() throws IOException {
    Path file = dir.resolve("x.npy");
    Npy.write(file, ramp(NpyDType.FLOAT64, 4, 3));
    byte[] bytes = Files.readAllBytes(file);
    assertArrayEquals(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0},
        Arrays.copyOf(bytes, 8));
    String header = new String(bytes, 10, 118, StandardCharsets.ISO_8859_1);
    assertTrue(header.startsWith("{'descr': '<f8', 'fortran_order': False, 'shape': (4, 3), }"),
        header);
    assertEquals('\n', header.charAt(header.length() - 1));
  }

  @Test
  void float32RoundsValues() throws IOException {
    Path file = dir.resolve("f.npy");
    Npy.write(file, new NpyArray(new long[] {2}, NpyDType.FLOAT32, new double[] {0.1, 1e300}));
    assertArrayEquals(new double[] {(float) 0.1, Double.POSITIVE_INFINITY},
        Npy.read(file).data());
  }

  @Test
  void readRowsReturnsTheSlice() throws IOException {
    NpyArray a = ramp(NpyDType.FLOAT64, 10, 3);
    Path file = dir.resolve("x.npy");
    Npy.write(file, a);
    NpyArray rows = Npy.readRows(file, 4, 3);
    assertArrayEquals(new long[] {3, 3}, rows.shape());
    assertArrayEquals(Arrays.copyOfRange(a.data(), 12, 21), rows.data());
    assertEquals(0, Npy.readRows(file, 10, 0).data().length);

    NpyArray b = ramp(NpyDType.FLOAT32, 5, 2, 3);
    Npy.write(file, b);
    NpyArray middle = Npy.readRows(file, 1, 2);
    assertArrayEquals(new long[] {2, 2, 3}, middle.shape());
    assertArrayEquals(Arrays.copyOfRange(b.data(), 6, 18), middle.data());
  }

  @Test
  void readsHandBuiltVersion1And2And3() throws IOException {
    double[] values = {1, 2, 3, 4, 5};
    String dict = "{ 'shape' : (5,),'fortran_order':False , \"descr\": '<f8' }";
    for (int major = 1; major <= 3; major++) {
      Path file = dir.resolve("v" + major + ".npy");
      Files.write(file, npy(major, dict, doubles(values)));
      NpyArray a = Npy.read(file);
      assertEquals(new NpyArray(new long[] {5}, NpyDType.FLOAT64, values), a, "version " + major);
      assertEquals("(5,)", a.shapeString());
    }
    Path scalar = dir.resolve("scalar.npy");
    Files.write(scalar, npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': ()}",
        doubles(new double[] {7})));
    assertEquals(new NpyArray(new long[0], NpyDType.FLOAT64, new double[] {7}), Npy.read(scalar));
    Path python2 = dir.resolve("py2.npy");
    Files.write(python2, npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2L, 1L), }",
        doubles(new double[] {1, 2})));
    assertArrayEquals(new long[] {2, 1}, Npy.read(python2).shape());
  }

  @Test
  void rejectsBadMagic() throws IOException {
    Path file = dir.resolve("bad.npy");
    Files.writeString(file, "hello, this is a text file");
    assertError(file, "not a .npy file");
    Files.write(file, new byte[0]);
    assertError(file, "not a .npy file");
  }

  @Test
  void rejectsUnsupportedDtypes() throws IOException {
    for (String descr : List.of("<i8", ">f8", "|u1", "|O")) {
      Path file = dir.resolve("d.npy");
      Files.write(file, npy(1, "{'descr': '" + descr
          + "', 'fortran_order': False, 'shape': (1,), }", new byte[8]));
      String message = assertError(file, "unsupported dtype '" + descr + "'");
      assertTrue(message.contains("little-endian float32 '<f4' and float64 '<f8'"), message);
    }
    Path file = dir.resolve("structured.npy");
    Files.write(file, npy(1, "{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (1,), }",
        new byte[8]));
    assertError(file, "unsupported dtype");
  }

  @Test
  void rejectsFortranOrder() throws IOException {
    Path file = dir.resolve("f.npy");
    Files.write(file, npy(1, "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2), }",
        new byte[32]));
    assertError(file, "Fortran order not supported; save with C order");
  }

  @Test
  void rejectsTruncatedAndTrailingData() throws IOException {
    Path file = dir.resolve("x1.npy");
    String dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (4, 3), }";
    Files.write(file, npy(1, dict, new byte[40]));
    assertError(file, "truncated: header says shape (4, 3) of <f8 (96 bytes) but the file has 40"
        + " data bytes");
    Files.write(file, npy(1, dict, new byte[104]));
    assertError(file, "trailing bytes");
    Files.write(file, Arrays.copyOf(npy(1, dict, new byte[0]), 30));
    assertError(file, "truncated header");
  }

  @Test
  void rejectsMalformedHeaders() throws IOException {
    Path file = dir.resolve("m.npy");
    Files.write(file, npy(1, "{'descr': '<f8', 'shape': (1,), }", new byte[8]));
    assertError(file, "missing key 'fortran_order'");
    Files.write(file, npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1, }",
        new byte[8]));
    assertError(file, "malformed .npy header");
    Files.write(file, npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'x': 1}",
        new byte[8]));
    assertError(file, "malformed .npy header");
    byte[] v4 = npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", new byte[8]);
    v4[6] = 4;
    Files.write(file, v4);
    assertError(file, "unsupported .npy format version 4.0");
  }

  @Test
  void readRowsChecksTheRange() throws IOException {
    Path file = dir.resolve("r.npy");
    Npy.write(file, ramp(NpyDType.FLOAT64, 12, 3));
    for (long[] range : new long[][] {{10, 5}, {-1, 2}, {13, 0}, {0, -1}}) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> Npy.readRows(file, range[0], (int) range[1]));
      assertTrue(e.getMessage().contains("r.npy") && e.getMessage().contains("out of range"),
          e.getMessage());
    }
  }

  @Test
  void writeIsAtomic() throws IOException {
    Path file = dir.resolve("sub/out.npy");
    Npy.write(file, ramp(NpyDType.FLOAT64, 3));
    Npy.write(file, ramp(NpyDType.FLOAT32, 2, 2));
    try (Stream<Path> files = Files.list(file.getParent())) {
      assertEquals(List.of(file), files.toList());
    }
    assertEquals(ramp(NpyDType.FLOAT32, 2, 2), Npy.read(file));
  }

  /**
   * A float32 file is read as floats, which float32 work takes as they are; its doubles are made
   * when first asked for, and are the values from then on (a change to them is what toFloats
   * rounds). Both forms give the same size, values and first non-finite index.
   */
  @Test
  void float32FilesAreHeldAsFloatsUntilDoublesAreAskedFor() throws IOException {
    double[] values = {0.1, -2.5, 3e38, Double.POSITIVE_INFINITY, 7};
    Path file = dir.resolve("f.npy");
    Npy.write(file, new NpyArray(new long[] {5}, NpyDType.FLOAT32, values));
    NpyArray a = Npy.read(file);
    float[] floats = a.toFloats();
    assertSame(floats, a.toFloats(), "the floats as read, shared");
    assertArrayEquals(new float[] {0.1f, -2.5f, 3e38f, Float.POSITIVE_INFINITY, 7f}, floats);
    assertEquals(5, a.size());
    assertEquals((double) 0.1f, a.value(0));
    assertEquals(OptionalLong.of(3), a.firstNonFinite());
    double[] data = a.data();
    assertEquals((double) 0.1f, data[0]);
    assertSame(data, a.data());
    data[3] = 1.5;
    float[] rounded = a.toFloats();
    assertNotSame(floats, rounded);
    assertEquals(1.5f, rounded[3]);
    assertEquals(OptionalLong.empty(), a.firstNonFinite());
    assertEquals(1.5, a.value(3));
    // Rows of a float32 file are floats too, equal to the same rows of the whole.
    NpyArray rows = Npy.readRows(file, 1, 3);
    assertArrayEquals(new float[] {-2.5f, 3e38f, Float.POSITIVE_INFINITY}, rows.toFloats());
    assertEquals(new NpyArray(new long[] {3}, NpyDType.FLOAT32, new double[] {-2.5, (double) 3e38f,
        Double.POSITIVE_INFINITY}), rows);
    // float64 arrays round into a new array each time.
    NpyArray d = new NpyArray(new long[] {2}, NpyDType.FLOAT64, new double[] {0.1, 2});
    assertArrayEquals(new float[] {0.1f, 2f}, d.toFloats());
    assertNotSame(d.toFloats(), d.toFloats());
  }

  @Test
  void findsFirstNonFinite() {
    assertEquals(OptionalLong.empty(), Npy.firstNonFinite(new double[] {1, 2}));
    assertEquals(OptionalLong.of(1), Npy.firstNonFinite(new double[] {1, Double.NaN, 1 / 0.0}));
    assertEquals(OptionalLong.of(0), Npy.firstNonFinite(new double[] {-1 / 0.0}));
  }

  @Test
  void arrayHelpers() {
    NpyArray a = NpyArray.of(new double[][] {{1, 2, 3}, {4, 5, 6}}, NpyDType.FLOAT64);
    assertArrayEquals(new long[] {2, 3}, a.shape());
    assertEquals(2, a.rows());
    assertEquals(3, a.rowSize());
    assertEquals(2, a.ndim());
    assertEquals("(2, 3)", a.shapeString());
    assertArrayEquals(new double[] {4, 5, 6}, a.toMatrix()[1]);
    assertEquals(a, NpyArray.of(a.toMatrix(), NpyDType.FLOAT64));
    assertEquals(a.hashCode(), NpyArray.of(a.toMatrix(), NpyDType.FLOAT64).hashCode());
    assertTrue(a.toString().contains("(2, 3)"), a.toString());
    assertThrows(IllegalArgumentException.class,
        () -> new NpyArray(new long[] {2, 2}, NpyDType.FLOAT64, new double[3]));
    assertThrows(IllegalArgumentException.class,
        () -> NpyArray.of(new double[][] {{1}, {1, 2}}, NpyDType.FLOAT64));
    assertEquals(NpyDType.FLOAT32, NpyDType.fromName("float32"));
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> NpyDType.fromName("int8"));
    assertTrue(e.getMessage().contains("float32 or float64"), e.getMessage());
  }

  private static String assertError(Path file, String phrase) {
    NpyFormatException e = assertThrows(NpyFormatException.class, () -> Npy.read(file));
    assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
    assertTrue(e.getMessage().contains(phrase), e.getMessage());
    return e.getMessage();
  }

  private static byte[] doubles(double[] values) {
    ByteBuffer b = ByteBuffer.allocate(values.length * 8).order(ByteOrder.LITTLE_ENDIAN);
    b.asDoubleBuffer().put(values);
    return b.array();
  }

  /** A .npy file built by hand: magic, version, header length, padded dict, data. */
  private static byte[] npy(int major, String dict, byte[] data) {
    int lengthBytes = major == 1 ? 2 : 4;
    StringBuilder header = new StringBuilder(dict);
    while ((8 + lengthBytes + header.length() + 1) % 64 != 0) {
      header.append(' ');
    }
    header.append('\n');
    ByteBuffer length = ByteBuffer.allocate(lengthBytes).order(ByteOrder.LITTLE_ENDIAN);
    if (major == 1) {
      length.putShort((short) header.length());
    } else {
      length.putInt(header.length());
    }
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.writeBytes(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', (byte) major, 0});
    out.writeBytes(length.array());
    out.writeBytes(header.toString().getBytes(StandardCharsets.UTF_8));
    out.writeBytes(data);
    return out.toByteArray();
  }
}
