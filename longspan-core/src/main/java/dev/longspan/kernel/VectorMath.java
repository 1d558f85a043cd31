package dev.longspan.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * Lane reductions and exp with results that do not depend on the JIT tier.
 *
 * <p>Why: {@code reduceLanes(ADD)} may sum lanes in any order, and {@code lanewise(EXP)} is an
 * SVML intrinsic once compiled but a {@code Math.exp} loop before — so the same call gives
 * different bits in the interpreter, C1 and C2. Training must give the same loss curve to the
 * last bit after a restart (a fresh JVM), so every reduction here is a fixed tree of exact lane
 * operations and exp is a polynomial built from add/mul/fma, which IEEE defines exactly at every
 * tier. {@link ScalarKernels#exp} is the scalar twin with the same operations.
 *
 * <p>The attention kernel has its own variant ({@code attention.VectorTileOps.exp}): it only ever
 * sees arguments ≤ 0 and drops the two blends for the out-of-range lanes, which cost ~18 % of
 * the attention forward (C2 does not intrinsify {@code blend} there).
 */
public final class VectorMath {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int L = S.length();
    @SuppressWarnings("unchecked")
    private static final VectorShuffle<Float>[] HALVES = new VectorShuffle[Integer.numberOfTrailingZeros(L)];

    static {
        for (int k = L / 2, i = 0; k >= 1; k /= 2, i++) {
            final int kk = k;
            HALVES[i] = VectorShuffle.fromOp(S, j -> j ^ kk);
        }
    }

    private VectorMath() {}

    /**
     * The shuffles of {@link #sum}'s tree (lane j to lane j^k for k = L/2 … 1), for a kernel that
     * writes the tree out itself: {@code sum} takes a vector, and a helper taking a vector that C2
     * does not inline into a large caller runs boxed.
     */
    public static VectorShuffle<Float>[] halvingShuffles() {
        return HALVES.clone();
    }

    /**
     * Sum of lanes in a fixed order: a pairwise tree (lane j + lane j^k for k = L/2 … 1) for the
     * preferred species, lane 0 to lane n−1 for any other.
     */
    public static float sum(FloatVector v) {
        if (v.species() != S) {
            float r = 0f;
            for (int i = 0; i < v.length(); i++) r += v.lane(i);
            return r;
        }
        for (VectorShuffle<Float> s : HALVES) v = v.add(v.rearrange(s));
        return v.lane(0);
    }

    /** Max of lanes (max is exact, so any order gives the same result). */
    public static float max(FloatVector v) {
        return v.reduceLanes(VectorOperators.MAX);
    }

    // exp(x) = 2^n · e^r, n = round(x·log2 e), r = x − n·ln2 (two-part ln2), e^r by a degree-6 polynomial
    private static final float LOG2E = 1.44269504088896341f;
    private static final float LN2_HI = 0.693359375f;
    private static final float LN2_LO = -2.12194440e-4f;
    private static final float C2 = 0.5f, C3 = 1.6666666e-1f, C4 = 4.1666638e-2f, C5 = 8.3333457e-3f, C6 = 1.3888378e-3f, C7 = 1.9841270e-4f;
    static final float EXP_LO = ScalarKernels.EXP_LO, EXP_HI = ScalarKernels.EXP_HI;

    /** e^x per lane, within ~2 ulp for normal results; 0 below −87.3 (incl. −inf), +inf above 88.7; NaN stays NaN. */
    public static FloatVector exp(FloatVector x) {
        var under = x.compare(VectorOperators.LT, EXP_LO);
        var over = x.compare(VectorOperators.GT, EXP_HI);
        FloatVector xc = x.max(EXP_LO).min(EXP_HI);
        FloatVector n = roundHalfEven(xc.mul(LOG2E));
        FloatVector r = n.fma(FloatVector.broadcast(S, -LN2_HI), xc);
        r = n.fma(FloatVector.broadcast(S, -LN2_LO), r);
        FloatVector p = r.fma(FloatVector.broadcast(S, C7), FloatVector.broadcast(S, C6));
        p = p.fma(r, FloatVector.broadcast(S, C5));
        p = p.fma(r, FloatVector.broadcast(S, C4));
        p = p.fma(r, FloatVector.broadcast(S, C3));
        p = p.fma(r, FloatVector.broadcast(S, C2));
        p = p.fma(r, FloatVector.broadcast(S, 1f));
        p = p.fma(r, FloatVector.broadcast(S, 1f));
        // 2^n: n in [-126, 128]; split in two factors so that n = 128 and n = -126.. stay representable
        IntVector ni = (IntVector) n.convert(VectorOperators.F2I, 0);
        IntVector n1 = ni.lanewise(VectorOperators.ASHR, 1);
        IntVector n2 = ni.sub(n1);
        FloatVector s1 = n1.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        FloatVector s2 = n2.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        FloatVector res = p.mul(s1).mul(s2);
        res = res.blend(0f, under);
        res = res.blend(Float.POSITIVE_INFINITY, over);
        return res;
    }

    // round to nearest integer (ties to even) using the 1.5·2^23 trick; |v| < 2^22 here
    private static FloatVector roundHalfEven(FloatVector v) {
        final float magic = 12582912f; // 1.5 * 2^23
        return v.add(magic).sub(magic);
    }
}
