package dev.longspan.format;

import dev.longspan.attention.Pattern;
import dev.longspan.io.ByteTokenizer;
import dev.longspan.io.GgufWriter;
import dev.longspan.kernel.GgmlType;
import dev.longspan.model.ModelConfig;
import dev.longspan.model.Transformer;
import dev.longspan.position.Pairing;
import dev.longspan.position.Rope;
import dev.longspan.position.RopeConfig;
import dev.longspan.util.Log;
import dev.longspan.util.LongspanException;

import java.nio.file.Path;
import java.util.Arrays;

/**
 * Writes a Longspan model as a GGUF file of architecture {@code llama} in the layout llama.cpp
 * loads: standard tensor names, {@code llama.*} metadata, the byte tokenizer as a {@code llama}
 * (SentencePiece-style) vocabulary, and Q/K rows permuted per head from half to interleaved
 * pairing, because llama.cpp rotates llama models in NORM (interleaved) mode; its rotation of the
 * permuted rows equals ours of the original ones.
 */
public final class GgufExport {
    private GgufExport() {}

    /** SentencePiece token types (llama.cpp's llama_token_type). */
    static final int NORMAL = 1, CONTROL = 3, UNUSED = 5, BYTE = 6;

    /**
     * Longspan's byte tokenizer as a GGUF {@code llama} vocabulary: ids 0..255 the byte tokens
     * {@code <0x00>}..{@code <0xFF>} except id 32 (space), which is the piece {@code ▁}: a
     * SentencePiece tokenizer (llama.cpp's and ours) turns spaces into ▁ before looking pieces up, so
     * this keeps a space one token, id 32, as the model was trained. Then BOS {@code <s>} (256), EOS
     * {@code </s>} (257), PAD {@code <pad>} (258); scores 0; no space prefix, no automatic BOS.
     */
    public static void putByteTokenizer(GgufWriter w) {
        putByteTokenizer(w, ByteTokenizer.VOCAB);
    }

    /**
     * The byte vocabulary padded to {@code vocab} tokens with unused pieces {@code <unused_N>}
     * (never produced by encoding), for a model whose embedding has more rows than the byte
     * tokenizer has tokens: llama.cpp wants one token per embedding row.
     */
    static void putByteTokenizer(GgufWriter w, int vocab) {
        if (vocab < ByteTokenizer.VOCAB) throw new LongspanException("export: a vocabulary of " + vocab + " tokens is smaller than the byte tokenizer's " + ByteTokenizer.VOCAB);
        String[] tokens = new String[vocab];
        int[] types = new int[vocab];
        for (int i = ByteTokenizer.VOCAB; i < vocab; i++) {
            tokens[i] = "<unused_" + (i - ByteTokenizer.VOCAB) + ">";
            types[i] = UNUSED;
        }
        for (int b = 0; b < 256; b++) {
            tokens[b] = b == ' ' ? "\u2581" : String.format("<0x%02X>", b);
            types[b] = b == ' ' ? NORMAL : BYTE;
        }
        tokens[ByteTokenizer.BOS] = "<s>";
        tokens[ByteTokenizer.EOS] = "</s>";
        tokens[ByteTokenizer.PAD] = "<pad>";
        types[ByteTokenizer.BOS] = types[ByteTokenizer.EOS] = types[ByteTokenizer.PAD] = CONTROL;
        w.putString("tokenizer.ggml.model", "llama")
                .putString("tokenizer.ggml.pre", "default")
                .putStringArray("tokenizer.ggml.tokens", tokens)
                .putF32Array("tokenizer.ggml.scores", new float[vocab])
                .putI32Array("tokenizer.ggml.token_type", types)
                .putU32("tokenizer.ggml.bos_token_id", ByteTokenizer.BOS)
                .putU32("tokenizer.ggml.eos_token_id", ByteTokenizer.EOS)
                .putU32("tokenizer.ggml.padding_token_id", ByteTokenizer.PAD)
                .putBool("tokenizer.ggml.add_bos_token", false)
                .putBool("tokenizer.ggml.add_eos_token", false)
                .putBool("tokenizer.ggml.add_space_prefix", false);
    }

    /**
     * Exports m to out. {@code type} is the type of the 2-d weights: F32, F16 or Q8_0 (norms and
     * biases stay F32). RoPE kinds rope, linear, yarn and llama3 (as {@code rope_freqs.weight})
     * map to llama.cpp; others are refused. Non-dense attention patterns are exported with a
     * warning: llama.cpp runs dense attention.
     */
    public static void export(Transformer m, Path out, String name, GgmlType type) {
        m.requireParams("export");
        ModelConfig c = m.config;
        if (!"byte".equals(c.tokenizer())) throw new LongspanException("export: only models with the byte tokenizer can be exported (this one has '" + c.tokenizer() + "')");
        if (c.shifted()) throw new LongspanException("export: the model has a previous-token embedding (token_shift), which llama.cpp's llama architecture does not have");
        RopeConfig rope = c.rope();
        GgufWriter w = header(c, name, type, rope);
        int[] perm = rope.pairing() == Pairing.HALF ? Pairing.permutation(Pairing.HALF, Pairing.INTERLEAVED, c.headDim(), rope.rotaryDims()) : null;
        for (Transformer.Tensor t : m.tensors()) {
            float[] data = Arrays.copyOfRange(m.params, t.offset(), t.offset() + t.size());
            String n = t.name();
            if (perm != null) {
                if (n.endsWith("q_proj.weight")) GgufFormat.permuteHeads(data, 0, c.heads(), c.headDim(), c.dim(), perm);
                if (n.endsWith("k_proj.weight")) GgufFormat.permuteHeads(data, 0, c.kvHeads(), c.headDim(), c.dim(), perm);
                if (n.endsWith("q_proj.bias")) GgufFormat.permuteHeads(data, 0, c.heads(), c.headDim(), 1, perm);
                if (n.endsWith("k_proj.bias")) GgufFormat.permuteHeads(data, 0, c.kvHeads(), c.headDim(), 1, perm);
            }
            long[] ne = ne(t);
            int cols = (int) ne[0];
            w.tensor(GgufFormat.ggufName(n), ne.length == 1 ? GgmlType.F32 : type, ne, (r0, count, dst) -> System.arraycopy(data, (int) r0 * cols, dst, 0, count * cols));
        }
        w.write(out);
    }

    /**
     * Writes a model of config c with random weights straight to a GGUF of the given type, one
     * tensor at a time and a few megabytes at a time, so the model may be larger than memory or
     * than a parameter array (a benchmark model: matrices uniform with standard deviation 0.02, the
     * residual projections scaled by 1/√(2L) as {@link Transformer#initialize} does; norms 1;
     * deterministic for a seed at any thread count). The vocabulary is the byte tokenizer padded
     * with unused tokens to c's vocabulary size.
     */
    public static void exportRandom(ModelConfig c, Path out, String name, GgmlType type, long seed) {
        if (!"byte".equals(c.tokenizer())) throw new LongspanException("export: a random model needs the byte tokenizer (the config names '" + c.tokenizer() + "')");
        if (c.shifted()) throw new LongspanException("export: the config has a previous-token embedding (token_shift), which llama.cpp's llama architecture does not have");
        RopeConfig rope = c.rope();
        GgufWriter w = header(c, name, type, rope);
        Transformer layout = new Transformer(c, true);
        double residualStd = 0.02 / Math.sqrt(2.0 * c.layers());
        for (Transformer.Tensor t : layout.tensors()) {
            long[] ne = ne(t);
            int cols = (int) ne[0];
            String n = t.name();
            if (ne.length == 1) {
                float v = n.endsWith(".bias") ? 0f : 1f;
                w.tensor(GgufFormat.ggufName(n), GgmlType.F32, ne, (r0, count, dst) -> Arrays.fill(dst, 0, count * cols, v));
                continue;
            }
            boolean residual = n.endsWith("o_proj.weight") || n.endsWith("down_proj.weight");
            // uniform on [-a, a] has standard deviation a/√3
            float a = (float) ((residual ? residualStd : 0.02) * Math.sqrt(3));
            long tensorSeed = seed * 0x9E3779B97F4A7C15L + n.hashCode();
            w.tensor(GgufFormat.ggufName(n), type, ne, (r0, count, dst) -> {
                for (int r = 0; r < count; r++) {
                    java.util.SplittableRandom rnd = new java.util.SplittableRandom(tensorSeed + 0x632BE59BD9B4E019L * (r0 + r));
                    for (int i = 0; i < cols; i++) dst[r * cols + i] = (rnd.nextFloat() * 2 - 1) * a;
                }
            });
        }
        w.write(out);
    }

    private static long[] ne(Transformer.Tensor t) {
        long[] s = t.shape();
        long[] ne = new long[s.length];
        for (int i = 0; i < s.length; i++) ne[i] = s[s.length - 1 - i];
        return ne;
    }

    /** The types the weight matrices can be exported in. */
    public static final java.util.Set<GgmlType> TYPES = GgufWriter.WRITABLE;

    // metadata and tokenizer of a llama GGUF for config c
    private static GgufWriter header(ModelConfig c, String name, GgmlType type, RopeConfig rope) {
        if (c.qkNorm()) throw new LongspanException("export: q/k head norms have no place in a llama GGUF");
        if (!TYPES.contains(type)) {
            throw new LongspanException("export: tensor type " + type + " is not supported (" + TYPES + ")");
        }
        for (Pattern a : c.attention()) {
            if (!(a instanceof Pattern.Dense)) {
                Log.warn("export: attention '" + a.spec() + "' is not expressible in GGUF; llama.cpp will run dense attention");
                break;
            }
        }
        String p = "llama.";
        GgufWriter w = new GgufWriter()
                .putString("general.architecture", "llama")
                .putString("general.name", name)
                .putU32("general.file_type", fileType(type))
                .putU32(p + "context_length", c.contextLength())
                .putU32(p + "embedding_length", c.dim())
                .putU32(p + "block_count", c.layers())
                .putU32(p + "feed_forward_length", c.ffnDim())
                .putU32(p + "attention.head_count", c.heads())
                .putU32(p + "attention.head_count_kv", c.kvHeads())
                .putU32(p + "attention.key_length", c.headDim())
                .putU32(p + "attention.value_length", c.headDim())
                .putU32(p + "rope.dimension_count", rope.rotaryDims())
                .putF32(p + "rope.freq_base", (float) rope.base())
                .putF32(p + "attention.layer_norm_rms_epsilon", c.normEps())
                .putU32(p + "vocab_size", c.vocabSize());
        if ((float) rope.base() != rope.base()) {
            throw new LongspanException("export: RoPE base " + rope.base() + " is not exactly a float32 (GGUF stores rope.freq_base as f32)");
        }
        switch (rope.kind()) {
            case ROPE -> { }
            case LINEAR -> w.putString(p + "rope.scaling.type", "linear").putF32(p + "rope.scaling.factor", (float) rope.factor());
            case YARN -> {
                w.putString(p + "rope.scaling.type", "yarn").putF32(p + "rope.scaling.factor", (float) rope.factor())
                        .putU32(p + "rope.scaling.original_context_length", rope.originalContext())
                        .putF32(p + "rope.scaling.yarn_beta_fast", (float) rope.betaFast())
                        .putF32(p + "rope.scaling.yarn_beta_slow", (float) rope.betaSlow());
                w.putF32(p + "rope.scaling.attn_factor", (float) new Rope(rope).rotationScale());
            }
            case LLAMA3 -> {
                // llama.cpp divides theta_i by rope_freqs[i]
                double[] inv = new Rope(rope).inverseFrequencies(1);
                float[] ff = new float[inv.length];
                for (int i = 0; i < ff.length; i++) ff[i] = (float) (Math.pow(rope.base(), -2.0 * i / rope.rotaryDims()) / inv[i]);
                w.tensorF32("rope_freqs.weight", new long[]{ff.length}, ff);
            }
            default -> throw new LongspanException("export: RoPE kind " + rope.kind().id + " has no llama.cpp equivalent (supported: rope, linear, yarn, llama3)");
        }
        putByteTokenizer(w, c.vocabSize());
        return w;
    }

    // llama.cpp's llama_ftype of a file whose matrices are all of type t (Q4_K: "Q4_K - Small")
    private static int fileType(GgmlType t) {
        return switch (t) {
            case F32 -> 0;
            case F16 -> 1;
            case Q4_0 -> 2;
            case Q8_0 -> 7;
            case Q4_K -> 14;
            default -> throw new IllegalArgumentException(t.toString());
        };
    }
}
