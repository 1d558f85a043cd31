package dev.longspan.attention;

import static dev.longspan.attention.TileOps.QB;

/** Plain-loop twins of {@code VectorTileOps}: the same layouts and results up to float rounding. */
final class ScalarTileOps {
    private ScalarTileOps() {}

    static void scores(float[] st, float[] x, int[] xoff, int nk, float[] yt, int d) {
        for (int j = 0; j < nk; j++) {
            int xo = xoff[j], so = j * QB;
            for (int i = 0; i < QB; i++) st[so + i] = 0f;
            for (int c = 0; c < d; c++) {
                float xv = x[xo + c];
                int yo = c * QB;
                for (int i = 0; i < QB; i++) st[so + i] += xv * yt[yo + i];
            }
        }
    }

    static void accumulate(float[] ct, float[] x, int[] xoff, int nk, float[] p, int d) {
        for (int j = 0; j < nk; j++) {
            int xo = xoff[j], po = j * QB;
            for (int c = 0; c < d; c++) {
                float xv = x[xo + c];
                int co = c * QB;
                for (int i = 0; i < QB; i++) ct[co + i] += xv * p[po + i];
            }
        }
    }

    static void scores(float[] st, float[] x, int[] xoff, int j0, int j1, float[] yt, int d, int q0, int q1) {
        for (int j = j0; j < j1; j++) {
            int xo = xoff[j], so = j * QB;
            for (int i = q0; i < q1; i++) st[so + i] = 0f;
            for (int c = 0; c < d; c++) {
                float xv = x[xo + c];
                int yo = c * QB;
                for (int i = q0; i < q1; i++) st[so + i] += xv * yt[yo + i];
            }
        }
    }

    static void accumulate(float[] ct, float[] x, int[] xoff, int j0, int j1, float[] p, int d, int q0, int q1) {
        for (int j = j0; j < j1; j++) {
            int xo = xoff[j], po = j * QB;
            for (int c = 0; c < d; c++) {
                float xv = x[xo + c];
                int co = c * QB;
                for (int i = q0; i < q1; i++) ct[co + i] += xv * p[po + i];
            }
        }
    }

    static void online(float[] st, int nk, float[] m, float[] l, float[] ot, int d, float[] tmp) {
        online(st, nk, m, l, ot, d, tmp, nk, null, null);
    }

    static void online(float[] st, int nk, float[] m, float[] l, float[] ot, int d, float[] tmp, int slice, int[] hullLo, int[] hullHi) {
        for (int i = 0; i < QB; i++) {
            float mx = Float.NEGATIVE_INFINITY;
            for (int j0 = 0, sl = 0; j0 < nk; j0 += slice, sl++) {
                if (hullLo != null && (i < hullLo[sl] || i >= hullHi[sl])) continue;
                for (int j = j0; j < Math.min(nk, j0 + slice); j++) mx = Math.max(mx, st[j * QB + i]);
            }
            float mNew = Math.max(m[i], mx);
            // a row with no visible key so far keeps m = -inf; exp against 0 then gives exact zeros
            float mUse = mNew == Float.NEGATIVE_INFINITY ? 0f : mNew;
            float alpha = (float) Math.exp(m[i] - mUse);
            float sum = 0f;
            for (int j0 = 0, sl = 0; j0 < nk; j0 += slice, sl++) {
                if (hullLo != null && (i < hullLo[sl] || i >= hullHi[sl])) continue;
                for (int j = j0; j < Math.min(nk, j0 + slice); j++) {
                    float p = (float) Math.exp(st[j * QB + i] - mUse);
                    st[j * QB + i] = p;
                    sum += p;
                }
            }
            l[i] = l[i] * alpha + sum;
            m[i] = mNew;
            if (alpha != 1f) for (int c = 0; c < d; c++) ot[c * QB + i] *= alpha;
        }
    }

    static void rowScores(float[] out, int oo, float[] q, int qo, float[] x, int[] xoff, int n, int d) {
        for (int j = 0; j < n; j++) out[oo + j] = dev.longspan.kernel.ScalarKernels.dot(q, qo, x, xoff[j], d);
    }

    static void groupScores(float[] out, int stride, float[] q, int g, float[] x, int[] xoff, int n, int d) {
        for (int i = 0; i < g; i++)
            for (int j = 0; j < n; j++) out[i * stride + j] = dev.longspan.kernel.ScalarKernels.dot(q, i * d, x, xoff[j], d);
    }

    static void groupAxpy(float[] p, int stride, int g, int n, float[] x, int[] xoff, float[] y, int d) {
        for (int i = 0; i < g; i++) dev.longspan.kernel.ScalarKernels.axpyRows(p, i * stride, n, x, xoff, y, i * d, d);
    }

    static void rowGradients(float[] p, float[] ds, int n, float[] dO, float[] q, int ro, float[] k, int[] koff,
                             int[] to, float[] dv, float[] dk, float[] dq, int d) {
        for (int j = 0; j < n; j++) {
            float pj = p[j], sj = ds[j];
            int t = to[j], o = koff[j];
            for (int c = 0; c < d; c++) dv[t + c] += pj * dO[ro + c];
            for (int c = 0; c < d; c++) dk[t + c] += sj * q[ro + c];
            for (int c = 0; c < d; c++) dq[c] += sj * k[o + c];
        }
    }

    static void rowDots(float[] out, float[] x, int xo, float[] yt, int yo, int stride, int n, int d) {
        for (int j = 0; j < n; j++) {
            float acc = 0f;
            for (int c = 0; c < d; c++) acc += x[xo + c] * yt[yo + c * stride + j];
            out[j] = acc;
        }
    }

    static float expShift(float[] x, int xo, int n, float m) {
        float sum = 0f;
        for (int j = 0; j < n; j++) {
            float e = (float) Math.exp(x[xo + j] - m);
            x[xo + j] = e;
            sum += e;
        }
        return sum;
    }

    static void probs(float[] st, int nk, float[] lse, int nq) {
        for (int j = 0; j < nk; j++)
            for (int i = 0; i < nq; i++) st[j * QB + i] = (float) Math.exp(st[j * QB + i] - lse[i]);
    }

    static void dsoft(float[] dst, float[] p, int nk, float[] delta, int nq) {
        for (int j = 0; j < nk; j++)
            for (int i = 0; i < nq; i++) dst[j * QB + i] = p[j * QB + i] * (dst[j * QB + i] - delta[i]);
    }

    static void rows(float[] c, float[] a, int nk, float[] b, int dp, int nq) {
        for (int j = 0; j < nk; j++) {
            int co = j * dp;
            for (int e = 0; e < dp; e++) c[co + e] = 0f;
            for (int i = 0; i < nq; i++) {
                float av = a[j * QB + i];
                if (av == 0f) continue;
                int bo = i * dp;
                for (int e = 0; e < dp; e++) c[co + e] += av * b[bo + e];
            }
        }
    }

    static void gatherT(float[] qt, float[] x, int[] xoff, int n, int d, float scale) {
        for (int i = 0; i < QB; i++)
            for (int c = 0; c < d; c++) qt[c * QB + i] = i < n ? x[xoff[i] + c] * scale : 0f;
    }

    static void mergeT(float[] o, int[] ooff, int n, int d, float[] ot, float[] wa, float[] wb) {
        for (int i = 0; i < n; i++)
            for (int c = 0; c < d; c++) o[ooff[i] + c] = wa[i] * o[ooff[i] + c] + wb[i] * ot[c * QB + i];
    }
}
