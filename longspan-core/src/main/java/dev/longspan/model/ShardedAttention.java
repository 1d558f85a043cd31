package dev.longspan.model;

import dev.longspan.attention.Pattern;

/**
 * Attention over a sequence split across processes (sequence parallelism): this process holds only
 * the rows [start(n), start(n) + length(n)) of a sequence of n positions; everything else in a
 * layer is token-local. The core knows no transport; the MPI module implements this.
 */
public interface ShardedAttention {
    /** First position of this process's rows in a sequence of n. */
    int start(int n);

    /** How many rows of a sequence of n this process holds. */
    int length(int n);

    /**
     * One layer's attention: q [H, T, D], k, v [Hkv, T, D] (rotated) of this process's T rows of a
     * sequence of n → o [H, T, D], lse [H, T] (overwritten); the handle runs the backward.
     */
    Handle forward(Pattern pattern, float[] q, float[] k, float[] v, int heads, int kvHeads, int n, int d, float[] o, float[] lse);

    interface Handle {
        /** dq [H, T, D], dk, dv [Hkv, T, D] (overwritten) for the output gradient dO [H, T, D]. */
        void backward(float[] dO, float[] dq, float[] dk, float[] dv);
    }
}
