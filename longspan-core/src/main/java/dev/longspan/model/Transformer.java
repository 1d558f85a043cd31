package dev.longspan.model;

import dev.longspan.kernel.Kernels;
import dev.longspan.tensor.Parallel;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * A Llama-family decoder over one flat parameter array (llm.c style): token embedding, per layer
 * [RMSNorm → Q,K,V → RoPE → attention(pattern of the layer) → output projection → residual →
 * RMSNorm → SwiGLU → residual], final RMSNorm, output head (tied or untied).
 * Tensor names follow Hugging Face Llama ({@code model.layers.0.self_attn.q_proj.weight}, ...),
 * matrices stored [out, in] so that y = x·Wᵀ.
 *
 * <p>Forward and backward for training live in {@link TrainingPass}; incremental inference (KV
 * cache) in {@link InferenceSession}; both run every layer through {@link DecoderLayer}. This class
 * owns the weights and their layout.
 *
 * <p>Inference reads the matrices through {@link Weight}s: views of the parameter array, or, for a
 * model loaded with its weights kept as stored, the file's tensors themselves. Such a model's
 * matrices are not in {@link #params} (their {@link Tensor#offset} is -1 and the array holds only
 * norms and biases), so it can run but not train or be saved.
 */
public final class Transformer {
    /** A named slice of the parameter array (offset -1: a stored weight, not in the array). */
    public record Tensor(String name, long[] shape, int offset, int size, boolean decay) {}

    public final ModelConfig config;
    public final float[] params;
    private final Map<String, Tensor> tensors = new LinkedHashMap<>();

    // offsets
    public final int tokEmb, finalNorm, lmHead;
    /** The previous-token embeddings [vocab, dim] ({@link ModelConfig#tokenShift}), [s−1] for the token s places back (s = 1..tokenShift). */
    public final int[] prevEmbs;
    public final int[] attnNorm, wq, wk, wv, wo, ffnNorm, w1, w2, w3;
    /** Per layer: q/k head norms [headDim] (qkNorm) and q/k/v biases (qkvBias); -1 when absent. */
    public final int[] qNorm, kNorm, bq, bk, bv;
    /** The matrices as inference reads them (views of params unless kept as stored). */
    public final Weight embedding, head;
    public final Weight[] qProj, kProj, vProj, oProj, gateProj, upProj, downProj;
    // matrices kept as their file stores them, by tensor name
    private final Map<String, Weight> stored;
    /** The LoRA adapters on the matrices (applied, not merged); null when there are none. */
    public final Lora lora;

    public Transformer(ModelConfig c) {
        this(c, null, Map.of(), null);
    }

    /**
     * A model whose matrices named in {@code stored} are read where they are (typically a
     * memory-mapped file) instead of from the parameter array, which then holds everything else.
     */
    public Transformer(ModelConfig c, Map<String, Weight> stored) {
        this(c, null, Map.copyOf(stored), null);
    }

    /**
     * The same weights under another config of the same layout (attention or RoPE override); the
     * parameter array is shared, not copied.
     */
    public Transformer withConfig(ModelConfig c) {
        return new Transformer(c, params, stored, lora);
    }

    /**
     * The same weights (shared, not copied) with LoRA adapters on the matrices they target, applied
     * at every product; null removes them. The adapters must have been made for this config's shapes.
     */
    public Transformer withAdapters(Lora adapters) {
        return new Transformer(config, params, stored, adapters);
    }

    /** The tensor layout of a config, without parameters (params is empty). */
    public Transformer(ModelConfig c, boolean layoutOnly) {
        this(c, LAYOUT_ONLY, Map.of(), null);
    }

    private static final float[] LAYOUT_ONLY = new float[0];

    private Transformer(ModelConfig c, float[] shared, Map<String, Weight> stored, Lora lora) {
        this.config = c;
        this.stored = stored;
        this.lora = lora;
        int L = c.layers();
        attnNorm = new int[L]; wq = new int[L]; wk = new int[L]; wv = new int[L]; wo = new int[L];
        ffnNorm = new int[L]; w1 = new int[L]; w2 = new int[L]; w3 = new int[L];
        qNorm = new int[L]; kNorm = new int[L]; bq = new int[L]; bk = new int[L]; bv = new int[L];
        java.util.Arrays.fill(qNorm, -1); java.util.Arrays.fill(kNorm, -1);
        java.util.Arrays.fill(bq, -1); java.util.Arrays.fill(bk, -1); java.util.Arrays.fill(bv, -1);
        long[] off = {0};
        tokEmb = add("model.embed_tokens.weight", off, true, c.vocabSize(), c.dim());
        for (int l = 0; l < L; l++) {
            String p = "model.layers." + l + ".";
            attnNorm[l] = add(p + "input_layernorm.weight", off, false, c.dim());
            wq[l] = add(p + "self_attn.q_proj.weight", off, true, c.qDim(), c.dim());
            wk[l] = add(p + "self_attn.k_proj.weight", off, true, c.kvDim(), c.dim());
            wv[l] = add(p + "self_attn.v_proj.weight", off, true, c.kvDim(), c.dim());
            if (c.qkvBias()) {
                bq[l] = add(p + "self_attn.q_proj.bias", off, false, c.qDim());
                bk[l] = add(p + "self_attn.k_proj.bias", off, false, c.kvDim());
                bv[l] = add(p + "self_attn.v_proj.bias", off, false, c.kvDim());
            }
            if (c.qkNorm()) {
                qNorm[l] = add(p + "self_attn.q_norm.weight", off, false, c.headDim());
                kNorm[l] = add(p + "self_attn.k_norm.weight", off, false, c.headDim());
            }
            wo[l] = add(p + "self_attn.o_proj.weight", off, true, c.dim(), c.qDim());
            ffnNorm[l] = add(p + "post_attention_layernorm.weight", off, false, c.dim());
            w1[l] = add(p + "mlp.gate_proj.weight", off, true, c.ffnDim(), c.dim());
            w3[l] = add(p + "mlp.up_proj.weight", off, true, c.ffnDim(), c.dim());
            w2[l] = add(p + "mlp.down_proj.weight", off, true, c.dim(), c.ffnDim());
        }
        finalNorm = add("model.norm.weight", off, false, c.dim());
        lmHead = c.tiedEmbeddings() ? tokEmb : add("lm_head.weight", off, true, c.vocabSize(), c.dim());
        // last in the layout, so a model without it is this one's prefix (train --init adds it at zero)
        // (a second, third … table after the first, so a model with fewer is the prefix of one with more)
        prevEmbs = new int[c.tokenShift()];
        for (int s = 1; s <= c.tokenShift(); s++) prevEmbs[s - 1] = add(prevEmbeddingName(s), off, true, c.vocabSize(), c.dim());
        if (shared != LAYOUT_ONLY && off[0] > Integer.MAX_VALUE - 16) {
            throw new dev.longspan.util.LongspanException("model too large for one parameter array (" + off[0] + " floats); a GGUF loads with its weights kept as stored");
        }
        if (shared != null && shared != LAYOUT_ONLY && shared.length != off[0]) {
            throw new dev.longspan.util.LongspanException("config change alters the parameter layout (" + shared.length + " vs " + off[0] + " parameters)");
        }
        for (String n : stored.keySet()) {
            Tensor t = tensors.get(n);
            if (t == null || t.shape().length != 2) throw new IllegalArgumentException("no matrix '" + n + "' in this model");
            Weight w = stored.get(n);
            if (w.rows() != t.shape()[0] || w.cols() != t.shape()[1]) {
                throw new IllegalArgumentException("stored '" + n + "' is [" + w.rows() + ", " + w.cols() + "], the model needs " + java.util.Arrays.toString(t.shape()));
            }
        }
        params = shared != null ? shared : new float[(int) off[0]];
        embedding = weight("model.embed_tokens.weight");
        head = c.tiedEmbeddings() ? embedding : weight("lm_head.weight");
        qProj = new Weight[L]; kProj = new Weight[L]; vProj = new Weight[L]; oProj = new Weight[L];
        gateProj = new Weight[L]; upProj = new Weight[L]; downProj = new Weight[L];
        for (int l = 0; l < L; l++) {
            String p = "model.layers." + l + ".";
            qProj[l] = weight(p + "self_attn.q_proj.weight");
            kProj[l] = weight(p + "self_attn.k_proj.weight");
            vProj[l] = weight(p + "self_attn.v_proj.weight");
            oProj[l] = weight(p + "self_attn.o_proj.weight");
            gateProj[l] = weight(p + "mlp.gate_proj.weight");
            upProj[l] = weight(p + "mlp.up_proj.weight");
            downProj[l] = weight(p + "mlp.down_proj.weight");
        }
        if (lora != null) {
            for (Lora.Adapter a : lora.adapters()) {
                Weight[] ws = switch (a.target()) {
                    case Q -> qProj; case K -> kProj; case V -> vProj; case O -> oProj;
                    case GATE -> gateProj; case UP -> upProj; case DOWN -> downProj;
                };
                Weight base = ws[a.layer()];
                if (base.rows() != a.out() || base.cols() != a.in()) {
                    throw new IllegalArgumentException(a.module() + ": adapter for [" + a.out() + ", " + a.in() + "], the matrix is [" + base.rows() + ", " + base.cols() + "]");
                }
                ws[a.layer()] = lora.wrap(base, a);
            }
        }
    }

    private Weight weight(String name) {
        Weight w = stored.get(name);
        if (w != null) return w;
        Tensor t = tensors.get(name);
        return new Weight.Dense(params, t.offset(), (int) t.shape()[0], (int) t.shape()[1]);
    }

    /**
     * A new model without adapters whose matrices are this one's with the adapters merged in
     * (W + s·B·A, in float32), for export; needs every weight in {@link #params}.
     */
    public Transformer mergedAdapters() {
        requireParams("merge adapters into");
        Transformer t = new Transformer(config);
        System.arraycopy(params, 0, t.params, 0, params.length);
        if (lora != null) {
            for (Lora.Adapter a : lora.adapters()) lora.mergeInto(a, t.params, tensor(a.module() + ".weight").offset());
        }
        return t;
    }

    /** True when some matrices are kept as stored (outside {@link #params}): such a model runs but cannot train or be saved. */
    public boolean keepsStoredWeights() { return !stored.isEmpty(); }

    /** True when some matrices were repacked at load ({@link Weight.Interleaved}). */
    public boolean keepsRepackedWeights() {
        for (Weight w : stored.values()) if (w instanceof Weight.Interleaved) return true;
        return false;
    }

    /** Bytes the weights occupy: the parameter array plus the stored matrices. */
    public long weightBytes() {
        long b = 4L * params.length;
        for (Weight w : stored.values()) b += w.bytes();
        return b;
    }

    // the tensor's offset in params; -1 when stored elsewhere or (layout only) past what one array holds
    private int add(String name, long[] off, boolean decay, int... dims) {
        long n = 1;
        long[] shape = new long[dims.length];
        for (int i = 0; i < dims.length; i++) { n *= dims[i]; shape[i] = dims[i]; }
        if (stored.containsKey(name)) {
            tensors.put(name, new Tensor(name, shape, -1, (int) Math.min(n, Integer.MAX_VALUE), decay));
            return -1;
        }
        if (n > Integer.MAX_VALUE - 16) throw new dev.longspan.util.LongspanException("tensor " + name + " has " + n + " elements, more than one array holds");
        int o = off[0] + n <= Integer.MAX_VALUE - 16 ? (int) off[0] : -1;
        tensors.put(name, new Tensor(name, shape, o, (int) n, decay));
        off[0] += n;
        return o;
    }

    public List<Tensor> tensors() { return new ArrayList<>(tensors.values()); }

    public Tensor tensor(String name) { return tensors.get(name); }

    /** True for parameters that get weight decay (matrices), false for norms. */
    public boolean[] decayMask() {
        requireParams("train");
        boolean[] m = new boolean[params.length];
        for (Tensor t : tensors.values()) if (t.decay()) java.util.Arrays.fill(m, t.offset(), t.offset() + t.size(), true);
        return m;
    }

    /** Initialises weights: norms 1, matrices N(0, 0.02), residual projections scaled by 1/sqrt(2L). */
    public void initialize(long seed) {
        requireParams("initialize");
        SplittableRandom rnd = new SplittableRandom(seed);
        double residualStd = 0.02 / Math.sqrt(2.0 * config.layers());
        for (Tensor t : tensors.values()) {
            if (!t.decay()) {  // norms 1, biases 0
                java.util.Arrays.fill(params, t.offset(), t.offset() + t.size(), t.name().endsWith(".bias") ? 0f : 1f);
                continue;
            }
            boolean residual = t.name().endsWith("o_proj.weight") || t.name().endsWith("down_proj.weight");
            double std = residual ? residualStd : 0.02;
            for (int i = 0; i < t.size(); i++) params[t.offset() + i] = (float) (gaussian(rnd) * std);
        }
    }

    /** Refuses an operation that needs every weight in {@link #params}. */
    public void requireParams(String what) {
        if (keepsStoredWeights()) {
            throw new dev.longspan.util.LongspanException("cannot " + what + " a model whose weights are kept as stored in its file; load it dequantized");
        }
    }

    static double gaussian(SplittableRandom r) {
        // Box-Muller, deterministic for a seed
        double u1 = r.nextDouble(), u2 = r.nextDouble();
        return Math.sqrt(-2 * Math.log(Math.max(u1, 1e-300))) * Math.cos(2 * Math.PI * u2);
    }

    // ---- small shared layer pieces (used by training and inference) -------------------------

    /** The tensor name of the previous-token embedding ({@link ModelConfig#tokenShift}). */
    public static final String PREV_EMBEDDING = "model.embed_prev_tokens.weight";

    /** The tensor name of the embedding of the token {@code s} places back (1: {@link #PREV_EMBEDDING}). */
    public static String prevEmbeddingName(int s) {
        return s == 1 ? PREV_EMBEDDING : "model.embed_prev" + s + "_tokens.weight";
    }

    /** Whether a tensor is one of the previous-token embeddings. */
    public static boolean isPrevEmbedding(String name) {
        return name.equals(PREV_EMBEDDING) || name.matches("model\\.embed_prev[0-9]+_tokens\\.weight");
    }

    /**
     * out[T, dim] = embedding rows of tokens[from..from+T); with a token shift, plus table s's row of
     * the token s places back, for s = 1..tokenShift. The tokens before tokens[from] are
     * before[0..beforeLen) (the last one just before; null or beforeLen 0: none, the sequence starts
     * here); a position with no token s places back adds nothing for s.
     */
    void embed(float[] out, int[] tokens, int from, int T, int[] before, int beforeLen) {
        int d = config.dim();
        for (int t = 0; t < T; t++) {
            int id = tokens[from + t];
            if (id < 0 || id >= config.vocabSize()) {
                throw new dev.longspan.util.LongspanException("token id " + id + " outside the model's vocabulary (0.." + (config.vocabSize() - 1) + ")");
            }
            embedding.row(id, out, t * d);
            for (int s = 1; s <= prevEmbs.length; s++) {
                int back = tokenBack(tokens, from, t, s, before, beforeLen);
                if (back >= 0) Kernels.axpy(1f, params, prevEmbs[s - 1] + back * d, out, t * d, d);
            }
        }
    }

    // the token s places before tokens[from + t] (from before[] when that is before from), or -1
    private static int tokenBack(int[] tokens, int from, int t, int s, int[] before, int beforeLen) {
        if (t >= s) return tokens[from + t - s];
        int i = beforeLen + t - s;
        return before != null && i >= 0 ? before[i] : -1;
    }

    /**
     * Table s's gradient (s places back; its offset in grads is {@code off}, negative: not trained):
     * row (token s places before t) += dx[t], the tokens before tokens[0] being before[0..beforeLen).
     */
    void embedPrevBackward(float[] grads, int off, int s, float[] dx, int[] tokens, int T, int[] before, int beforeLen) {
        if (off < 0) return;
        int d = config.dim();
        for (int t = 0; t < T; t++) {
            int back = tokenBack(tokens, 0, t, s, before, beforeLen);
            if (back >= 0) Kernels.axpy(1f, dx, t * d, grads, off + back * d, d);
        }
    }

    // x[rows, n] += bias[n]
    void addBias(float[] x, int biasOff, int rows, int n) {
        for (int r = 0; r < rows; r++) Kernels.axpy(1f, params, biasOff, x, r * n, n);
    }

    /** logits[T, V] = x[T, dim] · headᵀ. */
    void logits(float[] logits, float[] x, int T) {
        head.apply(logits, 0, x, 0, T, false);
    }

    // a copy of fewer than 64K floats (a decoding step's) is not worth a parallel call
    private static void copyHeads(int floats, int H, Parallel.RangeBody body) {
        if (floats < 1 << 16) body.run(0, H);
        else Parallel.forRange(0, H, body);
    }

    /** [T, H·D] → [H, T, D]. */
    static void toHeads(float[] dst, float[] src, int T, int H, int D) {
        copyHeads(T * H * D, H, (h0, h1) -> {
            for (int h = h0; h < h1; h++)
                for (int t = 0; t < T; t++) System.arraycopy(src, t * H * D + h * D, dst, (h * T + t) * D, D);
        });
    }

    /** [H, T, D] → [T, H·D]. */
    static void fromHeads(float[] dst, float[] src, int T, int H, int D) {
        copyHeads(T * H * D, H, (h0, h1) -> {
            for (int h = h0; h < h1; h++)
                for (int t = 0; t < T; t++) System.arraycopy(src, (h * T + t) * D, dst, t * H * D + h * D, D);
        });
    }
}
