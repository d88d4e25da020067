package dev.ntk.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.SeekableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.zip.CRC32C;
import org.apache.arrow.memory.ArrowBuf;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.ReferenceManager;
import org.apache.arrow.memory.util.MemoryUtil;
import org.apache.arrow.vector.ipc.message.ArrowFieldNode;
import org.apache.arrow.memory.RootAllocator;
import org.apache.arrow.vector.BitVectorHelper;
import org.apache.arrow.vector.FieldVector;
import org.apache.arrow.vector.Float4Vector;
import org.apache.arrow.vector.Float8Vector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.ipc.ArrowFileReader;
import org.apache.arrow.vector.ipc.ArrowFileWriter;
import org.apache.arrow.vector.ipc.message.ArrowBlock;
import org.apache.arrow.vector.types.FloatingPointPrecision;
import org.apache.arrow.vector.types.pojo.ArrowType;
import org.apache.arrow.vector.types.pojo.Field;
import org.apache.arrow.vector.types.pojo.FieldType;
import org.apache.arrow.vector.types.pojo.Schema;

/**
 * Writes and reads {@link Tile}s as Arrow IPC files, one record batch each, in the format that
 * the {@link dev.ntk.io package documentation} describes.
 */
public final class TileFiles {
  /** The value of {@code ntk.format_version} this class writes and reads. */
  public static final String FORMAT_VERSION = "2";

  private static final String VERSION = "ntk.format_version";
  private static final String MODEL_HASH = "ntk.model_hash";
  private static final String INPUTS_HASH = "ntk.inputs_hash";
  private static final String ROW_OFFSET = "ntk.row_offset";
  private static final String COL_OFFSET = "ntk.col_offset";
  private static final String ROWS = "ntk.rows";
  private static final String COLS = "ntk.cols";
  private static final String DTYPE = "ntk.dtype";
  private static final String KERNELS = "ntk.kernels";
  private static final String CHECKSUM = "ntk.checksum";
  private static final String CRC32C = "crc32c:";
  private static final int CHUNK = 1 << 23;

  private TileFiles() {}

  /** The JVM flag without which Apache Arrow cannot start (its memory code reads {@code Buffer.address}). */
  public static final String ARROW_FLAG = "--add-opens=java.base/java.nio=ALL-UNNAMED";

  /**
   * Fails with one message naming {@link #ARROW_FLAG} if this JVM was started without it, so that a
   * pipeline that reads or writes tile files fails when it is built, not inside a worker with
   * Arrow's {@code ExceptionInInitializerError}.
   *
   * @param user the transform that needs it, for the message
   * @throws IllegalStateException if {@code java.nio} is not open to Arrow
   */
  public static void checkJvmFlags(String user) {
    if (!java.nio.Buffer.class.getModule().isOpen("java.nio", ArrowBuf.class.getModule())) {
      throw new IllegalStateException(user + " reads and writes Arrow tile files, and Apache Arrow needs "
          + "the JVM flag " + ARROW_FLAG + ": add it to the java command (with Maven, to surefire's "
          + "argLine and exec's jvmArgs; see the README, \"Depending on ntk\")");
    }
  }

  /**
   * Writes {@code tile} to {@code dir/<key.fileName()>}, creating {@code dir} if needed, through a
   * temporary {@code .ntk-tmp-<fileName>.<random>.tmp} file that is atomically renamed over any old tile.
   *
   * @return the tile file
   */
  public static Path write(Path dir, Tile tile) throws IOException {
    Path target = dir.resolve(tile.key().fileName());
    AtomicFiles.write(target, tmp -> writeArrow(tmp, tile));
    return target;
  }

  /**
   * Reads a tile file, checking its metadata against its columns and its values against the
   * checksum in its metadata.
   *
   * @throws TileChecksumException if the values are not the ones written
   */
  public static Tile read(Path file) throws IOException {
    try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
      return read(channel, file.toString());
    }
  }

  /**
   * Reads a tile from {@code channel} (any seekable channel: a local file, or an object of a Beam
   * file system), as {@link #read(Path)} does; the caller closes the channel.
   *
   * @param name the file's name or URI, for error messages
   */
  public static Tile read(SeekableByteChannel channel, String name) throws IOException {
    try (BufferAllocator allocator = new RootAllocator();
        ArrowFileReader reader = new ArrowFileReader(new Unclosed(channel), allocator)) {
      TileMetadata meta = metadata(name, reader);
      VectorSchemaRoot root = reader.getVectorSchemaRoot();
      ArrowBlock block = arrow(name, reader::getRecordBlocks).get(0);
      arrow(name, () -> reader.loadRecordBatch(block));
      int n = meta.key().size();
      if (root.getRowCount() != n) {
        throw new IOException(name + ": the record batch has " + root.getRowCount()
            + " rows but a " + meta.key().rows() + "x" + meta.key().cols() + " tile needs " + n);
      }
      SortedMap<String, double[]> kernels = new TreeMap<>();
      for (String kernel : meta.kernelNames()) {
        FieldVector vector = root.getVector(kernel);
        if (vector.getNullCount() != 0) {
          throw new IOException(name + ": column '" + kernel + "' has " + vector.getNullCount()
              + " null values");
        }
        kernels.put(kernel, values(vector, n));
      }
      String stored = get(name, reader.getVectorSchemaRoot().getSchema().getCustomMetadata(), CHECKSUM);
      String computed = checksum(root.getFieldVectors(), n);
      if (!stored.equals(computed)) {
        throw new TileChecksumException(name + ": the values fail their checksum (stored "
            + stored + ", computed " + computed + "): the file was changed or damaged on disk");
      }
      return new Tile(meta.key(), meta.modelHash(), meta.inputsHash(), meta.dtype(), kernels);
    }
  }

  /**
   * Where a tile file's values lie, found from its metadata alone (schema, footer and the record
   * batch's header; no value is read): each kernel's {@code rows * cols} values, row-major in the
   * tile's dtype and little-endian, start at {@code dataOffsets[k]} of the file. Readers that need a
   * few rows of a large tile read them from there ({@link #readValues}) instead of the whole tile;
   * {@link #verify} checks the values against the stored checksum.
   */
  public record Layout(String name, TileMetadata metadata, long[] dataOffsets, String checksum) {
    /** Bytes per value: 4 or 8. */
    public int width() {
      return metadata.dtype() == NpyDType.FLOAT64 ? 8 : 4;
    }

    /**
     * Reads {@code dst.remaining()} bytes of kernel {@code kernel} (its index in {@code
     * metadata().kernelNames()}) from value {@code firstValue} on, into {@code dst}.
     */
    public void readValues(SeekableByteChannel channel, int kernel, long firstValue, ByteBuffer dst)
        throws IOException {
      if (firstValue < 0 || firstValue * width() + dst.remaining() > (long) metadata.key().size() * width()) {
        throw new IndexOutOfBoundsException(name + ": values from " + firstValue + ", " + dst.remaining()
            + " bytes, of a tile of " + metadata.key().size());
      }
      readBytes(channel, kernel, firstValue * width(), dst);
    }

    /**
     * Reads every value once and checks them against the stored checksum.
     *
     * @throws TileChecksumException if the values are not the ones written
     */
    public void verify(SeekableByteChannel channel) throws IOException {
      long crc = 0;
      for (int k = 0; k < dataOffsets.length; k++) {
        long bytes = columnBytes();
        crc = Crc32c.combine(crc, crc(channel, k, 0, bytes), bytes);
      }
      check(crc);
    }

    /** The bytes of one kernel's values. */
    public long columnBytes() {
      return (long) metadata.key().size() * width();
    }

    /**
     * The CRC-32C of bytes {@code [from, from + length)} of kernel {@code kernel}'s values: parts
     * of the checksum that {@link Crc32c#combine} puts together, for threads that share the work.
     */
    public long crc(SeekableByteChannel channel, int kernel, long from, long length) throws IOException {
      CRC32C crc = new CRC32C();
      ByteBuffer buffer = ByteBuffer.allocateDirect((int) Math.min(CHUNK, Math.max(1, length)));
      for (long off = 0; off < length; off += buffer.capacity()) {
        buffer.clear().limit((int) Math.min(buffer.capacity(), length - off));
        readBytes(channel, kernel, from + off, buffer);
        buffer.flip();
        crc.update(buffer);
      }
      return crc.getValue();
    }

    /**
     * Checks the CRC-32C of all values (every kernel's, in order) against the stored checksum.
     *
     * @throws TileChecksumException if they differ
     */
    public void check(long crc) throws TileChecksumException {
      String computed = CRC32C + String.format("%08x", crc);
      if (!checksum.equals(computed)) {
        throw new TileChecksumException(name + ": the values fail their checksum (stored "
            + checksum + ", computed " + computed + "): the file was changed or damaged on disk");
      }
    }

    private void readBytes(SeekableByteChannel channel, int kernel, long fromByte, ByteBuffer dst) throws IOException {
      long at = dataOffsets[kernel] + fromByte;
      while (dst.hasRemaining()) {
        channel.position(at);
        int n = channel.read(dst);
        if (n < 0) {
          throw new IOException(name + ": the file ends inside its values (truncated?)");
        }
        at += n;
      }
    }
  }

  /**
   * The {@link Layout} of a tile file, reading only its metadata: the schema (checked as {@link
   * #read} checks it) and the header of its record batch.
   *
   * @param name the file's name or URI, for error messages
   */
  public static Layout layout(SeekableByteChannel channel, String name) throws IOException {
    try (BufferAllocator allocator = new RootAllocator();
        ArrowFileReader reader = new ArrowFileReader(new Unclosed(channel), allocator)) {
      TileMetadata meta = metadata(name, reader);
      String checksum = get(name, reader.getVectorSchemaRoot().getSchema().getCustomMetadata(), CHECKSUM);
      ArrowBlock block = arrow(name, reader::getRecordBlocks).get(0);
      channel.position(block.getOffset());
      org.apache.arrow.vector.ipc.message.MessageMetadataResult message = arrow(name,
          () -> org.apache.arrow.vector.ipc.message.MessageSerializer.readMessage(
              new org.apache.arrow.vector.ipc.ReadChannel(new Unclosed(channel))));
      if (message == null || message.getMessage().headerType() != org.apache.arrow.flatbuf.MessageHeader.RecordBatch) {
        throw new IOException(name + ": not a valid Arrow IPC tile file: no record batch at " + block.getOffset());
      }
      org.apache.arrow.flatbuf.RecordBatch batch = (org.apache.arrow.flatbuf.RecordBatch) message.getMessage()
          .header(new org.apache.arrow.flatbuf.RecordBatch());
      int k = meta.kernelNames().size();
      int n = meta.key().size();
      long width = meta.dtype() == NpyDType.FLOAT64 ? 8 : 4;
      if (batch.length() != n || batch.compression() != null || batch.buffersLength() != 2 * k
          || batch.nodesLength() != k) {
        throw new IOException(name + ": the record batch has " + batch.length() + " rows, "
            + batch.buffersLength() + " buffers" + (batch.compression() != null ? ", compressed" : "")
            + "; a " + meta.key().rows() + "x" + meta.key().cols() + " tile of " + k + " kernels needs " + n
            + " rows, " + 2 * k + " buffers, uncompressed");
      }
      long body = block.getOffset() + block.getMetadataLength();
      long[] offsets = new long[k];
      for (int c = 0; c < k; c++) {
        if (batch.nodes(c).nullCount() != 0) {
          throw new IOException(name + ": column '" + meta.kernelNames().get(c) + "' has "
              + batch.nodes(c).nullCount() + " null values");
        }
        org.apache.arrow.flatbuf.Buffer data = batch.buffers(2 * c + 1);
        if (data.length() < n * width || body + data.offset() + n * width > body + block.getBodyLength()) {
          throw new IOException(name + ": column '" + meta.kernelNames().get(c) + "' holds "
              + data.length() + " bytes; " + n + " values need " + n * width);
        }
        offsets[c] = body + data.offset();
      }
      return new Layout(name, meta, offsets, checksum);
    }
  }

  /**
   * Reads only a tile file's metadata, without its values.
   *
   * @return empty if {@code file} does not exist
   * @throws IOException if it exists but is not a valid tile file
   */
  public static Optional<TileMetadata> readMetadata(Path file) throws IOException {
    FileChannel channel;
    try {
      channel = FileChannel.open(file, StandardOpenOption.READ);
    } catch (NoSuchFileException e) {
      return Optional.empty();
    }
    try (channel;
        BufferAllocator allocator = new RootAllocator();
        ArrowFileReader reader = new ArrowFileReader(channel, allocator)) {
      return Optional.of(metadata(file.toString(), reader));
    }
  }

  private static void writeArrow(Path tmp, Tile tile) throws IOException {
    try (FileChannel channel = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW,
        StandardOpenOption.WRITE)) {
      write(channel, tile);
    }
  }

  /**
   * Writes {@code tile} as one Arrow IPC file to {@code channel} (any channel: a local file, or an
   * object of a Beam file system); the caller closes the channel and commits the file.
   */
  public static void write(WritableByteChannel channel, Tile tile) throws IOException {
    try (BufferAllocator allocator = new RootAllocator();
        VectorSchemaRoot values = VectorSchemaRoot.create(schema(tile.dtype(), tile.kernels().keySet(), null),
            allocator)) {
      int column = 0;
      for (double[] v : tile.kernels().values()) {
        fill(values.getVector(column++), v);
      }
      writeRoot(channel, tile.metadata(), values);
    }
  }

  /**
   * Writes a tile whose values are given as they are stored: {@code columns} holds, for each of
   * {@code metadata.kernelNames()} in that order, the {@code rows * cols} values of that kernel
   * in the tile's dtype and native byte order (little-endian on every platform Arrow supports),
   * row-major. A direct buffer is written from its own memory, without a copy (a float32 tile
   * stays float32 from the computation to the file); a heap buffer is copied once. The file is the
   * one {@link #write(WritableByteChannel, Tile)} writes for the same values.
   */
  public static void write(WritableByteChannel channel, TileMetadata metadata, List<ByteBuffer> columns)
      throws IOException {
    if (columns.size() != metadata.kernelNames().size()) {
      throw new IllegalArgumentException(metadata.kernelNames().size() + " kernels but " + columns.size()
          + " columns");
    }
    int n = metadata.key().size();
    long width = metadata.dtype() == NpyDType.FLOAT64 ? 8 : 4;
    try (BufferAllocator allocator = new RootAllocator();
        VectorSchemaRoot values = VectorSchemaRoot.create(schema(metadata.dtype(), metadata.kernelNames(), null),
            allocator)) {
      for (int c = 0; c < columns.size(); c++) {
        ByteBuffer bytes = columns.get(c);
        if (bytes.remaining() != n * width) {
          throw new IllegalArgumentException("kernel '" + metadata.kernelNames().get(c) + "' has "
              + bytes.remaining() + " bytes but a " + metadata.key().rows() + "x" + metadata.key().cols()
              + " tile needs " + n * width);
        }
        FieldVector vector = values.getVector(c);
        ArrowBuf data;
        if (bytes.isDirect()) {
          // The caller's memory as the column's values; Arrow neither frees nor changes it.
          data = new ArrowBuf(ReferenceManager.NO_OP, null, bytes.remaining(),
              MemoryUtil.getByteBufferAddress(bytes) + bytes.position());
        } else {
          data = allocator.buffer(bytes.remaining());
          data.setBytes(0, bytes.duplicate());
        }
        try (ArrowBuf validity = allocator.buffer((n + 7) / 8)) {
          validity.setZero(0L, validity.capacity());
          validity.setOne(0L, n / 8L);
          for (int i = n / 8 * 8; i < n; i++) {
            BitVectorHelper.setBit(validity, i);
          }
          vector.loadFieldBuffers(new ArrowFieldNode(n, 0), List.of(validity, data));
        }
        if (!bytes.isDirect()) {
          data.close(); // the vector holds its own reference
        }
      }
      values.setRowCount(n);
      writeRoot(channel, metadata, values);
    }
  }

  private static Schema schema(NpyDType dtype, java.util.Collection<String> kernels, Map<String, String> meta) {
    ArrowType type = new ArrowType.FloatingPoint(dtype == NpyDType.FLOAT64
        ? FloatingPointPrecision.DOUBLE : FloatingPointPrecision.SINGLE);
    List<Field> fields = kernels.stream()
        .map(name -> new Field(name, FieldType.notNullable(type), null))
        .toList();
    return new Schema(fields, meta);
  }

  /** Writes {@code values} (the columns, all filled) as one Arrow IPC file with the tile's metadata and checksum. */
  private static void writeRoot(WritableByteChannel channel, TileMetadata tile, VectorSchemaRoot values)
      throws IOException {
    TileKey key = tile.key();
    Map<String, String> meta = new LinkedHashMap<>();
    meta.put(VERSION, FORMAT_VERSION);
    meta.put(MODEL_HASH, tile.modelHash());
    meta.put(INPUTS_HASH, tile.inputsHash());
    meta.put(ROW_OFFSET, Long.toString(key.rowOffset()));
    meta.put(COL_OFFSET, Long.toString(key.colOffset()));
    meta.put(ROWS, Integer.toString(key.rows()));
    meta.put(COLS, Integer.toString(key.cols()));
    meta.put(DTYPE, tile.dtype().typeName());
    meta.put(KERNELS, String.join(",", tile.kernelNames()));
    // The checksum is of the bytes as written (float32 values after rounding).
    meta.put(CHECKSUM, checksum(values.getFieldVectors(), key.size()));
    VectorSchemaRoot root = new VectorSchemaRoot(schema(tile.dtype(), tile.kernelNames(), meta),
        values.getFieldVectors(), key.size());
    try (ArrowFileWriter writer = new ArrowFileWriter(root, null, new WritableByteChannel() {
          @Override
          public int write(ByteBuffer src) throws IOException {
            return channel.write(src);
          }

          @Override
          public boolean isOpen() {
            return channel.isOpen();
          }

          @Override
          public void close() {
            // the caller's channel
          }
        })) {
      writer.start();
      writer.writeBatch();
      writer.end();
    }
  }

  /** Copies {@code values} into a Float8Vector or Float4Vector, all marked non-null. */
  private static void fill(FieldVector vector, double[] values) {
    int n = values.length;
    boolean doubles = vector instanceof Float8Vector;
    if (doubles) {
      ((Float8Vector) vector).allocateNew(n);
    } else {
      ((Float4Vector) vector).allocateNew(n);
    }
    ArrowBuf validity = vector.getValidityBuffer();
    validity.setOne(0L, n / 8L);
    for (int i = n / 8 * 8; i < n; i++) {
      BitVectorHelper.setBit(validity, i);
    }
    windows(vector, n, (bytes, off, k) -> {
      if (doubles) {
        bytes.asDoubleBuffer().put(values, off, k);
      } else {
        FloatBuffer floats = bytes.asFloatBuffer();
        for (int i = 0; i < k; i++) {
          floats.put(i, (float) values[off + i]);
        }
      }
    });
    vector.setValueCount(n);
  }

  /** What {@link #windows} does with one window: values {@code off} to {@code off + k} of the column. */
  private interface Window {
    void at(ByteBuffer bytes, int off, int k);
  }

  /**
   * Passes the data of the first {@code n} values of a Float8Vector or Float4Vector to {@code
   * window} in windows of at most {@link #CHUNK} bytes, in native byte order: what {@link #fill}
   * writes and {@link #values} reads.
   */
  private static void windows(FieldVector vector, int n, Window window) {
    int width = vector instanceof Float8Vector ? 8 : 4;
    for (int off = 0; off < n; off += CHUNK / width) {
      int k = Math.min(CHUNK / width, n - off);
      window.at(vector.getDataBuffer().nioBuffer((long) off * width, k * width).order(ByteOrder.nativeOrder()),
          off, k);
    }
  }

  /** CRC32C of the first {@code n} values of each column, in column order, as stored. */
  private static String checksum(List<FieldVector> columns, int n) {
    CRC32C crc = new CRC32C();
    for (FieldVector vector : columns) {
      long bytes = (long) n * (vector instanceof Float8Vector ? 8 : 4);
      for (long off = 0; off < bytes; off += CHUNK) {
        crc.update(vector.getDataBuffer().nioBuffer(off, (int) Math.min(CHUNK, bytes - off)));
      }
    }
    return CRC32C + String.format("%08x", crc.getValue());
  }

  /** The first {@code n} values of a Float8Vector or Float4Vector as doubles. */
  private static double[] values(FieldVector vector, int n) {
    double[] values = new double[n];
    boolean doubles = vector instanceof Float8Vector;
    windows(vector, n, (bytes, off, k) -> {
      if (doubles) {
        bytes.asDoubleBuffer().get(values, off, k);
      } else {
        FloatBuffer floats = bytes.asFloatBuffer();
        for (int i = 0; i < k; i++) {
          values[off + i] = floats.get(i);
        }
      }
    });
    return values;
  }

  /** Reads the schema and validates its metadata against the columns and record batches. */
  private static TileMetadata metadata(String file, ArrowFileReader reader) throws IOException {
    Schema schema = arrow(file, reader::getVectorSchemaRoot).getSchema();
    Map<String, String> meta = schema.getCustomMetadata();
    if (meta == null || !FORMAT_VERSION.equals(meta.get(VERSION))) {
      throw new IOException(file + ": not an ntk tile file: " + VERSION + " is "
          + (meta == null ? null : meta.get(VERSION)) + ", expected " + FORMAT_VERSION);
    }
    TileMetadata result;
    try {
      TileKey key = new TileKey(
          Long.parseLong(get(file, meta, ROW_OFFSET)), Long.parseLong(get(file, meta, COL_OFFSET)),
          Integer.parseInt(get(file, meta, ROWS)), Integer.parseInt(get(file, meta, COLS)));
      result = new TileMetadata(key, get(file, meta, MODEL_HASH), get(file, meta, INPUTS_HASH),
          NpyDType.fromName(get(file, meta, DTYPE)), List.of(get(file, meta, KERNELS).split(",")));
    } catch (IllegalArgumentException e) {
      throw new IOException(file + ": invalid tile metadata: " + e.getMessage(), e);
    }
    List<String> columns = schema.getFields().stream().map(Field::getName).toList();
    if (!columns.equals(result.kernelNames())) {
      throw new IOException(file + ": " + KERNELS + " lists " + result.kernelNames()
          + " but the columns are " + columns);
    }
    ArrowType expected = new ArrowType.FloatingPoint(result.dtype() == NpyDType.FLOAT64
        ? FloatingPointPrecision.DOUBLE : FloatingPointPrecision.SINGLE);
    for (Field field : schema.getFields()) {
      if (!field.getType().equals(expected)) {
        throw new IOException(file + ": column '" + field.getName() + "' has type "
            + field.getType() + " but " + DTYPE + " is " + result.dtype().typeName());
      }
    }
    int batches = arrow(file, reader::getRecordBlocks).size();
    if (batches != 1) {
      throw new IOException(file + ": expected one record batch but found " + batches);
    }
    return result;
  }

  private static String get(String file, Map<String, String> meta, String key) throws IOException {
    String value = meta.get(key);
    if (value == null) {
      throw new IOException(file + ": tile metadata is missing key " + key);
    }
    return value;
  }

  /** An Arrow call whose failures mean a corrupt file. */
  private interface ArrowCall<T> {
    T call() throws IOException;
  }

  private static <T> T arrow(String file, ArrowCall<T> call) throws IOException {
    try {
      return call.call();
    } catch (IOException | RuntimeException e) {
      throw new IOException(file + ": not a valid Arrow IPC tile file (truncated or corrupt?): "
          + e, e);
    }
  }

  /** The caller's channel, which the Arrow reader must not close. */
  private static final class Unclosed extends ForwardingChannel {
    Unclosed(SeekableByteChannel in) {
      super(in);
    }

    @Override
    public void close() {
      // the caller closes it
    }
  }
}
