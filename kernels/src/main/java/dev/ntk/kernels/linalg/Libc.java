package dev.ntk.kernels.linalg;

import com.sun.jna.Library;
import com.sun.jna.Native;
import com.sun.jna.NativeLong;
import com.sun.jna.Pointer;

/**
 * The two C library calls the native libraries need, through JNA (which DJL depends on): {@code
 * setenv}, for settings a native library reads from the environment as it loads (OpenBLAS' kernels,
 * {@link OpenBlas}; TensorFlow's allocator), and {@code madvise(MADV_HUGEPAGE)} for large native
 * buffers. Both are hints: where the C library cannot be reached they do nothing.
 */
public final class Libc {
  /** Buffers from this size up are worth transparent huge pages. */
  static final long HUGE_PAGE_MIN_BYTES = 4L << 20;
  private static final int MADV_HUGEPAGE = 14;
  private static final long PAGE = 4096;
  private static final boolean LINUX =
      System.getProperty("os.name", "").toLowerCase(java.util.Locale.ROOT).contains("linux");

  private interface C extends Library {
    int setenv(String name, String value, int overwrite);

    int madvise(Pointer address, NativeLong length, int advice);
  }

  private static final C LIBC = load();

  private Libc() {}

  private static C load() {
    try {
      return Native.load("c", C.class);
    } catch (RuntimeException | LinkageError e) {
      return null;
    }
  }

  /** Sets an environment variable of this process (C's {@code environ}); false if it could not. */
  public static boolean setenv(String name, String value, boolean overwrite) {
    try {
      return LIBC != null && LIBC.setenv(name, value, overwrite ? 1 : 0) == 0;
    } catch (LinkageError e) {
      return false;
    }
  }

  /**
   * Asks Linux to back the {@code bytes} at {@code address} (native memory just allocated, not yet
   * touched) with transparent huge pages, where the system allows it on request ({@code
   * /sys/kernel/mm/transparent_hugepage/enabled} is {@code madvise} or {@code always}): the first
   * touch of a 64 MiB gram then costs 32 page faults instead of 16,384, which took 0.18 s of a
   * 0.32 s {@code ssyrk} on a 2-core AMD EPYC virtual machine. Smaller buffers are left alone.
   */
  public static void adviseHugePages(long address, long bytes) {
    if (LIBC == null || bytes < HUGE_PAGE_MIN_BYTES || !LINUX) {
      return;
    }
    long start = (address + PAGE - 1) & -PAGE;
    long end = (address + bytes) & -PAGE;
    if (end > start) {
      LIBC.madvise(new Pointer(start), new NativeLong(end - start), MADV_HUGEPAGE);
    }
  }
}
