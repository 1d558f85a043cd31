package dev.longspan.cli;

import dev.longspan.attention.Attention;
import dev.longspan.attention.AttentionOptions;
import dev.longspan.attention.AttentionResult;
import dev.longspan.attention.KeyValues;
import dev.longspan.attention.Pattern;
import dev.longspan.attention.Plan;
import dev.longspan.model.RopePositions;
import dev.longspan.kernel.Matmul;
import dev.longspan.kernel.Simd;
import dev.longspan.tensor.Parallel;
import dev.longspan.util.LongspanException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * {@code longspan bench attention}: time, GFLOP/s over the (query, key) pairs actually computed,
 * keys per query and extra memory of the attention engine, beside the fp32 GEMM measured in the
 * same run (the yardstick of the kernel's efficiency).
 */
@Command(name = "attention", mixinStandardHelpOptions = true,
        description = {"Time the attention engine on random q, k, v (min/median/max over repeats).",
                "FLOPs: 4·D per computed (query, key) pair forward, 10·D backward (five products)."})
final class AttentionBench implements Runnable {
    @Option(names = "--pattern", required = true, paramLabel = "SPEC", description = "Attention pattern spec.")
    String pattern;

    @Option(names = "--seq", required = true, split = ",", paramLabel = "N", description = "Sequence lengths, e.g. 16384,65536.")
    List<Integer> seqs;

    @Option(names = "--heads", paramLabel = "H", description = "Query heads (default: ${DEFAULT-VALUE}).")
    int heads = 8;

    @Option(names = "--kv-heads", paramLabel = "K", description = "Key/value heads (default: as many as query heads).")
    Integer kvHeads;

    @Option(names = "--head-dim", paramLabel = "D", description = "Head dimension (default: ${DEFAULT-VALUE}).")
    int dim = 64;

    @Option(names = "--backward", description = "Also time the backward pass.")
    boolean backward;

    @Option(names = "--bidirectional", description = "Non-causal form of the pattern.")
    boolean bidirectional;

    @Option(names = "--repeats", paramLabel = "R", description = "Timed repeats per length (default: ${DEFAULT-VALUE}).")
    int repeats = 3;

    @Option(names = "--warmup", paramLabel = "S", description = "Seconds (at least) of untimed runs on a short sequence before each length (default: ${DEFAULT-VALUE}).")
    double warmupSeconds = 3;

    @Option(names = "--gemm-size", paramLabel = "S", description = "Size of the square GEMM measured as the yardstick; 0 skips it (default: ${DEFAULT-VALUE}).")
    int gemmSize = 2048;

    @Option(names = "--json", description = "Print one JSON object on standard output.")
    boolean json;

    @Option(names = "--decode", description = {"Time one decoding step instead: one query per head at position N−1 against N cached",
            "float32 keys and values (the engine's decode path); reports µs per step and the GB/s of keys and values the step reads."})
    boolean decode;

    @Option(names = "--parallel", paramLabel = "MODE", description = {"sequence: under mpirun -np P, each --seq length is split across the P processes",
            "(LongNet's distributed attention; dense runs as ring attention); prints time per step, bytes sent per rank and the communication share."})
    String parallel;

    @Mixin
    Main.ComputeOptions compute;

    @Override
    public void run() {
        compute.apply();
        Pattern p = Pattern.parse(pattern);
        int hkv = kvHeads == null ? heads : kvHeads;
        if (heads < 1 || hkv < 1 || heads % hkv != 0) throw new LongspanException("--heads (" + heads + ") must be a positive multiple of --kv-heads (" + hkv + ")");
        if (dim < 1) throw new LongspanException("--head-dim must be positive, got " + dim);
        if (repeats < 1) throw new LongspanException("--repeats must be at least 1, got " + repeats);
        if (!(warmupSeconds >= 0)) throw new LongspanException("--warmup must be a number of seconds ≥ 0, got " + warmupSeconds);
        for (int n : seqs) {
            if (n < 1) throw new LongspanException("--seq must be positive, got " + n);
            if ((long) heads * n * dim > Integer.MAX_VALUE - 8) throw new LongspanException("--seq " + n + ": H·N·D exceeds a Java array");
        }
        if (parallel != null) {
            sequenceParallel(p, hkv);
            return;
        }
        if (decode) {
            decodeSteps(p, hkv);
            return;
        }
        AttentionOptions opt = AttentionOptions.DEFAULT.withBidirectional(bidirectional);
        if (!json) {
            System.out.printf("attention %s, H=%d, Hkv=%d, D=%d, %s, %d threads, %s%n", p.spec(), heads, hkv, dim,
                    bidirectional ? "bidirectional" : "causal", Parallel.threads(), Simd.REASON);
        }
        // the yardstick is timed compiled, like the attention: a cold GEMM flatters the attention
        if (gemmSize > 0) BenchCommand.Gemm.warmUpJit(BenchCommand.Gemm.Op.abT, warmupSeconds);
        Map<String, Object> gemm = gemmSize > 0 ? gemm(gemmSize) : null;
        if (gemm != null && !json) {
            System.out.printf("fp32 GEMM %d³ (yardstick): GFLOP/s min %.1f  median %.1f  max %.1f%n", gemmSize,
                    gemm.get("gflops_min"), gemm.get("gflops_median"), gemm.get("gflops_max"));
        }
        List<Map<String, Object>> rows = new ArrayList<>();
        for (int n : seqs) rows.add(measure(p, n, hkv, opt, gemm));
        if (json) {
            Map<String, Object> out = jsonHeader(p, hkv, null);
            out.put("kernels", Simd.REASON);
            out.put("vector_bits", Simd.VECTOR_BITS);
            out.put("jdk", Runtime.version().toString());
            out.put("flops_per_pair", Map.of("forward", 4 * dim, "backward", 10 * dim));
            if (gemm != null) out.put("gemm", gemm);
            out.put("results", rows);
            Json.print(out);
        }
    }

    private void sequenceParallel(Pattern p, int hkv) {
        if (!parallel.equals("sequence")) throw new LongspanException("--parallel must be sequence, got '" + parallel + "'");
        dev.longspan.mpi.Mpi mpi = dev.longspan.mpi.Mpi.world();
        // no --threads (the pool still has every core): the processes on this machine share its cores
        if (compute.threads == null && Parallel.threads() == Runtime.getRuntime().availableProcessors()) {
            Parallel.setThreads(dev.longspan.mpi.Mpi.threadsPerProcess());
        }
        boolean lead = mpi.rank() == 0;
        if (lead && !json) {
            System.out.printf("sequence-parallel attention %s on %d processes, H=%d, Hkv=%d, D=%d, %s, %d threads each%n", p.spec(), mpi.size(),
                    heads, hkv, dim, bidirectional ? "bidirectional" : "causal", Parallel.threads());
        }
        // one untimed step on a short sequence: the JIT compiles the same paths
        dev.longspan.mpi.SequenceParallelBench.measure(mpi, p, Math.min(seqs.getFirst(), 4096 * mpi.size()), heads, hkv, dim, bidirectional, backward, 1);
        List<Map<String, Object>> rows = new ArrayList<>();
        for (int n : seqs) {
            Map<String, Object> r = dev.longspan.mpi.SequenceParallelBench.measure(mpi, p, n, heads, hkv, dim, bidirectional, backward, repeats);
            rows.add(r);
            if (lead && !json) {
                double ft = (double) r.get("forward_seconds"), fc = (double) r.get("forward_comm_seconds");
                System.out.printf(java.util.Locale.ROOT, "N=%d (%d per rank): forward %.3f s, %.1f%% communication, sent %s bytes per rank%n",
                        n, n / mpi.size(), ft, 100 * fc / ft, java.util.Arrays.toString((long[]) r.get("forward_bytes_sent_per_rank")));
                if (backward) {
                    double bt = (double) r.get("backward_seconds"), bc = (double) r.get("backward_comm_seconds");
                    System.out.printf(java.util.Locale.ROOT, "  backward %.3f s, %.1f%% communication, sent %s bytes per rank%n",
                            bt, 100 * bc / bt, java.util.Arrays.toString((long[]) r.get("backward_bytes_sent_per_rank")));
                }
            }
        }
        if (lead && json) {
            Map<String, Object> out = jsonHeader(p, hkv, mpi.size());
            out.put("results", rows);
            Json.print(out);
        }
        mpi.finish();
    }

    // the fields every attention benchmark's JSON starts with (processes: null for one process)
    // --decode: a step's query row per head at position N−1 over the N cached rows (KeyValues over
    // float32 arrays, as a float32 KV cache serves them), through the same engine call as decoding
    private void decodeSteps(Pattern p, int hkv) {
        if (backward || bidirectional) throw new LongspanException("--decode times a causal forward step: drop --backward and --bidirectional");
        if (Plan.selects(p)) {
            throw new LongspanException("--decode: '" + p.spec() + "' selects by the KV cache's region summaries; time it with `bench model` on a model");
        }
        if (!json) System.out.printf("attention decode step %s, H=%d, Hkv=%d, D=%d, %d threads, %s%n", p.spec(), heads, hkv, dim, Parallel.threads(), Simd.REASON);
        Map<String, Object> read = readBandwidth();
        if (!json) System.out.printf(java.util.Locale.ROOT, "memory read (yardstick): %.1f GB/s (sum of a %s array on %d threads, median of 5)%n",
                read.get("gbytes_per_second_median"), bytes((long) read.get("bytes")), Parallel.threads());
        List<Map<String, Object>> rows = new ArrayList<>();
        for (int n : seqs) {
            float[] q = new float[heads * dim], k = new float[hkv * n * dim], v = new float[hkv * n * dim], o = new float[heads * dim], lse = new float[heads];
            SplittableRandom rnd = new SplittableRandom(n);
            for (int i = 0; i < q.length; i++) q[i] = (float) rnd.nextDouble(-1, 1);
            Parallel.forChunks(0, hkv, 1, (c, h0, h1) -> {
                SplittableRandom r = new SplittableRandom(31L * n + h0);
                for (int i = h0 * n * dim; i < h1 * n * dim; i++) { k[i] = (float) r.nextDouble(-1, 1); v[i] = (float) r.nextDouble(-1, 1); }
            });
            KeyValues kv = KeyValues.of(k, v, 0, n, dim);
            Plan plan = Plan.of(p, heads, hkv, true, n - 1, 1, 0, n, null);
            // warm-up, which also sizes a timed repeat (≥ 0.1 s of steps, so short caches are not timer noise)
            long w0 = System.nanoTime();
            int warm = 0;
            while (warm < 20 || (System.nanoTime() - w0 < warmupSeconds * 1e9 && warm < 1_000_000)) {
                Attention.forward(q, kv, dim, plan, AttentionOptions.DEFAULT, o, lse);
                warm++;
            }
            double perStep = (System.nanoTime() - w0) / 1e9 / warm;
            int steps = (int) Math.max(1, Math.min(1_000_000, 0.1 / perStep));
            double[] t = new double[repeats];
            for (int i = 0; i < repeats; i++) {
                long t0 = System.nanoTime();
                for (int s2 = 0; s2 < steps; s2++) Attention.forward(q, kv, dim, plan, AttentionOptions.DEFAULT, o, lse);
                t[i] = (System.nanoTime() - t0) / 1e9 / steps;
            }
            Stats st = Stats.of(t);
            if (json) System.err.printf(java.util.Locale.ROOT, "  N=%d decode: %d repeats of %d steps, median %.1f µs per step%n", n, repeats, steps, st.median() * 1e6);
            double keysPerQuery = plan.pairs() / (double) heads;
            // bytes of the keys and values the step reaches: each key/value head's rows once
            double bytes = 2.0 * Float.BYTES * dim * hkv * keysPerQuery;
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("n", n);
            row.put("keys_per_query", keysPerQuery);
            row.put("steps_per_repeat", steps);
            row.put("step_seconds", Map.of("min", st.min(), "median", st.median(), "max", st.max()));
            row.put("kv_bytes_per_step", (long) bytes);
            row.put("kv_gbytes_per_second_median", bytes / st.median() / 1e9);
            row.put("of_memory_read", bytes / st.median() / 1e9 / (double) read.get("gbytes_per_second_median"));
            rows.add(row);
            if (!json) {
                System.out.printf(java.util.Locale.ROOT, "N=%8d  keys/query %9.1f  step µs min %.1f median %.1f max %.1f  K+V %s per step, %.1f GB/s (%.0f%% of the memory read)%n",
                        n, keysPerQuery, st.min() * 1e6, st.median() * 1e6, st.max() * 1e6, bytes((long) bytes), bytes / st.median() / 1e9,
                        100 * (double) row.get("of_memory_read"));
            }
        }
        if (json) {
            Map<String, Object> out = jsonHeader(p, hkv, null);
            out.put("mode", "decode");
            out.put("kernels", Simd.REASON);
            out.put("vector_bits", Simd.VECTOR_BITS);
            out.put("jdk", Runtime.version().toString());
            out.put("memory_read", read);
            out.put("results", rows);
            Json.print(out);
        }
    }

    // the yardstick of --decode: GB/s of summing a large float array split over the worker threads, as
    // a decoding step's threads read the cache
    private static Map<String, Object> readBandwidth() {
        // 512 MiB, or a quarter of the heap where that is less (still far past the caches)
        float[] x = new float[(int) Math.min(128 << 20, Runtime.getRuntime().maxMemory() / 16)];
        java.util.Arrays.fill(x, 1f);
        int chunks = 64;
        int per = x.length / chunks;
        double[] gb = new double[5];
        for (int r = -3; r < gb.length; r++) {
            float[] parts = new float[chunks];
            long t0 = System.nanoTime();
            Parallel.forChunks(0, chunks, 1, (c, i0, i1) -> {
                for (int i = i0; i < i1; i++) parts[i] = dev.longspan.kernel.Kernels.sum(x, i * per, per);
            });
            double s = (System.nanoTime() - t0) / 1e9;
            if (r >= 0) gb[r] = 4.0 * per * chunks / s / 1e9;
        }
        Stats st = Stats.of(gb);
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("bytes", 4L * per * chunks);
        m.put("gbytes_per_second_median", st.median());
        m.put("gbytes_per_second_max", st.max());
        return m;
    }

    private Map<String, Object> jsonHeader(Pattern p, int hkv, Integer processes) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("benchmark", "attention");
        if (processes != null) {
            out.put("parallel", "sequence");
            out.put("processes", processes);
        }
        out.put("pattern", p.spec());
        out.put("heads", heads);
        out.put("kv_heads", hkv);
        out.put("head_dim", dim);
        out.put("causal", !bidirectional);
        out.put("threads", Parallel.threads());
        return out;
    }

    private Map<String, Object> measure(Pattern p, int n, int hkv, AttentionOptions opt, Map<String, Object> gemm) {
        int d = dim;
        // JIT warm-up on a short sequence: the same code paths, a small fraction of the time. Several
        // runs: until C2 has compiled the tile loops, the Vector API runs boxed and far slower.
        int warmN = Math.min(n, warmupLength(p));
        Inputs warm = randomInputs(warmN, hkv, 1);
        long warmStart = System.nanoTime();
        long warmNanos = (long) (warmupSeconds * 1e9);
        for (int i = 0; i < MAX_WARMUP_RUNS && (i < WARMUP_RUNS || System.nanoTime() - warmStart < warmNanos); i++) {
            runOnce(p, warmN, hkv, opt, warm, true);
        }

        Inputs in = randomInputs(n, hkv, 42);
        Plan plan = plan(p, n, hkv, opt);
        float[] o = new float[heads * n * d], lse = new float[heads * n];
        // and one untimed run at the full length where that is cheap: a branch the short run never
        // took would otherwise deoptimise the kernel's callers inside the timing
        if (n <= FULL_WARMUP_MAX && n > warmN) Attention.forward(in.q, in.k, in.v, d, plan, opt, o, lse);
        double[] fwd = new double[repeats], bwd = new double[repeats], fwdCpu = new double[repeats], bwdCpu = new double[repeats];
        long heapBase = usedHeap();
        resetPeaks();
        long alloc0 = allocatedBytes();
        AttentionResult r = null;
        for (int i = 0; i < repeats; i++) {
            long c0 = cpuNanos(), t0 = System.nanoTime();
            r = Attention.forward(in.q, in.k, in.v, d, plan, opt, o, lse);
            fwd[i] = (System.nanoTime() - t0) / 1e9;
            fwdCpu[i] = (cpuNanos() - c0) / 1e9;
            System.err.printf("  N=%d forward %d/%d: %.3f s (%.3f CPU s)%n", n, i + 1, repeats, fwd[i], fwdCpu[i]);
        }
        long fwdPeak = peakHeap() - heapBase, fwdAllocated = (allocatedBytes() - alloc0) / repeats;
        long bwdPeak = 0;
        if (backward) {
            float[] dO = new float[heads * n * d], dq = new float[heads * n * d], dk = new float[hkv * n * d], dv = new float[hkv * n * d];
            SplittableRandom rnd = new SplittableRandom(7);
            for (int i = 0; i < dO.length; i++) dO[i] = (float) rnd.nextDouble(-1, 1);
            heapBase = usedHeap();
            resetPeaks();
            for (int i = 0; i < repeats; i++) {
                long c0 = cpuNanos(), t0 = System.nanoTime();
                Attention.backward(r, in.q, in.k, in.v, dO, dq, dk, dv);
                bwd[i] = (System.nanoTime() - t0) / 1e9;
                bwdCpu[i] = (cpuNanos() - c0) / 1e9;
                System.err.printf("  N=%d backward %d/%d: %.3f s (%.3f CPU s)%n", n, i + 1, repeats, bwd[i], bwdCpu[i]);
            }
            bwdPeak = peakHeap() - heapBase;
        }
        long pairs = plan.pairs(), computed = plan.computedPairs();
        Stats tf = Stats.of(fwd);
        double fwdFlops = 4.0 * d * pairs;
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("n", n);
        row.put("pairs", pairs);
        row.put("computed_pairs", computed);
        row.put("useful_fraction", pairs / (double) computed);
        row.put("keys_per_query", pairs / ((double) heads * n));
        row.put("forward_seconds", Map.of("min", tf.min(), "median", tf.median(), "max", tf.max()));
        Stats cf = Stats.of(fwdCpu);
        row.put("forward_cpu_seconds_median", cf.median());
        row.put("forward_gflops_median", fwdFlops / tf.median() / 1e9);
        row.put("forward_gflops_per_cpu_second", fwdFlops / cf.median() / 1e9);
        row.put("forward_gflops_computed_median", 4.0 * d * computed / tf.median() / 1e9);
        row.put("forward_us_per_token", tf.median() / n * 1e6);
        long scratch = Attention.scratchBytesPerWorker(d) * Parallel.threads();
        long engineFwd = 4L * heads * n + plan.stateBytes() + scratch;
        row.put("extra_bytes_forward_engine", engineFwd);
        row.put("extra_bytes_forward_heap_peak", Math.max(0, fwdPeak));
        row.put("allocated_bytes_per_forward", fwdAllocated);
        if (gemm != null) {
            // the yardstick again right after this length (the machine's load drifts); both runs count
            Map<String, Object> again = gemm(gemmSize);
            double g = 0.5 * ((double) gemm.get("gflops_median") + (double) again.get("gflops_median"));
            double gc = 0.5 * ((double) gemm.get("gflops_per_cpu_second") + (double) again.get("gflops_per_cpu_second"));
            row.put("gemm_gflops_median", g);
            row.put("gemm_gflops_per_cpu_second", gc);
            row.put("forward_vs_gemm", fwdFlops / tf.median() / 1e9 / g);
            row.put("forward_vs_gemm_cpu", fwdFlops / cf.median() / 1e9 / gc);
        }
        if (!json) {
            System.out.printf("N=%8d  keys/query %9.1f  useful %.2f  forward s min %.3f median %.3f max %.3f  %6.1f GFLOP/s (%.1f per CPU-s%s)  %.3f µs/token  extra %s (heap peak %s)%n",
                    n, pairs / ((double) heads * n), pairs / (double) computed, tf.min(), tf.median(), tf.max(), fwdFlops / tf.median() / 1e9,
                    fwdFlops / cf.median() / 1e9, row.containsKey("forward_vs_gemm") ? String.format(", %.0f%% of GEMM", 100 * (double) row.get("forward_vs_gemm")) : "",
                    tf.median() / n * 1e6, bytes(engineFwd), bytes(Math.max(0, fwdPeak)));
        }
        // the engine allocates its plan and scratch (kilobytes to megabytes); far more means vectors were
        // boxed by code C2 had not compiled yet or compiled without inlining a vector helper: the times are
        // then not the kernels' (docs/PERFORMANCE.md, "Vectors that cross a call")
        if (fwdAllocated > Math.max(64L << 20, 4 * engineFwd)) {
            System.err.printf("warning: each timed forward allocated %s (boxed vectors: the JIT had not settled); rerun, or raise --warmup%n", bytes(fwdAllocated));
        }
        if (backward) {
            Stats tb = Stats.of(bwd);
            double bwdFlops = 10.0 * d * pairs;
            int group = heads / hkv;
            long engineBwd = 4L * heads * n + plan.stateBytes() + scratch + (group > 1 ? 8L * (heads - hkv) * n * d : 0);
            row.put("backward_seconds", Map.of("min", tb.min(), "median", tb.median(), "max", tb.max()));
            Stats cb = Stats.of(bwdCpu);
            row.put("backward_cpu_seconds_median", cb.median());
            row.put("backward_gflops_median", bwdFlops / tb.median() / 1e9);
            row.put("backward_gflops_per_cpu_second", bwdFlops / cb.median() / 1e9);
            row.put("backward_over_forward_cpu", cb.median() / cf.median());
            row.put("backward_over_forward", tb.median() / tf.median());
            row.put("extra_bytes_backward_engine", engineBwd);
            row.put("extra_bytes_backward_heap_peak", Math.max(0, bwdPeak));
            if (!json) {
                System.out.printf("            backward s min %.3f median %.3f max %.3f  %6.1f GFLOP/s (%.1f per CPU-s)  backward/forward %.2f  extra %s (heap peak %s)%n",
                        tb.min(), tb.median(), tb.max(), bwdFlops / tb.median() / 1e9, bwdFlops / cb.median() / 1e9, tb.median() / tf.median(),
                        bytes(engineBwd), bytes(Math.max(0, bwdPeak)));
            }
        }
        return row;
    }

    // long enough to take every path of the timed run (select-and-merge's groups start after T·R
    // tokens: a warm-up that never reaches them deoptimises the kernel in the middle of the timing)
    static int warmupLength(Pattern p) {
        return switch (p) {
            case Pattern.SelectMerge s -> (int) Math.min(1 << 20, Math.max(4096L, (long) (s.top() + 4 * s.merge()) * s.region()));
            case Pattern.Sum s -> s.terms().stream().mapToInt(AttentionBench::warmupLength).max().orElse(4096);
            default -> 4096;
        };
    }

    static final int WARMUP_RUNS = 8, MAX_WARMUP_RUNS = 200, FULL_WARMUP_MAX = 1 << 18;   // and at least --warmup seconds: C2 compiles in the background

    // the pattern bound to n; pos=selected moves rows by RoPE rotations: timed with plain RoPE (base
    // 10000) at positions 0..N−1
    private Plan plan(Pattern p, int n, int hkv, AttentionOptions opt) {
        Plan plan = Plan.of(p, n, heads, hkv, !opt.bidirectional());
        if (plan.movesPositions()) plan.selectedPositions(RopePositions.plain(dim));
        return plan;
    }

    private AttentionResult runOnce(Pattern p, int n, int hkv, AttentionOptions opt, Inputs in, boolean alsoBackward) {
        AttentionResult r = Attention.forward(in.q, in.k, in.v, dim, plan(p, n, hkv, opt), opt, new float[heads * n * dim], new float[heads * n]);
        if (alsoBackward && backward) Attention.backward(r, in.q, in.k, in.v, in.q);
        return r;
    }

    private record Inputs(float[] q, float[] k, float[] v) {}

    private Inputs randomInputs(int n, int hkv, long seed) {
        float[] q = new float[heads * n * dim], k = new float[hkv * n * dim], v = new float[hkv * n * dim];
        Parallel.forChunks(0, heads, 1, (c, h0, h1) -> {
            for (int h = h0; h < h1; h++) {
                SplittableRandom r = new SplittableRandom(seed * 1000 + h);
                for (int i = h * n * dim; i < (h + 1) * n * dim; i++) q[i] = (float) r.nextDouble(-1, 1);
                if (h < hkv) {
                    for (int i = h * n * dim; i < (h + 1) * n * dim; i++) {
                        k[i] = (float) r.nextDouble(-1, 1);
                        v[i] = (float) r.nextDouble(-1, 1);
                    }
                }
            }
        });
        return new Inputs(q, k, v);
    }

    private Map<String, Object> gemm(int s) {
        SplittableRandom rnd = new SplittableRandom(42);
        float[] a = new float[s * s], b = new float[s * s], c = new float[s * s];
        for (int i = 0; i < a.length; i++) { a[i] = (float) rnd.nextDouble(-1, 1); b[i] = (float) rnd.nextDouble(-1, 1); }
        double flops = 2.0 * s * s * (double) s;
        for (int w = 0; w < 3; w++) Matmul.abT(c, 0, a, 0, b, 0, s, s, s, false);
        double[] gf = new double[5], gc = new double[5];
        for (int r = 0; r < gf.length; r++) {
            long c0 = cpuNanos(), t0 = System.nanoTime();
            Matmul.abT(c, 0, a, 0, b, 0, s, s, s, false);
            gf[r] = flops / (System.nanoTime() - t0);
            gc[r] = flops / (cpuNanos() - c0);
        }
        Stats st = Stats.of(gf);
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("size", s);
        m.put("gflops_min", st.min());
        m.put("gflops_median", st.median());
        m.put("gflops_max", st.max());
        m.put("gflops_per_cpu_second", Stats.of(gc).median());
        return m;
    }

    // CPU time of the whole process (all threads, JIT and GC included): with the machine shared,
    // FLOPs per CPU-second measure the code's efficiency independently of what else runs
    private static long cpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
    }

    private static long usedHeap() {
        System.gc();
        long used = 0;
        for (MemoryPoolMXBean mp : ManagementFactory.getMemoryPoolMXBeans()) if (mp.getType() == MemoryType.HEAP) used += mp.getUsage().getUsed();
        return used;
    }

    // bytes allocated so far by the JVM's live threads (the workers are long-lived)
    private static long allocatedBytes() {
        return ManagementFactory.getThreadMXBean() instanceof com.sun.management.ThreadMXBean t ? t.getTotalThreadAllocatedBytes() : 0;
    }

    private static void resetPeaks() {
        for (MemoryPoolMXBean mp : ManagementFactory.getMemoryPoolMXBeans()) if (mp.getType() == MemoryType.HEAP) mp.resetPeakUsage();
    }

    // sum of the heap pools' peaks since the reset: an upper bound of the peak (pools peak at different times)
    private static long peakHeap() {
        long peak = 0;
        for (MemoryPoolMXBean mp : ManagementFactory.getMemoryPoolMXBeans()) if (mp.getType() == MemoryType.HEAP) peak += mp.getPeakUsage().getUsed();
        return peak;
    }

    private static String bytes(long b) {
        if (b >= 1L << 30) return String.format("%.2f GiB", b / (double) (1L << 30));
        if (b >= 1L << 20) return String.format("%.1f MiB", b / (double) (1L << 20));
        return String.format("%.1f KiB", b / 1024.0);
    }
}
