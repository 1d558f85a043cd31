package dev.longspan.model;

import dev.longspan.position.CrdNtk;

import dev.longspan.attention.RegionSummaries;
import dev.longspan.kernel.Kernels;

import java.util.Arrays;
import java.util.List;

/**
 * Incremental inference with a KV cache: feed a prompt in chunks, then one token at a time;
 * each call returns the logits of the last position fed. Every chunk, the first included, runs in
 * parts of at most maxChunk tokens through the one attention engine, its queries against the
 * layer's cache ({@link LayerOps#attendCached}), so a prompt of any length costs the activations of
 * one part plus the cache. Keys are cached after RoPE, per layer, in [Hkv, ring, D] layout
 * (position p in slot p mod ring, {@link KvStore}). A layer whose pattern reaches at most R keys
 * back (window, block) keeps a ring of R + maxChunk positions, every other layer keeps all of
 * them; so a part's queries attend to every cached position their layer's pattern reaches.
 * Select-and-merge's region summaries are kept per layer and term beside the cache, appended as
 * keys arrive.
 *
 * <p>Each layer runs through {@link DecoderLayer}, the forward training uses. The working buffers
 * are allocated by the first call, sized by its chunk, and reused by every later call no longer
 * than it: beside the attention step's own scratch, a decoding step allocates only the logits it
 * returns.
 */
public final class InferenceSession implements Generator.Source {
    private final Transformer m;
    private final ModelConfig c;
    private final LayerOps[] ops;
    private final int capacity;
    /** Default largest chunk fed at once to the cached path (longer chunks are split; results are the same). */
    public static final int MAX_CHUNK = 4096;
    private final int maxChunk;
    private final KvStore[] cache;            // per layer, keys and values [Hkv, ring[l], D]
    private final List<RegionSummaries>[] summaries;   // per layer, one per select-and-merge term (rebuilt on rewind)
    private final int[] ring;                 // per layer: slots in its cache
    private int length;                        // positions fed so far
    private long phase;                        // CRD-NTK: position of the first token (alignPositions)
    // working buffers of a chunk (buffersFor): activations, residual stream, positions
    private DecoderLayer.Acts acts;
    private float[] x;
    private long[] pos;
    // with a token shift (ModelConfig.tokenShift): the tokens fed so far, so that a chunk's first
    // token finds the one before it, after a rewind too; null otherwise
    private int[] history;
    private final DecoderLayer.Attend attend = this::attend;

    public InferenceSession(Transformer m, int capacity) {
        this(m, capacity, MAX_CHUNK, InferenceOptions.DEFAULT);
    }

    public InferenceSession(Transformer m, int capacity, InferenceOptions options) {
        this(m, capacity, MAX_CHUNK, options);
    }

    /** With a smaller chunk limit, windowed layers keep fewer positions (tests use it to exercise eviction). */
    @SuppressWarnings("unchecked")
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
        cache = new KvStore[c.layers()];
        summaries = new List[c.layers()];
        for (int l = 0; l < c.layers(); l++) {
            ring[l] = (int) Math.min(capacity, ops[l].reach() + maxChunk);
            cache[l] = new KvStore(precision, c.kvHeads(), ring[l], c.headDim());
            summaries[l] = RegionSummaries.forTerms(ops[l].pattern, c.kvHeads(), c.headDim());
        }
    }

    public int length() { return length; }

    /**
     * Before anything is fed: rotates token i at position phase + i, with the phase that
     * {@link CrdNtk#inferencePhase} gives for a prompt of that many tokens — for a cyclic CRD-NTK
     * RoPE it keeps the wrap of the cycle away from the prompt's end and the answer; for every other
     * RoPE the phase is 0 and nothing changes. Generation calls it; scoring keeps phase 0.
     */
    public void alignPositions(int promptLength) {
        if (length != 0) throw new IllegalStateException("alignPositions needs an empty session");
        setPhase(CrdNtk.inferencePhase(c.rope(), promptLength));
    }

    /** The position of the session's first token (0 unless {@link #alignPositions} moved it). */
    public long phase() { return phase; }

    private void setPhase(long p) {
        phase = p;
        for (LayerOps op : ops) op.inferencePhase(p);
    }

    public int capacity() { return capacity; }

    /** Positions layer l keeps in its KV cache (all of them unless its pattern has a finite reach). */
    public int cachedPositions(int l) { return ring[l]; }

    /** Bytes held by the KV caches (select-and-merge's region summaries included). */
    public long cacheBytes() {
        long b = 0;
        for (int l = 0; l < c.layers(); l++) {
            b += cache[l].bytes();
            for (RegionSummaries s : summaries[l]) b += s.bytes();
        }
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
        if (T > maxChunk) {
            // the ring of a windowed layer holds reach + maxChunk positions, and a part's activations
            // are all a chunk needs beside the cache: feed long chunks in parts
            int V = c.vocabSize(), firstWanted = to - lastRows;
            float[] out = new float[lastRows * V];
            for (int a = from; a < to; a += maxChunk) {
                int b = Math.min(to, a + maxChunk), wantFrom = Math.max(a, firstWanted);
                float[] lg = feed(tokens, a, b, Math.max(1, b - wantFrom));
                if (b > wantFrom) System.arraycopy(lg, 0, out, (wantFrom - firstWanted) * V, (b - wantFrom) * V);
            }
            return out;
        }
        int d = c.dim();
        buffersFor(T);
        for (int t = 0; t < T; t++) pos[t] = phase + length + t;
        m.embed(x, tokens, from, T, history, history != null ? length : 0);
        if (c.shifted()) remember(tokens, from, T);
        for (int l = 0; l < c.layers(); l++) DecoderLayer.forward(m, l, x, x, x, acts, T, attend);
        length += T;
        // the final norm of the rows returned, into the (now free) normed-input buffer
        float[] xf = acts.xn1;
        Kernels.rmsnormForward(xf, 0, acts.rstd1, x, (T - lastRows) * d, m.params, m.finalNorm, lastRows, d, c.normEps());
        float[] logits = new float[lastRows * c.vocabSize()];
        m.logits(logits, xf, lastRows);
        return logits;
    }

    // appends tokens[from..from+T) to the history at positions length..length+T−1
    private void remember(int[] tokens, int from, int T) {
        if (history == null || history.length < length + T) {
            int n = (int) Math.min(capacity, Math.max(length + T, 2L * (history == null ? 1024 : history.length)));
            history = history == null ? new int[n] : Arrays.copyOf(history, n);
        }
        System.arraycopy(tokens, from, history, length, T);
    }

    // the working buffers of a chunk of T tokens: kept from call to call, replaced only by a longer chunk
    private void buffersFor(int T) {
        if (acts != null && acts.rows >= T) return;
        acts = new DecoderLayer.Acts(c, T, false);
        x = new float[T * c.dim()];
        pos = new long[T];
    }

    /** The working buffers (tests check that decoding reuses them). */
    Object buffers() { return acts; }

    // attention of layer l for the chunk at positions length..length+T-1 (before RoPE on entry):
    // rotate, cache the keys and values (and summarise them), attend to the cache
    private void attend(int l, DecoderLayer.Acts a, int T) {
        int H = c.heads(), Hkv = c.kvHeads(), D = c.headDim();
        ops[l].rotate(a.qh, H, T, pos, false);
        ops[l].rotate(a.kh, Hkv, T, pos, false);
        cache[l].put(a.kh, a.vh, T, length);
        for (RegionSummaries s : summaries[l]) s.append(a.kh, T);
        if (lognLength > 1) scaleQueries(a.qh, H, T, length, D);
        ops[l].attendCached(a.qh, T, length, cache[l], ring[l], summaries[l], a.oh, a.lse);
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

    /**
     * Empties the session for another sequence, as if it were new: length 0, position phase 0, no
     * region summaries. The caches stay allocated and are overwritten as tokens arrive (no position
     * at or after the length is ever read), so evaluations that run many long prompts hold one cache
     * instead of leaving the collector one per prompt (a 4M-token prompt's cache is gigabytes, and
     * G1 grows the heap rather than collect a dead one before the next is allocated).
     */
    public void clear() {
        length = 0;
        setPhase(0);
        for (int l = 0; l < c.layers(); l++) {
            if (!summaries[l].isEmpty()) summaries[l] = RegionSummaries.forTerms(ops[l].pattern, c.kvHeads(), c.headDim());
        }
    }

    // ---- prefix reuse across requests (longspan serve): rewind, write and read the cache ----

    /**
     * Forgets the positions from newLength on: the next feed continues at newLength exactly as in
     * a session that was fed only the first newLength tokens. Returns false, changing nothing,
     * where that cannot be exact: a windowed layer's ring has already overwritten positions its
     * next queries reach (more than ring − reach positions cut), or a layer keeps select-and-merge
     * region summaries in a half-precision cache (they are rebuilt from the cached keys, which
     * only a float32 cache holds exactly as they were summarised); feed a fresh session then.
     */
    public boolean rewind(int newLength) {
        if (newLength < 0 || newLength > length) throw new IllegalArgumentException("rewind to " + newLength + " outside 0.." + length);
        for (int l = 0; l < c.layers(); l++) {
            if (!summaries[l].isEmpty() && cache[l].half()) return false;
            if (newLength > 0 && ring[l] < length && (long) length - newLength > ring[l] - ops[l].reach()) return false;
        }
        length = newLength;
        resummarize();
        return true;
    }

    // select-and-merge's region summaries of positions 0..length−1 rebuilt from the float32 cached
    // keys (appended part by part as feed does, so bit for bit the summaries feeding them made;
    // such layers reach every earlier key, so their ring never wraps)
    private void resummarize() {
        int Hkv = c.kvHeads(), D = c.headDim();
        float[] k = null;
        for (int l = 0; l < c.layers(); l++) {
            if (summaries[l].isEmpty()) continue;
            summaries[l] = RegionSummaries.forTerms(ops[l].pattern, Hkv, D);
            if (k == null) k = new float[Hkv * maxChunk * D];
            for (int a = 0; a < length; a += maxChunk) {
                int T = Math.min(maxChunk, length - a);
                cache[l].keys(a, T, k);
                for (RegionSummaries s : summaries[l]) s.append(k, T);
            }
        }
    }

    private static final int CACHE_MAGIC = 0x4c534b56;   // "LSKV"

    /**
     * Writes the cached positions (the length, then per layer the keys and values still in its
     * ring) for {@link #readCache} into a session built like this one. Select-and-merge's summaries
     * are not written but rebuilt from the keys on reading; with a half-precision cache they could
     * not be rebuilt exactly, so such a session returns false, writing nothing (its prefix is re-fed).
     */
    public boolean writeCache(java.nio.channels.WritableByteChannel out) throws java.io.IOException {
        for (int l = 0; l < c.layers(); l++) if (!summaries[l].isEmpty() && cache[l].half()) return false;
        java.nio.ByteBuffer h = cacheHeader();
        while (h.hasRemaining()) out.write(h);
        int Hkv = c.kvHeads();
        for (int l = 0; l < c.layers(); l++) {
            int used = Math.min(length, ring[l]);
            for (int hh = 0; hh < Hkv; hh++) cache[l].write(out, hh, used);
        }
        if (c.shifted()) {
            java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(4 * length).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < length; i++) b.putInt(history[i]);
            b.flip();
            while (b.hasRemaining()) out.write(b);
        }
        return true;
    }

    /**
     * Reads what {@link #writeCache} wrote into this fresh session (same model, capacity, chunk
     * limit and KV precision, else a LongspanException names the difference); afterwards the
     * session continues as the written one would.
     */
    public void readCache(java.nio.channels.ReadableByteChannel in) throws java.io.IOException {
        if (length != 0) throw new IllegalStateException("readCache needs a fresh session");
        java.nio.ByteBuffer want = cacheHeader();
        java.nio.ByteBuffer got = java.nio.ByteBuffer.allocate(want.remaining()).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        while (got.hasRemaining()) if (in.read(got) < 0) throw new java.io.EOFException("KV cache file ends early");
        got.flip();
        // the header's last fields are the phase and the length, which may differ; every field before them must match
        int n = want.remaining() - 12;
        if (got.getInt(0) != CACHE_MAGIC) throw new dev.longspan.util.LongspanException("not a Longspan KV cache file");
        if (!got.slice(0, n).equals(want.slice(0, n))) {
            throw new dev.longspan.util.LongspanException("the KV cache file was written by a session of another shape (model, capacity, chunk or KV precision)");
        }
        long ph = got.getLong(n);
        int len = got.getInt(n + 8);
        long cycle = c.rope().kind() == dev.longspan.position.RopeKind.CRD_NTK && c.rope().period() > 0 ? c.rope().period() : 1;
        if (ph < 0 || ph >= cycle) {
            throw new dev.longspan.util.LongspanException("KV cache file has position phase " + ph + ", outside this model's RoPE cycle");
        }
        if (len < 0 || len > capacity) throw new dev.longspan.util.LongspanException("KV cache file holds " + len + " positions, capacity " + capacity);
        int Hkv = c.kvHeads();
        for (int l = 0; l < c.layers(); l++) {
            int used = Math.min(len, ring[l]);
            for (int hh = 0; hh < Hkv; hh++) cache[l].read(in, hh, used);
        }
        if (c.shifted() && len > 0) {
            java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(4 * len).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            while (b.hasRemaining()) if (in.read(b) < 0) throw new java.io.EOFException("KV cache file ends early");
            b.flip();
            int[] toks = new int[len];
            for (int i = 0; i < len; i++) {
                toks[i] = b.getInt();
                if (toks[i] < 0 || toks[i] >= c.vocabSize()) throw new dev.longspan.util.LongspanException("KV cache file holds token id " + toks[i] + ", outside the vocabulary");
            }
            length = 0;
            remember(toks, 0, len);
        }
        length = len;
        setPhase(ph);
        resummarize();
    }

    // magic, layers, KV heads, head dim, capacity, chunk limit, precision (+ 0x100 per previous-token table), each layer's ring, phase (8 bytes), length
    private java.nio.ByteBuffer cacheHeader() {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(4 * (8 + c.layers()) + 8).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        b.putInt(CACHE_MAGIC).putInt(c.layers()).putInt(c.kvHeads()).putInt(c.headDim()).putInt(capacity).putInt(maxChunk)
                .putInt((cache[0].half() ? 16 : 32) | (c.tokenShift() << 8));   // with a token shift the tokens follow the caches (0x100 per previous-token table)
        for (int l = 0; l < c.layers(); l++) b.putInt(ring[l]);
        b.putLong(phase).putInt(length);
        return b.flip();
    }
}
