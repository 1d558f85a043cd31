package dev.longspan.model;

import dev.longspan.attention.KeyValues;

/**
 * One layer's cached keys and values, each [Hkv, ring, D], in float32 or IEEE half precision:
 * position p lives in slot p mod ring (a layer whose pattern reaches all earlier keys has a ring
 * as long as the session, so it never wraps). The attention kernel reads it as a {@link KeyValues}
 * source, one block of rows at a time: float32 rows in place (ring slots are just offsets), half
 * rows widened into the kernel's scratch, which halves the memory of long contexts for the cost of
 * one conversion per row read.
 */
final class KvStore implements KeyValues {
    /** Storage precision of a KV cache. */
    enum Precision { F32, F16 }

    private final float[] kf, vf;
    private final short[] kh, vh;
    final int kvHeads, ring, d;

    KvStore(Precision p, int kvHeads, int ring, int d) {
        this.kvHeads = kvHeads;
        this.ring = ring;
        this.d = d;
        long n = (long) kvHeads * ring * d;
        if (n > Integer.MAX_VALUE - 16) throw new dev.longspan.util.LongspanException("KV cache of " + n + " values is too large for one array (use fewer tokens or a windowed layer)");
        kf = p == Precision.F32 ? new float[(int) n] : null;
        vf = p == Precision.F32 ? new float[(int) n] : null;
        kh = p == Precision.F16 ? new short[(int) n] : null;
        vh = p == Precision.F16 ? new short[(int) n] : null;
    }

    long bytes() { return kf != null ? 8L * kf.length : 4L * kh.length; }

    /** Stores the keys and values k, v [Hkv, T, D] of positions start..start+T−1 (T ≤ ring). */
    void put(float[] k, float[] v, int T, long start) {
        for (int h = 0; h < kvHeads; h++)
            for (int t = 0; t < T; t++) {
                int src = (h * T + t) * d, dst = (h * ring + (int) ((start + t) % ring)) * d;
                if (kf != null) {
                    System.arraycopy(k, src, kf, dst, d);
                    System.arraycopy(v, src, vf, dst, d);
                } else {
                    for (int i = 0; i < d; i++) {
                        kh[dst + i] = Float.floatToFloat16(k[src + i]);
                        vh[dst + i] = Float.floatToFloat16(v[src + i]);
                    }
                }
            }
    }

    @Override
    public float[] rows(boolean values, int kvh, int[] pos, int n, int[] off, float[] scratch) {
        int base = kvh * ring, slot0 = n > 0 ? pos[0] % ring : 0;
        if (n > 0 && pos[n - 1] - pos[0] == n - 1 && slot0 + n <= ring) {
            // consecutive positions in consecutive slots (the usual block): one offset plus a stride
            int o = (base + slot0) * d;
            for (int j = 0; j < n; j++) off[j] = o + j * d;
        } else {
            slotOffsets(base, pos, n, off);
        }
        if (kf != null) return values ? vf : kf;
        short[] src = values ? vh : kh;
        for (int j = 0; j < n; j++) {
            int o = off[j], w = j * d;
            off[j] = w;
            dev.longspan.kernel.Kernels.widenHalf(src, o, scratch, w, d);
        }
        return scratch;
    }

    // off[j] = the offset of position pos[j]'s slot, by stepping (positions mostly run
    // consecutively): no division per row
    private void slotOffsets(int base, int[] pos, int n, int[] off) {
        for (int j = 0, slot = 0, prev = -2; j < n; j++) {
            int p = pos[j];
            slot = p == prev + 1 ? (slot + 1 == ring ? 0 : slot + 1) : p % ring;
            prev = p;
            off[j] = (base + slot) * d;
        }
    }

    /** Writes the keys, then the values, of head kvh's slots 0..count−1 (stored precision, little-endian) for {@link #read}. */
    void write(java.nio.channels.WritableByteChannel out, int kvh, int count) throws java.io.IOException {
        for (int values = 0; values < 2; values++) {
            float[] f = values == 0 ? kf : vf;
            short[] h = values == 0 ? kh : vh;
            transfer(kvh, count, (b, o, n) -> {
                if (f != null) b.asFloatBuffer().put(f, o, n); else b.asShortBuffer().put(h, o, n);
                b.limit(n * (f != null ? 4 : 2));
                while (b.hasRemaining()) out.write(b);
            });
        }
    }

    /** Reads head kvh's slots 0..count−1 as {@link #write} wrote them. */
    void read(java.nio.channels.ReadableByteChannel in, int kvh, int count) throws java.io.IOException {
        for (int values = 0; values < 2; values++) {
            float[] f = values == 0 ? kf : vf;
            short[] h = values == 0 ? kh : vh;
            transfer(kvh, count, (b, o, n) -> {
                b.limit(n * (f != null ? 4 : 2));
                while (b.hasRemaining()) if (in.read(b) < 0) throw new java.io.EOFException("KV cache file ends early");
                b.flip();
                if (f != null) b.asFloatBuffer().get(f, o, n); else b.asShortBuffer().get(h, o, n);
            });
        }
    }

    private interface Chunk { void run(java.nio.ByteBuffer b, int offset, int values) throws java.io.IOException; }

    // head kvh's slots 0..count−1 in pieces of a 64 KiB buffer: chunk(buffer, first value, values)
    private void transfer(int kvh, int count, Chunk chunk) throws java.io.IOException {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(1 << 16).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        int rowsPer = Math.max(1, b.capacity() / (4 * d));
        for (int r = 0; r < count; r += rowsPer) {
            b.clear();
            chunk.run(b, (kvh * ring + r) * d, Math.min(rowsPer, count - r) * d);
        }
    }

    boolean half() { return kh != null; }

    /** Copies the float32 keys of positions start..start+T−1 (T ≤ ring, not wrapped out) into k [Hkv, T, D]. */
    void keys(long start, int T, float[] k) {
        if (kf == null) throw new IllegalStateException("half-precision keys are not the keys that were cached");
        for (int h = 0; h < kvHeads; h++)
            for (int t = 0; t < T; t++) System.arraycopy(kf, (h * ring + (int) ((start + t) % ring)) * d, k, (h * T + t) * d, d);
    }
}
