package dev.ntk.kernels;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URL;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.Properties;
import java.util.stream.Stream;

/**
 * Makes DJL's TensorFlow engine load its native libraries offline.
 *
 * <p>DJL downloads the TensorFlow native build from the internet unless {@code
 * TENSORFLOW_LIBRARY_PATH} names a folder that holds it. The build we depend on ships inside the
 * {@code ai.djl.tensorflow:tensorflow-native-cpu} jar under {@code native/lib/}; on first use we
 * extract it once into a cache folder ({@code $NTK_CACHE}, the system property {@code ntk.cache},
 * or {@code ~/.cache/ntk}) and point DJL at it. A folder given by the user through {@code
 * TENSORFLOW_LIBRARY_PATH} (environment or system property) is left alone.
 */
public final class TensorFlowNative {
  private static final String RESOURCE_DIR = "native/lib/";
  private static final String PROPERTIES = RESOURCE_DIR + "tensorflow.properties";
  private static final String COMPLETE_MARKER = ".complete";
  private static volatile Path libraryPath;

  private TensorFlowNative() {}

  /** Extracts the native libraries if needed and sets {@code TENSORFLOW_LIBRARY_PATH}; idempotent. */
  public static Path ensureConfigured() {
    Path path = libraryPath;
    if (path != null) {
      return path;
    }
    synchronized (TensorFlowNative.class) {
      if (libraryPath == null) {
        libraryPath = configure();
      }
      return libraryPath;
    }
  }

  private static Path configure() {
    System.setProperty("ai.djl.offline", "true");
    useBfcAllocator();
    quietGpuProbes();
    String env = System.getenv("TENSORFLOW_LIBRARY_PATH");
    String prop = System.getProperty("TENSORFLOW_LIBRARY_PATH");
    if (prop != null && !prop.isBlank()) {
      return Paths.get(prop);
    }
    if (env != null && !env.isBlank()) {
      return Paths.get(env);
    }
    Path dir = extract();
    System.setProperty("TENSORFLOW_LIBRARY_PATH", dir.toString());
    return dir;
  }

  /**
   * Sets {@code TF_CPU_ALLOCATOR_USE_BFC=true} in this process's environment before TensorFlow
   * loads, unless the user set it: on CPUs where TensorFlow 2.10 leaves oneDNN off, its default
   * (system) allocator made one run 14x slower. The JVM cannot change its own environment, so
   * this calls the C library's {@code setenv} ({@link dev.ntk.kernels.linalg.Libc}).
   */
  private static void useBfcAllocator() {
    if (System.getenv(BFC) != null) {
      return;
    }
    // Without the C library through JNA, TensorFlow keeps its default allocator, slower on some CPUs.
    dev.ntk.kernels.linalg.Libc.setenv(BFC, "true", false);
  }

  private static final String BFC = "TF_CPU_ALLOCATOR_USE_BFC";

  /**
   * Whether this machine has an NVIDIA driver (Linux: {@code /proc/driver/nvidia} or {@code
   * /dev/nvidiactl}; elsewhere assumed, so that the engines look for themselves). Without one,
   * no CUDA device can be used, whatever CUDA libraries are installed.
   */
  public static boolean gpuDriverPresent() {
    if (!System.getProperty("os.name", "").toLowerCase(java.util.Locale.ROOT).contains("linux")) {
      return true;
    }
    return Files.exists(Paths.get("/proc/driver/nvidia")) || Files.exists(Paths.get("/dev/nvidiactl"));
  }

  /**
   * On a machine without an NVIDIA driver, DJL's and TensorFlow's GPU probes can only fail, and
   * where a CUDA toolkit is installed they say so at every start ("Failed to detect GPU count",
   * "failed call to cuInit", "Could not load dynamic library 'libcudart.so.11.0'"): noise for a
   * library user on a CPU machine. Unless the user chose otherwise, TensorFlow's native log is
   * limited to what it also raises as exceptions ({@code TF_CPP_MIN_LOG_LEVEL=3}, as {@code
   * bin/ntk} sets it) and DJL's CUDA probe, with slf4j-simple, to errors.
   */
  private static void quietGpuProbes() {
    if (gpuDriverPresent()) {
      return;
    }
    if (System.getenv(TF_LOG) == null) {
      dev.ntk.kernels.linalg.Libc.setenv(TF_LOG, "3", false);
    }
    System.getProperties().putIfAbsent("org.slf4j.simpleLogger.log.ai.djl.util.cuda", "error");
  }

  private static final String TF_LOG = "TF_CPP_MIN_LOG_LEVEL";

  private static Path extract() {
    ClassLoader loader = TensorFlowNative.class.getClassLoader();
    URL props = loader.getResource(PROPERTIES);
    if (props == null) {
      throw new IllegalStateException(
          "The TensorFlow native library is not on the class path: add "
              + "ai.djl.tensorflow:tensorflow-native-cpu (classifier linux-x86_64) or set "
              + "TENSORFLOW_LIBRARY_PATH to a folder holding libtensorflow_cc.so.2");
    }
    try {
      Properties p = new Properties();
      try (InputStream in = props.openStream()) {
        p.load(in);
      }
      String name = "tensorflow-" + p.getProperty("version") + "-" + p.getProperty("classifier");
      Path target = cacheRoot().resolve(name);
      if (Files.exists(target.resolve(COMPLETE_MARKER))) {
        return target;
      }
      Files.createDirectories(target.getParent());
      Path tmp = Files.createTempDirectory(target.getParent(), "." + name + ".");
      try {
        for (String lib : p.getProperty("libraries").split(",")) {
          try (InputStream in = loader.getResourceAsStream(RESOURCE_DIR + lib.trim())) {
            if (in == null) {
              throw new IllegalStateException("native library " + lib + " missing from the jar");
            }
            Files.copy(in, tmp.resolve(lib.trim()));
          }
        }
        Files.createFile(tmp.resolve(COMPLETE_MARKER));
        try {
          Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
        } catch (FileAlreadyExistsException | java.nio.file.DirectoryNotEmptyException e) {
          // Another process extracted the same build first; theirs is complete.
          deleteRecursively(tmp);
        } catch (AtomicMoveNotSupportedException e) {
          Files.move(tmp, target);
        }
      } catch (IOException | RuntimeException e) {
        deleteRecursively(tmp);
        throw e;
      }
      return target;
    } catch (IOException e) {
      throw new UncheckedIOException("Could not extract the TensorFlow native library", e);
    }
  }

  private static Path cacheRoot() {
    String env = System.getenv("NTK_CACHE");
    if (env != null && !env.isBlank()) {
      return Paths.get(env);
    }
    String prop = System.getProperty("ntk.cache");
    if (prop != null && !prop.isBlank()) {
      return Paths.get(prop);
    }
    return Paths.get(System.getProperty("user.home"), ".cache", "ntk");
  }

  private static void deleteRecursively(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> walk = Files.walk(dir)) {
      for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }
}
