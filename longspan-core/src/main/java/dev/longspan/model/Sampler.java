package dev.longspan.model;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Next-token choice: greedy at temperature 0, else seeded sampling from the distribution at the
 * temperature, cut to its k most likely tokens (top-k), to the smallest set holding top-p of the
 * mass (nucleus), and to the tokens at least min-p times as likely as the most likely one, in that
 * order (each cut on what the previous left). 0 turns top-k and min-p off, 1 turns top-p off.
 * Before any of it, OpenAI's frequency and presence penalties lower the logit of every token
 * already chosen in this sequence ({@link #reset} starts one): μⱼ − cⱼ·frequency − [cⱼ &gt; 0]·presence,
 * cⱼ the times token j was chosen (the completion's own tokens; the prompt's do not count). They
 * apply at temperature 0 too (the argmax of the penalized logits), as does a logit bias (OpenAI's
 * {@code logit_bias}: a fixed amount added to given tokens' logits, −100 banning a token in effect).
 */
public final class Sampler {
    private final float temperature, topP, minP, frequencyPenalty, presencePenalty;
    private final int topK;
    private final SplittableRandom rnd;
    private int[] counts = new int[0];   // per token: times chosen since reset
    private int[] seen = new int[16];    // the distinct tokens chosen since reset
    private int seenCount;
    private int[] biasIds = new int[0];
    private float[] biasValues = new float[0];

    public Sampler(float temperature, float topP, long seed) {
        this(temperature, topP, 0, 0f, seed);
    }

    public Sampler(float temperature, float topP, int topK, float minP, long seed) {
        this(temperature, topP, topK, minP, 0f, 0f, seed);
    }

    public Sampler(float temperature, float topP, int topK, float minP, float frequencyPenalty, float presencePenalty, long seed) {
        if (!(temperature >= 0)) throw new dev.longspan.util.LongspanException("--temperature must be ≥ 0, got " + temperature);
        if (!(topP > 0 && topP <= 1)) throw new dev.longspan.util.LongspanException("--top-p must be in (0, 1], got " + topP);
        if (topK < 0) throw new dev.longspan.util.LongspanException("--top-k must be ≥ 0 (0 = off), got " + topK);
        if (!(minP >= 0 && minP <= 1)) throw new dev.longspan.util.LongspanException("--min-p must be in [0, 1] (0 = off), got " + minP);
        if (!(frequencyPenalty >= -2 && frequencyPenalty <= 2)) throw new dev.longspan.util.LongspanException("--frequency-penalty must be in [-2, 2] (0 = off), got " + frequencyPenalty);
        if (!(presencePenalty >= -2 && presencePenalty <= 2)) throw new dev.longspan.util.LongspanException("--presence-penalty must be in [-2, 2] (0 = off), got " + presencePenalty);
        this.frequencyPenalty = frequencyPenalty;
        this.presencePenalty = presencePenalty;
        this.temperature = temperature;
        this.topP = topP;
        this.topK = topK;
        this.minP = minP;
        this.rnd = new SplittableRandom(seed);
    }

    public static int argmax(float[] logits) {
        int best = 0;
        for (int i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
        return best;
    }

    /** A token and its log-probability. */
    public record Alternative(int id, double logprob) {}

    /** The chosen token's log-probability and the topN most likely tokens (highest first, lower id on ties). */
    public record Choice(int id, double logprob, List<Alternative> top) {}

    /**
     * Log-probabilities under the model's own distribution (softmax of the raw logits, before
     * temperature and top-p), as reported by OpenAI-style APIs: what the model thought, whatever the
     * sampler then did.
     */
    public static Choice logprobs(float[] logits, int chosen, int topN) {
        int V = logits.length;
        float max = Float.NEGATIVE_INFINITY;
        for (float l : logits) max = Math.max(max, l);
        double s = 0;
        for (float l : logits) s += Math.exp((double) l - max);
        double lse = max + Math.log(s);
        int n = Math.min(Math.max(topN, 0), V);
        // a partial selection: n is small next to the vocabulary
        int[] best = new int[n];
        int have = 0;
        for (int i = 0; i < V && n > 0; i++) {
            if (have == n && !(logits[i] > logits[best[n - 1]])) continue;
            int at = have < n ? have++ : n - 1;
            while (at > 0 && logits[i] > logits[best[at - 1]]) { best[at] = best[at - 1]; at--; }
            best[at] = i;
        }
        List<Alternative> top = new ArrayList<>(n);
        for (int i = 0; i < have; i++) top.add(new Alternative(best[i], logits[best[i]] - lse));
        return new Choice(chosen, logits[chosen] - lse, top);
    }

    /** Adds bias[i] to the logit of token ids[i] at every choice (replacing any bias set before). */
    public Sampler withLogitBias(int[] ids, float[] bias) {
        if (ids.length != bias.length) throw new IllegalArgumentException(ids.length + " ids, " + bias.length + " biases");
        for (float b : bias) {
            if (!(b >= -100 && b <= 100)) throw new dev.longspan.util.LongspanException("a logit bias must be in [-100, 100], got " + b);
        }
        biasIds = ids.clone();
        biasValues = bias.clone();
        return this;
    }

    /** Starts a new sequence: the penalties forget the tokens chosen so far. */
    public void reset() {
        for (int k = 0; k < seenCount; k++) counts[seen[k]] = 0;
        seenCount = 0;
    }

    public int next(float[] logits) {
        int id = choose(penalized(logits));
        if (frequencyPenalty != 0f || presencePenalty != 0f) remember(id, logits.length);
        return id;
    }

    private float[] penalized(float[] logits) {
        if (seenCount == 0 && biasIds.length == 0) return logits;
        float[] l = logits.clone();
        for (int k = 0; k < biasIds.length; k++) if (biasIds[k] < l.length) l[biasIds[k]] += biasValues[k];
        for (int k = 0; k < seenCount; k++) {
            int j = seen[k];
            l[j] -= counts[j] * frequencyPenalty + presencePenalty;
        }
        return l;
    }

    private void remember(int id, int vocab) {
        if (counts.length < vocab) counts = Arrays.copyOf(counts, vocab);
        if (counts[id]++ == 0) {
            if (seenCount == seen.length) seen = Arrays.copyOf(seen, 2 * seenCount);
            seen[seenCount++] = id;
        }
    }

    private int choose(float[] logits) {
        if (temperature == 0f) return argmax(logits);
        int V = logits.length;
        float max = Float.NEGATIVE_INFINITY;
        for (float l : logits) max = Math.max(max, l);
        double[] p = new double[V];
        double sum = 0;
        for (int i = 0; i < V; i++) { p[i] = Math.exp((logits[i] - max) / temperature); sum += p[i]; }
        Integer[] order = new Integer[V];
        for (int i = 0; i < V; i++) order[i] = i;
        Arrays.sort(order, (a, b) -> Double.compare(p[b], p[a]) != 0 ? Double.compare(p[b], p[a]) : Integer.compare(a, b));
        int limit = topK > 0 ? Math.min(topK, V) : V;
        if (limit < V) {
            sum = 0;
            for (int k = 0; k < limit; k++) sum += p[order[k]];
        }
        double cum = 0;
        int keep = 0;
        while (keep < limit) { cum += p[order[keep]] / sum; keep++; if (cum >= topP) break; }
        if (minP > 0) {
            // p[order[0]] is the largest; the kept tokens are in decreasing order, so cut the tail
            double floor = minP * p[order[0]];
            while (keep > 1 && p[order[keep - 1]] < floor) cum -= p[order[--keep]] / sum;
        }
        double u = rnd.nextDouble() * cum;
        double acc = 0;
        for (int k = 0; k < keep; k++) {
            acc += p[order[k]] / sum;
            if (u < acc) return order[k];
        }
        return order[keep - 1];
    }
}
