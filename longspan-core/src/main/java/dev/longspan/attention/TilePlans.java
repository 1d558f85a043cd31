package dev.longspan.attention;

import java.util.ArrayList;
import java.util.List;

/**
 * The tile plan of every pattern: which tiles (query rows × key rows, band mask) compute it, for
 * the queries at positions [qBase, qBase + tq) against the keys at [kBase, kBase + tk) of one
 * position axis ({@link Span}): a whole sequence (training: both 0..N−1), a chunk of a prompt or
 * one decoded token against a KV cache, or one block of a distributed sequence. A pattern's key
 * sets are defined here and only here: every tile is the pattern's tile over the whole axis, cut
 * to the span's query and key rows. A pattern with several LSE-merged parts (LongNet's pairs, the
 * terms of a sum) gives one {@link Pass} per part. Adding a pattern means adding its pass here.
 */
final class TilePlans {
    private TilePlans() {}

    /** Queries at [qBase, qBase + tq), keys at [kBase, kBase + tk). */
    record Span(int qBase, int tq, int kBase, int tk) {
        int qEnd() { return qBase + tq; }

        int kEnd() { return kBase + tk; }
    }

    /**
     * The passes of p over span; each select-and-merge term takes the next of {@code summaries}
     * (null: the pass summarises the span's own keys, which must then start at position 0).
     */
    static List<Pass> passes(Pattern p, Span span, int heads, boolean causal, List<RegionSummaries> summaries) {
        List<Pass> out = new ArrayList<>();
        add(out, p, span, heads, causal, summaries);
        return out;
    }

    private static void add(List<Pass> out, Pattern p, Span span, int heads, boolean causal, List<RegionSummaries> summaries) {
        switch (p) {
            case Pattern.Dense d -> out.add(new Banded(span, causal ? 0 : -Tile.INF, Tile.INF));
            case Pattern.Window w -> out.add(new Banded(span, causal ? 0 : -(w.size() - 1L), w.size() - 1L));
            case Pattern.Block b -> out.add(new Blocks(span, b.size(), causal));
            case Pattern.Dilated d -> {
                for (int i = 0; i < d.pairs(); i++) out.add(new DilatedPair(d, i, span, heads, causal));
            }
            case Pattern.SelectMerge s -> {
                int term = (int) out.stream().filter(x -> x instanceof SelectMergePass).count();
                out.add(new SelectMergePass(s, span, heads, summaries == null ? null : summaries.get(term)));
            }
            case Pattern.Sum s -> {
                for (Pattern t : s.terms()) add(out, t, span, heads, causal, summaries);
            }
        }
    }

    /** dense and window: one tile of all query rows against all key rows, with a band on p − k. */
    static final class Banded implements Pass {
        final Span span;
        final long lo, hi;

        Banded(Span span, long lo, long hi) {
            this.span = span;
            this.lo = lo;
            this.hi = hi;
        }

        public int tiles(int head) { return 1; }

        public boolean sameTilesForAllHeads() { return true; }

        public int queryRows(int head, int tile) { return span.tq(); }

        public void tile(int head, int tile, Tile out) {
            out.queries.range(span.qBase(), 1, span.tq());
            out.keys.range(span.kBase(), 1, span.tk());
            out.band(lo, hi);
        }
    }

    /** block: one tile per block of B positions the queries touch, causal inside (or the whole block). */
    static final class Blocks implements Pass {
        final Span span;
        final int b, first;
        final boolean causal;

        Blocks(Span span, int b, boolean causal) {
            this.span = span;
            this.b = b;
            this.causal = causal;
            this.first = span.qBase() / b;
        }

        public int tiles(int head) { return span.tq() == 0 ? 0 : (span.qEnd() - 1) / b - first + 1; }

        public boolean sameTilesForAllHeads() { return true; }

        public int queryRows(int head, int tile) {
            long start = (long) (first + tile) * b;
            return (int) (Math.min(start + b, span.qEnd()) - Math.max(start, span.qBase()));
        }

        public void tile(int head, int tile, Tile out) {
            long start = (long) (first + tile) * b, end = start + b;
            int q0 = (int) Math.max(start, span.qBase()), k0 = (int) Math.max(start, span.kBase());
            out.queries.range(q0, 1, (int) (Math.min(end, span.qEnd()) - q0));
            out.keys.range(k0, 1, (int) (Math.min(end, span.kEnd()) - k0));
            out.causal(causal);
        }
    }

    /**
     * One (w, r) pair of LongNet: segments of w positions (a sequence shorter than w is one
     * segment, the paper's min(w, N)); head h keeps the rows at offsets ≡ s(h) (mod r) inside each
     * segment, which attend to each other (causal by position).
     */
    static final class DilatedPair implements Pass {
        final Span span;
        final int seg, r, first;
        final int[] offset;   // per query head
        final boolean causal;

        DilatedPair(Pattern.Dilated d, int i, Span span, int heads, boolean causal) {
            this.span = span;
            this.seg = d.w()[i];
            this.r = d.r()[i];
            this.causal = causal;
            this.first = span.qBase() / seg;
            offset = new int[heads];
            for (int h = 0; h < heads; h++) offset[h] = d.offset(i, h, heads);
        }

        public int tiles(int head) { return span.tq() == 0 ? 0 : (span.qEnd() - 1) / seg - first + 1; }

        public int queryRows(int head, int tile) {
            long start = (long) (first + tile) * seg;
            return count(start, firstKept(start, offset[head], span.qBase()), span.qEnd());
        }

        public void tile(int head, int tile, Tile out) {
            long start = (long) (first + tile) * seg;
            long q0 = firstKept(start, offset[head], span.qBase()), k0 = firstKept(start, offset[head], span.kBase());
            out.queries.range((int) q0, r, count(start, q0, span.qEnd()));
            out.keys.range((int) Math.min(k0, Integer.MAX_VALUE), r, count(start, k0, span.kEnd()));
            out.causal(causal);
        }

        // the first row at or after lo that the segment at start keeps with offset off
        private long firstKept(long start, int off, int lo) {
            long first = start + off;
            return first < lo ? first + (lo - first + r - 1) / r * r : first;
        }

        // rows from first (stride r) inside the segment at start and before hi
        private int count(long start, long first, int hi) {
            long end = Math.min(start + seg, hi);
            return first < end ? (int) ((end - first + r - 1) / r) : 0;
        }

        public boolean reachesAllRows() { return r == 1; }
    }
}
