package dev.longspan.attention;

import dev.longspan.tensor.Parallel;

import java.util.Arrays;
import java.util.List;

import static dev.longspan.attention.TileOps.QB;

/**
 * Query-aware select-and-merge ({@link Pattern.SelectMerge}) as tiles. Regions of R tokens, own
 * blocks of M regions; pick = T−M regions are chosen per query row and head from the regions
 * before its own block. {@link #prepare} ranks the regions for every query row of the span with its
 * own query, by the region summaries ({@link RegionSummaries}) a KV cache keeps as tokens arrive, or
 * (a whole sequence) by summaries of the span's own keys; the selection is kept here, so that the backward
 * pass reuses it (the selection is not differentiated).
 *
 * <p>Tiles are runs: consecutive rows of one own block that chose the same regions share one
 * tile, whose keys are those regions in full plus the own block up to the run's last row (causal
 * band). Rows whose block has at most pick earlier regions take all of them: one run per block.
 * Retrieval heads keep choosing the needle's region, so their runs are long.
 */
final class SelectMergePass implements Pass {
    final Pattern.SelectMerge pattern;
    final TilePlans.Span span;
    final int heads, region, pick;
    final long blockRows;            // rows per own block, M·R
    final int firstBlock, blocks;    // the own blocks the span's queries touch
    private final RegionSummaries given;   // kept by the caller (a KV cache), or null: summarise the span's keys
    // per head, its runs: rows [runStart, runEnd), selected regions runSel[runSelAt[r] .. runSelAt[r+1])
    private int[][] runStart, runEnd, runSelAt, runSel;
    private long summaryBytes;
    SelectedPositions positions;     // pos=selected: the layer's RoPE (set by the plan's owner before the forward)

    SelectMergePass(Pattern.SelectMerge s, TilePlans.Span span, int heads, RegionSummaries summaries) {
        this.pattern = s;
        this.span = span;
        this.heads = heads;
        this.region = s.region();
        this.pick = s.top() - s.merge();
        this.blockRows = (long) s.merge() * region;
        this.given = summaries;
        this.firstBlock = (int) (span.qBase() / blockRows);
        this.blocks = span.tq() == 0 ? 0 : (int) ((span.qEnd() - 1) / blockRows) - firstBlock + 1;
    }

    public int tiles(int head) {
        requirePrepared();
        return runStart[head].length;
    }

    public int queryRows(int head, int tile) { return runEnd[head][tile] - runStart[head][tile]; }

    // the runs of one own block choose among the same regions (pos=selected moves each run's keys its own
    // way: the rows path counter-rotates each row's query instead, so they group too)
    @Override
    public int group(int head, int tile) {
        return (int) (runStart[head][tile] / blockRows);
    }

    @Override
    public boolean grouped() { return true; }

    /** Whether {@link #keyParts} splits the runs (false: the runs as they are, for tests of the row kernels). */
    boolean split = true;

    public void tile(int head, int tile, Tile out) {
        out.causal(true);
        int r0 = runStart[head][tile], r1 = runEnd[head][tile];
        int kBase = span.kBase(), kEnd = span.kEnd();
        int start = (int) Math.max(pattern.nearStart(r0 / blockRows), kBase), end = Math.min(r1, kEnd);
        out.queries.range(r0, 1, r1 - r0);
        int s0 = runSelAt[head][tile], s1 = runSelAt[head][tile + 1];
        int[] buf = out.keys.buffer((s1 - s0) * region + Math.max(0, end - start));
        int c = 0;
        int[] sel = runSel[head];
        for (int i = s0; i < s1; i++) {
            // candidates are whole regions before the block; a span of keys may hold part of one
            int b0 = Math.max(sel[i] * region, kBase), b1 = Math.min(sel[i] * region + region, kEnd);
            for (int p = b0; p < b1; p++) buf[c++] = p;
        }
        if (pattern.bias() != 0f) {          // the selected regions' keys come first (ascending, before the local regions and own block)
            out.biased = c;
            out.bias = pattern.bias();
        }
        for (int p = start; p < end; p++) buf[c++] = p;
        out.keys.list(c);
        if (pattern.positions() == Pattern.Positions.SELECTED) moveRows(out, r0, r1, sel, s0, s1, start, end);
    }

    /**
     * The parts the kernel runs over many rows: the selected regions region by region ({@link
     * ByRegion}) and each own block's near band ({@link NearBand}). A run's tile holds the same keys
     * as the two parts hold for its rows, so the results are the same up to the order of the sums
     * (the forward merges the parts by LSE; the backward takes each with the total LSE). Both parts
     * give the kernel many rows against one key block: the rows of an own block that chose a region
     * (7 on average in the bundled model's training, 70 % of the selected pairs in groups of 9 or
     * more) and the block's rows against its near band go through the query-block path instead of one
     * row at a time. pos=selected moves each run's keys its own way: it keeps the runs.
     */
    @Override
    public List<Pass> keyParts() {
        if (!split || pattern.positions() == Pattern.Positions.SELECTED) return List.of(this);
        requirePrepared();
        return pick == 0 ? List.of(new NearBand()) : List.of(new ByRegion(), new NearBand());
    }

    /**
     * The selected regions as tiles: for each own block (ascending) and each region its rows chose
     * (ascending), the block's rows that chose it (ascending) against the region's keys, all biased.
     * A region lies wholly before the block's near band, so every key is visible to every such row.
     */
    final class ByRegion implements Pass {
        private final int[][] regionOf, blockOf, rowAt, rows;   // per head: each tile's region and own block, its rows rows[rowAt[t] .. rowAt[t+1])

        ByRegion() {
            regionOf = new int[heads][];
            blockOf = new int[heads][];
            rowAt = new int[heads][];
            rows = new int[heads][];
            Parallel.forEachTask(heads, this::index);
        }

        private void index(int h) {
            int[] st = runStart[h], en = runEnd[h], at = runSelAt[h], sel = runSel[h];
            int runs = st.length;
            long[] keyed = new long[at[runs]];        // (region, run) of every selected region of every run of one block
            int[] reg = new int[at[runs]], blk = new int[at[runs]], ra = new int[at[runs] + 1], rl = new int[totalRows(h)];
            int tiles = 0, used = 0;
            for (int r0 = 0; r0 < runs; ) {
                long block = st[r0] / blockRows;
                int r1 = r0 + 1;
                while (r1 < runs && st[r1] / blockRows == block) r1++;
                int m = 0;
                for (int r = r0; r < r1; r++)
                    for (int i = at[r]; i < at[r + 1]; i++) keyed[m++] = (long) sel[i] << 32 | r;
                Arrays.sort(keyed, 0, m);            // by region, then by run (rows ascending)
                for (int i = 0; i < m; i++) {
                    int g = (int) (keyed[i] >>> 32), run = (int) keyed[i];
                    if (i == 0 || g != (int) (keyed[i - 1] >>> 32)) {
                        reg[tiles] = g;
                        blk[tiles] = (int) block;
                        ra[tiles++] = used;
                    }
                    for (int row = st[run]; row < en[run]; row++) rl[used++] = row;
                }
                r0 = r1;
            }
            ra[tiles] = used;
            regionOf[h] = Arrays.copyOf(reg, tiles);
            blockOf[h] = Arrays.copyOf(blk, tiles);
            rowAt[h] = Arrays.copyOf(ra, tiles + 1);
            rows[h] = rl.length == used ? rl : Arrays.copyOf(rl, used);
        }

        // row-region pairs of head h
        private int totalRows(int h) {
            int total = 0;
            for (int r = 0; r < runStart[h].length; r++) total += (runEnd[h][r] - runStart[h][r]) * (runSelAt[h][r + 1] - runSelAt[h][r]);
            return total;
        }

        public int tiles(int head) { return regionOf[head].length; }

        // the tiles of one own block share its rows: one group, one task
        @Override
        public int group(int head, int tile) { return blockOf[head][tile]; }

        @Override
        public boolean grouped() { return true; }

        public int queryRows(int head, int tile) { return rowAt[head][tile + 1] - rowAt[head][tile]; }

        public void tile(int head, int tile, Tile out) {
            out.causal(true);
            int a = rowAt[head][tile], n = rowAt[head][tile + 1] - a;
            System.arraycopy(rows[head], a, out.queries.buffer(n), 0, n);
            out.queries.list(n);
            int g = regionOf[head][tile];
            int k0 = Math.max(g * region, span.kBase()), k1 = Math.min(g * region + region, span.kEnd());
            out.keys.range(k0, 1, k1 - k0);
            if (pattern.bias() != 0f) {
                out.biased = out.keys.count();
                out.bias = pattern.bias();
            }
        }
    }

    /** Each own block's rows against its near band (the local regions before it and the block itself, causal). */
    final class NearBand implements Pass {
        public int tiles(int head) { return blocks; }

        public boolean sameTilesForAllHeads() { return true; }

        public int queryRows(int head, int tile) {
            long block = firstBlock + tile;
            return (int) (Math.min((block + 1) * blockRows, span.qEnd()) - Math.max(block * blockRows, span.qBase()));
        }

        public void tile(int head, int tile, Tile out) {
            out.causal(true);
            long block = firstBlock + tile;
            int r0 = (int) Math.max(block * blockRows, span.qBase()), r1 = (int) Math.min((block + 1) * blockRows, span.qEnd());
            int start = (int) Math.max(pattern.nearStart(block), span.kBase()), end = Math.min(r1, span.kEnd());
            out.queries.range(r0, 1, r1 - r0);
            out.keys.range(start, 1, end - start);
        }
    }

    /**
     * pos=selected: the i-th selected region's key at p moves to i·R + (p − sel_i·R), the own block
     * (from b0) to S·R + (p − b0) after the S selected regions, and each query with its own key; the
     * shifts are differences of the positions RoPE rotates (CRD-NTK's period wraps them).
     */
    private void moveRows(Tile out, int r0, int r1, int[] sel, int s0, int s1, int start, int end) {
        if (positions == null) throw new IllegalStateException("select-and-merge pos=selected: the layer's RoPE positions are not set");
        out.move(positions, r1 - r0, out.keys.count());
        long b0 = pattern.nearStart(r0 / blockRows), own = (long) (s1 - s0) * region - b0;
        int j = 0;
        for (int i = s0; i < s1; i++) {
            long moveBy = (long) (i - s0) * region - (long) sel[i] * region;
            int a = Math.max(sel[i] * region, span.kBase()), b = Math.min(sel[i] * region + region, span.kEnd());
            for (int p = a; p < b; p++) out.kShift[j++] = rotated(p + moveBy) - rotated(p);
        }
        for (int p = start; p < end; p++) out.kShift[j++] = rotated(p + own) - rotated(p);
        for (int p = r0; p < r1; p++) out.qShift[p - r0] = rotated(p + own) - rotated(p);
    }

    // the position RoPE rotated sequence index x at: from the table prepare() filled (every tile asks
    // for the same few thousand positions again and again: two calls through the RoPE's mapping per
    // key of every row cost the bundled language model a sixth of its 16K perplexity), else computed
    private long rotated(long x) {
        long[] t = rotatedTable;
        return x >= 0 && x < t.length && rotatedFor == positions ? t[(int) x] : positions.rotated().applyAsLong(x);
    }

    private long[] rotatedTable = new long[0];
    private SelectedPositions rotatedFor;        // the positions the table was made from

    /** Positions [0, n) whose rotated positions prepare() tabulates at most (8 bytes each). */
    static final int ROTATED_TABLE_MAX = 1 << 22;

    /** The regions query row pos of head h selected, ascending (a copy). */
    int[] selection(int head, int pos) {
        requirePrepared();
        int r = Arrays.binarySearch(runStart[head], pos);
        if (r < 0) r = -r - 2;
        return Arrays.copyOfRange(runSel[head], runSelAt[head][r], runSelAt[head][r + 1]);
    }

    private void requirePrepared() {
        if (runStart == null) throw new IllegalStateException("select-and-merge: selection not made yet (run the forward pass)");
    }

    public long stateBytes() {
        if (runStart == null) return 0;
        long b = summaryBytes;
        for (int h = 0; h < heads; h++) b += 4L * (runStart[h].length + runEnd[h].length + runSelAt[h].length + runSel[h].length);
        return b;
    }

    // ---- the selection -------------------------------------------------------------------------

    public void prepare(FlashKernel.Problem p) {
        if (pattern.positions() == Pattern.Positions.SELECTED && positions == null)
            throw new IllegalStateException("select-and-merge pos=selected: the layer's RoPE positions are not set (Plan.selectedPositions)");
        if (pattern.positions() == Pattern.Positions.SELECTED) {
            // every index a tile moves a row from or to lies below the span's end (moved positions are
            // small: the selected regions and the own block packed from 0)
            int n = (int) Math.min(Math.max(span.qEnd(), span.kEnd()), ROTATED_TABLE_MAX);
            long[] t = new long[n];
            java.util.function.LongUnaryOperator rot = positions.rotated();
            Parallel.forChunks(0, n, 1 << 14, (c, i0, i1) -> {
                for (int i = i0; i < i1; i++) t[i] = rot.applyAsLong(i);
            });
            rotatedTable = t;
            rotatedFor = positions;
        }
        int d = p.d, group = p.group;
        RegionSummaries sum = given;
        if (sum == null) {
            if (p.k == null || p.kBase != 0) {
                throw new IllegalStateException("select-and-merge: keys from position " + p.kBase + " need the region summaries of the keys before them");
            }
            sum = new RegionSummaries(pattern, p.kvHeads, d, p.tk / region);
            sum.append(p.k, p.tk);
            summaryBytes = sum.bytes();
        }
        RegionSummaries summaries = sum;
        // each (head, block) task writes its runs: starts, ends, selection offsets and regions
        int[][] starts = new int[heads * blocks][], ends = new int[heads * blocks][], sels = new int[heads * blocks][];
        ThreadLocal<RegionSummaries.Scratch> scratch = ThreadLocal.withInitial(() -> new RegionSummaries.Scratch(d));
        Parallel.forEachTask(heads * blocks, task -> {
            int h = task / blocks, block = firstBlock + task % blocks;
            int r0 = (int) Math.max(block * blockRows, span.qBase()), r1 = (int) Math.min((block + 1) * blockRows, span.qEnd());
            int cand = pattern.candidates(block);   // regions wholly before the block's local regions
            if (cand <= pick || pick == 0) {      // all of them, or none (top = merge: block-local)
                starts[task] = new int[]{r0};
                ends[task] = new int[]{r1};
                int[] all = new int[Math.min(cand, pick)];
                for (int b = 0; b < all.length; b++) all[b] = b;
                sels[task] = all;
                return;
            }
            int rows = r1 - r0;
            int[] chosen = new int[rows * pick], qoff = new int[QB];
            RegionSummaries.Scratch s = scratch.get();
            RegionSummaries.KeyRows keys = pattern.score() == Pattern.RegionScore.MAX ? keyRows(p) : null;
            for (int i0 = 0; i0 < rows; i0 += QB) {
                int nq = Math.min(QB, rows - i0);
                for (int i = 0; i < nq; i++) qoff[i] = p.qOff(h, r0 + i0 + i);
                summaries.select(s, p.q, qoff, nq, h / group, cand, pick, keys, chosen, i0 * pick);
            }
            int runs = 1;
            for (int i = 1; i < rows; i++) if (!sameChoice(chosen, i - 1, i)) runs++;
            int[] st = new int[runs], en = new int[runs], sl = new int[runs * pick];
            int r = 0;
            st[0] = r0;
            System.arraycopy(chosen, 0, sl, 0, pick);
            for (int i = 1; i < rows; i++) {
                if (sameChoice(chosen, i - 1, i)) continue;
                en[r++] = r0 + i;
                st[r] = r0 + i;
                System.arraycopy(chosen, i * pick, sl, r * pick, pick);
            }
            en[r] = r1;
            starts[task] = st;
            ends[task] = en;
            sels[task] = sl;
        });
        runStart = new int[heads][];
        runEnd = new int[heads][];
        runSelAt = new int[heads][];
        runSel = new int[heads][];
        for (int h = 0; h < heads; h++) {
            int runs = 0, regions = 0;
            for (int b = 0; b < blocks; b++) {
                runs += starts[h * blocks + b].length;
                regions += sels[h * blocks + b].length;
            }
            int[] st = new int[runs], en = new int[runs], at = new int[runs + 1], sl = new int[regions];
            int r = 0, o = 0;
            for (int b = 0; b < blocks; b++) {
                int t = h * blocks + b, nr = starts[t].length, per = sels[t].length / nr;
                System.arraycopy(starts[t], 0, st, r, nr);
                System.arraycopy(ends[t], 0, en, r, nr);
                System.arraycopy(sels[t], 0, sl, o, sels[t].length);
                for (int i = 0; i < nr; i++) at[r + i] = o + i * per;
                r += nr;
                o += sels[t].length;
            }
            at[runs] = o;
            runStart[h] = st;
            runEnd[h] = en;
            runSelAt[h] = at;
            runSel[h] = sl;
        }
    }

    // score=max reads the keys of every candidate region through the problem's key source
    private static RegionSummaries.KeyRows keyRows(FlashKernel.Problem p) {
        int[] pos = new int[RegionSummaries.KEY_BLOCK];
        float[] wide = new float[RegionSummaries.KEY_BLOCK * p.d];
        return (kvh, first, count, off) -> {
            for (int j = 0; j < count; j++) pos[j] = (int) (first + j);
            return p.kv.rows(false, kvh, pos, count, off, wide);
        };
    }

    private boolean sameChoice(int[] chosen, int a, int b) {
        return Arrays.equals(chosen, a * pick, a * pick + pick, chosen, b * pick, b * pick + pick);
    }
}
