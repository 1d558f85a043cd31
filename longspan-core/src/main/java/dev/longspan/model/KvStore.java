package dev.longspan.model;

/**
 * One layer's cached keys or values, [Hkv, ring, D], in float32 or IEEE half precision.
 * Half precision halves the memory of long contexts; rows are widened to float when read.
 */
final class KvStore {
    /** Storage precision of a KV cache. */
    enum Precision { F32, F16 }

    private final float[] f;
    private final short[] h;
    final int d;

    KvStore(Precision p, int rows, int d) {
        this.d = d;
        long n = (long) rows * d;
        if (n > Integer.MAX_VALUE - 16) throw new dev.longspan.util.LongspanException("KV cache of " + n + " values is too large for one array (use fewer tokens or a windowed layer)");
        this.f = p == Precision.F32 ? new float[(int) n] : null;
        this.h = p == Precision.F16 ? new short[(int) n] : null;
    }

    long bytes() { return f != null ? 4L * f.length : 2L * h.length; }

    /** Stores src[so..so+d) as row r. */
    void put(int r, float[] src, int so) {
        int o = r * d;
        if (f != null) System.arraycopy(src, so, f, o, d);
        else for (int i = 0; i < d; i++) h[o + i] = Float.floatToFloat16(src[so + i]);
    }

    /** The float array holding row r at {@link #offset}, widening half rows into scratch. */
    float[] row(int r, float[] scratch) {
        if (f != null) return f;
        int o = r * d;
        for (int i = 0; i < d; i++) scratch[i] = Float.float16ToFloat(h[o + i]);
        return scratch;
    }

    int offset(int r) { return f != null ? r * d : 0; }

    /**
     * Points off[0..count) at rows r0..r0+count−1 in the returned array: this store's own for
     * float32, else scratch [count·D] with the rows widened.
     */
    float[] rows(int r0, int count, int[] off, float[] scratch) {
        for (int j = 0; j < count; j++) {
            int o = (r0 + j) * d;
            if (f != null) {
                off[j] = o;
            } else {
                off[j] = j * d;
                for (int i = 0; i < d; i++) scratch[j * d + i] = Float.float16ToFloat(h[o + i]);
            }
        }
        return f != null ? f : scratch;
    }

    /** Writes rows r0..r0+count−1 (their stored precision, little-endian) for {@link #read}. */
    void write(java.nio.channels.WritableByteChannel out, int r0, int count) throws java.io.IOException {
        int per = f != null ? 4 : 2;
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(1 << 16).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        int rowsPer = Math.max(1, b.capacity() / (per * d));
        for (int r = r0; r < r0 + count; r += rowsPer) {
            int n = Math.min(rowsPer, r0 + count - r) * d;
            b.clear();
            if (f != null) b.asFloatBuffer().put(f, r * d, n); else b.asShortBuffer().put(h, r * d, n);
            b.limit(n * per);
            while (b.hasRemaining()) out.write(b);
        }
    }

    /** Reads rows r0..r0+count−1 as {@link #write} wrote them. */
    void read(java.nio.channels.ReadableByteChannel in, int r0, int count) throws java.io.IOException {
        int per = f != null ? 4 : 2;
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(1 << 16).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        int rowsPer = Math.max(1, b.capacity() / (per * d));
        for (int r = r0; r < r0 + count; r += rowsPer) {
            int n = Math.min(rowsPer, r0 + count - r) * d;
            b.clear().limit(n * per);
            while (b.hasRemaining()) if (in.read(b) < 0) throw new java.io.EOFException("KV cache file ends early");
            b.flip();
            if (f != null) b.asFloatBuffer().get(f, r * d, n); else b.asShortBuffer().get(h, r * d, n);
        }
    }

    boolean half() { return h != null; }
}
