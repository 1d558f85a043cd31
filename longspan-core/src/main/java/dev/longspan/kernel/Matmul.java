package dev.longspan.kernel;

import dev.longspan.tensor.Parallel;

/**
 * Matrix products in the shapes a transformer needs, over row-major flat arrays with offsets.
 * <pre>
 *   abT: C[M,N] (= or +=) A[M,K] · B[N,K]ᵀ   (linear layer forward: y = x·Wᵀ; attention scores Q·Kᵀ)
 *   ab : C[M,N] (= or +=) A[M,K] · B[K,N]    (input gradient: dx = dy·W; attention P·V)
 *   atB: C[M,N] (= or +=) A[K,M]ᵀ · B[K,N]   (weight gradient: dW += dyᵀ·x)
 * </pre>
 * With {@link Simd#ENABLED} the blocked, register-tiled Vector API GEMM in {@link VectorMatmul}
 * runs (parallel over blocks of C); otherwise a plain scalar loop parallel over rows of C.
 * Scalar references for tests: {@link #abTReference} and friends (double accumulation).
 */
public final class Matmul {
    private Matmul() {}

    // c: [m, n], a: [m, k], b: [n, k]
    public static void abT(float[] c, int co, float[] a, int ao, float[] b, int bo, int m, int n, int k, boolean accumulate) {
        if (Simd.ENABLED) VectorMatmul.gemm(c, co, a, ao, false, b, bo, true, m, n, k, accumulate);
        else scalarAbT(c, co, a, ao, b, bo, m, n, k, accumulate);
    }

    // c: [m, n], a: [m, k], b: [k, n]
    public static void ab(float[] c, int co, float[] a, int ao, float[] b, int bo, int m, int n, int k, boolean accumulate) {
        if (Simd.ENABLED) VectorMatmul.gemm(c, co, a, ao, false, b, bo, false, m, n, k, accumulate);
        else scalarAb(c, co, a, ao, b, bo, m, n, k, accumulate);
    }

    // c: [m, n], a: [k, m], b: [k, n]
    public static void atB(float[] c, int co, float[] a, int ao, float[] b, int bo, int m, int n, int k, boolean accumulate) {
        if (Simd.ENABLED) VectorMatmul.gemm(c, co, a, ao, true, b, bo, false, m, n, k, accumulate);
        else scalarAtB(c, co, a, ao, b, bo, m, n, k, accumulate);
    }

    // ---- plain scalar paths (used when Simd.ENABLED is false): rows of C in parallel ----------

    static void scalarAbT(float[] c, int co, float[] a, int ao, float[] b, int bo, int m, int n, int k, boolean accumulate) {
        Parallel.forChunks(0, m, 4, (chunk, r0, r1) -> {
            for (int i = r0; i < r1; i++) {
                int ci = co + i * n;
                int ai = ao + i * k;
                for (int j = 0; j < n; j++) {
                    float d = ScalarKernels.dot(a, ai, b, bo + j * k, k);
                    c[ci + j] = accumulate ? c[ci + j] + d : d;
                }
            }
        });
    }

    static void scalarAb(float[] c, int co, float[] a, int ao, float[] b, int bo, int m, int n, int k, boolean accumulate) {
        Parallel.forChunks(0, m, 4, (chunk, r0, r1) -> {
            for (int i = r0; i < r1; i++) {
                int ci = co + i * n;
                if (!accumulate) java.util.Arrays.fill(c, ci, ci + n, 0f);
                for (int p = 0; p < k; p++) ScalarKernels.axpy(a[ao + i * k + p], b, bo + p * n, c, ci, n);
            }
        });
    }

    static void scalarAtB(float[] c, int co, float[] a, int ao, float[] b, int bo, int m, int n, int k, boolean accumulate) {
        Parallel.forChunks(0, m, 4, (chunk, r0, r1) -> {
            for (int i = r0; i < r1; i++) {
                int ci = co + i * n;
                if (!accumulate) java.util.Arrays.fill(c, ci, ci + n, 0f);
                for (int p = 0; p < k; p++) ScalarKernels.axpy(a[ao + p * m + i], b, bo + p * n, c, ci, n);
            }
        });
    }

    // ---- scalar references (obviously correct, double accumulation) --------------------------

    public static void abTReference(float[] c, int co, float[] a, int ao, float[] b, int bo, int m, int n, int k, boolean accumulate) {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                double s = accumulate ? c[co + i * n + j] : 0;
                for (int p = 0; p < k; p++) s += (double) a[ao + i * k + p] * b[bo + j * k + p];
                c[co + i * n + j] = (float) s;
            }
    }

    public static void abReference(float[] c, int co, float[] a, int ao, float[] b, int bo, int m, int n, int k, boolean accumulate) {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                double s = accumulate ? c[co + i * n + j] : 0;
                for (int p = 0; p < k; p++) s += (double) a[ao + i * k + p] * b[bo + p * n + j];
                c[co + i * n + j] = (float) s;
            }
    }

    public static void atBReference(float[] c, int co, float[] a, int ao, float[] b, int bo, int m, int n, int k, boolean accumulate) {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                double s = accumulate ? c[co + i * n + j] : 0;
                for (int p = 0; p < k; p++) s += (double) a[ao + p * m + i] * b[bo + p * n + j];
                c[co + i * n + j] = (float) s;
            }
    }
}
