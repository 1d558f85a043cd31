package dev.longspan.kernel;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * TQ1_0 and TQ2_0 (ggml's ternary types: every weight −d, 0 or +d) on blocks built here from the
 * format's description, random digits at every position: the element order of each type's packing,
 * the base-3 digits of TQ1_0 stored as fractions of 256, and the dot with Q8_K activations (their
 * vec_dot_type). Checked once against llama.cpp's own files too: a model quantized by
 * llama-quantize to each type dequantized bit for bit as gguf-py does (docs/FORMATS.md).
 */
class TernaryQuantTest {

    // a TQ1_0 byte from its base-3 digits, most significant first: ⌈value · 256 / 3^count⌉
    static int packTernary(int[] digits) {
        int q = 0;
        for (int dgt : digits) q = q * 3 + dgt;
        int pow = 1;
        for (int i = 0; i < digits.length; i++) pow *= 3;
        return (q * 256 + pow - 1) / pow;
    }

    @ParameterizedTest
    @ValueSource(longs = {1, 2, 3})
    void tq1Blocks(long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int blocks = 3;
        ByteBuffer b = ByteBuffer.allocate(54 * blocks).order(ByteOrder.LITTLE_ENDIAN);
        float[] expected = new float[256 * blocks];
        for (int blk = 0; blk < blocks; blk++) {
            short dBits = Float.floatToFloat16((float) r.nextDouble(-0.1, 0.1));
            float d = Float.float16ToFloat(dBits);
            int[] digit = new int[256];
            for (int i = 0; i < 256; i++) digit[i] = r.nextInt(3);
            int o = 54 * blk, e = 256 * blk;
            // qs[0..32): digit n of byte m is element 32n + m; qs[32..48): element 160 + 16n + m; qh[j]: element 240 + 4n + j
            for (int m = 0; m < 32; m++) b.put(o + m, (byte) packTernary(new int[]{digit[m], digit[32 + m], digit[64 + m], digit[96 + m], digit[128 + m]}));
            for (int m = 0; m < 16; m++) b.put(o + 32 + m, (byte) packTernary(new int[]{digit[160 + m], digit[176 + m], digit[192 + m], digit[208 + m], digit[224 + m]}));
            for (int j = 0; j < 4; j++) b.put(o + 48 + j, (byte) packTernary(new int[]{digit[240 + j], digit[244 + j], digit[248 + j], digit[252 + j]}));
            b.putShort(o + 52, dBits);
            for (int i = 0; i < 256; i++) expected[e + i] = (digit[i] - 1) * d;
        }
        checkBlocks(GgmlType.TQ1_0, b, expected, r);
    }

    @ParameterizedTest
    @ValueSource(longs = {1, 2, 3})
    void tq2Blocks(long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int blocks = 3;
        ByteBuffer b = ByteBuffer.allocate(66 * blocks).order(ByteOrder.LITTLE_ENDIAN);
        float[] expected = new float[256 * blocks];
        for (int blk = 0; blk < blocks; blk++) {
            short dBits = Float.floatToFloat16((float) r.nextDouble(-0.1, 0.1));
            float d = Float.float16ToFloat(dBits);
            int[] value = new int[256];
            for (int i = 0; i < 256; i++) value[i] = r.nextInt(3);
            int o = 66 * blk;
            // bit pair l of byte 32g + m is element 128g + 32l + m
            for (int g = 0; g < 2; g++)
                for (int m = 0; m < 32; m++) {
                    int byt = 0;
                    for (int l = 0; l < 4; l++) byt |= value[128 * g + 32 * l + m] << (2 * l);
                    b.put(o + 32 * g + m, (byte) byt);
                }
            b.putShort(o + 64, dBits);
            for (int i = 0; i < 256; i++) expected[256 * blk + i] = (value[i] - 1) * d;
        }
        checkBlocks(GgmlType.TQ2_0, b, expected, r);
    }

    /** Blocks b of a Q8_K-dot type dequantize to expected exactly, and a row dot matches the float64 one on them. */
    static void checkBlocks(GgmlType t, ByteBuffer b, float[] expected, SplittableRandom r) {
        assertThat(t.dequantizable()).isTrue();
        assertThat(Q8Activations.vecDotType(t)).isEqualTo(GgmlType.Q8_K);
        float[] got = new float[expected.length];
        QuantKernels.dequantize(t, MemorySegment.ofArray(b.array()), 0, got, 0, got.length);
        assertThat(got).containsExactly(expected);
        float[] x = new float[got.length];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextDouble(-1, 1);
        Q8Activations a = new Q8Activations();
        a.quantize(GgmlType.Q8_K, x, 0, 1, x.length);
        double ref = 0;
        for (int i = 0; i < x.length; i++) ref += (double) expected[i] * a.values()[i];
        assertThat((double) QuantKernels.dot(t, MemorySegment.ofArray(b.array()), 0, a, 0, x.length)).isCloseTo(ref, org.assertj.core.data.Offset.offset(1e-3));
    }
}
