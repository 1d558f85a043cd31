package dev.longspan.kernel;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import static dev.longspan.kernel.QuantKernels.LE_SHORT;
import static dev.longspan.kernel.QuantKernels.half;
import static dev.longspan.kernel.QuantKernels.u8;

/**
 * ggml's codebook ("grid") weight types IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S and IQ1_M:
 * dequantization of one 256-element super-block, bit-exact to ggml's scalar {@code dequantize_row_*}
 * (the same float operations in the same order). A block stores, per group of 8 (or 4) weights, an
 * index into a fixed codebook of magnitudes and the signs; the codebooks are part of the formats and
 * are read once from {@code iq-grids.bin} (scripts/make-iq-grids.py says where it comes from).
 *
 * <p>Signs: IQ2_XXS, IQ2_XS and IQ3_XXS store 7 sign bits per group of 8, the 8th being the parity
 * that makes the number of minus signs even ({@link #signs}); IQ2_S and IQ3_S store all 8.
 */
final class IqQuants {
    private IqQuants() {}

    /** Codebooks: 8 magnitudes (bytes) per long, 4 per int (IQ3), 8 signed values in {-1, 0, 1} per long (IQ1). */
    static final long[] IQ2XXS, IQ2XS, IQ2S, IQ1S;
    static final int[] IQ3XXS, IQ3S;
    /** ggml's IQ1_S / IQ1_M shift of every value of a group: ±1/8. */
    static final float IQ1_DELTA = 0.125f;

    static {
        byte[] b;
        try (InputStream in = IqQuants.class.getResourceAsStream("iq-grids.bin")) {
            if (in == null) throw new IllegalStateException("iq-grids.bin is missing from the jar");
            b = in.readAllBytes();
        } catch (IOException e) {
            throw new IllegalStateException("cannot read iq-grids.bin", e);
        }
        ByteBuffer bb = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        if (b.length != 5 + 8 * (256 + 512 + 1024 + 2048) + 4 * (256 + 512) || bb.getInt() != 0x5149534c || bb.get() != 1) {
            throw new IllegalStateException("iq-grids.bin: not the expected codebooks (" + b.length + " bytes)");
        }
        IQ2XXS = longs(bb, 256);
        IQ2XS = longs(bb, 512);
        IQ2S = longs(bb, 1024);
        IQ3XXS = ints(bb, 256);
        IQ3S = ints(bb, 512);
        IQ1S = longs(bb, 2048);
    }

    private static long[] longs(ByteBuffer bb, int n) {
        long[] a = new long[n];
        for (int i = 0; i < n; i++) a[i] = bb.getLong();
        return a;
    }

    private static int[] ints(ByteBuffer bb, int n) {
        int[] a = new int[n];
        for (int i = 0; i < n; i++) a[i] = bb.getInt();
        return a;
    }

    /** Eight sign bits from seven stored ones: the 8th makes the count of set bits even (ggml's ksigns_iq2xs). */
    static int signs(int seven) {
        return seven | ((Integer.bitCount(seven) & 1) << 7);
    }

    // byte j of a codebook entry (unsigned magnitudes; IQ1's entries are read signed)
    private static int mag(long e, int j) { return (int) (e >>> (8 * j)) & 0xFF; }

    private static int mag(int e, int j) { return (e >>> (8 * j)) & 0xFF; }

    // eight weights: scale · magnitude, negated where the sign bit is set (ggml: db * grid[j] * (±1.f))
    private static void put8(float[] y, int yo, float db, long grid, int signs) {
        for (int j = 0; j < 8; j++) y[yo + j] = db * mag(grid, j) * ((signs & (1 << j)) != 0 ? -1f : 1f);
    }

    // IQ2_XXS (66 bytes): half d; u16 qs[32]. Per 32 weights two u32: the first holds four 8-bit grid
    // indices, the second four 7-bit sign groups and, in its top 4 bits, the scale s: d·(0.5 + s)·0.25.
    static void dequantIq2Xxs(MemorySegment s, long o, float[] y, int yo) {
        float d = half(s, o);
        for (int ib = 0; ib < 8; ib++) {
            long q = o + 2 + 8L * ib;
            int aux1 = s.get(QuantKernels.LE_INT, q + 4);
            float db = d * (0.5f + (aux1 >>> 28)) * 0.25f;
            for (int l = 0; l < 4; l++) {
                put8(y, yo + 32 * ib + 8 * l, db, IQ2XXS[u8(s, q + l)], signs((aux1 >>> (7 * l)) & 127));
            }
        }
    }

    // IQ2_XS (74 bytes): half d; u16 qs[32] (9-bit grid index, 7 sign bits); u8 scales[8] (two 4-bit
    // scales per 32 weights, the low one for its first 16).
    static void dequantIq2Xs(MemorySegment s, long o, float[] y, int yo) {
        float d = half(s, o);
        for (int ib = 0; ib < 8; ib++) {
            int sc = u8(s, o + 66 + ib);
            float db0 = d * (0.5f + (sc & 0xF)) * 0.25f, db1 = d * (0.5f + (sc >>> 4)) * 0.25f;
            for (int l = 0; l < 4; l++) {
                int q = s.get(LE_SHORT, o + 2 + 2L * (4 * ib + l)) & 0xFFFF;
                put8(y, yo + 32 * ib + 8 * l, l < 2 ? db0 : db1, IQ2XS[q & 511], signs(q >>> 9));
            }
        }
    }

    // IQ2_S (82 bytes): half d; u8 qs[64] (32 low index bytes, then 32 sign bytes); u8 qh[8] (two high
    // index bits per group); u8 scales[8] as IQ2_XS.
    static void dequantIq2S(MemorySegment s, long o, float[] y, int yo) {
        float d = half(s, o);
        for (int ib = 0; ib < 8; ib++) {
            int sc = u8(s, o + 74 + ib), qh = u8(s, o + 66 + ib);
            float db0 = d * (0.5f + (sc & 0xF)) * 0.25f, db1 = d * (0.5f + (sc >>> 4)) * 0.25f;
            for (int l = 0; l < 4; l++) {
                int idx = u8(s, o + 2 + 4 * ib + l) | ((qh << (8 - 2 * l)) & 0x300);
                put8(y, yo + 32 * ib + 8 * l, l < 2 ? db0 : db1, IQ2S[idx], u8(s, o + 34 + 4 * ib + l));
            }
        }
    }

    // eight IQ3 weights from two codebook entries of four: j < 4 from g1, the rest from g2 (ggml's y[j], y[j+4] order)
    private static void put4x2(float[] y, int at, float db, int g1, int g2, int signs) {
        for (int j = 0; j < 4; j++) {
            y[at + j] = db * mag(g1, j) * ((signs & (1 << j)) != 0 ? -1f : 1f);
            y[at + j + 4] = db * mag(g2, j) * ((signs & (1 << (j + 4))) != 0 ? -1f : 1f);
        }
    }

    // IQ3_XXS (98 bytes): half d; u8 qs[96]: 64 grid indices (4 magnitudes each), then per 32 weights a
    // u32 of four 7-bit sign groups and a 4-bit scale s on top: d·(0.5 + s)·0.5.
    static void dequantIq3Xxs(MemorySegment s, long o, float[] y, int yo) {
        float d = half(s, o);
        for (int ib = 0; ib < 8; ib++) {
            int aux = s.get(QuantKernels.LE_INT, o + 66 + 4L * ib);
            float db = d * (0.5f + (aux >>> 28)) * 0.5f;
            for (int l = 0; l < 4; l++) {
                int sg = signs((aux >>> (7 * l)) & 127);
                int g1 = IQ3XXS[u8(s, o + 2 + 8 * ib + 2 * l)], g2 = IQ3XXS[u8(s, o + 2 + 8 * ib + 2 * l + 1)];
                put4x2(y, yo + 32 * ib + 8 * l, db, g1, g2, sg);
            }
        }
    }

    // IQ3_S (110 bytes): half d; u8 qs[64] (low index bytes); u8 qh[8] (the 9th index bit of each of a
    // 32-weight group's 8 indices); u8 signs[32]; u8 scales[4] (two 4-bit scales per 64 weights: d·(1 + 2s)).
    static void dequantIq3S(MemorySegment s, long o, float[] y, int yo) {
        float d = half(s, o);
        for (int ib = 0; ib < 8; ib++) {
            int sc = u8(s, o + 106 + ib / 2);
            float db = d * (1 + 2 * ((ib & 1) == 0 ? sc & 0xF : sc >>> 4));
            int qh = u8(s, o + 66 + ib);
            for (int l = 0; l < 4; l++) {
                int sg = u8(s, o + 74 + 4 * ib + l);
                int g1 = IQ3S[u8(s, o + 2 + 8 * ib + 2 * l) | ((qh << (8 - 2 * l)) & 256)];
                int g2 = IQ3S[u8(s, o + 2 + 8 * ib + 2 * l + 1) | ((qh << (7 - 2 * l)) & 256)];
                put4x2(y, yo + 32 * ib + 8 * l, db, g1, g2, sg);
            }
        }
    }

    // eight IQ1 weights: scale · (value + delta), the values signed bytes of the entry
    private static void put8Iq1(float[] y, int yo, float dl, long grid, float delta) {
        for (int j = 0; j < 8; j++) y[yo + j] = dl * ((byte) (grid >>> (8 * j)) + delta);
    }

    // IQ1_S (50 bytes): half d; u8 qs[32] (low index bytes); u16 qh[8]: per 32 weights three high bits
    // of each of its four indices, a 3-bit scale s (d·(2s + 1)) and the delta's sign in the top bit.
    static void dequantIq1S(MemorySegment s, long o, float[] y, int yo) {
        float d = half(s, o);
        for (int ib = 0; ib < 8; ib++) {
            int qh = s.get(LE_SHORT, o + 34 + 2L * ib) & 0xFFFF;
            float dl = d * (2 * ((qh >>> 12) & 7) + 1);
            float delta = (qh & 0x8000) != 0 ? -IQ1_DELTA : IQ1_DELTA;
            for (int l = 0; l < 4; l++) {
                int idx = u8(s, o + 2 + 4 * ib + l) | (((qh >>> (3 * l)) & 7) << 8);
                put8Iq1(y, yo + 32 * ib + 8 * l, dl, IQ1S[idx], delta);
            }
        }
    }

    // IQ1_M (56 bytes): u8 qs[32]; u8 qh[16] (per group of 8: three high index bits and the delta's
    // sign); u8 scales[8] read as four u16: 3-bit scales, two per 16 weights' pair, and the fp16 super-
    // scale d spread over the four top nibbles.
    static void dequantIq1M(MemorySegment s, long o, float[] y, int yo) {
        int sc0 = scale16(s, o, 0), sc1 = scale16(s, o, 1), sc2 = scale16(s, o, 2), sc3 = scale16(s, o, 3);
        int dBits = (sc0 >>> 12) | ((sc1 >>> 8) & 0x00F0) | ((sc2 >>> 4) & 0x0F00) | (sc3 & 0xF000);
        float d = Float.float16ToFloat((short) dBits);
        for (int ib = 0; ib < 8; ib++) {
            int w = scale16(s, o, ib / 2), shift = 6 * (ib % 2);
            float dl1 = d * (2 * ((w >>> shift) & 7) + 1), dl2 = d * (2 * ((w >>> (shift + 3)) & 7) + 1);
            for (int l = 0; l < 4; l++) {
                // group l's high index bits and delta sign: the low (l even) or high nibble of qh[2·ib + l/2]
                int qh = u8(s, o + 32 + 2 * ib + l / 2) >>> (4 * (l & 1));
                int idx = u8(s, o + 4 * ib + l) | ((qh & 7) << 8);
                put8Iq1(y, yo + 32 * ib + 8 * l, l < 2 ? dl1 : dl2, IQ1S[idx], (qh & 8) != 0 ? -IQ1_DELTA : IQ1_DELTA);
            }
        }
    }

    // IQ1_M's scales as four little-endian u16
    private static int scale16(MemorySegment s, long o, int i) { return s.get(LE_SHORT, o + 48 + 2L * i) & 0xFFFF; }
}
