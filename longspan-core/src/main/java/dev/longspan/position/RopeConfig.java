package dev.longspan.position;

import dev.longspan.util.LongspanException;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * One immutable RoPE configuration: everything {@link Rope} needs, built in one place from a
 * spec string ({@code kind=yarn,base=10000,factor=8,orig=4096}), from Longspan's own config map,
 * from a Hugging Face {@code config.json}, or from GGUF metadata. Knobs that do not apply to the
 * kind keep their defaults; {@link #toSpec()} writes only the ones that apply, and
 * {@code fromSpec(c.toSpec())} equals {@code c}.
 *
 * <p>Field names in specs and messages: kind, base, dim, rot, pairing, factor, orig, beta_fast,
 * beta_slow, attn_factor, mscale, mscale_all_dim, truncate, low_freq_factor, high_freq_factor,
 * period, offset, grow, offset_max, seed, ntk. See docs/POSITIONS.md.
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
        boolean dynamicBase) {

    /** Valid spec/config field names, in canonical order. */
    public static final List<String> FIELDS = List.of(
            "kind", "base", "dim", "rot", "pairing", "factor", "orig",
            "beta_fast", "beta_slow", "attn_factor", "mscale", "mscale_all_dim", "truncate",
            "low_freq_factor", "high_freq_factor",
            "period", "offset", "grow", "offset_max", "seed", "ntk");

    private static final Map<String, String> ALIASES = Map.ofEntries(
            Map.entry("theta", "base"), Map.entry("rope_theta", "base"), Map.entry("freq_base", "base"),
            Map.entry("head_dim", "dim"), Map.entry("rotary_dims", "rot"), Map.entry("rotary_dim", "rot"),
            Map.entry("original_context", "orig"), Map.entry("original_max_position_embeddings", "orig"),
            Map.entry("attention_factor", "attn_factor"), Map.entry("s", "factor"), Map.entry("scale", "factor"));

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
    }

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
            case CRD_NTK -> List.of("factor", "orig", "period", "offset", "grow", "offset_max", "seed", "ntk");
        };
    }

    /** Parses a spec such as {@code kind=yarn,base=10000,factor=8,orig=4096,pairing=half,dim=128}; dim is required. */
    public static RopeConfig fromSpec(String spec) { return fromSpec(spec, 0); }

    /**
     * Parses a spec; {@code defaultHeadDim} (when > 0) is used if the spec names no dim, and a
     * dim that differs from it is an error. Errors name the field.
     */
    public static RopeConfig fromSpec(String spec, int defaultHeadDim) {
        return fromStrings(entries(spec), defaultHeadDim, "RoPE spec");
    }

    /**
     * This configuration with the fields a spec names changed (a {@code --rope} override on a
     * model): base, rot and pairing keep this config's values unless given, and so do the knobs
     * that both this kind and the spec's kind have (factor, orig, ...); the new kind's other knobs
     * take their defaults. {@code --rope kind=yarn,factor=8,orig=8192} on a model with base 500000
     * keeps base 500000.
     */
    public RopeConfig overriddenBy(String spec) {
        Map<String, String> given = entries(spec);
        RopeKind to = given.containsKey("kind") ? RopeKind.parse(given.get("kind")) : kind;
        Set<String> kept = new LinkedHashSet<>(List.of("base", "dim", "rot", "pairing"));
        for (String f : fieldsOf(to)) if (fieldsOf(kind).contains(f)) kept.add(f);
        Map<String, String> m = new LinkedHashMap<>();
        m.put("kind", to.id);
        for (var e : toMap().entrySet()) if (kept.contains(e.getKey())) m.put(e.getKey(), stringOf(e.getValue()));
        m.putAll(given);
        return fromStrings(m, headDim, "RoPE spec");
    }

    private static Map<String, String> entries(String spec) {
        if (spec == null || spec.isBlank()) throw new LongspanException("RoPE spec is empty; expected e.g. kind=rope,base=10000");
        Map<String, String> m = new LinkedHashMap<>();
        for (String entry : spec.split(",", -1)) {
            String e = entry.trim();
            if (e.isEmpty()) throw new LongspanException("RoPE spec '" + spec + "': empty entry (stray comma?)");
            int eq = e.indexOf('=');
            if (eq <= 0) throw new LongspanException("RoPE spec '" + spec + "': entry '" + e + "' is not key=value");
            String k = e.substring(0, eq).trim(), v = e.substring(eq + 1).trim();
            if (v.isEmpty()) throw new LongspanException("RoPE spec: field '" + k + "' has no value");
            String canon = canonical(k);
            if (m.containsKey(canon)) throw new LongspanException("RoPE spec: field '" + canon + "' given twice");
            m.put(canon, v);
        }
        return m;
    }

    /**
     * From Longspan's own config map (the {@code rope} object of a model's config.json): the same
     * field names as a spec, values as numbers, strings or booleans.
     */
    public static RopeConfig fromMap(Map<String, ?> map) { return fromMap(map, 0); }

    public static RopeConfig fromMap(Map<String, ?> map, int defaultHeadDim) {
        if (map == null) throw new LongspanException("RoPE config is missing");
        Map<String, String> m = new LinkedHashMap<>();
        for (var e : map.entrySet()) {
            if (e.getValue() == null) continue;
            String canon = canonical(e.getKey());
            if (m.containsKey(canon)) throw new LongspanException("RoPE config: field '" + canon + "' given twice");
            m.put(canon, stringOf(e.getValue()));
        }
        return fromStrings(m, defaultHeadDim, "RoPE config");
    }

    /** The canonical spec: kind, base, dim, rot, pairing, then the fields of the kind. */
    public String toSpec() {
        StringBuilder sb = new StringBuilder();
        for (var e : toMap().entrySet()) {
            if (!sb.isEmpty()) sb.append(',');
            sb.append(e.getKey()).append('=').append(e.getValue());
        }
        return sb.toString();
    }

    /** The fields that apply to this kind, as an ordered map of canonical names to values (numbers as strings are avoided: Long, Double, Boolean, String). */
    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("kind", kind.id);
        m.put("base", numObj(base));
        m.put("dim", headDim);
        m.put("rot", rotaryDims);
        m.put("pairing", pairing.id);
        for (String f : fieldsOf(kind)) {
            switch (f) {
                case "factor" -> m.put(f, numObj(factor));
                case "orig" -> { if (originalContext > 0) m.put(f, originalContext); }
                case "beta_fast" -> m.put(f, numObj(betaFast));
                case "beta_slow" -> m.put(f, numObj(betaSlow));
                case "attn_factor" -> { if (!Double.isNaN(attnFactor)) m.put(f, numObj(attnFactor)); }
                case "mscale" -> { if (mscale != 0) m.put(f, numObj(mscale)); }
                case "mscale_all_dim" -> { if (mscaleAllDim != 0) m.put(f, numObj(mscaleAllDim)); }
                case "truncate" -> m.put(f, truncate);
                case "low_freq_factor" -> m.put(f, numObj(lowFreqFactor));
                case "high_freq_factor" -> m.put(f, numObj(highFreqFactor));
                case "period" -> m.put(f, period);
                case "offset" -> m.put(f, offsetRange);
                case "grow" -> m.put(f, growSteps);
                case "offset_max" -> m.put(f, offsetMax);
                case "seed" -> m.put(f, seed);
                case "ntk" -> m.put(f, dynamicBase ? "dynamic" : "static");
                default -> throw new IllegalStateException(f);
            }
        }
        return m;
    }

    /**
     * The spec without dim, and without rot when it is the whole head: the form a model's
     * config.json holds, where head_dim stands beside it.
     */
    public String toShortSpec() {
        StringBuilder sb = new StringBuilder();
        for (var e : toMap().entrySet()) {
            if (e.getKey().equals("dim") || (e.getKey().equals("rot") && rotaryDims == headDim)) continue;
            if (!sb.isEmpty()) sb.append(',');
            sb.append(e.getKey()).append('=').append(e.getValue());
        }
        return sb.toString();
    }

    @Override
    public String toString() { return toSpec(); }

    private static String canonical(String key) {
        String k = key == null ? "" : key.trim().toLowerCase(Locale.ROOT).replace('-', '_');
        k = ALIASES.getOrDefault(k, k);
        if (!FIELDS.contains(k))
            throw new LongspanException("unknown RoPE field '" + (key == null ? "" : key.trim()) + "'; valid fields: " + String.join(", ", FIELDS));
        return k;
    }

    private static RopeConfig fromStrings(Map<String, String> m, int defaultHeadDim, String where) {
        String kindStr = m.get("kind");
        if (kindStr == null) throw new LongspanException(where + ": missing field 'kind'; valid kinds: " + RopeKind.validNames());
        RopeKind kind = RopeKind.parse(kindStr);
        Set<String> allowed = new LinkedHashSet<>(List.of("kind", "base", "dim", "rot", "pairing"));
        allowed.addAll(fieldsOf(kind));
        for (String k : m.keySet()) {
            if (!allowed.contains(k))
                throw new LongspanException(where + ": field '" + k + "' does not apply to kind " + kind + " (its fields: " + String.join(", ", allowed) + ")");
        }
        int dim;
        if (m.containsKey("dim")) {
            dim = (int) parseLong(m.get("dim"), "dim", where);
            if (defaultHeadDim > 0 && dim != defaultHeadDim)
                throw new LongspanException(where + ": field 'dim' is " + dim + " but the data has head dimension " + defaultHeadDim);
        } else if (defaultHeadDim > 0) {
            dim = defaultHeadDim;
        } else {
            throw new LongspanException(where + ": missing field 'dim' (head dimension)");
        }
        Builder b = builder(kind, dim);
        for (var e : m.entrySet()) {
            String k = e.getKey(), v = e.getValue();
            switch (k) {
                case "kind", "dim" -> { }
                case "base" -> b.base(parseDouble(v, k, where));
                case "rot" -> b.rotaryDims((int) parseLong(v, k, where));
                case "pairing" -> b.pairing(Pairing.parse(v));
                case "factor" -> b.factor(parseDouble(v, k, where));
                case "orig" -> b.originalContext(parseLong(v, k, where));
                case "beta_fast" -> b.betaFast(parseDouble(v, k, where));
                case "beta_slow" -> b.betaSlow(parseDouble(v, k, where));
                case "attn_factor" -> b.attnFactor(parseDouble(v, k, where));
                case "mscale" -> b.mscale(parseDouble(v, k, where));
                case "mscale_all_dim" -> b.mscaleAllDim(parseDouble(v, k, where));
                case "truncate" -> b.truncate(parseBool(v, k, where));
                case "low_freq_factor" -> b.lowFreqFactor(parseDouble(v, k, where));
                case "high_freq_factor" -> b.highFreqFactor(parseDouble(v, k, where));
                case "period" -> b.period(parseLong(v, k, where));
                case "offset" -> b.offsetRange(parseLong(v, k, where));
                case "grow" -> b.growSteps(parseLong(v, k, where));
                case "offset_max" -> b.offsetMax(parseLong(v, k, where));
                case "seed" -> b.seed(parseLong(v, k, where));
                case "ntk" -> b.dynamicBase(switch (v.trim().toLowerCase(Locale.ROOT)) {
                    case "static" -> false;
                    case "dynamic" -> true;
                    default -> throw new LongspanException(where + ": field 'ntk' must be static or dynamic, got '" + v + "'");
                });
                default -> throw new IllegalStateException(k);
            }
        }
        return b.build();
    }

    // ---- Hugging Face config.json ------------------------------------------------------------

    /** Hugging Face model types whose attention rotates interleaved pairs (see docs/POSITIONS.md). */
    static final Set<String> HF_INTERLEAVED_MODEL_TYPES = Set.of("gptj", "codegen", "deepseek_v2", "deepseek_v3");

    /**
     * From a parsed Hugging Face {@code config.json}: {@code rope_theta}, {@code rope_scaling}
     * (or the newer {@code rope_parameters}) with {@code rope_type} or {@code type}, the head
     * dimension ({@code head_dim}, else hidden_size / num_attention_heads), and
     * {@code partial_rotary_factor}. Pairing is half (rotate_half) except for the model types in
     * {@link #HF_INTERLEAVED_MODEL_TYPES}. Unknown scaling types are an error naming the type.
     */
    public static RopeConfig fromHuggingFace(Map<String, ?> config) { return fromHuggingFace(config, null); }

    /** As {@link #fromHuggingFace(Map)}, with the pairing forced when {@code pairing} is not null. */
    public static RopeConfig fromHuggingFace(Map<String, ?> config, Pairing pairing) {
        String where = "config.json";
        Map<String, ?> scaling = asMap(config.get("rope_scaling"), where + " rope_scaling");
        Map<String, ?> params = asMap(config.get("rope_parameters"), where + " rope_parameters");
        if (scaling == null && params != null) { scaling = params; where = "config.json rope_parameters"; }
        else where = "config.json rope_scaling";

        double theta = 10000.0;
        Object thetaObj = config.get("rope_theta");
        if (thetaObj == null && scaling != null) thetaObj = scaling.get("rope_theta");
        if (thetaObj != null) theta = hfDouble(thetaObj, "config.json rope_theta");

        int headDim;
        if (config.get("qk_rope_head_dim") != null) {
            headDim = (int) hfLong(config.get("qk_rope_head_dim"), "config.json qk_rope_head_dim");
        } else if (config.get("head_dim") != null) {
            headDim = (int) hfLong(config.get("head_dim"), "config.json head_dim");
        } else {
            Object hs = config.get("hidden_size"), nh = config.get("num_attention_heads");
            if (hs == null || nh == null)
                throw new LongspanException("config.json: no head_dim and no hidden_size/num_attention_heads to derive it");
            long h = hfLong(hs, "config.json hidden_size"), n = hfLong(nh, "config.json num_attention_heads");
            if (n <= 0) throw new LongspanException("config.json num_attention_heads must be positive, got " + n);
            headDim = (int) (h / n);
        }
        double prf = 1.0;
        Object prfObj = config.get("partial_rotary_factor");
        if (prfObj == null && scaling != null) prfObj = scaling.get("partial_rotary_factor");
        if (prfObj == null) prfObj = config.get("rotary_pct"); // GPT-NeoX
        if (prfObj != null) prf = hfDouble(prfObj, "config.json partial_rotary_factor");
        int rot = (int) (headDim * prf);
        if (config.get("rotary_dim") != null) rot = (int) hfLong(config.get("rotary_dim"), "config.json rotary_dim"); // GPT-J
        if ((rot & 1) != 0 || rot < 2 || rot > headDim)
            throw new LongspanException("config.json: rotary dimensions " + rot + " (head_dim " + headDim + " x partial_rotary_factor " + prf + ") must be even and in [2, head_dim]");

        Object mt = config.get("model_type");
        Pairing pair = pairing != null ? pairing
                : (mt != null && HF_INTERLEAVED_MODEL_TYPES.contains(mt.toString()) ? Pairing.INTERLEAVED : Pairing.HALF);
        long maxPos = config.get("max_position_embeddings") != null
                ? hfLong(config.get("max_position_embeddings"), "config.json max_position_embeddings") : 0;

        String type = null;
        if (scaling != null) {
            Object t = scaling.get("rope_type");
            if (t == null) t = scaling.get("type");
            if (t != null) type = t.toString();
        }
        RopeKind kind;
        if (type == null) {
            if (scaling != null && scaling.get("factor") != null && params == null)
                throw new LongspanException(where + ": has a factor but no rope_type/type; valid types: default, linear, dynamic, ntk, yarn, llama3");
            kind = RopeKind.ROPE;
        } else {
            kind = switch (type.trim().toLowerCase(Locale.ROOT)) {
                case "default", "none" -> RopeKind.ROPE;
                case "linear" -> RopeKind.LINEAR;
                case "dynamic" -> RopeKind.DYNAMIC_NTK;
                case "ntk" -> RopeKind.NTK;
                case "yarn" -> RopeKind.YARN;
                case "llama3" -> RopeKind.LLAMA3;
                default -> {
                    try {
                        yield RopeKind.parse(type);
                    } catch (LongspanException e) {
                        throw new LongspanException("unknown RoPE scaling type '" + type + "' in " + where
                                + "; supported: default, linear, dynamic, ntk, yarn, llama3 (and Longspan kinds " + RopeKind.validNames() + ")");
                    }
                }
            };
        }
        Builder b = builder(kind, headDim).base(theta).rotaryDims(rot).pairing(pair);
        if (kind == RopeKind.ROPE) return b.build();
        String w = where;
        Object factorObj = scaling.get("factor");
        Object origObj = scaling.get("original_max_position_embeddings");
        switch (kind) {
            case LINEAR, NTK -> b.factor(hfRequiredDouble(factorObj, w + " factor"));
            case DYNAMIC_NTK -> {
                // HF's dynamic NTK divides by config.max_position_embeddings
                b.factor(hfRequiredDouble(factorObj, w + " factor"));
                long orig = maxPos > 0 ? maxPos : (origObj != null ? hfLong(origObj, w + " original_max_position_embeddings") : 0);
                if (orig <= 0) throw new LongspanException("config.json: dynamic RoPE needs max_position_embeddings");
                b.originalContext(orig);
            }
            case YARN -> {
                long orig = origObj != null ? hfLong(origObj, w + " original_max_position_embeddings") : maxPos;
                if (orig <= 0) throw new LongspanException(w + ": yarn needs original_max_position_embeddings or max_position_embeddings");
                b.originalContext(orig);
                if (factorObj != null) b.factor(hfDouble(factorObj, w + " factor"));
                else if (maxPos > 0) b.factor((double) maxPos / orig); // HF: factor = max_position_embeddings / original
                else throw new LongspanException(w + ": yarn needs a factor");
                Object bf = scaling.get("beta_fast"), bs = scaling.get("beta_slow");
                // HF: `get("beta_fast") or 32`: missing, null or 0 means the default
                if (bf != null && hfDouble(bf, w + " beta_fast") != 0) b.betaFast(hfDouble(bf, w + " beta_fast"));
                if (bs != null && hfDouble(bs, w + " beta_slow") != 0) b.betaSlow(hfDouble(bs, w + " beta_slow"));
                if (scaling.get("attention_factor") != null) b.attnFactor(hfDouble(scaling.get("attention_factor"), w + " attention_factor"));
                if (scaling.get("mscale") != null) b.mscale(hfDouble(scaling.get("mscale"), w + " mscale"));
                if (scaling.get("mscale_all_dim") != null) b.mscaleAllDim(hfDouble(scaling.get("mscale_all_dim"), w + " mscale_all_dim"));
                if (scaling.get("truncate") != null) b.truncate(hfBool(scaling.get("truncate"), w + " truncate"));
            }
            case LLAMA3 -> {
                b.factor(hfRequiredDouble(factorObj, w + " factor"));
                if (origObj == null) throw new LongspanException(w + ": llama3 needs original_max_position_embeddings");
                b.originalContext(hfLong(origObj, w + " original_max_position_embeddings"));
                b.lowFreqFactor(hfRequiredDouble(scaling.get("low_freq_factor"), w + " low_freq_factor"));
                b.highFreqFactor(hfRequiredDouble(scaling.get("high_freq_factor"), w + " high_freq_factor"));
            }
            case CRD_NTK -> {
                // not a Hugging Face type; accept Longspan's own field names inside rope_scaling
                Map<String, Object> own = new LinkedHashMap<>(b.build().toMap());
                own.remove("factor");
                for (var e : scaling.entrySet()) {
                    if (e.getKey().equals("type") || e.getKey().equals("rope_type") || e.getKey().equals("rope_theta")
                            || e.getKey().equals("partial_rotary_factor")) continue;
                    own.put(e.getKey(), e.getValue());
                }
                return fromMap(own);
            }
            default -> throw new IllegalStateException(kind.id);
        }
        return b.build();
    }

    // ---- GGUF metadata -----------------------------------------------------------------------

    /** GGUF architectures llama.cpp rotates with adjacent pairs (LLAMA_ROPE_TYPE_NORM). */
    static final Set<String> GGUF_INTERLEAVED_ARCHS = Set.of(
            "llama", "llada", "llama4", "deci", "baichuan", "starcoder", "internlm2", "minicpm", "xverse",
            "command_r", "cohere2", "olmo", "arctic", "deepseek", "deepseek2", "plm", "chatglm", "glm4",
            "granite", "granite_moe", "granite_hybrid", "chameleon", "bailingmoe", "neo_bert", "smollm3",
            "arcee", "ernie4_5", "ernie4_5_moe", "mistral3", "plamo");
    /** GGUF architectures llama.cpp rotates with pairs offset by n_rot/2 (LLAMA_ROPE_TYPE_NEOX). */
    static final Set<String> GGUF_HALF_ARCHS = Set.of(
            "falcon", "falcon_h1", "grok", "dbrx", "bert", "jina_bert_v3", "nomic_bert", "nomic_bert_moe",
            "stablelm", "bitnet", "qwen", "qwen2", "dream", "qwen2moe", "qwen3", "qwen3moe", "olmo2", "olmoe",
            "phi2", "phi3", "phimoe", "plamo2", "gemma", "gemma2", "gemma3", "gemma3n", "gemma_embedding",
            "starcoder2", "openelm", "gptneox", "codeshell", "orion", "nemotron", "exaone", "exaone4",
            "minicpm3", "dots1", "hunyuan_moe", "openai_moe", "hunyuan_dense", "lfm2", "smallthinker",
            "glm4_moe", "seed_oss");

    /**
     * From GGUF metadata ({@code general.architecture} names the arch when {@code arch} is null):
     * {@code ARCH.rope.freq_base}, {@code ARCH.rope.dimension_count}, {@code ARCH.attention.key_length}
     * (else embedding_length / head_count), {@code ARCH.rope.scaling.type} (none, linear, yarn),
     * {@code ARCH.rope.scaling.factor} (or the older {@code ARCH.rope.scale_linear}),
     * {@code ARCH.rope.scaling.original_context_length} (else {@code ARCH.context_length}),
     * {@code ARCH.rope.scaling.attn_factor}, {@code ARCH.rope.scaling.yarn_beta_fast/_slow}.
     * Pairing follows llama.cpp's per-architecture rope type; an architecture it does not list is
     * an error (pass a pairing to {@link #fromGguf(Map, String, Pairing)}).
     */
    public static RopeConfig fromGguf(Map<String, ?> md, String arch) { return fromGguf(md, arch, null); }

    public static RopeConfig fromGguf(Map<String, ?> md, String arch, Pairing pairing) {
        if (arch == null) {
            Object a = md.get("general.architecture");
            if (a == null) throw new LongspanException("GGUF metadata: no general.architecture");
            arch = a.toString();
        }
        String p = arch + ".";
        Pairing pair = pairing;
        if (pair == null) {
            if (GGUF_INTERLEAVED_ARCHS.contains(arch)) pair = Pairing.INTERLEAVED;
            else if (GGUF_HALF_ARCHS.contains(arch)) pair = Pairing.HALF;
            else throw new LongspanException("GGUF architecture '" + arch + "': RoPE pairing unknown (not in llama.cpp's NORM or NEOX lists); give the pairing explicitly");
        }
        double base = md.get(p + "rope.freq_base") != null ? hfDouble(md.get(p + "rope.freq_base"), "GGUF " + p + "rope.freq_base") : 10000.0;
        int headDim;
        if (md.get(p + "attention.key_length") != null) {
            headDim = (int) hfLong(md.get(p + "attention.key_length"), "GGUF " + p + "attention.key_length");
        } else {
            Object e = md.get(p + "embedding_length"), h = md.get(p + "attention.head_count");
            if (e == null || h == null)
                throw new LongspanException("GGUF metadata: no " + p + "attention.key_length and no " + p + "embedding_length/" + p + "attention.head_count");
            long hc = hfLong(h, "GGUF " + p + "attention.head_count");
            if (hc <= 0) throw new LongspanException("GGUF " + p + "attention.head_count must be positive, got " + hc);
            headDim = (int) (hfLong(e, "GGUF " + p + "embedding_length") / hc);
        }
        int rot = md.get(p + "rope.dimension_count") != null
                ? (int) hfLong(md.get(p + "rope.dimension_count"), "GGUF " + p + "rope.dimension_count") : headDim;

        String type = md.get(p + "rope.scaling.type") != null ? md.get(p + "rope.scaling.type").toString() : null;
        double factor = 1.0;
        if (md.get(p + "rope.scaling.factor") != null) factor = hfDouble(md.get(p + "rope.scaling.factor"), "GGUF " + p + "rope.scaling.factor");
        else if (md.get(p + "rope.scale_linear") != null) {
            factor = hfDouble(md.get(p + "rope.scale_linear"), "GGUF " + p + "rope.scale_linear");
            if (type == null) type = "linear";
        }
        if (factor == 0) factor = 1.0; // llama.cpp: 0 means no scaling
        RopeKind kind = switch (type == null ? "none" : type.trim().toLowerCase(Locale.ROOT)) {
            case "none" -> RopeKind.ROPE;
            case "linear" -> factor == 1.0 ? RopeKind.ROPE : RopeKind.LINEAR;
            case "yarn" -> RopeKind.YARN;
            default -> throw new LongspanException("unknown RoPE scaling type '" + type + "' in GGUF " + p
                    + "rope.scaling.type; supported: none, linear, yarn");
        };
        Builder b = builder(kind, headDim).base(base).rotaryDims(rot).pairing(pair);
        if (kind == RopeKind.LINEAR) b.factor(factor);
        if (kind == RopeKind.YARN) {
            b.factor(factor);
            Object orig = md.get(p + "rope.scaling.original_context_length");
            if (orig == null) orig = md.get(p + "context_length");
            if (orig == null) throw new LongspanException("GGUF metadata: yarn needs " + p + "rope.scaling.original_context_length");
            b.originalContext(hfLong(orig, "GGUF " + p + "rope.scaling.original_context_length"));
            if (md.get(p + "rope.scaling.attn_factor") != null)
                b.attnFactor(hfDouble(md.get(p + "rope.scaling.attn_factor"), "GGUF " + p + "rope.scaling.attn_factor"));
            if (md.get(p + "rope.scaling.yarn_beta_fast") != null)
                b.betaFast(hfDouble(md.get(p + "rope.scaling.yarn_beta_fast"), "GGUF " + p + "rope.scaling.yarn_beta_fast"));
            if (md.get(p + "rope.scaling.yarn_beta_slow") != null)
                b.betaSlow(hfDouble(md.get(p + "rope.scaling.yarn_beta_slow"), "GGUF " + p + "rope.scaling.yarn_beta_slow"));
        }
        return b.build();
    }

    // ---- value helpers -----------------------------------------------------------------------

    private static LongspanException bad(String field, String what) {
        return new LongspanException("RoPE config: field '" + field + "' " + what);
    }

    static String num(double v) {
        if (v == Math.rint(v) && Math.abs(v) < 1e15) return Long.toString((long) v);
        return Double.toString(v);
    }

    private static Object numObj(double v) {
        if (v == Math.rint(v) && Math.abs(v) < 1e15) return (long) v;
        return v;
    }

    private static String stringOf(Object v) {
        if (v instanceof Double d) return Double.toString(d);
        if (v instanceof Float f) return Double.toString(f.doubleValue());
        return v.toString();
    }

    private static double parseDouble(String v, String field, String where) {
        try {
            double d = Double.parseDouble(v.trim());
            if (!Double.isFinite(d)) throw new NumberFormatException();
            return d;
        } catch (NumberFormatException e) {
            throw new LongspanException(where + ": field '" + field + "' must be a finite number, got '" + v + "'");
        }
    }

    private static long parseLong(String v, String field, String where) {
        String s = v.trim();
        try {
            return Long.parseLong(s);
        } catch (NumberFormatException e) {
            // accept integral values written as 4096.0 or 1e6
            try {
                double d = Double.parseDouble(s);
                if (d == Math.rint(d) && Math.abs(d) < 9.0e15) return (long) d;
            } catch (NumberFormatException ignored) {
                // fall through
            }
            throw new LongspanException(where + ": field '" + field + "' must be an integer, got '" + v + "'");
        }
    }

    private static boolean parseBool(String v, String field, String where) {
        return switch (v.trim().toLowerCase(Locale.ROOT)) {
            case "true", "1", "yes" -> true;
            case "false", "0", "no" -> false;
            default -> throw new LongspanException(where + ": field '" + field + "' must be true or false, got '" + v + "'");
        };
    }

    @SuppressWarnings("unchecked")
    private static Map<String, ?> asMap(Object o, String where) {
        if (o == null) return null;
        if (o instanceof Map<?, ?> m) return (Map<String, ?>) m;
        throw new LongspanException(where + " must be an object, got " + o);
    }

    private static double hfDouble(Object o, String where) {
        if (o instanceof Number n) return n.doubleValue();
        if (o instanceof String s) return parseDouble(s, where, "config");
        throw new LongspanException(where + " must be a number, got " + o);
    }

    private static double hfRequiredDouble(Object o, String where) {
        if (o == null) throw new LongspanException(where + " is required");
        return hfDouble(o, where);
    }

    private static long hfLong(Object o, String where) {
        if (o instanceof Number n) {
            double d = n.doubleValue();
            if (d != Math.rint(d)) throw new LongspanException(where + " must be an integer, got " + o);
            return n.longValue();
        }
        if (o instanceof String s) return parseLong(s, where, "config");
        throw new LongspanException(where + " must be an integer, got " + o);
    }

    private static boolean hfBool(Object o, String where) {
        if (o instanceof Boolean b) return b;
        if (o instanceof String s) return parseBool(s, where, "config");
        throw new LongspanException(where + " must be true or false, got " + o);
    }

    /** Mutable builder with Longspan's defaults (base 10000, half pairing, factor 1, beta 32/1, llama3 1/4). */
    public static final class Builder {
        private RopeKind kind;
        private double base = 10000.0;
        private int headDim;
        private int rotaryDims;
        private Pairing pairing = Pairing.HALF;
        private double factor = 1.0;
        private long originalContext;
        private double betaFast = 32, betaSlow = 1;
        private double attnFactor = Double.NaN, mscale, mscaleAllDim;
        private boolean truncate = true;
        private double lowFreqFactor = 1, highFreqFactor = 4;
        private long period, offsetRange, growSteps, offsetMax, seed;
        private boolean dynamicBase;

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
            dynamicBase = c.dynamicBase;
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

        public RopeConfig build() {
            return new RopeConfig(kind, base, headDim, rotaryDims, pairing, factor, originalContext, betaFast, betaSlow,
                    attnFactor, mscale, mscaleAllDim, truncate, lowFreqFactor, highFreqFactor, period, offsetRange,
                    growSteps, offsetMax, seed, dynamicBase);
        }
    }
}
