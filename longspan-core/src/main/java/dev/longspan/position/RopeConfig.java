package dev.longspan.position;

import dev.longspan.util.LongspanException;

import java.util.List;
import java.util.Map;

/**
 * One immutable RoPE configuration: everything {@link Rope} needs, checked when built. Its text
 * forms (spec string {@code kind=yarn,base=10000,factor=8,orig=4096}, Longspan's config map, an
 * override) are read and written by {@link RopeSpec}; Hugging Face and GGUF configs are mapped in the format
 * package. Knobs that do not apply to the kind hold their defaults (set to them when built);
 * {@link #toSpec()} writes only the ones that apply, and {@code fromSpec(c.toSpec())} equals
 * {@code c}. One flat record rather than one per kind: {@link Rope} reads each kind's knobs in one
 * switch, and an override keeps the knobs two kinds share ({@link #fieldsOf}).
 *
 * <p>Field names in specs and messages: kind, base, dim, rot, pairing, factor, orig, beta_fast,
 * beta_slow, attn_factor, mscale, mscale_all_dim, truncate, low_freq_factor, high_freq_factor,
 * period, offset, grow, offset_max, seed, ntk, harmonic. See docs/POSITIONS.md.
 *
 * @param kind            which encoding
 * @param base            RoPE base theta (rope_theta, freq_base)
 * @param headDim         head dimension D
 * @param rotaryDims      dimensions rotated (the first rot of each head; the rest pass through); even
 * @param pairing         which elements form a pair
 * @param factor          scale factor s (linear, ntk, dynamic-ntk, yarn, llama3, crd-ntk)
 * @param originalContext trained context L_train (dynamic-ntk, yarn, llama3; crd-ntk with ntk=dynamic); 0 = unset
 * @param betaFast        YaRN: rotations above which a dimension is kept (default 32)
 * @param betaSlow        YaRN: rotations below which a dimension is interpolated (default 1)
 * @param attnFactor      YaRN: explicit rotation scale (HF attention_factor); NaN = derived
 * @param mscale          YaRN: HF/DeepSeek mscale (0 = unset)
 * @param mscaleAllDim    YaRN: HF/DeepSeek mscale_all_dim (0 = unset)
 * @param truncate        YaRN: floor/ceil the correction range (HF default true)
 * @param lowFreqFactor   llama3 low_freq_factor (default 1)
 * @param highFreqFactor  llama3 high_freq_factor (default 4)
 * @param period          crd-ntk: positions wrap modulo this period C (0 = not cyclic)
 * @param offsetRange     crd-ntk: initial random offset range P0 (offset uniform in [0, P(t)); 0 = none)
 * @param growSteps       crd-ntk: the offset range doubles every this many steps (0 = never)
 * @param offsetMax       crd-ntk: cap on the offset range (0 = no cap)
 * @param seed            crd-ntk: seed of the offset sampling
 * @param dynamicBase     crd-ntk: false = static NTK base; true = dynamic form with L_cur = max(pos)+1
 * @param harmonic        crd-ntk with a period: each frequency rounded to the nearest multiple of 2π/period
 *                        (0 included), so a rotation repeats exactly every period and the wrap is not a
 *                        discontinuity: relative positions are exact modulo the period everywhere
 */
public record RopeConfig(
        RopeKind kind,
        double base,
        int headDim,
        int rotaryDims,
        Pairing pairing,
        double factor,
        long originalContext,
        double betaFast,
        double betaSlow,
        double attnFactor,
        double mscale,
        double mscaleAllDim,
        boolean truncate,
        double lowFreqFactor,
        double highFreqFactor,
        long period,
        long offsetRange,
        long growSteps,
        long offsetMax,
        long seed,
        boolean dynamicBase,
        boolean harmonic) {

    public RopeConfig {
        if (kind == null) throw bad("kind", "is required; valid kinds: " + RopeKind.validNames());
        if (pairing == null) throw bad("pairing", "is required (half or interleaved)");
        if (!(base > 1) || !Double.isFinite(base)) throw bad("base", "must be a finite number > 1, got " + num(base));
        if (headDim <= 0) throw bad("dim", "must be positive, got " + headDim);
        if (rotaryDims < 2 || rotaryDims > headDim || (rotaryDims & 1) != 0)
            throw bad("rot", "must be even and in [2, dim=" + headDim + "], got " + rotaryDims);
        if (!(factor > 0) || !Double.isFinite(factor)) throw bad("factor", "must be a finite number > 0, got " + num(factor));
        if (originalContext < 0) throw bad("orig", "must not be negative, got " + originalContext);
        boolean ntkBase = kind == RopeKind.NTK || kind == RopeKind.DYNAMIC_NTK || kind == RopeKind.CRD_NTK;
        if (ntkBase && rotaryDims < 4) throw bad("rot", "must be at least 4 for kind " + kind + " (the NTK exponent is d/(d-2))");
        boolean needsOrig = kind == RopeKind.DYNAMIC_NTK || kind == RopeKind.YARN || kind == RopeKind.LLAMA3
                || (kind == RopeKind.CRD_NTK && dynamicBase);
        if (needsOrig && originalContext <= 0) throw bad("orig", "(original context) is required and must be positive for kind " + kind);
        if (kind == RopeKind.YARN) {
            if (!(betaFast > 0) || !Double.isFinite(betaFast)) throw bad("beta_fast", "must be a finite number > 0, got " + num(betaFast));
            if (!(betaSlow > 0) || !Double.isFinite(betaSlow)) throw bad("beta_slow", "must be a finite number > 0, got " + num(betaSlow));
            if (!Double.isNaN(attnFactor) && (!(attnFactor > 0) || !Double.isFinite(attnFactor)))
                throw bad("attn_factor", "must be a finite number > 0, got " + num(attnFactor));
            if (!Double.isFinite(mscale) || mscale < 0) throw bad("mscale", "must be a finite number >= 0, got " + num(mscale));
            if (!Double.isFinite(mscaleAllDim) || mscaleAllDim < 0)
                throw bad("mscale_all_dim", "must be a finite number >= 0, got " + num(mscaleAllDim));
        }
        if (kind == RopeKind.LLAMA3) {
            if (!(lowFreqFactor > 0) || !Double.isFinite(lowFreqFactor))
                throw bad("low_freq_factor", "must be a finite number > 0, got " + num(lowFreqFactor));
            if (!(highFreqFactor > lowFreqFactor) || !Double.isFinite(highFreqFactor))
                throw bad("high_freq_factor", "must be finite and greater than low_freq_factor=" + num(lowFreqFactor) + ", got " + num(highFreqFactor));
        }
        if (period < 0) throw bad("period", "must not be negative, got " + period);
        if (offsetRange < 0) throw bad("offset", "must not be negative, got " + offsetRange);
        if (growSteps < 0) throw bad("grow", "must not be negative, got " + growSteps);
        if (offsetMax < 0) throw bad("offset_max", "must not be negative, got " + offsetMax);
        if (harmonic && kind == RopeKind.CRD_NTK && period <= 0)
            throw bad("harmonic", "needs a period (harmonics of what?): set period > 0 or harmonic=false");
        // knobs that do not apply to the kind hold their defaults: Rope never reads them, so two
        // configs that compute alike are equal, and fromSpec(c.toSpec()) equals c for every c
        List<String> applies = fieldsOf(kind);
        if (!applies.contains("factor")) factor = DEFAULT_FACTOR;
        if (!applies.contains("orig")) originalContext = 0;
        if (!applies.contains("beta_fast")) betaFast = DEFAULT_BETA_FAST;
        if (!applies.contains("beta_slow")) betaSlow = DEFAULT_BETA_SLOW;
        if (!applies.contains("attn_factor")) attnFactor = Double.NaN;
        if (!applies.contains("mscale")) mscale = 0;
        if (!applies.contains("mscale_all_dim")) mscaleAllDim = 0;
        if (!applies.contains("truncate")) truncate = true;
        if (!applies.contains("low_freq_factor")) lowFreqFactor = DEFAULT_LOW_FREQ_FACTOR;
        if (!applies.contains("high_freq_factor")) highFreqFactor = DEFAULT_HIGH_FREQ_FACTOR;
        if (!applies.contains("period")) period = 0;
        if (!applies.contains("offset")) offsetRange = 0;
        if (!applies.contains("grow")) growSteps = 0;
        if (!applies.contains("offset_max")) offsetMax = 0;
        if (!applies.contains("seed")) seed = 0;
        if (!applies.contains("ntk")) dynamicBase = false;
        if (!applies.contains("harmonic")) harmonic = false;
    }

    // Longspan's defaults of the knobs (the others default to 0, NaN for attn_factor, true for truncate)
    private static final double DEFAULT_FACTOR = 1, DEFAULT_BETA_FAST = 32, DEFAULT_BETA_SLOW = 1,
            DEFAULT_LOW_FREQ_FACTOR = 1, DEFAULT_HIGH_FREQ_FACTOR = 4;

    /** Plain RoPE with half pairing over the whole head. */
    public static RopeConfig plain(double base, int headDim) {
        return builder(RopeKind.ROPE, headDim).base(base).build();
    }

    public static Builder builder(RopeKind kind, int headDim) { return new Builder(kind, headDim); }

    /** A builder starting from this configuration. */
    public Builder toBuilder() { return new Builder(this); }

    /** The rotation scale of YaRN as Hugging Face derives it (1 for other kinds). */
    public double derivedAttentionFactor() {
        if (kind != RopeKind.YARN) return 1.0;
        if (!Double.isNaN(attnFactor)) return attnFactor;
        if (mscale != 0 && mscaleAllDim != 0) return yarnGetMscale(factor, mscale) / yarnGetMscale(factor, mscaleAllDim);
        return yarnGetMscale(factor, 1.0);
    }

    // HF get_mscale: 1 for scale <= 1, else 0.1 * m * ln(scale) + 1
    static double yarnGetMscale(double scale, double m) {
        return scale <= 1 ? 1.0 : 0.1 * m * Math.log(scale) + 1.0;
    }

    // ---- spec strings and Longspan's own config map ----------------------------------------

    /** Fields that apply to a kind (besides kind, base, dim, rot, pairing which apply to all). */
    public static List<String> fieldsOf(RopeKind kind) {
        return switch (kind) {
            case ROPE -> List.of();
            case LINEAR, NTK -> List.of("factor");
            case DYNAMIC_NTK -> List.of("factor", "orig");
            case YARN -> List.of("factor", "orig", "beta_fast", "beta_slow", "attn_factor", "mscale", "mscale_all_dim", "truncate");
            case LLAMA3 -> List.of("factor", "orig", "low_freq_factor", "high_freq_factor");
            case CRD_NTK -> List.of("factor", "orig", "period", "offset", "grow", "offset_max", "seed", "ntk", "harmonic");
        };
    }

    /** Parses a spec such as {@code kind=yarn,base=10000,factor=8,orig=4096,pairing=half,dim=128}; dim is required. */
    public static RopeConfig fromSpec(String spec) { return RopeSpec.parse(spec, 0); }

    /**
     * Parses a spec; {@code defaultHeadDim} (when > 0) is used if the spec names no dim, and a
     * dim that differs from it is an error. Errors name the field.
     */
    public static RopeConfig fromSpec(String spec, int defaultHeadDim) { return RopeSpec.parse(spec, defaultHeadDim); }

    /** From Longspan's own config map (the {@code rope} object of a config.json): a spec's fields as JSON values. */
    public static RopeConfig fromMap(Map<String, ?> map) { return RopeSpec.fromMap(map, 0); }

    public static RopeConfig fromMap(Map<String, ?> map, int defaultHeadDim) { return RopeSpec.fromMap(map, defaultHeadDim); }

    /**
     * This configuration with the fields a spec names changed (a {@code --rope} override on a
     * model): base, rot and pairing keep this config's values unless given, and so do the knobs
     * that both this kind and the spec's kind have (factor, orig, ...); the new kind's other knobs
     * take their defaults. {@code --rope kind=yarn,factor=8,orig=8192} on a model with base 500000
     * keeps base 500000.
     */
    public RopeConfig overriddenBy(String spec) { return RopeSpec.override(this, spec); }

    /** The canonical spec: kind, base, dim, rot, pairing, then the fields of the kind ({@link RopeSpec#write}). */
    public String toSpec() { return RopeSpec.write(this); }

    /** The fields that apply to this kind, as an ordered map of canonical names to values ({@link RopeSpec#toMap}). */
    public Map<String, Object> toMap() { return RopeSpec.toMap(this); }

    /**
     * The spec without dim, and without rot when it is the whole head: the form a model's
     * config.json holds, where head_dim stands beside it ({@link RopeSpec#writeShort}).
     */
    public String toShortSpec() { return RopeSpec.writeShort(this); }

    @Override
    public String toString() { return toSpec(); }

    // ---- value helpers -----------------------------------------------------------------------

    private static LongspanException bad(String field, String what) {
        return new LongspanException("RoPE config: field '" + field + "' " + what);
    }

    static String num(double v) {
        if (v == Math.rint(v) && Math.abs(v) < 1e15) return Long.toString((long) v);
        return Double.toString(v);
    }

    /** Mutable builder with Longspan's defaults (base 10000, half pairing, factor 1, beta 32/1, llama3 1/4). */
    public static final class Builder {
        private RopeKind kind;
        private double base = 10000.0;
        private int headDim;
        private int rotaryDims;
        private Pairing pairing = Pairing.HALF;
        private double factor = DEFAULT_FACTOR;
        private long originalContext;
        private double betaFast = DEFAULT_BETA_FAST, betaSlow = DEFAULT_BETA_SLOW;
        private double attnFactor = Double.NaN, mscale, mscaleAllDim;
        private boolean truncate = true;
        private double lowFreqFactor = DEFAULT_LOW_FREQ_FACTOR, highFreqFactor = DEFAULT_HIGH_FREQ_FACTOR;
        private long period, offsetRange, growSteps, offsetMax, seed;
        private boolean dynamicBase, harmonic;

        private Builder(RopeKind kind, int headDim) {
            this.kind = kind;
            this.headDim = headDim;
            this.rotaryDims = headDim;
        }

        private Builder(RopeConfig c) {
            kind = c.kind; base = c.base; headDim = c.headDim; rotaryDims = c.rotaryDims; pairing = c.pairing;
            factor = c.factor; originalContext = c.originalContext; betaFast = c.betaFast; betaSlow = c.betaSlow;
            attnFactor = c.attnFactor; mscale = c.mscale; mscaleAllDim = c.mscaleAllDim; truncate = c.truncate;
            lowFreqFactor = c.lowFreqFactor; highFreqFactor = c.highFreqFactor; period = c.period;
            offsetRange = c.offsetRange; growSteps = c.growSteps; offsetMax = c.offsetMax; seed = c.seed;
            dynamicBase = c.dynamicBase; harmonic = c.harmonic;
        }

        public Builder kind(RopeKind v) { kind = v; return this; }
        public Builder base(double v) { base = v; return this; }
        /** Sets the head dimension; rotary dims follow it unless set afterwards. */
        public Builder headDim(int v) { if (rotaryDims == headDim) rotaryDims = v; headDim = v; return this; }
        public Builder rotaryDims(int v) { rotaryDims = v; return this; }
        public Builder pairing(Pairing v) { pairing = v; return this; }
        public Builder factor(double v) { factor = v; return this; }
        public Builder originalContext(long v) { originalContext = v; return this; }
        public Builder betaFast(double v) { betaFast = v; return this; }
        public Builder betaSlow(double v) { betaSlow = v; return this; }
        public Builder attnFactor(double v) { attnFactor = v; return this; }
        public Builder mscale(double v) { mscale = v; return this; }
        public Builder mscaleAllDim(double v) { mscaleAllDim = v; return this; }
        public Builder truncate(boolean v) { truncate = v; return this; }
        public Builder lowFreqFactor(double v) { lowFreqFactor = v; return this; }
        public Builder highFreqFactor(double v) { highFreqFactor = v; return this; }
        public Builder period(long v) { period = v; return this; }
        public Builder offsetRange(long v) { offsetRange = v; return this; }
        public Builder growSteps(long v) { growSteps = v; return this; }
        public Builder offsetMax(long v) { offsetMax = v; return this; }
        public Builder seed(long v) { seed = v; return this; }
        public Builder dynamicBase(boolean v) { dynamicBase = v; return this; }
        public Builder harmonic(boolean v) { harmonic = v; return this; }

        public RopeConfig build() {
            return new RopeConfig(kind, base, headDim, rotaryDims, pairing, factor, originalContext, betaFast, betaSlow,
                    attnFactor, mscale, mscaleAllDim, truncate, lowFreqFactor, highFreqFactor, period, offsetRange,
                    growSteps, offsetMax, seed, dynamicBase, harmonic);
        }
    }
}
