package dev.longspan.attention;

import dev.longspan.kernel.Simd;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.SplittableRandom;
import java.util.stream.Stream;

import static dev.longspan.attention.TileOps.BK;
import static dev.longspan.attention.TileOps.QB;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/**
 * The Vector API tile loops against their scalar twins, on odd sizes and tails, the two register
 * blocked products with each register tile ({@link Simd.Tiles}: both run on any machine).
 */
class TileOpsTest {

    static float[] random(SplittableRandom r, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) r.nextDouble(-1, 1);
        return x;
    }

    static void close(float[] a, float[] b) {
        assertThat(a).hasSameSizeAs(b);
        for (int i = 0; i < a.length; i++) {
            if (Float.isInfinite(b[i]) || Float.isNaN(b[i])) assertThat(a[i]).as("[" + i + "]").isEqualTo(b[i]);
            else assertThat(a[i]).as("[" + i + "]").isCloseTo(b[i], within(1e-5f * (1 + Math.abs(b[i]))));
        }
    }

    static Stream<Arguments> tileShapes() {
        // nk and d on both sides of every block edge: 6, 5 and 4 (the block sizes), 2 (the tails)
        int[][] shapes = {{1, 1}, {3, 5}, {4, 16}, {7, 33}, {64, 64}, {63, 17}, {5, 2}, {6, 6}, {13, 7}, {11, 128}, {2, 64}, {64, 11}, {5, 5}, {9, 13}};
        return Stream.of(shapes).flatMap(s -> Stream.of(Simd.Tiles.values()).map(t -> Arguments.of(s[0], s[1], t)));
    }

    @ParameterizedTest(name = "nk={0} d={1} {2}")
    @MethodSource("tileShapes")
    void vectorTwinsMatchScalar(int nk, int d, Simd.Tiles tiles) {
        Assumptions.assumeTrue(Simd.ENABLED, "Vector API not enabled");
        SplittableRandom r = new SplittableRandom(nk * 100L + d);
        int rows = 3 * nk + 5;
        float[] x = random(r, rows * d);
        int[] xoff = new int[BK];
        for (int j = 0; j < nk; j++) xoff[j] = r.nextInt(rows) * d;
        float[] yt = random(r, d * QB);

        float[] s1 = new float[BK * QB], s2 = new float[BK * QB];
        ScalarTileOps.scores(s1, x, xoff, nk, yt, d);
        VectorTileOps.scores(s2, x, xoff, nk, yt, d, tiles);
        close(s2, s1);

        float[] c1 = random(r, d * QB), c2 = c1.clone();
        ScalarTileOps.accumulate(c1, x, xoff, nk, s1, d);
        VectorTileOps.accumulate(c2, x, xoff, nk, s1, d, tiles);
        close(c2, c1);

        // online softmax with some masked entries and some rows that already saw keys
        float[] st = s1.clone();
        for (int i = 0; i < st.length; i += 7) st[i] = Float.NEGATIVE_INFINITY;
        float[] m1 = new float[QB], l1 = new float[QB];
        for (int i = 0; i < QB; i++) {
            m1[i] = i % 3 == 0 ? Float.NEGATIVE_INFINITY : (float) r.nextDouble(-1, 2);
            l1[i] = m1[i] == Float.NEGATIVE_INFINITY ? 0 : 1.5f;
        }
        float[] m2 = m1.clone(), l2 = l1.clone(), st2 = st.clone(), o1 = random(r, d * QB), o2 = o1.clone();
        ScalarTileOps.online(st, nk, m1, l1, o1, d, new float[3 * QB]);
        VectorTileOps.online(st2, nk, m2, l2, o2, d, new float[3 * QB]);
        close(st2, st);
        close(m2, m1);
        close(l2, l1);
        close(o2, o1);

        float[] lse = random(r, QB);
        for (int i = 0; i < QB; i++) lse[i] += (float) Math.sqrt(d) + 2;   // probabilities ≤ 1, as in the kernel
        lse[3] = Float.POSITIVE_INFINITY;
        float[] p1 = s1.clone(), p2 = s1.clone();
        ScalarTileOps.probs(p1, nk, lse, QB);
        VectorTileOps.probs(p2, nk, lse, QB);
        close(p2, p1);

        float[] delta = random(r, QB), d1 = random(r, BK * QB), d2 = d1.clone();
        ScalarTileOps.dsoft(d1, p1, nk, delta, QB);
        VectorTileOps.dsoft(d2, p1, nk, delta, QB);
        close(d2, d1);

        int dp = TileOps.paddedDim(d);
        float[] b = random(r, QB * dp), r1 = new float[BK * dp], r2 = new float[BK * dp];
        ScalarTileOps.rows(r1, p1, nk, b, dp, QB);
        VectorTileOps.rows(r2, p1, nk, b, dp, QB);
        close(r2, r1);
    }

    /**
     * The backward's lane-limited steps (a block of few rows computes only its first nq lanes): probs and dsoft
     * change exactly the lanes [0, nq) as the whole-block call does and leave the others as they were; rows over
     * nq lanes equals rows over all QB lanes bit for bit when the lanes from nq on hold zero probabilities.
     */
    static Stream<Arguments> laneShapes() {
        int[][] shapes = {{1, 1}, {7, 5}, {16, 64}, {33, 13}, {64, 63}, {128, 4}, {5, 2}};
        return Stream.of(shapes).map(s -> Arguments.of(s[0], s[1]));
    }

    @ParameterizedTest(name = "d={0} nk={1}")
    @MethodSource("laneShapes")
    void laneLimitedBackwardStepsMatchTheWholeBlock(int d, int nk) {
        var r = new SplittableRandom(31L * d + nk);
        int v = QB / TileOps.LANES;
        for (int vectors = 1; vectors <= v; vectors++) {
            int nq = vectors * TileOps.LANES;
            float[] s0 = random(r, BK * QB), lse = random(r, QB);
            for (int i = 0; i < QB; i++) lse[i] += (float) Math.sqrt(d) + 2;
            float[] whole = s0.clone(), part = s0.clone();
            TileOps.probs(whole, nk, lse, QB);
            TileOps.probs(part, nk, lse, nq);
            float[] dst0 = random(r, BK * QB), delta = random(r, QB), dWhole = dst0.clone(), dPart = dst0.clone();
            TileOps.dsoft(dWhole, whole, nk, delta, QB);
            TileOps.dsoft(dPart, whole, nk, delta, nq);
            for (int j = 0; j < nk; j++)
                for (int i = 0; i < QB; i++) {
                    int o = j * QB + i;
                    assertThat(part[o]).as("probs lane %d key %d", i, j).isEqualTo(i < nq ? whole[o] : s0[o]);
                    assertThat(dPart[o]).as("dsoft lane %d key %d", i, j).isEqualTo(i < nq ? dWhole[o] : dst0[o]);
                }
            float[] a = whole.clone();
            for (int j = 0; j < nk; j++) java.util.Arrays.fill(a, j * QB + nq, (j + 1) * QB, 0f);
            int dp = TileOps.paddedDim(d);
            float[] b = random(r, QB * dp), c1 = new float[BK * dp], c2 = new float[BK * dp];
            TileOps.rows(c1, a, nk, b, dp, QB);
            TileOps.rows(c2, a, nk, b, dp, nq);
            assertThat(c2).as("rows over %d lanes", nq).containsExactly(c1);
        }
    }

    /** Key ranges [j0, j1) and query vector ranges [v0, v1) of a block, with d on both sides of the 4-wide steps. */
    static Stream<Arguments> laneRanges() {
        int v = QB / TileOps.LANES;     // vectors per block (4 when vectorised, QB lanes when scalar)
        return Stream.of(
                Arguments.of(0, 16, 0, v, 64), Arguments.of(0, 16, 1, v, 64), Arguments.of(16, 32, 2, v, 33),
                Arguments.of(48, 64, v - 1, v, 16), Arguments.of(0, 16, 0, 1, 64), Arguments.of(16, 32, 0, 2, 7),
                Arguments.of(3, 10, 1, 3, 5), Arguments.of(60, 63, 0, 3, 2), Arguments.of(5, 6, 1, 2, 1),
                Arguments.of(0, 64, 0, v, 128), Arguments.of(32, 48, 1, 2, 11));
    }

    /**
     * The lane-range forms of scores and P·V (the key slices of a partial block) equal the whole-block
     * kernels bit for bit on their lanes (the same products in the same order: skipping the lanes a
     * slice cannot reach changes no result), leave every other lane as it was, and match the scalar twins.
     */
    @ParameterizedTest(name = "keys [{0},{1}) vectors [{2},{3}) d={4}")
    @MethodSource("laneRanges")
    void laneRangeKernelsMatchTheWholeBlock(int j0, int j1, int v0, int v1, int d) {
        SplittableRandom r = new SplittableRandom(j0 * 1000L + j1 * 100L + v0 * 10L + v1 + d);
        int q0 = v0 * TileOps.LANES, q1 = v1 * TileOps.LANES;
        int rows = 3 * BK;
        float[] x = random(r, rows * d);
        int[] xoff = new int[BK];
        for (int j = 0; j < BK; j++) xoff[j] = r.nextInt(rows) * d;
        float[] yt = random(r, d * QB);

        float[] whole = new float[BK * QB];
        TileOps.scores(whole, x, xoff, BK, yt, d);
        float[] before = random(r, BK * QB), part = before.clone(), scalar = before.clone();
        TileOps.scores(part, x, xoff, j0, j1, yt, d, q0, q1);
        ScalarTileOps.scores(scalar, x, xoff, j0, j1, yt, d, q0, q1);
        for (int j = 0; j < BK; j++)
            for (int i = 0; i < QB; i++) {
                int at = j * QB + i;
                boolean inside = j >= j0 && j < j1 && i >= q0 && i < q1;
                assertThat(part[at]).as("scores [%d][%d]", j, i).isEqualTo(inside ? whole[at] : before[at]);
            }
        close(part, scalar);

        float[] p = random(r, BK * QB), ct = random(r, d * QB);
        // the whole-block kernel over the same keys, with zero probabilities outside the lanes
        float[] pz = new float[BK * QB];
        for (int j = j0; j < j1; j++) System.arraycopy(p, j * QB + q0, pz, j * QB + q0, q1 - q0);
        int[] xs = java.util.Arrays.copyOfRange(xoff, j0, j1);
        float[] pShift = java.util.Arrays.copyOfRange(pz, j0 * QB, j1 * QB);
        float[] wholeC = ct.clone(), partC = ct.clone(), scalarC = ct.clone();
        TileOps.accumulate(wholeC, x, xs, j1 - j0, pShift, d);
        TileOps.accumulate(partC, x, xoff, j0, j1, p, d, q0, q1);
        ScalarTileOps.accumulate(scalarC, x, xoff, j0, j1, p, d, q0, q1);
        for (int c = 0; c < d; c++)
            for (int i = 0; i < QB; i++) {
                int at = c * QB + i;
                assertThat(partC[at]).as("P·V [%d][%d]", c, i).isEqualTo(i >= q0 && i < q1 ? wholeC[at] : ct[at]);
            }
        close(partC, scalarC);
    }

    /**
     * The online softmax of a cut tile on its slices' hulls only equals the whole-tile one bit for bit
     * (max, sum, rescaled output, and the probabilities inside the hulls: a masked entry adds an exact 0),
     * for causal and window tiles at several offsets and fills, and the vector and scalar twins agree.
     */
    @ParameterizedTest(name = "n={0} nk={1} shift={2} window={3}")
    @org.junit.jupiter.params.provider.CsvSource({"64,64,0,0", "64,64,10,0", "64,64,-20,0", "37,64,0,0", "64,50,3,0", "64,64,0,40", "64,64,-30,24", "5,64,0,0", "64,17,0,0"})
    void slicedOnlineEqualsTheWholeTile(int n, int nk, int shift, int window) {
        n = Math.min(n, QB);
        int d = 19;
        SplittableRandom r = new SplittableRandom(n * 31L + nk * 7L + shift + window);
        int[] qpos = new int[QB], kpos = new int[nk];
        for (int i = 0; i < QB; i++) qpos[i] = 1000 + Math.min(i, n - 1);
        for (int j = 0; j < nk; j++) kpos[j] = 1000 + j + shift;
        long lo = 0, hi = window == 0 ? Integer.MAX_VALUE : window;     // query q sees key k when k + lo <= q <= k + hi
        int slices = (nk + FlashKernel.SLICE - 1) / FlashKernel.SLICE;
        int[] hullLo = new int[slices], hullHi = new int[slices];
        FlashKernel.hulls(qpos, n, kpos, nk, lo, hi, hullLo, hullHi);
        float[] st = random(r, nk * QB);
        for (int j = 0; j < nk; j++)
            for (int i = 0; i < QB; i++) {
                st[j * QB + i] *= 8f;
                boolean visible = i < n && qpos[i] >= kpos[j] + lo && qpos[i] <= kpos[j] + hi;
                if (!visible) st[j * QB + i] = Float.NEGATIVE_INFINITY;
            }
        float[] m = random(r, QB), l = random(r, QB), ot = random(r, d * QB);
        for (int i = 0; i < QB; i++) {
            l[i] = Math.abs(l[i]) + 1f;
            if (i % 5 == 0) { m[i] = Float.NEGATIVE_INFINITY; l[i] = 0f; }   // rows that saw no key yet
        }
        float[] st1 = st.clone(), m1 = m.clone(), l1 = l.clone(), o1 = ot.clone();
        float[] st2 = st.clone(), m2 = m.clone(), l2 = l.clone(), o2 = ot.clone();
        float[] st3 = st.clone(), m3 = m.clone(), l3 = l.clone(), o3 = ot.clone();
        TileOps.online(st1, nk, m1, l1, o1, d, new float[3 * QB]);
        TileOps.online(st2, nk, m2, l2, o2, d, new float[3 * QB], FlashKernel.SLICE, hullLo, hullHi);
        ScalarTileOps.online(st3, nk, m3, l3, o3, d, new float[3 * QB], FlashKernel.SLICE, hullLo, hullHi);
        assertThat(m2).isEqualTo(m1);
        assertThat(l2).isEqualTo(l1);
        assertThat(o2).isEqualTo(o1);
        for (int j = 0; j < nk; j++) {
            int sl = j / FlashKernel.SLICE;
            for (int i = hullLo[sl]; i < hullHi[sl]; i++) assertThat(st2[j * QB + i]).as("p[%d][%d]", j, i).isEqualTo(st1[j * QB + i]);
        }
        close(m3, m2);
        close(l3, l2);
        close(o3, o2);
    }

    /** Block fills relative to the running QB (4 vectors: 16 floats at 128 bits, 32 at 256, 64 at 512). */
    static Stream<Arguments> blockFills() {
        return Stream.of(
                Arguments.of(1, 1),
                Arguments.of(1, 64),                 // decoding: one query row (the element-by-element path)
                Arguments.of(2, 64),
                Arguments.of(3, 8),
                Arguments.of(QB / 4, 5),
                Arguments.of(QB / 4 + 1, 64),
                Arguments.of(QB, 33),
                Arguments.of(QB - 1, 2),
                Arguments.of(QB * 5 / 8, 16),
                Arguments.of(QB, 64),                // whole tiles transposed in registers (gatherT, mergeT at 8 and 16 lanes)
                Arguments.of(QB, 128),
                Arguments.of(QB / 2, 47),
                Arguments.of(QB - 1, 64),            // partial last vectors of whole-tile head dimensions
                Arguments.of(QB * 5 / 8, 32),
                Arguments.of(QB / 4 + 7, 128),
                Arguments.of(QB * 5 / 8, 40));
    }

    @ParameterizedTest
    @MethodSource("blockFills")
    void gatherAndMergeTwinsMatchScalar(int n, int d) {
        Assumptions.assumeTrue(Simd.ENABLED, "Vector API not enabled");
        SplittableRandom r = new SplittableRandom(n * 7L + d);
        int rows = 2 * QB + 3;
        float[] x = random(r, rows * d);
        int[] off = new int[QB];
        // distinct rows (a scatter to one row twice would be ambiguous; blocks never repeat a row)
        java.util.List<Integer> perm = new java.util.ArrayList<>();
        for (int i = 0; i < rows; i++) perm.add(i);
        java.util.Collections.shuffle(perm, new java.util.Random(n));
        for (int i = 0; i < QB; i++) off[i] = perm.get(i) * d;
        float[] t1 = random(r, d * QB), t2 = t1.clone();
        ScalarTileOps.gatherT(t1, x, off, n, d, 0.37f);
        VectorTileOps.gatherT(t2, x, off, n, d, 0.37f);
        assertThat(t2).containsExactly(t1);

        float[] wa = random(r, QB), wb = random(r, QB), ot = random(r, d * QB);
        float[] o1 = x.clone(), o2 = x.clone();
        ScalarTileOps.mergeT(o1, off, n, d, ot, wa, wb);
        VectorTileOps.mergeT(o2, off, n, d, ot, wa, wb);
        close(o2, o1);
        for (int i = n; i < QB; i++)    // rows past n untouched
            for (int c = 0; c < d; c++) assertThat(o2[off[i] + c]).isEqualTo(x[off[i] + c]);

        // a first part (wa = 0 for every row: the vector path does not read the old rows back)
        java.util.Arrays.fill(wa, 0f);
        float[] o3 = x.clone(), o4 = x.clone();
        ScalarTileOps.mergeT(o3, off, n, d, ot, wa, wb);
        VectorTileOps.mergeT(o4, off, n, d, ot, wa, wb);
        close(o4, o3);
        for (int i = n; i < QB; i++)
            for (int c = 0; c < d; c++) assertThat(o4[off[i] + c]).isEqualTo(x[off[i] + c]);
    }

    /**
     * The softmax's vector e^x over its whole domain (x ≤ 0): within 2 ulp of Math.exp wherever the
     * result is normal, exactly 1 at 0 (a row's max), exactly 0 at or below -88 and for -inf (masked).
     */
    @org.junit.jupiter.api.Test
    void softmaxExpWithinTwoUlpOfMathExp() {
        int lanes = VectorTileOps.L, n = 1 << 20;
        float[] x = new float[lanes], y = new float[lanes];
        double worst = 0;
        for (int i = 0; i < n; i += lanes) {
            for (int l = 0; l < lanes; l++) x[l] = -87.3f * (i + l) / n;   // down to just above the smallest normal result
            VectorTileOps.exp(jdk.incubator.vector.FloatVector.fromArray(VectorTileOps.S, x, 0)).intoArray(y, 0);
            for (int l = 0; l < lanes; l++) {
                double ref = Math.exp(x[l]);
                worst = Math.max(worst, Math.abs(y[l] - ref) / Math.ulp((float) ref));
            }
        }
        assertThat(worst).as("max error in ulp").isLessThanOrEqualTo(2.0);
        float[] edges = {0f, -0f, -88f, -100f, -1e30f, Float.NEGATIVE_INFINITY};
        float[] want = {1f, 1f, 0f, 0f, 0f, 0f};
        for (int e = 0; e < edges.length; e++) {
            java.util.Arrays.fill(x, edges[e]);
            VectorTileOps.exp(jdk.incubator.vector.FloatVector.fromArray(VectorTileOps.S, x, 0)).intoArray(y, 0);
            assertThat(y[0]).as("e^%s", edges[e]).isEqualTo(want[e]);
        }
    }

    /** One row's probabilities (the rows path): the vector exp against Math.exp within a few ulp, and their sum. */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(ints = {1, 5, 16, 19, 64, 100})
    void expShiftMatchesMathExp(int n) {
        SplittableRandom r = new SplittableRandom(n);
        float[] x = random(r, n);
        for (int j = 0; j < n; j++) x[j] = x[j] * 30f;
        if (n > 3) x[3] = Float.NEGATIVE_INFINITY;   // a masked key
        float m = Float.NEGATIVE_INFINITY;
        for (float v : x) m = Math.max(m, v);
        float[] a = x.clone(), b = x.clone();
        float sa = TileOps.expShift(a, n, m), sb = ScalarTileOps.expShift(b, 0, n, m);
        for (int j = 0; j < n; j++) assertThat(a[j]).as("j=%d", j).isCloseTo(b[j], org.assertj.core.data.Offset.offset(Math.abs(b[j]) * 1e-6f + 1e-30f));
        assertThat(sa).isCloseTo(sb, org.assertj.core.data.Offset.offset(sb * 1e-5f));
        if (n > 3) assertThat(a[3]).isZero();
    }

    /** One row against rows held transposed (the backward's rows path): every key count around the vector blocks, any D, a stride wider than the keys. */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.CsvSource({"1,1", "3,8", "16,16", "17,5", "31,32", "64,32", "65,7", "100,64", "129,3"})
    void rowDotsMatchPlainLoop(int n, int d) {
        SplittableRandom r = new SplittableRandom(31L * n + d);
        int stride = n + 11, yo = 5;
        float[] x = random(r, d + 3), yt = random(r, yo + d * stride), out = new float[n + 2], want = new float[n];
        for (int j = 0; j < n; j++) {
            double acc = 0;
            for (int c = 0; c < d; c++) acc += (double) x[3 + c] * yt[yo + c * stride + j];
            want[j] = (float) acc;
        }
        out[n] = out[n + 1] = 42f;
        TileOps.rowDots(out, x, 3, yt, yo, stride, n, d);
        float[] scalar = new float[n];
        ScalarTileOps.rowDots(scalar, x, 3, yt, yo, stride, n, d);
        for (int j = 0; j < n; j++) {
            assertThat(out[j]).as("vector j=%d", j).isCloseTo(want[j], org.assertj.core.data.Offset.offset(1e-5f * d));
            assertThat(scalar[j]).as("scalar j=%d", j).isCloseTo(want[j], org.assertj.core.data.Offset.offset(1e-5f * d));
        }
        assertThat(out[n]).as("nothing written past n").isEqualTo(42f);
        assertThat(out[n + 1]).isEqualTo(42f);
    }

    /** rowDotsPair: both rows' dots over the same keys are exactly rowDots' bits, and nothing past n is written. */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.CsvSource({"1,1", "3,8", "16,16", "17,5", "31,32", "64,32", "65,7", "100,64", "129,3", "128,33"})
    void rowDotsPairIsTwoRowDotsBitForBit(int n, int d) {
        SplittableRandom r = new SplittableRandom(37L * n + d);
        int stride = n + 11, yo = 5;
        float[] x = random(r, d + 3), x2 = random(r, d + 3), yt = random(r, yo + d * stride), yt2 = random(r, yo + d * stride);
        float[] out = new float[n + 1], out2 = new float[n + 1], want = new float[n + 1], want2 = new float[n + 1];
        out[n] = out2[n] = want[n] = want2[n] = 42f;
        TileOps.rowDotsPair(out, x, yt, out2, x2, yt2, 3, yo, stride, n, d);
        TileOps.rowDots(want, x, 3, yt, yo, stride, n, d);
        TileOps.rowDots(want2, x2, 3, yt2, yo, stride, n, d);
        assertThat(out).isEqualTo(want);
        assertThat(out2).isEqualTo(want2);
    }

    /** rowScores: one query row against key rows at any offsets, the float64 dot within rounding, at every d around the vector widths. */
    @ParameterizedTest(name = "d={0}")
    @org.junit.jupiter.params.provider.ValueSource(ints = {1, 3, 7, 8, 15, 16, 17, 31, 32, 33, 48, 63, 64, 65, 100, 128, 129, 200})
    void rowScoresAreTheDotProducts(int d) {
        SplittableRandom r = new SplittableRandom(d * 7L + 1);
        for (int n : new int[]{0, 1, 5, BK}) {
            float[] q = new float[d + 3], x = new float[(BK + 2) * (d + 1)], out = new float[BK + 1];
            for (int i = 0; i < q.length; i++) q[i] = (float) r.nextDouble(-2, 2);
            for (int i = 0; i < x.length; i++) x[i] = (float) r.nextDouble(-2, 2);
            int[] xoff = new int[BK];
            for (int j = 0; j < n; j++) xoff[j] = r.nextInt(BK + 1) * (d + 1) + r.nextInt(2);
            java.util.Arrays.fill(out, Float.NaN);
            TileOps.rowScores(out, q, 2, x, xoff, n, d);
            for (int j = 0; j < n; j++) {
                double want = 0, abs = 0;
                for (int c = 0; c < d; c++) {
                    want += (double) q[2 + c] * x[xoff[j] + c];
                    abs += Math.abs((double) q[2 + c] * x[xoff[j] + c]);
                }
                assertThat((double) out[j]).as("n=%d j=%d", n, j).isCloseTo(want, within(1e-6 * abs + 1e-7));
            }
            assertThat(out[n]).as("nothing written past n").isNaN();
        }
    }

    /**
     * The grouped-query decode step's kernels: groupScores and groupAxpy give, row by row, exactly
     * the bits of rowScores and Kernels.axpyRows (the step must equal the per-head path), for odd
     * and even group sizes, key counts around the pairs and D around the vector widths.
     */
    @ParameterizedTest(name = "d={0}")
    @org.junit.jupiter.params.provider.ValueSource(ints = {1, 3, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 128, 129, 200, 256})
    void groupKernelsAreTheRowKernelsBitForBit(int d) {
        SplittableRandom r = new SplittableRandom(d * 13L + 5);
        for (int g : new int[]{1, 2, 3, 4, 5, 8}) {
            for (int n : new int[]{0, 1, 2, 7, BK}) {
                float[] q = new float[g * d], x = new float[(BK + 2) * (d + 1)];
                for (int i = 0; i < q.length; i++) q[i] = (float) r.nextDouble(-2, 2);
                for (int i = 0; i < x.length; i++) x[i] = (float) r.nextDouble(-2, 2);
                int[] xoff = new int[BK];
                for (int j = 0; j < n; j++) xoff[j] = r.nextInt(BK + 1) * (d + 1) + r.nextInt(2);
                float[] got = new float[g * BK + 1], row = new float[BK];
                java.util.Arrays.fill(got, Float.NaN);
                TileOps.groupScores(got, BK, q, g, x, xoff, n, d);
                for (int i = 0; i < g; i++) {
                    float[] qi = java.util.Arrays.copyOfRange(q, i * d, i * d + d);
                    TileOps.rowScores(row, qi, 0, x, xoff, n, d);
                    for (int j = 0; j < n; j++) assertThat(got[i * BK + j]).as("scores g=%d n=%d row %d key %d", g, n, i, j).isEqualTo(row[j]);
                    for (int j = n; j < BK; j++) assertThat(got[i * BK + j]).as("nothing written past n").isNaN();
                }
                float[] p = new float[g * BK], y = new float[g * d];
                for (int i = 0; i < p.length; i++) p[i] = (float) r.nextDouble(0, 1);
                for (int i = 0; i < y.length; i++) y[i] = (float) r.nextDouble(-1, 1);
                float[] want = y.clone();
                TileOps.groupAxpy(p, BK, g, n, x, xoff, y, d);
                for (int i = 0; i < g; i++) dev.longspan.kernel.Kernels.axpyRows(p, i * BK, n, x, xoff, want, i * d, d);
                assertThat(y).as("P·V g=%d n=%d", g, n).isEqualTo(want);
            }
        }
    }

    /**
     * The backward rows path's gradients: rowGradients gives exactly the bits of three
     * Kernels.axpy calls per key (dV, dK, dQ) at every D around the vector widths, for key counts
     * around the chunks, with keys and gradient rows at scattered offsets; nothing else is written.
     */
    @ParameterizedTest(name = "d={0}")
    @org.junit.jupiter.params.provider.ValueSource(ints = {1, 3, 4, 8, 15, 16, 17, 24, 31, 32, 33, 48, 63, 64, 65, 100, 128, 129})
    void rowGradientsAreThreeAxpysBitForBit(int d) {
        SplittableRandom r = new SplittableRandom(d * 31L + 7);
        for (int n : new int[]{0, 1, 2, 7, BK}) {
            int rows = BK + 3, ro = r.nextInt(3) * d + r.nextInt(2);
            float[] dO = new float[ro + d + 1], q = new float[ro + d + 1], k = new float[rows * (d + 1)];
            float[] dv = new float[rows * d + 1], dk = new float[rows * d + 1], dq = new float[d];
            for (float[] a : new float[][]{dO, q, k, dv, dk, dq}) for (int i = 0; i < a.length; i++) a[i] = (float) r.nextDouble(-2, 2);
            float[] p = new float[BK], ds = new float[BK];
            int[] koff = new int[BK], to = new int[BK];
            int[] order = java.util.stream.IntStream.range(0, rows).toArray();
            for (int i = rows - 1; i > 0; i--) { int j = r.nextInt(i + 1), x = order[i]; order[i] = order[j]; order[j] = x; }
            for (int j = 0; j < n; j++) {
                p[j] = (float) r.nextDouble(0, 1);
                ds[j] = (float) r.nextDouble(-1, 1);
                koff[j] = r.nextInt(rows) * (d + 1) + r.nextInt(2) * (j % 2);
                if (koff[j] + d > k.length) koff[j] = k.length - d;
                to[j] = order[j] * d;                          // distinct key rows, as in a tile
            }
            float[] wantV = dv.clone(), wantK = dk.clone(), wantQ = dq.clone();
            for (int j = 0; j < n; j++) {
                dev.longspan.kernel.Kernels.axpy(p[j], dO, ro, wantV, to[j], d);
                dev.longspan.kernel.Kernels.axpy(ds[j], q, ro, wantK, to[j], d);
                dev.longspan.kernel.Kernels.axpy(ds[j], k, koff[j], wantQ, 0, d);
            }
            TileOps.rowGradients(p, ds, n, dO, q, ro, k, koff, to, dv, dk, dq, d);
            assertThat(dv).as("dV n=%d", n).isEqualTo(wantV);
            assertThat(dk).as("dK n=%d", n).isEqualTo(wantK);
            assertThat(dq).as("dQ n=%d", n).isEqualTo(wantQ);
        }
    }

    /**
     * The decoding step's fused loop: rowScoresAxpy gives exactly the bits of rowScores for one key
     * block and Kernels.axpyRows for the block before, for more, fewer and as many value rows as
     * keys, at every D (fused where it is a whole number of vectors, up to eight; the two kernels
     * in turn elsewhere and in the scalar twin); the scores land at the offset and nowhere else.
     */
    @org.junit.jupiter.api.Test
    void fusedScoresAndPvAreTheTwoKernelsBitForBit() {
        SplittableRandom r = new SplittableRandom(77);
        int tested = 0;
        for (int d = 1; d <= 8 * TileOps.LANES + 1; d++) {
            if (TileOps.fusesScoresAndAxpy(d)) tested++;
            for (int[] nn : new int[][]{{0, 0}, {1, 0}, {0, 1}, {1, 1}, {5, 9}, {9, 5}, {BK, BK}, {BK, 3}, {2, BK}}) {
                int n = nn[0], nv = nn[1];
                float[] q = new float[d + 3], x = new float[(BK + 2) * (d + 1)], v = new float[(BK + 2) * (d + 1)];
                for (int i = 0; i < q.length; i++) q[i] = (float) r.nextDouble(-2, 2);
                for (int i = 0; i < x.length; i++) x[i] = (float) r.nextDouble(-2, 2);
                for (int i = 0; i < v.length; i++) v[i] = (float) r.nextDouble(-2, 2);
                int[] xoff = new int[BK], voff = new int[BK];
                for (int j = 0; j < BK; j++) {
                    xoff[j] = r.nextInt(BK + 1) * (d + 1) + r.nextInt(2);
                    voff[j] = r.nextInt(BK + 1) * (d + 1) + r.nextInt(2);
                }
                float[] p = new float[2 * BK];
                for (int i = 0; i < p.length; i++) p[i] = (float) r.nextDouble(0, 1);
                float[] y = new float[d + 4];
                for (int i = 0; i < y.length; i++) y[i] = (float) r.nextDouble(-1, 1);
                float[] out = new float[3 * BK], wantOut = new float[3 * BK], wantY = y.clone();
                java.util.Arrays.fill(out, Float.NaN);
                java.util.Arrays.fill(wantOut, Float.NaN);
                TileOps.rowScoresAxpy(out, BK, q, 2, x, xoff, n, p, 7, nv, v, voff, y, 3, d);
                TileOps.rowScores(wantOut, BK, q, 2, x, xoff, n, d);
                dev.longspan.kernel.Kernels.axpyRows(p, 7, nv, v, voff, wantY, 3, d);
                assertThat(out).as("scores d=%d n=%d nv=%d", d, n, nv).isEqualTo(wantOut);
                assertThat(y).as("P·V d=%d n=%d nv=%d", d, n, nv).isEqualTo(wantY);
            }
        }
        // scalar kernels fuse nothing (FlashKernel calls the two kernels); vector ones D = L..8L with
        // 32 registers, L..4L with 16
        assertThat(tested).isEqualTo(Simd.ENABLED ? Simd.VECTOR_REGISTERS / 4 : 0);
    }
}
