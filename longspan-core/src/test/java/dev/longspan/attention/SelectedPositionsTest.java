package dev.longspan.attention;

import dev.longspan.position.Rope;
import dev.longspan.position.RopeConfig;
import dev.longspan.position.SelectedRope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static dev.longspan.attention.AttentionTest.assertClose;
import static dev.longspan.attention.AttentionTest.random;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Select-and-merge with {@code pos=selected}: the engine gets q and k rotated at their own
 * positions and moves the selected rows in the kernel; the reference renumbers the gathered rows
 * with {@link SelectedRope} (an independent statement of the rule), rotates the raw vectors at the
 * new positions and attends in double.
 */
class SelectedPositionsTest {

    static SelectedPositions positionsOf(Rope rope) {
        return dev.longspan.model.RopePositions.of(rope, i -> i);
    }

    record Run(AttentionResult res, float[] qr, float[] kr, float[] v) {}

    static Run engine(Pattern p, Rope rope, float[] q, float[] k, float[] v, int H, int Hkv, int N, int D) {
        float[] qr = q.clone(), kr = k.clone();
        rope.forward(qr, 0, H, N, 0L);
        rope.forward(kr, 0, Hkv, N, 0L);
        Plan plan = Plan.of(p, N, H, Hkv, true).selectedPositions(positionsOf(rope));
        AttentionResult res = Attention.forward(qr, kr, v, D, plan, AttentionOptions.DEFAULT, new float[H * N * D], new float[H * N]);
        return new Run(res, qr, kr, v);
    }

    /**
     * Queries that share one direction and two regions of keys aligned with it: every row of a
     * block chooses the same regions, so tiles are long runs (the kernel's block path), not rows.
     */
    static void focus(float[] q, float[] k, int H, int Hkv, int N, int D, int region) {
        for (int h = 0; h < H; h++) for (int p = 0; p < N; p++) for (int c = 0; c < D; c++) q[(h * N + p) * D + c] = q[(h * N + p) * D + c] * 0.1f + (c % 3 == 0 ? 1f : 0f);
        for (int h = 0; h < Hkv; h++) for (int reg : new int[]{1, 4}) for (int j = 0; j < region; j++)
            for (int c = 0; c < D; c += 3) k[(h * N + reg * region + j) * D + c] += 2f;
    }

    @ParameterizedTest(name = "{0} | {1} | N={2} H={3}/{4} D={5} focused={6}")
    @CsvSource(delimiter = '|', value = {
            "selectmerge:region=16,top=3,merge=2,pos=selected | kind=crd-ntk,base=10000,dim=16,period=40,offset=0 | 400 | 2 | 1 | 16 | true",
            "selectmerge:region=8,top=4,merge=3,score=max,pos=selected | kind=rope,base=10000,dim=8,pairing=interleaved | 333 | 2 | 2 | 8 | true",
            "selectmerge:region=16,top=4,merge=1,pos=selected | kind=rope,base=10000,dim=8 | 173 | 4 | 2 | 8 | false",
            "selectmerge:region=8,top=5,merge=2,score=max,pos=selected | kind=crd-ntk,base=10000,dim=12,rot=8,pairing=interleaved,period=44,offset=0 | 300 | 3 | 3 | 12 | false",
            "selectmerge:region=4,top=6,merge=1,score=mean,pos=selected | kind=ntk,base=10000,factor=4,dim=16 | 257 | 2 | 1 | 16 | false",
            "window:size=5+selectmerge:region=4,top=4,merge=1,pos=selected | kind=crd-ntk,base=500,dim=8,period=10,offset=0 | 211 | 4 | 2 | 8 | false",
            "selectmerge:region=5,top=3,merge=1,beam=all,pos=selected | kind=yarn,base=10000,factor=4,orig=64,dim=64 | 190 | 2 | 2 | 64 | false"})
    void forwardMatchesRenumberedReference(String spec, String ropeSpec, int N, int H, int Hkv, int D, boolean focused) {
        SplittableRandom r = new SplittableRandom(spec.hashCode() ^ N);
        Pattern p = Pattern.parse(spec);
        Rope rope = new Rope(RopeConfig.fromSpec(ropeSpec));
        float[] q = random(r, H * N * D, 1.2), k = random(r, Hkv * N * D, 1.2), v = random(r, Hkv * N * D, 1);
        if (focused) focus(q, k, H, Hkv, N, D, ((Pattern.SelectMerge) p).region());
        Run run = engine(p, rope, q, k, v, H, Hkv, N, D);
        if (focused) {   // long runs of rows with one choice (past the first blocks, where every region is taken)
            int same = 0;
            for (int pos = N / 2; pos < N; pos++)
                if (java.util.Arrays.equals(run.res.plan().selection(0, 0, pos), run.res.plan().selection(0, 0, pos - 1))) same++;
            assertThat(same).isGreaterThan(N / 2 * 7 / 10);
        }
        double[][] ref = reference(run.res.plan(), p, rope, q, k, v, H, Hkv, N, D);
        assertClose(run.res.o(), ref[0], 1e-4, "o");
        for (int i = 0; i < H * N; i++)
            assertThat((double) run.res.lse()[i]).as("lse[" + i + "]").isCloseTo(ref[1][i], org.assertj.core.data.Offset.offset(1e-4 * (1 + Math.abs(ref[1][i]))));
        // and positions really moved: the same selection at original positions gives another output
        Pattern original = Pattern.parse(spec.replace(",pos=selected", ""));
        AttentionResult same = Attention.forward(run.qr, run.kr, v, H, Hkv, N, D, original, AttentionOptions.DEFAULT);
        double diff = 0;
        for (int i = 0; i < same.o().length; i++) diff = Math.max(diff, Math.abs(same.o()[i] - run.res.o()[i]));
        assertThat(diff).isGreaterThan(1e-3);
    }

    @Test
    void noRowMovesWhileEveryEarlierRegionIsSelected() {
        SplittableRandom r = new SplittableRandom(4);
        int H = 2, N = 40, D = 8;   // region 4, top 12, merge 2: at most 10 earlier regions, all taken
        Rope rope = new Rope(RopeConfig.fromSpec("kind=crd-ntk,base=10000,dim=8,period=7,offset=0"));
        float[] q = random(r, H * N * D, 1), k = random(r, H * N * D, 1), v = random(r, H * N * D, 1);
        Run moved = engine(Pattern.parse("selectmerge:region=4,top=12,merge=2,pos=selected"), rope, q, k, v, H, H, N, D);
        // (pos=selected keeps its runs; plain select-and-merge over many rows splits them unless told not to)
        Plan runs = Plan.of(Pattern.parse("selectmerge:region=4,top=12,merge=2"), N, H, H, true).keepRuns();
        AttentionResult plain = Attention.forward(moved.qr, moved.kr, v, D, runs, AttentionOptions.DEFAULT, new float[H * N * D], new float[H * N]);
        assertThat(moved.res.o()).containsExactly(plain.o());
        assertThat(moved.res.lse()).containsExactly(plain.lse());
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "selectmerge:region=4,top=3,merge=1,pos=selected | kind=crd-ntk,base=10000,dim=6,period=9,offset=0 | 70 | 2 | 1 | 6 | false",
            "selectmerge:region=16,top=3,merge=2,pos=selected | kind=crd-ntk,base=10000,dim=8,period=40,offset=0 | 150 | 2 | 1 | 8 | true",
            "window:size=3+selectmerge:region=3,top=4,merge=2,score=max,pos=selected | kind=rope,base=100,dim=8,pairing=interleaved | 61 | 2 | 2 | 8 | false"})
    void gradientsMatchFiniteDifferences(String spec, String ropeSpec, int N, int H, int Hkv, int D, boolean focused) {
        // the selection is not differentiated (a small step can flip it): finite differences of the
        // double reference with the engine's selection fixed, with respect to q and k before RoPE
        SplittableRandom r = new SplittableRandom(spec.hashCode());
        Pattern p = Pattern.parse(spec);
        Rope rope = new Rope(RopeConfig.fromSpec(ropeSpec));
        float[] q = random(r, H * N * D, 1), k = random(r, Hkv * N * D, 1), v = random(r, Hkv * N * D, 1), dO = random(r, H * N * D, 1);
        if (focused) focus(q, k, H, Hkv, N, D, ((Pattern.SelectMerge) p).region());
        Run run = engine(p, rope, q, k, v, H, Hkv, N, D);
        AttentionGradients g = Attention.backward(run.res, run.qr, run.kr, v, dO);
        float[] dq = g.dq().clone(), dk = g.dk().clone();
        rope.backward(dq, 0, H, N, 0L);
        rope.backward(dk, 0, Hkv, N, 0L);
        Plan plan = run.res.plan();
        float[][] inputs = {q, k, v};
        float[][] grads = {dq, dk, g.dv()};
        SplittableRandom pick = new SplittableRandom(1);
        for (int t = 0; t < 3; t++) {
            for (int trial = 0; trial < 16; trial++) {
                float[] x = inputs[t];
                int i = pick.nextInt(x.length);
                float keep = x[i], xp = keep + 1e-3f, xm = keep - 1e-3f;
                x[i] = xp;
                double lp = AttentionTest.loss(reference(plan, p, rope, q, k, v, H, Hkv, N, D)[0], dO);
                x[i] = xm;
                double lm = AttentionTest.loss(reference(plan, p, rope, q, k, v, H, Hkv, N, D)[0], dO);
                x[i] = keep;
                double fd = (lp - lm) / ((double) xp - xm);
                assertThat((double) grads[t][i]).as(spec + " input " + t + "[" + i + "]").isCloseTo(fd, org.assertj.core.data.Offset.offset(1e-3 + 1e-2 * Math.abs(fd)));
            }
        }
    }

    /** The rotator's cache of recent shifts gives the rotation a fresh rotator computes, bit for bit, through colliding and repeated shifts. */
    @Test
    void cachedRotationsAreTheComputedOnes() {
        int d = 32;
        SelectedPositions sp = GroupedRowsTest.positions(x -> x, d);
        SelectedPositions.Rotator cached = new SelectedPositions.Rotator(sp);
        SplittableRandom r = new SplittableRandom(5);
        float[] x0 = AttentionTest.random(r, d, 1);
        for (int t = 0; t < 5000; t++) {
            // multiples of 64 (what regions move by) and arbitrary shifts, many repeated, many sharing a slot
            long delta = t % 3 == 0 ? r.nextLong(-300, 300) * 64 : r.nextLong(-5000, 5000);
            float[] a = x0.clone(), b = x0.clone();
            cached.set(delta).apply(a, 0, 1, t % 2 == 0);
            new SelectedPositions.Rotator(sp).set(delta).apply(b, 0, 1, t % 2 == 0);
            assertThat(a).as("delta %d", delta).isEqualTo(b);
        }
    }

    @Test
    void aPlanWithoutItsPositionsIsRefused() {
        int H = 1, N = 20, D = 4;
        float[] x = new float[H * N * D];
        Plan plan = Plan.of(Pattern.parse("selectmerge:region=2,top=3,merge=1,pos=selected"), N, H, H, true);
        assertThat(plan.movesPositions()).isTrue();
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> Attention.forward(x, x, x, D, plan, AttentionOptions.DEFAULT, new float[H * N * D], new float[H * N]))
                .hasMessageContaining("pos=selected");
    }

    /**
     * O and LSE in double: for each (head, query), the keys of every term with the positions that
     * term gives them (select-and-merge terms: renumbered by SelectedRope over the selected regions
     * and the own block; others: their own), raw q and k rotated there, one softmax over all.
     */
    static double[][] reference(Plan plan, Pattern p, Rope rope, float[] q, float[] k, float[] v, int H, int Hkv, int N, int D) {
        List<Pattern> terms = p instanceof Pattern.Sum s ? s.terms() : List.of(p);
        double scale = 1 / Math.sqrt(D);
        double[] o = new double[H * N * D], lse = new double[H * N];
        float[] qn = new float[D], kn = new float[D];
        for (int h = 0; h < H; h++) {
            int kvh = h / (H / Hkv);
            for (int pos = 0; pos < N; pos++) {
                List<double[]> entries = new ArrayList<>();   // {score, key row}
                int smTerm = 0;
                for (Pattern t : terms) {
                    int[] keys;
                    long[] keyPos;
                    long queryPos;
                    if (t instanceof Pattern.SelectMerge sm) {
                        int[] sel = plan.selection(smTerm++, h, pos);
                        int blockRows = sm.merge() * sm.region(), b0 = pos / blockRows * blockRows;
                        keys = new int[sel.length * sm.region() + pos - b0 + 1];
                        int c = 0;
                        for (int reg : sel) for (int j = 0; j < sm.region(); j++) keys[c++] = reg * sm.region() + j;
                        for (int j = b0; j <= pos; j++) keys[c++] = j;
                        keyPos = SelectedRope.keyPositions(keys);
                        queryPos = SelectedRope.queryPositions(keys, new int[]{pos})[0];
                    } else {
                        long lo = t instanceof Pattern.Window w ? Math.max(0, pos - w.size() + 1) : 0;
                        keys = new int[(int) (pos - lo + 1)];
                        keyPos = new long[keys.length];
                        for (int j = 0; j < keys.length; j++) keyPos[j] = keys[j] = (int) lo + j;
                        queryPos = pos;
                    }
                    System.arraycopy(q, (h * N + pos) * D, qn, 0, D);
                    rope.forwardRow(qn, 0, queryPos);
                    for (int j = 0; j < keys.length; j++) {
                        System.arraycopy(k, (kvh * N + keys[j]) * D, kn, 0, D);
                        rope.forwardRow(kn, 0, keyPos[j]);
                        double s = 0;
                        for (int c = 0; c < D; c++) s += (double) qn[c] * kn[c];
                        entries.add(new double[]{s * scale, keys[j]});
                    }
                }
                double mx = Double.NEGATIVE_INFINITY, sum = 0;
                for (double[] e : entries) mx = Math.max(mx, e[0]);
                for (double[] e : entries) sum += Math.exp(e[0] - mx);
                lse[h * N + pos] = mx + Math.log(sum);
                for (double[] e : entries) {
                    double w = Math.exp(e[0] - mx) / sum;
                    int kr = (int) e[1];
                    for (int c = 0; c < D; c++) o[(h * N + pos) * D + c] += w * v[(kvh * N + kr) * D + c];
                }
            }
        }
        return new double[][]{o, lse};
    }
}
