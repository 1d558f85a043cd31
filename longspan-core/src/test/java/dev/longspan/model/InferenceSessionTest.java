package dev.longspan.model;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;

class InferenceSessionTest {

    // a model with its initial weights shaken, so that every path carries signal
    static Transformer perturbed(ModelConfig c, long seed, SplittableRandom r, double amount) {
        Transformer m = new Transformer(c);
        m.initialize(seed);
        for (int i = 0; i < m.params.length; i++) m.params[i] += (float) r.nextDouble(-amount, amount);
        return m;
    }

    static int[] randomTokens(SplittableRandom r, int n, int vocab) {
        int[] tokens = new int[n];
        for (int t = 0; t < n; t++) tokens[t] = r.nextInt(vocab);
        return tokens;
    }

    // the training forward over tokens[0..n) at positions 0..n-1: logits of every position, [n, V]
    static float[] fullLogits(Transformer m, int[] tokens, int n) {
        TrainingPass full = new TrainingPass(m, n, false);
        long[] pos = new long[n];
        for (int t = 0; t < n; t++) pos[t] = t;
        full.forward(java.util.Arrays.copyOf(tokens, n), new int[n], pos);
        return full.logits;
    }

    @ParameterizedTest
    @ValueSource(strings = {"dense", "window:size=3", "block:size=4", "dilated:w=4,8;r=1,2",
            "window:size=2+dilated:w=6;r=3"})
    void kvCacheGenerationEqualsFullRecomputation(String attention) {
        ModelConfig c = TrainingPassTest.tiny(false, 1, attention);
        SplittableRandom r = new SplittableRandom(4);
        Transformer m = perturbed(c, 9, r, 0.2);
        int T = 11;
        int[] tokens = randomTokens(r, T, c.vocabSize());
        float[] full = fullLogits(m, tokens, T);
        // incremental: a chunk of 4, then one token at a time
        InferenceSession s = new InferenceSession(m, 32);
        float[] logits = s.feed(tokens, 0, 4);
        assertRow(logits, full, 3, c.vocabSize());
        for (int t = 4; t < T; t++) {
            logits = s.feed(tokens, t, t + 1);
            assertRow(logits, full, t, c.vocabSize());
        }
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
        SplittableRandom r = new SplittableRandom(8);
        Transformer m = perturbed(c, 21, r, 0.2);
        int T = 40;
        int[] tokens = randomTokens(r, T, c.vocabSize());
        float[] full = fullLogits(m, tokens, T);
        // chunks of at most 2 queries: windowed layers keep reach + 2 positions in a ring
        InferenceSession s = new InferenceSession(m, T, 2, InferenceOptions.DEFAULT);
        if (!attention.equals("dense")) assertThat(s.cachedPositions(0)).isLessThan(T);
        float[] logits = s.feed(tokens, 0, 9);                       // prefill in parts of 2, against the ring
        assertRow(logits, full, 8, c.vocabSize());
        logits = s.feed(tokens, 9, 16, 7);                            // split into chunks of 2 internally
        for (int i = 0; i < 7; i++) assertRow(java.util.Arrays.copyOfRange(logits, i * c.vocabSize(), (i + 1) * c.vocabSize()), full, 9 + i, c.vocabSize());
        for (int t = 16; t < T; t++) assertRow(s.feed(tokens, t, t + 1), full, t, c.vocabSize());
    }

    @Test
    void halfPrecisionCacheStaysCloseAndHalvesTheMemory() {
        ModelConfig c = TrainingPassTest.tiny(false, 1, "window:size=4+dense");
        Transformer m = new Transformer(c);
        m.initialize(2);
        int T = 20;
        int[] tokens = new int[T];
        for (int t = 0; t < T; t++) tokens[t] = (t * 7) % c.vocabSize();
        InferenceSession f32 = new InferenceSession(m, T), f16 = new InferenceSession(m, T, new InferenceOptions(true, 0));
        f32.feed(tokens, 0, 5);
        f16.feed(tokens, 0, 5);
        for (int t = 5; t < T; t++) {
            float[] a = f32.feed(tokens, t, t + 1), b = f16.feed(tokens, t, t + 1);
            for (int i = 0; i < a.length; i++) assertThat(b[i]).isCloseTo(a[i], org.assertj.core.data.Offset.offset(2e-3f));
        }
        assertThat(f16.cacheBytes() * 2).isEqualTo(f32.cacheBytes());
    }

    @ParameterizedTest
    @ValueSource(strings = {"selectmerge:region=2,top=3,merge=1", "selectmerge:region=3,top=4,merge=2", "window:size=2+selectmerge:region=2,top=3,merge=2",
            "selectmerge:region=2,top=3,merge=1,score=max", "selectmerge:region=1,top=4,merge=2,score=mean", "selectmerge:region=3,top=3,merge=1,score=bound",
            "selectmerge:region=1,top=3,merge=1", "selectmerge:region=1,top=4,merge=1,beam=5"})
    void selectMergeDecodingEqualsTheEngineOnEveryPrefix(String attention) {
        // select-and-merge in the last layer (2 query heads on 1 key/value head): its output at
        // position p must equal the engine's on the prefix 0..p, token by token and in chunks
        ModelConfig c = new ModelConfig(13, 8, 2, 2, 1, 4, 12, 1e-5f, false, "kind=rope,base=10000",
                java.util.List.of("dense", attention), "byte", 16);
        SplittableRandom r = new SplittableRandom(6);
        Transformer m = perturbed(c, 12, r, 0.3);
        int T = 31;
        int[] tokens = randomTokens(r, T, c.vocabSize());
        InferenceSession s = new InferenceSession(m, T);
        float[] logits = s.feed(tokens, 0, 5);
        for (int t = 5; t <= T; t++) {
            assertRow(logits, fullLogits(m, tokens, t), t - 1, c.vocabSize());
            if (t < T) logits = s.feed(tokens, t, t + 1);
        }
        InferenceSession chunked = new InferenceSession(m, T, 4, InferenceOptions.DEFAULT);
        for (int t = 0; t < T; ) {
            int e = Math.min(T, t + 1 + t % 5);      // chunks of 1..5 tokens, split at 4 inside
            logits = chunked.feed(tokens, t, e);
            assertRow(logits, fullLogits(m, tokens, e), e - 1, c.vocabSize());
            t = e;
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"window:size=3+selectmerge:region=2,top=3,merge=1,local=1,bias=-1", "block:size=4+dense",
            "window:size=2+selectmerge:region=3,top=2,merge=1,pos=selected"})
    void aClearedSessionIsAFreshOneBitForBit(String attention) {
        // passkey and perplexity runs reuse one session (its cache is gigabytes at 4M): after a
        // longer sequence at another CRD-NTK phase, clear() must leave nothing of it behind
        java.util.List<String> specs = java.util.Arrays.asList(attention.split("\\+"));
        ModelConfig c = new ModelConfig(13, 8, 2, 2, 1, 4, 12, 1e-5f, false, "kind=crd-ntk,base=10000,period=8,offset=8",
                specs, "byte", 16);
        SplittableRandom r = new SplittableRandom(17);
        Transformer m = perturbed(c, 5, r, 0.3);
        int[] first = randomTokens(r, 37, c.vocabSize()), second = randomTokens(r, 23, c.vocabSize());
        InferenceSession reused = new InferenceSession(m, 40, 4, InferenceOptions.DEFAULT);
        reused.alignPositions(first.length);
        reused.feed(first, 0, first.length);
        reused.feed(new int[]{3}, 0, 1);
        reused.clear();
        assertThat(reused.length()).isZero();
        assertThat(reused.phase()).isZero();
        InferenceSession fresh = new InferenceSession(m, 40, 4, InferenceOptions.DEFAULT);
        for (InferenceSession s : new InferenceSession[]{reused, fresh}) s.alignPositions(second.length);
        assertThat(reused.phase()).isEqualTo(fresh.phase());
        float[] a = reused.feed(second, 0, 13, 13), b = fresh.feed(second, 0, 13, 13);
        assertThat(a).containsExactly(b);
        for (int t = 13; t < second.length; t++) assertThat(reused.feed(second, t, t + 1)).containsExactly(fresh.feed(second, t, t + 1));
    }

    @Test
    void lognScalingLeavesTheTrainedLengthAloneAndSharpensBeyondIt() {
        ModelConfig c = TrainingPassTest.tiny(false, 1, "dense");
        Transformer m = new Transformer(c);
        m.initialize(3);
        SplittableRandom r = new SplittableRandom(9);
        for (int i = 0; i < m.params.length; i++) m.params[i] += (float) r.nextDouble(-0.3, 0.3);
        int T = 24;
        int[] tokens = new int[T];
        for (int t = 0; t < T; t++) tokens[t] = r.nextInt(c.vocabSize());
        InferenceSession plain = new InferenceSession(m, T), logn = new InferenceSession(m, T, new InferenceOptions(false, 8));
        for (int t = 0; t < T; t++) {
            float[] a = plain.feed(tokens, t, t + 1), b = logn.feed(tokens, t, t + 1);
            if (t + 1 <= 8) assertThat(b).containsExactly(a);
            else assertThat(b).isNotEqualTo(a);
        }
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> new InferenceOptions(false, 1)).hasMessageContaining("log-n");
    }

    @Test
    void decodingReusesTheBuffersOfThePrefill() {
        // q/k head norms and biases on: every buffer of the layer is in use
        ModelConfig c = new ModelConfig(13, 8, 2, 2, 1, 4, 12, 1e-5f, false, "kind=rope,base=10000",
                java.util.List.of("dense", "window:size=3"), "byte", 32, true, true);
        SplittableRandom r = new SplittableRandom(5);
        Transformer m = perturbed(c, 4, r, 0.2);
        int T = 14;
        int[] tokens = randomTokens(r, T, c.vocabSize());
        float[] full = fullLogits(m, tokens, T);
        InferenceSession s = new InferenceSession(m, T, 3, InferenceOptions.DEFAULT);
        assertRow(s.feed(tokens, 0, 5), full, 4, c.vocabSize());
        Object buffers = s.buffers();
        for (int t = 5; t < 8; t++) {                                  // one token at a time
            assertRow(s.feed(tokens, t, t + 1), full, t, c.vocabSize());
            assertThat(s.buffers()).isSameAs(buffers);
        }
        float[] chunk = s.feed(tokens, 8, 14, 6);                      // chunks of 3, shorter than the prefill
        for (int i = 0; i < 6; i++) assertRow(java.util.Arrays.copyOfRange(chunk, i * c.vocabSize(), (i + 1) * c.vocabSize()), full, 8 + i, c.vocabSize());
        assertThat(s.buffers()).isSameAs(buffers);
    }

    @Test
    void aLongerChunkThanThePrefillGetsBuffersOfItsLength() {
        ModelConfig c = TrainingPassTest.tiny(false, 1, "dense");
        SplittableRandom r = new SplittableRandom(7);
        Transformer m = perturbed(c, 5, r, 0.2);
        int T = 12;
        int[] tokens = randomTokens(r, T, c.vocabSize());
        float[] full = fullLogits(m, tokens, T);
        InferenceSession s = new InferenceSession(m, T);
        s.feed(tokens, 0, 2);
        Object small = s.buffers();
        assertRow(s.feed(tokens, 2, 8), full, 7, c.vocabSize());
        assertThat(s.buffers()).isNotSameAs(small);
        Object large = s.buffers();
        for (int t = 8; t < T; t++) assertRow(s.feed(tokens, t, t + 1), full, t, c.vocabSize());
        assertThat(s.buffers()).isSameAs(large);
    }
}
