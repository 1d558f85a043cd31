package dev.longspan.attention;

import dev.longspan.kernel.Kernels;
import dev.longspan.tensor.Parallel;

import java.util.Arrays;

import static dev.longspan.attention.TileOps.BK;
import static dev.longspan.attention.TileOps.QB;

/**
 * The one flash-style kernel: a block of up to {@link TileOps#QB} query rows of a tile against the
 * tile's key rows, in blocks of {@link TileOps#BK} keys with online softmax (forward), or with
 * recomputed probabilities (backward). Rows are absolute positions: a query row's data sits at
 * {@code (head·tq + position − qBase)·D} of q, so gathered and strided rows are read in place; key
 * and value rows come from the problem's {@link KeyValues}, one block of at most BK rows at a time.
 *
 * <p>Keys outside the band of the block's first and last query are never visited (binary search
 * on the ascending key rows); key blocks entirely inside the band skip the mask.
 */
final class FlashKernel {
    private FlashKernel() {}

    /** Largest K (and V) the rows paths copy transposed: 16M floats, 64 MB each. */
    static final long TRANSPOSE_MAX_FLOATS = 1L << 24;

    /**
     * Head dimensions from which the rows paths score by dot products rather than from the
     * transposed copy: select-and-merge at 16K, region 64, one thread, AMD Zen 5, GFLOP/s forward /
     * backward, copy → dot products: D = 64 at 512 bits 24.1 / 20.1 → 34.1 / 21.3, at 256 bits 14.5 /
     * 16.0 → 20.5 / 18.8; D = 128 at 512 bits 17.0 / 15.2 → 26.6 / 24.0, at 256 bits 14.7 / 17.1 →
     * 23.8 / 25.6. At D = 32 the copy still wins the backward (512 bits 14.7 → 11.4) and with it a
     * training step (the reason it was built, measured on Zen 4).
     */
    static final int TRANSPOSE_BELOW_D = 64;

    /**
     * The arrays and shape of one attention call: queries at absolute positions
     * [qBase, qBase + tq) against keys and values at [kBase, kBase + tk) of the same position axis.
     * q, o: [H, tq, D]; lse: [H, tq]; keys and values from {@link KeyValues} (whole arrays
     * [Hkv, tk, D] for training and the backward, a KV cache for inference).
     */
    static final class Problem {
        final float[] q;
        final KeyValues kv;
        final float[] k, v;             // the arrays of an array source (the backward reads them in place), else null
        final int heads, kvHeads, d, group, qBase, tq, kBase, tk;
        final float scale;
        float[] o, lse;                 // forward outputs / saved for the backward
        float[] dO, dq;                 // backward
        boolean detachedMerge;
        /** K and V transposed, [Hkv][D][tk] (null unless {@link #transposeKeyValues} ran): the rows paths' scores without a lane reduction per key. */
        float[] kT, vT;

        /** One sequence of n positions: queries and keys both 0..n−1. */
        Problem(float[] q, float[] k, float[] v, int heads, int kvHeads, int n, int d, float scale) {
            this(q, 0, n, KeyValues.of(k, v, 0, n, d), 0, n, heads, kvHeads, d, scale);
        }

        Problem(float[] q, int qBase, int tq, KeyValues kv, int kBase, int tk, int heads, int kvHeads, int d, float scale) {
            this.q = q;
            this.kv = kv;
            this.k = kv instanceof KeyValues.ArrayRows a ? a.k() : null;
            this.v = kv instanceof KeyValues.ArrayRows a ? a.v() : null;
            this.heads = heads;
            this.kvHeads = kvHeads;
            this.qBase = qBase;
            this.tq = tq;
            this.kBase = kBase;
            this.tk = tk;
            this.d = d;
            this.group = heads / kvHeads;
            this.scale = scale;
        }

        int qOff(int h, int pos) { return (h * tq + pos - qBase) * d; }

        int lseAt(int h, int pos) { return h * tq + pos - qBase; }

        // keys and values held as arrays (the backward)
        int kOff(int kvh, int pos) { return (kvh * tk + pos - kBase) * d; }

        // where key position pos of head kvh starts in kT and vT (column c at + c·tk)
        int kTOff(int kvh, int pos) { return kvh * d * tk + pos - kBase; }

        /**
         * Keys and values held as arrays, transposed once into kT and vT for the rows paths (a query
         * row against a run of consecutive keys by broadcast FMAs along the keys), when they take at
         * most {@link #TRANSPOSE_MAX_FLOATS} floats each: select-and-merge reads each key from
         * hundreds of queries, so the copy costs little against the reductions it saves. Beyond the
         * cap (a very long prefill held as arrays), and from D = {@link #TRANSPOSE_BELOW_D} on (a
         * key's lane reduction is then shared by enough multiply-adds, and the copy's columns lie tk
         * floats apart), the rows paths keep their dot products.
         */
        void transposeKeyValues() {
            if (k == null || d >= TRANSPOSE_BELOW_D || (long) kvHeads * tk * d > TRANSPOSE_MAX_FLOATS) return;
            float[] kt = new float[kvHeads * tk * d], vt = new float[kvHeads * tk * d];
            Parallel.forChunks(0, kvHeads * tk, 256, (c, r0, r1) -> {
                for (int r = r0; r < r1; r++) {
                    int kvh = r / tk, at = kvh * d * tk + r % tk;
                    for (int x = 0, o = r * d; x < d; x++) {
                        kt[at + x * tk] = k[o + x];
                        vt[at + x * tk] = v[o + x];
                    }
                }
            });
            kT = kt;
            vT = vt;
        }
    }

    /** Per-worker scratch: every buffer one block needs (≈ 100 KB at D = 64). */
    static final class Scratch {
        final int d, dp;
        final Tile tile = new Tile();
        final int[] qpos = new int[QB], qoff = new int[QB], kpos = new int[BK], koff = new int[BK], voff = new int[BK];
        final float[] kw, vw;           // key and value rows of half-precision caches, widened
        final float[] qt, st, ot, m = new float[QB], l = new float[QB], tmp = new float[3 * QB], wa = new float[QB], wb = new float[QB];
        final float[] qr, or;           // one query row and its output row (the row-by-row path)
        final int[] hullLo = new int[(BK + SLICE - 1) / SLICE], hullHi = new int[(BK + SLICE - 1) / SLICE];  // query lanes per key slice
        // backward only (allocated on first use)
        float[] dOt, dst, dqt, qrow, dorow, kb, vb, lseRow, delta;
        // pos=selected (allocated on first use): moved key rows, a counter-rotated query row and its
        // dS·K sum (the rows paths), the block's query shifts, the rotations
        float[] km, qm, acc;
        // grouped-query decoding (allocated on first use): the group's query rows and output rows, row-major
        float[] groupQ, groupOut;
        // short select-and-merge runs taken together (forwardRowsGrouped; allocated on first use): one
        // tile per run, per row its query, output row, max, sum, next key, end, tile and bucket link, the buckets' first rows
        Tile[] runTiles = new Tile[0];
        float[] gq, gor, gm, gl;
        int[] gcur, gend, gtile, gnext, gfirst, gbatch;
        long[] gused;
        float sink;                     // what FlashKernel.touch read (kept so its loads are not dropped)
        final long[] qsh = new long[QB];
        SelectedPositions.Rotator qRot, kRot;

        Scratch(int d) {
            this.d = d;
            this.dp = TileOps.paddedDim(d);
            qt = new float[d * QB];
            st = new float[BK * QB];
            ot = new float[d * QB];
            qr = new float[d];
            or = new float[d];
            kw = new float[BK * d];
            vw = new float[BK * d];
        }

        Tile runTile(int i) {
            if (i >= runTiles.length) {
                int was = runTiles.length;
                runTiles = Arrays.copyOf(runTiles, Math.max(i + 1, was * 2));
                for (int j = was; j < runTiles.length; j++) runTiles[j] = new Tile();
            }
            return runTiles[i];
        }

        void groupedRows(int rows, int buckets, int words) {
            if (gfirst == null || gfirst.length < buckets) gfirst = new int[Math.max(buckets, gfirst == null ? 0 : gfirst.length * 3 / 2)];
            if (gused == null || gused.length < words) gused = new long[Math.max(words, gused == null ? 0 : gused.length * 3 / 2)];
            if (gm != null && gm.length >= rows) return;
            int n = Math.max(rows, gm == null ? 64 : gm.length * 2);
            gq = new float[n * d];
            gor = new float[n * d];
            gm = new float[n];
            gl = new float[n];
            gcur = new int[n];
            gend = new int[n];
            gtile = new int[n];
            gnext = new int[n];
            gbatch = new int[n];
        }

        float[] groupRows(int g) {
            if (groupQ == null || groupQ.length < g * d) {
                groupQ = new float[g * d];
                groupOut = new float[g * d];
            }
            return groupQ;
        }

        void backwardBuffers() {
            if (dOt != null) return;
            dOt = new float[d * QB];
            dst = new float[BK * QB];
            dqt = new float[d * QB];
            qrow = new float[QB * dp];
            dorow = new float[QB * dp];
            kb = new float[BK * dp];
            vb = new float[BK * dp];
            lseRow = new float[QB];
            delta = new float[QB];
        }

        long bytes() {
            long b = 4L * (qt.length + st.length + ot.length + qr.length + or.length + kw.length + vw.length + 2 * QB + 4 * QB + 4 * BK);
            if (dOt != null) b += 4L * (dOt.length + dst.length + dqt.length + qrow.length + dorow.length + kb.length + vb.length + 2 * QB);
            if (groupQ != null) b += 4L * (groupQ.length + groupOut.length);
            if (gm != null) b += 4L * (gq.length + gor.length + 7L * gm.length + gfirst.length + 2L * gused.length);
            for (Tile t : runTiles) b += 4L * t.keys.capacity();
            return b;
        }
    }

    // ---- forward ---------------------------------------------------------------------------------

    /** Query rows [i0, i0+n) of tile t, head h: positions, and q scaled by `scale`, transposed into qt. */
    static void gatherQueries(Problem p, Scratch s, Tile t, int h, int i0, int n) {
        for (int i = 0; i < n; i++) {
            int pos = t.queries.pos(i0 + i);
            s.qpos[i] = pos;
            s.qoff[i] = p.qOff(h, pos);
        }
        for (int i = n; i < QB; i++) {
            s.qpos[i] = s.qpos[n - 1];
            s.qoff[i] = s.qoff[n - 1];
        }
        // the block's query rows read in first, a load per line issued back to back: gatherT's
        // transposing loads then hit the caches (block:256 forward +2-5 %, dense unchanged, since a
        // block's few key tiles do not hide its rows' misses); the output rows with them (two
        // streams), so that mergeT's stores hit the caches too; not for the rows path's few rows
        if (n > ROW_BLOCK_MAX) s.sink += touch(p.q, s.qoff, p.o, s.qoff, n, p.d);
        TileOps.gatherT(s.qt, p.q, s.qoff, n, p.d, p.scale);
        if (t.moved != null) {
            movers(s, t.moved);
            for (int i = 0; i < n; i++) {
                s.qsh[i] = t.qShift[i0 + i];
                s.qRot.set(s.qsh[i]).apply(s.qt, i, QB, false);
            }
        }
    }

    // ---- pos=selected: rows moved to new positions by one more rotation (SelectedPositions) ----

    // the worker's rotations and buffers for this RoPE
    private static void movers(Scratch s, SelectedPositions sp) {
        if (s.kRot != null && s.kRot.serves(sp)) return;
        s.kRot = new SelectedPositions.Rotator(sp);
        s.qRot = new SelectedPositions.Rotator(sp);
        s.km = new float[BK * s.d];
        s.qm = new float[s.d];
        s.acc = new float[s.d];
    }

    // s.qm = the query row q[qo..qo+D) rotated by −shift (a moved key's rotation, moved onto the query)
    private static long counterRotate(Scratch s, float[] q, int qo, long shift, int d) {
        System.arraycopy(q, qo, s.qm, 0, d);
        s.kRot.set(shift).apply(s.qm, 0, 1, true);
        return shift;
    }

    // copies of key rows kb..kb+nk of the tile (at keys[koff[j]]) moved by their shifts into s.km;
    // koff becomes j·D
    private static float[] movedKeys(Scratch s, Tile t, int kb, int nk, float[] keys, int d) {
        for (int j = 0; j < nk; j++) {
            System.arraycopy(keys, s.koff[j], s.km, j * d, d);
            s.koff[j] = j * d;
            s.kRot.set(t.kShift[kb + j]).apply(s.km, j * d, 1, false);
        }
        return s.km;
    }

    /**
     * Online softmax over the tile's keys for the gathered block: leaves the unnormalised output in
     * s.ot [D][QB], the running max in s.m and the sum in s.l.
     */
    static void forwardKeys(Problem p, Scratch s, Tile t, int h, int n) {
        if (n <= ROW_BLOCK_MAX) forwardRows(p, s, t, h, n); else forwardBlock(p, s, t, h, n);
    }

    /**
     * Blocks of at most this many rows go row by row ({@link #forwardRows}): the transposed kernel
     * computes all QB lanes whatever n is, so a one-row tile (select-and-merge rows that each chose
     * their own regions) would cost QB rows' work.
     */
    static final int ROW_BLOCK_MAX = Math.max(1, QB / 8);

    /**
     * A query block whose keys span at most this many positions reads each key block's keys and
     * values in first ({@link #touch}, both at once) before its arithmetic. Short spans (blocks and
     * windows of a few hundred keys, the start of a causal sequence) use each key block for few query
     * blocks, so its rows mostly come from memory, and the tile kernels' own loads meet those misses
     * a few at a time; long spans reuse key blocks that the caches still hold, where the extra pass
     * costs a little (Zen 5, 512-bit, one thread: block:256 +3-11 %, window:256 +1-3 %, dense
     * unchanged; touching every span cost dense and window:4096 2-3 %; the backward, with more
     * arithmetic per key, did not change).
     */
    static final int TOUCH_KEYS = 16 * BK;

    // the transposed walk: all QB lanes of every key block at once
    static void forwardBlock(Problem p, Scratch s, Tile t, int h, int n) {
        int kvh = h / p.group;
        Arrays.fill(s.ot, 0f);
        Arrays.fill(s.m, Float.NEGATIVE_INFINITY);
        Arrays.fill(s.l, 0f);
        int qmin = s.qpos[0], qmax = s.qpos[n - 1];
        int k0 = t.keys.lowerBound(qmin - t.hi), k1 = t.keys.lowerBound(qmax - t.lo + 1);
        boolean touchKv = k1 - k0 <= TOUCH_KEYS, few = TileOps.lanes(n) < QB;
        for (int kb = k0; kb < k1; kb += BK) {
            int nk = Math.min(BK, k1 - kb);
            int mode = keyBlock(s, t, kb, nk, qmin, qmax);
            if (mode == SKIP) continue;
            float[] keys = p.kv.rows(false, kvh, s.kpos, nk, s.koff, s.kw);
            float[] values = p.kv.rows(true, kvh, s.kpos, nk, s.voff, s.vw);
            if (touchKv) s.sink += touch(keys, s.koff, values, s.voff, nk, p.d);
            if (t.moved != null) keys = movedKeys(s, t, kb, nk, keys, p.d);
            // a cut block, or a block of few rows (select-and-merge's rows that chose one region): only the
            // query vectors that reach each key slice
            boolean sliced = (mode == PARTIAL || few) && hulls(s, t, n, nk);
            scores(s, sliced, s.st, keys, s.koff, nk, s.qt, p.d);
            if (kb < t.biased) addBias(s.st, Math.min(nk, t.biased - kb), t.bias);
            if (mode == PARTIAL) mask(s, t, n, nk);
            if (sliced) TileOps.online(s.st, nk, s.m, s.l, s.ot, p.d, s.tmp, SLICE, s.hullLo, s.hullHi);
            else TileOps.online(s.st, nk, s.m, s.l, s.ot, p.d, s.tmp);
            accumulate(s, sliced, s.ot, values, s.voff, nk, s.st, p.d);
        }
    }

    // st: [nk][QB] = x[rows xoff] · yt (TileOps.scores); sliced: each slice of keys on its hull of query lanes only
    private static void scores(Scratch s, boolean sliced, float[] st, float[] x, int[] xoff, int nk, float[] yt, int d) {
        if (!sliced) {
            TileOps.scores(st, x, xoff, nk, yt, d);
            return;
        }
        for (int j = 0, sl = 0; j < nk; j += SLICE, sl++)
            if (s.hullLo[sl] < s.hullHi[sl]) TileOps.scores(st, x, xoff, j, Math.min(nk, j + SLICE), yt, d, s.hullLo[sl], s.hullHi[sl]);
    }

    // ct: [D][QB] += x[rows xoff]ᵀ · pr (TileOps.accumulate); sliced: each slice of keys on its hull of query lanes only
    private static void accumulate(Scratch s, boolean sliced, float[] ct, float[] x, int[] xoff, int nk, float[] pr, int d) {
        if (!sliced) {
            TileOps.accumulate(ct, x, xoff, nk, pr, d);
            return;
        }
        for (int j = 0, sl = 0; j < nk; j += SLICE, sl++)
            if (s.hullLo[sl] < s.hullHi[sl]) TileOps.accumulate(ct, x, xoff, j, Math.min(nk, j + SLICE), pr, d, s.hullLo[sl], s.hullHi[sl]);
    }

    /**
     * Keys per slice of a partial key block: on a causal diagonal (or a window's far edge) the key
     * slice j reaches only the query vectors at or after (before) it, so each slice is scored and
     * accumulated on those query lanes only. A window or block of 256 against 64-query blocks has
     * two such key blocks in five (four in ten): 80 % of the computed slots are useful without
     * slicing, ≈ 94 % with it.
     */
    static final int SLICE = Math.max(4, TileOps.LANES);

    /**
     * For each slice of SLICE keys of a partial block, the hull of the query lanes (rounded out to
     * whole vectors, within the n real rows) that see any of its keys, in s.hullLo/hullHi (empty:
     * lo ≥ hi). The lanes outside a slice's hull are masked anyway (or past the block's rows), so
     * skipping them changes no result. Returns false when every slice needs the whole block of QB
     * lanes (nothing to gain).
     */
    private static boolean hulls(Scratch s, Tile t, int n, int nk) {
        return hulls(s.qpos, n, s.kpos, nk, t.lo, t.hi, s.hullLo, s.hullHi);
    }

    /**
     * {@link #hulls(Scratch, Tile, int, int)} on plain arrays: queries at ascending positions
     * qpos[0..n), keys at ascending positions kpos[0..nk), a key visible from the queries whose
     * distance to it lies in [lo, hi]. Also used by {@link Plan#computedPairs()} to count the slots.
     */
    static boolean hulls(int[] qpos, int n, int[] kpos, int nk, long lo, long hi, int[] hullLo, int[] hullHi) {
        int vl = TileOps.LANES, nUp = Math.min(QB, (n + vl - 1) / vl * vl);
        boolean narrower = false;
        int ia = 0, ib = 0;
        for (int j0 = 0, sl = 0; j0 < nk; j0 += SLICE, sl++) {
            int a = Integer.MAX_VALUE, b = 0;
            for (int j = j0; j < Math.min(nk, j0 + SLICE); j++) {
                long first = kpos[j] + lo, last = kpos[j] + hi;    // visible query positions
                while (ia < n && qpos[ia] < first) ia++;
                while (ib < n && qpos[ib] <= last) ib++;
                if (ib > ia) {
                    a = Math.min(a, ia);
                    b = Math.max(b, ib);
                }
            }
            if (a >= b) {
                hullLo[sl] = 0;
                hullHi[sl] = 0;
            } else {
                hullLo[sl] = a / vl * vl;
                hullHi[sl] = Math.min(nUp, (b + vl - 1) / vl * vl);
                // three vectors of four or more: the register tile over the whole block does them
                // with fewer loads per FMA than the narrower kernels (the extra lanes are masked)
                if (nUp == QB && 4 * (hullHi[sl] - hullLo[sl]) >= 3 * QB) {
                    hullLo[sl] = 0;
                    hullHi[sl] = QB;
                }
            }
            if (hullHi[sl] - hullLo[sl] < QB) narrower = true;
        }
        return narrower;
    }

    /**
     * The same outputs as {@link #forwardBlock} (up to float rounding), one query row at a time with
     * D along the vector axis: a row walks only its own band's keys (one contiguous index range, as
     * keys ascend), scores by dot products, and adds p·v rows to its output row.
     */
    static void forwardRows(Problem p, Scratch s, Tile t, int h, int n) {
        int kvh = h / p.group, d = p.d;
        float[] qr = s.qr, or = s.or, sc = s.st;
        Arrays.fill(s.ot, 0f);
        for (int i = 0; i < n; i++) {
            for (int c = 0; c < d; c++) qr[c] = s.qt[c * QB + i];
            Arrays.fill(or, 0f);
            float m = Float.NEGATIVE_INFINITY, l = 0f;
            int pos = s.qpos[i];
            int k0 = t.keys.lowerBound(pos - t.hi), k1 = t.keys.lowerBound(pos - t.lo + 1);
            // The last block's P·V waits for the next block's scores (rowScoresAxpy: both read in
            // one loop, two streams from memory) and is added before anything else touches or: its
            // probabilities at sc[pend..pend + pendN), its value rows in pendV at s.voff. The same
            // operations in the same order as scores, softmax, P·V block after block.
            int pend = -1, pendN = 0;
            float[] pendV = null;
            boolean fuse = TileOps.fusesScoresAndAxpy(d);
            for (int kb = k0; kb < k1; kb += BK) {
                int nk = Math.min(BK, k1 - kb), cur = pend == 0 ? BK : 0;
                float mx = m;
                for (int j = 0; j < nk; j++) s.kpos[j] = t.keys.pos(kb + j);
                if (fromCopy(p, s, t, kb, nk)) {
                    if (pend >= 0) axpyRows(sc, pend, pendN, pendV, s.voff, or, 0, d);
                    pend = -1;
                    cur = 0;
                    copyScores(p, s, t, kvh, kb, nk, qr, 0, sc);
                    for (int j = 0; j < nk; j++) {
                        sc[j] += t.bias(kb + j);
                        mx = Math.max(mx, sc[j]);
                    }
                } else {
                    float[] keys = p.kv.rows(false, kvh, s.kpos, nk, s.koff, s.kw);
                    if (t.moved == null && pend >= 0 && fuse) {
                        TileOps.rowScoresAxpy(sc, cur, qr, 0, keys, s.koff, nk, sc, pend, pendN, pendV, s.voff, or, 0, d);
                    } else {
                        if (pend >= 0) axpyRows(sc, pend, pendN, pendV, s.voff, or, 0, d);
                        if (t.moved == null) rowScores(sc, cur, qr, 0, keys, s.koff, nk, d);
                        else movedScores(s, t, kb, nk, qr, 0, keys, sc, cur, d);
                    }
                    pend = -1;
                    for (int j = 0; j < nk; j++) {
                        sc[cur + j] += t.bias(kb + j);
                        mx = Math.max(mx, sc[cur + j]);
                    }
                }
                if (mx == Float.NEGATIVE_INFINITY) continue;
                if (l != 0f && mx != m) {                 // (an unchanged max rescales by e^0 = 1: skipped)
                    float alpha = (float) Math.exp(m - mx);
                    l *= alpha;
                    Kernels.scale(alpha, or, 0, d);
                }
                pendV = p.kv.rows(true, kvh, s.kpos, nk, s.voff, s.vw);
                l += TileOps.expShift(sc, cur, nk, mx);
                pend = cur;
                pendN = nk;
                m = mx;
            }
            if (pend >= 0) axpyRows(sc, pend, pendN, pendV, s.voff, or, 0, d);
            s.m[i] = m;
            s.l[i] = l;
            for (int c = 0; c < d; c++) s.ot[c * QB + i] = or[c];
        }
    }

    /**
     * Short select-and-merge runs (query rows that each chose their own regions), several together:
     * their rows take key blocks in the order of the blocks' first positions, so a region's blocks,
     * read from memory once, serve every row of the group that selected it from the caches — row
     * after row, each over all its keys, read every selected region from memory or L3 again. Each
     * row does exactly what {@link #forwardRows} does for it (the same scores, max, rescale,
     * exponentials and P·V in the same order: the same bits; the P·V of a block is added right after
     * its exponentials instead of fused into the next block's scores), only interleaved with the
     * other rows. For tiles of at most {@link #ROW_BLOCK_MAX} rows; in moved tiles (pos=selected) each
     * row's query is counter-rotated per block as forwardRows does, and with the transposed copy of K
     * (D < 64, keys as arrays) runs of keys are scored from it as there.
     */
    static void forwardRowsGrouped(Problem p, Scratch s, Tile[] tiles, int count, int h) {
        int d = p.d, kvh = h / p.group;
        int rows = 0, lo = Integer.MAX_VALUE, hi = 0;
        for (int ti = 0; ti < count; ti++) {
            Tile t = tiles[ti];
            rows += t.queries.count();
            if (t.keys.count() > 0) {
                lo = Math.min(lo, t.keys.pos(0) / BK);
                hi = Math.max(hi, t.keys.pos(t.keys.count() - 1) / BK);
            }
        }
        if (lo > hi) lo = hi = 0;
        int words = (hi - lo + 64) >>> 6;
        s.groupedRows(rows, hi - lo + 1, words);
        float[] gq = s.gq, gor = s.gor, gm = s.gm, gl = s.gl, sc = s.st;
        int[] cur = s.gcur, end = s.gend, tileOf = s.gtile, next = s.gnext, first = s.gfirst;
        long[] used = s.gused;
        // rows waiting for their next key block, in buckets by the block's first position / BK (a row's
        // blocks hold BK ascending positions each, so each next block lies in a later bucket), the
        // non-empty buckets marked in a bit set: a long prefill's keys span many buckets, few in use
        Arrays.fill(used, 0, words, 0L);
        int r = 0;
        for (int ti = 0; ti < count; ti++) {
            Tile t = tiles[ti];
            int n = t.queries.count();
            gatherQueries(p, s, t, h, 0, n);
            for (int i = 0; i < n; i++, r++) {
                for (int c = 0; c < d; c++) gq[r * d + c] = s.qt[c * QB + i];
                Arrays.fill(gor, r * d, r * d + d, 0f);
                gm[r] = Float.NEGATIVE_INFINITY;
                gl[r] = 0f;
                tileOf[r] = ti;
                int pos = s.qpos[i];
                cur[r] = t.keys.lowerBound(pos - t.hi);
                end[r] = t.keys.lowerBound(pos - t.lo + 1);
                if (cur[r] < end[r]) wait(used, first, next, t.keys.pos(cur[r]) / BK - lo, r);
            }
        }
        int[] batch = s.gbatch;
        for (int b = nextUsed(used, 0, words); b >= 0; b = nextUsed(used, b + 1, words)) {
            used[b >>> 6] &= ~(1L << b);
            int waiting = 0;
            for (int row = first[b]; row >= 0; row = next[row]) batch[waiting++] = row;
            // rows whose next blocks are the same keys (one run of positions) go through the group
            // kernels together, at most QB at a time (the same bits as the row kernels)
            for (int i = 0; i < waiting; i++) {
                int lead = batch[i];
                if (lead < 0) continue;
                // (with the transposed copy the rows score through rowDots one at a time: no group kernel)
                int start = p.kT != null ? -1 : blockRun(tiles[tileOf[lead]], cur[lead], end[lead]), g = 1;
                if (start >= 0) {
                    int nk = Math.min(BK, end[lead] - cur[lead]);
                    for (int j = i + 1; j < waiting && g < QB; j++) {
                        int row = batch[j];
                        if (row >= 0 && Math.min(BK, end[row] - cur[row]) == nk && blockRun(tiles[tileOf[row]], cur[row], end[row]) == start) {
                            int tmp = batch[i + g];          // (a row scanned without a match: it leads later)
                            batch[i + g] = row;
                            batch[j] = tmp;
                            g++;
                        }
                    }
                }
                rowsStep(p, s, tiles, batch, i, g, kvh);
                for (int j = i; j < i + g; j++) {
                    int row = batch[j];
                    batch[j] = -1;
                    if (cur[row] < end[row]) wait(used, first, next, tiles[tileOf[row]].keys.pos(cur[row]) / BK - lo, row);
                }
            }
        }
        r = 0;
        for (int ti = 0; ti < count; ti++) {
            Tile t = tiles[ti];
            int n = t.queries.count();
            Arrays.fill(s.ot, 0f);
            for (int i = 0; i < QB; i++) {
                int pos = t.queries.pos(Math.min(i, n - 1));
                s.qpos[i] = pos;
                s.qoff[i] = p.qOff(h, pos);
            }
            for (int i = 0; i < n; i++, r++) {
                s.m[i] = gm[r];
                s.l[i] = gl[r];
                for (int c = 0; c < d; c++) s.ot[c * QB + i] = gor[r * d + c];
            }
            mergeOut(p, s, h, n);
        }
    }

    // the first position of the row's next key block when its positions are consecutive (and, in a
    // moved tile, all move by one shift), else -1
    private static int blockRun(Tile t, int kb, int end) {
        int nk = Math.min(BK, end - kb), p0 = t.keys.pos(kb);
        if (t.moved != null && !oneShift(t, kb, nk)) return -1;
        return t.keys.pos(kb + nk - 1) - p0 == nk - 1 ? p0 : -1;
    }

    // sc[so..so+nk) = scores of a moved tile's keys kb..kb+nk (rows at koff) against query row
    // q[qo..qo+D), q'·R(δ)k = (R(−δ)q')·k: for a region moved as a whole (one shift) the query
    // counter-rotated once and rowScores (a dot-product call per key spent 30 % of the bundled
    // language model's 16K perplexity), else a counter-rotation per change of shift and a dot per key
    private static void movedScores(Scratch s, Tile t, int kb, int nk, float[] q, int qo, float[] keys, float[] sc, int so, int d) {
        if (oneShift(t, kb, nk)) {
            counterRotate(s, q, qo, t.kShift[kb], d);
            rowScores(sc, so, s.qm, 0, keys, s.koff, nk, d);
            return;
        }
        long shift = Long.MIN_VALUE;
        for (int j = 0; j < nk; j++) {
            if (t.kShift[kb + j] != shift) shift = counterRotate(s, q, qo, t.kShift[kb + j], d);
            sc[so + j] = dot(s.qm, 0, keys, s.koff[j], d);
        }
    }

    // whether keys kb..kb+nk of t (positions in s.kpos) are scored from the transposed copy: consecutive,
    // in place or moved by one shift (a region pos=selected moved)
    private static boolean fromCopy(Problem p, Scratch s, Tile t, int kb, int nk) {
        return p.kT != null && s.kpos[nk - 1] - s.kpos[0] == nk - 1 && (unmoved(t, kb, nk) || oneShift(t, kb, nk));
    }

    // sc[0..nk) = their scores against query row q[qo..qo+D) from the transposed copy (fromCopy): no lane
    // reduction per key; a moved run with the query counter-rotated once
    private static void copyScores(Problem p, Scratch s, Tile t, int kvh, int kb, int nk, float[] q, int qo, float[] sc) {
        float[] x = q;
        int xo = qo;
        if (!unmoved(t, kb, nk)) {
            counterRotate(s, q, qo, t.kShift[kb], p.d);
            x = s.qm;
            xo = 0;
        }
        TileOps.rowDots(sc, x, xo, p.kT, p.kTOff(kvh, s.kpos[0]), p.tk, nk, p.d);
    }

    // one key block for the g rows batch[i0..i0+g) of forwardRowsGrouped (g > 1: the same keys): what
    // forwardRows does with a block, for each row; advances their next-key cursors
    private static void rowsStep(Problem p, Scratch s, Tile[] tiles, int[] batch, int i0, int g, int kvh) {
        int d = p.d;
        float[] gq = s.gq, gor = s.gor, gm = s.gm, gl = s.gl, sc = s.st;
        int[] cur = s.gcur, end = s.gend, tileOf = s.gtile;
        int lead = batch[i0], nk = Math.min(BK, end[lead] - cur[lead]);
        Tile lt = tiles[tileOf[lead]];
        for (int j = 0; j < nk; j++) s.kpos[j] = lt.keys.pos(cur[lead] + j);
        float[] keys = p.kv.rows(false, kvh, s.kpos, nk, s.koff, s.kw);
        float[] values = null;
        if (g == 1) {
            int ro = lead * d, kb = cur[lead];
            if (fromCopy(p, s, lt, kb, nk)) copyScores(p, s, lt, kvh, kb, nk, gq, ro, sc);
            else if (lt.moved == null) rowScores(sc, 0, gq, ro, keys, s.koff, nk, d);
            else movedScores(s, lt, kb, nk, gq, ro, keys, sc, 0, d);
            float m = gm[lead], mx = m;
            for (int j = 0; j < nk; j++) {
                sc[j] += lt.bias(cur[lead] + j);
                mx = Math.max(mx, sc[j]);
            }
            if (mx != Float.NEGATIVE_INFINITY) {
                float l = gl[lead];
                if (l != 0f && mx != m) {
                    float alpha = (float) Math.exp(m - mx);
                    l *= alpha;
                    Kernels.scale(alpha, gor, ro, d);
                }
                values = p.kv.rows(true, kvh, s.kpos, nk, s.voff, s.vw);
                l += TileOps.expShift(sc, 0, nk, mx);
                axpyRows(sc, 0, nk, values, s.voff, gor, ro, d);
                gl[lead] = l;
                gm[lead] = mx;
            }
            cur[lead] += nk;
            return;
        }
        float[] bq = s.groupRows(g), bo = s.groupOut;
        for (int i = 0; i < g; i++) {
            int row = batch[i0 + i];
            Tile t = tiles[tileOf[row]];
            if (t.moved == null) {
                System.arraycopy(gq, row * d, bq, i * d, d);
            } else {                                    // the row's query counter-rotated by its block's one shift
                counterRotate(s, gq, row * d, t.kShift[cur[row]], d);
                System.arraycopy(s.qm, 0, bq, i * d, d);
            }
            System.arraycopy(gor, row * d, bo, i * d, d);
        }
        groupScores(sc, bq, g, keys, s.koff, nk, d);
        for (int i = 0; i < g; i++) {
            int row = batch[i0 + i], so = i * BK;
            Tile t = tiles[tileOf[row]];
            float m = gm[row], mx = m;
            for (int j = 0; j < nk; j++) {
                sc[so + j] += t.bias(cur[row] + j);
                mx = Math.max(mx, sc[so + j]);
            }
            if (mx == Float.NEGATIVE_INFINITY) {        // nothing visible: no weight (forwardRows skips the block)
                Arrays.fill(sc, so, so + nk, 0f);
                continue;
            }
            float l = gl[row];
            if (l != 0f && mx != m) {
                float alpha = (float) Math.exp(m - mx);
                l *= alpha;
                Kernels.scale(alpha, bo, i * d, d);
            }
            gl[row] = l + TileOps.expShift(sc, so, nk, mx);
            gm[row] = mx;
        }
        values = p.kv.rows(true, kvh, s.kpos, nk, s.voff, s.vw);
        groupAxpy(sc, g, nk, values, s.voff, bo, d);
        for (int i = 0; i < g; i++) {
            int row = batch[i0 + i];
            System.arraycopy(bo, i * d, gor, row * d, d);
            cur[row] += nk;
        }
    }

    // row joins bucket b (marked used, its list started if it was empty)
    private static void wait(long[] used, int[] first, int[] next, int b, int row) {
        long bit = 1L << b;
        if ((used[b >>> 6] & bit) == 0) {
            used[b >>> 6] |= bit;
            first[b] = -1;
        }
        next[row] = first[b];
        first[b] = row;
    }

    // the first used bucket at or after from, or -1
    private static int nextUsed(long[] used, int from, int words) {
        int w = from >>> 6;
        if (w >= words) return -1;
        long word = used[w] & (-1L << from);
        while (word == 0) {
            if (++w == words) return -1;
            word = used[w];
        }
        return (w << 6) + Long.numberOfTrailingZeros(word);
    }

    /**
     * A decoding step of grouped-query attention: the query rows of the G heads that share key/value
     * head kvh, all at position pos, in one pass over the tile's keys (a head at a time, each key
     * block would be read from memory G times: a long cache is far larger than the caches). Row g
     * of the gathered block is head kvh·G + g; each row does exactly what {@link #forwardRows} does
     * for it (the same products in the same order: the same bits), the rows taking turns per key
     * block. For tiles that are the same for every head, nothing moved, no transposed keys.
     */
    static void forwardGroupRow(Problem p, Scratch s, Tile t, int kvh, int pos) {
        int g = p.group, d = p.d;
        float[] qs = s.groupRows(g), acc = s.groupOut, sc = s.st;
        // the group's query rows, scaled, row-major (the values forwardRows takes from gatherT's tile)
        for (int i = 0; i < g; i++) {
            s.qpos[i] = pos;
            s.qoff[i] = p.qOff(kvh * g + i, pos);
            for (int c = 0; c < d; c++) qs[i * d + c] = p.q[s.qoff[i] + c] * p.scale;
        }
        for (int i = g; i < QB; i++) {                // the padding rows mergeT's masked lanes may index
            s.qpos[i] = pos;
            s.qoff[i] = s.qoff[g - 1];
        }
        Arrays.fill(acc, 0, g * d, 0f);
        Arrays.fill(s.m, 0, g, Float.NEGATIVE_INFINITY);
        Arrays.fill(s.l, 0, g, 0f);
        int k0 = t.keys.lowerBound(pos - t.hi), k1 = t.keys.lowerBound(pos - t.lo + 1);
        for (int kb = k0; kb < k1; kb += BK) {
            int nk = Math.min(BK, k1 - kb);
            for (int j = 0; j < nk; j++) s.kpos[j] = t.keys.pos(kb + j);
            float[] keys = p.kv.rows(false, kvh, s.kpos, nk, s.koff, s.kw);
            float[] values = p.kv.rows(true, kvh, s.kpos, nk, s.voff, s.vw);
            s.sink += touch(keys, s.koff, values, s.voff, nk, d);
            groupScores(sc, qs, g, keys, s.koff, nk, d);              // row i's scores at sc[i·BK..]
            boolean any = false;
            for (int i = 0; i < g; i++) {
                int so = i * BK;
                float m = s.m[i], l = s.l[i];
                for (int j = 0, e = Math.min(nk, t.biased - kb); j < e; j++) sc[so + j] += t.bias;
                float mx = Math.max(m, Kernels.max(sc, so, nk));
                if (mx == Float.NEGATIVE_INFINITY) {
                    Arrays.fill(sc, so, so + nk, 0f);                 // this row takes nothing from the block
                    continue;
                }
                any = true;
                if (l != 0f && mx != m) {                 // (an unchanged max rescales by e^0 = 1: skipped)
                    float alpha = (float) Math.exp(m - mx);
                    l *= alpha;
                    Kernels.scale(alpha, acc, i * d, d);
                }
                l += TileOps.expShift(sc, so, nk, mx);
                s.m[i] = mx;
                s.l[i] = l;
            }
            if (!any) continue;
            groupAxpy(sc, g, nk, values, s.voff, acc, d);
        }
        for (int i = 0; i < g; i++) for (int c = 0; c < d; c++) s.ot[c * QB + i] = acc[i * d + c];
    }

    /** {@link #mergeOut} for the rows of {@link #forwardGroupRow}: row i is head kvh·G + i. */
    static void mergeGroupOut(Problem p, Scratch s, int kvh) {
        int g = p.group;
        for (int i = 0; i < g; i++) mergeWeights(p, s, i, p.lseAt(kvh * g + i, s.qpos[i]));
        TileOps.mergeT(p.o, s.qoff, g, p.d, s.ot, s.wa, s.wb);
    }

    // whether keys kb..kb+nk of the tile sit at their own positions (pos=selected moves only some)
    private static boolean unmoved(Tile t, int kb, int nk) {
        if (t.moved == null) return true;
        for (int j = kb; j < kb + nk; j++) if (t.kShift[j] != 0) return false;
        return true;
    }

    // whether keys kb..kb+nk of a moved tile all move by one shift (one region, moved as a whole)
    private static boolean oneShift(Tile t, int kb, int nk) {
        for (int j = kb + 1; j < kb + nk; j++) if (t.kShift[j] != t.kShift[kb]) return false;
        return true;
    }

    // a query row against one key or value row: Kernels' vector bodies once D fills a vector, else
    // plain loops (with D below the vector length a vector body is all tail plus a lane reduction,
    // several times slower: decoding at D = 8 on 16-float vectors)
    private static float dot(float[] q, int qo, float[] k, int ko, int d) {
        if (d >= TileOps.LANES) return Kernels.dot(q, qo, k, ko, d);
        float s0 = 0f, s1 = 0f;
        int c = 0;
        for (; c + 2 <= d; c += 2) {
            s0 += q[qo + c] * k[ko + c];
            s1 += q[qo + c + 1] * k[ko + c + 1];
        }
        if (c < d) s0 += q[qo + c] * k[ko + c];
        return s0 + s1;
    }

    private static void axpy(float a, float[] v, int vo, float[] out, int oo, int d) {
        if (d >= TileOps.LANES) Kernels.axpy(a, v, vo, out, oo, d);
        else for (int c = 0; c < d; c++) out[oo + c] += a * v[vo + c];
    }

    // sc[so + j] = q[qo..qo+d) · keys row j for j < nk: the query in registers over the block once D fills a vector
    private static void rowScores(float[] sc, int so, float[] q, int qo, float[] keys, int[] koff, int nk, int d) {
        if (d >= TileOps.LANES) TileOps.rowScores(sc, so, q, qo, keys, koff, nk, d);
        else for (int j = 0; j < nk; j++) sc[so + j] = dot(q, qo, keys, koff[j], d);
    }

    // Reads a float of every 64-byte line of the block's rows, loads issued back to back, so that
    // the block streams in from memory at the machine's read rate before the group's arithmetic goes
    // over it from the caches: with G rows of work between its loads, a grouped step left to the
    // hardware prefetcher read a long cache at about a third of that rate (a kernel harness, 32 MiB
    // of keys: scores 19 ns per query row and key, 12 with this, 5.6 in cache). Not in the one-row
    // path: there the prefetcher kept up at D = 64 on Zen 4 (touching cost a fifth of a step), and
    // its scores and P·V now read keys and values in one loop (rowScoresAxpy). Also used for
    // a query block's rows before they are transposed (gatherQueries, backwardBlock). The sum only
    // keeps the loads alive.
    private static float touch(float[] x, int[] off, int n, int d) {
        float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f;
        for (int j = 0; j < n; j++) {
            int o = off[j], c = 0;
            for (; c + 48 < d; c += 64) {
                s0 += x[o + c];
                s1 += x[o + c + 16];
                s2 += x[o + c + 32];
                s3 += x[o + c + 48];
            }
            for (; c < d; c += 16) s0 += x[o + c];
        }
        return (s0 + s1) + (s2 + s3);
    }

    // touch for a block's key and value rows at once, a line of each in turn: one core reads two
    // streams faster than one (40 against 35 GB/s in a harness on Zen 5; the rows are needed together)
    private static float touch(float[] x, int[] xoff, float[] y, int[] yoff, int n, int d) {
        float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f;
        for (int j = 0; j < n; j++) {
            int o = xoff[j], u = yoff[j], c = 0;
            for (; c + 16 < d; c += 32) {
                s0 += x[o + c];
                s1 += y[u + c];
                s2 += x[o + c + 16];
                s3 += y[u + c + 16];
            }
            if (c < d) {
                s0 += x[o + c];
                s1 += y[u + c];
            }
        }
        return (s0 + s1) + (s2 + s3);
    }

    // sc[i·BK + j] = rowScores of query row i (q[i·d..]) against key j, for the g rows of a group
    private static void groupScores(float[] sc, float[] q, int g, float[] keys, int[] koff, int nk, int d) {
        if (d >= TileOps.LANES) TileOps.groupScores(sc, BK, q, g, keys, koff, nk, d);
        else for (int i = 0; i < g; i++) for (int j = 0; j < nk; j++) sc[i * BK + j] = dot(q, i * d, keys, koff[j], d);
    }

    // out[i·d..i·d+d) += Σ_j p[i·BK + j]·v row j for the g rows of a group: axpyRows per row, each
    // value row read once for all of them
    private static void groupAxpy(float[] p, int g, int n, float[] v, int[] voff, float[] out, int d) {
        if (d >= TileOps.LANES) TileOps.groupAxpy(p, BK, g, n, v, voff, out, d);
        else for (int i = 0; i < g; i++) for (int j = 0; j < n; j++) axpy(p[i * BK + j], v, voff[j], out, i * d, d);
    }

    // out[oo..oo+d) += Σ_j p[po + j]·v row j: axpy per row, the output row kept in registers once D fills a vector
    private static void axpyRows(float[] p, int po, int n, float[] v, int[] voff, float[] out, int oo, int d) {
        if (d >= TileOps.LANES) Kernels.axpyRows(p, po, n, v, voff, out, oo, d);
        else for (int j = 0; j < n; j++) axpy(p[po + j], v, voff[j], out, oo, d);
    }

    /** Merges the block's result (one part) into O and LSE by log-sum-exp. */
    static void mergeOut(Problem p, Scratch s, int h, int n) {
        for (int i = 0; i < n; i++) mergeWeights(p, s, i, p.lseAt(h, s.qpos[i]));
        TileOps.mergeT(p.o, s.qoff, n, p.d, s.ot, s.wa, s.wb);
    }

    // row i of the block: the weights of the old output and of this part (s.wa, s.wb) and the merged LSE at lse[at]
    private static void mergeWeights(Problem p, Scratch s, int i, int at) {
        float li = s.l[i];
        if (li == 0f) {                         // no key: this part adds nothing to the row
            s.wa[i] = 1f;
            s.wb[i] = 0f;
            return;
        }
        float part = s.m[i] + (float) Math.log(li);
        float old = p.lse[at];
        if (old == Float.NEGATIVE_INFINITY) {
            s.wa[i] = 0f;
            s.wb[i] = 1f / li;
            p.lse[at] = part;
        } else {
            float mx = Math.max(old, part);
            float a = (float) Math.exp(old - mx), b = (float) Math.exp(part - mx), sum = a + b;
            s.wa[i] = a / sum;
            s.wb[i] = b / (sum * li);
            p.lse[at] = mx + (float) Math.log(sum);
        }
    }

    // ---- backward --------------------------------------------------------------------------------

    /**
     * Gradients of the gathered block against the tile's keys, with the saved total LSE and
     * delta = rowsum(dO ∘ O) (or, with detached merge weights, rowsum(dO ∘ O_part) of this part,
     * recomputed here). dq rows of the block are added to p.dq; dK, dV rows to dk, dv at
     * {@code (kb·N + position)·D} where kb is the buffer head of query head h.
     */
    static void backwardBlock(Problem p, Scratch s, Tile t, int h, int i0, int n, boolean detached,
                              float[] dk, float[] dv, int kbHead) {
        s.backwardBuffers();
        int d = p.d, dp = s.dp;
        gatherQueries(p, s, t, h, i0, n);
        float[] dO = p.dO, o = p.o;
        if (n > ROW_BLOCK_MAX) s.sink += touch(dO, s.qoff, n, d) + touch(o, s.qoff, n, d);   // as gatherQueries
        TileOps.gatherT(s.dOt, dO, s.qoff, n, d, 1f);
        for (int i = 0; i < QB; i++) {
            int ro = i * dp;
            if (i < n) {
                int pos = s.qpos[i], qo = s.qoff[i];
                for (int c = 0; c < d; c++) {
                    s.dorow[ro + c] = dO[qo + c];
                    s.qrow[ro + c] = p.q[qo + c] * p.scale;
                }
                if (t.moved != null) s.qRot.set(s.qsh[i]).apply(s.qrow, ro, 1, false);
                float lse = p.lse[p.lseAt(h, pos)];
                // a row that reaches nothing has LSE = -inf; +inf makes its probabilities exact zeros
                s.lseRow[i] = lse == Float.NEGATIVE_INFINITY ? Float.POSITIVE_INFINITY : lse;
                float acc = 0f;                      // plain loop: same bits in every JIT tier
                if (!detached) for (int c = 0; c < d; c++) acc += dO[qo + c] * o[qo + c];
                s.delta[i] = acc;
                s.wa[i] = 1f;
                s.wb[i] = p.scale;
            } else {
                Arrays.fill(s.dorow, ro, ro + dp, 0f);
                Arrays.fill(s.qrow, ro, ro + dp, 0f);
                s.lseRow[i] = Float.POSITIVE_INFINITY;
                s.delta[i] = 0f;
            }
        }
        if (detached) {
            // torchscale: D = rowsum(dO ∘ o_part) with this part's own normalised output
            forwardKeys(p, s, t, h, n);
            for (int i = 0; i < n; i++) {
                if (s.l[i] == 0f) continue;
                float acc = 0f;
                for (int c = 0; c < d; c++) acc += s.dOt[c * QB + i] * s.ot[c * QB + i];
                s.delta[i] = acc / s.l[i];
            }
        }
        Arrays.fill(s.dqt, 0f);
        if (n <= ROW_BLOCK_MAX) backwardRows(p, s, t, h, n, dk, dv, kbHead); else backwardKeys(p, s, t, h, n, dk, dv, kbHead);
        // moved queries: dQ of the moved copy, rotated back to the query's own position
        if (t.moved != null) for (int i = 0; i < n; i++) s.qRot.set(s.qsh[i]).apply(s.dqt, i, QB, true);
        TileOps.mergeT(p.dq, s.qoff, n, d, s.dqt, s.wa, s.wb);   // dq += scale · dQ_blk
    }

    // the transposed walk of the backward: dQ of the block into s.dqt, dK and dV rows added in place
    static void backwardKeys(Problem p, Scratch s, Tile t, int h, int n, float[] dk, float[] dv, int kbHead) {
        int d = p.d, dp = s.dp, kvh = h / p.group;
        int qmin = s.qpos[0], qmax = s.qpos[n - 1];
        int k0 = t.keys.lowerBound(qmin - t.hi), k1 = t.keys.lowerBound(qmax - t.lo + 1);
        int bufBase = kbHead * p.tk - p.kBase, nq = TileOps.lanes(n);
        for (int kb = k0; kb < k1; kb += BK) {
            int nk = Math.min(BK, k1 - kb);
            int mode = keyBlock(s, t, kb, nk, qmin, qmax);
            if (mode == SKIP) continue;
            for (int j = 0; j < nk; j++) s.koff[j] = s.voff[j] = p.kOff(kvh, s.kpos[j]);
            float[] keys = t.moved != null ? movedKeys(s, t, kb, nk, p.k, d) : p.k;
            // a block the band cuts: S, dP and dQ per key slice on the query lanes that reach it (the
            // other lanes get P = 0, hence dS = 0, as before)
            boolean sliced = (mode == PARTIAL || nq < QB) && hulls(s, t, n, nk);
            scores(s, sliced, s.st, keys, s.koff, nk, s.qt, d);       // S
            if (kb < t.biased) addBias(s.st, Math.min(nk, t.biased - kb), t.bias);
            if (mode == PARTIAL) mask(s, t, n, nk);
            TileOps.probs(s.st, nk, s.lseRow, nq);                    // P = exp(S - LSE)
            scores(s, sliced, s.dst, p.v, s.voff, nk, s.dOt, d);     // dP = dO · Vᵀ
            TileOps.dsoft(s.dst, s.st, nk, s.delta, nq);              // dS = P ∘ (dP - delta)
            TileOps.rows(s.vb, s.st, nk, s.dorow, dp, nq);           // dV_blk = Pᵀ dO
            TileOps.rows(s.kb, s.dst, nk, s.qrow, dp, nq);           // dK_blk = dSᵀ (scale·Q)
            for (int j = 0; j < nk; j++) {
                int to = (bufBase + s.kpos[j]) * d;
                Kernels.axpy(1f, s.vb, j * dp, dv, to, d);
                if (t.moved != null) s.kRot.set(t.kShift[kb + j]).apply(s.kb, j * dp, 1, true);   // back to the key's own position
                Kernels.axpy(1f, s.kb, j * dp, dk, to, d);
            }
            accumulate(s, sliced, s.dqt, keys, s.koff, nk, s.dst, d);  // dQ_blk += dS K
        }
    }

    // backwardKeys one row at a time over the row's own band (D along the vector axis), for the
    // same reason as forwardRows
    static void backwardRows(Problem p, Scratch s, Tile t, int h, int n, float[] dk, float[] dv, int kbHead) {
        int d = p.d, dp = s.dp, kvh = h / p.group, bufBase = kbHead * p.tk - p.kBase;
        float[] dqr = s.or;
        for (int i = 0; i < n; i++) {
            float lse = s.lseRow[i], delta = s.delta[i];
            if (lse == Float.POSITIVE_INFINITY) continue;          // a row that reaches nothing: P = 0
            int pos = s.qpos[i], ro = i * dp;
            int k0 = t.keys.lowerBound(pos - t.hi), k1 = t.keys.lowerBound(pos - t.lo + 1);
            Arrays.fill(dqr, 0f);
            if (t.moved == null) backwardRow(p, s, t, kvh, ro, k0, k1, lse, delta, dk, dv, bufBase);
            else backwardRowMoved(p, s, t, kvh, ro, k0, k1, lse, delta, dk, dv, bufBase);
            for (int c = 0; c < d; c++) s.dqt[c * QB + i] = dqr[c];
        }
    }

    // one query row (s.qrow/s.dorow at ro) against its band [k0, k1) of the tile's keys, BK keys at a
    // time: scores and dP of the block first — from the head's transposed K and V where the keys are
    // consecutive positions (a region, a band: no lane reduction per key), by dot products where
    // they are not — then P = exp(S − LSE) by the vector exp, then the dV, dK and dQ rows
    private static void backwardRow(Problem p, Scratch s, Tile t, int kvh, int ro, int k0, int k1, float lse, float delta,
                                    float[] dk, float[] dv, int bufBase) {
        int d = p.d;
        float[] sc = s.st, dpr = s.dst, dqr = s.or;
        for (int kb = k0; kb < k1; kb += BK) {
            int nk = Math.min(BK, k1 - kb), first = t.keys.pos(kb);
            if (p.kT != null && t.keys.pos(kb + nk - 1) - first == nk - 1) {
                // S from Kᵀ and dP = dO · Vᵀ in one pass
                TileOps.rowDotsPair(sc, s.qrow, p.kT, dpr, s.dorow, p.vT, ro, p.kTOff(kvh, first), p.tk, nk, d);
            } else {
                for (int j = 0; j < nk; j++) {
                    int off = p.kOff(kvh, t.keys.pos(kb + j));
                    sc[j] = Kernels.dot(s.qrow, ro, p.k, off, d);
                    dpr[j] = Kernels.dot(s.dorow, ro, p.v, off, d);
                }
            }
            for (int j = 0, e = Math.min(nk, t.biased - kb); j < e; j++) sc[j] += t.bias;
            TileOps.expShift(sc, nk, lse);                                            // P
            for (int j = 0; j < nk; j++) {
                int kp = t.keys.pos(kb + j);
                s.koff[j] = p.kOff(kvh, kp);
                s.voff[j] = (bufBase + kp) * d;
                dpr[j] = sc[j] * (dpr[j] - delta);                                    // dS = P (dP - delta)
            }
            // dV += P dO, dK += dS (scale·q), dQ += dS K
            TileOps.rowGradients(sc, dpr, nk, s.dorow, s.qrow, ro, p.k, s.koff, s.voff, dv, dk, dqr, d);
        }
    }

    // the same for a tile whose keys move (pos=selected): the query counter-rotated per run of keys
    // with one shift (q'·R(δ)k = (R(−δ)q')·k; dK = R(δ)ᵀ(dS q') = dS·R(−δ)q'; dQ' = Σ dS·R(δ)k, summed
    // per run in s.acc); a block of consecutive keys with one shift is scored from the transposed
    // copy, other blocks key by key
    private static void backwardRowMoved(Problem p, Scratch s, Tile t, int kvh, int ro, int k0, int k1, float lse, float delta,
                                         float[] dk, float[] dv, int bufBase) {
        int d = p.d;
        float[] sc = s.st, dpr = s.dst, dqr = s.or;
        long shift = Long.MIN_VALUE;         // the key shift s.qm is rotated for; s.acc its dS·K sum
        for (int kb = k0; kb < k1; kb += BK) {
            int nk = Math.min(BK, k1 - kb), first = t.keys.pos(kb);
            boolean block = p.kT != null && t.keys.pos(kb + nk - 1) - first == nk - 1 && oneShift(t, kb, nk);
            for (int j = 0; j < nk; j++) {
                if (t.kShift[kb + j] != shift) {
                    if (shift != Long.MIN_VALUE) addRotated(s, shift, dqr, d);
                    shift = counterRotate(s, s.qrow, ro, t.kShift[kb + j], d);
                    Arrays.fill(s.acc, 0f);
                }
                if (block) break;                // one shift for the whole block: s.qm serves it
                int off = p.kOff(kvh, t.keys.pos(kb + j));
                sc[j] = Kernels.dot(s.qm, 0, p.k, off, d);
                dpr[j] = Kernels.dot(s.dorow, ro, p.v, off, d);
            }
            if (block) {
                int at = p.kTOff(kvh, first);
                TileOps.rowDots(sc, s.qm, 0, p.kT, at, p.tk, nk, d);                 // S
                TileOps.rowDots(dpr, s.dorow, ro, p.vT, at, p.tk, nk, d);            // dP = dO · Vᵀ
            }
            for (int j = 0, e = Math.min(nk, t.biased - kb); j < e; j++) sc[j] += t.bias;
            TileOps.expShift(sc, nk, lse);                                            // P
            for (int j = 0; j < nk; j++) {
                if (t.kShift[kb + j] != shift) {                                      // a new run inside a mixed block
                    addRotated(s, shift, dqr, d);
                    shift = counterRotate(s, s.qrow, ro, t.kShift[kb + j], d);
                    Arrays.fill(s.acc, 0f);
                }
                int kp = t.keys.pos(kb + j), off = p.kOff(kvh, kp), to = (bufBase + kp) * d;
                float pr = sc[j], ds = pr * (dpr[j] - delta);                         // dS = P (dP - delta)
                Kernels.axpy(pr, s.dorow, ro, dv, to, d);                             // dV += P dO
                Kernels.axpy(ds, s.qm, 0, dk, to, d);                                 // dK += dS (scale·q)
                Kernels.axpy(ds, p.k, off, s.acc, 0, d);                              // dQ += dS K
            }
        }
        if (shift != Long.MIN_VALUE) addRotated(s, shift, dqr, d);
    }

    // dqr += R(shift)·s.acc: one run's dS·K sum, moved with its keys
    private static void addRotated(Scratch s, long shift, float[] dqr, int d) {
        s.kRot.set(shift).apply(s.acc, 0, 1, false);
        for (int c = 0; c < d; c++) dqr[c] += s.acc[c];
    }

    // ---- shared ----------------------------------------------------------------------------------

    // select-and-merge's bias on the selected keys' logits: the first nb key rows of a score block
    private static void addBias(float[] st, int nb, float bias) {
        for (int i = 0, e = nb * QB; i < e; i++) st[i] += bias;
    }

    static final int SKIP = 0, FULL = 1, PARTIAL = 2;

    // loads the key block's positions; says whether the band masks none, some or all of it
    private static int keyBlock(Scratch s, Tile t, int kb, int nk, int qmin, int qmax) {
        for (int j = 0; j < nk; j++) s.kpos[j] = t.keys.pos(kb + j);
        long dmin = (long) qmin - s.kpos[nk - 1], dmax = (long) qmax - s.kpos[0];
        if (dmax < t.lo || dmin > t.hi) return SKIP;
        return dmin >= t.lo && dmax <= t.hi ? FULL : PARTIAL;
    }

    // -inf where the band hides the key (only on blocks the band cuts). Positions ascend on both
    // axes, so the queries that see key j are one contiguous run [ia, ib) of lanes, and both ends
    // only move forward with j: two pointer walks and two fills per key.
    private static void mask(Scratch s, Tile t, int n, int nk) {
        int ia = 0, ib = 0;
        for (int j = 0; j < nk; j++) {
            long first = s.kpos[j] + t.lo, last = s.kpos[j] + t.hi;    // visible query positions
            while (ia < n && s.qpos[ia] < first) ia++;
            while (ib < n && s.qpos[ib] <= last) ib++;
            int so = j * QB;
            if (ib <= ia) {
                Arrays.fill(s.st, so, so + n, Float.NEGATIVE_INFINITY);
            } else {
                if (ia > 0) Arrays.fill(s.st, so, so + ia, Float.NEGATIVE_INFINITY);
                if (ib < n) Arrays.fill(s.st, so + ib, so + n, Float.NEGATIVE_INFINITY);
            }
        }
    }
}
