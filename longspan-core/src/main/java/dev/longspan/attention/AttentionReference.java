package dev.longspan.attention;

import java.util.ArrayList;
import java.util.List;

/**
 * The plain reference every pattern is tested against: the dense count matrix C of a pattern
 * (how many times query p reaches key k, per head) and softmax(S + ln C)·V with its gradient, in
 * double. O(N²) memory and time: tests and small N only.
 *
 * <p>The counts are written from the patterns' definitions, independently of the tile plans.
 * Select-and-merge takes its chosen regions from the plan (after the forward pass): the selection
 * itself is checked separately.
 */
public final class AttentionReference {
    private AttentionReference() {}

    /** Per LSE-merged part (LongNet pair, sum term), per head, the N×N count matrix (row = query). */
    public static List<int[][]> partCounts(Plan plan) {
        List<int[][]> parts = new ArrayList<>();
        int[] smIndex = {0};
        addParts(parts, plan.pattern, plan, smIndex);
        return parts;
    }

    /** The total count matrix per head: the sum over parts. */
    public static int[][] counts(Plan plan) {
        int n = plan.n;
        int[][] total = new int[plan.heads][n * n];
        for (int[][] part : partCounts(plan))
            for (int h = 0; h < plan.heads; h++)
                for (int i = 0; i < n * n; i++) total[h][i] += part[h][i];
        return total;
    }

    private static void addParts(List<int[][]> parts, Pattern pattern, Plan plan, int[] smIndex) {
        int n = plan.n, heads = plan.heads;
        boolean causal = plan.causal;
        switch (pattern) {
            case Pattern.Dense d -> parts.add(fill(heads, n, (h, p, k) -> !causal || k <= p));
            case Pattern.Window w -> parts.add(fill(heads, n, (h, p, k) -> causal ? k <= p && p - k < w.size() : Math.abs(p - k) < w.size()));
            case Pattern.Block b -> parts.add(fill(heads, n, (h, p, k) -> p / b.size() == k / b.size() && (!causal || k <= p)));
            case Pattern.Dilated d -> {
                for (int i = 0; i < d.pairs(); i++) {
                    int seg = Math.min(d.w()[i], n), r = d.r()[i], pair = i;
                    parts.add(fill(heads, n, (h, p, k) -> {
                        int s = d.offset(pair, h, heads);
                        return p / seg == k / seg && (p % seg) % r == s && (k % seg) % r == s && (!causal || k <= p);
                    }));
                }
            }
            case Pattern.SelectMerge s -> {
                int part = smIndex[0]++;
                int region = s.region(), top = s.top(), merge = s.merge();
                int groups = plan.selectionGroups(part);
                boolean[][][] chosen = new boolean[heads][groups][];
                for (int h = 0; h < heads; h++)
                    for (int g = 0; g < groups; g++) {
                        chosen[h][g] = new boolean[(n + region - 1) / region];
                        for (int b : plan.selection(part, h, g)) chosen[h][g][b] = true;
                    }
                parts.add(fill(heads, n, (h, p, k) -> {
                    if (k > p) return false;
                    int a = p / region;
                    if (a < top) return true;                         // front block: exact causal
                    int g = (a - top) / merge, start = (top + g * merge) * region;
                    return k >= start || chosen[h][g][k / region];   // own regions causal + selected
                }));
            }
            case Pattern.Sum sum -> {
                for (Pattern t : sum.terms()) addParts(parts, t, plan, smIndex);
            }
        }
    }

    private interface Reach {
        boolean test(int head, int p, int k);
    }

    private static int[][] fill(int heads, int n, Reach reach) {
        int[][] c = new int[heads][n * n];
        for (int h = 0; h < heads; h++)
            for (int p = 0; p < n; p++)
                for (int k = 0; k < n; k++) if (reach.test(h, p, k)) c[h][p * n + k] = 1;
        return c;
    }

    // ---- softmax(S + ln C)·V and its gradient, in double ------------------------------------------

    /** o: [H, N, D], lse: [H, N] (-inf for rows with no key, where o = 0). */
    public record Output(double[] o, double[] lse) {}

    /** dq: [H, N, D], dk, dv: [Hkv, N, D]. */
    public record Grads(double[] dq, double[] dk, double[] dv) {}

    public static Output forward(float[] q, float[] k, float[] v, int heads, int kvHeads, int n, int d, int[][] counts, double scale) {
        double[] o = new double[heads * n * d], lse = new double[heads * n];
        int group = heads / kvHeads;
        double[] s = new double[n];
        for (int h = 0; h < heads; h++) {
            int kv = h / group;
            for (int p = 0; p < n; p++) {
                double mx = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < n; j++) {
                    int c = counts[h][p * n + j];
                    s[j] = c == 0 ? Double.NEGATIVE_INFINITY : scale * dot(q, (h * n + p) * d, k, (kv * n + j) * d, d) + Math.log(c);
                    mx = Math.max(mx, s[j]);
                }
                if (mx == Double.NEGATIVE_INFINITY) {
                    lse[h * n + p] = Double.NEGATIVE_INFINITY;
                    continue;
                }
                double sum = 0;
                for (int j = 0; j < n; j++) sum += Math.exp(s[j] - mx);
                double l = mx + Math.log(sum);
                lse[h * n + p] = l;
                for (int j = 0; j < n; j++) {
                    double w = Math.exp(s[j] - l);
                    if (w == 0) continue;
                    for (int c = 0; c < d; c++) o[(h * n + p) * d + c] += w * v[(kv * n + j) * d + c];
                }
            }
        }
        return new Output(o, lse);
    }

    /** The exact gradient of sum(dO ∘ O) for O = softmax(S + ln C)·V. */
    public static Grads backward(float[] q, float[] k, float[] v, float[] dO, int heads, int kvHeads, int n, int d,
                                 int[][] counts, double scale) {
        Output f = forward(q, k, v, heads, kvHeads, n, d, counts, scale);
        Grads g = new Grads(new double[heads * n * d], new double[kvHeads * n * d], new double[kvHeads * n * d]);
        accumulateBackward(g, q, k, v, dO, 1.0, f.o, f.lse, heads, kvHeads, n, d, counts, scale);
        return g;
    }

    /**
     * torchscale's LongNet gradient: every part's output o_i is back-propagated on its own with
     * dO_i = w_i·dO, where the merge weights w_i = exp(LSE_i − LSE) are constants.
     */
    public static Grads backwardDetached(float[] q, float[] k, float[] v, float[] dO, int heads, int kvHeads, int n, int d,
                                         List<int[][]> parts, double scale) {
        int[][] total = new int[heads][n * n];
        for (int[][] part : parts) for (int h = 0; h < heads; h++) for (int i = 0; i < n * n; i++) total[h][i] += part[h][i];
        Output all = forward(q, k, v, heads, kvHeads, n, d, total, scale);
        Grads g = new Grads(new double[heads * n * d], new double[kvHeads * n * d], new double[kvHeads * n * d]);
        for (int[][] part : parts) {
            Output f = forward(q, k, v, heads, kvHeads, n, d, part, scale);
            double[] w = new double[heads * n];
            for (int i = 0; i < w.length; i++) {
                w[i] = f.lse[i] == Double.NEGATIVE_INFINITY ? 0 : Math.exp(f.lse[i] - all.lse[i]);
            }
            accumulateBackwardWeighted(g, q, k, v, dO, w, f.o, f.lse, heads, kvHeads, n, d, part, scale);
        }
        return g;
    }

    // softmax backward with P = C·exp(S − lse), delta = dO·oForDelta
    private static void accumulateBackward(Grads g, float[] q, float[] k, float[] v, float[] dO, double weight,
                                           double[] oForDelta, double[] lse, int heads, int kvHeads, int n, int d,
                                           int[][] counts, double scale) {
        double[] w = new double[heads * n];
        java.util.Arrays.fill(w, weight);
        accumulateBackwardWeighted(g, q, k, v, dO, w, oForDelta, lse, heads, kvHeads, n, d, counts, scale);
    }

    // gradient of sum(w ∘ dO ∘ o) where o = softmax(S + ln C)·V with the given lse, w constant per row
    private static void accumulateBackwardWeighted(Grads g, float[] q, float[] k, float[] v, float[] dO, double[] w,
                                                   double[] o, double[] lse, int heads, int kvHeads, int n, int d,
                                                   int[][] counts, double scale) {
        int group = heads / kvHeads;
        for (int h = 0; h < heads; h++) {
            int kv = h / group;
            for (int p = 0; p < n; p++) {
                int row = h * n + p, qo = row * d;
                if (lse[row] == Double.NEGATIVE_INFINITY || w[row] == 0) continue;
                double delta = 0;
                for (int c = 0; c < d; c++) delta += w[row] * dO[qo + c] * o[qo + c];
                for (int j = 0; j < n; j++) {
                    int cnt = counts[h][p * n + j];
                    if (cnt == 0) continue;
                    int ko = (kv * n + j) * d;
                    double prob = cnt * Math.exp(scale * dot(q, qo, k, ko, d) - lse[row]);
                    double dp = 0;
                    for (int c = 0; c < d; c++) dp += w[row] * dO[qo + c] * v[ko + c];
                    double ds = prob * (dp - delta);
                    for (int c = 0; c < d; c++) {
                        g.dv[ko + c] += prob * w[row] * dO[qo + c];
                        g.dq[qo + c] += scale * ds * k[ko + c];
                        g.dk[ko + c] += scale * ds * q[qo + c];
                    }
                }
            }
        }
    }

    private static double dot(float[] a, int ao, float[] b, int bo, int d) {
        double s = 0;
        for (int c = 0; c < d; c++) s += (double) a[ao + c] * b[bo + c];
        return s;
    }
}
