package dev.longspan.kernel;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.MemorySegment;
import java.util.HashSet;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@link IqQuants}: the codebook types dequantize bit for bit as ggml does. The expected hashes were
 * made by llama.cpp c392e50's own ggml ({@code ggml_get_type_traits(t)->to_float}) on the same bytes:
 * 512 blocks per type from splitmix64 (seed 1000 + the type's place in the list below, one byte per
 * draw from the top of each 64-bit value), then per block the fp16 super-scale set to
 * {@code 0x2000 | (next & 0xFFF)} (a finite value in [2^-7, 2^-3)) — in its first two bytes, or, for
 * IQ1_M, in the top nibbles of its four 16-bit scales. Hashes are FNV-1a 64 of the bytes and of the
 * output floats (little-endian). With 512 blocks every codebook entry is drawn with near certainty,
 * so a single wrong entry of a table shows.
 */
class IqQuantsTest {

    private long state;

    private long next() {
        long z = (state += 0x9E3779B97F4A7C15L);
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    private static long fnv(byte[] b) {
        long h = 0xcbf29ce484222325L;
        for (byte x : b) {
            h ^= x & 0xFF;
            h *= 0x100000001b3L;
        }
        return h;
    }

    @ParameterizedTest
    @CsvSource({
            "IQ2_XXS, 0, 48988938582a1762, 6e649b70c01a2d35",
            "IQ2_XS,  1, d1edfb7e21b1e5eb, d2d2e522a48e8fd9",
            "IQ2_S,   2, 321cae955c421424, b1fe35f87a32d757",
            "IQ3_XXS, 3, 6ba2ca5c4b1c904e, 66aad6aefc5a6e90",
            "IQ3_S,   4, 8f7476a8a7dd9c6a, 4592d4759d596b7b",
            "IQ1_S,   5, 4e6d2478d697d7a1, bbf86eb6b3c8cb77",
            "IQ1_M,   6, 6c478c3ba837d5eb, 42780908c4b7ea84"})
    void dequantizesAsGgmlDoesBitForBit(GgmlType t, int place, String bytesHash, String floatsHash) {
        int nb = 512, bs = t.typeSize;
        byte[] b = new byte[nb * bs];
        state = 1000 + place;
        for (int i = 0; i < b.length; i++) b[i] = (byte) (next() >>> 56);
        for (int i = 0; i < nb; i++) {
            int h = (int) (0x2000 | (next() & 0x0FFF)), o = i * bs;
            if (t == GgmlType.IQ1_M) {
                for (int q = 0; q < 4; q++) b[o + 48 + 2 * q + 1] = (byte) ((b[o + 48 + 2 * q + 1] & 0x0F) | (((h >>> (4 * q)) & 0xF) << 4));
            } else {
                b[o] = (byte) h;
                b[o + 1] = (byte) (h >>> 8);
            }
        }
        assertThat(Long.toHexString(fnv(b))).as("the generated blocks (the harness's input)").isEqualTo(bytesHash);
        float[] y = new float[256 * nb];
        QuantKernels.dequantize(t, MemorySegment.ofArray(b), 0, y, 0, y.length);
        byte[] out = new byte[4 * y.length];
        java.nio.ByteBuffer.wrap(out).order(java.nio.ByteOrder.LITTLE_ENDIAN).asFloatBuffer().put(y);
        assertThat(Long.toHexString(fnv(out))).as("%s dequantized (first values %s)", t, java.util.Arrays.toString(java.util.Arrays.copyOf(y, 8)))
                .isEqualTo(floatsHash);
    }

    /**
     * MXFP4 (E8M0 block scale, E2M1 values) against ggml's to_float of the unslothai/llama.cpp fork at d32676d (the
     * type is newer than c392e50): 4,096 blocks of splitmix64 bytes (seed 2000), every scale byte included —
     * the subnormal ones (0, 1) and those whose products overflow to infinity.
     */
    @Test
    void mxfp4DequantizesAsGgmlDoesBitForBit() {
        int nb = 4096;
        byte[] b = new byte[nb * GgmlType.MXFP4.typeSize];
        state = 2000;
        for (int i = 0; i < b.length; i++) b[i] = (byte) (next() >>> 56);
        assertThat(Long.toHexString(fnv(b))).isEqualTo("98271beb5a9aa35d");
        float[] y = new float[32 * nb];
        QuantKernels.dequantize(GgmlType.MXFP4, MemorySegment.ofArray(b), 0, y, 0, y.length);
        byte[] out = new byte[4 * y.length];
        java.nio.ByteBuffer.wrap(out).order(java.nio.ByteOrder.LITTLE_ENDIAN).asFloatBuffer().put(y);
        assertThat(Long.toHexString(fnv(out))).as("first values %s", java.util.Arrays.toString(java.util.Arrays.copyOf(y, 8))).isEqualTo("c5d8afa8ee796411");
        assertThat(Q8Activations.vecDotType(GgmlType.MXFP4)).isEqualTo(GgmlType.Q8_0);
        assertThat(GgmlType.MXFP4.dequantizable()).isTrue();
    }

    /**
     * The types newer llama.cpp writes (Q1_0 and Q2_0 from llama-quantize, NVFP4 from its converter) against ggml's
     * to_float of the unslothai/llama.cpp fork at d32676d: 4,096 blocks of splitmix64 bytes (seed 3000 + index), the
     * fp16 scales of Q1_0/Q2_0 then set to finite values of either sign; NVFP4's UE4M3 scales take every byte
     * (0 and 0x7F are zero, the top bit is ignored).
     */
    @ParameterizedTest
    @CsvSource({"0, Q1_0, c2d44c51deeb3d1c, d7cb6ded97728ba5", "1, Q2_0, d165d6fe663f3162, 8d9cd66036161b30",
            "2, NVFP4, 918f74d87ccb8f57, 451427d8729f989d"})
    void newerTypesDequantizeAsGgmlDoesBitForBit(int index, GgmlType t, String bytesHash, String floatsHash) {
        int nb = 4096, ts = t.typeSize;
        byte[] b = new byte[nb * ts];
        state = 3000 + index;
        for (int i = 0; i < b.length; i++) b[i] = (byte) (next() >>> 56);
        if (t != GgmlType.NVFP4) {
            for (int i = 0; i < nb; i++) {
                int h = (int) (0x2000 | (next() & 0x0FFF));
                if ((next() & 1) != 0) h |= 0x8000;
                b[i * ts] = (byte) h;
                b[i * ts + 1] = (byte) (h >>> 8);
            }
        }
        assertThat(Long.toHexString(fnv(b))).isEqualTo(bytesHash);
        float[] y = new float[t.blockSize * nb];
        QuantKernels.dequantize(t, MemorySegment.ofArray(b), 0, y, 0, y.length);
        byte[] out = new byte[4 * y.length];
        java.nio.ByteBuffer.wrap(out).order(java.nio.ByteOrder.LITTLE_ENDIAN).asFloatBuffer().put(y);
        assertThat(Long.toHexString(fnv(out))).as("%s first values %s", t, java.util.Arrays.toString(java.util.Arrays.copyOf(y, 8))).isEqualTo(floatsHash);
        assertThat(Q8Activations.vecDotType(t)).isEqualTo(GgmlType.Q8_0);
        assertThat(t.dequantizable()).isTrue();
    }

    @Test
    void codebooksHoldEachFormatsLevelsAndNoEntryTwice() {
        checkLongs(IqQuants.IQ2XXS, 256, Set.of(8, 25, 43), false);
        checkLongs(IqQuants.IQ2XS, 512, Set.of(8, 25, 43), false);
        checkLongs(IqQuants.IQ2S, 1024, Set.of(8, 25, 43), false);
        checkLongs(IqQuants.IQ1S, 2048, Set.of(-1, 0, 1), true);
        checkInts(IqQuants.IQ3XXS, Set.of(4, 12, 20, 28, 36, 44, 52, 62));
        checkInts(IqQuants.IQ3S, Set.of(1, 3, 5, 7, 9, 11, 13, 15));
        assertThat(IqQuants.IQ3XXS).hasSize(256);
        assertThat(IqQuants.IQ3S).hasSize(512);
    }

    private static void checkInts(int[] g, Set<Integer> levels) {
        Set<Integer> seen = new HashSet<>();
        for (int e : g) {
            assertThat(seen.add(e)).isTrue();
            for (int j = 0; j < 4; j++) assertThat((e >>> (8 * j)) & 0xFF).isIn(levels);
        }
    }

    private static void checkLongs(long[] g, int n, Set<Integer> levels, boolean signed) {
        assertThat(g).hasSize(n);
        Set<Long> seen = new HashSet<>();
        for (long e : g) {
            assertThat(seen.add(e)).isTrue();
            for (int j = 0; j < 8; j++) assertThat(signed ? (int) (byte) (e >>> (8 * j)) : (int) (e >>> (8 * j)) & 0xFF).isIn(levels);
        }
    }

    @Test
    void storedSevenSignBitsGetTheParityBitAsEighth() {
        for (int i = 0; i < 128; i++) {
            int s = IqQuants.signs(i);
            assertThat(s & 127).isEqualTo(i);
            assertThat(Integer.bitCount(s) % 2).as("minus signs of %d", i).isZero();
        }
    }

    @Test
    void codebookTypesLoadAndTheirActivationsAreRoundedToQ8_KAsInGgml() {
        for (GgmlType t : new GgmlType[]{GgmlType.IQ1_S, GgmlType.IQ1_M, GgmlType.IQ2_XXS, GgmlType.IQ2_XS, GgmlType.IQ2_S, GgmlType.IQ3_XXS, GgmlType.IQ3_S}) {
            assertThat(Q8Activations.vecDotType(t)).as("%s", t).isEqualTo(GgmlType.Q8_K);
            assertThat(t.dequantizable()).as("%s loads from a GGUF", t).isTrue();
        }
    }
}
