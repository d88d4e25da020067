package dev.ntk.transforms;

import org.apache.beam.sdk.options.Default;
import org.apache.beam.sdk.options.Description;
import org.apache.beam.sdk.options.PipelineOptions;

/**
 * The tile settings of a pipeline as Beam flags, for every runner: {@code --tileRows}, {@code
 * --maxTileBytes}, {@code --dtype}, {@code --backend} and {@code --tileDirectory}. Registered with
 * {@code PipelineOptionsFactory} ({@link NtkPipelineOptionsRegistrar}), so that {@code fromArgs}
 * accepts them beside {@code --runner} and the runner's own flags. {@link Kernels} reads each setting
 * that its {@code withX} methods left unset from the pipeline's options; {@code KernelPipeline} reads
 * them all; {@code bin/ntk} takes them as its own flags ({@code --tile}, {@code --max-tile-bytes},
 * {@code --dtype}, {@code --backend}).
 *
 * <pre>{@code
 * Pipeline p = Pipeline.create(PipelineOptionsFactory.fromArgs(args).withValidation().create());
 * // with --tileRows=512 --dtype=float32 --tileDirectory=gs://bucket/tiles among args:
 * PCollection<Tile> tiles = examples.apply("Kernel", Kernels.of(model));
 * }</pre>
 */
public interface NtkPipelineOptions extends PipelineOptions {
  @Description("Rows of x1 and x2 per tile, at least 1. Unset: KernelPipeline sizes tiles to --maxTileBytes and the "
      + "model's work per entry, as bin/ntk kernel's --tile auto does; Kernels takes 256.")
  Integer getTileRows();

  void setTileRows(Integer value);

  @Description("Memory one tile may take while it is computed, in bytes (default 1 GiB): KernelPipeline reduces "
      + "--tileRows until a tile fits (bin/ntk's --max-tile-bytes).")
  @Default.Long(1L << 30)
  long getMaxTileBytes();

  void setMaxTileBytes(long value);

  @Description("The dtype kernels are computed in and tiles stored with: float64 or float32.")
  @Default.String("float64")
  String getDtype();

  void setDtype(String value);

  @Description("Where tiles are computed: auto (cuda when a CUDA device is visible, else cpu), cpu, tensorflow "
      + "or cuda.")
  @Default.String("auto")
  String getBackend();

  void setBackend(String value);

  @Description("Where finished tiles are read from and new ones written to, so that a failed run resumes (a path or "
      + "URI of any Beam file system). Unset: KernelPipeline uses <out>/tiles; Kernels keeps no tiles.")
  String getTileDirectory();

  void setTileDirectory(String value);
}
