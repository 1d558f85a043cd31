package dev.longspan.model;

import dev.longspan.kernel.Kernels;

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
    final DecoderLayer.Acts[] acts;   // one per layer, or a single shared one when recomputing
    // final norm / head
    final float[] xf, rstdf, logits, losses;
    // gradient scratch
    final float[] dx, dxf, dlogits;
    final DecoderLayer.Grads g;
    final GradientLayout layout;
    /** The gradients, laid out as {@link GradientLayout} says. */
    public final float[] grads;
    // positions of the sequence being run (read by the attention step)
    private long[] pos;
    private final DecoderLayer.Attend attend;

    public TrainingPass(Transformer m, int T, boolean recompute) {
        this(m, T, recompute, GradientLayout.all(m));
    }

    /** A pass that differentiates only what {@code layout} names ({@link #grads} in its layout). */
    public TrainingPass(Transformer m, int T, boolean recompute, GradientLayout layout) {
        this.m = m;
        this.layout = layout;
        this.c = m.config;
        this.T = T;
        this.recompute = recompute;
        int L = c.layers();
        ops = new LayerOps[L];
        for (int l = 0; l < L; l++) ops[l] = new LayerOps(c, l);
        attend = (l, a, n) -> ops[l].attentionForward(a.qh, a.kh, a.vh, n, pos, a.oh, a.lse);
        layerIn = new float[L + 1][T * c.dim()];
        acts = new DecoderLayer.Acts[recompute ? 1 : L];
        for (int i = 0; i < acts.length; i++) acts[i] = new DecoderLayer.Acts(c, T, true);
        xf = new float[T * c.dim()];
        rstdf = new float[T];
        logits = new float[T * c.vocabSize()];
        losses = new float[T];
        dx = new float[T * c.dim()];
        dxf = new float[T * c.dim()];
        dlogits = new float[T * c.vocabSize()];
        g = new DecoderLayer.Grads(c, T);
        grads = new float[layout.size()];
    }

    /**
     * Sequence parallelism: this pass's T rows are this process's part of a sequence of n
     * positions, and every layer's attention goes through {@code attention} (the positions passed
     * to forward and backward are then the rows' own, global positions).
     */
    public TrainingPass(Transformer m, int T, boolean recompute, ShardedAttention attention, int n) {
        this(m, T, recompute);
        for (LayerOps op : ops) {
            op.sharded = attention;
            op.shardedLength = n;
        }
    }

    private DecoderLayer.Acts acts(int l) { return acts[recompute ? 0 : l]; }

    /**
     * Forward over tokens[0..T) with positions pos[0..T); targets[t] is the token to predict after
     * position t (negative = not counted). Returns the summed loss and leaves the counted rows in
     * {@link #counted}.
     */
    public double forward(int[] tokens, int[] targets, long[] pos) {
        return forward(tokens, targets, pos, null);
    }

    /**
     * As {@link #forward(int[], int[], long[])} for rows that continue a sequence: {@code before}
     * holds the tokens before tokens[0], the last one just before (a sequence-parallel shard's
     * predecessors; null: none), which a token shift ({@link ModelConfig#tokenShift}) adds to the
     * first rows.
     */
    public double forward(int[] tokens, int[] targets, long[] pos, int[] before) {
        this.pos = pos;
        m.embed(layerIn[0], tokens, 0, T, before, before == null ? 0 : before.length);
        for (int l = 0; l < c.layers(); l++) {
            DecoderLayer.Acts a = acts(l);
            DecoderLayer.forward(m, l, layerIn[l], a.xMid, layerIn[l + 1], a, T, attend);
        }
        Kernels.rmsnormForward(xf, 0, rstdf, layerIn[c.layers()], 0, m.params, m.finalNorm, T, c.dim(), c.normEps());
        m.logits(logits, xf, T);
        counted = 0;
        for (int t = 0; t < T; t++) if (targets[t] >= 0) counted++;
        return Kernels.crossEntropyForward(losses, logits, targets, T, c.vocabSize());
    }

    /** Rows counted by the last forward. */
    public int counted;

    /**
     * Backward of the last forward: fills {@link #grads} (accumulating when {@code accumulate})
     * with d(lossScale · summed loss)/d(params).
     */
    public void backward(int[] tokens, int[] targets, long[] pos, float lossScale, boolean accumulate) {
        backward(tokens, targets, pos, lossScale, accumulate, null);
    }

    /** {@link #backward(int[], int[], long[], float, boolean)} after {@link #forward(int[], int[], long[], int[])} with the same {@code before}. */
    public void backward(int[] tokens, int[] targets, long[] pos, float lossScale, boolean accumulate, int[] before) {
        this.pos = pos;
        if (!accumulate) Arrays.fill(grads, 0f);
        int d = c.dim(), V = c.vocabSize();
        // loss → logits → head and final norm
        Kernels.crossEntropyBackward(dlogits, logits, targets, T, V, lossScale);
        DecoderLayer.linearBackward(m.head, dxf, false, dlogits, xf, T, grads, layout);  // dxf = dlogits·head, dHead += dlogitsᵀ·xf
        Arrays.fill(dx, 0f);
        float[] dwf = g.dw(d);
        Kernels.rmsnormBackward(dx, dwf, dxf, layerIn[c.layers()], m.params, m.finalNorm, rstdf, T, d);
        DecoderLayer.addGrad(dwf, grads, layout.of(m.finalNorm), d);
        for (int l = c.layers() - 1; l >= 0; l--) {
            DecoderLayer.Acts a = acts(l);
            if (recompute) DecoderLayer.forward(m, l, layerIn[l], a.xMid, null, a, T, attend);
            // dx: grad of the layer's output in, grad of its input out
            DecoderLayer.backward(m, l, layerIn[l], a, g, dx, grads, layout, T, ops[l], pos);
        }
        // embedding
        int emb = layout.of(m.tokEmb);
        if (emb >= 0) for (int t = 0; t < T; t++) Kernels.axpy(1f, dx, t * d, grads, emb + tokens[t] * d, d);
        for (int s = 1; s <= m.prevEmbs.length; s++) {
            m.embedPrevBackward(grads, layout.of(m.prevEmbs[s - 1]), s, dx, tokens, T, before, before == null ? 0 : before.length);
        }
    }
}
