package dev.longspan.kernel;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/** Activation rows are rounded the way ggml-cpu (x86) rounds src1 of a mul_mat into each vec_dot_type. */
class Q8ActivationsTest {

    @Test
    void vecDotTypesAreGgmlCpus() {
        for (GgmlType t : new GgmlType[]{GgmlType.Q4_0, GgmlType.Q5_0, GgmlType.Q8_0, GgmlType.IQ4_NL}) assertThat(Q8Activations.vecDotType(t)).isEqualTo(GgmlType.Q8_0);
        for (GgmlType t : new GgmlType[]{GgmlType.Q4_1, GgmlType.Q5_1}) assertThat(Q8Activations.vecDotType(t)).isEqualTo(GgmlType.Q8_1);
        for (GgmlType t : new GgmlType[]{GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.IQ4_XS}) {
            assertThat(Q8Activations.vecDotType(t)).isEqualTo(GgmlType.Q8_K);
        }
        assertThat(Q8Activations.vecDotType(GgmlType.F16)).isEqualTo(GgmlType.F16);
        assertThat(Q8Activations.vecDotType(GgmlType.BF16)).isEqualTo(GgmlType.BF16);
        assertThat(Q8Activations.vecDotType(GgmlType.F32)).isEqualTo(GgmlType.F32);
    }

    @Test
    void q8_0RoundsHalfToEvenWithTheScaleInFp16() {
        // amax 127 gives d = 1, id = 1: x·id lands on halves, which go to the even neighbour
        float[] x = new float[32];
        x[0] = 127f;
        x[1] = 2.5f;
        x[2] = 3.5f;
        x[3] = -2.5f;
        x[4] = 0.4f;
        Q8Activations a = new Q8Activations();
        a.quantize(GgmlType.Q8_0, x, 0, 1, 32);
        assertThat(new int[]{a.q[0], a.q[1], a.q[2], a.q[3], a.q[4], a.q[5]}).containsExactly(127, 2, 4, -2, 0, 0);
        assertThat(a.d[0]).isEqualTo(1f);
        // a scale that fp16 cannot hold is rounded there, the quants use the unrounded one
        for (int j = 0; j < 32; j++) x[j] = 0.1f * (j - 5) / 26;   // amax 0.1 at the last element
        a.quantize(GgmlType.Q8_1, x, 0, 1, 32);
        assertThat(a.d[0]).isEqualTo(Float.float16ToFloat(Float.floatToFloat16(0.1f / 127f)));
        int sum = 0;
        for (int j = 0; j < 32; j++) sum += a.q[j];
        assertThat(a.s[0]).isEqualTo(Float.float16ToFloat(Float.floatToFloat16(0.1f / 127f * sum)));
    }

    @Test
    void q8_KScalesBySignedMaxAndCapsAt127() {
        float[] x = new float[512];
        x[0] = -2f;   // the value of largest magnitude is negative: iscale = 127/2 > 0
        x[1] = 1f;
        x[2] = 2f;    // same magnitude, later: not the max; 2·(−127/−2)… → 127
        x[3] = -0.0078740157f * 2; // −1/63.5 → −1
        Q8Activations a = new Q8Activations();
        a.quantize(GgmlType.Q8_K, x, 0, 2, 256);
        assertThat(new int[]{a.q[0], a.q[1], a.q[2], a.q[3]}).containsExactly(-127, 64, 127, -1);
        assertThat(a.d[0]).isEqualTo(1 / (-127f / -2f));
        assertThat(a.bsums[0]).isEqualTo(-127 + 64 + 127 - 1);
        // an all-zero block has scale 0 and zero quants
        assertThat(a.d[1]).isZero();
        for (int j = 256; j < 512; j++) assertThat(a.q[j]).isZero();
        assertThat(a.values()[2]).isEqualTo(127 * a.d[0]);
    }

    @Test
    void halfTypesRoundToNearestEven() {
        float[] x = {1f + 0x1p-11f, 1f + 3 * 0x1p-11f, 1f + 0x1p-8f, 1f + 3 * 0x1p-8f, Float.NaN};
        Q8Activations a = new Q8Activations();
        a.quantize(GgmlType.F16, x, 0, 1, 5);
        assertThat(a.values()[0]).isEqualTo(1f);
        assertThat(a.values()[1]).isEqualTo(1f + 0x1p-9f);
        a.quantize(GgmlType.BF16, x, 0, 1, 5);
        assertThat(a.values()[2]).isEqualTo(1f);
        assertThat(a.values()[3]).isEqualTo(1f + 0x1p-6f);
        assertThat(a.values()[4]).isNaN();
    }

    /** The rounding error of each kind stays within half a quantization step of its block. */
    @ParameterizedTest
    @ValueSource(longs = {1, 2, 3})
    void valuesAreWithinHalfAStep(long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[3 * 512 + 7];
        for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextGaussian() * (i % 31 == 0 ? 20 : 1));
        Q8Activations a = new Q8Activations();
        for (GgmlType t : new GgmlType[]{GgmlType.Q8_0, GgmlType.Q8_1, GgmlType.Q8_K}) {
            a.quantize(t, x, 7, 3, 512);
            int bs = t == GgmlType.Q8_K ? 256 : 32;
            for (int b = 0; b < 3 * 512 / bs; b++) {
                float amax = 0;
                for (int j = 0; j < bs; j++) amax = Math.max(amax, Math.abs(x[7 + b * bs + j]));
                for (int j = 0; j < bs; j++) {
                    int i = b * bs + j;
                    assertThat(Math.abs(a.q[i])).isLessThanOrEqualTo(127);
                    // half a step of amax/127, plus fp16's rounding of the scale (2⁻¹¹ relative) times 127 steps
                    assertThat((double) a.values()[i]).as("%s element %d", t, i).isCloseTo(x[7 + i], within(amax / 127.0 * (0.5 + 127 * 0x1p-11) + 1e-6));
                }
            }
        }
    }

    /**
     * Q8_K (SIMD at any width, or the scalar loop) equals ggml's quantize_row_q8_K written out
     * plainly here: the first value of largest magnitude sets the scale, products rounded half to
     * even, capped at 127, sums per 16 and 32 — exactly, on blocks built to hit ties (values at half
     * steps), a largest magnitude occurring with both signs, zeros, and random data.
     */
    @ParameterizedTest
    @ValueSource(longs = {4, 5, 6, 7})
    void q8_KEqualsTheReferenceExactly(long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int blocks = 6;
        float[] x = new float[blocks * 256 + 3];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
        // block 1: half steps (max 127 so the scale is exact: values k + 0.5 are ties)
        for (int j = 0; j < 256; j++) x[3 + 256 + j] = (j % 2 == 0 ? -1 : 1) * ((j % 120) + 0.5f);
        x[3 + 256 + 7] = -127;
        // block 2: the largest magnitude twice, with opposite signs: the first one's sign counts
        x[3 + 512 + 10] = -9f;
        x[3 + 512 + 200] = 9f;
        // block 3: all zeros
        java.util.Arrays.fill(x, 3 + 768, 3 + 1024, 0f);
        Q8Activations a = new Q8Activations();
        a.quantize(GgmlType.Q8_K, x, 3, blocks, 256);
        for (int b = 0; b < blocks; b++) {
            int xi = 3 + 256 * b;
            float max = 0, amax = 0;
            for (int j = 0; j < 256; j++) {
                float ax = Math.abs(x[xi + j]);
                if (ax > amax) { amax = ax; max = x[xi + j]; }
            }
            if (amax == 0) {
                assertThat(a.d[b]).isZero();
                for (int j = 0; j < 256; j++) assertThat(a.q[256 * b + j]).isZero();
                continue;
            }
            float iscale = -127f / max;
            for (int g = 0; g < 16; g++) {
                int sum = 0;
                for (int j = 16 * g; j < 16 * g + 16; j++) {
                    int v = Math.min(127, (int) Math.rint(iscale * x[xi + j]));
                    assertThat(a.q[256 * b + j]).as("block %d element %d", b, j).isEqualTo((short) v);
                    sum += v;
                }
                assertThat(a.bsums[16 * b + g]).isEqualTo(sum);
            }
            for (int j = 0; j < 8; j++) assertThat(a.bsums32[8 * b + j]).isEqualTo(a.bsums[16 * b + 2 * j] + a.bsums[16 * b + 2 * j + 1]);
            assertThat(a.d[b]).isEqualTo(1 / iscale);
        }
    }

    /** Q8_0 and Q8_1 (SIMD or scalar) equal ggml's quantize_row_q8_0/q8_1 written out plainly, ties included. */
    @ParameterizedTest
    @ValueSource(longs = {8, 9})
    void q8_0AndQ8_1EqualTheReferenceExactly(long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int blocks = 9;
        float[] x = new float[blocks * 32 + 5];
        for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextGaussian() * (i % 7 == 0 ? 30 : 1));
        for (int j = 0; j < 32; j++) x[5 + 32 + j] = (j % 2 == 0 ? 1 : -1) * (j * 3 + 0.5f);   // ties at amax 127
        x[5 + 32 + 31] = 127f;
        java.util.Arrays.fill(x, 5 + 64, 5 + 96, 0f);
        for (GgmlType t : new GgmlType[]{GgmlType.Q8_0, GgmlType.Q8_1}) {
            Q8Activations a = new Q8Activations();
            a.quantize(t, x, 5, blocks, 32);
            for (int b = 0; b < blocks; b++) {
                float amax = 0;
                for (int j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[5 + 32 * b + j]));
                float id = amax != 0 ? 127f / amax : 0f;
                int sum = 0;
                for (int j = 0; j < 32; j++) {
                    int v = (int) Math.rint(x[5 + 32 * b + j] * id);
                    assertThat(a.q[32 * b + j]).as("%s block %d element %d", t, b, j).isEqualTo((short) v);
                    sum += v;
                }
                if (t == GgmlType.Q8_1) assertThat(a.s[b]).isEqualTo(Float.float16ToFloat(Float.floatToFloat16(amax / 127f * sum)));
            }
        }
    }

    /** A prefill's many rows are converted over the workers: the same quants, scales and values at 1 and 3 threads. */
    @org.junit.jupiter.api.Test
    void manyRowsConvertTheSameOnAnyThreadCount() {
        SplittableRandom r = new SplittableRandom(11);
        int rows = 70, cols = 1024;
        float[] x = new float[rows * cols + 1];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
        int before = dev.longspan.tensor.Parallel.threads();
        try {
            for (GgmlType t : new GgmlType[]{GgmlType.Q8_0, GgmlType.Q8_1, GgmlType.Q8_K}) {
                dev.longspan.tensor.Parallel.setThreads(1);
                Q8Activations one = new Q8Activations();
                one.quantize(t, x, 1, rows, cols);
                float[] v1 = one.values().clone();
                dev.longspan.tensor.Parallel.setThreads(3);
                Q8Activations three = new Q8Activations();
                three.quantize(t, x, 1, rows, cols);
                assertThat(java.util.Arrays.copyOf(three.q, rows * cols)).as("%s quants", t).isEqualTo(java.util.Arrays.copyOf(one.q, rows * cols));
                int nb = rows * cols / (t == GgmlType.Q8_K ? 256 : 32);
                assertThat(java.util.Arrays.copyOf(three.d, nb)).isEqualTo(java.util.Arrays.copyOf(one.d, nb));
                if (t == GgmlType.Q8_1) assertThat(java.util.Arrays.copyOf(three.s, nb)).isEqualTo(java.util.Arrays.copyOf(one.s, nb));
                if (t == GgmlType.Q8_K) assertThat(java.util.Arrays.copyOf(three.bsums, rows * cols / 16)).isEqualTo(java.util.Arrays.copyOf(one.bsums, rows * cols / 16));
                assertThat(java.util.Arrays.copyOf(three.values(), rows * cols)).isEqualTo(java.util.Arrays.copyOf(v1, rows * cols));
            }
        } finally {
            dev.longspan.tensor.Parallel.setThreads(before);
        }
    }

    /**
     * The vector body of the Q8_0 / Q8_1 rounding gives its scalar twin's quants, scales and sums,
     * and the values q·d of every 8-bit kind the scalar products, on random blocks and awkward ones:
     * all zeros, ties at halves, signed zeros, subnormals, huge values, an infinity and a NaN.
     */
    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void q8BlocksVectorBodyEqualsTheScalarTwin(boolean withSum) {
        SplittableRandom r = new SplittableRandom(withSum ? 3 : 4);
        int blocks = 40;
        float[] x = new float[5 + 32 * blocks];
        for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextGaussian() * Math.exp(r.nextDouble(-8, 8)));
        int o = 5;
        java.util.Arrays.fill(x, o, o + 32, 0f);                                        // block 0: zeros
        for (int j = 0; j < 32; j++) x[o + 32 + j] = j == 0 ? 127f : (j - 16) + 0.5f;   // block 1: ties
        x[o + 64] = -0.0f; x[o + 65] = Float.MIN_VALUE; x[o + 66] = -Float.MIN_NORMAL;  // block 2
        x[o + 96] = 3e38f; x[o + 97] = -3e38f;                                           // block 3
        x[o + 128] = Float.POSITIVE_INFINITY;                                           // block 4
        x[o + 160] = Float.NaN;                                                         // block 5
        GgmlType t = withSum ? GgmlType.Q8_1 : GgmlType.Q8_0;
        Q8Activations vector = new Q8Activations(), scalar = new Q8Activations();
        vector.quantize(t, x, o, 4, 32 * blocks / 4);
        scalar.quantize(t, x, o, 4, 32 * blocks / 4);   // the same sizes, then the twin on its own
        scalar.quantizeQ8Scalar(x, o, 0, blocks, withSum);
        for (int b = 0; b < blocks; b++) {
            for (int j = 0; j < 32; j++) assertThat(vector.q[32 * b + j]).as("block %d element %d", b, j).isEqualTo(scalar.q[32 * b + j]);
            assertThat(Float.floatToIntBits(vector.d[b])).as("d of block %d", b).isEqualTo(Float.floatToIntBits(scalar.d[b]));
            if (withSum) assertThat(Float.floatToIntBits(vector.s[b])).as("s of block %d", b).isEqualTo(Float.floatToIntBits(scalar.s[b]));
        }
        assertThat(vector.q[32 + 1]).isEqualTo((short) -14);   // -14.5 to even
        float[] v = vector.values();
        for (int i = 0; i < 32 * blocks; i++) assertThat(Float.floatToIntBits(v[i])).as("value %d", i).isEqualTo(Float.floatToIntBits(scalar.q[i] * scalar.d[i / 32]));
    }
}
