package dev.longspan.cli;

import static dev.longspan.cli.CliRun.shared;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/** generate's text/ids/logprobs contract and perplexity's llama.cpp modes on stories260K (GGUF and Hugging Face). */
class LlamaCppCliTest {
    @TempDir
    Path dir;

    static final Path MODELS = shared("models/stories260K"), STORY = shared("text/story.txt");

    static Stream<Path> models() { return Stream.of(MODELS.resolve("stories260K.gguf"), MODELS.resolve("hf")); }

    /** The run's JSON, after checking that it succeeded. */
    static JsonNode json(CliRun r) throws Exception {
        assertThat(r.exit()).as(r.err()).isZero();
        return new ObjectMapper().readTree(r.out());
    }

    static int[] ints(JsonNode a) {
        int[] r = new int[a.size()];
        for (int i = 0; i < r.length; i++) r[i] = a.get(i).asInt();
        return r;
    }

    @ParameterizedTest
    @MethodSource("models")
    void theCompletionKeepsTheSpaceItsFirstTokenCarries(Path model) throws Exception {
        JsonNode g = json(CliRun.of("generate", "--model", model.toString(), "--prompt", "The little cat was hungry", "--temperature", "0",
                "--max-tokens", "12", "--json", "--logprobs", "3"));
        assertThat(g.get("text").asText()).startsWith(" and did not like");
        assertThat(g.get("ids").size()).isEqualTo(12);
        assertThat(g.get("prompt_ids").get(0).asInt()).isEqualTo(1);
        JsonNode lp = g.get("logprobs");
        assertThat(lp.size()).isEqualTo(12);
        for (int i = 0; i < lp.size(); i++) {
            JsonNode e = lp.get(i), top = e.get("top");
            assertThat(e.get("id").asInt()).isEqualTo(g.get("ids").get(i).asInt());
            assertThat(top.size()).isEqualTo(3);
            // greedy: the chosen token is the most likely one
            assertThat(top.get(0).get("id").asInt()).isEqualTo(e.get("id").asInt());
            assertThat(top.get(0).get("logprob").asDouble()).isEqualTo(e.get("logprob").asDouble());
            assertThat(top.get(1).get("logprob").asDouble()).isLessThanOrEqualTo(top.get(0).get("logprob").asDouble());
            assertThat(top.get(2).get("logprob").asDouble()).isLessThanOrEqualTo(top.get(1).get("logprob").asDouble());
            assertThat(e.get("logprob").asDouble()).isNegative();
        }
        assertThat(lp.get(0).get("text").asText()).isEqualTo(" and");
    }

    @Test
    void withoutJsonTheCompletionStreamsToStandardOutput() throws Exception {
        Path hf = MODELS.resolve("hf");
        JsonNode g = json(CliRun.of("generate", "--model", hf.toString(), "--prompt", "Once upon a time", "--temperature", "0", "--max-tokens", "48", "--json"));
        CliRun r = CliRun.of("generate", "--model", hf.toString(), "--prompt", "Once upon a time", "--temperature", "0", "--max-tokens", "48");
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out()).isEqualTo(g.get("text").asText() + System.lineSeparator());
        assertThat("Once upon a time" + g.get("text").asText())
                .isEqualTo("Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it,");
    }

    @Test
    void topKAndMinPCutTheSampledTokens() throws Exception {
        Path hf = MODELS.resolve("hf");
        String greedy = json(CliRun.of("generate", "--model", hf.toString(), "--prompt", "Once upon a time", "--temperature", "0", "--max-tokens", "16", "--json"))
                .get("text").asText();
        // only the most likely token survives either cut, whatever the temperature
        for (String[] cut : new String[][]{{"--top-k", "1"}, {"--min-p", "1"}}) {
            JsonNode g = json(CliRun.of("generate", "--model", hf.toString(), "--prompt", "Once upon a time", "--temperature", "2", "--seed", "5",
                    cut[0], cut[1], "--max-tokens", "16", "--json"));
            assertThat(g.get("text").asText()).as(cut[0]).isEqualTo(greedy);
        }
        CliRun bad = CliRun.of("generate", "--model", hf.toString(), "--prompt", "Once", "--min-p", "1.5");
        assertThat(bad.exit()).isEqualTo(2);
        assertThat(bad.err()).contains("--min-p");
    }

    @Test
    void logprobsNeedJson() {
        CliRun r = CliRun.of("generate", "--model", MODELS.resolve("hf").toString(), "--prompt", "Once", "--logprobs", "2");
        assertThat(r.exit()).isEqualTo(2);
        assertThat(r.err()).contains("--logprobs needs --json");
    }

    @ParameterizedTest
    @MethodSource("models")
    void ctxModeGivesLlamaPerplexitysFigure(Path model) throws Exception {
        // the defaults of --ctx are llama-perplexity's: an F16 cache, and llama.cpp's arithmetic replayed where the file is
        // a GGUF it can replay (then the figure is llama-perplexity's to the last digit); the Hugging Face directory runs
        // Longspan's kernels
        JsonNode p = json(CliRun.of("perplexity", "--model", model.toString(), "--data", STORY.toString(), "--ctx", "128", "--json"));
        assertThat(p.get("tokens").asInt()).isEqualTo(189);
        assertThat(p.get("kv").asText()).isEqualTo("f16");
        boolean gguf = model.toString().endsWith(".gguf");
        assertThat(p.get("arithmetic").asText()).isEqualTo(gguf ? "ggml-avx2" : "longspan");
        assertThat(p.get("perplexity").asDouble()).isCloseTo(3.3011, within(3.3011 * (gguf ? 1.5e-5 : 3e-4)));
        assertThat(Math.exp(p.get("mean_nll").asDouble())).isCloseTo(p.get("perplexity").asDouble(), within(1e-9));
    }

    @Test
    void kvF16RoundsTheKeysAndValuesOfTheScoredBatch() throws Exception {
        // llama.cpp's default cache type: --ctx and --whole attend to keys and values rounded to F16, those of the
        // batch being scored included (HalfKvCacheTest checks them against a rounded reference); measured: 3.3014 for
        // 3.3012, both within 0.012% of llama-perplexity's 3.3011
        String m = MODELS.resolve("stories260K.gguf").toString();
        for (String mode : new String[]{"--ctx=128", "--whole"}) {
            double f32 = json(CliRun.of("perplexity", "--model", m, "--data", STORY.toString(), mode, "--kv", "f32", "--arithmetic", "longspan", "--json")).get("perplexity").asDouble();
            double f16 = json(CliRun.of("perplexity", "--model", m, "--data", STORY.toString(), mode, "--kv", "f16", "--arithmetic", "longspan", "--json")).get("perplexity").asDouble();
            assertThat(f16).as(mode).isNotEqualTo(f32).isCloseTo(f32, within(f32 * 3e-4));
            if (mode.startsWith("--ctx")) assertThat(f16).isCloseTo(3.3011, within(3.3011 * 3e-4));
        }
    }

    @Test
    void dequantizeWidensTheStoredWeightsAtLoad() throws Exception {
        // the Q6_K target is mostly Q8_0: stored, ggml's arithmetic (activations rounded to Q8_0);
        // widened to float32, float products — close, but not the same numbers
        String q = MODELS.resolve("quant/stories260K-Q6_K.gguf").toString();
        double stored = json(CliRun.of("perplexity", "--model", q, "--data", STORY.toString(), "--ctx", "128", "--arithmetic", "longspan", "--json")).get("perplexity").asDouble();
        double widened = json(CliRun.of("perplexity", "--model", q, "--data", STORY.toString(), "--ctx", "128", "--json", "--dequantize")).get("perplexity").asDouble();
        assertThat(widened).isNotEqualTo(stored).isCloseTo(stored, within(stored * 5e-3));
        JsonNode g = json(CliRun.of("generate", "--model", q, "--prompt", "Once upon a time", "--raw", "--temperature", "0", "--max-tokens", "8", "--json", "--dequantize"));
        assertThat(g.get("ids").size()).isEqualTo(8);
    }

    @ParameterizedTest
    @MethodSource("models")
    void wholeModeWritesLlamaCppComparablePositions(Path model) throws Exception {
        Path out = dir.resolve("positions.json");
        JsonNode p = json(CliRun.of("perplexity", "--model", model.toString(), "--data", STORY.toString(), "--whole", "--json",
                "--positions", out.toString(), "--logits-at", "0,-1"));
        JsonNode ref = new ObjectMapper().readTree(MODELS.resolve("llamacpp-reference.json").toFile());
        assertThat(p.get("tokens").asInt()).isEqualTo(467);
        assertThat(p.get("mean_nll").asDouble()).isCloseTo(ref.get("mean_nll").asDouble(), within(1e-4));
        JsonNode pos = new ObjectMapper().readTree(out.toFile());
        assertThat(ints(pos.get("tokens"))).containsExactly(ints(ref.get("tokens")));
        assertThat(ints(pos.get("argmax"))).containsExactly(ints(ref.get("argmax")));
        for (int i = 0; i < ref.get("target_nll").size(); i++) {
            assertThat(pos.get("target_nll").get(i).asDouble()).isCloseTo(ref.get("target_nll").get(i).asDouble(), within(1e-4));
            assertThat(pos.get("logits_lse").get(i).asDouble()).isCloseTo(ref.get("logits_lse").get(i).asDouble(), within(1e-4 * 20));
        }
        assertThat(pos.get("logits").get("0").size()).isEqualTo(512);
        assertThat(pos.get("logits").get("467").get(1).asDouble()).isCloseTo(ref.get("last_position_logits").get(1).asDouble(), within(1e-3));
        // the GGUF is replayed with llama.cpp's arithmetic by default (its F32 cache, as the reference was made): its last
        // position's logits are llama.cpp's to the float; the Hugging Face directory runs Longspan's kernels
        boolean gguf = model.toString().endsWith(".gguf");
        assertThat(p.get("arithmetic").asText()).isEqualTo(gguf ? "ggml-avx2" : "longspan");
        if (gguf) {
            for (int v = 0; v < 512; v++) {
                assertThat((float) pos.get("logits").get("467").get(v).asDouble()).isEqualTo((float) ref.get("last_position_logits").get(v).asDouble());
            }
        }
        CliRun again = CliRun.of("perplexity", "--model", model.toString(), "--data", STORY.toString(), "--whole", "--positions", out.toString());
        assertThat(again.exit()).isEqualTo(2);
        assertThat(again.err()).contains("exists");
    }

    @Test
    void theModesAreExclusiveAndNeedEnoughText() {
        String hf = MODELS.resolve("hf").toString();
        CliRun both = CliRun.of("perplexity", "--model", hf, "--data", STORY.toString(), "--whole", "--ctx", "128");
        assertThat(both.exit()).isEqualTo(2);
        assertThat(both.err()).contains("one of --whole and --ctx");
        CliRun tooLong = CliRun.of("perplexity", "--model", hf, "--data", STORY.toString(), "--ctx", "256");
        assertThat(tooLong.exit()).isEqualTo(2);
        assertThat(tooLong.err()).contains("needs at least 512 tokens").contains("468");
        CliRun positions = CliRun.of("perplexity", "--model", hf, "--data", STORY.toString(), "--ctx", "128", "--positions", dir.resolve("p.json").toString());
        assertThat(positions.exit()).isEqualTo(2);
        assertThat(positions.err()).contains("--positions needs --whole");
    }

    // stories260K's Hugging Face directory with a chat template added to its tokenizer_config.json
    Path withTemplate(String template) throws Exception {
        Path d = dir.resolve("chat");
        Files.createDirectories(d);
        try (var files = Files.list(MODELS.resolve("hf"))) {
            for (Path f : (Iterable<Path>) files::iterator) Files.copy(f, d.resolve(f.getFileName().toString()));
        }
        Path cfg = d.resolve("tokenizer_config.json");
        com.fasterxml.jackson.databind.node.ObjectNode json = (com.fasterxml.jackson.databind.node.ObjectNode) new ObjectMapper().readTree(cfg.toFile());
        json.put("chat_template", template);
        cfg.toFile().setWritable(true);
        Files.writeString(cfg, json.toString());
        return d;
    }

    @Test
    void generateRendersTheModelsOwnChatTemplate() throws Exception {
        Path model = withTemplate("{{ bos_token }}{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}");
        JsonNode g = json(CliRun.of("generate", "--model", model.toString(), "--system", "Be kind.", "--prompt", "Tell a story.",
                "--temperature", "0", "--max-tokens", "3", "--json"));
        assertThat(g.get("chat_template").asText()).isEqualTo("jinja");
        dev.longspan.io.Tokenizer tok = dev.longspan.io.BpeTokenizer.fromTokenizerJson(model.resolve("tokenizer.json"));
        // the template writes BOS itself: it is not added twice
        assertThat(ints(g.get("prompt_ids"))).containsExactly(tok.encode("<s>system: Be kind.\nuser: Tell a story.\nassistant:"));
        assertThat(g.get("prompt_ids").get(0).asInt()).isEqualTo(1);
        assertThat(g.get("prompt_ids").get(1).asInt()).isNotEqualTo(1);
        JsonNode raw = json(CliRun.of("generate", "--model", model.toString(), "--raw", "--prompt", "Tell a story.", "--max-tokens", "1", "--json"));
        assertThat(raw.get("chat_template").asText()).isEqualTo("none");
    }

    @Test
    void aTemplatesRaiseExceptionIsOneClearLine() throws Exception {
        Path model = withTemplate("{% if messages[-1].role == 'user' %}{{ raise_exception('The last turn must be the assistant') }}{% endif %}{{ messages[0].content }}");
        CliRun r = CliRun.of("generate", "--model", model.toString(), "--system", "x", "--prompt", "y", "--max-tokens", "1");
        assertThat(r.exit()).isEqualTo(2);
        assertThat(r.err().strip()).doesNotContain("\n").contains("tokenizer_config.json").contains("The last turn must be the assistant");
    }

    @Test
    void aTemplateWithoutSystemTurnsGetsTheSystemTextInTheUserTurn() throws Exception {
        // Gemma-style: a system turn is refused; llama.cpp (and Longspan) put its text before the user's
        Path model = withTemplate("{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
                + "{% for m in messages %}[{{ m.role }}] {{ m.content }}{% endfor %}");
        CliRun r = CliRun.of("generate", "--model", model.toString(), "--system", "Be brief.", "--prompt", "Hi", "--max-tokens", "1", "--json");
        assertThat(r.exit()).as(r.err()).isZero();
        CliRun raw = CliRun.of("generate", "--model", model.toString(), "--raw", "--prompt", "[user] Be brief.\nHi", "--max-tokens", "1", "--json");
        assertThat(raw.exit()).as(raw.err()).isZero();
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        assertThat(json.readTree(r.out()).path("prompt_ids")).isEqualTo(json.readTree(raw.out()).path("prompt_ids"));
    }
}
