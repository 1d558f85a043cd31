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

    /** Greedy with penalties: logits 2, 1.5, 0, -1 (ids 0..3); each pick lowers its own logit. */
    @Test
    void frequencyAndPresencePenaltiesLowerWhatWasChosen() {
        float[] l = {2f, 1.5f, 0f, -1f};
        // frequency 0.3: id 0 at 2, 1.7; at 1.4 it is below id 1's 1.5; then id 0 1.4 > id 1 1.2; id 1 1.2 > id 0 1.1; id 0 1.1 > 0.9
        Sampler f = new Sampler(0f, 1f, 0, 0f, 0.3f, 0f, 1);
        int[] seq = new int[6];
        for (int i = 0; i < seq.length; i++) seq[i] = f.next(l);
        assertThat(seq).containsExactly(0, 0, 1, 0, 1, 0);
        // presence 0.6 lowers once: id 0 (2 → 1.4) yields to id 1 (1.5 → 0.9), then id 0 stays ahead
        Sampler p = new Sampler(0f, 1f, 0, 0f, 0f, 0.6f, 1);
        int[] pseq = new int[4];
        for (int i = 0; i < pseq.length; i++) pseq[i] = p.next(l);
        assertThat(pseq).containsExactly(0, 1, 0, 0);
        // the caller's logits are never changed, and reset starts the count again
        assertThat(l).containsExactly(2f, 1.5f, 0f, -1f);
        p.reset();
        assertThat(p.next(l)).isZero();
        assertThat(p.next(l)).isEqualTo(1);
        // a negative penalty favours repeats; sampling sees the penalized distribution too
        Sampler neg = new Sampler(0f, 1f, 0, 0f, -0.5f, 0f, 1);
        for (int i = 0; i < 5; i++) assertThat(neg.next(l)).isZero();
        Sampler hot = new Sampler(1f, 1f, 0, 0f, 2f, 2f, 9);
        int[] c = new int[4];
        for (int i = 0; i < 40; i++) c[hot.next(LOGITS)]++;
        assertThat(c[1]).as("the least likely token comes up once the others are penalized").isPositive();
    }

    @Test
    void logitBiasShiftsTheGivenTokens() {
        float[] l = {2f, 1.5f, 0f, -1f};
        assertThat(new Sampler(0f, 1f, 0, 0f, 1).withLogitBias(new int[]{0}, new float[]{-100f}).next(l)).isEqualTo(1);
        assertThat(new Sampler(0f, 1f, 0, 0f, 1).withLogitBias(new int[]{3}, new float[]{3.5f}).next(l)).isEqualTo(3);   // -1 + 3.5 > 2
        assertThat(new Sampler(0f, 1f, 0, 0f, 1).withLogitBias(new int[]{3}, new float[]{2.5f}).next(l)).isZero();      // 1.5 < 2
        int[] c = new int[4];
        Sampler hot = new Sampler(1f, 1f, 0, 0f, 4).withLogitBias(new int[]{2}, new float[]{-100f});
        for (int i = 0; i < 2_000; i++) c[hot.next(LOGITS)]++;
        assertThat(c[2]).isZero();
        assertThat(l).containsExactly(2f, 1.5f, 0f, -1f);
        assertThatThrownBy(() -> new Sampler(0f, 1f, 0).withLogitBias(new int[]{0}, new float[]{101f})).isInstanceOf(LongspanException.class);
    }

    @Test
    void badSettingsAreRefused() {
        assertThatThrownBy(() -> new Sampler(1f, 1f, 0, 0f, 2.5f, 0f, 0)).isInstanceOf(LongspanException.class).hasMessageContaining("--frequency-penalty");
        assertThatThrownBy(() -> new Sampler(1f, 1f, 0, 0f, 0f, Float.NaN, 0)).isInstanceOf(LongspanException.class).hasMessageContaining("--presence-penalty");
        assertThatThrownBy(() -> new Sampler(1f, 1f, -1, 0f, 0)).isInstanceOf(LongspanException.class).hasMessageContaining("--top-k");
        assertThatThrownBy(() -> new Sampler(1f, 1f, 0, 1.5f, 0)).isInstanceOf(LongspanException.class).hasMessageContaining("--min-p");
        assertThatThrownBy(() -> new Sampler(Float.NaN, 1f, 0, 0f, 0)).isInstanceOf(LongspanException.class).hasMessageContaining("--temperature");
    }
}
