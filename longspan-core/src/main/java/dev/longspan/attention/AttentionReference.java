package dev.longspan.attention;

import java.util.ArrayList;
import java.util.List;

/**
 * The plain reference every pattern is tested against: the dense count matrix C of a pattern
 * (how many times query p reaches key k, per head) and softmax(S + ln C)·V with its gradient, in
 * double. O(N²) memory and time: tests and small N only.
 *
 * <p>The counts are written from the patterns' definitions, independently of the tile plans.
 * Select-and-merge's selection is defined by scores of q and k: the reference computes them in
 * double from the definition ({@link #regionScores}) and takes the plan's choice (after the forward
 * pass) only when it is a best choice under those scores (ties to the lower index, float rounding
 * allowed for on near ties), else it throws.
 */
public final class AttentionReference {
    private AttentionReference() {}

    /** Per LSE-merged part (LongNet pair, sum term), per head, the N×N count matrix (row = query). */
    public static List<int[][]> partCounts(Plan plan) {
        return partCounts(plan, null, null, 0);
    }

    /** As {@link #partCounts(Plan)}, with q [H,N,D] and k [Hkv,N,D] for select-and-merge's selection. */
    public static List<int[][]> partCounts(Plan plan, float[] q, float[] k, int d) {
        List<int[][]> parts = new ArrayList<>();
        int[] smIndex = {0};
        addParts(parts, new ArrayList<>(), plan.pattern, plan, smIndex, q, k, d);
        return parts;
    }

    /**
     * The weight matrix per head: Σ over parts of count · e^bias, where select-and-merge's selected
     * regions carry the pattern's logit bias (every other key weight 1, so without a bias these are
     * the {@link #counts}). Softmax(S + ln W)·V is the attention.
     */
    public static double[][] weights(Plan plan, float[] q, float[] k, int d) {
        List<int[][]> parts = new ArrayList<>();
        List<double[][]> bias = new ArrayList<>();
        addParts(parts, bias, plan.pattern, plan, new int[]{0}, q, k, d);
        int n = plan.n;
        double[][] w = new double[plan.heads][n * n];
        for (int i = 0; i < parts.size(); i++)
            for (int h = 0; h < plan.heads; h++)
                for (int j = 0; j < n * n; j++) {
                    int c = parts.get(i)[h][j];
                    if (c != 0) w[h][j] += c * (bias.get(i) == null ? 1.0 : Math.exp(bias.get(i)[h][j]));
                }
        return w;
    }

    /** The total count matrix per head: the sum over parts (patterns without select-and-merge). */
    public static int[][] counts(Plan plan) {
        return counts(plan, null, null, 0);
    }

    /** The total count matrix per head, with q and k for select-and-merge's selection. */
    public static int[][] counts(Plan plan, float[] q, float[] k, int d) {
        int n = plan.n;
        int[][] total = new int[plan.heads][n * n];
        for (int[][] part : partCounts(plan, q, k, d))
            for (int h = 0; h < plan.heads; h++)
                for (int i = 0; i < n * n; i++) total[h][i] += part[h][i];
        return total;
    }

    // parts, and beside each its per-key logit bias (null: none)
    private static void addParts(List<int[][]> parts, List<double[][]> bias, Pattern pattern, Plan plan, int[] smIndex, float[] qs, float[] ks, int dim) {
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
                if (qs == null) throw new IllegalArgumentException("select-and-merge's reference counts need q and k");
                int part = smIndex[0]++;
                int region = s.region(), pick = s.top() - s.merge();
                long blockRows = Math.min((long) s.merge() * region, n);
                boolean[][][] chosen = new boolean[heads][n][];
                for (int h = 0; h < heads; h++)
                    for (int p = 0; p < n; p++) {
                        int cand = s.candidates(p / blockRows);
                        chosen[h][p] = new boolean[cand];
                        int[] sel = plan.selection(part, h, p);
                        if (cand <= pick || pick == 0) {
                            check(sel.length == Math.min(cand, pick), h, p, "expected all " + Math.min(cand, pick) + " candidates, got " + sel.length);
                            for (int b = 0; b < sel.length; b++) check(sel[b] == b, h, p, "expected regions 0..cand-1");
                        } else if (s.descends()) {
                            checkDescent(sel, s.beam(), qs, ks, plan.heads, plan.kvHeads, n, dim, region, h, p, cand, pick);
                        } else {
                            checkBest(sel, regionScores(s.score(), qs, ks, plan.heads, plan.kvHeads, n, dim, region, h, p, cand), pick, h, p);
                        }
                        for (int b : sel) chosen[h][p][b] = true;
                    }
                parts.add(fill(heads, n, (h, p, k) -> {
                    if (k > p) return false;
                    long start = s.nearStart(p / blockRows);
                    return k >= start || chosen[h][p][k / region];   // local regions and own block causal + selected regions
                }));
                double[][] b = new double[heads][n * n];              // the bias on the selected regions' keys
                for (int h = 0; h < heads; h++)
                    for (int p = 0; p < n; p++)
                        for (int k = 0; k < s.nearStart(p / blockRows); k++) b[h][p * n + k] = s.bias();
                bias.add(b);
            }
            case Pattern.Sum sum -> {
                for (Pattern t : sum.terms()) addParts(parts, bias, t, plan, smIndex, qs, ks, dim);
            }
        }
        while (bias.size() < parts.size()) bias.add(null);      // the parts just added carry no bias
    }

    /**
     * Select-and-merge's score of every region b &lt; cand for the query at row p of head h, in
     * double, from the definition: bound Σ_c max(q_c·max_j k_jc, q_c·min_j k_jc), max max_j q·k_j,
     * mean q·(Σ_j k_j / R), over the region's keys k_j of the head's key/value head.
     */
    public static double[] regionScores(Pattern.RegionScore score, float[] q, float[] k, int heads, int kvHeads, int n, int d,
                                        int region, int h, int p, int cand) {
        int kv = h / (heads / kvHeads), qo = (h * n + p) * d;
        double[] out = new double[cand];
        for (int b = 0; b < cand; b++) {
            double best = Double.NEGATIVE_INFINITY, bound = 0, mean = 0;
            for (int c = 0; c < d; c++) {
                double mx = Double.NEGATIVE_INFINITY, mn = Double.POSITIVE_INFINITY, sum = 0;
                for (int j = b * region; j < (b + 1) * region; j++) {
                    double x = k[(kv * n + j) * d + c];
                    mx = Math.max(mx, x);
                    mn = Math.min(mn, x);
                    sum += x;
                }
                bound += Math.max(q[qo + c] * mx, q[qo + c] * mn);
                mean += q[qo + c] * sum / region;
            }
            for (int j = b * region; j < (b + 1) * region; j++) best = Math.max(best, dot(q, qo, k, (kv * n + j) * d, d));
            out[b] = switch (score) {
                case BOUND -> bound;
                case MAX -> best;
                case MEAN -> mean;
            };
        }
        return out;
    }

    /**
     * The bound of the tree node of the given level whose first region is {@code first} (it covers
     * regions first..first+16^level−1) for the query at row p of head h, in double from the keys:
     * {[bound, magnitude]} where magnitude = Σ_c |q_c|·max(|kmax_c|, |kmin_c|) sizes float rounding.
     */
    public static double[] nodeBound(float[] q, float[] k, int heads, int kvHeads, int n, int d, int region, int h, int p,
                                     int level, int first) {
        int kv = h / (heads / kvHeads), qo = (h * n + p) * d;
        long from = (long) first * region, to = from + ((long) region << (4 * level));
        double bound = 0, mag = 0;
        for (int c = 0; c < d; c++) {
            double mx = Double.NEGATIVE_INFINITY, mn = Double.POSITIVE_INFINITY;
            for (long j = from; j < to; j++) {
                double x = k[(int) ((kv * (long) n + j) * d + c)];
                mx = Math.max(mx, x);
                mn = Math.min(mn, x);
            }
            bound += Math.max(q[qo + c] * mx, q[qo + c] * mn);
            mag += Math.abs(q[qo + c]) * Math.max(Math.abs(mx), Math.abs(mn));
        }
        return new double[]{bound, mag};
    }

    // score=bound with a beam (Pattern.SelectMerge): the descent in double. Where float rounding
    // could reorder two nodes (scores within tolerance), both outcomes are allowed: per level, the
    // nodes that may be kept (fewer than `keep` nodes of the smallest possible frontier surely beat
    // them) and those that must be (fewer than `keep` nodes of the largest possible frontier may
    // beat them); the selection must lie between the two at level 0.
    private static void checkDescent(int[] sel, int beam, float[] q, float[] k, int heads, int kvHeads, int n, int d,
                                     int region, int h, int p, int cand, int pick) {
        int top = 0;
        while ((cand >>> (4 * (top + 1))) > 0) top++;
        List<Integer> mayKeep = List.of(), mustKeep = List.of();
        int covered = 0;
        for (int l = top; l >= 0; l--) {
            int span = 1 << (4 * l), keep = l == 0 ? pick : beam;
            List<Integer> roots = new ArrayList<>();
            for (; covered + span <= cand; covered += span) roots.add(covered);
            List<Integer> wide = children(mayKeep, span, roots), narrow = children(mustKeep, span, roots);
            java.util.Map<Integer, double[]> b = new java.util.HashMap<>();
            for (int f : wide) b.put(f, nodeBound(q, k, heads, kvHeads, n, d, region, h, p, l, f));
            List<Integer> may = new ArrayList<>(), must = new ArrayList<>();
            for (int x : wide) {
                int surely = 0, maybe = 0;
                for (int y : narrow) if (y != x && b.get(y)[0] > b.get(x)[0] + tolerance(b.get(x), b.get(y))) surely++;
                for (int y : wide) if (y != x && b.get(y)[0] >= b.get(x)[0] - tolerance(b.get(x), b.get(y))) maybe++;
                if (surely < keep) may.add(x);
                if (narrow.contains(x) && maybe < keep) must.add(x);
            }
            mayKeep = may;
            mustKeep = must;
        }
        check(sel.length == pick, h, p, "selected " + sel.length + " regions, expected " + pick);
        for (int i = 0; i < sel.length; i++) {
            check(i == 0 || sel[i] > sel[i - 1], h, p, "selection not ascending and distinct");
            check(mayKeep.contains(sel[i]), h, p, "region " + sel[i] + " is not a possible outcome of the descent " + mayKeep);
        }
        for (int x : mustKeep) check(java.util.Arrays.binarySearch(sel, x) >= 0, h, p, "region " + x + " must be chosen by the descent");
    }

    // first regions of the children (span regions each) of the given nodes (span·16 each), and the roots
    private static List<Integer> children(List<Integer> parents, int span, List<Integer> roots) {
        List<Integer> out = new ArrayList<>();
        for (int f : parents) for (int j = 0; j < 16; j++) out.add(f + j * span);
        out.addAll(roots);
        return out;
    }

    private static double tolerance(double[] x, double[] y) { return 1e-5 * (x[1] + y[1]); }

    // sel must be `pick` distinct candidates, none of them beaten by a region left out: a higher
    // score beyond float rounding, or an exactly equal score at a lower index
    private static void checkBest(int[] sel, double[] scores, int pick, int h, int p) {
        check(sel.length == pick, h, p, "selected " + sel.length + " regions, expected " + pick);
        boolean[] in = new boolean[scores.length];
        double scale = 1;
        for (double x : scores) scale = Math.max(scale, Math.abs(x));
        for (int b : sel) {
            check(b >= 0 && b < scores.length && !in[b], h, p, "region " + b + " is not a fresh candidate of " + scores.length);
            in[b] = true;
        }
        double tol = 1e-5 * scale;
        for (int b : sel)
            for (int u = 0; u < scores.length; u++) {
                if (in[u]) continue;
                check(!(scores[u] > scores[b] + tol), h, p, "left out region " + u + " (score " + scores[u] + ") beats selected " + b + " (" + scores[b] + ")");
                check(!(scores[u] == scores[b] && u < b), h, p, "a tie between regions " + u + " and " + b + " went to the higher index");
            }
    }

    private static void check(boolean ok, int h, int p, String what) {
        if (!ok) throw new IllegalStateException("select-and-merge selection of head " + h + ", row " + p + ": " + what);
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
        return forward(q, k, v, heads, kvHeads, n, d, widen(counts), scale);
    }

    /** As above with weights W (softmax(S + ln W)·V), e.g. {@link #weights}. */
    public static Output forward(float[] q, float[] k, float[] v, int heads, int kvHeads, int n, int d, double[][] counts, double scale) {
        double[] o = new double[heads * n * d], lse = new double[heads * n];
        int group = heads / kvHeads;
        double[] s = new double[n];
        for (int h = 0; h < heads; h++) {
            int kv = h / group;
            for (int p = 0; p < n; p++) {
                double mx = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < n; j++) {
                    double c = counts[h][p * n + j];
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
        return backward(q, k, v, dO, heads, kvHeads, n, d, widen(counts), scale);
    }

    /** As above with weights W, e.g. {@link #weights}. */
    public static Grads backward(float[] q, float[] k, float[] v, float[] dO, int heads, int kvHeads, int n, int d,
                                 double[][] counts, double scale) {
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
            double[][] partW = widen(part);
            double[] w = new double[heads * n];
            for (int i = 0; i < w.length; i++) {
                w[i] = f.lse[i] == Double.NEGATIVE_INFINITY ? 0 : Math.exp(f.lse[i] - all.lse[i]);
            }
            accumulateBackwardWeighted(g, q, k, v, dO, w, f.o, f.lse, heads, kvHeads, n, d, partW, scale);
        }
        return g;
    }

    // softmax backward with P = C·exp(S − lse), delta = dO·oForDelta
    private static void accumulateBackward(Grads g, float[] q, float[] k, float[] v, float[] dO, double weight,
                                           double[] oForDelta, double[] lse, int heads, int kvHeads, int n, int d,
                                           double[][] counts, double scale) {
        double[] w = new double[heads * n];
        java.util.Arrays.fill(w, weight);
        accumulateBackwardWeighted(g, q, k, v, dO, w, oForDelta, lse, heads, kvHeads, n, d, counts, scale);
    }

    // gradient of sum(w ∘ dO ∘ o) where o = softmax(S + ln C)·V with the given lse, w constant per row
    private static void accumulateBackwardWeighted(Grads g, float[] q, float[] k, float[] v, float[] dO, double[] w,
                                                   double[] o, double[] lse, int heads, int kvHeads, int n, int d,
                                                   double[][] counts, double scale) {
        int group = heads / kvHeads;
        for (int h = 0; h < heads; h++) {
            int kv = h / group;
            for (int p = 0; p < n; p++) {
                int row = h * n + p, qo = row * d;
                if (lse[row] == Double.NEGATIVE_INFINITY || w[row] == 0) continue;
                double delta = 0;
                for (int c = 0; c < d; c++) delta += w[row] * dO[qo + c] * o[qo + c];
                for (int j = 0; j < n; j++) {
                    double cnt = counts[h][p * n + j];
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

    private static double[][] widen(int[][] counts) {
        double[][] w = new double[counts.length][];
        for (int h = 0; h < counts.length; h++) {
            w[h] = new double[counts[h].length];
            for (int i = 0; i < w[h].length; i++) w[h][i] = counts[h][i];
        }
        return w;
    }

    private static double dot(float[] a, int ao, float[] b, int bo, int d) {
        double s = 0;
        for (int c = 0; c < d; c++) s += (double) a[ao + c] * b[bo + c];
        return s;
    }
}
