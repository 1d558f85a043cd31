package dev.longspan.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API bodies of the kernels in {@link ScalarKernels}: same signatures, same results up to
 * float rounding. Each loop runs full vectors over the bulk and a scalar tail over the rest.
 * Only loaded when {@link Simd#ENABLED} is true.
 */
final class VectorKernels {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int L = S.length();
    // shorts and ints with the float species' lane count (half widening)
    private static final VectorSpecies<Short> SH = ShortVector.SPECIES_PREFERRED.withShape(VectorShape.forBitSize(16 * L)).check(short.class);
    private static final VectorSpecies<Integer> SI = IntVector.SPECIES_PREFERRED.withShape(S.vectorShape()).check(int.class);

    private VectorKernels() {}

    // ---- reductions and BLAS-1 -------------------------------------------------------------

    static float dot(float[] a, int ao, float[] b, int bo, int n) {
        int i = 0;
        // four independent accumulators hide the FMA latency
        FloatVector s0 = FloatVector.zero(S), s1 = FloatVector.zero(S), s2 = FloatVector.zero(S), s3 = FloatVector.zero(S);
        for (int bound = n - 4 * L; i <= bound; i += 4 * L) {
            s0 = FloatVector.fromArray(S, a, ao + i).fma(FloatVector.fromArray(S, b, bo + i), s0);
            s1 = FloatVector.fromArray(S, a, ao + i + L).fma(FloatVector.fromArray(S, b, bo + i + L), s1);
            s2 = FloatVector.fromArray(S, a, ao + i + 2 * L).fma(FloatVector.fromArray(S, b, bo + i + 2 * L), s2);
            s3 = FloatVector.fromArray(S, a, ao + i + 3 * L).fma(FloatVector.fromArray(S, b, bo + i + 3 * L), s3);
        }
        for (int bound = n - L; i <= bound; i += L) {
            s0 = FloatVector.fromArray(S, a, ao + i).fma(FloatVector.fromArray(S, b, bo + i), s0);
        }
        float s = VectorMath.sum(s0.add(s1).add(s2.add(s3)));
        for (; i < n; i++) s += a[ao + i] * b[bo + i];
        return s;
    }

    static void axpy(float alpha, float[] x, int xo, float[] y, int yo, int n) {
        int i = 0;
        FloatVector va = FloatVector.broadcast(S, alpha);
        for (int bound = n - L; i <= bound; i += L) {
            FloatVector.fromArray(S, x, xo + i).fma(va, FloatVector.fromArray(S, y, yo + i)).intoArray(y, yo + i);
        }
        for (; i < n; i++) y[yo + i] += alpha * x[xo + i];
    }

    // the output row held in registers across the rows (axpy per row reads and writes it each time);
    // per element the same fused multiply-adds in the same order as n calls of axpy
    static void axpyRows(float[] a, int ao, int n, float[] x, int[] xoff, float[] y, int yo, int d) {
        int i = 0;
        for (; i + 4 * L <= d; i += 4 * L) {
            FloatVector y0 = FloatVector.fromArray(S, y, yo + i), y1 = FloatVector.fromArray(S, y, yo + i + L);
            FloatVector y2 = FloatVector.fromArray(S, y, yo + i + 2 * L), y3 = FloatVector.fromArray(S, y, yo + i + 3 * L);
            for (int j = 0; j < n; j++) {
                FloatVector aj = FloatVector.broadcast(S, a[ao + j]);
                int xo = xoff[j] + i;
                y0 = FloatVector.fromArray(S, x, xo).fma(aj, y0);
                y1 = FloatVector.fromArray(S, x, xo + L).fma(aj, y1);
                y2 = FloatVector.fromArray(S, x, xo + 2 * L).fma(aj, y2);
                y3 = FloatVector.fromArray(S, x, xo + 3 * L).fma(aj, y3);
            }
            y0.intoArray(y, yo + i);
            y1.intoArray(y, yo + i + L);
            y2.intoArray(y, yo + i + 2 * L);
            y3.intoArray(y, yo + i + 3 * L);
        }
        for (; i + L <= d; i += L) {
            FloatVector y0 = FloatVector.fromArray(S, y, yo + i);
            for (int j = 0; j < n; j++) y0 = FloatVector.fromArray(S, x, xoff[j] + i).fma(FloatVector.broadcast(S, a[ao + j]), y0);
            y0.intoArray(y, yo + i);
        }
        for (; i < d; i++) {
            float s = y[yo + i];
            for (int j = 0; j < n; j++) s += a[ao + j] * x[xoff[j] + i];
            y[yo + i] = s;
        }
    }

    // half → float without a conversion instruction the Vector API exposes: the half's bits
    // sign-extended and shifted into a float's place, the sign's copies cleared from the exponent,
    // times 2^112 (exact for normal and subnormal halves); infinities and NaNs (half exponent 31)
    // get a float exponent of all ones instead (NaNs quieted)
    static void widenHalf(short[] x, int xo, float[] y, int yo, int n) {
        int i = 0;
        for (int bound = n - L; i <= bound; i += L) {
            IntVector h = (IntVector) ShortVector.fromArray(SH, x, xo + i).convertShape(VectorOperators.S2I, SI, 0);
            IntVector bits = h.lanewise(VectorOperators.LSHL, 13).and(0x8FFFE000);
            FloatVector f = bits.reinterpretAsFloats().mul(0x1p112f);
            VectorMask<Integer> special = h.and(0x7C00).compare(VectorOperators.EQ, 0x7C00);
            if (special.anyTrue()) {
                // all-ones exponent; a NaN also gets the quiet bit, as Float.float16ToFloat gives it
                IntVector quiet = ((IntVector) h.and(0x3FF).compare(VectorOperators.NE, 0).toVector()).and(0x00400000);
                f = f.blend(bits.or(0x7F800000).or(quiet).reinterpretAsFloats(), special.cast(S));
            }
            f.intoArray(y, yo + i);
        }
        for (; i < n; i++) y[yo + i] = Float.float16ToFloat(x[xo + i]);
    }

    static void scale(float alpha, float[] x, int xo, int n) {
        int i = 0;
        for (int bound = n - L; i <= bound; i += L) {
            FloatVector.fromArray(S, x, xo + i).mul(alpha).intoArray(x, xo + i);
        }
        for (; i < n; i++) x[xo + i] *= alpha;
    }

    static float sum(float[] x, int xo, int n) {
        int i = 0;
        FloatVector s0 = FloatVector.zero(S), s1 = FloatVector.zero(S);
        for (int bound = n - 2 * L; i <= bound; i += 2 * L) {
            s0 = s0.add(FloatVector.fromArray(S, x, xo + i));
            s1 = s1.add(FloatVector.fromArray(S, x, xo + i + L));
        }
        for (int bound = n - L; i <= bound; i += L) s0 = s0.add(FloatVector.fromArray(S, x, xo + i));
        float s = VectorMath.sum(s0.add(s1));
        for (; i < n; i++) s += x[xo + i];
        return s;
    }

    static float max(float[] x, int xo, int n) {
        int i = 0;
        FloatVector m = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
        for (int bound = n - L; i <= bound; i += L) m = m.max(FloatVector.fromArray(S, x, xo + i));
        float r = m.reduceLanes(VectorOperators.MAX);
        for (; i < n; i++) r = Math.max(r, x[xo + i]);
        return r;
    }

    // ---- softmax family ----------------------------------------------------------------------

    // sum(exp(x - m)); optionally writes exp(x - m) back into x
    private static float expSum(float[] x, int xo, int n, float m, boolean store) {
        int i = 0;
        FloatVector vm = FloatVector.broadcast(S, m);
        FloatVector acc = FloatVector.zero(S);
        for (int bound = n - L; i <= bound; i += L) {
            FloatVector e = VectorMath.exp(FloatVector.fromArray(S, x, xo + i).sub(vm));
            if (store) e.intoArray(x, xo + i);
            acc = acc.add(e);
        }
        float s = VectorMath.sum(acc);
        for (; i < n; i++) {
            float e = (float) Math.exp(x[xo + i] - m);
            if (store) x[xo + i] = e;
            s += e;
        }
        return s;
    }

    static float logSumExp(float[] x, int xo, int n) {
        float m = max(x, xo, n);
        if (m == Float.NEGATIVE_INFINITY || m == Float.POSITIVE_INFINITY) return m;
        return m + (float) Math.log(expSum(x, xo, n, m, false));
    }

    static void softmax(float[] x, int xo, int n) {
        float m = max(x, xo, n);
        if (m == Float.NEGATIVE_INFINITY) {
            java.util.Arrays.fill(x, xo, xo + n, 0f);
            return;
        }
        float s = expSum(x, xo, n, m, true);
        scale(1f / s, x, xo, n);
    }

    // ---- RMSNorm -----------------------------------------------------------------------------

    // rows [r0, r1)
    static void rmsnormForward(float[] out, int oo, float[] rstd, float[] x, int xo, float[] w, int wo, int r0, int r1, int dim, float eps) {
        for (int r = r0; r < r1; r++) {
            int o = xo + r * dim, y = oo + r * dim;
            float ss = dot(x, o, x, o, dim);
            float s = (float) (1.0 / Math.sqrt(ss / dim + eps));
            rstd[r] = s;
            int i = 0;
            for (int bound = dim - L; i <= bound; i += L) {
                FloatVector.fromArray(S, x, o + i).mul(s).mul(FloatVector.fromArray(S, w, wo + i)).intoArray(out, y + i);
            }
            for (; i < dim; i++) out[y + i] = x[o + i] * s * w[wo + i];
        }
    }

    // dx (+=) of rows [r0, r1); the weight's gradient is rmsnormWeightGrad's
    static void rmsnormBackward(float[] dx, float[] dout, float[] x, float[] w, int wo, float[] rstd, int r0, int r1, int dim) {
        for (int r = r0; r < r1; r++) {
            int o = r * dim;
            float s = rstd[r];
            // c = sum_j w[j] * dout[j] * x[j]
            FloatVector acc = FloatVector.zero(S);
            int i = 0;
            for (int bound = dim - L; i <= bound; i += L) {
                acc = FloatVector.fromArray(S, w, wo + i).mul(FloatVector.fromArray(S, dout, o + i))
                        .fma(FloatVector.fromArray(S, x, o + i), acc);
            }
            float c = VectorMath.sum(acc);
            for (; i < dim; i++) c += w[wo + i] * dout[o + i] * x[o + i];
            float k = s * s * s * c / dim;
            i = 0;
            for (int bound = dim - L; i <= bound; i += L) {
                FloatVector vd = FloatVector.fromArray(S, dout, o + i);
                FloatVector vx = FloatVector.fromArray(S, x, o + i);
                FloatVector vw = FloatVector.fromArray(S, w, wo + i);
                FloatVector.fromArray(S, dx, o + i).add(vw.mul(vd).mul(s)).sub(vx.mul(k)).intoArray(dx, o + i);
            }
            for (; i < dim; i++) dx[o + i] += s * w[wo + i] * dout[o + i] - k * x[o + i];
        }
    }

    // dw[i] += Σ_r dout[r, i]·x[r, i]·rstd[r] for columns [i0, i1) (i0 a multiple of L), rows in order
    static void rmsnormWeightGrad(float[] dw, float[] dout, float[] x, float[] rstd, int rows, int dim, int i0, int i1) {
        int i = i0;
        for (int bound = i1 - L; i <= bound; i += L) {
            FloatVector acc = FloatVector.fromArray(S, dw, i);
            for (int r = 0, o = i; r < rows; r++, o += dim)
                acc = FloatVector.fromArray(S, dout, o).mul(FloatVector.fromArray(S, x, o)).mul(rstd[r]).add(acc);
            acc.intoArray(dw, i);
        }
        for (; i < i1; i++) {
            float acc = dw[i];
            for (int r = 0, o = i; r < rows; r++, o += dim) acc += dout[o] * x[o] * rstd[r];
            dw[i] = acc;
        }
    }

    // ---- activations -------------------------------------------------------------------------

    private static final FloatVector ONE = FloatVector.broadcast(S, 1f);

    // 1 / (1 + exp(-x))
    private static FloatVector sigmoid(FloatVector x) {
        return ONE.div(VectorMath.exp(x.neg()).add(1f));
    }

    static void siluForward(float[] out, float[] x, int n) {
        int i = 0;
        for (int bound = n - L; i <= bound; i += L) {
            FloatVector v = FloatVector.fromArray(S, x, i);
            v.mul(sigmoid(v)).intoArray(out, i);
        }
        for (; i < n; i++) out[i] = x[i] * ScalarKernels.sigmoid(x[i]);
    }

    static void siluBackward(float[] dx, float[] dout, float[] x, int n) {
        int i = 0;
        for (int bound = n - L; i <= bound; i += L) {
            FloatVector v = FloatVector.fromArray(S, x, i);
            FloatVector s = sigmoid(v);
            FloatVector d = s.mul(v.mul(ONE.sub(s)).add(1f));
            FloatVector.fromArray(S, dout, i).fma(d, FloatVector.fromArray(S, dx, i)).intoArray(dx, i);
        }
        for (; i < n; i++) {
            float s = ScalarKernels.sigmoid(x[i]);
            dx[i] += dout[i] * s * (1f + x[i] * (1f - s));
        }
    }

    // elements [from, to)
    static void swigluForward(float[] out, float[] gate, float[] up, int from, int to) {
        int i = from, n = to;
        for (int bound = n - L; i <= bound; i += L) {
            FloatVector g = FloatVector.fromArray(S, gate, i);
            g.mul(sigmoid(g)).mul(FloatVector.fromArray(S, up, i)).intoArray(out, i);
        }
        for (; i < n; i++) out[i] = gate[i] * ScalarKernels.sigmoid(gate[i]) * up[i];
    }

    // elements [from, to)
    static void swigluBackward(float[] dgate, float[] dup, float[] dout, float[] gate, float[] up, int from, int to) {
        int i = from, n = to;
        for (int bound = n - L; i <= bound; i += L) {
            FloatVector g = FloatVector.fromArray(S, gate, i);
            FloatVector s = sigmoid(g);
            FloatVector d = FloatVector.fromArray(S, dout, i);
            d.mul(g.mul(s)).intoArray(dup, i);
            d.mul(FloatVector.fromArray(S, up, i)).mul(s).mul(g.mul(ONE.sub(s)).add(1f)).intoArray(dgate, i);
        }
        for (; i < n; i++) {
            float g = gate[i];
            float s = ScalarKernels.sigmoid(g);
            dup[i] = dout[i] * g * s;
            dgate[i] = dout[i] * up[i] * s * (1f + g * (1f - s));
        }
    }

    // ---- cross-entropy -----------------------------------------------------------------------

    // losses of rows [r0, r1): logsumexp - the target's logit, 0 where the target is negative
    static void crossEntropyForward(float[] losses, float[] logits, int[] targets, int r0, int r1, int vocab) {
        for (int r = r0; r < r1; r++) {
            int t = targets[r];
            losses[r] = t < 0 ? 0f : logSumExp(logits, r * vocab, vocab) - logits[r * vocab + t];
        }
    }

    // rows [r0, r1)
    static void crossEntropyBackward(float[] dlogits, float[] logits, int[] targets, int r0, int r1, int vocab, float scale) {
        for (int r = r0; r < r1; r++) {
            int o = r * vocab;
            int t = targets[r];
            if (t < 0) { java.util.Arrays.fill(dlogits, o, o + vocab, 0f); continue; }
            float lse = logSumExp(logits, o, vocab);
            FloatVector vl = FloatVector.broadcast(S, lse);
            int i = 0;
            for (int bound = vocab - L; i <= bound; i += L) {
                VectorMath.exp(FloatVector.fromArray(S, logits, o + i).sub(vl)).mul(scale).intoArray(dlogits, o + i);
            }
            for (; i < vocab; i++) dlogits[o + i] = scale * (float) Math.exp(logits[o + i] - lse);
            dlogits[o + t] -= scale;
        }
    }
}
