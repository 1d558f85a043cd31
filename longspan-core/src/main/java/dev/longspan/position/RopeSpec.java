package dev.longspan.position;

import dev.longspan.util.LongspanException;

import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * The text forms of a {@link RopeConfig}, read and written: a spec string
 * ({@code kind=yarn,base=10000,factor=8,orig=4096}), Longspan's own config map (the {@code rope}
 * object of a config.json) and an override of a config by a spec; field names, aliases, and the
 * value parsers the format mappings share. Errors name the field. What is written reads back
 * equal: {@code parse(write(c), 0).equals(c)}.
 */
public final class RopeSpec {
    private RopeSpec() {}

    /** Valid spec/config field names, in canonical order. */
    static final List<String> FIELDS = List.of(
            "kind", "base", "dim", "rot", "pairing", "factor", "orig",
            "beta_fast", "beta_slow", "attn_factor", "mscale", "mscale_all_dim", "truncate",
            "low_freq_factor", "high_freq_factor",
            "period", "offset", "grow", "offset_max", "seed", "ntk", "harmonic");

    private static final Map<String, String> ALIASES = Map.ofEntries(
            Map.entry("theta", "base"), Map.entry("rope_theta", "base"), Map.entry("freq_base", "base"),
            Map.entry("head_dim", "dim"), Map.entry("rotary_dims", "rot"), Map.entry("rotary_dim", "rot"),
            Map.entry("original_context", "orig"), Map.entry("original_max_position_embeddings", "orig"),
            Map.entry("attention_factor", "attn_factor"), Map.entry("s", "factor"), Map.entry("scale", "factor"));


    /**
     * Parses a spec; {@code defaultHeadDim} (when > 0) is used if the spec names no dim, and a
     * dim that differs from it is an error. Errors name the field.
     */
    static RopeConfig parse(String spec, int defaultHeadDim) {
        return fromStrings(entries(spec), defaultHeadDim, "RoPE spec");
    }

    /**
     * This configuration with the fields a spec names changed (a {@code --rope} override on a
     * model): base, rot and pairing keep this config's values unless given, and so do the knobs
     * that both this kind and the spec's kind have (factor, orig, ...); the new kind's other knobs
     * take their defaults. {@code --rope kind=yarn,factor=8,orig=8192} on a model with base 500000
     * keeps base 500000.
     */
    static RopeConfig override(RopeConfig c, String spec) {
        Map<String, String> given = entries(spec);
        RopeKind to = given.containsKey("kind") ? RopeKind.parse(given.get("kind")) : c.kind();
        Set<String> kept = new LinkedHashSet<>(List.of("base", "dim", "rot", "pairing"));
        for (String f : RopeConfig.fieldsOf(to)) if (RopeConfig.fieldsOf(c.kind()).contains(f)) kept.add(f);
        Map<String, String> m = new LinkedHashMap<>();
        m.put("kind", to.id);
        for (var e : c.toMap().entrySet()) if (kept.contains(e.getKey())) m.put(e.getKey(), stringOf(e.getValue()));
        m.putAll(given);
        return fromStrings(m, c.headDim(), "RoPE spec");
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
    static RopeConfig fromMap(Map<String, ?> map, int defaultHeadDim) {
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
        allowed.addAll(RopeConfig.fieldsOf(kind));
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
        RopeConfig.Builder b = RopeConfig.builder(kind, dim);
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
                case "harmonic" -> b.harmonic(parseBool(v, k, where));
                default -> throw new IllegalStateException(k);
            }
        }
        return b.build();
    }

    // ---- writing: the fields that apply to the kind, canonical names, canonical order ----------

    /** The canonical spec: kind, base, dim, rot, pairing, then the fields of the kind. */
    static String write(RopeConfig c) {
        return join(toMap(c));
    }

    /** The spec without dim, and without rot when it is the whole head (the form a model's config.json holds). */
    static String writeShort(RopeConfig c) {
        Map<String, Object> m = toMap(c);
        m.remove("dim");
        if (c.rotaryDims() == c.headDim()) m.remove("rot");
        return join(m);
    }

    private static String join(Map<String, Object> m) {
        StringBuilder sb = new StringBuilder();
        for (var e : m.entrySet()) {
            if (!sb.isEmpty()) sb.append(',');
            sb.append(e.getKey()).append('=').append(e.getValue());
        }
        return sb.toString();
    }

    /** The fields that apply to the kind, as an ordered map of canonical names to values (Long, Double, Boolean, String). */
    static Map<String, Object> toMap(RopeConfig c) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("kind", c.kind().id);
        m.put("base", numObj(c.base()));
        m.put("dim", c.headDim());
        m.put("rot", c.rotaryDims());
        m.put("pairing", c.pairing().id);
        for (String f : RopeConfig.fieldsOf(c.kind())) {
            switch (f) {
                case "factor" -> m.put(f, numObj(c.factor()));
                case "orig" -> { if (c.originalContext() > 0) m.put(f, c.originalContext()); }
                case "beta_fast" -> m.put(f, numObj(c.betaFast()));
                case "beta_slow" -> m.put(f, numObj(c.betaSlow()));
                case "attn_factor" -> { if (!Double.isNaN(c.attnFactor())) m.put(f, numObj(c.attnFactor())); }
                case "mscale" -> { if (c.mscale() != 0) m.put(f, numObj(c.mscale())); }
                case "mscale_all_dim" -> { if (c.mscaleAllDim() != 0) m.put(f, numObj(c.mscaleAllDim())); }
                case "truncate" -> m.put(f, c.truncate());
                case "low_freq_factor" -> m.put(f, numObj(c.lowFreqFactor()));
                case "high_freq_factor" -> m.put(f, numObj(c.highFreqFactor()));
                case "period" -> m.put(f, c.period());
                case "offset" -> m.put(f, c.offsetRange());
                case "grow" -> m.put(f, c.growSteps());
                case "offset_max" -> m.put(f, c.offsetMax());
                case "seed" -> m.put(f, c.seed());
                case "ntk" -> m.put(f, c.dynamicBase() ? "dynamic" : "static");
                case "harmonic" -> { if (c.harmonic()) m.put(f, true); }   // written only when on: older specs read back equal
                default -> throw new IllegalStateException(f);
            }
        }
        return m;
    }

    private static Object numObj(double v) {
        if (v == Math.rint(v) && Math.abs(v) < 1e15) return (long) v;
        return v;
    }

    // ---- values: numbers written as text, integral doubles as integers ----------------------

    static String stringOf(Object v) {
        if (v instanceof Double d) return Double.toString(d);
        if (v instanceof Float f) return Double.toString(f.doubleValue());
        return v.toString();
    }

    public static double parseDouble(String v, String field, String where) {
        try {
            double d = Double.parseDouble(v.trim());
            if (!Double.isFinite(d)) throw new NumberFormatException();
            return d;
        } catch (NumberFormatException e) {
            throw new LongspanException(where + ": field '" + field + "' must be a finite number, got '" + v + "'");
        }
    }

    public static long parseLong(String v, String field, String where) {
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

    public static boolean parseBool(String v, String field, String where) {
        return switch (v.trim().toLowerCase(Locale.ROOT)) {
            case "true", "1", "yes" -> true;
            case "false", "0", "no" -> false;
            default -> throw new LongspanException(where + ": field '" + field + "' must be true or false, got '" + v + "'");
        };
    }
}
