package dev.longspan.attention;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;

/** Select-and-merge's region selection against a naive reimplementation of ALGORITHMS.md §4.2. */
class SelectionTest {

    /** The chosen regions of every (head, group), ascending, computed the obvious way in double. */
    static int[][][] naive(float[] q, float[] k, int heads, int kvHeads, int n, int d, int region, int top, int merge) {
        int regions = (n + region - 1) / region;
        int groups = regions > top ? (regions - top + merge - 1) / merge : 0;
        int pick = top - merge;
        int[][][] out = new int[heads][groups][];
        for (int h = 0; h < heads; h++) {
            int kv = h / (heads / kvHeads);
            double[][] qbar = means(q, h, n, d, region, regions), kbar = means(k, kv, n, d, region, regions);
            for (int g = 0; g < groups; g++) {
                int a0 = top + g * merge, a1 = Math.min(regions, a0 + merge);
                List<List<Integer>> ranked = new ArrayList<>();
                for (int a = a0; a < a1; a++) {
                    List<Integer> cand = new ArrayList<>();
                    for (int b = 0; b <= a - merge; b++) cand.add(b);
                    double[] qa = qbar[a];
                    cand.sort(Comparator.<Integer>comparingDouble(b -> -dot(qa, kbar[b])).thenComparingInt(b -> b));
                    ranked.add(cand.subList(0, Math.min(pick, cand.size())));
                }
                LinkedHashSet<Integer> merged = new LinkedHashSet<>();
                for (int rank = 0; rank < pick && merged.size() < pick; rank++)
                    for (List<Integer> member : ranked) {
                        if (rank < member.size() && merged.size() < pick) merged.add(member.get(rank));
                    }
                out[h][g] = merged.stream().mapToInt(Integer::intValue).sorted().toArray();
            }
        }
        return out;
    }

    static double[][] means(float[] x, int h, int n, int d, int region, int regions) {
        double[][] m = new double[regions][d];
        for (int a = 0; a < regions; a++) {
            int r0 = a * region, r1 = Math.min(n, r0 + region);
            for (int p = r0; p < r1; p++) for (int c = 0; c < d; c++) m[a][c] += x[(h * n + p) * d + c];
            for (int c = 0; c < d; c++) m[a][c] /= (r1 - r0);
        }
        return m;
    }

    static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) s += a[i] * b[i];
        return s;
    }

    static void check(float[] q, float[] k, int heads, int kvHeads, int n, int d, int region, int top, int merge) {
        String spec = "selectmerge:region=" + region + ",top=" + top + ",merge=" + merge;
        AttentionResult res = Attention.forward(q, k, new float[k.length], heads, kvHeads, n, d, Pattern.parse(spec), AttentionOptions.DEFAULT);
        int[][][] expect = naive(q, k, heads, kvHeads, n, d, region, top, merge);
        int groups = res.plan().selectionGroups(0);
        assertThat(groups).isEqualTo(expect.length == 0 ? 0 : expect[0].length);
        for (int h = 0; h < heads; h++)
            for (int g = 0; g < groups; g++) {
                int[] sel = res.plan().selection(0, h, g);
                assertThat(sel).as(spec + " N=" + n + " head " + h + " group " + g).containsExactly(expect[h][g]);
                int firstOwn = top + g * merge;
                for (int b : sel) assertThat(b).isLessThan(firstOwn);   // strictly in the past
            }
    }

    @ParameterizedTest
    @CsvSource({"1,1,300,8,4,12,3", "2,1,301,5,3,9,4", "3,3,257,16,1,70,1", "4,2,1000,12,7,20,5", "1,1,200,3,16,5,2", "2,2,150,7,5,6,6"})
    void randomSelectionMatchesTheNaiveDefinition(int heads, int kvHeads, int n, int d, int region, int top, int merge) {
        SplittableRandom r = new SplittableRandom(n * 31L + d);
        check(AttentionTest.random(r, heads * n * d, 1), AttentionTest.random(r, kvHeads * n * d, 1), heads, kvHeads, n, d, region, top, merge);
    }

    @Test
    void tiesBreakToTheLowerIndex() {
        // small integers and a power-of-two region (N a multiple of it, so no partial region):
        // means and dot products are exact in float and double, so scores tie often and exactly
        SplittableRandom r = new SplittableRandom(77);
        int heads = 2, n = 204, d = 3, region = 4;
        float[] q = new float[heads * n * d], k = new float[heads * n * d];
        for (int i = 0; i < q.length; i++) {
            q[i] = r.nextInt(3) - 1;
            k[i] = r.nextInt(2);
        }
        check(q, k, heads, heads, n, d, region, 9, 3);
        Arrays.fill(k, 1f);   // every score equal: every member picks the lowest indices
        AttentionResult res = Attention.forward(q, k, new float[k.length], heads, heads, n, d,
                Pattern.parse("selectmerge:region=4,top=9,merge=3"), AttentionOptions.DEFAULT);
        assertThat(res.plan().selection(0, 1, 5)).containsExactly(0, 1, 2, 3, 4, 5);
        check(q, k, heads, heads, n, d, region, 9, 3);
    }

    @Test
    void shortSequencesAreExactAttention() {
        // N ≤ T·R: no groups, the whole layer is the front block
        Plan plan = Plan.of(Pattern.parse("selectmerge:region=4,top=8,merge=2"), 32, 1, 1, true);
        assertThat(plan.pairs()).isEqualTo(32L * 33 / 2);
        assertThat(plan.selectionGroups(0)).isZero();
    }
}
