package dev.longspan.eval;

import dev.longspan.model.InferenceSession;
import dev.longspan.model.Sampler;
import dev.longspan.model.Transformer;
import dev.longspan.train.PasskeyTask;
import dev.longspan.util.LongspanException;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Passkey retrieval over a grid of prompt lengths × needle depths: the standard prompt (see
 * {@link PasskeyTask}), greedy decoding, exact match of the key. Byte-level models: one token
 * per byte, so a prompt of L tokens is L bytes long.
 */
public final class PasskeyEval {
    /** One trial's outcome. */
    public record Trial(int length, double depth, String key, String answer, boolean correct, double seconds, long peakBytes) {}

    /** One cell of the grid. */
    public record Cell(int length, double depth, int trials, int correct, double meanSeconds, long peakBytes) {
        public double accuracy() { return trials == 0 ? 0 : (double) correct / trials; }
    }

    /** Progress callback per finished trial. */
    public interface Listener { void onTrial(Trial t, int done, int total); }

    private PasskeyEval() {}

    public static List<Cell> run(Transformer model, int[] lengths, double[] depths, int trials, PasskeyTask.Filler filler,
                                 long seed, Listener listener) {
        return run(model, lengths, depths, trials, filler, seed, false, listener);
    }

    /** {@code halfKv}: keep the KV cache in half precision. */
    public static List<Cell> run(Transformer model, int[] lengths, double[] depths, int trials, PasskeyTask.Filler filler,
                                 long seed, boolean halfKv, Listener listener) {
        if (trials < 1) throw new LongspanException("--trials must be at least 1");
        for (int L : lengths) {
            int min = PasskeyTask.minimumLength("00000");
            if (L < min) throw new LongspanException("--lengths: " + L + " is shorter than the passkey prompt itself (" + min + " tokens)");
        }
        List<Cell> cells = new ArrayList<>();
        int total = lengths.length * depths.length * trials, done = 0;
        for (int L : lengths) {
            for (double depth : depths) {
                int correct = 0;
                double secs = 0;
                long peak = 0;
                for (int t = 0; t < trials; t++) {
                    SplittableRandom rnd = new SplittableRandom(seed * 1_000_003L + L * 31L + (long) (depth * 1000) * 7 + t);
                    Trial tr = trial(model, L, depth, PasskeyTask.randomKey(rnd), filler, halfKv);
                    if (tr.correct()) correct++;
                    secs += tr.seconds();
                    peak = Math.max(peak, tr.peakBytes());
                    listener.onTrial(tr, ++done, total);
                }
                cells.add(new Cell(L, depth, trials, correct, secs / trials, peak));
            }
        }
        return cells;
    }

    /** One prompt of L tokens with the needle at the depth; greedy answer compared with the key. */
    public static Trial trial(Transformer model, int L, double depth, String key, PasskeyTask.Filler filler, boolean halfKv) {
        long t0 = System.nanoTime();
        PasskeyTask.Prompt p = PasskeyTask.build(key, L, depth, filler);
        int[] ids = new int[L];
        for (int i = 0; i < L; i++) ids[i] = p.prompt()[i] & 0xff;
        int answerLen = key.length() + 1; // " 12345"
        MemoryProbe mem = MemoryProbe.start();
        InferenceSession s = new InferenceSession(model, L + answerLen + 1, halfKv);
        float[] logits = s.feed(ids, 0, L);
        byte[] ans = new byte[answerLen];
        int[] one = new int[1];
        for (int i = 0; i < answerLen; i++) {
            int next = Sampler.argmax(logits);
            ans[i] = (byte) (next < 256 ? next : '?');
            if (i + 1 < answerLen) {
                one[0] = next;
                logits = s.feed(one, 0, 1);
            }
        }
        long peak = mem.peak();
        String answer = new String(ans, StandardCharsets.ISO_8859_1).strip();
        return new Trial(L, depth, key, answer, answer.equals(key), (System.nanoTime() - t0) / 1e9, peak);
    }
}
