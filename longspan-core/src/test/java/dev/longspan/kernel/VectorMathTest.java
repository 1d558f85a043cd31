package dev.longspan.kernel;

import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;

class VectorMathTest {
    static final int L = VectorMath.L;

    @Test
    void expIsAccurateAndEqualsItsScalarTwinBitForBit() {
        SplittableRandom r = new SplittableRandom(1);
        float[] x = new float[L * 4000];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextDouble(-100, 100);
        // edge values
        float[] edges = {0f, -0f, 1f, -1f, 88.7f, 88.72283f, 88.8f, -87.3f, -87.4f, -200f, Float.NEGATIVE_INFINITY,
                Float.POSITIVE_INFINITY, Float.NaN, 1e-8f, -1e-8f, 0.3465736f, -0.3465736f};
        System.arraycopy(edges, 0, x, 0, edges.length);
        float[] y = new float[x.length];
        for (int i = 0; i < x.length; i += L) VectorMath.exp(FloatVector.fromArray(VectorMath.S, x, i)).intoArray(y, i);
        double worstUlp = 0;
        for (int i = 0; i < x.length; i++) {
            float s = ScalarKernels.exp(x[i]);
            assertThat(Float.floatToRawIntBits(y[i])).as("x=%s", x[i]).isEqualTo(Float.floatToRawIntBits(s));
            double ref = Math.exp(x[i]);
            if (Float.isNaN(x[i])) { assertThat(y[i]).isNaN(); continue; }
            if (x[i] < -87.33654f) { assertThat(y[i]).isZero(); continue; }
            if (x[i] > 88.72283f) { assertThat(y[i]).isInfinite(); continue; }
            worstUlp = Math.max(worstUlp, Math.abs(y[i] - ref) / Math.ulp((float) ref));
        }
        assertThat(worstUlp).isLessThan(3.0);
    }

    @Test
    void lanesSumInAFixedTree() {
        SplittableRandom r = new SplittableRandom(2);
        float[] x = new float[L];
        for (int t = 0; t < 100; t++) {
            double exact = 0;
            for (int i = 0; i < L; i++) { x[i] = (float) r.nextDouble(-1e3, 1e3); exact += x[i]; }
            float s = VectorMath.sum(FloatVector.fromArray(VectorMath.S, x, 0));
            assertThat((double) s).isCloseTo(exact, org.assertj.core.data.Offset.offset(1e-3 * L));
            // the same vector always gives the same bits
            assertThat(VectorMath.sum(FloatVector.fromArray(VectorMath.S, x, 0))).isEqualTo(s);
        }
    }
}
