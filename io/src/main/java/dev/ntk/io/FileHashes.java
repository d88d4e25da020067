package dev.ntk.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * SHA-256 digests of local files, which name a job's inputs in tile sets, computed while the file
 * is read for its checks ({@link #readNpy}) and remembered by this JVM for as long as the file keeps
 * its size and modification time: a job reads and hashes each input once.
 *
 * <pre>{@code
 * NpyArray x = FileHashes.readNpy(Path.of("x.npy"));   // read, and hashed on the way
 * String id = FileHashes.sha256(Path.of("x.npy"));      // no second read
 * }</pre>
 */
public final class FileHashes {
  /** How many files a JVM remembers; a job has a few inputs. */
  private static final int KEPT = 64;

  private static final Map<Path, Known> KNOWN = new LinkedHashMap<>(16, 0.75f, true) {
    @Override
    protected boolean removeEldestEntry(Map.Entry<Path, Known> eldest) {
      return size() > KEPT;
    }
  };

  /** A digest and the state of the file it was computed from. */
  private record Known(long size, long modified, String sha256) {}

  private FileHashes() {}

  /** Reads a whole {@code .npy} file ({@link Npy#read(Path)}) and remembers its digest. */
  public static NpyArray readNpy(Path file) throws IOException {
    Path key = file.toAbsolutePath().normalize();
    BasicFileAttributes before = Files.readAttributes(key, BasicFileAttributes.class);
    NpyArray array;
    String sha;
    try (Digesting ch = new Digesting(FileChannel.open(key, StandardOpenOption.READ))) {
      array = Npy.read(ch, file.toString());
      sha = ch.sha256();
    }
    if (sha != null) {
      remember(key, before, sha);
    }
    return array;
  }

  /** The SHA-256 hex digest of a local file's bytes: remembered, or read and remembered. */
  public static String sha256(Path file) throws IOException {
    Path key = file.toAbsolutePath().normalize();
    BasicFileAttributes now = Files.readAttributes(key, BasicFileAttributes.class);
    synchronized (KNOWN) {
      Known k = KNOWN.get(key);
      if (k != null && k.size() == now.size() && k.modified() == now.lastModifiedTime().toMillis()) {
        return k.sha256();
      }
    }
    MessageDigest digest = digest();
    ByteBuffer buffer = ByteBuffer.allocate(1 << 16);
    try (FileChannel ch = FileChannel.open(key, StandardOpenOption.READ)) {
      while (ch.read(buffer.clear()) > 0) {
        digest.update(buffer.flip());
      }
    }
    String sha = HexFormat.of().formatHex(digest.digest());
    remember(key, now, sha);
    return sha;
  }

  /** Remembers {@code sha} for {@code key} if the file has not changed since {@code before}. */
  private static void remember(Path key, BasicFileAttributes before, String sha) throws IOException {
    BasicFileAttributes after = Files.readAttributes(key, BasicFileAttributes.class);
    if (after.size() == before.size() && after.lastModifiedTime().equals(before.lastModifiedTime())) {
      synchronized (KNOWN) {
        KNOWN.put(key, new Known(after.size(), after.lastModifiedTime().toMillis(), sha));
      }
    }
  }

  private static MessageDigest digest() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * A channel that digests the bytes read through it, in file order: a read at or before the end
   * of what is digested so far adds its new bytes; a read that skips ahead makes the digest
   * unknown ({@link #sha256} is {@code null}), as does a file not read to its end.
   */
  private static final class Digesting extends ForwardingChannel {
    private final MessageDigest digest = digest();
    private long digested;
    private boolean skipped;

    Digesting(SeekableByteChannel in) {
      super(in);
    }

    /** The digest of the whole file, or {@code null} if it was not read in order to its end. */
    String sha256() throws IOException {
      return skipped || digested != in.size() ? null : HexFormat.of().formatHex(digest.digest());
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
      long at = in.position();
      int start = dst.position();
      int n = in.read(dst);
      if (n > 0 && !skipped) {
        if (at > digested) {
          skipped = true;
        } else if (at + n > digested) {
          ByteBuffer fresh = dst.duplicate();
          fresh.position(start + (int) (digested - at)).limit(start + n);
          digest.update(fresh);
          digested = at + n;
        }
      }
      return n;
    }

    @Override
    public int write(ByteBuffer src) {
      throw new UnsupportedOperationException("read only");
    }

    @Override
    public SeekableByteChannel truncate(long size) {
      throw new UnsupportedOperationException("read only");
    }
  }
}
