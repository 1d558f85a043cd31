package dev.longspan.attention;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static dev.longspan.attention.TileOps.BK;
import static dev.longspan.attention.TileOps.QB;

/**
 * Select-and-merge's per-region key summaries of one layer, per key/value head, and the rule that
 * ranks regions for a query ({@link Pattern.SelectMerge}). The attention engine builds them from a
 * whole sequence; cached decoding appends keys as tokens arrive. Both go through the same code
 * (summaries accumulated in position order; {@code bound} scored per query in a fixed channel
 * order, {@code mean} and {@code max} by the flash kernel's own score tile, whose result for a
 * query does not depend on the other queries of the block), so they choose the same regions bit
 * for bit.
 * <ul>
 *   <li>{@code bound}: per channel the max and min of the region's keys, [kmax, kmin] (2D floats);
 *       the score Σ_c max(q_c·kmax_c, q_c·kmin_c) is the dot product of [max(q,0), min(q,0)] with it;</li>
 *   <li>{@code mean}: the keys' sum in position order times 1/R (D floats);</li>
 *   <li>{@code max}: nothing kept: the score max_j q·k_j reads the region's keys ({@link KeyRows}).</li>
 * </ul>
 * A region's summary is complete once its last token has arrived; only complete regions are ranked.
 *
 * <p>For {@code bound}, complete regions also form a tree of fan-out {@link #FAN}: a node's
 * summary is the per-channel max of its children's kmax and min of their kmin (written once the
 * node is complete, so the same whatever the chunking), which a query descends with a beam
 * ({@link Pattern.SelectMerge}): O(FAN·beam·log C) node scores per query instead of C. (An exact
 * branch-and-bound over the same tree opened nearly every node on the bundled model's keys: the
 * (T−M)-th best region's score is a filler region's, and the bounds of larger nodes over filler
 * exceed it; docs/ATTENTION.md.)
 */
public final class RegionSummaries {
    /** Most key rows {@link KeyRows#rows} is asked for at once. */
    public static final int KEY_BLOCK = BK;
    /** Most queries {@link #select} ranks for at once. */
    public static final int QUERY_BLOCK = QB;

    /** Fan-out of {@code bound}'s region tree: a level-l node covers FAN^l regions. */
    public static final int FAN = 16;
    private static final int FAN_BITS = 4;

    final Pattern.RegionScore score;
    final int region, kvHeads, d, width, beam;
    private float[] data;          // [kvHeads][capacity][width]
    // bound: tree levels 1.. (tree[l]: [kvHeads][treeCap[l]][width]); a node is written once complete
    private float[][] tree = new float[1][];
    private int[] treeCap = new int[1];
    private final float[] partial; // mean: running sums of the region in progress, [kvHeads][d]
    private int capacity;          // regions allocated per head
    private long tokens;           // positions appended

    /** Key rows for {@code score=max}. */
    public interface KeyRows {
        /**
         * Points off[0..count) at the keys of key/value head kvh at positions pos..pos+count−1
         * (count ≤ {@link #KEY_BLOCK}) in the returned array.
         */
        float[] rows(int kvh, long pos, int count, int[] off);
    }

    public RegionSummaries(Pattern.SelectMerge pattern, int kvHeads, int d, int expectedRegions) {
        this.score = pattern.score();
        this.region = pattern.region();
        this.beam = pattern.descends() ? pattern.beam() : 0;
        this.kvHeads = kvHeads;
        this.d = d;
        this.width = switch (score) {
            case BOUND -> 2 * d;
            case MEAN -> d;
            case MAX -> 0;
        };
        this.partial = score == Pattern.RegionScore.MEAN ? new float[kvHeads * d] : null;
        this.capacity = Math.max(1, expectedRegions);
        this.data = new float[kvHeads * capacity * width];
    }

    /**
     * Empty summaries for every select-and-merge term of pattern, in the order of its terms (what a
     * KV cache keeps per layer and hands to {@link Plan#of(Pattern, int, int, boolean, int, int, int, int, List)}).
     */
    public static List<RegionSummaries> forTerms(Pattern pattern, int kvHeads, int d) {
        List<RegionSummaries> out = new ArrayList<>();
        addTerms(out, pattern, kvHeads, d);
        return out;
    }

    private static void addTerms(List<RegionSummaries> out, Pattern p, int kvHeads, int d) {
        switch (p) {
            case Pattern.SelectMerge s -> out.add(new RegionSummaries(s, kvHeads, d, 16));
            case Pattern.Sum s -> { for (Pattern t : s.terms()) addTerms(out, t, kvHeads, d); }
            default -> { }
        }
    }

    /** Positions appended so far. */
    public long tokens() { return tokens; }

    /** Regions whose last token has arrived. */
    public int complete() { return (int) (tokens / region); }

    /** Bytes held. */
    public long bytes() {
        long b = 4L * data.length + (partial == null ? 0 : 4L * partial.length);
        for (int l = 1; l < tree.length; l++) b += 4L * tree[l].length;
        return b;
    }

    /** Appends the keys of the next T positions, k: [Hkv, T, D] (rotated, exactly as attended). */
    public void append(float[] k, int T) {
        if (width == 0) {
            tokens += T;
            return;
        }
        grow((int) ((tokens + T + region - 1) / region));
        for (int t = 0; t < T; t++) {
            long pos = tokens + t;
            int b = (int) (pos / region), off = (int) (pos % region);
            for (int h = 0; h < kvHeads; h++) {
                int x = (h * T + t) * d, o = (h * capacity + b) * width;
                if (score == Pattern.RegionScore.BOUND) {
                    if (off == 0) {
                        System.arraycopy(k, x, data, o, d);
                        System.arraycopy(k, x, data, o + d, d);
                    } else {
                        for (int c = 0; c < d; c++) {
                            data[o + c] = Math.max(data[o + c], k[x + c]);
                            data[o + d + c] = Math.min(data[o + d + c], k[x + c]);
                        }
                    }
                    if (off == region - 1) completeNodes(h, b);
                } else {
                    int po = h * d;
                    if (off == 0) System.arraycopy(k, x, partial, po, d);
                    else for (int c = 0; c < d; c++) partial[po + c] += k[x + c];
                    if (off == region - 1) {
                        float inv = 1f / region;
                        for (int c = 0; c < d; c++) data[o + c] = partial[po + c] * inv;
                    }
                }
            }
        }
        tokens += T;
    }

    // region b of head h is complete: builds every tree node that it completes, bottom-up
    private void completeNodes(int h, int b) {
        for (int l = 1; FAN_BITS * l < 31 && ((b + 1) & ((1 << (FAN_BITS * l)) - 1)) == 0; l++) {
            int node = ((b + 1) >>> (FAN_BITS * l)) - 1;
            if (l == tree.length) {
                tree = Arrays.copyOf(tree, l + 1);
                treeCap = Arrays.copyOf(treeCap, l + 1);
                tree[l] = new float[0];
            }
            if (node >= treeCap[l]) {
                int cap = Math.max(node + 1, Math.max(4, treeCap[l] * 2));
                float[] nd = new float[kvHeads * cap * width];
                for (int g = 0; g < kvHeads; g++) System.arraycopy(tree[l], g * treeCap[l] * width, nd, g * cap * width, treeCap[l] * width);
                tree[l] = nd;
                treeCap[l] = cap;
            }
            float[] dst = tree[l];
            int o = (h * treeCap[l] + node) * width;
            for (int j = 0; j < FAN; j++) {
                int child = node * FAN + j, co = nodeOffset(l - 1, h, child);
                float[] src = l == 1 ? data : tree[l - 1];
                if (j == 0) {
                    System.arraycopy(src, co, dst, o, width);
                } else {
                    for (int c = 0; c < d; c++) {
                        dst[o + c] = Math.max(dst[o + c], src[co + c]);
                        dst[o + d + c] = Math.min(dst[o + d + c], src[co + d + c]);
                    }
                }
            }
        }
    }

    private int nodeOffset(int level, int h, int node) {
        return (h * (level == 0 ? capacity : treeCap[level]) + node) * width;
    }

    private void grow(int need) {
        if (need <= capacity) return;
        int cap = Math.max(need, capacity * 2);
        float[] nd = new float[kvHeads * cap * width];
        for (int h = 0; h < kvHeads; h++) System.arraycopy(data, h * capacity * width, nd, h * cap * width, capacity * width);
        data = nd;
        capacity = cap;
    }

    /** Per-worker scratch of {@link #select} (not thread-safe). */
    public static final class Scratch {
        final float[] qt, st = new float[BK * QB], cur = new float[QB];
        final int[] koff = new int[BK];
        float[] hs = new float[0];   // per query: a min-heap of the best scores so far ...
        int[] hi = new int[0];       // ... and their region indices
        final float[] qs;            // bound's descent: [max(q,0), min(q,0)] of one query ...
        final int[] size = new int[1];
        int[] parents = new int[0];  // ... and the first regions of the nodes kept one level up

        public Scratch(int d) {
            qt = new float[2 * d * QB];
            qs = new float[2 * d];
        }
    }

    /**
     * For the n ≤ {@link TileOps#QB} queries at q[qoff[i]..+D) (query heads of key/value head kvh),
     * the best {@code pick} of the complete regions 0..cand−1 (cand &gt; pick), ranked by this
     * summary's score (descending, ties to the lower index); writes each query's choice ascending
     * to out[outAt + i·pick ..]. keys is read only for {@code score=max}.
     */
    public void select(Scratch s, float[] q, int[] qoff, int n, int kvh, int cand, int pick, KeyRows keys, int[] out, int outAt) {
        if (cand > complete()) throw new IllegalStateException("select-and-merge: region " + (cand - 1) + " is not complete");
        if (s.qt.length < 2 * d * QB) throw new IllegalArgumentException("scratch for a smaller head dimension");
        if (s.hs.length < QB * pick) {
            s.hs = new float[QB * pick];
            s.hi = new int[QB * pick];
        }
        if (beam > 0) {
            int most = Math.max(pick, beam);
            if (s.hs.length < most) {
                s.hs = new float[most];
                s.hi = new int[most];
            }
            if (s.parents.length < most) s.parents = new int[most];
            for (int i = 0; i < n; i++) descend(s, q, qoff[i], kvh, cand, pick, out, outAt + i * pick);
            return;
        }
        int[] size = new int[n];
        Arrays.fill(s.qt, 0f);
        for (int i = 0; i < n; i++)
            for (int c = 0; c < d; c++) {
                float v = q[qoff[i] + c];
                if (score == Pattern.RegionScore.BOUND) {
                    s.qt[c * QB + i] = Math.max(v, 0f);
                    s.qt[(d + c) * QB + i] = Math.min(v, 0f);
                } else {
                    s.qt[c * QB + i] = v;
                }
            }
        if (score == Pattern.RegionScore.MAX) {
            long end = (long) cand * region;
            Arrays.fill(s.cur, Float.NEGATIVE_INFINITY);
            for (long p0 = 0; p0 < end; p0 += BK) {
                int nk = (int) Math.min(BK, end - p0);
                float[] arr = keys.rows(kvh, p0, nk, s.koff);
                TileOps.scores(s.st, arr, s.koff, nk, s.qt, d);
                for (int j = 0; j < nk; j++) {
                    long pos = p0 + j;
                    for (int i = 0; i < n; i++) s.cur[i] = Math.max(s.cur[i], s.st[j * QB + i]);
                    if ((pos + 1) % region == 0) {
                        int b = (int) (pos / region);
                        for (int i = 0; i < n; i++) offer(s, size, i, pick, s.cur[i], b);
                        Arrays.fill(s.cur, Float.NEGATIVE_INFINITY);
                    }
                }
            }
        } else {
            for (int b0 = 0; b0 < cand; b0 += BK) {
                int nb = Math.min(BK, cand - b0);
                for (int j = 0; j < nb; j++) s.koff[j] = (kvh * capacity + b0 + j) * width;
                TileOps.scores(s.st, data, s.koff, nb, s.qt, width);
                for (int j = 0; j < nb; j++)
                    for (int i = 0; i < n; i++) offer(s, size, i, pick, s.st[j * QB + i], b0 + j);
            }
        }
        for (int i = 0; i < n; i++) {
            int o = outAt + i * pick;
            System.arraycopy(s.hi, i * pick, out, o, pick);
            Arrays.sort(out, o, o + pick);
        }
    }

    // bound with a beam: the descent of the region tree for one query (Pattern.SelectMerge); the
    // kept nodes of a level are a best-`keep` heap (offer), read back as the next level's parents
    private void descend(Scratch s, float[] q, int qo, int kvh, int cand, int pick, int[] out, int o) {
        for (int c = 0; c < d; c++) {
            float v = q[qo + c];
            s.qs[c] = Math.max(v, 0f);
            s.qs[d + c] = Math.min(v, 0f);
        }
        int top = 0;
        while (top + 1 < tree.length && cand >>> (FAN_BITS * (top + 1)) > 0) top++;
        int kept = 0, covered = 0;
        for (int l = top; l >= 0; l--) {
            int span = 1 << (FAN_BITS * l), keep = l == 0 ? pick : beam;
            System.arraycopy(s.hi, 0, s.parents, 0, kept);   // first regions of the nodes kept one level up
            s.size[0] = 0;
            for (int i = 0; i < kept; i++) {
                int first = s.parents[i];
                bounds(s, l, kvh, first >>> (FAN_BITS * l), FAN);
                for (int j = 0; j < FAN; j++) offer(s, s.size, 0, keep, s.st[j], first + j * span);
            }
            int roots = 0;
            while (covered + (roots + 1) * span <= cand) roots++;
            if (roots > 0) {
                bounds(s, l, kvh, covered >>> (FAN_BITS * l), roots);
                for (int j = 0; j < roots; j++) offer(s, s.size, 0, keep, s.st[j], covered + j * span);
                covered += roots * span;
            }
            kept = s.size[0];
        }
        System.arraycopy(s.hi, 0, out, o, pick);
        Arrays.sort(out, o, o + pick);
    }

    // s.st[j] = Σ_c max(q_c·max_c, q_c·min_c) for nodes node..node+count−1 of the level (at most 16,
    // contiguous), as [max(q,0), min(q,0)]·[max, min]: one query row against count summary rows
    // (TileOps.rowScores, the query in registers; a fixed order per machine, so the engine and
    // decoding get the same floats). One scalar dot product per node took a quarter of a 1M-token
    // passkey trial.
    private void bounds(Scratch s, int level, int kvh, int node, int count) {
        int o = nodeOffset(level, kvh, node);
        for (int j = 0; j < count; j++) s.koff[j] = o + j * width;
        TileOps.rowScores(s.st, 0, s.qs, 0, level == 0 ? data : tree[level], s.koff, count, width);
    }

    // x ranks below y: lower score, or equal score and higher index
    private static boolean worse(float xs, int xi, float ys, int yi) {
        return xs < ys || (xs == ys && xi > yi);
    }

    // keeps the best `pick` (score, index) of query i in a min-heap whose root is the worst kept
    private static void offer(Scratch s, int[] size, int i, int pick, float score, int index) {
        float[] hs = s.hs;
        int[] hi = s.hi;
        int base = i * pick, n = size[i];
        if (n < pick) {
            int c = n;
            while (c > 0) {
                int p = (c - 1) >> 1;
                if (!worse(score, index, hs[base + p], hi[base + p])) break;
                hs[base + c] = hs[base + p];
                hi[base + c] = hi[base + p];
                c = p;
            }
            hs[base + c] = score;
            hi[base + c] = index;
            size[i] = n + 1;
            return;
        }
        if (!worse(hs[base], hi[base], score, index)) return;   // not better than the worst kept
        int c = 0;
        while (true) {
            int l = 2 * c + 1;
            if (l >= n) break;
            int r = l + 1, w = l;
            if (r < n && worse(hs[base + r], hi[base + r], hs[base + l], hi[base + l])) w = r;
            if (!worse(hs[base + w], hi[base + w], score, index)) break;
            hs[base + c] = hs[base + w];
            hi[base + c] = hi[base + w];
            c = w;
        }
        hs[base + c] = score;
        hi[base + c] = index;
    }
}
