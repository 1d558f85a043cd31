package dev.longspan.attention;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Arrays;
import java.util.SplittableRandom;

import static dev.longspan.attention.TileOps.QB;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/**
 * The row-by-row paths against the transposed block paths on the same tile: forward, the same
 * running max, sum and unnormalised output for every row; backward, the same dQ, dK and dV. With
 * gathered keys, gathered query rows and bands that cut the key range differently for each row
 * (including rows that see no key).
 */
class FlashKernelTest {

    @ParameterizedTest(name = "n={0} d={1} band=[{2},{3}] keys={4}")
    @CsvSource({
            "1, 64, 0, 1000000, 300",
            "1, 17, 0, 1000000, 70",
            "3, 7, 0, 40, 300",
            "5, 33, 3, 90, 200",
            "2, 1, -50, 50, 130",
            "4, 16, 0, 0, 300",
            "6, 3, 500, 600, 150",      // every row sees no key
    })
    void rowPathEqualsBlockPath(int n, int d, long lo, long hi, int keys) {
        int seq = 400, heads = 2;
        FlashKernel.Problem p = problem(n, d, seq, heads);
        Tile t = tile(n, lo, hi, keys);

        FlashKernel.Scratch a = new FlashKernel.Scratch(d), b = new FlashKernel.Scratch(d);
        FlashKernel.gatherQueries(p, a, t, 1, 0, n);
        FlashKernel.forwardRows(p, a, t, 1, n);
        FlashKernel.gatherQueries(p, b, t, 1, 0, n);
        FlashKernel.forwardBlock(p, b, t, 1, n);
        for (int i = 0; i < n; i++) {
            assertThat(a.l[i]).as("l[" + i + "]").isCloseTo(b.l[i], within(1e-5f * (1 + b.l[i])));
            if (b.l[i] == 0f) continue;                 // no key: m is not used
            assertThat(a.m[i]).as("m[" + i + "]").isCloseTo(b.m[i], within(1e-5f * (1 + Math.abs(b.m[i]))));
            for (int c = 0; c < d; c++) {
                float x = b.ot[c * QB + i];
                assertThat(a.ot[c * QB + i]).as("ot[" + c + "][" + i + "]").isCloseTo(x, within(1e-4f * (1 + Math.abs(x))));
            }
        }

        // backward with this forward's LSE: the row path (backwardBlock on a block of few rows)
        // leaves the block's setup in the scratch, on which the transposed walk then runs again
        p.lse = new float[heads * seq];
        for (int i = 0; i < n; i++) p.lse[seq + b.qpos[i]] = b.l[i] == 0f ? Float.NEGATIVE_INFINITY : b.m[i] + (float) Math.log(b.l[i]);
        int rows = Math.min(n, FlashKernel.ROW_BLOCK_MAX);
        float[] dk1 = new float[seq * d], dv1 = new float[seq * d], dk2 = new float[seq * d], dv2 = new float[seq * d];
        FlashKernel.backwardBlock(p, a, t, 1, 0, rows, false, dk1, dv1, 0);
        float[] dqRows = a.dqt.clone();
        Arrays.fill(a.dqt, 0f);
        FlashKernel.backwardKeys(p, a, t, 1, rows, dk2, dv2, 0);
        close(dqRows, a.dqt);
        close(dk1, dk2);
        close(dv1, dv2);
    }

    private static FlashKernel.Problem problem(int n, int d, int seq, int heads) {
        SplittableRandom r = new SplittableRandom(n * 31L + d);
        float[] q = TileOpsTest.random(r, heads * seq * d), k = TileOpsTest.random(r, seq * d), v = TileOpsTest.random(r, seq * d);
        FlashKernel.Problem p = new FlashKernel.Problem(q, k, v, heads, 1, seq, d, 0.7f);
        p.o = TileOpsTest.random(r, heads * seq * d);
        p.dO = TileOpsTest.random(r, heads * seq * d);
        p.dq = new float[heads * seq * d];
        return p;
    }

    private static Tile tile(int n, long lo, long hi, int keys) {
        Tile t = new Tile().band(lo, hi);
        int[] kb = t.keys.buffer(keys);
        for (int j = 0, pos = 0; j < keys; j++, pos += 1 + (j % 3 == 0 ? 1 : 0)) kb[j] = pos;   // gaps: a gathered list
        t.keys.list(keys);
        int[] qb = t.queries.buffer(n);
        for (int i = 0; i < n; i++) qb[i] = 120 + 37 * i;
        t.queries.list(n);
        return t;
    }

    private static void close(float[] a, float[] b) {
        for (int i = 0; i < a.length; i++) assertThat(a[i]).as("[" + i + "]").isCloseTo(b[i], within(1e-4f * (1 + Math.abs(b[i]))));
    }

    /** kT and vT hold column c of key position pos of head kvh at kvh·D·tk + c·tk + pos, for every element (row counts around the 16-row blocks and chunks). */
    @ParameterizedTest(name = "kvHeads={0} tk={1} d={2}")
    @CsvSource({"1, 1, 1", "1, 15, 8", "2, 17, 32", "3, 255, 7", "4, 257, 16", "2, 1000, 33", "1, 16, 63"})
    void transposedKeysAndValuesHoldEveryElement(int kvHeads, int tk, int d) {
        var r = new SplittableRandom(tk * 31L + d);
        float[] k = new float[kvHeads * tk * d], v = new float[kvHeads * tk * d];
        for (int i = 0; i < k.length; i++) {
            k[i] = (float) r.nextDouble(-1, 1);
            v[i] = (float) r.nextDouble(-1, 1);
        }
        var p = new FlashKernel.Problem(new float[kvHeads * tk * d], k, v, kvHeads, kvHeads, tk, d, 1f);
        p.transposeKeyValues();
        assertThat(p.kT).isNotNull();
        for (int h = 0; h < kvHeads; h++)
            for (int pos = 0; pos < tk; pos++)
                for (int c = 0; c < d; c++) {
                    assertThat(p.kT[p.kTOff(h, pos) + c * tk]).isEqualTo(k[p.kOff(h, pos) + c]);
                    assertThat(p.vT[p.kTOff(h, pos) + c * tk]).isEqualTo(v[p.kOff(h, pos) + c]);
                }
    }
}
