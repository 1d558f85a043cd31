package dev.longspan.mpi;

import dev.longspan.attention.Attention;
import dev.longspan.attention.AttentionGradients;
import dev.longspan.attention.AttentionOptions;
import dev.longspan.attention.AttentionResult;
import dev.longspan.attention.Pattern;
import dev.longspan.attention.Plan;
import dev.longspan.util.LongspanException;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Attention over a sequence split across processes (LongNet's distributed algorithm, section 2.9
 * of docs/design ALGORITHMS.md): rank k holds the contiguous positions [start, start + length) of
 * q [H, L, D], k and v [Hkv, L, D] and gets back its rows of O [H, L, D] and LSE [H, L], then of
 * dQ, dK and dV: the same numbers as {@link Attention} on the whole sequence.
 *
 * <p>The pattern splits into parts merged by log-sum-exp (as the engine merges its passes):
 * <ul>
 *   <li>a LongNet pair (w, r), and a block (= pair (B, 1)): for every segment that meets this
 *       rank's shard, the kept rows of the segment (residue s(h) mod r) form a dense problem
 *       over the compressed rows, for the query heads of a GQA group that share the offset; the kept key/value rows other ranks hold are
 *       exchanged in one all-to-all per pair (only ranks that share a segment send, only the
 *       sparsified rows, so with w/r bounded the volume stays constant as N grows with P), and
 *       the backward sends their gradients back the same way (a sparse reduce-scatter);</li>
 *   <li>a window of W: the W−1 rows before the shard (and after it, bidirectional), the same way;</li>
 *   <li>dense: ring attention, key/value blocks passed around the ring, the backward passing
 *       the blocks' gradient accumulators along with them.</li>
 * </ul>
 * Every problem runs on the single-process engine (dense or window over compressed rows); rows
 * another rank owns enter as keys only, with zero queries and zero output gradients, so they add
 * nothing. The backward uses the merged O and LSE (the exact gradient of the joint softmax).
 */
public final class SequenceParallelAttention {
    private SequenceParallelAttention() {}

    /** Rank's contiguous shard of a sequence of n positions: the first n mod P ranks get one more row. */
    public record Shard(int start, int length) {
        public int end() { return start + length; }
    }

    public static Shard shard(int n, int ranks, int rank) {
        int base = n / ranks, rem = n % ranks;
        return new Shard(rank * base + Math.min(rank, rem), base + (rank < rem ? 1 : 0));
    }

    /** This rank's forward outputs and what its backward needs. */
    public static final class Result {
        public final float[] o, lse;
        final Ctx ctx;
        final List<Part> parts;

        Result(float[] o, float[] lse, Ctx ctx, List<Part> parts) {
            this.o = o;
            this.lse = lse;
            this.ctx = ctx;
            this.parts = parts;
        }
    }

    /**
     * Forward pass on this rank's shard of a sequence of n positions (every rank passes the same
     * n, heads, pattern and options).
     */
    public static Result forward(Communicator comm, float[] q, float[] k, float[] v, int heads, int kvHeads, int n, int d,
                                 Pattern pattern, AttentionOptions opt) {
        if (opt.detachedMerge()) throw new LongspanException("sequence-parallel attention: the detached (torchscale) merge gradient is not supported; use the exact one");
        if (n < comm.size()) throw new LongspanException("sequence-parallel attention: " + n + " positions cannot be split across " + comm.size() + " processes");
        if (heads < 1 || kvHeads < 1 || heads % kvHeads != 0) {
            throw new LongspanException("attention: query heads (" + heads + ") must be a positive multiple of key/value heads (" + kvHeads + ")");
        }
        Ctx c = new Ctx(comm, q, k, v, heads, kvHeads, n, d, opt);
        if ((long) q.length != (long) heads * c.len * d || (long) k.length != (long) kvHeads * c.len * d || k.length != v.length) {
            throw new LongspanException("sequence-parallel attention: rank " + c.me + " holds " + c.len + " positions; q, k, v have the wrong sizes");
        }
        List<Part> parts = new ArrayList<>();
        addParts(pattern, pattern, c, parts);
        float[] o = new float[heads * c.len * d], lse = new float[heads * c.len];
        Arrays.fill(lse, Float.NEGATIVE_INFINITY);
        for (Part p : parts) {
            float[] po = new float[o.length], pl = new float[lse.length];
            Arrays.fill(pl, Float.NEGATIVE_INFINITY);
            p.forward(c, po, pl);
            merge(o, lse, po, pl, d);
        }
        return new Result(o, lse, c, parts);
    }

    /** Backward pass: this rank's dQ [H, L, D], dK and dV [Hkv, L, D]. */
    public static AttentionGradients backward(Result fwd, float[] dO) {
        Ctx c = fwd.ctx;
        if (dO.length != fwd.o.length) throw new LongspanException("sequence-parallel attention: dO has " + dO.length + " elements, expected " + fwd.o.length);
        AttentionGradients g = new AttentionGradients(new float[c.q.length], new float[c.k.length], new float[c.v.length]);
        for (Part p : fwd.parts) p.backward(c, fwd.o, fwd.lse, dO, g.dq(), g.dk(), g.dv());
        return g;
    }

    private static void addParts(Pattern whole, Pattern p, Ctx c, List<Part> out) {
        switch (p) {
            case Pattern.Dense x -> out.add(new RingPart());
            case Pattern.Window w -> out.add(GatherPart.window(c, w.size()));
            case Pattern.Block b -> out.add(GatherPart.dilated(c, b.size(), 1, h -> 0));
            case Pattern.Dilated dl -> {
                for (int i = 0; i < dl.pairs(); i++) {
                    int pair = i;
                    out.add(GatherPart.dilated(c, dl.w()[i], dl.r()[i], h -> dl.offset(pair, h, c.heads)));
                }
            }
            case Pattern.Sum s -> { for (Pattern t : s.terms()) addParts(whole, t, c, out); }
            case Pattern.SelectMerge s -> throw new LongspanException("sequence-parallel attention: pattern '" + whole.spec()
                    + "': selectmerge is not supported across processes (dense, window, block and dilated are)");
        }
    }

    /** o, lse ← the log-sum-exp merge of (o, lse) and (po, pl), row by row. */
    static void merge(float[] o, float[] lse, float[] po, float[] pl, int d) {
        for (int row = 0; row < lse.length; row++) {
            float b = pl[row];
            if (b == Float.NEGATIVE_INFINITY) continue;
            float a = lse[row];
            int off = row * d;
            if (a == Float.NEGATIVE_INFINITY) {
                System.arraycopy(po, off, o, off, d);
                lse[row] = b;
                continue;
            }
            double m = Math.max(a, b), ea = Math.exp(a - m), eb = Math.exp(b - m), s = ea + eb;
            double wa = ea / s, wb = eb / s;
            for (int c = 0; c < d; c++) o[off + c] = (float) (wa * o[off + c] + wb * po[off + c]);
            lse[row] = (float) (m + Math.log(s));
        }
    }

    /** The shape of the whole problem and this rank's place in it. */
    static final class Ctx {
        final Communicator comm;
        final float[] q, k, v;
        final int heads, kvHeads, group, n, d, ranks, me, start, len;
        final Shard[] shards;
        final boolean causal;
        final AttentionOptions opt;
        final float scale;

        Ctx(Communicator comm, float[] q, float[] k, float[] v, int heads, int kvHeads, int n, int d, AttentionOptions opt) {
            this.comm = comm;
            this.q = q;
            this.k = k;
            this.v = v;
            this.heads = heads;
            this.kvHeads = kvHeads;
            this.group = heads / kvHeads;
            this.n = n;
            this.d = d;
            this.ranks = comm.size();
            this.me = comm.rank();
            this.shards = new Shard[ranks];
            for (int j = 0; j < ranks; j++) shards[j] = shard(n, ranks, j);
            this.start = shards[me].start();
            this.len = shards[me].length();
            this.causal = !opt.bidirectional();
            this.opt = opt;
            this.scale = opt.scaleFor(d);
        }
    }

    /** One log-sum-exp-merged part of the pattern. */
    interface Part {
        /** Writes this part's O and LSE for the local rows (rows it does not reach: O = 0, LSE = −inf). */
        void forward(Ctx c, float[] o, float[] lse);

        /** Adds this part's share of dQ, dK, dV given the merged O and LSE. */
        void backward(Ctx c, float[] o, float[] lse, float[] dO, float[] dq, float[] dk, float[] dv);
    }

    /** Runs the engine on one problem and returns (O, LSE). */
    static AttentionResult engineForward(Ctx c, Pattern p, float[] q, float[] k, float[] v, int heads, int kvHeads, int m) {
        Plan plan = Plan.of(p, m, heads, kvHeads, c.causal);
        return Attention.forward(q, k, v, c.d, plan, c.opt, new float[heads * m * c.d], new float[heads * m]);
    }

    /** The engine's backward of one problem with the merged O and LSE standing in for the part's own. */
    static AttentionGradients engineBackward(Ctx c, Pattern p, float[] q, float[] k, float[] v, float[] o, float[] lse, float[] dO,
                                             int heads, int kvHeads, int m) {
        Plan plan = Plan.of(p, m, heads, kvHeads, c.causal);
        return Attention.backward(new AttentionResult(o, lse, plan, heads, kvHeads, m, c.d, c.scale, c.opt), q, k, v, dO);
    }
}
