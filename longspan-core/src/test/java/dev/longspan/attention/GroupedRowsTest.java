package dev.longspan.attention;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/**
 * Select-and-merge rows that each chose their own regions run together in a whole forward
 * ({@link FlashKernel#forwardRowsGrouped}: key block by key block across the rows of an own block).
 * Each such row must get exactly what it gets alone: the same bits as a one-query span at its
 * position (a decoding step's path, {@link FlashKernel#forwardRows}), with random queries and keys
 * so that almost every row picks its own regions; every row, whatever its run, within float noise.
 * The plans keep their runs ({@link Plan#keepRuns}): over many rows the kernel otherwise splits them
 * by region and near band ({@link SelectMergePartsTest}), which sums in another order.
 */
class GroupedRowsTest {

    static Stream<Arguments> cases() {
        return Stream.of(
                Arguments.of("selectmerge:region=8,top=6,merge=2", 64),
                Arguments.of("selectmerge:region=8,top=6,merge=2", 80),   // D not a whole number of vectors at 512 bits
                Arguments.of("selectmerge:region=16,top=5,merge=1,score=max", 128),
                Arguments.of("selectmerge:region=8,top=6,merge=2,bias=-1.5", 64),
                Arguments.of("selectmerge:region=8,top=6,merge=2,local=2,score=mean", 64),
                Arguments.of("window:size=5+selectmerge:region=6,top=7,merge=1", 64),   // two passes: the window's rows run as blocks in the whole forward (within noise only)
                Arguments.of("selectmerge:region=10,top=4,merge=2", 8),   // below D = 64: the transposed copy (rowDots), grouped one row at a time
                Arguments.of("selectmerge:region=64,top=4,merge=1", 32),
                Arguments.of("selectmerge:region=64,top=4,merge=1,local=1,pos=selected,bias=-2", 32),
                Arguments.of("selectmerge:region=64,top=4,merge=1", 64),   // whole key blocks shared: the group kernels, many rows at once
                Arguments.of("selectmerge:region=64,top=5,merge=1,bias=-0.5", 80),
                Arguments.of("selectmerge:region=128,top=5,merge=2", 128),
                Arguments.of("selectmerge:region=64,top=4,merge=1,pos=selected", 64),   // moved rows: each query counter-rotated per block
                Arguments.of("selectmerge:region=16,top=6,merge=2,pos=selected,bias=-1", 64));
    }

    @ParameterizedTest(name = "{0} D={1}")
    @MethodSource("cases")
    void eachGroupedRowIsTheRowAlone(String spec, int d) {
        Setup st = Setup.of(spec, d, 31);
        int heads = st.heads, n = st.n;
        float[] q = st.q, k = st.k, v = st.v;
        AttentionResult whole = st.whole;
        boolean[][] grouped = st.grouped;
        int bitwise = 0;
        for (int pos = 0; pos < n; pos += 3) {
            Plan plan = st.rowPlan(pos);
            float[] o = new float[heads * d], lse = new float[heads];
            Attention.forward(AttentionSpanTest.rows(q, heads, n, d, pos, 1), KeyValues.of(k, v, 0, n, d), d, plan, AttentionOptions.DEFAULT, o, lse);
            for (int h = 0; h < heads; h++) {
                int at = (h * n + pos) * d;
                for (int c = 0; c < d; c++)
                    assertThat(o[h * d + c]).as("head %d position %d dim %d", h, pos, c).isCloseTo(whole.o()[at + c], within(1e-5f));
                if (grouped[h][pos]) {
                    for (int c = 0; c < d; c++)
                        assertThat(o[h * d + c]).as("bits: head %d position %d dim %d", h, pos, c).isEqualTo(whole.o()[at + c]);
                    assertThat(lse[h]).as("bits: lse head %d position %d", h, pos).isEqualTo(whole.lse()[h * n + pos]);
                    bitwise++;
                }
            }
        }
        assertThat(bitwise).isGreaterThan(spec.contains("+") ? -1 : 30);
    }

    /**
     * The backward of the same rows (they still go row after row, run after run): each row's dQ bit
     * for bit what a one-query span's backward gives it, and dK, dV the sum of every row's share
     * within float noise. (A grouped backward, rows interleaved block by block as forward, measured
     * no faster: its dot products and axpys, not memory, bound it.)
     */
    @ParameterizedTest(name = "{0} D={1}")
    @MethodSource("cases")
    void eachGroupedRowsGradientIsTheRowsAlone(String spec, int d) {
        Setup st = Setup.of(spec, d, 17);
        int heads = st.heads, n = st.n;
        float[] q = st.q, k = st.k, v = st.v, dO = AttentionTest.random(st.r, heads * n * d, 1);
        AttentionGradients g = Attention.backward(st.whole, q, k, v, dO);
        boolean[][] grouped = st.grouped;
        float[] dkSum = new float[heads * n * d], dvSum = new float[heads * n * d];
        int bitwise = 0;
        for (int pos = 0; pos < n; pos++) {
            Plan plan = st.rowPlan(pos);
            float[] qr = AttentionSpanTest.rows(q, heads, n, d, pos, 1);
            AttentionResult one = Attention.forward(qr, KeyValues.of(k, v, 0, n, d), d, plan, AttentionOptions.DEFAULT, new float[heads * d], new float[heads]);
            float[] dq = new float[heads * d], dk = new float[heads * n * d], dv = new float[heads * n * d];
            Attention.backward(one, qr, k, v, AttentionSpanTest.rows(dO, heads, n, d, pos, 1), dq, dk, dv);
            for (int i = 0; i < dk.length; i++) {
                dkSum[i] += dk[i];
                dvSum[i] += dv[i];
            }
            for (int h = 0; h < heads; h++) {
                int at = (h * n + pos) * d;
                for (int c = 0; c < d; c++) {
                    assertThat(dq[h * d + c]).as("dq head %d position %d dim %d", h, pos, c).isCloseTo(g.dq()[at + c], within(1e-4f));
                    if (grouped[h][pos]) assertThat(dq[h * d + c]).as("bits: dq head %d position %d dim %d", h, pos, c).isEqualTo(g.dq()[at + c]);
                }
                if (grouped[h][pos]) bitwise++;
            }
        }
        for (int i = 0; i < dkSum.length; i++) {
            assertThat(g.dk()[i]).as("dk[%d]", i).isCloseTo(dkSum[i], within(2e-4f * (1 + Math.abs(dkSum[i]))));
            assertThat(g.dv()[i]).as("dv[%d]", i).isCloseTo(dvSum[i], within(2e-4f * (1 + Math.abs(dvSum[i]))));
        }
        assertThat(bitwise).isGreaterThan(spec.contains("+") ? -1 : 90);
    }

    /**
     * Both tests' inputs: random q, k, v (r left where they end, for more), the whole forward, which
     * rows it grouped, and the region summaries of k that one-row plans select from.
     */
    record Setup(String spec, int d, int heads, int n, Pattern pattern, SplittableRandom r, float[] q, float[] k, float[] v,
                 AttentionResult whole, boolean[][] grouped, List<RegionSummaries> summaries) {
        static Setup of(String spec, int d, long seedFactor) {
            int heads = 2, n = spec.contains("region=128") ? 1200 : 400;
            SplittableRandom r = new SplittableRandom(spec.hashCode() * seedFactor + d);
            Pattern pattern = Pattern.parse(spec);
            float[] q = AttentionTest.random(r, heads * n * d, 2), k = AttentionTest.random(r, heads * n * d, 2),
                    v = AttentionTest.random(r, heads * n * d, 1);
            Plan wholePlan = withPositions(Plan.of(pattern, n, heads, heads, true), spec, d).keepRuns();
            AttentionResult whole = Attention.forward(q, k, v, d, wholePlan, AttentionOptions.DEFAULT, new float[heads * n * d], new float[heads * n]);
            List<RegionSummaries> summaries = RegionSummaries.forTerms(pattern, heads, d);
            for (RegionSummaries s : summaries) s.append(k, n);
            return new Setup(spec, d, heads, n, pattern, r, q, k, v, whole, groupedRows(wholePlan, spec, heads, n), summaries);
        }

        /** The plan of the one query row at pos, over all n keys. */
        Plan rowPlan(int pos) {
            return withPositions(Plan.of(pattern, heads, heads, true, pos, 1, 0, n, summaries), spec, d).keepRuns();
        }
    }

    // pos=selected needs the positions RoPE rotated each index at: here a wrap every 100 positions (as
    // CRD-NTK's period), so some key blocks mix two shifts and take the per-key path
    static Plan withPositions(Plan plan, String spec, int d) {
        return spec.contains("pos=selected") ? plan.selectedPositions(positions(x -> Math.floorMod(x, 100), d)) : plan;
    }

    /** Half-pairing RoPE positions over D dimensions, base 10000, with the given position map. */
    static SelectedPositions positions(java.util.function.LongUnaryOperator rotated, int d) {
        int half = d / 2;
        double[] inv = new double[half];
        int[] first = new int[half], second = new int[half];
        for (int i = 0; i < half; i++) {
            inv[i] = Math.pow(10000, -2.0 * i / d);
            first[i] = i;
            second[i] = i + half;
        }
        return new SelectedPositions(rotated, inv, first, second);
    }

    // the rows that ran grouped: those of runs (consecutive rows of an own block with the same selection)
    // of at most ROW_BLOCK_MAX rows; longer runs (the first blocks take every earlier region) ran as blocks
    static boolean[][] groupedRows(Plan wholePlan, String spec, int heads, int n) {
        SelectMergePass sm = wholePlan.passes.get(wholePlan.passes.size() - 1) instanceof SelectMergePass x ? x : null;
        boolean[][] grouped = new boolean[heads][n];
        for (int h = 0; h < heads && sm != null && !spec.contains("+"); h++)
            for (int a = 0; a < n; ) {
                int b = a + 1;
                while (b < n && sm.selection(h, b).length > 0 && java.util.Arrays.equals(sm.selection(h, b), sm.selection(h, a)) && b / sm.blockRows == a / sm.blockRows) b++;
                for (int i = a; i < b; i++) grouped[h][i] = b - a <= FlashKernel.ROW_BLOCK_MAX && sm.selection(h, a).length > 0;
                a = b;
            }
        return grouped;
    }
}
