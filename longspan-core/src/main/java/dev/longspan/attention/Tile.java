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
    /**
     * Select-and-merge with {@code pos=selected}: the tile's rows move to new positions, by
     * qShift[i] (query i of the tile) and kShift[j] (key j) positions of the layer's RoPE
     * ({@link SelectedPositions}); null when rows keep their positions.
     */
    SelectedPositions moved;
    long[] qShift = new long[0], kShift = new long[0];
    /** The first {@code biased} keys of the tile (select-and-merge's selected regions) get {@code bias} added to their logits. */
    int biased;
    float bias;

    Tile band(long lo, long hi) {
        this.lo = lo;
        this.hi = hi;
        this.moved = null;
        this.biased = 0;
        return this;
    }

    /** The logit bias of key j of the tile (0 for all but the first {@link #biased}). */
    float bias(int j) { return j < biased ? bias : 0f; }

    /** Rows move by the shifts the caller writes into {@link #qShift} and {@link #kShift} (sized here). */
    void move(SelectedPositions sp, int queries, int keys) {
        moved = sp;
        if (qShift.length < queries) qShift = new long[Math.max(queries, qShift.length * 3 / 2)];
        if (kShift.length < keys) kShift = new long[Math.max(keys, kShift.length * 3 / 2)];
    }

    Tile causal(boolean causal) {
        return band(causal ? 0 : -INF, INF);
    }

    boolean visible(int q, int k) {
        long d = (long) q - k;
        return d >= lo && d <= hi;
    }
}
