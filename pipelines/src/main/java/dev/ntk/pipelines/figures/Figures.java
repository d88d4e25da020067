package dev.ntk.pipelines.figures;

import dev.ntk.io.AtomicFiles;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.stream.IntStream;
import javax.imageio.ImageIO;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;
import picocli.CommandLine;

/**
 * Line charts with shaded bands and scatter points, drawn headless into PNG files with XChart:
 * what the paper's figures need, and no more. A {@link Panel} is one chart; {@link #writePng}
 * puts panels side by side in one picture.
 *
 * <pre>{@code
 * Figures.Panel panel = new Figures.Panel("NTK posterior", "x", "f(x)",
 *     List.of(new Figures.Curve("NTK", xTest, mean, sigma, Figures.BLUE)),
 *     List.of(new Figures.Points("train", xTrain, yTrain, Color.BLACK)));
 * Figures.writePng(List.of(panel), Path.of("out/figure.png"));
 * }</pre>
 */
public final class Figures {
  static {
    // before any AWT class loads: no display is needed, or used
    System.setProperty("java.awt.headless", "true");
  }

  /** The size of one panel in pixels. */
  public static final int PANEL_WIDTH = 640;
  public static final int PANEL_HEIGHT = 480;

  /** Colours that stay apart in print and for colour-blind readers (Okabe and Ito's palette). */
  public static final Color BLUE = new Color(0, 114, 178);
  public static final Color ORANGE = new Color(230, 159, 0);
  public static final Color GREEN = new Color(0, 158, 115);
  public static final Color VERMILION = new Color(213, 94, 0);
  public static final Color PURPLE = new Color(204, 121, 167);
  public static final Color GREY = new Color(120, 120, 120);

  /** The opacity of a band (of 255). */
  private static final int BAND_ALPHA = 50;

  private Figures() {}

  /**
   * A curve {@code y(x)}, drawn as a line; with {@code sigma} (not null) the band {@code y +- 2
   * sigma} is shaded beneath it in the same colour. Points need not be sorted by {@code x}.
   */
  public record Curve(String name, double[] x, double[] y, double[] sigma, Color color) {
    public Curve {
      if (x.length != y.length || (sigma != null && sigma.length != x.length)) {
        throw new IllegalArgumentException(name + ": x, y and sigma need one value per point, got " + x.length
            + ", " + y.length + (sigma == null ? "" : ", " + sigma.length));
      }
    }

    /** A curve without a band. */
    public static Curve line(String name, double[] x, double[] y, Color color) {
      return new Curve(name, x, y, null, color);
    }
  }

  /** Points drawn as filled circles. */
  public record Points(String name, double[] x, double[] y, Color color) {
    public Points {
      if (x.length != y.length) {
        throw new IllegalArgumentException(name + ": x and y need one value per point, got " + x.length + " and "
            + y.length);
      }
    }
  }

  /**
   * One chart: its title, axis labels, curves (bands first, then lines) and points on top; with
   * {@code logLog} both axes are logarithmic (and every value must be positive).
   */
  public record Panel(String title, String xLabel, String yLabel, List<Curve> curves, List<Points> points,
      boolean logLog) {
    public Panel {
      curves = List.copyOf(curves);
      points = List.copyOf(points);
    }

    /** A chart with linear axes. */
    public Panel(String title, String xLabel, String yLabel, List<Curve> curves, List<Points> points) {
      this(title, xLabel, yLabel, curves, points, false);
    }
  }

  /**
   * Runs a figure's command line with {@code args}; returns 0, 2 for a problem with the inputs
   * (one line on {@code err}, prefixed with the command's name), or 1 for an internal failure.
   */
  public static int run(Object command, String[] args, PrintStream out, PrintStream err) {
    CommandLine cli = new CommandLine(command).setCaseInsensitiveEnumValuesAllowed(true);
    String name = cli.getCommandName();
    cli.setOut(new PrintWriter(out, true));
    cli.setErr(new PrintWriter(err, true));
    cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
      if (e instanceof NoSuchFileException) {
        err.println(name + ": no such file: " + e.getMessage());
        return 2;
      }
      if (e instanceof IllegalArgumentException || e instanceof IOException) {
        err.println(name + ": " + e.getMessage());
        return 2;
      }
      err.println(name + ": internal error: " + e);
      e.printStackTrace(err);
      return 1;
    });
    return cli.execute(args);
  }

  /** The panels side by side, each {@link #PANEL_WIDTH} by {@link #PANEL_HEIGHT} pixels. */
  public static BufferedImage draw(List<Panel> panels) {
    if (panels.isEmpty()) {
      throw new IllegalArgumentException("a figure needs at least one panel");
    }
    BufferedImage image = new BufferedImage(PANEL_WIDTH * panels.size(), PANEL_HEIGHT, BufferedImage.TYPE_INT_RGB);
    Graphics2D g = image.createGraphics();
    try {
      for (int i = 0; i < panels.size(); i++) {
        g.drawImage(BitmapEncoder.getBufferedImage(chart(panels.get(i))), i * PANEL_WIDTH, 0, null);
      }
    } finally {
      g.dispose();
    }
    return image;
  }

  /** Draws the panels side by side into {@code png}, atomically; creates its directory. */
  public static void writePng(List<Panel> panels, Path png) throws IOException {
    BufferedImage image = draw(panels);
    AtomicFiles.write(png, tmp -> {
      try (var out = Files.newOutputStream(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
        if (!ImageIO.write(image, "png", out)) {
          throw new IOException("no PNG writer in this Java runtime");
        }
      }
    });
  }

  private static XYChart chart(Panel panel) {
    XYChart chart = new XYChartBuilder().width(PANEL_WIDTH).height(PANEL_HEIGHT).title(panel.title())
        .xAxisTitle(panel.xLabel()).yAxisTitle(panel.yLabel()).build();
    Styler styler = chart.getStyler();
    styler.setChartBackgroundColor(Color.WHITE);
    styler.setLegendPosition(Styler.LegendPosition.InsideNW);
    styler.setLegendBackgroundColor(new Color(255, 255, 255, 200));
    styler.setAntiAlias(true);
    chart.getStyler().setPlotGridLinesColor(new Color(230, 230, 230));
    chart.getStyler().setMarkerSize(8);
    chart.getStyler().setXAxisLogarithmic(panel.logLog());
    chart.getStyler().setYAxisLogarithmic(panel.logLog());
    for (Curve c : panel.curves()) {
      if (c.sigma() != null) {
        band(chart, c);
      }
    }
    for (Curve c : panel.curves()) {
      int[] order = sortedBy(c.x());
      XYSeries s = chart.addSeries(c.name(), pick(c.x(), order), pick(c.y(), order));
      s.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
      s.setMarker(SeriesMarkers.NONE);
      s.setLineColor(c.color());
      s.setLineWidth(2f);
    }
    for (Points p : panel.points()) {
      XYSeries s = chart.addSeries(p.name(), p.x(), p.y());
      s.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
      s.setMarker(SeriesMarkers.CIRCLE);
      s.setMarkerColor(p.color());
    }
    return chart;
  }

  /** The band {@code y +- 2 sigma} as a closed polygon: along the upper edge, back along the lower. */
  private static void band(XYChart chart, Curve c) {
    int[] order = sortedBy(c.x());
    int n = order.length;
    double[] xs = new double[2 * n];
    double[] ys = new double[2 * n];
    for (int k = 0; k < n; k++) {
      int i = order[k];
      int j = order[n - 1 - k];
      xs[k] = c.x()[i];
      ys[k] = c.y()[i] + 2 * c.sigma()[i];
      xs[n + k] = c.x()[j];
      ys[n + k] = c.y()[j] - 2 * c.sigma()[j];
    }
    XYSeries s = chart.addSeries(c.name() + " \u00b1 2\u03c3", xs, ys);
    s.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.PolygonArea);
    s.setMarker(SeriesMarkers.NONE);
    Color fill = new Color(c.color().getRed(), c.color().getGreen(), c.color().getBlue(), BAND_ALPHA);
    s.setFillColor(fill);
    s.setLineColor(fill);
    s.setShowInLegend(false);
  }

  private static int[] sortedBy(double[] x) {
    return IntStream.range(0, x.length).boxed().sorted(Comparator.comparingDouble(i -> x[i]))
        .mapToInt(Integer::intValue).toArray();
  }

  private static double[] pick(double[] values, int[] order) {
    return Arrays.stream(order).mapToDouble(i -> values[i]).toArray();
  }
}
