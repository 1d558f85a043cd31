package dev.longspan.cli;

import dev.longspan.eval.AttentionCost;
import dev.longspan.kernel.Matmul;
import dev.longspan.kernel.Simd;
import dev.longspan.model.ModelConfig;
import dev.longspan.model.TrainingPass;
import dev.longspan.model.Transformer;
import dev.longspan.tensor.Parallel;
import dev.longspan.train.TrainConfig;
import dev.longspan.util.LongspanException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Training throughput: tokens/s of forward+backward at one sequence length, and model FLOP
 * utilisation = (6·params·tokens/s + attention FLOPs/s) over the GEMM GFLOP/s of the same run.
 */
@Command(name = "train", mixinStandardHelpOptions = true,
        description = "Training tokens/s and model FLOP utilisation against the GEMM measured in the same run.")
final class BenchTrain implements Runnable {
    @Option(names = "--config", required = true, paramLabel = "FILE.json", description = "A train config (its model is used).")
    Path config;

    @Option(names = "--seq", paramLabel = "N", description = "Sequence length (default: the config's seq_len).")
    Integer seq;

    @Option(names = "--steps", paramLabel = "S", description = "Timed steps (default: ${DEFAULT-VALUE}).")
    int steps = 5;

    @Option(names = "--json", description = "Print one JSON object on standard output.")
    boolean json;

    @Mixin
    Main.ComputeOptions compute;

    @Override
    public void run() {
        compute.apply();
        TrainConfig tc;
        try {
            tc = TrainConfig.fromJson(dev.longspan.io.Json.parseObject(Files.readString(config), config.toString()), config.toString());
        } catch (IOException e) {
            throw new LongspanException(config + ": cannot read: " + e.getMessage());
        }
        if (steps < 1) throw new LongspanException("--steps must be at least 1");
        int n = seq != null ? seq : tc.seqLen();
        if (n < 2) throw new LongspanException("--seq must be at least 2");
        ModelConfig c = tc.model();
        dev.longspan.model.MemoryEstimate.requireTrainingPass(c, n, tc.recompute(), "a training step at --seq " + n);
        Transformer m = new Transformer(c);
        m.initialize(1);
        TrainingPass pass = new TrainingPass(m, n, tc.recompute());
        SplittableRandom r = new SplittableRandom(1);
        int[] tokens = new int[n], targets = new int[n];
        long[] pos = new long[n];
        for (int t = 0; t < n; t++) { tokens[t] = r.nextInt(c.vocabSize()); targets[t] = r.nextInt(c.vocabSize()); pos[t] = t; }
        // attention FLOPs per sequence: forward 4·D per (query, key) pair and head (QKᵀ and PV), counted
        // from the tile plans (select-and-merge's on random q, k), backward 2× that
        double attnFlops = 3.0 * AttentionCost.of(c, n).flopsPerToken() * n;
        long matmulParams = c.parameterCount() - (long) c.vocabSize() * c.dim() * (c.tiedEmbeddings() ? 0 : 1);
        System.err.printf("model %,d parameters, seq %d, %d threads; warming up%n", c.parameterCount(), n, Parallel.threads());
        pass.forward(tokens, targets, pos);
        pass.backward(tokens, targets, pos, 1f / n, false);
        double[] tps = new double[steps];
        for (int s = 0; s < steps; s++) {
            long t0 = System.nanoTime();
            pass.forward(tokens, targets, pos);
            pass.backward(tokens, targets, pos, 1f / n, false);
            tps[s] = n / ((System.nanoTime() - t0) / 1e9);
            System.err.printf("  step %d/%d: %,.0f tokens/s%n", s + 1, steps, tps[s]);
        }
        // the GEMM reference, measured now (same machine state)
        int g = 1024;
        float[] a = new float[g * g], b = new float[g * g], cc = new float[g * g];
        for (int i = 0; i < a.length; i++) { a[i] = (float) r.nextDouble(); b[i] = (float) r.nextDouble(); }
        Matmul.abT(cc, 0, a, 0, b, 0, g, g, g, false);
        double[] gf = new double[3];
        for (int i = 0; i < gf.length; i++) {
            long t0 = System.nanoTime();
            Matmul.abT(cc, 0, a, 0, b, 0, g, g, g, false);
            gf[i] = 2.0 * g * g * g / (System.nanoTime() - t0);
        }
        Stats st = Stats.of(tps), gs = Stats.of(gf);
        double modelGflops = (6.0 * matmulParams * st.median() + attnFlops * st.median() / n) / 1e9;
        double mfu = modelGflops / gs.median();
        if (json) {
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("benchmark", "train");
            o.put("parameters", c.parameterCount());
            o.put("seq", n);
            o.put("threads", Parallel.threads());
            o.put("kernels", Simd.REASON);
            o.put("tokens_per_s_min", st.min());
            o.put("tokens_per_s_median", st.median());
            o.put("tokens_per_s_max", st.max());
            o.put("tokens_per_s_samples", java.util.Arrays.stream(tps).boxed().toList());
            o.put("model_gflops", modelGflops);
            o.put("gemm_gflops_median", gs.median());
            o.put("mfu", mfu);
            Json.print(o);
        } else {
            System.out.printf("train  %,d params  seq %d  tokens/s min %,.0f median %,.0f max %,.0f  model %.1f GFLOP/s  GEMM %.1f GFLOP/s  MFU %.0f%%%n",
                    c.parameterCount(), n, st.min(), st.median(), st.max(), modelGflops, gs.median(), 100 * mfu);
        }
    }
}
