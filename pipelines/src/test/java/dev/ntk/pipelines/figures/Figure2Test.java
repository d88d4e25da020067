package dev.ntk.pipelines.figures;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Figure 2 at tiny sizes on the WideResNet of {@code examples/wideresnet}: its picture, the shapes
 * of its data, and Monte Carlo kernels that approach the analytic ones as samples grow.
 */
class Figure2Test {
  private static final Path WIDERESNET = Path.of("../examples/wideresnet/model.json").toAbsolutePath().normalize();

  @TempDir Path dir;

  record Result(int status, String out, String err) {}

  @Test
  void errorsFallWithSamplesAndThePictureHasTwoPanels() throws IOException {
    Path out = dir.resolve("fig");
    Result r = figure2("--model", WIDERESNET.toString(), "--images", "2", "--image-size", "4", "--widths", "4,16",
        "--samples", "2,8,32", "--seed", "1", "--out", out.toString());
    assertEquals(0, r.status(), r.err());
    System.out.print(r.out());
    BufferedImage image = ImageIO.read(out.resolve("figure2.png").toFile());
    assertNotNull(image, "figure2.png decodes");
    assertEquals(2 * Figures.PANEL_WIDTH, image.getWidth());
    assertEquals(Figures.PANEL_HEIGHT, image.getHeight());
    assertArrayEquals(new long[] {2, 4, 4, 3}, Npy.read(out.resolve("x.npy")).shape());
    assertArrayEquals(new double[] {2, 8, 32}, Npy.read(out.resolve("samples.npy")).data());
    assertArrayEquals(new double[] {4, 16}, Npy.read(out.resolve("widths.npy")).data());
    for (String get : new String[] {"nngp", "ntk"}) {
      NpyArray analytic = Npy.read(out.resolve(get + ".npy"));
      NpyArray mc = Npy.read(out.resolve(get + "_mc.npy"));
      NpyArray error = Npy.read(out.resolve(get + "_error.npy"));
      assertArrayEquals(new long[] {2, 2}, analytic.shape(), get);
      assertArrayEquals(new long[] {2, 3, 2, 2}, mc.shape(), get);
      assertArrayEquals(new long[] {2, 3}, error.shape(), get);
      for (int w = 0; w < 2; w++) {
        for (int k = 0; k < 3; k++) {
          double[] estimate = java.util.Arrays.copyOfRange(mc.data(), (w * 3 + k) * 4, (w * 3 + k + 1) * 4);
          assertEquals(Figure2.relativeDistance(estimate, analytic.data()), error.data()[w * 3 + k], 1e-12);
        }
        double first = error.data()[w * 3];
        double last = error.data()[w * 3 + 2];
        assertTrue(last < first, get + " width " + (w == 0 ? 4 : 16) + ": distance " + last + " after 32 samples, "
            + first + " after 2");
      }
      assertTrue(error.data()[5] < 0.25, get + ": distance " + error.data()[5] + " at width 16 after 32 samples");
    }
  }

  @Test
  void badListsAreUsageErrors() {
    Result r = figure2("--model", WIDERESNET.toString(), "--samples", "4,2", "--out", dir.resolve("f").toString());
    assertEquals(2, r.status(), r.err());
    assertEquals("figure2: sample counts must increase, got 2 after 4", r.err().strip());
    assertTrue(Files.notExists(dir.resolve("f")));
  }

  private static Result figure2(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int status = Figure2.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8));
    return new Result(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }
}
