package dev.longspan.cli;

import dev.longspan.kernel.Matmul;
import dev.longspan.kernel.Simd;
import dev.longspan.tensor.Parallel;
import dev.longspan.util.LongspanException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Benchmarks (speed is measured here, never in tests).",
        subcommands = {BenchCommand.Gemm.class, BenchCommand.RopeBench.class, BenchTrain.class, AttentionBench.class, BenchModel.class})
final class BenchCommand implements Runnable {
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new picocli.CommandLine.ParameterException(spec.commandLine(), "name a benchmark: gemm, rope, train, attention or model");
    }

    @Command(name = "gemm", mixinStandardHelpOptions = true,
            description = {"GFLOP/s of fp32 matrix products on square N×N matrices.",
                    "Min/median/max over timed repeats, after a warm-up of at least --warmup seconds (and 3 runs) so the JIT",
                    "has compiled the kernels. Compare with numpy/OpenBLAS:",
                    "  python3 scripts/bench-openblas.py --with-longspan   (see docs/PERFORMANCE.md)"})
    static final class Gemm implements Runnable {
        enum Op { abT, ab, atB }

        @Option(names = "--size", split = ",", paramLabel = "N", description = "Matrix sizes (default: 1024,2048,4096).")
        List<Integer> sizes = List.of(1024, 2048, 4096);

        @Option(names = "--op", paramLabel = "OP", description = "Product: abT (C = A·Bᵀ, default), ab (C = A·B) or atB (C = Aᵀ·B).")
        Op op = Op.abT;

        @Option(names = "--repeats", paramLabel = "R", description = "Timed repeats per size (default: ${DEFAULT-VALUE}).")
        int repeats = 5;

        @Option(names = "--warmup", paramLabel = "SECONDS", description = "Minimum warm-up time, once on N=256 and then per size (default: ${DEFAULT-VALUE}).")
        double warmup = 1.0;

        @Option(names = "--clock", paramLabel = "CLOCK",
                description = "wall (default) or cpu: CPU time of the calling thread, needs --threads 1; on a shared machine it does not count time the thread waited for a core.")
        String clock = "wall";

        @Option(names = "--json", description = "Print one JSON object on standard output.")
        boolean json;

        @Mixin
        Main.ComputeOptions compute;

        @Override
        public void run() {
            compute.apply();
            boolean cpu = switch (clock) {
                case "wall" -> false;
                case "cpu" -> true;
                default -> throw new LongspanException("--clock must be wall or cpu, got " + clock);
            };
            if (cpu && Parallel.threads() != 1) throw new LongspanException("--clock cpu measures one thread: add --threads 1");
            var mx = java.lang.management.ManagementFactory.getThreadMXBean();
            if (repeats < 1) throw new LongspanException("--repeats must be at least 1, got " + repeats);
            if (!(warmup >= 0)) throw new LongspanException("--warmup must be a non-negative number of seconds, got " + warmup);
            for (int n : sizes) {
                if (n < 1 || n > 46340) throw new LongspanException("--size must be between 1 and 46340, got " + n);
            }
            Map<String, Object> env = environment();
            if (!json) {
                System.out.printf("fp32 GEMM %s, %d threads, %s clock; %s; JDK %s, JIT %s%n", opName(op), Parallel.threads(), clock,
                        Simd.REASON, env.get("jdk"), env.get("jit"));
            }
            warmUpJit(op, warmup);
            List<Map<String, Object>> rows = new ArrayList<>();
            for (int n : sizes) {
                SplittableRandom rnd = new SplittableRandom(42);
                float[] a = new float[n * n], b = new float[n * n], c = new float[n * n];
                for (int i = 0; i < a.length; i++) { a[i] = (float) rnd.nextDouble(-1, 1); b[i] = (float) rnd.nextDouble(-1, 1); }
                double flops = 2.0 * n * n * (double) n;
                long warmEnd = System.nanoTime() + (long) (warmup * 1e9);
                int warmRuns = 0;
                while (warmRuns < 3 || System.nanoTime() < warmEnd) {
                    run(op, c, a, b, n);
                    warmRuns++;
                }
                System.err.printf("  N=%d: %d warm-up runs%n", n, warmRuns);
                double[] gf = new double[repeats];
                for (int r = 0; r < repeats; r++) {
                    long t0 = cpu ? mx.getCurrentThreadCpuTime() : System.nanoTime();
                    run(op, c, a, b, n);
                    gf[r] = flops / ((cpu ? mx.getCurrentThreadCpuTime() : System.nanoTime()) - t0);
                    System.err.printf("  N=%d repeat %d/%d: %.1f GFLOP/s%n", n, r + 1, repeats, gf[r]);
                }
                Stats s = Stats.of(gf);
                Map<String, Object> row = new LinkedHashMap<>();
                row.put("n", n);
                row.put("gflops_min", s.min());
                row.put("gflops_median", s.median());
                row.put("gflops_max", s.max());
                row.put("gflops", gf);
                rows.add(row);
                if (!json) System.out.printf("N=%5d  GFLOP/s min %7.1f  median %7.1f  max %7.1f%n", n, s.min(), s.median(), s.max());
            }
            if (json) {
                Map<String, Object> out = new LinkedHashMap<>();
                out.put("benchmark", "gemm");
                out.put("op", opName(op) + " fp32");
                out.put("clock", clock);
                out.putAll(env);
                out.put("repeats", repeats);
                out.put("results", rows);
                Json.print(out);
            }
        }

        /**
         * Until C2 has compiled the micro-kernel (a second or two; longer on a busy machine) the
         * Vector API runs interpreted, hundreds of times slower: warm it up on 256×256 products
         * first, so that a large first size is not spent there.
         */
        static void warmUpJit(Op op, double seconds) {
            int n = 256;
            float[] a = new float[n * n], b = new float[n * n], c = new float[n * n];
            java.util.Arrays.fill(a, 0.5f);
            java.util.Arrays.fill(b, 0.25f);
            long end = System.nanoTime() + (long) (seconds * 1e9);
            int runs = 0;
            long t0 = System.nanoTime();
            while (runs < 20 || System.nanoTime() < end) {
                run(op, c, a, b, n);
                runs++;
            }
            System.err.printf("  JIT warm-up: %d runs of N=%d in %.1f s%n", runs, n, (System.nanoTime() - t0) / 1e9);
        }

        private static String opName(Op op) {
            return switch (op) { case abT -> "C = A*B^T"; case ab -> "C = A*B"; case atB -> "C = A^T*B"; };
        }

        private static void run(Op op, float[] c, float[] a, float[] b, int n) {
            switch (op) {
                case abT -> Matmul.abT(c, 0, a, 0, b, 0, n, n, n, false);
                case ab -> Matmul.ab(c, 0, a, 0, b, 0, n, n, n, false);
                case atB -> Matmul.atB(c, 0, a, 0, b, 0, n, n, n, false);
            }
        }
    }

    /** What a benchmark result depends on: JDK, JIT, vector width, threads, CPU count. */
    static Map<String, Object> environment() {
        Map<String, Object> env = new LinkedHashMap<>();
        env.put("jdk", Runtime.version().toString());
        env.put("vm", System.getProperty("java.vm.name"));
        var jit = java.lang.management.ManagementFactory.getCompilationMXBean();
        env.put("jit", jit == null ? "none (interpreter)" : jit.getName());
        env.put("kernels", Simd.REASON);
        env.put("vector_bits", Simd.VECTOR_BITS);
        env.put("threads", Parallel.threads());
        env.put("cpus", Runtime.getRuntime().availableProcessors());
        env.put("os_arch", System.getProperty("os.arch"));
        return env;
    }

    @Command(name = "rope", mixinStandardHelpOptions = true,
            description = {"Speed of the in-place RoPE rotation of x [H,N,D].",
                    "Cos/sin tables included; min/median/max over repeats, after untimed warm-up runs of every spec."})
    static final class RopeBench implements Runnable {
        @Option(names = "--spec", split = ";", paramLabel = "SPEC",
                description = "RoPE specs separated by ';' (dim comes from --dim).")
        List<String> specs = List.of("kind=rope,pairing=half", "kind=rope,pairing=interleaved",
                "kind=yarn,factor=8,orig=4096", "kind=dynamic-ntk,factor=4,orig=4096");

        @Option(names = "--heads", paramLabel = "H", description = "Heads (default: ${DEFAULT-VALUE}).")
        int heads = 32;

        @Option(names = "--n", paramLabel = "N", description = "Tokens (default: ${DEFAULT-VALUE}).")
        int n = 4096;

        @Option(names = "--dim", paramLabel = "D", description = "Head dimension (default: ${DEFAULT-VALUE}).")
        int dim = 128;

        @Option(names = "--start", paramLabel = "P", description = "First position (default: ${DEFAULT-VALUE}).")
        long start = 0;

        @Option(names = "--repeats", paramLabel = "R", description = "Timed repeats (default: ${DEFAULT-VALUE}).")
        int repeats = 7;

        @Option(names = "--warmup", paramLabel = "SECONDS", description = "Minimum untimed warm-up per spec, at least 5 runs (default: ${DEFAULT-VALUE}).")
        double warmup = 1.0;

        @Option(names = "--json", description = "Print one JSON object on standard output.")
        boolean json;

        @Mixin
        Main.ComputeOptions compute;

        @Override
        public void run() {
            compute.apply();
            if (repeats < 1) throw new LongspanException("--repeats must be at least 1, got " + repeats);
            if (!(warmup >= 0)) throw new LongspanException("--warmup must be a non-negative number of seconds, got " + warmup);
            if (heads < 1 || n < 1 || dim < 2) throw new LongspanException("--heads, --n must be positive and --dim at least 2");
            long size = (long) heads * n * dim;
            if (size > Integer.MAX_VALUE - 8) throw new LongspanException("H*N*D = " + size + " is too large for one array");
            float[] x = new float[(int) size];
            SplittableRandom rnd = new SplittableRandom(42);
            for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextDouble(-1, 1);
            List<Map<String, Object>> rows = new ArrayList<>();
            if (!json) System.out.printf("RoPE rotation of x [%d, %d, %d] from position %d, %d threads, %s%n", heads, n, dim, start, Parallel.threads(), Simd.REASON);
            for (String spec : specs) {
                dev.longspan.position.Rope rope = new dev.longspan.position.Rope(dev.longspan.position.RopeConfig.fromSpec(spec, dim));
                // until C2 has compiled this spec's path the rotation runs far slower: time only after that
                long warmEnd = System.nanoTime() + (long) (warmup * 1e9);
                for (int w = 0; w < 5 || System.nanoTime() < warmEnd; w++) rope.forward(x, 0, heads, n, start);
                double[] ms = new double[repeats], melem = new double[repeats];
                for (int r = 0; r < repeats; r++) {
                    long t0 = System.nanoTime();
                    rope.forward(x, 0, heads, n, start);
                    long dt = System.nanoTime() - t0;
                    ms[r] = dt / 1e6;
                    melem[r] = size / (dt / 1e3);
                }
                Stats s = Stats.of(ms), e = Stats.of(melem);
                Map<String, Object> row = new LinkedHashMap<>();
                row.put("spec", rope.config().toSpec());
                row.put("ms_min", s.min());
                row.put("ms_median", s.median());
                row.put("ms_max", s.max());
                row.put("melem_per_s_median", e.median());
                rows.add(row);
                if (!json) System.out.printf("%-60s ms min %8.2f  median %8.2f  max %8.2f  (%7.0f M elem/s)%n",
                        spec, s.min(), s.median(), s.max(), e.median());
            }
            if (json) {
                Map<String, Object> out = new LinkedHashMap<>();
                out.put("benchmark", "rope");
                out.put("shape", new int[]{heads, n, dim});
                out.put("start", start);
                out.put("threads", Parallel.threads());
                out.put("kernels", Simd.REASON);
                out.put("vector_bits", Simd.VECTOR_BITS);
                out.put("jdk", Runtime.version().toString());
                out.put("results", rows);
                Json.print(out);
            }
        }
    }
}
