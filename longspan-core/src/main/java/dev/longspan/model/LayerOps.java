package dev.longspan.model;

import dev.longspan.attention.Attention;
import dev.longspan.attention.AttentionOptions;
import dev.longspan.attention.AttentionResult;
import dev.longspan.attention.KeyValues;
import dev.longspan.attention.Pattern;
import dev.longspan.attention.Plan;
import dev.longspan.attention.RegionSummaries;
import dev.longspan.attention.SelectedPositions;
import dev.longspan.position.Rope;
import dev.longspan.util.LongspanException;

import java.util.List;

/**
 * RoPE and attention of one layer, bound to the layer's pattern and the model's RoPE config:
 * training runs the attention engine over the whole sequence; incremental inference runs the same
 * engine from a chunk's queries to the KV cache (one plan of the pattern's key sets for both).
 */
final class LayerOps {
    final ModelConfig c;
    final int layer;
    final Rope rope;
    final Pattern pattern;
    private Plan plan;               // bound to the last sequence length
    private AttentionResult last;    // the last forward (its plan holds select-and-merge's selection)
    ShardedAttention sharded;        // sequence parallelism: this process holds part of the sequence (null: all of it)
    int shardedLength;               // the whole sequence's length then
    private ShardedAttention.Handle lastSharded;
    private final boolean moves;     // select-and-merge with pos=selected: rows move to new positions in the kernel

    LayerOps(ModelConfig c, int layer) {
        this.c = c;
        this.layer = layer;
        this.rope = new Rope(c.rope());
        this.pattern = c.attention().get(layer);
        this.moves = Plan.movesPositions(pattern);
        if (moves) {   // refused at load: a RoPE whose frequencies depend on the length
            try {
                RopePositions.of(rope, i -> i);
            } catch (LongspanException e) {
                throw new LongspanException("layer " + layer + ", attention '" + pattern.spec() + "': " + e.getMessage());
            }
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
        if (sharded != null) {
            lastSharded = sharded.forward(pattern, q, k, v, c.heads(), c.kvHeads(), shardedLength, c.headDim(), o, lse);
            return;
        }
        Plan p = plan(T);
        if (moves) {
            // pos=selected: sequence index i was rotated at pos[i]; one object per positions array, so
            // the kernel's per-worker rotations are not rebuilt every step
            if (trainingPos != pos) {
                trainingPos = pos;
                training = RopePositions.of(rope, i -> pos[(int) i]);
            }
            p.selectedPositions(training);
        }
        last = Attention.forward(q, k, v, c.headDim(), p, AttentionOptions.DEFAULT, o, lse);
    }

    // gradients of attentionForward w.r.t. the pre-rotation q, k and v (q, k here are rotated);
    // reuses the plan of the last forward of this layer (select-and-merge keeps its selection)
    void attentionBackward(float[] q, float[] k, float[] v, float[] o, float[] lse, float[] dO, int T, long[] pos,
                           float[] dq, float[] dk, float[] dv) {
        if (sharded != null) {
            lastSharded.backward(dO, dq, dk, dv);
            rotate(dq, c.heads(), T, pos, true);
            rotate(dk, c.kvHeads(), T, pos, true);
            return;
        }
        if (last == null || last.length() != T || last.o() != o) {
            throw new IllegalStateException("layer " + layer + ": backward without the matching forward");
        }
        Attention.backward(last, q, k, v, dO, dq, dk, dv);
        rotate(dq, c.heads(), T, pos, true);
        rotate(dk, c.kvHeads(), T, pos, true);
    }

    private Plan plan(int T) {
        if (plan == null || plan.length() != T) plan = Plan.of(pattern, T, c.heads(), c.kvHeads(), true);
        return plan;
    }

    private SelectedPositions inference;   // pos=selected at inference: sequence index i was rotated at position phase + i
    private long phase;

    void inferencePhase(long p) {
        if (p != phase) inference = null;
        phase = p;
    }
    private SelectedPositions training;    // ... in training: at trainingPos[i]
    private long[] trainingPos;

    /** How far back (in positions, the query included) this layer's pattern can reach; MAX_VALUE = all. */
    long reach() { return pattern.reach(); }

    /**
     * Inference: the rotated queries q [H, T, D] at positions start..start+T−1 against the KV cache
     * kv, which holds the last {@code ring} positions up to start+T−1 (the chunk's own included), and
     * select-and-merge's region summaries (one per term, already holding the chunk's keys) → o
     * [H, T, D], lse [H, T]. The same kernel and tile plan as the training forward, with the query
     * and key spans apart.
     */
    void attendCached(float[] q, int T, int start, KeyValues kv, int ring, List<RegionSummaries> summaries, float[] o, float[] lse) {
        int kBase = (int) Math.max(0, (long) start + T - ring);
        Plan p = Plan.of(pattern, c.heads(), c.kvHeads(), true, start, T, kBase, start + T - kBase, summaries);
        if (moves) p.selectedPositions(inference == null ? inference = RopePositions.of(rope, i -> i + phase) : inference);
        Attention.forward(q, kv, c.headDim(), p, AttentionOptions.DEFAULT, o, lse);
    }
}
