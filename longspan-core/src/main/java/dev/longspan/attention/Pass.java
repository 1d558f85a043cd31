package dev.longspan.attention;

/**
 * A set of tiles whose query rows are disjoint for each head (or, for a {@link #grouped} pass, for
 * each head and group), so that the tiles of one pass can run in parallel and write their rows
 * without races. The passes of a plan are merged by
 * log-sum-exp, one after the other. Tiles are produced on demand (never materialised as a list).
 */
interface Pass {
    /** Number of tiles of query head h. */
    int tiles(int head);

    /** Number of query rows of tile t of head h (cheap: used to cut the work into blocks). */
    int queryRows(int head, int tile);

    /** Fills out with tile t of head h. */
    void tile(int head, int tile, Tile out);

    /**
     * True when every head's tiles are the same (same rows, band and bias; nothing moved), so that
     * a decoding step can run the query heads sharing a key/value head together over its keys.
     */
    default boolean sameTilesForAllHeads() { return false; }

    /**
     * The group of tile t of head h, or -1: consecutive tiles of one head with the same group read
     * mostly the same keys (select-and-merge: the runs of one own block choose among the same earlier
     * regions), so their short tiles run together ({@link FlashKernel#forwardRowsGrouped}).
     */
    default int group(int head, int tile) { return -1; }

    /**
     * True when the tiles come in groups ({@link #group}) that must each run in one task, in order:
     * tiles of one group may share query rows (select-and-merge's regions), tiles of different
     * groups may not.
     */
    default boolean grouped() { return false; }

    /**
     * The passes the kernel runs in place of this one over many query rows (training's forward and
     * backward, a prompt's prefill; a decoding step keeps the pass): key-disjoint parts whose keys,
     * per query row, are together exactly this pass's keys, merged by log-sum-exp like any passes
     * (the backward of attention over a union of key sets is the sum of the parts' backwards, each
     * with the row's total LSE), arranged so that the kernel gets larger tiles (select-and-merge: the
     * rows that chose a region together against it, each own block's near band as one tile). Not for
     * the detached merge, whose backward needs each pass's own output.
     */
    default java.util.List<Pass> keyParts() { return java.util.List.of(this); }

    /** True when every query row reaches at least one key through this pass. */
    default boolean reachesAllRows() { return true; }

    /** Data-dependent planning before the forward pass (select-and-merge's region selection). */
    default void prepare(FlashKernel.Problem p) {}

    /** Extra bytes this pass holds (selection state), for the memory report. */
    default long stateBytes() { return 0; }
}
