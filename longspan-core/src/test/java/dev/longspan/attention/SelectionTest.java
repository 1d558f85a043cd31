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
import static org.assertj.core.api.Assertions.within;

/** Select-and-merge's query-aware region selection against its definition ({@link Pattern.SelectMerge}). */
class SelectionTest {

    /** The selection rules: the three scores ranking every region, and bound's beam descents. */
    enum Rule {
        BOUND_ALL("bound,beam=all"), MAX("max"), MEAN("mean"), BOUND_BEAM("bound"), BOUND_WIDE_BEAM("bound,beam=9");

        final String score;

        Rule(String score) { this.score = score; }
    }

    static String spec(int region, int top, int merge, Rule rule) {
        return "selectmerge:region=" + region + ",top=" + top + ",merge=" + merge + ",score=" + rule.score;
    }

    static String spec(int region, int top, int merge, Pattern.RegionScore score) {
        return "selectmerge:region=" + region + ",top=" + top + ",merge=" + merge + ",score=" + score.name().toLowerCase();
    }

    /**
     * The regions row p of head h selects, the obvious way, in double: rank every region before its
     * block, or descend the tree level by level (Pattern.SelectMerge) keeping the beam best nodes.
     */
    static int[] naive(Pattern.SelectMerge s, float[] q, float[] k, int heads, int kvHeads, int n, int d, int h, int p) {
        int region = s.region(), pick = s.top() - s.merge();
        long blockRows = Math.min((long) s.merge() * region, n);
        int cand = (int) (p / blockRows * blockRows / region);
        List<Integer> order = new ArrayList<>();
        if (cand <= pick || pick == 0 || !s.descends()) {
            for (int b = 0; b < cand; b++) order.add(b);
            if (cand > pick && pick > 0) {
                double[] sc = AttentionReference.regionScores(s.score(), q, k, heads, kvHeads, n, d, region, h, p, cand);
                order.sort(Comparator.<Integer>comparingDouble(b -> -sc[b]).thenComparingInt(b -> b));
            }
        } else {
            int top = 0;
            while (cand >= 1 << (4 * (top + 1))) top++;
            int covered = 0;
            for (int l = top; l >= 0; l--) {
                int span = 1 << (4 * l), level = l;
                List<Integer> frontier = new ArrayList<>();
                for (int f : order) for (int j = 0; j < 16; j++) frontier.add(f + j * span);
                for (; covered + span <= cand; covered += span) frontier.add(covered);
                frontier.sort(Comparator.<Integer>comparingDouble(f -> -AttentionReference.nodeBound(q, k, heads, kvHeads, n, d, region, h, p, level, f)[0])
                        .thenComparingInt(f -> f));
                order = new ArrayList<>(frontier.subList(0, Math.min(frontier.size(), l == 0 ? pick : s.beam())));
            }
        }
        return order.subList(0, Math.min(pick, order.size())).stream().mapToInt(Integer::intValue).sorted().toArray();
    }

    @ParameterizedTest
    @CsvSource({"1,1,128,4,4,6,2", "2,1,96,3,2,5,1", "4,2,200,5,8,7,3", "3,3,64,6,1,4,1", "2,2,70,2,4,3,3", "1,1,700,3,1,4,1"})
    void exactDataSelectsExactlyTheDefinition(int heads, int kvHeads, int n, int d, int region, int top, int merge) {
        // small integers and a power-of-two region: summaries and scores are exact in float and
        // double, so scores tie often and exactly; the engine must pick what the definition picks
        // (700 regions of one token: two tree levels under the descent)
        for (Rule rule : Rule.values()) {
            if (rule == Rule.BOUND_WIDE_BEAM && top - merge > 9) continue;
            SplittableRandom r = new SplittableRandom(n * 7L + d);
            float[] q = new float[heads * n * d], k = new float[kvHeads * n * d];
            for (int i = 0; i < q.length; i++) q[i] = r.nextInt(5) - 2;
            for (int i = 0; i < k.length; i++) k[i] = r.nextInt(3) - 1;
            String spec = spec(region, top, merge, rule);
            Pattern.SelectMerge sm = (Pattern.SelectMerge) Pattern.parse(spec);
            AttentionResult res = Attention.forward(q, k, new float[k.length], heads, kvHeads, n, d, sm, AttentionOptions.DEFAULT);
            for (int h = 0; h < heads; h++)
                for (int p = 0; p < n; p++) {
                    assertThat(res.plan().selection(0, h, p)).as(spec + " head " + h + " row " + p)
                            .containsExactly(naive(sm, q, k, heads, kvHeads, n, d, h, p));
                }
        }
    }

    @ParameterizedTest
    @CsvSource({"1,1,300,8,4,12,3", "2,1,301,5,3,9,4", "3,3,257,16,1,70,1", "4,2,1000,12,7,20,5", "1,1,200,3,16,5,2", "2,2,150,7,5,6,6",
            "1,1,900,6,1,5,1"})
    void randomSelectionIsABestChoice(int heads, int kvHeads, int n, int d, int region, int top, int merge) {
        for (Rule rule : Rule.values()) {
            if (rule == Rule.BOUND_WIDE_BEAM && top - merge > 9) continue;
            SplittableRandom r = new SplittableRandom(n * 31L + d);
            float[] q = AttentionTest.random(r, heads * n * d, 1), k = AttentionTest.random(r, kvHeads * n * d, 1);
            AttentionResult res = Attention.forward(q, k, new float[k.length], heads, kvHeads, n, d,
                    Pattern.parse(spec(region, top, merge, rule)), AttentionOptions.DEFAULT);
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

    @ParameterizedTest
    @EnumSource(Rule.class)
    void summariesAppendedInChunksSelectLikeTheWhole(Rule rule) {
        // decoding appends keys as they arrive; the tree's nodes (two levels at 600 regions) and the
        // choices must not depend on the chunking
        int kvHeads = 2, d = 5, region = 2, n = 1200, queries = 70;
        Pattern.SelectMerge sm = (Pattern.SelectMerge) Pattern.parse(spec(region, 6, 1, rule));
        SplittableRandom r = new SplittableRandom(11);
        float[] k = AttentionTest.random(r, kvHeads * n * d, 1), q = AttentionTest.random(r, queries * d, 2);
        RegionSummaries whole = new RegionSummaries(sm, kvHeads, d, n / region), chunks = new RegionSummaries(sm, kvHeads, d, 1);
        whole.append(k, n);
        for (int t0 = 0; t0 < n; ) {
            int len = Math.min(n - t0, 1 + r.nextInt(40));
            float[] part = new float[kvHeads * len * d];
            for (int h = 0; h < kvHeads; h++) System.arraycopy(k, (h * n + t0) * d, part, h * len * d, len * d);
            chunks.append(part, len);
            t0 += len;
        }
        RegionSummaries.KeyRows rows = (kvh, pos, count, off) -> {
            for (int j = 0; j < count; j++) off[j] = (int) ((kvh * (long) n + pos + j) * d);
            return k;
        };
        RegionSummaries.Scratch s = new RegionSummaries.Scratch(d);
        int[] a = new int[5], b = new int[5], qoff = new int[1];
        for (int i = 0; i < queries; i++) {
            int cand = 6 + r.nextInt(n / region - 6);
            qoff[0] = i * d;
            whole.select(s, q, qoff, 1, i % kvHeads, cand, 5, rows, a, 0);
            chunks.select(s, q, qoff, 1, i % kvHeads, cand, 5, rows, b, 0);
            assertThat(b).as("query " + i + " over " + cand + " regions").containsExactly(a);
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

    // the runs give a row the same bits whatever comes later; split by region and near band
    // (SelectMergePass.keyParts) a row's rounding follows how many rows of its block chose the same
    // region (the row path or the query-block path), so there the earlier outputs agree within noise
    @ParameterizedTest
    @CsvSource({"MEAN, true", "BOUND, true", "MAX, true", "MEAN, false", "BOUND, false", "MAX, false"})
    void laterTokensDoNotChangeEarlierOutputs(Pattern.RegionScore score, boolean runs) {
        int heads = 4, kvHeads = 2, n = 157, d = 9, cut = 101;
        SplittableRandom r = new SplittableRandom(5);
        float[] q = AttentionTest.random(r, heads * n * d, 1.5), k = AttentionTest.random(r, kvHeads * n * d, 1.5), v = AttentionTest.random(r, kvHeads * n * d, 1);
        Pattern pattern = Pattern.parse(spec(5, 5, 2, score));
        AttentionResult a = forward(q, k, v, heads, kvHeads, n, d, pattern, runs);
        float[] q2 = q.clone(), k2 = k.clone(), v2 = v.clone();
        for (int p = cut; p < n; p++) {
            for (int h = 0; h < heads; h++) for (int c = 0; c < d; c++) q2[(h * n + p) * d + c] += (float) r.nextDouble(-3, 3);
            for (int h = 0; h < kvHeads; h++) for (int c = 0; c < d; c++) {
                k2[(h * n + p) * d + c] += (float) r.nextDouble(-3, 3);
                v2[(h * n + p) * d + c] += (float) r.nextDouble(-3, 3);
            }
        }
        AttentionResult b = forward(q2, k2, v2, heads, kvHeads, n, d, pattern, runs);
        for (int h = 0; h < heads; h++)
            for (int p = 0; p < n; p++) {
                int o = (h * n + p) * d;
                float[] ra = java.util.Arrays.copyOfRange(a.o(), o, o + d), rb = java.util.Arrays.copyOfRange(b.o(), o, o + d);
                if (p >= cut) continue;
                if (runs) assertThat(rb).as("head " + h + " row " + p).containsExactly(ra);
                else for (int c = 0; c < d; c++) assertThat(rb[c]).as("head " + h + " row " + p).isCloseTo(ra[c], within(1e-5f));
            }
        assertThat(java.util.Arrays.equals(a.o(), b.o())).isFalse();
    }

    private static AttentionResult forward(float[] q, float[] k, float[] v, int heads, int kvHeads, int n, int d, Pattern pattern, boolean runs) {
        Plan plan = Plan.of(pattern, n, heads, kvHeads, true);
        if (runs) plan.keepRuns();
        return Attention.forward(q, k, v, d, plan, AttentionOptions.DEFAULT, new float[heads * n * d], new float[heads * n]);
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
