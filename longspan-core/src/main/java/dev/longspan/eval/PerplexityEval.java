package dev.longspan.eval;

import dev.longspan.kernel.Kernels;
import dev.longspan.model.InferenceOptions;
import dev.longspan.model.InferenceSession;
import dev.longspan.model.MemoryEstimate;
import dev.longspan.model.Transformer;
import dev.longspan.util.LongspanException;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Perplexity as a function of context length, on the same text at every length: the scored
 * tokens are chosen once — the final {@code tail} tokens before each of K fixed window ends —
 * and each length L feeds the L tokens ending there as context. Lengths then differ only in how
 * much text precedes the same scored tokens, so the curve shows what context is worth and not
 * which bytes happened to be scored.
 */
public final class PerplexityEval {
    /** One context length: mean loss (nats per token) over every scored token, and each window's mean loss. */
    public record Point(int length, int windows, long tokensScored, double loss, double perplexity, double seconds, List<Double> windowLosses) {
        public Point {
            windowLosses = List.copyOf(windowLosses);   // a value: equal points compare equal
        }

        /**
         * This length against another on the same windows (the same scored tokens): the mean of the
         * per-window loss differences (this − other) and its standard error over the windows
         * (NaN with one window). A difference within about two standard errors is as likely to
         * come from which bytes were scored as from the context length.
         */
        public Paired minus(Point other) {
            if (other.windowLosses.size() != windowLosses.size()) throw new IllegalArgumentException("different windows");
            int n = windowLosses.size();
            double mean = 0;
            for (int w = 0; w < n; w++) mean += windowLosses.get(w) - other.windowLosses.get(w);
            mean /= n;
            double ss = 0;
            for (int w = 0; w < n; w++) {
                double e = windowLosses.get(w) - other.windowLosses.get(w) - mean;
                ss += e * e;
            }
            return new Paired(mean, n > 1 ? Math.sqrt(ss / (n - 1) / n) : Double.NaN);
        }
    }

    /** A paired difference of mean losses and its standard error. */
    public record Paired(double lossDiff, double standardError) {}

    public interface Listener { void onWindow(int length, int window, int windows); }

    private PerplexityEval() {}

    public static List<Point> run(Transformer model, int[] tokens, int[] lengths, int tail, int maxWindows, Listener listener) {
        return run(model, tokens, lengths, tail, maxWindows, InferenceOptions.DEFAULT, listener);
    }

    public static List<Point> run(Transformer model, int[] tokens, int[] lengths, int tail, int maxWindows, InferenceOptions options, Listener listener) {
        int max = java.util.Arrays.stream(lengths).max().orElse(0);
        int[] ends = windowEnds(tokens.length, lengths, tail, maxWindows);
        if (max > 0) {
            MemoryEstimate.requireInference(model.config, max, max, tail, options.halfKv(), "--lengths: a window of " + max + " tokens");
        }
        int V = model.config.vocabSize();
        List<Point> out = new ArrayList<>();
        float[] losses = new float[tail];
        int[] targets = new int[tail];
        // one session for every window, cleared between them: a long window's cache is allocated once
        InferenceSession s = max > 0 ? new InferenceSession(model, max, options) : null;
        for (int L : lengths) {
            double sum = 0;
            double[] perWindow = new double[ends.length];
            long t0 = System.nanoTime();
            for (int w = 0; w < ends.length; w++) {
                int start = ends[w] - L;  // the window is tokens[start .. start+L]: L fed, the last tail of them scored
                s.clear();
                if (L - tail > 0) s.feed(tokens, start, start + L - tail);
                float[] logits = s.feed(tokens, start + L - tail, start + L, tail);
                System.arraycopy(tokens, start + L - tail + 1, targets, 0, tail);
                double windowSum = Kernels.crossEntropyForward(losses, logits, targets, tail, V);
                perWindow[w] = windowSum / tail;
                sum += windowSum;
                listener.onWindow(L, w + 1, ends.length);
            }
            double loss = sum / ((double) ends.length * tail);
            out.add(new Point(L, ends.length, (long) ends.length * tail, loss, Math.exp(loss), (System.nanoTime() - t0) / 1e9,
                    Arrays.stream(perWindow).boxed().toList()));
        }
        return out;
    }

    /**
     * The index of each window's last scored token, the same for every length: evenly spaced
     * from the longest length to the end of the text, at most {@code maxWindows} and no more
     * than keep the scored tails apart. Window w scores tokens {@code ends[w]-tail+1 .. ends[w]}.
     */
    public static int[] windowEnds(int textTokens, int[] lengths, int tail, int maxWindows) {
        if (lengths.length == 0) throw new LongspanException("--lengths: no lengths given");
        if (tail < 1) throw new LongspanException("--tail must be at least 1, got " + tail);
        if (maxWindows < 1) throw new LongspanException("--windows must be at least 1, got " + maxWindows);
        for (int L : lengths) if (L < 2) throw new LongspanException("--lengths: " + L + " is too short");
        int minL = Arrays.stream(lengths).min().getAsInt(), maxL = Arrays.stream(lengths).max().getAsInt();
        if (tail > minL) {
            throw new LongspanException("--tail " + tail + " is longer than the shortest length " + minL + " (every length scores the same tokens)");
        }
        if (maxL + 1L > textTokens) {
            throw new LongspanException("--lengths: " + maxL + " needs " + (maxL + 1L) + " tokens but the text has " + textTokens);
        }
        int span = textTokens - 1 - maxL;
        int windows = (int) Math.min(maxWindows, 1L + span / tail);
        long stride = windows > 1 ? span / (windows - 1) : 0;
        int[] ends = new int[windows];
        for (int w = 0; w < windows; w++) ends[w] = (int) (maxL + w * stride);
        return ends;
    }
}
