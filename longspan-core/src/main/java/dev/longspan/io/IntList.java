package dev.longspan.io;

import java.util.Arrays;

/** A growable list of ints: the token ids an encoder appends. */
final class IntList {
    private int[] a = new int[16];
    int n;  // the length; WordPieceTokenizer rewinds it to drop a word it cannot tokenize

    void add(int v) {
        if (n == a.length) a = Arrays.copyOf(a, n * 2);
        a[n++] = v;
    }

    void addAll(int[] v) {
        if (n + v.length > a.length) a = Arrays.copyOf(a, Math.max(a.length * 2, n + v.length));
        System.arraycopy(v, 0, a, n, v.length);
        n += v.length;
    }

    boolean contains(int v) {
        for (int i = 0; i < n; i++) if (a[i] == v) return true;
        return false;
    }

    int[] toArray() { return Arrays.copyOf(a, n); }
}
