package dev.ntk.pipelines.figures;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.pipelines.Ntk;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.zip.GZIPOutputStream;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Figure 3 on a small synthetic data set in Fashion-MNIST's files (6 x 6 images whose label is
 * where a bright pixel is): its picture, its data arrays, and each point equal to what {@code ntk
 * predict} gives on the same images.
 */
class Figure3Test {
  private static final int SIDE = 6;
  private static final int CLASSES = 10;

  @TempDir Path dir;
  private Path data;
  private Path models;
  private byte[][] trainImages;
  private int[] trainLabels;
  private byte[][] testImages;
  private int[] testLabels;

  record Result(int status, String out, String err) {}

  @BeforeEach
  void dataSet() throws IOException {
    data = Files.createDirectories(dir.resolve("data"));
    SplittableRandom r = new SplittableRandom(3);
    trainLabels = new int[40];
    trainImages = images(r, trainLabels);
    testLabels = new int[20];
    testImages = images(r, testLabels);
    writeImages(data.resolve("train-images-idx3-ubyte.gz"), trainImages);
    writeLabels(data.resolve("train-labels-idx1-ubyte.gz"), trainLabels);
    writeImages(data.resolve("t10k-images-idx3-ubyte.gz"), testImages);
    writeLabels(data.resolve("t10k-labels-idx1-ubyte.gz"), testLabels);
    models = Files.createDirectories(dir.resolve("models"));
    Files.writeString(models.resolve("fc.json"), """
        {"serial": [{"Flatten": {}}, {"Dense": {"out_dim": 64, "W_std": 1.4, "b_std": 0.1}}, {"Relu": {}},
                    {"Dense": {"out_dim": 10, "W_std": 1.4, "b_std": 0.1}}]}""");
    Files.writeString(models.resolve("cnn.json"), """
        {"serial": [{"Conv": {"out_chan": 8, "filter_shape": [3, 3], "padding": "SAME", "W_std": 1.4}},
                    {"Relu": {}}, {"Flatten": {}}, {"Dense": {"out_dim": 10, "W_std": 1.4, "b_std": 0.1}}]}""");
    Files.writeString(models.resolve("wrn.json"), """
        {"serial": [{"Conv": {"out_chan": 8, "filter_shape": [3, 3], "strides": [2, 2], "padding": "SAME"}},
                    {"serial": [{"FanOut": {"num": 2}}, {"parallel": [{"serial": [{"Relu": {}},
                      {"Conv": {"out_chan": 8, "filter_shape": [3, 3], "padding": "SAME"}}]}, {"Identity": {}}]},
                      {"FanInSum": {}}]},
                    {"Relu": {}}, {"GlobalAvgPool": {}}, {"Dense": {"out_dim": 10}}]}""");
  }

  @Test
  void pointsEqualPredictAndThePictureHasItsSize() throws IOException {
    Path out = dir.resolve("fig");
    Result r = figure3("--data", data, "--models", models, "--fc-sizes", "10,40", "--cnn-sizes", "20",
        "--wrn-sizes", "8", "--test", 20, "--out", out);
    assertEquals(0, r.status(), r.err());
    BufferedImage png = ImageIO.read(out.resolve("figure3.png").toFile());
    assertEquals(2 * Figures.PANEL_WIDTH, png.getWidth());
    assertEquals(Figures.PANEL_HEIGHT, png.getHeight());
    assertArrayEquals(new double[] {10, 40}, Npy.read(out.resolve("fc_sizes.npy")).data());
    for (String net : new String[] {"fc", "cnn", "wrn"}) {
      int sizes = net.equals("fc") ? 2 : 1;
      for (String what : new String[] {"accuracy", "mse", "seconds"}) {
        assertArrayEquals(new long[] {2, sizes}, Npy.readHeader(out.resolve(net + "_" + what + ".npy")).shape(),
            net + " " + what);
      }
    }
    // each point is ntk predict on the same images and targets
    double[] accuracy = Npy.read(out.resolve("fc_accuracy.npy")).data();
    double[] mse = Npy.read(out.resolve("fc_mse.npy")).data();
    Path xTrain = npy("x_train.npy", trainImages, 40);
    Path xTest = npy("x_test.npy", testImages, 20);
    Path yTrain = dir.resolve("y_train.npy");
    double[] y = new double[40 * CLASSES];
    for (int i = 0; i < 40; i++) {
      for (int c = 0; c < CLASSES; c++) {
        y[i * CLASSES + c] = (trainLabels[i] == c ? 0.9 : -0.1);
      }
    }
    Npy.write(yTrain, new NpyArray(new long[] {40, CLASSES}, NpyDType.FLOAT64, y));
    for (int g = 0; g < 2; g++) {
      Path p = dir.resolve("predict-" + g);
      Result predict = ntk("predict", "--model", models.resolve("fc.json"), "--x-train", xTrain, "--y-train", yTrain,
          "--x-test", xTest, "--get", g == 0 ? "nngp" : "ntk", "--out", p);
      assertEquals(0, predict.status(), predict.err());
      double[] mean = Npy.read(p.resolve("mean.npy")).data();
      int right = 0;
      double squares = 0;
      for (int i = 0; i < 20; i++) {
        int best = 0;
        for (int c = 0; c < CLASSES; c++) {
          best = mean[i * CLASSES + c] > mean[i * CLASSES + best] ? c : best;
          double d = mean[i * CLASSES + c] - (testLabels[i] == c ? 0.9 : -0.1);
          squares += d * d;
        }
        right += best == testLabels[i] ? 1 : 0;
      }
      assertEquals(right / 20.0, accuracy[g * 2 + 1], 1e-12, "fc accuracy at N = 40, kernel " + g);
      assertEquals(squares / (20.0 * CLASSES), mse[g * 2 + 1], 1e-9, "fc MSE at N = 40, kernel " + g);
      assertTrue(accuracy[g * 2 + 1] > 0.5, "the bright pixel is learnable: " + accuracy[g * 2 + 1]);
    }
    assertTrue(r.out().contains("figure3: wrn ntk N = 8"), r.out());
  }

  @Test
  void badDataIsOneLineWithExitTwo() throws IOException {
    Result sizes = figure3("--data", data, "--models", models, "--fc-sizes", "20,10", "--out", dir.resolve("bad"));
    assertEquals(2, sizes.status(), sizes.err());
    assertTrue(sizes.err().contains("increasing"), sizes.err());
    Result many = figure3("--data", data, "--models", models, "--fc-sizes", "100", "--cnn-sizes", "",
        "--wrn-sizes", "", "--test", 20, "--out", dir.resolve("bad"));
    assertEquals(2, many.status(), many.err());
    assertTrue(many.err().contains("fewer than"), many.err());
    Files.write(data.resolve("t10k-labels-idx1-ubyte.gz"), new byte[] {1, 2, 3});
    Result r = figure3("--data", data, "--models", models, "--fc-sizes", "10", "--cnn-sizes", "", "--wrn-sizes", "",
        "--test", 20, "--out", dir.resolve("bad"));
    assertEquals(2, r.status(), r.err());
    assertTrue(r.err().startsWith("figure3: " + data.resolve("t10k-labels-idx1-ubyte.gz")), r.err());
    assertFalse(r.err().contains("\tat "), r.err());
  }

  /** Images whose label {@code c} is a bright pixel at position {@code 3 c} over a noisy background. */
  private static byte[][] images(SplittableRandom r, int[] labels) {
    byte[][] images = new byte[labels.length][SIDE * SIDE];
    for (int i = 0; i < labels.length; i++) {
      labels[i] = r.nextInt(CLASSES);
      for (int p = 0; p < SIDE * SIDE; p++) {
        images[i][p] = (byte) r.nextInt(60);
      }
      images[i][3 * labels[i]] = (byte) 250;
    }
    return images;
  }

  private static void writeImages(Path file, byte[][] images) throws IOException {
    try (DataOutputStream out = new DataOutputStream(new GZIPOutputStream(Files.newOutputStream(file)))) {
      out.writeInt(0x803);
      out.writeInt(images.length);
      out.writeInt(SIDE);
      out.writeInt(SIDE);
      for (byte[] image : images) {
        out.write(image);
      }
    }
  }

  private static void writeLabels(Path file, int[] labels) throws IOException {
    try (DataOutputStream out = new DataOutputStream(new GZIPOutputStream(Files.newOutputStream(file)))) {
      out.writeInt(0x801);
      out.writeInt(labels.length);
      for (int label : labels) {
        out.write(label);
      }
    }
  }

  /** The first {@code n} images standardized per image, {@code (n, 6, 6, 1)}. */
  private Path npy(String name, byte[][] images, int n) throws IOException {
    int size = SIDE * SIDE;
    double[] x = new double[n * size];
    for (int i = 0; i < n; i++) {
      double mean = 0;
      for (byte b : images[i]) {
        mean += (b & 0xff) / (double) size;
      }
      double var = 0;
      for (byte b : images[i]) {
        var += ((b & 0xff) - mean) * ((b & 0xff) - mean) / size;
      }
      for (int p = 0; p < size; p++) {
        x[i * size + p] = ((images[i][p] & 0xff) - mean) / Math.sqrt(var);
      }
    }
    Path file = dir.resolve(name);
    Npy.write(file, new NpyArray(new long[] {n, SIDE, SIDE, 1}, NpyDType.FLOAT64, x));
    return file;
  }

  private static Result figure3(Object... args) {
    return run(true, args);
  }

  private static Result ntk(Object... args) {
    return run(false, args);
  }

  private static Result run(boolean figure, Object... args) {
    ByteArrayOutputStream o = new ByteArrayOutputStream();
    ByteArrayOutputStream e = new ByteArrayOutputStream();
    String[] strings = new String[args.length];
    for (int i = 0; i < args.length; i++) {
      strings[i] = args[i].toString();
    }
    PrintStream out = new PrintStream(o, true, StandardCharsets.UTF_8);
    PrintStream err = new PrintStream(e, true, StandardCharsets.UTF_8);
    int status = figure ? Figure3.run(strings, out, err) : Ntk.run(strings, out, err);
    return new Result(status, o.toString(StandardCharsets.UTF_8), e.toString(StandardCharsets.UTF_8));
  }
}
