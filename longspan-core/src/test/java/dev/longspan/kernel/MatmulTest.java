package dev.longspan.kernel;

import dev.longspan.tensor.Parallel;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The three matrix products (and their accumulate forms) against the double-accumulating scalar
 * references, on shapes that are not multiples of any tile (1×1×1, m = 1 matvec, k = 1, odd sizes,
 * shapes larger than one cache block), with nonzero offsets, at 1 and 2 threads, with each
 * register tile ({@link Simd.Tiles}: the one this machine would not choose is forced, so both run
 * anywhere). Elements of C outside [co, co + m·n) must be untouched.
 */
class MatmulTest {
    static int savedThreads;

    @BeforeAll
    static void save() { savedThreads = Parallel.threads(); }

    @AfterAll
    static void restore() { Parallel.setThreads(savedThreads); }

    enum Op { AB_T, AB, AT_B }

    static Stream<Arguments> shapes() {
        List<int[]> mnk = new ArrayList<>(List.of(
                new int[]{1, 1, 1}, new int[]{1, 1, 7}, new int[]{1, 5, 1}, new int[]{3, 1, 1},
                new int[]{1, 1000, 33}, new int[]{1, 17, 300}, new int[]{2, 70, 129}, new int[]{5, 33, 17},
                new int[]{1000, 1, 7}, new int[]{300, 3, 65}, new int[]{6, 32, 16}, new int[]{7, 33, 1},
                new int[]{64, 64, 64}, new int[]{65, 63, 31}, new int[]{130, 64, 64}, new int[]{97, 130, 300},
                new int[]{200, 70, 513}, new int[]{33, 600, 129}, new int[]{16, 16, 1024}, new int[]{300, 300, 40}, new int[]{1, 43, 100}));
        SplittableRandom r = new SplittableRandom(2024);
        int[] dims = {1, 2, 3, 5, 6, 7, 8, 13, 15, 16, 17, 31, 32, 33, 47, 48, 49, 95, 97, 127};
        for (int i = 0; i < 12; i++) mnk.add(new int[]{dims[r.nextInt(dims.length)], dims[r.nextInt(dims.length)], dims[r.nextInt(dims.length)]});
        List<Arguments> out = new ArrayList<>();
        for (int[] s : mnk)
            for (Op op : Op.values())
                for (int threads : new int[]{1, 2})
                    for (Simd.Tiles tiles : Simd.Tiles.values()) out.add(Arguments.of(op, s[0], s[1], s[2], threads, tiles));
        return out.stream();
    }

    @ParameterizedTest(name = "{0} m={1} n={2} k={3} threads={4} {5}")
    @MethodSource("shapes")
    void matchesReference(Op op, int m, int n, int k, int threads, Simd.Tiles tiles) {
        Parallel.setThreads(threads);
        SplittableRandom r = new SplittableRandom(31L * m + 17L * n + k + op.ordinal());
        int ao = 3, bo = 11, co = 5;
        float[] a = random(r, ao + m * k + 4), b = random(r, bo + n * k + 2), c0 = random(r, co + m * n + 6);
        float[] absA = abs(a), absB = abs(b), absC = abs(c0);
        for (boolean acc : new boolean[]{false, true}) {
            float[] c = c0.clone(), ref = c0.clone(), bound = absC.clone();
            run(op, tiles, c, co, a, ao, b, bo, m, n, k, acc);
            run(op, true, ref, co, a, ao, b, bo, m, n, k, acc);
            run(op, true, bound, co, absA, ao, absB, bo, m, n, k, acc);
            for (int i = 0; i < c.length; i++) {
                if (i < co || i >= co + m * n) {
                    assertThat(c[i]).as("outside C at %d", i).isEqualTo(c0[i]);
                    continue;
                }
                // float error bound of a k(+1)-term sum: γ_{k+2} · Σ|terms|
                double tol = (k + 3) * 1.2e-7 * bound[i] + 1e-6;
                if (!(Math.abs(c[i] - ref[i]) <= tol)) {
                    int e = i - co;
                    throw new AssertionError(op + " acc=" + acc + " C[" + e / n + "," + e % n + "] = " + c[i] + ", expected " + ref[i] + " ± " + tol);
                }
            }
        }
    }

    /** The product through the Vector API kernels with the given tiles (through Matmul when scalar, where tiles do not apply). */
    static void run(Op op, Simd.Tiles tiles, float[] c, int co, float[] a, int ao, float[] b, int bo, int m, int n, int k, boolean acc) {
        if (!Simd.ENABLED) {
            run(op, false, c, co, a, ao, b, bo, m, n, k, acc);
            return;
        }
        switch (op) {
            case AB_T -> VectorMatmul.gemm(c, co, a, ao, false, b, bo, true, m, n, k, acc, tiles);
            case AB -> VectorMatmul.gemm(c, co, a, ao, false, b, bo, false, m, n, k, acc, tiles);
            case AT_B -> VectorMatmul.gemm(c, co, a, ao, true, b, bo, false, m, n, k, acc, tiles);
        }
    }

    static void run(Op op, boolean reference, float[] c, int co, float[] a, int ao, float[] b, int bo, int m, int n, int k, boolean acc) {
        switch (op) {
            case AB_T -> { if (reference) Matmul.abTReference(c, co, a, ao, b, bo, m, n, k, acc); else Matmul.abT(c, co, a, ao, b, bo, m, n, k, acc); }
            case AB -> { if (reference) Matmul.abReference(c, co, a, ao, b, bo, m, n, k, acc); else Matmul.ab(c, co, a, ao, b, bo, m, n, k, acc); }
            case AT_B -> { if (reference) Matmul.atBReference(c, co, a, ao, b, bo, m, n, k, acc); else Matmul.atB(c, co, a, ao, b, bo, m, n, k, acc); }
        }
    }

    static float[] random(SplittableRandom r, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) r.nextDouble(-1, 1);
        return x;
    }

    static float[] abs(float[] x) {
        float[] y = new float[x.length];
        for (int i = 0; i < x.length; i++) y[i] = Math.abs(x[i]);
        return y;
    }

    @ParameterizedTest(name = "scalar path m={0} n={1} k={2}")
    @org.junit.jupiter.params.provider.CsvSource({"1,1,1", "1,9,5", "7,3,17", "33,20,65"})
    void scalarPathsMatchReference(int m, int n, int k) {
        // the plain loops used when the Vector API is off (-Dlongspan.kernel=scalar)
        Parallel.setThreads(2);
        SplittableRandom r = new SplittableRandom(m * 7 + n * 3 + k);
        float[] a = random(r, 2 + m * k), b = random(r, 1 + n * k), c0 = random(r, 3 + m * n);
        for (boolean acc : new boolean[]{false, true}) {
            float[] c1 = c0.clone(), c2 = c0.clone(), c3 = c0.clone();
            float[] r1 = c0.clone(), r2 = c0.clone(), r3 = c0.clone();
            Matmul.scalarAbT(c1, 3, a, 2, b, 1, m, n, k, acc);
            Matmul.scalarAb(c2, 3, a, 2, b, 1, m, n, k, acc);
            Matmul.scalarAtB(c3, 3, a, 2, b, 1, m, n, k, acc);
            Matmul.abTReference(r1, 3, a, 2, b, 1, m, n, k, acc);
            Matmul.abReference(r2, 3, a, 2, b, 1, m, n, k, acc);
            Matmul.atBReference(r3, 3, a, 2, b, 1, m, n, k, acc);
            for (int i = 0; i < c1.length; i++) {
                assertThat((double) c1[i]).isCloseTo(r1[i], org.assertj.core.api.Assertions.within(1e-4));
                assertThat((double) c2[i]).isCloseTo(r2[i], org.assertj.core.api.Assertions.within(1e-4));
                assertThat((double) c3[i]).isCloseTo(r3[i], org.assertj.core.api.Assertions.within(1e-4));
            }
        }
    }

    @org.junit.jupiter.api.Test
    void zeroSizedProductsLeaveCAlone() {
        float[] c = {1, 2, 3};
        Matmul.abT(c, 0, new float[4], 0, new float[4], 0, 0, 3, 1, false);
        Matmul.ab(c, 0, new float[4], 0, new float[4], 0, 1, 0, 1, false);
        assertThat(c).containsExactly(1, 2, 3);
        // k = 0: C = 0 (or unchanged when accumulating)
        Matmul.atB(c, 0, new float[0], 0, new float[0], 0, 1, 3, 0, true);
        assertThat(c).containsExactly(1, 2, 3);
        Matmul.abT(c, 0, new float[0], 0, new float[0], 0, 1, 3, 0, false);
        assertThat(c).containsExactly(0, 0, 0);
    }

    static Stream<Arguments> largeShapes() {
        return Stream.of(Op.values()).flatMap(op -> Stream.of(Simd.Tiles.values()).map(t -> Arguments.of(op, t)));
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("largeShapes")
    void largeShapeAtTwoThreadsMatchesReference(Op op, Simd.Tiles tiles) {
        // large enough for several cache blocks in every dimension and the parallel path (for ab and
        // atB: B packed once for several row blocks; atB's A read transposed in place)
        Parallel.setThreads(2);
        int m = 150, n = 700, k = 700;
        SplittableRandom r = new SplittableRandom(5);
        float[] a = random(r, m * k), b = random(r, n * k), c = random(r, m * n), ref = c.clone();
        run(op, tiles, c, 0, a, 0, b, 0, m, n, k, true);
        run(op, true, ref, 0, a, 0, b, 0, m, n, k, true);
        for (int i = 0; i < c.length; i++) assertThat((double) c[i]).as("%s [%d]", op, i).isCloseTo(ref[i], org.assertj.core.api.Assertions.within(1e-3));
    }

    /**
     * The prefill's quantized-weight product: a panel of weight rows W [m, k] times activations X
     * [n, k] packed once ({@code packBT}) gives, transposed, exactly the bits of X·Wᵀ by abT — the same
     * products in the same order — on shapes around the tiles and the k blocks, at 1 and 2 threads.
     */
    @ParameterizedTest(name = "m={0} n={1} k={2} threads={3}")
    @org.junit.jupiter.params.provider.CsvSource({"1,8,7,1", "6,64,256,1", "7,65,257,2", "13,100,300,2", "128,512,96,2", "5,9,600,1", "130,17,513,2"})
    void packedActivationsGiveTheBitsOfAbT(int m, int n, int k, int threads) {
        org.junit.jupiter.api.Assumptions.assumeTrue(Simd.ENABLED, "the packed path is the vector GEMM's");
        Parallel.setThreads(threads);
        SplittableRandom r = new SplittableRandom(7L * m + 3L * n + k);
        float[] w = random(r, 2 + m * k), x = random(r, 5 + n * k), want = new float[n * m], ref = new float[n * m], got = new float[m * n + 3];
        Matmul.abT(want, 0, x, 5, w, 2, n, m, k, false);
        Matmul.abTReference(ref, 0, x, 5, w, 2, n, m, k, false);
        // abT runs the register-tiled kernel (rather than plain dot products) from L weight rows and MR activations
        boolean tiled = m >= VectorMatmul.lanes() && n >= VectorMatmul.MR;
        VectorMatmul.PackedB xb = VectorMatmul.packBT(x, 5, n, k);
        got[m * n] = got[m * n + 1] = got[m * n + 2] = 42f;
        VectorMatmul.gemmPacked(got, 0, w, 2, m, xb, false);
        for (int j = 0; j < m; j++)
            for (int b = 0; b < n; b++) {
                if (tiled) assertThat(got[j * n + b]).as("row %d, activation %d", j, b).isEqualTo(want[b * m + j]);
                else assertThat((double) got[j * n + b]).as("row %d, activation %d", j, b).isCloseTo(ref[b * m + j], org.assertj.core.api.Assertions.within(1e-4 * k));
            }
        assertThat(got[m * n]).as("nothing written past C").isEqualTo(42f);
        // accumulate: C + the same products
        float[] again = got.clone();
        VectorMatmul.gemmPacked(again, 0, w, 2, m, xb, true);
        for (int j = 0; j < m; j++)
            for (int b = 0; b < n; b++) assertThat((double) again[j * n + b]).isCloseTo(2.0 * ref[b * m + j], org.assertj.core.api.Assertions.within(2e-4 * k));
    }
}
