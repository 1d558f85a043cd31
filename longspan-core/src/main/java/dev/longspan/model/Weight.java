package dev.longspan.model;

import dev.longspan.kernel.GgmlType;
import dev.longspan.kernel.InterleavedQuant;
import dev.longspan.kernel.Matmul;
import dev.longspan.kernel.QuantKernels;

import java.lang.foreign.MemorySegment;

/**
 * A weight matrix W [rows, cols] as inference reads it: a float32 slice of a model's parameter
 * array, or the tensor as its file stores it (any type {@link QuantKernels} dequantizes), usually
 * in a memory-mapped GGUF, with no copy and no 2³¹-element limit. Products run on the stored
 * blocks.
 */
public sealed interface Weight {
    int rows();

    int cols();

    /** The element type the matrix is held in. */
    GgmlType type();

    /** Bytes the matrix occupies where it is held. */
    long bytes();

    /** y[yo + t·rows + r] (=, or += when accumulate) Σ_c W[r, c] · x[xo + t·cols + c], for t &lt; T. */
    void apply(float[] y, int yo, float[] x, int xo, int T, boolean accumulate);

    /** dst[dstOff..dstOff+cols) = row r as floats. */
    void row(int r, float[] dst, int dstOff);

    /**
     * The transposed product, backward of {@link #apply} for its input: x[xo + t·cols + c] (=, or +=
     * when accumulate) Σ_r y[yo + t·rows + r] · W[r, c], for t &lt; T.
     */
    void applyTransposed(float[] x, int xo, float[] y, int yo, int T, boolean accumulate);

    /**
     * y[i] = x · w[i]ᵀ (overwritten; y[i] is [T, w[i].rows()]) for matrices that read one input: a
     * layer's q, k and v, or gate and up. Repacked quantized matrices of one type in a prefill round
     * the input to their vec_dot type and pack it once for all of them ({@link QuantKernels#gemmEach});
     * anything else runs {@link #apply} on each. The same numbers either way.
     */
    static void applyEach(float[] x, int xo, int T, Weight[] w, float[][] y) {
        boolean shared = T >= QuantKernels.GEMM_BATCH && w.length > 1;
        for (Weight wi : w) shared &= wi instanceof Interleaved && wi.type() == w[0].type() && wi.cols() == w[0].cols() && wi.rows() > 0;
        if (!shared) {
            for (int i = 0; i < w.length; i++) w[i].apply(y[i], 0, x, xo, T, false);
            return;
        }
        InterleavedQuant[] m = new InterleavedQuant[w.length];
        for (int i = 0; i < w.length; i++) m[i] = ((Interleaved) w[i]).matrix();
        QuantKernels.gemmEach(w[0].type(), m, w[0].cols(), x, xo, T, y);
    }

    /** A float32 view of params[offset .. offset + rows·cols): the parameters themselves, not a copy. */
    record Dense(float[] params, int offset, int rows, int cols) implements Weight {
        public GgmlType type() { return GgmlType.F32; }

        public long bytes() { return 4L * rows * cols; }

        public void apply(float[] y, int yo, float[] x, int xo, int T, boolean accumulate) {
            Matmul.abT(y, yo, x, xo, params, offset, T, rows, cols, accumulate);
        }

        public void row(int r, float[] dst, int dstOff) {
            System.arraycopy(params, offset + r * cols, dst, dstOff, cols);
        }

        public void applyTransposed(float[] x, int xo, float[] y, int yo, int T, boolean accumulate) {
            Matmul.ab(x, xo, y, yo, params, offset, T, cols, rows, accumulate);
        }
    }

    /**
     * A matrix of type {@code type} at byte {@code offset} of {@code data}, rows consecutive. Row r
     * of the matrix is stored row {@code rowMap[r]} (null: r): a loader reorders rows (llama.cpp's
     * Q/K permutation) without touching the file.
     */
    record Stored(GgmlType type, MemorySegment data, long offset, int rows, int cols, int[] rowMap) implements Weight {
        public Stored {
            if (!type.dequantizable()) throw new IllegalArgumentException("type " + type + " cannot be read");
            if (cols % type.blockSize != 0) throw new IllegalArgumentException(type + " row of " + cols + " elements");
            if (rowMap != null && rowMap.length != rows) throw new IllegalArgumentException("row map of " + rowMap.length + " for " + rows + " rows");
        }

        public long bytes() { return type.rowBytes(cols) * rows; }

        public void apply(float[] y, int yo, float[] x, int xo, int T, boolean accumulate) {
            QuantKernels.matmul(type, data, offset, rowMap, rows, cols, x, xo, T, y, yo, accumulate);
        }

        public void row(int r, float[] dst, int dstOff) {
            int s = rowMap == null ? r : rowMap[r];
            QuantKernels.dequantize(type, data, offset + type.rowBytes(cols) * s, dst, dstOff, cols);
        }

        public void applyTransposed(float[] x, int xo, float[] y, int yo, int T, boolean accumulate) {
            transposedByPanels(this, x, xo, y, yo, T, accumulate);
        }
    }

    /**
     * A Q8_0, Q4_K or F16 matrix repacked at load into groups of rows interleaved for the decode
     * product ({@link InterleavedQuant}): matrix-vector products run on the groups, a prefill's
     * many rows on panels dequantized from them, with the numbers of {@link Stored}'s products up
     * to float rounding.
     */
    record Interleaved(InterleavedQuant matrix) implements Weight {
        public int rows() { return matrix.rows; }

        public int cols() { return matrix.cols; }

        public GgmlType type() { return matrix.type; }

        public long bytes() { return matrix.bytes(); }

        public void apply(float[] y, int yo, float[] x, int xo, int T, boolean accumulate) {
            if (T <= 0 || matrix.rows == 0) return;
            if (T < QuantKernels.GEMM_BATCH) {
                matrix.matvec(x, xo, T, y, yo, accumulate);
            } else {
                float[] xf = QuantKernels.roundedActivations(matrix.type, x, xo, T, matrix.cols);
                QuantKernels.gemm(matrix, xf, 0, T, y, yo, accumulate);
            }
        }

        public void row(int r, float[] dst, int dstOff) {
            matrix.row(r, dst, dstOff);
        }

        public void applyTransposed(float[] x, int xo, float[] y, int yo, int T, boolean accumulate) {
            transposedByPanels(this, x, xo, y, yo, T, accumulate);
        }
    }

    /**
     * x (=/+=) y·W for a matrix that is read row by row: panels of rows dequantized one after the
     * other (a frozen base's input gradient: training never changes a stored matrix, so nothing is
     * widened for longer than one panel).
     */
    private static void transposedByPanels(Weight w, float[] x, int xo, float[] y, int yo, int T, boolean accumulate) {
        int rows = w.rows(), cols = w.cols();
        int panel = Math.min(rows, 256);
        float[] tile = new float[panel * cols], yPanel = new float[T * panel];
        for (int r0 = 0; r0 < rows; r0 += panel) {
            int n = Math.min(panel, rows - r0), first = r0;
            dev.longspan.tensor.Parallel.forRange(0, n, (s, e) -> { for (int j = s; j < e; j++) w.row(first + j, tile, j * cols); });
            for (int t = 0; t < T; t++) System.arraycopy(y, yo + t * rows + r0, yPanel, t * n, n);
            Matmul.ab(x, xo, yPanel, 0, tile, 0, T, cols, n, accumulate || r0 > 0);
        }
    }

    /**
     * A frozen matrix with a LoRA adapter (Hugging Face PEFT's): y = W x + s·B(A x), with A [r, cols]
     * and B [rows, r] at {@code aOff} and {@code bOff} of {@code lora} and s = alpha / r. The
     * adapter is applied, never merged, so W may be a stored (quantized) tensor.
     */
    record Adapted(Weight base, float[] lora, int aOff, int bOff, int rank, float scale) implements Weight {
        public int rows() { return base.rows(); }

        public int cols() { return base.cols(); }

        public GgmlType type() { return base.type(); }

        public long bytes() { return base.bytes() + 4L * rank * (base.rows() + base.cols()); }

        // y[T, rows] (=/+=) x[T, cols]·Wᵀ + s·(x·Aᵀ)·Bᵀ
        public void apply(float[] y, int yo, float[] x, int xo, int T, boolean accumulate) {
            base.apply(y, yo, x, xo, T, accumulate);
            float[] u = down(x, xo, T);
            Matmul.abT(y, yo, u, 0, lora, bOff, T, rows(), rank, true);
        }

        // dst[cols] = W[r, :] + s·B[r, :]·A
        public void row(int r, float[] dst, int dstOff) {
            base.row(r, dst, dstOff);
            int cols = cols();
            for (int j = 0; j < rank; j++) {
                dev.longspan.kernel.Kernels.axpy(scale * lora[bOff + r * rank + j], lora, aOff + j * cols, dst, dstOff, cols);
            }
        }

        // x[T, cols] (=/+=) y[T, rows]·W + s·(y·B)·A
        public void applyTransposed(float[] x, int xo, float[] y, int yo, int T, boolean accumulate) {
            base.applyTransposed(x, xo, y, yo, T, accumulate);
            Matmul.ab(x, xo, up(y, yo, T), 0, lora, aOff, T, cols(), rank, true);
        }

        /**
         * Backward of {@link #apply} with the base frozen: dx (=, or += when accumulate) dy·W +
         * s·(dy·B)·A; into grads at aOff and bOff (grads shares lora's layout): dA += s·(dy·B)ᵀ·x and
         * dB += s·dyᵀ·(x·Aᵀ).
         */
        public void backward(float[] dx, boolean accumulate, float[] dy, float[] x, int T, float[] grads) {
            float[] u = down(x, 0, T), du = up(dy, 0, T);
            Matmul.atB(grads, bOff, dy, 0, u, 0, rows(), rank, T, true);     // dB [rows, r]
            Matmul.atB(grads, aOff, du, 0, x, 0, rank, cols(), T, true);     // dA [r, cols]
            base.applyTransposed(dx, 0, dy, 0, T, accumulate);
            Matmul.ab(dx, 0, du, 0, lora, aOff, T, cols(), rank, true);
        }

        // s·x·Aᵀ [T, r]
        private float[] down(float[] x, int xo, int T) {
            float[] u = new float[T * rank];
            Matmul.abT(u, 0, x, xo, lora, aOff, T, rank, cols(), false);
            for (int i = 0; i < u.length; i++) u[i] *= scale;
            return u;
        }

        // s·y·B [T, r]
        private float[] up(float[] y, int yo, int T) {
            float[] du = new float[T * rank];
            Matmul.ab(du, 0, y, yo, lora, bOff, T, rank, rows(), false);
            for (int i = 0; i < du.length; i++) du[i] *= scale;
            return du;
        }
    }
}
