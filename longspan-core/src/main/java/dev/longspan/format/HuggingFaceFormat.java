package dev.longspan.format;

import dev.longspan.attention.Pattern;
import dev.longspan.io.BpeTokenizer;
import dev.longspan.io.GgufFile;
import dev.longspan.io.GgufTokenizers;
import dev.longspan.io.Json;
import dev.longspan.io.SafetensorsFile;
import dev.longspan.io.Tokenizer;
import dev.longspan.io.TokenizerLoader;
import dev.longspan.kernel.QuantKernels;
import dev.longspan.model.ChatTemplate;
import dev.longspan.model.ModelConfig;
import dev.longspan.model.Transformer;
import dev.longspan.model.Weight;
import dev.longspan.position.Pairing;
import dev.longspan.position.RopeConfig;
import dev.longspan.position.RopeKind;
import dev.longspan.tensor.Parallel;
import dev.longspan.util.LongspanException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import dev.longspan.format.ModelLoader.Format;
import dev.longspan.format.ModelLoader.LoadedModel;
import dev.longspan.format.ModelLoader.Weights;

/**
 * Hugging Face safetensors directories of the llama, mistral, qwen2 and qwen3 model types:
 * {@code config.json} (RoPE through {@link HuggingFaceRope}), {@code model.safetensors} or shards
 * named by {@code model.safetensors.index.json}, {@code tokenizer.json}, and the EOS ids and chat
 * template of generation_config.json and tokenizer_config.json. Weights are widened to float32.
 */
public final class HuggingFaceFormat implements ModelFormat {
    static final Set<String> HF_TYPES = Set.of("llama", "mistral", "qwen2", "qwen3");

    /** Whether a parsed config.json is a Hugging Face one (Longspan's own has none of these fields). */
    static boolean isHuggingFaceConfig(Map<String, Object> json) {
        return json.containsKey("model_type") || json.containsKey("architectures") || json.containsKey("hidden_size");
    }

    @Override
    public Format id() { return Format.SAFETENSORS; }

    @Override
    public boolean recognizes(Path path) {
        Path cfg = path.resolve("config.json");
        return Files.isDirectory(path) && ModelLoader.isFile(cfg) && isHuggingFaceConfig(ModelLoader.readJson(cfg));
    }

    /** The config needs the tensor names (biases, head norms), so the model is loaded. */
    @Override
    public ModelConfig config(Path path) {
        return load(path, Weights.DEQUANTIZED).model().config;
    }

    @Override
    public LoadedModel load(Path dir, Weights weights) {
        Map<String, Object> cj = ModelLoader.readJson(dir.resolve("config.json"));
        Path cfgPath = dir.resolve("config.json");
        String src = cfgPath.toString();
        Object mt = cj.get("model_type");
        if (!(mt instanceof String type)) throw new LongspanException(src + ": no model_type");
        if (!HF_TYPES.contains(type)) {
            throw new LongspanException(src + ": model_type '" + type + "' is not supported (supported: " + String.join(", ", new java.util.TreeSet<>(HF_TYPES)) + ")");
        }
        Object act = cj.containsKey("hidden_act") ? cj.get("hidden_act") : cj.get("hidden_activation");
        if (act != null && !"silu".equals(act)) throw new LongspanException(src + ": hidden_act '" + act + "' is not supported (only silu)");
        if (Boolean.TRUE.equals(cj.get("mlp_bias"))) throw new LongspanException(src + ": mlp_bias is not supported");
        int dim = hfInt(cj, "hidden_size", src, null);
        int layers = hfInt(cj, "num_hidden_layers", src, null);
        int heads = hfInt(cj, "num_attention_heads", src, null);
        int kvHeads = hfInt(cj, "num_key_value_heads", src, heads);
        if (heads <= 0) throw new LongspanException(src + ": num_attention_heads must be positive");
        int headDim = hfInt(cj, "head_dim", src, dim / heads);
        int ffn = hfInt(cj, "intermediate_size", src, null);
        int vocab = hfInt(cj, "vocab_size", src, null);
        int ctx = hfInt(cj, "max_position_embeddings", src, 2048);
        double eps = cj.get("rms_norm_eps") instanceof Number n ? n.doubleValue() : 1e-6;
        boolean tied = cj.get("tie_word_embeddings") instanceof Boolean b ? b : false;
        RopeConfig rope;
        try {
            rope = HuggingFaceRope.fromConfig(cj);
        } catch (LongspanException e) {
            throw new LongspanException(src + ": " + e.getMessage());
        }
        List<Pattern> attention = attentionPerLayer(cj, type, layers, ctx, src);

        // weights: one file or shards named by an index
        Map<String, Path> where = new LinkedHashMap<>();
        Path single = dir.resolve("model.safetensors"), index = dir.resolve("model.safetensors.index.json");
        if (Files.isRegularFile(index)) {
            Map<String, Object> ij = ModelLoader.readJson(index);
            if (!(ij.get("weight_map") instanceof Map<?, ?> wm)) throw new LongspanException(index + ": no weight_map object");
            for (var e : wm.entrySet()) {
                if (!(e.getValue() instanceof String f)) throw new LongspanException(index + ": weight_map entry " + e.getKey() + " is not a file name");
                Path fp = dir.resolve(f).normalize();
                if (!fp.startsWith(dir.normalize())) throw new LongspanException(index + ": shard '" + f + "' lies outside " + dir);
                where.put((String) e.getKey(), fp);
            }
        } else if (!Files.isRegularFile(single)) {
            throw new LongspanException(dir + ": neither model.safetensors nor model.safetensors.index.json");
        }
        Map<Path, SafetensorsFile> open = new LinkedHashMap<>();
        try {
            if (where.isEmpty()) {
                SafetensorsFile f = SafetensorsFile.open(single);
                open.put(single, f);
                for (String n : f.names()) where.put(n, single);
            } else {
                for (Path s : new LinkedHashSet<>(where.values())) open.put(s, SafetensorsFile.open(s));
            }
            boolean qkvBias = where.containsKey("model.layers.0.self_attn.q_proj.bias");
            boolean qkNorm = where.containsKey("model.layers.0.self_attn.q_norm.weight");
            ModelConfig c;
            try {
                c = new ModelConfig(vocab, dim, layers, heads, kvHeads, headDim, ffn, (float) eps, tied, rope,
                        attention, "tokenizer.json", ctx, qkNorm, qkvBias, 0);
            } catch (LongspanException e) {
                throw new LongspanException(src + ": " + e.getMessage());
            }
            Path tj = dir.resolve("tokenizer.json");
            if (!Files.isRegularFile(tj)) throw new LongspanException(dir + ": no tokenizer.json (only Hugging Face tokenizer.json tokenizers are supported)");
            Tokenizer tok = BpeTokenizer.fromTokenizerJson(tj);
            ModelLoader.checkVocab(tok, c, dir);
            Transformer layout = new Transformer(c, true);
            Set<String> used = new LinkedHashSet<>();
            for (Transformer.Tensor t : layout.tensors()) {
                Path fp = where.get(t.name());
                if (fp == null) throw new LongspanException(dir + ": missing tensor '" + t.name() + "'");
                SafetensorsFile f = open.get(fp);
                if (!f.has(t.name())) throw new LongspanException(fp + ": missing tensor '" + t.name() + "' (named in the index)");
                if (!Arrays.equals(f.shape(t.name()), t.shape())) {
                    throw new LongspanException(fp + ": tensor '" + t.name() + "' has shape " + Arrays.toString(f.shape(t.name()))
                            + " but config.json needs " + Arrays.toString(t.shape()));
                }
                String dt = f.dtype(t.name());
                if (!dt.equals("F32") && !dt.equals("F16") && !dt.equals("BF16")) {
                    throw new LongspanException(fp + ": tensor '" + t.name() + "' has dtype " + dt + " (supported: F32, F16, BF16)");
                }
                used.add(t.name());
            }
            for (String n : where.keySet()) {
                if (used.contains(n) || n.endsWith("rotary_emb.inv_freq") || (tied && n.equals("lm_head.weight"))) continue;
                throw new LongspanException(where.get(n) + ": tensor '" + n + "' is not part of a " + type + " model Longspan can run");
            }
            Transformer m = new Transformer(c);
            List<Transformer.Tensor> ts = layout.tensors();
            Parallel.forEachTask(ts.size(), i -> {
                Transformer.Tensor t = ts.get(i);
                float[] data = open.get(where.get(t.name())).floats(t.name());
                System.arraycopy(data, 0, m.params, t.offset(), t.size());
            });
            List<Integer> eos = new ArrayList<>();
            eosIds(cj.get("eos_token_id"), eos, src);
            Path gen = dir.resolve("generation_config.json");
            if (Files.isRegularFile(gen)) eosIds(ModelLoader.readJson(gen).get("eos_token_id"), eos, gen.toString());
            eos.removeIf(id -> id < 0 || id >= c.vocabSize());
            ChatTemplate chat = ChatTemplate.detect(chatTemplate(dir.resolve("tokenizer_config.json")), tok);
            return new LoadedModel(m, tok, chat, ModelLoader.stopIds(tok, eos), Format.SAFETENSORS, dir, type);
        } finally {
            for (SafetensorsFile f : open.values()) f.close();
        }
    }

    private static void eosIds(Object v, List<Integer> out, String src) {
        if (v == null) return;
        if (v instanceof Long l) { out.add((int) (long) l); return; }
        if (v instanceof List<?> l) {
            for (Object o : l) eosIds(o, out, src);
            return;
        }
        throw new LongspanException(src + ": eos_token_id must be a number or a list of numbers, got " + v);
    }

    private static String chatTemplate(Path tokenizerConfig) {
        if (!Files.isRegularFile(tokenizerConfig)) return null;
        Object t = ModelLoader.readJson(tokenizerConfig).get("chat_template");
        if (t instanceof String s) return s;
        if (t instanceof List<?> l) {  // [{name, template}, ...]: the default one
            for (Object o : l) if (o instanceof Map<?, ?> m && "default".equals(m.get("name")) && m.get("template") instanceof String s) return s;
        }
        return null;
    }

    private static int hfInt(Map<String, Object> m, String k, String src, Integer dflt) {
        Object v = m.get(k);
        if (v == null) {
            if (dflt == null) throw new LongspanException(src + ": missing required field '" + k + "'");
            return dflt;
        }
        if (v instanceof Long l && l == (int) (long) l) return (int) (long) l;
        throw new LongspanException(src + ": field '" + k + "' must be an integer, got " + v);
    }

    /**
     * Each layer's attention as transformers computes it: a sliding window of sliding_window keys
     * (the query's own included; Longspan's window:size) on the layers that use one, full causal
     * attention elsewhere. Mistral: every layer when sliding_window is set (v0.1's 4096; later
     * versions set null). Qwen2 / Qwen3: config.layer_types when given ("sliding_attention" /
     * "full_attention"), else the layers i ≥ max_window_layers when use_sliding_window is true (their
     * configs ship it false). A window at least the context long is full attention.
     */
    static List<Pattern> attentionPerLayer(Map<String, Object> cj, String type, int layers, int ctx, String src) {
        Object sw = cj.get("sliding_window");
        long w = sw instanceof Long l ? l : 0;
        if (sw != null && !(sw instanceof Long)) throw new LongspanException(src + ": sliding_window must be an integer or null, got " + sw);
        boolean[] sliding = new boolean[layers];
        if (cj.get("layer_types") instanceof List<?> types) {
            if (types.size() != layers) throw new LongspanException(src + ": layer_types has " + types.size() + " entries for " + layers + " layers");
            for (int i = 0; i < layers; i++) {
                Object t = types.get(i);
                if ("sliding_attention".equals(t)) sliding[i] = true;
                else if (!"full_attention".equals(t)) throw new LongspanException(src + ": layer_types[" + i + "] is " + t + " (supported: full_attention, sliding_attention)");
            }
        } else if (type.equals("mistral")) {
            java.util.Arrays.fill(sliding, true);
        } else if (Boolean.TRUE.equals(cj.get("use_sliding_window"))) {
            Object mwl = cj.get("max_window_layers");
            if (mwl != null && !(mwl instanceof Long)) throw new LongspanException(src + ": max_window_layers must be an integer, got " + mwl);
            long from = mwl == null ? 0 : (Long) mwl;
            for (int i = 0; i < layers; i++) sliding[i] = i >= from;
        }
        List<Pattern> out = new ArrayList<>(layers);
        for (int i = 0; i < layers; i++) {
            boolean window = sliding[i] && w > 0 && w < ctx;
            out.add(window ? new Pattern.Window((int) w) : new Pattern.Dense());
        }
        return out;
    }
}
