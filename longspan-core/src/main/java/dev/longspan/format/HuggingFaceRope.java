package dev.longspan.format;

import dev.longspan.position.Pairing;
import dev.longspan.position.RopeConfig;
import dev.longspan.position.RopeKind;
import dev.longspan.util.LongspanException;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/** The {@link RopeConfig} of a Hugging Face {@code config.json}. */
public final class HuggingFaceRope {
    private HuggingFaceRope() {}

    /** Hugging Face model types whose attention rotates interleaved pairs (see docs/POSITIONS.md). */
    static final Set<String> HF_INTERLEAVED_MODEL_TYPES = Set.of("gptj", "codegen", "deepseek_v2", "deepseek_v3");

    /**
     * From a parsed Hugging Face {@code config.json}: {@code rope_theta}, {@code rope_scaling}
     * (or the newer {@code rope_parameters}) with {@code rope_type} or {@code type}, the head
     * dimension ({@code head_dim}, else hidden_size / num_attention_heads), and
     * {@code partial_rotary_factor}. Pairing is half (rotate_half) except for the model types in
     * {@link #HF_INTERLEAVED_MODEL_TYPES}. Unknown scaling types are an error naming the type.
     */
    public static RopeConfig fromConfig(Map<String, ?> config) { return fromConfig(config, null); }

    /** As {@link #fromConfig(Map)}, with the pairing forced when {@code pairing} is not null. */
    public static RopeConfig fromConfig(Map<String, ?> config, Pairing pairing) {
        String where = "config.json";
        Map<String, ?> scaling = ConfigValues.asMap(config.get("rope_scaling"), where + " rope_scaling");
        Map<String, ?> params = ConfigValues.asMap(config.get("rope_parameters"), where + " rope_parameters");
        if (scaling == null && params != null) { scaling = params; where = "config.json rope_parameters"; }
        else where = "config.json rope_scaling";

        double theta = 10000.0;
        Object thetaObj = config.get("rope_theta");
        if (thetaObj == null && scaling != null) thetaObj = scaling.get("rope_theta");
        if (thetaObj != null) theta = ConfigValues.number(thetaObj, "config.json rope_theta");

        int headDim;
        if (config.get("qk_rope_head_dim") != null) {
            headDim = (int) ConfigValues.integer(config.get("qk_rope_head_dim"), "config.json qk_rope_head_dim");
        } else if (config.get("head_dim") != null) {
            headDim = (int) ConfigValues.integer(config.get("head_dim"), "config.json head_dim");
        } else {
            Object hs = config.get("hidden_size"), nh = config.get("num_attention_heads");
            if (hs == null || nh == null)
                throw new LongspanException("config.json: no head_dim and no hidden_size/num_attention_heads to derive it");
            long h = ConfigValues.integer(hs, "config.json hidden_size"), n = ConfigValues.integer(nh, "config.json num_attention_heads");
            if (n <= 0) throw new LongspanException("config.json num_attention_heads must be positive, got " + n);
            headDim = (int) (h / n);
        }
        double prf = 1.0;
        Object prfObj = config.get("partial_rotary_factor");
        if (prfObj == null && scaling != null) prfObj = scaling.get("partial_rotary_factor");
        if (prfObj == null) prfObj = config.get("rotary_pct"); // GPT-NeoX
        if (prfObj != null) prf = ConfigValues.number(prfObj, "config.json partial_rotary_factor");
        int rot = (int) (headDim * prf);
        if (config.get("rotary_dim") != null) rot = (int) ConfigValues.integer(config.get("rotary_dim"), "config.json rotary_dim"); // GPT-J
        if ((rot & 1) != 0 || rot < 2 || rot > headDim)
            throw new LongspanException("config.json: rotary dimensions " + rot + " (head_dim " + headDim + " x partial_rotary_factor " + prf + ") must be even and in [2, head_dim]");

        Object mt = config.get("model_type");
        Pairing pair = pairing != null ? pairing
                : (mt != null && HF_INTERLEAVED_MODEL_TYPES.contains(mt.toString()) ? Pairing.INTERLEAVED : Pairing.HALF);
        long maxPos = config.get("max_position_embeddings") != null
                ? ConfigValues.integer(config.get("max_position_embeddings"), "config.json max_position_embeddings") : 0;

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
        RopeConfig.Builder b = RopeConfig.builder(kind, headDim).base(theta).rotaryDims(rot).pairing(pair);
        if (kind == RopeKind.ROPE) return b.build();
        String w = where;
        Object factorObj = scaling.get("factor");
        Object origObj = scaling.get("original_max_position_embeddings");
        switch (kind) {
            case LINEAR, NTK -> b.factor(ConfigValues.requiredNumber(factorObj, w + " factor"));
            case DYNAMIC_NTK -> {
                // HF's dynamic NTK divides by config.max_position_embeddings
                b.factor(ConfigValues.requiredNumber(factorObj, w + " factor"));
                long orig = maxPos > 0 ? maxPos : (origObj != null ? ConfigValues.integer(origObj, w + " original_max_position_embeddings") : 0);
                if (orig <= 0) throw new LongspanException("config.json: dynamic RoPE needs max_position_embeddings");
                b.originalContext(orig);
            }
            case YARN -> {
                long orig = origObj != null ? ConfigValues.integer(origObj, w + " original_max_position_embeddings") : maxPos;
                if (orig <= 0) throw new LongspanException(w + ": yarn needs original_max_position_embeddings or max_position_embeddings");
                b.originalContext(orig);
                if (factorObj != null) b.factor(ConfigValues.number(factorObj, w + " factor"));
                else if (maxPos > 0) b.factor((double) maxPos / orig); // HF: factor = max_position_embeddings / original
                else throw new LongspanException(w + ": yarn needs a factor");
                Object bf = scaling.get("beta_fast"), bs = scaling.get("beta_slow");
                // HF: `get("beta_fast") or 32`: missing, null or 0 means the default
                if (bf != null && ConfigValues.number(bf, w + " beta_fast") != 0) b.betaFast(ConfigValues.number(bf, w + " beta_fast"));
                if (bs != null && ConfigValues.number(bs, w + " beta_slow") != 0) b.betaSlow(ConfigValues.number(bs, w + " beta_slow"));
                if (scaling.get("attention_factor") != null) b.attnFactor(ConfigValues.number(scaling.get("attention_factor"), w + " attention_factor"));
                if (scaling.get("mscale") != null) b.mscale(ConfigValues.number(scaling.get("mscale"), w + " mscale"));
                if (scaling.get("mscale_all_dim") != null) b.mscaleAllDim(ConfigValues.number(scaling.get("mscale_all_dim"), w + " mscale_all_dim"));
                if (scaling.get("truncate") != null) b.truncate(ConfigValues.bool(scaling.get("truncate"), w + " truncate"));
            }
            case LLAMA3 -> {
                b.factor(ConfigValues.requiredNumber(factorObj, w + " factor"));
                if (origObj == null) throw new LongspanException(w + ": llama3 needs original_max_position_embeddings");
                b.originalContext(ConfigValues.integer(origObj, w + " original_max_position_embeddings"));
                b.lowFreqFactor(ConfigValues.requiredNumber(scaling.get("low_freq_factor"), w + " low_freq_factor"));
                b.highFreqFactor(ConfigValues.requiredNumber(scaling.get("high_freq_factor"), w + " high_freq_factor"));
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
                return RopeConfig.fromMap(own);
            }
            default -> throw new IllegalStateException(kind.id);
        }
        return b.build();
    }
}
