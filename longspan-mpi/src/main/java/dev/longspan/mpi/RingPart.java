package dev.longspan.mpi;

import dev.longspan.attention.AttentionGradients;
import dev.longspan.attention.AttentionResult;
import dev.longspan.attention.Pattern;
import dev.longspan.mpi.SequenceParallelAttention.Ctx;

import java.util.Arrays;

/**
 * Dense attention as ring attention: the key/value blocks travel around the ring of ranks (P−1
 * exchanges with the neighbours); each rank attends to each block it may see (causal: its own,
 * causally, and every earlier rank's, fully) and merges by log-sum-exp. The backward sends each
 * block round again with its dK/dV accumulator, and one last step brings the accumulators home.
 * Traffic per rank grows with P (every block visits every rank), which is what LongNet avoids.
 */
final class RingPart implements SequenceParallelAttention.Part {
    private static final Pattern DENSE = new Pattern.Dense();

    public void forward(Ctx c, float[] o, float[] lse) {
        float[] block = pack(c.k, c.v);
        for (int s = 0; s < c.ranks; s++) {
            int j = Math.floorMod(c.me - s, c.ranks);
            if (s > 0) block = pass(c, block, 2 * c.kvHeads * c.shards[j].length() * c.d);
            if (c.causal && j > c.me) continue;
            float[] po = new float[o.length], pl = new float[lse.length];
            Arrays.fill(pl, Float.NEGATIVE_INFINITY);
            if (j == c.me) {
                AttentionResult r = SequenceParallelAttention.engineForward(c, DENSE, c.q, c.k, c.v, c.heads, c.kvHeads, c.len);
                po = r.o();
                pl = r.lse();
            } else {
                crossForward(c, block, c.shards[j].length(), po, pl);
            }
            SequenceParallelAttention.merge(o, lse, po, pl, c.d);
        }
    }

    public void backward(Ctx c, float[] o, float[] lse, float[] dO, float[] dq, float[] dk, float[] dv) {
        int kvSize = c.kvHeads * c.len * c.d;
        float[] block = pack(c.k, c.v);
        float[] grads = new float[2 * kvSize];
        for (int s = 0; s < c.ranks; s++) {
            int j = Math.floorMod(c.me - s, c.ranks), size = c.kvHeads * c.shards[j].length() * c.d;
            if (s > 0) {
                block = pass(c, block, 2 * size);
                grads = pass(c, grads, 2 * size);
            }
            if (c.causal && j > c.me) continue;
            if (j == c.me) {
                AttentionGradients g = SequenceParallelAttention.engineBackward(c, DENSE, c.q, c.k, c.v, o, lse, dO, c.heads, c.kvHeads, c.len);
                add(g.dq(), 0, dq, 0, dq.length);
                add(g.dk(), 0, grads, 0, size);
                add(g.dv(), 0, grads, size, size);
            } else {
                crossBackward(c, block, c.shards[j].length(), o, lse, dO, dq, grads);
            }
        }
        // the accumulator this rank holds belongs to the next rank: one more step brings each home
        grads = pass(c, grads, 2 * kvSize);
        add(grads, 0, dk, 0, kvSize);
        add(grads, kvSize, dv, 0, kvSize);
    }

    // sends this block to the next rank, receives the previous rank's (recvCount floats)
    private static float[] pass(Ctx c, float[] block, int recvCount) {
        if (c.ranks == 1) return block;
        float[] in = new float[recvCount];
        c.comm.sendrecv(block, block.length, (c.me + 1) % c.ranks, in, recvCount, Math.floorMod(c.me - 1, c.ranks));
        return in;
    }

    private static float[] pack(float[] k, float[] v) {
        float[] b = Arrays.copyOf(k, k.length + v.length);
        System.arraycopy(v, 0, b, k.length, v.length);
        return b;
    }

    /**
     * This rank's queries against another rank's whole block of tk rows (no mask): the engine's
     * bidirectional dense attention on tk rows, this rank's queries in chunks of at most tk rows,
     * padded with zero queries.
     */
    private static void crossForward(Ctx c, float[] block, int tk, float[] o, float[] lse) {
        int d = c.d, kvSize = c.kvHeads * tk * d;
        float[] k = Arrays.copyOfRange(block, 0, kvSize), v = Arrays.copyOfRange(block, kvSize, 2 * kvSize);
        Ctx open = bidirectional(c);
        for (int r0 = 0; r0 < c.len; r0 += tk) {
            int rows = Math.min(tk, c.len - r0);
            float[] q = chunk(c.q, c.heads, c.len, r0, rows, tk, d);
            AttentionResult r = SequenceParallelAttention.engineForward(open, DENSE, q, k, v, c.heads, c.kvHeads, tk);
            for (int h = 0; h < c.heads; h++) {
                System.arraycopy(r.o(), h * tk * d, o, (h * c.len + r0) * d, rows * d);
                System.arraycopy(r.lse(), h * tk, lse, h * c.len + r0, rows);
            }
        }
    }

    private static void crossBackward(Ctx c, float[] block, int tk, float[] o, float[] lse, float[] dO, float[] dq, float[] grads) {
        int d = c.d, kvSize = c.kvHeads * tk * d;
        float[] k = Arrays.copyOfRange(block, 0, kvSize), v = Arrays.copyOfRange(block, kvSize, 2 * kvSize);
        Ctx open = bidirectional(c);
        for (int r0 = 0; r0 < c.len; r0 += tk) {
            int rows = Math.min(tk, c.len - r0);
            float[] q = chunk(c.q, c.heads, c.len, r0, rows, tk, d);
            float[] oc = chunk(o, c.heads, c.len, r0, rows, tk, d), dc = chunk(dO, c.heads, c.len, r0, rows, tk, d);
            float[] lc = chunk(lse, c.heads, c.len, r0, rows, tk, 1);
            AttentionGradients g = SequenceParallelAttention.engineBackward(open, DENSE, q, k, v, oc, lc, dc, c.heads, c.kvHeads, tk);
            for (int h = 0; h < c.heads; h++) add(g.dq(), h * tk * d, dq, (h * c.len + r0) * d, rows * d);
            add(g.dk(), 0, grads, 0, kvSize);
            add(g.dv(), 0, grads, kvSize, kvSize);
        }
    }

    private static Ctx bidirectional(Ctx c) {
        return c.causal ? new Ctx(c.comm, c.q, c.k, c.v, c.heads, c.kvHeads, c.n, c.d, c.opt.withBidirectional(true)) : c;
    }

    // rows r0..r0+rows of every head of x [H, len, w], zero-padded to `to` rows: [H, to, w]
    private static float[] chunk(float[] x, int heads, int len, int r0, int rows, int to, int w) {
        float[] out = new float[heads * to * w];
        for (int h = 0; h < heads; h++) System.arraycopy(x, (h * len + r0) * w, out, h * to * w, rows * w);
        return out;
    }

    private static void add(float[] src, int so, float[] dst, int dOff, int len) {
        for (int i = 0; i < len; i++) dst[dOff + i] += src[so + i];
    }
}
