package dev.longspan.train;

import dev.longspan.tensor.Parallel;

/**
 * AdamW with decoupled weight decay (Loshchilov &amp; Hutter): over one flat parameter array.
 * <pre>
 *   m = b1·m + (1-b1)·g;  v = b2·v + (1-b2)·g²
 *   p -= lr · ( m̂ / (sqrt(v̂) + eps) + wd·p )   with m̂ = m/(1-b1^t), v̂ = v/(1-b2^t)
 * </pre>
 * Weight decay applies only where {@code decayMask} is true (matrices, not norms). Element-wise and
 * split into fixed chunks, so results do not depend on the thread count.
 */
public final class AdamW {
    public final float beta1, beta2, eps, weightDecay;
    public final float[] m, v;
    public long step;

    public AdamW(int size, float beta1, float beta2, float eps, float weightDecay) {
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.eps = eps;
        this.weightDecay = weightDecay;
        this.m = new float[size];
        this.v = new float[size];
    }

    // params, grads, decayMask: [n]
    public void update(float[] params, float[] grads, boolean[] decayMask, float lr) {
        step++;
        float bc1 = (float) (1 - Math.pow(beta1, step));
        float bc2 = (float) (1 - Math.pow(beta2, step));
        Parallel.forRange(0, params.length, (s, e) -> {
            for (int i = s; i < e; i++) {
                float g = grads[i];
                float mi = beta1 * m[i] + (1 - beta1) * g;
                float vi = beta2 * v[i] + (1 - beta2) * g * g;
                m[i] = mi;
                v[i] = vi;
                float upd = (mi / bc1) / ((float) Math.sqrt(vi / bc2) + eps);
                if (decayMask[i]) upd += weightDecay * params[i];
                params[i] -= lr * upd;
            }
        });
    }

    /** Scales gradients so their global L2 norm is at most maxNorm; returns the norm before clipping. */
    public static double clipGradNorm(float[] grads, double maxNorm) {
        double ss = 0;
        for (float g : grads) ss += (double) g * g;
        double norm = Math.sqrt(ss);
        if (maxNorm > 0 && norm > maxNorm) {
            float s = (float) (maxNorm / (norm + 1e-6));
            for (int i = 0; i < grads.length; i++) grads[i] *= s;
        }
        return norm;
    }
}
