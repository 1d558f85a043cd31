package dev.longspan.attention;

import dev.longspan.kernel.Simd;

/**
 * The inner loops of the flash kernel, on one block of {@link #QB} queries × at most {@link #BK}
 * keys. Queries run along the fast axis of every scratch tile (a "transposed" layout): score and
 * probability tiles are {@code [key][query]}, the query and output blocks are {@code [d][query]}.
 * That way every loop vectorises over queries, K and V rows are read in place (gathered rows cost
 * nothing extra), and the head dimension D can be any size (it is never the vector axis, except in
 * {@link #rows}, whose operands are padded to {@code Dp}, a multiple of the vector length).
 *
 * <p>Each call goes to {@code VectorTileOps} when {@link Simd#ENABLED}, else to its scalar twin in
 * {@link ScalarTileOps} (also the test reference).
 */
final class TileOps {
    private TileOps() {}

    /** Floats per vector (1 when scalar). */
    static final int LANES = Simd.ENABLED ? Simd.VECTOR_BITS / 32 : 1;
    /** Queries per block: four vectors (64 with AVX-512), or 64 for the scalar kernels. */
    static final int QB = Simd.ENABLED ? 4 * LANES : 64;
    /** Keys per block. */
    static final int BK = 64;

    /** D rounded up to a whole number of vectors: the row stride of the padded row-layout blocks. */
    static int paddedDim(int d) {
        return (d + LANES - 1) / LANES * LANES;
    }

    // st: [nk][QB] = x[rows xoff]: [nk][D] · yt: [D][QB]
    static void scores(float[] st, float[] x, int[] xoff, int nk, float[] yt, int d) {
        if (Simd.ENABLED) VectorTileOps.scores(st, x, xoff, nk, yt, d); else ScalarTileOps.scores(st, x, xoff, nk, yt, d);
    }

    // ct: [D][QB] += x[rows xoff]ᵀ: [D][nk] · p: [nk][QB]
    static void accumulate(float[] ct, float[] x, int[] xoff, int nk, float[] p, int d) {
        if (Simd.ENABLED) VectorTileOps.accumulate(ct, x, xoff, nk, p, d); else ScalarTileOps.accumulate(ct, x, xoff, nk, p, d);
    }

    // st rows [j0, j1) = x[rows xoff[j]] · yt on query lanes [q0, q1) only (multiples of LANES); the
    // other lanes of those rows are left as they were (a partial block masks them afterwards)
    static void scores(float[] st, float[] x, int[] xoff, int j0, int j1, float[] yt, int d, int q0, int q1) {
        if (Simd.ENABLED) VectorTileOps.scores(st, x, xoff, j0, j1, yt, d, q0, q1); else ScalarTileOps.scores(st, x, xoff, j0, j1, yt, d, q0, q1);
    }

    // ct: [D][QB] += x[rows xoff[j0..j1)]ᵀ · p[j0..j1) on query lanes [q0, q1) only (multiples of LANES)
    static void accumulate(float[] ct, float[] x, int[] xoff, int j0, int j1, float[] p, int d, int q0, int q1) {
        if (Simd.ENABLED) VectorTileOps.accumulate(ct, x, xoff, j0, j1, p, d, q0, q1); else ScalarTileOps.accumulate(ct, x, xoff, j0, j1, p, d, q0, q1);
    }

    // online softmax step: st: [nk][QB] scores → probabilities exp(s - m'), m, l: [QB] updated, ot: [D][QB] rescaled;
    // tmp: [3·QB] scratch
    static void online(float[] st, int nk, float[] m, float[] l, float[] ot, int d, float[] tmp) {
        if (Simd.ENABLED) VectorTileOps.online(st, nk, m, l, ot, d, tmp); else ScalarTileOps.online(st, nk, m, l, ot, d, tmp);
    }

    /**
     * {@link #online} on a cut tile: each slice of {@code slice} keys on its hull of query lanes
     * [hullLo, hullHi) only (the hulls of the sliced scores and P·V). An entry outside its slice's hull
     * must be masked (-inf): it is left as it is, neither in the max nor in the sums (where it would
     * add an exact 0), and the sliced P·V never reads it.
     */
    static void online(float[] st, int nk, float[] m, float[] l, float[] ot, int d, float[] tmp, int slice, int[] hullLo, int[] hullHi) {
        if (Simd.ENABLED) VectorTileOps.online(st, nk, m, l, ot, d, tmp, slice, hullLo, hullHi);
        else ScalarTileOps.online(st, nk, m, l, ot, d, tmp, slice, hullLo, hullHi);
    }

    // st: [nk][QB] scores → probabilities exp(s - lse[q]) on query lanes [0, nq) (a multiple of LANES, ≤ QB)
    static void probs(float[] st, int nk, float[] lse, int nq) {
        if (Simd.ENABLED) VectorTileOps.probs(st, nk, lse, nq); else ScalarTileOps.probs(st, nk, lse, nq);
    }

    // dst: [nk][QB] dP → dS = p · (dP - delta[q]) on query lanes [0, nq)
    static void dsoft(float[] dst, float[] p, int nk, float[] delta, int nq) {
        if (Simd.ENABLED) VectorTileOps.dsoft(dst, p, nk, delta, nq); else ScalarTileOps.dsoft(dst, p, nk, delta, nq);
    }

    // out[j] = q[qo..qo+d) · x[xoff[j]..xoff[j]+d) for j < n: one query row against n key rows in place
    // (the rows path's scores over a block of cached keys), the query held in registers across the keys
    static void rowScores(float[] out, float[] q, int qo, float[] x, int[] xoff, int n, int d) {
        rowScores(out, 0, q, qo, x, xoff, n, d);
    }

    /** {@link #rowScores(float[], float[], int, float[], int[], int, int)} into out[oo..oo+n). */
    static void rowScores(float[] out, int oo, float[] q, int qo, float[] x, int[] xoff, int n, int d) {
        if (Simd.ENABLED) VectorTileOps.rowScores(out, oo, q, qo, x, xoff, n, d); else ScalarTileOps.rowScores(out, oo, q, qo, x, xoff, n, d);
    }

    /**
     * Whether {@link #rowScoresAxpy} runs as one loop: D a whole number of vectors, at most a quarter
     * of the vector registers (8 of 32, 4 of 16): the output row's vectors stay in registers with
     * the query's (up to four) and the loads.
     */
    static boolean fusesScoresAndAxpy(int d) {
        return Simd.ENABLED && d % LANES == 0 && d <= Math.min(8, Simd.VECTOR_REGISTERS / 4) * LANES;
    }

    // rowScores of one key block into out[oo..oo+n) and Kernels.axpyRows of the block before
    // (y[yo..yo+d) += Σ_j p[po + j]·v row j, j < nv) in one loop where fusesScoresAndAxpy(d): the
    // keys and the values stream in side by side (a decoding step over a long cache reads both
    // from memory); each result bit for bit what the two kernels give. Elsewhere (the scalar twin,
    // or a D the vector loop does not take) the two kernels one after the other.
    static void rowScoresAxpy(float[] out, int oo, float[] q, int qo, float[] x, int[] xoff, int n,
                              float[] p, int po, int nv, float[] v, int[] voff, float[] y, int yo, int d) {
        if (fusesScoresAndAxpy(d)) {
            VectorTileOps.rowScoresAxpy(out, oo, q, qo, x, xoff, n, p, po, nv, v, voff, y, yo, d);
        } else {
            dev.longspan.kernel.Kernels.axpyRows(p, po, nv, v, voff, y, yo, d);
            rowScores(out, oo, q, qo, x, xoff, n, d);
        }
    }

    /**
     * One query row's gradients from a block of n keys (the rows path of the backward): for j &lt; n,
     * dv[to[j]..+d) += p[j]·dO[ro..+d), dk[to[j]..+d) += ds[j]·q[ro..+d) and dq[0..d) += ds[j]·k[koff[j]..+d).
     * Per element the same multiply-adds in the same order as three {@code Kernels.axpy} calls per
     * key, so the bits are theirs; the SIMD path keeps the row's dO, q and dq vectors in registers
     * across the keys (three axpy calls of D = 32 per key cost a third of a training step in calls,
     * loads and stores of those rows).
     */
    static void rowGradients(float[] p, float[] ds, int n, float[] dO, float[] q, int ro, float[] k, int[] koff,
                             int[] to, float[] dv, float[] dk, float[] dq, int d) {
        if (Simd.ENABLED) VectorTileOps.rowGradients(p, ds, n, dO, q, ro, k, koff, to, dv, dk, dq, d);
        else ScalarTileOps.rowGradients(p, ds, n, dO, q, ro, k, koff, to, dv, dk, dq, d);
    }

    // out[j] = Σ_c x[xo + c] · yt[yo + c·stride + j] for j < n: one row against n rows held transposed
    // (the rows path's scores over consecutive keys: lanes along the keys, no reduction per key)
    static void rowDots(float[] out, float[] x, int xo, float[] yt, int yo, int stride, int n, int d) {
        if (Simd.ENABLED) VectorTileOps.rowDots(out, x, xo, yt, yo, stride, n, d); else ScalarTileOps.rowDots(out, x, xo, yt, yo, stride, n, d);
    }

    // rowDots(out, x, xo, yt, ...) and rowDots(out2, x2, xo, yt2, ...) over the same n keys (the
    // backward's S from Kᵀ and dP from Vᵀ): each result bit for bit rowDots', both read in one pass
    static void rowDotsPair(float[] out, float[] x, float[] yt, float[] out2, float[] x2, float[] yt2, int xo,
                            int yo, int stride, int n, int d) {
        if (Simd.ENABLED) VectorTileOps.rowDotsPair(out, x, yt, out2, x2, yt2, xo, yo, stride, n, d);
        else {
            ScalarTileOps.rowDots(out, x, xo, yt, yo, stride, n, d);
            ScalarTileOps.rowDots(out2, x2, xo, yt2, yo, stride, n, d);
        }
    }

    /** x[j] = e^(x[j] − m) for j &lt; n; returns their sum (one query row's probabilities in the rows path). */
    static float expShift(float[] x, int n, float m) {
        return expShift(x, 0, n, m);
    }

    /** {@link #expShift(float[], int, float)} on x[xo..xo+n). */
    static float expShift(float[] x, int xo, int n, float m) {
        return Simd.ENABLED ? VectorTileOps.expShift(x, xo, n, m) : ScalarTileOps.expShift(x, xo, n, m);
    }

    // out[i·stride + j] = rowScores of query row i (q[i·d..]) against key j, for i < g, j < n: the G
    // query heads of a grouped-query decoding step over one key block, each key row read once for
    // all of them; per (row, key) bit for bit what rowScores gives
    static void groupScores(float[] out, int stride, float[] q, int g, float[] x, int[] xoff, int n, int d) {
        if (Simd.ENABLED) VectorTileOps.groupScores(out, stride, q, g, x, xoff, n, d); else ScalarTileOps.groupScores(out, stride, q, g, x, xoff, n, d);
    }

    // y[i·d..i·d+d) += Σ_j p[i·stride + j] · x row j for i < g: the P·V of those G rows, each value row
    // read once for all of them; per element bit for bit what Kernels.axpyRows gives
    static void groupAxpy(float[] p, int stride, int g, int n, float[] x, int[] xoff, float[] y, int d) {
        if (Simd.ENABLED) VectorTileOps.groupAxpy(p, stride, g, n, x, xoff, y, d); else ScalarTileOps.groupAxpy(p, stride, g, n, x, xoff, y, d);
    }

    // qt: [D][QB] = scale · x[rows xoff]ᵀ for the first n rows; 0 in the padding lanes
    static void gatherT(float[] qt, float[] x, int[] xoff, int n, int d, float scale) {
        if (Simd.ENABLED) VectorTileOps.gatherT(qt, x, xoff, n, d, scale); else ScalarTileOps.gatherT(qt, x, xoff, n, d, scale);
    }

    // o[rows ooff][c] = wa[i] · o[rows ooff][c] + wb[i] · ot[c][i] for the first n rows
    static void mergeT(float[] o, int[] ooff, int n, int d, float[] ot, float[] wa, float[] wb) {
        if (Simd.ENABLED) VectorTileOps.mergeT(o, ooff, n, d, ot, wa, wb); else ScalarTileOps.mergeT(o, ooff, n, d, ot, wa, wb);
    }

    // c: [nk][Dp] = a: [nk][QB] · b: [QB][Dp] over the query lanes [0, nq) (Dp and nq multiples of LANES; the lanes
    // at and after nq must hold zeros in a, so leaving them out changes no bit)
    static void rows(float[] c, float[] a, int nk, float[] b, int dp, int nq) {
        if (Simd.ENABLED) VectorTileOps.rows(c, a, nk, b, dp, nq); else ScalarTileOps.rows(c, a, nk, b, dp, nq);
    }

    // the query lanes the block kernels compute for a block of n rows: n rounded up to whole vectors, at most QB
    static int lanes(int n) {
        return Math.min(QB, (n + LANES - 1) / LANES * LANES);
    }
}
