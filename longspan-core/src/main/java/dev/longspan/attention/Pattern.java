package dev.longspan.attention;

import dev.longspan.util.LongspanException;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Which (query, key) pairs exist: the attention patterns of the seed papers and sums of them.
 * Parsed from a spec string by {@link #parse}; {@link #spec()} prints the canonical form back.
 * <pre>
 *   dense                                   keys 0..p
 *   window:size=W                           keys p-W+1..p          (bidirectional: |p-k| &lt; W)
 *   block:size=B                            keys floor(p/B)·B..p   (bidirectional: the whole block)
 *   dilated:w=w1,w2,..;r=r1,r2,..[;offsets=mod|blocks]
 *                                           LongNet's mixture (see {@link Dilated})
 *   selectmerge:region=R,top=T,merge=M[,local=L][,score=bound|max|mean][,beam=B|all][,pos=selected][,bias=B]
 *                                           query-aware select-and-merge (causal only; see {@link SelectMerge})
 *   A+B                                     both, merged by log-sum-exp (one softmax over the multiset union)
 * </pre>
 * Patterns are plain data; the tile plans that compute them live in {@link TilePlans}, the
 * dense count-matrix definition in {@link AttentionReference}.
 */
public sealed interface Pattern {

    /** The canonical spec string (parses back to an equal pattern). */
    String spec();

    /**
     * How far back (in positions, the query included) a causal query of this pattern can reach:
     * what a KV cache must keep; {@link Integer#MAX_VALUE} when every earlier key can be read.
     */
    default long reach() {
        return switch (this) {
            case Window w -> w.size();
            case Block b -> b.size();
            case Sum sum -> sum.terms().stream().mapToLong(Pattern::reach).max().orElse(Integer.MAX_VALUE);
            default -> Integer.MAX_VALUE;
        };
    }

    /** Dense attention: query p reaches every key k ≤ p (bidirectional: every key). */
    record Dense() implements Pattern {
        public String spec() { return "dense"; }
    }

    /** Sliding window: the W most recent positions p-W+1..p (bidirectional: |p - k| &lt; W). */
    record Window(int size) implements Pattern {
        public String spec() { return "window:size=" + size; }
    }

    /** Block-local (MASFormer's block-sparse layer): floor(p/B)·B..p (bidirectional: the whole block). */
    record Block(int size) implements Pattern {
        public String spec() { return "block:size=" + size; }
    }

    /**
     * LongNet's dilated mixture. For each pair (w, r): segments of length min(w, N); query head h
     * keeps the rows whose offset inside the segment is ≡ s(h) (mod r) and attends, causally by
     * position, to the kept rows of its segment; rows it does not keep get nothing from the pair.
     * The pairs merge by log-sum-exp. Head offset s(h): {@code h mod r} (the paper, default) or,
     * with {@code headBlocks}, torchscale's contiguous head blocks {@code floor(h / ceil(H/r))}.
     */
    record Dilated(int[] w, int[] r, boolean headBlocks) implements Pattern {
        public Dilated {
            w = w.clone();
            r = r.clone();
        }

        public int pairs() { return w.length; }

        /** The offset head h keeps for pair i when the layer has H query heads. */
        public int offset(int i, int h, int heads) {
            int ri = r[i];
            if (!headBlocks) return h % ri;
            int perBlock = (heads + ri - 1) / ri;
            return h / perBlock;
        }

        public String spec() {
            StringBuilder b = new StringBuilder("dilated:w=");
            for (int i = 0; i < w.length; i++) b.append(i > 0 ? "," : "").append(w[i]);
            b.append(";r=");
            for (int i = 0; i < r.length; i++) b.append(i > 0 ? "," : "").append(r[i]);
            if (headBlocks) b.append(";offsets=blocks");
            return b.toString();
        }

        @Override public boolean equals(Object o) {
            return o instanceof Dilated d && Arrays.equals(w, d.w) && Arrays.equals(r, d.r) && headBlocks == d.headBlocks;
        }

        @Override public int hashCode() { return 31 * (31 * Arrays.hashCode(w) + Arrays.hashCode(r)) + Boolean.hashCode(headBlocks); }

        @Override public String toString() { return spec(); }
    }

    /** How select-and-merge scores a region for a query q (the region's keys k_j, D channels). */
    enum RegionScore {
        /** Quest's upper bound of q·k over the region: Σ_c max(q_c·kmax_c, q_c·kmin_c) with per-channel key max/min. */
        BOUND,
        /** The exact max_j q·k_j over the region's keys (costs as much as dense scores). */
        MAX,
        /** The paper's q·mean_j(k_j) (averaging hides a single strong key). */
        MEAN;

        String spec() { return name().toLowerCase(Locale.ROOT); }
    }

    /**
     * Which positions select-and-merge's attention sees (ALGORITHMS.md §4.6). {@code ORIGINAL}:
     * every key keeps the position it has in the sequence. {@code SELECTED} ("positions on selected
     * tokens only"): the keys a query attends to are renumbered as if they were contiguous — the
     * i-th selected region (ascending) holds positions i·R .. i·R+R−1, the own block follows at S·R
     * (S regions selected), and the query takes its own key's new position — so relative distances
     * stay below T·R at any length. The RoPE of the layer rotates those new positions (through its
     * position map: a CRD-NTK period wraps them); the selection itself still ranks the keys as cached.
     */
    enum Positions {
        ORIGINAL, SELECTED;

        String spec() { return name().toLowerCase(Locale.ROOT); }
    }

    /**
     * Query-aware select-and-merge, per query row and head. Regions of R tokens (region b holds
     * positions bR..bR+R−1); own blocks of M regions (M·R positions). A query at position p, in own
     * block B = floor(p / (M·R)), attends to
     * <ul>
     *   <li>its own block causally: positions B·M·R..p (exact, like a block-local layer);</li>
     *   <li>the T−M regions b &lt; B·M (every region wholly before its own block, so no earlier region
     *       is out of reach) that score best for its own query q_p of this head (GQA: against the
     *       key/value head's keys), by {@link #score} (descending, ties to the lower index); all
     *       of them while there are at most T−M.</li>
     * </ul>
     * With {@code score=bound} and a beam (the default: {@code beam} = T−M), "best" is found by a
     * beam descent of a region tree instead of ranking every candidate: a node of level l covers
     * the 16^l regions 16^l·i ..; its bound uses the per-channel max and min over all of them. The
     * candidates 0..C−1 (C = B·M) are covered by maximal complete nodes, largest first (the
     * roots); from the top level down, the {@code beam} best nodes of the level (its roots and the
     * children of the nodes kept one level up; bound descending, ties to the lower first region)
     * are kept, and at level 0 the T−M best regions of that frontier are chosen. Each query then
     * scores O(16·beam·log C) nodes instead of C regions. {@code beam=all} ({@code beam} 0) ranks
     * every candidate (exact, O(C) per query); {@code max} and {@code mean} always do.
     *
     * <p>A query's key set thus depends only on its own query and the keys before its block: it is
     * causal, and training, chunked prefill and cached decoding compute the same set. The
     * selection is not differentiated (gradients flow through the attention over what it chose).
     *
     * <p>{@code bias} (default 0) is added to the attention logit of every key in a selected region
     * (not the own block's): softmax over own block and selected keys with the selected ones
     * weighted by e^bias, a prior against far text that a query does not need (the best of many
     * candidate regions scores well against any query; see docs/MODEL.md).
     *
     * <p>{@code local} keeps the L regions before the own block out of the selection and in every
     * query's key set: without it a query early in its block reads few near tokens unless the
     * selection happens to pick the region before it, and at long contexts, among many more
     * candidates, it picks it less often, so prose reads worse the longer the context (docs/MODEL.md).
     */
    record SelectMerge(int region, int top, int merge, RegionScore score, int beam, Positions positions, float bias, int local) implements Pattern {
        public SelectMerge {
            if (local < 0) throw new IllegalArgumentException("select-and-merge: local " + local + " is negative");
            if (beam < 0 || (beam > 0 && (score != RegionScore.BOUND || beam < top - merge)))
                throw new IllegalArgumentException("select-and-merge: beam " + beam + " with score " + score + " and top−merge " + (top - merge));
            java.util.Objects.requireNonNull(positions, "positions");
            if (!Float.isFinite(bias)) throw new IllegalArgumentException("select-and-merge: bias " + bias + " is not finite");
        }

        /** No local regions beyond the own block. */
        public SelectMerge(int region, int top, int merge, RegionScore score, int beam, Positions positions, float bias) {
            this(region, top, merge, score, beam, positions, bias, 0);
        }

        /** No bias on the selected regions' logits. */
        public SelectMerge(int region, int top, int merge, RegionScore score, int beam, Positions positions) {
            this(region, top, merge, score, beam, positions, 0f);
        }

        /** Positions as the tokens had them ({@link Positions#ORIGINAL}). */
        public SelectMerge(int region, int top, int merge, RegionScore score, int beam) {
            this(region, top, merge, score, beam, Positions.ORIGINAL);
        }

        /** The default score ({@link RegionScore#BOUND}) and beam (T−M). */
        public SelectMerge(int region, int top, int merge) { this(region, top, merge, RegionScore.BOUND); }

        /** The default beam for the score: T−M for {@code bound}, all for the others. */
        public SelectMerge(int region, int top, int merge, RegionScore score) {
            this(region, top, merge, score, score == RegionScore.BOUND ? top - merge : 0);
        }

        /** Whether the selection descends the region tree (else it ranks every candidate). */
        public boolean descends() { return beam > 0 && top > merge; }

        /** The first position own block B's queries read without selecting: (B·M − L)·R, at least 0. */
        public long nearStart(long block) { return Math.max(0L, (block * merge - local) * region); }

        /** The regions own block B's queries choose from: 0 .. B·M − L − 1. */
        public int candidates(long block) { return (int) Math.max(0L, block * merge - local); }

        public String spec() {
            String s = "selectmerge:region=" + region + ",top=" + top + ",merge=" + merge
                    + (local == 0 ? "" : ",local=" + local) + ",score=" + score.spec();
            if (score == RegionScore.BOUND) s += ",beam=" + (beam == 0 ? "all" : beam);
            if (positions == Positions.SELECTED) s += ",pos=selected";
            return bias == 0f ? s : s + ",bias=" + bias;
        }
    }

    /** Several patterns merged by log-sum-exp. */
    record Sum(List<Pattern> terms) implements Pattern {
        public Sum {
            terms = List.copyOf(terms);
        }

        public String spec() {
            StringBuilder b = new StringBuilder();
            for (Pattern t : terms) b.append(b.isEmpty() ? "" : "+").append(t.spec());
            return b.toString();
        }
    }

    // ---- the one parser ------------------------------------------------------------------------

    /** Parses a spec; a bad spec gives a {@link LongspanException} naming the bad part. */
    static Pattern parse(String spec) {
        if (spec == null || spec.isBlank()) throw new LongspanException("attention pattern: empty spec (expected e.g. dense, window:size=256)");
        String[] parts = spec.split("\\+", -1);
        List<Pattern> terms = new ArrayList<>();
        for (String part : parts) terms.add(parseTerm(spec, part.trim()));
        return terms.size() == 1 ? terms.get(0) : new Sum(terms);
    }

    private static Pattern parseTerm(String spec, String term) {
        if (term.isEmpty()) throw bad(spec, "empty term (two '+' in a row, or a '+' at an end)");
        int colon = term.indexOf(':');
        String name = (colon < 0 ? term : term.substring(0, colon)).trim().toLowerCase(Locale.ROOT);
        String params = colon < 0 ? "" : term.substring(colon + 1).trim();
        switch (name) {
            case "dense" -> {
                if (!params.isEmpty()) throw bad(spec, "'dense' takes no parameters, got '" + params + "'");
                return new Dense();
            }
            case "window", "block" -> {
                int size = -1;
                for (String[] kv : keyValues(spec, term, params, "[,;]")) {
                    if (!kv[0].equals("size")) throw bad(spec, "unknown parameter '" + kv[0] + "' in '" + term + "' (expected size=N)");
                    size = positive(spec, term, kv);
                }
                if (size < 0) throw bad(spec, "'" + name + "' needs size=N, e.g. " + name + ":size=256");
                return name.equals("window") ? new Window(size) : new Block(size);
            }
            case "dilated" -> {
                int[] w = null, r = null;
                boolean blocks = false;
                for (String[] kv : keyValues(spec, term, params, ";")) {
                    switch (kv[0]) {
                        case "w" -> w = positiveList(spec, term, kv);
                        case "r" -> r = positiveList(spec, term, kv);
                        case "offsets" -> {
                            switch (kv[1].toLowerCase(Locale.ROOT)) {
                                case "mod", "paper" -> blocks = false;
                                case "blocks", "torchscale" -> blocks = true;
                                default -> throw bad(spec, "offsets must be mod (the paper) or blocks (torchscale), got '" + kv[1] + "'");
                            }
                        }
                        default -> throw bad(spec, "unknown parameter '" + kv[0] + "' in '" + term + "' (expected w=, r=, offsets=)");
                    }
                }
                if (w == null || r == null) throw bad(spec, "'dilated' needs w=LIST;r=LIST, e.g. dilated:w=2048,8192;r=1,4");
                if (w.length != r.length) throw bad(spec, "w has " + w.length + " values but r has " + r.length + " in '" + term + "'");
                return new Dilated(w, r, blocks);
            }
            case "selectmerge" -> {
                int region = -1, top = -1, merge = -1;
                Integer beam = null;
                RegionScore score = RegionScore.BOUND;
                Positions positions = Positions.ORIGINAL;
                float bias = 0f;
                int local = 0;
                for (String[] kv : keyValues(spec, term, params, "[,;]")) {
                    switch (kv[0]) {
                        case "region" -> region = positive(spec, term, kv);
                        case "top" -> top = positive(spec, term, kv);
                        case "merge" -> merge = positive(spec, term, kv);
                        case "local" -> local = nonNegative(spec, term, kv);
                        case "score" -> score = switch (kv[1].toLowerCase(Locale.ROOT)) {
                            case "bound" -> RegionScore.BOUND;
                            case "max" -> RegionScore.MAX;
                            case "mean" -> RegionScore.MEAN;
                            default -> throw bad(spec, "score must be bound, max or mean, got '" + kv[1] + "'");
                        };
                        case "beam" -> beam = kv[1].equalsIgnoreCase("all") ? 0 : positive(spec, term, kv);
                        case "pos" -> positions = switch (kv[1].toLowerCase(Locale.ROOT)) {
                            case "original" -> Positions.ORIGINAL;
                            case "selected" -> Positions.SELECTED;
                            default -> throw bad(spec, "pos must be original or selected, got '" + kv[1] + "'");
                        };
                        case "bias" -> bias = finite(spec, term, kv);
                        default -> throw bad(spec, "unknown parameter '" + kv[0] + "' in '" + term + "' (expected region=, top=, merge=, local=, score=, beam=, pos=, bias=)");
                    }
                }
                if (region < 0 || top < 0 || merge < 0) throw bad(spec, "'selectmerge' needs region=R,top=T,merge=M, e.g. selectmerge:region=16,top=512,merge=64");
                if (merge > top) throw bad(spec, "merge=" + merge + " exceeds top=" + top + " (top counts the group's own regions)");
                if (beam == null) beam = score == RegionScore.BOUND ? top - merge : 0;
                else if (score != RegionScore.BOUND) throw bad(spec, "beam applies to score=bound only (" + score.spec() + " ranks every region)");
                else if (beam > 0 && beam < top - merge) throw bad(spec, "beam=" + beam + " is below top-merge=" + (top - merge) + " (the regions each query chooses); use beam=all to rank every region");
                return new SelectMerge(region, top, merge, score, beam, positions, bias, local);
            }
            default -> throw bad(spec, "unknown pattern '" + name + "' (expected dense, window, block, dilated, selectmerge)");
        }
    }

    private static List<String[]> keyValues(String spec, String term, String params, String sep) {
        List<String[]> out = new ArrayList<>();
        if (params.isEmpty()) return out;
        for (String p : params.split(sep, -1)) {
            int eq = p.indexOf('=');
            if (eq < 0) throw bad(spec, "'" + p.trim() + "' in '" + term + "' is not key=value");
            out.add(new String[]{p.substring(0, eq).trim().toLowerCase(Locale.ROOT), p.substring(eq + 1).trim()});
        }
        return out;
    }

    private static int positive(String spec, String term, String[] kv) {
        return atLeast(1, "a positive", spec, term, kv);
    }

    private static int nonNegative(String spec, String term, String[] kv) {
        return atLeast(0, "a non-negative", spec, term, kv);
    }

    private static int atLeast(int min, String what, String spec, String term, String[] kv) {
        try {
            int v = Integer.parseInt(kv[1]);
            if (v < min) throw new NumberFormatException();
            return v;
        } catch (NumberFormatException e) {
            throw bad(spec, kv[0] + " must be " + what + " integer, got '" + kv[1] + "' in '" + term + "'");
        }
    }

    private static float finite(String spec, String term, String[] kv) {
        try {
            // plain decimals only: Float.parseFloat would also take "NaN", "Infinity", hex and a trailing f or d
            if (!kv[1].strip().matches("[+-]?(\\d+\\.?\\d*|\\.\\d+)")) throw new NumberFormatException();
            float v = Float.parseFloat(kv[1]);
            if (!Float.isFinite(v)) throw new NumberFormatException();   // too large for a float
            return v;
        } catch (NumberFormatException e) {
            throw bad(spec, kv[0] + " must be a finite number, got '" + kv[1] + "' in '" + term + "'");
        }
    }

    private static int[] positiveList(String spec, String term, String[] kv) {
        String[] xs = kv[1].split(",", -1);
        int[] out = new int[xs.length];
        for (int i = 0; i < xs.length; i++) out[i] = positive(spec, term, new String[]{kv[0], xs[i].trim()});
        return out;
    }

    private static LongspanException bad(String spec, String problem) {
        return new LongspanException("attention pattern '" + spec + "': " + problem);
    }
}
