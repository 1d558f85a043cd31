package dev.longspan.position;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API rotation for half pairing (both halves contiguous). Same float operations as
 * {@link RopeScalar} (multiply, multiply, subtract/add; no fused multiply-add), so the results are
 * bit-identical. Only loaded when {@code Simd.ENABLED}.
 */
final class RopeVector {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int L = S.length();

    private RopeVector() {}

    static void rotateHalf(float[] x, int xo, int half, float[] cos, float[] sin, int co) {
        int i = 0;
        for (int bound = half - L; i <= bound; i += L) {
            FloatVector x1 = FloatVector.fromArray(S, x, xo + i);
            FloatVector x2 = FloatVector.fromArray(S, x, xo + half + i);
            FloatVector c = FloatVector.fromArray(S, cos, co + i);
            FloatVector s = FloatVector.fromArray(S, sin, co + i);
            x1.mul(c).sub(x2.mul(s)).intoArray(x, xo + i);
            x1.mul(s).add(x2.mul(c)).intoArray(x, xo + half + i);
        }
        for (; i < half; i++) {
            float x1 = x[xo + i], x2 = x[xo + half + i], c = cos[co + i], s = sin[co + i];
            x[xo + i] = x1 * c - x2 * s;
            x[xo + half + i] = x1 * s + x2 * c;
        }
    }
}
