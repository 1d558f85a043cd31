package dev.longspan.server;

import dev.longspan.format.ChatPrompts;
import dev.longspan.format.ModelLoader;
import dev.longspan.io.Tokenizer;
import dev.longspan.model.ChatFormat;
import dev.longspan.model.Generator;
import dev.longspan.model.InferenceOptions;
import dev.longspan.model.InferenceSession;
import dev.longspan.model.Sampler;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;

/**
 * The model side of the server: prompts to ids (the model's own chat template), and one
 * generation per request on a session from the {@link PrefixCache}, through the engine's
 * {@link Generator}.
 */
final class Engine {
    /** What one request asks for. */
    record Params(int maxTokens, float temperature, float topP, int topK, float minP, float frequencyPenalty, float presencePenalty, long seed,
                  List<String> stop, boolean logprobs, int topLogprobs, boolean promptLogprobs, int[] biasIds, float[] biasValues) {}

    /**
     * A finished generation, how much of its prompt came from the cache, and (when asked) the log-probability
     * of every prompt token after the first under the model given the tokens before it, with topLogprobs alternatives.
     */
    record Outcome(Generator.Result result, int cachedTokens, double prefillSeconds, List<Sampler.Choice> promptLogprobs) {}

    /** Thrown from inside a generation to end it early (client gone, time up). */
    static final class Cancelled extends RuntimeException {
        final ApiError error;

        Cancelled(ApiError error) {
            super(error == null ? "cancelled" : error.getMessage(), null, false, false);
            this.error = error;
        }
    }

    /** Checked between prefill chunks and at every piece of text; throws {@link Cancelled} to stop. */
    interface Guard {
        void check();
    }

    final ModelLoader.LoadedModel lm;
    final ChatFormat chat;
    final int context;
    final PrefixCache cache;
    final Metrics metrics;

    Engine(ModelLoader.LoadedModel lm, ChatFormat chat, InferenceOptions options, int context, long kvBudget, Path kvDir,
           String fingerprint, Metrics metrics) {
        this.lm = lm;
        this.chat = chat;
        this.context = context;
        this.metrics = metrics;
        this.cache = new PrefixCache(() -> {
            InferenceSession s = new InferenceSession(lm.model(), context, options);
            sessionBytes = s.cacheBytes();
            return s;
        }, kvBudget, kvDir, fingerprint);
    }

    private volatile long sessionBytes;

    /** Bytes of one session's KV cache (0 before the first request). */
    long sessionBytes() { return sessionBytes; }

    Tokenizer tokenizer() { return lm.tokenizer(); }

    /**
     * The prompt text of a conversation. One that ends with an assistant turn is a prefill, as llama.cpp's
     * server takes it: the turns before it rendered with the assistant's turn opened, then its text,
     * so that the model continues that text instead of starting a new turn.
     */
    String chatText(List<ChatFormat.Message> turns, java.util.Map<String, Object> variables) {
        ChatFormat.Message last = turns.isEmpty() ? null : turns.getLast();
        if (last != null && last.role().equals("assistant")) {
            return chat.render(turns.subList(0, turns.size() - 1), true, variables) + last.content();
        }
        return chat.render(turns, true, variables);
    }

    /** The ids of a rendered chat prompt (its special tokens parsed, BOS added when the model wants one). */
    int[] chatIds(String text) {
        return ChatPrompts.ids(lm.tokenizer(), text);
    }

    int[] completionIds(String prompt) { return lm.promptIds(prompt, true); }

    /**
     * Generates for prompt; onText receives the completion's text in pieces. The session goes back
     * to the cache afterwards holding what was fed (prompt and completion), whatever the outcome.
     */
    Outcome generate(int[] prompt, Params p, Consumer<String> onText, Guard guard) {
        int n = prompt.length;
        PrefixCache.Lease lease = cache.take(prompt);
        InferenceSession s = lease.session();
        int[] fed = prompt;
        try {
            long t0 = System.nanoTime();
            // piece by piece, the size the session feeds anyway (every piece, the first included,
            // goes through the flash kernel against the cache), so that a cancelled or timed-out
            // request stops within one piece
            int step = InferenceSession.MAX_CHUNK;
            int reused = lease.reused();
            List<Sampler.Choice> promptLogprobs = new java.util.ArrayList<>();
            if (p.promptLogprobs()) {
                // every prompt position's logits are needed: the whole prompt is fed, in pieces of at most 64 MB of logits
                if (reused > 0) s.clear();
                reused = 0;
                step = (int) Math.max(1, Math.min(step, (16L << 20) / lm.model().config.vocabSize()));
            }
            // a fresh session takes the position phase of this prompt; a reused prefix keeps the one it was fed with
            if (s.length() == 0) s.alignPositions(n);
            for (int a = reused; a < n - 1; a = (int) Math.min(n - 1, (long) a + step)) {
                guard.check();
                int b = (int) Math.min(n - 1, (long) a + step);
                if (!p.promptLogprobs()) {
                    s.feed(prompt, a, b);
                    continue;
                }
                // row r of the logits is position a + r, whose distribution scores token a + r + 1
                float[] lg = s.feed(prompt, a, b, b - a);
                int V = lg.length / (b - a);
                for (int r = 0; r < b - a; r++) {
                    promptLogprobs.add(Sampler.logprobs(Arrays.copyOfRange(lg, r * V, (r + 1) * V), prompt[a + r + 1], p.topLogprobs()));
                }
            }
            guard.check();
            double prefill = (System.nanoTime() - t0) / 1e9;
            if (n - 1 - lease.reused() >= PERSIST_MIN_NEW && !lease.fromDisk()) cache.persist(s, prompt);
            Generator.Options o = Generator.Options.of(p.maxTokens()).withStopIds(lm.stopIds()).withStopStrings(p.stop());
            if (p.logprobs()) o = o.withLogprobs(p.topLogprobs());
            Sampler sampler = new Sampler(p.temperature(), p.topP(), p.topK(), p.minP(), p.frequencyPenalty(), p.presencePenalty(), p.seed())
                    .withLogitBias(p.biasIds(), p.biasValues());
            Generator g = new Generator(s, lm.tokenizer(), sampler);
            // the generator feeds the last prompt token: its logits choose the first new one
            Generator.Result r = g.generate(new int[]{prompt[n - 1]}, o, piece -> {
                guard.check();
                onText.accept(piece);
            });
            fed = Arrays.copyOf(prompt, n + r.ids().length);
            System.arraycopy(r.ids(), 0, fed, n, r.ids().length);
            metrics.generated(n, reused, r.ids().length, prefill + r.prefillSeconds(), r.decodeSeconds());
            return new Outcome(r, reused, prefill + r.prefillSeconds(), List.copyOf(promptLogprobs));
        } catch (RuntimeException e) {
            // a failure inside a feed may leave a windowed ring half written: that session goes
            if (!(e instanceof Cancelled)) s = null;
            throw e;
        } finally {
            // cut off anything fed that is not known (a generation that ended early): keep the prompt part
            if (s != null && s.length() > fed.length && !s.rewind(Math.min(n, fed.length))) s = null;
            if (s != null && s.length() <= fed.length) cache.give(s, fed);
        }
    }

    /** Prompts that prefilled at least this many new tokens are written to --kv-dir. */
    static final int PERSIST_MIN_NEW = 64;
}
