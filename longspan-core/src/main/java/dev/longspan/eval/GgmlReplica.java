package dev.longspan.eval;

import dev.longspan.io.GgufFile;
import dev.longspan.kernel.GgmlType;
import dev.longspan.kernel.QuantKernels;
import dev.longspan.tensor.Parallel;
import dev.longspan.util.LongspanException;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.function.BiConsumer;

/**
 * llama.cpp's logits bit for bit: a Llama forward pass over a GGUF file that performs every
 * floating-point operation as ggml's CPU backend does — llama.cpp b4748 (c392e50) built for AVX2
 * with FMA and F16C ({@link Build#AVX2}) or natively for an AVX-512 machine ({@link Build#AVX512}),
 * an F16 or F32 KV cache, no flash attention; a batch as llama-perplexity evaluates it
 * ({@link #logits}), or generation as llama-simple does it ({@link Session}). Longspan's own
 * kernels compute the same functions to float rounding, but on a quantized model those roundings
 * decide which way activations round to Q8_0 or F16, and the perplexity of a short text moves by a
 * few tenths of a percent with them: llama.cpp's own AVX2 and AVX-512 builds differ from each
 * other by as much (docs/FORMATS.md). To compare with a figure llama.cpp printed, this replays its
 * arithmetic:
 * <ul>
 *   <li>matrix products as llamafile's tinyBLAS computes them for a batch: eight float lanes,
 *       lane i accumulating elements i, i+8, … with fused multiply-adds, then ggml's horizontal
 *       sum ((l0+l4)+(l2+l6))+((l1+l5)+(l3+l7)); Q8_0, Q5_0 and IQ4_NL rows against activations
 *       rounded to Q8_0 (127/amax, half to even), one lane per four int8 products of a block,
 *       scaled by the product of the two fp16 scales; F16 and BF16 rows against activations
 *       rounded to their type; Q2_K..Q6_K and IQ4_XS rows (which tinyBLAS does not take) as
 *       ggml_vec_dot_*_q8_K computes them against activations rounded to Q8_K: per super-block of
 *       256 eight exact integer lane sums scaled by one fused multiply-add each, and each type's
 *       own way of adding the minimums' term; Q4_1/Q5_1 against Q8_1 activations; Q4_0 matrices of
 *       rows a multiple of 8 as this llama.cpp repacks them 8×8 at load and multiplies them (one
 *       float accumulator per output); where tinyBLAS declines (a single token, a row length not a
 *       multiple of 8, a row count not a multiple of 4), ggml's vec_dot: for float rows four
 *       8-lane accumulators and the leftovers as GCC compiled them, for Q8_0/Q5_0 tinyBLAS's single
 *       accumulator, for IQ4_NL two alternating by block;</li>
 *   <li>RMSNorm with a double sum of float squares; RoPE from a float angle multiplied up pair by
 *       pair, with glibc's sinf/cosf; the softmax with ggml's vectorized expf (ggml_v_expf), eight
 *       lanes summed as above and added in double; SiLU with the same expf; keys, values, queries
 *       and attention weights rounded to F16 where the F16 cache makes ggml round them.</li>
 * </ul>
 * Supported: architectures llama and qwen2 (q/k/v biases, NEOX pairs) with plain or linearly
 * scaled RoPE and Llama 3's frequency factors, tensors of types F32, F16, BF16, Q4_0, Q4_1, Q5_0,
 * Q5_1, Q8_0, IQ4_NL, IQ4_XS and Q2_K..Q6_K; anything else (YaRN or LongRoPE, the IQ1..IQ3 codebook
 * types, other architectures) is refused with one line.
 */
public final class GgmlReplica {
    private static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** The lanes of an AVX2 float vector (and of the integer dots in every build), which fix how sums are split and recombined. */
    static final int LANES = 8;

    /**
     * Which build of llama.cpp b4748 is replayed: AVX2 (+FMA, F16C; the data README's figures) or a native build on an
     * AVX-512 machine (F, DQ, BW, VL, VNNI, BF16), whose float sums run in 16 lanes, whose exp scales by 2^n with
     * scalef, and whose BF16 products run on dpbf16. The integer (quantized) dots are the same 8-lane code in both.
     */
    public enum Build {
        AVX2(8), AVX512(16);

        /** Float lanes of tinyBLAS, vec_dot, the softmax and SiLU. */
        final int lanes;

        Build(int lanes) { this.lanes = lanes; }
    }

    private final int dim, layers, heads, kvHeads, headDim, ffn, vocab, ropeDims;
    private final float eps, thetaScale, kqScale, freqScale, mscale;
    private final float[] freqFactors;
    private final Matrix embed, output;
    private final float[] outputNorm;
    private final Layer[] blocks;
    private final boolean f16Cache, neox;
    private final Build build;
    private final int L;
    private BiConsumer<String, float[]> probe = (name, x) -> {};
    private boolean probeAll;

    // bq, bk, bv: null where the file has no biases (qwen2 has them; llama.cpp's llama graph adds them when present)
    private record Layer(float[] attnNorm, Matrix q, Matrix k, Matrix v, Matrix o, float[] ffnNorm, Matrix gate, Matrix up, Matrix down,
                         float[] bq, float[] bk, float[] bv) {}

    /**
     * A tensor [rows, cols] as the file stores it. repacked: a Q4_0 matrix that this llama.cpp repacks 8×8 at load on
     * AVX2 (a product's weight with rows a multiple of 8; token_embd, read by get_rows, stays as stored).
     */
    private record Matrix(String name, GgmlType type, MemorySegment data, long offset, int rows, int cols, boolean repacked) {
        long rowBytes() { return type.rowBytes(cols); }
    }

    /** Reads the hyperparameters and tensors of a llama GGUF; the file must stay open while this is used. */
    public GgmlReplica(GgufFile g, boolean f16Cache) { this(g, f16Cache, Build.AVX2); }

    public GgmlReplica(GgufFile g, boolean f16Cache, Build build) {
        this.f16Cache = f16Cache;
        this.build = build;
        this.L = build.lanes;
        String src = g.path().toString();
        String arch = g.getString("general.architecture", "");
        if (!arch.equals("llama") && !arch.equals("qwen2")) {
            throw new LongspanException(src + ": llama.cpp's arithmetic is replicated for architectures llama and qwen2, not '" + arch + "'");
        }
        neox = arch.equals("qwen2");   // llama.cpp rotates qwen2 in NEOX mode (pairs i, i + D/2), llama in pairs 2i, 2i+1
        String p = arch + ".";
        dim = g.getInt(p + "embedding_length");
        layers = g.getInt(p + "block_count");
        ffn = g.getInt(p + "feed_forward_length");
        heads = g.getInt(p + "attention.head_count");
        kvHeads = g.getInt(p + "attention.head_count_kv", heads);
        headDim = g.getInt(p + "attention.key_length", dim / heads);
        ropeDims = g.getInt(p + "rope.dimension_count", headDim);
        eps = g.getFloat(p + "attention.layer_norm_rms_epsilon");
        float base = g.getFloat(p + "rope.freq_base", 10000f);
        // llama.cpp's reading: scaling type "linear" unless the file says otherwise, freq_scale = 1/factor (1 with no
        // factor or type none), ext_factor 0 (no YaRN ramp), mscale = rope.scaling.attn_factor, Llama 3's rope_freqs
        // dividing each pair's angle
        String scaling = g.getString(p + "rope.scaling.type", "linear");
        if (!scaling.equals("linear") && !scaling.equals("none")) {
            throw new LongspanException(src + ": RoPE scaling '" + scaling + "' is not replicated (none, linear and rope_freqs factors are)");
        }
        float factor = g.getFloat(p + "rope.scaling.factor", g.getFloat(p + "rope.scale_linear", 0f));
        freqScale = scaling.equals("none") || factor == 0f ? 1f : 1f / factor;
        mscale = g.getFloat(p + "rope.scaling.attn_factor", 1f);
        freqFactors = g.hasTensor("rope_freqs.weight") ? g.floats("rope_freqs.weight") : null;
        if (ropeDims != headDim || headDim % 2 != 0) throw new LongspanException(src + ": partial RoPE (" + ropeDims + " of " + headDim + ") is not replicated");
        thetaScale = (float) Math.pow(base, -2.0f / ropeDims);
        kqScale = 1.0f / (float) Math.sqrt((float) headDim);
        embed = matrix(g, "token_embd.weight");
        vocab = embed.rows;
        output = g.hasTensor("output.weight") ? matrix(g, "output.weight") : embed;
        outputNorm = g.floats("output_norm.weight");
        blocks = new Layer[layers];
        for (int l = 0; l < layers; l++) {
            String b = "blk." + l + ".";
            blocks[l] = new Layer(g.floats(b + "attn_norm.weight"), matrix(g, b + "attn_q.weight"), matrix(g, b + "attn_k.weight"),
                    matrix(g, b + "attn_v.weight"), matrix(g, b + "attn_output.weight"), g.floats(b + "ffn_norm.weight"),
                    matrix(g, b + "ffn_gate.weight"), matrix(g, b + "ffn_up.weight"), matrix(g, b + "ffn_down.weight"),
                    bias(g, b + "attn_q.bias"), bias(g, b + "attn_k.bias"), bias(g, b + "attn_v.bias"));
        }
    }

    private static float[] bias(GgufFile g, String name) { return g.hasTensor(name) ? g.floats(name) : null; }

    private static Matrix matrix(GgufFile g, String name) {
        if (!g.hasTensor(name)) throw new LongspanException(g.path() + ": missing tensor '" + name + "'");
        GgufFile.Tensor t = g.tensor(name);
        switch (t.type()) {
            case F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, IQ4_XS, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K -> {}
            default -> throw new LongspanException(g.path() + ": tensor '" + name + "' has type " + t.type()
                    + ", whose llama.cpp kernels are not replicated (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, IQ4_XS and Q2_K..Q6_K are)");
        }
        if (t.ne().length != 2) throw new LongspanException(g.path() + ": tensor '" + name + "' is not a matrix");
        int rows = (int) t.ne()[1];
        return new Matrix(name, t.type(), g.segment(), t.offset(), rows, (int) t.ne()[0],
                t.type() == GgmlType.Q4_0 && rows % 8 == 0 && !name.equals("token_embd.weight"));
    }

    public int vocabSize() { return vocab; }

    /** Receives llama.cpp's name for each intermediate tensor ("attn_norm-0", "kq_soft_max_ext-0", …) and its values. */
    public void probe(BiConsumer<String, float[]> probe) { this.probe = probe; }

    /**
     * The logits [T, vocab] of tokens at positions 0..T-1 evaluated as one batch from an empty
     * cache, as llama.cpp computes them for sequence {@code seq} of a batch in which sequence s
     * occupies cells s·ctx onwards (llama-perplexity packs 2048 / ctx chunks into one batch: where
     * a sequence starts decides which float lane each key falls in).
     */
    public float[] logits(int[] tokens, int seq, int ctx) { return logits(tokens, seq, ctx, 0); }

    /**
     * The logits [T - from, vocab] of positions from..T-1 only (llama.cpp computes the output head on the rows it was
     * asked for, each row as it would alone: the same numbers as those rows of {@link #logits(int[], int, int)}).
     */
    public float[] logits(int[] tokens, int seq, int ctx, int from) {
        int T = tokens.length;
        if (from < 0 || from >= T) throw new IllegalArgumentException("from " + from + " outside the " + T + " tokens");
        if (T < 2) throw new LongspanException("llama.cpp's batch arithmetic needs at least 2 tokens, got " + T);
        int cellOffset = (int) (((long) seq * ctx) % L);
        LayerCache[] caches = new LayerCache[layers];
        for (int l = 0; l < layers; l++) caches[l] = new LayerCache(kvHeads, headDim, roundUp(cellOffset + T, 32));
        return forward(tokens, 0, T, caches, cellOffset, cellOffset, from);
    }

    /**
     * Incremental evaluation as llama.cpp's generation does it (llama-simple, llama-cli): a prompt as one batch, then
     * one token at a time against the cache, each step's logits those of its last token. The numbers of that path:
     * a single token's products run ggml's vec_dot, not tinyBLAS.
     */
    public final class Session implements dev.longspan.model.Generator.Source {
        private final LayerCache[] caches = new LayerCache[layers];
        private int length;

        public Session() { for (int l = 0; l < layers; l++) caches[l] = new LayerCache(kvHeads, headDim, 32); }

        @Override
        public int length() { return length; }

        /** Evaluates ids[from..to) after what was fed before; the logits [vocab] of the last. */
        @Override
        public float[] feed(int[] ids, int from, int to) {
            int n = to - from;
            if (n < 1) throw new IllegalArgumentException("nothing to feed");
            float[] out = forward(java.util.Arrays.copyOfRange(ids, from, to), length, n, caches, 0, length, n - 1);
            length += n;
            return out;
        }
    }

    // the graph over tokens at positions pos0.., their keys and values written at cells base.. of the caches, queries
    // seeing cells first..; logits of rows from..T-1
    private float[] forward(int[] tokens, int pos0, int T, LayerCache[] caches, int first, int base, int from) {
        float[] x = new float[T * dim];
        for (int t = 0; t < T; t++) {
            if (tokens[t] < 0 || tokens[t] >= vocab) throw new LongspanException("token id " + tokens[t] + " is outside the vocabulary of " + vocab);
            dequantizeRow(embed, tokens[t], x, t * dim);
        }
        probe.accept("inp_embd", x);
        for (int l = 0; l < layers; l++) {
            Layer b = blocks[l];
            float[] n = rmsNorm(x, T, dim, b.attnNorm);
            probe.accept("attn_norm-" + l, n);
            float[] q = addBias(matmul(b.q, n, T), b.bq, T), k = addBias(matmul(b.k, n, T), b.bk, T), v = addBias(matmul(b.v, n, T), b.bv, T);
            rope(q, T, heads, pos0);
            rope(k, T, kvHeads, pos0);
            probe.accept("Qcur-" + l, q);
            probe.accept("Kcur-" + l, k);
            float[] att = attention(q, k, v, T, caches[l], first, base, l);
            float[] o = matmul(b.o, att, T);
            probe.accept("kqv_out-" + l, o);
            for (int i = 0; i < x.length; i++) x[i] = o[i] + x[i];
            if (l == layers - 1 && from > 0) {
                // llama.cpp takes the rows it outputs (get_rows) before the last layer's FFN: a single row then runs
                // ggml's vec_dot, not tinyBLAS
                x = java.util.Arrays.copyOfRange(x, from * dim, T * dim);
                T -= from;
                from = 0;
            }
            probe.accept("ffn_inp-" + l, x);
            n = rmsNorm(x, T, dim, b.ffnNorm);
            probe.accept("ffn_norm-" + l, n);
            float[] g = matmul(b.gate, n, T), u = matmul(b.up, n, T);
            probe.accept("ffn_gate-" + l, g);
            silu(g, T, ffn, build);
            probe.accept("ffn_silu-" + l, g);
            for (int i = 0; i < g.length; i++) g[i] = g[i] * u[i];
            probe.accept("ffn_gate_par-" + l, g);
            float[] d = matmul(b.down, g, T);
            probe.accept("ffn_out-" + l, d);
            for (int i = 0; i < x.length; i++) x[i] = d[i] + x[i];
            probe.accept("l_out-" + l, x);
        }
        float[] n = rmsNorm(x, T, dim, outputNorm);
        probe.accept("result_norm", n);
        float[] logits = matmul(output, n, T);
        probe.accept("result_output", logits);
        return logits;
    }

    // ---- the graph's operations ----

    // ggml_add of a bias row to every token's row
    private static float[] addBias(float[] y, float[] b, int T) {
        if (b == null) return y;
        for (int t = 0; t < T; t++) for (int i = 0; i < b.length; i++) y[t * b.length + i] = y[t * b.length + i] + b[i];
        return y;
    }

    // y[T, n] = rms_norm(x) · w: ggml_compute_forward_rms_norm_f32 (squares in float, summed in double), then ggml_mul
    private float[] rmsNorm(float[] x, int T, int n, float[] w) {
        float[] y = new float[T * n];
        for (int t = 0; t < T; t++) {
            double sum = 0;
            for (int i = 0; i < n; i++) { float xi = x[t * n + i]; sum += xi * xi; }
            float mean = (float) (sum / n);
            float scale = 1.0f / (float) Math.sqrt(mean + eps);
            for (int i = 0; i < n; i++) y[t * n + i] = (x[t * n + i] * scale) * w[i];
        }
        return y;
    }

    // x[T, h·D] rotated in place: ggml's rope (mode 0: pairs 2i, 2i+1; NEOX: i, i + D/2), the angle p·scale^i built by repeated float products
    private void rope(float[] x, int T, int h, int pos0) {
        float[] cos = new float[headDim / 2], sin = new float[headDim / 2];
        for (int t = 0; t < T; t++) {
            float theta = pos0 + t;
            for (int i = 0; i < headDim / 2; i++) {
                // rope_yarn(theta / ff, freq_scale, ...) with ext_factor 0: cosf(freq_scale · theta / ff) · mscale
                float angle = freqScale * (freqFactors == null ? theta : theta / freqFactors[i]);
                cos[i] = GlibcFloatMath.cosf(angle) * mscale;
                sin[i] = GlibcFloatMath.sinf(angle) * mscale;
                theta *= thetaScale;
            }
            for (int hh = 0; hh < h; hh++) {
                int o = (t * h + hh) * headDim;
                for (int i = 0; i < headDim / 2; i++) {
                    int a = neox ? o + i : o + 2 * i, b = neox ? o + i + headDim / 2 : o + 2 * i + 1;
                    float x0 = x[a], x1 = x[b];
                    x[a] = ropeFirst(x0, x1, cos[i], sin[i]);
                    x[b] = ropeSecond(x0, x1, cos[i], sin[i]);
                }
            }
        }
    }

    // ggml-cpu is compiled as GNU C with FMA enabled, so GCC fuses one product of each expression into a multiply-add
    static float ropeFirst(float x0, float x1, float c, float s) { return Math.fma(x0, c, -(x1 * s)); }

    static float ropeSecond(float x0, float x1, float c, float s) { return Math.fma(x0, s, x1 * c); }

    /**
     * A layer's KV cache as llama.cpp lays it out: keys [kvHeads][cells][D], values transposed [kvHeads][D][cells],
     * rounded to the cache type. cells is the capacity (the rows' stride); a step attends over the filled cells padded
     * to 32, as llama.cpp does, the padding empty (zero) and masked.
     */
    private static final class LayerCache {
        float[] kc, vt;
        int cells;

        LayerCache(int kvHeads, int D, int cells) { resize(kvHeads, D, cells); }

        void resize(int kvHeads, int D, int n) {
            float[] k2 = new float[kvHeads * n * D], v2 = new float[kvHeads * D * n];
            if (kc != null) {
                for (int h = 0; h < kvHeads; h++) {
                    System.arraycopy(kc, h * cells * D, k2, h * n * D, cells * D);
                    for (int d = 0; d < D; d++) System.arraycopy(vt, (h * D + d) * cells, v2, (h * D + d) * n, cells);
                }
            }
            kc = k2;
            vt = v2;
            cells = n;
        }
    }

    // causal attention per llm_build_kqv without flash attention: kq = k·q, softmax(kq·scale + mask), kqv = v·kq;
    // returns [T, heads·D]. The T new keys and values go to cells base..base+T-1 of the cache; a query at cell base+t
    // sees cells first..base+t. An F16 cache makes ggml round keys, values, queries and attention weights to F16. A
    // batch (T ≥ 2) runs both products in tinyBLAS's lanes where it can, a single token in ggml_vec_dot (llamafile
    // takes no batch of one); kq with an F32 cache is always vec_dot_f32 (its query rows are a strided view).
    private float[] attention(float[] q, float[] k, float[] v, int T, LayerCache cache, int first, int base, int layer) {
        int D = headDim, group = heads / kvHeads;
        int cells = roundUp(base + T, 32);
        if (cells > cache.cells) cache.resize(kvHeads, D, Math.max(cells, 2 * cache.cells));   // generation grows it: double
        int stride = cache.cells;
        float[] kc = cache.kc, vt = cache.vt;
        for (int t = 0; t < T; t++) {
            for (int h = 0; h < kvHeads; h++) {
                for (int d = 0; d < D; d++) {
                    kc[(h * stride + base + t) * D + d] = cache(k[(t * kvHeads + h) * D + d]);
                    vt[(h * D + d) * stride + base + t] = cache(v[(t * kvHeads + h) * D + d]);
                }
            }
        }
        boolean batch = T >= 2;
        float[] out = new float[T * heads * D];
        float[] probs = probeAll ? new float[heads * T * T] : null;
        Parallel.forEachTask(heads * T, task -> {
            int h = task / T, t = task % T, kvh = h / group;
            float[] qr = new float[D];
            for (int d = 0; d < D; d++) qr[d] = cache(q[(t * heads + h) * D + d]);
            float[] w = new float[cells];
            for (int c = 0; c < cells; c++) {
                boolean visible = c >= first && c <= base + t;
                int ko = (kvh * stride + c) * D;
                float s = !f16Cache ? vecDotF32(kc, ko, qr, 0, D, L) : batch ? dotRounded(kc, ko, qr, 0, D) : vecDotRounded(kc, ko, qr, 0, D, L);
                w[c] = visible ? s * kqScale : Float.NEGATIVE_INFINITY;
            }
            softmax(w, cells, build);
            if (probs != null) for (int j = 0; j < T; j++) probs[(h * T + t) * T + j] = w[base + j];
            if (f16Cache) for (int c = 0; c < cells; c++) w[c] = f16(w[c]);
            for (int d = 0; d < D; d++) {
                int vo = (kvh * D + d) * stride;
                out[(t * heads + h) * D + d] = batch ? dotRounded(vt, vo, w, 0, cells)
                        : f16Cache ? vecDotRounded(vt, vo, w, 0, cells, L) : vecDotF32(vt, vo, w, 0, cells, L);
            }
        });
        if (probs != null) probe.accept("kq_soft_max_ext-" + layer, probs);
        return out;
    }

    private float cache(float x) { return f16Cache ? f16(x) : x; }

    /** Also hands the attention weights [heads, T, T] to the probe (costly; for comparisons only). */
    public void probeAttention(boolean on) { probeAll = on; }

    // a dot of two rows already rounded to their type, as tinyBLAS (k a multiple of the lanes) or ggml_vec_dot_f16 computes it
    private float dotRounded(float[] a, int ao, float[] b, int bo, int k) {
        return k % L == 0 ? laneDot(a, ao, b, bo, k, L) : vecDotRounded(a, ao, b, bo, k, L);
    }

    // ggml_vec_soft_max_f32 and the scaling after it, in place over n weights (already scaled and masked)
    private static void softmax(float[] w, int n, Build build) {
        int L = build.lanes;
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) max = Math.max(max, w[i]);
        double sum = 0;
        float[] lane = new float[L];
        int i = 0;
        for (; i + L - 1 < n; i += L) {
            for (int j = 0; j < L; j++) lane[j] = w[i + j] = vexpf(w[i + j] - max, build);
            sum += hsum(lane, L);
        }
        for (; i < n; i++) {
            w[i] = GlibcFloatMath.expf(w[i] - max);
            sum += w[i];
        }
        float inv = (float) (1.0 / sum);
        for (int j = 0; j < n; j++) w[j] *= inv;
    }

    // ggml_vec_silu_f32 over each row of n: x / (1 + expf(-x)), a vector at a time with ggml_v_expf, the rest with libm's expf
    private static void silu(float[] x, int T, int n, Build build) {
        int L = build.lanes;
        for (int t = 0; t < T; t++) {
            int o = t * n, i = 0;
            for (; i + L - 1 < n; i += L) {
                for (int j = 0; j < L; j++) { float v = x[o + i + j]; x[o + i + j] = v / (1f + vexpf(0f - v, build)); }
            }
            for (; i < n; i++) { float v = x[o + i]; x[o + i] = v / (1.0f + GlibcFloatMath.expf(-v)); }
        }
    }

    private static float vexpf(float x, Build build) { return build == Build.AVX2 ? expf(x) : expf512(x); }

    /**
     * ggml_v_expf (AVX-512): the same reduction and polynomial with its 1 inside (j ≈ e^b), scaled by 2^n with scalef
     * (one rounding, subnormals included); |n| &gt; 192 gives 0 or infinity.
     */
    static float expf512(float x) {
        final float r = 0x1.8p23f;
        float z = Math.fma(x, 0x1.715476p+0f, r);
        float n = z - r;
        float b = Math.fma(-n, 0x1.7f7d1cp-20f, Math.fma(-n, 0x1.62e4p-1f, x));
        float u = b * b;
        float j = Math.fma(Math.fma(Math.fma(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, Math.fma(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                u, Math.fma(0x1.ffffecp-1f, b, 1.0f));
        if (Math.abs(n) > 192) return n <= 0 ? 0f : Float.POSITIVE_INFINITY;
        return Math.scalb(j, (int) n);
    }

    /**
     * ggml_v_expf (AVX2): e^x as 2^n · (1 + polynomial), n = round(x·log2 e) by the 1.5·2²³ trick,
     * the reduced argument in two parts of ln 2, with ggml's handling of |n| &gt; 126 (scaled in two
     * steps) and |n| &gt; 192 (0 or infinity). Lane by lane; the same operations in the same order.
     */
    static float expf(float x) {
        final float r = 0x1.8p23f;
        float z = Math.fma(x, 0x1.715476p+0f, r);
        float n = z - r;
        float b = Math.fma(-n, 0x1.7f7d1cp-20f, Math.fma(-n, 0x1.62e4p-1f, x));
        int e = Float.floatToRawIntBits(z) << 23;
        float k = Float.intBitsToFloat(e + Float.floatToRawIntBits(1f));
        boolean c = Math.abs(n) > 126;
        float u = b * b;
        float j = Math.fma(Math.fma(Math.fma(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, Math.fma(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                u, 0x1.ffffecp-1f * b);
        if (!c) return Math.fma(k, j, k);
        int g = n <= 0 ? 0x82000000 : 0;
        float s1 = Float.intBitsToFloat(g + 0x7f000000);
        float s2 = Float.intBitsToFloat(e - g);
        if (Math.abs(n) > 192) return s1 * s1;
        return Math.fma(s2, j, s2) * s1;
    }

    // ---- matrix products: y[T, rows] = x[T, cols] · Wᵀ ----

    private float[] matmul(Matrix w, float[] x, int T) {
        int rows = w.rows, cols = w.cols;
        float[] y = new float[T * rows];
        boolean tiny = T >= 2 && rows % 4 == 0;   // llamafile_sgemm's conditions (and k % 8 for float rows)
        switch (w.type) {
            case Q4_0, Q8_0, Q5_0, IQ4_NL -> {
                int nb = cols / 32;
                // where tinyBLAS declines (rows not a multiple of 4: a vocabulary of 259 as the tied output), ggml's
                // vec_dot: for Q8_0 and Q5_0 the same single 8-lane accumulator; IQ4_NL's alternates two by block
                boolean pairs = !tiny && w.type == GgmlType.IQ4_NL;
                if (pairs && nb % 2 != 0) {
                    throw new LongspanException("tensor '" + w.name + "': an IQ4_NL row of an odd number of blocks in ggml's vec_dot path is not replicated");
                }
                int[] xq = new int[T * cols];
                float[] xd = new float[T * nb];
                for (int t = 0; t < T; t++) for (int b = 0; b < nb; b++) quantizeQ8(x, t * cols + 32 * b, xq, xd, t * nb + b);
                Parallel.forEachTask(rows, r -> {
                    int[] wq = new int[cols];
                    float[] wd = new float[nb];
                    decodeRow(w, r, wq, wd);
                    for (int t = 0; t < T; t++) {
                        y[t * rows + r] = w.repacked ? repackedDot(wq, wd, xq, t * cols, xd, t * nb, nb)
                                : pairs ? q0DotPairs(wq, wd, xq, t * cols, xd, t * nb, nb)
                                : LANES_SIMD ? GgmlLanes.q0Dot(wq, wd, xq, t * cols, xd, t * nb, nb) : q0Dot(wq, wd, xq, t * cols, xd, t * nb, nb);
                    }
                });
            }
            case F32, F16, BF16 -> {
                float[] xr = new float[T * cols];
                for (int i = 0; i < xr.length; i++) xr[i] = w.type == GgmlType.F16 ? f16(x[i]) : w.type == GgmlType.BF16 ? bf16(x[i]) : x[i];
                // AVX-512's BF16 tinyBLAS takes pairs (dpbf16) 32 elements a step
                boolean dp = w.type == GgmlType.BF16 && build == Build.AVX512;
                boolean lanes = tiny && cols % (dp ? 2 * L : L) == 0;
                Parallel.forEachTask(rows, r -> {
                    float[] wr = new float[cols];
                    dequantizeRow(w, r, wr, 0);
                    for (int t = 0; t < T; t++) {
                        y[t * rows + r] = dp ? (lanes ? pairDot(wr, xr, t * cols, cols) : vecDotBf16Pairs(wr, xr, t * cols, cols))
                                : lanes ? laneDot(wr, 0, xr, t * cols, cols, L)
                                : w.type == GgmlType.F32 ? vecDotF32(wr, 0, xr, t * cols, cols, L)
                                : w.type == GgmlType.BF16 ? vecDotBf16(wr, xr, t * cols, cols) : vecDotRounded(wr, 0, xr, t * cols, cols, L);
                    }
                });
            }
            case Q4_1, Q5_1 -> {
                // no tinyBLAS for these either: ggml_vec_dot_q4_1_q8_1 / q5_1 (AVX2) against activations rounded to Q8_1
                int nb = cols / 32;
                int[] xq = new int[T * cols];
                float[] xd = new float[T * nb], xs = new float[T * nb];
                for (int t = 0; t < T; t++) for (int b = 0; b < nb; b++) xs[t * nb + b] = quantizeQ8(x, t * cols + 32 * b, xq, xd, t * nb + b);
                Parallel.forEachTask(rows, r -> {
                    int[] wq = new int[cols];
                    float[] wd = new float[nb], wm = new float[nb];
                    decodeRow(w, r, wq, wd, wm);
                    for (int t = 0; t < T; t++) y[t * rows + r] = q1Dot(wq, wd, wm, xq, t * cols, xd, xs, t * nb, nb);
                });
            }
            case Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS -> {
                // no tinyBLAS for K-quants in this llama.cpp: ggml_vec_dot_qN_K_q8_K (AVX2) per output
                int nb = cols / 256;
                int[] xq = new int[T * cols], bs = new int[T * cols / 16];
                float[] xd = new float[T * nb];
                for (int t = 0; t < T; t++) for (int b = 0; b < nb; b++) quantizeQ8K(x, t * cols + 256 * b, xq, bs, xd, t * nb + b);
                Parallel.forEachTask(rows, r -> {
                    KRow kr = decodeK(w, r);
                    int[] wq = new int[cols];   // scale·value, m-major in every 32 elements as the activations are
                    for (int e = 0; e < cols; e++) wq[(e & ~31) + mMajor(e & 31)] = kr.scale[e] * kr.q[e];
                    int[] lane = new int[LANES];
                    for (int t = 0; t < T; t++) y[t * rows + r] = kDot(w.type, kr, wq, xq, t * cols, bs, t * cols / 16, xd, t * nb, nb, lane);
                });
            }
            default -> throw new IllegalStateException(w.type.toString());
        }
        return y;
    }

    /** A K-quant row: per element its integer value and its sub-block scale; per super-block d, dmin; per sub-block the min (32 elements; Q2_K 16). */
    private record KRow(int[] q, int[] scale, int[] min, float[] d, float[] dmin) {}

    // quantize_row_q8_K (ggml's reference, which x86 uses): the signed value of largest magnitude max (the first such),
    // iscale = -127/max, q = min(127, round-half-even(iscale·x)), d = 1/iscale unrounded; quants m-major in every 32
    // elements, and the sums of every 16 (ggml's bsums) at bs[xo / 16 ..]
    private static void quantizeQ8K(float[] x, int xo, int[] q, int[] bs, float[] d, int block) {
        float max = 0, amax = 0;
        for (int j = 0; j < 256; j++) { float ax = Math.abs(x[xo + j]); if (ax > amax) { amax = ax; max = x[xo + j]; } }
        float iscale = amax == 0 ? 0 : -127.f / max;
        for (int j = 0; j < 256; j++) {
            int v = amax == 0 ? 0 : Math.min(127, (int) Math.rint(iscale * x[xo + j]));
            q[xo + (j & ~31) + mMajor(j & 31)] = v;
            bs[xo / 16 + j / 16] += v;
        }
        d[block] = amax == 0 ? 0 : 1 / iscale;
    }

    // the AVX2 dots: lane k (of 8) sums scale·w·x over the bytes 4k..4k+3 of every 32 elements of a super-block, exactly
    // (wq = scale·w and x both m-major in every 32); acc_k = fma(d, lane_k, acc_k); then hsum, plus the minimums' term as
    // each type adds it (bs: the activations' sums of 16)
    private static float kDot(GgmlType type, KRow w, int[] wq, int[] xq, int xo, int[] bs, int bso, float[] xd, int xdo, int nb, int[] lane) {
        float[] acc = new float[LANES];
        float a0 = 0, a1 = 0, a2 = 0, a3 = 0, summs = 0f;
        for (int b = 0; b < nb; b++) {
            if (LANES_SIMD) GgmlLanes.kLanes(wq, xq, xo, 256 * b, lane); else kLanes(wq, xq, xo, 256 * b, lane);
            float d = xd[xdo + b] * w.d[b];
            int m0 = 16 * b, s0 = bso + 16 * b;
            if (type == GgmlType.Q2_K) {
                // the minimums first, into the same lanes: lane k gets mins 2k, 2k+1 times the sums of their 16 activations
                float dmin = -xd[xdo + b] * w.dmin[b];
                for (int k = 0; k < LANES; k++) {
                    int prod = w.min[m0 + 2 * k] * bs[s0 + 2 * k] + w.min[m0 + 2 * k + 1] * bs[s0 + 2 * k + 1];
                    acc[k] = Math.fma(dmin, (float) prod, acc[k]);
                }
            }
            for (int k = 0; k < LANES; k++) acc[k] = Math.fma(d, (float) lane[k], acc[k]);
            if (type == GgmlType.Q4_K) {
                // mins 2k, 2k+1 times the sums of their 32 activations, in four float lanes
                float dmin = -xd[xdo + b] * w.dmin[b];
                a0 = Math.fma(dmin, (float) minProd(w, m0, bs, s0, 0), a0);
                a1 = Math.fma(dmin, (float) minProd(w, m0, bs, s0, 1), a1);
                a2 = Math.fma(dmin, (float) minProd(w, m0, bs, s0, 2), a2);
                a3 = Math.fma(dmin, (float) minProd(w, m0, bs, s0, 3), a3);
            } else if (type == GgmlType.Q5_K) {   // one integer sum per super-block, summs += dmin·sum (fused)
                float dmin = -xd[xdo + b] * w.dmin[b];
                int sum = 0;
                for (int g = 0; g < 8; g++) sum += w.min[m0 + g] * (bs[s0 + 2 * g] + bs[s0 + 2 * g + 1]);
                summs = Math.fma(dmin, (float) sum, summs);
            }
        }
        float s = hsum(acc);
        if (type == GgmlType.Q4_K) return s + ((a0 + a2) + (a1 + a3));
        if (type == GgmlType.Q5_K) return s + summs;
        return s;
    }

    // Q4_K's min term for float lane k: mins 2k and 2k+1 (of 32 elements each) times their activations' sums
    private static int minProd(KRow w, int m0, int[] bs, int s0, int k) {
        return w.min[m0 + 2 * k] * (bs[s0 + 4 * k] + bs[s0 + 4 * k + 1]) + w.min[m0 + 2 * k + 1] * (bs[s0 + 4 * k + 2] + bs[s0 + 4 * k + 3]);
    }

    // scalar twin of GgmlLanes.kLanes: lane[k] = Σ over the super-block's 32 groups of m-major 4 products at 8m + k
    static void kLanes(int[] w, int[] x, int xo, int o, int[] lane) {
        for (int k = 0; k < LANES; k++) {
            int sum = 0;
            for (int g = 0; g < 256; g += 8) sum += w[o + g + k] * x[xo + o + g + k];
            lane[k] = sum;
        }
    }

    // get_scale_min_k4: the 6-bit scale and min of sub-block j from the 12 packed bytes at o
    private static int scaleK4(MemorySegment m, long o, int j, boolean min) {
        int b = j < 4 ? (m.get(ValueLayout.JAVA_BYTE, o + j + (min ? 4 : 0)) & 63)
                : min ? ((m.get(ValueLayout.JAVA_BYTE, o + j + 4) & 0xFF) >>> 4) | (((m.get(ValueLayout.JAVA_BYTE, o + j) & 0xFF) >>> 6) << 4)
                : (m.get(ValueLayout.JAVA_BYTE, o + j + 4) & 0xF) | (((m.get(ValueLayout.JAVA_BYTE, o + j - 4) & 0xFF) >>> 6) << 4);
        return b;
    }

    private static int u8(MemorySegment m, long o) { return m.get(ValueLayout.JAVA_BYTE, o) & 0xFF; }

    private static KRow decodeK(Matrix w, int r) {
        int n = w.cols, nb = n / 256;
        int[] q = new int[n], scale = new int[n], min = new int[n / 16];
        float[] d = new float[nb], dmin = new float[nb];
        long at = w.offset + w.rowBytes() * r;
        for (int b = 0; b < nb; b++) {
            long o = at + (long) w.type.typeSize * b;
            int e0 = 256 * b;
            switch (w.type) {
                case Q4_K, Q5_K -> {
                    d[b] = Float.float16ToFloat(w.data.get(LE_SHORT, o));
                    dmin[b] = Float.float16ToFloat(w.data.get(LE_SHORT, o + 2));
                    long qh = o + 16, qs = w.type == GgmlType.Q5_K ? o + 48 : o + 16;
                    for (int j = 0; j < 4; j++) {
                        for (int h = 0; h < 2; h++) {
                            int sub = 2 * j + h, sc = scaleK4(w.data, o + 4, sub, false);
                            min[16 * b + sub] = scaleK4(w.data, o + 4, sub, true);
                            for (int l = 0; l < 32; l++) {
                                int byteQ = u8(w.data, qs + 32 * j + l);
                                int v = h == 0 ? byteQ & 0xF : byteQ >>> 4;
                                if (w.type == GgmlType.Q5_K) v += ((u8(w.data, qh + l) >>> sub) & 1) << 4;
                                q[e0 + 64 * j + 32 * h + l] = v;
                                scale[e0 + 64 * j + 32 * h + l] = sc;
                            }
                        }
                    }
                }
                case Q2_K -> {
                    // u8 scales[16] (low nibble scale, high nibble min); u8 qs[64]; half d, dmin
                    d[b] = Float.float16ToFloat(w.data.get(LE_SHORT, o + 80));
                    dmin[b] = Float.float16ToFloat(w.data.get(LE_SHORT, o + 82));
                    for (int i = 0; i < 16; i++) min[16 * b + i] = u8(w.data, o + i) >>> 4;
                    for (int half = 0; half < 2; half++) {
                        for (int g = 0; g < 4; g++) {
                            for (int l = 0; l < 32; l++) {
                                int e = e0 + 128 * half + 32 * g + l;
                                q[e] = (u8(w.data, o + 16 + 32 * half + l) >>> (2 * g)) & 3;
                                scale[e] = u8(w.data, o + 8 * half + 2 * g + l / 16) & 0xF;
                            }
                        }
                    }
                }
                case Q3_K -> {
                    // u8 hmask[32]; u8 qs[64]; u8 scales[12] (16 six-bit scales, offset 32); half d
                    d[b] = Float.float16ToFloat(w.data.get(LE_SHORT, o + 108));
                    int a0 = w.data.get(LE_INT, o + 96);
                    int a1 = w.data.get(LE_INT, o + 100);
                    int a2 = w.data.get(LE_INT, o + 104);
                    int k1 = 0x03030303, k2 = 0x0f0f0f0f;
                    int[] words = {(a0 & k2) | (((a2) & k1) << 4), (a1 & k2) | (((a2 >>> 2) & k1) << 4),
                            ((a0 >>> 4) & k2) | (((a2 >>> 4) & k1) << 4), ((a1 >>> 4) & k2) | (((a2 >>> 6) & k1) << 4)};
                    int[] sc16 = new int[16];
                    for (int i = 0; i < 16; i++) sc16[i] = ((words[i / 4] >>> (8 * (i % 4))) & 0xFF) - 32;
                    for (int half = 0; half < 2; half++) {
                        for (int g = 0; g < 4; g++) {
                            for (int l = 0; l < 32; l++) {
                                int e = e0 + 128 * half + 32 * g + l;
                                int hbit = (u8(w.data, o + l) >>> (4 * half + g)) & 1;
                                q[e] = ((u8(w.data, o + 32 + 32 * half + l) >>> (2 * g)) & 3) - (hbit != 0 ? 0 : 4);
                                scale[e] = sc16[8 * half + 2 * g + l / 16];
                            }
                        }
                    }
                }
                case IQ4_XS -> {
                    // half d; u16 scales_h; u8 scales_l[4]; u8 qs[128]: eight groups of 32, six-bit scales offset by 32,
                    // nibbles picking IQ4_NL's levels (low nibbles the group's first 16 elements)
                    d[b] = Float.float16ToFloat(w.data.get(LE_SHORT, o));
                    int sh = w.data.get(LE_SHORT, o + 2) & 0xFFFF;
                    for (int grp = 0; grp < 8; grp++) {
                        int ls = (((u8(w.data, o + 4 + grp / 2) >>> (4 * (grp % 2))) & 0xF) | (((sh >>> (2 * grp)) & 3) << 4)) - 32;
                        for (int j = 0; j < 16; j++) {
                            int v = u8(w.data, o + 8 + 16 * grp + j);
                            int e = e0 + 32 * grp + j;
                            q[e] = QuantKernels.IQ4_LEVELS[v & 0xF];
                            q[e + 16] = QuantKernels.IQ4_LEVELS[v >>> 4];
                            scale[e] = ls;
                            scale[e + 16] = ls;
                        }
                    }
                }
                case Q6_K -> {
                    long ql = o, qh = o + 128, sc = o + 192;
                    d[b] = Float.float16ToFloat(w.data.get(LE_SHORT, o + 208));
                    for (int half = 0; half < 2; half++) {
                        for (int l = 0; l < 32; l++) {
                            int h = u8(w.data, qh + 32 * half + l), lo = u8(w.data, ql + 64 * half + l), hi = u8(w.data, ql + 64 * half + l + 32);
                            int[] v = {(lo & 0xF) | ((h & 3) << 4), (hi & 0xF) | (((h >>> 2) & 3) << 4), (lo >>> 4) | (((h >>> 4) & 3) << 4), (hi >>> 4) | (((h >>> 6) & 3) << 4)};
                            for (int g = 0; g < 4; g++) {
                                int e = e0 + 128 * half + 32 * g + l;
                                q[e] = v[g] - 32;
                                scale[e] = w.data.get(ValueLayout.JAVA_BYTE, sc + 8 * half + 2 * g + l / 16);
                            }
                        }
                    }
                }
                default -> throw new IllegalStateException(w.type.toString());
            }
        }
        return new KRow(q, scale, min, d, dmin);
    }

    // one row as floats the way ggml-base's dequantize_row_* computes them (compiled without FMA: d·sc, then ·q, − min·m)
    private static void dequantizeRow(Matrix w, int r, float[] y, int yo) {
        switch (w.type) {
            case Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS -> {
                KRow k = decodeK(w, r);
                for (int e = 0; e < w.cols; e++) {
                    int b = e / 256;
                    switch (w.type) {
                        case Q6_K -> y[yo + e] = k.d[b] * k.scale[e] * k.q[e];
                        case Q3_K, IQ4_XS -> y[yo + e] = (k.d[b] * k.scale[e]) * k.q[e];
                        case Q2_K -> {
                            float dl = k.d[b] * k.scale[e], ml = k.dmin[b] * k.min[e / 16];
                            y[yo + e] = dl * k.q[e] - ml;
                        }
                        default -> {
                            float d1 = k.d[b] * k.scale[e], m1 = k.dmin[b] * k.min[16 * b + (e % 256) / 32];
                            y[yo + e] = d1 * k.q[e] - m1;
                        }
                    }
                }
            }
            case Q4_1, Q5_1 -> {
                int[] q = new int[w.cols];
                float[] d = new float[w.cols / 32], m = new float[w.cols / 32];
                decodeRow(w, r, q, d, m);
                for (int e = 0; e < w.cols; e++) y[yo + e] = q[(e & ~31) + mMajor(e & 31)] * d[e / 32] + m[e / 32];
            }
            default -> QuantKernels.dequantize(w.type, w.data, w.offset + w.rowBytes() * r, y, yo, w.cols);
        }
    }

    /** Whether the lane sums run on the Vector API ({@link GgmlLanes}): SIMD on and 256-bit vectors at least. */
    static final boolean LANES_SIMD = dev.longspan.kernel.Simd.ENABLED && dev.longspan.kernel.Simd.VECTOR_BITS >= 256;

    // tinyBLAS_Q0_AVX for one output (scalar twin of GgmlLanes.q0Dot): per block, lane i sums its four int8 products
    // (stored m-major: element 4i+m of the block at 8m+i) and accumulates dw·dx times that sum by a fused multiply-add
    static float q0Dot(int[] w, float[] wd, int[] x, int xo, float[] xd, int xdo, int nb) {
        float[] acc = new float[LANES];
        for (int b = 0; b < nb; b++) {
            float dd = wd[b] * xd[xdo + b];
            int o = 32 * b;
            for (int i = 0; i < LANES; i++) {
                acc[i] = Math.fma(dd, (float) laneSum(w, x, xo, o, i), acc[i]);
            }
        }
        return hsum(acc);
    }

    // lane i's four products of the block at o: elements 4i..4i+3, kept m-major at 8m + i
    private static int laneSum(int[] w, int[] x, int xo, int o, int i) {
        return w[o + i] * x[xo + o + i] + w[o + 8 + i] * x[xo + o + 8 + i] + w[o + 16 + i] * x[xo + o + 16 + i] + w[o + 24 + i] * x[xo + o + 24 + i];
    }

    // ggml_gemm_q4_0_8x8_q8_0 / ggml_gemv_q4_0_8x8_q8_0 (AVX2) on a repacked Q4_0 matrix: each output one float lane
    // that accumulates, block by block, the block's whole integer dot times dw·dx by a fused multiply-add (no lane sums)
    static float repackedDot(int[] w, float[] wd, int[] x, int xo, float[] xd, int xdo, int nb) {
        float acc = 0f;
        for (int b = 0; b < nb; b++) {
            int s = 0, o = 32 * b;
            for (int j = 0; j < 32; j++) s += w[o + j] * x[xo + o + j];
            acc = Math.fma((float) s, wd[b] * xd[xdo + b], acc);
        }
        return acc;
    }

    // ggml_vec_dot_iq4_nl_q8_0 (AVX2): even blocks into one accumulator, odd into another, added lane by lane before hsum
    static float q0DotPairs(int[] w, float[] wd, int[] x, int xo, float[] xd, int xdo, int nb) {
        float[] a1 = new float[LANES], a2 = new float[LANES];
        for (int b = 0; b < nb; b++) {
            float dd = xd[xdo + b] * wd[b];
            float[] acc = b % 2 == 0 ? a1 : a2;
            int o = 32 * b;
            for (int i = 0; i < LANES; i++) {
                acc[i] = Math.fma(dd, (float) laneSum(w, x, xo, o, i), acc[i]);
            }
        }
        for (int i = 0; i < LANES; i++) a1[i] = a1[i] + a2[i];
        return hsum(a1);
    }

    // tinyBLAS's tile arithmetic for one output: lane i (of L) accumulates a[i + Ls]·b[i + Ls] by fused multiply-adds, then hsum
    static float laneDot(float[] a, int ao, float[] b, int bo, int k, int L) {
        if (L == LANES && LANES_SIMD) return GgmlLanes.laneDot(a, ao, b, bo, k);
        return laneDotScalar(a, ao, b, bo, k, L);
    }

    static float laneDot(float[] a, int ao, float[] b, int bo, int k) { return laneDot(a, ao, b, bo, k, LANES); }

    static float laneDotScalar(float[] a, int ao, float[] b, int bo, int k) { return laneDotScalar(a, ao, b, bo, k, LANES); }

    static float laneDotScalar(float[] a, int ao, float[] b, int bo, int k, int L) {
        float[] acc = new float[L];
        for (int s = 0; s < k; s += L) {
            for (int i = 0; i < L; i++) acc[i] = Math.fma(a[ao + s + i], b[bo + s + i], acc[i]);
        }
        return hsum(acc, L);
    }

    // ggml_vec_dot's four L-lane accumulators over the first np (a multiple of 4L) products
    private static float[] laneSums(float[] a, int ao, float[] b, int bo, int np, int L) {
        float[] sum = new float[4 * L];
        for (int i = 0; i < np; i += 4 * L) {
            for (int j = 0; j < 4 * L; j++) sum[j] = Math.fma(a[ao + i + j], b[bo + i + j], sum[j]);
        }
        return sum;
    }

    // ggml_vec_dot_f16 on rows already rounded: four L-lane accumulators over steps of 4L, reduced, then the leftovers in double
    static float vecDotRounded(float[] a, int ao, float[] b, int bo, int k, int L) {
        int np = k & ~(4 * L - 1);
        float[] sum = laneSums(a, ao, b, bo, np, L);
        double s = reduce(sum, L);
        for (int i = np; i < k; i++) s += a[ao + i] * b[bo + i];
        return (float) s;
    }

    // ggml_vec_dot_f32: as vec_dot_f16 but the sum stays float and the leftovers are added in float
    static float vecDotF32(float[] a, int ao, float[] b, int bo, int k, int L) {
        int np = k & ~(4 * L - 1);
        float[] sum = laneSums(a, ao, b, bo, np, L);
        float s = reduce(sum, L);
        // the leftovers `sumf += x[i]*y[i]` as GCC vectorized them: L products at a time, then L/2, multiplied as a vector
        // and added one by one in order; the last few (under L/2) in the scalar loop, where the multiply-add is fused
        int i = np;
        for (; k - i >= L; i += L) for (int j = 0; j < L; j++) s += a[ao + i + j] * b[bo + i + j];
        if (k - i >= L / 2) for (int end = i + L / 2; i < end; i++) s += a[ao + i] * b[bo + i];
        for (; i < k; i++) s = Math.fma(a[ao + i], b[bo + i], s);
        return s;
    }

    // ggml_vec_dot_bf16 (AVX2): four 8-lane sums of exact products, combined (c1+c3)+(c2+c4), hsum, leftovers in double
    static float vecDotBf16(float[] a, float[] b, int bo, int k) {
        float[] c = new float[4 * LANES];
        int i = 0;
        for (; i + 4 * LANES <= k; i += 4 * LANES) {
            for (int j = 0; j < 4 * LANES; j++) c[j] = a[i + j] * b[bo + i + j] + c[j];
        }
        float[] lane = new float[LANES];
        for (int j = 0; j < LANES; j++) lane[j] = (c[j] + c[2 * LANES + j]) + (c[LANES + j] + c[3 * LANES + j]);
        double s = hsum(lane);
        for (; i < k; i++) s += a[i] * b[bo + i];
        return (float) s;
    }

    // _mm512_dpbf16_ps on one lane: the odd element's exact product added first, then the even one's, each sum rounded
    // (denormal inputs and results flushed to zero, as the instruction does)
    private static float dpbf16(float acc, float a0, float b0, float a1, float b1) {
        acc = ftz(ftz(acc) + ftz(a1) * ftz(b1));
        return ftz(acc + ftz(a0) * ftz(b0));
    }

    private static float ftz(float x) { return Math.abs(x) < Float.MIN_NORMAL ? Math.copySign(0f, x) : x; }

    // AVX-512 BF16 tinyBLAS (k a multiple of 32): lane i of 16 takes elements 2i, 2i+1 of every 32 by dpbf16; then hsum
    static float pairDot(float[] a, float[] b, int bo, int k) {
        float[] acc = new float[16];
        for (int s = 0; s < k; s += 32) {
            for (int i = 0; i < 16; i++) acc[i] = dpbf16(acc[i], a[s + 2 * i], b[bo + s + 2 * i], a[s + 2 * i + 1], b[bo + s + 2 * i + 1]);
        }
        return hsum(acc, 16);
    }

    // ggml_vec_dot_bf16 (AVX512BF16): two 16-lane dpbf16 accumulators over 64 elements a step, each reduced and added in
    // double, the leftovers' exact products in double
    static float vecDotBf16Pairs(float[] a, float[] b, int bo, int k) {
        float[] c1 = new float[16], c2 = new float[16];
        int i = 0;
        for (; i + 64 <= k; i += 64) {
            for (int l = 0; l < 16; l++) {
                c1[l] = dpbf16(c1[l], a[i + 2 * l], b[bo + i + 2 * l], a[i + 2 * l + 1], b[bo + i + 2 * l + 1]);
                c2[l] = dpbf16(c2[l], a[i + 32 + 2 * l], b[bo + i + 32 + 2 * l], a[i + 33 + 2 * l], b[bo + i + 33 + 2 * l]);
            }
        }
        double s = hsum(c1, 16);
        s += hsum(c2, 16);
        for (; i < k; i++) s += a[i] * b[bo + i];
        return (float) s;
    }

    /** ggml's horizontal sum of one 8-lane vector (sgemm.cpp's hsum, hsum_float_8): ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)). */
    static float hsum(float[] l) {
        float t0 = l[4] + l[0], t1 = l[5] + l[1], t2 = l[6] + l[2], t3 = l[7] + l[3];
        return (t0 + t2) + (t1 + t3);
    }

    /** The horizontal sum of L lanes: 8 as above; 16 as GCC's _mm512_reduce_add_ps, upper half onto lower, then as 8. */
    static float hsum(float[] l, int L) {
        if (L == LANES) return hsum(l);
        float[] h = new float[LANES];
        for (int i = 0; i < LANES; i++) h[i] = l[i + LANES] + l[i];
        return hsum(h);
    }

    /** GGML_F32x8_REDUCE of four 8-lane accumulators: (s0+s2)+(s1+s3), halves added, then two horizontal adds. */
    static float reduce(float[] s) { return reduce(s, LANES); }

    /** GGML_F32xL_REDUCE: (s0+s2)+(s1+s3) lane by lane; then AVX2's two horizontal adds, or AVX-512's reduce_add. */
    static float reduce(float[] s, int L) {
        float[] v = new float[L];
        for (int i = 0; i < L; i++) v[i] = (s[i] + s[2 * L + i]) + (s[L + i] + s[3 * L + i]);
        if (L != LANES) return hsum(v, L);
        float t0 = v[0] + v[4], t1 = v[1] + v[5], t2 = v[2] + v[6], t3 = v[3] + v[7];
        return (t0 + t1) + (t2 + t3);
    }

    // quantize_row_q8_0 (AVX2): d = amax/127 stored as fp16, q = round-half-even(x · 127/amax); quants m-major.
    // Returns Q8_1's s: fp16 of the unrounded d times the sum of the quants
    private static float quantizeQ8(float[] x, int xo, int[] q, float[] d, int block) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[xo + j]));
        float dd = amax / 127.f;
        d[block] = f16(dd);
        float id = amax != 0 ? 127.f / amax : 0f;
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            int v = (int) Math.rint(x[xo + j] * id);
            q[xo + mMajor(j)] = v;
            sum += v;
        }
        return f16(dd * sum);
    }

    // ggml_vec_dot_q4_1_q8_1 / q5_1 (AVX2): lanes as the Q0 dots with the scale dw·dx, and the minimum's term
    // summs += m·s (fused) added after the horizontal sum
    static float q1Dot(int[] w, float[] wd, float[] wm, int[] x, int xo, float[] xd, float[] xs, int xdo, int nb) {
        float[] acc = new float[LANES];
        float summs = 0f;
        for (int b = 0; b < nb; b++) {
            summs = Math.fma(wm[b], xs[xdo + b], summs);
            float dd = wd[b] * xd[xdo + b];
            int o = 32 * b;
            for (int i = 0; i < LANES; i++) {
                acc[i] = Math.fma(dd, (float) laneSum(w, x, xo, o, i), acc[i]);
            }
        }
        return hsum(acc) + summs;
    }

    // where element j of a block of 32 is kept: lane j/4's m-th product (m = j % 4) at 8m + lane
    private static int mMajor(int j) { return 8 * (j & 3) + (j >> 2); }

    // a Q4_1 / Q5_1 row: values m-major, per block the scale d and the minimum m
    private static void decodeRow(Matrix w, int r, int[] q, float[] d, float[] m) {
        long at = w.offset + w.rowBytes() * r;
        for (int b = 0; b < w.cols / 32; b++) {
            long o = at + (long) w.type.typeSize * b;
            d[b] = Float.float16ToFloat(w.data.get(LE_SHORT, o));
            m[b] = Float.float16ToFloat(w.data.get(LE_SHORT, o + 2));
            int qh = w.type == GgmlType.Q5_1 ? w.data.get(LE_INT, o + 4) : 0;
            long qs = o + (w.type == GgmlType.Q5_1 ? 8 : 4);
            for (int j = 0; j < 16; j++) {
                int v = w.data.get(ValueLayout.JAVA_BYTE, qs + j) & 0xFF;
                q[32 * b + mMajor(j)] = (v & 0x0F) | ((qh >>> j) & 1) << 4;
                q[32 * b + mMajor(j + 16)] = (v >>> 4) | ((qh >>> (j + 16)) & 1) << 4;
            }
        }
    }

    // one stored row as int8 values (m-major, as quantizeQ8 keeps them) and a float scale per block of 32
    private static void decodeRow(Matrix w, int r, int[] q, float[] d) {
        long at = w.offset + w.rowBytes() * r;
        int nb = w.cols / 32;
        for (int b = 0; b < nb; b++) {
            long o = at + (long) w.type.typeSize * b;
            d[b] = Float.float16ToFloat(w.data.get(LE_SHORT, o));
            switch (w.type) {
                case Q8_0 -> { for (int j = 0; j < 32; j++) q[32 * b + mMajor(j)] = w.data.get(ValueLayout.JAVA_BYTE, o + 2 + j); }
                case Q4_0 -> {
                    for (int j = 0; j < 16; j++) {
                        int qs = w.data.get(ValueLayout.JAVA_BYTE, o + 2 + j) & 0xFF;
                        q[32 * b + mMajor(j)] = (qs & 0x0F) - 8;
                        q[32 * b + mMajor(j + 16)] = (qs >>> 4) - 8;
                    }
                }
                case Q5_0 -> {
                    int qh = w.data.get(LE_INT, o + 2);
                    for (int j = 0; j < 16; j++) {
                        int qs = w.data.get(ValueLayout.JAVA_BYTE, o + 6 + j) & 0xFF;
                        q[32 * b + mMajor(j)] = ((qs & 0x0F) | ((qh >>> j) << 4 & 0x10)) - 16;
                        q[32 * b + mMajor(j + 16)] = ((qs >>> 4) | ((qh >>> (j + 12)) & 0x10)) - 16;
                    }
                }
                case IQ4_NL -> {
                    for (int j = 0; j < 16; j++) {
                        int qs = w.data.get(ValueLayout.JAVA_BYTE, o + 2 + j) & 0xFF;
                        q[32 * b + mMajor(j)] = QuantKernels.IQ4_LEVELS[qs & 0x0F];
                        q[32 * b + mMajor(j + 16)] = QuantKernels.IQ4_LEVELS[qs >>> 4];
                    }
                }
                default -> throw new IllegalStateException(w.type.toString());
            }
        }
    }

    static float f16(float x) { return Float.float16ToFloat(Float.floatToFloat16(x)); }

    // ggml_compute_fp32_to_bf16: round to nearest even on the high 16 bits, NaN kept quiet
    static float bf16(float x) {
        int u = Float.floatToRawIntBits(x);
        int h = (u & 0x7fffffff) > 0x7f800000 ? (u >>> 16) | 64 : (u + (0x7fff + ((u >>> 16) & 1))) >>> 16;
        return Float.intBitsToFloat(h << 16);
    }

    private static int roundUp(int n, int m) { return (n + m - 1) / m * m; }
}
