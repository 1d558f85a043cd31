package dev.longspan.server;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

/** A thinking model's output split into reasoning_content and content, whole and streamed in any pieces. */
class ReasoningTest {
    @Test
    void thinkBlocksGoToReasoningAndTheAnswerStartsAfterTheirWhitespace() {
        assertThat(Reasoning.split("<think>\nplan\n</think>\n\nThe answer.", false)).containsExactly("\nplan\n", "The answer.");
        assertThat(Reasoning.split("  <think>x</think>y", false)).containsExactly("x", "y");
        // the prompt opened the block (DeepSeek R1's generation prompt ends with <think>)
        assertThat(Reasoning.split("plan</think>\nanswer", true)).containsExactly("plan", "answer");
        // never closed: all reasoning
        assertThat(Reasoning.split("<think>still thinking", false)).containsExactly("still thinking", "");
        // no block: the text exactly, leading space and all; a tag later in the text is content
        assertThat(Reasoning.split(" Once upon a time", false)).containsExactly(null, " Once upon a time");
        assertThat(Reasoning.split("a <think>b</think>", false)).containsExactly(null, "a <think>b</think>");
        assertThat(Reasoning.split("<thin", false)).containsExactly(null, "<thin");
        // an empty block is no reasoning (Qwen3 with thinking off writes one)
        assertThat(Reasoning.split("<think>\n\n</think>\n\nHi", false)).containsExactly(null, "Hi");
        assertThat(Reasoning.promptOpensReasoning("<|Assistant|><think>\n")).isTrue();
        assertThat(Reasoning.promptOpensReasoning("<|im_start|>assistant\n")).isFalse();
    }

    @ParameterizedTest
    @ValueSource(longs = {1, 2, 3, 4, 5, 6, 7, 8})
    void streamedPiecesSplitAsTheWholeText(long seed) {
        Random rnd = new Random(seed);
        String[] texts = {"<think>\nplan it\n</think>\n\nThe answer is 42.", " Once upon a time <think> x", "<think>a</thi</think>b</think>c",
                "   \n", "<think></think>", "plan</think>answer", "<th", "<think>\n\n</think>\n\nHi there"};
        for (String text : texts) {
            for (boolean inside : new boolean[]{false, true}) {
                Reasoning r = new Reasoning(inside);
                List<Reasoning.Part> parts = new ArrayList<>();
                for (int i = 0; i < text.length(); ) {
                    int n = Math.min(text.length() - i, 1 + rnd.nextInt(4));
                    parts.addAll(r.accept(text.substring(i, i + n)));
                    i += n;
                }
                parts.addAll(r.finish());
                StringBuilder reasoning = new StringBuilder(), content = new StringBuilder();
                for (Reasoning.Part p : parts) {
                    assertThat(p.text()).isNotEmpty();
                    (p.reasoning() ? reasoning : content).append(p.text());
                }
                String[] whole = Reasoning.split(text, inside);
                assertThat(content.toString()).as(text).isEqualTo(whole[1]);
                // no reasoning in the whole text: at most whitespace reached the stream as reasoning (an empty think block)
                if (whole[0] == null) assertThat(reasoning.toString()).as(text).isBlank();
                else assertThat(reasoning.toString()).as(text).isEqualTo(whole[0]);
            }
        }
    }
}
