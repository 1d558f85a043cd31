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
            assertThat(p.windowLosses()).hasSize(3);
            for (double l : p.windowLosses()) assertThat(l).isCloseTo(Math.log(259), org.assertj.core.data.Offset.offset(1e-4));
        }
    }

    @Test
    void pairedDifferenceIsTheMeanOfPerWindowDifferencesWithItsStandardError() {
        var a = new PerplexityEval.Point(4096, 4, 4 * 8, 2.5, Math.exp(2.5), 1, List.of(2.0, 3.0, 2.5, 2.5));
        var b = new PerplexityEval.Point(262144, 4, 4 * 8, 2.55, Math.exp(2.55), 1, List.of(2.1, 3.0, 2.6, 2.5));
        PerplexityEval.Paired d = b.minus(a);
        // differences 0.1, 0, 0.1, 0: mean 0.05, sample sd 0.0577, standard error 0.0577 / 2
        assertThat(d.lossDiff()).isCloseTo(0.05, org.assertj.core.data.Offset.offset(1e-12));
        assertThat(d.standardError()).isCloseTo(Math.sqrt(0.01 / 3) / 2, org.assertj.core.data.Offset.offset(1e-12));
        assertThat(a.minus(a).lossDiff()).isZero();
        assertThat(new PerplexityEval.Point(4096, 4, 4 * 8, 2.5, Math.exp(2.5), 1, List.of(2.0, 3.0, 2.5, 2.5))).isEqualTo(a).isNotEqualTo(b);
        var one = new PerplexityEval.Point(64, 1, 8, 2, Math.exp(2), 1, List.of(2.0));
        assertThat(one.minus(one).standardError()).isNaN();
        assertThatThrownBy(() -> b.minus(one)).isInstanceOf(IllegalArgumentException.class);
    }

    private static Transformer tinyModel() {
        ModelConfig c = new ModelConfig(259, 16, 1, 2, 2, 8, 32, 1e-5f, true, "kind=rope,base=10000",
                List.of("dense"), "byte", 64);
        Transformer m = new Transformer(c);
        m.initialize(5);
        return m;
    }

    /** Distinct token ids 0..n-1 (mod 256), so a position in the text can be read back from a prompt. */
    private static int[] countingText(int n) {
        int[] t = new int[n];
        for (int i = 0; i < n; i++) t[i] = i % 256;
        return t;
    }

    @ParameterizedTest
    @CsvSource({"400,0.0,0", "400,0.5,17", "700,0.3,990", "700,1.0,123"})
    void textHaystackIsOneStreamFromTheOffsetAcrossTheNeedle(int length, double depth, int offset) {
        int[] text = countingText(1000);
        int[] ids = PasskeyEval.prompt(dev.longspan.io.ByteTokenizer.INSTANCE, length, depth, "48213", PasskeyEval.Haystack.text(text), offset);
        int task = PasskeyTask.TASK.length(), needle = PasskeyTask.needle("48213").length();
        int fillerLen = length - PasskeyTask.minimumLength("48213");
        int before = (int) Math.round(depth * fillerLen);
        for (int i = 0; i < fillerLen; i++) {
            int at = i < before ? task + i : task + needle + i;
            assertThat(ids[at]).as("filler token %d", i).isEqualTo(text[(offset + i) % text.length]);
        }
    }

    @Test
    void repeatedFillerPromptIsTheTrainingPrompt() {
        byte[] f = PasskeyTask.FILLER.getBytes(StandardCharsets.US_ASCII);
        int[] ft = dev.longspan.io.ByteTokenizer.encodeBytes(f, 0, f.length);
        int[] ids = PasskeyEval.prompt(dev.longspan.io.ByteTokenizer.INSTANCE, 900, 0.4, "48213", PasskeyEval.Haystack.repeated(ft), 0);
        byte[] expected = PasskeyTask.build("48213", 900, 0.4, PasskeyTask.Filler.standard()).prompt();
        assertThat(ids).containsExactly(dev.longspan.io.ByteTokenizer.encodeBytes(expected, 0, expected.length));
    }

    @Test
    void textHaystackTrialsStartAtDifferentSeededOffsets() {
        Transformer m = tinyModel();
        int[] text = countingText(100_000);
        java.util.function.LongFunction<List<PasskeyEval.Trial>> grid = seed -> {
            List<PasskeyEval.Trial> trials = new java.util.ArrayList<>();
            PasskeyEval.run(m, dev.longspan.io.ByteTokenizer.INSTANCE, new int[]{300, 400}, new double[]{0, 0.5}, 3,
                    PasskeyEval.Haystack.text(text), seed, dev.longspan.model.InferenceOptions.DEFAULT, (t, done, total) -> trials.add(t));
            return trials;
        };
        List<PasskeyEval.Trial> a = grid.apply(7), b = grid.apply(7), c = grid.apply(8);
        assertThat(a).hasSize(12);
        List<Integer> offsets = a.stream().map(PasskeyEval.Trial::fillerOffset).toList();
        assertThat(offsets).doesNotHaveDuplicates().allMatch(o -> o >= 0 && o < text.length);
        assertThat(b.stream().map(PasskeyEval.Trial::fillerOffset).toList()).isEqualTo(offsets);
        assertThat(b.stream().map(PasskeyEval.Trial::key).toList()).isEqualTo(a.stream().map(PasskeyEval.Trial::key).toList());
        assertThat(c.stream().map(PasskeyEval.Trial::fillerOffset).toList()).isNotEqualTo(offsets);
    }

    @ParameterizedTest
    @CsvSource({"5000,'64,256,1024',32,4", "3000,'100,200',50,10", "1100,'1024,64',16,8", "2000,'512',512,3"})
    void perplexityWindowsScoreTheSameTokensAtEveryLength(int textTokens, String lengthList, int tail, int maxWindows) {
        int[] lengths = java.util.Arrays.stream(lengthList.split(",")).mapToInt(Integer::parseInt).toArray();
        int[] ends = PerplexityEval.windowEnds(textTokens, lengths, tail, maxWindows);
        assertThat(ends.length).isBetween(1, maxWindows);
        for (int w = 0; w < ends.length; w++) {
            assertThat(ends[w]).isLessThan(textTokens);
            for (int L : lengths) assertThat(ends[w] - L).as("window start at length %d", L).isGreaterThanOrEqualTo(0);
            if (w > 0) assertThat(ends[w] - tail).as("scored tails apart").isGreaterThanOrEqualTo(ends[w - 1]);
        }
    }

    @Test
    void perplexityLossIsTheSameAtEveryLengthWhenContextCannotHelp() {
        // attention and FFN outputs zeroed: each logit depends on the current token only, so a
        // length can change the loss only by scoring other tokens
        Transformer m = tinyModel();
        for (int l = 0; l < m.config.layers(); l++) {
            java.util.Arrays.fill(m.params, m.wo[l], m.wo[l] + m.config.qDim() * m.config.dim(), 0f);
            java.util.Arrays.fill(m.params, m.w2[l], m.w2[l] + m.config.ffnDim() * m.config.dim(), 0f);
        }
        // a text whose statistics drift along it: scoring other positions would change the loss
        java.util.SplittableRandom rnd = new java.util.SplittableRandom(3);
        int[] tokens = new int[4000];
        for (int i = 0; i < tokens.length; i++) tokens[i] = (i / 500) * 20 + rnd.nextInt(10 + i / 200);
        List<PerplexityEval.Point> pts = PerplexityEval.run(m, tokens, new int[]{32, 128, 512}, 32, 4, (l, w, n) -> {});
        assertThat(pts).hasSize(3);
        for (PerplexityEval.Point p : pts) {
            assertThat(p.tokensScored()).isEqualTo(4 * 32);
            assertThat(p.loss()).isCloseTo(pts.getFirst().loss(), org.assertj.core.data.Offset.offset(1e-5));
        }
    }

    @Test
    void perplexityRefusesATailLongerThanTheShortestLength() {
        assertThatThrownBy(() -> PerplexityEval.windowEnds(5000, new int[]{64, 256}, 128, 4)).hasMessageContaining("--tail 128");
        assertThatThrownBy(() -> PerplexityEval.windowEnds(200, new int[]{64, 256}, 32, 4)).hasMessageContaining("--lengths: 256");
    }
}
