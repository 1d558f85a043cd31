package dev.longspan.position;

import dev.longspan.util.LongspanException;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.SplittableRandom;
import java.util.TreeSet;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

class SelectedRopeTest {

    @Test
    void positionsAreRanksInsideTheGatheredBlock() {
        int[] rows = {900, 40, 41, 5000, 5001, 5002}; // selected regions listed by score, then the local block
        assertThat(SelectedRope.keyPositions(rows)).containsExactly(2, 0, 1, 3, 4, 5);
        assertThat(SelectedRope.queryPositions(rows, new int[]{5000, 5001, 5002, 6000, 0}))
                .containsExactly(3, 4, 5, 6, 0);
        assertThatThrownBy(() -> SelectedRope.keyPositions(new int[]{3, 4, 3}))
                .isInstanceOf(LongspanException.class).hasMessageContaining("twice");
    }

    /**
     * A select-and-merge-like gather at length N: w-token regions, T-m selected regions strictly
     * before the group, then the group's own m regions. Every causal (query, key) pair sees a
     * relative distance in [0, g-1] with re-indexed positions, while absolute distances reach ~N.
     */
    @ParameterizedTest
    @ValueSource(ints = {1 << 12, 1 << 16, 1 << 20})
    void relativeDistancesAreBoundedByTheGatheredLength(int n) {
        int w = 16, top = 8, merge = 2;
        SplittableRandom rnd = new SplittableRandom(n);
        int regions = n / w;
        long maxAbs = 0;
        for (int trial = 0; trial < 5; trial++) {
            int firstLocal = rnd.nextInt(top, regions - merge + 1);
            TreeSet<Integer> sel = new TreeSet<>();
            while (sel.size() < top - merge) sel.add(rnd.nextInt(0, firstLocal));
            List<Integer> order = new ArrayList<>(sel);
            Collections.shuffle(order, new java.util.Random(trial)); // score order, not position order
            List<Integer> rowList = new ArrayList<>();
            for (int reg : order) for (int i = 0; i < w; i++) rowList.add(reg * w + i);
            for (int reg = firstLocal; reg < firstLocal + merge; reg++) for (int i = 0; i < w; i++) rowList.add(reg * w + i);
            int[] rows = rowList.stream().mapToInt(Integer::intValue).toArray();
            int g = rows.length;
            int[] queries = new int[merge * w];
            for (int i = 0; i < queries.length; i++) queries[i] = firstLocal * w + i;
            long[] kp = SelectedRope.keyPositions(rows), qp = SelectedRope.queryPositions(rows, queries);
            assertThat(qp[queries.length - 1]).isEqualTo(g - 1); // the last query sits at the end
            for (int qi = 0; qi < queries.length; qi++) {
                for (int kj = 0; kj < g; kj++) {
                    if (rows[kj] > queries[qi]) continue; // causal
                    long rel = qp[qi] - kp[kj];
                    assertThat(rel).isBetween(0L, (long) g - 1);
                    maxAbs = Math.max(maxAbs, queries[qi] - rows[kj]);
                }
            }
        }
        if (n >= 1 << 16) assertThat(maxAbs).isGreaterThan(64L * 16); // the absolute distances were not bounded
    }

    @Test
    void gatherRotateEqualsRopeOnCopiesAndBackwardIsItsAdjoint() {
        Rope r = new Rope(RopeConfig.fromSpec("kind=rope,dim=32"));
        int n = 200, d = 32, stride = 40; // rows with padding, as one head of a [N, H*D] buffer might be
        SplittableRandom rnd = new SplittableRandom(3);
        float[] src = RopeTest.randn(rnd, n * stride), srcCopy = src.clone();
        int[] rows = {150, 3, 4, 170, 171};
        long[] pos = SelectedRope.keyPositions(rows);
        float[] g = new float[rows.length * d];
        SelectedRope.gatherRotate(r, src, 0, stride, rows, pos, g, 0);
        assertThat(src).containsExactly(srcCopy);
        for (int j = 0; j < rows.length; j++) {
            float[] row = new float[d];
            System.arraycopy(src, rows[j] * stride, row, 0, d);
            r.forwardRow(row, 0, pos[j]);
            for (int i = 0; i < d; i++) assertThat(g[j * d + i]).isEqualTo(row[i]);
        }
        // <dG, gather(x)> == <scatter(dG), x>
        float[] dG = RopeTest.randn(rnd, rows.length * d), dGc = dG.clone(), dSrc = new float[n * stride];
        SelectedRope.unrotateScatterAdd(r, dGc, 0, rows, pos, dSrc, 0, stride);
        double lhs = RopeTest.dot(dG, 0, g, 0, g.length), rhs = RopeTest.dot(dSrc, 0, src, 0, src.length);
        assertThat(lhs).isCloseTo(rhs, within(1e-3));
    }
}
