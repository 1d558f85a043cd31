package dev.longspan.kernel;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.SplittableRandom;
import java.util.function.ToDoubleFunction;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Backward kernels against central finite differences of a double-precision forward. The loss is
 * L = Σ g · forward(x) for a fixed random g, so dL/dx is exactly what the backward kernels return
 * when given dout = g. Checked for the Kernels facade (SIMD) and the scalar twins alike.
 */
class KernelGradientTest {
    static final double H = 1e-5;

    static double[] fd(double[] x, ToDoubleFunction<double[]> loss) {
        double[] g = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            double v = x[i];
            x[i] = v + H;
            double lp = loss.applyAsDouble(x);
            x[i] = v - H;
            double lm = loss.applyAsDouble(x);
            x[i] = v;
            g[i] = (lp - lm) / (2 * H);
        }
        return g;
    }

    static float[] f(double[] x) {
        float[] r = new float[x.length];
        for (int i = 0; i < x.length; i++) r[i] = (float) x[i];
        return r;
    }

    static double[] d(float[] x) {
        double[] r = new double[x.length];
        for (int i = 0; i < x.length; i++) r[i] = x[i];
        return r;
    }

    static double[] random(SplittableRandom r, int n, double lo, double hi) {
        double[] x = new double[n];
        // round to float so the float kernels see exactly the same inputs
        for (int i = 0; i < n; i++) x[i] = (float) r.nextDouble(lo, hi);
        return x;
    }

    static void assertGradient(float[] actual, double[] expected, String what) {
        double scale = 0;
        for (double e : expected) scale = Math.max(scale, Math.abs(e));
        for (int i = 0; i < expected.length; i++) {
            double tol = 2e-4 * Math.max(1, Math.abs(expected[i])) + 1e-4 * scale;
            assertThat((double) actual[i]).as("%s[%d]", what, i).isCloseTo(expected[i], org.assertj.core.api.Assertions.within(tol));
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 7, 16, 33})
    void rmsnorm(int dim) {
        SplittableRandom r = new SplittableRandom(dim);
        int rows = 3;
        double eps = 1e-5;
        double[] x = random(r, rows * dim, -2, 2), w = random(r, dim, 0.5, 1.5), g = random(r, rows * dim, -1, 1);
        ToDoubleFunction<double[]> lossX = xs -> rmsLoss(xs, w, g, rows, dim, eps);
        ToDoubleFunction<double[]> lossW = ws -> rmsLoss(x, ws, g, rows, dim, eps);
        double[] dxRef = fd(x, lossX), dwRef = fd(w, lossW);
        for (boolean simd : new boolean[]{true, false}) {
            float[] out = new float[rows * dim], rstd = new float[rows];
            float[] dx = new float[rows * dim], dw = new float[dim];
            if (simd) {
                Kernels.rmsnormForward(out, rstd, f(x), f(w), rows, dim, (float) eps);
                Kernels.rmsnormBackward(dx, dw, f(g), f(x), f(w), rstd, rows, dim);
            } else {
                ScalarKernels.rmsnormForward(out, rstd, f(x), f(w), rows, dim, (float) eps);
                ScalarKernels.rmsnormBackward(dx, dw, f(g), f(x), f(w), rstd, rows, dim);
            }
            assertGradient(dx, dxRef, "dx simd=" + simd);
            assertGradient(dw, dwRef, "dw simd=" + simd);
        }
    }

    static double rmsLoss(double[] x, double[] w, double[] g, int rows, int dim, double eps) {
        double l = 0;
        for (int r = 0; r < rows; r++) {
            double ss = 0;
            for (int i = 0; i < dim; i++) ss += x[r * dim + i] * x[r * dim + i];
            double s = 1 / Math.sqrt(ss / dim + eps);
            for (int i = 0; i < dim; i++) l += g[r * dim + i] * x[r * dim + i] * s * w[i];
        }
        return l;
    }

    static double silu(double v) { return v / (1 + Math.exp(-v)); }

    @ParameterizedTest
    @ValueSource(ints = {1, 17, 40})
    void siluAndSwiglu(int n) {
        SplittableRandom r = new SplittableRandom(50 + n);
        double[] x = random(r, n, -6, 6), up = random(r, n, -2, 2), g = random(r, n, -1, 1);
        double[] dxRef = fd(x, xs -> { double l = 0; for (int i = 0; i < n; i++) l += g[i] * silu(xs[i]); return l; });
        double[] dgRef = fd(x, xs -> { double l = 0; for (int i = 0; i < n; i++) l += g[i] * silu(xs[i]) * up[i]; return l; });
        double[] duRef = fd(up, us -> { double l = 0; for (int i = 0; i < n; i++) l += g[i] * silu(x[i]) * us[i]; return l; });
        for (boolean simd : new boolean[]{true, false}) {
            float[] dx = new float[n], dgate = new float[n], dup = new float[n];
            if (simd) {
                Kernels.siluBackward(dx, f(g), f(x), n);
                Kernels.swigluBackward(dgate, dup, f(g), f(x), f(up), n);
            } else {
                ScalarKernels.siluBackward(dx, f(g), f(x), n);
                ScalarKernels.swigluBackward(dgate, dup, f(g), f(x), f(up), n);
            }
            assertGradient(dx, dxRef, "silu dx simd=" + simd);
            assertGradient(dgate, dgRef, "swiglu dgate simd=" + simd);
            assertGradient(dup, duRef, "swiglu dup simd=" + simd);
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {2, 17, 100})
    void crossEntropy(int vocab) {
        SplittableRandom r = new SplittableRandom(80 + vocab);
        int rows = 3;
        float scale = 1f / 2; // mean over the two counted rows
        double[] logits = random(r, rows * vocab, -4, 4);
        int[] targets = {vocab - 1, -1, r.nextInt(vocab)};
        double[] ref = fd(logits, ls -> {
            double l = 0;
            for (int row = 0; row < rows; row++) {
                if (targets[row] < 0) continue;
                double m = Double.NEGATIVE_INFINITY, s = 0;
                for (int i = 0; i < vocab; i++) m = Math.max(m, ls[row * vocab + i]);
                for (int i = 0; i < vocab; i++) s += Math.exp(ls[row * vocab + i] - m);
                l += m + Math.log(s) - ls[row * vocab + targets[row]];
            }
            return l * scale;
        });
        for (boolean simd : new boolean[]{true, false}) {
            float[] dl = new float[rows * vocab];
            if (simd) Kernels.crossEntropyBackward(dl, f(logits), targets, rows, vocab, scale);
            else ScalarKernels.crossEntropyBackward(dl, f(logits), targets, rows, vocab, scale);
            assertGradient(dl, ref, "dlogits simd=" + simd);
        }
    }
}
