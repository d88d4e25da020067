package dev.ntk.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.SeekableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;

/**
 * Reads and writes numpy {@code .npy} files of little-endian float32 or float64 values in C
 * order (format versions 1.0, 2.0 and 3.0 are read; 1.0 is written).
 */
public final class Npy {
  private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
  private static final int MAX_HEADER = 1 << 20;
  private static final int CHUNK = 1 << 23;

  private Npy() {}

  /** Reads and validates the header, including that the data is exactly as long as it says. */
  public static NpyHeader readHeader(Path file) throws IOException {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      return readHeader(file.toString(), ch);
    }
  }

  /**
   * {@link #readHeader(Path)} from {@code channel} (a local file or an object of a Beam file
   * system), which the caller closes.
   *
   * @param file the file's name or URI, for error messages
   */
  public static NpyHeader readHeader(SeekableByteChannel channel, String file) throws IOException {
    return readHeader(file, channel);
  }

  /** Reads the whole array. */
  public static NpyArray read(Path file) throws IOException {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      return read(ch, file.toString());
    }
  }

  /** {@link #read(Path)} from {@code channel}, which the caller closes. */
  public static NpyArray read(SeekableByteChannel ch, String file) throws IOException {
    NpyHeader h = readHeader(file, ch);
    return readData(file, ch, h.dataOffset(), h.dtype(), h.shape(), toIntCount(file, h.count()));
  }

  /**
   * Reads rows {@code [firstRow, firstRow + rowCount)} of the leading axis, seeking straight to
   * them; the result has shape {@code (rowCount, shape[1], ...)}.
   *
   * @throws IllegalArgumentException if the range is not inside the leading axis
   */
  public static NpyArray readRows(Path file, long firstRow, int rowCount) throws IOException {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      return readRows(ch, file.toString(), firstRow, rowCount);
    }
  }

  /** {@link #readRows(Path, long, int)} from {@code channel}, which the caller closes. */
  public static NpyArray readRows(SeekableByteChannel ch, String file, long firstRow, int rowCount)
      throws IOException {
    NpyHeader h = readHeader(file, ch);
    long[] shape = h.shape();
    if (shape.length == 0) {
      throw new IllegalArgumentException(file + ": cannot read rows of a 0-d array");
    }
    if (firstRow < 0 || rowCount < 0 || firstRow > shape[0] - rowCount) {
      throw new IllegalArgumentException(file + ": rows [" + firstRow + ", "
          + (firstRow + rowCount) + ") out of range for shape " + shapeString(shape)
          + " (the leading axis has " + shape[0] + " rows)");
    }
    long rowSize = product(shape, 1);
    long[] outShape = shape.clone();
    outShape[0] = rowCount;
    long offset = h.dataOffset() + firstRow * rowSize * h.dtype().bytes();
    return readData(file, ch, offset, h.dtype(), outShape, toIntCount(file, rowCount * rowSize));
  }

  /**
   * Writes {@code array} as a version 1.0 {@code .npy} file with its dtype (float32 values are
   * rounded from the doubles), atomically: through a temporary {@code .ntk-tmp-*.tmp} file in the same
   * directory that is renamed over {@code file}. Creates missing parent directories.
   */
  public static void write(Path file, NpyArray array) throws IOException {
    AtomicFiles.write(file, tmp -> write(FileChannel.open(tmp, StandardOpenOption.CREATE_NEW,
        StandardOpenOption.WRITE), file.toString(), array));
  }

  /**
   * Writes {@code array} as a {@code .npy} file (header and data) to {@code channel}, which it
   * closes; {@code name} names it in errors. The one writer of whole arrays ({@link #write}, the
   * entries of {@link Npz}).
   */
  static void write(WritableByteChannel channel, String name, NpyArray array) throws IOException {
    try (NpyWriter w = NpyWriter.open(channel, name, array.shape(), array.dtype())) {
      w.write(array.data());
    }
  }

  /** The index of the first NaN or infinite value, if any. */
  public static OptionalLong firstNonFinite(double[] data) {
    return firstNonFinite(java.nio.DoubleBuffer.wrap(data));
  }

  /** The index of the first NaN or infinite value of a {@code FloatBuffer} or {@code DoubleBuffer} (0 to its limit), if any. */
  public static OptionalLong firstNonFinite(java.nio.Buffer data) {
    int n = data.limit();
    if (data instanceof java.nio.FloatBuffer f) {
      for (int i = 0; i < n; i++) {
        if (!Float.isFinite(f.get(i))) {
          return OptionalLong.of(i);
        }
      }
      return OptionalLong.empty();
    }
    java.nio.DoubleBuffer d = (java.nio.DoubleBuffer) data;
    for (int i = 0; i < n; i++) {
      if (!Double.isFinite(d.get(i))) {
        return OptionalLong.of(i);
      }
    }
    return OptionalLong.empty();
  }

  /** A shape as numpy prints it: {@code ()}, {@code (5,)}, {@code (4, 3)}. */
  public static String shapeString(long[] shape) {
    StringBuilder s = new StringBuilder("(");
    for (int i = 0; i < shape.length; i++) {
      s.append(i > 0 ? ", " : "").append(shape[i]);
    }
    return s.append(shape.length == 1 ? ",)" : ")").toString();
  }

  /** The product of {@code shape[from..]}, saturating at {@code Long.MAX_VALUE}. */
  static long product(long[] shape, int from) {
    long p = 1;
    for (int i = from; i < shape.length; i++) {
      p = shape[i] != 0 && p > Long.MAX_VALUE / shape[i] ? Long.MAX_VALUE : p * shape[i];
    }
    return p;
  }

  private static int toIntCount(String file, long count) throws NpyFormatException {
    if (count > Integer.MAX_VALUE - 8) {
      throw new NpyFormatException(file, count + " values do not fit in one Java array; "
          + "read fewer rows at a time with Npy.readRows");
    }
    return (int) count;
  }

  private static NpyHeader readHeader(String file, SeekableByteChannel ch) throws IOException {
    long size = ch.size();
    ByteBuffer prefix = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN);
    int n = readFully(ch, prefix, 0);
    if (n < MAGIC.length || !prefix.slice(0, MAGIC.length).equals(ByteBuffer.wrap(MAGIC))) {
      throw new NpyFormatException(file, "not a .npy file (it does not start with \\x93NUMPY)");
    }
    if (n < 8) {
      throw new NpyFormatException(file, "truncated header: the file ends after " + n + " bytes");
    }
    int major = prefix.get(6) & 0xff;
    int minor = prefix.get(7) & 0xff;
    if (major < 1 || major > 3 || minor != 0) {
      throw new NpyFormatException(file, "unsupported .npy format version " + major + "." + minor
          + " (supported: 1.0, 2.0, 3.0)");
    }
    int lengthEnd = major == 1 ? 10 : 12;
    if (n < lengthEnd) {
      throw new NpyFormatException(file, "truncated header: the file ends after " + n + " bytes");
    }
    long headerLength = major == 1 ? prefix.getShort(8) & 0xffff : prefix.getInt(8) & 0xffffffffL;
    long dataOffset = lengthEnd + headerLength;
    if (headerLength > MAX_HEADER) {
      throw new NpyFormatException(file, "header length " + headerLength + " is implausibly large");
    }
    if (size < dataOffset) {
      throw new NpyFormatException(file, "truncated header: its length field says it ends at"
          + " byte " + dataOffset + " but the file has only " + size + " bytes");
    }
    ByteBuffer raw = ByteBuffer.allocate((int) headerLength);
    readFully(ch, raw, lengthEnd);
    String text = new String(raw.array(),
        major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);
    NpyHeader h = new HeaderParser(file, text).parse(dataOffset);
    long expected = h.count() > Long.MAX_VALUE / h.dtype().bytes()
        ? Long.MAX_VALUE : h.count() * h.dtype().bytes();
    long actual = size - dataOffset;
    if (actual != expected) {
      throw new NpyFormatException(file, (actual < expected ? "truncated" : "trailing bytes")
          + ": header says shape " + shapeString(h.shape()) + " of " + h.dtype().descr() + " ("
          + expected + " bytes) but the file has " + actual + " data bytes");
    }
    return h;
  }

  /** Reads until {@code buf} is full or the file ends; returns the number of bytes read. */
  private static int readFully(SeekableByteChannel ch, ByteBuffer buf, long position)
      throws IOException {
    int start = buf.position();
    ch.position(position);
    while (buf.hasRemaining()) {
      int r = ch.read(buf);
      if (r < 0) {
        break;
      }
    }
    return buf.position() - start;
  }

  /**
   * The {@code count} values at {@code position} as an array of {@code shape}: float32 values as
   * floats ({@link NpyArray#ofFloats}), float64 as doubles, each copied in bulk from the file's
   * little-endian bytes.
   */
  private static NpyArray readData(String file, SeekableByteChannel ch, long position, NpyDType dtype,
      long[] shape, int count) throws IOException {
    double[] doubles = dtype == NpyDType.FLOAT64 ? new double[count] : null;
    float[] floats = dtype == NpyDType.FLOAT64 ? null : new float[count];
    int perChunk = CHUNK / dtype.bytes();
    ByteBuffer buf = ByteBuffer.allocateDirect((int) Math.min(CHUNK, (long) count
        * dtype.bytes())).order(ByteOrder.LITTLE_ENDIAN);
    for (int off = 0; off < count; off += perChunk) {
      int k = Math.min(perChunk, count - off);
      buf.clear().limit(k * dtype.bytes());
      if (readFully(ch, buf, position) < buf.limit()) {
        throw new NpyFormatException(file, "truncated: the file ended while reading its data");
      }
      position += buf.limit();
      buf.flip();
      if (doubles != null) {
        buf.asDoubleBuffer().get(doubles, off, k);
      } else {
        buf.asFloatBuffer().get(floats, off, k);
      }
    }
    return doubles != null ? new NpyArray(shape, dtype, doubles) : NpyArray.ofFloats(shape, floats);
  }

  /** A version 1.0 header (2.0 if it does not fit) padded so that the data starts at 64*k. */
  static byte[] header(long[] shape, NpyDType dtype) {
    String dict = "{'descr': '" + dtype.descr() + "', 'fortran_order': False, 'shape': "
        + shapeString(shape) + ", }";
    int major = dict.length() + 1 + 64 + 10 <= 0xffff ? 1 : 2;
    int lengthEnd = major == 1 ? 10 : 12;
    int total = (lengthEnd + dict.length() + 1 + 63) / 64 * 64;
    ByteBuffer b = ByteBuffer.allocate(total).order(ByteOrder.LITTLE_ENDIAN);
    b.put(MAGIC).put((byte) major).put((byte) 0);
    if (major == 1) {
      b.putShort((short) (total - lengthEnd));
    } else {
      b.putInt(total - lengthEnd);
    }
    b.put(dict.getBytes(StandardCharsets.ISO_8859_1));
    while (b.position() < total - 1) {
      b.put((byte) ' ');
    }
    return b.put((byte) '\n').array();
  }

  /** A parser for the Python dict literal of a {@code .npy} header. */
  private static final class HeaderParser {
    private final String file;
    private final String text;
    private int pos;

    HeaderParser(String file, String text) {
      this.file = file;
      this.text = text;
    }

    NpyHeader parse(long dataOffset) throws NpyFormatException {
      Map<String, Object> dict = new HashMap<>();
      expect('{');
      while (peek() != '}') {
        String key = string();
        expect(':');
        Object value = value();
        if (dict.put(key, value) != null) {
          throw error("duplicate key '" + key + "'");
        }
        if (peek() != ',') {
          break;
        }
        pos++;
      }
      expect('}');
      if (!text.substring(pos).isBlank()) {
        throw error("unexpected text after the closing '}'");
      }
      for (String key : dict.keySet()) {
        if (!List.of("descr", "fortran_order", "shape").contains(key)) {
          throw error("unexpected key '" + key + "' (expected descr, fortran_order and shape)");
        }
      }
      Object descr = require(dict, "descr");
      Object fortran = require(dict, "fortran_order");
      Object shape = require(dict, "shape");
      if (!(descr instanceof String d)) {
        throw error("descr must be a string");
      }
      NpyDType dtype = NpyDType.fromDescr(d).orElseThrow(() -> new NpyFormatException(file,
          "unsupported dtype '" + d + "'; only little-endian float32 '<f4' and float64 '<f8'"
              + " are supported (convert with arr.astype('<f8'))"));
      if (!(fortran instanceof Boolean f)) {
        throw error("fortran_order must be True or False");
      }
      if (f) {
        throw new NpyFormatException(file, "Fortran order not supported; save with C order"
            + " (np.save(path, np.ascontiguousarray(arr)))");
      }
      if (!(shape instanceof long[] s)) {
        throw error("shape must be a tuple of integers");
      }
      return new NpyHeader(s, dtype, dataOffset);
    }

    private Object require(Map<String, Object> dict, String key) throws NpyFormatException {
      Object value = dict.get(key);
      if (value == null) {
        throw error("missing key '" + key + "'");
      }
      return value;
    }

    private Object value() throws NpyFormatException {
      char c = peek();
      if (c == '\'' || c == '"') {
        return string();
      } else if (c == '(') {
        return tuple();
      } else if (text.startsWith("True", pos)) {
        pos += 4;
        return Boolean.TRUE;
      } else if (text.startsWith("False", pos)) {
        pos += 5;
        return Boolean.FALSE;
      } else if (c == '[') { // a structured dtype: kept as text for the error message
        int end = text.indexOf(']', pos);
        String list = end < 0 ? text.substring(pos) : text.substring(pos, end + 1);
        pos = end < 0 ? text.length() : end + 1;
        return list;
      }
      throw error("unexpected " + describe(c));
    }

    private String string() throws NpyFormatException {
      char quote = peek();
      if (quote != '\'' && quote != '"') {
        throw error("expected a quoted string but found " + describe(quote));
      }
      int end = text.indexOf(quote, pos + 1);
      if (end < 0) {
        throw error("unterminated string");
      }
      String s = text.substring(pos + 1, end);
      pos = end + 1;
      return s;
    }

    private long[] tuple() throws NpyFormatException {
      expect('(');
      List<Long> dims = new ArrayList<>();
      while (peek() != ')') {
        int start = pos;
        while (pos < text.length() && Character.isDigit(text.charAt(pos))) {
          pos++;
        }
        if (start == pos) {
          throw error("expected a non-negative integer in the shape but found "
              + describe(peek()));
        }
        try {
          dims.add(Long.parseLong(text.substring(start, pos)));
        } catch (NumberFormatException e) {
          throw error("shape dimension " + text.substring(start, pos) + " is too large");
        }
        if (pos < text.length() && text.charAt(pos) == 'L') {
          pos++; // Python 2 long literal
        }
        if (peek() != ',') {
          break;
        }
        pos++;
      }
      expect(')');
      return dims.stream().mapToLong(Long::longValue).toArray();
    }

    private void expect(char c) throws NpyFormatException {
      if (peek() != c) {
        throw error("expected '" + c + "' but found " + describe(peek()));
      }
      pos++;
    }

    /** Skips whitespace and returns the next character, or 0 at the end. */
    private char peek() {
      while (pos < text.length() && Character.isWhitespace(text.charAt(pos))) {
        pos++;
      }
      return pos < text.length() ? text.charAt(pos) : 0;
    }

    private static String describe(char c) {
      return c == 0 ? "the end of the header" : "'" + c + "'";
    }

    private NpyFormatException error(String problem) {
      return new NpyFormatException(file, "malformed .npy header: " + problem + " at character "
          + pos + " of " + text.strip());
    }
  }
}
