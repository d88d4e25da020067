package dev.ntk.transforms;

import java.io.ByteArrayOutputStream;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.NonWritableChannelException;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.SeekableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Pattern;
import org.apache.beam.sdk.io.FileSystem;
import org.apache.beam.sdk.io.FileSystemRegistrar;
import org.apache.beam.sdk.io.fs.CreateOptions;
import org.apache.beam.sdk.io.fs.MatchResult;
import org.apache.beam.sdk.io.fs.MoveOptions;
import org.apache.beam.sdk.io.fs.ResolveOptions;
import org.apache.beam.sdk.io.fs.ResourceId;
import org.apache.beam.sdk.options.PipelineOptions;

/**
 * A Beam file system of scheme {@value #SCHEME} that keeps its files in this JVM's memory, for
 * tests that must not touch the local file system: what works on it works through {@code
 * FileSystems} alone, as on {@code gs://} or {@code s3://}. Like an object store it has no
 * directories, only names; a file appears when its writer is closed; reads are seekable.
 * Registered through {@code META-INF/services} of the test class path.
 */
final class MemoryFileSystem extends FileSystem<MemoryFileSystem.Id> {
  static final String SCHEME = "mem";

  /** Files by full name ({@code mem://bucket/dir/file}). */
  static final Map<String, byte[]> FILES = new ConcurrentSkipListMap<>();

  /** Every name a file was committed under by a rename, also those deleted since. */
  static final Set<String> RENAMED_TO = java.util.concurrent.ConcurrentHashMap.newKeySet();

  /** Bytes read through {@link #open}, to show that reads go through this file system. */
  static final AtomicLong BYTES_READ = new AtomicLong();

  /** Registers {@link MemoryFileSystem} with Beam's {@code FileSystems}. */
  public static final class Registrar implements FileSystemRegistrar {
    @Override
    public Iterable<FileSystem<?>> fromOptions(PipelineOptions options) {
      return List.of(new MemoryFileSystem());
    }
  }

  /** A name in the file system; a directory's ends with {@code /}. */
  record Id(String name) implements ResourceId {
    @Override
    public ResourceId resolve(String other, ResolveOptions options) {
      if (!isDirectory()) {
        throw new IllegalStateException("cannot resolve against the file " + name);
      }
      boolean dir = options == ResolveOptions.StandardResolveOptions.RESOLVE_DIRECTORY;
      String child = other.endsWith("/") || !dir ? other : other + "/";
      return new Id(name + child);
    }

    @Override
    public ResourceId getCurrentDirectory() {
      return isDirectory() ? this : new Id(name.substring(0, name.lastIndexOf('/') + 1));
    }

    @Override
    public String getScheme() {
      return SCHEME;
    }

    @Override
    public String getFilename() {
      String n = isDirectory() ? name.substring(0, name.length() - 1) : name;
      return n.substring(n.lastIndexOf('/') + 1);
    }

    @Override
    public boolean isDirectory() {
      return name.endsWith("/");
    }

    @Override
    public String toString() {
      return name;
    }
  }

  @Override
  protected String getScheme() {
    return SCHEME;
  }

  @Override
  protected Id matchNewResource(String spec, boolean isDirectory) {
    if (!spec.startsWith(SCHEME + "://")) {
      throw new IllegalArgumentException("not a " + SCHEME + ":// name: " + spec);
    }
    return new Id(isDirectory && !spec.endsWith("/") ? spec + "/" : spec);
  }

  @Override
  protected List<MatchResult> match(List<String> specs) {
    List<MatchResult> results = new ArrayList<>();
    for (String spec : specs) {
      Pattern glob = Pattern.compile(Pattern.quote(spec).replace("*", "\\E[^/]*\\Q"));
      List<MatchResult.Metadata> found = new ArrayList<>();
      for (Map.Entry<String, byte[]> f : FILES.entrySet()) {
        if (glob.matcher(f.getKey()).matches()) {
          found.add(MatchResult.Metadata.builder().setResourceId(new Id(f.getKey()))
              .setSizeBytes(f.getValue().length).setIsReadSeekEfficient(true)
              .setLastModifiedMillis(0).build());
        }
      }
      results.add(found.isEmpty() && !spec.contains("*")
          ? MatchResult.create(MatchResult.Status.NOT_FOUND, new FileNotFoundException(spec))
          : MatchResult.create(MatchResult.Status.OK, found));
    }
    return results;
  }

  @Override
  protected WritableByteChannel create(Id id, CreateOptions options) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    return new WritableByteChannel() {
      private boolean open = true;

      @Override
      public int write(ByteBuffer src) throws IOException {
        if (!open) {
          throw new ClosedChannelException();
        }
        int n = src.remaining();
        byte[] chunk = new byte[n];
        src.get(chunk);
        bytes.write(chunk);
        return n;
      }

      @Override
      public boolean isOpen() {
        return open;
      }

      @Override
      public void close() {
        if (open) {
          open = false;
          FILES.put(id.name(), bytes.toByteArray());
        }
      }
    };
  }

  @Override
  protected ReadableByteChannel open(Id id) throws IOException {
    byte[] data = FILES.get(id.name());
    if (data == null) {
      throw new FileNotFoundException(id.name());
    }
    return new SeekableByteChannel() {
      private long position;
      private boolean open = true;

      @Override
      public int read(ByteBuffer dst) {
        if (position >= data.length) {
          return -1;
        }
        int n = (int) Math.min(dst.remaining(), data.length - position);
        dst.put(data, (int) position, n);
        position += n;
        BYTES_READ.addAndGet(n);
        return n;
      }

      @Override
      public int write(ByteBuffer src) {
        throw new NonWritableChannelException();
      }

      @Override
      public long position() {
        return position;
      }

      @Override
      public SeekableByteChannel position(long newPosition) {
        position = newPosition;
        return this;
      }

      @Override
      public long size() {
        return data.length;
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
    };
  }

  @Override
  protected void copy(List<Id> from, List<Id> to) throws IOException {
    for (int i = 0; i < from.size(); i++) {
      byte[] data = FILES.get(from.get(i).name());
      if (data == null) {
        throw new FileNotFoundException(from.get(i).name());
      }
      FILES.put(to.get(i).name(), data);
      RENAMED_TO.add(to.get(i).name());
    }
  }

  @Override
  protected void rename(List<Id> from, List<Id> to, MoveOptions... options) throws IOException {
    boolean ignoreMissing = Set.of(options).contains(MoveOptions.StandardMoveOptions.IGNORE_MISSING_FILES);
    for (int i = 0; i < from.size(); i++) {
      byte[] data = FILES.remove(from.get(i).name());
      if (data == null) {
        if (ignoreMissing) {
          continue;
        }
        throw new FileNotFoundException(from.get(i).name());
      }
      FILES.put(to.get(i).name(), data);
      RENAMED_TO.add(to.get(i).name());
    }
  }

  @Override
  protected void delete(Collection<Id> ids) {
    ids.forEach(id -> FILES.remove(id.name()));
  }
}
