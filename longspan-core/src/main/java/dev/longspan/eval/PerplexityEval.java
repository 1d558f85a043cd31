package dev.longspan.eval;

import dev.longspan.kernel.Kernels;
import dev.longspan.model.InferenceOptions;
import dev.longspan.model.InferenceSession;
import dev.longspan.model.Transformer;
import dev.longspan.util.LongspanException;

import java.util.ArrayList;
import java.util.List;

/**
 * Perplexity as a function of context length: for each length L, windows of L+1 tokens from the
 * text; the loss counts only the final {@code tail} tokens of each window, so all lengths are
 * scored on the same kind of positions and longer context can only help if the model uses it.
 */
public final class PerplexityEval {
    public record Point(int length, int windows, long tokensScored, double loss, double perplexity, double seconds) {}

    public interface Listener { void onWindow(int length, int window, int windows); }

    private PerplexityEval() {}

    /** tokens: the whole text as ids; windows are taken evenly spaced, non-overlapping where the text allows. */
    public static List<Point> run(Transformer model, int[] tokens, int[] lengths, int tail, int maxWindows, Listener listener) {
        return run(model, tokens, lengths, tail, maxWindows, InferenceOptions.DEFAULT, listener);
    }

    public static List<Point> run(Transformer model, int[] tokens, int[] lengths, int tail, int maxWindows, InferenceOptions options, Listener listener) {
        // every length is checked before the first one runs: a bad last length must not throw the others' work away
        for (int L : lengths) {
            if (L < 2) throw new LongspanException("--lengths: " + L + " is too short");
            if (L + 1 > tokens.length) throw new LongspanException("--lengths: " + L + " needs " + (L + 1) + " tokens but the text has " + tokens.length);
            if (tail > L) throw new LongspanException("--tail " + tail + " is longer than the length " + L + " (--lengths): the tail is scored inside each window");
        }
        int max = java.util.Arrays.stream(lengths).max().orElse(0);
        if (max > 0) {
            MemoryEstimate.requireInference(model.config, max, max, tail, options.halfKv(), "--lengths: a window of " + max + " tokens");
        }
        List<Point> out = new ArrayList<>();
        for (int L : lengths) {
            int k = tail;
            int windows = (int) Math.max(1, Math.min(maxWindows, tokens.length / (L + 1)));
            long stride = windows > 1 ? (tokens.length - (L + 1)) / (windows - 1) : 0;
            double sum = 0;
            long t0 = System.nanoTime();
            int V = model.config.vocabSize();
            float[] losses = new float[k];
            for (int w = 0; w < windows; w++) {
                int start = (int) (w * stride);
                InferenceSession s = new InferenceSession(model, L, options);
                if (L - k > 0) s.feed(tokens, start, start + L - k);
                float[] logits = s.feed(tokens, start + L - k, start + L, k);
                int[] targets = new int[k];
                System.arraycopy(tokens, start + L - k + 1, targets, 0, k);
                sum += Kernels.crossEntropyForward(losses, logits, targets, k, V);
                listener.onWindow(L, w + 1, windows);
            }
            double loss = sum / ((double) windows * k);
            out.add(new Point(L, windows, (long) windows * k, loss, Math.exp(loss), (System.nanoTime() - t0) / 1e9));
        }
        return out;
    }
}
