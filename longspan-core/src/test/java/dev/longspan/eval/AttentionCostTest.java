package dev.longspan.eval;

import dev.longspan.attention.Pattern;
import dev.longspan.attention.Plan;
import dev.longspan.model.ModelConfig;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The pair count of every pattern kind against brute force: every (head, query, key) of a small
 * causal sequence tested against the pattern's definition, written here without the tile plans.
 */
class AttentionCostTest {

    static Stream<String> specs() {
        return Stream.of("dense", "window:size=1", "window:size=5", "window:size=200", "block:size=1", "block:size=7",
                "block:size=64", "dilated:w=8;r=1", "dilated:w=8,16;r=2,4", "dilated:w=6,12,24;r=1,2,4",
                "dilated:w=8,16;r=2,4;offsets=blocks", "dilated:w=500;r=3",
                "selectmerge:region=4,top=3,merge=1", "selectmerge:region=4,top=5,merge=2", "selectmerge:region=3,top=2,merge=2",
                "selectmerge:region=4,top=4,merge=1,score=max", "selectmerge:region=5,top=3,merge=1,score=mean",
                "selectmerge:region=4,top=3,merge=1,beam=all", "selectmerge:region=64,top=5,merge=1",
                "window:size=4+block:size=8", "dense+dilated:w=8;r=2", "window:size=3+selectmerge:region=4,top=3,merge=1");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("specs")
    void countsEveryPairThePatternDefines(String spec) {
        Pattern p = Pattern.parse(spec);
        SplittableRandom rnd = new SplittableRandom(spec.hashCode());
        for (int trial = 0; trial < 6; trial++) {
            int n = 1 + rnd.nextInt(90);
            int kvHeads = 1 + rnd.nextInt(2), heads = kvHeads * (1 + rnd.nextInt(3));
            assertThat(AttentionCost.pairs(p, n, heads, kvHeads, 8)).as("%s at N=%d, H=%d", spec, n, heads).isEqualTo(bruteForce(p, n, heads));
        }
    }

    @Test
    void selectMergeCountsTheRegionsItSelected() {
        // what the plan chose, region by region, adds up to the count
        Pattern.SelectMerge sm = (Pattern.SelectMerge) Pattern.parse("selectmerge:region=4,top=4,merge=1");
        int n = 77, heads = 2, d = 8;
        Plan plan = Plan.of(sm, n, heads, 1, true);
        SplittableRandom rnd = new SplittableRandom(3);
        float[] q = new float[heads * n * d], k = new float[n * d];
        for (int i = 0; i < q.length; i++) q[i] = (float) rnd.nextGaussian();
        for (int i = 0; i < k.length; i++) k[i] = (float) rnd.nextGaussian();
        plan.prepare(q, k, d);
        long counted = 0;
        for (int h = 0; h < heads; h++)
            for (int pos = 0; pos < n; pos++) {
                int[] sel = plan.selection(0, h, pos);
                int own = pos / 4 * 4;
                assertThat(sel).as("row %d", pos).doesNotHaveDuplicates();
                assertThat(java.util.Arrays.stream(sel)).as("row %d", pos).allMatch(r -> r >= 0 && (r + 1) * 4 <= own);
                counted += (long) sel.length * 4 + pos - own + 1;
            }
        assertThat(AttentionCost.pairs(sm, n, heads, 1, d)).isEqualTo(counted).isEqualTo(bruteForce(sm, n, heads));
    }

    @Test
    void positionsOnSelectedTokensMoveKeysButReadTheSamePairs() {
        // pos=selected rotates the chosen regions to other positions; which keys are read stays the count
        for (String spec : new String[]{"selectmerge:region=4,top=4,merge=1", "selectmerge:region=8,top=2,merge=1,local=2,bias=-4"}) {
            Pattern plain = Pattern.parse(spec), moved = Pattern.parse(spec + ",pos=selected");
            assertThat(Plan.of(moved, 96, 2, 2, true).movesPositions()).isTrue();
            assertThat(AttentionCost.pairs(moved, 96, 2, 2, 8)).as(spec).isEqualTo(AttentionCost.pairs(plain, 96, 2, 2, 8)).isPositive();
        }
    }

    @Test
    void modelCostSumsItsLayersAndCountsFourDFlopsPerPair() {
        ModelConfig c = new ModelConfig(259, 64, 4, 4, 2, 16, 128, 1e-5f, true, "kind=rope,base=10000",
                List.of("dense", "window:size=8", "window:size=8", "dilated:w=16,32;r=1,2"), "byte", 256);
        int n = 100;
        AttentionCost.Cost cost = AttentionCost.of(c, n);
        long dense = bruteForce(new Pattern.Dense(), n, 4), window = bruteForce(Pattern.parse("window:size=8"), n, 4),
                dilated = bruteForce(Pattern.parse("dilated:w=16,32;r=1,2"), n, 4);
        assertThat(cost.pairsPerLayer()).containsExactly(dense, window, window, dilated);
        assertThat(dense).isEqualTo(4L * n * (n + 1) / 2);
        assertThat(cost.pairsPerToken()).isEqualTo((double) (dense + 2 * window + dilated) / n);
        assertThat(cost.flopsPerToken()).isEqualTo(cost.pairsPerToken() * 4 * 16);
    }

    /** (head, query, key) triples with multiplicity, from the patterns' definitions. */
    static long bruteForce(Pattern p, int n, int heads) {
        long total = 0;
        for (Pattern term : terms(p))
            for (int h = 0; h < heads; h++)
                for (int q = 0; q < n; q++)
                    for (int k = 0; k <= q; k++) total += reaches(term, n, heads, h, q, k);
        return total;
    }

    private static List<Pattern> terms(Pattern p) {
        return p instanceof Pattern.Sum s ? s.terms() : List.of(p);
    }

    // how many times query q of head h reaches key k ≤ q (a LongNet mixture: once per pair that keeps both)
    private static int reaches(Pattern p, int n, int heads, int h, int q, int k) {
        return switch (p) {
            case Pattern.Dense d -> 1;
            case Pattern.Window w -> q - k < w.size() ? 1 : 0;
            case Pattern.Block b -> q / b.size() == k / b.size() ? 1 : 0;
            case Pattern.Dilated d -> {
                int c = 0;
                for (int i = 0; i < d.pairs(); i++) {
                    int seg = Math.min(d.w()[i], n), r = d.r()[i];
                    int s = d.headBlocks() ? h / ((heads + r - 1) / r) : h % r;
                    if (q / seg == k / seg && q % seg % r == s && k % seg % r == s) c++;
                }
                yield c;
            }
            case Pattern.SelectMerge s -> {
                // the own block causally; before it, whole regions: all of them while there are at
                // most top−merge, else top−merge of them (which ones does not change the count, so
                // the brute force spreads them as the first ones)
                int rows = Math.min(s.merge() * s.region(), n), own = q / rows * rows;
                if (k >= own) yield 1;
                int candidates = own / s.region(), pick = s.top() - s.merge();
                yield k / s.region() < Math.min(candidates, pick) ? 1 : 0;
            }
            case Pattern.Sum s -> throw new IllegalArgumentException("nested sum");
        };
    }
}
