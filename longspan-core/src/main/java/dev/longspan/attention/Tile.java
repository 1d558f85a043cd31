package dev.longspan.attention;

/**
 * One tile of a pattern: query rows × key rows (both ascending positions) with a band mask on
 * the position difference: key k is visible from query q iff {@code lo ≤ pos(q) − pos(k) ≤ hi}.
 * Causal is [0, +∞), bidirectional (-∞, +∞), a causal window [0, W-1].
 */
final class Tile {
    static final long INF = Long.MAX_VALUE / 4;

    final Rows queries = new Rows();
    final Rows keys = new Rows();
    long lo, hi;

    Tile band(long lo, long hi) {
        this.lo = lo;
        this.hi = hi;
        return this;
    }

    Tile causal(boolean causal) {
        return band(causal ? 0 : -INF, INF);
    }

    boolean visible(int q, int k) {
        long d = (long) q - k;
        return d >= lo && d <= hi;
    }
}
