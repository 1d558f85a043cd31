package dev.longspan.kernel;

/**
 * Activation rows converted the way ggml's CPU backend converts the float operand of a matrix
 * product before any dot: each weight type has a {@code vec_dot_type} ({@link #vecDotType}) and
 * every activation row is turned into it first — Q8_0 / Q8_1 (blocks of 32 int8 with an fp16
 * scale), Q8_K (blocks of 256 int8 with a float scale and sums per 16), or F16 / BF16 rounding.
 * llama.cpp's results on quantized models depend on this rounding of the activations as much as
 * on the weights' own, so a product on stored blocks does the same to give llama.cpp's numbers.
 *
 * <p>Rounding follows ggml-cpu on x86 (the build the parity figures come from): Q8_0 and Q8_1
 * take {@code d = amax/127}, multiply by {@code 127/amax} and round half to even
 * ({@code _mm256_round_ps}); Q8_K takes the signed value of largest magnitude {@code max},
 * multiplies by {@code -127/max}, rounds half to even (ggml's {@code nearest_int}), caps at 127
 * and stores {@code d = 1/iscale} unrounded.
 *
 * <p>One object is reused per thread for successive products: {@link #quantize} overwrites it.
 */
public final class Q8Activations {
    /** The vec_dot_type being held: F32, F16, BF16, Q8_0, Q8_1 or Q8_K. */
    GgmlType type;
    int rows, cols;
    /** The int8 quants of every row, widened once here so that each weight row's dot loads them directly. */
    short[] q = new short[0];
    /** Per block: the scale as the dot uses it (fp16-rounded for Q8_0 and Q8_1, a float for Q8_K). */
    float[] d = new float[0];
    /** Q8_1 per block: fp16(d·Σq), the term ggml multiplies by the weight block's minimum. */
    float[] s = new float[0];
    /** Q8_K per 16 elements: Σq. */
    int[] bsums = new int[0];
    /** Q8_K per 32 elements: Σq (bsums summed in pairs: the term a Q4_K/Q5_K sub-block's minimum multiplies). */
    int[] bsums32 = new int[0];
    /** Every row as the dot sees it, row-major: q·d for the quantized kinds, the rounded floats for F16/BF16. */
    private float[] values = new float[0];
    private boolean valuesReady;
    /** The quants two by two as ints (even element in the low 16 bits), for {@link InterleavedQuant}'s broadcasts. */
    private int[] pairs = new int[0];
    private boolean pairsReady;

    /**
     * ggml-cpu's {@code vec_dot_type} of a weight type: what the activations are converted to
     * before a dot with rows of that type.
     */
    public static GgmlType vecDotType(GgmlType weight) {
        return switch (weight) {
            case Q4_0, Q5_0, Q8_0, IQ4_NL, MXFP4, NVFP4, Q1_0, Q2_0 -> GgmlType.Q8_0;
            case Q4_1, Q5_1, Q8_1 -> GgmlType.Q8_1;
            case Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS, TQ1_0, TQ2_0, IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S -> GgmlType.Q8_K;
            case F16 -> GgmlType.F16;
            case BF16 -> GgmlType.BF16;
            default -> GgmlType.F32;
        };
    }

    /** The type the rows are held in. */
    public GgmlType type() { return type; }

    /** Converts rows x[xo + r·cols .. + cols) for r &lt; rows to type (a vec_dot_type); cols a multiple of its block size. */
    public void quantize(GgmlType type, float[] x, int xo, int rows, int cols) {
        this.type = type;
        this.rows = rows;
        this.cols = cols;
        int n = rows * cols;
        valuesReady = false;
        pairsReady = false;
        switch (type) {
            case Q8_0, Q8_1 -> {
                if (q.length < n) q = new short[n];
                if (d.length < n / 32) d = new float[n / 32];
                if (type == GgmlType.Q8_1 && s.length < n / 32) s = new float[n / 32];
                boolean withSum = type == GgmlType.Q8_1;
                if (QuantKernels.SIMD) blocks(n / 32, 32, (b0, b1) -> VectorQuantKernels.quantizeQ8(x, xo, b0, b1, q, d, withSum ? s : null));
                else blocks(n / 32, 32, (b0, b1) -> quantizeQ8Scalar(x, xo, b0, b1, withSum));
            }
            case Q8_K -> {
                if (q.length < n) q = new short[n];
                if (d.length < n / 256) d = new float[n / 256];
                if (bsums.length < n / 16) bsums = new int[n / 16];
                if (bsums32.length < n / 32) bsums32 = new int[n / 32];
                blocks(n / 256, 256, (b0, b1) -> { for (int b = b0; b < b1; b++) quantizeQ8K(x, xo + 256 * b, b); });
            }
            case F32, F16, BF16 -> {
                float[] v = values(n);
                for (int i = 0; i < n; i++) v[i] = round(type, x[xo + i]);
                valuesReady = true;
            }
            default -> throw new IllegalArgumentException(type + " is no vec_dot_type");
        }
    }

    /**
     * Runs body over block ranges: on the calling thread for a decoding step's few rows, over the
     * workers for a prefill's many (each block is written by one range; the results do not depend
     * on the split). Converting a 512-row prefill's activations on one thread was an eighth of its
     * time on two.
     */
    private static void blocks(int count, int blockSize, dev.longspan.tensor.Parallel.RangeBody body) {
        if ((long) count * blockSize < PARALLEL_ELEMENTS) body.run(0, count);
        else dev.longspan.tensor.Parallel.forChunks(0, count, (int) Math.max(1, PARALLEL_ELEMENTS / blockSize), (c, b0, b1) -> body.run(b0, b1));
    }

    /** Elements from which conversions go parallel: well above a decoding step's rows. */
    private static final long PARALLEL_ELEMENTS = 1 << 15;

    /** The quants of every row two by two: int i holds q[2i] in its low and q[2i+1] in its high 16 bits. */
    int[] pairs() {
        if (!pairsReady) {
            int n = rows * cols / 2;
            if (pairs.length < n) pairs = new int[n];
            for (int i = 0; i < n; i++) pairs[i] = (q[2 * i] & 0xFFFF) | (q[2 * i + 1] << 16);
            pairsReady = true;
        }
        return pairs;
    }

    private float[] values(int n) {
        return values.length >= n ? values : (values = new float[n]);
    }

    // blocks [b0, b1) of Q8_0 / Q8_1 from x[xo + 32·b ..]: the scalar twin of VectorQuantKernels.quantizeQ8
    void quantizeQ8Scalar(float[] x, int xo, int b0, int b1, boolean withSum) {
        for (int b = b0; b < b1; b++) quantizeQ8(x, xo + 32 * b, b, withSum);
    }

    // block b of Q8_0 / Q8_1 from x[xi .. xi+32)
    private void quantizeQ8(float[] x, int xi, int b, boolean withSum) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[xi + j]));
        float db = amax / 127f;
        float id = amax != 0 ? 127f / amax : 0f;
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            int v = rint(x[xi + j] * id);
            q[32 * b + j] = (short) v;
            sum += v;
        }
        d[b] = half(db);
        if (withSum) s[b] = half(db * sum);
    }

    private void quantizeQ8K(float[] x, int xi, int b) {
        float max = 0, amax = 0;
        for (int j = 0; j < 256; j++) {
            float ax = Math.abs(x[xi + j]);
            if (ax > amax) {
                amax = ax;
                max = x[xi + j];
            }
        }
        int qo = 256 * b;
        if (amax == 0) {
            java.util.Arrays.fill(q, qo, qo + 256, (short) 0);
            java.util.Arrays.fill(bsums, 16 * b, 16 * b + 16, 0);
            java.util.Arrays.fill(bsums32, 8 * b, 8 * b + 8, 0);
            d[b] = 0;
            return;
        }
        float iscale = -127f / max;
        for (int g = 0; g < 16; g++) {
            int sum = 0;
            for (int j = 16 * g; j < 16 * g + 16; j++) {
                int v = Math.min(127, rint(iscale * x[xi + j]));
                q[qo + j] = (short) v;
                sum += v;
            }
            bsums[16 * b + g] = sum;
        }
        for (int j = 0; j < 8; j++) bsums32[8 * b + j] = bsums[16 * b + 2 * j] + bsums[16 * b + 2 * j + 1];
        d[b] = 1 / iscale;
    }

    // round half to even, as Math.rint, for |t| ≤ 2^22 (the quants' ±127, and NaN-free: amax is finite
    // here or the block is zero): adding and removing 1.5·2^23 leaves no fraction bits, and float
    // addition rounds to nearest even; a float loop the JIT vectorizes, unlike Math.rint's
    // double round trip
    private static int rint(float t) {
        return (int) ((t + 0x1.8p23f) - 0x1.8p23f);
    }

    static float half(float v) {
        return Float.float16ToFloat(Float.floatToFloat16(v));
    }

    // ggml's fp32 → fp16 / bf16 conversions: round to nearest even (a NaN stays a quiet NaN)
    static float round(GgmlType type, float v) {
        return switch (type) {
            case F16 -> half(v);
            case BF16 -> {
                int u = Float.floatToRawIntBits(v);
                if ((u & 0x7fffffff) > 0x7f800000) yield Float.intBitsToFloat((u | 0x00400000) & 0xffff0000);
                yield Float.intBitsToFloat(((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) << 16);
            }
            default -> v;
        };
    }

    /**
     * All rows as ggml's dot sees them, row-major from index 0: q·d for the 8-bit kinds (what a
     * product with a dequantized weight row gives up to float rounding), the rounded floats otherwise.
     */
    public float[] values() {
        if (valuesReady) return values;
        int n = rows * cols;
        float[] v = values(n);
        int bs = type == GgmlType.Q8_K ? 256 : 32;
        blocks(n / bs, bs, (b0, b1) -> {
            if (QuantKernels.SIMD) {
                VectorQuantKernels.values(q, d, bs, b0, b1, v);
                return;
            }
            for (int b = b0; b < b1; b++) {
                float db = d[b];
                for (int i = b * bs; i < (b + 1) * bs; i++) v[i] = q[i] * db;
            }
        });
        valuesReady = true;
        return v;
    }
}
