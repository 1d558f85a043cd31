package dev.longspan.attention;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.List;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/**
 * Select-and-merge rows that each chose their own regions run together in a whole forward
 * ({@link FlashKernel#forwardRowsGrouped}: key block by key block across the rows of an own block).
 * Each such row must get exactly what it gets alone: the same bits as a one-query span at its
 * position (a decoding step's path, {@link FlashKernel#forwardRows}), with random queries and keys
 * so that almost every row picks its own regions; every row, whatever its run, within float noise.
 */
class GroupedRowsTest {

    @ParameterizedTest(name = "{0} D={1}")
    @CsvSource(delimiter = '|', value = {
            "selectmerge:region=8,top=6,merge=2|64",
            "selectmerge:region=8,top=6,merge=2|80",                       // D not a whole number of vectors at 512 bits
            "selectmerge:region=16,top=5,merge=1,score=max|128",
            "selectmerge:region=8,top=6,merge=2,bias=-1.5|64",
            "selectmerge:region=8,top=6,merge=2,local=2,score=mean|64",
            "window:size=5+selectmerge:region=6,top=7,merge=1|64",        // two passes: the window's rows run as blocks in the whole forward (within noise only)
            "selectmerge:region=10,top=4,merge=2|8"})                      // below D = 64: the transposed copy, no grouping
    void eachGroupedRowIsTheRowAlone(String spec, int d) {
        int heads = 2, n = 400;
        SplittableRandom r = new SplittableRandom(spec.hashCode() * 31L + d);
        Pattern pattern = Pattern.parse(spec);
        float[] q = AttentionTest.random(r, heads * n * d, 2), k = AttentionTest.random(r, heads * n * d, 2),
                v = AttentionTest.random(r, heads * n * d, 1);
        AttentionResult whole = Attention.forward(q, k, v, heads, heads, n, d, pattern, AttentionOptions.DEFAULT);
        List<RegionSummaries> summaries = RegionSummaries.forTerms(pattern, heads, d);
        for (RegionSummaries s : summaries) s.append(k, n);
        int bitwise = 0;
        for (int pos = 0; pos < n; pos += 3) {
            Plan plan = Plan.of(pattern, heads, heads, true, pos, 1, 0, n, summaries);
            float[] o = new float[heads * d], lse = new float[heads];
            Attention.forward(AttentionSpanTest.rows(q, heads, n, d, pos, 1), KeyValues.of(k, v, 0, n, d), d, plan, AttentionOptions.DEFAULT, o, lse);
            for (int h = 0; h < heads; h++) {
                int at = (h * n + pos) * d;
                for (int c = 0; c < d; c++)
                    assertThat(o[h * d + c]).as("head %d position %d dim %d", h, pos, c).isCloseTo(whole.o()[at + c], within(1e-5f));
                // past the first blocks (which take every earlier region: one long run each), rows choose
                // their own regions: those ran grouped in the whole forward and alone here
                if (pos >= n / 2 && !spec.contains("+")) {
                    for (int c = 0; c < d; c++)
                        assertThat(o[h * d + c]).as("bits: head %d position %d dim %d", h, pos, c).isEqualTo(whole.o()[at + c]);
                    assertThat(lse[h]).as("bits: lse head %d position %d", h, pos).isEqualTo(whole.lse()[h * n + pos]);
                    bitwise++;
                }
            }
        }
        assertThat(bitwise).isGreaterThan(spec.contains("+") ? -1 : 100);
    }
}
