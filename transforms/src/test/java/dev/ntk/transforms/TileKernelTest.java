package dev.ntk.transforms;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ntk.io.Npy;
import dev.ntk.io.TileChecksumException;
import dev.ntk.io.TileFiles;
import dev.ntk.io.NpyDType;
import dev.ntk.io.TileKey;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.engine.Backend;
import dev.ntk.kernels.linalg.DenseMatrix;
import dev.ntk.kernels.predict.ConjugateGradients;
import dev.ntk.kernels.predict.KernelOperator;
import dev.ntk.runners.Runners;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Random;
import org.apache.beam.sdk.Pipeline;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Exact inference by conjugate gradients on the tile files ({@link TileKernel}, {@link CgFn}): its
 * mean is the Cholesky path's, through the pipeline and from the tiles alone, the operator's
 * products, diagonal and columns are those of the kernel the tiles assemble, a product reads each
 * tile's values once, and a tile changed on disk fails its checksum on the first product.
 */
class TileKernelTest {
  @TempDir Path dir;

  @ParameterizedTest(name = "{0} {1} tile={2}")
  @CsvSource({
    "NTK, float64, 7",
    "NNGP, float32, 16",
  })
  void conjugateGradientsOnTheTilesGiveTheCholeskyMean(Get get, String dtypeName, int tile) throws IOException {
    NpyDType dtype = NpyDType.fromName(dtypeName);
    int n = 40;
    int outputs = 2;
    Path xTrain = Fixtures.randomNpy(dir, "x_train.npy", n, 3, 50);
    Path yTrain = Fixtures.randomNpy(dir, "y_train.npy", n, outputs, 51);
    Path xTest = Fixtures.randomNpy(dir, "x_test.npy", 7, 3, 52);
    Path store = dir.resolve("tiles");
    TileSet dd = TileSet.create(Fixtures.MODEL, xTrain, null, tile, dtype, store);
    TileSet td = TileSet.create(Fixtures.MODEL, xTest, xTrain, tile, dtype, store);
    PredictSettings settings = PredictSettings.exact(get, 1e-3);
    Path cholesky = dir.resolve("cholesky");
    Pipeline a = Fixtures.pipeline(Runners.Kind.DIRECT, 2);
    a.apply(GpInference.of(dd, td, null, yTrain, settings, cholesky));
    Fixtures.run(a);
    Path cg = dir.resolve("cg");
    Pipeline b = Fixtures.pipeline(Runners.Kind.DIRECT, 2);
    b.apply(GpInference.of(dd, td, null, yTrain, settings, cg)
        .withConjugateGradients(new ConjugateGradients.Settings(1e-10, 1000, 10)));
    Fixtures.run(b);
    double err = Fixtures.relativeError(Npy.read(cg.resolve("mean.npy")).data(),
        Npy.read(cholesky.resolve("mean.npy")).data());
    // float32 tile sets are factored in float32 (GpPosterior.factor): CG's float64 iterations on the same
    // tiles agree with that factor to float32's precision, float64 ones to the CG tolerance
    double tolerance = dtype == NpyDType.FLOAT32 ? 1e-4 : 1e-6;
    assertTrue(err <= tolerance, "relative error of the mean " + err);

    // the operator on the tiles the pipelines left, against the kernel they assemble
    try (DenseMatrix g = DenseMatrix.zeros(n, n)) {
      for (TileKey k : dd.plan()) {
        FactorFn.place(g, k, InferenceChecks.kernel(dd.read(k), get.key(), "tiles", "the test"));
      }
      TileKernel tiles = new TileKernel(dd, get.key(), dd.plan(), Backend.CPU);
      KernelOperator memory = KernelOperator.of(g);
      assertArrayEquals(memory.diagonal(), tiles.diagonal(), 0);
      double[] x = new double[n * 3];
      Random r = new Random(53);
      for (int i = 0; i < x.length; i++) {
        x[i] = r.nextGaussian();
      }
      long bytes = 0;
      for (TileKey k : dd.plan()) {
        bytes += (long) k.size() * dtype.bytes();
      }
      try (DenseMatrix v = DenseMatrix.of(n, 3, x); DenseMatrix want = memory.multiply(v);
          DenseMatrix got = tiles.multiply(v)) {
        assertTrue(Fixtures.relativeError(got.toArray(), want.toArray()) <= 1e-13, "product");
        // a product reads each tile's values of the one kernel once (both kernels are stored)
        assertEquals(bytes, tiles.bytesRead(), tiles.cost());
        assertTrue(tiles.cost().startsWith(dd.plan().size() + " tiles, "), tiles.cost());
      }
      int[] pivots = {3, 0, 39, 17};
      try (DenseMatrix want = memory.columns(pivots); DenseMatrix got = tiles.columns(pivots)) {
        // computed by the plan in the tiles' dtype, not read from them; a pivot's own entry is computed as
        // between two inputs, where the correlation's rounding near 1 is amplified (arccos), not as a diagonal
        double tol = dtype == NpyDType.FLOAT64 ? 1e-8 : 1e-6;
        double columnErr = Fixtures.relativeError(got.toArray(), want.toArray());
        assertTrue(columnErr <= tol, "columns: relative error " + columnErr);
      } finally {
        tiles.close();
      }

      // a tile whose values were changed on disk fails its checksum on the first product of a new operator
      TileKey victim = dd.plan().get(dd.plan().size() - 1);
      Path file = dd.file(victim);
      long at;
      try (SeekableByteChannel channel = Files.newByteChannel(file)) {
        at = TileFiles.layout(channel, file.toString()).dataOffsets()[0] + 3;
      }
      try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
        ByteBuffer one = ByteBuffer.allocate(1);
        channel.read(one, at);
        one.put(0, (byte) ~one.get(0)).rewind();
        channel.write(one, at);
      }
      TileKernel corrupted = new TileKernel(dd, get.key(), dd.plan(), Backend.CPU);
      try (DenseMatrix v = DenseMatrix.of(n, 3, x)) {
        UncheckedIOException e = assertThrows(UncheckedIOException.class, () -> corrupted.multiply(v).close());
        assertInstanceOf(TileChecksumException.class, e.getCause());
        assertTrue(e.getCause().getMessage().contains(victim.fileName()), e.getCause().getMessage());
      } finally {
        corrupted.close();
      }
    }
  }
}
