package dev.longspan.model;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Collections;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;

class TrainingPassTest {

    static ModelConfig tiny(boolean tied, int kvHeads, String attention) {
        return new ModelConfig(13, 8, 2, 2, kvHeads, 4, 12, 1e-5f, tied, "kind=rope,base=10000,pairing=half",
                Collections.nCopies(2, attention), "byte", 16);
    }

    @ParameterizedTest
    @CsvSource({"true,2,false", "false,1,true", "true,1,true"})
    void fullModelGradientMatchesFiniteDifferences(boolean tied, int kvHeads, boolean recompute) {
        ModelConfig c = tiny(tied, kvHeads, "dense");
        Transformer m = new Transformer(c);
        m.initialize(7);
        // larger weights than the init so that every path carries signal
        SplittableRandom r = new SplittableRandom(3);
        for (int i = 0; i < m.params.length; i++) m.params[i] += (float) r.nextDouble(-0.3, 0.3);
        int T = 5;
        int[] tokens = new int[T], targets = new int[T];
        long[] pos = new long[T];
        for (int t = 0; t < T; t++) { tokens[t] = r.nextInt(13); targets[t] = t == 2 ? -1 : r.nextInt(13); pos[t] = t; }
        TrainingPass pass = new TrainingPass(m, T, recompute);
        pass.forward(tokens, targets, pos);
        pass.backward(tokens, targets, pos, 1f, false);
        float[] analytic = pass.grads.clone();

        int checked = 0;
        double worst = 0;
        for (int i = 0; i < m.params.length; i += Math.max(1, m.params.length / 150)) {
            float orig = m.params[i];
            double h = 1e-2;
            m.params[i] = (float) (orig + h);
            double lp = pass.forward(tokens, targets, pos);
            m.params[i] = (float) (orig - h);
            double lm = pass.forward(tokens, targets, pos);
            m.params[i] = orig;
            double numeric = (lp - lm) / (2 * h);
            double err = Math.abs(numeric - analytic[i]) / (Math.abs(numeric) + Math.abs(analytic[i]) + 1e-2);
            worst = Math.max(worst, err);
            checked++;
        }
        assertThat(checked).isGreaterThan(100);
        assertThat(worst).as("worst relative gradient error").isLessThan(2e-2);
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
}
