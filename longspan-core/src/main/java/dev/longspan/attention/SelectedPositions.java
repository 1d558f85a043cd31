package dev.longspan.attention;

import java.util.function.LongUnaryOperator;

/**
 * What the engine needs to run select-and-merge with {@code pos=selected}
 * ({@link Pattern.Positions#SELECTED}) on queries and keys that RoPE already rotated at their own
 * positions: the position RoPE rotated each sequence index at, and the rotation itself.
 *
 * <p>RoPE rotates the pair (x[first[i]], x[second[i]]) of a row by the angle pos·θ_i, and rotations
 * compose: a row rotated at position a is moved to position b by the rotation at b − a. So a key
 * or query is moved to its new position by one extra rotation, applied to the engine's copy of the
 * row in the kernel (and transposed in the backward): nothing is re-rotated in place.
 *
 * @param rotated   sequence index → the position its rows were rotated at (a CRD-NTK period
 *                  wraps it; training adds the step's offset)
 * @param invFreq   θ_i of the rotated pairs
 * @param first     first element of pair i in a head vector
 * @param second    second element of pair i
 */
public record SelectedPositions(LongUnaryOperator rotated, double[] invFreq, int[] first, int[] second) {
    public SelectedPositions {
        if (invFreq.length != first.length || first.length != second.length)
            throw new IllegalArgumentException("selected positions: " + invFreq.length + " frequencies, " + first.length + " and " + second.length + " pair indices");
    }

    /** The per-worker rotation by a position difference, cos/sin kept for the last difference. */
    static final class Rotator {
        private final SelectedPositions sp;
        private final float[] cos, sin;
        private long delta;

        Rotator(SelectedPositions sp) {
            this.sp = sp;
            cos = new float[sp.invFreq.length];
            sin = new float[sp.invFreq.length];
            cachedCos = new float[(1 << CACHE_BITS) * cos.length];
            cachedSin = new float[(1 << CACHE_BITS) * cos.length];
            java.util.Arrays.fill(cachedDelta, Long.MIN_VALUE);
            java.util.Arrays.fill(cos, 1f);          // delta 0: the identity
        }

        boolean serves(SelectedPositions other) { return sp == other; }

        // the rotation by delta positions (cos/sin recomputed only when delta changes, and then taken
        // from a small direct-mapped cache when this delta was seen lately: a row's regions move by a
        // few shifts that many rows share, and recomputing 2·D/2 sines and cosines per shift cost the
        // bundled language model 8 % of its 16K perplexity)
        Rotator set(long delta) {
            if (delta == this.delta) return this;
            this.delta = delta;
            int slot = (int) ((delta * 0x9E3779B97F4A7C15L) >>> (64 - CACHE_BITS)), h = cos.length;
            if (cachedDelta[slot] == delta) {
                System.arraycopy(cachedCos, slot * h, cos, 0, h);
                System.arraycopy(cachedSin, slot * h, sin, 0, h);
                return this;
            }
            for (int i = 0; i < h; i++) {
                double a = delta * sp.invFreq[i];
                cos[i] = (float) Math.cos(a);
                sin[i] = (float) Math.sin(a);
            }
            cachedDelta[slot] = delta;
            System.arraycopy(cos, 0, cachedCos, slot * h, h);
            System.arraycopy(sin, 0, cachedSin, slot * h, h);
            return this;
        }

        private static final int CACHE_BITS = 10;
        private final long[] cachedDelta = new long[1 << CACHE_BITS];     // Long.MIN_VALUE: an empty slot (no shift is)
        private final float[] cachedCos, cachedSin;

        /** Rotates the D-vector whose element c sits at x[off + c·stride]; inverse: by −delta. */
        void apply(float[] x, int off, int stride, boolean inverse) {
            if (delta == 0) return;
            for (int i = 0; i < cos.length; i++) {
                int a = off + sp.first[i] * stride, b = off + sp.second[i] * stride;
                float c = cos[i], s = inverse ? -sin[i] : sin[i], x0 = x[a], x1 = x[b];
                x[a] = x0 * c - x1 * s;
                x[b] = x0 * s + x1 * c;
            }
        }
    }
}
