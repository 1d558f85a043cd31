package dev.longspan.eval;

import dev.longspan.attention.Pattern;
import dev.longspan.attention.Plan;
import dev.longspan.model.ModelConfig;
import dev.longspan.model.RopePositions;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The attention work of a model's plan, counted from the (query, key) pairs each layer's tile plan
 * really computes ({@link Plan#pairs()}: every head, causal, a key reached through two merged
 * parts counted twice), not estimated from a formula. Select-and-merge's tiles exist only once it
 * has chosen its regions, so its plan is prepared on seeded random queries and keys first: every
 * row then takes its own block and as many whole earlier regions as it may choose, which is the
 * same count whatever the regions chosen.
 *
 * <p>FLOPs are those of the forward pass: 2·D for the score q·k and 2·D for adding p·v into the
 * output, per pair (softmax and the projections not counted).
 */
public final class AttentionCost {
    private AttentionCost() {}

    /** One plan at one length: pairs and FLOPs per token, summed over the layers. */
    public record Cost(int length, long[] pairsPerLayer, double pairsPerToken, double flopsPerToken) {}

    /** Forward attention FLOPs per (query, key) pair of one head of dimension {@code headDim}. */
    public static long flopsPerPair(int headDim) { return 4L * headDim; }

    /** The cost of every layer of {@code config} on a causal sequence of {@code n} tokens. */
    public static Cost of(ModelConfig config, int n) {
        List<Pattern> layers = config.attention();
        long[] pairs = new long[layers.size()];
        Map<Pattern, Long> seen = new HashMap<>();   // layers that share a pattern are counted once
        long total = 0;
        for (int l = 0; l < pairs.length; l++) {
            pairs[l] = seen.computeIfAbsent(layers.get(l), p -> pairs(p, n, config.heads(), config.kvHeads(), config.headDim()));
            total += pairs[l];
        }
        double perToken = (double) total / n;
        return new Cost(n, pairs, perToken, perToken * flopsPerPair(config.headDim()));
    }

    /** (query, key) pairs over all heads that pattern computes on a causal sequence of n tokens. */
    public static long pairs(Pattern pattern, int n, int heads, int kvHeads, int headDim) {
        Plan plan = Plan.of(pattern, n, heads, kvHeads, true);
        if (plan.movesPositions()) plan.selectedPositions(RopePositions.plain(headDim));
        if (Plan.selects(pattern)) {
            // the count does not depend on which regions are chosen, only that the choice is made
            SplittableRandom rnd = new SplittableRandom(1);
            float[] q = new float[Math.multiplyExact(Math.multiplyExact(heads, n), headDim)];
            float[] k = new float[Math.multiplyExact(Math.multiplyExact(kvHeads, n), headDim)];
            for (int i = 0; i < q.length; i++) q[i] = (float) rnd.nextGaussian();
            for (int i = 0; i < k.length; i++) k[i] = (float) rnd.nextGaussian();
            plan.prepare(q, k, headDim);
        }
        return plan.pairs();
    }
}
