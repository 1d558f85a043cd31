package dev.longspan.model;

import dev.longspan.io.GgufWriter;
import dev.longspan.kernel.GgmlType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.MemorySegment;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * LoRA: an adapted matrix's products and gradients (A, B and the input) against finite
 * differences, over a float32 and a quantized (stored) base; a whole model's adapter and
 * also-trained gradients through a training pass; applied adapters equal merged weights.
 */
class LoraTest {

    static float[] random(SplittableRandom r, int n, double a) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) r.nextDouble(-a, a);
        return v;
    }

    // W [rows, cols] as a float slice, or quantized to Q8_0 and read from its blocks
    static Weight base(boolean stored, float[] w, int rows, int cols) {
        if (!stored) return new Weight.Dense(w, 0, rows, cols);
        byte[] q = GgufWriter.quantizeQ8_0(w);
        return new Weight.Stored(GgmlType.Q8_0, MemorySegment.ofArray(q), 0, rows, cols, null);
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void adaptedMatrixGradientsMatchFiniteDifferences(boolean stored) {
        int rows = 24, cols = 64, rank = 3, T = 5;
        SplittableRandom r = new SplittableRandom(11);
        float[] w = random(r, rows * cols, 0.5);
        float[] lora = random(r, rank * cols + rows * rank, 0.5);
        Weight.Adapted a = new Weight.Adapted(base(stored, w, rows, cols), lora, 0, rank * cols, rank, 16f / rank);
        float[] x = random(r, T * cols, 1), dy = random(r, T * rows, 1);
        float[] dx = new float[T * cols], grads = new float[lora.length];
        a.backward(dx, false, dy, x, T, grads);
        // loss = Σ dy ⊙ y is linear in each of A, B and x: central differences are exact but for rounding
        double worst = 0;
        for (int i = 0; i < lora.length; i++) worst = Math.max(worst, err(grads[i], numeric(a, lora, i, x, dy, T)));
        if (stored) {
            // a stored product rounds its input to 8 bits per block, which finite differences in x
            // would see; the input gradient is that of the dequantized matrix
            float[] deq = new float[rows * cols];
            for (int i = 0; i < rows; i++) a.base().row(i, deq, i * cols);
            float[] ref = new float[T * cols];
            new Weight.Adapted(new Weight.Dense(deq, 0, rows, cols), lora, 0, rank * cols, rank, 16f / rank).backward(ref, false, dy, x, T, new float[lora.length]);
            for (int i = 0; i < x.length; i++) worst = Math.max(worst, err(dx[i], ref[i]));
        } else {
            for (int i = 0; i < x.length; i++) worst = Math.max(worst, err(dx[i], numeric(a, x, i, x, dy, T)));
        }
        assertThat(worst).as("worst relative gradient error").isLessThan(2e-3);
        // the input gradient is the transposed product, adapter included
        float[] dx2 = new float[T * cols];
        a.applyTransposed(dx2, 0, dy, 0, T, false);
        assertThat(dx2).containsExactly(dx);
    }

    static double loss(Weight w, float[] x, float[] dy, int T) {
        float[] y = new float[T * w.rows()];
        w.apply(y, 0, x, 0, T, false);
        double s = 0;
        for (int i = 0; i < y.length; i++) s += (double) y[i] * dy[i];
        return s;
    }

    static double numeric(Weight w, float[] v, int i, float[] x, float[] dy, int T) {
        float orig = v[i];
        double h = 0.25;
        v[i] = (float) (orig + h);
        double lp = loss(w, x, dy, T);
        v[i] = (float) (orig - h);
        double lm = loss(w, x, dy, T);
        v[i] = orig;
        return (lp - lm) / (2 * h);
    }

    static double err(double analytic, double numeric) {
        return Math.abs(analytic - numeric) / (Math.max(Math.abs(analytic), Math.abs(numeric)) + 1e-2);
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void storedTransposedProductEqualsTheDequantizedMatrix(boolean accumulate) {
        int rows = 300, cols = 64, T = 3;   // more rows than one panel
        SplittableRandom r = new SplittableRandom(5);
        float[] w = random(r, rows * cols, 1);
        Weight s = base(true, w, rows, cols);
        float[] deq = new float[rows * cols];
        for (int i = 0; i < rows; i++) s.row(i, deq, i * cols);
        float[] y = random(r, T * rows, 1), x = random(r, T * cols, 1), ref = x.clone();
        s.applyTransposed(x, 0, y, 0, T, accumulate);
        new Weight.Dense(deq, 0, rows, cols).applyTransposed(ref, 0, y, 0, T, accumulate);
        for (int i = 0; i < x.length; i++) assertThat((double) x[i]).isCloseTo(ref[i], org.assertj.core.api.Assertions.within(1e-3 * (1 + Math.abs(ref[i]))));
    }

    static ModelConfig tiny(boolean tied) {
        return new ModelConfig(13, 8, 2, 2, 1, 4, 12, 1e-5f, tied, "kind=rope,base=10000,pairing=half",
                Collections.nCopies(2, "dense"), "byte", 16, true, true);
    }

    static Transformer adapted(ModelConfig c, Lora.Spec spec, long seed) {
        Transformer m = new Transformer(c);
        m.initialize(7);
        SplittableRandom r = new SplittableRandom(seed);
        for (int i = 0; i < m.params.length; i++) m.params[i] += (float) r.nextDouble(-0.3, 0.3);
        Lora lora = new Lora(c, spec, new float[Lora.size(c, spec) + 64]);
        lora.initialize(seed);
        // B is zero after initialisation: give it values so that A's gradient carries signal
        for (int i = 0; i < lora.size(); i++) lora.weights[i] += (float) r.nextDouble(-0.1, 0.1);
        return m.withAdapters(lora);
    }

    @ParameterizedTest
    @CsvSource({"false,false", "true,true", "true,false"})
    void modelAdapterAndAlsoTrainedGradientsMatchFiniteDifferences(boolean tied, boolean recompute) {
        ModelConfig c = tiny(tied);
        Transformer m = adapted(c, new Lora.Spec(2, 2, EnumSet.allOf(Lora.Target.class)), 3);
        List<Transformer.Tensor> also = m.tensors().stream().filter(t -> t.name().endsWith("norm.weight") || t.name().contains("embed")).toList();
        GradientLayout layout = GradientLayout.adapters(m, also);
        int T = 5;
        SplittableRandom r = new SplittableRandom(9);
        int[] tokens = new int[T], targets = new int[T];
        long[] pos = new long[T];
        for (int t = 0; t < T; t++) { tokens[t] = r.nextInt(13); targets[t] = r.nextInt(13); pos[t] = t; }
        TrainingPass pass = new TrainingPass(m, T, recompute, layout);
        assertThat(pass.grads).hasSize(m.lora.size() + also.stream().mapToInt(Transformer.Tensor::size).sum());
        pass.forward(tokens, targets, pos);
        pass.backward(tokens, targets, pos, 1f, false);
        float[] analytic = pass.grads.clone();
        double worst = 0;
        int checked = 0;
        for (int i = 0; i < m.lora.size(); i += 3, checked++) {
            worst = Math.max(worst, fdError(pass, m.lora.weights, i, analytic[i], tokens, targets, pos));
        }
        int g = m.lora.size();
        for (Transformer.Tensor t : also) {
            for (int i = 0; i < t.size(); i += 5, checked++) {
                worst = Math.max(worst, fdError(pass, m.params, t.offset() + i, analytic[g + i], tokens, targets, pos));
            }
            g += t.size();
        }
        assertThat(checked).isGreaterThan(150);
        assertThat(worst).as("worst gradient error in units of the tolerance").isLessThan(1.0);
    }

    static double fdError(TrainingPass pass, float[] v, int i, double analytic, int[] tokens, int[] targets, long[] pos) {
        float orig = v[i];
        double h = 1e-2;
        v[i] = (float) (orig + h);
        double lp = pass.forward(tokens, targets, pos);
        v[i] = (float) (orig - h);
        double lm = pass.forward(tokens, targets, pos);
        v[i] = orig;
        double numeric = (lp - lm) / (2 * h);
        return Math.abs(numeric - analytic) / (0.02 * Math.max(Math.abs(numeric), Math.abs(analytic)) + 3e-3);
    }

    @Test
    void frozenParametersGetNoGradientAndStayUntouched() {
        ModelConfig c = tiny(false);
        Transformer m = adapted(c, new Lora.Spec(2, 4, EnumSet.of(Lora.Target.Q, Lora.Target.V)), 4);
        TrainingPass pass = new TrainingPass(m, 4, false, GradientLayout.adapters(m, List.of()));
        assertThat(pass.grads).hasSize(m.lora.size());
        int[] tokens = {1, 2, 3, 4}, targets = {2, 3, 4, 5};
        long[] pos = {0, 1, 2, 3};
        float[] before = m.params.clone();
        pass.forward(tokens, targets, pos);
        pass.backward(tokens, targets, pos, 1f, false);
        assertThat(m.params).containsExactly(before);
        assertThat(m.lora.adapters()).hasSize(4);
        double norm = 0;
        for (float g : pass.grads) norm += g * g;
        assertThat(norm).isPositive();
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void appliedAdaptersEqualMergedWeights(boolean tied) {
        ModelConfig c = tiny(tied);
        Transformer m = adapted(c, new Lora.Spec(3, 7, EnumSet.allOf(Lora.Target.class)), 5);
        Transformer merged = m.mergedAdapters();
        assertThat(merged.lora).isNull();
        int[] toks = {3, 1, 4, 1, 5, 9, 2, 6};
        float[] a = new InferenceSession(m, 8).feed(toks, 0, toks.length, toks.length);
        float[] b = new InferenceSession(merged, 8).feed(toks, 0, toks.length, toks.length);
        float[] base = new InferenceSession(m.withAdapters(null), 8).feed(toks, 0, toks.length, toks.length);
        double diff = 0, changed = 0;
        for (int i = 0; i < a.length; i++) {
            diff = Math.max(diff, Math.abs(a[i] - b[i]));
            changed = Math.max(changed, Math.abs(a[i] - base[i]));
        }
        assertThat(diff).isLessThan(1e-4);
        assertThat(changed).as("the adapter changes the logits").isGreaterThan(1e-2);
    }

    @Test
    void freshAdaptersLeaveTheModelUnchanged() {
        ModelConfig c = tiny(true);
        Transformer m = new Transformer(c);
        m.initialize(1);
        Lora.Spec spec = new Lora.Spec(4, 8, EnumSet.of(Lora.Target.Q, Lora.Target.DOWN));
        Lora lora = new Lora(c, spec, new float[Lora.size(c, spec)]);
        lora.initialize(2);
        int[] toks = {1, 2, 3};
        float[] a = new InferenceSession(m.withAdapters(lora), 3).feed(toks, 0, 3, 3);
        float[] b = new InferenceSession(m, 3).feed(toks, 0, 3, 3);
        assertThat(a).containsExactly(b);
        Lora.Adapter q0 = lora.adapter(0, Lora.Target.Q);
        double bound = 1 / Math.sqrt(c.dim());
        for (int i = 0; i < spec.rank() * c.dim(); i++) assertThat(Math.abs(lora.weights[q0.aOff() + i])).isLessThanOrEqualTo((float) bound);
        assertThat(spec.scale()).isEqualTo(2f);
    }
}
