package dev.longspan.eval;

import dev.longspan.io.Tokenizer;
import dev.longspan.model.Generator;
import dev.longspan.model.InferenceOptions;
import dev.longspan.model.InferenceSession;
import dev.longspan.model.MemoryEstimate;
import dev.longspan.model.Sampler;
import dev.longspan.model.Transformer;
import dev.longspan.train.PasskeyTask;
import dev.longspan.util.LongspanException;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Passkey retrieval over a grid of prompt lengths × needle depths: the standard prompt (see
 * {@link PasskeyTask}), greedy decoding, the key matched in the decoded answer. Prompts are
 * built in tokens of the model's tokenizer (byte-level models: one token per byte).
 */
public final class PasskeyEval {
    /** One trial's outcome; {@code fillerOffset}: where in a {@link Haystack#text} haystack its filler starts (0 for a repeated one). */
    public record Trial(int length, double depth, String key, String answer, boolean correct, double seconds, long peakBytes,
                        int fillerOffset) {}

    /**
     * The filler tokens around the needle. {@link #repeated}: a short text (the standard filler)
     * started afresh before and after the needle, as {@link PasskeyTask#build} does in training.
     * {@link #text}: a long text read as one stream from a seeded offset per trial, so every trial
     * and depth gets its own part of the text, the filler after the needle continuing where the
     * filler before it stopped (wrapping at the end of the text).
     */
    public record Haystack(int[] tokens, boolean stream) {
        public Haystack {
            if (tokens.length == 0) throw new LongspanException("the filler text has no tokens");
        }

        public static Haystack repeated(int[] tokens) { return new Haystack(tokens, false); }

        public static Haystack text(int[] tokens) { return new Haystack(tokens, true); }

        /** The trial's starting offset in the text, drawn from its seeded generator (0 for a repeated filler). */
        int offset(SplittableRandom rnd) { return stream ? rnd.nextInt(tokens.length) : 0; }
    }

    /** One cell of the grid. */
    public record Cell(int length, double depth, int trials, int correct, double meanSeconds, long peakBytes, List<Trial> results) {
        public double accuracy() { return trials == 0 ? 0 : (double) correct / trials; }
    }

    /** Progress callback per finished trial. */
    public interface Listener { void onTrial(Trial t, int done, int total); }

    private PasskeyEval() {}

    /** Refuses, naming the option, a length shorter than the passkey prompt's fixed part (instructions, needle, question). */
    public static void requireLengths(Tokenizer tok, int[] lengths, String option) {
        int min = fixedTokens(tok, "00000");
        for (int L : lengths) {
            if (L < min) throw new LongspanException(option + ": " + L + " is shorter than the passkey prompt itself (" + min + " tokens)");
        }
    }

    /** Byte-level models (Longspan's byte tokenizer) with a byte filler, as before. */
    public static List<Cell> run(Transformer model, int[] lengths, double[] depths, int trials, PasskeyTask.Filler filler,
                                 long seed, Listener listener) {
        return run(model, lengths, depths, trials, filler, seed, InferenceOptions.DEFAULT, listener);
    }

    /** Byte-level models; with inference options (KV precision, log-n scaling). */
    public static List<Cell> run(Transformer model, int[] lengths, double[] depths, int trials, PasskeyTask.Filler filler,
                                 long seed, InferenceOptions options, Listener listener) {
        byte[] f = new byte[4096];
        filler.fill(f, 0, f.length);
        int[] ft = new int[f.length];
        for (int i = 0; i < f.length; i++) ft[i] = f[i] & 0xff;
        return run(model, dev.longspan.io.ByteTokenizer.INSTANCE, lengths, depths, trials, Haystack.repeated(ft), seed, options, listener);
    }

    /**
     * Any tokenizer: the haystack's tokens fill the prompt around the needle; the task line,
     * needle and question are tokenized once each, so a prompt has exactly the requested length
     * in tokens (BOS included when the tokenizer wants it). Keys and filler offsets are drawn
     * from a generator seeded by (seed, length, depth, trial): the same seed gives the same grid.
     */
    public static List<Cell> run(Transformer model, Tokenizer tok, int[] lengths, double[] depths, int trials, Haystack haystack,
                                 long seed, InferenceOptions options, Listener listener) {
        if (trials < 1) throw new LongspanException("--trials must be at least 1");
        requireLengths(tok, lengths, "--lengths");
        requireMemory(model, lengths, options);
        List<Cell> cells = new ArrayList<>();
        int total = lengths.length * depths.length * trials, done = 0;
        // one session for every trial, cleared between them: a long prompt's cache is allocated once
        InferenceSession session = new InferenceSession(model, java.util.Arrays.stream(lengths).max().orElse(0) + ANSWER_ROOM, options);
        for (int L : lengths) {
            for (double depth : depths) {
                int correct = 0;
                double secs = 0;
                long peak = 0;
                List<Trial> results = new ArrayList<>();
                for (int t = 0; t < trials; t++) {
                    SplittableRandom rnd = new SplittableRandom(seed * 1_000_003L + L * 31L + (long) (depth * 1000) * 7 + t);
                    String key = PasskeyTask.randomKey(rnd);
                    Trial tr = trial(session, tok, L, depth, key, haystack, haystack.offset(rnd));
                    if (tr.correct()) correct++;
                    results.add(tr);
                    secs += tr.seconds();
                    peak = Math.max(peak, tr.peakBytes());
                    listener.onTrial(tr, ++done, total);
                }
                cells.add(new Cell(L, depth, trials, correct, secs / trials, peak, List.copyOf(results)));
            }
        }
        return cells;
    }

    /** Refuses, before any trial runs, lengths whose longest prompt does not fit in the heap. */
    public static void requireMemory(Transformer model, int[] lengths, InferenceOptions options) {
        int max = java.util.Arrays.stream(lengths).max().orElse(0);
        if (max == 0) return;
        // the whole prompt is the session's first chunk; the answer adds a few positions
        MemoryEstimate.requireInference(model.config, max + ANSWER_ROOM, max, 1, options.halfKv(),
                "--lengths: a passkey prompt of " + max + " tokens");
    }

    // positions after the prompt: the longest answer (5 digits and 3 tokens of spacing) and one more
    private static final int ANSWER_ROOM = 9;

    /** Tokens of a text segment as it reads in the middle of a prompt (after other text). */
    static int[] segment(Tokenizer tok, String text) {
        int[] pre = tok.encode("."), both = tok.encode("." + text);
        if (both.length >= pre.length && java.util.Arrays.equals(both, 0, pre.length, pre, 0, pre.length)) {
            return java.util.Arrays.copyOfRange(both, pre.length, both.length);
        }
        return tok.encode(text);
    }

    static int fixedTokens(Tokenizer tok, String key) {
        return (tok.addBos() && tok.bosId() >= 0 ? 1 : 0) + tok.encode(PasskeyTask.TASK).length
                + segment(tok, PasskeyTask.needle(key)).length + segment(tok, PasskeyTask.QUESTION).length;
    }

    /**
     * One prompt of L tokens with the needle at the depth; greedy answer compared with the key. Runs
     * in session s (capacity at least L + ANSWER_ROOM, 9), which it clears first: its cache is reused.
     */
    public static Trial trial(InferenceSession s, Tokenizer tok, int L, double depth, String key, Haystack haystack, int fillerOffset) {
        long t0 = System.nanoTime();
        int[] ids = prompt(tok, L, depth, key, haystack, fillerOffset);
        // byte models answer " 12345" in exactly key+1 tokens; others may split digits or add a space token
        int answerLen = key.length() + (tok instanceof dev.longspan.io.ByteTokenizer ? 1 : 3);
        MemoryProbe mem = MemoryProbe.start();
        s.clear();
        Generator.Options greedyAnswer = Generator.Options.of(answerLen).withStopIds(tok.stopIds());
        // ids only: the answer is decoded on its own below
        int[] ans = new Generator(s, null, new Sampler(0f, 1f, 0)).generate(ids, greedyAnswer, piece -> { }).ids();
        long peak = mem.peak();
        String answer = tok.decode(ans).strip();
        boolean correct = answer.startsWith(key) && (answer.length() == key.length() || !Character.isDigit(answer.charAt(key.length())));
        if (tok instanceof dev.longspan.io.ByteTokenizer) correct = answer.equals(key);
        return new Trial(L, depth, key, answer, correct, (System.nanoTime() - t0) / 1e9, peak, fillerOffset);
    }

    /** The prompt's L token ids: task line, filler, needle at the depth, filler, question. */
    static int[] prompt(Tokenizer tok, int L, double depth, String key, Haystack haystack, int fillerOffset) {
        int[] task = tok.encode(PasskeyTask.TASK), nd = segment(tok, PasskeyTask.needle(key)), q = segment(tok, PasskeyTask.QUESTION);
        boolean bos = tok.addBos() && tok.bosId() >= 0;
        int fillerLen = L - (bos ? 1 : 0) - task.length - nd.length - q.length;
        if (fillerLen < 0) throw new LongspanException("passkey prompt length " + L + " is too short (minimum " + (L - fillerLen) + " tokens)");
        int before = (int) Math.round(Math.max(0, Math.min(1, depth)) * fillerLen);
        int[] ids = new int[L];
        int o = 0;
        if (bos) ids[o++] = tok.bosId();
        System.arraycopy(task, 0, ids, o, task.length); o += task.length;
        int[] hay = haystack.tokens();
        // a repeated filler restarts after the needle (as in training); a text stream continues
        long afterStart = haystack.stream() ? (long) fillerOffset + before : 0;
        for (int i = 0; i < before; i++) ids[o++] = hay[(int) ((fillerOffset + (long) i) % hay.length)];
        System.arraycopy(nd, 0, ids, o, nd.length); o += nd.length;
        for (int i = 0; i < fillerLen - before; i++) ids[o++] = hay[(int) ((afterStart + i) % hay.length)];
        System.arraycopy(q, 0, ids, o, q.length);
        return ids;
    }
}
