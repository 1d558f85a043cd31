package dev.longspan.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.longspan.io.Tokenizer;
import dev.longspan.model.ChatFormat;
import dev.longspan.model.Generator;
import dev.longspan.model.Sampler;
import dev.longspan.util.Log;
import dev.longspan.util.LongspanException;
import dev.longspan.format.ModelLoader;
import dev.longspan.model.InferenceOptions;
import io.helidon.http.HeaderNames;
import io.helidon.webserver.WebServer;
import io.helidon.webserver.http.HttpRouting;
import io.helidon.webserver.http.ServerRequest;
import io.helidon.webserver.http.ServerResponse;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The OpenAI-compatible HTTP API over one model, on Helidon SE's web server (a virtual thread per
 * request): chat and text completions (streamed as server-sent events or whole), the model list,
 * health and Prometheus metrics. Generation is limited to {@code parallel} requests at once, with
 * a bounded queue behind them; everything else is answered in OpenAI's error JSON.
 */
public final class OpenAiServer implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int MAX_TOP_LOGPROBS = 20, MAX_STOP = 16, MAX_N = 16, MAX_PROMPTS = 64;

    private final Engine engine;
    private final ServerOptions o;
    private final Metrics metrics;
    private final byte[] keyDigest;
    private final Semaphore slots;
    private final AtomicInteger waiting = new AtomicInteger(), active = new AtomicInteger(), running = new AtomicInteger();
    private final long created = System.currentTimeMillis() / 1000;
    private volatile boolean draining;
    private WebServer server;

    /**
     * A server for one loaded model (not yet listening: {@link #start}); fingerprint names the
     * model file and session settings, so that --kv-dir files of another model are never read.
     */
    public static OpenAiServer create(ModelLoader.LoadedModel lm, ChatFormat chat, InferenceOptions options, ServerOptions o, String fingerprint) {
        Metrics metrics = new Metrics();
        return new OpenAiServer(new Engine(lm, chat, options, o.context(), o.kvBudgetBytes(), o.kvDir(), fingerprint, metrics), o);
    }

    OpenAiServer(Engine engine, ServerOptions o) {
        this.engine = engine;
        this.o = o;
        this.metrics = engine.metrics;
        this.keyDigest = o.apiKey() == null ? null : sha256(o.apiKey());
        this.slots = new Semaphore(o.parallel(), true);
        metrics.queued = waiting::get;
        metrics.running = running::get;
        metrics.kvBytes = () -> engine.cache.idleBytes() + (long) running.get() * engine.sessionBytes();
    }

    /** Starts listening; returns this. */
    public OpenAiServer start() {
        server = WebServer.builder()
                .host(o.host())
                .port(o.port())
                // our own hook drains first (serve): Helidon's would stop the listener under running requests
                .shutdownHook(false)
                .routing(this::routes)
                .build()
                .start();
        return this;
    }

    /** The port listened on (the chosen one when asked for 0). */
    public int port() { return server.port(); }

    private void routes(HttpRouting.Builder r) {
        r.post("/v1/chat/completions", (req, res) -> handle(req, res, "chat", true));
        r.post("/v1/completions", (req, res) -> handle(req, res, "completions", false));
        r.get("/v1/models", (req, res) -> simple(req, res, "models", true, () -> models()));
        r.get("/v1/models/{id}", (req, res) -> simple(req, res, "models", true, () -> {
            String id = req.path().pathParameters().get("id");
            if (!id.equals(o.modelName())) throw ApiError.modelNotFound(id);
            return model();
        }));
        r.get("/health", (req, res) -> {
            int status = draining ? 503 : 200;
            metrics.request("health", status);
            res.status(status).header(HeaderNames.CONTENT_TYPE, "application/json")
                    .send(("{\"status\":\"" + (draining ? "shutting_down" : "ok") + "\"}").getBytes(StandardCharsets.UTF_8));
        });
        r.get("/metrics", (req, res) -> {
            metrics.request("metrics", 200);
            res.header(HeaderNames.CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8").send(metrics.prometheus().getBytes(StandardCharsets.UTF_8));
        });
        r.any((req, res) -> simple(req, res, "other", false, () -> {
            throw ApiError.notFound("Unknown request URL: " + req.prologue().method().text() + " " + req.path().path() + ".");
        }));
    }

    private interface Body {
        ObjectNode get();
    }

    private void simple(ServerRequest req, ServerResponse res, String endpoint, boolean auth, Body body) {
        try {
            if (auth) authorize(req);
            send(res, 200, body.get());
            metrics.request(endpoint, 200);
        } catch (ApiError e) {
            error(res, endpoint, e);
        }
    }

    private ObjectNode models() {
        ObjectNode n = JSON.createObjectNode();
        n.put("object", "list");
        n.putArray("data").add(model());
        return n;
    }

    private ObjectNode model() {
        ObjectNode m = JSON.createObjectNode();
        m.put("id", o.modelName());
        m.put("object", "model");
        m.put("created", created);
        m.put("owned_by", "longspan");
        return m;
    }

    // ---- completions ----

    /**
     * A parsed completion request. n choices, generated one after another from the same prompt (its cached prefix
     * serves them all), choice i sampling with seed + i; best_of ≥ n candidates of which the n most likely are
     * returned. echo (completions): the prompt's text, echoText, comes back before each choice's completion, and with
     * logprobs the prompt's tokens from echoFrom on (past a BOS this server added) with theirs, computed with the first choice.
     */
    private record Request(List<Prompt> prompts, Engine.Params params, int n, int bestOf, boolean stream, boolean usageChunk, boolean echo,
                           boolean reasoning, boolean promptOpensReasoning) {
        int promptTokens() { return prompts.stream().mapToInt(p -> p.ids().length).sum(); }

        Engine.Params choice(int i) {
            Engine.Params p = params;
            // best_of ranks the candidates by their log-probabilities, so they are computed for each
            return new Engine.Params(p.maxTokens(), p.temperature(), p.topP(), p.topK(), p.minP(), p.frequencyPenalty(), p.presencePenalty(),
                    p.seed() + i, p.stop(), p.logprobs() || bestOf > n, p.topLogprobs(), p.promptLogprobs() && i == 0, p.biasIds(), p.biasValues());
        }
    }

    /** One prompt: its ids, and for echo its text as the client wrote it and where its echoed tokens start. */
    private record Prompt(int[] ids, String echoText, int echoFrom) {}

    // a candidate's log-probability per token (best_of's ranking); an empty one ranks last
    private static double perToken(Generator.Result g) {
        if (g.logprobs().isEmpty()) return Double.NEGATIVE_INFINITY;
        double s = 0;
        for (Sampler.Choice c : g.logprobs()) s += c.logprob();
        return s / g.logprobs().size();
    }

    private void handle(ServerRequest req, ServerResponse res, String endpoint, boolean chat) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(o.timeoutMillis());
        active.incrementAndGet();
        try {
            authorize(req);
            if (draining) throw ApiError.shuttingDown();
            Request r = parse(body(req), chat);
            admit(deadline);
            running.incrementAndGet();
            try {
                if (r.stream) stream(res, r, chat, deadline);
                else whole(res, r, chat, deadline);
            } finally {
                running.decrementAndGet();
                slots.release();
            }
            metrics.request(endpoint, 200);
        } catch (ApiError e) {
            error(res, endpoint, e);
        } catch (LongspanException e) {
            // the request's own content the engine refused (a chat template's raise_exception, a bad token)
            error(res, endpoint, ApiError.badRequest(null, e.getMessage()));
        } catch (RuntimeException e) {
            Log.warn("internal error on " + endpoint + ": " + e);
            error(res, endpoint, new ApiError(500, "server_error", null, null, "Internal error: " + e.getMessage()));
        } finally {
            active.decrementAndGet();
        }
    }

    private void authorize(ServerRequest req) {
        if (keyDigest == null) return;
        String h = req.headers().first(HeaderNames.AUTHORIZATION).orElse("");
        String given = h.regionMatches(true, 0, "Bearer ", 0, 7) ? h.substring(7).strip() : "";
        // digests of equal length, compared in constant time: neither the key nor its length leaks
        if (!MessageDigest.isEqual(sha256(given), keyDigest)) throw ApiError.unauthorized();
    }

    private byte[] body(ServerRequest req) {
        OptionalLong declared = req.headers().contentLength();
        if (declared.isPresent() && declared.getAsLong() > o.maxBodyBytes()) throw ApiError.tooLarge(o.maxBodyBytes());
        try (InputStream in = req.content().inputStream()) {
            byte[] b = in.readNBytes((int) Math.min(Integer.MAX_VALUE - 16, o.maxBodyBytes() + 1));
            if (b.length > o.maxBodyBytes()) throw ApiError.tooLarge(o.maxBodyBytes());
            return b;
        } catch (IOException e) {
            throw ApiError.badRequest(null, "Could not read the request body: " + e.getMessage());
        }
    }

    // a slot now, else a place in the queue until one frees (or the request's time is up)
    private void admit(long deadline) {
        if (slots.tryAcquire()) return;
        if (waiting.incrementAndGet() > o.queue()) {
            waiting.decrementAndGet();
            throw ApiError.queueFull();
        }
        try {
            if (!slots.tryAcquire(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS)) throw ApiError.timeout(o.timeoutMillis());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw ApiError.shuttingDown();
        } finally {
            waiting.decrementAndGet();
        }
        if (draining) {
            slots.release();
            throw ApiError.shuttingDown();
        }
    }

    private Request parse(byte[] body, boolean chat) {
        JsonNode j;
        try {
            j = JSON.readTree(body);
        } catch (IOException e) {
            throw ApiError.badRequest(null, "We could not parse the JSON body of your request: " + firstLine(e));
        }
        if (j == null || !j.isObject()) throw ApiError.badRequest(null, "The request body must be a JSON object.");
        JsonNode model = j.get("model");
        if (model != null && !model.isNull()) {
            if (!model.isTextual()) throw ApiError.badRequest("model", "'model' must be a string.");
            if (!model.asText().equals(o.modelName())) throw ApiError.modelNotFound(model.asText());
        }
        int n = intParam(j, "n", 1, 1, MAX_N);
        int bestOf = chat ? n : intParam(j, "best_of", n, 1, MAX_N);
        if (bestOf < n) throw ApiError.badRequest("best_of", "'best_of' must be at least n (" + n + "), got " + bestOf + ".");
        unsupported(j);
        JsonNode echoNode = j.get("echo");
        if (echoNode != null && !echoNode.isNull() && !echoNode.isBoolean()) throw ApiError.badRequest("echo", "'echo' must be a boolean.");
        boolean echo = echoNode != null && echoNode.asBoolean();
        if (chat && echo) throw ApiError.badRequest("echo", "'echo' is a completions parameter.");
        if (!chat && j.hasNonNull("suffix")) throw ApiError.badRequest("suffix", "'suffix' is not supported.");
        String chatText = chat ? engine.chatText(messages(j), templateVariables(j)) : null;
        List<int[]> prompts = chat ? List.of(engine.chatIds(chatText)) : completionPrompts(j);
        boolean reasoning = chat && reasoningFormat(j);
        int context = engine.context, longest = 0;
        for (int[] prompt : prompts) {
            if (prompt.length == 0) throw ApiError.badRequest(chat ? "messages" : "prompt", "The prompt is empty.");
            if (prompt.length >= context) {
                throw ApiError.contextLength("This model's maximum context length is " + context + " tokens; the prompt has " + prompt.length + " tokens.");
            }
            longest = Math.max(longest, prompt.length);
        }
        String maxName = j.hasNonNull("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
        // with echo, 0 new tokens asks only for the prompt's own log-probabilities (how evaluation harnesses score text)
        int maxTokens = intParam(j, maxName, context - longest, echo ? 0 : 1, Integer.MAX_VALUE);
        if ((long) longest + maxTokens > context) {
            throw ApiError.contextLength("This model's maximum context length is " + context + " tokens; the prompt has " + longest
                    + " tokens and " + maxName + " asks for " + maxTokens + " more.");
        }
        float temperature = (float) number(j, "temperature", 1, 0, 2);
        float topP = (float) number(j, "top_p", 1, 0, 1);
        if (topP == 0) throw ApiError.badRequest("top_p", "'top_p' must be above 0.");
        // llama.cpp's server extensions (not OpenAI's): top_k (0 = off) and min_p (0 = off)
        int topK = intParam(j, "top_k", 0, 0, Integer.MAX_VALUE);
        float minP = (float) number(j, "min_p", 0, 0, 1);
        float frequencyPenalty = (float) number(j, "frequency_penalty", 0, -2, 2), presencePenalty = (float) number(j, "presence_penalty", 0, -2, 2);
        long seed = j.hasNonNull("seed") ? longParam(j, "seed") : ThreadLocalRandom.current().nextLong();
        List<String> stop = stops(j.get("stop"));
        boolean logprobs;
        int top;
        if (chat) {
            JsonNode lp = j.get("logprobs");
            if (lp != null && !lp.isNull() && !lp.isBoolean()) throw ApiError.badRequest("logprobs", "'logprobs' must be a boolean.");
            logprobs = lp != null && lp.asBoolean();
            top = intParam(j, "top_logprobs", 0, 0, MAX_TOP_LOGPROBS);
            if (top > 0 && !logprobs) throw ApiError.badRequest("top_logprobs", "'top_logprobs' needs 'logprobs': true.");
        } else {
            logprobs = j.hasNonNull("logprobs");
            top = intParam(j, "logprobs", 0, 0, MAX_TOP_LOGPROBS);
        }
        JsonNode st = j.get("stream");
        if (st != null && !st.isNull() && !st.isBoolean()) throw ApiError.badRequest("stream", "'stream' must be a boolean.");
        boolean stream = st != null && st.asBoolean();
        JsonNode so = j.get("stream_options");
        boolean usage = so != null && so.path("include_usage").asBoolean(false);
        if (bestOf > n && stream) throw ApiError.badRequest("best_of", "'best_of' above n cannot be streamed.");
        // each prompt as the client wrote it (echo returns it before the completion): a text prompt without the BOS added here
        Tokenizer tok = engine.tokenizer();
        List<Prompt> ps = new ArrayList<>();
        for (int k = 0; k < prompts.size(); k++) {
            int[] ids = prompts.get(k);
            JsonNode pj = chat ? null : !j.get("prompt").isArray() ? j.get("prompt") : j.get("prompt").get(0).isInt() ? null : j.get("prompt").get(k);
            boolean text = pj != null && pj.isTextual();
            String echoText = !echo ? "" : text ? pj.asText() : tok.decode(ids);
            ps.add(new Prompt(ids, echoText, echo && text && tok.addBos() && ids[0] == tok.bosId() ? 1 : 0));
        }
        LogitBias bias = logitBias(j.get("logit_bias"));
        return new Request(List.copyOf(ps), new Engine.Params(maxTokens, temperature, topP, topK, minP, frequencyPenalty, presencePenalty, seed, stop,
                logprobs, top, echo && logprobs, bias.ids(), bias.values()), n, bestOf, stream, usage, echo,
                reasoning, reasoning && Reasoning.promptOpensReasoning(chatText));
    }

    // reasoning_format (llama.cpp's): "deepseek" / "auto" (the default) split <think> ... </think> off into reasoning_content, "none" keeps it in content
    private static boolean reasoningFormat(JsonNode j) {
        JsonNode f = j.get("reasoning_format");
        if (f == null || f.isNull()) return true;
        return switch (f.isTextual() ? f.asText() : "") {
            case "auto", "deepseek" -> true;
            case "none" -> false;
            default -> throw ApiError.badRequest("reasoning_format", "'reasoning_format' must be \"auto\", \"deepseek\" or \"none\".");
        };
    }

    private record LogitBias(int[] ids, float[] values) {}

    // logit_bias: {"token id": bias in -100..100}, added to those logits before sampling
    private LogitBias logitBias(JsonNode lb) {
        if (lb == null || lb.isNull()) return new LogitBias(new int[0], new float[0]);
        if (!lb.isObject()) throw ApiError.badRequest("logit_bias", "'logit_bias' must be an object of token ids to biases.");
        int[] ids = new int[lb.size()];
        float[] values = new float[lb.size()];
        int V = engine.lm.model().config.vocabSize(), k = 0;
        for (var e : lb.properties()) {
            int id;
            try { id = Integer.parseInt(e.getKey()); } catch (NumberFormatException x) { id = -1; }
            if (id < 0 || id >= V) throw ApiError.badRequest("logit_bias", "logit_bias key '" + e.getKey() + "' is not a token id of this model (0.." + (V - 1) + ").");
            if (!e.getValue().isNumber() || !(Math.abs(e.getValue().asDouble()) <= 100)) {
                throw ApiError.badRequest("logit_bias", "logit_bias['" + e.getKey() + "'] must be a number in -100..100, got " + e.getValue() + ".");
            }
            ids[k] = id;
            values[k++] = (float) e.getValue().asDouble();
        }
        return new LogitBias(ids, values);
    }

    /**
     * Parameters that would change the answer and that this server does not implement are refused
     * rather than ignored (an ignored tool list or JSON mode would be a silently wrong answer);
     * their empty or default values pass, as do the ones that change nothing here (user, metadata, store, ...).
     */
    private static void unsupported(JsonNode j) {
        // tools the client says not to call (tool_choice / function_call "none") change nothing: accepted, not shown to the model
        boolean noCalls = j.path("tool_choice").asText("").equals("none") || j.path("function_call").asText("").equals("none");
        for (String p : List.of("tools", "functions")) {
            JsonNode v = j.get(p);
            if (v != null && !v.isNull() && !(v.isContainerNode() && v.isEmpty()) && !(noCalls && v.isArray())) {
                throw ApiError.badRequest(p, "'" + p + "' is not supported (tool calls are not parsed; with \"tool_choice\": \"none\" they are accepted and not shown to the model).");
            }
        }
        for (String p : List.of("tool_choice", "function_call")) {
            JsonNode v = j.get(p);
            if (v != null && !v.isNull() && !(v.isTextual() && (v.asText().equals("none") || v.asText().equals("auto"))))
                throw ApiError.badRequest(p, "'" + p + "' is not supported (there are no tools).");
        }
        JsonNode rf = j.get("response_format");
        if (rf != null && !rf.isNull() && !rf.path("type").asText("").equals("text"))
            throw ApiError.badRequest("response_format", "'response_format' is not supported (only {\"type\": \"text\"}).");
    }

    private static String firstLine(Exception e) {
        String m = e instanceof JsonProcessingException jp ? jp.getOriginalMessage() : e.getMessage();
        return m == null ? e.getClass().getSimpleName() : m.lines().findFirst().orElse(m);
    }

    /**
     * chat_template_kwargs (llama.cpp's and vLLM's extension): extra variables for the model's chat
     * template, e.g. {"enable_thinking": false} for Qwen3; over serve's --chat-template-kwargs.
     */
    @SuppressWarnings("unchecked")
    private static java.util.Map<String, Object> templateVariables(JsonNode j) {
        JsonNode kw = j.get("chat_template_kwargs");
        if (kw == null || kw.isNull()) return java.util.Map.of();
        if (!kw.isObject()) throw ApiError.badRequest("chat_template_kwargs", "'chat_template_kwargs' must be an object.");
        java.util.Map<String, Object> vars = JSON.convertValue(kw, java.util.LinkedHashMap.class);
        for (String k : vars.keySet()) {
            if (dev.longspan.cli.JinjaChatTemplate.RESERVED.contains(k)) {
                throw ApiError.badRequest("chat_template_kwargs", "'chat_template_kwargs." + k + "' is set by the server and cannot be given.");
            }
        }
        return vars;
    }

    private List<ChatFormat.Message> messages(JsonNode j) {
        JsonNode ms = j.get("messages");
        if (ms == null || !ms.isArray() || ms.isEmpty()) throw ApiError.badRequest("messages", "'messages' must be a non-empty array.");
        List<ChatFormat.Message> turns = new ArrayList<>();
        for (int i = 0; i < ms.size(); i++) {
            JsonNode m = ms.get(i);
            String where = "messages[" + i + "]";
            if (!m.isObject() || !m.path("role").isTextual()) throw ApiError.badRequest(where + ".role", where + " needs a string 'role'.");
            String role = m.get("role").asText();
            if (role.equals("developer")) role = "system";   // OpenAI's newer name for the system turn
            JsonNode c = m.get("content");
            String content;
            if (c == null || c.isNull()) content = "";
            else if (c.isTextual()) content = c.asText();
            else if (c.isArray()) {
                // text parts joined by newlines, as llama.cpp's and vLLM's servers join them for a template of strings
                StringBuilder b = new StringBuilder();
                for (JsonNode part : c) {
                    if (!part.path("type").asText().equals("text") || !part.path("text").isTextual()) {
                        throw ApiError.badRequest(where + ".content", where + ": only text content parts are supported.");
                    }
                    if (!b.isEmpty()) b.append('\n');
                    b.append(part.get("text").asText());
                }
                content = b.toString();
            } else throw ApiError.badRequest(where + ".content", where + ".content must be a string or an array of text parts.");
            turns.add(new ChatFormat.Message(role, content));
        }
        return turns;
    }

    /**
     * The completions prompt(s), as OpenAI takes them: a string, an array of strings, an array of token ids, or an
     * array of such arrays (several prompts: each gets its n choices, indexed prompt·n + i). A text prompt gets the
     * model's BOS; token ids are fed as given.
     */
    private List<int[]> completionPrompts(JsonNode j) {
        JsonNode p = j.get("prompt");
        if (p == null || p.isNull()) throw ApiError.badRequest("prompt", "'prompt' is required.");
        if (p.isTextual()) return List.of(engine.completionIds(p.asText()));
        String shape = "'prompt' must be a string, an array of strings, an array of token ids or an array of such arrays.";
        if (!p.isArray() || p.isEmpty()) throw ApiError.badRequest("prompt", shape);
        if (p.get(0).isInt()) return List.of(tokenIds(p, "prompt"));
        if (p.size() > MAX_PROMPTS) throw ApiError.badRequest("prompt", "At most " + MAX_PROMPTS + " prompts in one request, got " + p.size() + ".");
        List<int[]> out = new ArrayList<>();
        for (int k = 0; k < p.size(); k++) {
            JsonNode e = p.get(k);
            if (e.isTextual()) out.add(engine.completionIds(e.asText()));
            else if (e.isArray() && !e.isEmpty()) out.add(tokenIds(e, "prompt[" + k + "]"));
            else throw ApiError.badRequest("prompt", shape);
        }
        return out;
    }

    private int[] tokenIds(JsonNode a, String where) {
        int V = engine.lm.model().config.vocabSize();
        int[] ids = new int[a.size()];
        for (int i = 0; i < ids.length; i++) {
            JsonNode t = a.get(i);
            if (!t.isInt() || t.asInt() < 0 || t.asInt() >= V) throw ApiError.badRequest("prompt", where + "[" + i + "] is not a token id of this model (0.." + (V - 1) + ").");
            ids[i] = t.asInt();
        }
        return ids;
    }

    private static List<String> stops(JsonNode s) {
        if (s == null || s.isNull()) return List.of();
        List<String> out = new ArrayList<>();
        if (s.isTextual()) out.add(s.asText());
        else if (s.isArray()) for (JsonNode e : s) {
            if (!e.isTextual()) throw ApiError.badRequest("stop", "'stop' must be a string or an array of strings.");
            out.add(e.asText());
        }
        else throw ApiError.badRequest("stop", "'stop' must be a string or an array of strings.");
        if (out.size() > MAX_STOP) throw ApiError.badRequest("stop", "At most " + MAX_STOP + " stop sequences.");
        for (String x : out) if (x.isEmpty()) throw ApiError.badRequest("stop", "A stop sequence is empty.");
        return out;
    }

    private static int intParam(JsonNode j, String name, int dflt, int min, int max) {
        JsonNode v = j.get(name);
        if (v == null || v.isNull()) return dflt;
        if (!v.canConvertToInt() || !v.isIntegralNumber() || v.asInt() < min || v.asInt() > max) {
            throw ApiError.badRequest(name, "'" + name + "' must be an integer" + (max == Integer.MAX_VALUE ? " ≥ " + min : " in " + min + ".." + max) + ", got " + v + ".");
        }
        return v.asInt();
    }

    private static long longParam(JsonNode j, String name) {
        JsonNode v = j.get(name);
        if (!v.isIntegralNumber() || !v.canConvertToLong()) throw ApiError.badRequest(name, "'" + name + "' must be an integer, got " + v + ".");
        return v.asLong();
    }

    private static double number(JsonNode j, String name, double dflt, double min, double max) {
        JsonNode v = j.get(name);
        if (v == null || v.isNull()) return dflt;
        if (!v.isNumber() || !(v.asDouble() >= min && v.asDouble() <= max)) {
            throw ApiError.badRequest(name, "'" + name + "' must be a number in " + num(min) + ".." + num(max) + ", got " + v + ".");
        }
        return v.asDouble();
    }

    private static String num(double d) { return d == Math.rint(d) ? Long.toString((long) d) : Double.toString(d); }

    private Engine.Guard guard(long deadline, boolean[] gone) {
        return () -> {
            if (gone[0]) throw new Engine.Cancelled(null);
            if (System.nanoTime() >= deadline) throw new Engine.Cancelled(ApiError.timeout(o.timeoutMillis()));
        };
    }

    private void whole(ServerResponse res, Request r, boolean chat, long deadline) {
        String id = (chat ? "chatcmpl-" : "cmpl-") + Long.toHexString(ThreadLocalRandom.current().nextLong());
        ObjectNode n = head(id, chat ? "chat.completion" : "text_completion");
        var choices = n.putArray("choices");
        int completion = 0, cached = 0;
        for (int pi = 0; pi < r.prompts.size(); pi++) {
            Prompt p = r.prompts.get(pi);
            List<Sampler.Choice> promptLps = List.of();
            // best_of: that many candidates, the n with the highest log-probability per token returned, best first
            List<Generator.Result> results = new ArrayList<>();
            for (int i = 0; i < r.bestOf; i++) {
                Engine.Outcome out;
                try {
                    out = engine.generate(p.ids(), r.choice(i), piece -> { }, guard(deadline, new boolean[1]));
                } catch (Engine.Cancelled c) {
                    throw c.error;
                }
                if (i == 0) { cached += out.cachedTokens(); promptLps = out.promptLogprobs(); }
                completion += out.result().ids().length;
                results.add(out.result());
            }
            if (r.bestOf > r.n) results.sort(java.util.Comparator.comparingDouble(OpenAiServer::perToken).reversed());
            for (int i = 0; i < r.n; i++) {
                Generator.Result g = results.get(i);
                ObjectNode c = choices.addObject();
                c.put("index", pi * r.n + i);
                if (chat) {
                    ObjectNode m = c.putObject("message");
                    m.put("role", "assistant");
                    String[] split = r.reasoning ? Reasoning.split(g.text(), r.promptOpensReasoning) : new String[]{null, g.text()};
                    m.put("content", split[1]);
                    if (split[0] != null) m.put("reasoning_content", split[0]);
                    m.putNull("refusal");
                } else c.put("text", r.echo ? p.echoText() + g.text() : g.text());
                if (r.params.logprobs()) c.set("logprobs", r.echo ? echoLogprobs(p, promptLps, g.logprobs()) : logprobs(g.logprobs(), chat, 0));
                else c.putNull("logprobs");
                c.put("finish_reason", finish(g.stop()));
            }
        }
        n.set("usage", usage(r.promptTokens(), completion, cached));
        send(res, 200, n);
    }

    private void stream(ServerResponse res, Request r, boolean chat, long deadline) {
        String id = (chat ? "chatcmpl-" : "cmpl-") + Long.toHexString(ThreadLocalRandom.current().nextLong());
        String object = chat ? "chat.completion.chunk" : "text_completion";
        res.status(200);
        res.header(HeaderNames.CONTENT_TYPE, "text/event-stream; charset=utf-8");
        res.header(HeaderNames.CACHE_CONTROL, "no-cache");
        boolean[] gone = new boolean[1];
        OutputStream os = res.outputStream();
        Sse sse = new Sse(os, gone);
        try {
            int completion = 0, cached = 0;
            // the prompts and their choices one after another, each chunk carrying its choice's index
            for (int pi = 0; pi < r.prompts.size(); pi++) {
                Prompt p = r.prompts.get(pi);
                List<Sampler.Choice> promptLps = List.of();
                for (int i = 0; i < r.n; i++) {
                    int index = pi * r.n + i;
                    if (chat) sse.event(chunk(id, object, true, r.usageChunk, index, c -> c.putObject("delta").put("role", "assistant").put("content", "")));
                    // echo: the prompt's text as the choice's first chunk (its tokens' log-probabilities come with the last)
                    if (r.echo) sse.event(chunk(id, object, false, r.usageChunk, index, c -> c.put("text", p.echoText())));
                    Reasoning split = chat && r.reasoning ? new Reasoning(r.promptOpensReasoning) : null;
                    Engine.Outcome out = engine.generate(p.ids(), r.choice(i), piece -> {
                        if (piece.isEmpty()) return;
                        if (split == null) sse.event(chunk(id, object, chat, r.usageChunk, index, c -> text(c, chat, piece)));
                        else for (Reasoning.Part part : split.accept(piece)) sse.event(chunk(id, object, true, r.usageChunk, index, c -> part(c, part)));
                        if (gone[0]) throw new Engine.Cancelled(null);
                    }, guard(deadline, gone));
                    if (split != null) for (Reasoning.Part part : split.finish()) sse.event(chunk(id, object, true, r.usageChunk, index, c -> part(c, part)));
                    Generator.Result g = out.result();
                    if (i == 0) { cached += out.cachedTokens(); promptLps = out.promptLogprobs(); }
                    completion += g.ids().length;
                    List<Sampler.Choice> lps = promptLps;
                    sse.event(chunk(id, object, chat, r.usageChunk, index, c -> {
                        text(c, chat, "");
                        if (r.params.logprobs()) c.set("logprobs", r.echo ? echoLogprobs(p, lps, g.logprobs()) : logprobs(g.logprobs(), chat, 0));
                        c.put("finish_reason", finish(g.stop()));
                    }));
                }
            }
            // the usage chunk: always sent (OpenAI sends it with stream_options.include_usage); no choices
            ObjectNode u = head(id, object);
            u.putArray("choices");
            u.set("usage", usage(r.promptTokens(), completion, cached));
            sse.event(u);
            sse.done();
        } catch (Engine.Cancelled c) {
            if (c.error != null && !gone[0]) {
                ObjectNode e = JSON.createObjectNode();
                e.set("error", errorBody(c.error));
                sse.event(e);
                sse.done();
            }
            if (gone[0]) Log.debug("client went away mid-stream; generation stopped");
        } finally {
            try { os.close(); } catch (IOException | RuntimeException e) { gone[0] = true; }
        }
    }

    // server-sent events on the response; a failed write marks the client gone (generation then stops)
    private record Sse(OutputStream os, boolean[] gone) {
        void event(ObjectNode n) { write("data: " + n + "\n\n"); }

        void done() { write("data: [DONE]\n\n"); }

        private void write(String s) {
            if (gone[0]) return;
            try {
                os.write(s.getBytes(StandardCharsets.UTF_8));
                os.flush();
            } catch (IOException | RuntimeException e) {
                gone[0] = true;
            }
        }
    }

    private interface ChoiceFiller {
        void fill(ObjectNode choice);
    }

    private ObjectNode chunk(String id, String object, boolean chat, boolean usageNull, int index, ChoiceFiller f) {
        ObjectNode n = head(id, object);
        ObjectNode c = n.putArray("choices").addObject();
        c.put("index", index);
        f.fill(c);
        if (!c.has("logprobs")) c.putNull("logprobs");
        if (!c.has("finish_reason")) c.putNull("finish_reason");
        if (usageNull) n.putNull("usage");
        return n;
    }

    // a chat delta of reasoning (reasoning_content) or answer text (content)
    private static void part(ObjectNode c, Reasoning.Part part) {
        ObjectNode d = c.putObject("delta");
        if (!part.text().isEmpty()) d.put(part.reasoning() ? "reasoning_content" : "content", part.text());
    }

    private static void text(ObjectNode c, boolean chat, String piece) {
        if (chat) {
            ObjectNode d = c.putObject("delta");
            if (!piece.isEmpty()) d.put("content", piece);
        } else c.put("text", piece);
    }

    private ObjectNode head(String id, String object) {
        ObjectNode n = JSON.createObjectNode();
        n.put("id", id);
        n.put("object", object);
        n.put("created", System.currentTimeMillis() / 1000);
        n.put("model", o.modelName());
        n.put("system_fingerprint", "longspan");
        return n;
    }

    private static String finish(Generator.Stop s) {
        return s == Generator.Stop.MAX_TOKENS ? "length" : "stop";
    }

    private static ObjectNode usage(int prompt, int completion, int cached) {
        ObjectNode u = JSON.createObjectNode();
        u.put("prompt_tokens", prompt);
        u.put("completion_tokens", completion);
        u.put("total_tokens", prompt + completion);
        u.putObject("prompt_tokens_details").put("cached_tokens", cached);
        return u;
    }

    // chat: {"content":[{token, logprob, bytes, top_logprobs}]}; completions: tokens, token_logprobs, top_logprobs, text_offset
    private ObjectNode logprobs(List<Sampler.Choice> choices, boolean chat, int offset) {
        Tokenizer tok = engine.tokenizer();
        ObjectNode n = JSON.createObjectNode();
        if (chat) {
            ArrayNode content = n.putArray("content");
            for (Sampler.Choice c : choices) {
                ObjectNode e = tokenEntry(tok, c.id(), c.logprob());
                ArrayNode top = e.putArray("top_logprobs");
                for (Sampler.Alternative a : c.top()) top.add(tokenEntry(tok, a.id(), a.logprob()));
                content.add(e);
            }
            n.putNull("refusal");
        } else {
            ArrayNode tokens = n.putArray("tokens"), lps = n.putArray("token_logprobs"), tops = n.putArray("top_logprobs"),
                    offsets = n.putArray("text_offset");
            int at = offset;
            for (Sampler.Choice c : choices) {
                String t = tokenText(tok, c.id());
                tokens.add(t);
                lps.add(c.logprob());
                ObjectNode top = tops.addObject();
                for (Sampler.Alternative a : c.top()) top.put(tokenText(tok, a.id()), a.logprob());
                offsets.add(at);
                at += t.length();
            }
        }
        return n;
    }

    /**
     * Completions logprobs with echo: the prompt's tokens from p.echoFrom (the first one scored null when nothing
     * precedes it), then the generated ones; text_offset runs on over both.
     */
    private ObjectNode echoLogprobs(Prompt p, List<Sampler.Choice> prompt, List<Sampler.Choice> generated) {
        Tokenizer tok = engine.tokenizer();
        ObjectNode n = logprobs(generated, false, 0);
        ArrayNode tokens = JSON.createArrayNode(), lps = JSON.createArrayNode(), tops = JSON.createArrayNode(), offsets = JSON.createArrayNode();
        int at = 0;
        for (int i = p.echoFrom(); i < p.ids().length; i++) {
            String t = tokenText(tok, p.ids()[i]);
            tokens.add(t);
            offsets.add(at);
            at += t.length();
            if (i == 0) { lps.addNull(); tops.addNull(); continue; }
            Sampler.Choice c = prompt.get(i - 1);      // prompt.get(k) scores token k + 1
            lps.add(c.logprob());
            ObjectNode top = tops.addObject();
            for (Sampler.Alternative a : c.top()) top.put(tokenText(tok, a.id()), a.logprob());
        }
        for (JsonNode x : n.get("tokens")) tokens.add(x);
        for (JsonNode x : n.get("token_logprobs")) lps.add(x);
        for (JsonNode x : n.get("top_logprobs")) tops.add(x);
        // the completion's offsets index the returned text, which starts with the prompt as the client wrote it
        for (JsonNode x : n.get("text_offset")) offsets.add(x.asInt() + p.echoText().length());
        ObjectNode out = JSON.createObjectNode();
        out.set("tokens", tokens);
        out.set("token_logprobs", lps);
        out.set("top_logprobs", tops);
        out.set("text_offset", offsets);
        return out;
    }

    private static ObjectNode tokenEntry(Tokenizer tok, int id, double logprob) {
        ObjectNode e = JSON.createObjectNode();
        byte[] b = tok.tokenBytes(id);
        e.put("token", new String(b, StandardCharsets.UTF_8));
        e.put("logprob", logprob);
        ArrayNode bytes = e.putArray("bytes");
        for (byte x : b) bytes.add(x & 0xff);
        return e;
    }

    private static String tokenText(Tokenizer tok, int id) { return new String(tok.tokenBytes(id), StandardCharsets.UTF_8); }

    // ---- responses ----

    private void send(ServerResponse res, int status, ObjectNode body) {
        res.status(status).header(HeaderNames.CONTENT_TYPE, "application/json").send(body.toString().getBytes(StandardCharsets.UTF_8));
    }

    private static ObjectNode errorBody(ApiError e) {
        ObjectNode err = JSON.createObjectNode();
        err.put("message", e.getMessage());
        err.put("type", e.type);
        if (e.param == null) err.putNull("param"); else err.put("param", e.param);
        if (e.code == null) err.putNull("code"); else err.put("code", e.code);
        return err;
    }

    private void error(ServerResponse res, String endpoint, ApiError e) {
        metrics.request(endpoint, e.status);
        if (res.isSent()) return;
        ObjectNode n = JSON.createObjectNode();
        n.set("error", errorBody(e));
        if (e.status == 429) res.header(HeaderNames.RETRY_AFTER, "1");
        send(res, e.status, n);
    }

    // ---- shutdown ----

    /**
     * Stops taking requests (new ones get 503) and waits up to graceMillis for those admitted or
     * queued to finish; returns whether they all did.
     */
    public boolean drain(long graceMillis) {
        draining = true;
        long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(graceMillis);
        while (active.get() > 0 && System.nanoTime() < end) {
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
        return active.get() == 0;
    }

    @Override
    public void close() {
        if (server != null) server.stop();
    }

    static byte[] sha256(String s) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
