package dev.longspan.kernel;

import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Dequantization is checked bit for bit against blocks packed here from intended values (an
 * independent encoder of each ggml layout, expected values computed in ggml's operation order);
 * quantized dots against dots with the dequantized rows, SIMD against the scalar twins.
 */
class QuantKernelsTest {

    static short h(float v) { return Float.floatToFloat16(v); }
    static float hf(float v) { return Float.float16ToFloat(h(v)); }

    static float[] dequant(GgmlType t, byte[] b, int n) {
        float[] y = new float[n];
        QuantKernels.dequantize(t, MemorySegment.ofArray(b), 0, y, 0, n);
        return y;
    }

    static ByteBuffer le(int n) { return ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN); }

    // ---- hand-built blocks with known values ---------------------------------------------------

    @Test
    void q8_0KnownValues() {
        ByteBuffer bb = le(34).putShort(h(0.5f));
        for (int j = 0; j < 32; j++) bb.put((byte) (j * 8 - 128));
        float[] y = dequant(GgmlType.Q8_0, bb.array(), 32);
        assertThat(y[0]).isEqualTo(-64f);
        assertThat(y[16]).isEqualTo(0f);
        assertThat(y[31]).isEqualTo(60f);
    }

    @Test
    void q4_0KnownValues() {
        ByteBuffer bb = le(18).putShort(h(0.25f));
        for (int j = 0; j < 16; j++) bb.put((byte) (j | ((15 - j) << 4)));
        float[] y = dequant(GgmlType.Q4_0, bb.array(), 32);
        assertThat(y[0]).isEqualTo(-2f);     // nibble 0
        assertThat(y[15]).isEqualTo(1.75f);  // nibble 15
        assertThat(y[16]).isEqualTo(1.75f);  // high nibble of byte 0 = 15
        assertThat(y[31]).isEqualTo(-2f);
    }

    @Test
    void q4_KKnownValues() {
        // sub-block j has scale j+1 and min j; d = 1, dmin = 0.5; all quants 3 (low) / 5 (high)
        byte[] b = packQ4K(1f, 0.5f, new int[]{1, 2, 3, 4, 5, 6, 7, 8}, new int[]{0, 1, 2, 3, 4, 5, 6, 7}, fill(256, k -> (k / 32) % 2 == 0 ? 3 : 5));
        float[] y = dequant(GgmlType.Q4_K, b, 256);
        for (int j = 0; j < 8; j++) {
            int q = j % 2 == 0 ? 3 : 5;
            assertThat(y[32 * j]).isEqualTo((j + 1) * q - 0.5f * j);
        }
    }

    @Test
    void q6_KKnownValues() {
        int[] sc = new int[16];
        for (int i = 0; i < 16; i++) sc[i] = i - 8;
        int[] q = fill(256, k -> k % 64); // stored 0..63 → value q - 32
        byte[] b = packQ6K(0.5f, sc, q);
        float[] y = dequant(GgmlType.Q6_K, b, 256);
        for (int k = 0; k < 256; k++) assertThat(y[k]).isEqualTo(0.5f * sc[k / 16] * (k % 64 - 32));
    }

    interface IntFn { int at(int k); }

    static int[] fill(int n, IntFn f) {
        int[] a = new int[n];
        for (int k = 0; k < n; k++) a[k] = f.at(k);
        return a;
    }

    // ---- packers: intended values → ggml block bytes -----------------------------------------

    static byte[] packQ4K(float d, float dmin, int[] sc, int[] m, int[] q) {
        ByteBuffer bb = le(144).putShort(h(d)).putShort(h(dmin));
        byte[] scales = new byte[12];
        for (int j = 0; j < 8; j++) {
            if (j < 4) {
                scales[j] |= (byte) sc[j];
                scales[j + 4] |= (byte) m[j];
            } else {
                scales[j + 4] = (byte) ((sc[j] & 0xF) | ((m[j] & 0xF) << 4));
                scales[j - 4] |= (byte) ((sc[j] >> 4) << 6);
                scales[j] |= (byte) ((m[j] >> 4) << 6);
            }
        }
        bb.put(scales);
        for (int c = 0; c < 4; c++) for (int l = 0; l < 32; l++) bb.put((byte) (q[64 * c + l] | (q[64 * c + 32 + l] << 4)));
        return bb.array();
    }

    static byte[] packQ5K(float d, float dmin, int[] sc, int[] m, int[] q) {
        byte[] q4 = packQ4K(d, dmin, sc, m, fill(256, k -> q[k] & 0xF));
        ByteBuffer bb = le(176).put(q4, 0, 16);
        byte[] qh = new byte[32];
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) {
                if ((q[64 * c + l] & 0x10) != 0) qh[l] |= (byte) (1 << (2 * c));
                if ((q[64 * c + 32 + l] & 0x10) != 0) qh[l] |= (byte) (1 << (2 * c + 1));
            }
        }
        bb.put(qh).put(q4, 16, 128);
        return bb.array();
    }

    static byte[] packQ6K(float d, int[] sc, int[] q) {
        byte[] ql = new byte[128], qh = new byte[64];
        for (int half = 0; half < 2; half++) {
            for (int l = 0; l < 32; l++) {
                int base = 128 * half;
                int q1 = q[base + l], q2 = q[base + l + 32], q3 = q[base + l + 64], q4 = q[base + l + 96];
                ql[64 * half + l] = (byte) ((q1 & 0xF) | ((q3 & 0xF) << 4));
                ql[64 * half + l + 32] = (byte) ((q2 & 0xF) | ((q4 & 0xF) << 4));
                qh[32 * half + l] = (byte) ((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
            }
        }
        ByteBuffer bb = le(210).put(ql).put(qh);
        for (int s : sc) bb.put((byte) s);
        return bb.putShort(h(d)).array();
    }

    // 2-bit low parts of Q2_K/Q3_K: element j+l+32i of each 128-chunk in bits 2i of qs[j/4 + l]
    static byte[] pack2bit(int[] q) {
        byte[] qs = new byte[64];
        for (int j = 0; j < 256; j += 128) {
            for (int l = 0; l < 32; l++) {
                qs[j / 4 + l] = (byte) ((q[j + l] & 3) | ((q[j + l + 32] & 3) << 2) | ((q[j + l + 64] & 3) << 4) | ((q[j + l + 96] & 3) << 6));
            }
        }
        return qs;
    }

    static byte[] packQ2K(float d, float dmin, int[] sc, int[] m, int[] q) {
        ByteBuffer bb = le(84);
        for (int j = 0; j < 16; j++) bb.put((byte) (sc[j] | (m[j] << 4)));
        return bb.put(pack2bit(q)).putShort(h(d)).putShort(h(dmin)).array();
    }

    // q in 0..7 (value q - 4); sc in 0..63 (value sc - 32)
    static byte[] packQ3K(float d, int[] sc, int[] q) {
        byte[] hmask = new byte[32];
        for (int k = 0; k < 256; k++) if (q[k] > 3) hmask[k % 32] |= (byte) (1 << (k / 32));
        byte[] scales = new byte[12];
        for (int j = 0; j < 16; j++) {
            int l = sc[j];
            if (j < 8) scales[j] |= (byte) (l & 0xF);
            else scales[j - 8] |= (byte) ((l & 0xF) << 4);
            scales[8 + j % 4] |= (byte) ((l >> 4) << (2 * (j / 4)));
        }
        return le(110).put(hmask).put(pack2bit(q)).put(scales).putShort(h(d)).array();
    }

    static byte[] packQ5(boolean withMin, float d, float m, int[] q) {
        ByteBuffer bb = le(withMin ? 24 : 22).putShort(h(d));
        if (withMin) bb.putShort(h(m));
        int qh = 0;
        for (int j = 0; j < 32; j++) if ((q[j] & 0x10) != 0) qh |= 1 << j;
        bb.putInt(qh);
        for (int j = 0; j < 16; j++) bb.put((byte) ((q[j] & 0xF) | ((q[j + 16] & 0xF) << 4)));
        return bb.array();
    }

    // ---- randomized bit-exact checks ---------------------------------------------------------

    @ParameterizedTest
    @ValueSource(longs = {1, 2, 3, 4, 5})
    void kQuantsDequantizeBitExactly(long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float d = hf((float) r.nextDouble(0.001, 2)), dmin = hf((float) r.nextDouble(0.001, 2));
        int[] sc6 = fill(8, k -> r.nextInt(64)), m6 = fill(8, k -> r.nextInt(64));
        int[] q4 = fill(256, k -> r.nextInt(16)), q5 = fill(256, k -> r.nextInt(32)), q6 = fill(256, k -> r.nextInt(64));

        float[] y = dequant(GgmlType.Q4_K, packQ4K(d, dmin, sc6, m6, q4), 256);
        for (int k = 0; k < 256; k++) assertThat(y[k]).isEqualTo(d * sc6[k / 32] * q4[k] - dmin * m6[k / 32]);
        y = dequant(GgmlType.Q5_K, packQ5K(d, dmin, sc6, m6, q5), 256);
        for (int k = 0; k < 256; k++) assertThat(y[k]).isEqualTo(d * sc6[k / 32] * q5[k] - dmin * m6[k / 32]);
        // ggml computes d * sc first, then times q (the float product is not associative)
        for (int k = 0; k < 256; k++) assertThat(y[k]).isEqualTo((d * sc6[k / 32]) * q5[k] - (dmin * m6[k / 32]));

        int[] sc8 = fill(16, k -> r.nextInt(-128, 128));
        y = dequant(GgmlType.Q6_K, packQ6K(d, sc8, q6), 256);
        for (int k = 0; k < 256; k++) assertThat(y[k]).isEqualTo(d * sc8[k / 16] * (q6[k] - 32));

        int[] sc4 = fill(16, k -> r.nextInt(16)), m4 = fill(16, k -> r.nextInt(16)), q2 = fill(256, k -> r.nextInt(4));
        y = dequant(GgmlType.Q2_K, packQ2K(d, dmin, sc4, m4, q2), 256);
        for (int k = 0; k < 256; k++) assertThat(y[k]).isEqualTo(d * sc4[k / 16] * q2[k] - dmin * m4[k / 16]);

        int[] sc3 = fill(16, k -> r.nextInt(64)), q3 = fill(256, k -> r.nextInt(8));
        y = dequant(GgmlType.Q3_K, packQ3K(d, sc3, q3), 256);
        for (int k = 0; k < 256; k++) assertThat(y[k]).isEqualTo(d * (sc3[k / 16] - 32) * (q3[k] - 4));

        int[] q5s = fill(32, k -> r.nextInt(32));
        y = dequant(GgmlType.Q5_0, packQ5(false, d, 0, q5s), 32);
        for (int k = 0; k < 32; k++) assertThat(y[k]).isEqualTo((q5s[k] - 16) * d);
        y = dequant(GgmlType.Q5_1, packQ5(true, d, dmin, q5s), 32);
        for (int k = 0; k < 32; k++) assertThat(y[k]).isEqualTo(q5s[k] * d + dmin);

        ByteBuffer bb = le(20).putShort(h(d)).putShort(h(dmin));
        int[] q41 = fill(32, k -> r.nextInt(16));
        for (int j = 0; j < 16; j++) bb.put((byte) (q41[j] | (q41[j + 16] << 4)));
        y = dequant(GgmlType.Q4_1, bb.array(), 32);
        for (int k = 0; k < 32; k++) assertThat(y[k]).isEqualTo(q41[k] * d + dmin);

        bb = le(34).putShort(h(d));
        byte[] q8 = new byte[32];
        r.nextBytes(q8);
        y = dequant(GgmlType.Q8_0, bb.put(q8).array(), 32);
        for (int k = 0; k < 32; k++) assertThat(y[k]).isEqualTo(q8[k] * d);
    }

    @Test
    void plainTypesAndErrors() {
        ByteBuffer bb = le(12).putShort(h(1.5f)).putShort((short) (Float.floatToIntBits(-2.5f) >>> 16)).putFloat(3.25f);
        float[] y = new float[1];
        QuantKernels.dequantize(GgmlType.F16, MemorySegment.ofArray(bb.array()), 0, y, 0, 1);
        assertThat(y[0]).isEqualTo(1.5f);
        QuantKernels.dequantize(GgmlType.BF16, MemorySegment.ofArray(bb.array()), 2, y, 0, 1);
        assertThat(y[0]).isEqualTo(-2.5f);
        QuantKernels.dequantize(GgmlType.F32, MemorySegment.ofArray(bb.array()), 4, y, 0, 1);
        assertThat(y[0]).isEqualTo(3.25f);
        assertThatThrownBy(() -> QuantKernels.dequantize(GgmlType.Q8_0, MemorySegment.ofArray(new byte[34]), 0, new float[31], 0, 31))
                .isInstanceOf(LongspanException.class).hasMessageContaining("block size");
        assertThatThrownBy(() -> QuantKernels.dequantize(GgmlType.I32, MemorySegment.ofArray(new byte[4]), 0, new float[1], 0, 1))
                .isInstanceOf(LongspanException.class).hasMessageContaining("I32");
        assertThat(GgmlType.byId(30)).isEqualTo(GgmlType.BF16);
        assertThat(GgmlType.byId(14)).isEqualTo(GgmlType.Q6_K);
        assertThat(GgmlType.byId(4)).isNull();
        assertThat(GgmlType.Q4_K.rowBytes(512)).isEqualTo(288);
    }

    // ---- dots and matvec ---------------------------------------------------------------------

    /** A random row of n elements of type t with sane (finite, moderate) scales. */
    static byte[] randomRow(GgmlType t, int n, SplittableRandom r) {
        byte[] b = new byte[(int) t.rowBytes(n)];
        r.nextBytes(b);
        ByteBuffer bb = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        for (int blk = 0; blk < n / t.blockSize; blk++) {
            int o = blk * t.typeSize;
            switch (t) {
                case Q8_0, Q4_0, Q5_0, IQ4_NL -> bb.putShort(o, h((float) r.nextDouble(0.001, 0.1)));
                case Q4_1, Q5_1, Q8_1 -> bb.putShort(o, h((float) r.nextDouble(0.001, 0.1))).putShort(o + 2, h((float) r.nextDouble(-0.1, 0.1)));
                case IQ4_XS -> bb.putShort(o, h((float) r.nextDouble(0.0005, 0.01)));
                case Q3_K -> bb.putShort(o + 108, h((float) r.nextDouble(0.0005, 0.01)));
                case Q8_K -> bb.putFloat(o, (float) r.nextDouble(0.001, 0.1));
                case Q2_K -> bb.putShort(o + 80, h((float) r.nextDouble(0.0005, 0.01))).putShort(o + 82, h((float) r.nextDouble(0.0005, 0.01)));
                case Q4_K, Q5_K -> bb.putShort(o, h((float) r.nextDouble(0.0005, 0.01))).putShort(o + 2, h((float) r.nextDouble(0.0005, 0.01)));
                case Q6_K -> bb.putShort(o + 208, h((float) r.nextDouble(0.0001, 0.002)));
                case IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S -> bb.putShort(o, h((float) r.nextDouble(0.0005, 0.01)));
                case MXFP4 -> b[o] = (byte) (118 + r.nextInt(6));   // scales 2^-10 .. 2^-5
                case IQ1_M -> {   // the super-scale's 16 bits are the top nibbles of the four 16-bit scales
                    int d = h((float) r.nextDouble(0.0005, 0.01)) & 0xFFFF;
                    for (int q = 0; q < 4; q++) b[o + 49 + 2 * q] = (byte) ((b[o + 49 + 2 * q] & 0x0F) | (((d >>> (4 * q)) & 0xF) << 4));
                }
                default -> { }
            }
        }
        if (t == GgmlType.F32) for (int i = 0; i < n; i++) bb.putFloat(4 * i, (float) r.nextGaussian());
        if (t == GgmlType.F16) for (int i = 0; i < n; i++) bb.putShort(2 * i, h((float) r.nextGaussian()));
        if (t == GgmlType.BF16) for (int i = 0; i < n; i++) bb.putShort(2 * i, (short) (Float.floatToIntBits((float) r.nextGaussian()) >>> 16));
        return b;
    }

    /**
     * Q4_1 / Q5_1 against Q8_1 activations: ggml multiplies a block's minimum m by the activations' s =
     * fp16(da·Σq), rounded to half precision, where the float64 reference takes m·da·Σq exactly; the
     * bound on that rounding, Σ_blocks |m·s|·2⁻¹⁰ (0 for the other types).
     */
    static double q81Slack(GgmlType t, MemorySegment w, long rowOff, Q8Activations a, int row, int n) {
        if (t != GgmlType.Q4_1 && t != GgmlType.Q5_1) return 0;
        double slack = 0;
        for (int b = 0; b < n / 32; b++) slack += Math.abs(QuantKernels.half(w, rowOff + (long) t.typeSize * b + 2) * a.s[row * n / 32 + b]) * 0x1p-10;
        return slack;
    }

    static int[] sizes(GgmlType t) {
        return t.blockSize == 1 ? new int[]{1, 7, 8, 33, 256, 1000} : new int[]{t.blockSize, 2 * t.blockSize, 5 * t.blockSize, 4096 / t.blockSize * t.blockSize + t.blockSize};
    }

    /**
     * The dot of a stored row with activations in the row type's vec_dot_type is the float64 dot of
     * the dequantized row with the activations as ggml rounded them (integer sums exact, float
     * scaling within float rounding), SIMD equal to the scalar twin within the same bound.
     */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "IQ4_NL", "IQ4_XS", "Q3_K", "Q4_K", "Q6_K", "Q5_K", "Q2_K"})
    void dotEqualsDotWithTheDequantizedRowAndSimdEqualsScalar(GgmlType t) {
        SplittableRandom r = new SplittableRandom(t.id * 31L + 1);
        for (int n : sizes(t)) {
            byte[] row = randomRow(t, n, r);
            MemorySegment w = MemorySegment.ofArray(row);
            float[] x = new float[n + 3];
            for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
            Q8Activations a = new Q8Activations();
            a.quantize(Q8Activations.vecDotType(t), x, 3, 1, n);
            float[] deq = new float[n];
            QuantKernels.dequantize(t, w, 0, deq, 0, n);
            double ref = 0, mag = 0;
            for (int i = 0; i < n; i++) {
                ref += (double) deq[i] * a.values()[i];
                mag += Math.abs((double) deq[i] * a.values()[i]);
            }
            double tol = 1e-5 * mag + 1e-6 + q81Slack(t, w, 0, a, 0, n);
            float scalar = QuantKernels.dotScalar(t, w, 0, a, 0, n);
            float fast = QuantKernels.dot(t, w, 0, a, 0, n);
            assertThat((double) scalar).as("%s n=%d scalar", t, n).isCloseTo(ref, org.assertj.core.data.Offset.offset(tol));
            assertThat((double) fast).as("%s n=%d simd", t, n).isCloseTo(ref, org.assertj.core.data.Offset.offset(tol));
            assertThat((double) fast).as("%s n=%d simd vs scalar", t, n).isCloseTo(scalar, org.assertj.core.data.Offset.offset(tol));
        }
    }

    /**
     * With every scale 1 (weight blocks' d and dmin, and activations whose largest magnitude is 127,
     * so their quants are the inputs themselves and their scale is 1) a dot is a pure integer sum,
     * exact in float: the SIMD body and the scalar twin must both give exactly the sum of the
     * dequantized row times the integer activations, for random quants and bytes (Q4_K scales and
     * mins of every 6-bit value), on row lengths of 1 to 33 blocks (odd and even block counts,
     * whatever the vector width).
     */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS"})
    void withUnitScalesSimdAndScalarDotsAreTheExactIntegerSum(GgmlType t) {
        SplittableRandom r = new SplittableRandom(t.id * 101L + 7);
        for (int blocks : new int[]{1, 2, 3, 5, 8, 17, 33}) {
            if (t.blockSize == 256 && blocks > 8) continue; // keep the sums below 2^24
            int n = blocks * t.blockSize;
            byte[] row = new byte[(int) t.rowBytes(n)];
            r.nextBytes(row);
            ByteBuffer bb = ByteBuffer.wrap(row).order(ByteOrder.LITTLE_ENDIAN);
            for (int b = 0; b < blocks; b++) {
                int o = b * t.typeSize;
                switch (t) {
                    case Q6_K -> bb.putShort(o + 208, h(1f));
                    case Q4_K, Q5_K -> bb.putShort(o, h(1f)).putShort(o + 2, h(1f));
                    case Q3_K -> bb.putShort(o + 108, h(1f));
                    case Q2_K -> bb.putShort(o + 80, h(1f)).putShort(o + 82, h(1f));
                    case Q4_1, Q5_1 -> bb.putShort(o, h(1f)).putShort(o + 2, h(1f));
                    default -> bb.putShort(o, h(1f));
                }
            }
            float[] x = new float[n];
            for (int i = 0; i < n; i++) x[i] = r.nextInt(255) - 127;
            for (int b = 0; b < n / 32; b++) x[32 * b + r.nextInt(32)] = -127; // every block's largest magnitude is 127
            x[0] = -127; // Q8_K takes the first element of largest magnitude as its sign: −127 gives scale 1
            Q8Activations a = new Q8Activations();
            a.quantize(Q8Activations.vecDotType(t), x, 0, 1, n);
            float[] deq = dequant(t, row, n);
            long exact = 0;
            for (int i = 0; i < n; i++) {
                assertThat(a.values()[i]).isEqualTo(x[i]);
                assertThat(deq[i]).isEqualTo((float) Math.rint(deq[i])); // integer weights: the scales are 1
                exact += (long) deq[i] * (long) x[i];
            }
            assertThat(Math.abs(exact)).isLessThan(1L << 24);
            MemorySegment w = MemorySegment.ofArray(row);
            assertThat(QuantKernels.dotScalar(t, w, 0, a, 0, n)).as("%s n=%d scalar", t, n).isEqualTo((float) exact);
            assertThat(QuantKernels.dot(t, w, 0, a, 0, n)).as("%s n=%d simd", t, n).isEqualTo((float) exact);
        }
    }

    /**
     * Integer dots of the extreme quants (-128 weights; Q4_K and Q5_K nibbles, high bits, scales and
     * mins all ones) against ±127 activations of mixed signs and of one sign (every short lane's
     * partial sum at its largest) do not overflow their 16-bit products.
     */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS"})
    void extremeQuantsDoNotOverflow(GgmlType t) {
        int n = 512;
        byte[] row = new byte[(int) t.rowBytes(n)];
        java.util.Arrays.fill(row, (byte) 0x80); // Q8_0 −128, Q4_0 nibbles −8 / 0, Q6_K −32 with scales −128
        ByteBuffer bb = ByteBuffer.wrap(row).order(ByteOrder.LITTLE_ENDIAN);
        for (int blk = 0; blk < n / t.blockSize; blk++) {
            int o = blk * t.typeSize;
            switch (t) {
                case Q6_K -> bb.putShort(o + 208, h(0.5f));
                case IQ4_XS -> { // levels −127 (nibbles 0), scales 63 − 32 = 31
                    java.util.Arrays.fill(row, o + 2, o + 8, (byte) 0xFF);
                    java.util.Arrays.fill(row, o + 8, o + 136, (byte) 0);
                    bb.putShort(o, h(0.5f));
                }
                case Q4_1 -> { // quants 15, minimum 0.25
                    java.util.Arrays.fill(row, o + 4, o + 20, (byte) 0xFF);
                    bb.putShort(o, h(0.5f)).putShort(o + 2, h(0.25f));
                }
                case Q5_1 -> { // quants 31, minimum 0.25
                    java.util.Arrays.fill(row, o + 4, o + 24, (byte) 0xFF);
                    bb.putShort(o, h(0.5f)).putShort(o + 2, h(0.25f));
                }
                case Q5_0 -> { // quants 0 − 16 (nibbles and qh bits clear)
                    java.util.Arrays.fill(row, o + 2, o + 22, (byte) 0);
                    bb.putShort(o, h(0.5f));
                }
                case IQ4_NL -> {   // levels −127
                    java.util.Arrays.fill(row, o + 2, o + 18, (byte) 0);
                    bb.putShort(o, h(0.5f));
                }
                case Q2_K -> { // quants 3, scales and mins 15
                    java.util.Arrays.fill(row, o, o + 80, (byte) 0xFF);
                    bb.putShort(o + 80, h(0.5f)).putShort(o + 82, h(0.25f));
                }
                case Q3_K -> { // quants −4 (qs and hmask bits clear), scales −32 (all scale bits clear)
                    java.util.Arrays.fill(row, o, o + 108, (byte) 0);
                    bb.putShort(o + 108, h(0.5f));
                }
                case Q4_K, Q5_K -> { // scales and mins 63, nibbles 15 (Q5_K: quants 31)
                    java.util.Arrays.fill(row, o + 4, o + t.typeSize, (byte) 0xFF);
                    bb.putShort(o, h(0.5f)).putShort(o + 2, h(0.25f));
                }
                default -> bb.putShort(o, h(0.5f));
            }
        }
        MemorySegment w = MemorySegment.ofArray(row);
        float[] deq = new float[n];
        QuantKernels.dequantize(t, w, 0, deq, 0, n);
        for (boolean mixed : new boolean[]{true, false}) {
            float[] x = new float[n];
            for (int i = 0; i < n; i++) x[i] = !mixed || i % 3 == 0 ? 1f : -1f;
            Q8Activations a = new Q8Activations();
            a.quantize(Q8Activations.vecDotType(t), x, 0, 1, n);
            double ref = 0, mag = 0;
            for (int i = 0; i < n; i++) {
                ref += (double) deq[i] * a.values()[i];
                mag += Math.abs((double) deq[i] * a.values()[i]);
            }
            assertThat(mag).isGreaterThan(0);
            assertThat((double) QuantKernels.dot(t, w, 0, a, 0, n)).as("%s mixed=%b", t, mixed).isCloseTo(ref, org.assertj.core.data.Offset.offset(1e-5 * mag));
            assertThat((double) QuantKernels.dotScalar(t, w, 0, a, 0, n)).as("%s mixed=%b", t, mixed).isCloseTo(ref, org.assertj.core.data.Offset.offset(1e-5 * mag));
        }
    }

    /**
     * Y = X·Wᵀ on the stored blocks against the float64 product with the dequantized matrix, for
     * every type a GGUF model can hold: shapes whose rows split unevenly over any thread count,
     * one activation row (decode) up to past the GEMM-path threshold (prefill), offsets in x and
     * y, a row map, accumulation; at 1, 2 and 3 worker threads.
     */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K",
            "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ4_NL", "IQ4_XS", "IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "MXFP4"})
    void matmulOnStoredBlocksMatchesTheDequantizedProduct(GgmlType t) {
        SplittableRandom r = new SplittableRandom(t.id * 7L + 5);
        int before = dev.longspan.tensor.Parallel.threads();
        try {
            for (int[] shape : new int[][]{{1, 1, 1}, {7, 2, 3}, {37, 3, 1}, {131, 1, 8}, {29, 2, 13}, {300, 1, 2}}) {
                int rows = shape[0], cols = shape[1] * (t.blockSize == 1 ? 96 : Math.max(t.blockSize, 64) / t.blockSize * t.blockSize), batch = shape[2];
                long rb = t.rowBytes(cols);
                byte[] w = new byte[8 + (int) rb * rows]; // an offset in front, like a tensor inside a file
                for (int i = 0; i < rows; i++) System.arraycopy(randomRow(t, cols, r), 0, w, 8 + i * (int) rb, (int) rb);
                MemorySegment seg = MemorySegment.ofArray(w);
                float[] deq = new float[rows * cols];
                QuantKernels.dequantize(t, seg, 8, deq, 0, rows * cols);
                int[] map = new int[rows];
                for (int i = 0; i < rows; i++) map[i] = (i * 5 + 3) % rows;
                if (rows % 5 == 0) map = null;
                float[] x = new float[5 + batch * cols];
                for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
                Q8Activations a = new Q8Activations();
                a.quantize(Q8Activations.vecDotType(t), x, 5, batch, cols);
                float[] xq = a.values().clone();
                float[] init = new float[3 + batch * rows];
                for (int i = 0; i < init.length; i++) init[i] = (float) r.nextGaussian();
                for (int threads = 1; threads <= 3; threads++) {
                    dev.longspan.tensor.Parallel.setThreads(threads);
                    for (boolean acc : new boolean[]{false, true}) {
                        float[] y = init.clone();
                        QuantKernels.matmul(t, seg, 8, map, rows, cols, x, 5, batch, y, 3, acc);
                        for (int b = 0; b < batch; b++) {
                            for (int i = 0; i < rows; i++) {
                                int src = map == null ? i : map[i];
                                double ref = acc ? init[3 + b * rows + i] : 0, mag = Math.abs(ref);
                                for (int k = 0; k < cols; k++) {
                                    double p = (double) deq[src * cols + k] * xq[b * cols + k];
                                    ref += p;
                                    mag += Math.abs(p);
                                }
                                double slack = q81Slack(t, seg, 8 + rb * src, a, b, cols);
                                assertThat((double) y[3 + b * rows + i]).as("%s rows=%d cols=%d batch=%d threads=%d acc=%b row %d", t, rows, cols, batch, threads, acc, i)
                                        .isCloseTo(ref, org.assertj.core.data.Offset.offset(1e-5 * mag + 1e-6 + slack));
                            }
                        }
                        for (int i = 0; i < 3; i++) assertThat(y[i]).isEqualTo(init[i]);
                    }
                }
                float[] y = new float[rows + 2], yRef = new float[rows + 2];
                QuantKernels.matvec(t, seg, 8, rows, cols, x, 5, y, 2);
                QuantKernels.matvecScalar(t, seg, 8, rows, cols, x, 5, yRef, 2);
                for (int i = 0; i < rows; i++) {
                    assertThat(y[i + 2]).isCloseTo(yRef[i + 2], org.assertj.core.data.Offset.offset(1e-3f * (1 + Math.abs(yRef[i + 2]))));
                }
            }
        } finally {
            dev.longspan.tensor.Parallel.setThreads(before);
        }
    }

    /**
     * F16 rows: every finite fp16 value (subnormals, the largest, both signs) widens exactly in the
     * vector body; a row holding an infinity or NaN gives what the scalar twin gives (inf, NaN), not
     * a finite number from the widening trick.
     */
    @Test
    void f16RowsWidenExactlyAndNonFiniteRowsGiveTheScalarAnswer() {
        int n = 96;
        short[] specials = {0x0001, (short) 0x8001, 0x03FF, 0x0400, 0x7BFF, (short) 0xFBFF, 0x3C00, (short) 0xBC00, 0};
        byte[] row = new byte[2 * n];
        ByteBuffer bb = ByteBuffer.wrap(row).order(ByteOrder.LITTLE_ENDIAN);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            bb.putShort(2 * i, specials[i % specials.length]);
            x[i] = hf(i % 2 == 0 ? 1f : -0.5f);
        }
        Q8Activations a = new Q8Activations();
        a.quantize(GgmlType.F16, x, 0, 1, n);
        MemorySegment w = MemorySegment.ofArray(row);
        double ref = 0;
        for (int i = 0; i < n; i++) ref += (double) Float.float16ToFloat(specials[i % specials.length]) * x[i];
        assertThat((double) QuantKernels.dot(GgmlType.F16, w, 0, a, 0, n)).isCloseTo(ref, org.assertj.core.data.Offset.offset(Math.abs(ref) * 1e-6));
        for (short bad : new short[]{0x7C00, (short) 0xFC00, 0x7E01}) {
            bb.putShort(2 * 37, bad);
            float fast = QuantKernels.dot(GgmlType.F16, w, 0, a, 0, n), scalar = QuantKernels.dotScalar(GgmlType.F16, w, 0, a, 0, n);
            assertThat(Float.isFinite(scalar)).isFalse();
            assertThat(Float.floatToIntBits(fast)).as("row with %04x", bad).isEqualTo(Float.floatToIntBits(scalar));
        }
    }
}
