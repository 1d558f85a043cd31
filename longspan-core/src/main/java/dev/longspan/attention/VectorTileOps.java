package dev.longspan.attention;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

import dev.longspan.kernel.Simd;

import static dev.longspan.attention.TileOps.QB;

/**
 * Vector API bodies of {@link TileOps}. A query block is exactly four vectors wide. The two
 * products, {@link #scores} and {@link #accumulate}, are register blocks with scalar broadcasts
 * from the K/V rows (the micro-kernel of a GEMM), in one of two shapes chosen by the machine's
 * vector registers ({@link Simd#TILES}): with 32, four keys (or head dimensions) × the four query
 * vectors, sixteen accumulators; with 16, where those sixteen plus four operands and a broadcast
 * do not fit and C2 keeps accumulators on the stack, two query vectors at a time (each half of
 * the block in turn) × six keys for the scores (twelve accumulators) and × five head dimensions
 * for P·V (ten: with six, C2 holds three broadcasts at once there and spills one accumulator, a
 * store and a reload per iteration on that accumulator's FMA chain). Only loaded when
 * {@code Simd.ENABLED}.
 */
final class VectorTileOps {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final VectorShuffle<Float>[] HALVES = dev.longspan.kernel.VectorMath.halvingShuffles();
    static final int L = S.length();
    private static final boolean WIDE = Simd.TILES == Simd.Tiles.WIDE;

    private VectorTileOps() {}

    /**
     * e^x for the softmax's arguments, x ≤ 0 (a score minus a max or a log-sum-exp), within 2 ulp of
     * Math.exp, exactly 1 at 0 and exactly 0 at or below -88 (so masked -inf scores vanish): e^x =
     * 2^n · 2^f with n = round(x·log2 e), f = x·log2 e − n in [-1/2, 1/2] (log2 e in two parts, so f
     * keeps its accuracy at large |x|), 2^f by a degree-6 polynomial (relative minimax on
     * [-1/2, 1/2], 2e-9), 2^n built in the exponent bits. Adding 1.5·2^23 + 127 rounds x·log2 e to an
     * integer held in the low mantissa bits already biased by 127, so a left shift by 23 gives 2^n's
     * bits (x clamped to -88 gives n + 127 = 0, an exponent field of 0, hence exactly 0); no upper
     * clamp, since the arguments are never positive (x > 88 would overflow the exponent). Thirteen
     * vector operations against the nineteen of Cephes' e^x on a natural-log reduction, which this
     * replaced (dense attention's online softmax is about a quarter of its time).
     * Only add, mul, fma and shifts: the same bits in interpreted and compiled code, unlike
     * {@code VectorOperators.EXP}, whose fallback and intrinsic differ in the last place; that
     * would make results depend on JIT warm-up.
     */
    static FloatVector exp(FloatVector x) {
        FloatVector xc = x.max(-88f);
        FloatVector t = xc.fma(FloatVector.broadcast(S, LOG2E), FloatVector.broadcast(S, BIASED_MAGIC));    // n + 127 in the low mantissa bits
        FloatVector f = xc.fma(FloatVector.broadcast(S, LOG2E), FloatVector.broadcast(S, BIASED_MAGIC).sub(t));   // x·log2 e − n
        f = xc.fma(FloatVector.broadcast(S, LOG2E_LO), f);
        FloatVector p = f.fma(FloatVector.broadcast(S, P6), FloatVector.broadcast(S, P5))
                .fma(f, FloatVector.broadcast(S, P4))
                .fma(f, FloatVector.broadcast(S, P3))
                .fma(f, FloatVector.broadcast(S, P2))
                .fma(f, FloatVector.broadcast(S, P1))
                .fma(f, FloatVector.broadcast(S, 1f));
        return p.mul(((IntVector) t.reinterpretAsInts()).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats());
    }

    // log2 e = LOG2E + LOG2E_LO; 2^f ≈ 1 + P1·f + … + P6·f^6 on [-1/2, 1/2]
    private static final float LOG2E = 1.44269504088896341f, LOG2E_LO = 1.925963e-8f;
    private static final float P1 = 0.6931471824645996f, P2 = 0.24022646248340607f, P3 = 0.05550328642129898f,
            P4 = 0.00961848720908165f, P5 = 0.0013399935560300946f, P6 = 0.00015346250438597053f;
    private static final float BIASED_MAGIC = 12582912f + 127f;     // 1.5·2^23 + 127: adding it rounds to an integer, biased

    static void scores(float[] st, float[] x, int[] xoff, int nk, float[] yt, int d) {
        if (WIDE) scores4x4(st, x, xoff, 0, nk, yt, d); else scores6x2(st, x, xoff, 0, nk, yt, d);
    }

    /** {@link #scores} with the given tiles (tests run both on any machine). */
    static void scores(float[] st, float[] x, int[] xoff, int nk, float[] yt, int d, Simd.Tiles tiles) {
        if (tiles == Simd.Tiles.WIDE) scores4x4(st, x, xoff, 0, nk, yt, d); else scores6x2(st, x, xoff, 0, nk, yt, d);
    }

    private static void scores4x4(float[] st, float[] x, int[] xoff, int j0, int j1, float[] yt, int d) {
        int j = j0;
        for (; j + 4 <= j1; j += 4) {
            int x0 = xoff[j], x1 = xoff[j + 1], x2 = xoff[j + 2], x3 = xoff[j + 3];
            FloatVector a00 = FloatVector.zero(S), a01 = a00, a02 = a00, a03 = a00;
            FloatVector a10 = a00, a11 = a00, a12 = a00, a13 = a00;
            FloatVector a20 = a00, a21 = a00, a22 = a00, a23 = a00;
            FloatVector a30 = a00, a31 = a00, a32 = a00, a33 = a00;
            for (int c = 0; c < d; c++) {
                int yo = c * QB;
                FloatVector y0 = FloatVector.fromArray(S, yt, yo);
                FloatVector y1 = FloatVector.fromArray(S, yt, yo + L);
                FloatVector y2 = FloatVector.fromArray(S, yt, yo + 2 * L);
                FloatVector y3 = FloatVector.fromArray(S, yt, yo + 3 * L);
                FloatVector b = FloatVector.broadcast(S, x[x0 + c]);
                a00 = y0.fma(b, a00); a01 = y1.fma(b, a01); a02 = y2.fma(b, a02); a03 = y3.fma(b, a03);
                b = FloatVector.broadcast(S, x[x1 + c]);
                a10 = y0.fma(b, a10); a11 = y1.fma(b, a11); a12 = y2.fma(b, a12); a13 = y3.fma(b, a13);
                b = FloatVector.broadcast(S, x[x2 + c]);
                a20 = y0.fma(b, a20); a21 = y1.fma(b, a21); a22 = y2.fma(b, a22); a23 = y3.fma(b, a23);
                b = FloatVector.broadcast(S, x[x3 + c]);
                a30 = y0.fma(b, a30); a31 = y1.fma(b, a31); a32 = y2.fma(b, a32); a33 = y3.fma(b, a33);
            }
            int so = j * QB;
            a00.intoArray(st, so); a01.intoArray(st, so + L); a02.intoArray(st, so + 2 * L); a03.intoArray(st, so + 3 * L);
            so += QB;
            a10.intoArray(st, so); a11.intoArray(st, so + L); a12.intoArray(st, so + 2 * L); a13.intoArray(st, so + 3 * L);
            so += QB;
            a20.intoArray(st, so); a21.intoArray(st, so + L); a22.intoArray(st, so + 2 * L); a23.intoArray(st, so + 3 * L);
            so += QB;
            a30.intoArray(st, so); a31.intoArray(st, so + L); a32.intoArray(st, so + 2 * L); a33.intoArray(st, so + 3 * L);
        }
        scoresTail(st, x, xoff, j, j1, yt, d);
    }

    private static void scores6x2(float[] st, float[] x, int[] xoff, int j0, int j1, float[] yt, int d) {
        int j = j0;
        for (; j + 6 <= j1; j += 6) {
            int x0 = xoff[j], x1 = xoff[j + 1], x2 = xoff[j + 2], x3 = xoff[j + 3], x4 = xoff[j + 4], x5 = xoff[j + 5];
            for (int h = 0; h < QB; h += 2 * L) {
                FloatVector a00 = FloatVector.zero(S), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00;
                FloatVector a30 = a00, a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;
                for (int c = 0; c < d; c++) {
                    int yo = c * QB + h;
                    FloatVector y0 = FloatVector.fromArray(S, yt, yo);
                    FloatVector y1 = FloatVector.fromArray(S, yt, yo + L);
                    FloatVector b = FloatVector.broadcast(S, x[x0 + c]);
                    a00 = y0.fma(b, a00); a01 = y1.fma(b, a01);
                    b = FloatVector.broadcast(S, x[x1 + c]);
                    a10 = y0.fma(b, a10); a11 = y1.fma(b, a11);
                    b = FloatVector.broadcast(S, x[x2 + c]);
                    a20 = y0.fma(b, a20); a21 = y1.fma(b, a21);
                    b = FloatVector.broadcast(S, x[x3 + c]);
                    a30 = y0.fma(b, a30); a31 = y1.fma(b, a31);
                    b = FloatVector.broadcast(S, x[x4 + c]);
                    a40 = y0.fma(b, a40); a41 = y1.fma(b, a41);
                    b = FloatVector.broadcast(S, x[x5 + c]);
                    a50 = y0.fma(b, a50); a51 = y1.fma(b, a51);
                }
                int so = j * QB + h;
                a00.intoArray(st, so); a01.intoArray(st, so + L); so += QB;
                a10.intoArray(st, so); a11.intoArray(st, so + L); so += QB;
                a20.intoArray(st, so); a21.intoArray(st, so + L); so += QB;
                a30.intoArray(st, so); a31.intoArray(st, so + L); so += QB;
                a40.intoArray(st, so); a41.intoArray(st, so + L); so += QB;
                a50.intoArray(st, so); a51.intoArray(st, so + L);
            }
        }
        // up to five keys left: two at a time over the whole block (8 accumulators + 4 + 1 fit in 16)
        for (; j + 2 <= j1; j += 2) {
            int x0 = xoff[j], x1 = xoff[j + 1];
            FloatVector a00 = FloatVector.zero(S), a01 = a00, a02 = a00, a03 = a00;
            FloatVector a10 = a00, a11 = a00, a12 = a00, a13 = a00;
            for (int c = 0; c < d; c++) {
                int yo = c * QB;
                FloatVector y0 = FloatVector.fromArray(S, yt, yo);
                FloatVector y1 = FloatVector.fromArray(S, yt, yo + L);
                FloatVector y2 = FloatVector.fromArray(S, yt, yo + 2 * L);
                FloatVector y3 = FloatVector.fromArray(S, yt, yo + 3 * L);
                FloatVector b = FloatVector.broadcast(S, x[x0 + c]);
                a00 = y0.fma(b, a00); a01 = y1.fma(b, a01); a02 = y2.fma(b, a02); a03 = y3.fma(b, a03);
                b = FloatVector.broadcast(S, x[x1 + c]);
                a10 = y0.fma(b, a10); a11 = y1.fma(b, a11); a12 = y2.fma(b, a12); a13 = y3.fma(b, a13);
            }
            int so = j * QB;
            a00.intoArray(st, so); a01.intoArray(st, so + L); a02.intoArray(st, so + 2 * L); a03.intoArray(st, so + 3 * L);
            so += QB;
            a10.intoArray(st, so); a11.intoArray(st, so + L); a12.intoArray(st, so + 2 * L); a13.intoArray(st, so + 3 * L);
        }
        scoresTail(st, x, xoff, j, j1, yt, d);
    }

    // keys [j, nk) one at a time
    private static void scoresTail(float[] st, float[] x, int[] xoff, int j, int nk, float[] yt, int d) {
        for (; j < nk; j++) {
            int x0 = xoff[j];
            FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
            for (int c = 0; c < d; c++) {
                int yo = c * QB;
                FloatVector b = FloatVector.broadcast(S, x[x0 + c]);
                a0 = FloatVector.fromArray(S, yt, yo).fma(b, a0);
                a1 = FloatVector.fromArray(S, yt, yo + L).fma(b, a1);
                a2 = FloatVector.fromArray(S, yt, yo + 2 * L).fma(b, a2);
                a3 = FloatVector.fromArray(S, yt, yo + 3 * L).fma(b, a3);
            }
            int so = j * QB;
            a0.intoArray(st, so); a1.intoArray(st, so + L); a2.intoArray(st, so + 2 * L); a3.intoArray(st, so + 3 * L);
        }
    }

    static void accumulate(float[] ct, float[] x, int[] xoff, int nk, float[] p, int d) {
        if (WIDE) accumulate4x4(ct, x, xoff, 0, nk, p, d); else accumulate5x2(ct, x, xoff, 0, nk, p, d);
    }

    /** {@link #accumulate} with the given tiles (tests run both on any machine). */
    static void accumulate(float[] ct, float[] x, int[] xoff, int nk, float[] p, int d, Simd.Tiles tiles) {
        if (tiles == Simd.Tiles.WIDE) accumulate4x4(ct, x, xoff, 0, nk, p, d); else accumulate5x2(ct, x, xoff, 0, nk, p, d);
    }

    private static void accumulate4x4(float[] ct, float[] x, int[] xoff, int j0, int j1, float[] p, int d) {
        int c = 0;
        for (; c + 4 <= d; c += 4) {
            int o0 = c * QB, o1 = o0 + QB, o2 = o1 + QB, o3 = o2 + QB;
            FloatVector a00 = FloatVector.fromArray(S, ct, o0), a01 = FloatVector.fromArray(S, ct, o0 + L);
            FloatVector a02 = FloatVector.fromArray(S, ct, o0 + 2 * L), a03 = FloatVector.fromArray(S, ct, o0 + 3 * L);
            FloatVector a10 = FloatVector.fromArray(S, ct, o1), a11 = FloatVector.fromArray(S, ct, o1 + L);
            FloatVector a12 = FloatVector.fromArray(S, ct, o1 + 2 * L), a13 = FloatVector.fromArray(S, ct, o1 + 3 * L);
            FloatVector a20 = FloatVector.fromArray(S, ct, o2), a21 = FloatVector.fromArray(S, ct, o2 + L);
            FloatVector a22 = FloatVector.fromArray(S, ct, o2 + 2 * L), a23 = FloatVector.fromArray(S, ct, o2 + 3 * L);
            FloatVector a30 = FloatVector.fromArray(S, ct, o3), a31 = FloatVector.fromArray(S, ct, o3 + L);
            FloatVector a32 = FloatVector.fromArray(S, ct, o3 + 2 * L), a33 = FloatVector.fromArray(S, ct, o3 + 3 * L);
            for (int j = j0; j < j1; j++) {
                int po = j * QB, xo = xoff[j] + c;
                FloatVector p0 = FloatVector.fromArray(S, p, po);
                FloatVector p1 = FloatVector.fromArray(S, p, po + L);
                FloatVector p2 = FloatVector.fromArray(S, p, po + 2 * L);
                FloatVector p3 = FloatVector.fromArray(S, p, po + 3 * L);
                FloatVector b = FloatVector.broadcast(S, x[xo]);
                a00 = p0.fma(b, a00); a01 = p1.fma(b, a01); a02 = p2.fma(b, a02); a03 = p3.fma(b, a03);
                b = FloatVector.broadcast(S, x[xo + 1]);
                a10 = p0.fma(b, a10); a11 = p1.fma(b, a11); a12 = p2.fma(b, a12); a13 = p3.fma(b, a13);
                b = FloatVector.broadcast(S, x[xo + 2]);
                a20 = p0.fma(b, a20); a21 = p1.fma(b, a21); a22 = p2.fma(b, a22); a23 = p3.fma(b, a23);
                b = FloatVector.broadcast(S, x[xo + 3]);
                a30 = p0.fma(b, a30); a31 = p1.fma(b, a31); a32 = p2.fma(b, a32); a33 = p3.fma(b, a33);
            }
            a00.intoArray(ct, o0); a01.intoArray(ct, o0 + L); a02.intoArray(ct, o0 + 2 * L); a03.intoArray(ct, o0 + 3 * L);
            a10.intoArray(ct, o1); a11.intoArray(ct, o1 + L); a12.intoArray(ct, o1 + 2 * L); a13.intoArray(ct, o1 + 3 * L);
            a20.intoArray(ct, o2); a21.intoArray(ct, o2 + L); a22.intoArray(ct, o2 + 2 * L); a23.intoArray(ct, o2 + 3 * L);
            a30.intoArray(ct, o3); a31.intoArray(ct, o3 + L); a32.intoArray(ct, o3 + 2 * L); a33.intoArray(ct, o3 + 3 * L);
        }
        accumulateTail(ct, x, xoff, j0, j1, p, c, d);
    }

    private static void accumulate5x2(float[] ct, float[] x, int[] xoff, int j0, int j1, float[] p, int d) {
        int c = 0;
        for (; c + 5 <= d; c += 5) {
            for (int h = 0; h < QB; h += 2 * L) {
                int o0 = c * QB + h, o1 = o0 + QB, o2 = o1 + QB, o3 = o2 + QB, o4 = o3 + QB;
                FloatVector a00 = FloatVector.fromArray(S, ct, o0), a01 = FloatVector.fromArray(S, ct, o0 + L);
                FloatVector a10 = FloatVector.fromArray(S, ct, o1), a11 = FloatVector.fromArray(S, ct, o1 + L);
                FloatVector a20 = FloatVector.fromArray(S, ct, o2), a21 = FloatVector.fromArray(S, ct, o2 + L);
                FloatVector a30 = FloatVector.fromArray(S, ct, o3), a31 = FloatVector.fromArray(S, ct, o3 + L);
                FloatVector a40 = FloatVector.fromArray(S, ct, o4), a41 = FloatVector.fromArray(S, ct, o4 + L);
                for (int j = j0; j < j1; j++) {
                    int po = j * QB + h, xo = xoff[j] + c;
                    FloatVector p0 = FloatVector.fromArray(S, p, po);
                    FloatVector p1 = FloatVector.fromArray(S, p, po + L);
                    FloatVector b = FloatVector.broadcast(S, x[xo]);
                    a00 = p0.fma(b, a00); a01 = p1.fma(b, a01);
                    b = FloatVector.broadcast(S, x[xo + 1]);
                    a10 = p0.fma(b, a10); a11 = p1.fma(b, a11);
                    b = FloatVector.broadcast(S, x[xo + 2]);
                    a20 = p0.fma(b, a20); a21 = p1.fma(b, a21);
                    b = FloatVector.broadcast(S, x[xo + 3]);
                    a30 = p0.fma(b, a30); a31 = p1.fma(b, a31);
                    b = FloatVector.broadcast(S, x[xo + 4]);
                    a40 = p0.fma(b, a40); a41 = p1.fma(b, a41);
                }
                a00.intoArray(ct, o0); a01.intoArray(ct, o0 + L);
                a10.intoArray(ct, o1); a11.intoArray(ct, o1 + L);
                a20.intoArray(ct, o2); a21.intoArray(ct, o2 + L);
                a30.intoArray(ct, o3); a31.intoArray(ct, o3 + L);
                a40.intoArray(ct, o4); a41.intoArray(ct, o4 + L);
            }
        }
        // up to four head dimensions left: two at a time over the whole block (8 + 4 + 1 registers)
        for (; c + 2 <= d; c += 2) {
            int o0 = c * QB, o1 = o0 + QB;
            FloatVector a00 = FloatVector.fromArray(S, ct, o0), a01 = FloatVector.fromArray(S, ct, o0 + L);
            FloatVector a02 = FloatVector.fromArray(S, ct, o0 + 2 * L), a03 = FloatVector.fromArray(S, ct, o0 + 3 * L);
            FloatVector a10 = FloatVector.fromArray(S, ct, o1), a11 = FloatVector.fromArray(S, ct, o1 + L);
            FloatVector a12 = FloatVector.fromArray(S, ct, o1 + 2 * L), a13 = FloatVector.fromArray(S, ct, o1 + 3 * L);
            for (int j = j0; j < j1; j++) {
                int po = j * QB, xo = xoff[j] + c;
                FloatVector p0 = FloatVector.fromArray(S, p, po);
                FloatVector p1 = FloatVector.fromArray(S, p, po + L);
                FloatVector p2 = FloatVector.fromArray(S, p, po + 2 * L);
                FloatVector p3 = FloatVector.fromArray(S, p, po + 3 * L);
                FloatVector b = FloatVector.broadcast(S, x[xo]);
                a00 = p0.fma(b, a00); a01 = p1.fma(b, a01); a02 = p2.fma(b, a02); a03 = p3.fma(b, a03);
                b = FloatVector.broadcast(S, x[xo + 1]);
                a10 = p0.fma(b, a10); a11 = p1.fma(b, a11); a12 = p2.fma(b, a12); a13 = p3.fma(b, a13);
            }
            a00.intoArray(ct, o0); a01.intoArray(ct, o0 + L); a02.intoArray(ct, o0 + 2 * L); a03.intoArray(ct, o0 + 3 * L);
            a10.intoArray(ct, o1); a11.intoArray(ct, o1 + L); a12.intoArray(ct, o1 + 2 * L); a13.intoArray(ct, o1 + 3 * L);
        }
        accumulateTail(ct, x, xoff, j0, j1, p, c, d);
    }

    // head dimensions [c, d) one at a time
    private static void accumulateTail(float[] ct, float[] x, int[] xoff, int j0, int j1, float[] p, int c, int d) {
        for (; c < d; c++) {
            int o0 = c * QB;
            FloatVector a0 = FloatVector.fromArray(S, ct, o0), a1 = FloatVector.fromArray(S, ct, o0 + L);
            FloatVector a2 = FloatVector.fromArray(S, ct, o0 + 2 * L), a3 = FloatVector.fromArray(S, ct, o0 + 3 * L);
            for (int j = j0; j < j1; j++) {
                int po = j * QB;
                FloatVector b = FloatVector.broadcast(S, x[xoff[j] + c]);
                a0 = FloatVector.fromArray(S, p, po).fma(b, a0);
                a1 = FloatVector.fromArray(S, p, po + L).fma(b, a1);
                a2 = FloatVector.fromArray(S, p, po + 2 * L).fma(b, a2);
                a3 = FloatVector.fromArray(S, p, po + 3 * L).fma(b, a3);
            }
            a0.intoArray(ct, o0); a1.intoArray(ct, o0 + L); a2.intoArray(ct, o0 + 2 * L); a3.intoArray(ct, o0 + 3 * L);
        }
    }

    /**
     * {@link #scores} for rows [j0, j1) on the query lanes [q0, q1) (multiples of L): the key slices
     * of a partial block that only some query vectors reach. The whole block goes to the register
     * tile; fewer vectors four keys × two vectors at a time (8 accumulators: fits 16 registers as
     * well as 32), then one vector, then single keys.
     */
    static void scores(float[] st, float[] x, int[] xoff, int j0, int j1, float[] yt, int d, int q0, int q1) {
        if (q0 == 0 && q1 == QB) {
            if (WIDE) scores4x4(st, x, xoff, j0, j1, yt, d); else scores6x2(st, x, xoff, j0, j1, yt, d);
            return;
        }
        int j = j0;
        for (; j + 4 <= j1; j += 4) {
            int x0 = xoff[j], x1 = xoff[j + 1], x2 = xoff[j + 2], x3 = xoff[j + 3], so = j * QB;
            int h = q0;
            for (; h + 2 * L <= q1; h += 2 * L) {
                FloatVector a00 = FloatVector.zero(S), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
                for (int c = 0; c < d; c++) {
                    int yo = c * QB + h;
                    FloatVector y0 = FloatVector.fromArray(S, yt, yo);
                    FloatVector y1 = FloatVector.fromArray(S, yt, yo + L);
                    FloatVector b = FloatVector.broadcast(S, x[x0 + c]);
                    a00 = y0.fma(b, a00); a01 = y1.fma(b, a01);
                    b = FloatVector.broadcast(S, x[x1 + c]);
                    a10 = y0.fma(b, a10); a11 = y1.fma(b, a11);
                    b = FloatVector.broadcast(S, x[x2 + c]);
                    a20 = y0.fma(b, a20); a21 = y1.fma(b, a21);
                    b = FloatVector.broadcast(S, x[x3 + c]);
                    a30 = y0.fma(b, a30); a31 = y1.fma(b, a31);
                }
                a00.intoArray(st, so + h); a01.intoArray(st, so + h + L);
                a10.intoArray(st, so + QB + h); a11.intoArray(st, so + QB + h + L);
                a20.intoArray(st, so + 2 * QB + h); a21.intoArray(st, so + 2 * QB + h + L);
                a30.intoArray(st, so + 3 * QB + h); a31.intoArray(st, so + 3 * QB + h + L);
            }
            if (h < q1) {
                FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
                for (int c = 0; c < d; c++) {
                    FloatVector y0 = FloatVector.fromArray(S, yt, c * QB + h);
                    a0 = y0.fma(FloatVector.broadcast(S, x[x0 + c]), a0);
                    a1 = y0.fma(FloatVector.broadcast(S, x[x1 + c]), a1);
                    a2 = y0.fma(FloatVector.broadcast(S, x[x2 + c]), a2);
                    a3 = y0.fma(FloatVector.broadcast(S, x[x3 + c]), a3);
                }
                a0.intoArray(st, so + h); a1.intoArray(st, so + QB + h); a2.intoArray(st, so + 2 * QB + h); a3.intoArray(st, so + 3 * QB + h);
            }
        }
        for (; j < j1; j++) {
            int x0 = xoff[j];
            for (int h = q0; h < q1; h += L) {
                FloatVector a0 = FloatVector.zero(S);
                for (int c = 0; c < d; c++) a0 = FloatVector.fromArray(S, yt, c * QB + h).fma(FloatVector.broadcast(S, x[x0 + c]), a0);
                a0.intoArray(st, j * QB + h);
            }
        }
    }

    /**
     * {@link #accumulate} for rows [j0, j1) of p on the query lanes [q0, q1) (multiples of L): four
     * head dimensions × two vectors at a time, then one vector, then single head dimensions. Each
     * lane adds the same products in the same key order as the whole-block kernel.
     */
    static void accumulate(float[] ct, float[] x, int[] xoff, int j0, int j1, float[] p, int d, int q0, int q1) {
        if (q0 == 0 && q1 == QB) {
            if (WIDE) accumulate4x4(ct, x, xoff, j0, j1, p, d); else accumulate5x2(ct, x, xoff, j0, j1, p, d);
            return;
        }
        int c = 0;
        for (; c + 4 <= d; c += 4) {
            int h = q0;
            for (; h + 2 * L <= q1; h += 2 * L) {
                int o0 = c * QB + h, o1 = o0 + QB, o2 = o1 + QB, o3 = o2 + QB;
                FloatVector a00 = FloatVector.fromArray(S, ct, o0), a01 = FloatVector.fromArray(S, ct, o0 + L);
                FloatVector a10 = FloatVector.fromArray(S, ct, o1), a11 = FloatVector.fromArray(S, ct, o1 + L);
                FloatVector a20 = FloatVector.fromArray(S, ct, o2), a21 = FloatVector.fromArray(S, ct, o2 + L);
                FloatVector a30 = FloatVector.fromArray(S, ct, o3), a31 = FloatVector.fromArray(S, ct, o3 + L);
                for (int j = j0; j < j1; j++) {
                    int po = j * QB + h, xo = xoff[j] + c;
                    FloatVector p0 = FloatVector.fromArray(S, p, po);
                    FloatVector p1 = FloatVector.fromArray(S, p, po + L);
                    FloatVector b = FloatVector.broadcast(S, x[xo]);
                    a00 = p0.fma(b, a00); a01 = p1.fma(b, a01);
                    b = FloatVector.broadcast(S, x[xo + 1]);
                    a10 = p0.fma(b, a10); a11 = p1.fma(b, a11);
                    b = FloatVector.broadcast(S, x[xo + 2]);
                    a20 = p0.fma(b, a20); a21 = p1.fma(b, a21);
                    b = FloatVector.broadcast(S, x[xo + 3]);
                    a30 = p0.fma(b, a30); a31 = p1.fma(b, a31);
                }
                a00.intoArray(ct, o0); a01.intoArray(ct, o0 + L);
                a10.intoArray(ct, o1); a11.intoArray(ct, o1 + L);
                a20.intoArray(ct, o2); a21.intoArray(ct, o2 + L);
                a30.intoArray(ct, o3); a31.intoArray(ct, o3 + L);
            }
            if (h < q1) {
                int o0 = c * QB + h, o1 = o0 + QB, o2 = o1 + QB, o3 = o2 + QB;
                FloatVector a0 = FloatVector.fromArray(S, ct, o0), a1 = FloatVector.fromArray(S, ct, o1);
                FloatVector a2 = FloatVector.fromArray(S, ct, o2), a3 = FloatVector.fromArray(S, ct, o3);
                for (int j = j0; j < j1; j++) {
                    int xo = xoff[j] + c;
                    FloatVector p0 = FloatVector.fromArray(S, p, j * QB + h);
                    a0 = p0.fma(FloatVector.broadcast(S, x[xo]), a0);
                    a1 = p0.fma(FloatVector.broadcast(S, x[xo + 1]), a1);
                    a2 = p0.fma(FloatVector.broadcast(S, x[xo + 2]), a2);
                    a3 = p0.fma(FloatVector.broadcast(S, x[xo + 3]), a3);
                }
                a0.intoArray(ct, o0); a1.intoArray(ct, o1); a2.intoArray(ct, o2); a3.intoArray(ct, o3);
            }
        }
        for (; c < d; c++) {
            for (int h = q0; h < q1; h += L) {
                int o0 = c * QB + h;
                FloatVector a0 = FloatVector.fromArray(S, ct, o0);
                for (int j = j0; j < j1; j++) a0 = FloatVector.fromArray(S, p, j * QB + h).fma(FloatVector.broadcast(S, x[xoff[j] + c]), a0);
                a0.intoArray(ct, o0);
            }
        }
    }

    // rowScores into out[oo..oo+n)
    static void rowScores(float[] out, int oo, float[] q, int qo, float[] x, int[] xoff, int n, int d) {
        int dv = d / L * L;
        if (dv == 0) {
            // D below one vector: plain dot products
            for (int j = 0; j < n; j++) out[oo + j] = dev.longspan.kernel.Kernels.dot(q, qo, x, xoff[j], d);
            return;
        }
        if (dv > 4 * L) {
            // beyond four vectors of query: the query from L1 per key, the same chain and tree
            for (int j = 0; j < n; j++) {
                int o = xoff[j];
                FloatVector a = FloatVector.fromArray(S, x, o).mul(FloatVector.fromArray(S, q, qo));
                for (int c = L; c < dv; c += L) a = FloatVector.fromArray(S, x, o + c).fma(FloatVector.fromArray(S, q, qo + c), a);
                for (VectorShuffle<Float> h : HALVES) a = a.add(a.rearrange(h));
                float s = a.lane(0);
                for (int c = dv; c < d; c++) s += q[qo + c] * x[o + c];
                out[oo + j] = s;
            }
            return;
        }
        // up to four vectors of the query in registers; per key one chain of multiply-adds, then the
        // fixed tree of lane adds (VectorMath.sum's order) and the tail
        FloatVector q0 = FloatVector.fromArray(S, q, qo);
        FloatVector q1 = dv > L ? FloatVector.fromArray(S, q, qo + L) : q0;
        FloatVector q2 = dv > 2 * L ? FloatVector.fromArray(S, q, qo + 2 * L) : q0;
        FloatVector q3 = dv > 3 * L ? FloatVector.fromArray(S, q, qo + 3 * L) : q0;
        for (int j = 0; j < n; j++) {
            int o = xoff[j];
            FloatVector a = FloatVector.fromArray(S, x, o).mul(q0);
            if (dv > L) a = FloatVector.fromArray(S, x, o + L).fma(q1, a);
            if (dv > 2 * L) a = FloatVector.fromArray(S, x, o + 2 * L).fma(q2, a);
            if (dv > 3 * L) a = FloatVector.fromArray(S, x, o + 3 * L).fma(q3, a);
            for (VectorShuffle<Float> h : HALVES) a = a.add(a.rearrange(h));
            float s = a.lane(0);
            for (int c = dv; c < d; c++) s += q[qo + c] * x[o + c];
            out[oo + j] = s;
        }
    }

    // rowScores into out[oo..oo+n) for the keys of one block and, in the same loop, y[yo..yo+d) +=
    // Σ_j p[po + j]·v row j over the nv value rows of the block before (Kernels.axpyRows): two
    // streams from memory at once, each result in the order of its own kernel (the same bits).
    // For D a whole number of vectors, at most eight (TileOps.fusesScoresAndAxpy); beyond four the
    // query is read from L1 per key (rowScoresAxpyWide).
    static void rowScoresAxpy(float[] out, int oo, float[] q, int qo, float[] x, int[] xoff, int n,
                              float[] p, int po, int nv, float[] v, int[] voff, float[] y, int yo, int d) {
        if (d > 4 * L) {
            rowScoresAxpyWide(out, oo, q, qo, x, xoff, n, p, po, nv, v, voff, y, yo, d);
            return;
        }
        FloatVector q0 = FloatVector.fromArray(S, q, qo);
        FloatVector q1 = d > L ? FloatVector.fromArray(S, q, qo + L) : q0;
        FloatVector q2 = d > 2 * L ? FloatVector.fromArray(S, q, qo + 2 * L) : q0;
        FloatVector q3 = d > 3 * L ? FloatVector.fromArray(S, q, qo + 3 * L) : q0;
        FloatVector y0 = FloatVector.fromArray(S, y, yo);
        FloatVector y1 = d > L ? FloatVector.fromArray(S, y, yo + L) : y0;
        FloatVector y2 = d > 2 * L ? FloatVector.fromArray(S, y, yo + 2 * L) : y0;
        FloatVector y3 = d > 3 * L ? FloatVector.fromArray(S, y, yo + 3 * L) : y0;
        int both = Math.min(n, nv), j = 0;
        for (; j < both; j++) {
            int o = xoff[j], vo = voff[j];
            FloatVector a = FloatVector.fromArray(S, x, o).mul(q0);
            FloatVector pj = FloatVector.broadcast(S, p[po + j]);
            y0 = FloatVector.fromArray(S, v, vo).fma(pj, y0);
            if (d > L) {
                a = FloatVector.fromArray(S, x, o + L).fma(q1, a);
                y1 = FloatVector.fromArray(S, v, vo + L).fma(pj, y1);
            }
            if (d > 2 * L) {
                a = FloatVector.fromArray(S, x, o + 2 * L).fma(q2, a);
                y2 = FloatVector.fromArray(S, v, vo + 2 * L).fma(pj, y2);
            }
            if (d > 3 * L) {
                a = FloatVector.fromArray(S, x, o + 3 * L).fma(q3, a);
                y3 = FloatVector.fromArray(S, v, vo + 3 * L).fma(pj, y3);
            }
            for (VectorShuffle<Float> h : HALVES) a = a.add(a.rearrange(h));
            out[oo + j] = a.lane(0);
        }
        for (int k = j; k < nv; k++) {
            FloatVector pk = FloatVector.broadcast(S, p[po + k]);
            int vo = voff[k];
            y0 = FloatVector.fromArray(S, v, vo).fma(pk, y0);
            if (d > L) y1 = FloatVector.fromArray(S, v, vo + L).fma(pk, y1);
            if (d > 2 * L) y2 = FloatVector.fromArray(S, v, vo + 2 * L).fma(pk, y2);
            if (d > 3 * L) y3 = FloatVector.fromArray(S, v, vo + 3 * L).fma(pk, y3);
        }
        y0.intoArray(y, yo);
        if (d > L) y1.intoArray(y, yo + L);
        if (d > 2 * L) y2.intoArray(y, yo + 2 * L);
        if (d > 3 * L) y3.intoArray(y, yo + 3 * L);
        for (; j < n; j++) {
            int o = xoff[j];
            FloatVector a = FloatVector.fromArray(S, x, o).mul(q0);
            if (d > L) a = FloatVector.fromArray(S, x, o + L).fma(q1, a);
            if (d > 2 * L) a = FloatVector.fromArray(S, x, o + 2 * L).fma(q2, a);
            if (d > 3 * L) a = FloatVector.fromArray(S, x, o + 3 * L).fma(q3, a);
            for (VectorShuffle<Float> h : HALVES) a = a.add(a.rearrange(h));
            out[oo + j] = a.lane(0);
        }
    }

    // rowScoresAxpy for D of five to eight vectors: the query read from L1 per key (as rowScores
    // does beyond four), the output row's vectors in registers across the keys. (One body for all D
    // with the query always from L1 was tried: 10 % slower at D = 64 on Zen 5, hence two.)
    private static void rowScoresAxpyWide(float[] out, int oo, float[] q, int qo, float[] x, int[] xoff, int n,
                                          float[] p, int po, int nv, float[] v, int[] voff, float[] y, int yo, int d) {
        FloatVector y0 = FloatVector.fromArray(S, y, yo), y1 = FloatVector.fromArray(S, y, yo + L);
        FloatVector y2 = FloatVector.fromArray(S, y, yo + 2 * L), y3 = FloatVector.fromArray(S, y, yo + 3 * L);
        FloatVector y4 = FloatVector.fromArray(S, y, yo + 4 * L);
        FloatVector y5 = d > 5 * L ? FloatVector.fromArray(S, y, yo + 5 * L) : y0;
        FloatVector y6 = d > 6 * L ? FloatVector.fromArray(S, y, yo + 6 * L) : y0;
        FloatVector y7 = d > 7 * L ? FloatVector.fromArray(S, y, yo + 7 * L) : y0;
        int both = Math.min(n, nv), j = 0;
        for (; j < both; j++) {
            int o = xoff[j], vo = voff[j];
            FloatVector pj = FloatVector.broadcast(S, p[po + j]);
            FloatVector a = FloatVector.fromArray(S, x, o).mul(FloatVector.fromArray(S, q, qo));
            y0 = FloatVector.fromArray(S, v, vo).fma(pj, y0);
            a = FloatVector.fromArray(S, x, o + L).fma(FloatVector.fromArray(S, q, qo + L), a);
            y1 = FloatVector.fromArray(S, v, vo + L).fma(pj, y1);
            a = FloatVector.fromArray(S, x, o + 2 * L).fma(FloatVector.fromArray(S, q, qo + 2 * L), a);
            y2 = FloatVector.fromArray(S, v, vo + 2 * L).fma(pj, y2);
            a = FloatVector.fromArray(S, x, o + 3 * L).fma(FloatVector.fromArray(S, q, qo + 3 * L), a);
            y3 = FloatVector.fromArray(S, v, vo + 3 * L).fma(pj, y3);
            a = FloatVector.fromArray(S, x, o + 4 * L).fma(FloatVector.fromArray(S, q, qo + 4 * L), a);
            y4 = FloatVector.fromArray(S, v, vo + 4 * L).fma(pj, y4);
            if (d > 5 * L) {
                a = FloatVector.fromArray(S, x, o + 5 * L).fma(FloatVector.fromArray(S, q, qo + 5 * L), a);
                y5 = FloatVector.fromArray(S, v, vo + 5 * L).fma(pj, y5);
            }
            if (d > 6 * L) {
                a = FloatVector.fromArray(S, x, o + 6 * L).fma(FloatVector.fromArray(S, q, qo + 6 * L), a);
                y6 = FloatVector.fromArray(S, v, vo + 6 * L).fma(pj, y6);
            }
            if (d > 7 * L) {
                a = FloatVector.fromArray(S, x, o + 7 * L).fma(FloatVector.fromArray(S, q, qo + 7 * L), a);
                y7 = FloatVector.fromArray(S, v, vo + 7 * L).fma(pj, y7);
            }
            for (VectorShuffle<Float> h : HALVES) a = a.add(a.rearrange(h));
            out[oo + j] = a.lane(0);
        }
        for (int k = j; k < nv; k++) {
            FloatVector pk = FloatVector.broadcast(S, p[po + k]);
            int vo = voff[k];
            y0 = FloatVector.fromArray(S, v, vo).fma(pk, y0);
            y1 = FloatVector.fromArray(S, v, vo + L).fma(pk, y1);
            y2 = FloatVector.fromArray(S, v, vo + 2 * L).fma(pk, y2);
            y3 = FloatVector.fromArray(S, v, vo + 3 * L).fma(pk, y3);
            y4 = FloatVector.fromArray(S, v, vo + 4 * L).fma(pk, y4);
            if (d > 5 * L) y5 = FloatVector.fromArray(S, v, vo + 5 * L).fma(pk, y5);
            if (d > 6 * L) y6 = FloatVector.fromArray(S, v, vo + 6 * L).fma(pk, y6);
            if (d > 7 * L) y7 = FloatVector.fromArray(S, v, vo + 7 * L).fma(pk, y7);
        }
        y0.intoArray(y, yo);
        y1.intoArray(y, yo + L);
        y2.intoArray(y, yo + 2 * L);
        y3.intoArray(y, yo + 3 * L);
        y4.intoArray(y, yo + 4 * L);
        if (d > 5 * L) y5.intoArray(y, yo + 5 * L);
        if (d > 6 * L) y6.intoArray(y, yo + 6 * L);
        if (d > 7 * L) y7.intoArray(y, yo + 7 * L);
        for (; j < n; j++) {
            int o = xoff[j];
            FloatVector a = FloatVector.fromArray(S, x, o).mul(FloatVector.fromArray(S, q, qo));
            for (int c = L; c < d; c += L) a = FloatVector.fromArray(S, x, o + c).fma(FloatVector.fromArray(S, q, qo + c), a);
            for (VectorShuffle<Float> h : HALVES) a = a.add(a.rearrange(h));
            out[oo + j] = a.lane(0);
        }
    }

    static void groupScores(float[] out, int stride, float[] q, int g, float[] x, int[] xoff, int n, int d) {
        int dv = d / L * L, i = 0;
        if (dv == 0) {
            for (; i < g; i++) rowScores(out, i * stride, q, i * d, x, xoff, n, d);
            return;
        }
        // with 32 registers, four rows at a time: the block's key rows read once for four query rows
        // (the pairs below read it once per pair, the later passes from the caches)
        if (WIDE) for (; i + 4 <= g; i += 4) scoresFourRows(out, i * stride, stride, q, i * d, x, xoff, n, d, dv);
        // two rows × two keys: each key vector loaded once for both rows, each query vector once for
        // both keys; per (row, key) the chain and the tree of rowScores (the same bits)
        for (; i + 2 <= g; i += 2) {
            int qa = i * d, qb = qa + d, oa = i * stride, ob = oa + stride, j = 0;
            for (; j + 2 <= n; j += 2) {
                int o0 = xoff[j], o1 = xoff[j + 1];
                FloatVector x0 = FloatVector.fromArray(S, x, o0), x1 = FloatVector.fromArray(S, x, o1);
                FloatVector qva = FloatVector.fromArray(S, q, qa), qvb = FloatVector.fromArray(S, q, qb);
                FloatVector a0 = x0.mul(qva), a1 = x1.mul(qva), b0 = x0.mul(qvb), b1 = x1.mul(qvb);
                for (int c = L; c < dv; c += L) {
                    x0 = FloatVector.fromArray(S, x, o0 + c);
                    x1 = FloatVector.fromArray(S, x, o1 + c);
                    qva = FloatVector.fromArray(S, q, qa + c);
                    qvb = FloatVector.fromArray(S, q, qb + c);
                    a0 = x0.fma(qva, a0);
                    a1 = x1.fma(qva, a1);
                    b0 = x0.fma(qvb, b0);
                    b1 = x1.fma(qvb, b1);
                }
                for (VectorShuffle<Float> h : HALVES) {
                    a0 = a0.add(a0.rearrange(h));
                    a1 = a1.add(a1.rearrange(h));
                    b0 = b0.add(b0.rearrange(h));
                    b1 = b1.add(b1.rearrange(h));
                }
                float sa0 = a0.lane(0), sa1 = a1.lane(0), sb0 = b0.lane(0), sb1 = b1.lane(0);
                for (int c = dv; c < d; c++) {
                    sa0 += q[qa + c] * x[o0 + c];
                    sa1 += q[qa + c] * x[o1 + c];
                    sb0 += q[qb + c] * x[o0 + c];
                    sb1 += q[qb + c] * x[o1 + c];
                }
                out[oa + j] = sa0;
                out[oa + j + 1] = sa1;
                out[ob + j] = sb0;
                out[ob + j + 1] = sb1;
            }
            for (; j < n; j++) {
                int o = xoff[j];
                FloatVector a = FloatVector.fromArray(S, x, o).mul(FloatVector.fromArray(S, q, qa));
                FloatVector b = FloatVector.fromArray(S, x, o).mul(FloatVector.fromArray(S, q, qb));
                for (int c = L; c < dv; c += L) {
                    FloatVector xc = FloatVector.fromArray(S, x, o + c);
                    a = xc.fma(FloatVector.fromArray(S, q, qa + c), a);
                    b = xc.fma(FloatVector.fromArray(S, q, qb + c), b);
                }
                for (VectorShuffle<Float> h : HALVES) {
                    a = a.add(a.rearrange(h));
                    b = b.add(b.rearrange(h));
                }
                float sa = a.lane(0), sb = b.lane(0);
                for (int c = dv; c < d; c++) {
                    sa += q[qa + c] * x[o + c];
                    sb += q[qb + c] * x[o + c];
                }
                out[oa + j] = sa;
                out[ob + j] = sb;
            }
        }
        if (i < g) rowScores(out, i * stride, q, i * d, x, xoff, n, d);       // an odd last row on its own
    }

    // four rows × two keys: eight chains, two key vectors, four query vectors; per (row, key) the
    // chain, the tree and the tail of rowScores (the same bits)
    private static void scoresFourRows(float[] out, int oa, int stride, float[] q, int qa, float[] x, int[] xoff, int n, int d, int dv) {
        int qb = qa + d, qc = qb + d, qd = qc + d, ob = oa + stride, oc = ob + stride, od = oc + stride, j = 0;
        for (; j + 2 <= n; j += 2) {
            int o0 = xoff[j], o1 = xoff[j + 1];
            FloatVector x0 = FloatVector.fromArray(S, x, o0), x1 = FloatVector.fromArray(S, x, o1);
            FloatVector u = FloatVector.fromArray(S, q, qa), v = FloatVector.fromArray(S, q, qb);
            FloatVector a0 = x0.mul(u), a1 = x1.mul(u), b0 = x0.mul(v), b1 = x1.mul(v);
            u = FloatVector.fromArray(S, q, qc);
            v = FloatVector.fromArray(S, q, qd);
            FloatVector c0 = x0.mul(u), c1 = x1.mul(u), e0 = x0.mul(v), e1 = x1.mul(v);
            for (int c = L; c < dv; c += L) {
                x0 = FloatVector.fromArray(S, x, o0 + c);
                x1 = FloatVector.fromArray(S, x, o1 + c);
                u = FloatVector.fromArray(S, q, qa + c);
                v = FloatVector.fromArray(S, q, qb + c);
                a0 = x0.fma(u, a0);
                a1 = x1.fma(u, a1);
                b0 = x0.fma(v, b0);
                b1 = x1.fma(v, b1);
                u = FloatVector.fromArray(S, q, qc + c);
                v = FloatVector.fromArray(S, q, qd + c);
                c0 = x0.fma(u, c0);
                c1 = x1.fma(u, c1);
                e0 = x0.fma(v, e0);
                e1 = x1.fma(v, e1);
            }
            // the tree written out here, all eight at once (see tree)
            for (VectorShuffle<Float> h : HALVES) {
                a0 = a0.add(a0.rearrange(h));
                a1 = a1.add(a1.rearrange(h));
                b0 = b0.add(b0.rearrange(h));
                b1 = b1.add(b1.rearrange(h));
                c0 = c0.add(c0.rearrange(h));
                c1 = c1.add(c1.rearrange(h));
                e0 = e0.add(e0.rearrange(h));
                e1 = e1.add(e1.rearrange(h));
            }
            out[oa + j] = tail(a0.lane(0), q, qa, x, o0, dv, d);
            out[oa + j + 1] = tail(a1.lane(0), q, qa, x, o1, dv, d);
            out[ob + j] = tail(b0.lane(0), q, qb, x, o0, dv, d);
            out[ob + j + 1] = tail(b1.lane(0), q, qb, x, o1, dv, d);
            out[oc + j] = tail(c0.lane(0), q, qc, x, o0, dv, d);
            out[oc + j + 1] = tail(c1.lane(0), q, qc, x, o1, dv, d);
            out[od + j] = tail(e0.lane(0), q, qd, x, o0, dv, d);
            out[od + j + 1] = tail(e1.lane(0), q, qd, x, o1, dv, d);
        }
        if (j < n) {                                            // an odd last key
            int o = xoff[j];
            FloatVector x0 = FloatVector.fromArray(S, x, o);
            FloatVector a = x0.mul(FloatVector.fromArray(S, q, qa)), b = x0.mul(FloatVector.fromArray(S, q, qb));
            FloatVector c0 = x0.mul(FloatVector.fromArray(S, q, qc)), e = x0.mul(FloatVector.fromArray(S, q, qd));
            for (int c = L; c < dv; c += L) {
                x0 = FloatVector.fromArray(S, x, o + c);
                a = x0.fma(FloatVector.fromArray(S, q, qa + c), a);
                b = x0.fma(FloatVector.fromArray(S, q, qb + c), b);
                c0 = x0.fma(FloatVector.fromArray(S, q, qc + c), c0);
                e = x0.fma(FloatVector.fromArray(S, q, qd + c), e);
            }
            for (VectorShuffle<Float> h : HALVES) {
                a = a.add(a.rearrange(h));
                b = b.add(b.rearrange(h));
                c0 = c0.add(c0.rearrange(h));
                e = e.add(e.rearrange(h));
            }
            out[oa + j] = tail(a.lane(0), q, qa, x, o, dv, d);
            out[ob + j] = tail(b.lane(0), q, qb, x, o, dv, d);
            out[oc + j] = tail(c0.lane(0), q, qc, x, o, dv, d);
            out[od + j] = tail(e.lane(0), q, qd, x, o, dv, d);
        }
    }

    // VectorMath.sum's fixed tree of lane adds (lane k + lane k ^ h, h = L/2 … 1) is written out in each
    // kernel, never called with a vector: calling VectorMath.sum made the grouped decoding step 5-10 %
    // slower (Zen 5, 32/8 heads, D = 128), and a private helper taking the vector was left un-inlined in
    // some runs' compilations, boxing every vector it got — a 1M passkey trial then took 24-74 s
    // instead of 19-21 (about one run in five)

    // s plus the dot product's columns past the last whole vector, in rowScores' order
    private static float tail(float s, float[] q, int qo, float[] x, int o, int dv, int d) {
        for (int c = dv; c < d; c++) s += q[qo + c] * x[o + c];
        return s;
    }

    static void groupAxpy(float[] p, int stride, int g, int n, float[] x, int[] xoff, float[] y, int d) {
        int i = 0;
        // with 32 registers, four rows at a time: the block's value rows read once for four rows
        if (WIDE) for (; i + 4 <= g; i += 4) axpyFourRows(p, i * stride, stride, n, x, xoff, y, i * d, d);
        // two output rows × four vectors of D in registers across the keys: each value vector loaded
        // once for both rows; per element the fused multiply-adds of Kernels.axpyRows, in key order
        for (; i + 2 <= g; i += 2) {
            int pa = i * stride, pb = pa + stride, ya = i * d, yb = ya + d, c = 0;
            for (; c + 4 * L <= d; c += 4 * L) {
                FloatVector a0 = FloatVector.fromArray(S, y, ya + c), a1 = FloatVector.fromArray(S, y, ya + c + L);
                FloatVector a2 = FloatVector.fromArray(S, y, ya + c + 2 * L), a3 = FloatVector.fromArray(S, y, ya + c + 3 * L);
                FloatVector b0 = FloatVector.fromArray(S, y, yb + c), b1 = FloatVector.fromArray(S, y, yb + c + L);
                FloatVector b2 = FloatVector.fromArray(S, y, yb + c + 2 * L), b3 = FloatVector.fromArray(S, y, yb + c + 3 * L);
                for (int j = 0; j < n; j++) {
                    FloatVector wa = FloatVector.broadcast(S, p[pa + j]), wb = FloatVector.broadcast(S, p[pb + j]);
                    int o = xoff[j] + c;
                    FloatVector x0 = FloatVector.fromArray(S, x, o), x1 = FloatVector.fromArray(S, x, o + L);
                    FloatVector x2 = FloatVector.fromArray(S, x, o + 2 * L), x3 = FloatVector.fromArray(S, x, o + 3 * L);
                    a0 = x0.fma(wa, a0);
                    a1 = x1.fma(wa, a1);
                    a2 = x2.fma(wa, a2);
                    a3 = x3.fma(wa, a3);
                    b0 = x0.fma(wb, b0);
                    b1 = x1.fma(wb, b1);
                    b2 = x2.fma(wb, b2);
                    b3 = x3.fma(wb, b3);
                }
                a0.intoArray(y, ya + c);
                a1.intoArray(y, ya + c + L);
                a2.intoArray(y, ya + c + 2 * L);
                a3.intoArray(y, ya + c + 3 * L);
                b0.intoArray(y, yb + c);
                b1.intoArray(y, yb + c + L);
                b2.intoArray(y, yb + c + 2 * L);
                b3.intoArray(y, yb + c + 3 * L);
            }
            for (; c + L <= d; c += L) {
                FloatVector a0 = FloatVector.fromArray(S, y, ya + c), b0 = FloatVector.fromArray(S, y, yb + c);
                for (int j = 0; j < n; j++) {
                    FloatVector x0 = FloatVector.fromArray(S, x, xoff[j] + c);
                    a0 = x0.fma(FloatVector.broadcast(S, p[pa + j]), a0);
                    b0 = x0.fma(FloatVector.broadcast(S, p[pb + j]), b0);
                }
                a0.intoArray(y, ya + c);
                b0.intoArray(y, yb + c);
            }
            for (; c < d; c++) {
                float sa = y[ya + c], sb = y[yb + c];
                for (int j = 0; j < n; j++) {
                    sa += p[pa + j] * x[xoff[j] + c];
                    sb += p[pb + j] * x[xoff[j] + c];
                }
                y[ya + c] = sa;
                y[yb + c] = sb;
            }
        }
        if (i < g) dev.longspan.kernel.Kernels.axpyRows(p, i * stride, n, x, xoff, y, i * d, d);   // an odd last row on its own
    }

    // y rows r..r+3 (at yo + r·d) += Σ_j p[po + r·stride + j]·x row j: four keys at a time, sixteen
    // weights in registers, each output vector loaded, given the four keys' multiply-adds in key
    // order and stored (the output rows stay in L1: four rows of D do not fit in registers); per
    // element the fused multiply-adds of Kernels.axpyRows in key order, its plain sum past the last
    // whole vector (the same bits)
    private static void axpyFourRows(float[] p, int pa, int stride, int n, float[] x, int[] xoff, float[] y, int ya, int d) {
        int pb = pa + stride, pc = pb + stride, pd = pc + stride, yb = ya + d, yc = yb + d, yd = yc + d;
        int dv = d / L * L, j = 0;
        for (; j + 4 <= n; j += 4) {
            int o0 = xoff[j], o1 = xoff[j + 1], o2 = xoff[j + 2], o3 = xoff[j + 3];
            FloatVector a0 = FloatVector.broadcast(S, p[pa + j]), a1 = FloatVector.broadcast(S, p[pa + j + 1]);
            FloatVector a2 = FloatVector.broadcast(S, p[pa + j + 2]), a3 = FloatVector.broadcast(S, p[pa + j + 3]);
            FloatVector b0 = FloatVector.broadcast(S, p[pb + j]), b1 = FloatVector.broadcast(S, p[pb + j + 1]);
            FloatVector b2 = FloatVector.broadcast(S, p[pb + j + 2]), b3 = FloatVector.broadcast(S, p[pb + j + 3]);
            FloatVector c0 = FloatVector.broadcast(S, p[pc + j]), c1 = FloatVector.broadcast(S, p[pc + j + 1]);
            FloatVector c2 = FloatVector.broadcast(S, p[pc + j + 2]), c3 = FloatVector.broadcast(S, p[pc + j + 3]);
            FloatVector e0 = FloatVector.broadcast(S, p[pd + j]), e1 = FloatVector.broadcast(S, p[pd + j + 1]);
            FloatVector e2 = FloatVector.broadcast(S, p[pd + j + 2]), e3 = FloatVector.broadcast(S, p[pd + j + 3]);
            for (int c = 0; c < dv; c += L) {
                FloatVector x0 = FloatVector.fromArray(S, x, o0 + c), x1 = FloatVector.fromArray(S, x, o1 + c);
                FloatVector x2 = FloatVector.fromArray(S, x, o2 + c), x3 = FloatVector.fromArray(S, x, o3 + c);
                FloatVector ta = FloatVector.fromArray(S, y, ya + c), tb = FloatVector.fromArray(S, y, yb + c);
                FloatVector tc = FloatVector.fromArray(S, y, yc + c), td = FloatVector.fromArray(S, y, yd + c);
                x3.fma(a3, x2.fma(a2, x1.fma(a1, x0.fma(a0, ta)))).intoArray(y, ya + c);
                x3.fma(b3, x2.fma(b2, x1.fma(b1, x0.fma(b0, tb)))).intoArray(y, yb + c);
                x3.fma(c3, x2.fma(c2, x1.fma(c1, x0.fma(c0, tc)))).intoArray(y, yc + c);
                x3.fma(e3, x2.fma(e2, x1.fma(e1, x0.fma(e0, td)))).intoArray(y, yd + c);
            }
        }
        for (; j < n; j++) {                                    // the last keys one at a time
            int o = xoff[j];
            FloatVector a = FloatVector.broadcast(S, p[pa + j]), b = FloatVector.broadcast(S, p[pb + j]);
            FloatVector c0 = FloatVector.broadcast(S, p[pc + j]), e = FloatVector.broadcast(S, p[pd + j]);
            for (int c = 0; c < dv; c += L) {
                FloatVector x0 = FloatVector.fromArray(S, x, o + c);
                x0.fma(a, FloatVector.fromArray(S, y, ya + c)).intoArray(y, ya + c);
                x0.fma(b, FloatVector.fromArray(S, y, yb + c)).intoArray(y, yb + c);
                x0.fma(c0, FloatVector.fromArray(S, y, yc + c)).intoArray(y, yc + c);
                x0.fma(e, FloatVector.fromArray(S, y, yd + c)).intoArray(y, yd + c);
            }
        }
        for (int r = 0; r < 4; r++) {
            int po = pa + r * stride, yo = ya + r * d;
            for (int c = dv; c < d; c++) {
                float s = y[yo + c];
                for (int k = 0; k < n; k++) s += p[po + k] * x[xoff[k] + c];
                y[yo + c] = s;
            }
        }
    }

    // TileOps.rowGradients: D in chunks of two vectors (dO, q and dq's six vectors stay in registers
    // on 16-register machines too), then one vector, then the scalar tail as Kernels.axpy's
    static void rowGradients(float[] p, float[] ds, int n, float[] dO, float[] q, int ro, float[] k, int[] koff,
                             int[] to, float[] dv, float[] dk, float[] dq, int d) {
        int c = 0;
        for (; c + 2 * L <= d; c += 2 * L) {
            FloatVector o0 = FloatVector.fromArray(S, dO, ro + c), o1 = FloatVector.fromArray(S, dO, ro + c + L);
            FloatVector q0 = FloatVector.fromArray(S, q, ro + c), q1 = FloatVector.fromArray(S, q, ro + c + L);
            FloatVector a0 = FloatVector.fromArray(S, dq, c), a1 = FloatVector.fromArray(S, dq, c + L);
            for (int j = 0; j < n; j++) {
                FloatVector pj = FloatVector.broadcast(S, p[j]), sj = FloatVector.broadcast(S, ds[j]);
                int t = to[j] + c, o = koff[j] + c;
                o0.fma(pj, FloatVector.fromArray(S, dv, t)).intoArray(dv, t);
                o1.fma(pj, FloatVector.fromArray(S, dv, t + L)).intoArray(dv, t + L);
                q0.fma(sj, FloatVector.fromArray(S, dk, t)).intoArray(dk, t);
                q1.fma(sj, FloatVector.fromArray(S, dk, t + L)).intoArray(dk, t + L);
                a0 = FloatVector.fromArray(S, k, o).fma(sj, a0);
                a1 = FloatVector.fromArray(S, k, o + L).fma(sj, a1);
            }
            a0.intoArray(dq, c);
            a1.intoArray(dq, c + L);
        }
        if (c + L <= d) {
            FloatVector o0 = FloatVector.fromArray(S, dO, ro + c), q0 = FloatVector.fromArray(S, q, ro + c);
            FloatVector a0 = FloatVector.fromArray(S, dq, c);
            for (int j = 0; j < n; j++) {
                FloatVector sj = FloatVector.broadcast(S, ds[j]);
                int t = to[j] + c;
                o0.fma(FloatVector.broadcast(S, p[j]), FloatVector.fromArray(S, dv, t)).intoArray(dv, t);
                q0.fma(sj, FloatVector.fromArray(S, dk, t)).intoArray(dk, t);
                a0 = FloatVector.fromArray(S, k, koff[j] + c).fma(sj, a0);
            }
            a0.intoArray(dq, c);
            c += L;
        }
        if (c < d) {
            for (int j = 0; j < n; j++) {
                float pj = p[j], sj = ds[j];
                int t = to[j], o = koff[j];
                for (int e = c; e < d; e++) {
                    dv[t + e] += pj * dO[ro + e];
                    dk[t + e] += sj * q[ro + e];
                    dq[e] += sj * k[o + e];
                }
            }
        }
    }

    // TileOps.rowDotsPair: rowDots of (x, yt) and of (x2, yt2) over the same keys, four vectors of
    // keys of both in one pass (eight FMA chains), then rowDots of each for the rest
    static void rowDotsPair(float[] out, float[] x, float[] yt, float[] out2, float[] x2, float[] yt2, int xo,
                            int yo, int stride, int n, int d) {
        int j = 0;
        for (; j + 4 * L <= n; j += 4 * L) {
            FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
            for (int c = 0, o = yo + j; c < d; c++, o += stride) {
                FloatVector xc = FloatVector.broadcast(S, x[xo + c]), yc = FloatVector.broadcast(S, x2[xo + c]);
                a0 = FloatVector.fromArray(S, yt, o).fma(xc, a0);
                b0 = FloatVector.fromArray(S, yt2, o).fma(yc, b0);
                a1 = FloatVector.fromArray(S, yt, o + L).fma(xc, a1);
                b1 = FloatVector.fromArray(S, yt2, o + L).fma(yc, b1);
                a2 = FloatVector.fromArray(S, yt, o + 2 * L).fma(xc, a2);
                b2 = FloatVector.fromArray(S, yt2, o + 2 * L).fma(yc, b2);
                a3 = FloatVector.fromArray(S, yt, o + 3 * L).fma(xc, a3);
                b3 = FloatVector.fromArray(S, yt2, o + 3 * L).fma(yc, b3);
            }
            a0.intoArray(out, j);
            a1.intoArray(out, j + L);
            a2.intoArray(out, j + 2 * L);
            a3.intoArray(out, j + 3 * L);
            b0.intoArray(out2, j);
            b1.intoArray(out2, j + L);
            b2.intoArray(out2, j + 2 * L);
            b3.intoArray(out2, j + 3 * L);
        }
        if (j < n) {
            rowDotsFrom(out, x, xo, yt, yo, stride, j, n, d);
            rowDotsFrom(out2, x2, xo, yt2, yo, stride, j, n, d);
        }
    }

    static void rowDots(float[] out, float[] x, int xo, float[] yt, int yo, int stride, int n, int d) {
        rowDotsFrom(out, x, xo, yt, yo, stride, 0, n, d);
    }

    // rowDots of keys [j0, n)
    private static void rowDotsFrom(float[] out, float[] x, int xo, float[] yt, int yo, int stride, int j0, int n, int d) {
        int j = j0;
        // four vectors of keys: four independent FMA chains over the head dimension
        for (; j + 4 * L <= n; j += 4 * L) {
            FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
            for (int c = 0, o = yo + j; c < d; c++, o += stride) {
                FloatVector xc = FloatVector.broadcast(S, x[xo + c]);
                a0 = FloatVector.fromArray(S, yt, o).fma(xc, a0);
                a1 = FloatVector.fromArray(S, yt, o + L).fma(xc, a1);
                a2 = FloatVector.fromArray(S, yt, o + 2 * L).fma(xc, a2);
                a3 = FloatVector.fromArray(S, yt, o + 3 * L).fma(xc, a3);
            }
            a0.intoArray(out, j);
            a1.intoArray(out, j + L);
            a2.intoArray(out, j + 2 * L);
            a3.intoArray(out, j + 3 * L);
        }
        for (; j + L <= n; j += L) {
            FloatVector a0 = FloatVector.zero(S);
            for (int c = 0, o = yo + j; c < d; c++, o += stride) a0 = FloatVector.fromArray(S, yt, o).fma(FloatVector.broadcast(S, x[xo + c]), a0);
            a0.intoArray(out, j);
        }
        if (j < n) {
            // the last keys as one masked vector: a scalar tail reads each key's D floats a stride
            // apart, one cache line per float (short select-and-merge runs made it a tenth of training)
            VectorMask<Float> mk = S.indexInRange(j, n);
            FloatVector a0 = FloatVector.zero(S);
            for (int c = 0, o = yo + j; c < d; c++, o += stride) a0 = FloatVector.fromArray(S, yt, o, mk).fma(FloatVector.broadcast(S, x[xo + c]), a0);
            a0.intoArray(out, j, mk);
        }
    }

    // x[xo + j] = e^(x[xo + j] - m) for j < n; returns the sum (lanes summed in a fixed order, the last n mod L keys
    // as one masked vector)
    static float expShift(float[] x, int xo, int n, float m) {
        FloatVector acc = FloatVector.zero(S), mv = FloatVector.broadcast(S, m);
        int j = 0;
        for (; j <= n - L; j += L) {
            // exp written out (as in exp()): a helper taking a vector is boxed when C2 does not inline it
            FloatVector xc = FloatVector.fromArray(S, x, xo + j).sub(mv).max(-88f);
            FloatVector t = xc.fma(FloatVector.broadcast(S, LOG2E), FloatVector.broadcast(S, BIASED_MAGIC));
            FloatVector f = xc.fma(FloatVector.broadcast(S, LOG2E), FloatVector.broadcast(S, BIASED_MAGIC).sub(t));
            f = xc.fma(FloatVector.broadcast(S, LOG2E_LO), f);
            FloatVector p = f.fma(FloatVector.broadcast(S, P6), FloatVector.broadcast(S, P5))
                    .fma(f, FloatVector.broadcast(S, P4))
                    .fma(f, FloatVector.broadcast(S, P3))
                    .fma(f, FloatVector.broadcast(S, P2))
                    .fma(f, FloatVector.broadcast(S, P1))
                    .fma(f, FloatVector.broadcast(S, 1f));
            FloatVector e = p.mul(((IntVector) t.reinterpretAsInts()).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats());
            e.intoArray(x, xo + j);
            acc = acc.add(e);
        }
        if (j < n) {
            // the tail as one masked vector (Math.exp per key cost 5 % of training on short runs); the
            // polynomial written out again rather than through exp(): a helper taking a vector is boxed
            // when C2 does not inline it, an allocation per call here
            VectorMask<Float> mk = S.indexInRange(j, n);
            FloatVector xc = FloatVector.fromArray(S, x, xo + j, mk).sub(mv).max(-88f);
            FloatVector t = xc.fma(FloatVector.broadcast(S, LOG2E), FloatVector.broadcast(S, BIASED_MAGIC));
            FloatVector f = xc.fma(FloatVector.broadcast(S, LOG2E), FloatVector.broadcast(S, BIASED_MAGIC).sub(t));
            f = xc.fma(FloatVector.broadcast(S, LOG2E_LO), f);
            FloatVector p = f.fma(FloatVector.broadcast(S, P6), FloatVector.broadcast(S, P5))
                    .fma(f, FloatVector.broadcast(S, P4))
                    .fma(f, FloatVector.broadcast(S, P3))
                    .fma(f, FloatVector.broadcast(S, P2))
                    .fma(f, FloatVector.broadcast(S, P1))
                    .fma(f, FloatVector.broadcast(S, 1f));
            FloatVector e = p.mul(((IntVector) t.reinterpretAsInts()).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats());
            e.intoArray(x, xo + j, mk);
            acc = acc.add(e, mk);
        }
        // a fixed tree of lane adds (VectorMath.sum's: reduceLanes(ADD) sums in an order that differs
        // between JIT tiers), written out: VectorMath.sum(acc) ran boxed in decoding, where C2 did not
        // inline it into forwardRows' expShift (7 % of a decode step after a 2K prompt)
        for (VectorShuffle<Float> h : HALVES) acc = acc.add(acc.rearrange(h));
        return acc.lane(0);
    }

    // x[xo + i] = e^x[xo + i] for i < QB. Arrays in, arrays out: no vector crosses a call, so nothing
    // is boxed if C2 declines to inline.
    private static void expRow(float[] x, int xo) {
        for (int i = 0; i < QB; i += L) exp(FloatVector.fromArray(S, x, xo + i)).intoArray(x, xo + i);
    }

    static void online(float[] st, int nk, float[] m, float[] l, float[] ot, int d, float[] tmp) {
        online(st, nk, m, l, ot, d, tmp, nk, null, null);
    }

    // with hullLo != null: each slice of `slice` keys on its hull of query lanes only (TileOps.online's cut tiles)
    static void online(float[] st, int nk, float[] m, float[] l, float[] ot, int d, float[] tmp, int slice, int[] hullLo, int[] hullHi) {
        // tmp: [0, QB) what each row subtracts (its max), [QB, 2QB) alpha, [2QB, 3QB) the block's sums
        final int mu = 0, al = QB, su = 2 * QB;
        for (int io = 0; io < QB; io += L) {
            FloatVector mx = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
            for (int j0 = 0, sl = 0; j0 < nk; j0 += slice, sl++) {
                if (hullLo != null && (io < hullLo[sl] || io >= hullHi[sl])) continue;
                for (int j = j0, j1 = Math.min(nk, j0 + slice); j < j1; j++) mx = mx.max(FloatVector.fromArray(S, st, j * QB + io));
            }
            FloatVector mOld = FloatVector.fromArray(S, m, io);
            FloatVector mNew = mOld.max(mx);
            // rows with no visible key so far keep m = -inf; exp against -MAX then gives exact zeros
            FloatVector mUse = mNew.max(-Float.MAX_VALUE);
            mUse.intoArray(tmp, mu + io);
            mOld.sub(mUse).intoArray(tmp, al + io);
            mNew.intoArray(m, io);
        }
        expRow(tmp, al);                                          // alpha = e^(m_old - m_new)
        // P = e^(S - m), lanes outer and keys inner: each lane group's max and sum stay in registers
        // (one load and one store per 16 scores fewer than a pass per key row; the same sums, in the same order)
        for (int io = 0; io < QB; io += L) {
            FloatVector mv = FloatVector.fromArray(S, tmp, mu + io), acc = FloatVector.zero(S);
            for (int j0 = 0, sl = 0; j0 < nk; j0 += slice, sl++) {
                if (hullLo != null && (io < hullLo[sl] || io >= hullHi[sl])) continue;
                for (int j = j0, j1 = Math.min(nk, j0 + slice), so = j0 * QB + io; j < j1; j++, so += QB) {
                    FloatVector e = exp(FloatVector.fromArray(S, st, so).sub(mv));
                    e.intoArray(st, so);
                    acc = acc.add(e);
                }
            }
            acc.intoArray(tmp, su + io);
        }
        for (int io = 0; io < QB; io += L) {
            FloatVector alpha = FloatVector.fromArray(S, tmp, al + io);
            FloatVector.fromArray(S, l, io).fma(alpha, FloatVector.fromArray(S, tmp, su + io)).intoArray(l, io);
            if (alpha.compare(VectorOperators.NE, 1f).anyTrue()) {
                for (int c = 0; c < d; c++) {
                    int oo = c * QB + io;
                    FloatVector.fromArray(S, ot, oo).mul(alpha).intoArray(ot, oo);
                }
            }
        }
    }

    static void probs(float[] st, int nk, float[] lse, int nq) {
        for (int io = 0; io < nq; io += L) {                      // as online: each lane group's LSE in a register
            FloatVector lv = FloatVector.fromArray(S, lse, io);
            for (int j = 0, so = io; j < nk; j++, so += QB) exp(FloatVector.fromArray(S, st, so).sub(lv)).intoArray(st, so);
        }
    }

    static void dsoft(float[] dst, float[] p, int nk, float[] delta, int nq) {
        if (nq < QB) {
            // a block of few rows: only its vectors of lanes
            for (int io = 0; io < nq; io += L) {
                FloatVector dv = FloatVector.fromArray(S, delta, io);
                for (int j = 0, so = io; j < nk; j++, so += QB)
                    FloatVector.fromArray(S, dst, so).sub(dv).mul(FloatVector.fromArray(S, p, so)).intoArray(dst, so);
            }
            return;
        }
        FloatVector d0 = FloatVector.fromArray(S, delta, 0), d1 = FloatVector.fromArray(S, delta, L);
        FloatVector d2 = FloatVector.fromArray(S, delta, 2 * L), d3 = FloatVector.fromArray(S, delta, 3 * L);
        for (int j = 0; j < nk; j++) {
            int so = j * QB;
            FloatVector.fromArray(S, dst, so).sub(d0).mul(FloatVector.fromArray(S, p, so)).intoArray(dst, so);
            FloatVector.fromArray(S, dst, so + L).sub(d1).mul(FloatVector.fromArray(S, p, so + L)).intoArray(dst, so + L);
            FloatVector.fromArray(S, dst, so + 2 * L).sub(d2).mul(FloatVector.fromArray(S, p, so + 2 * L)).intoArray(dst, so + 2 * L);
            FloatVector.fromArray(S, dst, so + 3 * L).sub(d3).mul(FloatVector.fromArray(S, p, so + 3 * L)).intoArray(dst, so + 3 * L);
        }
    }

    static void rows(float[] c, float[] a, int nk, float[] b, int dp, int nq) {
        int j = 0;
        for (; j + 4 <= nk; j += 4) {
            int a0 = j * QB, a1 = a0 + QB, a2 = a1 + QB, a3 = a2 + QB;
            int e = 0;
            for (; e + 2 * L <= dp; e += 2 * L) {
                // 4 keys × 2 vectors of the head dimension
                FloatVector c00 = FloatVector.zero(S), c01 = c00, c10 = c00, c11 = c00;
                FloatVector c20 = c00, c21 = c00, c30 = c00, c31 = c00;
                for (int i = 0; i < nq; i++) {
                    int bo = i * dp + e;
                    FloatVector b0 = FloatVector.fromArray(S, b, bo), b1 = FloatVector.fromArray(S, b, bo + L);
                    FloatVector s = FloatVector.broadcast(S, a[a0 + i]);
                    c00 = b0.fma(s, c00); c01 = b1.fma(s, c01);
                    s = FloatVector.broadcast(S, a[a1 + i]);
                    c10 = b0.fma(s, c10); c11 = b1.fma(s, c11);
                    s = FloatVector.broadcast(S, a[a2 + i]);
                    c20 = b0.fma(s, c20); c21 = b1.fma(s, c21);
                    s = FloatVector.broadcast(S, a[a3 + i]);
                    c30 = b0.fma(s, c30); c31 = b1.fma(s, c31);
                }
                int co = j * dp + e;
                c00.intoArray(c, co); c01.intoArray(c, co + L); co += dp;
                c10.intoArray(c, co); c11.intoArray(c, co + L); co += dp;
                c20.intoArray(c, co); c21.intoArray(c, co + L); co += dp;
                c30.intoArray(c, co); c31.intoArray(c, co + L);
            }
            for (; e < dp; e += L) {
                FloatVector c0 = FloatVector.zero(S), c1 = c0, c2 = c0, c3 = c0;
                for (int i = 0; i < nq; i++) {
                    FloatVector b0 = FloatVector.fromArray(S, b, i * dp + e);
                    c0 = b0.fma(FloatVector.broadcast(S, a[a0 + i]), c0);
                    c1 = b0.fma(FloatVector.broadcast(S, a[a1 + i]), c1);
                    c2 = b0.fma(FloatVector.broadcast(S, a[a2 + i]), c2);
                    c3 = b0.fma(FloatVector.broadcast(S, a[a3 + i]), c3);
                }
                int co = j * dp + e;
                c0.intoArray(c, co); c1.intoArray(c, co + dp); c2.intoArray(c, co + 2 * dp); c3.intoArray(c, co + 3 * dp);
            }
        }
        for (; j < nk; j++) {
            int a0 = j * QB;
            for (int e = 0; e < dp; e += L) {
                FloatVector c0 = FloatVector.zero(S);
                for (int i = 0; i < nq; i++) c0 = FloatVector.fromArray(S, b, i * dp + e).fma(FloatVector.broadcast(S, a[a0 + i]), c0);
                c0.intoArray(c, j * dp + e);
            }
        }
    }

    /** Rows in a partial last vector up to which gatherT/mergeT copy element by element. */
    static final int FEW = Math.max(1, L / 4);
    /** Offsets of one lane's L consecutive head dimensions in a [D][QB] tile: a column, read by a gather. */
    private static final int[] COLUMN = new int[L];
    static {
        for (int i = 0; i < L; i++) COLUMN[i] = i * QB;
    }

    // the butterfly transpose's lane moves: stage s (distance k = 2^s) shifts lanes down (lane j takes
    // lane j − k) or up (j + k), and HIGH[s] marks the lanes whose bit s is set
    private static final VectorShuffle<Float>[] DOWN = new VectorShuffle[Integer.numberOfTrailingZeros(L)];
    private static final VectorShuffle<Float>[] UP = new VectorShuffle[Integer.numberOfTrailingZeros(L)];
    private static final VectorMask<Float>[] HIGH = new VectorMask[Integer.numberOfTrailingZeros(L)];

    static {
        for (int s = 0; s < DOWN.length; s++) {
            final int k = 1 << s;
            DOWN[s] = VectorShuffle.fromOp(S, j -> (j - k) & (L - 1));
            UP[s] = VectorShuffle.fromOp(S, j -> (j + k) & (L - 1));
            boolean[] high = new boolean[L];
            for (int j = 0; j < L; j++) high[j] = (j & k) != 0;
            HIGH[s] = VectorMask.fromArray(S, high, 0);
        }
    }

    /** Whether gatherT transposes whole L × L tiles in registers (16 and 8 lanes; other widths gather). */
    static final boolean TILE_TRANSPOSE = L == 16 || L == 8;

    // whole L × L tiles transposed in registers where they fit, else one gather per (d, query vector):
    // lane i reads x[xoff[i] + c]
    static void gatherT(float[] qt, float[] x, int[] xoff, int n, int d, float scale) {
        int dt = TILE_TRANSPOSE ? d / L * L : 0;
        for (int io = 0; io < QB; io += L) {
            if (io >= n) {
                for (int c = 0; c < d; c++) FloatVector.zero(S).intoArray(qt, c * QB + io);
                continue;
            }
            if (io + L <= n) {
                // whole tiles of L rows × L columns transposed in registers (a gather per column
                // costs several times more), then the remaining columns gathered
                for (int c0 = 0; c0 < dt; c0 += L) {
                    if (L == 16) transposeStore16(qt, x, xoff, io, c0, scale);
                    else transposeStore8(qt, x, xoff, io, c0, scale);
                }
                for (int c = dt; c < d; c++) FloatVector.fromArray(S, x, c, xoff, io).mul(scale).intoArray(qt, c * QB + io);
            } else if (n - io <= FEW) {
                // a few rows (decoding: one): scalar copies beat a masked gather per element
                for (int c = 0; c < d; c++) {
                    FloatVector.zero(S).intoArray(qt, c * QB + io);
                    for (int i = io; i < n; i++) qt[c * QB + i] = x[xoff[i] + c] * scale;
                }
            } else {
                VectorMask<Float> m = S.indexInRange(io, n);
                for (int c = 0; c < d; c++) FloatVector.fromArray(S, x, c, xoff, io, m).mul(scale).intoArray(qt, c * QB + io);
            }
        }
    }

    // rows x[xoff[io + r] + c0 ..+16) for r < 16, transposed in registers (a butterfly: at distance k, rows i and
    // i + k swap the lanes whose bit k differs) and stored times scale as qt[(c0 + c)·QB + io ..+16)
    private static void transposeStore16(float[] qt, float[] x, int[] xoff, int io, int c0, float scale) {
        FloatVector v0 = FloatVector.fromArray(S, x, xoff[io + 0] + c0);
        FloatVector v1 = FloatVector.fromArray(S, x, xoff[io + 1] + c0);
        FloatVector v2 = FloatVector.fromArray(S, x, xoff[io + 2] + c0);
        FloatVector v3 = FloatVector.fromArray(S, x, xoff[io + 3] + c0);
        FloatVector v4 = FloatVector.fromArray(S, x, xoff[io + 4] + c0);
        FloatVector v5 = FloatVector.fromArray(S, x, xoff[io + 5] + c0);
        FloatVector v6 = FloatVector.fromArray(S, x, xoff[io + 6] + c0);
        FloatVector v7 = FloatVector.fromArray(S, x, xoff[io + 7] + c0);
        FloatVector v8 = FloatVector.fromArray(S, x, xoff[io + 8] + c0);
        FloatVector v9 = FloatVector.fromArray(S, x, xoff[io + 9] + c0);
        FloatVector v10 = FloatVector.fromArray(S, x, xoff[io + 10] + c0);
        FloatVector v11 = FloatVector.fromArray(S, x, xoff[io + 11] + c0);
        FloatVector v12 = FloatVector.fromArray(S, x, xoff[io + 12] + c0);
        FloatVector v13 = FloatVector.fromArray(S, x, xoff[io + 13] + c0);
        FloatVector v14 = FloatVector.fromArray(S, x, xoff[io + 14] + c0);
        FloatVector v15 = FloatVector.fromArray(S, x, xoff[io + 15] + c0);
        // distance 1
        { FloatVector a = v0, b = v1; v0 = a.blend(b.rearrange(DOWN[0]), HIGH[0]); v1 = a.rearrange(UP[0]).blend(b, HIGH[0]); }
        { FloatVector a = v2, b = v3; v2 = a.blend(b.rearrange(DOWN[0]), HIGH[0]); v3 = a.rearrange(UP[0]).blend(b, HIGH[0]); }
        { FloatVector a = v4, b = v5; v4 = a.blend(b.rearrange(DOWN[0]), HIGH[0]); v5 = a.rearrange(UP[0]).blend(b, HIGH[0]); }
        { FloatVector a = v6, b = v7; v6 = a.blend(b.rearrange(DOWN[0]), HIGH[0]); v7 = a.rearrange(UP[0]).blend(b, HIGH[0]); }
        { FloatVector a = v8, b = v9; v8 = a.blend(b.rearrange(DOWN[0]), HIGH[0]); v9 = a.rearrange(UP[0]).blend(b, HIGH[0]); }
        { FloatVector a = v10, b = v11; v10 = a.blend(b.rearrange(DOWN[0]), HIGH[0]); v11 = a.rearrange(UP[0]).blend(b, HIGH[0]); }
        { FloatVector a = v12, b = v13; v12 = a.blend(b.rearrange(DOWN[0]), HIGH[0]); v13 = a.rearrange(UP[0]).blend(b, HIGH[0]); }
        { FloatVector a = v14, b = v15; v14 = a.blend(b.rearrange(DOWN[0]), HIGH[0]); v15 = a.rearrange(UP[0]).blend(b, HIGH[0]); }
        // distance 2
        { FloatVector a = v0, b = v2; v0 = a.blend(b.rearrange(DOWN[1]), HIGH[1]); v2 = a.rearrange(UP[1]).blend(b, HIGH[1]); }
        { FloatVector a = v1, b = v3; v1 = a.blend(b.rearrange(DOWN[1]), HIGH[1]); v3 = a.rearrange(UP[1]).blend(b, HIGH[1]); }
        { FloatVector a = v4, b = v6; v4 = a.blend(b.rearrange(DOWN[1]), HIGH[1]); v6 = a.rearrange(UP[1]).blend(b, HIGH[1]); }
        { FloatVector a = v5, b = v7; v5 = a.blend(b.rearrange(DOWN[1]), HIGH[1]); v7 = a.rearrange(UP[1]).blend(b, HIGH[1]); }
        { FloatVector a = v8, b = v10; v8 = a.blend(b.rearrange(DOWN[1]), HIGH[1]); v10 = a.rearrange(UP[1]).blend(b, HIGH[1]); }
        { FloatVector a = v9, b = v11; v9 = a.blend(b.rearrange(DOWN[1]), HIGH[1]); v11 = a.rearrange(UP[1]).blend(b, HIGH[1]); }
        { FloatVector a = v12, b = v14; v12 = a.blend(b.rearrange(DOWN[1]), HIGH[1]); v14 = a.rearrange(UP[1]).blend(b, HIGH[1]); }
        { FloatVector a = v13, b = v15; v13 = a.blend(b.rearrange(DOWN[1]), HIGH[1]); v15 = a.rearrange(UP[1]).blend(b, HIGH[1]); }
        // distance 4
        { FloatVector a = v0, b = v4; v0 = a.blend(b.rearrange(DOWN[2]), HIGH[2]); v4 = a.rearrange(UP[2]).blend(b, HIGH[2]); }
        { FloatVector a = v1, b = v5; v1 = a.blend(b.rearrange(DOWN[2]), HIGH[2]); v5 = a.rearrange(UP[2]).blend(b, HIGH[2]); }
        { FloatVector a = v2, b = v6; v2 = a.blend(b.rearrange(DOWN[2]), HIGH[2]); v6 = a.rearrange(UP[2]).blend(b, HIGH[2]); }
        { FloatVector a = v3, b = v7; v3 = a.blend(b.rearrange(DOWN[2]), HIGH[2]); v7 = a.rearrange(UP[2]).blend(b, HIGH[2]); }
        { FloatVector a = v8, b = v12; v8 = a.blend(b.rearrange(DOWN[2]), HIGH[2]); v12 = a.rearrange(UP[2]).blend(b, HIGH[2]); }
        { FloatVector a = v9, b = v13; v9 = a.blend(b.rearrange(DOWN[2]), HIGH[2]); v13 = a.rearrange(UP[2]).blend(b, HIGH[2]); }
        { FloatVector a = v10, b = v14; v10 = a.blend(b.rearrange(DOWN[2]), HIGH[2]); v14 = a.rearrange(UP[2]).blend(b, HIGH[2]); }
        { FloatVector a = v11, b = v15; v11 = a.blend(b.rearrange(DOWN[2]), HIGH[2]); v15 = a.rearrange(UP[2]).blend(b, HIGH[2]); }
        // distance 8
        { FloatVector a = v0, b = v8; v0 = a.blend(b.rearrange(DOWN[3]), HIGH[3]); v8 = a.rearrange(UP[3]).blend(b, HIGH[3]); }
        { FloatVector a = v1, b = v9; v1 = a.blend(b.rearrange(DOWN[3]), HIGH[3]); v9 = a.rearrange(UP[3]).blend(b, HIGH[3]); }
        { FloatVector a = v2, b = v10; v2 = a.blend(b.rearrange(DOWN[3]), HIGH[3]); v10 = a.rearrange(UP[3]).blend(b, HIGH[3]); }
        { FloatVector a = v3, b = v11; v3 = a.blend(b.rearrange(DOWN[3]), HIGH[3]); v11 = a.rearrange(UP[3]).blend(b, HIGH[3]); }
        { FloatVector a = v4, b = v12; v4 = a.blend(b.rearrange(DOWN[3]), HIGH[3]); v12 = a.rearrange(UP[3]).blend(b, HIGH[3]); }
        { FloatVector a = v5, b = v13; v5 = a.blend(b.rearrange(DOWN[3]), HIGH[3]); v13 = a.rearrange(UP[3]).blend(b, HIGH[3]); }
        { FloatVector a = v6, b = v14; v6 = a.blend(b.rearrange(DOWN[3]), HIGH[3]); v14 = a.rearrange(UP[3]).blend(b, HIGH[3]); }
        { FloatVector a = v7, b = v15; v7 = a.blend(b.rearrange(DOWN[3]), HIGH[3]); v15 = a.rearrange(UP[3]).blend(b, HIGH[3]); }
        v0.mul(scale).intoArray(qt, (c0 + 0) * QB + io);
        v1.mul(scale).intoArray(qt, (c0 + 1) * QB + io);
        v2.mul(scale).intoArray(qt, (c0 + 2) * QB + io);
        v3.mul(scale).intoArray(qt, (c0 + 3) * QB + io);
        v4.mul(scale).intoArray(qt, (c0 + 4) * QB + io);
        v5.mul(scale).intoArray(qt, (c0 + 5) * QB + io);
        v6.mul(scale).intoArray(qt, (c0 + 6) * QB + io);
        v7.mul(scale).intoArray(qt, (c0 + 7) * QB + io);
        v8.mul(scale).intoArray(qt, (c0 + 8) * QB + io);
        v9.mul(scale).intoArray(qt, (c0 + 9) * QB + io);
        v10.mul(scale).intoArray(qt, (c0 + 10) * QB + io);
        v11.mul(scale).intoArray(qt, (c0 + 11) * QB + io);
        v12.mul(scale).intoArray(qt, (c0 + 12) * QB + io);
        v13.mul(scale).intoArray(qt, (c0 + 13) * QB + io);
        v14.mul(scale).intoArray(qt, (c0 + 14) * QB + io);
        v15.mul(scale).intoArray(qt, (c0 + 15) * QB + io);
    }

    // rows x[xoff[io + r] + c0 ..+8) for r < 8, transposed in registers (a butterfly: at distance k, rows i and
    // i + k swap the lanes whose bit k differs) and stored times scale as qt[(c0 + c)·QB + io ..+8)
    private static void transposeStore8(float[] qt, float[] x, int[] xoff, int io, int c0, float scale) {
        FloatVector v0 = FloatVector.fromArray(S, x, xoff[io + 0] + c0);
        FloatVector v1 = FloatVector.fromArray(S, x, xoff[io + 1] + c0);
        FloatVector v2 = FloatVector.fromArray(S, x, xoff[io + 2] + c0);
        FloatVector v3 = FloatVector.fromArray(S, x, xoff[io + 3] + c0);
        FloatVector v4 = FloatVector.fromArray(S, x, xoff[io + 4] + c0);
        FloatVector v5 = FloatVector.fromArray(S, x, xoff[io + 5] + c0);
        FloatVector v6 = FloatVector.fromArray(S, x, xoff[io + 6] + c0);
        FloatVector v7 = FloatVector.fromArray(S, x, xoff[io + 7] + c0);
        // distance 1
        { FloatVector a = v0, b = v1; v0 = a.blend(b.rearrange(DOWN[0]), HIGH[0]); v1 = a.rearrange(UP[0]).blend(b, HIGH[0]); }
        { FloatVector a = v2, b = v3; v2 = a.blend(b.rearrange(DOWN[0]), HIGH[0]); v3 = a.rearrange(UP[0]).blend(b, HIGH[0]); }
        { FloatVector a = v4, b = v5; v4 = a.blend(b.rearrange(DOWN[0]), HIGH[0]); v5 = a.rearrange(UP[0]).blend(b, HIGH[0]); }
        { FloatVector a = v6, b = v7; v6 = a.blend(b.rearrange(DOWN[0]), HIGH[0]); v7 = a.rearrange(UP[0]).blend(b, HIGH[0]); }
        // distance 2
        { FloatVector a = v0, b = v2; v0 = a.blend(b.rearrange(DOWN[1]), HIGH[1]); v2 = a.rearrange(UP[1]).blend(b, HIGH[1]); }
        { FloatVector a = v1, b = v3; v1 = a.blend(b.rearrange(DOWN[1]), HIGH[1]); v3 = a.rearrange(UP[1]).blend(b, HIGH[1]); }
        { FloatVector a = v4, b = v6; v4 = a.blend(b.rearrange(DOWN[1]), HIGH[1]); v6 = a.rearrange(UP[1]).blend(b, HIGH[1]); }
        { FloatVector a = v5, b = v7; v5 = a.blend(b.rearrange(DOWN[1]), HIGH[1]); v7 = a.rearrange(UP[1]).blend(b, HIGH[1]); }
        // distance 4
        { FloatVector a = v0, b = v4; v0 = a.blend(b.rearrange(DOWN[2]), HIGH[2]); v4 = a.rearrange(UP[2]).blend(b, HIGH[2]); }
        { FloatVector a = v1, b = v5; v1 = a.blend(b.rearrange(DOWN[2]), HIGH[2]); v5 = a.rearrange(UP[2]).blend(b, HIGH[2]); }
        { FloatVector a = v2, b = v6; v2 = a.blend(b.rearrange(DOWN[2]), HIGH[2]); v6 = a.rearrange(UP[2]).blend(b, HIGH[2]); }
        { FloatVector a = v3, b = v7; v3 = a.blend(b.rearrange(DOWN[2]), HIGH[2]); v7 = a.rearrange(UP[2]).blend(b, HIGH[2]); }
        v0.mul(scale).intoArray(qt, (c0 + 0) * QB + io);
        v1.mul(scale).intoArray(qt, (c0 + 1) * QB + io);
        v2.mul(scale).intoArray(qt, (c0 + 2) * QB + io);
        v3.mul(scale).intoArray(qt, (c0 + 3) * QB + io);
        v4.mul(scale).intoArray(qt, (c0 + 4) * QB + io);
        v5.mul(scale).intoArray(qt, (c0 + 5) * QB + io);
        v6.mul(scale).intoArray(qt, (c0 + 6) * QB + io);
        v7.mul(scale).intoArray(qt, (c0 + 7) * QB + io);
    }

    // ot[(c0 + r)·QB + io ..+16) for r < 16 (query lanes io.. of dimension c0 + r), transposed in registers into
    // the rows' dimensions c0 ..+16 and stored times wb[row] as o[ooff[io + k] + c0 ..+16), or with wa, added:
    // wa[row]·o + wb[row]·v (the lane path's mul, mul, add: the same bits). The butterfly is transposeStore16's,
    // written out again: its vectors must stay in locals (an array of them would be boxed)
    private static void transposeMerge16(float[] o, int[] ooff, int io, int c0, float[] ot, float[] wa, float[] wb) {
        FloatVector v0 = FloatVector.fromArray(S, ot, (c0 + 0) * QB + io);
        FloatVector v1 = FloatVector.fromArray(S, ot, (c0 + 1) * QB + io);
        FloatVector v2 = FloatVector.fromArray(S, ot, (c0 + 2) * QB + io);
        FloatVector v3 = FloatVector.fromArray(S, ot, (c0 + 3) * QB + io);
        FloatVector v4 = FloatVector.fromArray(S, ot, (c0 + 4) * QB + io);
        FloatVector v5 = FloatVector.fromArray(S, ot, (c0 + 5) * QB + io);
        FloatVector v6 = FloatVector.fromArray(S, ot, (c0 + 6) * QB + io);
        FloatVector v7 = FloatVector.fromArray(S, ot, (c0 + 7) * QB + io);
        FloatVector v8 = FloatVector.fromArray(S, ot, (c0 + 8) * QB + io);
        FloatVector v9 = FloatVector.fromArray(S, ot, (c0 + 9) * QB + io);
        FloatVector v10 = FloatVector.fromArray(S, ot, (c0 + 10) * QB + io);
        FloatVector v11 = FloatVector.fromArray(S, ot, (c0 + 11) * QB + io);
        FloatVector v12 = FloatVector.fromArray(S, ot, (c0 + 12) * QB + io);
        FloatVector v13 = FloatVector.fromArray(S, ot, (c0 + 13) * QB + io);
        FloatVector v14 = FloatVector.fromArray(S, ot, (c0 + 14) * QB + io);
        FloatVector v15 = FloatVector.fromArray(S, ot, (c0 + 15) * QB + io);
        // distance 1
        { FloatVector a = v0, b = v1; v0 = a.blend(b.rearrange(DOWN[0]), HIGH[0]); v1 = a.rearrange(UP[0]).blend(b, HIGH[0]); }
        { FloatVector a = v2, b = v3; v2 = a.blend(b.rearrange(DOWN[0]), HIGH[0]); v3 = a.rearrange(UP[0]).blend(b, HIGH[0]); }
        { FloatVector a = v4, b = v5; v4 = a.blend(b.rearrange(DOWN[0]), HIGH[0]); v5 = a.rearrange(UP[0]).blend(b, HIGH[0]); }
        { FloatVector a = v6, b = v7; v6 = a.blend(b.rearrange(DOWN[0]), HIGH[0]); v7 = a.rearrange(UP[0]).blend(b, HIGH[0]); }
        { FloatVector a = v8, b = v9; v8 = a.blend(b.rearrange(DOWN[0]), HIGH[0]); v9 = a.rearrange(UP[0]).blend(b, HIGH[0]); }
        { FloatVector a = v10, b = v11; v10 = a.blend(b.rearrange(DOWN[0]), HIGH[0]); v11 = a.rearrange(UP[0]).blend(b, HIGH[0]); }
        { FloatVector a = v12, b = v13; v12 = a.blend(b.rearrange(DOWN[0]), HIGH[0]); v13 = a.rearrange(UP[0]).blend(b, HIGH[0]); }
        { FloatVector a = v14, b = v15; v14 = a.blend(b.rearrange(DOWN[0]), HIGH[0]); v15 = a.rearrange(UP[0]).blend(b, HIGH[0]); }
        // distance 2
        { FloatVector a = v0, b = v2; v0 = a.blend(b.rearrange(DOWN[1]), HIGH[1]); v2 = a.rearrange(UP[1]).blend(b, HIGH[1]); }
        { FloatVector a = v1, b = v3; v1 = a.blend(b.rearrange(DOWN[1]), HIGH[1]); v3 = a.rearrange(UP[1]).blend(b, HIGH[1]); }
        { FloatVector a = v4, b = v6; v4 = a.blend(b.rearrange(DOWN[1]), HIGH[1]); v6 = a.rearrange(UP[1]).blend(b, HIGH[1]); }
        { FloatVector a = v5, b = v7; v5 = a.blend(b.rearrange(DOWN[1]), HIGH[1]); v7 = a.rearrange(UP[1]).blend(b, HIGH[1]); }
        { FloatVector a = v8, b = v10; v8 = a.blend(b.rearrange(DOWN[1]), HIGH[1]); v10 = a.rearrange(UP[1]).blend(b, HIGH[1]); }
        { FloatVector a = v9, b = v11; v9 = a.blend(b.rearrange(DOWN[1]), HIGH[1]); v11 = a.rearrange(UP[1]).blend(b, HIGH[1]); }
        { FloatVector a = v12, b = v14; v12 = a.blend(b.rearrange(DOWN[1]), HIGH[1]); v14 = a.rearrange(UP[1]).blend(b, HIGH[1]); }
        { FloatVector a = v13, b = v15; v13 = a.blend(b.rearrange(DOWN[1]), HIGH[1]); v15 = a.rearrange(UP[1]).blend(b, HIGH[1]); }
        // distance 4
        { FloatVector a = v0, b = v4; v0 = a.blend(b.rearrange(DOWN[2]), HIGH[2]); v4 = a.rearrange(UP[2]).blend(b, HIGH[2]); }
        { FloatVector a = v1, b = v5; v1 = a.blend(b.rearrange(DOWN[2]), HIGH[2]); v5 = a.rearrange(UP[2]).blend(b, HIGH[2]); }
        { FloatVector a = v2, b = v6; v2 = a.blend(b.rearrange(DOWN[2]), HIGH[2]); v6 = a.rearrange(UP[2]).blend(b, HIGH[2]); }
        { FloatVector a = v3, b = v7; v3 = a.blend(b.rearrange(DOWN[2]), HIGH[2]); v7 = a.rearrange(UP[2]).blend(b, HIGH[2]); }
        { FloatVector a = v8, b = v12; v8 = a.blend(b.rearrange(DOWN[2]), HIGH[2]); v12 = a.rearrange(UP[2]).blend(b, HIGH[2]); }
        { FloatVector a = v9, b = v13; v9 = a.blend(b.rearrange(DOWN[2]), HIGH[2]); v13 = a.rearrange(UP[2]).blend(b, HIGH[2]); }
        { FloatVector a = v10, b = v14; v10 = a.blend(b.rearrange(DOWN[2]), HIGH[2]); v14 = a.rearrange(UP[2]).blend(b, HIGH[2]); }
        { FloatVector a = v11, b = v15; v11 = a.blend(b.rearrange(DOWN[2]), HIGH[2]); v15 = a.rearrange(UP[2]).blend(b, HIGH[2]); }
        // distance 8
        { FloatVector a = v0, b = v8; v0 = a.blend(b.rearrange(DOWN[3]), HIGH[3]); v8 = a.rearrange(UP[3]).blend(b, HIGH[3]); }
        { FloatVector a = v1, b = v9; v1 = a.blend(b.rearrange(DOWN[3]), HIGH[3]); v9 = a.rearrange(UP[3]).blend(b, HIGH[3]); }
        { FloatVector a = v2, b = v10; v2 = a.blend(b.rearrange(DOWN[3]), HIGH[3]); v10 = a.rearrange(UP[3]).blend(b, HIGH[3]); }
        { FloatVector a = v3, b = v11; v3 = a.blend(b.rearrange(DOWN[3]), HIGH[3]); v11 = a.rearrange(UP[3]).blend(b, HIGH[3]); }
        { FloatVector a = v4, b = v12; v4 = a.blend(b.rearrange(DOWN[3]), HIGH[3]); v12 = a.rearrange(UP[3]).blend(b, HIGH[3]); }
        { FloatVector a = v5, b = v13; v5 = a.blend(b.rearrange(DOWN[3]), HIGH[3]); v13 = a.rearrange(UP[3]).blend(b, HIGH[3]); }
        { FloatVector a = v6, b = v14; v6 = a.blend(b.rearrange(DOWN[3]), HIGH[3]); v14 = a.rearrange(UP[3]).blend(b, HIGH[3]); }
        { FloatVector a = v7, b = v15; v7 = a.blend(b.rearrange(DOWN[3]), HIGH[3]); v15 = a.rearrange(UP[3]).blend(b, HIGH[3]); }
        // written out in both forms: a helper taking the row vector was not inlined and boxed it (block:256 -15 %)
        if (wa == null) {
            v0.mul(wb[io]).intoArray(o, ooff[io] + c0);
            v1.mul(wb[io + 1]).intoArray(o, ooff[io + 1] + c0);
            v2.mul(wb[io + 2]).intoArray(o, ooff[io + 2] + c0);
            v3.mul(wb[io + 3]).intoArray(o, ooff[io + 3] + c0);
            v4.mul(wb[io + 4]).intoArray(o, ooff[io + 4] + c0);
            v5.mul(wb[io + 5]).intoArray(o, ooff[io + 5] + c0);
            v6.mul(wb[io + 6]).intoArray(o, ooff[io + 6] + c0);
            v7.mul(wb[io + 7]).intoArray(o, ooff[io + 7] + c0);
            v8.mul(wb[io + 8]).intoArray(o, ooff[io + 8] + c0);
            v9.mul(wb[io + 9]).intoArray(o, ooff[io + 9] + c0);
            v10.mul(wb[io + 10]).intoArray(o, ooff[io + 10] + c0);
            v11.mul(wb[io + 11]).intoArray(o, ooff[io + 11] + c0);
            v12.mul(wb[io + 12]).intoArray(o, ooff[io + 12] + c0);
            v13.mul(wb[io + 13]).intoArray(o, ooff[io + 13] + c0);
            v14.mul(wb[io + 14]).intoArray(o, ooff[io + 14] + c0);
            v15.mul(wb[io + 15]).intoArray(o, ooff[io + 15] + c0);
        } else {
            FloatVector.fromArray(S, o, ooff[io] + c0).mul(wa[io]).add(v0.mul(wb[io])).intoArray(o, ooff[io] + c0);
            FloatVector.fromArray(S, o, ooff[io + 1] + c0).mul(wa[io + 1]).add(v1.mul(wb[io + 1])).intoArray(o, ooff[io + 1] + c0);
            FloatVector.fromArray(S, o, ooff[io + 2] + c0).mul(wa[io + 2]).add(v2.mul(wb[io + 2])).intoArray(o, ooff[io + 2] + c0);
            FloatVector.fromArray(S, o, ooff[io + 3] + c0).mul(wa[io + 3]).add(v3.mul(wb[io + 3])).intoArray(o, ooff[io + 3] + c0);
            FloatVector.fromArray(S, o, ooff[io + 4] + c0).mul(wa[io + 4]).add(v4.mul(wb[io + 4])).intoArray(o, ooff[io + 4] + c0);
            FloatVector.fromArray(S, o, ooff[io + 5] + c0).mul(wa[io + 5]).add(v5.mul(wb[io + 5])).intoArray(o, ooff[io + 5] + c0);
            FloatVector.fromArray(S, o, ooff[io + 6] + c0).mul(wa[io + 6]).add(v6.mul(wb[io + 6])).intoArray(o, ooff[io + 6] + c0);
            FloatVector.fromArray(S, o, ooff[io + 7] + c0).mul(wa[io + 7]).add(v7.mul(wb[io + 7])).intoArray(o, ooff[io + 7] + c0);
            FloatVector.fromArray(S, o, ooff[io + 8] + c0).mul(wa[io + 8]).add(v8.mul(wb[io + 8])).intoArray(o, ooff[io + 8] + c0);
            FloatVector.fromArray(S, o, ooff[io + 9] + c0).mul(wa[io + 9]).add(v9.mul(wb[io + 9])).intoArray(o, ooff[io + 9] + c0);
            FloatVector.fromArray(S, o, ooff[io + 10] + c0).mul(wa[io + 10]).add(v10.mul(wb[io + 10])).intoArray(o, ooff[io + 10] + c0);
            FloatVector.fromArray(S, o, ooff[io + 11] + c0).mul(wa[io + 11]).add(v11.mul(wb[io + 11])).intoArray(o, ooff[io + 11] + c0);
            FloatVector.fromArray(S, o, ooff[io + 12] + c0).mul(wa[io + 12]).add(v12.mul(wb[io + 12])).intoArray(o, ooff[io + 12] + c0);
            FloatVector.fromArray(S, o, ooff[io + 13] + c0).mul(wa[io + 13]).add(v13.mul(wb[io + 13])).intoArray(o, ooff[io + 13] + c0);
            FloatVector.fromArray(S, o, ooff[io + 14] + c0).mul(wa[io + 14]).add(v14.mul(wb[io + 14])).intoArray(o, ooff[io + 14] + c0);
            FloatVector.fromArray(S, o, ooff[io + 15] + c0).mul(wa[io + 15]).add(v15.mul(wb[io + 15])).intoArray(o, ooff[io + 15] + c0);
        }
    }

    // transposeMerge16 for 8 lanes: ot[(c0 + r)·QB + io ..+8) for r < 8 into o[ooff[io + k] + c0 ..+8) times wb[io + k]
    private static void transposeMerge8(float[] o, int[] ooff, int io, int c0, float[] ot, float[] wa, float[] wb) {
        FloatVector v0 = FloatVector.fromArray(S, ot, (c0 + 0) * QB + io);
        FloatVector v1 = FloatVector.fromArray(S, ot, (c0 + 1) * QB + io);
        FloatVector v2 = FloatVector.fromArray(S, ot, (c0 + 2) * QB + io);
        FloatVector v3 = FloatVector.fromArray(S, ot, (c0 + 3) * QB + io);
        FloatVector v4 = FloatVector.fromArray(S, ot, (c0 + 4) * QB + io);
        FloatVector v5 = FloatVector.fromArray(S, ot, (c0 + 5) * QB + io);
        FloatVector v6 = FloatVector.fromArray(S, ot, (c0 + 6) * QB + io);
        FloatVector v7 = FloatVector.fromArray(S, ot, (c0 + 7) * QB + io);
        // distance 1
        { FloatVector a = v0, b = v1; v0 = a.blend(b.rearrange(DOWN[0]), HIGH[0]); v1 = a.rearrange(UP[0]).blend(b, HIGH[0]); }
        { FloatVector a = v2, b = v3; v2 = a.blend(b.rearrange(DOWN[0]), HIGH[0]); v3 = a.rearrange(UP[0]).blend(b, HIGH[0]); }
        { FloatVector a = v4, b = v5; v4 = a.blend(b.rearrange(DOWN[0]), HIGH[0]); v5 = a.rearrange(UP[0]).blend(b, HIGH[0]); }
        { FloatVector a = v6, b = v7; v6 = a.blend(b.rearrange(DOWN[0]), HIGH[0]); v7 = a.rearrange(UP[0]).blend(b, HIGH[0]); }
        // distance 2
        { FloatVector a = v0, b = v2; v0 = a.blend(b.rearrange(DOWN[1]), HIGH[1]); v2 = a.rearrange(UP[1]).blend(b, HIGH[1]); }
        { FloatVector a = v1, b = v3; v1 = a.blend(b.rearrange(DOWN[1]), HIGH[1]); v3 = a.rearrange(UP[1]).blend(b, HIGH[1]); }
        { FloatVector a = v4, b = v6; v4 = a.blend(b.rearrange(DOWN[1]), HIGH[1]); v6 = a.rearrange(UP[1]).blend(b, HIGH[1]); }
        { FloatVector a = v5, b = v7; v5 = a.blend(b.rearrange(DOWN[1]), HIGH[1]); v7 = a.rearrange(UP[1]).blend(b, HIGH[1]); }
        // distance 4
        { FloatVector a = v0, b = v4; v0 = a.blend(b.rearrange(DOWN[2]), HIGH[2]); v4 = a.rearrange(UP[2]).blend(b, HIGH[2]); }
        { FloatVector a = v1, b = v5; v1 = a.blend(b.rearrange(DOWN[2]), HIGH[2]); v5 = a.rearrange(UP[2]).blend(b, HIGH[2]); }
        { FloatVector a = v2, b = v6; v2 = a.blend(b.rearrange(DOWN[2]), HIGH[2]); v6 = a.rearrange(UP[2]).blend(b, HIGH[2]); }
        { FloatVector a = v3, b = v7; v3 = a.blend(b.rearrange(DOWN[2]), HIGH[2]); v7 = a.rearrange(UP[2]).blend(b, HIGH[2]); }
        // written out in both forms: a helper taking the row vector was not inlined and boxed it (block:256 -15 %)
        if (wa == null) {
            v0.mul(wb[io]).intoArray(o, ooff[io] + c0);
            v1.mul(wb[io + 1]).intoArray(o, ooff[io + 1] + c0);
            v2.mul(wb[io + 2]).intoArray(o, ooff[io + 2] + c0);
            v3.mul(wb[io + 3]).intoArray(o, ooff[io + 3] + c0);
            v4.mul(wb[io + 4]).intoArray(o, ooff[io + 4] + c0);
            v5.mul(wb[io + 5]).intoArray(o, ooff[io + 5] + c0);
            v6.mul(wb[io + 6]).intoArray(o, ooff[io + 6] + c0);
            v7.mul(wb[io + 7]).intoArray(o, ooff[io + 7] + c0);
        } else {
            FloatVector.fromArray(S, o, ooff[io] + c0).mul(wa[io]).add(v0.mul(wb[io])).intoArray(o, ooff[io] + c0);
            FloatVector.fromArray(S, o, ooff[io + 1] + c0).mul(wa[io + 1]).add(v1.mul(wb[io + 1])).intoArray(o, ooff[io + 1] + c0);
            FloatVector.fromArray(S, o, ooff[io + 2] + c0).mul(wa[io + 2]).add(v2.mul(wb[io + 2])).intoArray(o, ooff[io + 2] + c0);
            FloatVector.fromArray(S, o, ooff[io + 3] + c0).mul(wa[io + 3]).add(v3.mul(wb[io + 3])).intoArray(o, ooff[io + 3] + c0);
            FloatVector.fromArray(S, o, ooff[io + 4] + c0).mul(wa[io + 4]).add(v4.mul(wb[io + 4])).intoArray(o, ooff[io + 4] + c0);
            FloatVector.fromArray(S, o, ooff[io + 5] + c0).mul(wa[io + 5]).add(v5.mul(wb[io + 5])).intoArray(o, ooff[io + 5] + c0);
            FloatVector.fromArray(S, o, ooff[io + 6] + c0).mul(wa[io + 6]).add(v6.mul(wb[io + 6])).intoArray(o, ooff[io + 6] + c0);
            FloatVector.fromArray(S, o, ooff[io + 7] + c0).mul(wa[io + 7]).add(v7.mul(wb[io + 7])).intoArray(o, ooff[io + 7] + c0);
        }
    }

    // gather, blend, scatter per (d, query vector); masked where the block has fewer than QB rows
    static void mergeT(float[] o, int[] ooff, int n, int d, float[] ot, float[] wa, float[] wb) {
        for (int io = 0; io < n; io += L) {
            FloatVector a = FloatVector.fromArray(S, wa, io), b = FloatVector.fromArray(S, wb, io);
            if (io + L <= n && !a.compare(VectorOperators.NE, 0f).anyTrue()) {
                // the rows' first part (one-part patterns: their only one): nothing to read back, and
                // each output row is written whole: a strided gather from ot per vector of the row and
                // a contiguous store (a scatter per head dimension costs more, on AMD especially)
                if (TILE_TRANSPOSE && d % L == 0) {
                    // whole L × L tiles transposed in registers, as gatherT's: with the output rows read
                    // in beforehand (gatherQueries) block:256 +3-5 % at 16 lanes, +3-12 % at 8, where
                    // through the strided gathers below it had been slower (the stores then missed)
                    for (int c = 0; c < d; c += L) {
                        if (L == 16) transposeMerge16(o, ooff, io, c, ot, null, wb);
                        else transposeMerge8(o, ooff, io, c, ot, null, wb);
                    }
                    continue;
                }
                int c0 = d / L * L;
                for (int i = io; i < io + L; i++) {
                    float bi = wb[i];
                    int oo = ooff[i];
                    for (int c = 0; c < c0; c += L) FloatVector.fromArray(S, ot, c * QB + i, COLUMN, 0).mul(bi).intoArray(o, oo + c);
                    for (int c = c0; c < d; c++) o[oo + c] = ot[c * QB + i] * bi;
                }
            } else if (io + L <= n && TILE_TRANSPOSE && d % L == 0) {
                // a later part (or the backward's dQ, added): the old rows read and written whole,
                // where a gather and a scatter per head dimension cost several times more (training's
                // backward spent 4 % of a select-and-merge step here)
                for (int c = 0; c < d; c += L) {
                    if (L == 16) transposeMerge16(o, ooff, io, c, ot, wa, wb);
                    else transposeMerge8(o, ooff, io, c, ot, wa, wb);
                }
            } else if (io + L <= n) {
                for (int c = 0; c < d; c++) {
                    FloatVector old = FloatVector.fromArray(S, o, c, ooff, io);
                    old.mul(a).add(FloatVector.fromArray(S, ot, c * QB + io).mul(b)).intoArray(o, c, ooff, io);
                }
            } else if (n - io <= FEW) {
                // a few rows: scalar, row by row (a masked gather and scatter per element cost more);
                // the same products and sum as the vector lanes
                for (int i = io; i < n; i++) {
                    float ai = wa[i], bi = wb[i];
                    int oo = ooff[i];
                    for (int c = 0; c < d; c++) o[oo + c] = o[oo + c] * ai + ot[c * QB + i] * bi;
                }
            } else {
                VectorMask<Float> m = S.indexInRange(io, n);
                for (int c = 0; c < d; c++) {
                    FloatVector old = FloatVector.fromArray(S, o, c, ooff, io, m);
                    old.mul(a).add(FloatVector.fromArray(S, ot, c * QB + io).mul(b)).intoArray(o, c, ooff, io, m);
                }
            }
        }
    }
}
