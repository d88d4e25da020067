package dev.ntk.kernels.linalg;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;

/**
 * Chooses OpenBLAS' CPU kernels before the library is loaded. The OpenBLAS of the JavaCPP preset
 * (0.3.23) predates AMD's AVX-512 CPUs (Zen 4 and 5) and gives them its AVX2 ({@code Haswell})
 * kernels. On such a CPU this class sets {@code OPENBLAS_CORETYPE=SkylakeX}, OpenBLAS' AVX-512
 * kernels, in the process environment, where OpenBLAS reads it as it loads: {@code sgemm} of 2048 x
 * 784 x 2048 on one core of a 2-core AMD EPYC (Zen 5) took 0.073 s with {@code Haswell} and 0.036 s
 * with {@code SkylakeX} ({@code bench/RESULTS.md}).
 *
 * <p>An {@code OPENBLAS_CORETYPE} in the environment is kept; {@code -Dntk.openblas.coretype=NAME}
 * names the kernels to use even then ({@code auto}, the default, is the choice above; {@code
 * openblas} leaves it to OpenBLAS and the environment). Every class that calls OpenBLAS calls {@link #configure} first, in its static
 * initializer.
 *
 * <p>{@link #configure} also lifts JavaCPP's cap on native memory, by default the size of the Java
 * heap: native matrices are sized by the library's own budget ({@code --max-memory}, half the
 * machine's memory by default), and a 30,000 x 30,000 float64 train kernel (7.2 GB) would otherwise
 * fail beside a 6 GB heap. {@code -Dorg.bytedeco.javacpp.maxBytes} and {@code maxPhysicalBytes},
 * when given, are kept.
 */
public final class OpenBlas {
  /** The CPU flags of OpenBLAS' {@code SkylakeX} kernels. */
  private static final Set<String> AVX512 = Set.of("avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl");

  private static String chosen;

  private OpenBlas() {}

  /**
   * Sets {@code OPENBLAS_CORETYPE} as the class documentation says, once per JVM, before OpenBLAS
   * loads. Returns the kernels it set, or empty when it left the choice to OpenBLAS (or could not
   * set the variable: then OpenBLAS chooses, which is only slower).
   */
  public static synchronized Optional<String> configure() {
    if (chosen == null) {
      for (String limit : List.of("org.bytedeco.javacpp.maxBytes", "org.bytedeco.javacpp.maxPhysicalBytes")) {
        if (System.getProperty(limit) == null) {
          System.setProperty(limit, "0");
        }
      }
      chosen = choose().map(OpenBlas::set).orElse("");
    }
    return chosen.isEmpty() ? Optional.empty() : Optional.of(chosen);
  }

  private static Optional<String> choose() {
    String property = System.getProperty("ntk.openblas.coretype", "auto").trim();
    if (property.equalsIgnoreCase("openblas")) {
      return Optional.empty();
    }
    if (!property.equalsIgnoreCase("auto")) {
      return Optional.of(property);
    }
    return System.getenv("OPENBLAS_CORETYPE") != null ? Optional.empty() : coreType(cpuInfo());
  }

  /**
   * The kernels to force for the CPU described by {@code cpuinfo} (the text of {@code
   * /proc/cpuinfo}): {@code SkylakeX} for an AMD CPU with AVX-512, else none.
   */
  static Optional<String> coreType(List<String> cpuinfo) {
    String vendor = field(cpuinfo, "vendor_id").orElse("");
    Set<String> flags = Set.of(field(cpuinfo, "flags").orElse("").toLowerCase(Locale.ROOT).split("\\s+"));
    return vendor.equals("AuthenticAMD") && flags.containsAll(AVX512) ? Optional.of("SkylakeX") : Optional.empty();
  }

  private static Optional<String> field(List<String> cpuinfo, String name) {
    return cpuinfo.stream()
        .filter(line -> line.startsWith(name) && line.indexOf(':') > 0
            && line.substring(0, line.indexOf(':')).trim().equals(name))
        .map(line -> line.substring(line.indexOf(':') + 1).trim())
        .findFirst();
  }

  private static List<String> cpuInfo() {
    // Files.lines would read nothing: /proc files report a size of 0.
    try {
      return Files.readAllLines(Path.of("/proc/cpuinfo"));
    } catch (IOException | RuntimeException e) {
      return List.of();
    }
  }

  private static String set(String coreType) {
    return Libc.setenv("OPENBLAS_CORETYPE", coreType, true) ? coreType : "";
  }
}
