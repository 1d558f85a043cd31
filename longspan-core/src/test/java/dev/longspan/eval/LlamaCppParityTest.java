package dev.longspan.eval;

import static dev.longspan.io.TestData.shared;
import dev.longspan.io.Json;
import dev.longspan.model.InferenceOptions;
import dev.longspan.model.InferenceSession;
import dev.longspan.format.ModelLoader;
import dev.longspan.model.Sampler;
import dev.longspan.model.TextStream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/**
 * stories260K against llama.cpp's own numbers (llamacpp-reference.json, and the llama-perplexity
 * figures of the data README): the same tokens, per-position log-sum-exp / NLL / argmax, the
 * greedy continuation, and the --ctx 128 perplexity, for the GGUF, its quantized copies and the
 * Hugging Face directory.
 */
class LlamaCppParityTest {
    static final Path DIR = shared("models/stories260K");
    static final Path GGUF = DIR.resolve("stories260K.gguf"), HF = DIR.resolve("hf");
    static final Map<Path, ModelLoader.LoadedModel> LOADED = new ConcurrentHashMap<>();

    /** Loads a model once per test class run. */
    static ModelLoader.LoadedModel load(Path p) {
        return LOADED.computeIfAbsent(p, ModelLoader::load);
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> reference() {
        try {
            return Json.parseObject(Files.readString(DIR.resolve("llamacpp-reference.json")), "llamacpp-reference.json");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static byte[] story() {
        try {
            return Files.readAllBytes(shared("text/story.txt"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static int[] ints(Object list) {
        return ((List<?>) list).stream().mapToInt(o -> ((Number) o).intValue()).toArray();
    }

    static double[] doubles(Object list) {
        return ((List<?>) list).stream().mapToDouble(o -> ((Number) o).doubleValue()).toArray();
    }

    static Stream<Path> f32Models() { return Stream.of(GGUF, HF); }

    @ParameterizedTest
    @MethodSource("f32Models")
    void tokensAreLlamaCppsTokens(Path model) {
        int[] got = TextScorer.tokenize(load(model).tokenizer(), story());
        assertThat(got).containsExactly(ints(reference().get("tokens")));
    }

    @ParameterizedTest
    @MethodSource("f32Models")
    void perPositionValuesMatchLlamaCppInF32(Path model) {
        Map<String, Object> ref = reference();
        ModelLoader.LoadedModel lm = load(model);
        TextScorer.Positions p = TextScorer.whole(lm.model(), ints(ref.get("tokens")), InferenceOptions.DEFAULT, new int[]{0, -1});
        double[] lse = doubles(ref.get("logits_lse")), nll = doubles(ref.get("target_nll"));
        double maxLse = 0, maxNll = 0;
        for (int i = 0; i < lse.length; i++) maxLse = Math.max(maxLse, Math.abs(p.lse()[i] - lse[i]) / Math.abs(lse[i]));
        for (int i = 0; i < nll.length; i++) maxNll = Math.max(maxNll, Math.abs(p.nll()[i] - nll[i]) / Math.max(1, Math.abs(nll[i])));
        assertThat(maxLse).isLessThan(1e-4);
        assertThat(maxNll).isLessThan(1e-4);
        assertThat(p.argmax()).containsExactly(ints(ref.get("argmax")));
        assertThat(p.meanNll()).isCloseTo((Double) ref.get("mean_nll"), within(1e-4));
        int n = lse.length;
        double[] first = doubles(ref.get("first_position_logits")), last = doubles(ref.get("last_position_logits"));
        for (int i = 0; i < first.length; i++) {
            assertThat((double) p.logits().get(0)[i]).isCloseTo(first[i], within(1e-4 * Math.max(1, Math.abs(first[i]))));
            assertThat((double) p.logits().get(n - 1)[i]).isCloseTo(last[i], within(1e-4 * Math.max(1, Math.abs(last[i]))));
        }
    }

    @ParameterizedTest
    @MethodSource("f32Models")
    @SuppressWarnings("unchecked")
    void greedyContinuationIsLlamaCpps(Path model) {
        Map<String, Object> greedy = (Map<String, Object>) reference().get("greedy");
        ModelLoader.LoadedModel lm = load(model);
        String prompt = (String) greedy.get("prompt");
        int[] ids = lm.promptIds(prompt, true);
        assertThat(ids[0]).isEqualTo(lm.tokenizer().bosId());
        int n = ((Number) greedy.get("new_tokens")).intValue();
        InferenceSession s = new InferenceSession(lm.model(), ids.length + n);
        TextStream stream = new TextStream(lm.tokenizer(), ids);
        float[] logits = s.feed(ids, 0, ids.length);
        int[] all = java.util.Arrays.copyOf(ids, ids.length + n);
        for (int i = 0; i < n; i++) {
            int next = Sampler.argmax(logits);
            assertThat(lm.isStop(next)).as("stop token at %d", i).isFalse();
            all[ids.length + i] = next;
            stream.push(next);
            logits = s.feed(all, ids.length + i, ids.length + i + 1);
        }
        stream.finish();
        // llama-cli prints the prompt as its tokens decode: with SentencePiece's leading space
        assertThat(" " + prompt + stream.text()).isEqualTo(greedy.get("text"));
        assertThat(prompt + stream.text()).isEqualTo(lm.tokenizer().decode(all, 1, all.length));
    }

    static Stream<Arguments> perplexityFigures() {
        // llama-perplexity -c 128 on text/story.txt (data README; llama.cpp's default F16 KV cache), here with a float32
        // and with a half-precision KV cache (--kv f16: keys and values rounded to F16 before attention, as llama.cpp's
        // cache holds them; HalfKvCacheTest). Measured over the four kernel builds the tests run (512/256/128-bit vectors,
        // scalar), F32 / F16 KV cache: F32 and HF +0.004% / +0.009..+0.012%, the F16 file -0.019..-0.009% /
        // -0.015..-0.004%, so they hold 3e-4 and 4e-4; BF16 +0.07..+0.11% / -0.07..-0.02% holds 0.2%; the Q8_0 / Q5_0 /
        // IQ4_NL mixes only 0.5%: Q6_K -0.15..-0.14% / +0.10..+0.22%, Q4_K_M -0.46..-0.38% / -0.33..-0.25%, Q2_K
        // -0.34..-0.25% / -0.14..-0.12% (the F16 cache does not bring them within 0.1%). No tighter figure would be
        // honest: their products are llama.cpp's (bosPositionIsLlamaCppsArithmetic: 3e-7) but every product rounds its
        // input to a Q8_0 grid, so a 1-ulp change of an input (another summation order in attention, a kernel width, the
        // cache's rounding) moves a few quants by a step and the figure by up to ±0.2% (measured: eight runs with ±1 ulp
        // noise on every product's input, Q6_K 3.3013..3.3132, Q4_K_M 3.3278..3.3354, Q2_K 3.6011..3.6095). llama.cpp
        // varies as much: its build c392e50 gives Q6_K 3.3098 / 3.3117, Q4_K_M 3.3293 / 3.3377, Q2_K 3.6127 / 3.6140
        // with an F16 / F32 KV cache (not the README's 3.3120, 3.3423, 3.6130), and Q2_K 3.5955 with the F32 cache when
        // fed one token at a time (its IQ4_NL products then sum in another order). The README's figures are the same
        // source built for AVX2 without AVX-512 (F16 cache: 3.3120, 3.3423, 3.6130 exactly; F32 cache 3.3073, 3.3348,
        // 3.6199): the two SIMD builds of one llama.cpp differ by up to 0.39%. GgmlReplicaTest gives the figures to the last
        // digit by replaying that AVX2 build's arithmetic (perplexity --arithmetic ggml-avx2).
        return Stream.of(false, true).flatMap(half -> Stream.of(Arguments.of(GGUF, half, 3.3011, 3e-4), Arguments.of(HF, half, 3.3011, 3e-4),
                Arguments.of(DIR.resolve("quant/stories260K-F16.gguf"), half, 3.3013, 4e-4),
                Arguments.of(DIR.resolve("quant/stories260K-BF16.gguf"), half, 3.3017, 2e-3),
                Arguments.of(DIR.resolve("quant/stories260K-Q6_K.gguf"), half, 3.3120, 5e-3),
                Arguments.of(DIR.resolve("quant/stories260K-Q4_K_M.gguf"), half, 3.3423, 5e-3),
                Arguments.of(DIR.resolve("quant/stories260K-Q2_K.gguf"), half, 3.6130, 5e-3)));
    }

    static Stream<String> quantizedFileNames() {
        return Stream.of("F16", "BF16", "Q6_K", "Q4_K_M", "Q2_K").map(t -> "stories260K-" + t + ".gguf");
    }

    /**
     * The BOS position (the first of every llama-perplexity chunk) has no attention to speak of, so it
     * shows the products' arithmetic alone: with activations rounded to each weight type's vec_dot_type
     * as ggml does, Longspan gives llama.cpp's logits to ~3e-7 of the largest; without that rounding
     * (--dequantize) they differ by 2e-4 (F16) to 8e-3 (Q6_K). Checked in a 128-position prefill (the
     * perplexity path) and in a one-token decode step (the integer-dot path).
     */
    @ParameterizedTest
    @MethodSource("quantizedFileNames")
    @SuppressWarnings("unchecked")
    void bosPositionIsLlamaCppsArithmetic(String file) throws IOException {
        Map<String, Object> ref;
        try (var in = LlamaCppParityTest.class.getResourceAsStream("llamacpp-bos-logits.json")) {
            ref = Json.parseObject(new String(in.readAllBytes(), StandardCharsets.UTF_8), "llamacpp-bos-logits.json");
        }
        double[] want = doubles(((Map<String, Object>) ref.get("logits")).get(file));
        ModelLoader.LoadedModel lm = load(DIR.resolve("quant/" + file));
        int[] chunk = java.util.Arrays.copyOf(ints(reference().get("tokens")), 128);
        float[] prefill = new InferenceSession(lm.model(), 128, InferenceOptions.DEFAULT).feed(chunk, 0, 128, 128);
        float[] decode = new InferenceSession(lm.model(), 1, InferenceOptions.DEFAULT).feed(chunk, 0, 1);
        double scale = java.util.Arrays.stream(want).map(Math::abs).max().orElseThrow();
        for (int v = 0; v < want.length; v++) {
            assertThat((double) prefill[v]).as("prefill logit %d", v).isCloseTo(want[v], within(1e-5 * scale));
            assertThat((double) decode[v]).as("decode logit %d", v).isCloseTo(want[v], within(1e-5 * scale));
        }
    }

    @ParameterizedTest
    @MethodSource("perplexityFigures")
    void ctx128PerplexityIsLlamaPerplexitys(Path model, boolean halfKv, double expected, double relTol) {
        ModelLoader.LoadedModel lm = load(model);
        int[] tokens = TextScorer.tokenize(lm.tokenizer(), story());
        TextScorer.Score sc = TextScorer.chunked(lm.model(), tokens, 128, lm.tokenizer().bosId(), new InferenceOptions(halfKv, 0));
        assertThat(sc.tokens()).isEqualTo(3 * 63);   // 468 tokens: 3 chunks of 128, positions 64..126 scored
        assertThat(sc.perplexity()).isCloseTo(expected, within(expected * relTol));
    }

    static Stream<Arguments> quantizedFiles() {
        // type, largest relative LSE error, largest error of the mean NLL, most argmax changes (of 468):
        // bounds about 4x what the weights' rounding gives here (F16 keeps 11 significant bits, BF16 8,
        // the Q6_K target is mostly Q8_0, Q4_K_M mostly Q5_0, Q2_K mostly IQ4_NL; see the tensor types)
        return Stream.of(Arguments.of("F16", 2e-3, 1e-3, 2), Arguments.of("BF16", 1.5e-2, 2e-3, 5), Arguments.of("Q6_K", 4e-2, 3e-3, 10),
                Arguments.of("Q4_K_M", 0.2, 0.03, 80), Arguments.of("Q2_K", 0.4, 0.15, 160));
    }

    @ParameterizedTest
    @MethodSource("quantizedFiles")
    /** llama.cpp's reference is F32: a quantized file's values may differ by what its weight types round away. */
    void quantizedPerPositionValuesStayNearLlamaCppsF32(String type, double lseTol, double nllTol, int argmaxMisses) {
        Map<String, Object> ref = reference();
        ModelLoader.LoadedModel lm = load(DIR.resolve("quant/stories260K-" + type + ".gguf"));
        TextScorer.Positions p = TextScorer.whole(lm.model(), ints(ref.get("tokens")), InferenceOptions.DEFAULT, new int[0]);
        double[] lse = doubles(ref.get("logits_lse"));
        int[] am = ints(ref.get("argmax"));
        double maxLse = 0;
        int misses = 0;
        for (int i = 0; i < lse.length; i++) maxLse = Math.max(maxLse, Math.abs(p.lse()[i] - lse[i]) / Math.abs(lse[i]));
        for (int i = 0; i < am.length; i++) if (p.argmax()[i] != am[i]) misses++;
        assertThat(maxLse).as("relative LSE error").isLessThan(lseTol);
        assertThat(Math.abs(p.meanNll() - (Double) ref.get("mean_nll"))).as("mean NLL error").isLessThan(nllTol);
        assertThat(misses).as("argmax changes").isLessThanOrEqualTo(argmaxMisses);
    }

    @Test
    void theGgufAndTheHuggingFaceDirectoryAgree() {
        ModelLoader.LoadedModel gguf = load(GGUF), hf = load(HF);
        int[] tg = TextScorer.tokenize(gguf.tokenizer(), story());
        assertThat(TextScorer.tokenize(hf.tokenizer(), story())).containsExactly(tg);
        TextScorer.Positions a = TextScorer.whole(gguf.model(), tg, InferenceOptions.DEFAULT, new int[]{0, 100, -1});
        TextScorer.Positions b = TextScorer.whole(hf.model(), tg, InferenceOptions.DEFAULT, new int[]{0, 100, -1});
        assertThat(a.argmax()).containsExactly(b.argmax());
        for (int i = 0; i < a.lse().length; i++) assertThat(a.lse()[i]).isCloseTo(b.lse()[i], within(1e-5 * Math.abs(b.lse()[i])));
        for (int i = 0; i < a.nll().length; i++) assertThat(a.nll()[i]).isCloseTo(b.nll()[i], within(1e-5));
        for (int pos : a.logits().keySet()) {
            for (int v = 0; v < 512; v++) assertThat(a.logits().get(pos)[v]).isCloseTo(b.logits().get(pos)[v], within(1e-4f));
        }
        assertThat(gguf.promptIds("Once upon a time", true)).containsExactly(hf.promptIds("Once upon a time", true));
    }
}
