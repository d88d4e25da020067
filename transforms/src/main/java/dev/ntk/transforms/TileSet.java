package dev.ntk.transforms;

import dev.ntk.io.Npy;
import dev.ntk.io.NpyDType;
import dev.ntk.io.NpyHeader;
import dev.ntk.io.Tile;
import dev.ntk.io.TileFiles;
import dev.ntk.io.TileKey;
import dev.ntk.io.TileMetadata;
import dev.ntk.kernels.Layer;
import dev.ntk.kernels.ModelSpec;
import java.io.IOException;
import java.io.InputStream;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One kernel matrix between the rows of two {@code .npy} files, as a set of tile files in a
 * directory: what to compute (model, inputs, dtype, tile size), where its tiles live, and how to
 * put tiles back together.
 *
 * <p>It is a plain serializable value, shared by the transforms that write tiles and those that
 * read them. A tile belongs to this set if its metadata names the same model hash, inputs hash,
 * dtype and kernels; anything else in the directory is stale and is recomputed.
 *
 * @param x2 {@code null} for the kernel of x1 with itself (symmetric: only tiles on or above the
 *     diagonal are stored)
 */
public record TileSet(
    String modelJson,
    String x1,
    String x2,
    long n1,
    long n2,
    long[] featureShape,
    int tileSize,
    NpyDType dtype,
    String directory,
    String modelHash,
    String inputsHash)
    implements Serializable {
  /** The kernels every tile holds, computed together. */
  public static final List<String> KERNEL_NAMES = List.of("nngp", "ntk");

  private static final long serialVersionUID = 1L;

  /**
   * Describes the kernel of {@code model} between {@code x1} and {@code x2} ({@code null}: x1
   * itself), reading the inputs' headers and hashing their bytes.
   */
  public static TileSet create(String modelJson, Path x1, Path x2, int tileSize, NpyDType dtype,
      Path directory) throws IOException {
    Layer layer = ModelSpec.parse(modelJson);
    NpyHeader h1 = Npy.readHeader(x1);
    NpyHeader h2 = x2 == null ? h1 : Npy.readHeader(x2);
    if (h1.shape().length < 2 || h2.shape().length < 2) {
      throw new IllegalArgumentException("inputs must be batch-first with at least 2 axes");
    }
    long[] features = Arrays.copyOfRange(h1.shape(), 1, h1.shape().length);
    if (!Arrays.equals(features, Arrays.copyOfRange(h2.shape(), 1, h2.shape().length))) {
      throw new IllegalArgumentException(x1 + " and " + x2 + " have different per-example shapes");
    }
    String inputs = sha256(x1) + (x2 == null ? "" : "+" + sha256(x2));
    TilePlan plan = new TilePlan(h1.shape()[0], h2.shape()[0], tileSize, x2 == null);
    return new TileSet(modelJson, x1.toAbsolutePath().toString(),
        x2 == null ? null : x2.toAbsolutePath().toString(), plan.n1(), plan.n2(), features,
        tileSize, dtype, directory.toAbsolutePath().toString(), ModelSpec.hash(layer), inputs);
  }

  /** Whether this is the kernel of x1 with itself. */
  public boolean symmetric() {
    return x2 == null;
  }

  /** The tiles that make up this kernel. */
  public List<TileKey> plan() {
    return new TilePlan(n1, n2, tileSize, symmetric()).tiles();
  }

  /** The file of the tile {@code key}. */
  public Path file(TileKey key) {
    return Path.of(directory).resolve(key.fileName());
  }

  /** The metadata a tile of this set carries. */
  public TileMetadata metadata(TileKey key) {
    return new TileMetadata(key, modelHash, inputsHash, dtype, KERNEL_NAMES);
  }

  /** Whether the tile {@code key} is already on disk for this model, these inputs and dtype. */
  public boolean isDone(TileKey key) {
    try {
      return TileFiles.readMetadata(file(key)).map(metadata(key)::equals).orElse(false);
    } catch (IOException e) {
      return false; // unreadable or foreign: computed again and overwritten
    }
  }

  /**
   * Rows {@code [rowOffset, rowOffset + rows)} of every kernel, over all {@code n2} columns, from
   * the tiles {@code keys} (for a symmetric set, the transposes of stored tiles fill the part
   * below the diagonal). Fails if a needed entry is not covered by a tile.
   *
   * @return kernel name to row-major {@code rows x n2} values
   */
  public Map<String, double[]> assemble(long rowOffset, int rows, Iterable<TileKey> keys) {
    Map<String, double[]> out = new LinkedHashMap<>();
    for (String name : KERNEL_NAMES) {
      double[] values = new double[Math.multiplyExact(rows, Math.toIntExact(n2))];
      Arrays.fill(values, Double.NaN);
      out.put(name, values);
    }
    for (TileKey key : keys) {
      boolean direct = overlaps(key.rowOffset(), key.rows(), rowOffset, rows);
      boolean mirrored = symmetric() && key.rowOffset() != key.colOffset()
          && overlaps(key.colOffset(), key.cols(), rowOffset, rows);
      if (!direct && !mirrored) {
        continue;
      }
      Tile tile = read(key);
      for (String name : KERNEL_NAMES) {
        double[] src = tile.kernels().get(name);
        double[] dst = out.get(name);
        if (direct) {
          place(src, key.rowOffset(), key.colOffset(), key.rows(), key.cols(), false, dst, rowOffset, rows);
        }
        if (mirrored) {
          place(src, key.colOffset(), key.rowOffset(), key.cols(), key.rows(), true, dst, rowOffset, rows);
        }
      }
    }
    for (double[] values : out.values()) {
      for (int i = 0; i < values.length; i++) {
        if (Double.isNaN(values[i])) {
          throw new IllegalStateException("kernel entry (" + (rowOffset + i / n2) + ", " + (i % n2)
              + ") is missing from the tiles in " + directory);
        }
      }
    }
    return out;
  }

  private Tile read(TileKey key) {
    try {
      Tile tile = TileFiles.read(file(key));
      if (!tile.metadata().equals(metadata(key))) {
        throw new IllegalStateException(file(key) + " belongs to another model, inputs or dtype: "
            + tile.metadata());
      }
      return tile;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * Copies a {@code rows x cols} block at {@code (r0, c0)} (the transpose of {@code src} when
   * {@code transposed}) into the rows of {@code dst} that it shares.
   */
  private void place(double[] src, long r0, long c0, int rows, int cols, boolean transposed,
      double[] dst, long dstRow0, int dstRows) {
    long from = Math.max(r0, dstRow0);
    long to = Math.min(r0 + rows, dstRow0 + dstRows);
    for (long r = from; r < to; r++) {
      int i = (int) (r - r0);
      int base = (int) ((r - dstRow0) * n2 + c0);
      if (transposed) {
        for (int j = 0; j < cols; j++) {
          dst[base + j] = src[j * rows + i];
        }
      } else {
        System.arraycopy(src, i * cols, dst, base, cols);
      }
    }
  }

  private static boolean overlaps(long start, int length, long from, int count) {
    return start < from + count && from < start + length;
  }

  private static String sha256(Path file) throws IOException {
    MessageDigest digest;
    try {
      digest = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
    byte[] buffer = new byte[1 << 16];
    try (InputStream in = Files.newInputStream(file)) {
      for (int n; (n = in.read(buffer)) > 0; ) {
        digest.update(buffer, 0, n);
      }
    }
    return HexFormat.of().formatHex(digest.digest());
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof TileSet t && t.toString().equals(toString());
  }

  @Override
  public int hashCode() {
    return toString().hashCode();
  }

  @Override
  public String toString() {
    return "TileSet[" + directory + ", " + n1 + "x" + n2 + ", tile " + tileSize + ", " + dtype.typeName()
        + ", features " + Arrays.toString(featureShape) + ", model " + modelHash + ", inputs "
        + inputsHash + "]";
  }

}
