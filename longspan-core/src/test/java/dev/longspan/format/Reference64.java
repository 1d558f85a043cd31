package dev.longspan.format;

import dev.longspan.model.Transformer;
import java.util.function.Function;

/**
 * A plain float64 Llama-family forward pass for tests, independent of the Transformer code: its
 * own RMSNorm, RoPE (half or interleaved pairs), causal softmax attention with grouped KV heads,
 * SwiGLU, optional q/k/v biases and q/k head norms. Weights come by name from a lookup, as
 * [out, in] row-major matrices (the layout both GGUF and Hugging Face use).
 */
final class Reference64 {
    int vocab, dim, layers, heads, kvHeads, headDim, ffn, rot;
    double eps;
    boolean interleaved, qkvBias, qkNorm;
    double[] invFreq;            // rot/2 inverse frequencies
    Function<String, float[]> w; // tensor by name
    /** Applied to every key and value after RoPE, before attention (a KV cache's storage rounding); null: none. */
    java.util.function.DoubleUnaryOperator kvRound;
    // names: {emb, head, finalNorm} and per layer via layerName(l, key) with keys
    // attn_norm, q, k, v, o, ffn_norm, gate, up, down, bq, bk, bv, qn, kn
    String emb, head, finalNorm;
    java.util.function.BiFunction<Integer, String, String> layerName;

    static Reference64 gguf(Function<String, float[]> w) {
        Reference64 r = new Reference64();
        r.w = w;
        r.emb = "token_embd.weight";
        r.finalNorm = "output_norm.weight";
        r.head = "output.weight";
        r.layerName = (l, k) -> "blk." + l + "." + switch (k) {
            case "attn_norm" -> "attn_norm.weight";
            case "q" -> "attn_q.weight";
            case "k" -> "attn_k.weight";
            case "v" -> "attn_v.weight";
            case "o" -> "attn_output.weight";
            case "ffn_norm" -> "ffn_norm.weight";
            case "gate" -> "ffn_gate.weight";
            case "up" -> "ffn_up.weight";
            case "down" -> "ffn_down.weight";
            case "bq" -> "attn_q.bias";
            case "bk" -> "attn_k.bias";
            case "bv" -> "attn_v.bias";
            case "qn" -> "attn_q_norm.weight";
            case "kn" -> "attn_k_norm.weight";
            default -> throw new IllegalArgumentException(k);
        };
        return r;
    }

    static Reference64 hf(Function<String, float[]> w) {
        Reference64 r = new Reference64();
        r.w = w;
        r.emb = "model.embed_tokens.weight";
        r.finalNorm = "model.norm.weight";
        r.head = "lm_head.weight";
        r.layerName = (l, k) -> "model.layers." + l + "." + switch (k) {
            case "attn_norm" -> "input_layernorm.weight";
            case "q" -> "self_attn.q_proj.weight";
            case "k" -> "self_attn.k_proj.weight";
            case "v" -> "self_attn.v_proj.weight";
            case "o" -> "self_attn.o_proj.weight";
            case "ffn_norm" -> "post_attention_layernorm.weight";
            case "gate" -> "mlp.gate_proj.weight";
            case "up" -> "mlp.up_proj.weight";
            case "down" -> "mlp.down_proj.weight";
            case "bq" -> "self_attn.q_proj.bias";
            case "bk" -> "self_attn.k_proj.bias";
            case "bv" -> "self_attn.v_proj.bias";
            case "qn" -> "self_attn.q_norm.weight";
            case "kn" -> "self_attn.k_norm.weight";
            default -> throw new IllegalArgumentException(k);
        };
        return r;
    }

    /** IEEE half precision, round to nearest even (the value as float32 first, as the float32 forward holds it). */
    static double half(double x) {
        return Float.float16ToFloat(Float.floatToFloat16((float) x));
    }

    Reference64 plainRope(double base) {
        invFreq = new double[rot / 2];
        for (int i = 0; i < rot / 2; i++) invFreq[i] = Math.pow(base, -2.0 * i / rot);
        return this;
    }

    private float[] t(String name) {
        float[] a = w.apply(name);
        if (a == null) throw new IllegalArgumentException("reference: no tensor " + name);
        return a;
    }

    private float[] lt(int l, String k) { return t(layerName.apply(l, k)); }

    // y[out] = W[out, in] · x[in] (+ b)
    static double[] matvec(float[] W, double[] x, int out, float[] b) {
        int in = x.length;
        double[] y = new double[out];
        for (int o = 0; o < out; o++) {
            double s = b == null ? 0 : b[o];
            for (int i = 0; i < in; i++) s += (double) W[o * in + i] * x[i];
            y[o] = s;
        }
        return y;
    }

    static void rmsnorm(double[] x, int off, int n, float[] g, double eps) {
        double ss = 0;
        for (int i = 0; i < n; i++) ss += x[off + i] * x[off + i];
        double s = 1 / Math.sqrt(ss / n + eps);
        for (int i = 0; i < n; i++) x[off + i] = x[off + i] * s * g[i];
    }

    void rope(double[] v, int off, int pos) {
        for (int i = 0; i < rot / 2; i++) {
            int a = interleaved ? 2 * i : i, b = interleaved ? 2 * i + 1 : i + rot / 2;
            double ang = pos * invFreq[i], c = Math.cos(ang), s = Math.sin(ang);
            double x = v[off + a], y = v[off + b];
            v[off + a] = x * c - y * s;
            v[off + b] = x * s + y * c;
        }
    }

    /** Logits [T][vocab] for every position. */
    double[][] logits(int[] tokens) {
        int T = tokens.length, D = headDim, qd = heads * D, kd = kvHeads * D, grp = heads / kvHeads;
        double[][] x = new double[T][dim];
        float[] e = t(emb);
        for (int s = 0; s < T; s++) for (int i = 0; i < dim; i++) x[s][i] = e[tokens[s] * dim + i];
        for (int l = 0; l < layers; l++) {
            double[][] q = new double[T][], k = new double[T][], v = new double[T][];
            for (int s = 0; s < T; s++) {
                double[] xn = x[s].clone();
                rmsnorm(xn, 0, dim, lt(l, "attn_norm"), eps);
                q[s] = matvec(lt(l, "q"), xn, qd, qkvBias ? lt(l, "bq") : null);
                k[s] = matvec(lt(l, "k"), xn, kd, qkvBias ? lt(l, "bk") : null);
                v[s] = matvec(lt(l, "v"), xn, kd, qkvBias ? lt(l, "bv") : null);
                for (int h = 0; h < heads; h++) {
                    if (qkNorm) rmsnorm(q[s], h * D, D, lt(l, "qn"), eps);
                    rope(q[s], h * D, s);
                }
                for (int h = 0; h < kvHeads; h++) {
                    if (qkNorm) rmsnorm(k[s], h * D, D, lt(l, "kn"), eps);
                    rope(k[s], h * D, s);
                }
                if (kvRound != null) {
                    for (int i = 0; i < kd; i++) {
                        k[s][i] = kvRound.applyAsDouble(k[s][i]);
                        v[s][i] = kvRound.applyAsDouble(v[s][i]);
                    }
                }
            }
            for (int s = 0; s < T; s++) {
                double[] o = new double[qd];
                for (int h = 0; h < heads; h++) {
                    int kh = h / grp;
                    double[] sc = new double[s + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j <= s; j++) {
                        double d = 0;
                        for (int i = 0; i < D; i++) d += q[s][h * D + i] * k[j][kh * D + i];
                        sc[j] = d / Math.sqrt(D);
                        max = Math.max(max, sc[j]);
                    }
                    double z = 0;
                    for (int j = 0; j <= s; j++) { sc[j] = Math.exp(sc[j] - max); z += sc[j]; }
                    for (int j = 0; j <= s; j++) for (int i = 0; i < D; i++) o[h * D + i] += sc[j] / z * v[j][kh * D + i];
                }
                double[] ao = matvec(lt(l, "o"), o, dim, null);
                for (int i = 0; i < dim; i++) x[s][i] += ao[i];
                double[] xn = x[s].clone();
                rmsnorm(xn, 0, dim, lt(l, "ffn_norm"), eps);
                double[] g = matvec(lt(l, "gate"), xn, ffn, null), u = matvec(lt(l, "up"), xn, ffn, null);
                double[] hdn = new double[ffn];
                for (int i = 0; i < ffn; i++) hdn[i] = g[i] / (1 + Math.exp(-g[i])) * u[i];
                double[] dn = matvec(lt(l, "down"), hdn, dim, null);
                for (int i = 0; i < dim; i++) x[s][i] += dn[i];
            }
        }
        float[] hw = w.apply(head) != null ? t(head) : t(emb);
        double[][] out = new double[T][];
        for (int s = 0; s < T; s++) {
            double[] xn = x[s].clone();
            rmsnorm(xn, 0, dim, t(finalNorm), eps);
            out[s] = matvec(hw, xn, vocab, null);
        }
        return out;
    }

    /** max |a − b| over max |b| (the error relative to the logits' scale). */
    static double relError(float[] a, double[][] b) {
        double err = 0, scale = 0;
        int V = b[0].length;
        for (int s = 0; s < b.length; s++) {
            for (int i = 0; i < V; i++) {
                err = Math.max(err, Math.abs(a[s * V + i] - b[s][i]));
                scale = Math.max(scale, Math.abs(b[s][i]));
            }
        }
        return err / scale;
    }
}
