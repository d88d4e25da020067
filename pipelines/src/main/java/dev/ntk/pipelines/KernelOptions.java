package dev.ntk.pipelines;

import dev.ntk.transforms.NtkPipelineOptions;
import org.apache.beam.sdk.options.Default;
import org.apache.beam.sdk.options.Description;
import org.apache.beam.sdk.options.Validation;

/**
 * The options of {@link KernelPipeline}, read with {@code PipelineOptionsFactory.fromArgs} together
 * with every Beam and runner option ({@code --runner}, {@code --flinkMaster}, {@code --project},
 * {@code --tempLocation}...): its inputs and outputs here, its tile settings ({@code --tileRows},
 * {@code --maxTileBytes}, {@code --dtype}, {@code --backend}, {@code --tileDirectory}) those of
 * {@link NtkPipelineOptions}. Paths are paths or URIs of any Beam file system.
 *
 * <pre>{@code
 * java -cp ... dev.ntk.pipelines.KernelPipeline --model=gs://b/model.json --x1=gs://b/x.npy \
 *     --out=gs://b/run --runner=DataflowRunner --project=P --region=R --tempLocation=gs://b/tmp
 * }</pre>
 */
public interface KernelOptions extends NtkPipelineOptions {
  @Description("The model file (JSON, docs/MODEL_SPEC.md).")
  @Validation.Required
  String getModel();

  void setModel(String value);

  @Description("The inputs x1: a .npy file, batch first.")
  @Validation.Required
  String getX1();

  void setX1(String value);

  @Description("The inputs x2 (default: the kernel of x1 with itself).")
  String getX2();

  void setX2(String value);

  @Description("The output directory: <out>/nngp.npy, <out>/ntk.npy and the tiles under <out>/tiles/.")
  @Validation.Required
  String getOut();

  void setOut(String value);

  @Description("The kernels to write: nngp, ntk or nngp,ntk.")
  @Default.String("nngp,ntk")
  String getGet();

  void setGet(String value);

  @Description("Inputs padded with this constant (neural-tangents' mask_constant): entries equal to it are zeroed "
      + "and positions whose channels all equal it are left out of the kernels. Unset: no masking.")
  Double getMaskConstant();

  void setMaskConstant(Double value);

  @Description("The graph patterns of x1's rows for a model with Aggregate (.npy, batch first: (N1, nodes..., "
      + "nodes...), or (N1, n_edges, 2) edges with implementation SPARSE), as ntk kernel's --pattern1.")
  String getPattern1();

  void setPattern1(String value);

  @Description("The graph patterns of x2's rows (with --x2), as ntk kernel's --pattern2.")
  String getPattern2();

  void setPattern2(String value);
}
