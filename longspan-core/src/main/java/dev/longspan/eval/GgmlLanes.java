package dev.longspan.eval;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The Vector API bodies of {@link GgmlReplica}'s two hot sums, on 8-lane (256-bit) vectors so that
 * lane i is ggml's lane i: the same fused multiply-adds in the same order as the scalar twins
 * beside them in GgmlReplica, hence the same bits. Loaded only when SIMD is on and the machine has
 * 256-bit vectors (on 128-bit machines the scalar twins are faster than emulated 256-bit lanes).
 */
final class GgmlLanes {
    private GgmlLanes() {}

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;

    // tinyBLAS for float rows: lane i accumulates a[i + 8s]·b[i + 8s]; k a multiple of 8
    static float laneDot(float[] a, int ao, float[] b, int bo, int k) {
        FloatVector acc = FloatVector.zero(F);
        for (int s = 0; s < k; s += 8) acc = FloatVector.fromArray(F, a, ao + s).fma(FloatVector.fromArray(F, b, bo + s), acc);
        return hsum(acc);
    }

    // tinyBLAS_Q0_AVX: per block, lane i's integer sum of its four products (quants stored m-major: element 4i+m of a
    // block at 8m+i), then acc = fma(dw·dx, sum, acc)
    static float q0Dot(int[] w, float[] wd, int[] x, int xo, float[] xd, int xdo, int nb) {
        FloatVector acc = FloatVector.zero(F);
        for (int b = 0; b < nb; b++) {
            int o = 32 * b;
            IntVector s = IntVector.fromArray(I, w, o).mul(IntVector.fromArray(I, x, xo + o))
                    .add(IntVector.fromArray(I, w, o + 8).mul(IntVector.fromArray(I, x, xo + o + 8)))
                    .add(IntVector.fromArray(I, w, o + 16).mul(IntVector.fromArray(I, x, xo + o + 16)))
                    .add(IntVector.fromArray(I, w, o + 24).mul(IntVector.fromArray(I, x, xo + o + 24)));
            FloatVector fs = (FloatVector) s.convert(VectorOperators.I2F, 0);
            acc = FloatVector.broadcast(F, wd[b] * xd[xdo + b]).fma(fs, acc);
        }
        return hsum(acc);
    }

    // the K-quant dots' integer lanes for one super-block of 256 (scale·value and activations m-major in every 32)
    static void kLanes(int[] w, int[] x, int xo, int o, int[] lane) {
        IntVector s = IntVector.zero(I);
        for (int g = 0; g < 256; g += 8) s = s.add(IntVector.fromArray(I, w, o + g).mul(IntVector.fromArray(I, x, xo + o + g)));
        s.intoArray(lane, 0);
    }

    private static float hsum(FloatVector v) {
        float[] l = new float[8];
        v.intoArray(l, 0);
        return GgmlReplica.hsum(l);
    }
}
