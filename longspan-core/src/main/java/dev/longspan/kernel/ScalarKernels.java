package dev.longspan.kernel;

/**
 * Plain scalar twins of every vector kernel: the obviously-correct reference the tests compare
 * against, and the implementation used when {@link Simd#ENABLED} is false. One function per
 * operation, forward and backward side by side; arrays are flat with explicit offsets and sizes.
 */
public final class ScalarKernels {
    private ScalarKernels() {}

    // ---- reductions and BLAS-1 -------------------------------------------------------------

    // a[ao..ao+n) · b[bo..bo+n)
    public static float dot(float[] a, int ao, float[] b, int bo, int n) {
        float s = 0f;
        for (int i = 0; i < n; i++) s += a[ao + i] * b[bo + i];
        return s;
    }

    // y[yo..yo+n) += alpha * x[xo..xo+n)
    public static void axpy(float alpha, float[] x, int xo, float[] y, int yo, int n) {
        for (int i = 0; i < n; i++) y[yo + i] += alpha * x[xo + i];
    }

    public static void axpyRows(float[] a, int ao, int n, float[] x, int[] xoff, float[] y, int yo, int d) {
        for (int j = 0; j < n; j++) axpy(a[ao + j], x, xoff[j], y, yo, d);
    }

    public static void widenHalf(short[] x, int xo, float[] y, int yo, int n) {
        for (int i = 0; i < n; i++) y[yo + i] = Float.float16ToFloat(x[xo + i]);
    }

    // x[xo..xo+n) *= alpha
    public static void scale(float alpha, float[] x, int xo, int n) {
        for (int i = 0; i < n; i++) x[xo + i] *= alpha;
    }

    public static float sum(float[] x, int xo, int n) {
        float s = 0f;
        for (int i = 0; i < n; i++) s += x[xo + i];
        return s;
    }

    // max of x[xo..xo+n); -inf for n == 0
    public static float max(float[] x, int xo, int n) {
        float m = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) m = Math.max(m, x[xo + i]);
        return m;
    }

    // ---- exp (the scalar twin of VectorMath.exp: the same operations, the same bits) --------

    static final float EXP_LO = -87.33654f, EXP_HI = 88.72283f;
    private static final float LOG2E = 1.44269504088896341f, LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f;
    private static final float C2 = 0.5f, C3 = 1.6666666e-1f, C4 = 4.1666638e-2f, C5 = 8.3333457e-3f, C6 = 1.3888378e-3f, C7 = 1.9841270e-4f;

    /** e^x in float: range reduction by ln2 and a degree-7 polynomial; deterministic at every JIT tier. */
    public static float exp(float x) {
        if (Float.isNaN(x)) return x;
        if (x < EXP_LO) return 0f;
        if (x > EXP_HI) return Float.POSITIVE_INFINITY;
        final float magic = 12582912f;
        float n = (x * LOG2E + magic) - magic;
        float r = Math.fma(n, -LN2_HI, x);
        r = Math.fma(n, -LN2_LO, r);
        float p = Math.fma(r, C7, C6);
        p = Math.fma(p, r, C5);
        p = Math.fma(p, r, C4);
        p = Math.fma(p, r, C3);
        p = Math.fma(p, r, C2);
        p = Math.fma(p, r, 1f);
        p = Math.fma(p, r, 1f);
        int ni = (int) n;
        int n1 = ni >> 1, n2 = ni - n1;
        return p * Float.intBitsToFloat((n1 + 127) << 23) * Float.intBitsToFloat((n2 + 127) << 23);
    }

    // ---- softmax family ----------------------------------------------------------------------

    // log(sum(exp(x))) computed as m + log(sum(exp(x - m))); -inf when every element is -inf
    public static float logSumExp(float[] x, int xo, int n) {
        float m = max(x, xo, n);
        if (m == Float.NEGATIVE_INFINITY) return m;
        if (m == Float.POSITIVE_INFINITY) return m;
        float s = 0f;
        for (int i = 0; i < n; i++) s += (float) Math.exp(x[xo + i] - m);
        return m + (float) Math.log(s);
    }

    // x[xo..xo+n) = softmax(x) in place; a row of all -inf becomes all zeros
    public static void softmax(float[] x, int xo, int n) {
        float m = max(x, xo, n);
        if (m == Float.NEGATIVE_INFINITY) {
            java.util.Arrays.fill(x, xo, xo + n, 0f);
            return;
        }
        float s = 0f;
        for (int i = 0; i < n; i++) {
            float e = (float) Math.exp(x[xo + i] - m);
            x[xo + i] = e;
            s += e;
        }
        float inv = 1f / s;
        for (int i = 0; i < n; i++) x[xo + i] *= inv;
    }

    // ---- RMSNorm -----------------------------------------------------------------------------

    // out, x: [rows, dim], w: [dim], rstd: [rows] (saved for backward)
    // out[r,i] = x[r,i] * rstd[r] * w[i],  rstd[r] = 1 / sqrt(mean_i x[r,i]^2 + eps)
    public static void rmsnormForward(float[] out, float[] rstd, float[] x, float[] w, int rows, int dim, float eps) {
        rmsnormForward(out, 0, rstd, x, 0, w, 0, rows, dim, eps);
    }

    // as above with out at oo, x at xo and w at wo (a norm weight read in place from a parameter array)
    public static void rmsnormForward(float[] out, int oo, float[] rstd, float[] x, int xo, float[] w, int wo, int rows, int dim, float eps) {
        rmsnormForward(out, oo, rstd, x, xo, w, wo, 0, rows, dim, eps);
    }

    // rows [r0, r1)
    static void rmsnormForward(float[] out, int oo, float[] rstd, float[] x, int xo, float[] w, int wo, int r0, int r1, int dim, float eps) {
        for (int r = r0; r < r1; r++) {
            int o = xo + r * dim, y = oo + r * dim;
            float ss = 0f;
            for (int i = 0; i < dim; i++) ss += x[o + i] * x[o + i];
            float s = (float) (1.0 / Math.sqrt(ss / dim + eps));
            rstd[r] = s;
            for (int i = 0; i < dim; i++) out[y + i] = x[o + i] * s * w[wo + i];
        }
    }

    // dx (+=), dw (+=): gradients of rmsnormForward given dout (dx must not alias dout or x)
    // dx[i] += rstd*w[i]*dout[i] - rstd^3/dim * x[i] * sum_j(w[j]*dout[j]*x[j]);  dw[i] += dout[i]*x[i]*rstd
    public static void rmsnormBackward(float[] dx, float[] dw, float[] dout, float[] x, float[] w, float[] rstd, int rows, int dim) {
        rmsnormBackward(dx, dw, dout, x, w, 0, rstd, rows, dim);
    }

    // as above with w at wo
    public static void rmsnormBackward(float[] dx, float[] dw, float[] dout, float[] x, float[] w, int wo, float[] rstd, int rows, int dim) {
        rmsnormBackward(dx, dout, x, w, wo, rstd, 0, rows, dim);
        rmsnormWeightGrad(dw, dout, x, rstd, rows, dim, 0, dim);
    }

    // dx (+=) of rows [r0, r1)
    static void rmsnormBackward(float[] dx, float[] dout, float[] x, float[] w, int wo, float[] rstd, int r0, int r1, int dim) {
        for (int r = r0; r < r1; r++) {
            int o = r * dim;
            float s = rstd[r];
            float c = 0f;
            for (int i = 0; i < dim; i++) c += w[wo + i] * dout[o + i] * x[o + i];
            float k = s * s * s * c / dim;
            for (int i = 0; i < dim; i++) dx[o + i] += s * w[wo + i] * dout[o + i] - k * x[o + i];
        }
    }

    // dw[i] += Σ_r dout[r, i]·x[r, i]·rstd[r] for columns [i0, i1), rows in order
    static void rmsnormWeightGrad(float[] dw, float[] dout, float[] x, float[] rstd, int rows, int dim, int i0, int i1) {
        for (int i = i0; i < i1; i++) {
            float acc = dw[i];
            for (int r = 0, o = i; r < rows; r++, o += dim) acc += dout[o] * x[o] * rstd[r];
            dw[i] = acc;
        }
    }

    // ---- activations -------------------------------------------------------------------------

    static float sigmoid(float x) { return (float) (1.0 / (1.0 + Math.exp(-x))); }

    // out = silu(x) = x * sigmoid(x), n elements
    public static void siluForward(float[] out, float[] x, int n) {
        for (int i = 0; i < n; i++) out[i] = x[i] * sigmoid(x[i]);
    }

    // dx += dout * silu'(x),  silu'(x) = s * (1 + x * (1 - s)), s = sigmoid(x)
    public static void siluBackward(float[] dx, float[] dout, float[] x, int n) {
        for (int i = 0; i < n; i++) {
            float s = sigmoid(x[i]);
            dx[i] += dout[i] * s * (1f + x[i] * (1f - s));
        }
    }

    // out = silu(gate) * up, n elements (the SwiGLU hidden state)
    public static void swigluForward(float[] out, float[] gate, float[] up, int n) {
        swigluForward(out, gate, up, 0, n);
    }

    // elements [from, to)
    static void swigluForward(float[] out, float[] gate, float[] up, int from, int to) {
        for (int i = from; i < to; i++) out[i] = gate[i] * sigmoid(gate[i]) * up[i];
    }

    // dgate, dup (overwritten): gradients of swigluForward given dout
    public static void swigluBackward(float[] dgate, float[] dup, float[] dout, float[] gate, float[] up, int n) {
        swigluBackward(dgate, dup, dout, gate, up, 0, n);
    }

    // elements [from, to)
    static void swigluBackward(float[] dgate, float[] dup, float[] dout, float[] gate, float[] up, int from, int to) {
        for (int i = from; i < to; i++) {
            float g = gate[i];
            float s = sigmoid(g);
            float silu = g * s;
            dup[i] = dout[i] * silu;
            dgate[i] = dout[i] * up[i] * s * (1f + g * (1f - s));
        }
    }

    // ---- cross-entropy -----------------------------------------------------------------------

    // logits: [rows, vocab], targets: [rows] (a negative target is ignored), losses: [rows]
    // losses[r] = logsumexp(logits[r]) - logits[r, targets[r]]; returns the sum over counted rows
    public static double crossEntropyForward(float[] losses, float[] logits, int[] targets, int rows, int vocab) {
        crossEntropyForward(losses, logits, targets, 0, rows, vocab);
        return Kernels.countedLoss(losses, targets, rows);
    }

    // losses of rows [r0, r1) (0 where the target is negative)
    static void crossEntropyForward(float[] losses, float[] logits, int[] targets, int r0, int r1, int vocab) {
        for (int r = r0; r < r1; r++) {
            int t = targets[r];
            losses[r] = t < 0 ? 0f : logSumExp(logits, r * vocab, vocab) - logits[r * vocab + t];
        }
    }

    // dlogits[r] = scale * (softmax(logits[r]) - onehot(targets[r])); rows with a negative target get 0
    public static void crossEntropyBackward(float[] dlogits, float[] logits, int[] targets, int rows, int vocab, float scale) {
        crossEntropyBackward(dlogits, logits, targets, 0, rows, vocab, scale);
    }

    // rows [r0, r1)
    static void crossEntropyBackward(float[] dlogits, float[] logits, int[] targets, int r0, int r1, int vocab, float scale) {
        for (int r = r0; r < r1; r++) {
            int o = r * vocab;
            int t = targets[r];
            if (t < 0) { java.util.Arrays.fill(dlogits, o, o + vocab, 0f); continue; }
            float lse = logSumExp(logits, o, vocab);
            for (int i = 0; i < vocab; i++) dlogits[o + i] = scale * (float) Math.exp(logits[o + i] - lse);
            dlogits[o + t] -= scale;
        }
    }
}
