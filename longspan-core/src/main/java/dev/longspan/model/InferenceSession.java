package dev.longspan.model;

import dev.longspan.kernel.Kernels;

/**
 * Incremental inference with a KV cache: feed a prompt in chunks, then one token at a time;
 * each call returns the logits of the last position fed. Keys are cached after RoPE, per layer,
 * in [Hkv, ring, D] layout (position p in slot p mod ring). A layer whose pattern reaches at most R
 * keys back (window, block) keeps a ring of R + {@link #MAX_CHUNK} positions, every other layer
 * keeps all of them; so a chunk's queries attend to every cached position their
 * layer's pattern reaches.
 */
public final class InferenceSession {
    private final Transformer m;
    private final ModelConfig c;
    private final LayerOps[] ops;
    private final int capacity;
    /** Default largest chunk fed at once to the cached path (longer chunks are split; results are the same). */
    public static final int MAX_CHUNK = 4096;
    private final int maxChunk;
    private final KvStore[] kCache, vCache;   // per layer [Hkv, ring[l], D]
    private final int[] ring;                 // per layer: slots in its cache
    private int length;                        // positions fed so far

    public InferenceSession(Transformer m, int capacity) {
        this(m, capacity, MAX_CHUNK, InferenceOptions.DEFAULT);
    }

    public InferenceSession(Transformer m, int capacity, InferenceOptions options) {
        this(m, capacity, MAX_CHUNK, options);
    }

    /** With a smaller chunk limit, windowed layers keep fewer positions (tests use it to exercise eviction). */
    public InferenceSession(Transformer m, int capacity, int maxChunk, InferenceOptions options) {
        KvStore.Precision precision = options.halfKv() ? KvStore.Precision.F16 : KvStore.Precision.F32;
        this.lognLength = options.lognLength();
        if (maxChunk < 1) throw new IllegalArgumentException("maxChunk must be positive");
        this.maxChunk = maxChunk;
        this.m = m;
        this.c = m.config;
        this.capacity = capacity;
        ops = new LayerOps[c.layers()];
        for (int l = 0; l < c.layers(); l++) ops[l] = new LayerOps(c, l);
        ring = new int[c.layers()];
        kCache = new KvStore[c.layers()];
        vCache = new KvStore[c.layers()];
        {
            for (int l = 0; l < c.layers(); l++) {
                long reach = ops[l].reach();
                ring[l] = (int) Math.min(capacity, reach + maxChunk);
                kCache[l] = new KvStore(precision, c.kvHeads() * ring[l], c.headDim());
                vCache[l] = new KvStore(precision, c.kvHeads() * ring[l], c.headDim());
            }
        }
    }



    public int length() { return length; }

    public int capacity() { return capacity; }

    /** Positions layer l keeps in its KV cache (all of them unless its pattern has a finite reach). */
    public int cachedPositions(int l) { return ring[l]; }

    /** Bytes held by the KV caches (select-and-merge's region summaries included). */
    public long cacheBytes() {
        long b = 0;
        for (int l = 0; l < c.layers(); l++) if (kCache[l] != null) b += kCache[l].bytes() + vCache[l].bytes() + ops[l].summaryBytes();
        return b;
    }

    /** Feeds tokens[from..to) at the next positions; returns the logits [V] of the last one. */
    public float[] feed(int[] tokens, int from, int to) {
        return feed(tokens, from, to, 1);
    }

    /**
     * Feeds tokens[from..to); returns the logits of the last {@code lastRows} positions, [lastRows, V]
     * (for perplexity on the final tokens of a long window).
     */
    public float[] feed(int[] tokens, int from, int to, int lastRows) {
        if (lastRows < 1 || lastRows > to - from) throw new IllegalArgumentException("lastRows " + lastRows + " outside 1.." + (to - from));
        int T = to - from;
        if (T <= 0) throw new IllegalArgumentException("nothing to feed");
        if (length + T > capacity) {
            throw new dev.longspan.util.LongspanException("context of " + (length + T) + " tokens exceeds the session capacity " + capacity);
        }
        if (length > 0 && T > maxChunk) {
            // the ring of a windowed layer holds reach + maxChunk positions: feed long chunks in parts
            int V = c.vocabSize(), firstWanted = to - lastRows;
            float[] out = new float[lastRows * V];
            for (int a = from; a < to; a += maxChunk) {
                int b = Math.min(to, a + maxChunk), wantFrom = Math.max(a, firstWanted);
                float[] lg = feed(tokens, a, b, Math.max(1, b - wantFrom));
                if (b > wantFrom) System.arraycopy(lg, 0, out, (wantFrom - firstWanted) * V, (b - wantFrom) * V);
            }
            return out;
        }
        int d = c.dim(), H = c.heads(), Hkv = c.kvHeads(), D = c.headDim();
        float[] p = m.params;
        float[] x = new float[T * d], xn = new float[T * d], rstd = new float[T];
        float[] q = new float[T * c.qDim()], k = new float[T * c.kvDim()], v = new float[T * c.kvDim()];
        float[] qh = new float[T * c.qDim()], kh = new float[T * c.kvDim()], vh = new float[T * c.kvDim()];
        float[] oh = new float[T * c.qDim()], o = new float[T * c.qDim()];
        float[] gate = new float[T * c.ffnDim()], up = new float[T * c.ffnDim()], h = new float[T * c.ffnDim()];
        float[] w = new float[d];
        long[] pos = new long[T];
        for (int t = 0; t < T; t++) pos[t] = length + t;
        float[] lse = length == 0 ? new float[T * H] : null;
        m.embed(x, tokens, from, T);
        for (int l = 0; l < c.layers(); l++) {
            System.arraycopy(p, m.attnNorm[l], w, 0, d);
            Kernels.rmsnormForward(xn, rstd, x, w, T, d, c.normEps());
            m.projectQkv(l, xn, T, q, k, v);
            Transformer.toHeads(qh, q, T, H, D);
            Transformer.toHeads(kh, k, T, Hkv, D);
            Transformer.toHeads(vh, v, T, Hkv, D);
            ops[l].rotate(qh, H, T, pos, false);
            ops[l].rotate(kh, Hkv, T, pos, false);
            int rg = ring[l];
            for (int hh = 0; hh < Hkv; hh++) {
                for (int t = Math.max(0, T - rg); t < T; t++) {   // a long first chunk keeps only its last rg positions
                    int slot = (int) ((length + t) % rg);
                    kCache[l].put(hh * rg + slot, kh, (hh * T + t) * D);
                    vCache[l].put(hh * rg + slot, vh, (hh * T + t) * D);
                }
            }
            // an empty cache means the chunk is the whole prefix: the flash engine computes it in
            // O(N·keys) with no N×N buffer; later chunks attend to the cache key by key
            if (lognLength > 1) scaleQueries(qh, H, T, length, D);
            ops[l].observe(kh, length, T);
            if (length == 0) ops[l].attentionNoRope(qh, kh, vh, T, oh, lse);
            else ops[l].cachedAttention(qh, T, length, kCache[l], vCache[l], rg, oh);
            Transformer.fromHeads(o, oh, T, H, D);
            m.oProj[l].apply(x, 0, o, 0, T, true);
            System.arraycopy(p, m.ffnNorm[l], w, 0, d);
            Kernels.rmsnormForward(xn, rstd, x, w, T, d, c.normEps());
            m.gateProj[l].apply(gate, 0, xn, 0, T, false);
            m.upProj[l].apply(up, 0, xn, 0, T, false);
            Kernels.swigluForward(h, gate, up, T * c.ffnDim());
            m.downProj[l].apply(x, 0, h, 0, T, true);
        }
        length += T;
        float[] last = new float[lastRows * d], lastN = new float[lastRows * d], r1 = new float[lastRows];
        System.arraycopy(x, (T - lastRows) * d, last, 0, lastRows * d);
        System.arraycopy(p, m.finalNorm, w, 0, d);
        Kernels.rmsnormForward(lastN, r1, last, w, lastRows, d, c.normEps());
        float[] logits = new float[lastRows * c.vocabSize()];
        m.logits(logits, lastN, lastRows);
        return logits;
    }

    private final int lognLength;

    // log-n scaling (InferenceOptions): q: [H, T, D] at positions start..start+T-1
    private void scaleQueries(float[] q, int H, int T, int start, int D) {
        double lnL = Math.log(lognLength);
        for (int t = 0; t < T; t++) {
            long p = (long) start + t + 1;
            if (p <= lognLength) continue;
            float s = (float) (Math.log(p) / lnL);
            for (int h = 0; h < H; h++) Kernels.scale(s, q, (h * T + t) * D, D);
        }
    }
}
