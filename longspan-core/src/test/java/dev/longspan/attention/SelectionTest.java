package dev.longspan.attention;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;

/** Select-and-merge's query-aware region selection against its definition ({@link Pattern.SelectMerge}). */
class SelectionTest {

    static String spec(int region, int top, int merge, Pattern.RegionScore score) {
        return "selectmerge:region=" + region + ",top=" + top + ",merge=" + merge + ",score=" + score.name().toLowerCase();
    }

    /** The regions row p of head h selects, the obvious way: rank every region before its block in double. */
    static int[] naive(Pattern.RegionScore score, float[] q, float[] k, int heads, int kvHeads, int n, int d,
                       int region, int top, int merge, int h, int p) {
        int pick = top - merge;
        long blockRows = Math.min((long) merge * region, n);
        int cand = (int) (p / blockRows * blockRows / region);
        List<Integer> order = new ArrayList<>();
        for (int b = 0; b < cand; b++) order.add(b);
        if (cand > pick && pick > 0) {
            double[] s = AttentionReference.regionScores(score, q, k, heads, kvHeads, n, d, region, h, p, cand);
            order.sort(Comparator.<Integer>comparingDouble(b -> -s[b]).thenComparingInt(b -> b));
        }
        return order.subList(0, Math.min(pick, cand)).stream().mapToInt(Integer::intValue).sorted().toArray();
    }

    @ParameterizedTest
    @CsvSource({"1,1,128,4,4,6,2", "2,1,96,3,2,5,1", "4,2,200,5,8,7,3", "3,3,64,6,1,4,1", "2,2,70,2,4,3,3"})
    void exactDataSelectsExactlyTheDefinition(int heads, int kvHeads, int n, int d, int region, int top, int merge) {
        // small integers and a power-of-two region: summaries and scores are exact in float and
        // double, so scores tie often and exactly; the engine must pick what the definition picks
        for (Pattern.RegionScore score : Pattern.RegionScore.values()) {
            SplittableRandom r = new SplittableRandom(n * 7L + d);
            float[] q = new float[heads * n * d], k = new float[kvHeads * n * d];
            for (int i = 0; i < q.length; i++) q[i] = r.nextInt(5) - 2;
            for (int i = 0; i < k.length; i++) k[i] = r.nextInt(3) - 1;
            String spec = spec(region, top, merge, score);
            AttentionResult res = Attention.forward(q, k, new float[k.length], heads, kvHeads, n, d, Pattern.parse(spec), AttentionOptions.DEFAULT);
            for (int h = 0; h < heads; h++)
                for (int p = 0; p < n; p++) {
                    assertThat(res.plan().selection(0, h, p)).as(spec + " head " + h + " row " + p)
                            .containsExactly(naive(score, q, k, heads, kvHeads, n, d, region, top, merge, h, p));
                }
        }
    }

    @ParameterizedTest
    @CsvSource({"1,1,300,8,4,12,3", "2,1,301,5,3,9,4", "3,3,257,16,1,70,1", "4,2,1000,12,7,20,5", "1,1,200,3,16,5,2", "2,2,150,7,5,6,6"})
    void randomSelectionIsABestChoice(int heads, int kvHeads, int n, int d, int region, int top, int merge) {
        for (Pattern.RegionScore score : Pattern.RegionScore.values()) {
            SplittableRandom r = new SplittableRandom(n * 31L + d);
            float[] q = AttentionTest.random(r, heads * n * d, 1), k = AttentionTest.random(r, kvHeads * n * d, 1);
            AttentionResult res = Attention.forward(q, k, new float[k.length], heads, kvHeads, n, d,
                    Pattern.parse(spec(region, top, merge, score)), AttentionOptions.DEFAULT);
            // the reference checks every row's choice against scores from the definition (it throws if one is not a best choice)
            int[][] counts = AttentionReference.counts(res.plan(), q, k, d);
            for (int h = 0; h < heads; h++) {
                long blockRows = Math.min((long) merge * region, n);
                for (int p = 0; p < n; p++) {
                    long start = p / blockRows * blockRows;
                    for (int key = 0; key < n; key++) {
                        int c = counts[h][p * n + key];
                        if (key > p) assertThat(c).isZero();                 // causal
                        else if (key >= start) assertThat(c).isOne();         // own block in full
                    }
                }
            }
        }
    }

    @Test
    void noBlindZoneWhenEveryRegionFits() {
        // top − merge at least the number of regions: every earlier region is selected, which is
        // exactly causal attention, at every length (whole blocks, a partial last region)
        for (int n : new int[]{1, 7, 12, 50, 64, 65}) {
            SplittableRandom r = new SplittableRandom(n);
            float[] q = AttentionTest.random(r, 2 * n * 3, 1), k = AttentionTest.random(r, 2 * n * 3, 1);
            AttentionResult res = Attention.forward(q, k, new float[k.length], 2, 2, n, 3,
                    Pattern.parse("selectmerge:region=3,top=40,merge=2"), AttentionOptions.DEFAULT);
            assertThat(res.plan().pairs()).isEqualTo(2L * n * (n + 1) / 2);
        }
    }

    @Test
    void theQueryOfEachRowFindsTheNeedleThatMeansHide() {
        // one key in region 3 matches the query; the others of its region point away, and region 1's
        // keys lean mildly towards the query. The mean ranks region 1 first; bound and max find the needle.
        int n = 40, d = 2, region = 4;
        float[] q = new float[n * d], k = new float[n * d];
        for (int p = 0; p < n; p++) {
            q[p * d] = 1f;
            k[p * d + 1] = 1f;                            // neutral
        }
        for (int p = 4; p < 8; p++) k[p * d] = 0.5f;     // region 1: a mild lean
        k[13 * d] = 5f;                                  // the needle, in region 3
        for (int p : new int[]{12, 14, 15}) k[p * d] = -3f;
        for (Pattern.RegionScore score : Pattern.RegionScore.values()) {
            AttentionResult res = Attention.forward(q, k, new float[k.length], 1, 1, n, d,
                    Pattern.parse(spec(region, 2, 1, score)), AttentionOptions.DEFAULT);
            int[] chosen = res.plan().selection(0, 0, n - 1);
            assertThat(chosen).as(score.name()).containsExactly(score == Pattern.RegionScore.MEAN ? 1 : 3);
        }
    }

    @ParameterizedTest
    @EnumSource(Pattern.RegionScore.class)
    void laterTokensDoNotChangeEarlierOutputs(Pattern.RegionScore score) {
        int heads = 4, kvHeads = 2, n = 157, d = 9, cut = 101;
        SplittableRandom r = new SplittableRandom(5);
        float[] q = AttentionTest.random(r, heads * n * d, 1.5), k = AttentionTest.random(r, kvHeads * n * d, 1.5), v = AttentionTest.random(r, kvHeads * n * d, 1);
        Pattern pattern = Pattern.parse(spec(5, 5, 2, score));
        AttentionResult a = Attention.forward(q, k, v, heads, kvHeads, n, d, pattern, AttentionOptions.DEFAULT);
        float[] q2 = q.clone(), k2 = k.clone(), v2 = v.clone();
        for (int p = cut; p < n; p++) {
            for (int h = 0; h < heads; h++) for (int c = 0; c < d; c++) q2[(h * n + p) * d + c] += (float) r.nextDouble(-3, 3);
            for (int h = 0; h < kvHeads; h++) for (int c = 0; c < d; c++) {
                k2[(h * n + p) * d + c] += (float) r.nextDouble(-3, 3);
                v2[(h * n + p) * d + c] += (float) r.nextDouble(-3, 3);
            }
        }
        AttentionResult b = Attention.forward(q2, k2, v2, heads, kvHeads, n, d, pattern, AttentionOptions.DEFAULT);
        for (int h = 0; h < heads; h++)
            for (int p = 0; p < n; p++) {
                int o = (h * n + p) * d;
                float[] ra = java.util.Arrays.copyOfRange(a.o(), o, o + d), rb = java.util.Arrays.copyOfRange(b.o(), o, o + d);
                if (p < cut) assertThat(rb).as("head " + h + " row " + p).containsExactly(ra);
            }
        assertThat(java.util.Arrays.equals(a.o(), b.o())).isFalse();
    }

    @Test
    void shortSequencesAreExactAttention() {
        // N within the first own block: no candidates, the whole layer is one causal block
        float[] q = new float[32], k = new float[32];
        AttentionResult res = Attention.forward(q, k, new float[32], 1, 1, 32, 1,
                Pattern.parse("selectmerge:region=4,top=8,merge=8"), AttentionOptions.DEFAULT);
        assertThat(res.plan().pairs()).isEqualTo(32L * 33 / 2);
        assertThat(res.plan().selection(0, 0, 31)).isEmpty();
    }
}
