package dev.longspan.mpi;

import dev.longspan.attention.AttentionGradients;
import dev.longspan.attention.AttentionResult;
import dev.longspan.attention.Pattern;
import dev.longspan.mpi.SequenceParallelAttention.Ctx;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntUnaryOperator;

/**
 * A part whose every query reads a bounded set of keys near it: a LongNet pair (segments, rows of
 * one residue), a block, a window. Each rank's work is a list of {@link Problem}s (a stream of
 * heads, a key range, the rank's query range inside it, a residue class); every rank can list
 * every other rank's problems, so who sends what to whom needs no negotiation. The rows a problem
 * needs from other ranks arrive in one all-to-all; the gradients of those rows go back in one.
 */
final class GatherPart implements SequenceParallelAttention.Part {
    /**
     * One engine call: the positions p in [keyLo, keyHi) with p mod step = rem, in order, are the
     * keys (stream's key/value head); those in [qLo, qHi) are this rank's queries (stream's query heads).
     */
    record Problem(int stream, int keyLo, int keyHi, int qLo, int qHi, int step, int rem) {
        int first(int lo) { return lo + Math.floorMod(rem - lo, step); }

        int count(int lo, int hi) {
            lo = Math.max(lo, keyLo);
            hi = Math.min(hi, keyHi);
            int f = first(lo);
            return f >= hi ? 0 : (hi - 1 - f) / step + 1;
        }
    }

    /**
     * Query heads that read the same rows of one key/value head: for a LongNet pair the heads of a
     * GQA group with the same offset (so shared key rows are sent once), for a window the group.
     */
    record Stream(int kv, int offset, int[] heads) {}

    private final boolean perOffset;     // dilated (rows of one residue) or window (all rows)
    private final List<Stream> streams = new ArrayList<>();
    private final int segment, step, window;
    private final IntUnaryOperator offset;
    private final Pattern local;
    private final List<List<Problem>> problems = new ArrayList<>();
    private int[] sendCounts, recvCounts;
    private float[] received;
    private boolean exchange;      // whether any rank sends any other rank anything (else both all-to-alls are skipped)
    private final int[] recvStart;

    private GatherPart(Ctx c, boolean perOffset, int segment, int step, int window, IntUnaryOperator offset, Pattern local) {
        this.perOffset = perOffset;
        this.segment = segment;
        this.step = step;
        this.window = window;
        this.offset = offset;
        this.local = local;
        for (int kv = 0; kv < c.kvHeads; kv++) {
            Map<Integer, List<Integer>> byOffset = new LinkedHashMap<>();
            for (int h = kv * c.group; h < (kv + 1) * c.group; h++) byOffset.computeIfAbsent(offset.applyAsInt(h), x -> new ArrayList<>()).add(h);
            for (var e : byOffset.entrySet()) streams.add(new Stream(kv, e.getKey(), e.getValue().stream().mapToInt(Integer::intValue).toArray()));
        }
        for (int j = 0; j < c.ranks; j++) problems.add(problemsOf(c, j));
        recvStart = new int[c.ranks + 1];
    }

    /** LongNet pair (w, r): segments of min(w, N), head h keeps the rows at offset(h) mod r inside each. */
    static GatherPart dilated(Ctx c, int w, int r, IntUnaryOperator offset) {
        return new GatherPart(c, true, Math.min(w, c.n), r, 0, offset, new Pattern.Dense());
    }

    static GatherPart window(Ctx c, int size) {
        return new GatherPart(c, false, 0, 1, size, h -> 0, new Pattern.Window(size));
    }

    private List<Problem> problemsOf(Ctx c, int rank) {
        int a = c.shards[rank].start(), b = c.shards[rank].end();
        List<Problem> out = new ArrayList<>();
        for (int e = 0; e < streams.size(); e++) {
            if (perOffset) {
                int s = streams.get(e).offset();
                for (int g = a / segment; g * segment < b; g++) {
                    int segLo = g * segment, segHi = Math.min(segLo + segment, c.n);
                    int qLo = Math.max(a, segLo), qHi = Math.min(b, segHi);
                    Problem p = new Problem(e, segLo, c.causal ? qHi : segHi, qLo, qHi, step, Math.floorMod(segLo + s, step));
                    if (s < segHi - segLo && p.count(qLo, qHi) > 0) out.add(p);
                }
            } else {
                out.add(new Problem(e, Math.max(0, a - window + 1), c.causal ? b : (int) Math.min(c.n, (long) b + window - 1), a, b, 1, 0));
            }
        }
        return out;
    }

    private int kvHead(Problem p) { return streams.get(p.stream()).kv(); }

    private int[] heads(Problem p) { return streams.get(p.stream()).heads(); }

    // floats rank `from` sends rank `to` (K then V rows of every problem of `to` that reads `from`'s rows)
    private int volume(Ctx c, int from, int to) {
        if (from == to) return 0;
        long rows = 0;
        for (Problem p : problems.get(to)) rows += p.count(c.shards[from].start(), c.shards[from].end());
        return Math.toIntExact(rows * 2 * c.d);
    }

    public void forward(Ctx c, float[] o, float[] lse) {
        int d = c.d, ranks = c.ranks, me = c.me;
        sendCounts = new int[ranks];
        recvCounts = new int[ranks];
        exchange = false;
        for (int j = 0; j < ranks; j++) {
            sendCounts[j] = volume(c, me, j);
            recvCounts[j] = volume(c, j, me);
            for (int t = 0; t < ranks && !exchange; t++) exchange = volume(c, j, t) > 0;
        }
        for (int j = 0; j < ranks; j++) recvStart[j + 1] = recvStart[j] + recvCounts[j];
        received = new float[recvStart[ranks]];
        if (exchange) {
            float[] send = new float[sum(sendCounts)];
            int at = 0;
            for (int t = 0; t < ranks; t++) {
                if (t == me) continue;
                for (Problem p : problems.get(t)) at = pack(c, p, c.k, c.v, send, at);
            }
            c.comm.alltoallv(send, sendCounts, received, recvCounts);
        }
        for (Problem p : problems.get(me)) {
            Compressed x = compress(c, p);
            int[] hs = heads(p);
            AttentionResult r = SequenceParallelAttention.engineForward(c, local, x.q, x.k, x.v, hs.length, 1, x.m);
            for (int e = 0; e < hs.length; e++) {
                int row = x.qFrom;
                for (int pos = p.first(p.qLo()); pos < p.qHi(); pos += p.step(), row++) {
                    int dst = hs[e] * c.len + pos - c.start;
                    System.arraycopy(r.o(), (e * x.m + row) * d, o, dst * d, d);
                    lse[dst] = r.lse()[e * x.m + row];
                }
            }
        }
    }

    public void backward(Ctx c, float[] o, float[] lse, float[] dO, float[] dq, float[] dk, float[] dv) {
        int d = c.d, ranks = c.ranks, me = c.me;
        float[] gradSend = new float[received.length];
        int[] gradAt = recvStart.clone();
        for (Problem p : problems.get(me)) {
            Compressed x = compress(c, p);
            int[] hs = heads(p);
            int kv = kvHead(p);
            float[] oc = new float[hs.length * x.m * d], lc = new float[hs.length * x.m], dc = new float[hs.length * x.m * d];
            for (int e = 0; e < hs.length; e++) {
                int row = x.qFrom;
                for (int pos = p.first(p.qLo()); pos < p.qHi(); pos += p.step(), row++) {
                    int src = hs[e] * c.len + pos - c.start;
                    System.arraycopy(o, src * d, oc, (e * x.m + row) * d, d);
                    System.arraycopy(dO, src * d, dc, (e * x.m + row) * d, d);
                    lc[e * x.m + row] = lse[src];
                }
            }
            AttentionGradients g = SequenceParallelAttention.engineBackward(c, local, x.q, x.k, x.v, oc, lc, dc, hs.length, 1, x.m);
            for (int e = 0; e < hs.length; e++) {
                int row = x.qFrom;
                for (int pos = p.first(p.qLo()); pos < p.qHi(); pos += p.step(), row++) {
                    add(g.dq(), (e * x.m + row) * d, dq, (hs[e] * c.len + pos - c.start) * d, d);
                }
            }
            // key rows in rank order, as compress() laid them out: own rows into dK/dV, the others' back to them
            int row = 0;
            for (int j = 0; j < ranks; j++) {
                int cnt = p.count(c.shards[j].start(), c.shards[j].end());
                if (cnt == 0) continue;
                if (j == me) {
                    for (int pos = p.first(Math.max(p.keyLo(), c.start)), i = 0; i < cnt; i++, pos += p.step(), row++) {
                        int dst = (kv * c.len + pos - c.start) * d;
                        add(g.dk(), row * d, dk, dst, d);
                        add(g.dv(), row * d, dv, dst, d);
                    }
                } else {
                    System.arraycopy(g.dk(), row * d, gradSend, gradAt[j], cnt * d);
                    System.arraycopy(g.dv(), row * d, gradSend, gradAt[j] + cnt * d, cnt * d);
                    gradAt[j] += 2 * cnt * d;
                    row += cnt;
                }
            }
        }
        if (exchange) {
            float[] gradRecv = new float[sum(sendCounts)];
            c.comm.alltoallv(gradSend, recvCounts, gradRecv, sendCounts);
            int at = 0;
            for (int t = 0; t < ranks; t++) {
                if (t == me) continue;
                for (Problem p : problems.get(t)) {
                    int cnt = p.count(c.start, c.start + c.len);
                    if (cnt == 0) continue;
                    int kv = kvHead(p);
                    for (int pos = p.first(Math.max(p.keyLo(), c.start)), i = 0; i < cnt; i++, pos += p.step()) {
                        int dst = (kv * c.len + pos - c.start) * d;
                        add(gradRecv, at + i * d, dk, dst, d);
                        add(gradRecv, at + (cnt + i) * d, dv, dst, d);
                    }
                    at += 2 * cnt * d;
                }
            }
        }
    }

    /** The compressed problem: key rows in position order, queries zero outside this rank's rows. */
    private record Compressed(float[] q, float[] k, float[] v, int m, int qFrom) {}

    private Compressed compress(Ctx c, Problem p) {
        int d = c.d, kv = kvHead(p);
        int[] hs = heads(p);
        int m = p.count(p.keyLo(), p.keyHi()), qFrom = p.count(p.keyLo(), p.qLo());
        float[] q = new float[hs.length * m * d], k = new float[m * d], v = new float[m * d];
        int row = 0;
        int[] at = recvStart.clone();
        for (int j = 0; j < c.ranks; j++) {
            int cnt = p.count(c.shards[j].start(), c.shards[j].end());
            if (cnt == 0) continue;
            if (j == c.me) {
                for (int pos = p.first(Math.max(p.keyLo(), c.start)), i = 0; i < cnt; i++, pos += p.step(), row++) {
                    int src = (kv * c.len + pos - c.start) * d;
                    System.arraycopy(c.k, src, k, row * d, d);
                    System.arraycopy(c.v, src, v, row * d, d);
                }
            } else {
                int base = at[j] + offsetInMessage(c, j, p);
                System.arraycopy(received, base, k, row * d, cnt * d);
                System.arraycopy(received, base + cnt * d, v, row * d, cnt * d);
                row += cnt;
            }
        }
        for (int e = 0; e < hs.length; e++) {
            int r = qFrom;
            for (int pos = p.first(p.qLo()); pos < p.qHi(); pos += p.step(), r++) {
                System.arraycopy(c.q, (hs[e] * c.len + pos - c.start) * d, q, (e * m + r) * d, d);
            }
        }
        return new Compressed(q, k, v, m, qFrom);
    }

    // where problem p's rows start in the message rank j sent this rank (the problems before it, in order)
    private int offsetInMessage(Ctx c, int j, Problem p) {
        int off = 0;
        for (Problem x : problems.get(c.me)) {
            if (x == p) return off;
            off += 2 * c.d * x.count(c.shards[j].start(), c.shards[j].end());
        }
        throw new IllegalStateException("problem not in this rank's list");
    }

    // K rows then V rows of `p`'s keys that lie in this rank's shard
    private int pack(Ctx c, Problem p, float[] k, float[] v, float[] out, int at) {
        int cnt = p.count(c.start, c.start + c.len);
        if (cnt == 0) return at;
        int kv = kvHead(p), d = c.d;
        for (int pos = p.first(Math.max(p.keyLo(), c.start)), i = 0; i < cnt; i++, pos += p.step()) {
            int src = (kv * c.len + pos - c.start) * d;
            System.arraycopy(k, src, out, at + i * d, d);
            System.arraycopy(v, src, out, at + (cnt + i) * d, d);
        }
        return at + 2 * cnt * d;
    }

    private static void add(float[] src, int so, float[] dst, int dOff, int len) {
        for (int i = 0; i < len; i++) dst[dOff + i] += src[so + i];
    }

    private static int sum(int[] xs) {
        int s = 0;
        for (int x : xs) s += x;
        return s;
    }
}
