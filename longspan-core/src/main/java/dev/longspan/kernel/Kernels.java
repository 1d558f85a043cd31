package dev.longspan.kernel;

import dev.longspan.tensor.Parallel;

/**
 * The kernels every layer uses, over flat float arrays with explicit offsets and sizes.
 * Each call goes to the Vector API body when {@link Simd#ENABLED}, else to its scalar twin in
 * {@link ScalarKernels} (which is also the reference the tests compare against). The branch is on
 * a static final and folds away after JIT compilation.
 */
public final class Kernels {
    private Kernels() {}

    /** a[ao..ao+n) · b[bo..bo+n). */
    public static float dot(float[] a, int ao, float[] b, int bo, int n) {
        return Simd.ENABLED ? VectorKernels.dot(a, ao, b, bo, n) : ScalarKernels.dot(a, ao, b, bo, n);
    }

    /** y[yo..yo+n) += alpha · x[xo..xo+n). */
    public static void axpy(float alpha, float[] x, int xo, float[] y, int yo, int n) {
        if (Simd.ENABLED) VectorKernels.axpy(alpha, x, xo, y, yo, n); else ScalarKernels.axpy(alpha, x, xo, y, yo, n);
    }

    /**
     * y[yo..yo+d) += Σ_j a[j]·x[xoff[j]..xoff[j]+d) for j &lt; n: the same result, bit for bit, as n
     * calls of {@link #axpy} in order, with the output row kept in registers (a decoding step's
     * attention weights times its value rows).
     */
    public static void axpyRows(float[] a, int ao, int n, float[] x, int[] xoff, float[] y, int yo, int d) {
        if (Simd.ENABLED) VectorKernels.axpyRows(a, ao, n, x, xoff, y, yo, d); else ScalarKernels.axpyRows(a, ao, n, x, xoff, y, yo, d);
    }

    /** y[yo..yo+n) = the IEEE half-precision values x[xo..xo+n) widened to float (exactly, as {@link Float#float16ToFloat}). */
    public static void widenHalf(short[] x, int xo, float[] y, int yo, int n) {
        if (Simd.ENABLED) VectorKernels.widenHalf(x, xo, y, yo, n); else ScalarKernels.widenHalf(x, xo, y, yo, n);
    }

    /** x[xo..xo+n) *= alpha. */
    public static void scale(float alpha, float[] x, int xo, int n) {
        if (Simd.ENABLED) VectorKernels.scale(alpha, x, xo, n); else ScalarKernels.scale(alpha, x, xo, n);
    }

    public static float sum(float[] x, int xo, int n) {
        return Simd.ENABLED ? VectorKernels.sum(x, xo, n) : ScalarKernels.sum(x, xo, n);
    }

    /** Maximum of x[xo..xo+n); -inf when n is 0. */
    public static float max(float[] x, int xo, int n) {
        return Simd.ENABLED ? VectorKernels.max(x, xo, n) : ScalarKernels.max(x, xo, n);
    }

    /** log Σ exp(x), stable; -inf for an all -inf row. */
    public static float logSumExp(float[] x, int xo, int n) {
        return Simd.ENABLED ? VectorKernels.logSumExp(x, xo, n) : ScalarKernels.logSumExp(x, xo, n);
    }

    /** In-place softmax of x[xo..xo+n); an all -inf row becomes zeros. */
    public static void softmax(float[] x, int xo, int n) {
        if (Simd.ENABLED) VectorKernels.softmax(x, xo, n); else ScalarKernels.softmax(x, xo, n);
    }

    // out, x: [rows, dim], w: [dim], rstd: [rows]
    public static void rmsnormForward(float[] out, float[] rstd, float[] x, float[] w, int rows, int dim, float eps) {
        rmsnormForward(out, 0, rstd, x, 0, w, 0, rows, dim, eps);
    }

    /**
     * RMSNorm of rows x[xo..xo+rows·dim) into out at oo with the weight w[wo..wo+dim), which is read
     * in place (a norm weight inside a parameter array needs no copy); rstd[0..rows) is saved for
     * backward.
     */
    public static void rmsnormForward(float[] out, int oo, float[] rstd, float[] x, int xo, float[] w, int wo, int rows, int dim, float eps) {
        rowChunks(rows, dim, (r0, r1) -> {
            if (Simd.ENABLED) VectorKernels.rmsnormForward(out, oo, rstd, x, xo, w, wo, r0, r1, dim, eps);
            else ScalarKernels.rmsnormForward(out, oo, rstd, x, xo, w, wo, r0, r1, dim, eps);
        });
    }

    // dx += ..., dw += ...; dout, x: [rows, dim]
    public static void rmsnormBackward(float[] dx, float[] dw, float[] dout, float[] x, float[] w, float[] rstd, int rows, int dim) {
        rmsnormBackward(dx, dw, dout, x, w, 0, rstd, rows, dim);
    }

    /**
     * Backward of {@link #rmsnormForward} with the weight at w[wo..wo+dim): dx (+=) [rows, dim], dw
     * (+=) [dim]; dx must not alias dout or x. dx goes by rows and dw by columns (each column summed
     * over the rows in order), so the bits do not depend on the thread count.
     */
    public static void rmsnormBackward(float[] dx, float[] dw, float[] dout, float[] x, float[] w, int wo, float[] rstd, int rows, int dim) {
        rowChunks(rows, dim, (r0, r1) -> {
            if (Simd.ENABLED) VectorKernels.rmsnormBackward(dx, dout, x, w, wo, rstd, r0, r1, dim);
            else ScalarKernels.rmsnormBackward(dx, dout, x, w, wo, rstd, r0, r1, dim);
        });
        elementChunks(dim, rows, (i0, i1) -> {
            if (Simd.ENABLED) VectorKernels.rmsnormWeightGrad(dw, dout, x, rstd, rows, dim, i0, i1);
            else ScalarKernels.rmsnormWeightGrad(dw, dout, x, rstd, rows, dim, i0, i1);
        });
    }

    public static void siluForward(float[] out, float[] x, int n) {
        if (Simd.ENABLED) VectorKernels.siluForward(out, x, n); else ScalarKernels.siluForward(out, x, n);
    }

    public static void siluBackward(float[] dx, float[] dout, float[] x, int n) {
        if (Simd.ENABLED) VectorKernels.siluBackward(dx, dout, x, n); else ScalarKernels.siluBackward(dx, dout, x, n);
    }

    public static void swigluForward(float[] out, float[] gate, float[] up, int n) {
        elementChunks(n, 1, (from, to) -> {
            if (Simd.ENABLED) VectorKernels.swigluForward(out, gate, up, from, to); else ScalarKernels.swigluForward(out, gate, up, from, to);
        });
    }

    public static void swigluBackward(float[] dgate, float[] dup, float[] dout, float[] gate, float[] up, int n) {
        elementChunks(n, 1, (from, to) -> {
            if (Simd.ENABLED) VectorKernels.swigluBackward(dgate, dup, dout, gate, up, from, to);
            else ScalarKernels.swigluBackward(dgate, dup, dout, gate, up, from, to);
        });
    }

    // logits: [rows, vocab]; returns the summed loss over rows whose target is ≥ 0
    public static double crossEntropyForward(float[] losses, float[] logits, int[] targets, int rows, int vocab) {
        rowChunks(rows, vocab, (r0, r1) -> {
            if (Simd.ENABLED) VectorKernels.crossEntropyForward(losses, logits, targets, r0, r1, vocab);
            else ScalarKernels.crossEntropyForward(losses, logits, targets, r0, r1, vocab);
        });
        return countedLoss(losses, targets, rows);
    }

    // Σ losses[r] over rows whose target is ≥ 0, in row order, in double
    static double countedLoss(float[] losses, int[] targets, int rows) {
        double total = 0;
        for (int r = 0; r < rows; r++) if (targets[r] >= 0) total += losses[r];
        return total;
    }

    public static void crossEntropyBackward(float[] dlogits, float[] logits, int[] targets, int rows, int vocab, float scale) {
        rowChunks(rows, vocab, (r0, r1) -> {
            if (Simd.ENABLED) VectorKernels.crossEntropyBackward(dlogits, logits, targets, r0, r1, vocab, scale);
            else ScalarKernels.crossEntropyBackward(dlogits, logits, targets, r0, r1, vocab, scale);
        });
    }

    // ---- splitting the row-wise and element-wise kernels over threads ---------------------------

    /** Below this many floats of work a row-wise or element-wise kernel stays on the calling thread. */
    private static final int PARALLEL_FLOATS = 1 << 15;

    // rows [0, rows) of `width` floats each, in contiguous chunks over the threads (one chunk on
    // the calling thread when small); every row is computed exactly as in one call over all rows
    private static void rowChunks(int rows, int width, Parallel.RangeBody body) {
        if ((long) rows * width < PARALLEL_FLOATS || Parallel.threads() == 1) body.run(0, rows);
        else Parallel.forChunks(0, rows, 1, (c, r0, r1) -> body.run(r0, r1));
    }

    // elements [0, n), each costing about `weight` floats of work, in chunks whose bounds are
    // multiples of 64: every element then takes the same vector-body or scalar-tail path as in one
    // call over [0, n), so the bits do not depend on the thread count
    private static void elementChunks(int n, int weight, Parallel.RangeBody body) {
        int blocks = (n + 63) / 64;
        if ((long) n * weight < PARALLEL_FLOATS || Parallel.threads() == 1 || blocks < 2) body.run(0, n);
        else Parallel.forChunks(0, blocks, 1, (c, b0, b1) -> body.run(b0 * 64, Math.min(n, b1 * 64)));
    }
}
