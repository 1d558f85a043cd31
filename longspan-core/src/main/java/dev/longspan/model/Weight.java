package dev.longspan.model;

import dev.longspan.kernel.GgmlType;
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
    }
}
