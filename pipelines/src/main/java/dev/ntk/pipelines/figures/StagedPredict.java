package dev.ntk.pipelines.figures;

import dev.ntk.io.AtomicFiles;
import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.pipelines.InProcessPredict;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * A prediction run as {@code ntk predict} runs it in-process ({@link InProcessPredict}), into a
 * temporary directory of ntk's under a figure's output directory, whose files are read back and
 * the directory removed: the figures' way to the same numbers the command line writes.
 */
final class StagedPredict {
  private StagedPredict() {}

  /** Runs {@code predict} and returns its output files {@code names} ({@code mean.npy}, ...), in order. */
  static List<NpyArray> run(InProcessPredict predict, Path dir, String tag, String... names) throws IOException {
    Path staging = dir.resolve(AtomicFiles.temporaryName(tag));
    try {
      predict.run(staging, null);
      List<NpyArray> arrays = new ArrayList<>();
      for (String name : names) {
        arrays.add(Npy.read(staging.resolve(name)));
      }
      return arrays;
    } finally {
      if (Files.exists(staging)) {
        try (Stream<Path> files = Files.walk(staging)) {
          for (Path f : files.sorted(Comparator.reverseOrder()).toList()) {
            Files.deleteIfExists(f);
          }
        }
      }
    }
  }
}
