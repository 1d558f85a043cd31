package dev.longspan.kernel;

import dev.longspan.tensor.Parallel;

/**
 * Matrix products in the shapes a transformer needs, over row-major flat arrays with offsets.
 * <pre>
 *   abT: C[M,N] (= or +=) A[M,K] · B[N,K]ᵀ   (linear layer forward: y = x·Wᵀ; attention scores Q·Kᵀ)
 *   ab : C[M,N] (= or +=) A[M,K] · B[K,N]    (input gradient: dx = dy·W; attention P·V)
 *   atB: C[M,N] (= or +=) A[K,M]ᵀ · B[K,N]   (weight gradient: dW += dyᵀ·x)
 * </pre>
 * Parallel across rows of C. Scalar references: {@link #abTReference} and friends.
 */
public final class Matmul {
    private Matmul() {}

    public static void abT(float[] c, int co, float[] a, int ao, float[] b, int bo, int m, int n, int k, boolean accumulate) {
        Parallel.forChunks(0, m, 4, (chunk, r0, r1) -> {
            for (int i = r0; i < r1; i++) {
                int ci = co + i * n;
                int ai = ao + i * k;
                for (int j = 0; j < n; j++) {
                    float d = Kernels.dot(a, ai, b, bo + j * k, k);
                    c[ci + j] = accumulate ? c[ci + j] + d : d;
                }
            }
        });
    }

    public static void ab(float[] c, int co, float[] a, int ao, float[] b, int bo, int m, int n, int k, boolean accumulate) {
        Parallel.forChunks(0, m, 4, (chunk, r0, r1) -> {
            for (int i = r0; i < r1; i++) {
                int ci = co + i * n;
                if (!accumulate) java.util.Arrays.fill(c, ci, ci + n, 0f);
                for (int p = 0; p < k; p++) Kernels.axpy(a[ao + i * k + p], b, bo + p * n, c, ci, n);
            }
        });
    }

    public static void atB(float[] c, int co, float[] a, int ao, float[] b, int bo, int m, int n, int k, boolean accumulate) {
        Parallel.forChunks(0, m, 4, (chunk, r0, r1) -> {
            for (int i = r0; i < r1; i++) {
                int ci = co + i * n;
                if (!accumulate) java.util.Arrays.fill(c, ci, ci + n, 0f);
                for (int p = 0; p < k; p++) Kernels.axpy(a[ao + p * m + i], b, bo + p * n, c, ci, n);
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
