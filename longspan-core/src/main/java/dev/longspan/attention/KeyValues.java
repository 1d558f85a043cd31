package dev.longspan.attention;

/**
 * Where the key and value rows of an attention call live, by absolute position: whole-sequence
 * arrays ({@link #of}) or a KV cache (a ring of float32 or half rows). The flash kernel asks for
 * one block of at most {@link TileOps#BK} rows at a time, so a source may read its rows in place
 * (float32: the offsets point into its own storage, ring slots included) or widen them into the
 * caller's scratch (half precision): the kernel stays one loop over key blocks whatever the
 * storage, and never copies the reached span of a long cache (which, per chunk, would cost as much
 * as dense attention even when select-and-merge reads a few hundred keys).
 */
public interface KeyValues {

    /**
     * The key rows ({@code values} false) or value rows of key/value head kvh at positions
     * pos[0..n) (n ≤ {@link #BLOCK}): sets off[0..n) to where each row starts in the returned
     * array, which is this source's own storage or {@code scratch} (at least n·D floats) with the
     * rows widened into it.
     */
    float[] rows(boolean values, int kvh, int[] pos, int n, int[] off, float[] scratch);

    /** Most rows the kernel asks for at once. */
    int BLOCK = TileOps.BK;

    /**
     * Keys and values held as arrays k, v: [Hkv, rows, D], row i holding position base + i (what
     * training and a distributed block of keys pass).
     */
    static ArrayRows of(float[] k, float[] v, int base, int rows, int d) {
        return new ArrayRows(k, v, base, rows, d);
    }

    /** {@link #of}: rows read in place. */
    record ArrayRows(float[] k, float[] v, int base, int rows, int d) implements KeyValues {
        public float[] rows(boolean values, int kvh, int[] pos, int n, int[] off, float[] scratch) {
            int at = kvh * rows - base;
            for (int j = 0; j < n; j++) off[j] = (at + pos[j]) * d;
            return values ? v : k;
        }

        int offset(int kvh, int pos) { return (kvh * rows + pos - base) * d; }
    }
}
