package dev.longspan.kernel;

import dev.longspan.tensor.Parallel;
import dev.longspan.util.LongspanException;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static dev.longspan.kernel.QuantKernels.BYTE;
import static dev.longspan.kernel.QuantKernels.LE_INT;
import static dev.longspan.kernel.QuantKernels.half;
import static dev.longspan.kernel.QuantKernels.u8;

/**
 * A Q8_0, Q3_K, Q4_K, Q5_K, Q6_K or F16 matrix repacked once at load so that a matrix-vector product (decode) works on
 * {@link #group} rows at a time, one row per vector lane: the rows of a group are interleaved two
 * columns at a time, so one vector of weight bytes holds columns (c, c+1) of every row of the
 * group and is multiplied by one broadcast pair of activations. Each row's integer sums then
 * build up in its own int lane, the block scales of the group's rows are one vector (scaled once
 * per block for all of them, not once per row), and the group's results are stored without a
 * horizontal reduction. This is what llama.cpp's repacked CPU types (q4_0_8x8, q4_K_8x8, ...)
 * do for x86's {@code pmaddubsw}; the Vector API has no widening multiply-add, so the per-row
 * layout costs it several scalar and vector operations per block that this one shares.
 *
 * <p>The arithmetic is ggml's {@code vec_dot} with the activations in the weight type's
 * vec_dot_type ({@link Q8Activations}): exact integer sums per block (Q8_0) or sub-block (Q4_K),
 * scaled by the block scales, so products equal {@link QuantKernels#matvec}'s up to the order of
 * the float scaling, and the SIMD body ({@code VectorInterleavedQuant}) equals its scalar twin
 * here bit for bit (both scale block by block with one fused multiply-add per row and block).
 *
 * <p>Layout, per group g of G rows (rows past the end padded with zeros) and per block b, at byte
 * {@code (g·blocks + b)·blockBytes}:
 * <ul>
 * <li>Q8_0 (blocks of 32, 34·G bytes, as many as the file's): G fp16 scales d, then eight quads (as
 *     Q4_K's below) of the block's 32 signed quants.</li>
 * <li>F16 (2·G bytes per column): column c of rows 0..G-1, as stored; a matrix holding an infinity
 *     or NaN is not repacked (the SIMD body widens fp16 with integer shifts, exact for finite values).</li>
 * <li>Q4_K (super-blocks of 256, 148·G bytes, the file's 144·G plus the six-bit scales and mins a
 *     byte each): G fp16 d, G fp16 dmin, 8 × G scales, 8 × G mins (sub-block-major), then for chunk
 *     c = 0..3 and u = 0..7 a "quad" of 4·G bytes: for rows 0..G-1 the chunk's quant bytes 2u, 2u+16,
 *     2u+1, 2u+17 (byte k: low nibble element 64c + k, sub-block 2c; high nibble element 64c + 32 + k,
 *     sub-block 2c + 1; as ggml stores them). Read as 2G shorts, short lane 2i + h of a quad holds
 *     byte 2u + h of row i in its low byte and byte 2u + 16 + h in its high byte, so four shifts and
 *     masks give the four nibbles of pairs u and u + 8 already in the row's int lane, with no
 *     widening of bytes across the vector.</li>
 * <li>Q3_K (super-blocks of 256, 114·G bytes, the file's 110·G with the sixteen six-bit scales a byte each, 32
 *     subtracted): G fp16 d, 16 × G scales, the 32 hmask bytes of each row as eight quads, then each half's 32 qs
 *     bytes as eight quads (qs byte l of half n: two bits of elements 128n + 32j + l, j = 0..3; hmask byte l: bit
 *     4n + j above them).</li>
 * <li>Q5_K (super-blocks of 256, 180·G bytes, the file's 176·G plus the scales and mins a byte each):
 *     Q4_K's d, dmin, scales and mins, then the 32 qh bytes of each row as eight quads (byte k holds
 *     the fifth bits of the chunks' nibble bytes k: bit 2c for chunk c's low nibble, 2c + 1 for its
 *     high), then Q4_K's 32 nibble quads.</li>
 * <li>Q6_K (super-blocks of 256, 210·G bytes, as many as the file's): G fp16 d, 16 × G int8 scales
 *     (group-major), then per half of 128 three runs of eight quads laid out as Q4_K's: A (ql bytes
 *     0..31 of the half), B (ql bytes 32..63), H (the half's 32 qh bytes). Byte k of A holds elements
 *     k (low nibble) and k + 64 (high), of B elements k + 32 and k + 96, and qh byte k their two high
 *     bits each (bits 0-1, 2-3, 4-5, 6-7 for k, k + 32, k + 64, k + 96), so a quad of each gives the
 *     quants of eight scale groups with shifts and masks in place.</li>
 * </ul>
 * The scales stay fp16 (decoding reads every weight byte once per token, so bytes count) and are
 * widened in the kernel by integer shifts. (Q8_0's were widened to floats at load while its kernel
 * widened bytes across the vector: then widening them per 32 elements cost 15 %; with the quads it
 * is faster than the float scales' 6 % more bytes.) A Q8_0 or Q4_K matrix with a non-finite block
 * scale is not repacked.
 * The group size is the machine's int lanes (16 at 512 bits, 8 at 256, 4 at 128; 8 without the
 * Vector API), chosen once: the layout lives only in memory, never in a file.
 *
 * <p>A product walks a worker's range of groups two at a time, g beside g + half the range, so
 * that one core reads two streams of weight bytes (more cache lines in flight than one stream
 * gets; docs/PERFORMANCE.md, "Two streams per core"); one thread takes the whole matrix as one range.
 */
public final class InterleavedQuant {
    /** Rows per group: the int lanes of the SIMD bodies' shape. */
    public static final int GROUP = QuantKernels.SIMD ? VectorInterleavedQuant.G : 8;

    public final GgmlType type;
    public final int rows, cols, group, groups, blocks;
    final long blockBytes;
    final MemorySegment data;

    private InterleavedQuant(GgmlType type, int rows, int cols, int group, MemorySegment data) {
        this.type = type;
        this.rows = rows;
        this.cols = cols;
        this.group = group;
        this.groups = (rows + group - 1) / group;
        this.blocks = cols / type.blockSize;
        this.blockBytes = blockBytes(type, group);
        this.data = data;
    }

    /** Whether matrices of type t can be repacked. */
    public static boolean supports(GgmlType t) {
        return t == GgmlType.Q8_0 || t == GgmlType.Q3_K || t == GgmlType.Q4_K || t == GgmlType.Q5_K || t == GgmlType.Q6_K || t == GgmlType.F16;
    }

    static long blockBytes(GgmlType t, int group) {
        return switch (t) {
            case Q8_0 -> 34L * group;
            case Q4_K -> 148L * group;
            case Q3_K -> 114L * group;
            case Q5_K -> 180L * group;
            case Q6_K -> 210L * group;
            case F16 -> 2L * group;   // a "block" is one column
            default -> throw new IllegalArgumentException(t + " cannot be interleaved");
        };
    }

    /** Bytes the repacked matrix occupies. */
    public long bytes() {
        return data.byteSize();
    }

    /**
     * The matrix W [rows, cols] of type t at byte off of src (output row r reads stored row
     * {@code rowMap[r]}; null: r), repacked into groups of {@link #GROUP} rows in memory of its own;
     * null for a Q8_0 or Q4_K matrix with a non-finite block scale or an F16 matrix with a non-finite value
     * (such a matrix stays as stored).
     */
    public static InterleavedQuant pack(GgmlType t, MemorySegment src, long off, int[] rowMap, int rows, int cols) {
        return pack(t, src, off, rowMap, rows, cols, GROUP);
    }

    static InterleavedQuant pack(GgmlType t, MemorySegment src, long off, int[] rowMap, int rows, int cols, int group) {
        if (!supports(t)) throw new IllegalArgumentException(t + " cannot be interleaved");
        if (cols % t.blockSize != 0) throw new LongspanException(t + " row of " + cols + " elements is not a multiple of the block size " + t.blockSize);
        int groups = (rows + group - 1) / group, blocks = cols / t.blockSize;
        // 8 bytes of slack: a 128-bit machine's scale loads read 8 bytes for its 4 lanes
        MemorySegment data = Arena.ofAuto().allocate((long) groups * blocks * blockBytes(t, group) + 8, 64);
        InterleavedQuant m = new InterleavedQuant(t, rows, cols, group, data);
        long rb = t.rowBytes(cols);
        long groupBytes = blocks * m.blockBytes;
        java.util.concurrent.atomic.AtomicBoolean nonFinite = new java.util.concurrent.atomic.AtomicBoolean();
        // a group at a time through heap arrays: bulk copies in and out, plain array indexing between
        // (element-wise accesses to mapped memory cost bounds and liveness checks each)
        Parallel.forRange(0, groups, (g0, g1) -> {
            byte[] in = new byte[Math.toIntExact(group * rb)], out = new byte[Math.toIntExact(groupBytes)];
            for (int g = g0; g < g1; g++) {
                java.util.Arrays.fill(out, (byte) 0);
                for (int i = 0; i < group && g * group + i < rows; i++) {
                    int r = g * group + i;
                    MemorySegment.copy(src, BYTE, off + rb * (rowMap == null ? r : rowMap[r]), in, (int) (i * rb), (int) rb);
                    if (!m.finite(in, (int) (i * rb))) nonFinite.set(true);
                    for (int b = 0; b < blocks; b++) m.packBlock(in, (int) (i * rb) + b * t.typeSize, out, (int) (b * m.blockBytes), i);
                }
                MemorySegment.copy(out, 0, data, BYTE, m.at(g, 0), out.length);
            }
        });
        return nonFinite.get() ? null : m;
    }

    // Byte offsets inside a group's block, in multiples of G: Q8_0 scales and quants; Q4_K d, dmin,
    // scales, mins and quants
    static final int Q8_D = 0, Q8_Q = 2, K4_D = 0, K4_DMIN = 2, K4_SC = 4, K4_M = 12, K4_Q = 20;
    // Q6_K: d, the 16 scales, then per half the quads of A, B and H (32, 32, 32)
    static final int K6_D = 0, K6_SC = 2, K6_Q = 18;
    // Q3_K: d, the 16 scales (minus 32), the hmask quads, the qs quads of half 0 and half 1
    static final int K3_D = 0, K3_SC = 2, K3_HM = 18, K3_Q = 50;
    // Q5_K: Q4_K's d, dmin, scales, mins (K4_D, K4_DMIN, K4_SC, K4_M), then the qh quads, then the nibble quads
    static final int K5_D = K4_D, K5_DMIN = K4_DMIN, K5_SC = K4_SC, K5_M = K4_M, K5_QH = 20, K5_Q = 52;

    // where byte k (0..31) of row i's 32 quant bytes (a Q8_0 block, a Q4_K chunk) lies in the group's:
    // quad u = (k >> 1) & 7, row i's four bytes in it, the byte's column parity picking the short,
    // pair u + 8 its high byte
    static int quadOffset(int G, int i, int k) {
        return 4 * G * ((k >> 1) & 7) + 4 * i + 2 * (k & 1) + (k >> 4);
    }

    long at(int g, int b) {
        return ((long) g * blocks + b) * blockBytes;
    }

    // whether the fp16 values the SIMD bodies widen with integer shifts (exact for finite values only)
    // are finite in the stored row at in[o..]: every value of an F16 row, each block's d of a Q8_0 row,
    // each super-block's d and dmin of a Q4_K or Q5_K row, its d (the last two bytes) of a Q6_K row
    private boolean finite(byte[] in, int o) {
        int halves = type == GgmlType.Q4_K || type == GgmlType.Q5_K ? 2 : 1, at = type == GgmlType.Q6_K ? 208 : type == GgmlType.Q3_K ? 108 : 0;
        for (int b = 0; b < blocks; b++) {
            for (int h = 0; h < halves; h++) if ((in[o + b * type.typeSize + at + 2 * h + 1] & 0x7C) == 0x7C) return false;
        }
        return true;
    }

    // row i of its group: the stored block at in[src..] into the group's block at out[o..]
    private void packBlock(byte[] in, int src, byte[] out, int o, int i) {
        int G = group;
        if (type == GgmlType.F16) {
            out[o + 2 * i] = in[src];
            out[o + 2 * i + 1] = in[src + 1];
        } else if (type == GgmlType.Q8_0) {
            out[o + Q8_D * G + 2 * i] = in[src];
            out[o + Q8_D * G + 2 * i + 1] = in[src + 1];
            for (int k = 0; k < 32; k++) out[o + Q8_Q * G + quadOffset(G, i, k)] = in[src + 2 + k];
        } else if (type == GgmlType.Q3_K) {
            out[o + K3_D * G + 2 * i] = in[src + 108];
            out[o + K3_D * G + 2 * i + 1] = in[src + 109];
            MemorySegment scales = MemorySegment.ofArray(in);
            for (int j = 0; j < 16; j++) out[o + K3_SC * G + G * j + i] = (byte) (QuantKernels.q3Scale(scales, src + 96, j) - 32);
            for (int k = 0; k < 32; k++) {
                out[o + K3_HM * G + quadOffset(G, i, k)] = in[src + k];
                out[o + K3_Q * G + quadOffset(G, i, k)] = in[src + 32 + k];
                out[o + K3_Q * G + 32 * G + quadOffset(G, i, k)] = in[src + 64 + k];
            }
        } else if (type == GgmlType.Q6_K) {
            out[o + K6_D * G + 2 * i] = in[src + 208];
            out[o + K6_D * G + 2 * i + 1] = in[src + 209];
            for (int j = 0; j < 16; j++) out[o + K6_SC * G + G * j + i] = in[src + 192 + j];
            for (int h = 0; h < 2; h++) {
                int q = o + K6_Q * G + 96 * G * h;
                for (int k = 0; k < 32; k++) {
                    out[q + quadOffset(G, i, k)] = in[src + 64 * h + k];                 // A: ql[k]
                    out[q + 32 * G + quadOffset(G, i, k)] = in[src + 64 * h + 32 + k];  // B: ql[32 + k]
                    out[q + 64 * G + quadOffset(G, i, k)] = in[src + 128 + 32 * h + k]; // H: qh[k]
                }
            }
        } else {   // Q4_K, Q5_K (Q4_K's d, dmin, scales and mins; then Q5_K's qh quads; the nibble quads)
            boolean five = type == GgmlType.Q5_K;
            for (int k = 0; k < 2; k++) {
                out[o + K4_D * G + 2 * i + k] = in[src + k];
                out[o + K4_DMIN * G + 2 * i + k] = in[src + 2 + k];
            }
            MemorySegment scales = MemorySegment.ofArray(in);
            for (int j = 0; j < 8; j++) {
                int sm = QuantKernels.scaleMinK4(scales, src + 4, j);
                out[o + K4_SC * G + G * j + i] = (byte) (sm & 0xff);
                out[o + K4_M * G + G * j + i] = (byte) (sm >>> 8);
            }
            if (five) for (int k = 0; k < 32; k++) out[o + K5_QH * G + quadOffset(G, i, k)] = in[src + 16 + k];
            int q = five ? K5_Q : K4_Q, qs = five ? 48 : 16;
            for (int c = 0; c < 4; c++) {
                for (int k = 0; k < 32; k++) out[o + q * G + 32 * G * c + quadOffset(G, i, k)] = in[src + qs + 32 * c + k];
            }
        }
    }

    /**
     * Whether {@link #packedPanel} writes this matrix's panels with a vector body: groups as wide as the
     * GEMM's float vectors, so that a group's G rows are the lanes of one vector of a packed-B panel and
     * each column of the group (F16), or each quad (Q8_0: four columns, Q4_K: eight), dequantizes to
     * whole vectors of it.
     */
    boolean packsPanels() {
        return QuantKernels.SIMD && type != GgmlType.Q3_K && type != GgmlType.Q5_K && type != GgmlType.Q6_K && group == VectorInterleavedQuant.G && group == VectorMatmul.lanes()
                && VectorMatmul.panelColumns() % group == 0;
    }

    /**
     * Rows [r0, r0 + n) (r0 a multiple of the group) as floats into the GEMM's packed-B layout:
     * bp[{@link VectorMatmul#packedIndex}(c, r - r0, columns, cols)] = W[r][c]; the rows of groups
     * past the matrix, up to the whole panel, zero. The values of {@link #row}, bit for bit.
     */
    void packedPanel(int r0, int n, float[] bp, int columns) {
        if (!packsPanels()) {
            packedPanelScalar(r0, n, bp, columns);
            return;
        }
        int ng = (n + group - 1) / group, nr = VectorMatmul.panelColumns(), kc = VectorMatmul.KC;
        long o = at(r0 / group, 0), groupBytes = blocks * blockBytes;
        switch (type) {
            case Q8_0 -> VectorInterleavedQuant.panelQ8_0(data, o, groupBytes, ng, blocks, nr, kc, columns, bp);
            case Q4_K -> VectorInterleavedQuant.panelQ4_K(data, o, groupBytes, ng, blocks, nr, kc, columns, bp);
            default -> VectorInterleavedQuant.panelF16(data, o, groupBytes, ng, cols, nr, kc, columns, bp);
        }
        for (int j = ng * group; j < columns; j++)
            for (int c = 0; c < cols; c++) bp[VectorMatmul.packedIndex(c, j, columns, cols)] = 0f;
    }

    // the scalar twin of packedPanel: each row through row(), scattered into the layout
    void packedPanelScalar(int r0, int n, float[] bp, int columns) {
        float[] tmp = new float[cols];
        int ng = (n + group - 1) / group;
        for (int j = 0; j < columns; j++) {
            int r = r0 + j;
            if (j < ng * group && r < rows) row(r, tmp, 0);
            else java.util.Arrays.fill(tmp, 0f);
            for (int c = 0; c < cols; c++) bp[VectorMatmul.packedIndex(c, j, columns, cols)] = tmp[c];
        }
    }

    /** dst[dstOff..dstOff+cols) = row r as floats: the same values as ggml's dequantization of the stored row. */
    public void row(int r, float[] dst, int dstOff) {
        int g = r / group, i = r % group;
        long G = group;
        float[] dl = type == GgmlType.Q3_K ? new float[16] : null;   // a Q3_K block's d · (scale − 32)
        for (int b = 0; b < blocks; b++) {
            long o = at(g, b);
            int y = dstOff + b * type.blockSize;
            if (type == GgmlType.F16) {
                dst[y] = half(data, o + 2L * i);
            } else if (type == GgmlType.Q8_0) {
                float d = half(data, o + Q8_D * G + 2L * i);
                for (int u = 0; u < 8; u++) {
                    // the row's four bytes of quad u: quants 2u, 2u+16, 2u+1, 2u+17 (see quadOffset)
                    int w = data.get(LE_INT, o + Q8_Q * G + 4 * G * u + 4L * i);
                    dst[y + 2 * u] = (byte) w * d;
                    dst[y + 2 * u + 16] = (byte) (w >> 8) * d;
                    dst[y + 2 * u + 1] = (byte) (w >> 16) * d;
                    dst[y + 2 * u + 17] = (byte) (w >> 24) * d;
                }
            } else if (type == GgmlType.Q5_K) {
                float d = half(data, o + K5_D * G + 2L * i), min = half(data, o + K5_DMIN * G + 2L * i);
                for (int c = 0; c < 4; c++) {
                    float d1 = d * u8(data, o + K5_SC * G + G * (2 * c) + i), m1 = min * u8(data, o + K5_M * G + G * (2 * c) + i);
                    float d2 = d * u8(data, o + K5_SC * G + G * (2 * c + 1) + i), m2 = min * u8(data, o + K5_M * G + G * (2 * c + 1) + i);
                    long q = o + K5_Q * G + 32L * G * c;
                    int z = y + 64 * c;
                    for (int u = 0; u < 8; u++) {
                        int w = data.get(LE_INT, q + 4 * G * u + 4L * i), wh = data.get(LE_INT, o + K5_QH * G + 4 * G * u + 4L * i);
                        for (int e = 0; e < 4; e++) {
                            int v = (w >>> (8 * e)) & 0xFF, hb = (wh >>> (8 * e)) >>> (2 * c), k = 2 * u + (e >> 1) + 16 * (e & 1);
                            // as ggml's dequantize_row_q5_K: d1 · (nibble + 16·bit) − m1
                            dst[z + k] = d1 * ((v & 0xF) + ((hb & 1) << 4)) - m1;
                            dst[z + 32 + k] = d2 * ((v >>> 4) + ((hb & 2) << 3)) - m2;
                        }
                    }
                }
            } else if (type == GgmlType.Q3_K) {
                // as ggml's dequantize_row_q3_K: dl = d · (scale − 32) per 16 elements, then dl · q; the row's
                // four bytes of each quad read as one int (a prefill reads every row through here)
                float d = half(data, o + K3_D * G + 2L * i);
                for (int k = 0; k < 16; k++) dl[k] = d * data.get(BYTE, o + K3_SC * G + G * k + i);
                for (int n = 0; n < 2; n++) {
                    for (int u = 0; u < 8; u++) {
                        int wq = data.get(LE_INT, o + K3_Q * G + 32L * G * n + 4 * G * u + 4L * i);
                        int wh = data.get(LE_INT, o + K3_HM * G + 4 * G * u + 4L * i);
                        for (int e = 0; e < 4; e++) {
                            int qs = (wq >>> (8 * e)) & 0xFF, hm = (wh >>> (8 * e)) & 0xFF;
                            int l = 2 * u + (e >> 1) + 16 * (e & 1);   // bytes 2u, 2u+16, 2u+1, 2u+17
                            for (int j = 0; j < 4; j++) {
                                int run = 4 * n + j, v = ((qs >>> (2 * j)) & 3) - (((hm >>> run) & 1) != 0 ? 0 : 4);
                                dst[y + 32 * run + l] = dl[2 * run + (l >> 4)] * v;
                            }
                        }
                    }
                }
            } else if (type == GgmlType.Q6_K) {
                float d = half(data, o + K6_D * G + 2L * i);
                for (int h = 0; h < 2; h++) {
                    long q = o + K6_Q * G + 96L * G * h, sc = o + K6_SC * G + 8L * G * h;
                    for (int u = 0; u < 8; u++) {
                        int wa = data.get(LE_INT, q + 4 * G * u + 4L * i), wb = data.get(LE_INT, q + 32 * G + 4 * G * u + 4L * i);
                        int wh = data.get(LE_INT, q + 64 * G + 4 * G * u + 4L * i);
                        for (int e = 0; e < 4; e++) {
                            int a = (wa >>> (8 * e)) & 0xFF, c = (wb >>> (8 * e)) & 0xFF, hb = (wh >>> (8 * e)) & 0xFF;
                            int l = 2 * u + (e >> 1) + 16 * (e & 1), z = y + 128 * h;   // bytes 2u, 2u+16, 2u+1, 2u+17
                            // as ggml's dequantize_row_q6_K: d · scale · (q − 32)
                            dst[z + l] = d * data.get(BYTE, sc + G * (l / 16) + i) * (((a & 0xF) | ((hb & 3) << 4)) - 32);
                            dst[z + l + 32] = d * data.get(BYTE, sc + G * (l / 16 + 2) + i) * (((c & 0xF) | (((hb >>> 2) & 3) << 4)) - 32);
                            dst[z + l + 64] = d * data.get(BYTE, sc + G * (l / 16 + 4) + i) * (((a >>> 4) | (((hb >>> 4) & 3) << 4)) - 32);
                            dst[z + l + 96] = d * data.get(BYTE, sc + G * (l / 16 + 6) + i) * (((c >>> 4) | (((hb >>> 6) & 3) << 4)) - 32);
                        }
                    }
                }
            } else {
                float d = half(data, o + K4_D * G + 2L * i), min = half(data, o + K4_DMIN * G + 2L * i);
                for (int c = 0; c < 4; c++) {
                    float d1 = d * u8(data, o + K4_SC * G + G * (2 * c) + i), m1 = min * u8(data, o + K4_M * G + G * (2 * c) + i);
                    float d2 = d * u8(data, o + K4_SC * G + G * (2 * c + 1) + i), m2 = min * u8(data, o + K4_M * G + G * (2 * c + 1) + i);
                    long q = o + K4_Q * G + 32L * G * c;
                    int z = y + 64 * c;
                    for (int u = 0; u < 8; u++) {
                        int w = data.get(LE_INT, q + 4 * G * u + 4L * i);
                        for (int e = 0; e < 4; e++) {
                            int v = (w >>> (8 * e)) & 0xFF, k = 2 * u + (e >> 1) + 16 * (e & 1);   // bytes 2u, 2u+16, 2u+1, 2u+17
                            dst[z + k] = d1 * (v & 0xF) - m1;
                            dst[z + 32 + k] = d2 * (v >>> 4) - m2;
                        }
                    }
                }
            }
        }
    }

    /** Groups a worker takes at least: a matrix-vector product is bound by memory, so split by bytes. */
    private int minGroups() {
        return (int) Math.max(1, (QuantKernels.PARALLEL_BYTES + blocks * blockBytes - 1) / (blocks * blockBytes));
    }

    /**
     * y[yo + t·rows + r] (=, or += when accumulate) W[r]·x[xo + t·cols ..) for t &lt; batch, with x
     * converted to the weight type's vec_dot_type first as ggml does (few rows: decode).
     */
    public void matvec(float[] x, int xo, int batch, float[] y, int yo, boolean accumulate) {
        Q8Activations a = QuantKernels.ACTIVATIONS.get();
        a.quantize(Q8Activations.vecDotType(type), x, xo, batch, cols);
        int[] pairs = type == GgmlType.F16 ? null : a.pairs();
        // one range per worker's share; one thread takes the matrix whole (a split only restarts
        // its two streams of weight bytes)
        int ranges = Parallel.threads() == 1 ? 1 : (int) Math.max(1, Math.min(groups / minGroups(), 4L * Parallel.threads()));
        Parallel.forEachTask(ranges, task -> {
            int g0 = (int) ((long) groups * task / ranges), g1 = (int) ((long) groups * (task + 1) / ranges);
            float[] out = OUT.get();
            if (out.length < 2 * group) OUT.set(out = new float[2 * group]);
            for (int t = 0; t < batch; t++) rangeDot(g0, g1, a, pairs, t, y, yo, accumulate, out, QuantKernels.SIMD);
        });
    }

    /** Each worker's results of two groups (a decoding step runs ~100 products: nothing allocated per call). */
    private static final ThreadLocal<float[]> OUT = ThreadLocal.withInitial(() -> new float[2 * GROUP]);

    /** The scalar twin of {@link #matvec}, single-threaded. */
    public void matvecScalar(float[] x, int xo, int batch, float[] y, int yo, boolean accumulate) {
        Q8Activations a = new Q8Activations();
        a.quantize(Q8Activations.vecDotType(type), x, xo, batch, cols);
        int[] pairs = type == GgmlType.F16 ? null : a.pairs();
        float[] out = new float[2 * group];
        for (int t = 0; t < batch; t++) rangeDot(0, groups, a, pairs, t, y, yo, accumulate, out, false);
    }

    // groups g0..g1 of activation row t into y: group g side by side with group g + half (two streams
    // of weight bytes, VectorInterleavedQuant), an odd last group on its own
    private void rangeDot(int g0, int g1, Q8Activations a, int[] pairs, int t, float[] y, int yo, boolean accumulate, float[] out, boolean simd) {
        int half = (g1 - g0) / 2;
        for (int g = g0; g < g0 + half; g++) {
            groupDot(g, g + half, a, pairs, t, out, simd);
            store(g, out, 0, t, y, yo, accumulate);
            store(g + half, out, group, t, y, yo, accumulate);
        }
        if (g0 + 2 * half < g1) {
            groupDot(g1 - 1, g1 - 1, a, pairs, t, out, simd);
            store(g1 - 1, out, 0, t, y, yo, accumulate);
        }
    }

    // group g's results (out[from..from + group)) into its rows of y's row t
    private void store(int g, float[] out, int from, int t, float[] y, int yo, boolean accumulate) {
        int n = Math.min(group, rows - g * group), yr = yo + t * rows + g * group;
        if (accumulate) for (int i = 0; i < n; i++) y[yr + i] += out[from + i];
        else System.arraycopy(out, from, y, yr, n);
    }

    // out[0..group) = the dots of group g's rows with activation row t, out[group..2·group) group g2's
    private void groupDot(int g, int g2, Q8Activations a, int[] pairs, int t, float[] out, boolean simd) {
        long o = at(g, 0), o2 = at(g2, 0);
        if (simd && group == VectorInterleavedQuant.G) {
            if (type == GgmlType.F16) VectorInterleavedQuant.groupF16(data, o, o2, cols, a.values(), t * cols, out);
            else if (type == GgmlType.Q8_0) VectorInterleavedQuant.groupQ8_0(data, o, o2, blocks, pairs, t * cols / 2, a.d, t * blocks, out);
            else if (type == GgmlType.Q6_K) VectorInterleavedQuant.groupQ6_K(data, o, o2, blocks, pairs, t * cols / 2, a.d, t * blocks, out);
            else if (type == GgmlType.Q3_K) VectorInterleavedQuant.groupQ3_K(data, o, o2, blocks, pairs, t * cols / 2, a.d, t * blocks, out);
            else if (type == GgmlType.Q5_K) VectorInterleavedQuant.groupQ5_K(data, o, o2, blocks, pairs, t * cols / 2, a.d, t * blocks, a.bsums32, t * cols / 32, out);
            else VectorInterleavedQuant.groupQ4_K(data, o, o2, blocks, pairs, t * cols / 2, a.d, t * blocks, a.bsums32, t * cols / 32, out);
            return;
        }
        // the scalar twins, one group at a time
        for (int k = 0; k < 2; k++) {
            long ok = k == 0 ? o : o2;
            if (type == GgmlType.F16) groupF16Scalar(ok, a.values(), t * cols, out, k * group);
            else if (type == GgmlType.Q8_0) groupQ8_0Scalar(ok, pairs, t * cols / 2, a.d, t * blocks, out, k * group);
            else if (type == GgmlType.Q6_K) groupQ6_KScalar(ok, pairs, t * cols / 2, a.d, t * blocks, out, k * group);
            else if (type == GgmlType.Q3_K) groupQ3_KScalar(ok, pairs, t * cols / 2, a.d, t * blocks, out, k * group);
            else groupK4Scalar(type == GgmlType.Q5_K, ok, pairs, t * cols / 2, a.d, t * blocks, a.bsums32, t * cols / 32, out, k * group);
        }
    }

    // per row: four running sums over the columns (column c into sum c mod 4, one fused multiply-add
    // each, as the SIMD body's four accumulators), then (s0 + s1) + (s2 + s3)
    void groupF16Scalar(long o, float[] x, int xo, float[] out, int oo) {
        int G = group;
        for (int i = 0; i < G; i++) {
            float[] acc = new float[4];
            for (int c = 0; c < cols; c++) acc[c & 3] = Math.fma(half(data, o + 2L * G * c + 2L * i), x[xo + c], acc[c & 3]);
            out[oo + i] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
        }
    }

    // the two activation quants of a pair (low half: the even column)
    private static int lo(int pair) { return (short) pair; }

    private static int hi(int pair) { return pair >> 16; }

    // the activation quant of column col, its pair at ap[base + col / 2]
    private static int act(int[] ap, int base, int col) {
        int pair = ap[base + col / 2];
        return (col & 1) == 0 ? lo(pair) : hi(pair);
    }

    // per row and block: acc = fma(Σ w·a, d·da, acc), the integer sum exact
    void groupQ8_0Scalar(long o, int[] ap, int apo, float[] ad, int ado, float[] out, int oo) {
        int G = group;
        for (int i = 0; i < G; i++) {
            float acc = 0;
            for (int b = 0; b < blocks; b++) {
                long ob = o + b * blockBytes, q = ob + Q8_Q * G;
                int isum = 0;
                for (int p = 0; p < 16; p++) {
                    int pair = ap[apo + 16 * b + p];
                    isum += data.get(BYTE, q + quadOffset(G, i, 2 * p)) * lo(pair) + data.get(BYTE, q + quadOffset(G, i, 2 * p + 1)) * hi(pair);
                }
                acc = Math.fma((float) isum, half(data, ob + Q8_D * G + 2L * i) * ad[ado + b], acc);
            }
            out[oo + i] = acc;
        }
    }

    // per row and super-block: acc = fma(Σ_j sc_j·Σ q·a, d·da, acc), then fma(Σ_j m_j·Σa, −dmin·da, acc);
    // Q4_K, or Q5_K (five: the same d, dmin, scales and mins, the fifth bit of chunk c's quants from the
    // qh quads, bit 2c for the low nibbles and 2c + 1 for the high ones)
    void groupK4Scalar(boolean five, long o, int[] ap, int apo, float[] ad, int ado, int[] bsums32, int bso, float[] out, int oo) {
        int G = group;
        for (int i = 0; i < G; i++) {
            float acc = 0;
            for (int b = 0; b < blocks; b++) {
                long ob = o + b * blockBytes;
                int isum = 0, msum = 0;
                for (int c = 0; c < 4; c++) {
                    long q = ob + (five ? K5_Q : K4_Q) * G + 32L * G * c, qh = ob + K5_QH * G;
                    int s1 = 0, s2 = 0;
                    for (int k = 0; k < 32; k++) {
                        int v = u8(data, q + quadOffset(G, i, k)), hb = five ? u8(data, qh + quadOffset(G, i, k)) >>> (2 * c) : 0;
                        s1 += ((v & 0xF) | (hb & 1) << 4) * act(ap, apo + 128 * b, 64 * c + k);
                        s2 += ((v >>> 4) | (hb & 2) << 3) * act(ap, apo + 128 * b, 64 * c + 32 + k);
                    }
                    isum += u8(data, ob + K4_SC * G + (long) G * (2 * c) + i) * s1 + u8(data, ob + K4_SC * G + (long) G * (2 * c + 1) + i) * s2;
                }
                for (int j = 0; j < 8; j++) msum += u8(data, ob + K4_M * G + (long) G * j + i) * bsums32[bso + 8 * b + j];
                float da = ad[ado + b];
                acc = Math.fma((float) isum, half(data, ob + K4_D * G + 2L * i) * da, acc);
                acc = Math.fma((float) msum, -(half(data, ob + K4_DMIN * G + 2L * i) * da), acc);
            }
            out[oo + i] = acc;
        }
    }

    // per row and super-block: acc = fma(Σ_g sc_g·Σ (q − 32)·a, d·da, acc), the integer sum exact
    void groupQ6_KScalar(long o, int[] ap, int apo, float[] ad, int ado, float[] out, int oo) {
        int G = group;
        int[] sums = new int[8];   // per scale group of a half
        for (int i = 0; i < G; i++) {
            float acc = 0;
            for (int b = 0; b < blocks; b++) {
                long ob = o + b * blockBytes;
                int isum = 0;
                for (int h = 0; h < 2; h++) {
                    long q = ob + K6_Q * G + 96L * G * h;
                    java.util.Arrays.fill(sums, 0);
                    for (int k = 0; k < 32; k++) {
                        int a = u8(data, q + quadOffset(G, i, k)), c = u8(data, q + 32L * G + quadOffset(G, i, k)), hb = u8(data, q + 64L * G + quadOffset(G, i, k));
                        for (int e = 0; e < 4; e++) {
                            // element 32e + k: the low (e < 2) or high nibble of A (e even) or B, bits 2e of H above it
                            int byteE = (e & 1) == 0 ? a : c, nib = e < 2 ? byteE & 0xF : byteE >>> 4;
                            int qe = (nib | ((hb >>> (2 * e)) & 3) << 4) - 32;
                            sums[(32 * e + k) / 16] += qe * act(ap, apo + 128 * b, 128 * h + 32 * e + k);
                        }
                    }
                    for (int g = 0; g < 8; g++) isum += data.get(BYTE, ob + K6_SC * G + (long) G * (8 * h + g) + i) * sums[g];
                }
                acc = Math.fma((float) isum, half(data, ob + K6_D * G + 2L * i) * ad[ado + b], acc);
            }
            out[oo + i] = acc;
        }
    }

    // per row and super-block: acc = fma(Σ_g sc_g·Σ q·a, d·da, acc), the integer sum exact
    void groupQ3_KScalar(long o, int[] ap, int apo, float[] ad, int ado, float[] out, int oo) {
        int G = group;
        for (int i = 0; i < G; i++) {
            float acc = 0;
            for (int b = 0; b < blocks; b++) {
                long ob = o + b * blockBytes;
                int isum = 0;
                for (int r = 0; r < 8; r++) {
                    int s0 = 0, s1 = 0;
                    for (int l = 0; l < 32; l++) {
                        int qs = u8(data, ob + K3_Q * G + 32L * G * (r >> 2) + quadOffset(G, i, l)), hm = u8(data, ob + K3_HM * G + quadOffset(G, i, l));
                        int q = ((qs >>> (2 * (r & 3))) & 3) + 4 * ((hm >>> r) & 1) - 4;
                        int x = act(ap, apo + 128 * b, 32 * r + l);
                        if (l < 16) s0 += q * x; else s1 += q * x;
                    }
                    isum += data.get(BYTE, ob + K3_SC * G + (long) G * (2 * r) + i) * s0 + data.get(BYTE, ob + K3_SC * G + (long) G * (2 * r + 1) + i) * s1;
                }
                acc = Math.fma((float) isum, half(data, ob + K3_D * G + 2L * i) * ad[ado + b], acc);
            }
            out[oo + i] = acc;
        }
    }
}
