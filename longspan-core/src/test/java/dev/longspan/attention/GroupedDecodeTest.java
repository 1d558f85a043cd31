package dev.longspan.attention;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
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
 * A grouped-query decoding step (one query row per head; the heads sharing a key/value head run
 * together over its keys, {@link FlashKernel#forwardGroupRow}) gives bit for bit what each head
 * gives on its own: the same step with every query head given its own copy of its group's keys
 * and values (one head per group, the per-head path), and the float64 reference within rounding.
 */
class GroupedDecodeTest {
    private static long minBytes;

    @BeforeAll
    static void everyCacheRunsGrouped() {
        minBytes = Attention.groupDecodeMinBytes;
        Attention.groupDecodeMinBytes = 0;
    }

    @AfterAll
    static void restore() {
        Attention.groupDecodeMinBytes = minBytes;
    }

    static Stream<Arguments> cases() {
        SplittableRandom r = new SplittableRandom(5);
        List<Arguments> out = new ArrayList<>();
        int[][] groups = {{4, 2}, {8, 2}, {6, 3}, {12, 4}, {8, 1}};
        int[] dims = {8, 16, 64, 7, 33};
        String[] specs = {"dense", "window:size=7", "window:size=200", "block:size=9", "block:size=64", "dense+window:size=5"};
        for (int i = 0; i < 30; i++) {
            int[] g = groups[i % groups.length];
            int n = i < 5 ? new int[]{1, 2, 63, 64, 65}[i] : 1 + r.nextInt(400);
            out.add(Arguments.of(specs[i % specs.length], g[0], g[1], n, dims[i % dims.length], r.nextLong()));
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{0} H={1} Hkv={2} N={3} D={4}")
    @MethodSource("cases")
    void groupedStepEqualsEachHeadOnItsOwn(String spec, int heads, int kvHeads, int n, int d, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        Pattern pattern = Pattern.parse(spec);
        float[] q = AttentionTest.random(r, heads * d, 1.5), k = AttentionTest.random(r, kvHeads * n * d, 1.5), v = AttentionTest.random(r, kvHeads * n * d, 1);
        float[] o = new float[heads * d], lse = new float[heads];
        Attention.forward(q, KeyValues.of(k, v, 0, n, d), d, Plan.of(pattern, heads, kvHeads, true, n - 1, 1, 0, n, null), AttentionOptions.DEFAULT, o, lse);

        // each query head with its own copy of its key/value head: H groups of one, the per-head path
        int group = heads / kvHeads;
        float[] k1 = new float[heads * n * d], v1 = new float[heads * n * d];
        for (int h = 0; h < heads; h++) {
            System.arraycopy(k, h / group * n * d, k1, h * n * d, n * d);
            System.arraycopy(v, h / group * n * d, v1, h * n * d, n * d);
        }
        float[] o1 = new float[heads * d], lse1 = new float[heads];
        Attention.forward(q, KeyValues.of(k1, v1, 0, n, d), d, Plan.of(pattern, heads, heads, true, n - 1, 1, 0, n, null), AttentionOptions.DEFAULT, o1, lse1);
        assertThat(o).as("outputs").isEqualTo(o1);
        assertThat(lse).as("log-sum-exps").isEqualTo(lse1);

        // and the whole sequence's last row (every query row, the block path) within float rounding
        float[] qAll = AttentionTest.random(new SplittableRandom(seed + 1), heads * n * d, 1.5);
        for (int h = 0; h < heads; h++) System.arraycopy(q, h * d, qAll, (h * n + n - 1) * d, d);
        AttentionResult whole = Attention.forward(qAll, k, v, heads, kvHeads, n, d, pattern, AttentionOptions.DEFAULT);
        for (int h = 0; h < heads; h++) {
            assertThat(lse[h]).as("head %d lse", h).isCloseTo(whole.lse()[h * n + n - 1], within(1e-4f * (1 + Math.abs(lse[h]))));
            for (int c = 0; c < d; c++) {
                assertThat(o[h * d + c]).as("head %d o[%d]", h, c).isCloseTo(whole.o()[(h * n + n - 1) * d + c], within(2e-5f));
            }
        }
    }
}
