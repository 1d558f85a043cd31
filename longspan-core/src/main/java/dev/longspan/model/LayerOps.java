package dev.longspan.model;

import dev.longspan.kernel.Kernels;
import dev.longspan.position.Rope;
import dev.longspan.position.RopeConfig;

/**
 * RoPE and attention of one layer, bound to the layer's pattern and the model's RoPE config.
 * INTERIM: dense causal attention written inline until the attention engine lands; then this
 * class only delegates to it.
 */
final class LayerOps {
    final ModelConfig c;
    final int layer;
    final Rope rope;

    LayerOps(ModelConfig c, int layer) {
        this.c = c;
        this.layer = layer;
        this.rope = new Rope(RopeConfig.fromSpec(c.rope(), c.headDim()));
        if (rope.headDim() != c.headDim()) {
            throw new dev.longspan.util.LongspanException("rope: head_dim " + rope.headDim() + " differs from the model's head_dim " + c.headDim());
        }
    }

    void rotate(float[] x, int heads, int T, long[] pos, boolean inverse) {
        if (inverse) rope.backward(x, 0, heads, T, pos);
        else rope.forward(x, 0, heads, T, pos);
    }

    // q: [H,T,D], k, v: [Hkv,T,D] → o: [H,T,D], lse: [H,T]; rotates q and k in place
    void attentionForward(float[] q, float[] k, float[] v, int T, long[] pos, float[] o, float[] lse) {
        rotate(q, c.heads(), T, pos, false);
        rotate(k, c.kvHeads(), T, pos, false);
        int H = c.heads(), D = c.headDim(), grp = H / c.kvHeads();
        float scale = (float) (1 / Math.sqrt(D));
        float[] s = new float[T];
        for (int h = 0; h < H; h++) {
            int kvh = h / grp;
            for (int t = 0; t < T; t++) {
                for (int j = 0; j <= t; j++) s[j] = scale * Kernels.dot(q, (h * T + t) * D, k, (kvh * T + j) * D, D);
                float l = Kernels.logSumExp(s, 0, t + 1);
                lse[h * T + t] = l;
                java.util.Arrays.fill(o, (h * T + t) * D, (h * T + t + 1) * D, 0f);
                for (int j = 0; j <= t; j++) Kernels.axpy((float) Math.exp(s[j] - l), v, (kvh * T + j) * D, o, (h * T + t) * D, D);
            }
        }
    }

    // gradients of attentionForward w.r.t. the pre-rotation q, k and v (q, k here are rotated)
    void attentionBackward(float[] q, float[] k, float[] v, float[] o, float[] lse, float[] dO, int T, long[] pos,
                           float[] dq, float[] dk, float[] dv) {
        int H = c.heads(), D = c.headDim(), grp = H / c.kvHeads();
        float scale = (float) (1 / Math.sqrt(D));
        java.util.Arrays.fill(dq, 0f);
        java.util.Arrays.fill(dk, 0f);
        java.util.Arrays.fill(dv, 0f);
        for (int h = 0; h < H; h++) {
            int kvh = h / grp;
            for (int t = 0; t < T; t++) {
                int qo = (h * T + t) * D;
                float dd = Kernels.dot(dO, qo, o, qo, D);
                for (int j = 0; j <= t; j++) {
                    int ko = (kvh * T + j) * D;
                    float pj = (float) Math.exp(scale * Kernels.dot(q, qo, k, ko, D) - lse[h * T + t]);
                    float dp = Kernels.dot(dO, qo, v, ko, D);
                    float ds = pj * (dp - dd);
                    Kernels.axpy(pj, dO, qo, dv, ko, D);
                    Kernels.axpy(scale * ds, k, ko, dq, qo, D);
                    Kernels.axpy(scale * ds, q, qo, dk, ko, D);
                }
            }
        }
        rotate(dq, H, T, pos, true);
        rotate(dk, c.kvHeads(), T, pos, true);
    }

    // q: [H, T, D] at positions start..start+T-1 (rotated); caches: [Hkv, cap, D] holding 0..start+T-1
    void cachedAttention(float[] q, int T, int start, float[] kc, float[] vc, int cap, float[] o) {
        int H = c.heads(), D = c.headDim(), grp = H / c.kvHeads();
        float scale = (float) (1 / Math.sqrt(D));
        float[] s = new float[start + T];
        for (int h = 0; h < H; h++) {
            int kvh = h / grp;
            for (int t = 0; t < T; t++) {
                int n = start + t + 1, qo = (h * T + t) * D;
                for (int j = 0; j < n; j++) s[j] = scale * Kernels.dot(q, qo, kc, (kvh * cap + j) * D, D);
                float l = Kernels.logSumExp(s, 0, n);
                java.util.Arrays.fill(o, qo, qo + D, 0f);
                for (int j = 0; j < n; j++) Kernels.axpy((float) Math.exp(s[j] - l), vc, (kvh * cap + j) * D, o, qo, D);
            }
        }
    }
}
