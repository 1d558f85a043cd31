package dev.longspan.attention;

import dev.longspan.tensor.Parallel;

import java.util.Arrays;

import static dev.longspan.attention.TileOps.BK;
import static dev.longspan.attention.TileOps.QB;

/**
 * Correlation-aware select-and-merge (ALGORITHMS.md §4.2) as tiles. Regions of R tokens,
 * NR = ceil(N/R) of them (the last may be partial).
 * <ul>
 *   <li>tile 0, the front block: the first min(T·R, N) tokens, exact causal attention;</li>
 *   <li>tile 1+g, group g: regions T+gM .. T+gM+M−1 (fewer for the last group) attend to the
 *       T−M regions selected for the group (all of them) plus their own regions (causal).</li>
 * </ul>
 * The selection is made in {@link #prepare} from region means of q and k and kept here, so that
 * the backward pass reuses it (the selection is not differentiated). Each member region a ranks
 * the regions b ≤ a−M by dot(mean q_a, mean k_b) (descending; ties to the lower index); the group
 * takes candidates rank by rank across its members, drops duplicates and keeps the first T−M.
 */
final class SelectMergePass implements Pass {
    final int n, heads, region, top, merge;
    final int regions, groups, pick;   // NR, number of groups, T−M
    int kvHeads = -1;
    int[] selected;                    // [heads][groups][pick], each group's list ascending

    SelectMergePass(Pattern.SelectMerge s, int n, int heads) {
        this.n = n;
        this.heads = heads;
        this.region = s.region();
        this.top = s.top();
        this.merge = s.merge();
        this.regions = (int) ((n + (long) region - 1) / region);
        this.groups = regions > top ? (regions - top + merge - 1) / merge : 0;
        this.pick = top - merge;
    }

    int frontRows() { return (int) Math.min((long) top * region, n); }

    int groupFirstRegion(int g) { return top + g * merge; }

    int groupEndRegion(int g) { return Math.min(regions, top + (g + 1) * merge); }

    /** The regions selected for group g of head h, ascending (a copy). */
    int[] selection(int head, int g) {
        if (selected == null) throw new IllegalStateException("select-and-merge: selection not made yet (run the forward pass)");
        int o = (head * groups + g) * pick;
        return Arrays.copyOfRange(selected, o, o + pick);
    }

    public int tiles(int head) { return 1 + groups; }

    public int queryRows(int head, int tile) {
        if (tile == 0) return frontRows();
        int g = tile - 1;
        return Math.min(n, groupEndRegion(g) * region) - groupFirstRegion(g) * region;
    }

    public void tile(int head, int tile, Tile out) {
        out.causal(true);
        if (tile == 0) {
            out.queries.range(0, 1, frontRows());
            out.keys.range(0, 1, frontRows());
            return;
        }
        int g = tile - 1;
        int start = groupFirstRegion(g) * region, rows = queryRows(head, tile);
        out.queries.range(start, 1, rows);
        int[] buf = out.keys.buffer(pick * region + rows);
        int c = 0, so = (head * groups + g) * pick;
        for (int i = 0; i < pick; i++) {
            int b0 = selected[so + i] * region;   // selected regions are whole: b ≤ NR−1−M
            for (int t = 0; t < region; t++) buf[c++] = b0 + t;
        }
        for (int t = 0; t < rows; t++) buf[c++] = start + t;
        out.keys.list(c);
    }

    public long stateBytes() { return selected == null ? 0 : 4L * selected.length; }

    // ---- the selection -------------------------------------------------------------------------

    public void prepare(float[] q, float[] k, int d) {
        if (groups == 0 || pick == 0) {
            selected = new int[0];
            return;
        }
        kvHeads = (int) (k.length / ((long) n * d));
        int group = heads / kvHeads;
        float[] qbar = means(q, heads, d, top);   // [heads][regions][d]; regions < top unused
        float[] kbar = means(k, kvHeads, d, 0);
        selected = new int[heads * groups * pick];
        ThreadLocal<Scratch> scratch = ThreadLocal.withInitial(() -> new Scratch(d));
        Parallel.forEachTask(heads * groups, task -> select(task / groups, task % groups, task / groups / group, qbar, kbar, d, scratch.get()));
    }

    // mean of each region's rows (the last region may be partial), regions ≥ from
    private float[] means(float[] x, int hs, int d, int from) {
        float[] out = new float[hs * regions * d];
        Parallel.forEachTask(hs, h -> {
            for (int a = from; a < regions; a++) {
                int r0 = a * region, r1 = Math.min(n, r0 + region);
                int o = (h * regions + a) * d;
                for (int p = r0; p < r1; p++) {
                    int xo = (h * n + p) * d;
                    for (int c = 0; c < d; c++) out[o + c] += x[xo + c];
                }
                float inv = 1f / (r1 - r0);
                for (int c = 0; c < d; c++) out[o + c] *= inv;
            }
        });
        return out;
    }

    private static final class Scratch {
        final float[] qt, st;
        final int[] koff = new int[BK];
        final int[] heapSize = new int[QB];
        float[] hs;      // per member of a chunk: a heap of `pick` scores
        int[] hi;        // ... and their region indices
        int[] seen = new int[0];
        int stamp;

        Scratch(int d) {
            qt = new float[d * QB];
            st = new float[BK * QB];
        }
    }

    private void select(int h, int g, int kvh, float[] qbar, float[] kbar, int d, Scratch s) {
        int a0 = groupFirstRegion(g), a1 = groupEndRegion(g), members = a1 - a0;
        int[] ranked = new int[members * pick];       // per member: its best `pick` regions, best first
        int[] rankedCount = new int[members];
        if (s.hs == null || s.hs.length < QB * pick) {
            s.hs = new float[QB * pick];
            s.hi = new int[QB * pick];
        }
        for (int m0 = 0; m0 < members; m0 += QB) {
            int mc = Math.min(QB, members - m0);
            // member means, transposed: qt[c][i]
            Arrays.fill(s.qt, 0f);
            for (int i = 0; i < mc; i++) {
                int o = (h * regions + a0 + m0 + i) * d;
                for (int c = 0; c < d; c++) s.qt[c * QB + i] = qbar[o + c];
            }
            Arrays.fill(s.heapSize, 0);
            int last = a0 + m0 + mc - 1 - merge;      // the largest candidate of any member here
            for (int b0 = 0; b0 <= last; b0 += BK) {
                int nb = Math.min(BK, last + 1 - b0);
                for (int j = 0; j < nb; j++) s.koff[j] = (kvh * regions + b0 + j) * d;
                TileOps.scores(s.st, kbar, s.koff, nb, s.qt, d);
                for (int i = 0; i < mc; i++) {
                    int limit = Math.min(nb, a0 + m0 + i - merge - b0 + 1);   // b ≤ a − M
                    for (int j = 0; j < limit; j++) offer(s.hs, s.hi, s.heapSize, i, s.st[j * QB + i], b0 + j);
                }
            }
            for (int i = 0; i < mc; i++) rankedCount[m0 + i] = drain(s.hs, s.hi, s.heapSize[i], i, ranked, (m0 + i) * pick);
        }
        // rank-major merge across members, first occurrences kept
        if (s.seen.length < regions) s.seen = new int[regions];
        int stamp = ++s.stamp;
        int out = (h * groups + g) * pick, c = 0;
        for (int rank = 0; rank < pick && c < pick; rank++)
            for (int mbr = 0; mbr < members && c < pick; mbr++) {
                if (rank >= rankedCount[mbr]) continue;
                int b = ranked[mbr * pick + rank];
                if (s.seen[b] == stamp) continue;
                s.seen[b] = stamp;
                selected[out + c++] = b;
            }
        if (c != pick) throw new IllegalStateException("select-and-merge: group " + g + " found " + c + " of " + pick + " regions");
        Arrays.sort(selected, out, out + pick);
    }

    // x ranks below y: lower score, or equal score and higher index
    private static boolean worse(float xs, int xi, float ys, int yi) {
        return xs < ys || (xs == ys && xi > yi);
    }

    // keeps the best `pick` (score, index) of member i in a min-heap whose root is the worst
    private void offer(float[] hs, int[] hi, int[] size, int i, float score, int index) {
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
        siftDown(hs, hi, base, n, score, index);
    }

    private static void siftDown(float[] hs, int[] hi, int base, int n, float score, int index) {
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

    // empties member i's heap into out[o..o+n), best first; returns n
    private int drain(float[] hs, int[] hi, int n, int i, int[] out, int o) {
        int base = i * pick;
        for (int size = n; size > 0; size--) {
            out[o + size - 1] = hi[base];                 // the worst left goes last
            float ls = hs[base + size - 1];
            int li = hi[base + size - 1];
            siftDown(hs, hi, base, size - 1, ls, li);
        }
        return n;
    }
}
