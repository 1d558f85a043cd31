package dev.longspan.kernel;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/**
 * Every kernel of the {@link Kernels} facade (the Vector API bodies under surefire) against its
 * plain twin in {@link ScalarKernels}, on awkward sizes, with tolerances that grow with the size
 * (the two sum in different orders), plus the edge cases the softmax family must survive.
 */
class KernelsTest {

    static IntStream sizes() {
        return IntStream.of(1, 2, 3, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 1000, 4099);
    }

    static float[] random(SplittableRandom r, int n, double lo, double hi) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) r.nextDouble(lo, hi);
        return x;
    }

    /** Float summation error bound of n terms whose absolute values sum to absSum. */
    static double tol(int n, double absSum) {
        return (n + 4) * 1.2e-7 * absSum + 1e-30;
    }

    @Test
    void simdChoiceIsExplained() {
        assertThat(Simd.REASON).isNotBlank();
        if (Simd.ENABLED) {
            assertThat(Simd.REASON).startsWith("Vector API");
            assertThat(Simd.VECTOR_BITS).isGreaterThanOrEqualTo(128);
        } else {
            assertThat(Simd.REASON).startsWith("scalar");
            assertThat(Simd.VECTOR_BITS).isZero();
        }
    }

    @Test
    void surefireRunsTheVectorBodiesUnlessForcedScalar() {
        // surefire starts the JVM with --add-modules jdk.incubator.vector, so the SIMD path is what
        // these tests compare against the scalar twins; the second surefire run forces scalar
        if ("scalar".equals(System.getProperty("longspan.kernel"))) {
            assertThat(Simd.ENABLED).isFalse();
            assertThat(Simd.REASON).contains("forced");
        } else {
            assertThat(Simd.ENABLED).as(Simd.REASON).isTrue();
        }
    }

    /** axpyRows is n calls of axpy in order, bit for bit (the registers only keep the row), and the scalar twin within rounding. */
    @ParameterizedTest
    @MethodSource("sizes")
    void axpyRowsIsAxpyPerRow(int d) {
        SplittableRandom r = new SplittableRandom(31L * d + 7);
        for (int n : new int[]{0, 1, 3, 17, 64}) {
            float[] a = random(r, n, -1, 1), x = random(r, 70 * (d + 3) + 5, -2, 2), y = random(r, d + 9, -2, 2);
            int[] xoff = new int[n];
            for (int j = 0; j < n; j++) xoff[j] = r.nextInt(70) * (d + 3) + r.nextInt(3);   // rows in any order, repeated too
            float[] want = y.clone(), got = y.clone(), scalar = y.clone();
            for (int j = 0; j < n; j++) Kernels.axpy(a[j], x, xoff[j], want, 4, d);
            Kernels.axpyRows(a, 0, n, x, xoff, got, 4, d);
            ScalarKernels.axpyRows(a, 0, n, x, xoff, scalar, 4, d);
            assertThat(got).as("n=%d d=%d", n, d).isEqualTo(want);
            assertCloseArrays(scalar, want, 1e-5);
        }
    }

    @ParameterizedTest
    @MethodSource("sizes")
    void blas1MatchesScalar(int n) {
        SplittableRandom r = new SplittableRandom(n);
        int ao = 3, bo = 5;
        float[] a = random(r, n + ao + 2, -2, 2), b = random(r, n + bo + 1, -2, 2);
        double absDot = 0, absSum = 0;
        for (int i = 0; i < n; i++) {
            absDot += Math.abs(a[ao + i] * b[bo + i]);
            absSum += Math.abs(a[ao + i]);
        }
        assertThat((double) Kernels.dot(a, ao, b, bo, n)).isCloseTo(ScalarKernels.dot(a, ao, b, bo, n), within(2 * tol(n, absDot)));
        assertThat((double) Kernels.sum(a, ao, n)).isCloseTo(ScalarKernels.sum(a, ao, n), within(2 * tol(n, absSum)));
        assertThat(Kernels.max(a, ao, n)).isEqualTo(ScalarKernels.max(a, ao, n));

        float[] y1 = b.clone(), y2 = b.clone();
        Kernels.axpy(0.7f, a, ao, y1, bo, n);
        ScalarKernels.axpy(0.7f, a, ao, y2, bo, n);
        assertCloseArrays(y1, y2, 1e-6);
        // untouched outside the range
        assertThat(y1[bo - 1]).isEqualTo(b[bo - 1]);
        assertThat(y1[bo + n]).isEqualTo(b[bo + n]);

        float[] s1 = a.clone(), s2 = a.clone();
        Kernels.scale(-1.3f, s1, ao, n);
        ScalarKernels.scale(-1.3f, s2, ao, n);
        assertThat(s1).containsExactly(s2);
    }

    @ParameterizedTest
    @MethodSource("sizes")
    void softmaxFamilyMatchesScalar(int n) {
        SplittableRandom r = new SplittableRandom(100 + n);
        int o = 2;
        float[] x = random(r, n + o + 3, -20, 20);
        assertThat((double) Kernels.logSumExp(x, o, n)).isCloseTo(ScalarKernels.logSumExp(x, o, n), within(1e-5 * (1 + Math.log(n) + 20)));
        float[] s1 = x.clone(), s2 = x.clone();
        Kernels.softmax(s1, o, n);
        ScalarKernels.softmax(s2, o, n);
        assertCloseArrays(s1, s2, 1e-5);
        assertThat(sum(s1, o, n)).isCloseTo(1.0, within(1e-4));
        assertThat(s1[o - 1]).isEqualTo(x[o - 1]);
        assertThat(s1[o + n]).isEqualTo(x[o + n]);
    }

    @ParameterizedTest
    @MethodSource("sizes")
    void rmsnormMatchesScalar(int dim) {
        SplittableRandom r = new SplittableRandom(200 + dim);
        int rows = 3;
        float[] x = random(r, rows * dim, -3, 3), w = random(r, dim, 0.5, 1.5), dout = random(r, rows * dim, -1, 1);
        float[] o1 = new float[rows * dim], o2 = new float[rows * dim], r1 = new float[rows], r2 = new float[rows];
        Kernels.rmsnormForward(o1, r1, x, w, rows, dim, 1e-5f);
        ScalarKernels.rmsnormForward(o2, r2, x, w, rows, dim, 1e-5f);
        assertCloseArrays(r1, r2, 1e-5 + dim * 2e-7);
        assertCloseArrays(o1, o2, 1e-5 + dim * 2e-7);

        float[] dx1 = random(r, rows * dim, -1, 1), dx2 = dx1.clone(), dw1 = random(r, dim, -1, 1), dw2 = dw1.clone();
        Kernels.rmsnormBackward(dx1, dw1, dout, x, w, r2, rows, dim);
        ScalarKernels.rmsnormBackward(dx2, dw2, dout, x, w, r2, rows, dim);
        assertCloseArrays(dx1, dx2, 1e-5 + dim * 2e-7);
        assertCloseArrays(dw1, dw2, 1e-5 + dim * 2e-7);
    }

    // a norm weight read in place inside a larger array, rows read and written at offsets: the same
    // bits as the copied weight at offset 0 (what callers did before the offsets existed)
    @ParameterizedTest
    @MethodSource("sizes")
    void rmsnormAtOffsetsEqualsCopiedWeight(int dim) {
        SplittableRandom r = new SplittableRandom(300 + dim);
        int rows = 3, wo = 5, xo = 7, oo = 2;
        float[] params = random(r, wo + dim + 4, 0.5, 1.5), w = java.util.Arrays.copyOfRange(params, wo, wo + dim);
        float[] x = random(r, xo + rows * dim, -3, 3), xs = java.util.Arrays.copyOfRange(x, xo, xo + rows * dim);
        float[] dout = random(r, rows * dim, -1, 1);
        float[] o1 = new float[oo + rows * dim + 3], o2 = new float[rows * dim], r1 = new float[rows], r2 = new float[rows];
        Kernels.rmsnormForward(o1, oo, r1, x, xo, params, wo, rows, dim, 1e-5f);
        Kernels.rmsnormForward(o2, r2, xs, w, rows, dim, 1e-5f);
        assertThat(java.util.Arrays.copyOfRange(o1, oo, oo + rows * dim)).containsExactly(o2);
        assertThat(r1).containsExactly(r2);
        assertThat(o1[oo - 1]).isZero();
        assertThat(o1[oo + rows * dim]).isZero();

        float[] dx1 = random(r, rows * dim, -1, 1), dx2 = dx1.clone(), dw1 = new float[dim], dw2 = new float[dim];
        Kernels.rmsnormBackward(dx1, dw1, dout, xs, params, wo, r2, rows, dim);
        Kernels.rmsnormBackward(dx2, dw2, dout, xs, w, r2, rows, dim);
        assertThat(dx1).containsExactly(dx2);
        assertThat(dw1).containsExactly(dw2);
        float[] dx3 = dx1.clone(), dw3 = new float[dim], dx4 = dx1.clone(), dw4 = new float[dim];
        ScalarKernels.rmsnormBackward(dx3, dw3, dout, xs, params, wo, r2, rows, dim);
        ScalarKernels.rmsnormBackward(dx4, dw4, dout, xs, w, r2, rows, dim);
        assertThat(dx3).containsExactly(dx4);
        assertThat(dw3).containsExactly(dw4);
    }

    /**
     * The row-wise and element-wise kernels split over threads above a size (rows for RMSNorm's
     * forward and dx and for cross-entropy, columns for RMSNorm's dw, 64-element blocks for SwiGLU):
     * the same bits on one thread and on three, on shapes above the split size with ragged ends, and
     * (scalar twin) the same values within float error.
     */
    @ParameterizedTest(name = "rows={0} dim={1}")
    @org.junit.jupiter.params.provider.CsvSource({"1000,97", "257,384", "3000,17", "64,1025"})
    void splitKernelsGiveTheSameBitsOnAnyThreadCount(int rows, int dim) {
        int saved = dev.longspan.tensor.Parallel.threads();
        try {
            float[][] one = splitKernels(rows, dim, 1), three = splitKernels(rows, dim, 3);
            for (int i = 0; i < one.length; i++) assertThat(three[i]).as("output %d", i).containsExactly(one[i]);
            float[][] scalar = splitKernels(rows, dim, 0);
            for (int i = 0; i < one.length; i++) assertCloseArrays(one[i], scalar[i], 2e-4 + dim * 1e-6);
        } finally {
            dev.longspan.tensor.Parallel.setThreads(saved);
        }
    }

    // threads 0: the scalar twins
    static float[][] splitKernels(int rows, int dim, int threads) {
        if (threads > 0) dev.longspan.tensor.Parallel.setThreads(threads);
        boolean scalar = threads == 0;
        SplittableRandom r = new SplittableRandom(rows * 31L + dim);
        int n = rows * dim;
        float[] x = random(r, n, -3, 3), w = random(r, dim, 0.5, 1.5), dout = random(r, n, -1, 1), up = random(r, n, -2, 2);
        int[] targets = r.ints(rows, -1, dim).toArray();
        float[] out = new float[n], rstd = new float[rows], dx = random(r, n, -1, 1), dw = random(r, dim, -1, 1);
        float[] h = new float[n], dg = new float[n], du = new float[n], losses = new float[rows], dl = new float[n];
        double loss;
        if (scalar) {
            ScalarKernels.rmsnormForward(out, rstd, x, w, rows, dim, 1e-5f);
            ScalarKernels.rmsnormBackward(dx, dw, dout, x, w, rstd, rows, dim);
            ScalarKernels.swigluForward(h, x, up, n);
            ScalarKernels.swigluBackward(dg, du, dout, x, up, n);
            loss = ScalarKernels.crossEntropyForward(losses, x, targets, rows, dim);
            ScalarKernels.crossEntropyBackward(dl, x, targets, rows, dim, 0.5f);
        } else {
            Kernels.rmsnormForward(out, rstd, x, w, rows, dim, 1e-5f);
            Kernels.rmsnormBackward(dx, dw, dout, x, w, rstd, rows, dim);
            Kernels.swigluForward(h, x, up, n);
            Kernels.swigluBackward(dg, du, dout, x, up, n);
            loss = Kernels.crossEntropyForward(losses, x, targets, rows, dim);
            Kernels.crossEntropyBackward(dl, x, targets, rows, dim, 0.5f);
        }
        return new float[][]{out, rstd, dx, dw, h, dg, du, losses, dl, {(float) loss}};
    }

    @ParameterizedTest
    @MethodSource("sizes")
    void activationsMatchScalar(int n) {
        SplittableRandom r = new SplittableRandom(300 + n);
        float[] x = random(r, n, -12, 12), up = random(r, n, -2, 2), dout = random(r, n, -1, 1);
        float[] o1 = new float[n], o2 = new float[n];
        Kernels.siluForward(o1, x, n);
        ScalarKernels.siluForward(o2, x, n);
        assertCloseArrays(o1, o2, 1e-5);
        float[] dx1 = random(r, n, -1, 1), dx2 = dx1.clone();
        Kernels.siluBackward(dx1, dout, x, n);
        ScalarKernels.siluBackward(dx2, dout, x, n);
        assertCloseArrays(dx1, dx2, 1e-5);

        Kernels.swigluForward(o1, x, up, n);
        ScalarKernels.swigluForward(o2, x, up, n);
        assertCloseArrays(o1, o2, 1e-5);
        float[] dg1 = new float[n], dg2 = new float[n], du1 = new float[n], du2 = new float[n];
        Kernels.swigluBackward(dg1, du1, dout, x, up, n);
        ScalarKernels.swigluBackward(dg2, du2, dout, x, up, n);
        assertCloseArrays(dg1, dg2, 1e-5);
        assertCloseArrays(du1, du2, 1e-5);
    }

    @ParameterizedTest
    @MethodSource("sizes")
    void crossEntropyMatchesScalar(int vocab) {
        SplittableRandom r = new SplittableRandom(400 + vocab);
        int rows = 4;
        float[] logits = random(r, rows * vocab, -8, 8);
        int[] targets = {0, vocab - 1, -1, r.nextInt(vocab)};
        float[] l1 = new float[rows], l2 = new float[rows];
        double t1 = Kernels.crossEntropyForward(l1, logits, targets, rows, vocab);
        double t2 = ScalarKernels.crossEntropyForward(l2, logits, targets, rows, vocab);
        assertThat(t1).isCloseTo(t2, within(1e-4 * (1 + Math.log(vocab))));
        assertCloseArrays(l1, l2, 1e-4);
        assertThat(l1[2]).isZero();
        float[] d1 = new float[rows * vocab], d2 = new float[rows * vocab];
        Kernels.crossEntropyBackward(d1, logits, targets, rows, vocab, 0.25f);
        ScalarKernels.crossEntropyBackward(d2, logits, targets, rows, vocab, 0.25f);
        assertCloseArrays(d1, d2, 1e-6);
    }

    // ---- edge cases --------------------------------------------------------------------------

    @ParameterizedTest
    @MethodSource("sizes")
    void softmaxOfAllMinusInfinityIsZeros(int n) {
        float[] x = new float[n];
        Arrays.fill(x, Float.NEGATIVE_INFINITY);
        float[] y = x.clone();
        Kernels.softmax(y, 0, n);
        assertThat(y).containsOnly(0f);
        assertThat(Kernels.logSumExp(x, 0, n)).isEqualTo(Float.NEGATIVE_INFINITY);
        assertThat(ScalarKernels.logSumExp(x, 0, n)).isEqualTo(Float.NEGATIVE_INFINITY);
    }

    @Test
    void softmaxWithMaskedEntriesGivesThemZero() {
        float[] x = new float[37];
        for (int i = 0; i < x.length; i++) x[i] = i % 3 == 0 ? Float.NEGATIVE_INFINITY : i * 0.1f;
        Kernels.softmax(x, 0, x.length);
        for (int i = 0; i < x.length; i++) {
            if (i % 3 == 0) assertThat(x[i]).isZero();
            else assertThat(x[i]).isPositive();
        }
        assertThat(sum(x, 0, x.length)).isCloseTo(1.0, within(1e-5));
    }

    @ParameterizedTest
    @MethodSource("sizes")
    void hugeValuesStayFinite(int n) {
        SplittableRandom r = new SplittableRandom(500 + n);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (r.nextDouble(-1, 1) * 1e30);
        float m = ScalarKernels.max(x, 0, n);
        float lse = Kernels.logSumExp(x, 0, n);
        // the max dominates: lse = m + log(count of near-max terms), relative to 1e30 that is m
        assertThat(Float.isFinite(lse)).isTrue();
        assertThat((double) lse).isCloseTo(m, within(Math.abs(m) * 1e-6 + 10));
        float[] y = x.clone();
        Kernels.softmax(y, 0, n);
        for (float v : y) assertThat(Float.isFinite(v)).isTrue();
        assertThat(sum(y, 0, n)).isCloseTo(1.0, within(1e-5));
        float[] big = {3e38f, 3e38f, -3e38f};
        assertThat(Float.isFinite(Kernels.logSumExp(big, 0, 3))).isTrue();
        Kernels.softmax(big, 0, 3);
        assertThat(big).containsExactly(0.5f, 0.5f, 0f);
    }

    @Test
    void logSumExpAtLargeMagnitudeMatchesShiftedComputation() {
        // lse(x + c) = lse(x) + c; at c = 1e30 the float result must be c (to float precision), not inf/nan
        float[] x = {1e30f, 1e30f, 1e30f, 1e30f};
        assertThat(Kernels.logSumExp(x, 0, 4)).isEqualTo(1e30f);
        float[] y = {-1e30f, -1e30f, -2e30f};
        assertThat(Kernels.logSumExp(y, 0, 3)).isEqualTo(-1e30f);
        float[] z = {0f, (float) Math.log(3)};
        assertThat((double) Kernels.logSumExp(z, 0, 2)).isCloseTo(Math.log(4), within(1e-6));
    }

    @Test
    void crossEntropyIgnoresNegativeTargets() {
        int rows = 3, vocab = 50;
        float[] logits = random(new SplittableRandom(7), rows * vocab, -3, 3);
        int[] targets = {-1, 5, -100};
        float[] losses = {9, 9, 9};
        double total = Kernels.crossEntropyForward(losses, logits, targets, rows, vocab);
        assertThat(losses[0]).isZero();
        assertThat(losses[2]).isZero();
        assertThat(total).isCloseTo(losses[1], within(1e-6));
        float[] d = new float[rows * vocab];
        Arrays.fill(d, 7f);
        Kernels.crossEntropyBackward(d, logits, targets, rows, vocab, 1f);
        for (int i = 0; i < vocab; i++) {
            assertThat(d[i]).isZero();
            assertThat(d[2 * vocab + i]).isZero();
        }
        // the gradient of a counted row sums to zero (softmax sums to one, minus the one-hot)
        assertThat(sum(d, vocab, vocab)).isCloseTo(0.0, within(1e-5));
    }

    @Test
    void crossEntropyOfConfidentCorrectPredictionIsNearZero() {
        float[] logits = {100f, 0f, -100f};
        float[] losses = new float[1];
        Kernels.crossEntropyForward(losses, logits, new int[]{0}, 1, 3);
        assertThat(losses[0]).isBetween(0f, 1e-30f);
        Kernels.crossEntropyForward(losses, logits, new int[]{2}, 1, 3);
        assertThat((double) losses[0]).isCloseTo(200.0, within(1e-3));
    }

    @Test
    void emptyRangesAreHarmless() {
        float[] x = {1, 2, 3};
        assertThat(Kernels.dot(x, 0, x, 0, 0)).isZero();
        assertThat(Kernels.sum(x, 1, 0)).isZero();
        assertThat(Kernels.max(x, 1, 0)).isEqualTo(Float.NEGATIVE_INFINITY);
        Kernels.axpy(2f, x, 0, x, 0, 0);
        assertThat(x).containsExactly(1, 2, 3);
    }

    // ---- helpers -----------------------------------------------------------------------------

    static double sum(float[] x, int o, int n) {
        double s = 0;
        for (int i = 0; i < n; i++) s += x[o + i];
        return s;
    }

    /** |a - b| ≤ rel · max(1, |b|) elementwise, NaN never equal. */
    static void assertCloseArrays(float[] a, float[] b, double rel) {
        assertThat(a).hasSameSizeAs(b);
        for (int i = 0; i < a.length; i++) {
            double tol = rel * Math.max(1.0, Math.abs(b[i]));
            if (!(Math.abs(a[i] - b[i]) <= tol) && !(a[i] == b[i])) {
                throw new AssertionError("index " + i + ": " + a[i] + " vs " + b[i] + " (tolerance " + tol + ")");
            }
        }
    }

    /** Every one of the 65,536 half-precision values (zeros, subnormals, infinities, NaNs) widens to Float.float16ToFloat's bits, at offsets and a length that leaves a tail. */
    @org.junit.jupiter.api.Test
    void widenHalfIsFloat16ToFloatForEveryHalf() {
        int n = 65536;
        short[] h = new short[n + 7];
        for (int i = 0; i < n; i++) h[3 + i] = (short) i;
        float[] got = new float[n + 5], scalar = new float[n + 5];
        got[n + 2] = 42f;
        Kernels.widenHalf(h, 3, got, 2, n);
        ScalarKernels.widenHalf(h, 3, scalar, 2, n);
        for (int i = 0; i < n; i++) {
            int want = Float.floatToRawIntBits(Float.float16ToFloat((short) i));
            assertThat(Float.floatToRawIntBits(got[2 + i])).as("half 0x%04x", i).isEqualTo(want);
            assertThat(Float.floatToRawIntBits(scalar[2 + i])).as("scalar, half 0x%04x", i).isEqualTo(want);
        }
        assertThat(got[n + 2]).as("nothing written past n").isEqualTo(42f);
    }
}
