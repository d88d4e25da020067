import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.platform.engine.discovery.DiscoverySelectors;
import org.junit.platform.launcher.Launcher;
import org.junit.platform.launcher.LauncherDiscoveryRequest;
import org.junit.platform.launcher.TestExecutionListener;
import org.junit.platform.launcher.TestIdentifier;
import org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder;
import org.junit.platform.launcher.core.LauncherFactory;
import org.junit.platform.launcher.listeners.SummaryGeneratingListener;
import org.junit.platform.launcher.listeners.TestExecutionSummary;

/**
 * The kernels module's cuda test classes run on the device machine (bench/gpu/check.sh, which has no
 * Maven): JUnit's launcher on the compiled test classes that prepare.sh carries, with {@code
 * ntk.cuda.device} set (0, or host), so that {@code CudaEngineModelsTest} and {@code CudaEngineTest}
 * compare the cpu engine and closed forms with the generated kernels compiled by NVRTC and run on
 * GPU 0 (or, with {@code --device host}, compiled by gcc, which is how prepare.sh's smoke run checks
 * this runner), and {@code CudaDeviceTest} the GPU with the host-compiled source. Writes {@code OUT/tests.md} (each
 * test, its time and its failure) and exits 1 if a test failed or none ran.
 *
 * <pre>
 * java -cp ... GpuTests --out OUT [--device cuda|host] [--classes dev.ntk.kernels.CudaEngineModelsTest,...]
 * </pre>
 */
public final class GpuTests {
  private GpuTests() {}

  public static void main(String[] args) throws Exception {
    String out = "bench/out/gpu";
    String device = "cuda";
    String classes = "dev.ntk.kernels.CudaEngineModelsTest,dev.ntk.kernels.cuda.CudaEngineTest,"
        + "dev.ntk.kernels.cuda.CudaDeviceTest";
    for (int k = 0; k + 1 < args.length; k += 2) {
      switch (args[k]) {
        case "--out" -> out = args[k + 1];
        case "--device" -> device = args[k + 1];
        case "--classes" -> classes = args[k + 1];
        default -> throw new IllegalArgumentException("unknown option " + args[k]);
      }
    }
    System.setProperty("ntk.cuda.device", device.equals("cuda") ? "0" : device);
    LauncherDiscoveryRequestBuilder request = LauncherDiscoveryRequestBuilder.request();
    for (String c : classes.split(",")) {
      request.selectors(DiscoverySelectors.selectClass(c.trim()));
    }
    LauncherDiscoveryRequest built = request.build();
    List<String> rows = new ArrayList<>();
    TestExecutionListener timing = new TestExecutionListener() {
      private final java.util.Map<String, Long> started = new java.util.HashMap<>();

      @Override
      public void executionStarted(TestIdentifier id) {
        started.put(id.getUniqueId(), System.nanoTime());
      }

      @Override
      public void executionFinished(TestIdentifier id, org.junit.platform.engine.TestExecutionResult result) {
        if (!id.isTest()) {
          return;
        }
        double s = (System.nanoTime() - started.get(id.getUniqueId())) / 1e9;
        String why = result.getThrowable().map(t -> t.toString().replace('\n', ' ').replace('|', '/')).orElse("");
        String row = String.format(java.util.Locale.ROOT, "| %s | %s | %.2f | %s |", id.getDisplayName(),
            result.getStatus(), s, why);
        System.out.println(row);
        rows.add(row);
      }
    };
    SummaryGeneratingListener summary = new SummaryGeneratingListener();
    Launcher launcher = LauncherFactory.create();
    launcher.execute(built, timing, summary);
    TestExecutionSummary s = summary.getSummary();
    StringWriter failures = new StringWriter();
    s.printFailuresTo(new PrintWriter(failures), 25);
    String md = "Tests " + classes + " on device " + device + ": " + s.getTestsSucceededCount() + " passed, "
        + s.getTestsFailedCount() + " failed, " + s.getTestsAbortedCount() + " aborted, of "
        + s.getTestsFoundCount() + "\n\n| test | result | s | failure |\n|---|---|---|---|\n"
        + String.join("\n", rows) + "\n";
    Files.createDirectories(Path.of(out));
    Files.writeString(Path.of(out, "tests.md"), md + (failures.toString().isBlank() ? "" : "\n```\n" + failures
        + "```\n"));
    System.out.print(md);
    System.out.print(failures);
    boolean ok = s.getTestsFoundCount() > 0 && s.getTotalFailureCount() == 0 && s.getTestsAbortedCount() == 0;
    System.exit(ok ? 0 : 1);
  }
}
