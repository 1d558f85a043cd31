package dev.longspan.model;

import dev.longspan.kernel.Kernels;
import dev.longspan.kernel.Matmul;

/**
 * One decoder layer, the only one there is: its forward serves training ({@link TrainingPass}),
 * chunked prefill and decoding ({@link InferenceSession}, a chunk of any size down to one token),
 * its backward training.
 *
 * <p>x → RMSNorm → q, k, v (biases, q/k head norms) → attention → xMid = x + o·Woᵀ → RMSNorm →
 * SwiGLU → out = xMid + h·W2ᵀ. Attention is the caller's ({@link Attend}): training runs the engine
 * over the whole sequence, inference attends to its KV cache. Matrices are applied through their
 * {@link Weight} (float32 slices, stored tensors, either with a LoRA adapter) and differentiated
 * by {@link #linearBackward} (a stored matrix only for its input, as a frozen base); norm weights and biases are read in place from the parameter array.
 */
final class DecoderLayer {
    private DecoderLayer() {}

    /**
     * Attention of layer {@code layer} over T rows: reads {@code a.qh} [H, T, D], {@code a.kh},
     * {@code a.vh} [Hkv, T, D] (before RoPE; it may rotate them in place) and writes {@code a.oh}
     * [H, T, D] (and {@code a.lse} [H, T] where backward needs it).
     */
    interface Attend { void attend(int layer, Acts a, int T); }

    /**
     * The activations of one layer for up to {@link #rows} tokens. Training keeps every one of them
     * for backward; inference ({@code forBackward} false) shares the two norms' outputs and needs no
     * xMid (the residual is updated in place).
     */
    static final class Acts {
        final int rows;
        final float[] xn1, rstd1, q, k, v, qh, kh, vh, oh, lse, o, xMid, xn2, rstd2, gate, up, h;
        final float[] qRaw, kRaw, rstdq, rstdk;   // q/k before the head norms (qkNorm only)

        Acts(ModelConfig c, int rows, boolean forBackward) {
            this.rows = rows;
            int T = rows;
            boolean n = c.qkNorm();
            qRaw = n ? new float[T * c.qDim()] : null; kRaw = n ? new float[T * c.kvDim()] : null;
            rstdq = n ? new float[T * c.heads()] : null; rstdk = n ? new float[T * c.kvHeads()] : null;
            xn1 = new float[T * c.dim()]; rstd1 = new float[T];
            q = new float[T * c.qDim()]; k = new float[T * c.kvDim()]; v = new float[T * c.kvDim()];
            qh = new float[T * c.qDim()]; kh = new float[T * c.kvDim()]; vh = new float[T * c.kvDim()];
            oh = new float[T * c.qDim()]; lse = new float[T * c.heads()]; o = new float[T * c.qDim()];
            xMid = forBackward ? new float[T * c.dim()] : null;
            xn2 = forBackward ? new float[T * c.dim()] : xn1;
            rstd2 = forBackward ? new float[T] : rstd1;
            gate = new float[T * c.ffnDim()]; up = new float[T * c.ffnDim()]; h = new float[T * c.ffnDim()];
        }
    }

    /** Gradient scratch of one layer for T tokens (shared by every layer of a pass). */
    static final class Grads {
        final float[] dxMid, dh, dgate, dup, dxn, dO, dOh, dqh, dkh, dvh, dq, dk, dv;
        final float[] dRaw;   // grad of the raw q or k heads (qkNorm only)
        final float[] dw;     // one RMSNorm weight's gradient before it is added to the model's

        Grads(ModelConfig c, int T) {
            dxMid = new float[T * c.dim()]; dh = new float[T * c.ffnDim()];
            dgate = new float[T * c.ffnDim()]; dup = new float[T * c.ffnDim()]; dxn = new float[T * c.dim()];
            dO = new float[T * c.qDim()]; dOh = new float[T * c.qDim()];
            dqh = new float[T * c.qDim()]; dkh = new float[T * c.kvDim()]; dvh = new float[T * c.kvDim()];
            dq = new float[T * c.qDim()]; dk = new float[T * c.kvDim()]; dv = new float[T * c.kvDim()];
            dRaw = c.qkNorm() ? new float[T * Math.max(c.qDim(), c.kvDim())] : null;
            dw = new float[Math.max(c.dim(), c.headDim())];
        }

        // the weight-gradient buffer of one RMSNorm backward, zeroed
        float[] dw(int n) {
            java.util.Arrays.fill(dw, 0, n, 0f);
            return dw;
        }
    }

    /**
     * Layer l over x [T, dim]: fills {@code a}; xMid = x + attention output, out = xMid + FFN output.
     * xMid may be x and out may be xMid (inference updates the residual in place); a null out stops
     * before the down projection (backward recomputing the activations needs nothing more).
     */
    static void forward(Transformer m, int l, float[] x, float[] xMid, float[] out, Acts a, int T, Attend attend) {
        ModelConfig c = m.config;
        int d = c.dim(), H = c.heads(), Hkv = c.kvHeads(), D = c.headDim();
        float[] p = m.params;
        float eps = c.normEps();
        Kernels.rmsnormForward(a.xn1, 0, a.rstd1, x, 0, p, m.attnNorm[l], T, d, eps);
        // with head norms, q and k are projected into their raw buffers and normed from there
        float[] q = c.qkNorm() ? a.qRaw : a.q, k = c.qkNorm() ? a.kRaw : a.k;
        Weight.applyEach(a.xn1, 0, T, new Weight[]{m.qProj[l], m.kProj[l], m.vProj[l]}, new float[][]{q, k, a.v});
        if (c.qkvBias()) {
            m.addBias(q, m.bq[l], T, c.qDim());
            m.addBias(k, m.bk[l], T, c.kvDim());
            m.addBias(a.v, m.bv[l], T, c.kvDim());
        }
        if (c.qkNorm()) {   // RMSNorm over each head vector (Qwen3), before RoPE
            Kernels.rmsnormForward(a.q, 0, a.rstdq, a.qRaw, 0, p, m.qNorm[l], T * H, D, eps);
            Kernels.rmsnormForward(a.k, 0, a.rstdk, a.kRaw, 0, p, m.kNorm[l], T * Hkv, D, eps);
        }
        Transformer.toHeads(a.qh, a.q, T, H, D);
        Transformer.toHeads(a.kh, a.k, T, Hkv, D);
        Transformer.toHeads(a.vh, a.v, T, Hkv, D);
        attend.attend(l, a, T);
        Transformer.fromHeads(a.o, a.oh, T, H, D);
        if (xMid != x) System.arraycopy(x, 0, xMid, 0, T * d);
        m.oProj[l].apply(xMid, 0, a.o, 0, T, true);
        Kernels.rmsnormForward(a.xn2, 0, a.rstd2, xMid, 0, p, m.ffnNorm[l], T, d, eps);
        Weight.applyEach(a.xn2, 0, T, new Weight[]{m.gateProj[l], m.upProj[l]}, new float[][]{a.gate, a.up});
        Kernels.swigluForward(a.h, a.gate, a.up, T * c.ffnDim());
        if (out == null) return;
        if (out != xMid) System.arraycopy(xMid, 0, out, 0, T * d);
        m.downProj[l].apply(out, 0, a.h, 0, T, true);
    }

    /**
     * Backward of {@link #forward} (training, all of T rows; {@code a} holds the layer's forward on x,
     * attention run by {@code ops.attentionForward}): dx holds dLoss/d(layer output) on entry and
     * dLoss/d(x) on exit; the parameter gradients are added into grads.
     */
    static void backward(Transformer m, int l, float[] x, Acts a, Grads g, float[] dx, float[] grads, GradientLayout gl, int T, LayerOps ops, long[] pos) {
        ModelConfig c = m.config;
        int d = c.dim(), F = c.ffnDim(), H = c.heads(), Hkv = c.kvHeads(), D = c.headDim();
        float[] p = m.params;
        // out = xMid + h·W2ᵀ
        linearBackward(m.downProj[l], g.dh, false, dx, a.h, T, grads, gl);
        Kernels.swigluBackward(g.dgate, g.dup, g.dh, a.gate, a.up, T * F);
        linearBackward(m.gateProj[l], g.dxn, false, g.dgate, a.xn2, T, grads, gl);   // dxn2 = dgate·W1 + dup·W3
        linearBackward(m.upProj[l], g.dxn, true, g.dup, a.xn2, T, grads, gl);
        System.arraycopy(dx, 0, g.dxMid, 0, T * d);                                 // residual
        float[] dw = g.dw(d);
        Kernels.rmsnormBackward(g.dxMid, dw, g.dxn, a.xMid, p, m.ffnNorm[l], a.rstd2, T, d);
        addGrad(dw, grads, gl.of(m.ffnNorm[l]), d);
        // xMid = x + o·Woᵀ
        linearBackward(m.oProj[l], g.dO, false, g.dxMid, a.o, T, grads, gl);
        Transformer.toHeads(g.dOh, g.dO, T, H, D);
        ops.attentionBackward(a.qh, a.kh, a.vh, a.oh, a.lse, g.dOh, T, pos, g.dqh, g.dkh, g.dvh);
        Transformer.fromHeads(g.dq, g.dqh, T, H, D);
        Transformer.fromHeads(g.dk, g.dkh, T, Hkv, D);
        Transformer.fromHeads(g.dv, g.dvh, T, Hkv, D);
        if (c.qkNorm()) {
            headNormBackward(c, g, g.dq, a.qRaw, p, m.qNorm[l], a.rstdq, T * H, grads, gl.of(m.qNorm[l]));
            headNormBackward(c, g, g.dk, a.kRaw, p, m.kNorm[l], a.rstdk, T * Hkv, grads, gl.of(m.kNorm[l]));
        }
        if (c.qkvBias()) {
            biasBackward(g.dq, gl.of(m.bq[l]), T, c.qDim(), grads);
            biasBackward(g.dk, gl.of(m.bk[l]), T, c.kvDim(), grads);
            biasBackward(g.dv, gl.of(m.bv[l]), T, c.kvDim(), grads);
        }
        linearBackward(m.qProj[l], g.dxn, false, g.dq, a.xn1, T, grads, gl);
        linearBackward(m.kProj[l], g.dxn, true, g.dk, a.xn1, T, grads, gl);
        linearBackward(m.vProj[l], g.dxn, true, g.dv, a.xn1, T, grads, gl);
        System.arraycopy(g.dxMid, 0, dx, 0, T * d);
        dw = g.dw(d);
        Kernels.rmsnormBackward(dx, dw, g.dxn, x, p, m.attnNorm[l], a.rstd1, T, d);
        addGrad(dw, grads, gl.of(m.attnNorm[l]), d);
    }

    // grads[at ..] += dw[0 .. n); at -1: a frozen tensor
    static void addGrad(float[] dw, float[] grads, int at, int n) {
        if (at >= 0) Kernels.axpy(1f, dw, 0, grads, at, n);
    }

    /**
     * Backward of y[T, rows] = x[T, cols]·Wᵀ: dx[T, cols] (=, or += when accumulate) dy·W, and
     * dW += dyᵀ·x into grads where the layout puts W (nothing when W is frozen); an adapted matrix
     * has its base frozen and its adapter's gradients added instead.
     */
    static void linearBackward(Weight w, float[] dx, boolean accumulate, float[] dy, float[] x, int T, float[] grads, GradientLayout gl) {
        if (w instanceof Weight.Adapted a) {
            a.backward(dx, accumulate, dy, x, T, grads);
            return;
        }
        int at = w instanceof Weight.Dense dw ? gl.of(dw.offset()) : -1;
        w.applyTransposed(dx, 0, dy, 0, T, accumulate);
        if (at >= 0) Matmul.atB(grads, at, dy, 0, x, 0, w.rows(), w.cols(), T, true);
    }

    // dy [rows, D] (grad of the normed heads) → replaced by the grad of the raw heads; the norm weight's grad accumulated
    private static void headNormBackward(ModelConfig c, Grads g, float[] dy, float[] raw, float[] p, int wOff, float[] rstd, int rows, float[] grads, int at) {
        int D = c.headDim();
        float[] dRaw = g.dRaw, dw = g.dw(D);
        java.util.Arrays.fill(dRaw, 0, rows * D, 0f);
        Kernels.rmsnormBackward(dRaw, dw, dy, raw, p, wOff, rstd, rows, D);
        System.arraycopy(dRaw, 0, dy, 0, rows * D);
        addGrad(dw, grads, at, D);
    }

    // dBias[n] += column sums of dy [T, n], at `at` of grads (-1: frozen)
    private static void biasBackward(float[] dy, int at, int T, int n, float[] grads) {
        if (at >= 0) for (int t = 0; t < T; t++) Kernels.axpy(1f, dy, t * n, grads, at, n);
    }
}
