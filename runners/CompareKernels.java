import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyHeader;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * {@code java -cp <ntk class path> runners/CompareKernels.java REF.npy OTHER.npy}: prints the
 * largest difference between two kernels relative to the largest entry of the first, and whether
 * they are bitwise equal; exits 1 if the shapes differ or the difference exceeds 1e-12. Reads row
 * bands, so kernels of any size fit. Used by runners/flink-cluster-check.sh.
 */
public class CompareKernels {
  public static void main(String[] args) throws Exception {
    Path ref = Path.of(args[0]);
    Path other = Path.of(args[1]);
    NpyHeader a = Npy.readHeader(ref);
    NpyHeader b = Npy.readHeader(other);
    if (!Arrays.equals(a.shape(), b.shape())) {
      System.out.println(other + ": shape " + Arrays.toString(b.shape()) + ", expected "
          + Arrays.toString(a.shape()));
      System.exit(1);
    }
    long rows = a.shape()[0];
    int band = 256;
    double maxDiff = 0;
    double maxAbs = 0;
    boolean bitwise = true;
    for (long r = 0; r < rows; r += band) {
      int n = (int) Math.min(band, rows - r);
      NpyArray x = Npy.readRows(ref, r, n);
      NpyArray y = Npy.readRows(other, r, n);
      for (int i = 0; i < x.data().length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(x.data()[i] - y.data()[i]));
        maxAbs = Math.max(maxAbs, Math.abs(x.data()[i]));
        bitwise &= Double.doubleToRawLongBits(x.data()[i]) == Double.doubleToRawLongBits(y.data()[i]);
      }
    }
    double rel = maxDiff / maxAbs;
    System.out.printf("%s vs %s: max abs difference / max abs entry %.2g%s%n", other, ref, rel,
        bitwise ? " (bitwise equal)" : "");
    System.exit(rel <= 1e-12 ? 0 : 1);
  }
}
