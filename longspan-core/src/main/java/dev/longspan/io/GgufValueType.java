package dev.longspan.io;

import java.util.function.Supplier;

/** GGUF metadata value types, with their ids in the file. */
public enum GgufValueType {
    UINT8(0, 1), INT8(1, 1), UINT16(2, 2), INT16(3, 2), UINT32(4, 4), INT32(5, 4), FLOAT32(6, 4), BOOL(7, 1),
    STRING(8, 8), ARRAY(9, 12), UINT64(10, 8), INT64(11, 8), FLOAT64(12, 8);

    public final int id;
    private final int minBytes;

    GgufValueType(int id, int minBytes) {
        this.id = id;
        this.minBytes = minBytes;
    }

    /** Smallest encoding of one value (a string's length field, an array's type + count). */
    int minBytes() { return minBytes; }

    public static GgufValueType byId(int id) {
        for (GgufValueType t : values()) if (t.id == id) return t;
        return null;
    }

    /**
     * A metadata array: {@code data} is byte[] (UINT8/INT8), short[] (UINT16/INT16), int[] (UINT32/INT32),
     * long[] (UINT64/INT64), float[], double[], boolean[], String[] or Array[] (nested arrays).
     */
    public record Array(GgufValueType type, Object data) {
        public int length() { return java.lang.reflect.Array.getLength(data); }

        float[] toFloats(Supplier<RuntimeException> err) {
            int n = length();
            float[] out = new float[n];
            switch (data) {
                case float[] a -> System.arraycopy(a, 0, out, 0, n);
                case double[] a -> { for (int i = 0; i < n; i++) out[i] = (float) a[i]; }
                case int[] a -> { for (int i = 0; i < n; i++) out[i] = type == UINT32 ? Integer.toUnsignedLong(a[i]) : a[i]; }
                case long[] a -> { for (int i = 0; i < n; i++) out[i] = a[i]; }
                case short[] a -> { for (int i = 0; i < n; i++) out[i] = type == UINT16 ? a[i] & 0xffff : a[i]; }
                case byte[] a -> { for (int i = 0; i < n; i++) out[i] = type == UINT8 ? a[i] & 0xff : a[i]; }
                default -> throw err.get();
            }
            return out;
        }

        int[] toInts(Supplier<RuntimeException> err) {
            int n = length();
            int[] out = new int[n];
            switch (data) {
                case int[] a -> System.arraycopy(a, 0, out, 0, n);
                case long[] a -> { for (int i = 0; i < n; i++) out[i] = Math.toIntExact(a[i]); }
                case short[] a -> { for (int i = 0; i < n; i++) out[i] = type == UINT16 ? a[i] & 0xffff : a[i]; }
                case byte[] a -> { for (int i = 0; i < n; i++) out[i] = type == UINT8 ? a[i] & 0xff : a[i]; }
                default -> throw err.get();
            }
            return out;
        }
    }
}
