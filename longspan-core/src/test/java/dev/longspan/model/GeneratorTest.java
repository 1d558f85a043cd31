package dev.longspan.model;

import dev.longspan.io.ByteTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

class GeneratorTest {
    // ASCII ids only (the byte tokenizer's first 128): one character per token
    static final ModelConfig C = new ModelConfig(128, 8, 2, 2, 1, 4, 12, 1e-5f, false, "kind=rope,base=10000",
            List.of("dense", "window:size=4"), "byte", 64);
    static final Transformer M = InferenceSessionTest.perturbed(C, 3, new SplittableRandom(11), 0.4);
    static final int[] PROMPT = {72, 101, 108, 108, 111};

    static Generator.Result run(Generator.Options o, float temperature, List<String> pieces) {
        Generator g = new Generator(new InferenceSession(M, PROMPT.length + o.maxTokens()), ByteTokenizer.INSTANCE,
                new Sampler(temperature, 0.9f, 5));
        return g.generate(PROMPT, o, pieces::add);
    }

    @Test
    void greedyTakesTheArgmaxOfAFullForwardAndRecordsItsLogprobs() {
        Generator.Result r = run(Generator.Options.of(12).withLogprobs(3), 0f, new ArrayList<>());
        assertThat(r.ids()).hasSize(12);
        assertThat(r.stop()).isEqualTo(Generator.Stop.MAX_TOKENS);
        assertThat(r.promptTokens()).isEqualTo(PROMPT.length);
        assertThat(r.logprobs()).hasSize(12);
        int V = C.vocabSize();
        for (int i = 0; i < r.ids().length; i++) {
            int[] context = Arrays.copyOf(PROMPT, PROMPT.length + i);
            System.arraycopy(r.ids(), 0, context, PROMPT.length, i);
            float[] all = InferenceSessionTest.fullLogits(M, context, context.length);
            float[] last = Arrays.copyOfRange(all, (context.length - 1) * V, context.length * V);
            int id = r.ids()[i];
            // the training forward and the cached decode agree to rounding: a near tie may go either way
            assertThat((double) last[id]).isCloseTo(last[Sampler.argmax(last)], within(1e-4));
            Sampler.Choice c = r.logprobs().get(i);
            assertThat(c.id()).isEqualTo(id);
            assertThat(c.logprob()).isCloseTo(Sampler.logprobs(last, id, 0).logprob(), within(1e-3));
            assertThat(c.top()).hasSize(3);
            assertThat(c.top().get(0).logprob()).isGreaterThanOrEqualTo(c.top().get(2).logprob());
        }
    }

    @ParameterizedTest
    @ValueSource(floats = {0f, 1.5f})
    void streamedPiecesConcatenateToTheTextOfTheIds(float temperature) {
        List<String> pieces = new ArrayList<>();
        Generator.Result r = run(Generator.Options.of(20), temperature, pieces);
        assertThat(String.join("", pieces)).isEqualTo(r.text());
        assertThat(r.text()).isEqualTo(ByteTokenizer.INSTANCE.decode(r.ids()));
        assertThat(r.logprobs()).isEmpty();
        assertThat(run(Generator.Options.of(20), temperature, new ArrayList<>()).ids()).containsExactly(r.ids());   // seeded
    }

    @Test
    void aStopIdEndsGenerationBeforeIt() {
        int[] free = run(Generator.Options.of(16), 1.5f, new ArrayList<>()).ids();
        int stopId = free[6], first = 0;
        while (free[first] != stopId) first++;
        List<String> pieces = new ArrayList<>();
        Generator.Result r = run(Generator.Options.of(16).withStopIds(200, stopId), 1.5f, pieces);
        assertThat(r.stop()).isEqualTo(Generator.Stop.STOP_TOKEN);
        assertThat(r.ids()).containsExactly(Arrays.copyOf(free, first));
        assertThat(String.join("", pieces)).isEqualTo(r.text()).isEqualTo(ByteTokenizer.INSTANCE.decode(r.ids()));
    }

    @Test
    void aStopStringCutsTheTextAndIsNeverStreamed() {
        String free = run(Generator.Options.of(16), 1.5f, new ArrayList<>()).text();
        String stop = free.substring(7, 10);
        int at = free.indexOf(stop);
        List<String> pieces = new ArrayList<>();
        Generator.Result r = run(Generator.Options.of(16).withStopStrings(List.of("\u00e9never", stop)), 1.5f, pieces);
        assertThat(r.stop()).isEqualTo(Generator.Stop.STOP_STRING);
        assertThat(r.text()).isEqualTo(free.substring(0, at));
        assertThat(String.join("", pieces)).isEqualTo(r.text());
        // the ids run to the token that completed the stop string (one character per token here)
        assertThat(r.ids()).hasSize(at + stop.length());
    }

    @Test
    void aStopStringThatNeverCompletesIsReleasedAtTheEnd() {
        String free = run(Generator.Options.of(10), 1.5f, new ArrayList<>()).text();
        // the text's last two characters begin this stop string: held back, then streamed at the end
        String stop = free.substring(8) + "\u00e9";
        List<String> pieces = new ArrayList<>();
        Generator.Result r = run(Generator.Options.of(10).withStopStrings(List.of(stop)), 1.5f, pieces);
        assertThat(r.stop()).isEqualTo(Generator.Stop.MAX_TOKENS);
        assertThat(r.text()).isEqualTo(free);
        assertThat(String.join("", pieces)).isEqualTo(free);
        assertThat(pieces.getLast()).endsWith(free.substring(8));
    }

    @Test
    void zeroTokensFeedsThePromptOnly() {
        InferenceSession s = new InferenceSession(M, PROMPT.length);
        Generator.Result r = new Generator(s, ByteTokenizer.INSTANCE, new Sampler(0f, 1f, 1)).generate(PROMPT, Generator.Options.of(0), p -> { });
        assertThat(r.ids()).isEmpty();
        assertThat(r.text()).isEmpty();
        assertThat(s.length()).isEqualTo(PROMPT.length);
    }

    @Test
    void withoutATokenizerOnlyIdsComeBack() {
        Generator g = new Generator(new InferenceSession(M, 32), null, new Sampler(0f, 1f, 1));
        List<String> pieces = new ArrayList<>();
        Generator.Result r = g.generate(PROMPT, Generator.Options.of(6), pieces::add);
        assertThat(r.ids()).hasSize(6);
        assertThat(r.text()).isEmpty();
        assertThat(pieces).isEmpty();
        assertThatThrownBy(() -> Generator.Options.of(2).withStopStrings(List.of(""))).hasMessageContaining("stop string");
        assertThatThrownBy(() -> Generator.Options.of(-1)).hasMessageContaining("max tokens");
    }
}
