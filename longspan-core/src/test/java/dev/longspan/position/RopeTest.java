package dev.longspan.position;

import dev.longspan.kernel.Simd;
import dev.longspan.tensor.Parallel;
import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.math.BigDecimal;
import java.math.MathContext;
import java.math.RoundingMode;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

class RopeTest {

    static final String[] SPECS = {
            "kind=rope,dim=64",
            "kind=rope,dim=64,pairing=interleaved",
            "kind=rope,dim=80,rot=32",
            "kind=rope,dim=80,rot=32,pairing=interleaved",
            "kind=linear,factor=4,dim=64",
            "kind=ntk,factor=8,dim=64",
            "kind=dynamic-ntk,factor=4,orig=256,dim=64",
            "kind=yarn,factor=8,orig=512,dim=64",
            "kind=yarn,factor=16,orig=4096,dim=128,pairing=interleaved",
            "kind=llama3,factor=8,orig=8192,dim=128,base=500000",
            "kind=crd-ntk,factor=16,period=1000,dim=64",
    };

    static float[] randn(SplittableRandom r, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (r.nextGaussian());
        return x;
    }

    static double dot(float[] a, int ao, float[] b, int bo, int n) {
        double s = 0;
        for (int i = 0; i < n; i++) s += (double) a[ao + i] * b[bo + i];
        return s;
    }

    // ---- frequencies against hand computation ----

    @Test
    void plainFrequenciesAreBasePowers() {
        Rope r = new Rope(RopeConfig.plain(10000, 8));
        double[] f = r.inverseFrequencies(0);
        assertThat(f).containsExactly(1.0, 0.1, 0.01, 0.001);
        double[] g = new Rope(RopeConfig.fromSpec("kind=rope,dim=128,base=500000")).inverseFrequencies(0);
        for (int i = 0; i < 64; i++) assertThat(g[i]).isCloseTo(Math.pow(500000, -i / 64.0), within(1e-15 * g[i] + 1e-300));
    }

    @Test
    void ntkKeepsHighestFrequencyAndDividesLowestByFactor() {
        for (int d : new int[]{16, 64, 128}) {
            for (double s : new double[]{2, 8, 64}) {
                double[] plain = new Rope(RopeConfig.fromSpec("kind=rope,dim=" + d)).inverseFrequencies(0);
                double[] ntk = new Rope(RopeConfig.fromSpec("kind=ntk,factor=" + s + ",dim=" + d)).inverseFrequencies(0);
                assertThat(ntk[0]).isEqualTo(1.0);
                assertThat(ntk[d / 2 - 1]).isCloseTo(plain[d / 2 - 1] / s, within(1e-13 * plain[d / 2 - 1]));
                for (int i = 1; i < d / 2; i++) assertThat(ntk[i]).isLessThan(plain[i]).isGreaterThan(plain[i] / s * (1 - 1e-12));
            }
        }
    }

    @Test
    void linearDividesEveryFrequency() {
        double[] plain = new Rope(RopeConfig.fromSpec("kind=rope,dim=64")).inverseFrequencies(0);
        double[] lin = new Rope(RopeConfig.fromSpec("kind=linear,factor=4,dim=64")).inverseFrequencies(0);
        for (int i = 0; i < 32; i++) assertThat(lin[i]).isEqualTo(plain[i] / 4);
    }

    @Test
    void linearEqualsDividingPositions() {
        SplittableRandom rnd = new SplittableRandom(1);
        int d = 64, n = 50;
        float[] x = randn(rnd, n * d), a = x.clone(), b = x.clone();
        long[] scaled = new long[n], divided = new long[n];
        for (int t = 0; t < n; t++) { divided[t] = 1000 + 37L * t; scaled[t] = 4 * divided[t]; }
        new Rope(RopeConfig.fromSpec("kind=linear,factor=4,dim=64")).forward(a, 0, 1, n, scaled);
        new Rope(RopeConfig.fromSpec("kind=rope,dim=64")).forward(b, 0, 1, n, divided);
        for (int i = 0; i < a.length; i++) assertThat(a[i]).isCloseTo(b[i], within(2e-6f));
    }

    @Test
    void yarnWithFactorOneEqualsPlainRope() {
        for (String extra : new String[]{"", ",beta_fast=8,beta_slow=2", ",truncate=false"}) {
            RopeConfig y = RopeConfig.fromSpec("kind=yarn,factor=1,orig=4096,dim=128" + extra);
            Rope yr = new Rope(y), pr = new Rope(RopeConfig.fromSpec("kind=rope,dim=128"));
            assertThat(yr.rotationScale()).isEqualTo(1.0);
            double[] a = yr.inverseFrequencies(0), b = pr.inverseFrequencies(0);
            for (int i = 0; i < 64; i++) assertThat(a[i]).isCloseTo(b[i], within(1e-16 * b[i]));
            SplittableRandom rnd = new SplittableRandom(2);
            float[] x = randn(rnd, 3 * 40 * 128), p = x.clone();
            yr.forward(x, 0, 3, 40, 123456L);
            pr.forward(p, 0, 3, 40, 123456L);
            assertThat(x).containsExactly(p);
        }
    }

    @Test
    void yarnHandComputedRamp() {
        // d=128, base=1e4, orig=4096, s=8, beta 32/1:
        // low  = floor(128 ln(4096/(32·2π)) / (2 ln 1e4)) = floor(20.94) = 20
        // high = ceil (128 ln(4096/(1·2π))  / (2 ln 1e4)) = ceil(45.03)  = 46
        // pairs i <= 20 keep theta_i, i >= 46 get theta_i/8, i = 33 is half way.
        Rope y = new Rope(RopeConfig.fromSpec("kind=yarn,factor=8,orig=4096,dim=128"));
        double[] f = y.inverseFrequencies(0);
        assertThat(Rope.yarnCorrectionDim(32, 128, 10000, 4096)).isCloseTo(20.94, within(0.01));
        assertThat(Rope.yarnCorrectionDim(1, 128, 10000, 4096)).isCloseTo(45.03, within(0.01));
        for (int i = 0; i < 64; i++) {
            double theta = Math.pow(10000, -i / 64.0);
            double want = i <= 20 ? theta : i >= 46 ? theta / 8 : theta / 8 + (theta - theta / 8) * (1 - (i - 20) / 26.0);
            assertThat(f[i]).as("pair %d", i).isCloseTo(want, within(1e-14 * theta));
        }
        assertThat(f[33]).isCloseTo(0.5 * (Math.pow(10000, -33 / 64.0) * (1 + 1 / 8.0)), within(1e-15));
        assertThat(y.rotationScale()).isCloseTo(0.1 * Math.log(8) + 1, within(1e-15));
        // the rotation scale multiplies q and k: |R x| = scale |x| on the rotated part
        float[] x = randn(new SplittableRandom(3), 128), r = x.clone();
        y.forwardRow(r, 0, 77777);
        assertThat(Math.sqrt(dot(r, 0, r, 0, 128))).isCloseTo(y.rotationScale() * Math.sqrt(dot(x, 0, x, 0, 128)), within(1e-4));
    }

    @Test
    void yarnRampClampsToRotaryDimsMinusOneAsHuggingFaceDoes() {
        // d=64, orig=524288: low = floor(27.33) = 27, high = ceil(39.4) = 40 > d/2-1 = 31.
        // Hugging Face clamps high to d-1 (not d/2-1), so the ramp runs over [27, 40] and the last
        // pair (31) is only 4/13 interpolated.
        double[] f = new Rope(RopeConfig.fromSpec("kind=yarn,factor=8,orig=524288,dim=64")).inverseFrequencies(0);
        for (int i = 0; i < 32; i++) {
            double theta = Math.pow(10000, -i / 32.0);
            double ramp = Math.min(1, Math.max(0, (i - 27) / 13.0));
            assertThat(f[i]).as("pair %d", i).isCloseTo(theta / 8 + (theta - theta / 8) * (1 - ramp), within(1e-14 * theta));
        }
    }

    /**
     * Values from a numpy transcription of Hugging Face's _compute_yarn_parameters and
     * _compute_llama3_parameters (which compute in float32, hence the 1e-6 relative tolerance).
     */
    @Test
    void frequenciesMatchHuggingFaceFloat32Values() {
        double[][] cases = {
                // yarn, Qwen2.5 style: base 1e6, d 128, orig 32768, factor 4
                {0, 1.0}, {10, 1.15478203e-01}, {20, 1.33352149e-02}, {30, 1.06436107e-03},
                {40, 4.44569850e-05}, {50, 5.13381246e-06}, {63, 3.10234441e-07}};
        double[] y = new Rope(RopeConfig.fromSpec("kind=yarn,base=1000000,dim=128,factor=4,orig=32768")).inverseFrequencies(0);
        for (double[] c : cases) assertThat(y[(int) c[0]]).isCloseTo(c[1], within(1e-6 * c[1]));
        double[][] l3 = {{0, 1.0}, {20, 1.65604409e-02}, {40, 3.42810236e-05}, {45, 1.22976389e-05}, {50, 4.41153452e-06}, {63, 3.06892588e-07}};
        double[] f = new Rope(RopeConfig.fromSpec("kind=llama3,base=500000,dim=128,factor=8,orig=8192")).inverseFrequencies(0);
        for (double[] c : l3) assertThat(f[(int) c[0]]).isCloseTo(c[1], within(1e-6 * c[1]));
        double[][] yl = {{0, 1.0}, {27, 4.21696546e-04}, {30, 1.41920376e-04}, {31, 9.74496506e-05}};
        double[] g = new Rope(RopeConfig.fromSpec("kind=yarn,base=10000,dim=64,factor=8,orig=524288")).inverseFrequencies(0);
        for (double[] c : yl) assertThat(g[(int) c[0]]).isCloseTo(c[1], within(1e-6 * c[1]));
    }

    @Test
    void llama3HandComputedBands() {
        // base 5e5, d=128, s=8, low 1, high 4, orig 8192: wavelength < 2048 kept, > 8192 divided by 8,
        // in between smooth = (8192/wavelen - 1)/3 mixes theta/8 and theta
        double[] f = new Rope(RopeConfig.fromSpec("kind=llama3,factor=8,orig=8192,dim=128,base=500000,low_freq_factor=1,high_freq_factor=4")).inverseFrequencies(0);
        int kept = 0, divided = 0, mixed = 0;
        for (int i = 0; i < 64; i++) {
            double theta = Math.pow(500000, -i / 64.0), wl = 2 * Math.PI / theta, want;
            if (wl < 2048) { want = theta; kept++; }
            else if (wl > 8192) { want = theta / 8; divided++; }
            else { double sm = (8192 / wl - 1) / 3; want = (1 - sm) * theta / 8 + sm * theta; mixed++; }
            assertThat(f[i]).as("pair %d", i).isCloseTo(want, within(1e-14 * theta));
        }
        assertThat(kept).isPositive();
        assertThat(divided).isPositive();
        assertThat(mixed).isPositive();
    }

    @Test
    void dynamicNtkFollowsTheRotatedLength() {
        RopeConfig c = RopeConfig.fromSpec("kind=dynamic-ntk,factor=4,orig=256,dim=64");
        Rope r = new Rope(c);
        double[] plain = new Rope(RopeConfig.fromSpec("kind=rope,dim=64")).inverseFrequencies(0);
        assertThat(r.inverseFrequencies(100)).containsExactly(plain);
        assertThat(r.inverseFrequencies(256)).containsExactly(plain);
        double base = 10000 * Math.pow(4.0 * 1000 / 256 - 3, 64 / 62.0);
        double[] f = r.inverseFrequencies(1000);
        for (int i = 0; i < 32; i++) assertThat(f[i]).isCloseTo(Math.pow(base, -i / 32.0), within(1e-14));
        // forward uses max(position)+1 of the positions it rotates
        SplittableRandom rnd = new SplittableRandom(4);
        float[] x = randn(rnd, 10 * 64), a = x.clone(), b = x.clone();
        long[] pos = {0, 5, 999, 3, 7, 8, 9, 10, 11, 12};
        r.forward(a, 0, 1, 10, pos);
        Rope fixed = new Rope(RopeConfig.fromSpec("kind=rope,dim=64,base=" + base));
        fixed.forward(b, 0, 1, 10, pos);
        for (int i = 0; i < a.length; i++) assertThat(a[i]).isCloseTo(b[i], within(1e-5f));
    }

    // ---- angles ----

    static final BigDecimal TWO_PI = new BigDecimal("6.28318530717958647692528676655900576839433879875021164194988918461563281257241799725606965068423413596");

    static double referenceAngle(long pos, double inv) {
        MathContext mc = new MathContext(80);
        BigDecimal x = new BigDecimal(pos).multiply(new BigDecimal(inv), mc);
        BigDecimal k = x.divide(TWO_PI, mc).setScale(0, RoundingMode.HALF_EVEN);
        return x.subtract(k.multiply(TWO_PI, mc), mc).doubleValue();
    }

    @Test
    void anglesAreExactBeyondTwoToThe32() {
        double[] inv = new Rope(RopeConfig.fromSpec("kind=yarn,factor=8,orig=4096,dim=128")).inverseFrequencies(0);
        long[] positions = {0, 1, 4096, 1L << 32, (1L << 32) + 1, (1L << 32) + 12345, (1L << 40) + 7, (1L << 52) + 3, -(1L << 33) - 5};
        for (long p : positions) {
            for (double f : inv) {
                double ref = referenceAngle(p, f), got = Rope.reducedAngle(p, f);
                double diff = Math.IEEEremainder(got - ref, 2 * Math.PI);
                assertThat(Math.abs(diff)).as("pos %d inv %s", p, f).isLessThan(2e-15);
                assertThat(Math.abs(got)).isLessThan(Math.PI + 1e-9);
            }
        }
        // the plain double product is far off at 2^52 (its rounding alone is ~0.5 rad): this is what the exact reduction buys
        double worst = 0;
        long p = (1L << 52) + 3;
        for (double f : inv) worst = Math.max(worst, Math.abs(Math.IEEEremainder(p * f - referenceAngle(p, f), 2 * Math.PI)));
        assertThat(worst).isGreaterThan(1e-3);
    }

    @Test
    void rotatedValuesAtHugePositionsMatchBigDecimalReference() {
        Rope r = new Rope(RopeConfig.fromSpec("kind=rope,dim=16,pairing=interleaved"));
        double[] inv = r.inverseFrequencies(0);
        float[] x = randn(new SplittableRandom(5), 16);
        for (long p : new long[]{(1L << 32) + 3, (1L << 45) + 1}) {
            float[] y = x.clone();
            r.forwardRow(y, 0, p);
            for (int i = 0; i < 8; i++) {
                double a = referenceAngle(p, inv[i]), c = Math.cos(a), s = Math.sin(a);
                assertThat(y[2 * i]).isCloseTo((float) (x[2 * i] * c - x[2 * i + 1] * s), within(1e-5f));
                assertThat(y[2 * i + 1]).isCloseTo((float) (x[2 * i] * s + x[2 * i + 1] * c), within(1e-5f));
            }
        }
    }

    @ParameterizedTest
    @ValueSource(longs = {0L, 1L << 20, 1L << 32, (1L << 32) + 999, 1L << 40, 1L << 50})
    void shiftInvarianceAtLargePositions(long shift) {
        for (String spec : SPECS) {
            RopeConfig c = RopeConfig.fromSpec(spec);
            if (c.kind() == RopeKind.DYNAMIC_NTK || c.kind() == RopeKind.CRD_NTK) continue; // length-dependent or wrapped
            Rope r = new Rope(c);
            int d = c.headDim();
            SplittableRandom rnd = new SplittableRandom(6);
            float[] q = randn(rnd, d), k = randn(rnd, d);
            for (int trial = 0; trial < 4; trial++) {
                long pq = rnd.nextLong(0, 3000), pk = rnd.nextLong(0, 3000);
                float[] q0 = q.clone(), k0 = k.clone(), q1 = q.clone(), k1 = k.clone();
                r.forwardRow(q0, 0, pq);
                r.forwardRow(k0, 0, pk);
                r.forwardRow(q1, 0, pq + shift);
                r.forwardRow(k1, 0, pk + shift);
                assertThat(dot(q1, 0, k1, 0, d)).as("%s shift %d", spec, shift).isCloseTo(dot(q0, 0, k0, 0, d), within(2e-4));
            }
        }
    }

    @Test
    void harmonicFrequenciesAreWholeTurnsPerPeriodAndTheNearestOnes() {
        RopeConfig c = RopeConfig.fromSpec("kind=crd-ntk,base=10000,period=256,dim=32,harmonic=true");
        double[] f = new Rope(c).inverseFrequencies(0);
        double[] plain = new Rope(c.toBuilder().harmonic(false).build()).inverseFrequencies(0);
        double unit = 2 * Math.PI / 256;
        for (int i = 0; i < f.length; i++) {
            double turns = f[i] / unit;
            assertThat(turns).as("pair %d", i).isCloseTo(Math.rint(turns), within(1e-9));
            assertThat(Math.abs(f[i] - plain[i])).as("pair %d", i).isLessThanOrEqualTo(unit / 2 + 1e-15);
        }
        // by hand: theta_0 = 1 rad per token = 40.74 turns per period -> 41; theta_6 = 10000^(-6/16) = 0.0316 -> 1;
        // theta_8 = 0.01 (0.41 of a turn per period) -> 0: that pair stops turning
        assertThat(f[0] / unit).isCloseTo(41, within(1e-9));
        assertThat(f[6] / unit).isCloseTo(1, within(1e-9));
        assertThat(f[8]).isZero();
        assertThat(f[15]).isZero();
    }

    @ParameterizedTest
    @ValueSource(longs = {256, 1000})
    void harmonicFrequenciesMakeTheWrapInvisible(long period) {
        // a query just after a wrap and a key just before it: with harmonic frequencies their score is
        // that of the same distance anywhere else in the cycle; with the plain ones it is not
        for (boolean harmonic : new boolean[]{true, false}) {
            Rope r = new Rope(RopeConfig.fromSpec("kind=crd-ntk,base=10000,dim=32,period=" + period + ",harmonic=" + harmonic));
            SplittableRandom rnd = new SplittableRandom(period);
            float[] q = randn(rnd, 32), k = randn(rnd, 32);
            double worst = 0;
            for (int dist = 1; dist <= 40; dist += 3) {
                for (int after = 0; after < dist; after += 2) {
                    long pq = 5 * period + after, pk = pq - dist;       // pk wraps to the end of the previous cycle
                    float[] qa = q.clone(), ka = k.clone(), qb = q.clone(), kb = k.clone();
                    r.forwardRow(qa, 0, pq);
                    r.forwardRow(ka, 0, pk);
                    r.forwardRow(qb, 0, dist + 17);
                    r.forwardRow(kb, 0, 17);
                    worst = Math.max(worst, Math.abs(dot(qa, 0, ka, 0, 32) - dot(qb, 0, kb, 0, 32)));
                }
            }
            if (harmonic) assertThat(worst).as("harmonic, period %d", period).isLessThan(1e-4);
            else assertThat(worst).as("plain, period %d", period).isGreaterThan(0.1);
        }
    }

    @Test
    void float32AnglesWouldBreakShiftInvariance() {
        // the failure mode the double path avoids: the same check with float angles fails at 2^32
        int d = 64;
        double[] inv = new Rope(RopeConfig.fromSpec("kind=rope,dim=64")).inverseFrequencies(0);
        SplittableRandom rnd = new SplittableRandom(7);
        float[] q = randn(rnd, d), k = randn(rnd, d);
        long shift = 1L << 32;
        double d0 = floatAngleDot(q, k, inv, 10, 3), d1 = floatAngleDot(q, k, inv, 10 + shift, 3 + shift);
        assertThat(Math.abs(d1 - d0)).isGreaterThan(1e-2);
    }

    private static double floatAngleDot(float[] q, float[] k, double[] inv, long pq, long pk) {
        double s = 0;
        int h = inv.length;
        for (int i = 0; i < h; i++) {
            float aq = (float) pq * (float) inv[i], ak = (float) pk * (float) inv[i];
            float q1 = q[i], q2 = q[i + h], k1 = k[i], k2 = k[i + h];
            float rq1 = q1 * (float) Math.cos(aq) - q2 * (float) Math.sin(aq), rq2 = q1 * (float) Math.sin(aq) + q2 * (float) Math.cos(aq);
            float rk1 = k1 * (float) Math.cos(ak) - k2 * (float) Math.sin(ak), rk2 = k1 * (float) Math.sin(ak) + k2 * (float) Math.cos(ak);
            s += rq1 * rk1 + rq2 * rk2;
        }
        return s;
    }

    // ---- rotation against an independent double reference ----

    static void referenceRotate(double[] x, int d, int rot, Pairing pairing, double[] inv, long pos, double scale) {
        int h = rot / 2;
        for (int i = 0; i < h; i++) {
            int a = pairing == Pairing.HALF ? i : 2 * i, b = pairing == Pairing.HALF ? i + h : 2 * i + 1;
            double ang = referenceAngle(pos, inv[i]), c = Math.cos(ang) * scale, s = Math.sin(ang) * scale;
            double x1 = x[a], x2 = x[b];
            x[a] = x1 * c - x2 * s;
            x[b] = x1 * s + x2 * c;
        }
    }

    @Test
    void forwardMatchesReferenceForEveryKind() {
        SplittableRandom rnd = new SplittableRandom(8);
        for (String spec : SPECS) {
            RopeConfig c = RopeConfig.fromSpec(spec);
            Rope r = new Rope(c);
            int d = c.headDim(), heads = 3, n = 70; // n > BLOCK: two blocks
            float[] x = randn(rnd, heads * n * d), y = x.clone();
            long[] pos = new long[n];
            for (int t = 0; t < n; t++) pos[t] = t < 40 ? 5000 + t : rnd.nextLong(0, 1L << 34);
            r.forward(y, 0, heads, n, pos);
            long max = 0;
            for (long p : pos) max = Math.max(max, r.mapPosition(p));
            double[] inv = r.inverseFrequencies(max + 1);
            for (int h = 0; h < heads; h++) {
                for (int t = 0; t < n; t++) {
                    double[] ref = new double[d];
                    for (int i = 0; i < d; i++) ref[i] = x[(h * n + t) * d + i];
                    referenceRotate(ref, d, c.rotaryDims(), c.pairing(), inv, r.mapPosition(pos[t]), r.rotationScale());
                    for (int i = 0; i < d; i++)
                        assertThat((double) y[(h * n + t) * d + i]).as("%s h%d t%d i%d", spec, h, t, i).isCloseTo(ref[i], within(1e-5));
                }
            }
        }
    }

    @Test
    void partialRotaryLeavesTheRestUntouched() {
        Rope r = new Rope(RopeConfig.fromSpec("kind=rope,dim=80,rot=32"));
        float[] x = randn(new SplittableRandom(9), 4 * 80), y = x.clone();
        r.forward(y, 0, 1, 4, 1000L);
        for (int t = 0; t < 4; t++) for (int i = 32; i < 80; i++) assertThat(y[t * 80 + i]).isEqualTo(x[t * 80 + i]);
        assertThat(y[1]).isNotEqualTo(x[1]);
    }

    @Test
    void startOverloadEqualsExplicitPositionsAndStridedLayoutsAgree() {
        Rope r = new Rope(RopeConfig.fromSpec("kind=yarn,factor=8,orig=512,dim=64"));
        int heads = 4, n = 100, d = 64;
        float[] x = randn(new SplittableRandom(10), heads * n * d), a = x.clone(), b = x.clone();
        long[] pos = new long[n];
        for (int t = 0; t < n; t++) pos[t] = 777 + t;
        r.forward(a, 0, heads, n, pos);
        r.forward(b, 0, heads, n, 777L);
        assertThat(b).containsExactly(a);
        // [N, H, D] layout via strides
        float[] nhd = new float[x.length];
        for (int h = 0; h < heads; h++) for (int t = 0; t < n; t++) System.arraycopy(x, (h * n + t) * d, nhd, (t * heads + h) * d, d);
        r.rotate(nhd, 0, heads, d, n, heads * d, pos, 0, 0, false);
        for (int h = 0; h < heads; h++) for (int t = 0; t < n; t++)
            for (int i = 0; i < d; i++) assertThat(nhd[(t * heads + h) * d + i]).isEqualTo(a[(h * n + t) * d + i]);
    }

    // ---- backward ----

    @Test
    void backwardMatchesFiniteDifferences() {
        SplittableRandom rnd = new SplittableRandom(11);
        for (String spec : new String[]{"kind=rope,dim=12", "kind=rope,dim=12,pairing=interleaved", "kind=yarn,factor=8,orig=64,dim=12",
                "kind=rope,dim=14,rot=8", "kind=llama3,factor=8,orig=64,dim=12,base=500000"}) {
            Rope r = new Rope(RopeConfig.fromSpec(spec));
            int heads = 2, n = 5, d = r.headDim(), size = heads * n * d;
            long[] pos = {3, 100000, 1L << 33, 7, 8};
            float[] x = randn(rnd, size), w = randn(rnd, size);
            float[] grad = w.clone();
            r.backward(grad, 0, heads, n, pos); // dL/dx for L = sum(w * rope(x))
            float eps = 1e-2f;
            for (int j = 0; j < size; j++) {
                float[] xp = x.clone(), xm = x.clone();
                xp[j] += eps;
                xm[j] -= eps;
                r.forward(xp, 0, heads, n, pos);
                r.forward(xm, 0, heads, n, pos);
                double fd = (dot(w, 0, xp, 0, size) - dot(w, 0, xm, 0, size)) / (2 * eps);
                assertThat((double) grad[j]).as("%s coord %d", spec, j).isCloseTo(fd, within(2e-3));
            }
        }
    }

    @Test
    void backwardIsTheAdjointAndUndoesForward() {
        SplittableRandom rnd = new SplittableRandom(12);
        for (String spec : SPECS) {
            Rope r = new Rope(RopeConfig.fromSpec(spec));
            int heads = 2, n = 33, d = r.headDim(), size = heads * n * d;
            float[] x = randn(rnd, size), w = randn(rnd, size), rx = x.clone(), rtw = w.clone();
            r.forward(rx, 0, heads, n, 1L << 35);
            r.backward(rtw, 0, heads, n, 1L << 35);
            assertThat(dot(w, 0, rx, 0, size)).as(spec).isCloseTo(dot(rtw, 0, x, 0, size), within(1e-3));
            float[] back = rx.clone();
            r.backward(back, 0, heads, n, 1L << 35);
            double s2 = r.rotationScale() * r.rotationScale();
            int rot = r.rotaryDims();
            for (int row = 0; row < heads * n; row++)
                for (int i = 0; i < d; i++) {
                    double want = i < rot ? x[row * d + i] * s2 : x[row * d + i];
                    assertThat((double) back[row * d + i]).isCloseTo(want, within(1e-5));
                }
        }
    }

    // ---- implementation twins ----

    @Test
    void vectorRotationEqualsScalarTwinBitForBit() {
        Assumptions.assumeTrue(Simd.ENABLED, "Vector API not enabled");
        SplittableRandom rnd = new SplittableRandom(13);
        for (int half : new int[]{1, 3, 7, 8, 15, 16, 17, 31, 64, 65}) {
            float[] x = randn(rnd, 2 * half + 5), cos = randn(rnd, half + 2), sin = randn(rnd, half + 2);
            float[] a = x.clone(), b = x.clone();
            RopeVector.rotateHalf(a, 3, half, cos, sin, 2);
            RopeScalar.rotateHalf(b, 3, half, cos, sin, 2);
            assertThat(a).as("half %d", half).containsExactly(b);
        }
    }

    @Test
    void angleRecurrenceStaysWithinFloatOfExactAngles() {
        for (String spec : new String[]{"kind=rope,dim=128", "kind=yarn,factor=32,orig=4096,dim=128"}) {
            RopeConfig c = RopeConfig.fromSpec(spec);
            Rope fast = new Rope(c), exact = new Rope(c, 1);
            int n = 300, h = 64;
            float[] c1 = new float[n * h], s1 = new float[n * h], c2 = new float[n * h], s2 = new float[n * h];
            fast.cosSin(null, 0, (1L << 40) + 5, n, false, c1, s1, 0);
            exact.cosSin(null, 0, (1L << 40) + 5, n, false, c2, s2, 0);
            for (int i = 0; i < n * h; i++) {
                assertThat(c1[i]).isCloseTo(c2[i], within(2.5e-7f));
                assertThat(s1[i]).isCloseTo(s2[i], within(2.5e-7f));
            }
        }
    }

    @Test
    void resultsDoNotDependOnThreadCount() {
        Rope r = new Rope(RopeConfig.fromSpec("kind=yarn,factor=8,orig=512,dim=64"));
        // many token blocks (split by tokens) and few tokens with many heads (split by heads too)
        for (int[] hn : new int[][]{{4, 500}, {8, 3}}) {
            int heads = hn[0], n = hn[1];
            float[] x = randn(new SplittableRandom(14), heads * n * 64), a = x.clone(), b = x.clone(), c = x.clone();
            int before = Parallel.threads();
            try {
                Parallel.setThreads(1);
                r.forward(a, 0, heads, n, 12345L);
                Parallel.setThreads(3);
                r.forward(b, 0, heads, n, 12345L);
                Parallel.setThreads(8);
                r.forward(c, 0, heads, n, 12345L);
            } finally {
                Parallel.setThreads(before);
            }
            assertThat(b).containsExactly(a);
            assertThat(c).containsExactly(a);
            assertThat(a).isNotEqualTo(x);
        }
    }

    // ---- pairings ----

    @Test
    void pairingConversionRoundTripsAndCommutesWithRotation() {
        SplittableRandom rnd = new SplittableRandom(15);
        for (int[] dr : new int[][]{{8, 8}, {64, 64}, {80, 32}}) {
            int d = dr[0], rot = dr[1], n = 6;
            float[] inter = randn(rnd, n * d), half = new float[n * d], back = new float[n * d];
            Pairing.convert(Pairing.INTERLEAVED, Pairing.HALF, inter, 0, half, 0, n, d, rot);
            Pairing.convert(Pairing.HALF, Pairing.INTERLEAVED, half, 0, back, 0, n, d, rot);
            assertThat(back).containsExactly(inter);
            // rotate in interleaved layout, convert == convert, rotate in half layout
            Rope ri = new Rope(RopeConfig.fromSpec("kind=rope,dim=" + d + ",rot=" + rot + ",pairing=interleaved"));
            Rope rh = new Rope(RopeConfig.fromSpec("kind=rope,dim=" + d + ",rot=" + rot + ",pairing=half"));
            float[] a = inter.clone(), b = half.clone(), aConv = new float[n * d];
            ri.forward(a, 0, 1, n, 99L);
            rh.forward(b, 0, 1, n, 99L);
            Pairing.convert(Pairing.INTERLEAVED, Pairing.HALF, a, 0, aConv, 0, n, d, rot);
            assertThat(aConv).containsExactly(b);
        }
        int[] p = Pairing.permutation(Pairing.INTERLEAVED, Pairing.HALF, 8, 8);
        assertThat(p).containsExactly(0, 2, 4, 6, 1, 3, 5, 7);
    }

    // ---- errors ----

    @Test
    void badPositionsAreErrors() {
        Rope r = new Rope(RopeConfig.fromSpec("kind=rope,dim=8"));
        float[] x = new float[16];
        assertThatThrownBy(() -> r.forward(x, 0, 1, 2, new long[]{1}))
                .isInstanceOf(LongspanException.class).hasMessageContaining("positions");
        assertThatThrownBy(() -> r.forward(x, 0, 1, 2, new long[]{0, (1L << 53) + 1}))
                .isInstanceOf(LongspanException.class).hasMessageContaining("2^53");
    }
}
