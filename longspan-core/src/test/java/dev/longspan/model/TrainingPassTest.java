package dev.longspan.model;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Collections;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;

class TrainingPassTest {

    static ModelConfig tiny(boolean tied, int kvHeads, String attention) {
        return tiny(tied, kvHeads, attention, "kind=rope,base=10000,pairing=half");
    }

    static ModelConfig tiny(boolean tied, int kvHeads, String attention, String rope) {
        return new ModelConfig(13, 8, 2, 2, kvHeads, 4, 12, 1e-5f, tied, rope, Collections.nCopies(2, attention), "byte", 16);
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "true|2|false|kind=rope,base=10000,pairing=half|dense",
            "false|1|true|kind=rope,base=10000,pairing=half|dense",
            "true|1|true|kind=yarn,base=10000,factor=4,orig=8,pairing=interleaved|dense",
            "false|2|false|kind=crd-ntk,base=10000|dense",
            "true|1|false|kind=rope,base=10000|window:size=2+dilated:w=2,4;r=1,2",
            "false|2|true|kind=rope,base=10000|block:size=3",
            "true|2|false|kind=rope,base=10000|selectmerge:region=1,top=2,merge=1",
            "false|1|false|kind=crd-ntk,base=10000,period=4|selectmerge:region=1,top=2,merge=1,pos=selected"})
    void fullModelGradientMatchesFiniteDifferences(boolean tied, int kvHeads, boolean recompute, String rope, String attention) {
        ModelConfig c = tiny(tied, kvHeads, attention == null ? "dense" : attention, rope);
        Transformer m = new Transformer(c);
        m.initialize(7);
        // larger weights than the init so that every path carries signal
        SplittableRandom r = new SplittableRandom(3);
        for (int i = 0; i < m.params.length; i++) m.params[i] += (float) r.nextDouble(-0.3, 0.3);
        int T = 5;
        int[] tokens = new int[T], targets = new int[T];
        long[] pos = new long[T];
        for (int t = 0; t < T; t++) { tokens[t] = r.nextInt(13); targets[t] = t == 2 ? -1 : r.nextInt(13); pos[t] = 1000 + 3L * t; }
        TrainingPass pass = new TrainingPass(m, T, recompute);
        pass.forward(tokens, targets, pos);
        pass.backward(tokens, targets, pos, 1f, false);
        float[] analytic = pass.grads.clone();

        int[] check = java.util.stream.IntStream.iterate(0, i -> i < m.params.length, i -> i + Math.max(1, m.params.length / 150)).toArray();
        assertThat(check.length).isGreaterThan(100);
        double worst = worstGradientError(m, pass, tokens, targets, pos, analytic, check);
        assertThat(worst).as("worst gradient error in units of the tolerance").isLessThan(1.0);
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {"false|true|dense|1", "true|false|selectmerge:region=1,top=2,merge=1|1", "false|false|window:size=2|1",
            "false|true|dense|2", "true|false|window:size=2|3"})
    void tokenShiftGradientsMatchFiniteDifferencesAndTheCachedPath(boolean recompute, boolean tied, String attention, int shift) {
        ModelConfig c = tiny(tied, 1, attention).withTokenShift(shift);
        Transformer m = new Transformer(c);
        m.initialize(7);
        // the tables last, in order of distance: a model with fewer is the prefix of one with more
        assertThat(m.prevEmbs[0]).isEqualTo(m.params.length - shift * 13 * 8);
        for (int s = 1; s <= shift; s++) {
            assertThat(m.prevEmbs[s - 1]).isEqualTo(m.prevEmbs[0] + (s - 1) * 13 * 8);
            assertThat(m.tensor(Transformer.prevEmbeddingName(s)).offset()).isEqualTo(m.prevEmbs[s - 1]);
        }
        assertThat(c.parameterCount()).isEqualTo(m.params.length);
        SplittableRandom r = new SplittableRandom(5);
        for (int i = 0; i < m.params.length; i++) m.params[i] += (float) r.nextDouble(-0.3, 0.3);
        int T = 7;
        int[] tokens = {3, 9, 3, 3, 12, 0, 9}, targets = new int[T];
        long[] pos = new long[T];
        for (int t = 0; t < T; t++) { targets[t] = r.nextInt(13); pos[t] = t; }
        TrainingPass pass = new TrainingPass(m, T, recompute);
        pass.forward(tokens, targets, pos);
        pass.backward(tokens, targets, pos, 1f, false);
        float[] analytic = pass.grads.clone();
        // the rows of the tokens before positions 1..T-1 (3, 9, 12, 0) get gradient, others none
        assertThat(analytic[m.prevEmbs[0] + 1 * 8]).isZero();
        assertThat(analytic[m.prevEmbs[0] + 9 * 8]).isNotZero();
        int[] rows = {3, 9, 12, 0, 1};
        int[] check = new int[shift * rows.length * 8];
        for (int s = 0; s < shift; s++)
            for (int w = 0; w < rows.length; w++) for (int j = 0; j < 8; j++) check[(s * rows.length + w) * 8 + j] = m.prevEmbs[s] + rows[w] * 8 + j;
        if (shift >= 2) {
            // table 2 reads the tokens two places back: 3, 9, 3, 3, 12 (never 0 or 1)
            assertThat(analytic[m.prevEmbs[1] + 0 * 8]).isZero();
            assertThat(analytic[m.prevEmbs[1] + 12 * 8]).isNotZero();
        }
        double worst = worstGradientError(m, pass, tokens, targets, pos, analytic, check);
        assertThat(worst).as("worst gradient error in units of the tolerance").isLessThan(1.0);
        // the cached path: token by token, in two chunks, and after a rewind, the logits of a whole forward
        pass.forward(tokens, targets, pos);
        InferenceSession one = new InferenceSession(m, T), two = new InferenceSession(m, T);
        for (int t = 0; t < T; t++) {
            float[] lg = one.feed(new int[] {tokens[t]}, 0, 1);
            for (int v = 0; v < 13; v++) assertThat(lg[v]).isCloseTo(pass.logits[t * 13 + v], org.assertj.core.data.Offset.offset(1e-4f));
        }
        two.feed(tokens, 0, 4);
        float[] last = two.feed(tokens, 4, T);
        for (int v = 0; v < 13; v++) assertThat(last[v]).isCloseTo(pass.logits[(T - 1) * 13 + v], org.assertj.core.data.Offset.offset(1e-4f));
        // rewound to 3, the session continues as one fed the same 3 first (the token before the chunk kept)
        assertThat(two.rewind(3)).isTrue();
        InferenceSession three = new InferenceSession(m, T);
        three.feed(tokens, 0, 3);
        assertThat(two.feed(tokens, 3, T)).containsExactly(three.feed(tokens, 3, T));
        // the shift is felt: without it the last logits differ
        Transformer plain = new Transformer(c.withTokenShift(shift - 1));
        System.arraycopy(m.params, 0, plain.params, 0, plain.params.length);
        float[] noShift = new InferenceSession(plain, T).feed(tokens, 0, T);
        assertThat(noShift).isNotEqualTo(last);
    }

    @ParameterizedTest
    @CsvSource({"false,1", "true,2"})
    void qkNormAndBiasGradientsMatchFiniteDifferences(boolean recompute, int kvHeads) {
        ModelConfig c = new ModelConfig(13, 8, 2, 2, kvHeads, 4, 12, 1e-5f, false, "kind=rope,base=10000,pairing=half",
                Collections.nCopies(2, "dense"), "byte", 16, true, true);
        Transformer m = new Transformer(c);
        m.initialize(7);
        assertThat(m.tensor("model.layers.1.self_attn.q_norm.weight").size()).isEqualTo(4);
        assertThat(m.params[m.bq[0]]).isZero();
        SplittableRandom r = new SplittableRandom(3);
        for (int i = 0; i < m.params.length; i++) m.params[i] += (float) r.nextDouble(-0.3, 0.3);
        int T = 5;
        int[] tokens = new int[T], targets = new int[T];
        long[] pos = new long[T];
        for (int t = 0; t < T; t++) { tokens[t] = r.nextInt(13); targets[t] = r.nextInt(13); pos[t] = t; }
        TrainingPass pass = new TrainingPass(m, T, recompute);
        pass.forward(tokens, targets, pos);
        pass.backward(tokens, targets, pos, 1f, false);
        float[] analytic = pass.grads.clone();
        int[] check = {m.qNorm[0], m.qNorm[1] + 3, m.kNorm[0] + 1, m.kNorm[1], m.bq[0], m.bq[1] + 5, m.bk[0] + 2, m.bv[1], m.bv[0] + 1, m.wq[0] + 7, m.wk[1] + 3};
        double worst = worstGradientError(m, pass, tokens, targets, pos, analytic, check);
        assertThat(worst).as("worst gradient error in units of the tolerance").isLessThan(1.0);
        // the cached inference path applies the same norms and biases
        InferenceSession s = new InferenceSession(m, T);
        float[] lg = s.feed(tokens, 0, T);
        pass.forward(tokens, targets, pos);
        for (int v = 0; v < 13; v++) assertThat(lg[v]).isCloseTo(pass.logits[(T - 1) * 13 + v], org.assertj.core.data.Offset.offset(1e-4f));
    }

    @ParameterizedTest
    @CsvSource({"false", "true"})
    void recomputationGivesTheSameGradients(boolean ignored) {
        ModelConfig c = tiny(false, 1, "dense");
        Transformer m = new Transformer(c);
        m.initialize(11);
        int T = 7;
        int[] tokens = new int[T], targets = new int[T];
        long[] pos = new long[T];
        SplittableRandom r = new SplittableRandom(5);
        for (int t = 0; t < T; t++) { tokens[t] = r.nextInt(13); targets[t] = r.nextInt(13); pos[t] = t; }
        TrainingPass a = new TrainingPass(m, T, false), b = new TrainingPass(m, T, true);
        double la = a.forward(tokens, targets, pos), lb = b.forward(tokens, targets, pos);
        a.backward(tokens, targets, pos, 0.5f, false);
        b.backward(tokens, targets, pos, 0.5f, false);
        assertThat(la).isEqualTo(lb);
        assertThat(b.grads).containsExactly(a.grads);
    }

    // the largest |central difference − analytic| at the given parameters, in units of the tolerance
    // (relative 2 % plus an absolute floor for float32 rounding noise)
    static double worstGradientError(Transformer m, TrainingPass pass, int[] tokens, int[] targets, long[] pos, float[] analytic, int[] check) {
        double worst = 0;
        for (int i : check) {
            float orig = m.params[i];
            double h = 1e-2;
            m.params[i] = (float) (orig + h);
            double lp = pass.forward(tokens, targets, pos);
            m.params[i] = (float) (orig - h);
            double lm = pass.forward(tokens, targets, pos);
            m.params[i] = orig;
            double numeric = (lp - lm) / (2 * h);
            worst = Math.max(worst, Math.abs(numeric - analytic[i]) / (0.02 * Math.max(Math.abs(numeric), Math.abs(analytic[i])) + 3e-3));
        }
        return worst;
    }
}
