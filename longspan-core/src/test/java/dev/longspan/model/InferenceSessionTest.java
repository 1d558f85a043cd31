package dev.longspan.model;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;

class InferenceSessionTest {

    @ParameterizedTest
    @ValueSource(strings = {"dense", "window:size=3", "block:size=4", "dilated:w=4,8;r=1,2",
            "window:size=2+dilated:w=6;r=3", "selectmerge:region=2,top=2,merge=1"})
    void kvCacheGenerationEqualsFullRecomputation(String attention) {
        ModelConfig c = TrainingPassTest.tiny(false, 1, attention);
        Transformer m = new Transformer(c);
        m.initialize(9);
        SplittableRandom r = new SplittableRandom(4);
        for (int i = 0; i < m.params.length; i++) m.params[i] += (float) r.nextDouble(-0.2, 0.2);
        int T = 11;
        int[] tokens = new int[T];
        for (int t = 0; t < T; t++) tokens[t] = r.nextInt(c.vocabSize());
        // full recomputation: logits of every position from the training forward
        TrainingPass full = new TrainingPass(m, T, false);
        long[] pos = new long[T];
        for (int t = 0; t < T; t++) pos[t] = t;
        full.forward(tokens, new int[T], pos);
        // incremental: a chunk of 4, then one token at a time
        InferenceSession s = new InferenceSession(m, 32);
        float[] logits = s.feed(tokens, 0, 4);
        // select-and-merge is not prefix-consistent (a group's selection uses all its queries), so
        // only the last position is comparable; cached patterns must match at every position
        if (s.usesCache()) assertRow(logits, full.logits, 3, c.vocabSize());
        for (int t = 4; t < T; t++) {
            logits = s.feed(tokens, t, t + 1);
            if (s.usesCache() || t == T - 1) assertRow(logits, full.logits, t, c.vocabSize());
        }
        assertThat(s.usesCache()).isEqualTo(!attention.startsWith("selectmerge"));
        assertThat(s.length()).isEqualTo(T);
    }

    private static void assertRow(float[] got, float[] all, int row, int V) {
        for (int i = 0; i < V; i++) {
            assertThat(got[i]).isCloseTo(all[row * V + i], org.assertj.core.data.Offset.offset(1e-4f));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"window:size=3", "block:size=4", "window:size=2+block:size=3", "dense"})
    void trimmedCachesNeverDropAReachableKey(String attention) {
        ModelConfig c = TrainingPassTest.tiny(true, 2, attention);
        Transformer m = new Transformer(c);
        m.initialize(21);
        SplittableRandom r = new SplittableRandom(8);
        for (int i = 0; i < m.params.length; i++) m.params[i] += (float) r.nextDouble(-0.2, 0.2);
        int T = 40;
        int[] tokens = new int[T];
        for (int t = 0; t < T; t++) tokens[t] = r.nextInt(c.vocabSize());
        TrainingPass full = new TrainingPass(m, T, false);
        long[] pos = new long[T];
        for (int t = 0; t < T; t++) pos[t] = t;
        full.forward(tokens, new int[T], pos);
        // chunks of at most 2 queries: windowed layers keep reach + 2 positions in a ring
        InferenceSession s = new InferenceSession(m, T, 2, false);
        if (!attention.equals("dense")) assertThat(s.cachedPositions(0)).isLessThan(T);
        float[] logits = s.feed(tokens, 0, 9);                       // engine prefill, keeps the last ring positions
        assertRow(logits, full.logits, 8, c.vocabSize());
        logits = s.feed(tokens, 9, 16, 7);                            // split into chunks of 2 internally
        for (int i = 0; i < 7; i++) assertRow(java.util.Arrays.copyOfRange(logits, i * c.vocabSize(), (i + 1) * c.vocabSize()), full.logits, 9 + i, c.vocabSize());
        for (int t = 16; t < T; t++) assertRow(s.feed(tokens, t, t + 1), full.logits, t, c.vocabSize());
    }

    @Test
    void halfPrecisionCacheStaysCloseAndHalvesTheMemory() {
        ModelConfig c = TrainingPassTest.tiny(false, 1, "window:size=4+dense");
        Transformer m = new Transformer(c);
        m.initialize(2);
        int T = 20;
        int[] tokens = new int[T];
        for (int t = 0; t < T; t++) tokens[t] = (t * 7) % c.vocabSize();
        InferenceSession f32 = new InferenceSession(m, T), f16 = new InferenceSession(m, T, true);
        f32.feed(tokens, 0, 5);
        f16.feed(tokens, 0, 5);
        for (int t = 5; t < T; t++) {
            float[] a = f32.feed(tokens, t, t + 1), b = f16.feed(tokens, t, t + 1);
            for (int i = 0; i < a.length; i++) assertThat(b[i]).isCloseTo(a[i], org.assertj.core.data.Offset.offset(2e-3f));
        }
        assertThat(f16.cacheBytes() * 2).isEqualTo(f32.cacheBytes());
    }
}
