package dev.longspan.model;

import dev.longspan.io.Tokenizer;
import dev.longspan.util.LongspanException;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;

/**
 * The decode loop, the one every command uses: feeds a prompt to an {@link InferenceSession}, then
 * samples a token, feeds it, and so on until a stop condition (a token budget, a stop id, a stop
 * string). The text streams out in pieces as it becomes complete ({@link TextStream}); the result
 * holds the ids, the text, each token's log-probability when asked and the timings.
 */
public final class Generator {
    /** Why generation ended. */
    public enum Stop {
        /** The token budget was used up. */
        MAX_TOKENS,
        /** The model sampled a stop id (not part of the output). */
        STOP_TOKEN,
        /** The text reached a stop string (the text ends before it). */
        STOP_STRING;

        /** The name in JSON output: max_tokens, stop_token, stop_string. */
        public String id() { return name().toLowerCase(java.util.Locale.ROOT); }
    }

    /**
     * What to generate.
     *
     * @param maxTokens   tokens to generate at most
     * @param stopIds     ids that end generation when sampled (EOS, end of turn); they are not output
     * @param stopStrings texts that end generation: the text is cut where the first one begins and
     *                    nothing of it is streamed (the ids keep the token that completed it)
     * @param logprobs    record each generated token's log-probability (under the raw logits)
     * @param topLogprobs with logprobs, the most likely alternatives recorded per token
     */
    public record Options(int maxTokens, int[] stopIds, List<String> stopStrings, boolean logprobs, int topLogprobs) {
        public Options {
            if (maxTokens < 0) throw new LongspanException("max tokens must be ≥ 0, got " + maxTokens);
            if (topLogprobs < 0) throw new LongspanException("top log-probabilities must be ≥ 0, got " + topLogprobs);
            stopIds = stopIds.clone();
            stopStrings = List.copyOf(stopStrings);
            for (String s : stopStrings) if (s.isEmpty()) throw new LongspanException("a stop string is empty");
        }

        /** Up to maxTokens tokens, no stop condition besides, no log-probabilities. */
        public static Options of(int maxTokens) { return new Options(maxTokens, new int[0], List.of(), false, 0); }

        public Options withStopIds(int... ids) { return new Options(maxTokens, ids, stopStrings, logprobs, topLogprobs); }

        public Options withStopStrings(List<String> s) { return new Options(maxTokens, stopIds, s, logprobs, topLogprobs); }

        /** Records each token's log-probability and its {@code top} most likely alternatives. */
        public Options withLogprobs(int top) { return new Options(maxTokens, stopIds, stopStrings, true, top); }

        boolean isStop(int id) {
            for (int s : stopIds) if (s == id) return true;
            return false;
        }
    }

    /**
     * A generation: the prompt's length, the generated ids (stop ids excluded), their text (empty
     * without a tokenizer), why it ended, one {@link Sampler.Choice} per id when log-probabilities were
     * asked (else none), the seconds of the prompt's feed and of everything after it.
     */
    public record Result(int promptTokens, int[] ids, String text, Stop stop, List<Sampler.Choice> logprobs,
                         double prefillSeconds, double decodeSeconds) {}

    /**
     * What the loop feeds: an {@link InferenceSession}, or another evaluator of the same model (llama.cpp's arithmetic
     * replayed, eval.GgmlReplica.Session).
     */
    public interface Source {
        /** Tokens fed so far. */
        int length();

        /** Called once before the first prompt (RoPE's alignment phase; a no-op where positions are plain). */
        default void alignPositions(int promptLength) {}

        /** Feeds ids[from..to) and returns the logits of the last. */
        float[] feed(int[] ids, int from, int to);
    }

    private final Source session;
    private final Tokenizer tok;
    private final Sampler sampler;

    /** tok: null for ids only (no text, no stop strings). */
    public Generator(Source session, Tokenizer tok, Sampler sampler) {
        this.session = session;
        this.tok = tok;
        this.sampler = sampler;
    }

    /**
     * Feeds the prompt (at the session's next positions) and generates; onText receives the text
     * in pieces that concatenate to the result's text.
     */
    public Result generate(int[] prompt, Options o, Consumer<String> onText) {
        if (prompt.length == 0) throw new IllegalArgumentException("empty prompt");
        if (tok == null && !o.stopStrings().isEmpty()) throw new IllegalArgumentException("stop strings need a tokenizer");
        long t0 = System.nanoTime();
        sampler.reset();
        if (session.length() == 0) session.alignPositions(prompt.length);
        float[] logits = session.feed(prompt, 0, prompt.length);
        long t1 = System.nanoTime();
        int[] ids = new int[Math.min(o.maxTokens(), 1024)];
        int n = 0;
        List<Sampler.Choice> choices = new ArrayList<>();
        Text text = tok == null ? null : new Text(new TextStream(tok, prompt), o.stopStrings(), onText);
        Stop stop = Stop.MAX_TOKENS;
        int[] one = new int[1];
        while (n < o.maxTokens()) {
            int next = sampler.next(logits);
            if (o.isStop(next)) { stop = Stop.STOP_TOKEN; break; }
            if (o.logprobs()) choices.add(Sampler.logprobs(logits, next, o.topLogprobs()));
            if (n == ids.length) ids = Arrays.copyOf(ids, Math.min(o.maxTokens(), 2 * n));
            ids[n++] = next;
            if (text != null && text.push(next)) { stop = Stop.STOP_STRING; break; }
            if (n == o.maxTokens()) break;
            one[0] = next;
            logits = session.feed(one, 0, 1);
        }
        if (text != null && stop != Stop.STOP_STRING && text.finish()) stop = Stop.STOP_STRING;
        long t2 = System.nanoTime();
        return new Result(prompt.length, Arrays.copyOf(ids, n), text == null ? "" : text.kept(), stop, List.copyOf(choices),
                (t1 - t0) / 1e9, (t2 - t1) / 1e9);
    }

    // the text side of a generation: pieces from the stream, held back while they might begin a
    // stop string, cut where one begins
    private static final class Text {
        private final TextStream stream;
        private final List<String> stops;
        private final Consumer<String> out;
        private final StringBuilder text = new StringBuilder();
        private int emitted;   // text[0..emitted) has gone out

        Text(TextStream stream, List<String> stops, Consumer<String> out) {
            this.stream = stream;
            this.stops = stops;
            this.out = out;
        }

        // true when a stop string was reached
        boolean push(int id) { return take(stream.push(id), false); }

        // the ids' last held-back text (an incomplete character); true when it reaches a stop string
        boolean finish() { return take(stream.finish(), true); }

        String kept() { return text.toString(); }

        private boolean take(String piece, boolean last) {
            text.append(piece);
            // no stop string begins before emitted: it would have been found, or held back as a prefix
            int cut = -1;
            for (String s : stops) {
                int i = text.indexOf(s, emitted);
                if (i >= 0 && (cut < 0 || i < cut)) cut = i;
            }
            if (cut >= 0) {
                text.setLength(cut);
                emit(cut);
                return true;
            }
            emit(last ? text.length() : safeEnd());
            return false;
        }

        // where the text may end for now: before the earliest suffix that a stop string begins with
        private int safeEnd() {
            String held = text.substring(emitted);
            for (int i = 0; i < held.length(); i++) {
                for (String s : stops) {
                    if (held.length() - i < s.length() && s.startsWith(held.substring(i))) return emitted + i;
                }
            }
            return text.length();
        }

        private void emit(int end) {
            if (end <= emitted) return;
            out.accept(text.substring(emitted, end));
            emitted = end;
        }
    }
}
