package dev.longspan.cli;

import dev.longspan.eval.MemoryProbe;
import dev.longspan.kernel.Simd;
import dev.longspan.model.Generator;
import dev.longspan.model.InferenceSession;
import dev.longspan.model.ModelConfig;
import dev.longspan.format.ModelLoader;
import dev.longspan.model.Sampler;
import dev.longspan.tensor.Parallel;
import dev.longspan.util.LongspanException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

@Command(name = "model", mixinStandardHelpOptions = true,
        description = {"Inference speed of a model, llama-bench style.",
                "Load time and resident memory, prefill tokens/s at each prompt length (pp) and decode tokens/s after it (tg), peak heap, per-layer attention."})
final class BenchModel implements Runnable {
    @Option(names = "--model", required = true, paramLabel = "PATH",
            description = "A GGUF file, a Hugging Face safetensors directory or a Longspan model directory.") Path model;
    @Option(names = "--prompt-lengths", paramLabel = "L,...", description = "Prompt lengths (default: ${DEFAULT-VALUE}).") String lengths = "512,4k";
    @Option(names = "--gen", paramLabel = "N", description = "Tokens decoded after each prompt (default: ${DEFAULT-VALUE}).") int gen = 32;
    @Option(names = "--repeats", paramLabel = "R", description = "Timed repeats per length (default: ${DEFAULT-VALUE}).") int repeats = 1;
    @Option(names = "--warmup", paramLabel = "W", description = {"Untimed runs at each prompt length before its timed repeats (default: ${DEFAULT-VALUE}).",
            "llama-bench runs one; without it the first timed run also pays for the JIT compiling that length's paths."}) int warmup = 0;
    @Option(names = "--attention", paramLabel = "SPEC", description = "Override the attention plan (one pattern for every layer, or a masformer plan).") String attention;
    @Option(names = "--rope", paramLabel = "SPEC", description = "Override the RoPE config.") String rope;
    @Option(names = "--dequantize", description = ModelLoading.DEQUANTIZE) boolean dequantize;
    @Option(names = "--no-repack", description = ModelLoading.NO_REPACK) boolean noRepack;
    @Option(names = "--kv", paramLabel = "P", description = {"KV cache precision: f32 or f16 (default: ${DEFAULT-VALUE}).",
            "f16 is llama.cpp's default: half the bytes a decoding step reads after a prompt."}) String kv = "f32";
    @Option(names = "--json", description = "Print one JSON object on standard output.") boolean json;
    @Mixin Main.ComputeOptions compute;

    @Override
    public void run() {
        compute.apply();
        int[] ls = Sizes.parseList(lengths, "--prompt-lengths");
        if (gen < 1) throw new LongspanException("--gen must be at least 1, got " + gen);
        if (repeats < 1) throw new LongspanException("--repeats must be at least 1, got " + repeats);
        if (warmup < 0) throw new LongspanException("--warmup must be at least 0, got " + warmup);
        boolean halfKv = KvFlag.half(kv);
        long l0 = System.nanoTime();
        ModelLoader.LoadedModel lm = ModelLoading.load(model, attention, rope, ModelLoading.weights(dequantize, noRepack), null);
        double loadSeconds = (System.nanoTime() - l0) / 1e9;
        long rssLoaded = residentBytes();
        ModelConfig c = lm.model().config;
        dev.longspan.model.InferenceOptions options = new dev.longspan.model.InferenceOptions(halfKv, c.logn());
        int longest = java.util.Arrays.stream(ls).max().orElse(0);
        dev.longspan.model.MemoryEstimate.requireInference(c, longest + gen, longest, 1, halfKv, "--prompt-lengths: a prompt of " + longest + " tokens");
        int V = Math.min(c.vocabSize(), lm.tokenizer().vocabSize());
        if (!json) {
            System.out.printf("%s: %s, %,d parameters, %d layers, dim %d, %d heads (%d kv) x %d; loaded in %.1f s%n", model, lm.format(),
                    c.parameterCount(), c.layers(), c.dim(), c.heads(), c.kvHeads(), c.headDim(), loadSeconds);
            System.out.printf("weights %,d MB (%s), resident memory after load %,d MB%n", lm.model().weightBytes() >> 20,
                    !lm.model().keepsStoredWeights() ? "float32 in the heap"
                            : lm.model().keepsRepackedWeights() ? "in their stored types, Q8_0/Q4_K/F16 repacked" : "kept as stored, memory-mapped", rssLoaded >> 20);
            System.out.printf("%d threads, %s%n", Parallel.threads(), Simd.REASON);
        }
        // warm-up: JIT-compile the prefill and decode paths
        run(lm, Math.min(64, ls[0]), 4, V, 0, options);
        List<Map<String, Object>> rows = new ArrayList<>();
        for (int L : ls) {
            double[] pp = new double[repeats], tg = new double[repeats];
            long peak = 0;
            InferenceSession last = null;
            for (int w = 0; w < warmup; w++) run(lm, L, gen, V, -(w + 1), options);
            for (int r = 0; r < repeats; r++) {
                MemoryProbe mem = MemoryProbe.start();
                double[] t = run(lm, L, gen, V, r + 1, options);
                peak = Math.max(peak, mem.peak());
                pp[r] = L / t[0];
                tg[r] = gen / t[1];
            }
            last = new InferenceSession(lm.model(), L + gen, options);
            Stats p = Stats.of(pp), g = Stats.of(tg);
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("prompt_tokens", L);
            row.put("gen_tokens", gen);
            row.put("pp_tokens_per_s", stats(p));
            row.put("tg_tokens_per_s", stats(g));
            row.put("peak_heap_bytes", peak);
            row.put("kv_cache_bytes", last.cacheBytes());
            row.put("resident_bytes", residentBytes());
            rows.add(row);
            if (!json) {
                System.out.printf("resident memory %,d MB%n", residentBytes() >> 20);
                System.out.printf("pp%-6s %9.1f tok/s (min %.1f, max %.1f)   tg%-4d at %-6s %7.2f tok/s (min %.2f, max %.2f)   peak heap %,d MB, KV cache %,d MB%n",
                        Sizes.format(L), p.median(), p.min(), p.max(), gen, Sizes.format(L), g.median(), g.min(), g.max(),
                        peak >> 20, last.cacheBytes() >> 20);
            }
        }
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("model", model.toString());
        out.put("format", lm.format().name().toLowerCase(java.util.Locale.ROOT));
        out.put("parameters", c.parameterCount());
        out.put("threads", Parallel.threads());
        out.put("simd", Simd.REASON);
        out.put("load_seconds", loadSeconds);
        out.put("warmup_runs", warmup);
        out.put("weights", !lm.model().keepsStoredWeights() ? "float32" : lm.model().keepsRepackedWeights() ? "repacked" : "stored");
        out.put("weight_bytes", lm.model().weightBytes());
        out.put("resident_bytes_after_load", rssLoaded);
        out.put("attention", c.attentionSpecs());
        out.put("rope", c.rope().toSpec());
        out.put("kv", options.halfKv() ? "f16" : "f32");
        out.put("results", rows);
        if (json) Json.print(out);
        else {
            System.out.println("attention per layer:");
            for (int l = 0; l < c.layers(); l++) System.out.printf("  layer %2d  %s%n", l, c.attention().get(l).spec());
        }
    }

    // VmRSS of this process (Linux /proc/self/status), -1 where there is none
    static long residentBytes() {
        try {
            for (String line : java.nio.file.Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmRSS:")) return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
            }
        } catch (java.io.IOException | RuntimeException e) {
            return -1;
        }
        return -1;
    }

    private static Map<String, Object> stats(Stats s) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("min", s.min()); m.put("median", s.median()); m.put("max", s.max());
        return m;
    }

    // {prefill seconds, decode seconds} for a random prompt of L tokens then n greedy steps
    private static double[] run(ModelLoader.LoadedModel lm, int L, int n, int V, long seed, dev.longspan.model.InferenceOptions options) {
        SplittableRandom rnd = new SplittableRandom(seed);
        int[] ids = new int[L];
        for (int i = 0; i < L; i++) ids[i] = rnd.nextInt(V);
        InferenceSession s = new InferenceSession(lm.model(), L + n, options);
        // n + 1 tokens: the last is chosen but not fed, so exactly n decode steps are timed; ids only, no stop
        Generator.Result r = new Generator(s, null, new Sampler(0f, 1f, 0)).generate(ids, Generator.Options.of(n + 1), piece -> { });
        return new double[]{r.prefillSeconds(), r.decodeSeconds()};
    }
}
