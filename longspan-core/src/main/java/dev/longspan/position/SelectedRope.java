package dev.longspan.position;

import dev.longspan.util.LongspanException;

/**
 * "Positions on selected tokens only" (ALGORITHMS.md §4.6, the pre-training variant of
 * select-and-merge attention): selection runs on position-free q and k; after the gather, RoPE is
 * applied to the gathered copies with positions re-indexed inside the gathered block.
 *
 * <p>Rule: a token of original row r gets position = the number of gathered key rows strictly
 * before r. Gathered keys therefore get 0..g-1 in their original order (whatever order the
 * selection listed them in), and a query in the group's local block gets the position of its own
 * row — the last query of the block gets g-1 ("query at the end"). A query that attends only to
 * keys at or before its own row therefore sees relative distances in [0, g-1], for any N.
 *
 * <p>Layout of one head: source rows of length D at {@code src[so + r*srcStride ...]}; gathered
 * copies are contiguous [g, D]. The attention engine calls these per head.
 */
public final class SelectedRope {
    private SelectedRope() {}

    /** Positions of gathered key rows (distinct, any order): each row's rank among them. */
    public static long[] keyPositions(int[] gatheredRows) {
        int[] sorted = sortedDistinct(gatheredRows);
        long[] pos = new long[gatheredRows.length];
        for (int j = 0; j < gatheredRows.length; j++) pos[j] = java.util.Arrays.binarySearch(sorted, gatheredRows[j]);
        return pos;
    }

    /** Positions of query rows: the number of gathered rows strictly before each. */
    public static long[] queryPositions(int[] gatheredRows, int[] queryRows) {
        int[] sorted = sortedDistinct(gatheredRows);
        long[] pos = new long[queryRows.length];
        for (int j = 0; j < queryRows.length; j++) {
            int k = java.util.Arrays.binarySearch(sorted, queryRows[j]);
            pos[j] = k >= 0 ? k : -k - 1;
        }
        return pos;
    }

    /**
     * Copies the given rows of one head into dst [rows.length, D] at dOff and rotates the copies at
     * the given positions (positions[j] for rows[j]); the source is not modified.
     */
    public static void gatherRotate(Rope rope, float[] src, int so, int srcStride, int[] rows, long[] positions,
                                    float[] dst, int dOff) {
        int d = rope.headDim();
        check(rows, positions);
        for (int j = 0; j < rows.length; j++) System.arraycopy(src, so + rows[j] * srcStride, dst, dOff + j * d, d);
        rope.rotate(dst, dOff, 1, 0, rows.length, d, positions, 0, 0, false);
    }

    /**
     * Backward of {@link #gatherRotate}: rotates the gradient of the gathered copies back
     * (in place in dGathered) and scatter-adds it into the source rows' gradient.
     */
    public static void unrotateScatterAdd(Rope rope, float[] dGathered, int gOff, int[] rows, long[] positions,
                                          float[] dSrc, int so, int srcStride) {
        int d = rope.headDim();
        check(rows, positions);
        rope.rotate(dGathered, gOff, 1, 0, rows.length, d, positions, 0, 0, true);
        for (int j = 0; j < rows.length; j++) {
            int s = so + rows[j] * srcStride, g = gOff + j * d;
            for (int i = 0; i < d; i++) dSrc[s + i] += dGathered[g + i];
        }
    }

    private static void check(int[] rows, long[] positions) {
        if (rows.length != positions.length)
            throw new LongspanException("SelectedRope: " + rows.length + " rows but " + positions.length + " positions");
    }

    private static int[] sortedDistinct(int[] rows) {
        int[] s = rows.clone();
        java.util.Arrays.sort(s);
        for (int i = 1; i < s.length; i++)
            if (s[i] == s[i - 1]) throw new LongspanException("SelectedRope: gathered row " + s[i] + " appears twice");
        return s;
    }
}
