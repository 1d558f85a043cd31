package dev.longspan.model;

import dev.longspan.attention.Pattern;
import dev.longspan.io.BpeTokenizer;
import dev.longspan.io.GgufFile;
import dev.longspan.io.GgufTokenizers;
import dev.longspan.io.Json;
import dev.longspan.io.SafetensorsFile;
import dev.longspan.io.Tokenizer;
import dev.longspan.io.TokenizerLoader;
import dev.longspan.kernel.QuantKernels;
import dev.longspan.position.Pairing;
import dev.longspan.position.RopeConfig;
import dev.longspan.position.RopeKind;
import dev.longspan.tensor.Parallel;
import dev.longspan.train.Checkpoint;
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

/**
 * One entry point for every model Longspan runs: a GGUF file (llama, mistral, qwen2, qwen3), a
 * Hugging Face safetensors directory ({@code config.json} + {@code model.safetensors} or a sharded
 * {@code model.safetensors.index.json}; llama, mistral, qwen2, qwen3) or a Longspan model directory.
 * Weights are dequantized / widened into the {@link Transformer}'s float parameters.
 *
 * <p>Everything that can be checked without reading tensor data is checked first (config, every
 * tensor's presence, shape and type, the tokenizer), so bad input fails with one
 * {@link LongspanException} naming the file and the problem before any weight is read.
 *
 * <p>RoPE layout: GGUF files of llama.cpp's NORM architectures (llama, mistral) hold Q/K rows
 * permuted for interleaved pairs (llama.cpp's converter undoes Hugging Face's permutation). The
 * loader permutes those rows back, per head, to Hugging Face's half layout and uses half pairing,
 * so every loaded model has Longspan's canonical layout (a loaded GGUF saved as a Longspan model
 * directory is a Hugging Face-layout checkpoint). The rotation is the same either way.
 */
public final class ModelLoader {
    private ModelLoader() {}

    public enum Format { LONGSPAN, GGUF, SAFETENSORS }

    /**
     * How a GGUF's weight matrices are held: STORED keeps every non-F32 matrix in the memory-mapped
     * file, in its own type (products run on its blocks; the page cache holds it once, no 2³¹-float
     * limit); DEQUANTIZED widens every weight to float32 into the parameter array at load.
     * Other formats are always loaded into the parameter array.
     */
    public enum Weights { STORED, DEQUANTIZED }

    /**
     * A loaded model with what generation needs.
     *
     * @param stopIds ids that end generation (EOS, end-of-turn tokens, config.json eos ids)
     */
    public record LoadedModel(Transformer model, Tokenizer tokenizer, ChatTemplate chat, int[] stopIds, Format format,
                              Path source, String architecture) {
        /** The same model with other attention patterns and/or RoPE (null = unchanged); weights shared. */
        public LoadedModel withOverrides(String attention, String rope) {
            ModelConfig c = model.config.withOverrides(attention, rope);
            if (c == model.config) return this;
            Transformer t = model.withConfig(c);
            return new LoadedModel(t, tokenizer, chat, stopIds, format, source, architecture);
        }

        /** Prompt ids: the text (wrapped in the chat template unless raw), BOS first when the model wants it. */
        public int[] promptIds(String text, boolean raw) {
            ChatTemplate t = raw ? ChatTemplate.NONE : chat;
            int[] body = tokenizer.encode(t.apply(text));
            boolean bos = tokenizer.bosId() >= 0 && (tokenizer.addBos() || (t == ChatTemplate.LLAMA3 && tokenizer.tokenId("<|begin_of_text|>") == tokenizer.bosId()));
            if (!bos) return body;
            int[] ids = new int[body.length + 1];
            ids[0] = tokenizer.bosId();
            System.arraycopy(body, 0, ids, 1, body.length);
            return ids;
        }

        public boolean isStop(int id) {
            for (int s : stopIds) if (s == id) return true;
            return false;
        }
    }

    /** Loads a GGUF file (weights kept as stored), a Hugging Face safetensors directory or a Longspan model directory. */
    public static LoadedModel load(Path path) {
        return load(path, Weights.STORED);
    }

    /** Loads a model; {@code weights} says how a GGUF's matrices are held. */
    public static LoadedModel load(Path path, Weights weights) {
        if (Files.isDirectory(path)) {
            Path cfg = path.resolve("config.json");
            if (!isFile(cfg)) throw new LongspanException(path + ": no config.json (not a model directory)");
            Map<String, Object> json = readJson(cfg);
            if (json.containsKey("model_type") || json.containsKey("architectures") || json.containsKey("hidden_size")) {
                return loadSafetensors(path, json);
            }
            Transformer m = Checkpoint.loadModel(path);
            Tokenizer tok = TokenizerLoader.load(path);
            checkVocab(tok, m.config, path);
            return new LoadedModel(m, tok, ChatTemplate.NONE, stopIds(tok, List.of()), Format.LONGSPAN, path, "longspan");
        }
        if (!Files.exists(path)) throw new LongspanException(path + ": no such file or directory");
        if (!GgufFile.looksLikeGguf(path)) {
            throw new LongspanException(path + ": not a GGUF file (wrong magic), a Hugging Face safetensors directory or a Longspan model directory");
        }
        return loadGguf(path, weights);
    }

    /**
     * The config of a model without reading its weights where the format allows (GGUF, Longspan);
     * a Hugging Face directory is loaded.
     */
    public static ModelConfig config(Path path) {
        if (!Files.isDirectory(path) && Files.exists(path) && GgufFile.looksLikeGguf(path)) {
            try (GgufFile g = GgufFile.open(path)) {
                return ggufPlan(g).config();
            }
        }
        if (Files.isDirectory(path) && isFile(path.resolve("config.json"))) {
            Map<String, Object> json = readJson(path.resolve("config.json"));
            if (!(json.containsKey("model_type") || json.containsKey("architectures") || json.containsKey("hidden_size"))) {
                ModelConfig c = ModelConfig.read(path.resolve("config.json"));
                checkLongspanWeights(path, c);
                return c;
            }
        }
        return load(path).model().config;
    }

    /** A regular file: false when absent, an error when it cannot be looked at (a folder without permission). */
    private static boolean isFile(Path p) {
        try {
            return Files.readAttributes(p, java.nio.file.attribute.BasicFileAttributes.class).isRegularFile();
        } catch (java.nio.file.NoSuchFileException e) {
            return false;
        } catch (IOException e) {
            throw new LongspanException(p + ": cannot read: " + dev.longspan.io.IoErrors.reason(e), e);
        }
    }

    // a Longspan directory's weights, from the header only: every tensor present with its shape and
    // its bytes inside the file (SafetensorsFile.open checks the extents: a truncated file fails)
    private static void checkLongspanWeights(Path dir, ModelConfig c) {
        Path wp = dir.resolve("model.safetensors");
        if (!isFile(wp)) throw new LongspanException(dir + ": no model.safetensors (the weights are missing)");
        try (SafetensorsFile f = SafetensorsFile.open(wp)) {
            for (Transformer.Tensor t : layoutOf(c).tensors()) {
                if (!f.has(t.name())) throw new LongspanException(wp + ": missing tensor '" + t.name() + "'");
                if (!Arrays.equals(f.shape(t.name()), t.shape())) {
                    throw new LongspanException(wp + ": tensor '" + t.name() + "' has shape " + Arrays.toString(f.shape(t.name()))
                            + " but config.json needs " + Arrays.toString(t.shape()));
                }
            }
        }
    }

    // ---- GGUF ------------------------------------------------------------------------------

    static final Set<String> GGUF_ARCHS = Set.of("llama", "mistral", "qwen2", "qwen3");

    public static LoadedModel loadGguf(Path path) {
        return loadGguf(path, Weights.STORED);
    }

    public static LoadedModel loadGguf(Path path, Weights weights) {
        try (GgufFile g = GgufFile.open(path)) {
            Tokenizer tok = GgufTokenizers.fromGguf(g);
            Plan plan = ggufPlan(g);
            checkVocab(tok, plan.config, path);
            Transformer m = plan.read(weights);
            List<Integer> extra = new ArrayList<>();
            for (String k : new String[]{"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
                if (g.has(k) && g.getLong(k) >= 0 && g.getLong(k) < tok.vocabSize()) extra.add((int) g.getLong(k));
            }
            ChatTemplate chat = ChatTemplate.detect(g.has("tokenizer.chat_template") ? g.getString("tokenizer.chat_template") : null, tok);
            return new LoadedModel(m, tok, chat, stopIds(tok, extra), Format.GGUF, path, g.getString("general.architecture"));
        }
    }

    /** Only the Transformer of a GGUF file (no tokenizer needed). */
    public static Transformer ggufTransformer(Path path) {
        try (GgufFile g = GgufFile.open(path)) {
            return ggufPlan(g).read(Weights.DEQUANTIZED);
        }
    }

    /** The GGUF tensor name of each Transformer tensor. */
    static String ggufName(String hf) {
        if (hf.equals("model.embed_tokens.weight")) return "token_embd.weight";
        if (hf.equals("model.norm.weight")) return "output_norm.weight";
        if (hf.equals("lm_head.weight")) return "output.weight";
        String rest = hf.substring("model.layers.".length());
        int dot = rest.indexOf('.');
        String blk = "blk." + rest.substring(0, dot) + ".";
        String t = rest.substring(dot + 1);
        return blk + switch (t) {
            case "input_layernorm.weight" -> "attn_norm.weight";
            case "self_attn.q_proj.weight" -> "attn_q.weight";
            case "self_attn.k_proj.weight" -> "attn_k.weight";
            case "self_attn.v_proj.weight" -> "attn_v.weight";
            case "self_attn.o_proj.weight" -> "attn_output.weight";
            case "self_attn.q_proj.bias" -> "attn_q.bias";
            case "self_attn.k_proj.bias" -> "attn_k.bias";
            case "self_attn.v_proj.bias" -> "attn_v.bias";
            case "self_attn.q_norm.weight" -> "attn_q_norm.weight";
            case "self_attn.k_norm.weight" -> "attn_k_norm.weight";
            case "post_attention_layernorm.weight" -> "ffn_norm.weight";
            case "mlp.gate_proj.weight" -> "ffn_gate.weight";
            case "mlp.up_proj.weight" -> "ffn_up.weight";
            case "mlp.down_proj.weight" -> "ffn_down.weight";
            default -> throw new IllegalStateException(hf);
        };
    }

    /** A validated load: the config, and how to read the weights (nothing is allocated or read before). */
    private record Plan(ModelConfig config, java.util.function.Function<Weights, Transformer> reader) {
        Transformer read(Weights w) { return reader.apply(w); }
    }

    private static Plan ggufPlan(GgufFile g) {
        String src = g.path().toString();
        if (!g.has("general.architecture")) throw new LongspanException(src + ": no general.architecture");
        String arch = g.getString("general.architecture");
        if (!GGUF_ARCHS.contains(arch)) {
            throw new LongspanException(src + ": architecture '" + arch + "' is not supported (supported: " + String.join(", ", new java.util.TreeSet<>(GGUF_ARCHS)) + ")");
        }
        String p = arch + ".";
        int dim = g.getInt(p + "embedding_length");
        int layers = g.getInt(p + "block_count");
        int ffn = g.getInt(p + "feed_forward_length");
        int heads = g.getInt(p + "attention.head_count");
        int kvHeads = g.getInt(p + "attention.head_count_kv", heads);
        if (heads <= 0 || dim <= 0) throw new LongspanException(src + ": " + p + "attention.head_count and embedding_length must be positive");
        int headDim = g.getInt(p + "attention.key_length", dim / heads);
        if (g.has(p + "attention.value_length") && g.getInt(p + "attention.value_length") != headDim) {
            throw new LongspanException(src + ": " + p + "attention.value_length " + g.getInt(p + "attention.value_length")
                    + " differs from key_length " + headDim + " (not supported)");
        }
        float eps = g.getFloat(p + "attention.layer_norm_rms_epsilon", 1e-5f);
        int ctx = g.getInt(p + "context_length", 2048);
        if (!g.hasTensor("token_embd.weight")) throw new LongspanException(src + ": missing tensor 'token_embd.weight'");
        GgufFile.Tensor emb = g.tensor("token_embd.weight");
        if (emb.ne().length != 2) throw new LongspanException(src + ": token_embd.weight is not a matrix");
        long vocab = emb.ne()[1];
        if (vocab <= 0 || vocab > Integer.MAX_VALUE) throw new LongspanException(src + ": token_embd.weight has " + vocab + " rows");
        RopeConfig rope = RopeConfig.fromGguf(g.metadata(), arch, arch.equals("mistral") ? Pairing.INTERLEAVED : null);
        if (g.hasTensor("rope_freqs.weight")) rope = llama3FromFreqFactors(g, rope, ctx);
        boolean permuted = rope.pairing() == Pairing.INTERLEAVED;
        if (permuted) rope = rope.toBuilder().pairing(Pairing.HALF).build();
        boolean qkvBias = g.hasTensor("blk.0.attn_q.bias"), qkNorm = g.hasTensor("blk.0.attn_q_norm.weight");
        if (arch.equals("qwen3") && !qkNorm) throw new LongspanException(src + ": qwen3 without blk.0.attn_q_norm.weight");
        ModelConfig c;
        try {
            c = new ModelConfig((int) vocab, dim, layers, heads, kvHeads, headDim, ffn, eps, !g.hasTensor("output.weight"),
                    rope, Collections.nCopies(layers, new Pattern.Dense()), g.path().getFileName().toString(), ctx, qkNorm, qkvBias, 0);
        } catch (LongspanException e) {
            throw new LongspanException(src + ": " + e.getMessage());
        }
        // shape-check every tensor (header only) before allocating or reading anything
        Set<String> used = new LinkedHashSet<>();
        Transformer layout = layoutOf(c);
        for (Transformer.Tensor t : layout.tensors()) {
            String gn = ggufName(t.name());
            if (!g.hasTensor(gn)) throw new LongspanException(src + ": missing tensor '" + gn + "'");
            GgufFile.Tensor gt = g.tensor(gn);
            if (!Arrays.equals(gt.shape(), t.shape())) {
                throw new LongspanException(src + ": tensor '" + gn + "' has shape " + Arrays.toString(gt.shape()) + " (ne " + Arrays.toString(gt.ne())
                        + ") but the metadata needs " + Arrays.toString(t.shape()));
            }
            if (!gt.type().dequantizable()) throw new LongspanException(src + ": tensor '" + gn + "' has type " + gt.type() + ", which Longspan cannot dequantize");
            used.add(gn);
        }
        for (String n : g.tensors().keySet()) {
            if (!used.contains(n) && !n.equals("rope_freqs.weight")) {
                throw new LongspanException(src + ": tensor '" + n + "' is not part of a " + arch + " model Longspan can run");
            }
        }
        return new Plan(c, weights -> {
            Transformer m = new Transformer(c, weights == Weights.STORED ? storedMatrices(g, layout, permuted) : Map.of());
            List<Transformer.Tensor> ts = m.tensors();
            Parallel.forEachTask(ts.size(), i -> {
                Transformer.Tensor t = ts.get(i);
                if (t.offset() < 0) return;  // kept in the file
                GgufFile.Tensor gt = g.tensor(ggufName(t.name()));
                QuantKernels.dequantize(gt.type(), g.segment(), gt.offset(), m.params, t.offset(), t.size());
            });
            if (permuted) interleavedToHalf(m);
            return m;
        });
    }

    /**
     * The non-F32 matrices of a GGUF as {@link Weight.Stored} over a mapping of the whole file that
     * lives as long as the weights do (GgufFile's own mapping closes with it). F32 matrices are
     * copied into the parameter array, where the float GEMM reads them in place. Q/K rows of a
     * permuted (interleaved) file are reordered through each weight's row map, as
     * {@link #interleavedToHalf} does for copied rows.
     */
    private static Map<String, Weight> storedMatrices(GgufFile g, Transformer layout, boolean permuted) {
        ModelConfig c = layout.config;
        int[] perm = permuted
                ? Pairing.permutation(Pairing.INTERLEAVED, Pairing.HALF, c.headDim(), c.rope().rotaryDims())
                : null;
        java.lang.foreign.MemorySegment file;
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(g.path(), java.nio.file.StandardOpenOption.READ)) {
            file = ch.map(java.nio.channels.FileChannel.MapMode.READ_ONLY, 0, ch.size(), java.lang.foreign.Arena.ofAuto());
        } catch (IOException e) {
            throw new LongspanException(g.path() + ": cannot map the file (" + e.getMessage() + ")");
        }
        Map<String, Weight> stored = new LinkedHashMap<>();
        for (Transformer.Tensor t : layout.tensors()) {
            if (t.shape().length != 2) continue;
            GgufFile.Tensor gt = g.tensor(ggufName(t.name()));
            if (gt.type() == dev.longspan.kernel.GgmlType.F32) continue;
            int rows = (int) t.shape()[0], cols = (int) t.shape()[1];
            int[] rowMap = null;
            if (perm != null && t.name().endsWith("q_proj.weight")) rowMap = headRowMap(perm, c.heads(), c.headDim());
            if (perm != null && t.name().endsWith("k_proj.weight")) rowMap = headRowMap(perm, c.kvHeads(), c.headDim());
            stored.put(t.name(), new Weight.Stored(gt.type(), file, gt.offset(), rows, cols, rowMap));
        }
        return stored;
    }

    // row h·D + j reads stored row h·D + perm[j] (permuteHeads' reordering, as a map)
    private static int[] headRowMap(int[] perm, int heads, int D) {
        int[] map = new int[heads * D];
        for (int h = 0; h < heads; h++) for (int j = 0; j < D; j++) map[h * D + j] = h * D + perm[j];
        return map;
    }

    // a Transformer's tensor list without allocating its parameters
    private static Transformer layoutOf(ModelConfig c) {
        return new Transformer(c, true);
    }

    /**
     * Q/K rows of every head (and their biases and head-norm weights) from llama.cpp's interleaved
     * layout back to Hugging Face's half layout: dst row j = src row perm[j].
     */
    static void interleavedToHalf(Transformer m) {
        ModelConfig c = m.config;
        int[] perm = Pairing.permutation(Pairing.INTERLEAVED, Pairing.HALF, c.headDim(), c.rope().rotaryDims());
        for (int l = 0; l < c.layers(); l++) {
            if (m.wq[l] >= 0) permuteHeads(m.params, m.wq[l], c.heads(), c.headDim(), c.dim(), perm);  // < 0: stored, reordered by its row map
            if (m.wk[l] >= 0) permuteHeads(m.params, m.wk[l], c.kvHeads(), c.headDim(), c.dim(), perm);
            if (c.qkvBias()) {
                permuteHeads(m.params, m.bq[l], c.heads(), c.headDim(), 1, perm);
                permuteHeads(m.params, m.bk[l], c.kvHeads(), c.headDim(), 1, perm);
            }
            if (c.qkNorm()) {
                permuteHeads(m.params, m.qNorm[l], 1, c.headDim(), 1, perm);
                permuteHeads(m.params, m.kNorm[l], 1, c.headDim(), 1, perm);
            }
        }
    }

    /** Within each of {@code heads} blocks of D rows of length cols at off: row j ← row perm[j]. */
    public static void permuteHeads(float[] a, int off, int heads, int D, int cols, int[] perm) {
        float[] tmp = new float[D * cols];
        for (int h = 0; h < heads; h++) {
            int base = off + h * D * cols;
            System.arraycopy(a, base, tmp, 0, D * cols);
            for (int j = 0; j < D; j++) System.arraycopy(tmp, perm[j] * cols, a, base + j * cols, cols);
        }
    }

    /**
     * Llama 3.1 GGUF files carry their RoPE scaling as per-frequency factors ({@code rope_freqs.weight},
     * theta_i / factor_i). Recognised when they equal Hugging Face's llama3 rule for the factor read
     * from the tensor (its largest value) with the published low/high frequency factors 1 and 4 and
     * original context 8192; anything else is refused.
     */
    private static RopeConfig llama3FromFreqFactors(GgufFile g, RopeConfig rope, int ctx) {
        String src = g.path().toString();
        float[] ff = g.floats("rope_freqs.weight");
        if (ff.length != rope.rotaryDims() / 2) {
            throw new LongspanException(src + ": rope_freqs.weight has " + ff.length + " factors for " + rope.rotaryDims() / 2 + " frequencies");
        }
        double max = 0;
        for (float f : ff) max = Math.max(max, f);
        if (max <= 1.0 + 1e-6) return rope;  // all ones: plain RoPE
        RopeConfig cand = RopeConfig.builder(RopeKind.LLAMA3, rope.headDim()).base(rope.base()).rotaryDims(rope.rotaryDims())
                .pairing(rope.pairing()).factor(Math.rint(max)).originalContext(8192).lowFreqFactor(1).highFreqFactor(4).build();
        double[] inv = new dev.longspan.position.Rope(cand).inverseFrequencies(1);
        int d = rope.rotaryDims();
        for (int i = 0; i < ff.length; i++) {
            double theta = Math.pow(rope.base(), -2.0 * i / d);
            double expected = theta / inv[i];
            if (Math.abs(expected - ff[i]) > 1e-3 * Math.max(1, ff[i])) {
                throw new LongspanException(src + ": rope_freqs.weight is not Llama 3 scaling with factor " + Math.rint(max)
                        + ", low_freq_factor 1, high_freq_factor 4, original context 8192 (factor " + i + " is " + ff[i] + ", expected " + expected + "); not supported");
            }
        }
        return cand;
    }

    // ---- Hugging Face safetensors ------------------------------------------------------------

    static final Set<String> HF_TYPES = Set.of("llama", "mistral", "qwen2", "qwen3");

    public static LoadedModel loadSafetensors(Path dir) {
        return loadSafetensors(dir, readJson(dir.resolve("config.json")));
    }

    private static LoadedModel loadSafetensors(Path dir, Map<String, Object> cj) {
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
            rope = RopeConfig.fromHuggingFace(cj);
        } catch (LongspanException e) {
            throw new LongspanException(src + ": " + e.getMessage());
        }
        Pattern attention = new Pattern.Dense();
        Object sw = cj.get("sliding_window");
        boolean useSw = type.equals("mistral") || Boolean.TRUE.equals(cj.get("use_sliding_window"));
        if (useSw && sw instanceof Long w && w > 0 && w < ctx) {
            if (!type.equals("mistral") && cj.get("max_window_layers") instanceof Long mwl && mwl < layers) {
                throw new LongspanException(src + ": sliding window on only some layers (max_window_layers) is not supported");
            }
            attention = new Pattern.Window((int) (long) w);
        }

        // weights: one file or shards named by an index
        Map<String, Path> where = new LinkedHashMap<>();
        Path single = dir.resolve("model.safetensors"), index = dir.resolve("model.safetensors.index.json");
        if (Files.isRegularFile(index)) {
            Map<String, Object> ij = readJson(index);
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
                        Collections.nCopies(layers, attention), "tokenizer.json", ctx, qkNorm, qkvBias, 0);
            } catch (LongspanException e) {
                throw new LongspanException(src + ": " + e.getMessage());
            }
            Path tj = dir.resolve("tokenizer.json");
            if (!Files.isRegularFile(tj)) throw new LongspanException(dir + ": no tokenizer.json (only Hugging Face tokenizer.json tokenizers are supported)");
            Tokenizer tok = BpeTokenizer.fromTokenizerJson(tj);
            checkVocab(tok, c, dir);
            Transformer layout = layoutOf(c);
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
            if (Files.isRegularFile(gen)) eosIds(readJson(gen).get("eos_token_id"), eos, gen.toString());
            eos.removeIf(id -> id < 0 || id >= c.vocabSize());
            ChatTemplate chat = ChatTemplate.detect(chatTemplate(dir.resolve("tokenizer_config.json")), tok);
            return new LoadedModel(m, tok, chat, stopIds(tok, eos), Format.SAFETENSORS, dir, type);
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
        Object t = readJson(tokenizerConfig).get("chat_template");
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

    // ---- shared ------------------------------------------------------------------------------

    private static Map<String, Object> readJson(Path p) {
        try {
            return Json.parseObject(Files.readString(p, StandardCharsets.UTF_8), p.toString());
        } catch (java.nio.file.NoSuchFileException e) {
            throw new LongspanException(p + ": no such file");
        } catch (IOException e) {
            throw new LongspanException(p + ": cannot read: " + dev.longspan.io.IoErrors.reason(e), e);
        }
    }

    private static void checkVocab(Tokenizer tok, ModelConfig c, Path src) {
        if (tok.vocabSize() > c.vocabSize()) {
            throw new LongspanException(src + ": the tokenizer has " + tok.vocabSize() + " tokens but the model's embedding only " + c.vocabSize());
        }
    }

    private static int[] stopIds(Tokenizer tok, List<Integer> extra) {
        LinkedHashSet<Integer> s = new LinkedHashSet<>();
        for (int id : tok.stopIds()) s.add(id);
        s.addAll(extra);
        for (String t : new String[]{"<|eot_id|>", "<|im_end|>", "<|end_of_text|>", "<|endoftext|>", "<|eom_id|>", "</s>"}) {
            int id = tok.tokenId(t);
            if (id >= 0) s.add(id);
        }
        return s.stream().mapToInt(Integer::intValue).toArray();
    }
}
