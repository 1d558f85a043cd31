package dev.longspan.kernel;

import dev.longspan.tensor.Parallel;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.SplittableRandom;

import static dev.longspan.kernel.QuantKernelsTest.h;
import static dev.longspan.kernel.QuantKernelsTest.randomRow;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.data.Offset.offset;

/**
 * Q8_0, Q3_K, Q4_K, Q5_K, Q6_K and F16 matrices repacked into interleaved row groups: the same rows, the same products as
 * the stored blocks (ggml's arithmetic), the SIMD body equal to its scalar twin bit for bit, on
 * awkward shapes (rows not a multiple of the group, one block, many), every group size the layout
 * allows and at 1–3 worker threads. The pom runs this class at 512, 256 and 128 bits and scalar.
 */
class InterleavedQuantTest {

    record Matrix(MemorySegment seg, long off, int rows, int cols) {}

    static Matrix random(GgmlType t, int rows, int blocks, SplittableRandom r) {
        int cols = blocks * (t.blockSize == 1 ? 37 : t.blockSize); // F16: odd column counts
        long rb = t.rowBytes(cols);
        byte[] w = new byte[8 + (int) rb * rows]; // an offset in front, like a tensor inside a file
        for (int i = 0; i < rows; i++) System.arraycopy(randomRow(t, cols, r), 0, w, 8 + i * (int) rb, (int) rb);
        return new Matrix(MemorySegment.ofArray(w), 8, rows, cols);
    }

    static float[] gaussian(int n, SplittableRandom r) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) r.nextGaussian();
        return x;
    }

    static int[] map(int rows) {
        int[] m = new int[rows];
        for (int i = 0; i < rows; i++) m[i] = (i * 7 + 2) % rows;
        return rows % 7 == 0 ? null : m;
    }

    /** Rows come back as ggml dequantizes the stored rows, bit for bit, through a row map. */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "F16"})
    void rowsAreTheStoredRowsDequantized(GgmlType t) {
        SplittableRandom r = new SplittableRandom(t.id * 13L + 1);
        for (int group : new int[]{4, 8, 16}) {
            for (int[] shape : new int[][]{{1, 1}, {5, 2}, {17, 3}, {33, 1}}) {
                Matrix m = random(t, shape[0], shape[1], r);
                int[] map = map(m.rows);
                InterleavedQuant p = InterleavedQuant.pack(t, m.seg, m.off, map, m.rows, m.cols, group);
                float[] want = new float[m.cols], got = new float[m.cols + 2];
                for (int i = 0; i < m.rows; i++) {
                    QuantKernels.dequantize(t, m.seg, m.off + t.rowBytes(m.cols) * (map == null ? i : map[i]), want, 0, m.cols);
                    p.row(i, got, 2);
                    assertThat(java.util.Arrays.copyOfRange(got, 2, 2 + m.cols)).as("%s G=%d %s row %d", t, group, java.util.Arrays.toString(shape), i).isEqualTo(want);
                }
            }
        }
    }

    /**
     * Matrix-vector products (1 to 7 activation rows, offsets, accumulation) equal the stored
     * blocks' products ({@link QuantKernels#matvecScalar}: the same integer sums) within float
     * rounding of the scaling, and the SIMD body equals the scalar twin exactly; at 1, 2, 3 threads.
     */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "F16"})
    void productsAreTheStoredProductsAndSimdEqualsScalar(GgmlType t) {
        SplittableRandom r = new SplittableRandom(t.id * 17L + 3);
        int before = Parallel.threads();
        try {
            for (int threads = 1; threads <= 3; threads++) {
                Parallel.setThreads(threads);
                for (int[] shape : new int[][]{{1, 1, 1}, {3, 2, 1}, {16, 1, 2}, {17, 3, 1}, {45, 2, 7}, {300, 4, 1}, {1500, 9, 1}}) {
                    int batch = shape[2];
                    Matrix m = random(t, shape[0], shape[1], r);
                    int[] map = map(m.rows);
                    InterleavedQuant p = InterleavedQuant.pack(t, m.seg, m.off, map, m.rows, m.cols);
                    float[] x = gaussian(3 + batch * m.cols, r);
                    float[] init = gaussian(5 + batch * m.rows, r);
                    for (boolean accumulate : new boolean[]{false, true}) {
                        float[] simd = init.clone(), scalar = init.clone();
                        p.matvec(x, 3, batch, simd, 5, accumulate);
                        p.matvecScalar(x, 3, batch, scalar, 5, accumulate);
                        String what = t + " " + java.util.Arrays.toString(shape) + " threads " + threads + (accumulate ? " +=" : " =");
                        assertThat(simd).as(what + " simd vs scalar").isEqualTo(scalar);
                        for (int b = 0; b < batch; b++) {
                            float[] stored = new float[m.rows], magnitude = new float[m.rows], deq = new float[m.cols];
                            for (int i = 0; i < m.rows; i++) {
                                Q8Activations a = new Q8Activations();
                                a.quantize(Q8Activations.vecDotType(t), x, 3 + b * m.cols, 1, m.cols);
                                long row = m.off + t.rowBytes(m.cols) * (map == null ? i : map[i]);
                                stored[i] = QuantKernels.dotScalar(t, m.seg, row, a, 0, m.cols);
                                // Σ |w·x|: the scale of the float rounding of a sum in another order
                                QuantKernels.dequantize(t, m.seg, row, deq, 0, m.cols);
                                for (int k = 0; k < m.cols; k++) magnitude[i] += Math.abs(deq[k] * x[3 + b * m.cols + k]);
                            }
                            for (int i = 0; i < m.rows; i++) {
                                float want = (accumulate ? init[5 + b * m.rows + i] : 0) + stored[i];
                                assertThat(scalar[5 + b * m.rows + i]).as("%s row %d of batch %d", what, i, b)
                                        .isCloseTo(want, offset(1e-5f * (magnitude[i] + Math.abs(want) + 1)));
                            }
                        }
                        assertThat(simd[4]).isEqualTo(init[4]); // nothing before yo
                        assertThat(simd[5 + batch * m.rows - 1 + 0]).isNotNaN();
                    }
                }
            }
        } finally {
            Parallel.setThreads(before);
        }
    }

    /**
     * With every scale 1 the products are exact integer sums: extreme quants (Q8_0 −128..127, Q4_K
     * nibbles 15 with six-bit scales and mins 63) and activations ±127 do not overflow the 16-bit
     * products or the per-lane short sums, for every group size (exact where the sum fits a float).
     */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "Q3_K", "Q4_K", "Q5_K", "Q6_K"})
    void extremeQuantsGiveTheExactIntegerSums(GgmlType t) {
        SplittableRandom r = new SplittableRandom(t.id * 19L + 5);
        int blocks = t == GgmlType.Q8_0 ? 8 : 2, cols = blocks * t.blockSize, rows = 21;
        // Q6_K rows: quants −32 (bytes 0) with scales −128, or 31 (bytes 0xFF) with scales 127, or random

        long rb = t.rowBytes(cols);
        byte[] w = new byte[(int) rb * rows];
        ByteBuffer bb = ByteBuffer.wrap(w).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < rows; i++) {
            for (int b = 0; b < blocks; b++) {
                int o = (int) (i * rb) + b * t.typeSize;
                if (t == GgmlType.Q8_0) {
                    bb.putShort(o, h(1f));
                    for (int k = 0; k < 32; k++) w[o + 2 + k] = (byte) (i % 3 == 0 ? -128 : i % 3 == 1 ? 127 : r.nextInt(256));
                } else if (t == GgmlType.Q3_K) {   // quants −4 with scales −32, or 3 with scales 31, or random
                    for (int k = 0; k < 108; k++) w[o + k] = (byte) (i % 3 == 0 ? 0 : i % 3 == 1 ? 0xFF : r.nextInt(256));
                    bb.putShort(o + 108, h(1f));
                } else if (t == GgmlType.Q6_K) {
                    for (int k = 0; k < 192; k++) w[o + k] = (byte) (i % 3 == 0 ? 0 : i % 3 == 1 ? 0xFF : r.nextInt(256));
                    for (int k = 192; k < 208; k++) w[o + k] = (byte) (i % 3 == 0 ? -128 : i % 3 == 1 ? 127 : r.nextInt(256));
                    bb.putShort(o + 208, h(1f));
                } else {   // Q4_K, Q5_K: nibbles 15 (Q5_K: quants 31), scales and mins 63, or random
                    bb.putShort(o, h(1f)).putShort(o + 2, h(1f));
                    java.util.Arrays.fill(w, o + 4, o + t.typeSize, i % 2 == 0 ? (byte) 0xFF : (byte) r.nextInt(256));
                }
            }
        }
        float[] mixed = new float[cols];
        for (int k = 0; k < cols; k++) mixed[k] = k % 5 == 0 ? -127 : 127;
        mixed[0] = -127; // Q8_K's scale is 1 when its first largest-magnitude value is −127
        // Q4_K's worst case: every activation −128 (Q8_K's scale is 1 again), so a short lane's sixteen
        // nibble products reach 16·15·(−128) = −30720
        float[] lowest = new float[cols];
        java.util.Arrays.fill(lowest, -128);
        MemorySegment seg = MemorySegment.ofArray(w);
        float[] deq = new float[cols];
        // Q6_K's worst case: quants −32 times activations −127 (Q8_K's quants lie in −127..127), eight
        // products of 4,064 per short lane: 32,512
        float[] low127 = new float[cols];
        java.util.Arrays.fill(low127, -127);
        for (float[] x : t == GgmlType.Q4_K || t == GgmlType.Q5_K ? List.of(mixed, lowest) : t == GgmlType.Q6_K || t == GgmlType.Q3_K ? List.of(mixed, low127) : List.of(mixed))
        for (int group : new int[]{4, 8, 16}) {
            InterleavedQuant p = InterleavedQuant.pack(t, seg, 0, null, rows, cols, group);
            float[] y = new float[rows], ys = new float[rows];
            p.matvecScalar(x, 0, 1, ys, 0, false);
            p.matvec(x, 0, 1, y, 0, false);
            for (int i = 0; i < rows; i++) {
                QuantKernels.dequantize(t, seg, rb * i, deq, 0, cols);
                long exact = 0;
                for (int k = 0; k < cols; k++) exact += (long) deq[k] * (long) x[k];
                // exact below 2^24; above, within the float rounding of the sums (an overflow of
                // a 16-bit lane would be off by 65536 or more)
                float tol = Math.abs(exact) < (1L << 24) ? 0 : Math.abs(exact) * 1e-6f;
                assertThat(ys[i]).as("%s G=%d row %d scalar", t, group, i).isCloseTo((float) exact, offset(tol));
                assertThat(y[i]).as("%s G=%d row %d", t, group, i).isCloseTo((float) exact, offset(tol));
            }
        }
    }

    /** A Q8_0 or Q4_K matrix with an infinite or NaN block scale, or an F16 one with such a value, is not repacked (pack gives null: it stays as stored). */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "F16"})
    void nonFiniteScalesAreNotRepacked(GgmlType t) {
        SplittableRandom r = new SplittableRandom(3);
        for (short bad : new short[]{(short) 0x7C00, (short) 0xFC00, (short) 0x7E00}) {
            Matrix m = random(t, 5, 2, r);
            assertThat(InterleavedQuant.pack(t, m.seg, m.off, null, m.rows, m.cols)).isNotNull();
            long at = m.off + t.rowBytes(m.cols) * 3 + t.typeSize + (t == GgmlType.Q4_K || t == GgmlType.Q5_K ? 2 : t == GgmlType.Q6_K ? 208 : t == GgmlType.Q3_K ? 108 : 0); // row 3, block 1 (Q4_K, Q5_K: dmin; Q6_K, Q3_K: d)
            m.seg.set(QuantKernels.LE_SHORT, at, bad);
            assertThat(InterleavedQuant.pack(t, m.seg, m.off, null, m.rows, m.cols)).isNull();
        }
    }

    /** fp16 scales of every magnitude (subnormal, smallest normal, largest, negative) widen exactly in the SIMD body. */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "Q3_K", "Q4_K", "Q5_K", "Q6_K"})
    void everyFiniteScaleWidensExactly(GgmlType t) {
        SplittableRandom r = new SplittableRandom(9);
        short[] scales = {0x0000, (short) 0x8000, 0x0001, 0x03FF, 0x0400, 0x3C00, (short) 0xBC00, 0x7BFF, (short) 0xFBFF, 0x1234, (short) 0x9234};
        int rows = 2 * InterleavedQuant.GROUP + 3;
        Matrix m = random(t, rows, 3, r);
        long rb = t.rowBytes(m.cols);
        int k = 0;
        for (int i = 0; i < rows; i++) {
            for (int b = 0; b < 3; b++) {
                m.seg.set(QuantKernels.LE_SHORT, m.off + rb * i + (long) t.typeSize * b + (t == GgmlType.Q6_K ? 208 : t == GgmlType.Q3_K ? 108 : 0), scales[k++ % scales.length]);
                if (t == GgmlType.Q4_K || t == GgmlType.Q5_K) m.seg.set(QuantKernels.LE_SHORT, m.off + rb * i + (long) t.typeSize * b + 2, scales[k++ % scales.length]);
            }
        }
        InterleavedQuant p = InterleavedQuant.pack(t, m.seg, m.off, null, rows, m.cols);
        float[] x = gaussian(m.cols, r), simd = new float[rows], scalar = new float[rows];
        p.matvec(x, 0, 1, simd, 0, false);
        p.matvecScalar(x, 0, 1, scalar, 0, false);
        assertThat(simd).isEqualTo(scalar);
        for (float v : simd) assertThat(v).isFinite();
    }

    /**
     * A prefill's products of one input with several matrices (q, k, v; gate, up): the input rounded
     * and packed once ({@link QuantKernels#gemmEach}, {@code Weight.applyEach}) gives each matrix the
     * bits of its own product ({@code Weight.apply}), for batches below and above the GEMM threshold,
     * awkward row counts, at 1–3 threads; a mix it cannot share (another type, a float matrix) falls
     * back to each product.
     */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "F16"})
    void productsOfOneInputSharedEqualEachProduct(GgmlType t) {
        SplittableRandom r = new SplittableRandom(t.id * 29L + 5);
        int before = Parallel.threads();
        try {
            for (int threads = 1; threads <= 3; threads++) {
                Parallel.setThreads(threads);
                for (int batch : new int[]{3, QuantKernels.GEMM_BATCH, 37}) {
                    int blocks = 2;
                    int[] rowCounts = {17, 45, 300};
                    dev.longspan.model.Weight[] w = new dev.longspan.model.Weight[rowCounts.length];
                    InterleavedQuant[] readers = new InterleavedQuant[rowCounts.length];
                    int cols = 0;
                    for (int i = 0; i < w.length; i++) {
                        Matrix m = random(t, rowCounts[i], blocks, r);
                        cols = m.cols;
                        InterleavedQuant p = InterleavedQuant.pack(t, m.seg, m.off, map(m.rows), m.rows, m.cols);
                        w[i] = new dev.longspan.model.Weight.Interleaved(p);
                        readers[i] = p;
                    }
                    float[] x = gaussian(4 + batch * cols, r);
                    float[][] shared = new float[w.length][], each = new float[w.length][], kernel = new float[w.length][];
                    for (int i = 0; i < w.length; i++) {
                        shared[i] = new float[batch * rowCounts[i]];
                        kernel[i] = new float[batch * rowCounts[i]];
                        each[i] = new float[batch * rowCounts[i]];
                        java.util.Arrays.fill(shared[i], Float.NaN);   // overwritten, not accumulated
                        w[i].apply(each[i], 0, x, 4, batch, false);
                    }
                    dev.longspan.model.Weight.applyEach(x, 4, batch, w, shared);
                    String what = t + " batch " + batch + " threads " + threads;
                    for (int i = 0; i < w.length; i++) assertThat(shared[i]).as(what + " matrix " + i).isEqualTo(each[i]);
                    if (batch >= QuantKernels.GEMM_BATCH) {
                        QuantKernels.gemmEach(t, readers, cols, x, 4, batch, kernel);
                        for (int i = 0; i < w.length; i++) {
                            float[] one = new float[batch * rowCounts[i]];
                            QuantKernels.gemm(readers[i]::row, rowCounts[i], cols, QuantKernels.roundedActivations(t, x, 4, batch, cols), 0, batch, one, 0, false);
                            assertThat(kernel[i]).as(what + " gemmEach matrix " + i).isEqualTo(one);
                        }
                    }
                    // a float matrix among them: no sharing, each product as apply gives it
                    float[] dense = gaussian(rowCounts[0] * cols, r);
                    dev.longspan.model.Weight[] mixed = {w[0], new dev.longspan.model.Weight.Dense(dense, 0, rowCounts[0], cols)};
                    float[][] got = {new float[batch * rowCounts[0]], new float[batch * rowCounts[0]]};
                    float[] wantDense = new float[batch * rowCounts[0]];
                    mixed[1].apply(wantDense, 0, x, 4, batch, false);
                    dev.longspan.model.Weight.applyEach(x, 4, batch, mixed, got);
                    assertThat(got[0]).as(what + " mixed, quantized").isEqualTo(each[0]);
                    assertThat(got[1]).as(what + " mixed, float").isEqualTo(wantDense);
                }
            }
        } finally {
            Parallel.setThreads(before);
        }
    }

    /**
     * A Q8_0, Q4_K or F16 panel dequantized straight into the GEMM's packed-B layout (the vector bodies) holds the
     * bits of the matrix's rows scattered into that layout (the scalar twin, through {@link
     * InterleavedQuant#row}), zeros past the matrix: row counts around the group and panel sizes,
     * panels starting at the first and at later groups, rows long enough to span several k blocks.
     */
    @ParameterizedTest
    @ValueSource(ints = {1, 15, 17, 64, 100, 300})
    void panelsDequantizedIntoTheGemmLayoutHoldTheRows(int rows) {
        SplittableRandom r = new SplittableRandom(rows * 31L + 7);
        for (GgmlType t : new GgmlType[]{GgmlType.Q8_0, GgmlType.Q4_K, GgmlType.F16}) {
            for (int blocks : t == GgmlType.Q4_K ? new int[]{1, 3} : new int[]{1, 9, 24}) {
                Matrix m = random(t, rows, blocks, r);
                InterleavedQuant p = InterleavedQuant.pack(t, m.seg, m.off, map(m.rows), m.rows, m.cols);
                int nr = VectorMatmul.panelColumns();
                for (int r0 = 0; r0 < rows; r0 += Math.max(p.group, nr)) {
                    int n = Math.min(2 * nr, rows - r0);
                    int columns = (n + nr - 1) / nr * nr;
                    float[] got = new float[columns * m.cols], want = new float[columns * m.cols];
                    java.util.Arrays.fill(got, Float.NaN);
                    p.packedPanel(r0, n, got, columns);
                    p.packedPanelScalar(r0, n, want, columns);
                    assertThat(got).as(t + " rows " + rows + " blocks " + blocks + " from " + r0).isEqualTo(want);
                    float[] row = new float[m.cols];
                    p.row(r0, row, 0);
                    for (int c = 0; c < m.cols; c++) assertThat(got[VectorMatmul.packedIndex(c, 0, columns, m.cols)]).isEqualTo(row[c]);
                }
            }
        }
    }

    /**
     * A prefill's product with a repacked matrix ({@link QuantKernels#gemm(InterleavedQuant, float[],
     * int, int, float[], int, boolean)}) gives the bits of the row-by-row panel path, overwriting and
     * accumulating, for awkward row counts and batches, at 1–3 threads.
     */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "F16"})
    void repackedPrefillProductsEqualTheRowPath(GgmlType t) {
        SplittableRandom r = new SplittableRandom(t.id * 37L + 11);
        int before = Parallel.threads();
        try {
            for (int threads = 1; threads <= 3; threads++) {
                Parallel.setThreads(threads);
                for (int rows : new int[]{5, 70, 257}) {
                    Matrix m = random(t, rows, t == GgmlType.Q4_K ? 2 : 9, r);
                    InterleavedQuant p = InterleavedQuant.pack(t, m.seg, m.off, map(m.rows), m.rows, m.cols);
                    for (int batch : new int[]{QuantKernels.GEMM_BATCH, 13, 70}) {
                        float[] x = QuantKernels.roundedActivations(t, gaussian(3 + batch * m.cols, r), 3, batch, m.cols);
                        for (boolean accumulate : new boolean[]{false, true}) {
                            float[] start = gaussian(1 + batch * rows, r), got = start.clone(), want = start.clone();
                            QuantKernels.gemm(p, x, 0, batch, got, 1, accumulate);
                            QuantKernels.gemm(p::row, rows, m.cols, x, 0, batch, want, 1, accumulate);
                            assertThat(got).as(t + " rows " + rows + " batch " + batch + " threads " + threads + " accumulate " + accumulate).isEqualTo(want);
                            assertThat(got[0]).isEqualTo(start[0]);
                        }
                    }
                }
            }
        } finally {
            Parallel.setThreads(before);
        }
    }
}
