package dev.longspan.model;

import dev.longspan.kernel.Kernels;
import dev.longspan.kernel.Matmul;

import java.util.Arrays;

/**
 * Forward and backward of a {@link Transformer} over one sequence of T tokens, for training.
 * Buffers are allocated once per (model, T); a step allocates nothing but what the attention
 * engine needs. With {@code recompute}, only each layer's input is kept and the layer's internals
 * are recomputed during backward (activation checkpointing per layer), so memory is
 * O(L·T·dim + one layer's activations) instead of O(L · everything).
 */
public final class TrainingPass {
    final Transformer m;
    final ModelConfig c;
    public final int T;
    final boolean recompute;
    final LayerOps[] ops;

    // residual stream: layerIn[l] is the input of layer l, layerIn[L] the input of the final norm
    final float[][] layerIn;
    final LayerActs[] acts;       // one per layer, or a single shared one when recomputing
    // final norm / head
    final float[] xf, rstdf, logits, losses;
    // gradient scratch
    final float[] dx, dxf, dlogits;
    final LayerGrads g;
    public final float[] grads;

    /** Activations of one layer. */
    static final class LayerActs {
        final float[] xn1, rstd1, q, k, v, qh, kh, vh, oh, lse, o, xMid, xn2, rstd2, gate, up, h;
        final float[] qRaw, kRaw, rstdq, rstdk;   // q/k before the head norms (qkNorm only)
        LayerActs(ModelConfig c, int T) {
            boolean n = c.qkNorm();
            qRaw = n ? new float[T * c.qDim()] : null; kRaw = n ? new float[T * c.kvDim()] : null;
            rstdq = n ? new float[T * c.heads()] : null; rstdk = n ? new float[T * c.kvHeads()] : null;
            xn1 = new float[T * c.dim()]; rstd1 = new float[T];
            q = new float[T * c.qDim()]; k = new float[T * c.kvDim()]; v = new float[T * c.kvDim()];
            qh = new float[T * c.qDim()]; kh = new float[T * c.kvDim()]; vh = new float[T * c.kvDim()];
            oh = new float[T * c.qDim()]; lse = new float[T * c.heads()]; o = new float[T * c.qDim()];
            xMid = new float[T * c.dim()]; xn2 = new float[T * c.dim()]; rstd2 = new float[T];
            gate = new float[T * c.ffnDim()]; up = new float[T * c.ffnDim()]; h = new float[T * c.ffnDim()];
        }
    }

    /** Gradient scratch of one layer (shared across layers). */
    static final class LayerGrads {
        final float[] dxMid, dh, dgate, dup, dxn, dO, dOh, dqh, dkh, dvh, dq, dk, dv;
        LayerGrads(ModelConfig c, int T) {
            dxMid = new float[T * c.dim()]; dh = new float[T * c.ffnDim()];
            dgate = new float[T * c.ffnDim()]; dup = new float[T * c.ffnDim()]; dxn = new float[T * c.dim()];
            dO = new float[T * c.qDim()]; dOh = new float[T * c.qDim()];
            dqh = new float[T * c.qDim()]; dkh = new float[T * c.kvDim()]; dvh = new float[T * c.kvDim()];
            dq = new float[T * c.qDim()]; dk = new float[T * c.kvDim()]; dv = new float[T * c.kvDim()];
        }
    }

    public TrainingPass(Transformer m, int T, boolean recompute) {
        this.m = m;
        this.c = m.config;
        this.T = T;
        this.recompute = recompute;
        int L = c.layers();
        ops = new LayerOps[L];
        for (int l = 0; l < L; l++) ops[l] = new LayerOps(c, l);
        layerIn = new float[L + 1][T * c.dim()];
        acts = new LayerActs[recompute ? 1 : L];
        for (int i = 0; i < acts.length; i++) acts[i] = new LayerActs(c, T);
        xf = new float[T * c.dim()];
        rstdf = new float[T];
        logits = new float[T * c.vocabSize()];
        losses = new float[T];
        dx = new float[T * c.dim()];
        dxf = new float[T * c.dim()];
        dlogits = new float[T * c.vocabSize()];
        g = new LayerGrads(c, T);
        grads = new float[m.params.length];
        normW = new float[Math.max(c.dim(), c.headDim())];
        normDw = new float[normW.length];
    }

    private LayerActs acts(int l) { return acts[recompute ? 0 : l]; }

    /**
     * Forward over tokens[0..T) with positions pos[0..T); targets[t] is the token to predict after
     * position t (negative = not counted). Returns the summed loss and leaves the counted rows in
     * {@link #counted}.
     */
    public double forward(int[] tokens, int[] targets, long[] pos) {
        m.embed(layerIn[0], tokens, 0, T);
        for (int l = 0; l < c.layers(); l++) {
            layerForward(l, layerIn[l], acts(l), pos);
            int n = T * c.dim();
            float[] out = layerIn[l + 1];
            LayerActs a = acts(l);
            // out = xMid + h·W2ᵀ
            System.arraycopy(a.xMid, 0, out, 0, n);
            Matmul.abT(out, 0, a.h, 0, m.params, m.w2[l], T, c.dim(), c.ffnDim(), true);
        }
        Kernels.rmsnormForward(xf, rstdf, layerIn[c.layers()], slice(m.finalNorm, c.dim()), T, c.dim(), c.normEps());
        m.logits(logits, xf, T);
        counted = 0;
        for (int t = 0; t < T; t++) if (targets[t] >= 0) counted++;
        return Kernels.crossEntropyForward(losses, logits, targets, T, c.vocabSize());
    }

    /** Rows counted by the last forward. */
    public int counted;

    // RMSNorm kernels take a weight array starting at 0: copy the norm weight into a buffer that
    // lives as long as the pass (used by one kernel call at a time), so a step allocates nothing
    private final float[] normW, normDw;
    private float[] headScratch;

    private float[] slice(int off, int n) {
        System.arraycopy(m.params, off, normW, 0, n);
        return normW;
    }

    // the weight-gradient buffer of one RMSNorm backward, zeroed
    private float[] dwBuffer(int n) {
        java.util.Arrays.fill(normDw, 0, n, 0f);
        return normDw;
    }

    // x: layer input [T, dim] → fills a up to h (the FFN hidden); xMid = x + attention output
    void layerForward(int l, float[] x, LayerActs a, long[] pos) {
        int d = c.dim(), H = c.heads(), Hkv = c.kvHeads(), D = c.headDim();
        float[] p = m.params;
        Kernels.rmsnormForward(a.xn1, a.rstd1, x, slice(m.attnNorm[l], d), T, d, c.normEps());
        Matmul.abT(a.q, 0, a.xn1, 0, p, m.wq[l], T, c.qDim(), d, false);
        Matmul.abT(a.k, 0, a.xn1, 0, p, m.wk[l], T, c.kvDim(), d, false);
        Matmul.abT(a.v, 0, a.xn1, 0, p, m.wv[l], T, c.kvDim(), d, false);
        if (c.qkvBias()) {
            m.addBias(a.q, m.bq[l], T, c.qDim());
            m.addBias(a.k, m.bk[l], T, c.kvDim());
            m.addBias(a.v, m.bv[l], T, c.kvDim());
        }
        if (c.qkNorm()) {   // RMSNorm over each head vector (Qwen3), before RoPE
            System.arraycopy(a.q, 0, a.qRaw, 0, a.q.length);
            System.arraycopy(a.k, 0, a.kRaw, 0, a.k.length);
            Kernels.rmsnormForward(a.q, a.rstdq, a.qRaw, slice(m.qNorm[l], D), T * H, D, c.normEps());
            Kernels.rmsnormForward(a.k, a.rstdk, a.kRaw, slice(m.kNorm[l], D), T * Hkv, D, c.normEps());
        }
        Transformer.toHeads(a.qh, a.q, T, H, D);
        Transformer.toHeads(a.kh, a.k, T, Hkv, D);
        Transformer.toHeads(a.vh, a.v, T, Hkv, D);
        ops[l].attentionForward(a.qh, a.kh, a.vh, T, pos, a.oh, a.lse);
        Transformer.fromHeads(a.o, a.oh, T, H, D);
        System.arraycopy(x, 0, a.xMid, 0, T * d);
        Matmul.abT(a.xMid, 0, a.o, 0, p, m.wo[l], T, d, c.qDim(), true);
        Kernels.rmsnormForward(a.xn2, a.rstd2, a.xMid, slice(m.ffnNorm[l], d), T, d, c.normEps());
        Matmul.abT(a.gate, 0, a.xn2, 0, p, m.w1[l], T, c.ffnDim(), d, false);
        Matmul.abT(a.up, 0, a.xn2, 0, p, m.w3[l], T, c.ffnDim(), d, false);
        Kernels.swigluForward(a.h, a.gate, a.up, T * c.ffnDim());
    }

    /**
     * Backward of the last forward: fills {@link #grads} (accumulating when {@code accumulate})
     * with d(lossScale · summed loss)/d(params).
     */
    public void backward(int[] tokens, int[] targets, long[] pos, float lossScale, boolean accumulate) {
        if (!accumulate) Arrays.fill(grads, 0f);
        int d = c.dim(), V = c.vocabSize();
        float[] p = m.params;
        // loss → logits → head and final norm
        Kernels.crossEntropyBackward(dlogits, logits, targets, T, V, lossScale);
        Arrays.fill(dxf, 0f);
        Matmul.ab(dxf, 0, dlogits, 0, p, m.lmHead, T, d, V, false);             // dxf[T,d] = dlogits[T,V]·head[V,d]
        Matmul.atB(grads, m.lmHead, dlogits, 0, xf, 0, V, d, T, true);          // dHead[V,d] += dlogitsᵀ·xf
        Arrays.fill(dx, 0f);
        float[] dwf = dwBuffer(d);
        Kernels.rmsnormBackward(dx, dwf, dxf, layerIn[c.layers()], slice(m.finalNorm, d), rstdf, T, d);
        Kernels.axpy(1f, dwf, 0, grads, m.finalNorm, d);
        for (int l = c.layers() - 1; l >= 0; l--) {
            LayerActs a = acts(l);
            if (recompute) layerForward(l, layerIn[l], a, pos);
            layerBackward(l, layerIn[l], a, pos);   // dx: grad of layer output in, grad of layer input out
        }
        // embedding
        for (int t = 0; t < T; t++) Kernels.axpy(1f, dx, t * d, grads, m.tokEmb + tokens[t] * d, d);
    }

    // dx holds dLoss/d(layer output) on entry and dLoss/d(layer input x) on exit
    void layerBackward(int l, float[] x, LayerActs a, long[] pos) {
        int d = c.dim(), F = c.ffnDim(), H = c.heads(), Hkv = c.kvHeads(), D = c.headDim();
        float[] p = m.params;
        // out = xMid + h·W2ᵀ
        Matmul.ab(g.dh, 0, dx, 0, p, m.w2[l], T, F, d, false);                    // dh[T,F] = dx[T,d]·W2[d,F]
        Matmul.atB(grads, m.w2[l], dx, 0, a.h, 0, d, F, T, true);                 // dW2[d,F] += dxᵀ·h
        Kernels.swigluBackward(g.dgate, g.dup, g.dh, a.gate, a.up, T * F);
        Matmul.ab(g.dxn, 0, g.dgate, 0, p, m.w1[l], T, d, F, false);               // dxn2 = dgate·W1 + dup·W3
        Matmul.ab(g.dxn, 0, g.dup, 0, p, m.w3[l], T, d, F, true);
        Matmul.atB(grads, m.w1[l], g.dgate, 0, a.xn2, 0, F, d, T, true);
        Matmul.atB(grads, m.w3[l], g.dup, 0, a.xn2, 0, F, d, T, true);
        System.arraycopy(dx, 0, g.dxMid, 0, T * d);                                  // residual
        float[] dw = dwBuffer(d);
        Kernels.rmsnormBackward(g.dxMid, dw, g.dxn, a.xMid, slice(m.ffnNorm[l], d), a.rstd2, T, d);
        Kernels.axpy(1f, dw, 0, grads, m.ffnNorm[l], d);
        // xMid = x + o·Woᵀ
        Matmul.ab(g.dO, 0, g.dxMid, 0, p, m.wo[l], T, c.qDim(), d, false);          // dO[T,qd] = dxMid·Wo[d,qd]
        Matmul.atB(grads, m.wo[l], g.dxMid, 0, a.o, 0, d, c.qDim(), T, true);       // dWo[d,qd] += dxMidᵀ·o
        Transformer.toHeads(g.dOh, g.dO, T, H, D);
        ops[l].attentionBackward(a.qh, a.kh, a.vh, a.oh, a.lse, g.dOh, T, pos, g.dqh, g.dkh, g.dvh);
        Transformer.fromHeads(g.dq, g.dqh, T, H, D);
        Transformer.fromHeads(g.dk, g.dkh, T, Hkv, D);
        Transformer.fromHeads(g.dv, g.dvh, T, Hkv, D);
        if (c.qkNorm()) {
            headNormBackward(g.dq, a.qRaw, m.qNorm[l], a.rstdq, T * H);
            headNormBackward(g.dk, a.kRaw, m.kNorm[l], a.rstdk, T * Hkv);
        }
        if (c.qkvBias()) {
            biasBackward(g.dq, m.bq[l], c.qDim());
            biasBackward(g.dk, m.bk[l], c.kvDim());
            biasBackward(g.dv, m.bv[l], c.kvDim());
        }
        Matmul.ab(g.dxn, 0, g.dq, 0, p, m.wq[l], T, d, c.qDim(), false);
        Matmul.ab(g.dxn, 0, g.dk, 0, p, m.wk[l], T, d, c.kvDim(), true);
        Matmul.ab(g.dxn, 0, g.dv, 0, p, m.wv[l], T, d, c.kvDim(), true);
        Matmul.atB(grads, m.wq[l], g.dq, 0, a.xn1, 0, c.qDim(), d, T, true);
        Matmul.atB(grads, m.wk[l], g.dk, 0, a.xn1, 0, c.kvDim(), d, T, true);
        Matmul.atB(grads, m.wv[l], g.dv, 0, a.xn1, 0, c.kvDim(), d, T, true);
        System.arraycopy(g.dxMid, 0, dx, 0, T * d);
        dw = dwBuffer(d);
        Kernels.rmsnormBackward(dx, dw, g.dxn, x, slice(m.attnNorm[l], d), a.rstd1, T, d);
        Kernels.axpy(1f, dw, 0, grads, m.attnNorm[l], d);
    }

    // dy [rows, D] (grad of the normed heads) → replaced by the grad of the raw heads; the norm weight's grad accumulated
    private void headNormBackward(float[] dy, float[] raw, int wOff, float[] rstd, int rows) {
        int D = c.headDim();
        if (headScratch == null || headScratch.length < rows * D) headScratch = new float[rows * D];
        float[] dRaw = headScratch, dw = dwBuffer(D);
        java.util.Arrays.fill(dRaw, 0, rows * D, 0f);
        Kernels.rmsnormBackward(dRaw, dw, dy, raw, slice(wOff, D), rstd, rows, D);
        System.arraycopy(dRaw, 0, dy, 0, rows * D);
        Kernels.axpy(1f, dw, 0, grads, wOff, D);
    }

    // dBias[n] += column sums of dy [T, n]
    private void biasBackward(float[] dy, int biasOff, int n) {
        for (int t = 0; t < T; t++) Kernels.axpy(1f, dy, t * n, grads, biasOff, n);
    }
}
