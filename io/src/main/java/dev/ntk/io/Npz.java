package dev.ntk.io;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.NonWritableChannelException;
import java.nio.channels.SeekableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.LocalDateTime;
import java.util.Enumeration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;

/**
 * Reads and writes numpy {@code .npz} archives: a zip file with one {@code .npy} entry per array,
 * named {@code <name>.npy}, as {@code np.savez} (stored entries) and {@code np.savez_compressed}
 * (deflated entries) write them and {@code np.load(path)[name]} reads them. Each entry is a
 * {@code .npy} file as {@link Npy} reads and writes it (float32 or float64, C order).
 *
 * <pre>{@code
 * Map<String, NpyArray> arrays = new LinkedHashMap<>();
 * arrays.put("serial[0].Dense/W", w);
 * Npz.write(Path.of("params.npz"), arrays, Npz.Compression.STORED);
 * NpyArray back = Npz.read(Path.of("params.npz")).get("serial[0].Dense/W");
 * }</pre>
 *
 * <p>Archives are written atomically ({@link AtomicFiles}), with every entry time set to the
 * zip epoch (1980-01-01 00:00), so that the same arrays always give the same bytes. An entry is
 * read whole into memory before it is parsed, so each must hold less than 2 GiB.
 */
public final class Npz {
  private static final String SUFFIX = ".npy";
  private static final LocalDateTime ZIP_EPOCH = LocalDateTime.of(1980, 1, 1, 0, 0);

  private Npz() {}

  /** How the entries of a written archive are stored. */
  public enum Compression {
    /** Entries as they are, as {@code np.savez} writes them. */
    STORED,
    /** Entries deflated, as {@code np.savez_compressed} writes them. */
    DEFLATED
  }

  /**
   * Every array of the archive by name (its entry's name without {@code .npy}), in the archive's
   * order.
   *
   * @throws NpyFormatException naming the file, and the entry where there is one, if the file is
   *     not a zip archive, an entry is not named {@code <name>.npy}, a name appears twice, or an
   *     entry is corrupt or not a {@code .npy} array this package reads
   */
  public static Map<String, NpyArray> read(Path file) throws IOException {
    if (!Files.exists(file)) {
      throw new NoSuchFileException(file.toString());
    }
    ZipFile zip;
    try {
      zip = new ZipFile(file.toFile());
    } catch (ZipException e) {
      throw new NpyFormatException(file, "not a .npz file (a zip archive of .npy arrays): " + e.getMessage());
    }
    try (zip) {
      Map<String, NpyArray> arrays = new LinkedHashMap<>();
      Enumeration<? extends ZipEntry> entries = zip.entries();
      while (entries.hasMoreElements()) {
        ZipEntry entry = entries.nextElement();
        String where = file + ", entry " + entry.getName();
        if (entry.isDirectory() || !entry.getName().endsWith(SUFFIX)
            || entry.getName().length() == SUFFIX.length()) {
          throw new NpyFormatException(where, "not an array: a .npz holds only entries named <name>.npy");
        }
        String name = entry.getName().substring(0, entry.getName().length() - SUFFIX.length());
        if (arrays.containsKey(name)) {
          throw new NpyFormatException(where, "the archive holds this entry twice");
        }
        if (entry.getSize() > Integer.MAX_VALUE - 8) {
          throw new NpyFormatException(where, "an entry of " + entry.getSize() + " bytes is too large (at most 2 GiB)");
        }
        byte[] bytes;
        try (InputStream in = zip.getInputStream(entry)) {
          bytes = in.readAllBytes();
        } catch (IOException e) { // a bad CRC, a truncated or corrupt deflate stream
          throw new NpyFormatException(where, "corrupt entry: " + e.getMessage());
        }
        arrays.put(name, Npy.read(new BytesChannel(bytes), where));
      }
      return arrays;
    }
  }

  /** Writes {@code arrays} as an archive of stored entries, as {@code np.savez}. */
  public static void write(Path file, Map<String, NpyArray> arrays) throws IOException {
    write(file, arrays, Compression.STORED);
  }

  /**
   * Writes {@code arrays}, in the map's order, as entries {@code <name>.npy}, atomically: the file
   * appears complete or not at all. Creates missing parent directories.
   *
   * @throws IllegalArgumentException if a name is empty or ends with {@code /}
   */
  public static void write(Path file, Map<String, NpyArray> arrays, Compression compression) throws IOException {
    for (String name : arrays.keySet()) {
      if (name.isEmpty() || name.endsWith("/")) {
        throw new IllegalArgumentException(file + ": array name \"" + name + "\" cannot name a .npz entry");
      }
    }
    AtomicFiles.write(file, tmp -> {
      try (OutputStream os = Files.newOutputStream(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
          ZipOutputStream zip = new ZipOutputStream(new BufferedOutputStream(os, 1 << 16))) {
        for (Map.Entry<String, NpyArray> a : arrays.entrySet()) {
          ZipEntry entry = new ZipEntry(a.getKey() + SUFFIX);
          entry.setTimeLocal(ZIP_EPOCH);
          String where = file + ", entry " + entry.getName();
          if (compression == Compression.STORED) {
            // a stored entry's size and CRC precede its data: one pass to learn them
            Crc32Channel crc = new Crc32Channel();
            Npy.write(crc, where, a.getValue());
            entry.setMethod(ZipEntry.STORED);
            entry.setSize(crc.size);
            entry.setCompressedSize(crc.size);
            entry.setCrc(crc.crc.getValue());
          } else {
            entry.setMethod(ZipEntry.DEFLATED);
          }
          zip.putNextEntry(entry);
          Npy.write(new EntryChannel(zip), where, a.getValue());
          zip.closeEntry();
        }
      }
    });
  }

  /** Counts and checksums what is written to it, and keeps nothing. */
  private static final class Crc32Channel implements WritableByteChannel {
    final CRC32 crc = new CRC32();
    long size;

    @Override
    public int write(ByteBuffer src) {
      int n = src.remaining();
      crc.update(src);
      size += n;
      return n;
    }

    @Override
    public boolean isOpen() {
      return true;
    }

    @Override
    public void close() {}
  }

  /** The current entry of a zip stream; closing it leaves the stream open for the next entry. */
  private static final class EntryChannel implements WritableByteChannel {
    private final WritableByteChannel out;

    EntryChannel(OutputStream zip) {
      this.out = Channels.newChannel(zip);
    }

    @Override
    public int write(ByteBuffer src) throws IOException {
      return out.write(src);
    }

    @Override
    public boolean isOpen() {
      return true;
    }

    @Override
    public void close() {}
  }

  /** A read-only channel over an entry's bytes, for {@link Npy#read(SeekableByteChannel, String)}. */
  private static final class BytesChannel implements SeekableByteChannel {
    private final byte[] bytes;
    private int position;
    private boolean open = true;

    BytesChannel(byte[] bytes) {
      this.bytes = bytes;
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
      checkOpen();
      if (position >= bytes.length) {
        return -1;
      }
      int n = Math.min(dst.remaining(), bytes.length - position);
      dst.put(bytes, position, n);
      position += n;
      return n;
    }

    @Override
    public int write(ByteBuffer src) {
      throw new NonWritableChannelException();
    }

    @Override
    public long position() throws IOException {
      checkOpen();
      return position;
    }

    @Override
    public SeekableByteChannel position(long newPosition) throws IOException {
      checkOpen();
      if (newPosition < 0) {
        throw new IllegalArgumentException("negative position " + newPosition);
      }
      position = (int) Math.min(newPosition, bytes.length);
      return this;
    }

    @Override
    public long size() throws IOException {
      checkOpen();
      return bytes.length;
    }

    @Override
    public SeekableByteChannel truncate(long size) {
      throw new NonWritableChannelException();
    }

    @Override
    public boolean isOpen() {
      return open;
    }

    @Override
    public void close() {
      open = false;
    }

    private void checkOpen() throws ClosedChannelException {
      if (!open) {
        throw new ClosedChannelException();
      }
    }
  }
}
