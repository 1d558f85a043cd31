package dev.longspan.eval;

import dev.longspan.model.ModelConfig;
import dev.longspan.model.Transformer;
import dev.longspan.train.PasskeyTask;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class PasskeyEvalTest {

    @ParameterizedTest
    @CsvSource({"400,0.0", "400,0.5", "400,1.0", "1000,0.25", "4099,0.75", "257,0.5"})
    void promptHasExactLengthAndOneNeedleAtTheDepth(int length, double depth) {
        PasskeyTask.Prompt p = PasskeyTask.build("48213", length, depth, PasskeyTask.Filler.standard());
        assertThat(p.prompt()).hasSize(length);
        String s = new String(p.prompt(), StandardCharsets.US_ASCII);
        String needle = PasskeyTask.needle("48213");
        assertThat(s.indexOf(needle)).isEqualTo(p.needleAt()).isEqualTo(s.lastIndexOf(needle));
        assertThat(s).startsWith(PasskeyTask.TASK).endsWith(PasskeyTask.QUESTION);
        int fillerLen = length - PasskeyTask.minimumLength("48213");
        int before = p.needleAt() - PasskeyTask.TASK.length();
        assertThat((double) before).isCloseTo(depth * fillerLen, org.assertj.core.data.Offset.offset(1.0));
        assertThat(new String(p.answer(), StandardCharsets.US_ASCII)).isEqualTo(" 48213");
    }

    @Test
    void fileFillerIsUsedAndTooShortPromptsAreRefused() {
        byte[] hay = "abc".getBytes(StandardCharsets.US_ASCII);
        PasskeyTask.Prompt p = PasskeyTask.build("11111", 300, 0.5, (dst, from, n) -> {
            for (int i = 0; i < n; i++) dst[from + i] = hay[i % 3];
        });
        assertThat(new String(p.prompt(), StandardCharsets.US_ASCII)).contains("abcabc").doesNotContain("grass");
        assertThatThrownBy(() -> PasskeyTask.build("11111", 100, 0.5, PasskeyTask.Filler.standard()))
                .hasMessageContaining("too short");
    }

    @Test
    void tinyModelRunsTheGridEndToEndAndScoresExactMatch() {
        ModelConfig c = new ModelConfig(259, 16, 2, 2, 1, 8, 32, 1e-5f, true, "kind=rope,base=10000",
                List.of("window:size=32", "dilated:w=64,256;r=1,4"), "byte", 64);
        Transformer m = new Transformer(c);
        m.initialize(5);
        List<PasskeyEval.Cell> cells = PasskeyEval.run(m, new int[]{300, 600}, new double[]{0, 1}, 2,
                PasskeyTask.Filler.standard(), 1, (t, done, total) -> {
                    assertThat(t.answer()).hasSizeLessThanOrEqualTo(6);
                    assertThat(t.correct()).isEqualTo(t.answer().equals(t.key()));
                });
        assertThat(cells).hasSize(4);
        for (PasskeyEval.Cell cell : cells) {
            assertThat(cell.trials()).isEqualTo(2);
            assertThat(cell.accuracy()).isBetween(0.0, 1.0);
        }
        // an untrained model does not retrieve five random digits
        assertThat(cells.stream().mapToInt(PasskeyEval.Cell::correct).sum()).isZero();
    }

    @Test
    void perplexityOfAUniformModelIsTheVocabularySize() {
        ModelConfig c = new ModelConfig(259, 16, 1, 2, 2, 8, 32, 1e-5f, false, "kind=rope,base=10000",
                Collections.nCopies(1, "dense"), "byte", 64);
        Transformer m = new Transformer(c); // all-zero weights: every logit is 0, so the loss is ln(259)
        int[] tokens = new int[3000];
        for (int i = 0; i < tokens.length; i++) tokens[i] = i % 200;
        List<PerplexityEval.Point> pts = PerplexityEval.run(m, tokens, new int[]{64, 256}, 32, 3, (l, w, n) -> {});
        for (PerplexityEval.Point p : pts) {
            assertThat(p.perplexity()).isCloseTo(259, org.assertj.core.data.Offset.offset(1e-2));
            assertThat(p.tokensScored()).isEqualTo(3 * 32);
        }
    }
}
