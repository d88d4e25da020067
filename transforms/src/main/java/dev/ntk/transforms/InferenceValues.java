package dev.ntk.transforms;

import dev.ntk.io.NpyDType;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.Arrays;
import org.apache.beam.sdk.coders.AtomicCoder;
import org.apache.beam.sdk.coders.BooleanCoder;
import org.apache.beam.sdk.coders.DoubleCoder;
import org.apache.beam.sdk.coders.StringUtf8Coder;
import org.apache.beam.sdk.util.VarInt;

/** What passes between the steps of {@link GpInference}: the factored train side, blocks of predictions, and their coders. */
final class InferenceValues {
  private InferenceValues() {}

  /**
   * Where the factored train side lives: {@code dir} (a Beam resource) holds the files of the mode;
   * the {@code id} is unique to the run (the key under which workers keep what they read). The
   * train-train tiles' model hash, dtype and inputs are what the other kernels are checked against.
   */
  record Factored(String dir, String id, int n, int outputs, long[] yShape, double nll,
      NpyDType dtype, String modelHash, String trainInputs) {
    @Override
    public boolean equals(Object o) {
      return o instanceof Factored f && dir.equals(f.dir) && id.equals(f.id) && n == f.n && outputs == f.outputs
          && Arrays.equals(yShape, f.yShape) && Double.compare(nll, f.nll) == 0 && dtype == f.dtype
          && modelHash.equals(f.modelHash) && trainInputs.equals(f.trainInputs);
    }

    @Override
    public int hashCode() {
      return java.util.Objects.hash(dir, id, n, outputs, Arrays.hashCode(yShape), nll, dtype, modelHash, trainInputs);
    }
  }

  /** The predictions for a block of test rows at every time, and its kernels if a later step needs them. */
  record Block(long rowOffset, int rows, double[][] means, double[] testTrainGet, double[] testTrainNngp,
      String testInputs) {
    @Override
    public boolean equals(Object o) {
      return o instanceof Block b && rowOffset == b.rowOffset && rows == b.rows && Arrays.deepEquals(means, b.means)
          && Arrays.equals(testTrainGet, b.testTrainGet) && Arrays.equals(testTrainNngp, b.testTrainNngp)
          && testInputs.equals(b.testInputs);
    }

    @Override
    public int hashCode() {
      return java.util.Objects.hash(rowOffset, rows, Arrays.deepHashCode(means), Arrays.hashCode(testTrainGet),
          Arrays.hashCode(testTrainNngp), testInputs);
    }
  }

  /** The block {@link #gatherAndWrite} adds to the others: no rows, skipped by the write step. */
  static final Block NO_ROWS = new Block(-1, 0, new double[0][], null, null, "");

  /** {@link Factored} as a length-prefixed sequence of its fields (no Java serialization). */
  static final class FactoredCoder extends AtomicCoder<Factored> {
    static final FactoredCoder INSTANCE = new FactoredCoder();
    private static final StringUtf8Coder STRING = StringUtf8Coder.of();

    @Override
    public void encode(Factored f, OutputStream out) throws IOException {
      STRING.encode(f.dir(), out);
      STRING.encode(f.id(), out);
      VarInt.encode(f.n(), out);
      VarInt.encode(f.outputs(), out);
      VarInt.encode(f.yShape().length, out);
      for (long d : f.yShape()) {
        VarInt.encode(d, out);
      }
      DoubleCoder.of().encode(f.nll(), out);
      STRING.encode(f.dtype().typeName(), out);
      STRING.encode(f.modelHash(), out);
      STRING.encode(f.trainInputs(), out);
    }

    @Override
    public Factored decode(InputStream in) throws IOException {
      String dir = STRING.decode(in);
      String id = STRING.decode(in);
      int n = VarInt.decodeInt(in);
      int outputs = VarInt.decodeInt(in);
      long[] shape = new long[VarInt.decodeInt(in)];
      for (int i = 0; i < shape.length; i++) {
        shape[i] = VarInt.decodeLong(in);
      }
      double nll = DoubleCoder.of().decode(in);
      return new Factored(dir, id, n, outputs, shape, nll, NpyDType.fromName(STRING.decode(in)),
          STRING.decode(in), STRING.decode(in));
    }

    @Override
    public void verifyDeterministic() {}
  }

  /** {@link Block}; absent arrays are marked by a flag. */
  static final class BlockCoder extends AtomicCoder<Block> {
    static final BlockCoder INSTANCE = new BlockCoder();

    @Override
    public void encode(Block b, OutputStream out) throws IOException {
      VarInt.encode(b.rowOffset() + 1, out); // -1 for NO_ROWS
      VarInt.encode(b.rows(), out);
      VarInt.encode(b.means().length, out);
      for (double[] m : b.means()) {
        nullable(m, out);
      }
      nullable(b.testTrainGet(), out);
      nullable(b.testTrainNngp(), out);
      StringUtf8Coder.of().encode(b.testInputs(), out);
    }

    @Override
    public Block decode(InputStream in) throws IOException {
      long rowOffset = VarInt.decodeLong(in) - 1;
      int rows = VarInt.decodeInt(in);
      double[][] means = new double[VarInt.decodeInt(in)][];
      for (int i = 0; i < means.length; i++) {
        means[i] = nullable(in);
      }
      return new Block(rowOffset, rows, means, nullable(in), nullable(in), StringUtf8Coder.of().decode(in));
    }

    private static void nullable(double[] values, OutputStream out) throws IOException {
      BooleanCoder.of().encode(values != null, out);
      if (values != null) {
        DoubleArrayCoder.of().encode(values, out);
      }
    }

    private static double[] nullable(InputStream in) throws IOException {
      return BooleanCoder.of().decode(in) ? DoubleArrayCoder.of().decode(in) : null;
    }

    @Override
    public void verifyDeterministic() {}
  }
}
