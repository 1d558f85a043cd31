package dev.longspan.model;

import dev.longspan.attention.Pattern;
import dev.longspan.io.AtomicFiles;
import dev.longspan.io.Json;
import dev.longspan.position.RopeConfig;
import dev.longspan.util.LongspanException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A Llama-family decoder's shape, immutable; saved as {@code config.json} beside the weights.
 *
 * @param vocabSize      number of token ids
 * @param dim            model width
 * @param layers         number of decoder layers
 * @param heads          query heads
 * @param kvHeads        key/value heads (grouped-query attention: heads % kvHeads == 0)
 * @param headDim        width of one head
 * @param ffnDim         SwiGLU hidden width
 * @param normEps        RMSNorm epsilon
 * @param tiedEmbeddings output head shares the token embedding
 * @param rope           RoPE configuration (its head dimension is headDim)
 * @param attention      one attention pattern per layer
 * @param tokenizer      the tokenizer's name: {@code byte} for Longspan's byte tokenizer, else the file it came from
 * @param contextLength  the sequence length the model was trained at (informational)
 * @param qkNorm         RMSNorm over each head of q and k before RoPE (Qwen3; tensors q_norm, k_norm of [head_dim])
 * @param qkvBias        q, k, v projections have biases (Qwen2)
 * @param logn           log-n attention scaling at inference beyond this many tokens, 0 = off
 *                       ({@link InferenceOptions#lognLength}): a setting the model needs, so
 *                       every command uses it unless told otherwise
 * @param tokenShift     how many previous tokens each position's input adds an embedding of, 0 = none:
 *                       table s (1 ≤ s ≤ tokenShift; {@code model.embed_prev_tokens.weight} for the
 *                       token before, {@code model.embed_prev2_tokens.weight} for the one before it, …,
 *                       each [vocab, dim]) adds the row of the token s places back (positions with
 *                       none add nothing): every layer's keys and queries then know their previous
 *                       tokens exactly, the feature a copying (induction) head matches on, instead of
 *                       reading it through a layer-0 attention that may blur it with the token before
 *                       (RWKV's token shift, "smeared keys"); {@code token_shift: true} in config.json is 1
 */
public record ModelConfig(int vocabSize, int dim, int layers, int heads, int kvHeads, int headDim, int ffnDim,
                          float normEps, boolean tiedEmbeddings, RopeConfig rope, List<Pattern> attention,
                          String tokenizer, int contextLength, boolean qkNorm, boolean qkvBias, int logn,
                          int tokenShift) {

    /** Without a token shift. */
    public ModelConfig(int vocabSize, int dim, int layers, int heads, int kvHeads, int headDim, int ffnDim,
                       float normEps, boolean tiedEmbeddings, RopeConfig rope, List<Pattern> attention,
                       String tokenizer, int contextLength, boolean qkNorm, boolean qkvBias, int logn) {
        this(vocabSize, dim, layers, heads, kvHeads, headDim, ffnDim, normEps, tiedEmbeddings, rope, attention, tokenizer, contextLength, qkNorm, qkvBias, logn, 0);
    }

    /** From spec strings (a RoPE spec without dim, one pattern spec per layer), parsed here. */
    public ModelConfig(int vocabSize, int dim, int layers, int heads, int kvHeads, int headDim, int ffnDim,
                       float normEps, boolean tiedEmbeddings, String rope, List<String> attention,
                       String tokenizer, int contextLength, boolean qkNorm, boolean qkvBias, int logn) {
        this(vocabSize, dim, layers, heads, kvHeads, headDim, ffnDim, normEps, tiedEmbeddings, RopeConfig.fromSpec(rope, headDim),
                attention.stream().map(Pattern::parse).toList(), tokenizer, contextLength, qkNorm, qkvBias, logn);
    }

    /** From spec strings, without log-n scaling. */
    public ModelConfig(int vocabSize, int dim, int layers, int heads, int kvHeads, int headDim, int ffnDim,
                       float normEps, boolean tiedEmbeddings, String rope, List<String> attention,
                       String tokenizer, int contextLength, boolean qkNorm, boolean qkvBias) {
        this(vocabSize, dim, layers, heads, kvHeads, headDim, ffnDim, normEps, tiedEmbeddings, rope, attention, tokenizer, contextLength, qkNorm, qkvBias, 0);
    }

    /** From spec strings: a plain Llama shape (no q/k norm, no biases). */
    public ModelConfig(int vocabSize, int dim, int layers, int heads, int kvHeads, int headDim, int ffnDim,
                       float normEps, boolean tiedEmbeddings, String rope, List<String> attention,
                       String tokenizer, int contextLength) {
        this(vocabSize, dim, layers, heads, kvHeads, headDim, ffnDim, normEps, tiedEmbeddings, rope, attention, tokenizer, contextLength, false, false);
    }

    public ModelConfig {
        attention = List.copyOf(attention);
        check(rope != null, "rope is required");
        check(tokenizer != null && !tokenizer.isBlank(), "tokenizer must name a tokenizer");
        check(vocabSize > 0, "vocab_size must be positive, got " + vocabSize);
        check(tokenShift >= 0 && tokenShift <= MAX_TOKEN_SHIFT, "token_shift must be 0.." + MAX_TOKEN_SHIFT + ", got " + tokenShift);
        check(dim > 0, "dim must be positive, got " + dim);
        check(layers > 0, "layers must be positive, got " + layers);
        check(heads > 0, "heads must be positive, got " + heads);
        check(kvHeads > 0 && heads % kvHeads == 0, "kv_heads must divide heads (" + heads + "), got " + kvHeads);
        check(headDim > 0 && headDim % 2 == 0, "head_dim must be a positive even number, got " + headDim);
        check(ffnDim > 0, "ffn_dim must be positive, got " + ffnDim);
        check(normEps > 0, "norm_eps must be positive, got " + normEps);
        check(attention.size() == layers, "attention has " + attention.size() + " layer patterns for " + layers + " layers");
        check(rope.headDim() == headDim, "rope dim " + rope.headDim() + " differs from head_dim " + headDim);
        check(contextLength > 0, "context_length must be positive, got " + contextLength);
        check(logn == 0 || logn >= 2, "logn must be 0 (off) or at least 2, got " + logn);
    }

    private static void check(boolean ok, String msg) {
        if (!ok) throw new LongspanException("model config: " + msg);
    }

    public int qDim() { return heads * headDim; }
    public int kvDim() { return kvHeads * headDim; }

    /** The canonical spec of every layer's pattern (what config.json holds). */
    public List<String> attentionSpecs() {
        return attention.stream().map(Pattern::spec).toList();
    }

    /** The same config with other attention patterns (inference-time override). */
    public ModelConfig withAttention(List<Pattern> perLayer) {
        return new ModelConfig(vocabSize, dim, layers, heads, kvHeads, headDim, ffnDim, normEps, tiedEmbeddings, rope, perLayer, tokenizer, contextLength, qkNorm, qkvBias, logn, tokenShift);
    }

    public ModelConfig withRope(RopeConfig r) {
        return new ModelConfig(vocabSize, dim, layers, heads, kvHeads, headDim, ffnDim, normEps, tiedEmbeddings, r, attention, tokenizer, contextLength, qkNorm, qkvBias, logn, tokenShift);
    }

    /** The same config with {@code shift} previous-token embeddings ({@link #tokenShift}; 0 = none). */
    public ModelConfig withTokenShift(int shift) {
        return new ModelConfig(vocabSize, dim, layers, heads, kvHeads, headDim, ffnDim, normEps, tiedEmbeddings, rope, attention, tokenizer, contextLength, qkNorm, qkvBias, logn, shift);
    }

    /** Whether the input adds embeddings of previous tokens ({@link #tokenShift} ≥ 1). */
    public boolean shifted() { return tokenShift > 0; }

    /** Most previous-token tables a config may ask for. */
    public static final int MAX_TOKEN_SHIFT = 8;

    /**
     * The same config with CLI overrides applied on top of its own values (null = unchanged):
     * {@code attention} replaces every layer's pattern ({@link LayerPatterns}); {@code rope} changes
     * only the RoPE fields it names ({@link RopeConfig#overriddenBy}). Errors name the option.
     */
    public ModelConfig withOverrides(String attention, String rope) {
        ModelConfig c = this;
        if (attention != null) c = c.withAttention(LayerPatterns.expand(attention, layers, "--attention"));
        if (rope != null) {
            try {
                c = c.withRope(this.rope.overriddenBy(rope));
            } catch (LongspanException e) {
                throw new LongspanException("--rope: " + e.getMessage());
            }
        }
        return c;
    }

    /** Number of parameters. */
    public long parameterCount() {
        long perLayer = 2L * dim + (long) dim * qDim() + 2L * dim * kvDim() + (long) qDim() * dim + 3L * dim * ffnDim
                + (qkNorm ? 2L * headDim : 0) + (qkvBias ? qDim() + 2L * kvDim() : 0);
        return (long) vocabSize * dim * ((tiedEmbeddings ? 1 : 2) + tokenShift) + layers * perLayer + dim;
    }

    private static final Set<String> KEYS = Set.of("vocab_size", "dim", "layers", "heads", "kv_heads", "head_dim", "ffn_dim",
            "norm_eps", "tied_embeddings", "rope", "attention", "tokenizer", "context_length", "qk_norm", "qkv_bias", "logn", "token_shift");

    /** Reads a config from a parsed JSON object; {@code source} names the file in errors. */
    public static ModelConfig fromJson(Map<String, Object> m, String source) {
        for (String k : m.keySet()) {
            if (!KEYS.contains(k)) throw new LongspanException(source + ": unknown field '" + k + "' (known: " + String.join(", ", new java.util.TreeSet<>(KEYS)) + ")");
        }
        int layers = intField(m, "layers", source, null);
        int dim = intField(m, "dim", source, null);
        int heads = intField(m, "heads", source, null);
        int headDim = m.containsKey("head_dim") ? intField(m, "head_dim", source, null) : dim / Math.max(1, heads);
        try {
            return new ModelConfig(
                    intField(m, "vocab_size", source, 259),
                    dim, layers, heads,
                    intField(m, "kv_heads", source, heads),
                    headDim,
                    intField(m, "ffn_dim", source, null),
                    (float) doubleField(m, "norm_eps", source, 1e-5),
                    boolField(m, "tied_embeddings", source, true),
                    rope(m.get("rope"), headDim, source),
                    LayerPatterns.expand(m.get("attention"), layers, source + ": field attention"),
                    stringField(m, "tokenizer", source, "byte"),
                    intField(m, "context_length", source, 2048),
                    boolField(m, "qk_norm", source, false),
                    boolField(m, "qkv_bias", source, false),
                    intField(m, "logn", source, 0),
                    tokenShiftField(m, source));
        } catch (LongspanException e) {
            if (e.getMessage().startsWith("model config: ")) throw new LongspanException(source + ": " + e.getMessage().substring(14));
            throw e;
        }
    }

    /** The rope field: a spec string or an object of the same fields (absent: plain RoPE, base 10000). */
    private static RopeConfig rope(Object v, int headDim, String source) {
        try {
            if (v == null) return RopeConfig.plain(10000, headDim);
            if (v instanceof String spec) return RopeConfig.fromSpec(spec, headDim);
            if (v instanceof Map<?, ?> map) {
                @SuppressWarnings("unchecked") Map<String, ?> fields = (Map<String, ?>) map;
                return RopeConfig.fromMap(fields, headDim);
            }
        } catch (LongspanException e) {
            throw new LongspanException(source + ": field rope: " + e.getMessage());
        }
        throw new LongspanException(source + ": field rope: must be a spec string (kind=rope,base=10000) or an object of the same fields, got " + v);
    }

    private static int intField(Map<String, Object> m, String k, String source, Integer dflt) {
        Object v = m.get(k);
        if (v == null) {
            if (dflt == null) throw new LongspanException(source + ": missing required field '" + k + "'");
            return dflt;
        }
        if (v instanceof Long l && l == (int) (long) l) return (int) (long) l;
        throw new LongspanException(source + ": field '" + k + "' must be an integer, got " + v);
    }

    private static String stringField(Map<String, Object> m, String k, String source, String dflt) {
        Object v = m.get(k);
        if (v == null) return dflt;
        if (v instanceof String s && !s.isBlank()) return s;
        throw new LongspanException(source + ": field '" + k + "' must be a non-empty string, got " + v);
    }

    // token_shift: true (1), false (0), or how many previous tokens (0..MAX_TOKEN_SHIFT)
    private static int tokenShiftField(Map<String, Object> m, String source) {
        Object v = m.get("token_shift");
        if (v == null) return 0;
        if (v instanceof Boolean b) return b ? 1 : 0;
        if (v instanceof Number n && n.doubleValue() == Math.rint(n.doubleValue()) && n.intValue() >= 0 && n.intValue() <= MAX_TOKEN_SHIFT) return n.intValue();
        throw new LongspanException(source + ": field 'token_shift' must be true, false or a whole number of previous tokens 0.." + MAX_TOKEN_SHIFT + ", got " + v);
    }

    private static boolean boolField(Map<String, Object> m, String k, String source, boolean dflt) {
        Object v = m.get(k);
        if (v == null) return dflt;
        if (v instanceof Boolean b) return b;
        throw new LongspanException(source + ": field '" + k + "' must be true or false, got " + v);
    }

    private static double doubleField(Map<String, Object> m, String k, String source, double dflt) {
        Object v = m.get(k);
        if (v == null) return dflt;
        if (v instanceof Number n) return n.doubleValue();
        throw new LongspanException(source + ": field '" + k + "' must be a number, got " + v);
    }

    public Map<String, Object> toJson() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("vocab_size", (long) vocabSize);
        m.put("dim", (long) dim);
        m.put("layers", (long) layers);
        m.put("heads", (long) heads);
        m.put("kv_heads", (long) kvHeads);
        m.put("head_dim", (long) headDim);
        m.put("ffn_dim", (long) ffnDim);
        m.put("norm_eps", (double) normEps);
        m.put("tied_embeddings", tiedEmbeddings);
        m.put("rope", rope.toShortSpec());
        m.put("attention", new ArrayList<Object>(attentionSpecs()));
        m.put("tokenizer", tokenizer);
        m.put("context_length", (long) contextLength);
        // written only when set, so plain Llama configs stay as they were
        if (qkNorm) m.put("qk_norm", true);
        if (qkvBias) m.put("qkv_bias", true);
        if (logn != 0) m.put("logn", (long) logn);
        if (tokenShift == 1) m.put("token_shift", true);          // as configs had it before more than one
        else if (tokenShift > 1) m.put("token_shift", (long) tokenShift);
        return m;
    }

    public static ModelConfig read(Path file) {
        try {
            return fromJson(Json.parseObject(Files.readString(file), file.toString()), file.toString());
        } catch (NoSuchFileException e) {
            throw new LongspanException(file + ": no such file");
        } catch (IOException e) {
            throw new LongspanException(file + ": cannot read: " + dev.longspan.io.IoErrors.reason(e), e);
        }
    }

    public void write(Path file) {
        AtomicFiles.writeString(file, Json.writePretty(toJson()));
    }
}
