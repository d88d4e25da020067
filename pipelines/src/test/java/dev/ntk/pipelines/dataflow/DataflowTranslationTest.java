package dev.ntk.pipelines.dataflow;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.api.services.dataflow.model.Job;
import com.google.api.services.dataflow.model.Step;
import com.google.auth.oauth2.AccessToken;
import com.google.auth.oauth2.GoogleCredentials;
import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.pipelines.KernelOptions;
import dev.ntk.pipelines.KernelPipeline;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;
import org.apache.beam.model.pipeline.v1.RunnerApi;
import org.apache.beam.runners.dataflow.DataflowPipelineTranslator;
import org.apache.beam.runners.dataflow.DataflowRunner;
import org.apache.beam.runners.dataflow.options.DataflowPipelineOptions;
import org.apache.beam.sdk.Pipeline;
import org.apache.beam.sdk.extensions.gcp.storage.NoopPathValidator;
import org.apache.beam.sdk.options.PipelineOptionsFactory;
import org.apache.beam.sdk.util.construction.Environments;
import org.apache.beam.sdk.util.construction.PipelineTranslation;
import org.apache.beam.sdk.util.construction.SdkComponents;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The kernel pipeline translates into a Google Cloud Dataflow job (only with {@code -Pdataflow}).
 * Nothing is submitted: there is no Google Cloud here, so the credentials are a dummy token and
 * the {@code gs://} locations are given so that nothing looks them up.
 */
class DataflowTranslationTest {
  @TempDir Path dir;

  @Test
  void theKernelPipelineTranslatesIntoADataflowJob() throws IOException {
    Path model = Files.writeString(dir.resolve("model.json"),
        "{\"serial\": [{\"Dense\": {\"out_dim\": 8}}, {\"Relu\": {}}, {\"Dense\": {\"out_dim\": 1}}]}");
    Path x = dir.resolve("x.npy");
    Npy.write(x, new NpyArray(new long[] {5, 2}, NpyDType.FLOAT64, new double[10]));

    PipelineOptionsFactory.register(KernelOptions.class);
    KernelOptions options = PipelineOptionsFactory.fromArgs(
        "--model=" + model, "--x1=" + x, "--out=" + dir.resolve("out"), "--tileRows=2",
        "--runner=DataflowRunner", "--project=ntk-test-project", "--region=europe-west1",
        "--tempLocation=gs://ntk-test-bucket/tmp", "--gcpTempLocation=gs://ntk-test-bucket/tmp",
        "--stagingLocation=gs://ntk-test-bucket/staging", "--jobName=ntk-kernel-test")
        .withValidation().as(KernelOptions.class);
    DataflowPipelineOptions dataflow = options.as(DataflowPipelineOptions.class);
    dataflow.setGcpCredential(GoogleCredentials.create(new AccessToken("not-a-token", null)));
    dataflow.setPathValidatorClass(NoopPathValidator.class);
    dataflow.setFilesToStage(List.of());

    Pipeline pipeline = KernelPipeline.build(options);
    DataflowRunner runner = DataflowRunner.fromOptions(dataflow);
    SdkComponents components = SdkComponents.create();
    components.registerEnvironment(
        Environments.createDockerEnvironment("apache/beam_java17_sdk:2.62.0"));
    RunnerApi.Pipeline proto = PipelineTranslation.toProto(pipeline, components, true);
    Job job = DataflowPipelineTranslator.fromOptions(dataflow)
        .translate(pipeline, proto, components, runner, List.of()).getJob();

    assertEquals("ntk-kernel-test", job.getName());
    List<String> steps = job.getSteps().stream().map(Step::getName).collect(Collectors.toList());
    String names = job.getSteps().stream().map(s -> String.valueOf(s.getProperties().get("user_name")))
        .collect(Collectors.joining("\n"));
    assertTrue(!steps.isEmpty(), "a job with steps");
    assertTrue(names.contains("Kernel/ComputeTiles"), names);
    assertTrue(names.contains("WriteKernels/StreamIntoNpy"), names);
  }
}
