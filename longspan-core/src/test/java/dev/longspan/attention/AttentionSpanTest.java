package dev.longspan.attention;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/**
 * The engine with separate query and key spans ({@link Plan#of(Pattern, int, int, boolean, int, int, int, int, List)}):
 * a sequence cut into blocks of queries and blocks of keys, each (query block, key block) attended
 * on its own and merged by log-sum-exp ({@link Attention#merge}), gives the whole-sequence
 * forward; the backward of each block, given the merged O and LSE, adds up to the whole backward.
 */
class AttentionSpanTest {

    static Stream<Arguments> cases() {
        SplittableRandom r = new SplittableRandom(11);
        List<Arguments> out = new ArrayList<>();
        int[][] shapes = {{2, 1, 8}, {3, 3, 12}, {4, 2, 5}, {1, 1, 64}};
        for (int i = 0; i < 24; i++) {
            int[] s = shapes[i % shapes.length];
            int n = 20 + r.nextInt(140);
            out.add(Arguments.of(AttentionTest.randomSpec(r, n, true), s[0], s[1], n, s[2], r.nextLong()));
        }
        for (String spec : List.of("dense", "window:size=7", "block:size=9", "dilated:w=8,16;r=2,4;offsets=blocks+dense",
                "selectmerge:region=4,top=5,merge=2", "selectmerge:region=3,top=4,merge=1,score=max", "window:size=3+selectmerge:region=2,top=6,merge=3,score=mean",
                "selectmerge:region=4,top=5,merge=2,bias=-1.25", "selectmerge:region=4,top=4,merge=1,local=2,bias=-2"))
            out.add(Arguments.of(spec, 4, 2, 150, 8, (long) spec.hashCode()));
        return out.stream();
    }

    @ParameterizedTest(name = "{0} H={1} Hkv={2} N={3} D={4}")
    @MethodSource("cases")
    void blocksOfQueriesAndKeysMergeIntoTheWholeForwardAndBackward(String spec, int heads, int kvHeads, int n, int d, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        Pattern pattern = Pattern.parse(spec);
        float[] q = AttentionTest.random(r, heads * n * d, 1.5), k = AttentionTest.random(r, kvHeads * n * d, 1.5),
                v = AttentionTest.random(r, kvHeads * n * d, 1), dO = AttentionTest.random(r, heads * n * d, 1);
        AttentionResult whole = Attention.forward(q, k, v, heads, kvHeads, n, d, pattern, AttentionOptions.DEFAULT);
        AttentionGradients g = Attention.backward(whole, q, k, v, dO);
        // select-and-merge ranks by summaries of every key (a KV cache's, or a distributed run's, shared)
        List<RegionSummaries> summaries = RegionSummaries.forTerms(pattern, kvHeads, d);
        for (RegionSummaries s : summaries) s.append(k, n);
        int[] qCuts = cuts(r, n), kCuts = cuts(r, n);
        float[] dq = new float[heads * n * d], dk = new float[kvHeads * n * d], dv = new float[kvHeads * n * d];
        for (int a = 0; a + 1 < qCuts.length; a++) {
            int q0 = qCuts[a], tq = qCuts[a + 1] - q0;
            float[] qb = rows(q, heads, n, d, q0, tq), o = null, lse = null;
            List<Plan> plans = new ArrayList<>();
            for (int b = 0; b + 1 < kCuts.length; b++) {
                int k0 = kCuts[b], tk = kCuts[b + 1] - k0;
                Plan plan = Plan.of(pattern, heads, kvHeads, true, q0, tq, k0, tk, summaries);
                plans.add(plan);
                float[] ob = new float[heads * tq * d], lb = new float[heads * tq];
                Attention.forward(qb, KeyValues.of(rows(k, kvHeads, n, d, k0, tk), rows(v, kvHeads, n, d, k0, tk), k0, tk, d),
                        d, plan, AttentionOptions.DEFAULT, ob, lb);
                if (o == null) {
                    o = ob;
                    lse = lb;
                } else {
                    Attention.merge(o, lse, ob, lb, heads, tq, d);
                }
            }
            assertRows(o, whole.o(), heads, n, d, q0, tq, 1e-5f);
            assertRows(lse, whole.lse(), heads, n, 1, q0, tq, 1e-5f);
            // each key block's backward with the merged O and LSE: its share of dQ, and its keys' dK, dV
            float[] dOb = rows(dO, heads, n, d, q0, tq);
            for (int b = 0; b + 1 < kCuts.length; b++) {
                int k0 = kCuts[b], tk = kCuts[b + 1] - k0;
                Plan plan = plans.get(b);
                AttentionResult merged = new AttentionResult(o, lse, plan, heads, kvHeads, tq, d, AttentionOptions.DEFAULT.scaleFor(d), AttentionOptions.DEFAULT);
                AttentionGradients gb = Attention.backward(merged, qb, rows(k, kvHeads, n, d, k0, tk), rows(v, kvHeads, n, d, k0, tk), dOb);
                addRows(dq, gb.dq(), heads, n, d, q0, tq);
                addRows(dk, gb.dk(), kvHeads, n, d, k0, tk);
                addRows(dv, gb.dv(), kvHeads, n, d, k0, tk);
            }
        }
        assertRows(dq, g.dq(), heads, n, d, 0, n, 1e-4f);
        assertRows(dk, g.dk(), kvHeads, n, d, 0, n, 1e-4f);
        assertRows(dv, g.dv(), kvHeads, n, d, 0, n, 1e-4f);
    }

    @Test
    void mergeTakesTheOtherPartWhereOneReachesNothing() {
        float[] o = {1, 2, 0, 0}, lse = {0f, Float.NEGATIVE_INFINITY};
        Attention.merge(o, lse, new float[]{5, 6, 7, 8}, new float[]{Float.NEGATIVE_INFINITY, 1f}, 1, 2, 2);
        assertThat(o).containsExactly(1, 2, 7, 8);
        assertThat(lse).containsExactly(0f, 1f);
        float[] a = {1, 1}, la = {0f};
        Attention.merge(a, la, new float[]{3, 3}, new float[]{0f}, 1, 1, 2);   // equal weights: the mean
        assertThat(a[0]).isCloseTo(2f, within(1e-6f));
        assertThat(la[0]).isCloseTo((float) Math.log(2), within(1e-6f));
    }

    @Test
    void selectMergeWithKeysFromLaterThanZeroNeedsSummaries() {
        Pattern p = Pattern.parse("selectmerge:region=2,top=3,merge=1");
        Plan plan = Plan.of(p, 1, 1, true, 8, 4, 4, 8, null);
        float[] kv = new float[8 * 4];
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> Attention.forward(new float[16], KeyValues.of(kv, kv, 4, 8, 4), 4, plan,
                AttentionOptions.DEFAULT, new float[16], new float[4])).hasMessageContaining("summaries");
    }

    // random cut points 0 = c0 < c1 < ... < n (one to four blocks, some of one row)
    private static int[] cuts(SplittableRandom r, int n) {
        java.util.TreeSet<Integer> c = new java.util.TreeSet<>(List.of(0, n));
        int extra = r.nextInt(4);
        for (int i = 0; i < extra; i++) c.add(1 + r.nextInt(n - 1));
        if (r.nextBoolean()) c.add(n - 1);
        return c.stream().mapToInt(Integer::intValue).toArray();
    }

    // rows [from, from+count) of x [heads, n, d] as [heads, count, d]
    static float[] rows(float[] x, int heads, int n, int d, int from, int count) {
        float[] out = new float[heads * count * d];
        for (int h = 0; h < heads; h++) System.arraycopy(x, (h * n + from) * d, out, h * count * d, count * d);
        return out;
    }

    private static void addRows(float[] into, float[] part, int heads, int n, int d, int from, int count) {
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < count * d; i++) into[(h * n + from) * d + i] += part[h * count * d + i];
    }

    private static void assertRows(float[] got, float[] whole, int heads, int n, int d, int from, int count, float tol) {
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < count * d; i++) {
                float w = whole[(h * n + from) * d + i], x = got[h * count * d + i];
                if (w == Float.NEGATIVE_INFINITY) assertThat(x).as("head %d, entry %d", h, i).isEqualTo(w);
                else assertThat(x).as("head %d, entry %d", h, i).isCloseTo(w, within(tol * (1 + Math.abs(w))));
            }
    }
}
