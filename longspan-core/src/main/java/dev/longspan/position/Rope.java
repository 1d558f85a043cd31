package dev.longspan.position;

import dev.longspan.kernel.Simd;
import dev.longspan.tensor.Parallel;
import dev.longspan.util.LongspanException;

/**
 * Rotary position encoding of one {@link RopeConfig}: inverse frequencies computed once in double
 * (per call for the length-dependent kinds), angles from integer positions in double with an exact
 * reduction modulo 2π, and an in-place rotation of the first {@code rot} dimensions of each head
 * vector (the rest pass through).
 *
 * <p>Angles: {@code phi = pos * invFreq[i]} is formed exactly (a two-product via FMA) and reduced
 * modulo a triple-double 2π, so the angle is right to ~1e-15 rad at any position below 2^53 — no
 * table that ends at the context length. Within a block of consecutive positions cos/sin are
 * advanced by the angle-addition formula for at most {@value #RUN} steps, then recomputed exactly
 * (error ~1e-14, far below float). Blocks start at fixed token indices, so results do not depend
 * on the thread count.
 *
 * <p>Scale: YaRN multiplies cos and sin by its attention factor (as Hugging Face does), so q·k
 * logits grow by its square; {@link #rotationScale()} says by how much. Callers must not apply it
 * again.
 *
 * <p>Backward: the rotation (times the scale) is linear with constant angles, so the gradient of
 * the input is the transposed rotation — the inverse rotation, times the scale — of the incoming
 * gradient: {@link #backward}.
 */
public final class Rope {
    /** Tokens per cos/sin table block (a unit of parallel work). */
    static final int BLOCK = 64;
    /** Longest run of angle-addition steps before an exact angle; divides BLOCK. */
    static final int RUN = 32;

    // 2π as a sum of three doubles, and 1/(2π)
    private static final double TWO_PI_1 = 6.283185307179586;
    private static final double TWO_PI_2 = 2.4492935982947064e-16;
    private static final double TWO_PI_3 = -5.989539619436679e-33;
    private static final double INV_TWO_PI = 0.15915494309189535;
    /** Largest |position| whose conversion to double is exact. */
    public static final long MAX_POSITION = 1L << 53;

    private final RopeConfig cfg;
    private final int rot, half;
    private final double scale;
    private final boolean dynamic;
    private final Freqs fixed;  // null for the length-dependent kinds
    final int run;              // RUN, or 1 for exact angles on every token (tests)

    // inverse frequencies with cos/sin of one step, for the angle-addition recurrence
    private record Freqs(double[] inv, double[] c1, double[] s1) {
        static Freqs of(double[] inv) {
            double[] c = new double[inv.length], s = new double[inv.length];
            for (int i = 0; i < inv.length; i++) { c[i] = Math.cos(inv[i]); s[i] = Math.sin(inv[i]); }
            return new Freqs(inv, c, s);
        }
    }

    public Rope(RopeConfig cfg) { this(cfg, RUN); }

    Rope(RopeConfig cfg, int run) {
        this.cfg = cfg;
        this.rot = cfg.rotaryDims();
        this.half = rot / 2;
        this.scale = cfg.derivedAttentionFactor();
        this.dynamic = cfg.kind() == RopeKind.DYNAMIC_NTK || (cfg.kind() == RopeKind.CRD_NTK && cfg.dynamicBase());
        this.fixed = dynamic ? null : Freqs.of(computeInvFreq(cfg, 0));
        this.run = run;
    }

    public RopeConfig config() { return cfg; }

    /** Head dimension D. */
    public int headDim() { return cfg.headDim(); }

    /** Rotated dimensions (even, ≤ D). */
    public int rotaryDims() { return rot; }

    /**
     * The factor that multiplies cos and sin (YaRN's attention factor, 1 for the other kinds): the
     * rotated q and k are scaled by it, so their dot products by its square.
     */
    public double rotationScale() { return scale; }

    /** True when the frequencies depend on the length being rotated (dynamic-ntk, crd-ntk with ntk=dynamic). */
    public boolean lengthDependent() { return dynamic; }

    /**
     * Inverse frequencies theta_i (i = 0..rot/2-1) used when the rotated positions have
     * max(position)+1 = {@code length} (ignored by the kinds that do not depend on it). A copy.
     */
    public double[] inverseFrequencies(long length) {
        return (dynamic ? computeInvFreq(cfg, length) : fixed.inv).clone();
    }

    /** The position actually rotated for a given one: crd-ntk with a period wraps it, others keep it. */
    public long mapPosition(long p) {
        return cfg.kind() == RopeKind.CRD_NTK && cfg.period() > 0 ? Math.floorMod(p, cfg.period()) : p;
    }

    // ---- frequencies per kind -----------------------------------------------------------------

    static double[] plainInvFreq(double base, int d) {
        double[] inv = new double[d / 2];
        for (int i = 0; i < inv.length; i++) inv[i] = 1.0 / Math.pow(base, (2.0 * i) / d);
        return inv;
    }

    /** Inverse frequencies of a config; {@code length} = max(pos)+1 for the dynamic forms. */
    static double[] computeInvFreq(RopeConfig c, long length) {
        double[] inv = kindInvFreq(c, length);
        if (c.harmonic()) snapToHarmonics(inv, c.period());
        return inv;
    }

    /**
     * Rounds each inverse frequency to the nearest multiple of 2π/period (0 included: those pairs no
     * longer turn). Positions wrapped modulo the period then rotate exactly as unwrapped ones would —
     * (p mod P)·k·2π/P ≡ p·k·2π/P — so a query just after a wrap sees the keys just before it at their
     * true distance, not a period away: the result no longer depends on where the wraps fall.
     */
    static void snapToHarmonics(double[] inv, long period) {
        double unit = 2 * Math.PI / period;
        for (int i = 0; i < inv.length; i++) inv[i] = Math.rint(inv[i] / unit) * unit;
    }

    private static double[] kindInvFreq(RopeConfig c, long length) {
        int d = c.rotaryDims();
        double base = c.base(), s = c.factor();
        switch (c.kind()) {
            case ROPE:
                return plainInvFreq(base, d);
            case LINEAR: {
                double[] inv = plainInvFreq(base, d);
                for (int i = 0; i < inv.length; i++) inv[i] /= s;
                return inv;
            }
            case NTK:
                return plainInvFreq(base * Math.pow(s, d / (d - 2.0)), d);
            case DYNAMIC_NTK:
                return plainInvFreq(dynamicBase(base, s, d, length, c.originalContext()), d);
            case CRD_NTK:
                return c.dynamicBase()
                        ? plainInvFreq(dynamicBase(base, s, d, length, c.originalContext()), d)
                        : plainInvFreq(base * Math.pow(s, d / (d - 2.0)), d);
            case YARN:
                return yarnInvFreq(c);
            case LLAMA3:
                return llama3InvFreq(c);
            default:
                throw new IllegalStateException(c.kind().id);
        }
    }

    // HF dynamic NTK: L = max(L_cur, L_train); base' = base * (s*L/L_train - (s-1))^(d/(d-2))
    static double dynamicBase(double base, double s, int d, long length, long orig) {
        double len = Math.max(length, orig);
        return base * Math.pow(s * len / orig - (s - 1), d / (d - 2.0));
    }

    // Hugging Face _compute_yarn_parameters: index ramp between floor(dim(beta_fast)) and
    // ceil(dim(beta_slow)), clamped to [0, d-1], over pair indices 0..d/2-1
    static double[] yarnInvFreq(RopeConfig c) {
        int d = c.rotaryDims();
        double base = c.base(), s = c.factor();
        double low = yarnCorrectionDim(c.betaFast(), d, base, c.originalContext());
        double high = yarnCorrectionDim(c.betaSlow(), d, base, c.originalContext());
        if (c.truncate()) { low = Math.floor(low); high = Math.ceil(high); }
        low = Math.max(low, 0);
        high = Math.min(high, d - 1);
        if (low == high) high += 0.001; // HF: prevent a singular ramp
        double[] inv = new double[d / 2];
        for (int i = 0; i < inv.length; i++) {
            double posFreq = Math.pow(base, (2.0 * i) / d);
            double extrapolated = 1.0 / posFreq, interpolated = 1.0 / (s * posFreq);
            double ramp = Math.min(1, Math.max(0, (i - low) / (high - low)));
            double keep = 1 - ramp; // share of the original (extrapolated) frequency
            inv[i] = interpolated + (extrapolated - interpolated) * keep;
        }
        return inv;
    }

    /** The (fractional) pair-dimension index whose wavelength fits {@code rotations} times in the original context. */
    static double yarnCorrectionDim(double rotations, int d, double base, long orig) {
        return d * Math.log(orig / (rotations * 2 * Math.PI)) / (2 * Math.log(base));
    }

    // Hugging Face _compute_llama3_parameters
    static double[] llama3InvFreq(RopeConfig c) {
        double[] inv = plainInvFreq(c.base(), c.rotaryDims());
        double s = c.factor(), lo = c.lowFreqFactor(), hi = c.highFreqFactor(), orig = c.originalContext();
        double lowFreqWavelen = orig / lo, highFreqWavelen = orig / hi;
        for (int i = 0; i < inv.length; i++) {
            double wavelen = 2 * Math.PI / inv[i];
            if (wavelen < highFreqWavelen) continue;            // high frequency: kept
            if (wavelen > lowFreqWavelen) { inv[i] /= s; continue; } // low frequency: interpolated
            double smooth = (orig / wavelen - lo) / (hi - lo);
            inv[i] = (1 - smooth) * inv[i] / s + smooth * inv[i];
        }
        return inv;
    }

    // ---- angles ----------------------------------------------------------------------------------

    /**
     * {@code pos * invFreq} reduced modulo 2π to about [-π, π], exact to ~1e-15 rad for
     * |pos| ≤ 2^53: the product is formed exactly as a two-term sum (FMA) and 2π is a three-term sum.
     */
    public static double reducedAngle(long pos, double invFreq) {
        double p = pos;
        double a = p * invFreq;
        double e = Math.fma(p, invFreq, -a);       // a + e == p * invFreq exactly
        double k = Math.rint(a * INV_TWO_PI);
        double t1 = k * TWO_PI_1;
        double t1e = Math.fma(k, TWO_PI_1, -t1);   // t1 + t1e == k * TWO_PI_1 exactly
        double small = e - t1e - k * TWO_PI_2 - k * TWO_PI_3;
        return (a - t1) + small;                   // a - t1 is exact (Sterbenz)
    }

    private static void checkPosition(long p) {
        if (p > MAX_POSITION || p < -MAX_POSITION)
            throw new LongspanException("RoPE position " + p + " is beyond ±2^53, where positions stop being exact in double");
    }

    /**
     * Fills cos/sin tables for n positions: {@code cos[co + t*rot/2 + i]} for token t, pair i, each
     * multiplied by {@link #rotationScale()}; sin negated when {@code inverse}. Positions are
     * {@code pos[po + t]}, or {@code start + t} when pos is null, mapped by {@link #mapPosition}.
     * For fused kernels; {@link #forward} uses it internally.
     */
    public void cosSin(long[] pos, int po, long start, int n, boolean inverse, float[] cos, float[] sin, int co) {
        Freqs f = freqsFor(pos, po, start, n);
        fillTable(f, pos, po, start, 0, n, inverse, cos, sin, co);
    }

    private Freqs freqsFor(long[] pos, int po, long start, int n) {
        if (!dynamic) return fixed;
        long max = Long.MIN_VALUE;
        for (int t = 0; t < n; t++) max = Math.max(max, mapPosition(pos == null ? start + t : pos[po + t]));
        return Freqs.of(computeInvFreq(cfg, n == 0 ? 0 : max + 1));
    }

    // tokens [t0, t1): table rows 0..t1-t0 at co; a run restarts exactly at multiples of `run` and at breaks
    private void fillTable(Freqs f, long[] pos, int po, long start, int t0, int t1, boolean inverse, float[] cos, float[] sin, int co) {
        double[] inv = f.inv, c1 = f.c1, s1 = f.s1;
        double[] cs = new double[half], sn = new double[half];
        double sc = scale, ss = inverse ? -scale : scale;
        long prev = 0;
        for (int t = t0; t < t1; t++) {
            long p = mapPosition(pos == null ? start + t : pos[po + t]);
            checkPosition(p);
            int row = co + (t - t0) * half;
            if (t == t0 || t % run == 0 || p != prev + 1) {
                for (int i = 0; i < half; i++) {
                    double a = reducedAngle(p, inv[i]);
                    cs[i] = Math.cos(a);
                    sn[i] = Math.sin(a);
                }
            } else {
                for (int i = 0; i < half; i++) {
                    double c = cs[i] * c1[i] - sn[i] * s1[i];
                    sn[i] = sn[i] * c1[i] + cs[i] * s1[i];
                    cs[i] = c;
                }
            }
            for (int i = 0; i < half; i++) {
                cos[row + i] = (float) (cs[i] * sc);
                sin[row + i] = (float) (sn[i] * ss);
            }
            prev = p;
        }
    }

    // ---- rotation ----------------------------------------------------------------------------------

    /** In place; x: [H, N, D] at xo, positions pos[0..N). */
    public void forward(float[] x, int xo, int heads, int n, long[] pos) {
        rotate(x, xo, heads, n * cfg.headDim(), n, cfg.headDim(), pos, 0, 0, false);
    }

    /** In place; x: [H, N, D] at xo, positions start..start+N-1. */
    public void forward(float[] x, int xo, int heads, int n, long start) {
        rotate(x, xo, heads, n * cfg.headDim(), n, cfg.headDim(), null, 0, start, false);
    }

    /** In place: turns dL/dy into dL/dx; layout and positions as in {@link #forward(float[], int, int, int, long[])}. */
    public void backward(float[] dx, int xo, int heads, int n, long[] pos) {
        rotate(dx, xo, heads, n * cfg.headDim(), n, cfg.headDim(), pos, 0, 0, true);
    }

    /** In place: turns dL/dy into dL/dx for positions start..start+N-1. */
    public void backward(float[] dx, int xo, int heads, int n, long start) {
        rotate(dx, xo, heads, n * cfg.headDim(), n, cfg.headDim(), null, 0, start, true);
    }

    /**
     * The general in-place rotation: element (head h, token t, dim d) is at
     * {@code xo + h*headStride + t*rowStride + d}; [H, N, D] has headStride N·D and rowStride D,
     * [N, H, D] has headStride D and rowStride H·D. Token t has position {@code pos[po + t]}, or
     * {@code start + t} when pos is null. {@code inverse} applies the transposed rotation (backward).
     */
    public void rotate(float[] x, int xo, int heads, int headStride, int n, int rowStride,
                       long[] pos, int po, long start, boolean inverse) {
        if (n <= 0 || heads <= 0) return;
        if (pos != null && (po < 0 || po + n > pos.length))
            throw new LongspanException("RoPE: positions array has " + pos.length + " entries, need " + (po + n));
        Freqs f = freqsFor(pos, po, start, n);
        int blocks = (n + BLOCK - 1) / BLOCK;
        boolean vec = Simd.ENABLED && cfg.pairing() == Pairing.HALF && half >= RopeVector.L;
        // few token blocks (decoding, short chunks): also split the heads so every worker has work;
        // each task builds its own table, so results do not depend on the split
        // ... unless there is little of it (a decoding step of a small model: waking a worker costs more than the rotation)
        int groups = blocks >= Parallel.threads() || (long) heads * n * half < 1 << 14 ? 1 : Math.min(heads, (Parallel.threads() + blocks - 1) / blocks);
        Parallel.forEachTask(blocks * groups, task -> {
            int b = task / groups, g = task % groups;
            int t0 = b * BLOCK, t1 = Math.min(n, t0 + BLOCK);
            int h0 = (int) ((long) heads * g / groups), h1 = (int) ((long) heads * (g + 1) / groups);
            float[] cos = new float[(t1 - t0) * half], sin = new float[(t1 - t0) * half];
            fillTable(f, pos, po, start, t0, t1, inverse, cos, sin, 0);
            for (int h = h0; h < h1; h++) {
                for (int t = t0; t < t1; t++) {
                    int at = xo + h * headStride + t * rowStride, co = (t - t0) * half;
                    if (cfg.pairing() == Pairing.INTERLEAVED) RopeScalar.rotateInterleaved(x, at, half, cos, sin, co);
                    else if (vec) RopeVector.rotateHalf(x, at, half, cos, sin, co);
                    else RopeScalar.rotateHalf(x, at, half, cos, sin, co);
                }
            }
        });
    }

    /** Rotates one head vector x[xo..xo+D) at a position (the single-row case, e.g. decoding). */
    public void forwardRow(float[] x, int xo, long position) {
        rotate(x, xo, 1, 0, 1, cfg.headDim(), null, 0, position, false);
    }
}
