package dev.longspan.attention;

/**
 * A list of sequence positions in increasing order: a strided range {@code start + i·stride}
 * (contiguous when stride is 1), or a gathered list. Mutable and reused per worker, so that a tile
 * plan allocates nothing per tile.
 */
final class Rows {
    private int count, start, stride = 1;
    private int[] list;
    private boolean isList;

    /** Sets this to start, start+stride, ... (count positions). */
    Rows range(int start, int stride, int count) {
        this.start = start;
        this.stride = stride;
        this.count = Math.max(0, count);
        this.isList = false;
        return this;
    }

    /** A buffer of at least n ints to fill before {@link #list(int)}. */
    int[] buffer(int n) {
        if (list == null || list.length < n) list = new int[Math.max(n, list == null ? 0 : list.length * 3 / 2)];
        return list;
    }

    /** Uses the first count entries of {@link #buffer} (ascending) as the positions. */
    Rows list(int count) {
        this.count = count;
        this.isList = true;
        return this;
    }

    int count() { return count; }

    /** Ints held for a list (0 for a range that never held one). */
    int capacity() { return list == null ? 0 : list.length; }

    int pos(int i) { return isList ? list[i] : start + i * stride; }

    /** Index of the first position ≥ p (count when none). */
    int lowerBound(long p) {
        if (!isList) {
            if (p <= start) return 0;
            long i = (p - start + stride - 1) / stride;
            return (int) Math.min(i, count);
        }
        int lo = 0, hi = count;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (list[mid] < p) lo = mid + 1; else hi = mid;
        }
        return lo;
    }
}
