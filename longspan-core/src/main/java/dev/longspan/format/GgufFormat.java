package dev.longspan.format;

import dev.longspan.attention.Pattern;
import dev.longspan.io.BpeTokenizer;
import dev.longspan.io.GgufFile;
import dev.longspan.io.GgufTokenizers;
import dev.longspan.io.Json;
import dev.longspan.io.SafetensorsFile;
import dev.longspan.io.Tokenizer;
import dev.longspan.io.TokenizerLoader;
import dev.longspan.kernel.InterleavedQuant;
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
 * GGUF files of the llama, mistral, qwen2 and qwen3 architectures: metadata to {@link ModelConfig}
 * (RoPE through {@link GgufRope}), llama.cpp tensor names to Longspan's, weights kept in the mapped
 * file in their own type or dequantized.
 *
 * <p>RoPE layout: GGUF files of llama.cpp's NORM architectures (llama, mistral) hold Q/K rows
 * permuted for interleaved pairs (llama.cpp's converter undoes Hugging Face's permutation). The
 * loader permutes those rows back, per head, to Hugging Face's half layout and uses half pairing,
 * so every loaded model has Longspan's canonical layout (a loaded GGUF saved as a Longspan model
 * directory is a Hugging Face-layout checkpoint). The rotation is the same either way.
 */
public final class GgufFormat implements ModelFormat {
    static final Set<String> GGUF_ARCHS = Set.of("llama", "mistral", "qwen2", "qwen3");

    @Override
    public Format id() { return Format.GGUF; }

    @Override
    public boolean recognizes(Path path) {
        return Files.isRegularFile(path) && GgufFile.looksLikeGguf(path);
    }

    @Override
    public ModelConfig config(Path path) {
        try (GgufFile g = GgufFile.open(path)) {
            return check(g).config();
        }
    }

    @Override
    public LoadedModel load(Path path, Weights weights) {
        try (GgufFile g = GgufFile.open(path)) {
            Tokenizer tok = GgufTokenizers.fromGguf(g);
            Checked checked = check(g);
            ModelLoader.checkVocab(tok, checked.config, path);
            Transformer m = checked.read(weights);
            List<Integer> extra = new ArrayList<>();
            for (String k : new String[]{"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
                if (g.has(k) && g.getLong(k) >= 0 && g.getLong(k) < tok.vocabSize()) extra.add((int) g.getLong(k));
            }
            ChatTemplate chat = ChatTemplate.detect(g.has("tokenizer.chat_template") ? g.getString("tokenizer.chat_template") : null, tok);
            return new LoadedModel(m, tok, chat, ModelLoader.stopIds(tok, extra), Format.GGUF, path, g.getString("general.architecture"));
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

    /** A checked GGUF: the config, and how to read the weights (nothing is allocated or read before). */
    private record Checked(ModelConfig config, java.util.function.Function<Weights, Transformer> reader) {
        Transformer read(Weights w) { return reader.apply(w); }
    }

    private static Checked check(GgufFile g) {
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
        // llama.cpp refuses a file without these two (its load_hparams reads them as required keys): so does Longspan
        for (String k : new String[]{"context_length", "attention.layer_norm_rms_epsilon"}) {
            if (!g.has(p + k)) throw new LongspanException(src + ": metadata '" + p + k + "' is missing (llama.cpp requires it too)");
        }
        float eps = g.getFloat(p + "attention.layer_norm_rms_epsilon");
        int ctx = g.getInt(p + "context_length");
        if (!g.hasTensor("token_embd.weight")) throw new LongspanException(src + ": missing tensor 'token_embd.weight'");
        GgufFile.Tensor emb = g.tensor("token_embd.weight");
        if (emb.ne().length != 2) throw new LongspanException(src + ": token_embd.weight is not a matrix");
        long vocab = emb.ne()[1];
        if (vocab <= 0 || vocab > Integer.MAX_VALUE) throw new LongspanException(src + ": token_embd.weight has " + vocab + " rows");
        RopeConfig rope = GgufRope.fromMetadata(g.metadata(), arch, arch.equals("mistral") ? Pairing.INTERLEAVED : null);
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
        Transformer layout = new Transformer(c, true);
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
        return new Checked(c, weights -> {
            Transformer m = new Transformer(c, weights != Weights.DEQUANTIZED ? storedMatrices(g, layout, permuted, weights == Weights.REPACKED) : Map.of());
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
     * The non-F32 matrices of a GGUF as {@link Weight.Stored} (or, when repack, Q8_0, Q4_K and F16 as
     * {@link Weight.Interleaved}) over a mapping of the whole file that
     * lives as long as the weights do (GgufFile's own mapping closes with it). F32 matrices are
     * copied into the parameter array, where the float GEMM reads them in place. Q/K rows of a
     * permuted (interleaved) file are reordered through each weight's row map, as
     * {@link #interleavedToHalf} does for copied rows.
     */
    private static Map<String, Weight> storedMatrices(GgufFile g, Transformer layout, boolean permuted, boolean repack) {
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
            InterleavedQuant packed = repack && InterleavedQuant.supports(gt.type())
                    ? InterleavedQuant.pack(gt.type(), file, gt.offset(), rowMap, rows, cols) : null;
            if (packed != null) {
                stored.put(t.name(), new Weight.Interleaved(packed));
                // the copy is what products read now: let the kernel drop the file's pages
                file.asSlice(gt.offset(), gt.type().rowBytes(cols) * rows).unload();
            } else {
                stored.put(t.name(), new Weight.Stored(gt.type(), file, gt.offset(), rows, cols, rowMap));
            }
        }
        return stored;
    }

    // row h·D + j reads stored row h·D + perm[j] (permuteHeads' reordering, as a map)
    private static int[] headRowMap(int[] perm, int heads, int D) {
        int[] map = new int[heads * D];
        for (int h = 0; h < heads; h++) for (int j = 0; j < D; j++) map[h * D + j] = h * D + perm[j];
        return map;
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
}
