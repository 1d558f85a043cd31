package dev.longspan.model;

import dev.longspan.attention.Attention;
import dev.longspan.attention.AttentionOptions;
import dev.longspan.attention.AttentionResult;
import dev.longspan.attention.Pattern;
import dev.longspan.attention.Plan;
import dev.longspan.kernel.Kernels;
import dev.longspan.position.Rope;

/**
 * RoPE and attention of one layer, bound to the layer's pattern and the model's RoPE config:
 * training runs the attention engine over the whole sequence; incremental inference attends
 * from new queries to the KV cache.
 */
final class LayerOps {
    final ModelConfig c;
    final int layer;
    final Rope rope;
    final Pattern pattern;
    private Plan plan;               // bound to the last sequence length
    private AttentionResult last;    // the last forward (its plan holds select-and-merge's selection)
    ShardedAttention sharded;        // sequence parallelism: this process holds part of the sequence (null: all of it)
    int shardedLength;               // the whole sequence's length then
    private ShardedAttention.Handle lastSharded;

    LayerOps(ModelConfig c, int layer) {
        this.c = c;
        this.layer = layer;
        this.rope = new Rope(c.rope());
        this.pattern = c.attention().get(layer);
    }

    void rotate(float[] x, int heads, int T, long[] pos, boolean inverse) {
        if (inverse) rope.backward(x, 0, heads, T, pos);
        else rope.forward(x, 0, heads, T, pos);
    }

    // q: [H,T,D], k, v: [Hkv,T,D] → o: [H,T,D], lse: [H,T]; rotates q and k in place
    void attentionForward(float[] q, float[] k, float[] v, int T, long[] pos, float[] o, float[] lse) {
        rotate(q, c.heads(), T, pos, false);
        rotate(k, c.kvHeads(), T, pos, false);
        if (sharded != null) {
            lastSharded = sharded.forward(pattern, q, k, v, c.heads(), c.kvHeads(), shardedLength, c.headDim(), o, lse);
            return;
        }
        last = Attention.forward(q, k, v, c.headDim(), plan(T), AttentionOptions.DEFAULT, o, lse);
    }

    // q, k already rotated; the whole sequence 0..T-1 at once through the engine (prefill)
    void attentionNoRope(float[] q, float[] k, float[] v, int T, float[] o, float[] lse) {
        last = Attention.forward(q, k, v, c.headDim(), plan(T), AttentionOptions.DEFAULT, o, lse);
    }

    // gradients of attentionForward w.r.t. the pre-rotation q, k and v (q, k here are rotated);
    // reuses the plan of the last forward of this layer (select-and-merge keeps its selection)
    void attentionBackward(float[] q, float[] k, float[] v, float[] o, float[] lse, float[] dO, int T, long[] pos,
                           float[] dq, float[] dk, float[] dv) {
        if (sharded != null) {
            lastSharded.backward(dO, dq, dk, dv);
            rotate(dq, c.heads(), T, pos, true);
            rotate(dk, c.kvHeads(), T, pos, true);
            return;
        }
        if (last == null || last.length() != T || last.o() != o) {
            throw new IllegalStateException("layer " + layer + ": backward without the matching forward");
        }
        Attention.backward(last, q, k, v, dO, dq, dk, dv);
        rotate(dq, c.heads(), T, pos, true);
        rotate(dk, c.kvHeads(), T, pos, true);
    }

    private Plan plan(int T) {
        if (plan == null || plan.length() != T) plan = Plan.of(pattern, T, c.heads(), c.kvHeads(), true);
        return plan;
    }

    // select-and-merge terms of this layer's pattern, each with its region statistics (inference)
    private final java.util.IdentityHashMap<Pattern.SelectMerge, SelectMergeDecoder> decoders = new java.util.IdentityHashMap<>();

    private SelectMergeDecoder decoder(Pattern.SelectMerge sm) {
        return decoders.computeIfAbsent(sm, x -> new SelectMergeDecoder(x, c.kvHeads(), c.headDim()));
    }

    /** Inference: records the rotated keys k [Hkv, T, D] of positions start..start+T−1 for select-and-merge terms. */
    void observe(float[] k, int start, int T) {
        observe(pattern, k, start, T);
    }

    private void observe(Pattern p, float[] k, int start, int T) {
        switch (p) {
            case Pattern.SelectMerge sm -> decoder(sm).observe(k, start, T);
            case Pattern.Sum sum -> { for (Pattern t : sum.terms()) observe(t, k, start, T); }
            default -> { }
        }
    }

    /** Bytes of select-and-merge's region summaries (inference). */
    long summaryBytes() {
        long b = 0;
        for (SelectMergeDecoder dec : decoders.values()) b += dec.bytes();
        return b;
    }

    // one worker's view of a query for keysOf: its vector, the key cache (score=max reads it) and scratch
    private static final class Probe {
        float[] q;
        int qo, kvh;
        final SelectMergeDecoder.Scratch scratch;
        final dev.longspan.attention.RegionSummaries.KeyRows rows;

        Probe(int d, KvStore kc, int ring) {
            scratch = new SelectMergeDecoder.Scratch(d);
            float[] widened = new float[dev.longspan.attention.RegionSummaries.KEY_BLOCK * d];
            // select-and-merge layers keep every position (unbounded reach), so rows never wrap
            rows = (kvh, pos, count, off) -> kc.rows(kvh * ring + (int) pos, count, off, widened);
        }
    }

    /** How far back (in positions, the query included) this layer's pattern can reach; MAX_VALUE = all. */
    long reach() { return pattern.reach(); }

    // how many times a query can reach the same key at most (the terms of a sum, the pairs of a mixture)
    private static int multiplicity(Pattern p) {
        return switch (p) {
            case Pattern.Dilated d -> d.pairs();
            case Pattern.Sum sum -> sum.terms().stream().mapToInt(LayerOps::multiplicity).sum();
            default -> 1;
        };
    }

    // appends to keys[] the key positions query position p of head h reaches (with repeats: a key
    // reached by two terms counts twice, the multiset union that the LSE merge computes); returns n
    private int keysOf(Pattern pat, long p, int h, int heads, Probe probe, int[] keys, int n) {
        switch (pat) {
            case Pattern.Dense d -> { for (int k = 0; k <= p; k++) keys[n++] = k; }
            case Pattern.Window w -> { for (long k = Math.max(0, p - w.size() + 1); k <= p; k++) keys[n++] = (int) k; }
            case Pattern.Block b -> { for (long k = p / b.size() * b.size(); k <= p; k++) keys[n++] = (int) k; }
            case Pattern.Dilated dl -> {
                for (int i = 0; i < dl.pairs(); i++) {
                    int w = dl.w()[i], r = dl.r()[i], off = dl.offset(i, h, heads) % r;
                    long seg = p / w * w;
                    if ((p - seg) % r != off) continue;            // this pair does not keep row p
                    for (long k = seg + off; k <= p; k += r) keys[n++] = (int) k;
                }
            }
            case Pattern.Sum sum -> { for (Pattern t : sum.terms()) n = keysOf(t, p, h, heads, probe, keys, n); }
            case Pattern.SelectMerge sm -> n = decoder(sm).keys(probe.q, probe.qo, p, probe.kvh, probe.scratch, probe.rows, keys, n);
        }
        return n;
    }

    // q: [H, T, D] at positions start..start+T-1 (rotated); caches: [Hkv, ring, D], position p in slot p % ring
    void cachedAttention(float[] q, int T, int start, KvStore kc, KvStore vc, int ring, float[] o) {
        int H = c.heads(), D = c.headDim(), grp = H / c.kvHeads();
        float scale = (float) (1 / Math.sqrt(D));
        int maxKeys = (int) Math.min(start + T, reach()) * multiplicity(pattern);
        dev.longspan.tensor.Parallel.forRange(0, H, (h0, h1) -> {
            int[] keys = new int[maxKeys];
            float[] s = new float[maxKeys];
            float[] scratch = new float[D];
            Probe probe = new Probe(D, kc, ring);
            probe.q = q;
            for (int h = h0; h < h1; h++) {
                int kvh = h / grp;
                probe.kvh = kvh;
                for (int t = 0; t < T; t++) {
                    int qo = (h * T + t) * D;
                    probe.qo = qo;
                    int n = keysOf(pattern, start + t, h, H, probe, keys, 0);
                    java.util.Arrays.fill(o, qo, qo + D, 0f);
                    if (n == 0) continue;                          // reached by nothing: O = 0
                    for (int j = 0; j < n; j++) {
                        // the ring must still hold every key the pattern reaches (reach + chunk ≤ ring)
                        assert start + t - keys[j] < ring : "key " + keys[j] + " evicted for query " + (start + t);
                        keys[j] = kvh * ring + keys[j] % ring;             // row of the cache
                        s[j] = scale * Kernels.dot(q, qo, kc.row(keys[j], scratch), kc.offset(keys[j]), D);
                    }
                    float l = Kernels.logSumExp(s, 0, n);
                    for (int j = 0; j < n; j++) {
                        Kernels.axpy((float) Math.exp(s[j] - l), vc.row(keys[j], scratch), vc.offset(keys[j]), o, qo, D);
                    }
                }
            }
        });
    }
}
