package dev.longspan.attention;

import java.util.ArrayList;
import java.util.List;

/**
 * The tile plan of every pattern: which tiles (query rows × key rows, band mask) compute it.
 * A pattern with several LSE-merged parts (LongNet's pairs, the terms of a sum) gives one
 * {@link Pass} per part. Adding a pattern means adding its pass here.
 */
final class TilePlans {
    private TilePlans() {}

    static List<Pass> passes(Pattern p, int n, int heads, boolean causal) {
        List<Pass> out = new ArrayList<>();
        add(out, p, n, heads, causal);
        return out;
    }

    private static void add(List<Pass> out, Pattern p, int n, int heads, boolean causal) {
        switch (p) {
            case Pattern.Dense d -> out.add(new Banded(n, causal ? 0 : -Tile.INF, Tile.INF));
            case Pattern.Window w -> out.add(new Banded(n, causal ? 0 : -(w.size() - 1L), w.size() - 1L));
            case Pattern.Block b -> out.add(new Blocks(n, b.size(), causal));
            case Pattern.Dilated d -> {
                for (int i = 0; i < d.pairs(); i++) out.add(new DilatedPair(d, i, n, heads, causal));
            }
            case Pattern.SelectMerge s -> out.add(new SelectMergePass(s, n, heads));
            case Pattern.Sum s -> {
                for (Pattern t : s.terms()) add(out, t, n, heads, causal);
            }
        }
    }

    /** dense and window: one tile of all rows against all rows, with a band on p − k. */
    static final class Banded implements Pass {
        final int n;
        final long lo, hi;

        Banded(int n, long lo, long hi) {
            this.n = n;
            this.lo = lo;
            this.hi = hi;
        }

        public int tiles(int head) { return 1; }

        public int queryRows(int head, int tile) { return n; }

        public void tile(int head, int tile, Tile out) {
            out.queries.range(0, 1, n);
            out.keys.range(0, 1, n);
            out.band(lo, hi);
        }
    }

    /** block: one tile per block of B positions, causal inside (or the whole block). */
    static final class Blocks implements Pass {
        final int n, b;
        final boolean causal;

        Blocks(int n, int b, boolean causal) {
            this.n = n;
            this.b = b;
            this.causal = causal;
        }

        public int tiles(int head) { return (n + b - 1) / b; }

        public int queryRows(int head, int tile) { return Math.min(b, n - tile * b); }

        public void tile(int head, int tile, Tile out) {
            int rows = queryRows(head, tile);
            out.queries.range(tile * b, 1, rows);
            out.keys.range(tile * b, 1, rows);
            out.causal(causal);
        }
    }

    /**
     * One (w, r) pair of LongNet: segments of min(w, N) positions; head h keeps the rows at
     * offsets ≡ s(h) (mod r) inside each segment, which attend to each other (causal by position).
     */
    static final class DilatedPair implements Pass {
        final int n, seg, r;
        final int[] offset;   // per query head
        final boolean causal;

        DilatedPair(Pattern.Dilated d, int i, int n, int heads, boolean causal) {
            this.n = n;
            this.seg = Math.min(d.w()[i], n);
            this.r = d.r()[i];
            this.causal = causal;
            offset = new int[heads];
            for (int h = 0; h < heads; h++) offset[h] = d.offset(i, h, heads);
        }

        public int tiles(int head) { return (n + seg - 1) / seg; }

        public int queryRows(int head, int tile) {
            int start = tile * seg + offset[head];
            int end = Math.min(n, tile * seg + seg);
            return start < end ? (end - start + r - 1) / r : 0;
        }

        public void tile(int head, int tile, Tile out) {
            int rows = queryRows(head, tile);
            int start = tile * seg + offset[head];
            out.queries.range(start, r, rows);
            out.keys.range(start, r, rows);
            out.causal(causal);
        }

        public boolean reachesAllRows() { return r == 1; }
    }
}
