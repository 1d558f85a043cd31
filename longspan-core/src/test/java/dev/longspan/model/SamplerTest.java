package dev.longspan.model;

import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The sampler's cuts: top-k, top-p and min-p on seeded draws from a known distribution. */
class SamplerTest {
    // probabilities 0.5, 0.3, 0.15, 0.05 at temperature 1 (ids 2, 0, 3, 1 in that order)
    static final float[] LOGITS = {(float) Math.log(0.3), (float) Math.log(0.05), (float) Math.log(0.5), (float) Math.log(0.15)};

    static int[] counts(Sampler s, int draws) {
        int[] c = new int[LOGITS.length];
        for (int i = 0; i < draws; i++) c[s.next(LOGITS)]++;
        return c;
    }

    @Test
    void withoutCutsEveryTokenComesAtItsProbability() {
        int[] c = counts(new Sampler(1f, 1f, 0, 0f, 7), 20_000);
        assertThat(c[2] / 20_000.0).isBetween(0.48, 0.52);
        assertThat(c[0] / 20_000.0).isBetween(0.28, 0.32);
        assertThat(c[3] / 20_000.0).isBetween(0.135, 0.165);
        assertThat(c[1] / 20_000.0).isBetween(0.04, 0.06);
    }

    @Test
    void topKKeepsTheKMostLikelyRenormalised() {
        int[] one = counts(new Sampler(1.5f, 1f, 1, 0f, 3), 500);
        assertThat(one[2]).isEqualTo(500);
        int[] two = counts(new Sampler(1f, 1f, 2, 0f, 3), 20_000);
        assertThat(two[1] + two[3]).isZero();
        assertThat(two[2] / 20_000.0).isBetween(0.60, 0.65);    // 0.5 / 0.8 = 0.625
    }

    @Test
    void minPDropsTokensBelowItsShareOfTheMostLikely() {
        // floor 0.2 · 0.5 = 0.1: id 1 (0.05) goes, id 3 (0.15) stays
        int[] c = counts(new Sampler(1f, 1f, 0, 0.2f, 11), 20_000);
        assertThat(c[1]).isZero();
        assertThat(c[3]).isPositive();
        assertThat(c[3] / 20_000.0).isBetween(0.14, 0.175);     // 0.15 / 0.95
        // min-p 1 keeps only the most likely token
        assertThat(counts(new Sampler(1f, 1f, 0, 1f, 11), 300)[2]).isEqualTo(300);
    }

    @Test
    void theCutsComposeTopKThenTopPThenMinP() {
        // top-k 3 keeps 0.5, 0.3, 0.15 (renormalised 0.526, 0.316, 0.158); top-p 0.8 stops after the second
        int[] c = counts(new Sampler(1f, 0.8f, 3, 0f, 5), 5_000);
        assertThat(c[1] + c[3]).isZero();
        assertThat(c[0]).isPositive();
    }

    @Test
    void badSettingsAreRefused() {
        assertThatThrownBy(() -> new Sampler(1f, 1f, -1, 0f, 0)).isInstanceOf(LongspanException.class).hasMessageContaining("--top-k");
        assertThatThrownBy(() -> new Sampler(1f, 1f, 0, 1.5f, 0)).isInstanceOf(LongspanException.class).hasMessageContaining("--min-p");
        assertThatThrownBy(() -> new Sampler(Float.NaN, 1f, 0, 0f, 0)).isInstanceOf(LongspanException.class).hasMessageContaining("--temperature");
    }
}
