package dev.longspan.eval;

import dev.longspan.io.ByteTokenizer;
import dev.longspan.io.Tokenizer;
import dev.longspan.model.InferenceOptions;
import dev.longspan.model.InferenceSession;
import dev.longspan.model.Transformer;
import dev.longspan.util.LongspanException;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Scores a text the way llama.cpp does, so numbers can be compared with its tools:
 * <ul>
 *   <li>{@link #whole}: the text as one sequence (BOS first when the tokenizer adds one), every
 *       position's log-sum-exp, argmax and the negative log-likelihood of the next token, as
 *       llama.cpp computes them with all logits requested;</li>
 *   <li>{@link #chunked}: llama-perplexity's default mode: chunks of {@code ctx} tokens, each
 *       evaluated from an empty cache with its first token replaced by BOS (when the vocabulary
 *       adds BOS), and only the next-token predictions of positions ctx/2 .. ctx-2 scored, so every
 *       scored token has at least ctx/2 tokens of context.</li>
 * </ul>
 * Log-sum-exps and NLLs are accumulated in double from the float logits.
 */
public final class TextScorer {
    private TextScorer() {}

    /** Most logits held at once while scoring a whole text (rows × vocabulary). */
    private static final long MAX_LOGITS = 1L << 24;

    /**
     * Per-position values of a whole-text pass.
     *
     * @param tokens    the scored ids (BOS included when it was added)
     * @param lse       log-sum-exp of the logits at every position
     * @param argmax    the highest logit's id at every position (lowest id on ties)
     * @param nll       NLL of tokens[i + 1] at position i (one fewer than positions)
     * @param logits    full logits of the positions asked for, by position
     */
    public record Positions(int[] tokens, double[] lse, int[] argmax, double[] nll, Map<Integer, float[]> logits) {
        public double meanNll() {
            double s = 0;
            for (double v : nll) s += v;
            return nll.length == 0 ? Double.NaN : s / nll.length;
        }

        public Score score() {
            double m = meanNll();
            return new Score(nll.length, m, Math.exp(m));
        }
    }

    /** Tokens scored, their mean NLL (nats) and the perplexity exp(mean NLL). */
    public record Score(long tokens, double meanNll, double perplexity) {}

    /**
     * The ids a text is scored as: the tokenizer's ids of the text (bytes for the byte tokenizer),
     * after BOS when the tokenizer adds one (as llama.cpp's tokenization with special tokens does).
     */
    public static int[] tokenize(Tokenizer tok, byte[] text) {
        int[] body = tok instanceof ByteTokenizer ? ByteTokenizer.encodeBytes(text, 0, text.length)
                : tok.encode(new String(text, StandardCharsets.UTF_8));
        if (!(tok.addBos() && tok.bosId() >= 0)) return body;
        int[] ids = new int[body.length + 1];
        ids[0] = tok.bosId();
        System.arraycopy(body, 0, ids, 1, body.length);
        return ids;
    }

    /**
     * Where the logits come from: rows for positions from..n-1 of one sequence evaluated from an
     * empty cache (the ids are the whole sequence). seq is the sequence's index in
     * llama-perplexity's batch of 2048 / n tokens, for {@link GgmlReplica}, which needs it.
     */
    public interface Logits {
        /** Logits [n - from, vocab] of the positions from..n-1. */
        float[] rows(int[] ids, int from, int seq);

        int vocabSize();

        /** Longspan's own forward pass (with its KV cache) as the source. */
        static Logits of(Transformer model, InferenceOptions options) {
            return new Logits() {
                public float[] rows(int[] ids, int from, int seq) {
                    return new InferenceSession(model, ids.length, options).feed(ids, 0, ids.length, ids.length - from);
                }

                public int vocabSize() { return model.config.vocabSize(); }
            };
        }

        /** llama.cpp's arithmetic, replicated bit for bit. */
        static Logits of(GgmlReplica replica) {
            return new Logits() {
                public float[] rows(int[] ids, int from, int seq) {
                    return replica.logits(ids, seq, ids.length, from);
                }

                public int vocabSize() { return replica.vocabSize(); }
            };
        }
    }

    /**
     * Scores tokens as one sequence. logitPositions: positions whose full logits are kept
     * (negative counts from the end, -1 = the last position).
     */
    public static Positions whole(Transformer model, int[] tokens, InferenceOptions options, int[] logitPositions) {
        if (tokens.length > model.config.contextLength()) {
            // a model still runs past its training length, but the numbers then say little: allowed, as llama.cpp allows it
            dev.longspan.util.Log.warn("the text has " + tokens.length + " tokens, more than the model's context length " + model.config.contextLength());
        }
        int V = model.config.vocabSize();
        int piece = (int) Math.max(1, Math.min(InferenceSession.MAX_CHUNK, MAX_LOGITS / V));
        InferenceSession s = tokens.length >= 2 ? new InferenceSession(model, tokens.length, options) : null;
        return whole(tokens, V, logitPositions, piece, (a, b) -> s.feed(tokens, a, b, b - a));
    }

    /** {@link #whole} with llama.cpp's arithmetic: the text evaluated as one batch, all logits requested. */
    public static Positions whole(GgmlReplica model, int[] tokens, int[] logitPositions) {
        int V = model.vocabSize();
        if ((long) tokens.length * V > MAX_LOGITS * 16) {
            throw new LongspanException("the text has " + tokens.length + " tokens: llama.cpp's arithmetic keeps all " + tokens.length + " × " + V + " logits at once; score a shorter text");
        }
        // one piece of the whole text: the feed is asked once, for rows 0..n
        return whole(tokens, V, logitPositions, Math.max(tokens.length, 1), (a, b) -> model.logits(tokens, 0, tokens.length));
    }

    private interface Feed { float[] rows(int a, int b); }

    private static Positions whole(int[] tokens, int V, int[] logitPositions, int piece, Feed feed) {
        int n = tokens.length;
        if (n < 2) throw new LongspanException("the text has " + n + " token(s); scoring needs at least 2");
        Map<Integer, float[]> wanted = new LinkedHashMap<>();
        for (int p : logitPositions) {
            int at = p < 0 ? n + p : p;
            if (at < 0 || at >= n) throw new LongspanException("logits position " + p + " is outside the text's " + n + " tokens");
            wanted.put(at, null);
        }
        double[] lse = new double[n], nll = new double[n - 1];
        int[] argmax = new int[n];
        for (int a = 0; a < n; a += piece) {
            int b = Math.min(n, a + piece);
            float[] logits = feed.rows(a, b);
            for (int i = a; i < b; i++) {
                int row = (i - a) * V;
                lse[i] = logSumExp(logits, row, V);
                argmax[i] = argmax(logits, row, V);
                if (i + 1 < n) nll[i] = lse[i] - logits[row + checkedId(tokens[i + 1], V)];
                if (wanted.containsKey(i)) wanted.put(i, Arrays.copyOfRange(logits, row, row + V));
            }
        }
        return new Positions(tokens.clone(), lse, argmax, nll, wanted);
    }

    /** llama-perplexity's default batch size, which decides how many chunks it evaluates together. */
    public static final int LLAMA_PERPLEXITY_BATCH = 2048;

    /**
     * llama-perplexity's score: tokens (BOS first when the vocabulary adds it) cut into
     * floor(n / ctx) chunks of ctx tokens (a shorter tail is not scored); bos &ge; 0 replaces the
     * first token of every chunk; positions ctx/2 .. ctx-2 of each chunk predict the next token.
     * llama-perplexity refuses texts of fewer than 2·ctx tokens, and so does this.
     */
    public static Score chunked(Transformer model, int[] tokens, int ctx, int bos, InferenceOptions options) {
        return chunked(Logits.of(model, options), tokens, ctx, bos);
    }

    /** {@link #chunked} with logits from any source (Longspan's forward pass or llama.cpp's arithmetic). */
    public static Score chunked(Logits model, int[] tokens, int ctx, int bos) {
        if (ctx < 4) throw new LongspanException("--ctx must be at least 4, got " + ctx);
        if (tokens.length < 2L * ctx) {
            throw new LongspanException("--ctx " + ctx + " needs at least " + (2 * ctx) + " tokens (as llama-perplexity does) but the text has " + tokens.length);
        }
        int V = model.vocabSize();
        int chunks = tokens.length / ctx, first = ctx / 2, scored = ctx - 1 - first;
        int perBatch = Math.max(1, LLAMA_PERPLEXITY_BATCH / ctx);
        double sum = 0;
        int[] chunk = new int[ctx];
        for (int c = 0; c < chunks; c++) {
            System.arraycopy(tokens, c * ctx, chunk, 0, ctx);
            if (bos >= 0) chunk[0] = bos;
            float[] logits = model.rows(chunk, first, c % perBatch);   // rows: positions first .. ctx-1
            for (int r = 0; r < scored; r++) sum += llamaPerplexityNll(logits, r * V, V, checkedId(chunk[first + r + 1], V));
        }
        long count = (long) chunks * scored;
        double mean = sum / count;
        return new Score(count, mean, Math.exp(mean));
    }

    /**
     * The NLL of token tok as llama-perplexity's log_softmax computes it: the float maximum, the
     * sum of glibc's expf(x − max) in double, and (x[tok] − max) in float before the double log.
     * Within ~1e-9 of {@link #logSumExp} − x[tok]; the same digits as llama-perplexity prints.
     */
    static double llamaPerplexityNll(float[] x, int off, int n, int tok) {
        float max = x[off];
        for (int i = 1; i < n; i++) max = Math.max(max, x[off + i]);
        double sum = 0;
        for (int i = 0; i < n; i++) sum += GlibcFloatMath.expf(x[off + i] - max);
        return -((double) (x[off + tok] - max) - Math.log(sum));
    }

    static double logSumExp(float[] x, int off, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = off; i < off + n; i++) max = Math.max(max, x[i]);
        double s = 0;
        for (int i = off; i < off + n; i++) s += Math.exp((double) x[i] - max);
        return max + Math.log(s);
    }

    static int argmax(float[] x, int off, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) if (x[off + i] > x[off + best]) best = i;
        return best;
    }

    private static int checkedId(int id, int V) {
        if (id < 0 || id >= V) throw new LongspanException("token id " + id + " is outside the model's vocabulary of " + V);
        return id;
    }
}
