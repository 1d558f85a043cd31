package dev.longspan.eval;

/**
 * glibc's single-precision expf, sinf and cosf, bit for bit as its x86-64 FMA builds return them
 * (the algorithms glibc 2.28+ took from Arm's optimized-routines: a double-precision evaluation
 * rounded once to float, with an error up to about 0.56 ulp, so about one result in a hundred
 * differs from the correctly rounded value that {@code (float) Math.sin(x)} gives). llama.cpp
 * calls these for RoPE's angles and for the few SiLU and softmax elements that do not fill a
 * vector; {@link GgmlReplica} needs their exact bits.
 *
 * <p>Each function repeats glibc's operations in its order, with the multiply-adds its FMA
 * variants fuse; the polynomial coefficients are glibc's (sincosf_data.c, exp2f_data.c).
 */
final class GlibcFloatMath {
    private GlibcFloatMath() {}

    // ---- expf: 2^(k/32) from a table times a cubic in the remainder ----
    private static final int EXP_BITS = 5, EXP_N = 1 << EXP_BITS;
    private static final double INV_LN2_N = 0x1.71547652b82fep+0 * EXP_N;
    private static final double SHIFT = 0x1.8p+52;
    private static final double C0 = 0x1.c6af84b912394p-5 / EXP_N / EXP_N / EXP_N, C1 = 0x1.ebfce50fac4f3p-3 / EXP_N / EXP_N,
            C2 = 0x1.62e42ff0c52d6p-1 / EXP_N;
    /** tab[i] = bits(2^(i/32)) − (i &lt;&lt; 47): the correctly rounded powers, less the exponent the index adds back. */
    private static final long[] EXP_TAB = new long[EXP_N];

    static {
        for (int i = 0; i < EXP_N; i++) EXP_TAB[i] = Double.doubleToRawLongBits(Math.pow(2, i / (double) EXP_N)) - ((long) i << (52 - EXP_BITS));
    }

    private static int top12(float x) { return Float.floatToRawIntBits(x) >>> 20; }

    static float expf(float x) {
        int abstop = top12(x) & 0x7ff;
        if (abstop >= top12(88.0f)) {
            if (Float.floatToRawIntBits(x) == Float.floatToRawIntBits(Float.NEGATIVE_INFINITY)) return 0f;
            if (abstop >= top12(Float.POSITIVE_INFINITY)) return x + x;
            if (x > 0x1.62e42ep6f) return Float.POSITIVE_INFINITY;
            if (x < -0x1.9fe368p6f) return 0f;
        }
        double xd = x;
        double kd = Math.fma(INV_LN2_N, xd, SHIFT);
        long ki = Double.doubleToRawLongBits(kd);
        kd -= SHIFT;
        double r = Math.fma(INV_LN2_N, xd, -kd);
        long t = EXP_TAB[(int) (ki & (EXP_N - 1))] + (ki << (52 - EXP_BITS));
        double s = Double.longBitsToDouble(t);
        double z = Math.fma(C0, r, C1);
        double r2 = r * r;
        double y = Math.fma(C2, r, 1);
        y = Math.fma(z, r2, y);
        return (float) (y * s);
    }

    // ---- sinf / cosf: reduction to [−π/4, π/4] by quadrants, then an odd or even polynomial ----
    private static final double HPI_INV = 0x1.45F306DC9C883p+23, HPI = 0x1.921FB54442D18p0, PI63 = 0x1.921FB54442D18p-62;
    private static final float PIO4F = 0x1.921FB6p-1f;
    // the cosine and sine polynomials; the second table computes −cos, −sin (quadrants 2 and 3)
    private static final double[][] COS_POLY = {
            {0x1p0, -0x1.ffffffd0c621cp-2, 0x1.55553e1068f19p-5, -0x1.6c087e89a359dp-10, 0x1.99343027bf8c3p-16},
            {-0x1p0, 0x1.ffffffd0c621cp-2, -0x1.55553e1068f19p-5, 0x1.6c087e89a359dp-10, -0x1.99343027bf8c3p-16}};
    private static final double S1 = -0x1.555545995a603p-3, S2 = 0x1.1107605230bc4p-7, S3 = -0x1.994eb3774cf24p-13;
    private static final double[] SIGN = {1.0, -1.0, -1.0, 1.0};
    /** 4/π to 192 bits, eight new bits per entry. */
    private static final int[] INV_PIO4 = {
            0xa2, 0xa2f9, 0xa2f983, 0xa2f9836e, 0xf9836e4e, 0x836e4e44, 0x6e4e4415, 0x4e441529,
            0x441529fc, 0x1529fc27, 0x29fc2757, 0xfc2757d1, 0x2757d1f5, 0x57d1f534, 0xd1f534dd, 0xf534ddc0,
            0x34ddc0db, 0xddc0db62, 0xc0db6295, 0xdb629599, 0x6295993c, 0x95993c43, 0x993c4390, 0x3c439041};

    private static int abstop12(float x) { return (Float.floatToRawIntBits(x) >>> 20) & 0x7ff; }

    static float sinf(float y) { return sinOrCos(y, 0); }

    static float cosf(float y) { return sinOrCos(y, 1); }

    // cos = 1: glibc's cosf (the other polynomial, and 1 for |y| < 2^-12); cos = 0: its sinf (y itself there)
    private static float sinOrCos(float y, int cos) {
        double x = y;
        if (abstop12(y) < abstop12(PIO4F)) {
            if (abstop12(y) < abstop12(0x1p-12f)) return cos == 1 ? 1.0f : y;
            return poly(x, x * x, 0, cos);
        }
        int n, table;
        double s;
        if (abstop12(y) < abstop12(120.0f)) {
            double r = x * HPI_INV;
            n = ((int) r + 0x800000) >> 24;
            x = Math.fma(-(double) n, HPI, x);
            s = SIGN[n & 3];
            table = (n & 2) != 0 ? 1 : 0;
        } else if (abstop12(y) < abstop12(Float.POSITIVE_INFINITY)) {
            int xi = Float.floatToRawIntBits(y), sign = xi >>> 31;
            long[] reduced = reduceLarge(xi);
            x = reduced[0] * PI63;
            n = (int) reduced[1];
            s = SIGN[(n + sign) & 3];
            table = ((n + sign) & 2) != 0 ? 1 : 0;
        } else {
            return Float.NaN;
        }
        return poly(x * s, x * x, table, n ^ cos);
    }

    // sinf_poly: the sine polynomial for even n, the cosine one for odd n
    private static float poly(double x, double x2, int table, int n) {
        if ((n & 1) == 0) {
            double x3 = x * x2;
            double s1 = Math.fma(x2, S3, S2);
            double x7 = x3 * x2;
            double s = Math.fma(x3, S1, x);
            return (float) Math.fma(x7, s1, s);
        }
        double[] c = COS_POLY[table];
        double x4 = x2 * x2;
        double c2 = Math.fma(x2, c[4], c[3]);
        double c1 = Math.fma(x2, c[1], c[0]);
        double x6 = x4 * x2;
        double cc = Math.fma(x4, c[2], c1);
        return (float) Math.fma(x6, c2, cc);
    }

    // reduce_large: the exact 2.62 fixed-point remainder of |y|·4/π from a 32×96-bit product; {remainder as an integer, quadrant}
    private static long[] reduceLarge(int xi) {
        int a = (xi >>> 26) & 15;
        int shift = (xi >>> 23) & 7;
        long x = ((xi & 0xffffff) | 0x800000) & 0xffffffffL;
        x = (x << shift) & 0xffffffffL;
        long res0 = (x * (INV_PIO4[a] & 0xffffffffL)) & 0xffffffffL;
        long res1 = x * (INV_PIO4[a + 4] & 0xffffffffL);
        long res2 = x * (INV_PIO4[a + 8] & 0xffffffffL);
        res0 = (res2 >>> 32) | (res0 << 32);
        res0 += res1;
        long n = (res0 + (1L << 61)) >>> 62;
        res0 -= n << 62;
        return new long[]{res0, n};
    }
}
