package dev.longspan.format;

import dev.longspan.eval.TextScorer;
import dev.longspan.io.TestData;
import dev.longspan.model.InferenceOptions;
import dev.longspan.model.InferenceSession;
import dev.longspan.model.ModelConfig;
import dev.longspan.model.Transformer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.util.Arrays;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * --kv f16 (llama.cpp's default KV cache type) in the llama.cpp-compatible scoring modes: keys and
 * values are rounded to IEEE half precision (round to nearest even) before attention, those of the
 * batch being scored included, so --ctx and --whole give what a float64 reference computes with its
 * keys and values rounded so, and not what the unrounded reference computes (--kv f32 the other
 * way round). One layer of stories260K: through more layers a rounding flipped by a float32-sized
 * difference upstream spreads, and the two references could no longer be told apart.
 */
class HalfKvCacheTest {
    static final InferenceOptions F32 = InferenceOptions.DEFAULT, F16 = new InferenceOptions(true, 0);
    static Transformer model;       // stories260K's embeddings, first layer and head
    static int[] story;
    static int bos;
    static Reference64 exact, rounded;

    @BeforeAll
    static void load() throws IOException {
        ModelLoader.LoadedModel lm = ModelLoader.load(TestData.shared("models/stories260K/hf"));
        Transformer full = lm.model();
        ModelConfig c = full.config;
        ModelConfig one = new ModelConfig(c.vocabSize(), c.dim(), 1, c.heads(), c.kvHeads(), c.headDim(), c.ffnDim(), c.normEps(),
                c.tiedEmbeddings(), c.rope(), c.attention().subList(0, 1), c.tokenizer(), c.contextLength(), c.qkNorm(), c.qkvBias(), 0);
        model = new Transformer(one);
        for (Transformer.Tensor t : model.tensors()) {
            Transformer.Tensor src = full.tensor(t.name());
            System.arraycopy(full.params, src.offset(), model.params, t.offset(), t.size());
        }
        bos = lm.tokenizer().bosId();
        story = TextScorer.tokenize(lm.tokenizer(), Files.readAllBytes(TestData.shared("text/story.txt")));
        exact = reference(one);
        rounded = reference(one);
        rounded.kvRound = Reference64::half;
    }

    static Reference64 reference(ModelConfig c) {
        Reference64 r = Reference64.hf(n -> {
            Transformer.Tensor t = model.tensor(n);
            return t == null ? null : Arrays.copyOfRange(model.params, t.offset(), t.offset() + t.size());
        });
        r.vocab = c.vocabSize(); r.dim = c.dim(); r.layers = 1; r.heads = c.heads(); r.kvHeads = c.kvHeads();
        r.headDim = c.headDim(); r.rot = c.headDim(); r.ffn = c.ffnDim(); r.eps = c.normEps();
        return r.plainRope(10000);
    }

    static int[] chunk(int c) {
        int[] t = Arrays.copyOfRange(story, c * 128, (c + 1) * 128);
        t[0] = bos;
        return t;
    }

    static double[] nll(Reference64 r, int[] t) {
        double[][] lg = r.logits(t);
        double[] out = new double[t.length - 1];
        for (int p = 0; p < out.length; p++) out[p] = logSumExp(lg[p]) - lg[p][t[p + 1]];
        return out;
    }

    static double logSumExp(double[] x) {
        double m = Arrays.stream(x).max().orElseThrow(), s = 0;
        for (double v : x) s += Math.exp(v - m);
        return m + Math.log(s);
    }

    static double maxDiff(double[] a, double[] b) {
        double d = 0;
        for (int i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
        return d;
    }

    @Test
    void ctxChunksAttendToHalfPrecisionKeysAndValues() {
        // a --ctx 128 chunk as TextScorer.chunked feeds it (BOS first, one batch from an empty cache), every row's logits;
        // measured: f32 ~4e-7 from the exact reference, f16 ~3e-5 from the rounded one (a few roundings flipped by
        // float32-sized differences), and 3.2e-4..8.6e-4 between the two references
        for (int c = 0; c < 3; c++) {
            int[] t = chunk(c);
            double[][] re = exact.logits(t), rr = rounded.logits(t);
            float[] f32 = new InferenceSession(model, 128, F32).feed(t, 0, 128, 128), f16 = new InferenceSession(model, 128, F16).feed(t, 0, 128, 128);
            assertThat(Reference64.relError(f32, re)).as("f32, chunk %d", c).isLessThan(1e-5);
            assertThat(Reference64.relError(f32, rr)).as("f32 vs rounded, chunk %d", c).isGreaterThan(2e-4);
            assertThat(Reference64.relError(f16, rr)).as("f16, chunk %d", c).isLessThan(1e-4);
            assertThat(Reference64.relError(f16, re)).as("f16 vs exact, chunk %d", c).isGreaterThan(2e-4);
        }
    }

    @Test
    void wholeModeAttendsToHalfPrecisionKeysAndValues() {
        // every position's next-token NLL of --whole (468 tokens in one batch); measured: f32 1.1e-5..1.6e-5 from the
        // exact reference, f16 5.8e-4 from the rounded one, the references 1.7e-2 apart
        double[] ne = nll(exact, story), nr = nll(rounded, story);
        double[] n32 = TextScorer.whole(model, story, F32, new int[0]).nll(), n16 = TextScorer.whole(model, story, F16, new int[0]).nll();
        assertThat(maxDiff(n32, ne)).isLessThan(1e-4);
        assertThat(maxDiff(n32, nr)).isGreaterThan(5e-3);
        assertThat(maxDiff(n16, nr)).isLessThan(2e-3);
        assertThat(maxDiff(n16, ne)).isGreaterThan(5e-3);
    }
}
