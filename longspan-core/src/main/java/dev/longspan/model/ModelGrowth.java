package dev.longspan.model;

import dev.longspan.position.Pairing;
import dev.longspan.position.Rope;
import dev.longspan.position.RopeConfig;
import dev.longspan.util.LongspanException;

import java.util.SplittableRandom;

/**
 * Growing a trained model for fine-tuning, so that the grown model starts as exactly the same
 * function and training then uses what was added (Net2Net-style): wider heads
 * ({@link #widenHeads}), more layers ({@link #insertLayers}) or a wider residual stream and MLP
 * ({@link #widenResidual}).
 *
 * <p>Wider heads: copies a model's weights into a config whose {@code head_dim} is m
 * times larger (m ≥ 2, everything else of the shape the same) so that the wider model computes
 * exactly what the narrow one did, then lets training use the new dimensions (Net2Net-style growth).
 *
 * <p>Why it is exact: with RoPE's inverse frequencies theta_i = base^(-2i/D), pair i of a head of
 * width D turns at the same rate as pair m·i of a head of width m·D, so each old q/k row goes to the
 * row of pair m·i (same layout: {@link Pairing}); the new q rows are zero, so the new key rows
 * (random) add nothing to q·k; q is scaled by sqrt(m) because the scores are divided by sqrt(m·D)
 * instead of sqrt(D). v keeps its old rows first and random new rows whose o-projection columns are
 * zero. Training then moves the zeros (q's new rows get gradient through the random key rows).
 *
 * <p>More layers: new layers are inserted before a given old layer with the usual random weights
 * except their output projections (attention's o and the MLP's down), which are zero, so each new
 * layer adds nothing to the residual stream until training moves them.
 *
 * <p>A wider residual stream (dim d → d') and MLP (ffn f → f'): every matrix keeps its old block;
 * what writes into the new residual dimensions is zero (the embedding's new columns, o's and down's
 * new rows), so they hold 0 at every layer; what reads them (q, k, v, gate, up, an untied head) gets
 * random new columns, which read those zeros, and the new MLP units random gate/up rows with zero
 * down columns. RMSNorm then divides by a mean square over d' that is d/d' of the old one, so every
 * norm gain is multiplied by sqrt(d/d'); the ε under the root becomes ε'·d'/d, so with the wider
 * config's norm_eps ε' = ε·d/d' it is exactly the same function (with ε' = ε, the same up to ε's
 * share of the mean square, logged). Training moves the zeros: the new columns of q/k/v/gate/up give the new
 * dimensions a gradient, and through them the embedding's new columns.
 */
public final class ModelGrowth {
    private ModelGrowth() {}

    /** The width multiple m that takes {@code from} to {@code to}, or 0 when {@code to} is not such a widening. */
    public static int widening(ModelConfig from, ModelConfig to) {
        if (from.vocabSize() != to.vocabSize() || from.dim() != to.dim() || from.layers() != to.layers()
                || from.heads() != to.heads() || from.kvHeads() != to.kvHeads() || from.ffnDim() != to.ffnDim()
                || from.tiedEmbeddings() != to.tiedEmbeddings()) return 0;
        if (to.headDim() <= from.headDim() || to.headDim() % from.headDim() != 0) return 0;
        return to.headDim() / from.headDim();
    }

    /** Refuses, in one line naming {@code what}, a widening that {@link #widenHeads} cannot make exact. */
    public static void checkWidening(ModelConfig a, ModelConfig b, String what) {
        int m = widening(a, b);
        if (m < 2) throw new LongspanException(what + ": head_dim " + a.headDim() + " cannot be widened to " + b.headDim()
                + " (a multiple of it, with every other size of the shape the same)");
        if (a.qkNorm() || b.qkNorm() || a.qkvBias() || b.qkvBias()) {
            throw new LongspanException(what + ": widening head_dim is supported without q/k norms and q/k/v biases");
        }
        RopeConfig ra = a.rope(), rb = b.rope();
        if (ra.rotaryDims() != a.headDim() || rb.rotaryDims() != b.headDim() || ra.pairing() != rb.pairing()) {
            throw new LongspanException(what + ": widening head_dim needs RoPE over the whole head, the same pairing in both");
        }
        checkFrequencies(new Rope(ra), new Rope(rb), m, what);
    }

    /**
     * Fills {@code dst}'s parameters from {@code src} (see the class comment); {@code what} names the
     * source in errors. New key and value rows are drawn N(0, 0.02) from {@code seed}.
     */
    public static void widenHeads(Transformer src, Transformer dst, long seed, String what) {
        ModelConfig a = src.config, b = dst.config;
        checkWidening(a, b, what);
        int m = widening(a, b);
        src.requireParams("widen");
        dst.requireParams("widen");

        // everything but the attention projections keeps its shape
        for (Transformer.Tensor t : src.tensors()) {
            if (t.name().contains(".self_attn.")) continue;
            Transformer.Tensor u = dst.tensor(t.name());
            System.arraycopy(src.params, t.offset(), dst.params, u.offset(), t.size());
        }
        int D = a.headDim(), Dw = b.headDim(), dim = a.dim();
        float qScale = (float) Math.sqrt(m);
        SplittableRandom rnd = new SplittableRandom(seed);
        for (int l = 0; l < a.layers(); l++) {
            // q: [heads·D, dim] → [heads·Dw, dim]; zero rows except each old row at its pair's new place
            java.util.Arrays.fill(dst.params, dst.wq[l], dst.wq[l] + a.heads() * Dw * dim, 0f);
            copyRows(src.params, src.wq[l], dst.params, dst.wq[l], a.heads(), D, Dw, dim, a.rope().pairing(), m, qScale);
            // k: random rows, the old ones at their pairs' new places
            fillRandom(dst.params, dst.wk[l], a.kvHeads() * Dw * dim, rnd);
            copyRows(src.params, src.wk[l], dst.params, dst.wk[l], a.kvHeads(), D, Dw, dim, a.rope().pairing(), m, 1f);
            // v: old rows first in each head, random rows after them
            fillRandom(dst.params, dst.wv[l], a.kvHeads() * Dw * dim, rnd);
            for (int h = 0; h < a.kvHeads(); h++) {
                System.arraycopy(src.params, src.wv[l] + h * D * dim, dst.params, dst.wv[l] + h * Dw * dim, D * dim);
            }
            // o: [dim, heads·D] → [dim, heads·Dw]; the new value dimensions' columns zero
            for (int r = 0; r < dim; r++) {
                for (int h = 0; h < a.heads(); h++) {
                    int so = src.wo[l] + r * a.heads() * D + h * D, dOff = dst.wo[l] + r * a.heads() * Dw + h * Dw;
                    System.arraycopy(src.params, so, dst.params, dOff, D);
                    java.util.Arrays.fill(dst.params, dOff + D, dOff + Dw, 0f);
                }
            }
        }
    }

    /** True when {@code to} widens {@code from}'s residual stream and/or MLP (neither narrower, one wider) with every other size the same. */
    public static boolean residualWidening(ModelConfig from, ModelConfig to) {
        if (from.vocabSize() != to.vocabSize() || from.layers() != to.layers() || from.heads() != to.heads()
                || from.kvHeads() != to.kvHeads() || from.headDim() != to.headDim() || from.tiedEmbeddings() != to.tiedEmbeddings()
                || from.qkNorm() != to.qkNorm() || from.qkvBias() != to.qkvBias()) return false;
        return to.dim() >= from.dim() && to.ffnDim() >= from.ffnDim() && (to.dim() > from.dim() || to.ffnDim() > from.ffnDim());
    }

    /**
     * Fills {@code dst} (the shape of {@code src} with a wider dim and/or ffn_dim) from {@code src}, as
     * the class comment says; new reading weights are drawn as {@link Transformer#initialize} draws them
     * from {@code seed}. {@code what} names the source in errors.
     */
    public static void widenResidual(Transformer src, Transformer dst, long seed, String what) {
        ModelConfig a = src.config, b = dst.config;
        if (!residualWidening(a, b)) {
            throw new LongspanException(what + ": dim " + a.dim() + " / ffn_dim " + a.ffnDim() + " cannot widen into dim " + b.dim()
                    + " / ffn_dim " + b.ffnDim() + " (neither smaller, every other size of the shape the same)");
        }
        src.requireParams("widen");
        dst.requireParams("widen");
        dst.initialize(seed);
        // every tensor's old block at its place: rows and columns keep their indices
        for (Transformer.Tensor t : src.tensors()) {
            Transformer.Tensor u = dst.tensor(t.name());
            if (t.shape().length == 1) {
                System.arraycopy(src.params, t.offset(), dst.params, u.offset(), t.size());
            } else {
                int rows = (int) t.shape()[0], cols = (int) t.shape()[1], wide = (int) u.shape()[1];
                for (int r = 0; r < rows; r++) System.arraycopy(src.params, t.offset() + r * cols, dst.params, u.offset() + r * wide, cols);
            }
        }
        int d = a.dim(), dw = b.dim(), f = a.ffnDim(), fw = b.ffnDim();
        // writers into the residual stream: nothing in the new dimensions
        zeroBlock(dst.params, dst.tokEmb, dw, 0, b.vocabSize(), d, dw);
        for (int l = 0; l < b.layers(); l++) {
            zeroBlock(dst.params, dst.wo[l], b.qDim(), d, dw, 0, b.qDim());
            zeroBlock(dst.params, dst.w2[l], fw, d, dw, 0, fw);      // new rows
            zeroBlock(dst.params, dst.w2[l], fw, 0, dw, f, fw);      // the new units' columns
        }
        // RMSNorm over dw dimensions of which dw − d are zero
        float g = (float) Math.sqrt((double) d / dw);
        for (int l = 0; l < b.layers(); l++) {
            scaleNorm(dst.params, dst.attnNorm[l], d, dw, g);
            scaleNorm(dst.params, dst.ffnNorm[l], d, dw, g);
        }
        scaleNorm(dst.params, dst.finalNorm, d, dw, g);
    }

    // zeroes rows [r0, r1) × columns [c0, c1) of a matrix of `cols` columns at off
    private static void zeroBlock(float[] p, int off, int cols, int r0, int r1, int c0, int c1) {
        for (int r = r0; r < r1; r++) java.util.Arrays.fill(p, off + r * cols + c0, off + r * cols + c1, 0f);
    }

    // a norm gain of dw entries: the d old ones and 1 for the new, all times g
    private static void scaleNorm(float[] p, int off, int d, int dw, float g) {
        for (int i = 0; i < dw; i++) p[off + i] = (i < d ? p[off + i] : 1f) * g;
    }

    /** The number of layers {@code to} adds to {@code from} with every other size the same, or 0. */
    public static int insertion(ModelConfig from, ModelConfig to) {
        if (from.vocabSize() != to.vocabSize() || from.dim() != to.dim() || from.heads() != to.heads()
                || from.kvHeads() != to.kvHeads() || from.headDim() != to.headDim() || from.ffnDim() != to.ffnDim()
                || from.tiedEmbeddings() != to.tiedEmbeddings() || from.qkNorm() != to.qkNorm() || from.qkvBias() != to.qkvBias()) return 0;
        return Math.max(0, to.layers() - from.layers());
    }

    /** Refuses, in one line naming {@code what}, an insertion of layers that {@link #insertLayers} cannot make. */
    public static void checkInsertion(ModelConfig a, ModelConfig b, int at, String what) {
        if (insertion(a, b) < 1) throw new LongspanException(what + ": " + a.layers() + " layers cannot grow into " + b.layers()
                + " (more layers, with every other size of the shape the same)");
        if (at < 0 || at > a.layers()) throw new LongspanException("--insert-layers-at " + at + " is outside 0.." + a.layers() + " (the layers of " + what + ")");
    }

    /**
     * Fills {@code dst} (the shape of {@code src} with more layers) from {@code src}: old layers 0..at-1
     * keep their places, old layers at.. move up by the number inserted, and the new layers at
     * at..at+n-1 get the initialisation of {@link Transformer#initialize} from {@code seed} with zero
     * output projections. {@code what} names the source in errors.
     */
    public static void insertLayers(Transformer src, Transformer dst, int at, long seed, String what) {
        ModelConfig a = src.config, b = dst.config;
        checkInsertion(a, b, at, what);
        int n = insertion(a, b);
        src.requireParams("grow");
        dst.requireParams("grow");
        dst.initialize(seed);
        String layer = "model.layers.";
        for (Transformer.Tensor t : src.tensors()) {
            String name = t.name();
            if (name.startsWith(layer)) {
                int dot = name.indexOf('.', layer.length());
                int l = Integer.parseInt(name.substring(layer.length(), dot));
                name = layer + (l < at ? l : l + n) + name.substring(dot);
            }
            Transformer.Tensor u = dst.tensor(name);
            System.arraycopy(src.params, t.offset(), dst.params, u.offset(), t.size());
        }
        for (int l = at; l < at + n; l++) {
            java.util.Arrays.fill(dst.params, dst.wo[l], dst.wo[l] + b.dim() * b.qDim(), 0f);
            java.util.Arrays.fill(dst.params, dst.w2[l], dst.w2[l] + b.dim() * b.ffnDim(), 0f);
        }
    }

    // rows of each head: old row first(i)/second(i) → new row first(m·i)/second(m·i)
    private static void copyRows(float[] s, int so, float[] d, int dOff, int heads, int D, int Dw, int dim,
                                 Pairing pairing, int m, float scale) {
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < D / 2; i++) {
                copyRow(s, so + (h * D + pairing.first(i, D)) * dim, d, dOff + (h * Dw + pairing.first(m * i, Dw)) * dim, dim, scale);
                copyRow(s, so + (h * D + pairing.second(i, D)) * dim, d, dOff + (h * Dw + pairing.second(m * i, Dw)) * dim, dim, scale);
            }
        }
    }

    private static void copyRow(float[] s, int so, float[] d, int dOff, int n, float scale) {
        for (int j = 0; j < n; j++) d[dOff + j] = s[so + j] * scale;
    }

    private static void fillRandom(float[] p, int off, int n, SplittableRandom rnd) {
        for (int i = 0; i < n; i++) p[off + i] = (float) (0.02 * Transformer.gaussian(rnd));
    }

    // the widened RoPE must turn pair m·i as the narrow one turns pair i, at short and long lengths
    private static void checkFrequencies(Rope narrow, Rope wide, int m, String what) {
        for (long len : new long[] {1, 1L << 12, 1L << 22}) {
            double[] fa = narrow.inverseFrequencies(len), fb = wide.inverseFrequencies(len);
            for (int i = 0; i < fa.length; i++) {
                if (Math.abs(fa[i] - fb[m * i]) > 1e-9 * Math.abs(fa[i])) {
                    throw new LongspanException(what + ": its RoPE frequencies do not carry over to head_dim " + wide.headDim()
                            + " (pair " + i + " turns at " + fa[i] + ", pair " + (m * i) + " of the wider head at " + fb[m * i]
                            + "); widening needs a kind whose frequencies depend on 2i/D only, such as rope or crd-ntk with factor 1");
                }
            }
        }
        if (narrow.rotationScale() != wide.rotationScale()) {
            throw new LongspanException(what + ": its RoPE attention factor changes with head_dim; cannot widen exactly");
        }
    }
}
