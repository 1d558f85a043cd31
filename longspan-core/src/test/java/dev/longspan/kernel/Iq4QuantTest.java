package dev.longspan.kernel;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * IQ4_NL and IQ4_XS dequantization on blocks built here from the format's description: every element is
 * d · (6-bit sub-block scale − 32, IQ4_XS only) · level[nibble], the 16 levels fixed by ggml.
 */
class Iq4QuantTest {
    static final int[] LEVELS = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

    @ParameterizedTest
    @ValueSource(longs = {1, 2, 3})
    void iq4xsBlocksRoundTrip(long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int blocks = 3;
        ByteBuffer b = ByteBuffer.allocate(136 * blocks).order(ByteOrder.LITTLE_ENDIAN);
        float[] expected = new float[256 * blocks];
        for (int blk = 0; blk < blocks; blk++) {
            short dBits = Float.floatToFloat16((float) r.nextDouble(-0.05, 0.05));
            float d = Float.float16ToFloat(dBits);
            int[] ls = new int[8];
            int[][] nib = new int[8][32];
            for (int ib = 0; ib < 8; ib++) {
                ls[ib] = r.nextInt(64);
                for (int j = 0; j < 32; j++) nib[ib][j] = r.nextInt(16);
            }
            // the block as the spec lays it out
            int o = 136 * blk;
            b.putShort(o, dBits);
            int scalesH = 0;
            for (int ib = 0; ib < 8; ib++) scalesH |= (ls[ib] >> 4) << (2 * ib);
            b.putShort(o + 2, (short) scalesH);
            for (int k = 0; k < 4; k++) b.put(o + 4 + k, (byte) ((ls[2 * k] & 0xF) | ((ls[2 * k + 1] & 0xF) << 4)));
            for (int ib = 0; ib < 8; ib++) {
                // byte j of a sub-block: element j in the low nibble, element j + 16 in the high one
                for (int j = 0; j < 16; j++) b.put(o + 8 + 16 * ib + j, (byte) (nib[ib][j] | (nib[ib][j + 16] << 4)));
                float dl = d * (ls[ib] - 32);
                for (int j = 0; j < 32; j++) expected[256 * blk + 32 * ib + j] = dl * LEVELS[nib[ib][j]];
            }
        }
        // the blocks dequantized, and the row dot with the activations rounded to Q8_K as ggml does
        TernaryQuantTest.checkBlocks(GgmlType.IQ4_XS, b, expected, r);
    }

    @ParameterizedTest
    @ValueSource(longs = {4, 5})
    void iq4nlBlocksRoundTrip(long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int blocks = 4;
        ByteBuffer b = ByteBuffer.allocate(18 * blocks).order(ByteOrder.LITTLE_ENDIAN);
        float[] expected = new float[32 * blocks];
        for (int blk = 0; blk < blocks; blk++) {
            short dBits = Float.floatToFloat16((float) r.nextDouble(-0.05, 0.05));
            float d = Float.float16ToFloat(dBits);
            b.putShort(18 * blk, dBits);
            int[] nib = new int[32];
            for (int j = 0; j < 32; j++) nib[j] = r.nextInt(16);
            for (int j = 0; j < 16; j++) b.put(18 * blk + 2 + j, (byte) (nib[j] | (nib[j + 16] << 4)));
            for (int j = 0; j < 32; j++) expected[32 * blk + j] = d * LEVELS[nib[j]];
        }
        float[] got = new float[32 * blocks];
        QuantKernels.dequantize(GgmlType.IQ4_NL, MemorySegment.ofArray(b.array()), 0, got, 0, got.length);
        assertThat(got).containsExactly(expected);
    }
}
