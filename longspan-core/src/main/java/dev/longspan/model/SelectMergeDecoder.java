package dev.longspan.model;

import dev.longspan.attention.Pattern;
import dev.longspan.attention.RegionSummaries;

/**
 * Select-and-merge ({@link Pattern.SelectMerge}) for incremental inference: the layer's region
 * summaries per key/value head, appended as keys arrive (a region's summary is complete with its
 * last token), and the key set of each new query by the engine's own rule and code
 * ({@link RegionSummaries#select}): its own block causally plus the T−M regions before the block
 * that its query ranks best. A query's key set depends only on earlier tokens, so decoding
 * reproduces a whole-sequence forward on every prefix.
 */
final class SelectMergeDecoder {
    final int region, pick;
    final long blockRows;            // M·R
    final RegionSummaries summaries;

    SelectMergeDecoder(Pattern.SelectMerge p, int kvHeads, int d) {
        this.region = p.region();
        this.pick = p.top() - p.merge();
        this.blockRows = (long) p.merge() * p.region();
        this.summaries = new RegionSummaries(p, kvHeads, d, 16);
    }

    /** Appends a chunk's rotated keys k [Hkv, T, D] at positions start..start+T−1 (in order). */
    void observe(float[] k, int start, int T) {
        if (start != summaries.tokens()) throw new IllegalStateException("select-and-merge: keys of position " + start + " arrive after " + summaries.tokens());
        summaries.append(k, T);
    }

    /** Per-worker buffers of {@link #keys}. */
    static final class Scratch {
        final RegionSummaries.Scratch select;
        final int[] qoff = new int[1];
        int[] chosen = new int[0];

        Scratch(int d) { select = new RegionSummaries.Scratch(d); }
    }

    /**
     * Appends to keys[] the positions the query q[qo..qo+D) at position pos (query head h of key/value
     * head kvh) reaches; returns the new count.
     */
    int keys(float[] q, int qo, long pos, int kvh, Scratch s, RegionSummaries.KeyRows rows, int[] keys, int n) {
        long start = pos / blockRows * blockRows;
        int cand = (int) (start / region);
        if (cand <= pick || pick == 0) {
            for (long k = 0, e = (long) Math.min(cand, pick) * region; k < e; k++) keys[n++] = (int) k;
        } else {
            if (s.chosen.length < pick) s.chosen = new int[pick];
            s.qoff[0] = qo;
            summaries.select(s.select, q, s.qoff, 1, kvh, cand, pick, rows, s.chosen, 0);
            for (int i = 0; i < pick; i++) for (int k = s.chosen[i] * region, e = k + region; k < e; k++) keys[n++] = k;
        }
        for (long k = start; k <= pos; k++) keys[n++] = (int) k;
        return n;
    }

    long bytes() { return summaries.bytes(); }
}
