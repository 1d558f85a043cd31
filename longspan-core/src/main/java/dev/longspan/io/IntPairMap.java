package dev.longspan.io;

/**
 * Open-addressing map from a pair of ints to a non-negative int (absent = -1): BPE's
 * (left id, right id) → merge rank, looked up for every adjacent pair without boxing.
 */
final class IntPairMap {
    private long[] keys;
    private int[] vals;
    private boolean[] used;
    private int mask, size;

    IntPairMap(int expected) {
        int cap = Integer.highestOneBit(Math.max(16, expected * 2 - 1)) << 1;
        keys = new long[cap];
        vals = new int[cap];
        used = new boolean[cap];
        mask = cap - 1;
    }

    private static long key(int a, int b) {
        return ((long) a << 32) | (b & 0xffffffffL);
    }

    private static int hash(long k) {
        long h = k * 0x9E3779B97F4A7C15L;
        return (int) (h ^ (h >>> 32));
    }

    int get(int a, int b) {
        long k = key(a, b);
        for (int i = hash(k) & mask; used[i]; i = (i + 1) & mask) if (keys[i] == k) return vals[i];
        return -1;
    }

    /** Stores v unless the pair is already present; returns whether it stored. */
    boolean putIfAbsent(int a, int b, int v) {
        if ((size + 1) * 2 > keys.length) grow();
        long k = key(a, b);
        int i = hash(k) & mask;
        while (used[i] && keys[i] != k) i = (i + 1) & mask;
        if (used[i]) return false;
        used[i] = true;
        keys[i] = k;
        vals[i] = v;
        size++;
        return true;
    }

    private void grow() {
        long[] ok = keys;
        int[] ov = vals;
        boolean[] ou = used;
        keys = new long[ok.length * 2];
        vals = new int[ok.length * 2];
        used = new boolean[ok.length * 2];
        mask = keys.length - 1;
        size = 0;
        for (int i = 0; i < ok.length; i++) if (ou[i]) putIfAbsent((int) (ok[i] >>> 32), (int) ok[i], ov[i]);
    }
}
