package dev.longspan.kernel;

/**
 * The tensor element types of ggml / GGUF, with their ggml type ids and block layouts.
 * A quantized row of n elements is n / blockSize blocks of typeSize bytes each;
 * plain types have blockSize 1. Ids and sizes follow ggml's {@code ggml_type} and
 * {@code block_*} structs ({@code QK_K} = 256 for the K-quants).
 */
public enum GgmlType {
    F32(0, 1, 4),
    F16(1, 1, 2),
    Q4_0(2, 32, 18),       // half d; u8 qs[16]                       x = (nibble - 8)·d
    Q4_1(3, 32, 20),       // half d, m; u8 qs[16]                    x = nibble·d + m
    Q5_0(6, 32, 22),       // half d; u8 qh[4]; u8 qs[16]             x = (5-bit - 16)·d
    Q5_1(7, 32, 24),       // half d, m; u8 qh[4]; u8 qs[16]          x = 5-bit·d + m
    Q8_0(8, 32, 34),       // half d; i8 qs[32]                       x = q·d
    Q8_1(9, 32, 36),       // half d, s; i8 qs[32]                    x = q·d
    Q2_K(10, 256, 84),     // u8 scales[16]; u8 qs[64]; half d, dmin
    Q3_K(11, 256, 110),    // u8 hmask[32]; u8 qs[64]; u8 scales[12]; half d
    Q4_K(12, 256, 144),    // half d, dmin; u8 scales[12]; u8 qs[128]
    Q5_K(13, 256, 176),    // half d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]
    Q6_K(14, 256, 210),    // u8 ql[128]; u8 qh[64]; i8 scales[16]; half d
    Q8_K(15, 256, 292),    // float d; i8 qs[256]; i16 bsums[16]
    IQ2_XXS(16, 256, 66),
    IQ2_XS(17, 256, 74),
    IQ3_XXS(18, 256, 98),
    IQ1_S(19, 256, 50),
    IQ4_NL(20, 32, 18),    // half d; u8 qs[16]                       x = d·level[nibble]
    IQ3_S(21, 256, 110),
    IQ2_S(22, 256, 82),
    IQ4_XS(23, 256, 136),  // half d; u16 scales_h; u8 scales_l[4]; u8 qs[128]
    I8(24, 1, 1),
    I16(25, 1, 2),
    I32(26, 1, 4),
    I64(27, 1, 8),
    F64(28, 1, 8),
    IQ1_M(29, 256, 56),
    BF16(30, 1, 2),
    TQ1_0(34, 256, 54),    // u8 qs[48] (5 base-3 digits each); u8 qh[4] (4 digits each); half d   x = (digit - 1)·d
    TQ2_0(35, 256, 66),    // u8 qs[64] (4 two-bit values each); half d                          x = (pair - 1)·d
    MXFP4(39, 32, 17),
    NVFP4(40, 64, 36),     // u8 d[4] (UE4M3 per 16); u8 qs[32] (E2M1)   x = level·d[sub]
    Q1_0(41, 128, 18),     // half d; u8 qs[16] (one bit each)          x = bit ? d : −d
    Q2_0(42, 64, 18);      // half d; u8 qs[16] (two bits each)         x = (pair − 1)·d

    /** ggml's type id (the number stored in a GGUF tensor info). */
    public final int id;
    /** Elements per block (1 for plain types). */
    public final int blockSize;
    /** Bytes per block. */
    public final int typeSize;

    private static final GgmlType[] BY_ID = new GgmlType[64];

    static {
        for (GgmlType t : values()) BY_ID[t.id] = t;
    }

    GgmlType(int id, int blockSize, int typeSize) {
        this.id = id;
        this.blockSize = blockSize;
        this.typeSize = typeSize;
    }

    /** The type with this ggml id, or null when the id is unknown. */
    public static GgmlType byId(int id) {
        return id >= 0 && id < BY_ID.length ? BY_ID[id] : null;
    }

    /** Bytes of a row of n elements (n must be a multiple of blockSize). */
    public long rowBytes(long n) {
        return n / blockSize * typeSize;
    }

    /** True when {@link QuantKernels#dequantize} can turn this type into floats. */
    public boolean dequantizable() {
        return switch (this) {
            case F32, F16, BF16, F64, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K, IQ4_NL, IQ4_XS, TQ1_0, TQ2_0,
                 IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, MXFP4, NVFP4, Q1_0, Q2_0 -> true;
            default -> false;
        };
    }

    /** True for the types {@link QuantKernels#dot} works on directly. */
    public boolean dotSupported() {
        return switch (this) {
            case F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K -> true;
            default -> false;
        };
    }
}
