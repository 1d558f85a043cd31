package dev.longspan.model;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/**
 * Chunked prefill and decoding ({@link InferenceSession}) run the training forward's engine and
 * tile plans against the KV cache: for every pattern kind, head shape and way of cutting the
 * sequence into chunks, the logits of every position fed equal the training forward
 * ({@link TrainingPass}) over the prefix fed so far.
 */
class OneAttentionPathTest {

    static final List<String> PATTERNS = List.of(
            "dense", "window:size=5", "block:size=6", "dilated:w=4,8;r=1,2", "dilated:w=6,12;r=2,3;offsets=blocks+window:size=2",
            "window:size=3+block:size=4+dense",
            "selectmerge:region=2,top=4,merge=1,score=bound", "selectmerge:region=3,top=3,merge=1,score=max",
            "selectmerge:region=2,top=4,merge=2,score=mean", "selectmerge:region=1,top=5,merge=2,score=bound,beam=all",
            "window:size=4+selectmerge:region=2,top=3,merge=1",
            "selectmerge:region=2,top=4,merge=1,pos=selected", "window:size=3+selectmerge:region=3,top=3,merge=2,pos=selected",
            "selectmerge:region=2,top=4,merge=1,bias=-1.5", "selectmerge:region=3,top=3,merge=1,pos=selected,bias=-2",
            "selectmerge:region=2,top=4,merge=1,local=2,bias=-1", "selectmerge:region=3,top=3,merge=1,local=1,pos=selected");

    /** (query heads, key/value heads, head dimension): small and awkward head dims, GQA and not. */
    static final int[][] SHAPES = {{2, 1, 8}, {3, 3, 12}, {4, 2, 64}};

    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        for (String p : PATTERNS) for (int[] s : SHAPES) out.add(Arguments.of(p, s[0], s[1], s[2]));
        return out.stream();
    }

    static ModelConfig config(String pattern, int heads, int kvHeads, int headDim) {
        return config(pattern, heads, kvHeads, headDim, "kind=rope,base=10000");
    }

    static ModelConfig config(String pattern, int heads, int kvHeads, int headDim, String rope) {
        return new ModelConfig(17, 16, 2, heads, kvHeads, headDim, 24, 1e-5f, false, rope,
                Collections.nCopies(2, pattern), "byte", 64);
    }

    /** Positions on selected tokens under a CRD-NTK period that wraps inside a region and a block. */
    @ParameterizedTest
    @ValueSource(strings = {"selectmerge:region=3,top=4,merge=1,pos=selected", "selectmerge:region=2,top=5,merge=2,score=max,pos=selected"})
    void selectedPositionsUnderAWrappingPeriodToo(String pattern) {
        everyChunkingEqualsTheTrainingForwardOnEveryPrefix(config(pattern, 4, 2, 8, "kind=crd-ntk,base=10000,period=5,offset=0"), pattern.hashCode());
    }

    /**
     * Generation's position phase (alignPositions, a cyclic CRD-NTK RoPE): every row equals the
     * training forward with positions phase + i, decoding one token at a time and in chunks; a cache
     * written and read back keeps the phase.
     */
    @ParameterizedTest
    @ValueSource(strings = {"dense", "window:size=4+selectmerge:region=2,top=3,merge=1", "selectmerge:region=3,top=4,merge=1,pos=selected"})
    void anAlignedSessionEqualsTheForwardAtShiftedPositions(String pattern) throws java.io.IOException {
        ModelConfig c = config(pattern, 4, 2, 8, "kind=crd-ntk,base=10000,period=16,offset=16");
        SplittableRandom r = new SplittableRandom(pattern.hashCode());
        Transformer m = InferenceSessionTest.perturbed(c, 3, r, 0.3);
        int T = 40, V = c.vocabSize();
        int[] tokens = InferenceSessionTest.randomTokens(r, T, V);
        for (int prompt : new int[]{29, 32}) {
            InferenceSession one = new InferenceSession(m, T), chunks = new InferenceSession(m, T);
            one.alignPositions(prompt);
            chunks.alignPositions(prompt);
            long phase = one.phase();
            assertThat(phase).isEqualTo(dev.longspan.position.CrdNtk.inferencePhase(c.rope(), prompt));
            assertThat(phase + prompt - 1).as("the prompt's last position, mod 16").matches(p -> Math.floorMod(p, 16) == 11);
            float[] all = chunks.feed(tokens, 0, T, T);
            for (int t = 0; t < T; t++) {
                float[] got = one.feed(tokens, t, t + 1);
                TrainingPass full = new TrainingPass(m, t + 1, false);
                long[] pos = new long[t + 1];
                for (int i = 0; i <= t; i++) pos[i] = phase + i;
                full.forward(java.util.Arrays.copyOf(tokens, t + 1), new int[t + 1], pos);
                for (int i = 0; i < V; i++) {
                    assertThat(got[i]).as("prompt %d, position %d, logit %d", prompt, t, i).isCloseTo(full.logits[t * V + i], within(1e-4f));
                    assertThat(all[t * V + i]).as("chunk of %d, position %d, logit %d", T, t, i).isCloseTo(full.logits[t * V + i], within(1e-4f));
                }
            }
            // the phase travels with a cache file, and a fed session cannot be re-aligned
            var buf = new java.io.ByteArrayOutputStream();
            InferenceSession half = new InferenceSession(m, T);
            half.alignPositions(prompt);
            half.feed(tokens, 0, 20);
            assertThat(half.writeCache(java.nio.channels.Channels.newChannel(buf))).isTrue();
            InferenceSession back = new InferenceSession(m, T);
            back.readCache(java.nio.channels.Channels.newChannel(new java.io.ByteArrayInputStream(buf.toByteArray())));
            assertThat(back.phase()).isEqualTo(phase);
            float[] cont = back.feed(tokens, 20, 21);
            InferenceSession ref = new InferenceSession(m, T);
            ref.alignPositions(prompt);
            ref.feed(tokens, 0, 20);
            float[] want = ref.feed(tokens, 20, 21);
            assertThat(cont).containsExactly(want);
            org.assertj.core.api.Assertions.assertThatThrownBy(() -> back.alignPositions(prompt)).isInstanceOf(IllegalStateException.class);
        }
        // a RoPE that is not cyclic is never shifted
        InferenceSession plain = new InferenceSession(InferenceSessionTest.perturbed(config(pattern, 4, 2, 8), 3, r, 0.3), T);
        plain.alignPositions(29);
        assertThat(plain.phase()).isZero();
    }

    /**
     * Harmonic CRD-NTK frequencies (whole turns per period): the wraps are invisible, so the logits do not
     * depend on the phase — two sessions aligned for different prompt lengths agree on every row, where
     * the same weights with the plain frequencies do not. (Select-and-merge's {@code score=bound} ranks
     * regions by per-channel key maxima and minima, which a rotation does not preserve, so its choice of
     * distant regions can still change with the phase; max and mean scores are dot products and do not.)
     */
    @ParameterizedTest
    @ValueSource(strings = {"dense", "window:size=4", "window:size=4+selectmerge:region=2,top=3,merge=1,score=max",
            "selectmerge:region=3,top=4,merge=1,local=1,bias=-1,score=mean"})
    void withHarmonicFrequenciesThePhaseDoesNotMatter(String pattern) {
        int T = 40;
        double[] worst = new double[2];
        for (int h = 0; h < 2; h++) {
            ModelConfig c = config(pattern, 4, 2, 8, "kind=crd-ntk,base=10000,period=16,offset=16,harmonic=" + (h == 0));
            SplittableRandom r = new SplittableRandom(pattern.hashCode());
            Transformer m = InferenceSessionTest.perturbed(c, 3, r, 0.3);
            int[] tokens = InferenceSessionTest.randomTokens(r, T, c.vocabSize());
            InferenceSession a = new InferenceSession(m, T), b = new InferenceSession(m, T);
            a.alignPositions(29);
            b.alignPositions(34);
            assertThat(a.phase()).isNotEqualTo(b.phase());
            float[] la = a.feed(tokens, 0, T, T), lb = b.feed(tokens, 0, T, T);
            for (int i = 0; i < la.length; i++) worst[h] = Math.max(worst[h], Math.abs(la[i] - lb[i]));
        }
        assertThat(worst[0]).as("harmonic: largest logit difference between phases").isLessThan(1e-4);
        assertThat(worst[1]).as("plain frequencies: the phase shows").isGreaterThan(1e-2);
    }

    @ParameterizedTest
    @MethodSource("cases")
    void everyChunkingEqualsTheTrainingForwardOnEveryPrefix(String pattern, int heads, int kvHeads, int headDim) {
        everyChunkingEqualsTheTrainingForwardOnEveryPrefix(config(pattern, heads, kvHeads, headDim), pattern.hashCode() * 31L + headDim);
    }

    private static void everyChunkingEqualsTheTrainingForwardOnEveryPrefix(ModelConfig c, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        Transformer m = InferenceSessionTest.perturbed(c, 3, r, 0.3);
        int T = 40;
        int[] tokens = InferenceSessionTest.randomTokens(r, T, c.vocabSize());
        float[][] prefix = new float[T + 1][];
        // chunks of 1, 7 and 13 tokens; 13 with parts of at most 3 (a chunk longer than a window's ring)
        check(m, tokens, prefix, new InferenceSession(m, T), 1, 1e-4f);
        check(m, tokens, prefix, new InferenceSession(m, T), 7, 1e-4f);
        check(m, tokens, prefix, new InferenceSession(m, T), 13, 1e-4f);
        InferenceSession small = new InferenceSession(m, T, 3, InferenceOptions.DEFAULT);
        if (c.attention().get(0).reach() < T) assertThat(small.cachedPositions(0)).isLessThan(13);
        check(m, tokens, prefix, small, 13, 1e-4f);
        // half-precision keys and values: the same whatever the chunking, and close to float32 (not
        // equal); moved positions (pos=selected) turn a selection that rounding flips into a larger
        // change, so there only the chunking is compared
        InferenceOptions f16 = new InferenceOptions(true, 0);
        float[][] halfPrefix = new float[T + 1][];
        InferenceSession one = new InferenceSession(m, T, 5, f16);
        for (int t = 0; t < T; t++) halfPrefix[t + 1] = one.feed(tokens, t, t + 1, 1);
        InferenceSession seven = new InferenceSession(m, T, 5, f16);
        for (int a = 0; a < T; a += 7) {
            int b = Math.min(T, a + 7), V = c.vocabSize();
            float[] got = seven.feed(tokens, a, b, b - a);
            for (int t = a; t < b; t++)
                for (int i = 0; i < V; i++) assertThat(got[(t - a) * V + i]).as("f16 chunk 7, position %d, logit %d", t, i).isCloseTo(halfPrefix[t + 1][i], within(1e-4f));
        }
        if (!c.attention().stream().anyMatch(dev.longspan.attention.Plan::movesPositions))
            check(m, tokens, prefix, new InferenceSession(m, T, 5, f16), 7, 2e-2f);
    }

    // feeds tokens in chunks of `chunk`, comparing every row fed with the forward over the prefix fed so far
    private static void check(Transformer m, int[] tokens, float[][] prefix, InferenceSession s, int chunk, float tol) {
        int T = tokens.length, V = m.config.vocabSize();
        for (int a = 0; a < T; a += chunk) {
            int b = Math.min(T, a + chunk);
            float[] got = s.feed(tokens, a, b, b - a);
            if (prefix[b] == null) prefix[b] = InferenceSessionTest.fullLogits(m, tokens, b);
            for (int t = a; t < b; t++)
                for (int i = 0; i < V; i++)
                    assertThat(got[(t - a) * V + i]).as("chunk %d, position %d, logit %d", chunk, t, i)
                            .isCloseTo(prefix[b][t * V + i], within(tol));
        }
        assertThat(s.length()).isEqualTo(T);
    }
}
