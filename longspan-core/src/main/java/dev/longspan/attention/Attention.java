package dev.longspan.attention;

import dev.longspan.tensor.Parallel;
import dev.longspan.util.LongspanException;

import java.util.Arrays;

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
        Plan plan = Plan.of(pattern, n, heads, kvHeads, !opt.bidirectional());
        return forward(q, k, v, d, plan, opt, new float[heads * n * d], new float[heads * n]);
    }

    /** Forward pass into caller buffers o [H, N, D] and lse [H, N] (overwritten). */
    public static AttentionResult forward(float[] q, float[] k, float[] v, int d, Plan plan, AttentionOptions opt,
                                          float[] o, float[] lse) {
        int heads = plan.heads, kvHeads = plan.kvHeads, n = plan.n;
        checkShapes(q, k, v, heads, kvHeads, n, d);
        if (plan.causal == opt.bidirectional()) throw new IllegalArgumentException("plan and options disagree on causality");
        require(o, (long) heads * n * d, "o");
        require(lse, (long) heads * n, "lse");
        float scale = opt.scaleFor(d);
        plan.prepare(q, k, d);
        FlashKernel.Problem p = new FlashKernel.Problem(q, k, v, heads, kvHeads, n, d, scale);
        p.o = o;
        p.lse = lse;
        Parallel.forChunks(0, heads, 1, (c, h0, h1) -> {
            Arrays.fill(o, h0 * n * d, h1 * n * d, 0f);
            Arrays.fill(lse, h0 * n, h1 * n, Float.NEGATIVE_INFINITY);
        });
        for (Pass pass : plan.passes) {
            WorkList w = new WorkList(pass, heads);
            // most expensive blocks (last rows of causal tiles) first, for a balanced finish
            Parallel.forEachTask(w.total, task -> {
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

    /** Backward pass; allocates the gradients. */
    public static AttentionGradients backward(AttentionResult fwd, float[] q, float[] k, float[] v, float[] dO) {
        int h = fwd.heads(), kvh = fwd.kvHeads(), n = fwd.length(), d = fwd.dim();
        AttentionGradients g = new AttentionGradients(new float[h * n * d], new float[kvh * n * d], new float[kvh * n * d]);
        backward(fwd, q, k, v, dO, g.dq(), g.dk(), g.dv());
        return g;
    }

    /** Backward pass into caller buffers dq [H, N, D], dk, dv [Hkv, N, D] (overwritten). */
    public static void backward(AttentionResult fwd, float[] q, float[] k, float[] v, float[] dO,
                                float[] dq, float[] dk, float[] dv) {
        int heads = fwd.heads(), kvHeads = fwd.kvHeads(), n = fwd.length(), d = fwd.dim();
        checkShapes(q, k, v, heads, kvHeads, n, d);
        require(dO, (long) heads * n * d, "dO");
        require(dq, (long) heads * n * d, "dq");
        require(dk, (long) kvHeads * n * d, "dk");
        require(dv, (long) kvHeads * n * d, "dv");
        Plan plan = fwd.plan();
        FlashKernel.Problem p = new FlashKernel.Problem(q, k, v, heads, kvHeads, n, d, fwd.scale());
        p.o = fwd.o();
        p.lse = fwd.lse();
        p.dO = dO;
        p.dq = dq;
        boolean detached = fwd.options().detachedMerge() && plan.passes.size() > 1;
        int group = heads / kvHeads;
        // heads other than the first of their group accumulate dK/dV in a buffer of their own
        float[] dkx = group > 1 ? new float[(heads - kvHeads) * n * d] : null;
        float[] dvx = group > 1 ? new float[(heads - kvHeads) * n * d] : null;
        Arrays.fill(dq, 0f);
        Arrays.fill(dk, 0f);
        Arrays.fill(dv, 0f);
        WorkList[] lists = new WorkList[plan.passes.size()];
        for (int i = 0; i < lists.length; i++) lists[i] = new WorkList(plan.passes.get(i), heads);
        Parallel.forEachTask(heads, h -> {
            int gh = h % group, kv = h / group;
            float[] tk = gh == 0 ? dk : dkx, tv = gh == 0 ? dv : dvx;
            int bufHead = gh == 0 ? kv : kv * (group - 1) + gh - 1;
            FlashKernel.Scratch s = scratch(d);
            for (int pi = 0; pi < lists.length; pi++) {
                Pass pass = plan.passes.get(pi);
                WorkList w = lists[pi];
                for (int e = w.headStart[h]; e < w.headStart[h + 1]; e++) {
                    pass.tile(h, w.tile[e], s.tile);
                    for (int i0 = 0; i0 < w.rows[e]; i0 += QB) {
                        FlashKernel.backwardBlock(p, s, s.tile, h, i0, Math.min(QB, w.rows[e] - i0), detached, tk, tv, bufHead);
                    }
                }
            }
        });
        if (group > 1) {
            // dK[kv] += Σ over the group's other heads, in head order (deterministic)
            Parallel.forEachTask(kvHeads, kv -> {
                for (int gh = 1; gh < group; gh++) {
                    int src = (kv * (group - 1) + gh - 1) * n * d, dst = kv * n * d;
                    for (int i = 0; i < n * d; i++) {
                        dk[dst + i] += dkx[src + i];
                        dv[dst + i] += dvx[src + i];
                    }
                }
            });
        }
    }

    /** Bytes of per-worker scratch the kernel uses at head dimension d (forward and backward). */
    public static long scratchBytesPerWorker(int d) {
        FlashKernel.Scratch s = new FlashKernel.Scratch(d);
        s.backwardBuffers();
        return s.bytes();
    }

    static void checkShapes(float[] q, float[] k, float[] v, int heads, int kvHeads, int n, int d) {
        if (n < 1 || d < 1) throw new LongspanException("attention: N and D must be at least 1, got N=" + n + ", D=" + d);
        if (heads < 1 || kvHeads < 1 || heads % kvHeads != 0) {
            throw new LongspanException("attention: query heads (" + heads + ") must be a positive multiple of key/value heads (" + kvHeads + ")");
        }
        if ((long) heads * n * d > Integer.MAX_VALUE - 8) {
            throw new LongspanException("attention: H·N·D = " + (long) heads * n * d + " exceeds a Java array (2^31 - 1 elements)");
        }
        require(q, (long) heads * n * d, "q");
        require(k, (long) kvHeads * n * d, "k");
        require(v, (long) kvHeads * n * d, "v");
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
