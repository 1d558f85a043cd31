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
        subcommands = {BenchCommand.Gemm.class, BenchCommand.RopeBench.class, BenchTrain.class, BenchModel.class})
final class BenchCommand implements Runnable {
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new picocli.CommandLine.ParameterException(spec.commandLine(), "name a benchmark: gemm, rope");
    }

    @Command(name = "gemm", mixinStandardHelpOptions = true,
            description = "GFLOP/s of fp32 C = A·Bᵀ on square matrices (min/median/max over repeats).")
    static final class Gemm implements Runnable {
        @Option(names = "--size", split = ",", paramLabel = "N", description = "Matrix sizes (default: 1024,2048,4096).")
        List<Integer> sizes = List.of(1024, 2048, 4096);

        @Option(names = "--repeats", paramLabel = "R", description = "Timed repeats per size (default: ${DEFAULT-VALUE}).")
        int repeats = 5;

        @Option(names = "--json", description = "Print one JSON object on standard output.")
        boolean json;

        @Mixin
        Main.ComputeOptions compute;

        @Override
        public void run() {
            compute.apply();
            if (repeats < 1) throw new LongspanException("--repeats must be at least 1, got " + repeats);
            for (int n : sizes) if (n < 1) throw new LongspanException("--size must be positive, got " + n);
            List<Map<String, Object>> rows = new ArrayList<>();
            if (!json) System.out.printf("fp32 GEMM C = A·Bᵀ, %d threads, %s%n", Parallel.threads(), Simd.REASON);
            for (int n : sizes) {
                SplittableRandom rnd = new SplittableRandom(42);
                float[] a = new float[n * n], b = new float[n * n], c = new float[n * n];
                for (int i = 0; i < a.length; i++) { a[i] = (float) rnd.nextDouble(-1, 1); b[i] = (float) rnd.nextDouble(-1, 1); }
                double flops = 2.0 * n * n * (double) n;
                int warm = Math.max(1, (int) Math.min(3, 2e10 / flops));
                for (int w = 0; w < warm; w++) Matmul.abT(c, 0, a, 0, b, 0, n, n, n, false);
                double[] gf = new double[repeats];
                for (int r = 0; r < repeats; r++) {
                    long t0 = System.nanoTime();
                    Matmul.abT(c, 0, a, 0, b, 0, n, n, n, false);
                    gf[r] = flops / (System.nanoTime() - t0);
                    System.err.printf("  N=%d repeat %d/%d: %.1f GFLOP/s%n", n, r + 1, repeats, gf[r]);
                }
                Stats s = Stats.of(gf);
                Map<String, Object> row = new LinkedHashMap<>();
                row.put("n", n);
                row.put("gflops_min", s.min());
                row.put("gflops_median", s.median());
                row.put("gflops_max", s.max());
                rows.add(row);
                if (!json) System.out.printf("N=%5d  GFLOP/s min %7.1f  median %7.1f  max %7.1f%n", n, s.min(), s.median(), s.max());
            }
            if (json) {
                Map<String, Object> out = new LinkedHashMap<>();
                out.put("benchmark", "gemm");
                out.put("op", "C = A*B^T fp32");
                out.put("threads", Parallel.threads());
                out.put("kernels", Simd.REASON);
                out.put("vector_bits", Simd.VECTOR_BITS);
                out.put("jdk", Runtime.version().toString());
                out.put("results", rows);
                Json.print(out);
            }
        }
    }

    @Command(name = "rope", mixinStandardHelpOptions = true,
            description = "Speed of the in-place RoPE rotation of x [H,N,D] (cos/sin tables included), min/median/max over repeats.")
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

        @Option(names = "--json", description = "Print one JSON object on standard output.")
        boolean json;

        @Mixin
        Main.ComputeOptions compute;

        @Override
        public void run() {
            compute.apply();
            if (repeats < 1) throw new LongspanException("--repeats must be at least 1, got " + repeats);
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
                for (int w = 0; w < 5; w++) rope.forward(x, 0, heads, n, start);
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
