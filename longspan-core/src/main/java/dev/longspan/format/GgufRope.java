package dev.longspan.format;

import dev.longspan.position.Pairing;
import dev.longspan.position.RopeConfig;
import dev.longspan.position.RopeKind;
import dev.longspan.util.LongspanException;

import java.util.Locale;
import java.util.Map;
import java.util.Set;

/** The {@link RopeConfig} of GGUF metadata, with llama.cpp's per-architecture pairing. */
public final class GgufRope {
    private GgufRope() {}

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
     * an error (pass a pairing to {@link #fromMetadata(Map, String, Pairing)}).
     */
    public static RopeConfig fromMetadata(Map<String, ?> md, String arch) { return fromMetadata(md, arch, null); }

    public static RopeConfig fromMetadata(Map<String, ?> md, String arch, Pairing pairing) {
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
        double base = md.get(p + "rope.freq_base") != null ? ConfigValues.number(md.get(p + "rope.freq_base"), "GGUF " + p + "rope.freq_base") : 10000.0;
        int headDim;
        if (md.get(p + "attention.key_length") != null) {
            headDim = (int) ConfigValues.integer(md.get(p + "attention.key_length"), "GGUF " + p + "attention.key_length");
        } else {
            Object e = md.get(p + "embedding_length"), h = md.get(p + "attention.head_count");
            if (e == null || h == null)
                throw new LongspanException("GGUF metadata: no " + p + "attention.key_length and no " + p + "embedding_length/" + p + "attention.head_count");
            long hc = ConfigValues.integer(h, "GGUF " + p + "attention.head_count");
            if (hc <= 0) throw new LongspanException("GGUF " + p + "attention.head_count must be positive, got " + hc);
            headDim = (int) (ConfigValues.integer(e, "GGUF " + p + "embedding_length") / hc);
        }
        int rot = md.get(p + "rope.dimension_count") != null
                ? (int) ConfigValues.integer(md.get(p + "rope.dimension_count"), "GGUF " + p + "rope.dimension_count") : headDim;

        String type = md.get(p + "rope.scaling.type") != null ? md.get(p + "rope.scaling.type").toString() : null;
        double factor = 1.0;
        if (md.get(p + "rope.scaling.factor") != null) factor = ConfigValues.number(md.get(p + "rope.scaling.factor"), "GGUF " + p + "rope.scaling.factor");
        else if (md.get(p + "rope.scale_linear") != null) {
            factor = ConfigValues.number(md.get(p + "rope.scale_linear"), "GGUF " + p + "rope.scale_linear");
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
        RopeConfig.Builder b = RopeConfig.builder(kind, headDim).base(base).rotaryDims(rot).pairing(pair);
        if (kind == RopeKind.LINEAR) b.factor(factor);
        if (kind == RopeKind.YARN) {
            b.factor(factor);
            Object orig = md.get(p + "rope.scaling.original_context_length");
            if (orig == null) orig = md.get(p + "context_length");
            if (orig == null) throw new LongspanException("GGUF metadata: yarn needs " + p + "rope.scaling.original_context_length");
            b.originalContext(ConfigValues.integer(orig, "GGUF " + p + "rope.scaling.original_context_length"));
            if (md.get(p + "rope.scaling.attn_factor") != null)
                b.attnFactor(ConfigValues.number(md.get(p + "rope.scaling.attn_factor"), "GGUF " + p + "rope.scaling.attn_factor"));
            if (md.get(p + "rope.scaling.yarn_beta_fast") != null)
                b.betaFast(ConfigValues.number(md.get(p + "rope.scaling.yarn_beta_fast"), "GGUF " + p + "rope.scaling.yarn_beta_fast"));
            if (md.get(p + "rope.scaling.yarn_beta_slow") != null)
                b.betaSlow(ConfigValues.number(md.get(p + "rope.scaling.yarn_beta_slow"), "GGUF " + p + "rope.scaling.yarn_beta_slow"));
        }
        return b.build();
    }
}
