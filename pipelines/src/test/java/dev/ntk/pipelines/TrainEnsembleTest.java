package dev.ntk.pipelines;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ntk.io.Npy;
import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The aim: an ensemble of finite networks trained by {@code ntk train} on the sine example
 * (learning rate 0.1, below its largest stable rate 0.32) matches {@code ntk predict --get ntk}
 * with the same {@code --t} and {@code --learning-rate}: in mean within its sampling error
 * (4 predicted standard deviations over {@code sqrt(K)}, plus 0.005 for the finite width's own
 * bias) and in variance within a factor of 2, at every test point, at initialization and after 50
 * and 100 steps.
 *
 * <p>Sized to run well under a minute on 2 cores: {@value #K} networks of width {@value #WIDTH} (the figure
 * uses 2048; the deviation of a finite network's NTK from its limit shrinks like {@code
 * 1/sqrt(width)}, and at 512 it is below the sampling error of 32 networks). With seeds 0..31 the
 * largest mean deviation is 2.3 sampling errors and the variance ratios lie in [0.58, 1.46].
 */
class TrainEnsembleTest {
  private static final int K = 32;
  private static final int WIDTH = 512;
  private static final Path SINE = Path.of("..", "examples", "sine");

  @TempDir Path dir;

  @Test
  void finiteEnsembleMatchesTheInfiniteNetwork() throws IOException {
    String times = "0,50,100";
    Object[] data = {"--model", SINE.resolve("model.json"), "--x-train", SINE.resolve("x_train.npy"),
        "--y-train", SINE.resolve("y_train.npy"), "--x-test", SINE.resolve("x_test.npy"),
        "--learning-rate", 0.1, "--t", times};
    TrainCommandTest.Result lr = TrainCommandTest.ntk("lr", "--model", SINE.resolve("model.json"), "--x-train",
        SINE.resolve("x_train.npy"));
    assertEquals(0, lr.status(), lr.err());
    assertTrue(Double.parseDouble(lr.out().trim()) > 0.1, "0.1 is below the largest stable rate " + lr.out());

    Path train = dir.resolve("train");
    TrainCommandTest.Result t = TrainCommandTest.ntk(concat(data, "train", "--ensemble", K, "--width", WIDTH,
        "--out", train));
    assertEquals(0, t.status(), t.err());
    assertTrue(!t.err().contains("warning"), t.err());
    Path predict = dir.resolve("predict");
    TrainCommandTest.Result p = TrainCommandTest.ntk(concat(data, "predict", "--get", "ntk", "--compute-cov",
        "--out", predict));
    assertEquals(0, p.status(), p.err());

    double[] outputs = Npy.read(train.resolve("test.npy")).data(); // (3, K, M, 1)
    double[] mean = Npy.read(predict.resolve("mean.npy")).data(); // (3, M, 1)
    double[] cov = Npy.read(predict.resolve("cov.npy")).data(); // (3, M, M)
    int m = 50;
    for (int ti = 0; ti < 3; ti++) {
      for (int i = 0; i < m; i++) {
        double sum = 0;
        double sumSq = 0;
        for (int k = 0; k < K; k++) {
          double f = outputs[(ti * K + k) * m + i];
          sum += f;
          sumSq += f * f;
        }
        double ensembleMean = sum / K;
        double ensembleVariance = (sumSq - K * ensembleMean * ensembleMean) / (K - 1);
        double predictedMean = mean[ti * m + i];
        double predictedVariance = cov[(ti * m + i) * m + i];
        String where = "t = " + times.split(",")[ti] + ", test point " + i;
        assertEquals(predictedMean, ensembleMean, 4 * Math.sqrt(predictedVariance / K) + 0.005, where + ": mean");
        double ratio = ensembleVariance / predictedVariance;
        assertTrue(ratio > 0.5 && ratio < 2, where + ": variance " + ensembleVariance + ", predicted "
            + predictedVariance);
      }
    }
  }

  private static Object[] concat(Object[] data, Object... command) {
    Object[] all = new Object[command.length + data.length];
    System.arraycopy(command, 0, all, 0, 1);
    System.arraycopy(data, 0, all, 1, data.length);
    System.arraycopy(command, 1, all, 1 + data.length, command.length - 1);
    return all;
  }
}
