package dev.longspan.kernel;

import dev.longspan.tensor.Parallel;
import dev.longspan.util.LongspanException;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Kernels over ggml-quantized rows held in a {@link MemorySegment} (usually a memory-mapped GGUF):
 * dequantization to float (bit-exact to ggml's scalar {@code dequantize_row_*}), the dot product of
 * a quantized row with a float vector, and {@code y = W·x} over a quantized matrix working on the
 * blocks directly. The dot runs the Vector API body in {@code VectorQuantKernels} when
 * {@link #SIMD} is true, else its scalar twin here (the reference the tests compare against).
 *
 * <p>Block layouts are documented on {@link GgmlType}; a row's length must be a multiple of the
 * type's block size. Rows are consecutive: row r starts at {@code offset + r·type.rowBytes(cols)}.
 */
public final class QuantKernels {
    /** The width-agnostic SIMD bodies (Q8_0, Q4_0, Q2_K..Q6_K) run whenever the Vector API is used. */
    public static final boolean SIMD = Simd.ENABLED;
    /** The F32, Q4_1, Q5_0, Q5_1, IQ4_NL and IQ4_XS bodies need 256-bit vectors; narrower SIMD uses their scalar twins. */
    static final boolean SIMD256 = Simd.ENABLED && Simd.VECTOR_BITS >= 256;

    static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong LE_LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfFloat LE_FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfDouble LE_DOUBLE = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfByte BYTE = ValueLayout.JAVA_BYTE;

    private QuantKernels() {}

    static float half(MemorySegment s, long off) {
        return Float.float16ToFloat(s.get(LE_SHORT, off));
    }

    static int u8(MemorySegment s, long off) {
        return s.get(BYTE, off) & 0xff;
    }

    static int i8(MemorySegment s, long off) {
        return s.get(BYTE, off);
    }

    private static void checkRow(GgmlType t, int n) {
        if (n % t.blockSize != 0) {
            throw new LongspanException(t + " row of " + n + " elements is not a multiple of the block size " + t.blockSize);
        }
    }

    // ---- dequantization (scalar, bit-exact to ggml's reference) ------------------------------

    /** dst[dstOff..dstOff+n) = the n elements of type t starting at byte off of src. */
    public static void dequantize(GgmlType t, MemorySegment src, long off, float[] dst, int dstOff, int n) {
        checkRow(t, n);
        int nb = n / t.blockSize;
        switch (t) {
            case F32 -> MemorySegment.copy(src, LE_FLOAT, off, dst, dstOff, n);
            case F16 -> { for (int i = 0; i < n; i++) dst[dstOff + i] = half(src, off + 2L * i); }
            case BF16 -> { for (int i = 0; i < n; i++) dst[dstOff + i] = Float.intBitsToFloat((src.get(LE_SHORT, off + 2L * i) & 0xffff) << 16); }
            case F64 -> { for (int i = 0; i < n; i++) dst[dstOff + i] = (float) src.get(LE_DOUBLE, off + 8L * i); }
            case Q4_0 -> { for (int b = 0; b < nb; b++) dequantQ4_0(src, off + 18L * b, dst, dstOff + 32 * b); }
            case Q4_1 -> { for (int b = 0; b < nb; b++) dequantQ4_1(src, off + 20L * b, dst, dstOff + 32 * b); }
            case Q5_0 -> { for (int b = 0; b < nb; b++) dequantQ5(src, off + 22L * b, false, dst, dstOff + 32 * b); }
            case Q5_1 -> { for (int b = 0; b < nb; b++) dequantQ5(src, off + 24L * b, true, dst, dstOff + 32 * b); }
            case Q8_0 -> { for (int b = 0; b < nb; b++) dequantQ8(src, off + 34L * b, 2, dst, dstOff + 32 * b); }
            case Q8_1 -> { for (int b = 0; b < nb; b++) dequantQ8(src, off + 36L * b, 4, dst, dstOff + 32 * b); }
            case Q2_K -> { for (int b = 0; b < nb; b++) dequantQ2_K(src, off + 84L * b, dst, dstOff + 256 * b); }
            case Q3_K -> { for (int b = 0; b < nb; b++) dequantQ3_K(src, off + 110L * b, dst, dstOff + 256 * b); }
            case Q4_K -> { for (int b = 0; b < nb; b++) dequantQ4_K(src, off + 144L * b, dst, dstOff + 256 * b); }
            case Q5_K -> { for (int b = 0; b < nb; b++) dequantQ5_K(src, off + 176L * b, dst, dstOff + 256 * b); }
            case Q6_K -> { for (int b = 0; b < nb; b++) dequantQ6_K(src, off + 210L * b, dst, dstOff + 256 * b); }
            case IQ4_NL -> { for (int b = 0; b < nb; b++) dequantIq4Nl(src, off + 18L * b, dst, dstOff + 32 * b); }
            case IQ4_XS -> { for (int b = 0; b < nb; b++) dequantIq4Xs(src, off + 136L * b, dst, dstOff + 256 * b); }
            case IQ2_XXS -> { for (int b = 0; b < nb; b++) IqQuants.dequantIq2Xxs(src, off + 66L * b, dst, dstOff + 256 * b); }
            case IQ2_XS -> { for (int b = 0; b < nb; b++) IqQuants.dequantIq2Xs(src, off + 74L * b, dst, dstOff + 256 * b); }
            case IQ2_S -> { for (int b = 0; b < nb; b++) IqQuants.dequantIq2S(src, off + 82L * b, dst, dstOff + 256 * b); }
            case IQ3_XXS -> { for (int b = 0; b < nb; b++) IqQuants.dequantIq3Xxs(src, off + 98L * b, dst, dstOff + 256 * b); }
            case IQ3_S -> { for (int b = 0; b < nb; b++) IqQuants.dequantIq3S(src, off + 110L * b, dst, dstOff + 256 * b); }
            case IQ1_S -> { for (int b = 0; b < nb; b++) IqQuants.dequantIq1S(src, off + 50L * b, dst, dstOff + 256 * b); }
            case IQ1_M -> { for (int b = 0; b < nb; b++) IqQuants.dequantIq1M(src, off + 56L * b, dst, dstOff + 256 * b); }
            case MXFP4 -> { for (int b = 0; b < nb; b++) dequantMxfp4(src, off + 17L * b, dst, dstOff + 32 * b); }
            case NVFP4 -> { for (int b = 0; b < nb; b++) dequantNvfp4(src, off + 36L * b, dst, dstOff + 64 * b); }
            case Q1_0 -> { for (int b = 0; b < nb; b++) dequantQ1_0(src, off + 18L * b, dst, dstOff + 128 * b); }
            case Q2_0 -> { for (int b = 0; b < nb; b++) dequantQ2_0(src, off + 18L * b, dst, dstOff + 64 * b); }
            case TQ1_0 -> { for (int b = 0; b < nb; b++) dequantTq1_0(src, off + 54L * b, dst, dstOff + 256 * b); }
            case TQ2_0 -> { for (int b = 0; b < nb; b++) dequantTq2_0(src, off + 66L * b, dst, dstOff + 256 * b); }
            case Q8_K -> {
                for (int b = 0; b < nb; b++) {
                    long o = off + 292L * b;
                    float d = src.get(LE_FLOAT, o);
                    for (int j = 0; j < 256; j++) dst[dstOff + 256 * b + j] = d * i8(src, o + 4 + j);
                }
            }
            default -> throw new LongspanException("cannot dequantize tensors of type " + t + " (supported: F32, F16, BF16, F64, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q8_K, IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ4_NL, IQ4_XS, MXFP4, NVFP4, Q1_0, Q2_0, TQ1_0, TQ2_0)");
        }
    }

    // block: half d; u8 qs[16]; element j is the low nibble of qs[j], element j+16 the high nibble
    private static void dequantQ4_0(MemorySegment s, long o, float[] y, int yo) {
        float d = half(s, o);
        for (int j = 0; j < 16; j++) {
            int q = u8(s, o + 2 + j);
            y[yo + j] = ((q & 0x0F) - 8) * d;
            y[yo + j + 16] = ((q >>> 4) - 8) * d;
        }
    }

    private static void dequantQ4_1(MemorySegment s, long o, float[] y, int yo) {
        float d = half(s, o), m = half(s, o + 2);
        for (int j = 0; j < 16; j++) {
            int q = u8(s, o + 4 + j);
            y[yo + j] = (q & 0x0F) * d + m;
            y[yo + j + 16] = (q >>> 4) * d + m;
        }
    }

    // Q5_0: half d; u32 qh; u8 qs[16]. Q5_1: half d, m; u32 qh; u8 qs[16]. Bit j of qh is the 5th bit of element j.
    private static void dequantQ5(MemorySegment s, long o, boolean withMin, float[] y, int yo) {
        float d = half(s, o);
        float m = withMin ? half(s, o + 2) : 0f;
        long qo = withMin ? o + 4 : o + 2;
        int qh = s.get(LE_INT, qo);
        for (int j = 0; j < 16; j++) {
            int q = u8(s, qo + 4 + j);
            int h0 = ((qh >>> j) << 4) & 0x10;
            int h1 = (qh >>> (j + 12)) & 0x10;
            if (withMin) {
                y[yo + j] = ((q & 0x0F) | h0) * d + m;
                y[yo + j + 16] = ((q >>> 4) | h1) * d + m;
            } else {
                y[yo + j] = (((q & 0x0F) | h0) - 16) * d;
                y[yo + j + 16] = (((q >>> 4) | h1) - 16) * d;
            }
        }
    }

    private static void dequantQ8(MemorySegment s, long o, int header, float[] y, int yo) {
        float d = half(s, o);
        for (int j = 0; j < 32; j++) y[yo + j] = i8(s, o + header + j) * d;
    }

    /** The 16 non-linear levels IQ4_NL and IQ4_XS index with a nibble (ggml's kvalues_iq4nl). */
    public static final byte[] IQ4_LEVELS = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

    // IQ4_NL: half d; u8 qs[16]; like Q4_0 but the nibble picks a level from IQ4_LEVELS
    private static void dequantIq4Nl(MemorySegment s, long o, float[] y, int yo) {
        float d = half(s, o);
        for (int j = 0; j < 16; j++) {
            int q = u8(s, o + 2 + j);
            y[yo + j] = d * IQ4_LEVELS[q & 0xF];
            y[yo + j + 16] = d * IQ4_LEVELS[q >>> 4];
        }
    }

    // IQ4_XS: half d; u16 scales_h; u8 scales_l[4]; u8 qs[128]. Eight sub-blocks of 32, each with a 6-bit
    // scale (low 4 bits from a nibble of scales_l, high 2 bits from scales_h) offset by 32; nibbles as in IQ4_NL.
    private static void dequantIq4Xs(MemorySegment s, long o, float[] y, int yo) {
        float d = half(s, o);
        int scalesH = s.get(LE_SHORT, o + 2) & 0xffff;
        for (int ib = 0; ib < 8; ib++) {
            int ls = ((u8(s, o + 4 + ib / 2) >>> (4 * (ib % 2))) & 0xF) | (((scalesH >>> (2 * ib)) & 3) << 4);
            float dl = d * (ls - 32);
            long q = o + 8 + 16L * ib;
            for (int j = 0; j < 16; j++) {
                int v = u8(s, q + j);
                y[yo + 32 * ib + j] = dl * IQ4_LEVELS[v & 0xF];
                y[yo + 32 * ib + j + 16] = dl * IQ4_LEVELS[v >>> 4];
            }
        }
    }

    // MXFP4 (17 bytes per 32): u8 e (an E8M0 power of two); u8 qs[16], element j the low nibble of qs[j], j + 16 the
    // high one, each an E2M1 value held doubled as an integer (MXFP4_LEVELS); the scale is half of 2^(e − 127), so
    // the product is the value itself: x = level·2^(e − 128), for e < 2 a subnormal float (ggml's e8m0_to_fp32_half)
    private static void dequantMxfp4(MemorySegment s, long o, float[] y, int yo) {
        int e = u8(s, o);
        float d = Float.intBitsToFloat(e < 2 ? 0x00200000 << e : (e - 1) << 23);
        for (int j = 0; j < 16; j++) {
            int v = u8(s, o + 1 + j);
            y[yo + j] = MXFP4_LEVELS[v & 0xF] * d;
            y[yo + j + 16] = MXFP4_LEVELS[v >>> 4] * d;
        }
    }

    // NVFP4 (36 bytes per 64): u8 d[4], a UE4M3 scale per 16 elements; u8 qs[32], sub-block s's element j the low
    // nibble of qs[8s + j], j + 8 the high one, E2M1 levels as in MXFP4 (doubled; the scale is halved to match)
    private static void dequantNvfp4(MemorySegment s, long o, float[] y, int yo) {
        for (int sub = 0; sub < 4; sub++) {
            float d = ue4m3Half(u8(s, o + sub));
            for (int j = 0; j < 8; j++) {
                int v = u8(s, o + 4 + 8 * sub + j);
                y[yo + 16 * sub + j] = MXFP4_LEVELS[v & 0xF] * d;
                y[yo + 16 * sub + j + 8] = MXFP4_LEVELS[v >>> 4] * d;
            }
        }
    }

    // ggml's ue4m3_to_fp32, halved: 4 exponent bits (bias 7) and 3 mantissa bits, the top bit ignored; 0 and 0x7F are 0
    static float ue4m3Half(int x) {
        if (x == 0 || x == 0x7F) return 0f;
        int exp = (x >>> 3) & 0xF, man = x & 7;
        float raw = exp == 0 ? Math.scalb((float) man, -9) : Math.scalb(1f + man / 8f, exp - 7);
        return raw * 0.5f;
    }

    // Q1_0 (18 bytes per 128): half d; u8 qs[16], element j bit j % 8 of qs[j / 8]: +d when set, −d when not
    private static void dequantQ1_0(MemorySegment s, long o, float[] y, int yo) {
        float d = half(s, o), nd = -d;
        for (int j = 0; j < 128; j++) y[yo + j] = ((u8(s, o + 2 + (j >>> 3)) >>> (j & 7)) & 1) != 0 ? d : nd;
    }

    // Q2_0 (18 bytes per 64): half d; u8 qs[16], element j bits 2(j % 4) of qs[j / 4]: (pair − 1)·d, so −d, 0, d or 2d
    private static void dequantQ2_0(MemorySegment s, long o, float[] y, int yo) {
        float d = half(s, o);
        for (int j = 0; j < 64; j++) y[yo + j] = (((u8(s, o + 2 + (j >>> 2)) >>> (2 * (j & 3))) & 3) - 1) * d;
    }

    /** E2M1's sixteen values times two (0, ±0.5, ±1, ±1.5, ±2, ±3, ±4, ±6 as integers), ggml's kvalues_mxfp4. */
    private static final int[] MXFP4_LEVELS = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

    // TQ2_0 (ternary, 2 bits): u8 qs[64]; half d. Per group of 32 bytes, bit pair l of byte m is element
    // 128·group + 32·l + m; the value is (pair − 1)·d, so −d, 0 or +d.
    private static void dequantTq2_0(MemorySegment s, long o, float[] y, int yo) {
        float d = half(s, o + 64);
        for (int g = 0; g < 2; g++)
            for (int l = 0; l < 4; l++)
                for (int m = 0; m < 32; m++) y[yo++] = (((u8(s, o + 32L * g + m) >>> (2 * l)) & 3) - 1) * d;
    }

    // TQ1_0 (ternary, 1.6875 bits): u8 qs[48]; u8 qh[4]; half d. Five base-3 digits per byte of qs and
    // four per byte of qh, stored as a fraction of 256 (byte = ⌈Σ digit·3^(4−i) · 256 / 243⌉): digit n
    // of byte b is ((u8)(b·3^n) · 3) >> 8. Elements: for the first 32 bytes of qs digit-major (digit
    // n of byte m is element 32n + m), then the next 16 (element 160 + 16n + m), then qh's four bytes
    // (element 240 + 4n + j); the value is (digit − 1)·d.
    private static void dequantTq1_0(MemorySegment s, long o, float[] y, int yo) {
        float d = half(s, o + 52);
        for (int n = 0; n < 5; n++)
            for (int m = 0; m < 32; m++) y[yo++] = (ternaryDigit(u8(s, o + m), n) - 1) * d;
        for (int n = 0; n < 5; n++)
            for (int m = 0; m < 16; m++) y[yo++] = (ternaryDigit(u8(s, o + 32 + m), n) - 1) * d;
        for (int n = 0; n < 4; n++)
            for (int j = 0; j < 4; j++) y[yo++] = (ternaryDigit(u8(s, o + 48 + j), n) - 1) * d;
    }

    private static final int[] POW3 = {1, 3, 9, 27, 81};

    // digit n (0 = most significant) of a TQ1_0 byte: the byte times 3^n keeps its low 8 bits, then
    // times 3 over 256
    private static int ternaryDigit(int b, int n) {
        return (((b * POW3[n]) & 0xFF) * 3) >>> 8;
    }

    // u8 scales[16] (low nibble scale, high nibble min); u8 qs[64] (2-bit); half d, dmin
    private static void dequantQ2_K(MemorySegment s, long o, float[] y, int yo) {
        float d = half(s, o + 80), min = half(s, o + 82);
        int is = 0;
        for (int n = 0; n < 2; n++) {
            long q = o + 16 + 32L * n;
            for (int j = 0; j < 4; j++) {
                int shift = 2 * j;
                for (int half = 0; half < 2; half++) {
                    int sc = u8(s, o + is++);
                    float dl = d * (sc & 0xF), ml = min * (sc >>> 4);
                    for (int l = 0; l < 16; l++) y[yo++] = dl * ((u8(s, q + 16 * half + l) >>> shift) & 3) - ml;
                }
            }
        }
    }

    // u8 hmask[32]; u8 qs[64]; u8 scales[12] (16 6-bit scales); half d
    private static void dequantQ3_K(MemorySegment s, long o, float[] y, int yo) {
        float dAll = half(s, o + 108);
        long sc = o + 96;
        int m = 1;
        int is = 0;
        for (int n = 0; n < 2; n++) {
            long q = o + 32 + 32L * n;
            for (int j = 0; j < 4; j++) {
                int shift = 2 * j;
                for (int half = 0; half < 2; half++) {
                    float dl = dAll * (q3Scale(s, sc, is++) - 32);
                    for (int l = 16 * half; l < 16 * half + 16; l++) {
                        int v = ((u8(s, q + l) >>> shift) & 3) - ((u8(s, o + l) & m) != 0 ? 0 : 4);
                        y[yo++] = dl * v;
                    }
                }
                m <<= 1;
            }
        }
    }

    // the j-th 6-bit scale of Q3_K: low 4 bits from bytes 0..7, high 2 bits from bytes 8..11
    static int q3Scale(MemorySegment s, long sc, int j) {
        int lo = j < 8 ? u8(s, sc + j) & 0xF : u8(s, sc + j - 8) >>> 4;
        int hi = (u8(s, sc + 8 + (j & 3)) >>> (2 * (j >>> 2))) & 3;
        return lo | (hi << 4);
    }

    // the j-th (scale, min) pair of Q4_K/Q5_K's 12 scale bytes, 6 bits each, packed as scale | min << 8
    static int scaleMinK4(MemorySegment s, long sc, int j) {
        int d, m;
        if (j < 4) {
            d = u8(s, sc + j) & 63;
            m = u8(s, sc + j + 4) & 63;
        } else {
            d = (u8(s, sc + j + 4) & 0xF) | ((u8(s, sc + j - 4) >>> 6) << 4);
            m = (u8(s, sc + j + 4) >>> 4) | ((u8(s, sc + j) >>> 6) << 4);
        }
        return d | (m << 8);
    }

    // half d, dmin; u8 scales[12]; u8 qs[128]: 64-element chunks, low nibbles first 32, high nibbles next 32
    private static void dequantQ4_K(MemorySegment s, long o, float[] y, int yo) {
        float d = half(s, o), min = half(s, o + 2);
        for (int j = 0; j < 4; j++) {
            int a = scaleMinK4(s, o + 4, 2 * j), b = scaleMinK4(s, o + 4, 2 * j + 1);
            float d1 = d * (a & 0xff), m1 = min * (a >>> 8);
            float d2 = d * (b & 0xff), m2 = min * (b >>> 8);
            long q = o + 16 + 32L * j;
            for (int l = 0; l < 32; l++) y[yo++] = d1 * (u8(s, q + l) & 0xF) - m1;
            for (int l = 0; l < 32; l++) y[yo++] = d2 * (u8(s, q + l) >>> 4) - m2;
        }
    }

    // half d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]; like Q4_K plus a 5th bit from qh
    private static void dequantQ5_K(MemorySegment s, long o, float[] y, int yo) {
        float d = half(s, o), min = half(s, o + 2);
        long qh = o + 16;
        int u1 = 1, u2 = 2;
        for (int j = 0; j < 4; j++) {
            int a = scaleMinK4(s, o + 4, 2 * j), b = scaleMinK4(s, o + 4, 2 * j + 1);
            float d1 = d * (a & 0xff), m1 = min * (a >>> 8);
            float d2 = d * (b & 0xff), m2 = min * (b >>> 8);
            long ql = o + 48 + 32L * j;
            for (int l = 0; l < 32; l++) y[yo++] = d1 * ((u8(s, ql + l) & 0xF) + ((u8(s, qh + l) & u1) != 0 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++) y[yo++] = d2 * ((u8(s, ql + l) >>> 4) + ((u8(s, qh + l) & u2) != 0 ? 16 : 0)) - m2;
            u1 <<= 2;
            u2 <<= 2;
        }
    }

    // u8 ql[128]; u8 qh[64]; i8 scales[16]; half d. Two halves of 128; in each, element l, l+32, l+64, l+96
    // take low/high nibbles of ql[l], ql[l+32] and 2-bit pairs of qh[l]; one scale per 16 elements.
    private static void dequantQ6_K(MemorySegment s, long o, float[] y, int yo) {
        float d = half(s, o + 208);
        for (int h = 0; h < 2; h++) {
            long ql = o + 64L * h, qh = o + 128 + 32L * h, sc = o + 192 + 8L * h;
            int base = yo + 128 * h;
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int a = u8(s, ql + l), b = u8(s, ql + l + 32), hb = u8(s, qh + l);
                int q1 = ((a & 0xF) | ((hb & 3) << 4)) - 32;
                int q2 = ((b & 0xF) | (((hb >>> 2) & 3) << 4)) - 32;
                int q3 = ((a >>> 4) | (((hb >>> 4) & 3) << 4)) - 32;
                int q4 = ((b >>> 4) | (((hb >>> 6) & 3) << 4)) - 32;
                y[base + l] = d * i8(s, sc + is) * q1;
                y[base + l + 32] = d * i8(s, sc + is + 2) * q2;
                y[base + l + 64] = d * i8(s, sc + is + 4) * q3;
                y[base + l + 96] = d * i8(s, sc + is + 6) * q4;
            }
        }
    }

    // ---- dot products ------------------------------------------------------------------------

    /** Types whose dot with Q8 activations is an integer dot per block here (the others take the activations as floats). */
    static boolean integerDot(GgmlType t) {
        return switch (t) {
            case Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS -> true;
            default -> false;
        };
    }

    /**
     * The stored row of n elements of type t at byte off of w dotted with row r of a, which holds
     * the activations in t's {@link Q8Activations#vecDotType}: ggml-cpu's {@code vec_dot} arithmetic
     * (an exact integer sum per block scaled by both block scales) for the types of
     * {@link #integerDot}, the weight row's values times the activations as ggml rounded them for
     * the others (the same numbers up to float rounding).
     */
    public static float dot(GgmlType t, MemorySegment w, long off, Q8Activations a, int r, int n) {
        checkDot(t, a, n);
        return dotChecked(t, w, off, a, r, n);
    }

    // dot without the checks (a division and a switch per row: a tenth of a decode step's time on
    // 768-element rows), for callers that made them once for all rows
    private static float dotChecked(GgmlType t, MemorySegment w, long off, Q8Activations a, int r, int n) {
        if (SIMD) {
            int ao = r * n;
            switch (t) {
                case Q8_0: return VectorQuantKernels.dotQ8_0(w, off, a.q, a.d, ao, n);
                case Q4_0: return VectorQuantKernels.L <= 16 ? VectorQuantKernels.dotQ4_0(w, off, a.q, a.d, ao, n)
                        : VectorQuantKernels.dotQ4_0_256(w, off, a.q, a.d, ao, n);
                case Q4_K: return VectorQuantKernels.dotQ4_K(w, off, a.q, a.d, a.bsums32, ao, n);
                case Q4_1: if (SIMD256) return VectorQuantKernels.dotQ4_1(w, off, a.q, a.d, a.s, ao, n); break;
                case Q5_0: if (SIMD256) return VectorQuantKernels.dotQ5_0(w, off, a.q, a.d, ao, n); break;
                case Q5_1: if (SIMD256) return VectorQuantKernels.dotQ5_1(w, off, a.q, a.d, a.s, ao, n); break;
                case IQ4_NL: if (SIMD256) return VectorQuantKernels.dotIq4Nl(w, off, a.q, a.d, ao, n); break;
                case IQ4_XS: if (SIMD256) return VectorQuantKernels.dotIq4Xs(w, off, a.q, a.d, ao, n); break;
                case Q2_K: return VectorQuantKernels.dotQ2_K(w, off, a.q, a.d, a.bsums, ao, n);
                case Q3_K: return VectorQuantKernels.dotQ3_K(w, off, a.q, a.d, ao, n);
                case Q5_K: return VectorQuantKernels.dotQ5_K(w, off, a.q, a.d, a.bsums32, ao, n);
                case Q6_K: return VectorQuantKernels.dotQ6_K(w, off, a.q, a.d, ao, n);
                case F32: if (SIMD256) return VectorQuantKernels.dotF32(w, off, a.values(), ao, n); break;
                case F16: return dotF16(w, off, a.values(), ao, n);
                default: break;
            }
        }
        return dotScalarChecked(t, w, off, a, r, n);
    }

    private static void checkDot(GgmlType t, Q8Activations a, int n) {
        checkRow(t, n);
        if (a.type != Q8Activations.vecDotType(t) || a.cols != n) {
            throw new IllegalArgumentException(t + " row of " + n + " with activations of type " + a.type + " and " + a.cols + " columns");
        }
    }

    /** The scalar twin of {@link #dot}: the same integer sums, the float scaling in block order. */
    public static float dotScalar(GgmlType t, MemorySegment w, long off, Q8Activations a, int r, int n) {
        checkDot(t, a, n);
        return dotScalarChecked(t, w, off, a, r, n);
    }

    private static float dotScalarChecked(GgmlType t, MemorySegment w, long off, Q8Activations a, int r, int n) {
        int ao = r * n;
        return switch (t) {
            case Q8_0 -> dotQ8_0Scalar(w, off, a.q, a.d, ao, n);
            case Q4_0 -> dotQ4_0Scalar(w, off, a.q, a.d, ao, n);
            case Q4_K -> dotK4Scalar(false, w, off, a.q, a.d, a.bsums, ao, n);
            case Q2_K -> dotQ2_KScalar(w, off, a.q, a.d, a.bsums, ao, n);
            case Q4_1 -> dotQ451Scalar(w, off, 20, false, 0, a.q, a.d, a.s, ao, n);
            case Q5_0 -> dotQ451Scalar(w, off, 22, true, 16, a.q, a.d, null, ao, n);
            case Q5_1 -> dotQ451Scalar(w, off, 24, true, 0, a.q, a.d, a.s, ao, n);
            case IQ4_NL -> dotIq4NlScalar(w, off, a.q, a.d, ao, n);
            case IQ4_XS -> dotIq4XsScalar(w, off, a.q, a.d, ao, n);
            case Q3_K -> dotQ3_KScalar(w, off, a.q, a.d, ao, n);
            case Q5_K -> dotK4Scalar(true, w, off, a.q, a.d, a.bsums, ao, n);
            case Q6_K -> dotQ6_KScalar(w, off, a.q, a.d, ao, n);
            default -> {
                float[] x = a.values();
                if (t == GgmlType.F32) {
                    float s = 0;
                    for (int i = 0; i < n; i++) s += w.get(LE_FLOAT, off + 4L * i) * x[ao + i];
                    yield s;
                }
                // dequantize block by block (no full-row buffer)
                float[] tmp = new float[t.blockSize];
                float s = 0;
                for (int b = 0; b < n / t.blockSize; b++) {
                    dequantize(t, w, off + (long) b * t.typeSize, tmp, 0, t.blockSize);
                    for (int j = 0; j < t.blockSize; j++) s += tmp[j] * x[ao + b * t.blockSize + j];
                }
                yield s;
            }
        };
    }

    // Activation quants aq and block scales ad of one row start at element ao (a multiple of the
    // block size), so its block b has scale ad[ao / blockSize + b].

    static float dotQ8_0Scalar(MemorySegment w, long off, short[] aq, float[] ad, int ao, int n) {
        float total = 0;
        for (int b = 0; b < n / 32; b++) {
            long o = off + 34L * b;
            int xb = ao + 32 * b;
            int sum = 0;
            for (int j = 0; j < 32; j++) sum += i8(w, o + 2 + j) * aq[xb + j];
            total += sum * (half(w, o) * ad[xb / 32]);
        }
        return total;
    }

    static float dotQ4_0Scalar(MemorySegment w, long off, short[] aq, float[] ad, int ao, int n) {
        float total = 0;
        for (int b = 0; b < n / 32; b++) {
            long o = off + 18L * b;
            int xb = ao + 32 * b;
            int sum = 0;
            for (int j = 0; j < 16; j++) {
                int q = u8(w, o + 2 + j);
                sum += ((q & 0x0F) - 8) * aq[xb + j] + ((q >>> 4) - 8) * aq[xb + j + 16];
            }
            total += sum * (half(w, o) * ad[xb / 32]);
        }
        return total;
    }

    // per 256: d·da·Σ_j sc_j·Σ q·a − dmin·da·Σ_j m_j·Σ a over the eight 32-element sub-blocks j of a Q4_K
    // row, or of a Q5_K row (five: 176 bytes, d, dmin, the same scales, qh[32], then the nibbles at o + 48;
    // bit 2j (low nibbles) or 2j + 1 (high) of qh above chunk j's quants)
    private static float dotK4Scalar(boolean five, MemorySegment w, long off, short[] aq, float[] ad, int[] bsums, int ao, int n) {
        float total = 0;
        for (int b = 0; b < n / 256; b++) {
            long o = off + (five ? 176L : 144L) * b;
            int xb = ao + 256 * b;
            int isum = 0, msum = 0;
            for (int j = 0; j < 4; j++) {
                int sa = scaleMinK4(w, o + 4, 2 * j), sc = scaleMinK4(w, o + 4, 2 * j + 1);
                long q = o + (five ? 48 : 16) + 32L * j;
                int x = xb + 64 * j;
                int s1 = 0, s2 = 0;
                for (int l = 0; l < 32; l++) {
                    int v = u8(w, q + l), h = five ? u8(w, o + 16 + l) >>> (2 * j) : 0;
                    s1 += ((v & 0xF) | (h & 1) << 4) * aq[x + l];
                    s2 += ((v >>> 4) | (h & 2) << 3) * aq[x + 32 + l];
                }
                isum += (sa & 0xff) * s1 + (sc & 0xff) * s2;
                int g = x / 16;
                msum += (sa >>> 8) * (bsums[g] + bsums[g + 1]) + (sc >>> 8) * (bsums[g + 2] + bsums[g + 3]);
            }
            float da = ad[xb / 256];
            total += half(w, o) * da * isum - half(w, o + 2) * da * msum;
        }
        return total;
    }

    // Q4_1 / Q5_0 / Q5_1 blocks of `bytes` bytes (d; Q4_1, Q5_1: m; Q5: u32 qh; 16 nibble bytes): per block
    // d·da·Σ (q − bias)·a, plus m·s for the kinds with a minimum (s: the Q8_1 activations' fp16(da·Σa))
    static float dotQ451Scalar(MemorySegment w, long off, int bytes, boolean five, int bias, short[] aq, float[] ad, float[] as, int ao, int n) {
        float total = 0;
        for (int b = 0; b < n / 32; b++) {
            long o = off + (long) bytes * b;
            boolean min = bytes != 22;                  // Q4_1 (20) and Q5_1 (24) hold m after d
            long qs = o + bytes - 16;
            int qh = five ? w.get(LE_INT, qs - 4) : 0, x = ao + 32 * b, sum = 0;
            for (int j = 0; j < 16; j++) {
                int v = u8(w, qs + j);
                sum += (((v & 0xF) | ((qh >>> j) & 1) << 4) - bias) * aq[x + j] + (((v >>> 4) | ((qh >>> (j + 16)) & 1) << 4) - bias) * aq[x + 16 + j];
            }
            total += sum * (half(w, o) * ad[x / 32]);
            if (min) total += half(w, o + 2) * as[x / 32];
        }
        return total;
    }

    // Σ level(q)·a over the 32-element IQ4 block at byte q (low nibbles elements 0..15, high 16..31)
    private static int blockIq4Scalar(MemorySegment w, long q, short[] aq, int x) {
        int s = 0;
        for (int j = 0; j < 16; j++) {
            int v = u8(w, q + j);
            s += IQ4_LEVELS[v & 0xF] * aq[x + j] + IQ4_LEVELS[v >>> 4] * aq[x + 16 + j];
        }
        return s;
    }

    // per block of 32: d·da·Σ level·a
    static float dotIq4NlScalar(MemorySegment w, long off, short[] aq, float[] ad, int ao, int n) {
        float total = 0;
        for (int b = 0; b < n / 32; b++) {
            long o = off + 18L * b;
            total += blockIq4Scalar(w, o + 2, aq, ao + 32 * b) * (half(w, o) * ad[(ao + 32 * b) / 32]);
        }
        return total;
    }

    // per 256: d·da·Σ_ib (ls_ib − 32)·Σ level·a over the eight blocks of 32
    static float dotIq4XsScalar(MemorySegment w, long off, short[] aq, float[] ad, int ao, int n) {
        float total = 0;
        for (int b = 0; b < n / 256; b++) {
            long o = off + 136L * b;
            int xb = ao + 256 * b, sh = w.get(LE_SHORT, o + 2) & 0xffff, isum = 0;
            for (int ib = 0; ib < 8; ib++) {
                int ls = ((u8(w, o + 4 + ib / 2) >>> (4 * (ib % 2))) & 0xF) | (((sh >>> (2 * ib)) & 3) << 4);
                isum += (ls - 32) * blockIq4Scalar(w, o + 8 + 16L * ib, aq, xb + 32 * ib);
            }
            total += half(w, o) * ad[xb / 256] * isum;
        }
        return total;
    }

    // per 256: d·da·Σ_g sc_g·Σ q·a − dmin·da·Σ_g m_g·Σ a over the sixteen 16-element groups g, as
    // dequantQ2_K walks them
    static float dotQ2_KScalar(MemorySegment w, long off, short[] aq, float[] ad, int[] bsums, int ao, int n) {
        float total = 0;
        for (int b = 0; b < n / 256; b++) {
            long o = off + 84L * b;
            int xb = ao + 256 * b, isum = 0, msum = 0;
            for (int g = 0; g < 16; g++) {
                int r = g >> 1, shift = 2 * (r & 3), sc = u8(w, o + g), s = 0;
                for (int l = 16 * (g & 1); l < 16 * (g & 1) + 16; l++) s += ((u8(w, o + 16 + 32L * (r >> 2) + l) >>> shift) & 3) * aq[xb + 32 * r + l];
                isum += (sc & 0xF) * s;
                msum += (sc >>> 4) * bsums[xb / 16 + g];
            }
            float da = ad[xb / 256];
            total += half(w, o + 80) * da * isum - half(w, o + 82) * da * msum;
        }
        return total;
    }

    // per 256: d·da·Σ_g (sc_g − 32)·Σ q·a over the sixteen 16-element groups g, as dequantQ3_K walks them
    static float dotQ3_KScalar(MemorySegment w, long off, short[] aq, float[] ad, int ao, int n) {
        float total = 0;
        for (int b = 0; b < n / 256; b++) {
            long o = off + 110L * b;
            int xb = ao + 256 * b, isum = 0;
            for (int g = 0; g < 16; g++) {             // run g / 2 (half n = g / 8, shift 2·(g / 2 % 4)), 16 elements
                int r = g >> 1, shift = 2 * (r & 3), s = 0;
                for (int l = 16 * (g & 1); l < 16 * (g & 1) + 16; l++) {
                    int q = ((u8(w, o + 32 + 32L * (r >> 2) + l) >>> shift) & 3) - (((u8(w, o + l) >>> r) & 1) != 0 ? 0 : 4);
                    s += q * aq[xb + 32 * r + l];
                }
                isum += (q3Scale(w, o + 96, g) - 32) * s;
            }
            total += half(w, o + 108) * ad[xb / 256] * isum;
        }
        return total;
    }


    // per 256: d·da·Σ_g sc_g·Σ q·a over the sixteen 16-element groups g
    static float dotQ6_KScalar(MemorySegment w, long off, short[] aq, float[] ad, int ao, int n) {
        float total = 0;
        for (int b = 0; b < n / 256; b++) {
            long o = off + 210L * b;
            int isum = 0;
            for (int h = 0; h < 2; h++) {
                long ql = o + 64L * h, qh = o + 128 + 32L * h, sc = o + 192 + 8L * h;
                int xb = ao + 256 * b + 128 * h;
                for (int g = 0; g < 2; g++) {
                    int s1 = 0, s2 = 0, s3 = 0, s4 = 0;
                    for (int l = 16 * g; l < 16 * g + 16; l++) {
                        int a = u8(w, ql + l), c = u8(w, ql + l + 32), hb = u8(w, qh + l);
                        s1 += (((a & 0xF) | ((hb & 3) << 4)) - 32) * aq[xb + l];
                        s2 += (((c & 0xF) | (((hb >>> 2) & 3) << 4)) - 32) * aq[xb + l + 32];
                        s3 += (((a >>> 4) | (((hb >>> 4) & 3) << 4)) - 32) * aq[xb + l + 64];
                        s4 += (((c >>> 4) | (((hb >>> 6) & 3) << 4)) - 32) * aq[xb + l + 96];
                    }
                    isum += i8(w, sc + g) * s1 + i8(w, sc + g + 2) * s2 + i8(w, sc + g + 4) * s3 + i8(w, sc + g + 6) * s4;
                }
            }
            total += half(w, o + 208) * ad[(ao + 256 * b) / 256] * isum;
        }
        return total;
    }

    // ---- matrix-vector and matrix-matrix ----------------------------------------------------

    /**
     * Bytes of weight rows a worker takes at least. A matrix-vector product reads every weight byte
     * once and is bound by memory bandwidth, so work is split by bytes, not flops: below this a
     * fork/join costs more than one core spends reading the rows.
     */
    static final long PARALLEL_BYTES = 1 << 17;
    /** From this many activation rows on, panels of weight rows are dequantized once and multiplied by the GEMM. */
    public static final int GEMM_BATCH = 8;
    /** Weight rows per dequantized panel of the GEMM path (fewer when that leaves a worker idle). */
    static final int PANEL_ROWS = 128;

    /** Per-thread scratch: a dequantized row or panel, and the GEMM's output block. */
    private static final class Scratch {
        float[] rows = new float[0], out = new float[0];

        float[] rows(int n) { return rows.length >= n ? rows : (rows = new float[n]); }

        float[] out(int n) { return out.length >= n ? out : (out = new float[n]); }
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);
    /** The calling thread's activations of its current product (a product never nests another on its thread). */
    static final ThreadLocal<Q8Activations> ACTIVATIONS = ThreadLocal.withInitial(Q8Activations::new);

    /** y[yo+r] = W[r]·x[xo..xo+cols) for r &lt; rows; W: [rows, cols] of type t at byte off of w. */
    public static void matvec(GgmlType t, MemorySegment w, long off, int rows, int cols, float[] x, int xo, float[] y, int yo) {
        matmul(t, w, off, null, rows, cols, x, xo, 1, y, yo, false);
    }

    /** Scalar, single-threaded twin of {@link #matvec}. */
    public static void matvecScalar(GgmlType t, MemorySegment w, long off, int rows, int cols, float[] x, int xo, float[] y, int yo) {
        checkRow(t, cols);
        Q8Activations a = new Q8Activations();
        a.quantize(Q8Activations.vecDotType(t), x, xo, 1, cols);
        long rb = t.rowBytes(cols);
        for (int r = 0; r < rows; r++) y[yo + r] = dotScalar(t, w, off + rb * r, a, 0, cols);
    }

    /**
     * Y[batch, rows] (=, or += when accumulate) X[batch, cols] · Wᵀ on the stored blocks, with W:
     * [rows, cols] of type t at byte off of w, X at x[xo] and Y at y[yo] (row-major). Output row r
     * reads stored row {@code rowMap[r]} (null: row r), so a loader can reorder rows without copying.
     *
     * <p>As in ggml-cpu, X is first converted to t's {@link Q8Activations#vecDotType} (once per
     * call, not per weight row), so that quantized models give llama.cpp's numbers. Few activation
     * rows (decode): each weight row is read once and dotted with every activation row, integer
     * dots per block for {@link #integerDot} types, rows split over the workers by bytes. Many
     * (prefill): panels of weight rows are dequantized into per-thread scratch and multiplied by
     * the float GEMM with the activations as ggml rounded them, one panel per task, so the
     * dequantization is paid once per weight per call and the products run at GEMM speed (the
     * same numbers as ggml's integer dots up to float rounding).
     */
    public static void matmul(GgmlType t, MemorySegment w, long off, int[] rowMap, int rows, int cols,
                              float[] x, int xo, int batch, float[] y, int yo, boolean accumulate) {
        checkRow(t, cols);
        if (rows <= 0 || batch <= 0) return;
        long rb = t.rowBytes(cols);
        GgmlType vt = Q8Activations.vecDotType(t);
        Q8Activations a = vt == GgmlType.F32 ? null : ACTIVATIONS.get();
        if (a != null) a.quantize(vt, x, xo, batch, cols);
        boolean integer = integerDot(t) && batch < GEMM_BATCH;
        // the activations as floats, for the GEMM and for the dots of the other types
        float[] xf = a == null ? x : integer ? null : a.values();
        int xfo = a == null ? xo : 0;
        if (batch >= GEMM_BATCH) {
            gemm((r, dst, dstOff) -> dequantize(t, w, off + rb * stored(rowMap, r), dst, dstOff, cols), rows, cols, xf, xfo, batch, y, yo, accumulate);
            return;
        }
        boolean f32 = SIMD256 && t == GgmlType.F32, f16 = SIMD && t == GgmlType.F16;
        Q8Activations qa = a;
        // Row ranges of at least PARALLEL_BYTES handed out dynamically, up to 4 per thread: a worker
        // that loses its core (a shared machine) holds up the product by one small range, not by
        // half the matrix, and the others take the rest
        long minRows = Math.max(1, (PARALLEL_BYTES + rb - 1) / rb);
        int ranges = (int) Math.max(1, Math.min(rows / minRows, 4L * Parallel.threads()));
        Parallel.forEachTask(ranges, task -> {
            int s = (int) ((long) rows * task / ranges), e = (int) ((long) rows * (task + 1) / ranges);
            float[] row = integer || f32 || f16 ? null : SCRATCH.get().rows(cols);
            for (int r = s; r < e; r++) {
                long ro = off + rb * stored(rowMap, r);
                if (row != null) dequantize(t, w, ro, row, 0, cols);
                for (int b = 0; b < batch; b++) {
                    float d = integer ? dotChecked(t, w, ro, qa, b, cols)
                            : f32 ? VectorQuantKernels.dotF32(w, ro, xf, xfo + b * cols, cols)
                            : f16 ? dotF16(w, ro, xf, xfo + b * cols, cols)
                            : Kernels.dot(row, 0, xf, xfo + b * cols, cols);
                    int yi = yo + b * rows + r;
                    y[yi] = accumulate ? y[yi] + d : d;
                }
            }
        });
    }

    // an F16 row with F16-rounded activations: the vector body, or for a row (or activations) with an
    // inf or NaN the scalar sum, in order, as dotScalar takes it
    private static float dotF16(MemorySegment w, long ro, float[] x, int xo, int cols) {
        float d = VectorQuantKernels.dotF16(w, ro, x, xo, cols);
        if (!Float.isNaN(d)) return d;
        float s = 0;
        for (int i = 0; i < cols; i++) s += half(w, ro + 2L * i) * x[xo + i];
        return s;
    }

    /** Reads row r of a matrix as floats into dst[dstOff..dstOff+cols). */
    @FunctionalInterface
    public interface RowReader {
        void row(int r, float[] dst, int dstOff);
    }

    /**
     * Y[batch, rows] (=, or += when accumulate) X[batch, cols] · Wᵀ with X already in floats (the
     * activations as the weight type's vec_dot_type rounds them) and W read a panel of rows at a
     * time: each panel is dequantized once into per-thread scratch and multiplied by the float GEMM,
     * one panel per task.
     */
    public static void gemm(RowReader w, int rows, int cols, float[] x, int xo, int batch, float[] y, int yo, boolean accumulate) {
        if (Simd.ENABLED) {
            gemmPanels(w, rows, cols, VectorMatmul.packBT(x, xo, batch, cols), batch, y, yo, accumulate);
            return;
        }
        int panel = panelRows(rows);
        Parallel.forEachTask((rows + panel - 1) / panel, task -> {
            int r0 = task * panel, n = Math.min(panel, rows - r0);
            Scratch s = SCRATCH.get();
            float[] tile = s.rows(n * cols), out = s.out(batch * n);
            for (int j = 0; j < n; j++) w.row(r0 + j, tile, j * cols);
            Matmul.abT(out, 0, x, xo, tile, 0, batch, n, cols, false);
            for (int b = 0; b < batch; b++) {
                int yr = yo + b * rows + r0;
                if (accumulate) for (int j = 0; j < n; j++) y[yr + j] += out[b * n + j];
                else System.arraycopy(out, b * n, y, yr, n);
            }
        });
    }

    /**
     * Y_i[batch, rows_i] = X[batch, cols] · W_iᵀ for several repacked matrices of one vec_dot type
     * that read the same input (a layer's q, k and v; gate and up): X is rounded to that type once
     * for all of them, and on the SIMD path packed once as the GEMM's B where the panels are not
     * dequantized into B's layout themselves ({@link InterleavedQuant#packsPanels}). The numbers of
     * {@link #roundedActivations} then {@link #gemm(InterleavedQuant, float[], int, int, float[], int, boolean)} on each.
     */
    public static void gemmEach(GgmlType t, InterleavedQuant[] w, int cols, float[] x, int xo, int batch, float[][] y) {
        float[] xf = roundedActivations(t, x, xo, batch, cols);
        boolean panels = true;
        for (InterleavedQuant m : w) panels &= m.packsPanels();
        if (!Simd.ENABLED || panels) {
            for (int i = 0; i < w.length; i++) gemm(w[i], xf, 0, batch, y[i], 0, false);
            return;
        }
        // packBT's buffer is the calling thread's and only the calling thread packs: it holds for all
        VectorMatmul.PackedB xb = VectorMatmul.packBT(xf, 0, batch, cols);
        for (int i = 0; i < w.length; i++) gemmPanels(w[i]::row, w[i].rows, cols, xb, batch, y[i], 0, false);
    }

    /**
     * {@link #gemm(RowReader, int, int, float[], int, int, float[], int, boolean)} for a repacked
     * matrix: where it dequantizes its panels straight into the GEMM's packed-B layout, X is the
     * GEMM's A, read in place, and each panel's results are written straight into Y's rows;
     * otherwise the row-by-row panels. The same bits either way: every output is the same fused
     * multiply-adds in the same order (the GEMM's kernel adds a·b to its accumulator, and a·b = b·a).
     */
    public static void gemm(InterleavedQuant w, float[] x, int xo, int batch, float[] y, int yo, boolean accumulate) {
        if (w.packsPanels()) gemmGroups(w, x, xo, batch, y, yo, accumulate);
        else gemm(w::row, w.rows, w.cols, x, xo, batch, y, yo, accumulate);
    }

    // Y (=/+=) X·Wᵀ, one task per panel of weight rows (a whole number of the GEMM's B panels): the
    // panel dequantized into the calling thread's packed-B buffer, X's rows times it. Replaces a
    // dequantization row by row into floats plus a transposed store of each panel's results (a
    // tenth of a Q8_0 prefill on one thread, JFR)
    private static void gemmGroups(InterleavedQuant w, float[] x, int xo, int batch, float[] y, int yo, boolean accumulate) {
        int rows = w.rows, cols = w.cols, nr = VectorMatmul.panelColumns();
        int panel = (panelRows(rows) + nr - 1) / nr * nr;
        Parallel.forEachTask((rows + panel - 1) / panel, task -> {
            int r0 = task * panel, n = Math.min(panel, rows - r0);
            VectorMatmul.PackedB b = VectorMatmul.panelBuffer(n, cols);
            w.packedPanel(r0, n, b.panels, b.columns);
            if (!accumulate) {
                VectorMatmul.gemmRowsPacked(y, yo + r0, rows, x, xo, batch, b, false);
                return;
            }
            // y + (the whole product), as the row path adds it: not the product's k blocks one by one into y
            float[] out = SCRATCH.get().out(batch * n);
            VectorMatmul.gemmRowsPacked(out, 0, n, x, xo, batch, b, false);
            // (1·out is exact: each element is y + out rounded once, the row path's sum)
            for (int t = 0; t < batch; t++) Kernels.axpy(1f, out, t * n, y, yo + t * rows + r0, n);
        });
    }

    // Y (=/+=) X·Wᵀ with X packed once as the GEMM's B operand (packBT) and each dequantized panel of
    // weight rows multiplied in place as A: out[j][b] = W[r0 + j]·x[b], the same products in the same
    // order as x·panelᵀ, without transposing every panel into B's layout (a fifth of a Q8_0 prefill
    // when each panel was packed)
    private static void gemmPanels(RowReader w, int rows, int cols, VectorMatmul.PackedB xb, int batch, float[] y, int yo, boolean accumulate) {
        int panel = panelRows(rows);
        Parallel.forEachTask((rows + panel - 1) / panel, task -> {
            int r0 = task * panel, n = Math.min(panel, rows - r0);
            Scratch s = SCRATCH.get();
            float[] tile = s.rows(n * cols), out = s.out(batch * n);
            for (int j = 0; j < n; j++) w.row(r0 + j, tile, j * cols);
            VectorMatmul.gemmPacked(out, 0, tile, 0, n, xb, false);
            // y[b][r0 + j] = out[j][b], in 16 × 16 blocks that stay in L1 (a row of out
            // written down a column of y touches a new line of y per element)
            for (int j0 = 0; j0 < n; j0 += 16) {
                int j1 = Math.min(n, j0 + 16);
                for (int b0 = 0; b0 < batch; b0 += 16) {
                    int b1 = Math.min(batch, b0 + 16);
                    for (int b = b0; b < b1; b++) {
                        int yr = yo + b * rows + r0;
                        if (accumulate) for (int j = j0; j < j1; j++) y[yr + j] += out[j * batch + b];
                        else for (int j = j0; j < j1; j++) y[yr + j] = out[j * batch + b];
                    }
                }
            }
        });
    }

    // weight rows per task of gemm: an even share of the threads, at least 16, at most PANEL_ROWS
    private static int panelRows(int rows) {
        return Math.min(PANEL_ROWS, Math.max(16, (rows + Parallel.threads() - 1) / Parallel.threads()));
    }

    /** X[batch, cols] in t's vec_dot_type, as floats (the activations the GEMM path multiplies). */
    public static float[] roundedActivations(GgmlType t, float[] x, int xo, int batch, int cols) {
        GgmlType vt = Q8Activations.vecDotType(t);
        if (vt == GgmlType.F32) return java.util.Arrays.copyOfRange(x, xo, xo + batch * cols);
        Q8Activations a = ACTIVATIONS.get();
        a.quantize(vt, x, xo, batch, cols);
        return a.values();
    }

    private static int stored(int[] rowMap, int r) {
        return rowMap == null ? r : rowMap[r];
    }
}
