package dev.longspan.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.longspan.format.ModelLoader;
import dev.longspan.model.InferenceOptions;
import dev.longspan.server.OpenAiServer;
import dev.longspan.server.ServerOptions;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** longspan serve's HTTP API over stories260K, in-process on loopback. */
class ServeTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final HttpClient HTTP = HttpClient.newHttpClient();
    static ModelLoader.LoadedModel lm;
    static OpenAiServer server;

    static ServerOptions options(int parallel, int queue, long timeoutMillis, String key, long kvBudget, Path kvDir) {
        return new ServerOptions("127.0.0.1", 0, key, "stories260K", 4096, parallel, queue, timeoutMillis, 2048, kvBudget, kvDir);
    }

    static OpenAiServer start(ServerOptions o) {
        return OpenAiServer.create(lm, JinjaChatTemplate.forModel(lm), InferenceOptions.DEFAULT, o, "stories260K-test").start();
    }

    @BeforeAll
    static void load() {
        lm = ModelLoading.load(CliRun.shared("models/stories260K/stories260K.gguf"), null, null, false);
        server = start(options(2, 8, 600_000, null, 1L << 30, null));
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    static HttpResponse<String> post(OpenAiServer s, String path, String body, String... headers) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + s.port() + path))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body));
        for (int i = 0; i < headers.length; i += 2) b.header(headers[i], headers[i + 1]);
        return HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    static HttpResponse<String> get(OpenAiServer s, String path) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + s.port() + path)).build(), HttpResponse.BodyHandlers.ofString());
    }

    static JsonNode json(HttpResponse<String> r) throws Exception { return JSON.readTree(r.body()); }

    static String completion(String prompt, int maxTokens, String extra) {
        return "{\"model\":\"stories260K\",\"prompt\":" + JSON.valueToTree(prompt) + ",\"max_tokens\":" + maxTokens + ",\"temperature\":0" + extra + "}";
    }

    @Test
    void greedyCompletionIsLlamaCppsContinuation() throws Exception {
        HttpResponse<String> r = post(server, "/v1/completions", completion("Once upon a time", 20, ""));
        assertThat(r.statusCode()).isEqualTo(200);
        JsonNode j = json(r);
        assertThat(j.path("choices").get(0).path("text").asText()).startsWith(", there was a little girl named Lily.");
        assertThat(j.path("choices").get(0).path("finish_reason").asText()).isEqualTo("length");
        assertThat(j.path("usage").path("completion_tokens").asInt()).isEqualTo(20);
        assertThat(j.path("model").asText()).isEqualTo("stories260K");
    }

    @Test
    void streamedChatEqualsTheWholeAnswerAndEndsWithUsageThenDone() throws Exception {
        String body = "{\"model\":\"stories260K\",\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}],\"max_tokens\":24,\"temperature\":0";
        JsonNode whole = json(post(server, "/v1/chat/completions", body + "}"));
        String text = whole.path("choices").get(0).path("message").path("content").asText();
        assertThat(whole.path("object").asText()).isEqualTo("chat.completion");
        HttpResponse<String> s = post(server, "/v1/chat/completions", body + ",\"stream\":true}");
        assertThat(s.headers().firstValue("content-type").orElse("")).startsWith("text/event-stream");
        List<String> events = new ArrayList<>();
        for (String line : s.body().split("\n")) if (line.startsWith("data: ")) events.add(line.substring(6));
        assertThat(events.getLast()).isEqualTo("[DONE]");
        JsonNode usage = JSON.readTree(events.get(events.size() - 2));
        assertThat(usage.path("choices")).isEmpty();
        assertThat(usage.path("usage").path("completion_tokens").asInt()).isEqualTo(24);
        StringBuilder streamed = new StringBuilder();
        String finish = null;
        for (String e : events.subList(0, events.size() - 2)) {
            JsonNode c = JSON.readTree(e).path("choices").get(0);
            streamed.append(c.path("delta").path("content").asText(""));
            if (!c.path("finish_reason").isNull()) finish = c.path("finish_reason").asText();
        }
        assertThat(streamed.toString()).isEqualTo(text);
        assertThat(finish).isEqualTo("length");
    }

    @Test
    void chatTemplateKwargsReachTheTemplateAndTextPartsJoinWithNewlines() throws Exception {
        // a template whose output depends on a variable; the prompt's length (usage) shows what it rendered
        dev.longspan.model.ChatFormat chat = new JinjaChatTemplate("{% for m in messages %}{{ m.content }}{% endfor %}"
                + "{% if enable_thinking is defined and not enable_thinking %} and then they went home{% endif %}", "", "", "t")
                .withVariables(java.util.Map.of("enable_thinking", true));
        try (OpenAiServer s = OpenAiServer.create(lm, chat, InferenceOptions.DEFAULT, options(1, 4, 600_000, null, 1L << 26, null), "kwargs-test").start()) {
            String base = "{\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}],\"max_tokens\":1,\"temperature\":0";
            int plain = json(post(s, "/v1/chat/completions", base + "}")).path("usage").path("prompt_tokens").asInt();
            int off = json(post(s, "/v1/chat/completions", base + ",\"chat_template_kwargs\":{\"enable_thinking\":false}}")).path("usage").path("prompt_tokens").asInt();
            assertThat(off).isEqualTo(lm.tokenizer().encode("Once upon a time and then they went home").length + 1);
            assertThat(plain).isEqualTo(lm.tokenizer().encode("Once upon a time").length + 1);
            HttpResponse<String> bad = post(s, "/v1/chat/completions", base + ",\"chat_template_kwargs\":{\"messages\":[]}}");
            assertThat(bad.statusCode()).isEqualTo(400);
            assertThat(json(bad).path("error").path("param").asText()).isEqualTo("chat_template_kwargs");
            assertThat(post(s, "/v1/chat/completions", base + ",\"chat_template_kwargs\":true}").statusCode()).isEqualTo(400);
            // text content parts are joined by newlines (llama.cpp's and vLLM's servers)
            int parts = json(post(s, "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Once upon\"},"
                    + "{\"type\":\"text\",\"text\":\"a time\"}]}],\"max_tokens\":1}")).path("usage").path("prompt_tokens").asInt();
            assertThat(parts).isEqualTo(lm.tokenizer().encode("Once upon\na time").length + 1);
        }
    }

    @Test
    void aConversationEndingWithAnAssistantTurnIsContinued() throws Exception {
        // llama.cpp's assistant prefill: the turns before it with the assistant's turn opened, then its text
        // (stories260K has no template: turns are joined by blank lines, so the prompt is the two texts run together)
        JsonNode chat = json(post(server, "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"},"
                + "{\"role\":\"assistant\",\"content\":\", there was a\"}],\"max_tokens\":8,\"temperature\":0}"));
        JsonNode text = json(post(server, "/v1/completions", completion("Once upon a time, there was a", 8, "")));
        assertThat(chat.path("choices").get(0).path("message").path("content").asText())
                .isEqualTo(text.path("choices").get(0).path("text").asText()).isNotEmpty();
        assertThat(chat.path("usage").path("prompt_tokens").asInt()).isEqualTo(text.path("usage").path("prompt_tokens").asInt());
    }

    @Test
    void reasoningAfterAThinkPromptGoesToReasoningContent() throws Exception {
        // a template whose generation prompt opens a think block (as DeepSeek R1's does): the output, never closed
        // here, is all reasoning; reasoning_format "none" keeps it in content (llama.cpp's behaviour and option)
        dev.longspan.model.ChatFormat chat = new JinjaChatTemplate("{% for m in messages %}{{ m.content }}{% endfor %}<think>\n", "", "", "t");
        try (OpenAiServer s = OpenAiServer.create(lm, chat, InferenceOptions.DEFAULT, options(1, 4, 600_000, null, 1L << 26, null), "think-test").start()) {
            String base = "{\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}],\"max_tokens\":12,\"temperature\":0";
            JsonNode split = json(post(s, "/v1/chat/completions", base + "}")).path("choices").get(0).path("message");
            JsonNode kept = json(post(s, "/v1/chat/completions", base + ",\"reasoning_format\":\"none\"}")).path("choices").get(0).path("message");
            assertThat(kept.path("content").asText()).isNotBlank();
            assertThat(kept.has("reasoning_content")).isFalse();
            assertThat(split.path("reasoning_content").asText()).isEqualTo(kept.path("content").asText());
            assertThat(split.path("content").asText()).isEmpty();
            // streamed: the same text in reasoning_content deltas
            StringBuilder streamed = new StringBuilder();
            for (String line : post(s, "/v1/chat/completions", base + ",\"stream\":true}").body().split("\n")) {
                if (!line.startsWith("data: {")) continue;
                JsonNode d = JSON.readTree(line.substring(6)).path("choices").path(0).path("delta");
                assertThat(d.path("content").asText("")).isEmpty();
                streamed.append(d.path("reasoning_content").asText(""));
            }
            assertThat(streamed.toString()).isEqualTo(kept.path("content").asText());
            assertThat(post(s, "/v1/chat/completions", base + ",\"reasoning_format\":\"yes\"}").statusCode()).isEqualTo(400);
        }
    }

    @Test
    void aStopSequenceEndsTheTextBeforeItAndIsNeverSent() throws Exception {
        JsonNode j = json(post(server, "/v1/completions", completion("Once upon a time", 40, ",\"stop\":[\"Lily\"]")));
        assertThat(j.path("choices").get(0).path("text").asText()).isEqualTo(", there was a little girl named ");
        assertThat(j.path("choices").get(0).path("finish_reason").asText()).isEqualTo("stop");
        HttpResponse<String> s = post(server, "/v1/completions", completion("Once upon a time", 40, ",\"stop\":\"Lily\",\"stream\":true"));
        assertThat(s.body()).doesNotContain("Lily").contains("\"finish_reason\":\"stop\"");
    }

    @Test
    void logprobsComeInOpenAisShapes() throws Exception {
        JsonNode chat = json(post(server, "/v1/chat/completions",
                "{\"messages\":[{\"role\":\"user\",\"content\":\"Once\"}],\"max_tokens\":3,\"temperature\":0,\"logprobs\":true,\"top_logprobs\":2}"));
        JsonNode content = chat.path("choices").get(0).path("logprobs").path("content");
        assertThat(content).hasSize(3);
        assertThat(content.get(0).path("top_logprobs")).hasSize(2);
        // greedy: the chosen token is the most likely one
        assertThat(content.get(0).path("logprob").asDouble()).isEqualTo(content.get(0).path("top_logprobs").get(0).path("logprob").asDouble());
        JsonNode text = json(post(server, "/v1/completions", completion("Once", 3, ",\"logprobs\":2")));
        assertThat(text.path("choices").get(0).path("logprobs").path("token_logprobs")).hasSize(3);
        assertThat(text.path("choices").get(0).path("logprobs").path("top_logprobs").get(0).size()).isEqualTo(2);
    }

    @Test
    void topKOneSamplesTheGreedyText() throws Exception {
        // llama.cpp's server extensions: top_k 1 leaves only the most likely token whatever the temperature
        String greedy = json(post(server, "/v1/completions", completion("Once upon a time", 12, ""))).path("choices").path(0).path("text").asText();
        String hot = json(post(server, "/v1/completions", completion("Once upon a time", 12, "").replace("\"temperature\":0", "\"temperature\":1.5,\"top_k\":1,\"seed\":9")))
                .path("choices").path(0).path("text").asText();
        assertThat(hot).isEqualTo(greedy).isNotEmpty();
    }

    @Test
    void penaltiesLowerRepeatedTokens() throws Exception {
        // OpenAI's frequency and presence penalties, applied at temperature 0 too: the greedy text changes, repeats fewer
        // tokens, and the same request gives the same text
        String body = completion("Once upon a time", 40, ",\"logprobs\":1");
        JsonNode greedy = json(post(server, "/v1/completions", body)).path("choices").path(0);
        String penalized = body.replace("\"temperature\":0", "\"temperature\":0,\"frequency_penalty\":1.5,\"presence_penalty\":1");
        JsonNode p1 = json(post(server, "/v1/completions", penalized)).path("choices").path(0);
        assertThat(p1.path("text").asText()).isNotEqualTo(greedy.path("text").asText());
        assertThat(json(post(server, "/v1/completions", penalized)).path("choices").path(0).path("text").asText()).isEqualTo(p1.path("text").asText());
        assertThat(repeats(p1.path("logprobs").path("tokens"))).isLessThan(repeats(greedy.path("logprobs").path("tokens")));
        assertError(post(server, "/v1/completions", completion("x", 1, ",\"frequency_penalty\":2.5")), 400, "frequency_penalty");
        assertError(post(server, "/v1/completions", completion("x", 1, ",\"presence_penalty\":\"high\"")), 400, "presence_penalty");
    }

    /** n choices, one after another; choice i samples with seed + i, so a request with n = 1 and seed + i gives choice i. */
    @Test
    void severalChoicesComeWithTheirIndex() throws Exception {
        String body = completion("Once upon a time", 10, "").replace("\"temperature\":0", "\"temperature\":1.2,\"seed\":5");
        JsonNode three = json(post(server, "/v1/completions", body.replace("\"max_tokens\"", "\"n\":3,\"max_tokens\"")));
        assertThat(three.path("choices")).hasSize(3);
        int tokens = 0;
        for (int i = 0; i < 3; i++) {
            JsonNode c = three.path("choices").get(i);
            assertThat(c.path("index").asInt()).isEqualTo(i);
            JsonNode alone = json(post(server, "/v1/completions", body.replace("\"seed\":5", "\"seed\":" + (5 + i)))).path("choices").get(0);
            assertThat(c.path("text").asText()).isEqualTo(alone.path("text").asText());
            tokens += json(post(server, "/v1/completions", body.replace("\"seed\":5", "\"seed\":" + (5 + i)))).path("usage").path("completion_tokens").asInt();
        }
        assertThat(three.path("usage").path("completion_tokens").asInt()).isEqualTo(tokens);
        assertThat(three.path("choices").get(0).path("text").asText()).isNotEqualTo(three.path("choices").get(1).path("text").asText());
        // streamed: every chunk names its choice, each choice ends with its own finish_reason, one usage chunk at the end
        String sse = post(server, "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":4,\"n\":2,\"stream\":true}").body();
        java.util.Map<Integer, Integer> finishes = new java.util.HashMap<>();
        int usage = 0;
        for (String line : sse.split("\n")) {
            if (!line.startsWith("data: {")) continue;
            JsonNode e = Json.MAPPER.readTree(line.substring(6));
            if (e.path("choices").isEmpty()) { usage++; continue; }
            JsonNode c = e.path("choices").get(0);
            if (!c.path("finish_reason").isNull()) finishes.merge(c.path("index").asInt(), 1, Integer::sum);
        }
        assertThat(finishes).containsExactlyInAnyOrderEntriesOf(java.util.Map.of(0, 1, 1, 1));
        assertThat(usage).isEqualTo(1);
    }

    /** logit_bias: −100 bans a token in effect, +100 forces it; keys must be token ids of the model. */
    @Test
    void logitBiasBansAndForcesTokens() throws Exception {
        JsonNode greedy = json(post(server, "/v1/completions", completion("Once upon a time", 6, ",\"logprobs\":1"))).path("choices").get(0);
        String first = greedy.path("logprobs").path("tokens").get(0).asText();
        int firstId = lm.tokenizer().tokenId(first.replace(' ', '\u2581'));
        assertThat(firstId).isNotNegative();
        JsonNode banned = json(post(server, "/v1/completions", completion("Once upon a time", 6, ",\"logprobs\":1,\"logit_bias\":{\"" + firstId + "\":-100}")))
                .path("choices").get(0);
        assertThat(banned.path("logprobs").path("tokens").get(0).asText()).isNotEqualTo(first);
        int comma = lm.tokenizer().tokenId(",");
        JsonNode forced = json(post(server, "/v1/completions", completion("Once upon a time", 3, ",\"logit_bias\":{\"" + comma + "\":100}"))).path("choices").get(0);
        assertThat(forced.path("text").asText()).isEqualTo(",,,");
        assertError(post(server, "/v1/completions", completion("x", 1, ",\"logit_bias\":{\"99999\":1}")), 400, "logit_bias");
        assertError(post(server, "/v1/completions", completion("x", 1, ",\"logit_bias\":{\"5\":101}")), 400, "logit_bias");
    }

    /** Several prompts in one completions request (strings or token-id arrays): each gets its n choices, indexed prompt·n + i. */
    @Test
    void severalPromptsInOneRequest() throws Exception {
        String a = "Once upon a time", b = "The cat sat";
        JsonNode one = json(post(server, "/v1/completions", completion(a, 5, "")));
        JsonNode two = json(post(server, "/v1/completions", completion(b, 5, "")));
        JsonNode both = json(post(server, "/v1/completions",
                "{\"model\":\"stories260K\",\"prompt\":[\"" + a + "\",\"" + b + "\"],\"max_tokens\":5,\"temperature\":0,\"n\":2}"));
        assertThat(both.path("choices")).hasSize(4);
        for (int i = 0; i < 4; i++) {
            JsonNode c = both.path("choices").get(i);
            assertThat(c.path("index").asInt()).isEqualTo(i);
            assertThat(c.path("text").asText()).isEqualTo((i < 2 ? one : two).path("choices").get(0).path("text").asText());
        }
        assertThat(both.path("usage").path("prompt_tokens").asInt())
                .isEqualTo(one.path("usage").path("prompt_tokens").asInt() + two.path("usage").path("prompt_tokens").asInt());
        // token-id prompts scored with echo, as evaluation harnesses batch them
        int[] ia = lm.promptIds(a, true), ib = lm.promptIds(b, true);
        String ids = java.util.Arrays.toString(ia) + "," + java.util.Arrays.toString(ib);
        JsonNode scored = json(post(server, "/v1/completions",
                "{\"model\":\"stories260K\",\"prompt\":[" + ids + "],\"max_tokens\":0,\"echo\":true,\"logprobs\":1}"));
        assertThat(scored.path("choices").get(0).path("logprobs").path("token_logprobs")).hasSize(ia.length);
        assertThat(scored.path("choices").get(1).path("logprobs").path("token_logprobs")).hasSize(ib.length);
        assertError(post(server, "/v1/completions", "{\"prompt\":[\"x\",[]]}"), 400, "prompt");
    }

    /** best_of: that many candidates (seed + i each), the n with the highest log-probability per token returned, best first. */
    @Test
    void bestOfReturnsTheMostLikelyCandidates() throws Exception {
        String body = completion("Once upon a time", 8, ",\"logprobs\":1").replace("\"temperature\":0", "\"temperature\":1.5,\"seed\":21");
        List<double[]> alone = new ArrayList<>();   // {mean logprob, tokens} of candidate i requested alone
        List<String> texts = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            JsonNode c = json(post(server, "/v1/completions", body.replace("\"seed\":21", "\"seed\":" + (21 + i)))).path("choices").get(0);
            double s = 0;
            JsonNode lps = c.path("logprobs").path("token_logprobs");
            for (JsonNode x : lps) s += x.asDouble();
            alone.add(new double[]{s / lps.size(), lps.size()});
            texts.add(c.path("text").asText());
        }
        JsonNode best = json(post(server, "/v1/completions", body.replace("\"max_tokens\"", "\"best_of\":4,\"n\":2,\"max_tokens\"")));
        List<Integer> order = new ArrayList<>(List.of(0, 1, 2, 3));
        order.sort((a, b) -> Double.compare(alone.get(b)[0], alone.get(a)[0]));
        assertThat(best.path("choices")).hasSize(2);
        assertThat(best.path("choices").get(0).path("text").asText()).isEqualTo(texts.get(order.get(0)));
        assertThat(best.path("choices").get(1).path("text").asText()).isEqualTo(texts.get(order.get(1)));
        assertThat(best.path("usage").path("completion_tokens").asInt()).isEqualTo((int) alone.stream().mapToDouble(x -> x[1]).sum());
        assertError(post(server, "/v1/completions", completion("x", 2, ",\"best_of\":2,\"stream\":true")), 400, "best_of");
        assertError(post(server, "/v1/completions", completion("x", 2, ",\"best_of\":1,\"n\":2")), 400, "best_of");
    }

    /**
     * echo (completions): the prompt comes back before the completion, and with logprobs its tokens' own
     * log-probabilities — with max_tokens 0, how evaluation harnesses score a text. They are the per-position
     * values of the whole-sequence scorer (`perplexity --whole`) on the same ids.
     */
    @Test
    void echoGivesThePromptsOwnLogprobs() throws Exception {
        String prompt = "Once upon a time, there was a little girl named Lily.";
        JsonNode r = json(post(server, "/v1/completions", completion(prompt, 0, ",\"echo\":true,\"logprobs\":2")));
        JsonNode c = r.path("choices").get(0);
        assertThat(c.path("text").asText()).isEqualTo(prompt);
        assertThat(r.path("usage").path("completion_tokens").asInt()).isZero();
        int[] ids = lm.promptIds(prompt, true);                   // BOS, then the text's tokens
        var whole = dev.longspan.eval.TextScorer.whole(lm.model(), ids, InferenceOptions.DEFAULT, new int[0]);
        JsonNode lps = c.path("logprobs").path("token_logprobs");
        assertThat(lps).hasSize(ids.length - 1);                   // the BOS the server added is not echoed
        for (int i = 0; i < lps.size(); i++) assertThat(lps.get(i).asDouble()).as("token %d", i).isCloseTo(-whole.nll()[i], org.assertj.core.api.Assertions.within(1e-4));
        assertThat(c.path("logprobs").path("top_logprobs").get(0).size()).isEqualTo(2);
        // token ids as the prompt: nothing precedes the first, so its log-probability is null; then a completion follows
        StringBuilder idList = new StringBuilder();
        for (int id : ids) idList.append(idList.isEmpty() ? "" : ",").append(id);
        JsonNode byIds = json(post(server, "/v1/completions", "{\"model\":\"stories260K\",\"prompt\":[" + idList + "],\"max_tokens\":3,\"temperature\":0,\"echo\":true,\"logprobs\":1}"))
                .path("choices").get(0).path("logprobs");
        assertThat(byIds.path("token_logprobs")).hasSize(ids.length + 3);
        assertThat(byIds.path("token_logprobs").get(0).isNull()).isTrue();
        assertThat(byIds.path("token_logprobs").get(1).asDouble()).isCloseTo(lps.get(0).asDouble(), org.assertj.core.api.Assertions.within(1e-6));
        // streamed: the prompt's text first
        String sse = post(server, "/v1/completions", completion(prompt, 2, ",\"echo\":true,\"stream\":true")).body();
        String first = sse.lines().filter(l -> l.startsWith("data: {")).findFirst().orElseThrow();
        assertThat(Json.MAPPER.readTree(first.substring(6)).path("choices").get(0).path("text").asText()).isEqualTo(prompt);
        assertError(post(server, "/v1/completions", completion(prompt, 0, "")), 400, "max_tokens");
        assertError(post(server, "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"echo\":true}"), 400, "echo");
    }

    // tokens that are not the first of their kind in the sequence
    static int repeats(JsonNode tokens) {
        java.util.Set<String> seen = new java.util.HashSet<>();
        int r = 0;
        for (JsonNode t : tokens) if (!seen.add(t.asText())) r++;
        return r;
    }

    @Test
    void badRequestsGetOpenAiErrorsWithTheirStatus() throws Exception {
        assertError(post(server, "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":17}"), 400, "n");
        assertError(post(server, "/v1/chat/completions", "{not json"), 400, null);
        assertError(post(server, "/v1/completions", completion("x", 4, ",\"temperature\":5")), 400, "temperature");
        assertError(post(server, "/v1/completions", "{\"model\":\"/etc/passwd\",\"prompt\":\"x\"}"), 404, "model");
        assertError(post(server, "/v1/completions", "{\"prompt\":\"" + "x".repeat(5000) + "\"}"), 413, null);
        assertError(post(server, "/v1/completions", completion("Once upon a time", 5000, "")), 400, "messages");
        assertThat(json(post(server, "/v1/completions", completion("Once upon a time", 5000, ""))).path("error").path("code").asText())
                .isEqualTo("context_length_exceeded");
        // what would change the answer and is not implemented is refused, not ignored; empty or default values pass
        String chatX = "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":1";
        assertError(post(server, "/v1/chat/completions", chatX + ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}"), 400, "tools");
        assertError(post(server, "/v1/chat/completions", chatX + ",\"tool_choice\":\"required\"}"), 400, "tool_choice");
        assertError(post(server, "/v1/chat/completions", chatX + ",\"response_format\":{\"type\":\"json_object\"}}"), 400, "response_format");
        assertThat(post(server, "/v1/chat/completions", chatX + ",\"tools\":[],\"tool_choice\":\"none\",\"response_format\":{\"type\":\"text\"},"
                + "\"logit_bias\":{},\"user\":\"u\"}").statusCode()).isEqualTo(200);
        // tools the client says not to call change nothing: accepted, and the answer is the one without them
        HttpResponse<String> none = post(server, "/v1/chat/completions", chatX.replace("\"max_tokens\":1", "\"max_tokens\":6,\"temperature\":0")
                + ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],\"tool_choice\":\"none\"}");
        assertThat(none.statusCode()).isEqualTo(200);
        assertThat(json(none).path("choices").get(0).path("message").path("content").asText()).isEqualTo(json(post(server, "/v1/chat/completions",
                chatX.replace("\"max_tokens\":1", "\"max_tokens\":6,\"temperature\":0") + "}")).path("choices").get(0).path("message").path("content").asText());
        assertError(post(server, "/v1/completions", completion("x", 1, ",\"top_k\":-1")), 400, "top_k");
        assertError(post(server, "/v1/completions", completion("x", 1, ",\"min_p\":2")), 400, "min_p");
        assertError(get(server, "/v1/nothing"), 404, null);
        assertError(get(server, "/v1/models/other"), 404, "model");
    }

    static void assertError(HttpResponse<String> r, int status, String param) throws Exception {
        assertThat(r.statusCode()).as(r.body()).isEqualTo(status);
        JsonNode e = json(r).path("error");
        assertThat(e.path("message").asText()).isNotBlank();
        assertThat(e.has("type") && e.has("param") && e.has("code")).isTrue();
        if (param != null) assertThat(e.path("param").asText()).isEqualTo(param);
    }

    @Test
    void modelsHealthAndMetrics() throws Exception {
        assertThat(json(get(server, "/v1/models")).path("data").get(0).path("id").asText()).isEqualTo("stories260K");
        assertThat(get(server, "/health").statusCode()).isEqualTo(200);
        post(server, "/v1/completions", completion("Once", 2, ""));
        String m = get(server, "/metrics").body();
        assertThat(m).contains("longspan_requests_total{endpoint=\"completions\",status=\"200\"}", "longspan_prompt_tokens_total",
                "longspan_completion_tokens_total", "longspan_prefill_tokens_per_second", "longspan_decode_tokens_per_second",
                "longspan_queue_length 0", "longspan_kv_cache_bytes", "longspan_jvm_heap_used_bytes");
    }

    @Test
    void theApiKeyIsRequiredWhenSet() throws Exception {
        try (OpenAiServer s = start(options(1, 1, 600_000, "sekret", 1L << 30, null))) {
            assertError(post(s, "/v1/completions", completion("Once", 2, "")), 401, null);
            assertError(post(s, "/v1/completions", completion("Once", 2, ""), "Authorization", "Bearer sekreT"), 401, null);
            assertThat(post(s, "/v1/completions", completion("Once", 2, ""), "Authorization", "Bearer sekret").statusCode()).isEqualTo(200);
            assertThat(get(s, "/health").statusCode()).isEqualTo(200);
        }
    }

    @Test
    void aSecondQuestionReusesTheSharedPrefixAndAnswersAsAFreshServerWould() throws Exception {
        String doc = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
                + "One day, she saw a big red ball under a tree. ";
        try (OpenAiServer fresh = start(options(1, 1, 600_000, null, 1, null))) {   // a budget of 1 byte keeps nothing
            String q1 = completion(doc + "Lily said", 16, ""), q2 = completion(doc + "The ball was", 16, "");
            JsonNode a1 = json(post(server, "/v1/completions", q1)), a2 = json(post(server, "/v1/completions", q2));
            JsonNode f2 = json(post(fresh, "/v1/completions", q2));
            int promptTokens = a2.path("usage").path("prompt_tokens").asInt();
            assertThat(a2.path("usage").path("prompt_tokens_details").path("cached_tokens").asInt()).isGreaterThan(promptTokens / 2);
            assertThat(f2.path("usage").path("prompt_tokens_details").path("cached_tokens").asInt()).isZero();
            assertThat(a2.path("choices").get(0).path("text").asText()).isEqualTo(f2.path("choices").get(0).path("text").asText());
            assertThat(a1.path("choices").get(0).path("text").asText()).isNotEmpty();
        }
    }

    @Test
    void aPrefilledPromptSurvivesARestartInTheKvDirectory(@TempDir Path dir) throws Exception {
        String doc = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
                + "One day, she saw a big red ball under a tree. She ran to get it and kicked it high. ";
        String q = completion(doc, 12, "");
        JsonNode first;
        try (OpenAiServer s = start(options(1, 1, 600_000, null, 1L << 30, dir))) {
            first = json(post(s, "/v1/completions", q));
        }
        try (OpenAiServer s = start(options(1, 1, 600_000, null, 1L << 30, dir))) {
            JsonNode again = json(post(s, "/v1/completions", q));
            assertThat(again.path("usage").path("prompt_tokens_details").path("cached_tokens").asInt())
                    .isEqualTo(again.path("usage").path("prompt_tokens").asInt() - 1);
            assertThat(again.path("choices").get(0).path("text").asText()).isEqualTo(first.path("choices").get(0).path("text").asText());
        }
        // another question about the same document after a restart: the stored prefix is cut back to the document
        String q2 = completion(doc + "Then Lily", 12, "");
        try (OpenAiServer s = start(options(1, 1, 600_000, null, 1L << 30, dir)); OpenAiServer fresh = start(options(1, 1, 600_000, null, 1, null))) {
            JsonNode other = json(post(s, "/v1/completions", q2));
            int cached = other.path("usage").path("prompt_tokens_details").path("cached_tokens").asInt();
            assertThat(cached).isGreaterThan(other.path("usage").path("prompt_tokens").asInt() / 2);
            assertThat(other.path("choices").get(0).path("text").asText()).isEqualTo(json(post(fresh, "/v1/completions", q2)).path("choices").get(0).path("text").asText());
        }
    }

    @Test
    void aFullQueueGets429AndAClientThatLeavesFreesItsSlot() throws Exception {
        try (OpenAiServer s = start(options(1, 0, 600_000, null, 1L << 30, null))) {
            HttpRequest long_ = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + s.port() + "/v1/completions"))
                    .POST(HttpRequest.BodyPublishers.ofString(completion("Once upon a time", 2000, ",\"stream\":true"))).build();
            HttpResponse<InputStream> held = HTTP.send(long_, HttpResponse.BodyHandlers.ofInputStream());
            BufferedReader in = new BufferedReader(new InputStreamReader(held.body(), StandardCharsets.UTF_8));
            assertThat(in.readLine()).startsWith("data: ");   // generating: the one slot is taken
            HttpResponse<String> refused = post(s, "/v1/completions", completion("Once", 2, ""));
            assertError(refused, 429, null);
            assertThat(refused.headers().firstValue("retry-after")).isPresent();
            in.close();   // the client goes away mid-stream
            int status = 429;
            for (int i = 0; i < 600 && status == 429; i++) {
                Thread.sleep(50);
                status = post(s, "/v1/completions", completion("Once", 2, "")).statusCode();
            }
            assertThat(status).isEqualTo(200);
            assertThat(get(s, "/metrics").body()).contains("longspan_requests_running 0");
        }
    }

    @Test
    void aRequestPastItsTimeLimitGets503() throws Exception {
        try (OpenAiServer s = start(options(1, 1, 0, null, 1L << 30, null))) {
            HttpResponse<String> r = post(s, "/v1/completions", completion("Once upon a time", 8, ""));
            assertError(r, 503, null);
            assertThat(json(r).path("error").path("code").asText()).isEqualTo("timeout");
        }
    }

    @Test
    void drainingAnswers503ToNewRequests() throws Exception {
        try (OpenAiServer s = start(options(1, 1, 600_000, null, 1L << 30, null))) {
            assertThat(s.drain(1000)).isTrue();
            assertError(post(s, "/v1/completions", completion("Once", 2, "")), 503, null);
            assertThat(get(s, "/health").statusCode()).isEqualTo(503);
        }
    }
}
