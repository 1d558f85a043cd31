package dev.longspan.eval;

import dev.longspan.model.InferenceOptions;
import dev.longspan.model.ModelConfig;
import dev.longspan.model.Transformer;
import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.Test;

import java.util.Collections;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/** llama-perplexity's chunking rules and the whole-text pass, on a small random model. */
class TextScorerTest {
    static final int V = 64, BOS = 1;

    static Transformer model() {
        ModelConfig c = new ModelConfig(V, 32, 2, 4, 2, 8, 48, 1e-5f, false, "kind=rope,base=10000,pairing=half",
                Collections.nCopies(2, "dense"), "test", 512);
        Transformer m = new Transformer(c);
        m.initialize(3);
        SplittableRandom r = new SplittableRandom(5);
        for (int i = 0; i < m.params.length; i++) m.params[i] += (float) r.nextDouble(-0.3, 0.3);
        return m;
    }

    static int[] tokens(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] t = new int[n];
        for (int i = 0; i < n; i++) t[i] = r.nextInt(V);
        t[0] = BOS;
        return t;
    }

    @Test
    void chunksStartWithBosAndScoreTheirSecondHalf() {
        Transformer m = model();
        int ctx = 16, first = ctx / 2;
        int[] t = tokens(2 * ctx + 7, 9);
        double sum = 0;
        for (int c = 0; c < 2; c++) {
            int[] chunk = java.util.Arrays.copyOfRange(t, c * ctx, (c + 1) * ctx);
            chunk[0] = BOS;
            TextScorer.Positions p = TextScorer.whole(m, chunk, InferenceOptions.DEFAULT, new int[0]);
            for (int i = first; i < ctx - 1; i++) sum += p.nll()[i];
        }
        TextScorer.Score s = TextScorer.chunked(m, t, ctx, BOS, InferenceOptions.DEFAULT);
        assertThat(s.tokens()).isEqualTo(2 * (ctx - 1 - first));
        assertThat(s.meanNll()).isCloseTo(sum / s.tokens(), within(1e-6));
        assertThat(s.perplexity()).isCloseTo(Math.exp(s.meanNll()), within(1e-12));
    }

    @Test
    void theTailAndEachChunksFirstTokenDoNotCount() {
        Transformer m = model();
        int ctx = 16;
        int[] t = tokens(2 * ctx + 7, 9), u = t.clone();
        u[ctx] = (u[ctx] + 1) % V;            // replaced by BOS
        u[2 * ctx + 3] = (u[2 * ctx + 3] + 1) % V;   // past the last whole chunk
        double a = TextScorer.chunked(m, t, ctx, BOS, InferenceOptions.DEFAULT).meanNll();
        assertThat(TextScorer.chunked(m, u, ctx, BOS, InferenceOptions.DEFAULT).meanNll()).isEqualTo(a);
        u[ctx + ctx / 2 + 1] = (u[ctx + ctx / 2 + 1] + 1) % V;   // a scored token
        assertThat(TextScorer.chunked(m, u, ctx, BOS, InferenceOptions.DEFAULT).meanNll()).isNotEqualTo(a);
        // without BOS (a vocabulary that adds none) the chunk's own first token is fed
        u = t.clone();
        u[ctx] = (u[ctx] + 1) % V;
        assertThat(TextScorer.chunked(m, u, ctx, -1, InferenceOptions.DEFAULT).meanNll())
                .isNotEqualTo(TextScorer.chunked(m, t, ctx, -1, InferenceOptions.DEFAULT).meanNll());
    }

    @Test
    void likeLlamaPerplexityTwoChunksAreNeeded() {
        assertThatThrownBy(() -> TextScorer.chunked(model(), tokens(31, 1), 16, BOS, InferenceOptions.DEFAULT))
                .isInstanceOf(LongspanException.class).hasMessageContaining("needs at least 32 tokens");
    }

    @Test
    void wholeValuesAreTheLogitsLogSumExpArgmaxAndNextTokenNll() {
        Transformer m = model();
        int[] t = tokens(40, 2);
        TextScorer.Positions p = TextScorer.whole(m, t, InferenceOptions.DEFAULT, new int[]{3, -1});
        assertThat(p.logits()).containsOnlyKeys(3, 39);
        for (int pos : new int[]{3, 39}) {
            float[] l = p.logits().get(pos);
            double max = Double.NEGATIVE_INFINITY, s = 0;
            int am = 0;
            for (int i = 0; i < V; i++) { max = Math.max(max, l[i]); if (l[i] > l[am]) am = i; }
            for (float x : l) s += Math.exp(x - max);
            assertThat(p.lse()[pos]).isCloseTo(max + Math.log(s), within(1e-9));
            assertThat(p.argmax()[pos]).isEqualTo(am);
            if (pos < 39) assertThat(p.nll()[pos]).isCloseTo(p.lse()[pos] - l[t[pos + 1]], within(1e-9));
        }
        assertThat(p.nll()).hasSize(39);
        assertThatThrownBy(() -> TextScorer.whole(m, t, InferenceOptions.DEFAULT, new int[]{40}))
                .isInstanceOf(LongspanException.class).hasMessageContaining("position 40");
    }
}
