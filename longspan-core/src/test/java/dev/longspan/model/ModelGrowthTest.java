package dev.longspan.model;

import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Collections;
import java.util.List;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * {@link ModelGrowth}: a model with inserted layers computes the same logits as the one it grew from;
 * the model with m times wider heads computes the same logits as the narrow
 * one (every position, the training forward), for both RoPE pairings, GQA, sparse patterns and a
 * cyclic CRD-NTK; and after widening, training reaches the new dimensions (their gradient is not zero).
 */
class ModelGrowthTest {

    static ModelConfig config(int headDim, String rope, String pattern, int heads, int kvHeads) {
        return new ModelConfig(19, 16, 2, heads, kvHeads, headDim, 24, 1e-5f, true, rope,
                Collections.nCopies(2, pattern), "byte", 64);
    }

    @ParameterizedTest
    @CsvSource(delimiter = ';', value = {
            "8; 2; kind=rope,base=10000; dense; 4; 4",
            "8; 3; kind=rope,base=10000,pairing=interleaved; window:size=5; 4; 2",
            "6; 2; kind=crd-ntk,base=10000,period=16,offset=16,seed=1; selectmerge:region=3,top=3,merge=1,score=bound; 2; 1",
            "16; 2; kind=crd-ntk,base=10000,period=256,offset=256,seed=1; window:size=4+selectmerge:region=2,top=4,merge=1,local=2,bias=-4; 4; 4"})
    void theWiderModelComputesTheSameLogits(int headDim, int m, String rope, String pattern, int heads, int kvHeads) {
        SplittableRandom r = new SplittableRandom(headDim * 31L + m);
        ModelConfig narrowC = config(headDim, rope, pattern, heads, kvHeads), wideC = config(headDim * m, rope, pattern, heads, kvHeads);
        assertThat(ModelGrowth.widening(narrowC, wideC)).isEqualTo(m);
        Transformer narrow = InferenceSessionTest.perturbed(narrowC, 5, r, 0.2);
        Transformer wide = new Transformer(wideC);
        ModelGrowth.widenHeads(narrow, wide, 7, "test");
        int T = 48;
        int[] tokens = InferenceSessionTest.randomTokens(r, T, narrowC.vocabSize());
        assertSameLogits(narrow, wide, tokens);
        // the new dimensions are not left at a saddle: some new q row and some new o column get gradient
        float[] g = gradients(wide, tokens, r);
        int D = wideC.headDim(), dim = wideC.dim();
        double newQ = 0, newO = 0;
        for (int l = 0; l < 2; l++) {
            for (int h = 0; h < heads; h++) {
                for (int e = 0; e < D; e++) {
                    if (isOldRow(e, headDim, m, wideC)) continue;
                    for (int j = 0; j < dim; j++) newQ += Math.abs(g[wide.wq[l] + (h * D + e) * dim + j]);
                }
                for (int row = 0; row < dim; row++) {
                    for (int e = headDim; e < D; e++) newO += Math.abs(g[wide.wo[l] + row * heads * D + h * D + e]);
                }
            }
        }
        assertThat(newQ).as("gradient on the new q rows").isGreaterThan(0);
        assertThat(newO).as("gradient on the new o columns").isGreaterThan(0);
    }

    // the grown model computes the narrow one's logits at every position (the training forward)
    private static void assertSameLogits(Transformer narrow, Transformer wide, int[] tokens) {
        float[] a = InferenceSessionTest.fullLogits(narrow, tokens, tokens.length), b = InferenceSessionTest.fullLogits(wide, tokens, tokens.length);
        float maxAbs = 0;
        for (float v : a) maxAbs = Math.max(maxAbs, Math.abs(v));
        for (int i = 0; i < a.length; i++) {
            assertThat(Math.abs(a[i] - b[i])).as("logit %d", i).isLessThanOrEqualTo(2e-5f * Math.max(1, maxAbs));
        }
    }

    // the parameter gradient of one training step on these tokens and random targets
    private static float[] gradients(Transformer m, int[] tokens, SplittableRandom r) {
        int T = tokens.length;
        TrainingPass pass = new TrainingPass(m, T, false);
        long[] pos = new long[T];
        for (int t = 0; t < T; t++) pos[t] = t;
        int[] targets = InferenceSessionTest.randomTokens(r, T, m.config.vocabSize());
        pass.forward(tokens, targets, pos);
        pass.backward(tokens, targets, pos, 1f, false);
        return pass.grads;
    }

    private static boolean isOldRow(int e, int D, int m, ModelConfig wide) {
        var p = wide.rope().pairing();
        for (int i = 0; i < D / 2; i++) {
            if (e == p.first(m * i, D * m) || e == p.second(m * i, D * m)) return true;
        }
        return false;
    }

    static ModelConfig layered(List<String> patterns) {
        return new ModelConfig(19, 16, patterns.size(), 4, 2, 8, 24, 1e-5f, false, "kind=crd-ntk,base=10000,period=16,offset=16,seed=1",
                patterns, "byte", 64);
    }

    @ParameterizedTest
    @CsvSource({"0, 1", "1, 1", "2, 1", "1, 2"})
    void insertedLayersLeaveTheLogitsAsTheyWereAndLearn(int at, int added) {
        SplittableRandom r = new SplittableRandom(at * 7L + added);
        List<String> old = List.of("window:size=4", "selectmerge:region=3,top=3,merge=1,local=1");
        List<String> grown = new java.util.ArrayList<>(old);
        for (int i = 0; i < added; i++) grown.add(at, "window:size=6");
        Transformer narrow = InferenceSessionTest.perturbed(layered(old), 3, r, 0.2);
        Transformer deep = new Transformer(layered(grown));
        assertThat(ModelGrowth.insertion(narrow.config, deep.config)).isEqualTo(added);
        ModelGrowth.insertLayers(narrow, deep, at, 11, "test");
        int T = 40;
        int[] tokens = InferenceSessionTest.randomTokens(r, T, 19);
        float[] a = InferenceSessionTest.fullLogits(narrow, tokens, T), b = InferenceSessionTest.fullLogits(deep, tokens, T);
        for (int i = 0; i < a.length; i++) assertThat(b[i]).as("logit %d", i).isEqualTo(a[i]);
        // the old layers sit where they should: old layer `at` is now at `at + added`
        int l = Math.min(at, old.size() - 1), moved = l < at ? l : l + added;
        assertThat(java.util.Arrays.copyOfRange(deep.params, deep.wq[moved], deep.wq[moved] + 16))
                .containsExactly(java.util.Arrays.copyOfRange(narrow.params, narrow.wq[l], narrow.wq[l] + 16));
        // the new layers' output projections get gradient
        TrainingPass pass = new TrainingPass(deep, T, false);
        long[] pos = new long[T];
        for (int t = 0; t < T; t++) pos[t] = t;
        int[] targets = InferenceSessionTest.randomTokens(r, T, 19);
        pass.forward(tokens, targets, pos);
        pass.backward(tokens, targets, pos, 1f, false);
        double go = 0, gd = 0;
        for (int i = 0; i < 16 * 32; i++) go += Math.abs(pass.grads[deep.wo[at] + i]);
        for (int i = 0; i < 16 * 24; i++) gd += Math.abs(pass.grads[deep.w2[at] + i]);
        assertThat(go).as("gradient on the new attention output").isGreaterThan(0);
        assertThat(gd).as("gradient on the new MLP output").isGreaterThan(0);
    }

    static ModelConfig shaped(int dim, int ffn, boolean tied) { return shaped(dim, ffn, tied, 1e-5f); }

    static ModelConfig shaped(int dim, int ffn, boolean tied, float eps) {
        return new ModelConfig(19, dim, 2, 4, 2, 8, ffn, eps, tied, "kind=crd-ntk,base=10000,period=16,offset=16,seed=1",
                List.of("window:size=4", "selectmerge:region=3,top=3,merge=1,local=1,score=bound"), "byte", 64);
    }

    @ParameterizedTest
    @CsvSource({"16, 24, 32, 48, true", "16, 24, 24, 24, true", "16, 24, 16, 40, true", "16, 24, 40, 56, false"})
    void aWiderResidualStreamAndMlpComputeTheSameLogitsAndLearn(int dim, int ffn, int dimW, int ffnW, boolean tied) {
        SplittableRandom r = new SplittableRandom(dim * 131L + dimW * 7L + ffnW);
        // the wider model's ε scaled by d/d' makes RMSNorm's ε·d'/d the old ε: then the function is the same
        ModelConfig nc = shaped(dim, ffn, tied), wc = shaped(dimW, ffnW, tied, 1e-5f * dim / dimW);
        assertThat(ModelGrowth.residualWidening(nc, wc)).isTrue();
        Transformer narrow = InferenceSessionTest.perturbed(nc, 5, r, 0.2);
        Transformer wide = new Transformer(wc);
        ModelGrowth.widenResidual(narrow, wide, 9, "test");
        int T = 40;
        int[] tokens = InferenceSessionTest.randomTokens(r, T, 19);
        assertSameLogits(narrow, wide, tokens);
        // the new dimensions and units get gradient: the embedding's new columns, o's new rows, down's new columns
        float[] g = gradients(wide, tokens, r);
        double emb = 0, o = 0, down = 0;
        int e0 = wide.tensor("model.embed_tokens.weight").offset();
        for (int v = 0; v < 19; v++) for (int j = dim; j < dimW; j++) emb += Math.abs(g[e0 + v * dimW + j]);
        for (int l = 0; l < 2; l++) {
            for (int row = dim; row < dimW; row++) for (int j = 0; j < wc.qDim(); j++) o += Math.abs(g[wide.wo[l] + row * wc.qDim() + j]);
            for (int row = 0; row < dimW; row++) for (int j = ffn; j < ffnW; j++) down += Math.abs(g[wide.w2[l] + row * ffnW + j]);
        }
        if (dimW > dim) {
            assertThat(emb).as("gradient on the embedding's new columns").isGreaterThan(0);
            assertThat(o).as("gradient on o's new rows").isGreaterThan(0);
        }
        if (ffnW > ffn) assertThat(down).as("gradient on the new units' down columns").isGreaterThan(0);
    }

    @Test
    void refusesAResidualThatIsNotWiderOrChangesAnotherSize() {
        Transformer n = InferenceSessionTest.perturbed(shaped(16, 24, true), 1, new SplittableRandom(4), 0.1);
        assertThat(ModelGrowth.residualWidening(shaped(16, 24, true), shaped(16, 24, true))).isFalse();
        assertThat(ModelGrowth.residualWidening(shaped(16, 24, true), shaped(32, 16, true))).isFalse();   // ffn narrower
        assertThat(ModelGrowth.residualWidening(shaped(16, 24, true), shaped(32, 48, false))).isFalse();  // untied now
        assertThatThrownBy(() -> ModelGrowth.widenResidual(n, new Transformer(shaped(8, 24, true)), 1, "m8"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("m8").hasMessageContaining("dim 16");
    }

    @Test
    void refusesALayerPlaceOutsideTheModel() {
        Transformer n = InferenceSessionTest.perturbed(layered(List.of("dense", "dense")), 1, new SplittableRandom(3), 0.1);
        Transformer d = new Transformer(layered(List.of("dense", "dense", "dense")));
        assertThatThrownBy(() -> ModelGrowth.insertLayers(n, d, 3, 1, "m")).isInstanceOf(LongspanException.class).hasMessageContaining("--insert-layers-at 3");
        assertThatThrownBy(() -> ModelGrowth.insertLayers(d, n, 0, 1, "m3")).isInstanceOf(LongspanException.class).hasMessageContaining("m3");
    }

    @Test
    void refusesWhatIsNotAWholeMultipleOrChangesFrequencies() {
        ModelConfig narrow = config(8, "kind=rope,base=10000", "dense", 2, 2);
        Transformer n = InferenceSessionTest.perturbed(narrow, 1, new SplittableRandom(1), 0.1);
        assertThat(ModelGrowth.widening(narrow, config(12, "kind=rope,base=10000", "dense", 2, 2))).isZero();
        assertThat(ModelGrowth.widening(narrow, config(16, "kind=rope,base=10000", "dense", 4, 4))).isZero();
        assertThatThrownBy(() -> ModelGrowth.widenHeads(n, new Transformer(config(12, "kind=rope,base=10000", "dense", 2, 2)), 1, "m.safetensors"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("m.safetensors").hasMessageContaining("cannot be widened");
        // NTK with a factor: base·s^(D/(D-2)) changes with D, so pair 2i of the wider head turns at another rate
        ModelConfig ntk = config(8, "kind=ntk,base=10000,factor=4", "dense", 2, 2);
        Transformer nn = InferenceSessionTest.perturbed(ntk, 1, new SplittableRandom(2), 0.1);
        assertThatThrownBy(() -> ModelGrowth.widenHeads(nn, new Transformer(config(16, "kind=ntk,base=10000,factor=4", "dense", 2, 2)), 1, "ntk-model"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("ntk-model").hasMessageContaining("frequencies");
    }
}
