package dev.longspan.format;

import dev.longspan.kernel.GgmlType;
import dev.longspan.model.InferenceSession;
import dev.longspan.model.ModelConfig;
import dev.longspan.model.Transformer;
import dev.longspan.model.Weight;
import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.EnumSet;
import java.util.Set;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * A GGUF loaded with its matrices kept as stored (memory-mapped, products on the blocks) gives the
 * logits of the same file dequantized at load, up to the rounding of the activations that products
 * on stored blocks do as ggml does (to F16, BF16 or 8 bits per block, {@code Q8Activations}):
 * prefill (GEMM path) and decode (dot path), on llama.cpp's quantized stories260K files and on a
 * model Longspan's own exporter wrote.
 */
class StoredWeightsTest {
    @TempDir Path tmp;

    static double relMaxError(float[] got, float[] ref) {
        double err = 0, scale = 0;
        for (int i = 0; i < ref.length; i++) {
            err = Math.max(err, Math.abs(got[i] - ref[i]));
            scale = Math.max(scale, Math.abs(ref[i]));
        }
        return err / scale;
    }

    // logits of every position (prefill of 9 tokens), then of 3 decoded tokens
    static float[][] run(Transformer m, int[] toks) {
        InferenceSession s = new InferenceSession(m, toks.length + 3);
        float[] prefill = s.feed(toks, 0, toks.length, toks.length);
        float[] decode = new float[3 * m.config.vocabSize()];
        for (int i = 0; i < 3; i++) {
            float[] lg = s.feed(new int[]{toks[i]}, 0, 1);
            System.arraycopy(lg, 0, decode, i * lg.length, lg.length);
        }
        return new float[][]{prefill, decode};
    }

    // largest relative logit change the activation rounding of a weight type's products may cause here:
    // about 4x what stories260K and the random models show (F16 5e-4, BF16 3e-3, 8-bit kinds 6e-3 to 1.5e-2)
    static double activationRounding(GgmlType t) {
        return switch (dev.longspan.kernel.Q8Activations.vecDotType(t)) {
            case F32 -> 1e-4;
            case F16 -> 2e-3;
            case BF16 -> 1.5e-2;
            default -> 6e-2;
        };
    }

    static void assertSameLogits(Path p, int vocab, Set<GgmlType> expectStored) {
        ModelLoader.LoadedModel stored = ModelLoader.load(p, ModelLoader.Weights.STORED);
        ModelLoader.LoadedModel deq = ModelLoader.load(p, ModelLoader.Weights.DEQUANTIZED);
        assertThat(stored.model().keepsStoredWeights()).isTrue();
        assertThat(deq.model().keepsStoredWeights()).isFalse();
        Set<GgmlType> seen = EnumSet.noneOf(GgmlType.class);
        Transformer m = stored.model();
        seen.add(m.embedding.type());
        for (int l = 0; l < m.config.layers(); l++) {
            for (Weight w : new Weight[]{m.qProj[l], m.kProj[l], m.vProj[l], m.oProj[l], m.gateProj[l], m.upProj[l], m.downProj[l]}) seen.add(w.type());
        }
        assertThat(seen).as(p.toString()).containsAll(expectStored);
        assertThat(m.weightBytes()).isLessThan(deq.model().weightBytes());
        SplittableRandom r = new SplittableRandom(3);
        int[] toks = new int[9];
        for (int i = 0; i < toks.length; i++) toks[i] = r.nextInt(vocab);
        float[][] got = run(m, toks), ref = run(deq.model(), toks);
        double tol = seen.stream().mapToDouble(StoredWeightsTest::activationRounding).max().orElse(1e-4);
        assertThat(relMaxError(got[0], ref[0])).as("prefill " + p).isLessThan(tol);
        assertThat(relMaxError(got[1], ref[1])).as("decode " + p).isLessThan(tol);
    }

    @ParameterizedTest
    @ValueSource(strings = {"F16", "BF16", "Q6_K", "Q4_K_M", "Q2_K"})
    void llamaCppQuantizedFilesGiveTheDequantizedLogits(String type) {
        Path p = Stories260KGgufTest.data("quant/stories260K-" + type + ".gguf");
        Set<GgmlType> expect = switch (type) {
            case "F16" -> EnumSet.of(GgmlType.F16);
            case "BF16" -> EnumSet.of(GgmlType.BF16);
            default -> EnumSet.noneOf(GgmlType.class);
        };
        assertSameLogits(p, 512, expect);
    }

    @Test
    void theQuantizedFilesTogetherExerciseQ8_0Q5_0AndIq4Nl() {
        Set<GgmlType> seen = EnumSet.noneOf(GgmlType.class);
        for (String f : new String[]{"Q6_K", "Q4_K_M", "Q2_K"}) {
            Transformer m = ModelLoader.load(Stories260KGgufTest.data("quant/stories260K-" + f + ".gguf")).model();
            for (int l = 0; l < m.config.layers(); l++) {
                for (Weight w : new Weight[]{m.qProj[l], m.kProj[l], m.vProj[l], m.oProj[l], m.gateProj[l], m.upProj[l], m.downProj[l]}) seen.add(w.type());
            }
        }
        assertThat(seen).contains(GgmlType.Q8_0, GgmlType.Q5_0, GgmlType.IQ4_NL);
    }

    @Test
    void aModelLongspanExportsAtQ8_0RunsOnItsStoredBlocks() {
        ModelConfig c = new ModelConfig(259, 64, 2, 4, 2, 16, 128, 1e-5f, false, "kind=rope,base=10000",
                java.util.Collections.nCopies(2, "dense"), "byte", 256, false, false);
        Transformer m = new Transformer(c);
        m.initialize(7);
        Path p = tmp.resolve("q8.gguf");
        GgufExport.export(m, p, "test", GgmlType.Q8_0);
        assertSameLogits(p, 259, EnumSet.of(GgmlType.Q8_0));
    }

    @ParameterizedTest
    @ValueSource(strings = {"Q8_0", "Q4_0", "Q4_K"})
    void aRandomModelWrittenTensorByTensorLoadsAndRuns(String type) {
        // vocabulary past the byte tokenizer's 259 (padded with unused tokens), rows of 256 for Q4_K
        ModelConfig c = new ModelConfig(300, 256, 2, 4, 2, 64, 512, 1e-5f, false, "kind=rope,base=10000",
                java.util.Collections.nCopies(2, "dense"), "byte", 256, false, false);
        Path p = tmp.resolve(type + ".gguf");
        GgufExport.exportRandom(c, p, "random", GgmlType.valueOf(type), 5);
        ModelLoader.LoadedModel lm = ModelLoader.load(p);
        assertThat(lm.tokenizer().vocabSize()).isEqualTo(300);
        assertThat(lm.model().config.vocabSize()).isEqualTo(300);
        assertThat(lm.model().downProj[1].type()).isEqualTo(GgmlType.valueOf(type));
        assertSameLogits(p, 259, EnumSet.of(GgmlType.valueOf(type)));
        // the same seed writes the same file; another seed other weights
        Path again = tmp.resolve("again.gguf"), other = tmp.resolve("other.gguf");
        GgufExport.exportRandom(c, again, "random", GgmlType.valueOf(type), 5);
        GgufExport.exportRandom(c, other, "random", GgmlType.valueOf(type), 6);
        try {
            assertThat(java.nio.file.Files.mismatch(p, again)).isEqualTo(-1);
            assertThat(java.nio.file.Files.mismatch(p, other)).isNotEqualTo(-1);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @Test
    void aModelWithStoredWeightsRefusesTrainingAndExport() {
        Transformer m = ModelLoader.load(Stories260KGgufTest.data("quant/stories260K-Q6_K.gguf")).model();
        assertThatThrownBy(m::decayMask).isInstanceOf(LongspanException.class).hasMessageContaining("dequantized");
        assertThatThrownBy(() -> GgufExport.export(m, tmp.resolve("x.gguf"), "x", GgmlType.F32)).isInstanceOf(LongspanException.class)
                .hasMessageContaining("dequantized");
    }
}
