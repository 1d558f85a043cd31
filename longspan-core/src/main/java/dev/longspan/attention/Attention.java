package dev.longspan.attention;

import dev.longspan.tensor.Parallel;
import dev.longspan.util.LongspanException;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static dev.longspan.attention.TileOps.QB;

/**
 * The attention engine: any {@link Pattern} through one flash-style kernel, forward and backward.
 * <pre>
 *   q: [H, N, D], k, v: [Hkv, N, D] (H a multiple of Hkv; query head h reads key/value head h/(H/Hkv))
 *   forward  → o: [H, N, D], lse: [H, N]
 *   backward → dq: [H, N, D], dk, dv: [Hkv, N, D]
 * </pre>
 * Each part of the plan (a LongNet pair, a term of a sum) is a pass over tiles whose query rows
 * are disjoint; the forward runs the passes one after another, in parallel over (head, tile,
 * block of {@link TileOps#QB} rows) inside a pass, and merges each part into O and LSE by
 * log-sum-exp. Extra memory: LSE plus per-worker scratch; no N×N buffer.
 *
 * <p>A plan may also cover a span: the queries at [qBase, qBase + tq) against the keys at
 * [kBase, kBase + tk) of one position axis, the keys read through {@link KeyValues} (a KV cache,
 * or arrays of a block of keys). Training, chunked prefill and decoding all run here with the same
 * tile plans; a distributed run can attend a block of queries to each block of keys, merge the
 * results by {@link #merge}, and run each block's backward with the merged O and LSE (the
 * gradients then add up to the whole sequence's).
 *
 * <p>The backward runs in parallel over query heads: every head owns its dQ rows and its own dK/dV
 * accumulator (the key/value gradient itself for the first head of each group, a buffer for the
 * others, summed in head order at the end), so results are deterministic for any thread count.
 */
public final class Attention {
    private Attention() {}

    private static final ThreadLocal<FlashKernel.Scratch[]> SCRATCH = ThreadLocal.withInitial(() -> new FlashKernel.Scratch[1]);

    static FlashKernel.Scratch scratch(int d) {
        FlashKernel.Scratch[] box = SCRATCH.get();
        if (box[0] == null || box[0].d != d) box[0] = new FlashKernel.Scratch(d);
        return box[0];
    }

    /** Forward pass with a freshly bound plan; allocates O and LSE. */
    public static AttentionResult forward(float[] q, float[] k, float[] v, int heads, int kvHeads, int n, int d,
                                          Pattern pattern, AttentionOptions opt) {
        if (Plan.movesPositions(pattern)) {
            throw new LongspanException("attention pattern '" + pattern.spec() + "': pos=selected moves keys to new RoPE positions, so it runs"
                    + " inside a model layer (or with Plan.selectedPositions), not on bare q, k, v");
        }
        Plan plan = Plan.of(pattern, n, heads, kvHeads, !opt.bidirectional());
        return forward(q, k, v, d, plan, opt, new float[heads * n * d], new float[heads * n]);
    }

    /** Forward pass into caller buffers o [H, N, D] and lse [H, N] (overwritten). */
    public static AttentionResult forward(float[] q, float[] k, float[] v, int d, Plan plan, AttentionOptions opt,
                                          float[] o, float[] lse) {
        checkShapes(q, k, v, plan.heads, plan.kvHeads, plan.n, plan.keys(), d);
        require(o, (long) plan.heads * plan.n * d, "o");
        require(lse, (long) plan.heads * plan.n, "lse");
        return forward(q, KeyValues.of(k, v, plan.keyBase(), plan.keys(), d), d, plan, opt, o, lse);
    }

    /**
     * A grouped-query decoding step runs a group's query heads together ({@link
     * FlashKernel#forwardGroupRow}: each key block read once, the rows sharing its loads) when
     * there are at least as many key/value heads as threads, or from this many bytes of keys and
     * values per key/value head on. With fewer key/value heads than threads, per-head tasks spread
     * better over the threads while a head's rows are small enough to stay in cache for its group's
     * next head. Measured (100M model, 12 / 4 heads, D = 64, 2,048 cached positions, 1 MB per head,
     * Zen 4): the attention step alone 223 against 254 µs on one thread, 116–119 against 131–196 µs
     * on two; the model's decode 77–81 against 56–75 tokens/s on one thread, level on two (88–104
     * both); at 32 MB per head the grouped step is 1.3–1.6× faster. Tests lower it to 0.
     */
    static long groupDecodeMinBytes = 8L << 20;

    /**
     * Forward pass of a plan over its span ({@link Plan#of(Pattern, int, int, boolean, int, int, int, int, java.util.List)}):
     * the queries q [H, tq, D] at positions [qBase, qBase + tq) against the keys and values kv holds at
     * [kBase, kBase + tk), into o [H, tq, D] and lse [H, tq] (their first H·tq·D and H·tq entries,
     * overwritten; LSE is -inf and O 0 for a row that reaches no key of the span). Chunked prefill and
     * decoding run here against their KV cache; blocks of keys merge by {@link #merge}.
     */
    /** Keys and values a decoding step reads below which it runs on the calling thread (the matrix products' threshold). */
    static final long SERIAL_DECODE_BYTES = 1 << 18;

    private static void tasks(boolean serial, int count, java.util.function.IntConsumer body) {
        if (serial) {
            for (int i = 0; i < count; i++) body.accept(i);
        } else {
            Parallel.forEachTask(count, body);
        }
    }

    public static AttentionResult forward(float[] q, KeyValues kv, int d, Plan plan, AttentionOptions opt, float[] o, float[] lse) {
        int heads = plan.heads, kvHeads = plan.kvHeads, n = plan.n;
        if (plan.causal == opt.bidirectional()) throw new IllegalArgumentException("plan and options disagree on causality");
        atLeast(q, (long) heads * n * d, "q");
        atLeast(o, (long) heads * n * d, "o");
        atLeast(lse, (long) heads * n, "lse");
        float scale = opt.scaleFor(d);
        FlashKernel.Problem p = new FlashKernel.Problem(q, plan.queryBase(), n, kv, plan.keyBase(), plan.keys(), heads, kvHeads, d, scale);
        plan.prepare(p);
        if (plan.selects()) p.transposeKeyValues();
        p.o = o;
        p.lse = lse;
        if ((long) heads * n * d >= 1 << 16) {
            Parallel.forChunks(0, heads, 1, (c, h0, h1) -> {
                Arrays.fill(o, h0 * n * d, h1 * n * d, 0f);
                Arrays.fill(lse, h0 * n, h1 * n, Float.NEGATIVE_INFINITY);
            });
        } else {                                    // a decoding step: not worth a parallel call
            Arrays.fill(o, 0, heads * n * d, 0f);
            Arrays.fill(lse, 0, heads * n, Float.NEGATIVE_INFINITY);
        }
        // a decoding step over a short cache reads less than SERIAL_DECODE_BYTES of keys and values: a few microseconds
        // of work, less than waking another thread costs (stories260K decoded 1.9x slower on two threads than on one)
        boolean serial = n == 1 && 2L * Float.BYTES * d * plan.keys() * kvHeads < SERIAL_DECODE_BYTES;
        List<Pass> parts = new ArrayList<>();
        for (Pass pass : plan.passes) parts.addAll(n > 1 ? pass.keyParts() : List.of(pass));
        for (Pass pass : parts) {
            if (n == 1 && p.group > 1 && p.group <= TileOps.QB && p.kT == null && pass.sameTilesForAllHeads()
                    && (kvHeads >= Parallel.threads() || 2L * Float.BYTES * d * plan.keys() >= groupDecodeMinBytes)) {
                // a grouped-query decoding step: the heads sharing a key/value head read its keys once
                int tiles = pass.tiles(0);
                tasks(serial, kvHeads * tiles, task -> {
                    int kvh = task / tiles, ti = task % tiles;
                    if (pass.queryRows(0, ti) == 0) return;
                    FlashKernel.Scratch s = scratch(d);
                    pass.tile(0, ti, s.tile);
                    FlashKernel.forwardGroupRow(p, s, s.tile, kvh, s.tile.queries.pos(0));
                    FlashKernel.mergeGroupOut(p, s, kvh);
                });
                continue;
            }
            if (n > 1 && pass.grouped()) {          // (a decoding step: its one row's tile, below)
                forwardGroups(p, pass, heads, d);
                continue;
            }
            WorkList w = new WorkList(pass, heads);
            // most expensive blocks (last rows of causal tiles) first, for a balanced finish
            tasks(serial, w.total, task -> {
                int item = w.total - 1 - task;
                int e = w.entry(item);
                int h = w.head[e], i0 = (item - w.first[e]) * QB, n1 = Math.min(QB, w.rows[e] - i0);
                FlashKernel.Scratch s = scratch(d);
                pass.tile(h, w.tile[e], s.tile);
                FlashKernel.gatherQueries(p, s, s.tile, h, i0, n1);
                FlashKernel.forwardKeys(p, s, s.tile, h, n1);
                FlashKernel.mergeOut(p, s, h, n1);
            });
        }
        return new AttentionResult(o, lse, plan, heads, kvHeads, n, d, scale, opt);
    }

    /**
     * A pass whose tiles come in groups ({@link Pass#group}): one task per run of a head's tiles with
     * the same group (the last first), its tiles of more than {@link FlashKernel#ROW_BLOCK_MAX} rows
     * block by block as in every pass, its shorter tiles together ({@link FlashKernel#forwardRowsGrouped},
     * in batches of at most {@link #GROUP_KEYS} key positions in all).
     */
    private static void forwardGroups(FlashKernel.Problem p, Pass pass, int heads, int d) {
        int[] starts = new int[16];
        int runs = 0;
        for (int h = 0; h < heads; h++) {
            for (int t = 0, nt = pass.tiles(h); t < nt; ) {
                int g = pass.group(h, t), t1 = t + 1;
                while (t1 < nt && pass.group(h, t1) == g) t1++;
                if (3 * runs + 3 > starts.length) starts = Arrays.copyOf(starts, starts.length * 2);
                starts[3 * runs] = h;
                starts[3 * runs + 1] = t;
                starts[3 * runs + 2] = t1;
                runs++;
                t = t1;
            }
        }
        final int[] task = starts;
        final int total = runs;
        Parallel.forEachTask(total, k -> {
            int at = 3 * (total - 1 - k), h = task[at], t0 = task[at + 1], t1 = task[at + 2];
            FlashKernel.Scratch s = scratch(d);
            int count = 0;
            long keys = 0;
            for (int t = t0; t < t1; t++) {
                int rows = pass.queryRows(h, t);
                if (rows <= 0) continue;
                if (rows > FlashKernel.ROW_BLOCK_MAX) {
                    pass.tile(h, t, s.tile);
                    for (int i0 = 0; i0 < rows; i0 += QB) {
                        int n1 = Math.min(QB, rows - i0);
                        FlashKernel.gatherQueries(p, s, s.tile, h, i0, n1);
                        FlashKernel.forwardKeys(p, s, s.tile, h, n1);
                        FlashKernel.mergeOut(p, s, h, n1);
                    }
                    continue;
                }
                Tile tile = s.runTile(count);
                pass.tile(h, t, tile);
                count++;
                keys += tile.keys.count();
                if (keys >= GROUP_KEYS) {
                    FlashKernel.forwardRowsGrouped(p, s, s.runTiles, count, h);
                    count = 0;
                    keys = 0;
                }
            }
            if (count > 0) FlashKernel.forwardRowsGrouped(p, s, s.runTiles, count, h);
        });
    }

    /** Key positions (all the tiles' lists together) a batch of short tiles holds at most: 4 MB of ints per worker. */
    static final int GROUP_KEYS = 1 << 20;

    /**
     * Merges the attention of the same queries over a second, disjoint set of keys into the first by
     * log-sum-exp: o, lse [H, rows, D], [H, rows] become the attention over both (what a query gets
     * from keys split into blocks, e.g. across workers). Rows with LSE -inf in one part take the
     * other's as they are.
     */
    public static void merge(float[] o, float[] lse, float[] o2, float[] lse2, int heads, int rows, int d) {
        for (int r = 0; r < heads * rows; r++) {
            float a = lse[r], b = lse2[r];
            if (b == Float.NEGATIVE_INFINITY) continue;
            if (a == Float.NEGATIVE_INFINITY) {
                System.arraycopy(o2, r * d, o, r * d, d);
                lse[r] = b;
                continue;
            }
            float mx = Math.max(a, b), wa = (float) Math.exp(a - mx), wb = (float) Math.exp(b - mx), sum = wa + wb;
            for (int c = r * d, e = c + d; c < e; c++) o[c] = (wa * o[c] + wb * o2[c]) / sum;
            lse[r] = mx + (float) Math.log(sum);
        }
    }

    /** Backward pass; allocates the gradients. */
    public static AttentionGradients backward(AttentionResult fwd, float[] q, float[] k, float[] v, float[] dO) {
        int h = fwd.heads(), kvh = fwd.kvHeads(), n = fwd.length(), tk = fwd.plan().keys(), d = fwd.dim();
        AttentionGradients g = new AttentionGradients(new float[h * n * d], new float[kvh * tk * d], new float[kvh * tk * d]);
        backward(fwd, q, k, v, dO, g.dq(), g.dk(), g.dv());
        return g;
    }

    /**
     * Backward pass into caller buffers dq [H, tq, D], dk, dv [Hkv, tk, D] (overwritten), for a
     * forward over a plan's span with its keys and values as arrays k, v [Hkv, tk, D]: the gradient
     * of this block's O with respect to its queries, keys and values (whole sequences: tq = tk = N).
     */
    public static void backward(AttentionResult fwd, float[] q, float[] k, float[] v, float[] dO,
                                float[] dq, float[] dk, float[] dv) {
        int heads = fwd.heads(), kvHeads = fwd.kvHeads(), n = fwd.length(), d = fwd.dim(), tk = fwd.plan().keys();
        checkShapes(q, k, v, heads, kvHeads, n, tk, d);
        require(dO, (long) heads * n * d, "dO");
        require(dq, (long) heads * n * d, "dq");
        require(dk, (long) kvHeads * tk * d, "dk");
        require(dv, (long) kvHeads * tk * d, "dv");
        Plan plan = fwd.plan();
        FlashKernel.Problem p = new FlashKernel.Problem(q, plan.queryBase(), n, KeyValues.of(k, v, plan.keyBase(), tk, d),
                plan.keyBase(), tk, heads, kvHeads, d, fwd.scale());
        if (plan.selects()) p.transposeKeyValues();
        p.o = fwd.o();
        p.lse = fwd.lse();
        p.dO = dO;
        p.dq = dq;
        boolean detached = fwd.options().detachedMerge() && plan.passes.size() > 1;
        int group = heads / kvHeads;
        // heads other than the first of their group accumulate dK/dV in a buffer of their own
        float[] dkx = group > 1 ? new float[(heads - kvHeads) * tk * d] : null;
        float[] dvx = group > 1 ? new float[(heads - kvHeads) * tk * d] : null;
        Arrays.fill(dq, 0f);
        Arrays.fill(dk, 0f);
        Arrays.fill(dv, 0f);
        // the passes as the backward runs them (select-and-merge: region by region, and the near bands)
        List<Pass> parts = new ArrayList<>();
        for (Pass pass : plan.passes) parts.addAll(detached ? List.of(pass) : pass.keyParts());
        WorkList[] lists = new WorkList[parts.size()];
        for (int i = 0; i < lists.length; i++) lists[i] = new WorkList(parts.get(i), heads);
        Parallel.forEachTask(heads, h -> {
            int gh = h % group, kv = h / group;
            float[] gk = gh == 0 ? dk : dkx, gv = gh == 0 ? dv : dvx;
            int bufHead = gh == 0 ? kv : kv * (group - 1) + gh - 1;
            FlashKernel.Scratch s = scratch(d);
            for (int pi = 0; pi < lists.length; pi++) {
                Pass pass = parts.get(pi);
                WorkList w = lists[pi];
                for (int e = w.headStart[h]; e < w.headStart[h + 1]; e++) {
                    pass.tile(h, w.tile[e], s.tile);
                    for (int i0 = 0; i0 < w.rows[e]; i0 += QB) {
                        FlashKernel.backwardBlock(p, s, s.tile, h, i0, Math.min(QB, w.rows[e] - i0), detached, gk, gv, bufHead);
                    }
                }
            }
        });
        if (group > 1) {
            // dK[kv] += Σ over the group's other heads, in head order (deterministic)
            Parallel.forEachTask(kvHeads, kv -> {
                for (int gh = 1; gh < group; gh++) {
                    int src = (kv * (group - 1) + gh - 1) * tk * d, dst = kv * tk * d;
                    for (int i = 0; i < tk * d; i++) {
                        dk[dst + i] += dkx[src + i];
                        dv[dst + i] += dvx[src + i];
                    }
                }
            });
        }
    }

    /**
     * Bytes of the transient transposed copy of keys and values that a call of a selecting plan
     * over {@code keys} key rows of {@code kvDim} floats held as arrays makes (none beyond the cap).
     */
    public static long transposedKeyValueBytes(long kvDim, long keys) {
        long floats = kvDim * keys;
        return floats > FlashKernel.TRANSPOSE_MAX_FLOATS ? 0 : 2 * 4 * floats;
    }

    /** Bytes of per-worker scratch the kernel uses at head dimension d (forward and backward). */
    public static long scratchBytesPerWorker(int d) {
        FlashKernel.Scratch s = new FlashKernel.Scratch(d);
        s.backwardBuffers();
        return s.bytes();
    }

    static void checkShapes(float[] q, float[] k, float[] v, int heads, int kvHeads, int n, int d) {
        checkShapes(q, k, v, heads, kvHeads, n, n, d);
    }

    // q: [H, n, D]; k, v: [Hkv, tk, D]
    static void checkShapes(float[] q, float[] k, float[] v, int heads, int kvHeads, int n, int tk, int d) {
        if (n < 1 || d < 1) throw new LongspanException("attention: N and D must be at least 1, got N=" + n + ", D=" + d);
        if (heads < 1 || kvHeads < 1 || heads % kvHeads != 0) {
            throw new LongspanException("attention: query heads (" + heads + ") must be a positive multiple of key/value heads (" + kvHeads + ")");
        }
        if ((long) heads * Math.max(n, tk) * d > Integer.MAX_VALUE - 8) {
            throw new LongspanException("attention: H·N·D = " + (long) heads * Math.max(n, tk) * d + " exceeds a Java array (2^31 - 1 elements)");
        }
        require(q, (long) heads * n * d, "q");
        require(k, (long) kvHeads * tk * d, "k");
        require(v, (long) kvHeads * tk * d, "v");
    }

    private static void atLeast(float[] a, long len, String name) {
        if (a == null || a.length < len) {
            throw new LongspanException("attention: " + name + " has " + (a == null ? 0 : a.length) + " elements, expected at least " + len);
        }
    }

    private static void require(float[] a, long len, String name) {
        if (a == null || a.length != len) {
            throw new LongspanException("attention: " + name + " has " + (a == null ? 0 : a.length) + " elements, expected " + len);
        }
    }

    /** The (head, tile) entries of a pass with their blocks of QB rows, prefix-summed for task lookup. */
    static final class WorkList {
        final int[] head, tile, rows, first, headStart;
        final int total;

        WorkList(Pass pass, int heads) {
            int entries = 0;
            for (int h = 0; h < heads; h++) entries += pass.tiles(h);
            int[] hh = new int[entries], tt = new int[entries], rr = new int[entries], ff = new int[entries];
            headStart = new int[heads + 1];
            int e = 0, blocks = 0;
            for (int h = 0; h < heads; h++) {
                headStart[h] = e;
                for (int t = 0, nt = pass.tiles(h); t < nt; t++) {
                    int r = pass.queryRows(h, t);
                    if (r <= 0) continue;
                    hh[e] = h;
                    tt[e] = t;
                    rr[e] = r;
                    ff[e] = blocks;
                    blocks += (r + QB - 1) / QB;
                    e++;
                }
            }
            headStart[heads] = e;
            head = hh;
            tile = tt;
            rows = rr;
            first = Arrays.copyOf(ff, e);
            total = blocks;
        }

        // the entry whose blocks contain block `item`
        int entry(int item) {
            int lo = 0, hi = first.length - 1;
            while (lo < hi) {
                int mid = (lo + hi + 1) >>> 1;
                if (first[mid] <= item) lo = mid; else hi = mid - 1;
            }
            return lo;
        }
    }
}
