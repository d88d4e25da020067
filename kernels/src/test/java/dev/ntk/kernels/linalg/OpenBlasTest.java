package dev.ntk.kernels.linalg;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class OpenBlasTest {
  private static final String AVX512 = "fpu sse avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl avx512_bf16";

  private static List<String> cpu(String vendor, String flags) {
    return List.of("processor\t: 0", "vendor_id\t: " + vendor, "cpu family\t: 26", "flags\t\t: " + flags,
        "processor\t: 1", "vendor_id\t: " + vendor, "flags\t\t: " + flags);
  }

  @Test
  void amdWithAvx512GetsTheAvx512Kernels() {
    assertEquals(Optional.of("SkylakeX"), OpenBlas.coreType(cpu("AuthenticAMD", AVX512)));
  }

  @Test
  void otherCpusAreLeftToOpenBlas() {
    // Intel CPUs with AVX-512 are recognised by OpenBLAS itself; AMD without it gets AVX2 kernels.
    assertEquals(Optional.empty(), OpenBlas.coreType(cpu("GenuineIntel", AVX512)));
    assertEquals(Optional.empty(), OpenBlas.coreType(cpu("AuthenticAMD", "fpu sse avx2 fma avx512f")));
    assertEquals(Optional.empty(), OpenBlas.coreType(List.of()));
  }
}
