package dev.ntk.kernels.cuda;

import dev.ntk.kernels.Plan;
import dev.ntk.kernels.engine.Expr;
import dev.ntk.kernels.engine.Layout;
import dev.ntk.kernels.engine.PixelMap;
import dev.ntk.kernels.engine.Schedule;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * A {@link Schedule} as CUDA C: the kernels of the three passes of the plan ({@code ntk_pass0...}
 * per row input, {@code ntk_pass1...} per column input, {@code ntk_pass2...} per pair), each over
 * many items at once. The per-input values a later pass reads are exported to arrays; everything
 * else stays in the kernels.
 *
 * <p>A plan without pixel blocks (fully connected networks) runs one thread per item, every step a
 * local variable: the whole per-pair chain of a deep network is one straight-line function, which
 * the compiler keeps in registers. A plan with pixel blocks (convolutions, pooling, attention) runs
 * one thread block per item (or, for a few items, several: {@link Launch}), its threads striding
 * over the entries of each block: a run of entry-wise steps over blocks of one size is one loop
 * (values read only inside the run stay local), a structural step (a pixel map, a diagonal, a sum,
 * attention's softmax and attend) is a kernel launch of its own, the launch being the barrier, and
 * values read across loops live in per-item registers in global memory (reused by a linear scan
 * over last uses). Pixel maps are applied axis by axis from their sparse per-axis matrices ({@link
 * PixelMap#dense}), gathered per output entry so that no two threads write one entry. A softmax
 * runs one thread per row, in double, shifted by the row's maximum (as the {@code cpu} engine); an
 * attend {@code b a c^T} is two launches, the left product {@code b a} waiting in per-item scratch.
 * The input blocks (pixel grams of raw images) are computed in the kernel from the images; constant
 * blocks (attention's positional embeddings, the pair weights of a {@code DotGeneral} over several
 * spatial axes) are tables in the source, shared when equal, and a block of one number a literal.
 *
 * <p>Every other plan input ({@link #bufferInputs}: the masks {@code kept1}, {@code kept2} of
 * masked inputs, the graph patterns {@code pattern1}, {@code pattern2}) is a buffer the kernels
 * read at the item's row {@code i} or column {@code j}, one block per input, in both kinds of
 * pass.
 *
 * <p>The source also compiles as C on the host: a shim defines the thread and block indices as
 * globals, barriers as nothing, and writes a launch loop per kernel ({@code ntk_host_pass2}) that
 * runs the blocks one after another with one thread each. Tests compile it with {@code gcc} and
 * compare with the {@code cpu} engine on machines without a GPU.
 */
public final class CudaSource {
  /** Threads per block of a kernel over pixel blocks (on a device; the host runs one). */
  public static final int BLOCK_THREADS = 256;
  /** Threads per block of a kernel with one thread per item. */
  public static final int ITEM_THREADS = 128;

  /** A per-input value kept for every input of pass {@code pass}, in buffer {@code name}. */
  public record Export(String name, Expr value, int pass, int size) {}

  private final boolean float32;
  private final boolean blocks;
  private final int channels;
  private final Schedule schedule;
  private final String real;
  private final List<List<Expr>> passes = new ArrayList<>();
  private final List<Set<Expr>> mine = new ArrayList<>();
  private final Map<Expr, Export> exports = new IdentityHashMap<>();
  private final List<Export> exportList = new ArrayList<>();
  private final Map<String, String> inputParams = new LinkedHashMap<>();
  /** The plan inputs the passes read, by name. */
  private final Map<String, Expr> inputs = new LinkedHashMap<>();
  private final Map<String, String> outputParams = new LinkedHashMap<>();
  private final long[] perItem = new long[3];
  private final List<List<Launch>> launches = List.of(new ArrayList<>(), new ArrayList<>(), new ArrayList<>());
  private final List<String> kernelNames = new ArrayList<>();
  private final Map<String, String> tables = new LinkedHashMap<>();
  private final StringBuilder tableSource = new StringBuilder();
  private final String source;

  private CudaSource(Schedule schedule, boolean float32, int channels) {
    this.schedule = schedule;
    this.float32 = float32;
    this.blocks = schedule.blocks();
    this.channels = channels;
    this.real = float32 ? "float" : "double";
    split();
    for (String name : schedule.inputs()) {
      inputParams.put(name, "in" + inputParams.size() + "_" + identifier(name));
    }
    for (Map<String, Expr> m : List.of(schedule.outputs(), schedule.rowOutputs(), schedule.colOutputs())) {
      for (String name : m.keySet()) {
        outputParams.put(name, "out" + outputParams.size() + "_" + identifier(name));
      }
    }
    StringBuilder kernels = new StringBuilder();
    for (int pass = 0; pass < 3; pass++) {
      kernels.append(blocks ? new BlockPass(pass).source() : itemPass(pass));
    }
    this.source = prelude() + tableSource + kernels + diagonalKernel() + hostLaunchers();
  }

  /**
   * Whether the engine can run {@code schedule}: every step has a kernel (attention's softmax and
   * attend, and constant pixel blocks, included) but a user's Java function ({@link Expr.Op#CALL}:
   * the kernel of {@code Stax.elementwise(phi, dphi)}, which only Java can evaluate); the plan's
   * inputs are the raw inputs' pixel grams and buffers ({@link #bufferInputs}: masks, graph patterns).
   */
  public static boolean runs(Schedule schedule) {
    return refusal(schedule) == null;
  }

  /** Why the engine cannot run {@code schedule} ({@link #runs}), or null if it can. */
  private static String refusal(Schedule schedule) {
    List<Expr> steps = new ArrayList<>(schedule.vectorSteps());
    steps.addAll(schedule.tileSteps());
    if (steps.stream().anyMatch(e -> e.op() == Expr.Op.CALL)) {
      return "the cuda engine has no user's Java function (the kernel of Stax.elementwise(phi, dphi), computed by "
          + "Java)";
    }
    return null;
  }

  /**
   * The CUDA C of {@code schedule} in float32 or float64; {@code channels} is the channel count of
   * raw image inputs for a plan with pixel blocks (ignored otherwise).
   *
   * @throws IllegalArgumentException if the engine cannot run the plan ({@link #runs}), naming why
   */
  public static CudaSource generate(Schedule schedule, boolean float32, int channels) {
    String why = refusal(schedule);
    if (why != null) {
      throw new IllegalArgumentException(why + ": run this model with --backend cpu or tensorflow");
    }
    return new CudaSource(schedule, float32, channels);
  }

  /** The source: CUDA C for NVRTC, C for a host compiler. */
  public String source() {
    return source;
  }

  /** Whether the plan has pixel blocks (one thread block per item), else one thread per item. */
  public boolean blocks() {
    return blocks;
  }

  public boolean float32() {
    return float32;
  }

  /**
   * One kernel launch of a pass, in order: {@code kernel} over {@code entries} entries per item;
   * {@code whole}: one thread block per item (a sum, and every kernel of a plan without pixel
   * blocks, which runs one thread per item), else the blocks of an item may be split into {@code
   * chunks} thread blocks each (the last parameter), so that a few items still fill a device.
   */
  public record Launch(String kernel, long entries, boolean whole) {}

  /** The launches of pass {@code pass} (none if it has nothing to compute or write). */
  public List<Launch> launches(int pass) {
    return Collections.unmodifiableList(launches.get(pass));
  }

  /**
   * The buffers every pass kernel takes after its fixed parameters {@code (long long base, long long
   * count, long long n1, long long n2, const int* pi, const int* pj, real* scratch, const real* x1,
   * const real* x2, long long chunks)}: {@code in:NAME} (a plan input held as an array, {@link
   * #bufferInputs}), {@code ex:NAME} ({@link #exports}), {@code out:NAME}.
   */
  public List<String> buffers() {
    List<String> b = new ArrayList<>();
    inputParams.keySet().stream().filter(n -> !pixelGram(n)).forEach(n -> b.add("in:" + n));
    exportList.forEach(e -> b.add("ex:" + e.name()));
    outputParams.keySet().forEach(n -> b.add("out:" + n));
    return b;
  }

  /**
   * The plan inputs the kernels read from buffers {@code in:NAME}, each {@code n1} (a {@code ROW}
   * input), {@code n2} ({@code COL}) or {@code n1 n2} ({@code TILE}) blocks of its layout's size,
   * row-major: every input of a plan without pixel blocks, and those of a plan with them that are
   * not the pixel grams of its raw images ({@code nngp}, {@code var1}, {@code var2}, which the
   * kernels compute).
   */
  public List<Expr> bufferInputs() {
    return inputs.values().stream().filter(x -> !pixelGram(x.name())).toList();
  }

  /** Whether the kernels compute input {@code name} from the raw images: a pixel gram of a plan with pixel blocks. */
  private boolean pixelGram(String name) {
    return blocks && List.of(Plan.NNGP, Plan.VAR1, Plan.VAR2).contains(name);
  }

  /** The per-input values passes 0 and 1 keep for pass 2 (and for outputs they do not compute). */
  public List<Export> exports() {
    return Collections.unmodifiableList(exportList);
  }

  /** Scratch entries per item of pass {@code pass} (0 without pixel blocks). */
  public long scratchPerItem(int pass) {
    return perItem[pass];
  }

  private Map<String, Expr> passOutputs(int pass) {
    return pass == 0 ? schedule.rowOutputs() : pass == 1 ? schedule.colOutputs() : schedule.outputs();
  }

  /** The steps of each pass, and the per-input values read across passes. */
  private void split() {
    for (int pass = 0; pass < 3; pass++) {
      List<Expr> steps;
      if (blocks) {
        steps = schedule.blockSteps(pass);
      } else if (pass == 2) {
        steps = schedule.tileSteps();
      } else {
        Expr.Domain d = pass == 0 ? Expr.Domain.ROW : Expr.Domain.COL;
        steps = schedule.vectorSteps().stream().filter(e -> e.domain() == d).toList();
      }
      passes.add(steps);
      Set<Expr> set = Collections.newSetFromMap(new IdentityHashMap<>());
      set.addAll(steps);
      mine.add(set);
      for (Expr e : steps) {
        if (!CudaOps.supports(e.op()) && !e.op().structural()) {
          CudaOps.expression(e.op(), float32, "a", "b"); // throws, naming the operation
        }
      }
    }
    for (int pass = 0; pass < 3; pass++) {
      List<Expr> read = new ArrayList<>();
      for (Expr e : passes.get(pass)) {
        read.addAll(e.operands());
      }
      read.addAll(passOutputs(pass).values());
      read.stream().filter(x -> x.op() == Expr.Op.INPUT).forEach(x -> inputs.putIfAbsent(x.name(), x));
      for (Expr x : read) {
        if (!x.isConstant() && x.op() != Expr.Op.INPUT && x.op() != Expr.Op.BLOCK && !mine.get(pass).contains(x)
            && !exports.containsKey(x)) {
          int from = x.domain() == Expr.Domain.ROW ? 0 : 1;
          if (x.domain() == Expr.Domain.TILE || !mine.get(from).contains(x)) {
            throw new IllegalStateException("pass " + pass + " reads " + x + ", which no earlier pass computes");
          }
          Export ex = new Export("ex" + exportList.size(), x, from, x.layout().size());
          exports.put(x, ex);
          exportList.add(ex);
        }
      }
    }
  }

  /** The index of the item a value of {@code domain} belongs to: the row {@code i}, the column {@code j}, the pair. */
  private static String item(Expr.Domain domain) {
    return domain == Expr.Domain.ROW ? "i" : domain == Expr.Domain.COL ? "j" : "(i * n2 + j)";
  }

  private static String identifier(String name) {
    return name.replaceAll("[^A-Za-z0-9_]", "_");
  }

  private String literal(double v) {
    return CudaOps.literal(v);
  }

  private String prelude() {
    return """
        /* Generated by dev.ntk.kernels.cuda.CudaSource from a plan: CUDA C for NVRTC, or C for a host
           compiler with the shim below (blocks run one after another, one thread each). */
        #ifdef __CUDACC__
        #define NTK_KERNEL extern "C" __global__ void
        #define NTK_DEVICE static __device__
        #define NTK_TABLE static __device__ const
        #define NTK_SHARED __shared__
        #define NTK_THREADS %d
        #else
        #include <math.h>
        typedef struct { long long x, y, z; } ntk_dim3;
        static ntk_dim3 threadIdx, blockIdx, blockDim, gridDim;
        #define NTK_KERNEL static void
        #define NTK_DEVICE static
        #define NTK_TABLE static const
        #define NTK_SHARED static
        #define NTK_THREADS 1
        #define __syncthreads() ((void) 0)
        #endif
        typedef %s real;
        #define NTK_MAX_AXES 8
        %s

        /* The input block of a pair of images (pixels then channels): per pixel, or per pixel pair. */
        NTK_DEVICE void ntk_pixel_gram(const real* a, const real* b, int pixels, int channels, int full, real* out,
            int tid, int nt) {
          long long size = full ? (long long) pixels * pixels : pixels;
          double scale = 1.0 / channels;
          for (long long e = tid; e < size; e += nt) {
            int p = full ? (int) (e / pixels) : (int) e;
            int q = full ? (int) (e %% pixels) : (int) e;
            double s = 0;
            for (int c = 0; c < channels; c++) {
              s += (double) a[(long long) p * channels + c] * b[(long long) q * channels + c];
            }
            out[e] = (real) (s * scale);
          }
        }

        """.formatted(BLOCK_THREADS, real, CudaOps.FUNCTIONS);
  }

  private String parameters() {
    StringBuilder b = new StringBuilder("long long base, long long count, long long n1, long long n2, "
        + "const int* pi, const int* pj, real* scratch, const real* x1, const real* x2, long long chunks");
    for (String buffer : buffers()) {
      b.append(", ").append(buffer.startsWith("out:") ? "real* " : "const real* ").append(param(buffer));
    }
    return b.toString();
  }

  private String arguments() {
    StringBuilder b = new StringBuilder("base, count, n1, n2, pi, pj, scratch, x1, x2, chunks");
    for (String buffer : buffers()) {
      b.append(", ").append(param(buffer));
    }
    return b.toString();
  }

  private String param(String buffer) {
    String name = buffer.substring(buffer.indexOf(':') + 1);
    return switch (buffer.substring(0, buffer.indexOf(':'))) {
      case "in" -> inputParams.get(name);
      case "out" -> outputParams.get(name);
      default -> name;
    };
  }

  /** Export buffers are written by their pass: drop the {@code const} there. */
  private String writable(String name) {
    return "((real*) " + name + ")";
  }

  private String diagonalKernel() {
    return """
        /* The diagonal of an n x n gram: the variances of x with itself, to the bit (as the cpu engine). */
        NTK_KERNEL ntk_diagonal(long long n, const real* gram, real* out) {
          long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x;
          if (i < n) {
            out[i] = gram[i * n + i];
          }
        }
        """;
  }

  private String hostLaunchers() {
    StringBuilder b = new StringBuilder("\n#ifndef __CUDACC__\n/* The host's launch loops. */\n");
    for (String kernel : kernelNames) {
      b.append("void ").append(kernel.replaceFirst("^ntk_", "ntk_host_")).append("(long long grid, ")
          .append(parameters()).append(") {\n  blockDim.x = 1;\n  gridDim.x = grid;\n  threadIdx.x = 0;\n")
          .append("  for (long long g = 0; g < grid; g++) {\n    blockIdx.x = g;\n    ").append(kernel)
          .append('(').append(arguments()).append(");\n  }\n}\n");
    }
    b.append("void ntk_host_diagonal(long long grid, long long n, const real* gram, real* out) {\n")
        .append("  blockDim.x = 1;\n  gridDim.x = grid;\n  threadIdx.x = 0;\n")
        .append("  for (long long g = 0; g < grid; g++) {\n    blockIdx.x = g;\n    ntk_diagonal(n, gram, out);\n  }\n}\n")
        .append("#endif\n");
    return b.toString();
  }

  /** The kernel of a pass of a plan without pixel blocks: one thread per item, every value local. */
  private String itemPass(int pass) {
    StringBuilder b = new StringBuilder();
    if (passes.get(pass).isEmpty() && passOutputs(pass).isEmpty()) {
      return "";
    }
    String kernel = "ntk_pass" + pass;
    kernelNames.add(kernel);
    launches.get(pass).add(new Launch(kernel, 1, true));
    b.append("NTK_KERNEL ").append(kernel).append('(').append(parameters()).append(") {\n")
        .append("  (void) chunks;\n")
        .append("  long long t = (long long) blockIdx.x * blockDim.x + threadIdx.x;\n")
        .append("  if (t >= count) {\n    return;\n  }\n")
        .append("  long long item = base + t;\n");
    b.append(switch (pass) {
      case 0 -> "  long long i = item;\n";
      case 1 -> "  long long j = item;\n";
      default -> "  long long i = item / n2;\n  long long j = item % n2;\n";
    });
    Map<Expr, String> locals = new IdentityHashMap<>();
    for (Expr e : passes.get(pass)) {
      String v = "t" + locals.size();
      List<Expr> ops = e.operands();
      String[] x = new String[ops.size()];
      for (int k = 0; k < x.length; k++) {
        x[k] = itemRef(ops.get(k), pass, locals);
      }
      b.append(CudaOps.statements(e, float32, v, "  ", x));
      locals.put(e, v);
      Export ex = exports.get(e);
      if (ex != null && ex.pass() == pass) {
        b.append("  ").append(writable(ex.name())).append("[item] = ").append(v).append(";\n");
      }
    }
    for (Map.Entry<String, Expr> o : passOutputs(pass).entrySet()) {
      b.append("  ").append(outputParams.get(o.getKey())).append("[item] = ")
          .append(itemRef(o.getValue(), pass, locals)).append(";\n");
    }
    return b.append("}\n\n").toString();
  }

  private String itemRef(Expr x, int pass, Map<Expr, String> locals) {
    if (x.isConstant()) {
      return literal(x.value());
    }
    String local = locals.get(x);
    if (local != null) {
      return local;
    }
    String at = item(x.domain());
    if (x.op() == Expr.Op.INPUT) {
      return inputParams.get(x.name()) + "[" + at + "]";
    }
    return exports.get(x).name() + "[" + at + "]";
  }

  /** The kernel of a pass of a plan with pixel blocks: one thread block per item. */
  private final class BlockPass {
    private final int pass;
    private final List<Expr> steps;
    /** The loops: runs of entry-wise steps of one size, or one structural step. */
    private final List<List<Expr>> units = new ArrayList<>();
    private final Map<Expr, Integer> unitOf = new IdentityHashMap<>();
    private final Map<Expr, Integer> register = new IdentityHashMap<>();
    private final Map<String, String> staged = new LinkedHashMap<>();
    private final Map<String, Long> stagedAt = new LinkedHashMap<>();
    private int registers;
    private long registerSize = 1;
    /** The largest intermediate block of a pixel map, in PA and in PB. */
    private long pixelScratch;
    /** The largest left product of an attend, in PA (alone: its pixel block needs no PB). */
    private long productScratch;

    BlockPass(int pass) {
      this.pass = pass;
      this.steps = passes.get(pass);
      for (Expr e : steps) {
        boolean alone = e.op().structural() && !spread(e);
        List<Expr> last = units.isEmpty() ? null : units.get(units.size() - 1);
        if (alone || last == null || structural(last.get(0)) || last.get(0).layout().size() != e.layout().size()) {
          units.add(new ArrayList<>());
        }
        units.get(units.size() - 1).add(e);
        unitOf.put(e, units.size() - 1);
        registerSize = Math.max(registerSize, e.layout().size());
      }
      allocate();
      long offset = (long) registers * registerSize;
      long pixels = offset;
      offset += Math.max(pixelScratch, productScratch) + pixelScratch;
      List<Expr> read = new ArrayList<>();
      steps.forEach(e -> read.addAll(e.operands()));
      read.addAll(passOutputs(pass).values());
      for (Expr x : read) {
        if (x.op() == Expr.Op.INPUT && pixelGram(x.name()) && !staged.containsKey(x.name())) {
          staged.put(x.name(), "I" + staged.size());
          stagedAt.put(x.name(), offset);
          offset += x.layout().size();
        }
      }
      perItem[pass] = offset;
      pixelAt = pixels;
    }

    private long pixelAt;

    private boolean structural(Expr e) {
      return e.op().structural() && !spread(e);
    }

    /** Registers for the values read outside their own loop, by a linear scan over last uses. */
    private void allocate() {
      Map<Expr, Integer> lastUnit = new IdentityHashMap<>();
      for (Expr e : steps) {
        for (Expr x : e.operands()) {
          if (unitOf.containsKey(x)) {
            lastUnit.merge(x, unitOf.get(e), Math::max);
          }
        }
        if (e.op() == Expr.Op.PIXELS) {
          pixelScratch = Math.max(pixelScratch, intermediate(e.map()));
        } else if (e.op() == Expr.Op.ATTEND) {
          // The left product b a, between the attend's two kernels.
          productScratch = Math.max(productScratch, e.layout().size());
        }
      }
      List<Integer> free = new ArrayList<>();
      for (int u = 0; u < units.size(); u++) {
        for (Expr e : units.get(u)) {
          boolean stored = structural(e) || lastUnit.getOrDefault(e, u) > u;
          if (stored) {
            register.put(e, free.isEmpty() ? registers++ : free.remove(free.size() - 1));
          }
        }
        // Released after the loop that reads a value last (or that computes it, if none reads it).
        for (Map.Entry<Expr, Integer> r : register.entrySet()) {
          if (lastUnit.getOrDefault(r.getKey(), unitOf.get(r.getKey())) == u) {
            free.add(r.getValue());
          }
        }
      }
    }

    /** The largest block between two axes of {@code m}. */
    private long intermediate(PixelMap m) {
      int d = m.rank();
      long largest = 0;
      for (int k = 0; k < d - 1; k++) {
        largest = Math.max(largest, size(dims(m, k + 1), m.input().kind() == Layout.Kind.FULL));
      }
      return largest;
    }

    /** The start of every kernel of this pass: the item, its pair, its scratch, and this thread's share. */
    private String prologue(String kernel, boolean whole) {
      StringBuilder b = new StringBuilder();
      b.append("NTK_KERNEL ").append(kernel).append('(').append(parameters()).append(") {\n")
          .append("  long long slot = (long long) blockIdx.x / chunks;\n  int chunk = (int) ((long long) blockIdx.x % chunks);\n")
          .append("  if (slot >= count) {\n    return;\n  }\n")
          .append("  long long item = base + slot;\n")
          .append("  int tid = chunk * (int) blockDim.x + (int) threadIdx.x;\n")
          .append("  int nt = (int) (chunks * blockDim.x);\n  (void) tid;\n  (void) nt;\n");
      b.append(switch (pass) {
        case 0 -> "  long long i = item;\n  long long j = -1;\n";
        case 1 -> "  long long i = -1;\n  long long j = item;\n";
        default -> "  long long i = pi[item];\n  long long j = pj[item];\n";
      });
      b.append("  (void) i;\n  (void) j;\n");
      b.append("  real* S = scratch + slot * ").append(perItem[pass]).append("LL;\n  (void) S;\n");
      for (int r = 0; r < registers; r++) {
        b.append("  real* R").append(r).append(" = S + ").append((long) r * registerSize).append("LL;\n  (void) R")
            .append(r).append(";\n");
      }
      if (pixelScratch > 0 || productScratch > 0) {
        b.append("  real* PA = S + ").append(pixelAt).append("LL;\n  real* PB = PA + ")
            .append(Math.max(pixelScratch, productScratch))
            .append("LL;\n  (void) PA;\n  (void) PB;\n");
      }
      for (Map.Entry<String, String> in : staged.entrySet()) {
        b.append("  real* ").append(in.getValue()).append(" = S + ").append(stagedAt.get(in.getKey()))
            .append("LL;\n  (void) ").append(in.getValue()).append(";\n");
      }
      if (whole) {
        b.append("  NTK_SHARED double red[NTK_THREADS];\n");
      }
      return b.toString();
    }

    /** A kernel of its own: the next launch of this pass. */
    private void kernel(StringBuilder out, String body, long entries, boolean whole) {
      String name = "ntk_pass" + pass + "_" + launches.get(pass).size();
      kernelNames.add(name);
      launches.get(pass).add(new Launch(name, entries, whole));
      out.append(prologue(name, whole)).append(body).append("}\n\n");
    }

    String source() {
      StringBuilder out = new StringBuilder();
      Map<String, Expr> grams = new LinkedHashMap<>();
      List<Expr> read = new ArrayList<>();
      steps.forEach(e -> read.addAll(e.operands()));
      read.addAll(passOutputs(pass).values());
      for (Expr x : read) {
        if (x.op() == Expr.Op.INPUT && pixelGram(x.name())) {
          grams.putIfAbsent(x.name(), x);
        }
      }
      for (Expr x : grams.values()) {
        String name = staged.get(x.name());
        Layout l = x.layout();
        if (l.isScalar()) {
          throw new IllegalArgumentException("a plan with pixel blocks takes pixel-block inputs, " + x.name()
              + " is " + l);
        }
        String a = x.domain() == Expr.Domain.COL ? "x2 + j" : "x1 + i";
        String c = x.domain() == Expr.Domain.ROW ? "x1 + i" : "x2 + j";
        long image = (long) l.pixels() * channels;
        kernel(out, "  ntk_pixel_gram(" + a + " * " + image + "LL, " + c + " * " + image + "LL, " + l.pixels()
            + ", " + channels + ", " + (l.kind() == Layout.Kind.FULL ? 1 : 0) + ", " + name + ", tid, nt);\n",
            l.size(), false);
      }
      for (List<Expr> unit : units) {
        if (structural(unit.get(0))) {
          structuralStep(out, unit.get(0));
        } else {
          StringBuilder b = new StringBuilder();
          run(b, unit);
          kernel(out, b.toString(), unit.get(0).layout().size(), false);
        }
      }
      // Outputs that are not steps of this pass: inputs, constants, values of earlier passes.
      for (Map.Entry<String, Expr> o : passOutputs(pass).entrySet()) {
        Expr x = o.getValue();
        if (mine.get(pass).contains(x)) {
          continue;
        }
        long m = x.layout().size();
        kernel(out, "  for (long long e = tid; e < " + m + "LL; e += nt) {\n    " + outputParams.get(o.getKey())
            + "[" + itemIndex() + " * " + m + "LL + e] = " + ref(x, "e", Map.of()) + ";\n  }\n", m, false);
      }
      return out.toString();
    }

    /** The index of this item in an output: the row, the column, or the pair. */
    private String itemIndex() {
      return item(pass == 0 ? Expr.Domain.ROW : pass == 1 ? Expr.Domain.COL : Expr.Domain.TILE);
    }

    /** Where the block of {@code x} starts (not a constant, not a local). */
    private String pointer(Expr x) {
      if (x.op() == Expr.Op.INPUT && !pixelGram(x.name())) {
        return "(" + inputParams.get(x.name()) + " + " + item(x.domain()) + " * " + x.layout().size() + "LL)";
      }
      if (x.op() == Expr.Op.INPUT) {
        return staged.get(x.name());
      }
      if (x.op() == Expr.Op.BLOCK) {
        return constantBlock(x.blockValues());
      }
      Integer r = register.get(x);
      if (r != null && mine.get(pass).contains(x)) {
        return "R" + r;
      }
      Export ex = exports.get(x);
      if (ex == null) {
        throw new IllegalStateException("no storage for " + x);
      }
      return "(" + ex.name() + " + " + (x.domain() == Expr.Domain.ROW ? "i" : "j") + " * " + ex.size() + "LL)";
    }

    private String ref(Expr x, String index, Map<Expr, String> locals) {
      if (x.isConstant()) {
        return literal(x.value());
      }
      double[] block = x.blockValues();
      if (block != null && java.util.Arrays.stream(block).allMatch(v -> Double.compare(v, block[0]) == 0)) {
        // A block of one number (a zero NTK as a block): a literal, no table.
        return literal(block[0]);
      }
      String local = locals.get(x);
      if (local != null) {
        return local;
      }
      return pointer(x) + "[" + (x.layout().isScalar() ? "0" : index) + "]";
    }

    /** Writes value {@code v} of step {@code e} at entry {@code e} to its register, export and outputs. */
    private void keep(StringBuilder b, Expr e, String v, String indent) {
      long m = e.layout().size();
      Integer r = register.get(e);
      if (r != null && !structural(e)) {
        b.append(indent).append('R').append(r).append("[e] = ").append(v).append(";\n");
      }
      Export ex = exports.get(e);
      if (ex != null && ex.pass() == pass) {
        b.append(indent).append(writable(ex.name())).append('[').append(itemIndex()).append(" * ").append(m)
            .append("LL + e] = ").append(v).append(";\n");
      }
      for (Map.Entry<String, Expr> o : passOutputs(pass).entrySet()) {
        if (o.getValue() == e) {
          b.append(indent).append(outputParams.get(o.getKey())).append('[').append(itemIndex()).append(" * ")
              .append(m).append("LL + e] = ").append(v).append(";\n");
        }
      }
    }

    private void run(StringBuilder b, List<Expr> unit) {
      long m = unit.get(0).layout().size();
      b.append("  for (long long e = tid; e < ").append(m).append("LL; e += nt) {\n");
      Map<Expr, String> locals = new IdentityHashMap<>();
      for (Expr e : unit) {
        String v = "t" + locals.size();
        String value;
        if (spread(e)) {
          int p = e.layout().pixels();
          value = ref(e.a(), e.op() == Expr.Op.SPREAD_ROW ? "(e / " + p + ")" : "(e % " + p + ")", locals);
        } else {
          List<Expr> ops = e.operands();
          String[] x = new String[ops.size()];
          for (int k = 0; k < x.length; k++) {
            x[k] = ref(ops.get(k), "e", locals);
          }
          b.append(CudaOps.statements(e, float32, v, "    ", x));
          locals.put(e, v);
          keep(b, e, v, "    ");
          continue;
        }
        b.append("    real ").append(v).append(" = ").append(value).append(";\n");
        locals.put(e, v);
        keep(b, e, v, "    ");
      }
      b.append("  }\n");
    }

    private void structuralStep(StringBuilder out, Expr e) {
      String target = "R" + register.get(e);
      Expr a = e.a();
      long m = e.layout().size();
      StringBuilder kept = new StringBuilder();
      keep(kept, e, target + "[e]", "    ");
      // Written out by the threads that computed each entry: no barrier between.
      String write = kept.length() == 0 ? ""
          : "  for (long long e = tid; e < " + m + "LL; e += nt) {\n" + kept + "  }\n";
      switch (e.op()) {
        case DIAGONAL -> {
          int p = e.layout().pixels();
          kernel(out, "  for (long long e = tid; e < " + p + "LL; e += nt) {\n    " + target + "[e] = "
              + ref(a, "(e * " + p + "LL + e)", Map.of()) + ";\n  }\n" + write, p, false);
        }
        case REDUCE -> {
          long n = a.layout().size();
          kernel(out, "  {\n    double s = 0;\n    for (long long e = tid; e < " + n + "LL; e += nt) {\n"
              + "      s += (double) " + ref(a, "e", Map.of()) + ";\n    }\n"
              + "    red[tid] = s;\n    __syncthreads();\n    if (tid == 0) {\n      double total = 0;\n"
              + "      for (int k = 0; k < nt; k++) {\n        total += red[k];\n      }\n      " + target
              + "[0] = (real) (total * " + Double.toHexString(e.value()) + ");\n    }\n  }\n" + write, n, true);
        }
        case PIXELS -> {
          PixelMap map = e.map();
          int d = map.rank();
          String from = pointer(a);
          for (int k = 0; k < d; k++) {
            String to = k == d - 1 ? target : k % 2 == 0 ? "PA" : "PB";
            StringBuilder b = new StringBuilder();
            long entries = axis(b, map, k, from, to);
            kernel(out, b + (k == d - 1 ? write : ""), entries, false);
            from = to;
          }
        }
        case SOFTMAX -> {
          // One thread per row, as the cpu engine: the maximum, the sum of the shifted exponentials,
          // then each exponential (recomputed, so that no double is kept per entry) over the sum.
          int p = e.layout().pixels();
          StringBuilder row = new StringBuilder();
          keep(row, e, target + "[e]", "      ");
          String x = "x[q]";
          kernel(out, "  for (long long r = tid; r < " + p + "LL; r += nt) {\n"
              + "    const real* x = " + pointer(a) + " + r * " + p + "LL;\n"
              + "    double max = (double) x[0];\n"
              + "    for (int q = 1; q < " + p + "; q++) {\n      max = (double) " + x + " > max ? (double) " + x
              + " : max;\n    }\n"
              + "    double sum = 0;\n"
              + "    for (int q = 0; q < " + p + "; q++) {\n      sum += exp((double) " + x + " - max);\n    }\n"
              + "    for (int q = 0; q < " + p + "; q++) {\n      long long e = r * " + p + "LL + q;\n      "
              + target + "[e] = (real) (exp((double) " + x + " - max) / sum);\n" + row + "    }\n  }\n", p, false);
        }
        case ATTEND -> {
          // b a c^T as two products, each entry a sum over q in the cpu engine's order; the launch
          // between them is the barrier. Thread f takes u = f / p, v = f % p, so that the threads
          // of a warp (consecutive v) read one number of one operand and consecutive numbers of
          // the other: the first launch computes (b a)[u, v] and keeps b a transposed in PA (at
          // v p + u), the second reads (b a)[v, q] at q p + v and writes entry [v, u] (a strided
          // write per entry, in place of p strided reads).
          int p = e.layout().pixels();
          String b = pointer(e.b());
          String c = pointer(e.c());
          kernel(out, product("(double) " + b + "[u * " + p + "LL + q] * " + pointer(a) + "[q * " + p + "LL + v]",
              "PA[v * " + p + "LL + u]", p, ""), m, false);
          kernel(out, product("(double) PA[q * " + p + "LL + v] * " + c + "[u * " + p + "LL + q]",
              target + "[e]", p, kept.toString()), m, false);
        }
        default -> throw new IllegalStateException(e.op().name());
      }
    }

    /**
     * Each entry {@code [v, u]} ({@code e = v p + u}) of a {@code p x p} block as the sum of {@code
     * term} over {@code q} (in double, {@code q} ascending, as the cpu engine), stored to {@code to},
     * then {@code kept}; thread {@code f} takes {@code u = f / p}, {@code v = f % p}.
     */
    private String product(String term, String to, int p, String kept) {
      return "  for (long long f = tid; f < " + (long) p * p + "LL; f += nt) {\n"
          + "    long long u = f / " + p + ";\n    long long v = f % " + p + ";\n"
          + "    long long e = v * " + p + "LL + u;\n    (void) e;\n"
          + "    double s = 0;\n    for (int q = 0; q < " + p + "; q++) {\n      s += " + term + ";\n    }\n    "
          + to + " = (real) s;\n" + kept + "  }\n";
    }

    /**
     * Axis {@code k} of {@code m} from the block at {@code in} to {@code out}: each output entry, its
     * indices decomposed by constants, gathers its terms from a table of input offsets and weights.
     */
    private long axis(StringBuilder b, PixelMap m, int k, String in, String out) {
      boolean full = m.input().kind() == Layout.Kind.FULL;
      int d = m.rank();
      int[] din = dims(m, k);
      int[] dout = dims(m, k + 1);
      int rank = full ? 2 * d : d;
      long[] inStride = new long[rank];
      long acc = 1;
      for (int x = rank - 1; x >= 0; x--) {
        inStride[x] = acc;
        acc *= din[x % d];
      }
      long size = 1;
      for (int x = 0; x < rank; x++) {
        size *= dout[x % d];
      }
      String table = table(m, k, full ? din[k] : 0, inStride[k], full ? inStride[d + k] : 0);
      b.append("  for (long long e = tid; e < ").append(size).append("LL; e += nt) {\n    long long r = e;\n");
      for (int x = rank - 1; x >= 0; x--) {
        int n = dout[x % d];
        b.append("    int x").append(x).append(" = (int) (r % ").append(n).append(");\n");
        if (x > 0) {
          b.append("    r /= ").append(n).append(";\n");
        }
      }
      b.append("    int o = ").append(full ? "x" + k + " * " + dout[k] + " + x" + (d + k) : "x" + k).append(";\n")
          .append("    long long at = 0");
      for (int x = 0; x < rank; x++) {
        if (x != k && !(full && x == d + k)) {
          b.append(" + (long long) x").append(x).append(" * ").append(inStride[x]).append("LL");
        }
      }
      b.append(";\n    real s = 0;\n    for (int t = ").append(table).append("_start[o]; t < ").append(table)
          .append("_start[o + 1]; t++) {\n      s += ").append(table).append("_w[t] * ").append(in).append("[at + ")
          .append(table).append("_at[t]];\n    }\n    ").append(out).append("[e] = s;\n  }\n");
      return size;
    }
  }

  private static boolean spread(Expr e) {
    return e.op() == Expr.Op.SPREAD_ROW || e.op() == Expr.Op.SPREAD_COL;
  }

  /** The grid after the first {@code k} axes of {@code m} are mapped. */
  private static int[] dims(PixelMap m, int k) {
    int[] in = m.input().grid();
    int[] out = m.outputGrid();
    int[] g = new int[in.length];
    for (int a = 0; a < g.length; a++) {
      g[a] = a < k ? out[a] : in[a];
    }
    return g;
  }

  private static long size(int[] grid, boolean full) {
    long s = 1;
    for (int g : grid) {
      s *= full ? (long) g * g : g;
    }
    return s;
  }

  private static String join(int[] values) {
    StringBuilder b = new StringBuilder();
    for (int v : values) {
      b.append(b.length() == 0 ? "" : ", ").append(v);
    }
    return b.toString();
  }

  /**
   * The name of the tables of axis {@code k} of {@code m}, its sparse matrix by output index: {@code
   * _start} (where each output's terms start), {@code _at} (each term's input offset in the block:
   * pixel {@code f}, or pair {@code f = p n + q} as {@code p pStride + q qStride}) and {@code _w}.
   * Equal axes (the layers of a deep network) share one.
   */
  private String table(PixelMap m, int k, int n, long pStride, long qStride) {
    int[] shape = m.denseShape(k);
    double[] dense = m.dense(k);
    int in = shape[0];
    int out = shape[1];
    StringBuilder start = new StringBuilder("0");
    StringBuilder at = new StringBuilder();
    StringBuilder w = new StringBuilder();
    int terms = 0;
    for (int o = 0; o < out; o++) {
      for (int i = 0; i < in; i++) {
        double v = dense[i * out + o];
        if (v != 0) {
          long offset = n > 0 ? (i / n) * pStride + (i % n) * qStride : i * pStride;
          at.append(terms == 0 ? "" : ",").append(offset);
          w.append(terms == 0 ? "" : ",").append(entry(v));
          terms++;
        }
      }
      start.append(',').append(terms);
    }
    if (terms == 0) {
      at.append('0');
      w.append('0');
    }
    String key = start + "|" + at + "|" + w;
    return tables.computeIfAbsent(key, x -> {
      String name = "T" + tables.size();
      tableSource.append("NTK_TABLE int ").append(name).append("_start[] = {").append(start).append("};\n")
          .append("NTK_TABLE long long ").append(name).append("_at[] = {").append(at).append("};\n")
          .append("NTK_TABLE real ").append(name).append("_w[] = {").append(w).append("};\n");
      return name;
    });
  }

  /**
   * The name of the table holding constant block {@code values} ({@link Expr.Op#BLOCK}: attention's
   * positional embeddings, a {@code DotGeneral}'s pixel-pair weights), row-major; equal blocks (the
   * layers of a deep network) share one.
   */
  private String constantBlock(double[] values) {
    StringBuilder v = new StringBuilder();
    for (double x : values) {
      v.append(v.length() == 0 ? "" : ",").append(entry(x));
    }
    return tables.computeIfAbsent("block|" + v, x -> {
      String name = "C" + tables.size();
      tableSource.append("NTK_TABLE real ").append(name).append("[] = {").append(v).append("};\n");
      return name;
    });
  }

  /**
   * A table entry, exactly: a whole number as an integer (the zeros of a sparse block, P^2 of them
   * for positional embeddings, take one character), any other as a hexadecimal floating literal.
   */
  private static String entry(double v) {
    if (v == Math.rint(v) && Math.abs(v) < 0x1p53 && !(v == 0 && 1 / v < 0)) {
      return Long.toString((long) v);
    }
    return Double.isFinite(v) ? Double.toHexString(v) : CudaOps.literal(v);
  }

  @Override
  public String toString() {
    return String.format(Locale.ROOT, "CudaSource[%s, %s, %d exports, %d chars]", float32 ? "float32" : "float64",
        blocks ? "pixel blocks" : "one thread per item", exportList.size(), source.length());
  }
}
