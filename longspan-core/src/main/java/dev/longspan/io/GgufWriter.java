package dev.longspan.io;

import dev.longspan.kernel.GgmlType;
import dev.longspan.tensor.Parallel;
import dev.longspan.util.LongspanException;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes a GGUF v3 file (see {@link GgufFile} for the layout): metadata of every GGUF type and
 * tensors in F32, F16, Q8_0 (quantized like ggml's reference {@code quantize_row_q8_0_ref}) or raw
 * bytes of any ggml type, each aligned to {@code general.alignment} (default 32). The file is
 * written atomically. Tensor dims are given GGUF-style, innermost first (ne[0] = row length).
 */
public final class GgufWriter {
    private record Meta(GgufValueType type, Object value) {}

    @FunctionalInterface
    private interface Payload {
        void write(OutputStream out) throws IOException;
    }

    private record TensorEntry(String name, GgmlType type, long[] ne, long bytes, Payload payload) {}

    private final Map<String, Meta> metadata = new LinkedHashMap<>();
    private final Map<String, TensorEntry> tensors = new LinkedHashMap<>();
    private int alignment = GgufFile.DEFAULT_ALIGNMENT;

    /** Sets the data alignment (a power of two) and records it as general.alignment. */
    public GgufWriter alignment(int a) {
        if (a <= 0 || (a & (a - 1)) != 0) throw new LongspanException("GGUF alignment must be a power of two, got " + a);
        alignment = a;
        return put("general.alignment", GgufValueType.UINT32, (long) a);
    }

    /**
     * Adds (or replaces) a metadata value of the given type: a Number for numeric types, Boolean,
     * String, or a {@link GgufValueType.Array} for ARRAY.
     */
    public GgufWriter put(String key, GgufValueType type, Object value) {
        boolean ok = switch (type) {
            case UINT8, INT8, UINT16, INT16, UINT32, INT32, UINT64, INT64, FLOAT32, FLOAT64 -> value instanceof Number;
            case BOOL -> value instanceof Boolean;
            case STRING -> value instanceof String;
            case ARRAY -> value instanceof GgufValueType.Array;
        };
        if (!ok) throw new LongspanException("GGUF metadata '" + key + "': value " + value + " does not fit type " + type);
        if (type == GgufValueType.ARRAY) checkArray(key, (GgufValueType.Array) value);
        metadata.put(key, new Meta(type, value));
        return this;
    }

    private static void checkArray(String key, GgufValueType.Array a) {
        boolean ok = switch (a.type()) {
            case UINT8, INT8 -> a.data() instanceof byte[];
            case UINT16, INT16 -> a.data() instanceof short[];
            case UINT32, INT32 -> a.data() instanceof int[];
            case UINT64, INT64 -> a.data() instanceof long[];
            case FLOAT32 -> a.data() instanceof float[];
            case FLOAT64 -> a.data() instanceof double[];
            case BOOL -> a.data() instanceof boolean[];
            case STRING -> a.data() instanceof String[];
            case ARRAY -> a.data() instanceof GgufValueType.Array[];
        };
        if (!ok) throw new LongspanException("GGUF metadata '" + key + "': array data " + a.data().getClass().getSimpleName() + " does not fit element type " + a.type());
        if (a.data() instanceof GgufValueType.Array[] nested) for (GgufValueType.Array n : nested) checkArray(key, n);
    }

    public GgufWriter putString(String key, String v) { return put(key, GgufValueType.STRING, v); }
    public GgufWriter putU32(String key, long v) { return put(key, GgufValueType.UINT32, v); }
    public GgufWriter putI32(String key, int v) { return put(key, GgufValueType.INT32, v); }
    public GgufWriter putU64(String key, long v) { return put(key, GgufValueType.UINT64, v); }
    public GgufWriter putI64(String key, long v) { return put(key, GgufValueType.INT64, v); }
    public GgufWriter putF32(String key, float v) { return put(key, GgufValueType.FLOAT32, v); }
    public GgufWriter putF64(String key, double v) { return put(key, GgufValueType.FLOAT64, v); }
    public GgufWriter putBool(String key, boolean v) { return put(key, GgufValueType.BOOL, v); }
    public GgufWriter putStringArray(String key, String[] v) { return put(key, GgufValueType.ARRAY, new GgufValueType.Array(GgufValueType.STRING, v)); }
    public GgufWriter putF32Array(String key, float[] v) { return put(key, GgufValueType.ARRAY, new GgufValueType.Array(GgufValueType.FLOAT32, v)); }
    public GgufWriter putI32Array(String key, int[] v) { return put(key, GgufValueType.ARRAY, new GgufValueType.Array(GgufValueType.INT32, v)); }

    private static long count(String name, long[] ne) {
        if (ne.length < 1 || ne.length > 4) throw new LongspanException("GGUF tensor '" + name + "': " + ne.length + " dimensions (expected 1..4)");
        long n = 1;
        for (long d : ne) {
            if (d < 0) throw new LongspanException("GGUF tensor '" + name + "': negative dimension");
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    private GgufWriter add(TensorEntry e) {
        if (tensors.containsKey(e.name())) throw new LongspanException("GGUF tensor '" + e.name() + "' added twice");
        tensors.put(e.name(), e);
        return this;
    }

    private static void checkLength(String name, long n, int length) {
        if (n != length) throw new LongspanException("GGUF tensor '" + name + "': " + length + " values for " + n + " elements");
    }

    /** An F32 tensor; ne innermost first. */
    public GgufWriter tensorF32(String name, long[] ne, float[] data) {
        long n = count(name, ne);
        checkLength(name, n, data.length);
        return add(new TensorEntry(name, GgmlType.F32, ne.clone(), 4 * n, out -> {
            ByteBuffer bb = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
            for (float v : data) {
                if (!bb.hasRemaining()) { out.write(bb.array(), 0, bb.position()); bb.clear(); }
                bb.putFloat(v);
            }
            out.write(bb.array(), 0, bb.position());
        }));
    }

    /** An F16 tensor (values rounded to nearest half, ties to even, like ggml). */
    public GgufWriter tensorF16(String name, long[] ne, float[] data) {
        long n = count(name, ne);
        checkLength(name, n, data.length);
        return add(new TensorEntry(name, GgmlType.F16, ne.clone(), 2 * n, out -> {
            ByteBuffer bb = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
            for (float v : data) {
                if (!bb.hasRemaining()) { out.write(bb.array(), 0, bb.position()); bb.clear(); }
                bb.putShort(Float.floatToFloat16(v));
            }
            out.write(bb.array(), 0, bb.position());
        }));
    }

    /** A Q8_0 tensor quantized like ggml's reference: d = max|x|/127 per 32 values, q = round(x/d). */
    public GgufWriter tensorQ8_0(String name, long[] ne, float[] data) {
        long n = count(name, ne);
        checkLength(name, n, data.length);
        if (ne[0] % 32 != 0) throw new LongspanException("GGUF tensor '" + name + "': Q8_0 needs a row length divisible by 32, got " + ne[0]);
        byte[] q = quantizeQ8_0(data);
        return tensorRaw(name, GgmlType.Q8_0, ne, q);
    }

    /** ggml's quantize_row_q8_0_ref: blocks of 32 as (half d, int8 q[32]). */
    public static byte[] quantizeQ8_0(float[] x) {
        byte[] b = new byte[(int) GgmlType.Q8_0.rowBytes(x.length)];
        quantize(GgmlType.Q8_0, x, 0, x.length, b, 0);
        return b;
    }

    /** Rows of a tensor produced on demand: dst[0 .. count·rowLength) = rows r0 .. r0+count-1. Called from several threads. */
    @FunctionalInterface
    public interface Rows {
        void fill(long r0, int count, float[] dst);
    }

    /** The types {@link #tensor(String, GgmlType, long[], Rows)} and {@link #quantize} write. */
    public static final java.util.Set<GgmlType> WRITABLE = java.util.EnumSet.of(GgmlType.F32, GgmlType.F16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_K);

    /**
     * A tensor of type F32, F16, Q8_0, Q4_0 or Q4_K whose rows are generated while the file is
     * written, a few megabytes at a time (in parallel), so a tensor larger than any array, or a
     * model larger than memory, can be written.
     */
    public GgufWriter tensor(String name, GgmlType type, long[] ne, Rows rows) {
        long n = count(name, ne);
        if (!WRITABLE.contains(type)) throw new LongspanException("GGUF tensor '" + name + "': writing type " + type + " is not supported (" + WRITABLE + ")");
        if (ne[0] % type.blockSize != 0) throw new LongspanException("GGUF tensor '" + name + "': row length " + ne[0] + " is not a multiple of the " + type + " block size " + type.blockSize);
        if (ne[0] > Integer.MAX_VALUE / 2) throw new LongspanException("GGUF tensor '" + name + "': rows of " + ne[0] + " elements are too long");
        int cols = (int) ne[0];
        long nRows = ne[0] == 0 ? 0 : n / ne[0];
        int rb = (int) type.rowBytes(cols);
        int part = Math.max(1, (1 << 20) / Math.max(1, cols));   // rows one task generates: ~1M values
        return add(new TensorEntry(name, type, ne.clone(), n / type.blockSize * type.typeSize, out -> {
            int parts = 4 * Parallel.threads();
            byte[] buf = new byte[(int) Math.min((long) parts * part * rb, Math.max(1, nRows * rb))];
            for (long r = 0; r < nRows; ) {
                long r0 = r;
                int batchRows = (int) Math.min(nRows - r0, (long) parts * part);
                int tasks = (batchRows + part - 1) / part;
                Parallel.forEachTask(tasks, i -> {
                    int c = Math.min(part, batchRows - i * part);
                    float[] x = new float[c * cols];
                    rows.fill(r0 + (long) i * part, c, x);
                    quantize(type, x, 0, c * cols, buf, i * part * rb);
                });
                out.write(buf, 0, batchRows * rb);
                r += batchRows;
            }
        }));
    }

    /** Writes n values of x (n a multiple of the block size) as type t into dst at dstOff, like ggml's reference quantizers. */
    public static void quantize(GgmlType t, float[] x, int xo, int n, byte[] dst, int dstOff) {
        ByteBuffer bb = ByteBuffer.wrap(dst, dstOff, (int) t.rowBytes(n)).order(ByteOrder.LITTLE_ENDIAN);
        switch (t) {
            case F32 -> { for (int i = 0; i < n; i++) bb.putFloat(x[xo + i]); }
            case F16 -> { for (int i = 0; i < n; i++) bb.putShort(Float.floatToFloat16(x[xo + i])); }
            case Q8_0 -> { for (int b = 0; b < n / 32; b++) q8_0Block(x, xo + 32 * b, bb); }
            case Q4_0 -> { for (int b = 0; b < n / 32; b++) q4_0Block(x, xo + 32 * b, bb); }
            case Q4_K -> { for (int b = 0; b < n / 256; b++) q4_KBlock(x, xo + 256 * b, bb); }
            default -> throw new LongspanException("quantizing to " + t + " is not supported (" + WRITABLE + ")");
        }
    }

    /** ggml's quantize_row_q4_0_ref: d = (the value of largest magnitude) / −8, q = min(15, trunc(x/d + 8.5)). */
    public static byte[] quantizeQ4_0(float[] x) {
        byte[] b = new byte[(int) GgmlType.Q4_0.rowBytes(x.length)];
        quantize(GgmlType.Q4_0, x, 0, x.length, b, 0);
        return b;
    }

    /** ggml's quantize_row_q4_K_ref (make_qkx2_quants per 32 values, 6-bit scales and mins). */
    public static byte[] quantizeQ4_K(float[] x) {
        byte[] b = new byte[(int) GgmlType.Q4_K.rowBytes(x.length)];
        quantize(GgmlType.Q4_K, x, 0, x.length, b, 0);
        return b;
    }

    private static void q8_0Block(float[] x, int o, ByteBuffer bb) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[o + j]));
        float d = amax / 127f;
        float id = d != 0 ? 1f / d : 0f;
        bb.putShort(Float.floatToFloat16(d));
        for (int j = 0; j < 32; j++) {
            float v = x[o + j] * id;
            // C roundf: half away from zero
            bb.put((byte) (int) Math.copySign(Math.floor(Math.abs((double) v) + 0.5), v));
        }
    }

    private static void q4_0Block(float[] x, int o, ByteBuffer bb) {
        float amax = 0, max = 0;
        for (int j = 0; j < 32; j++) {
            float v = x[o + j];
            if (amax < Math.abs(v)) { amax = Math.abs(v); max = v; }
        }
        float d = max / -8;
        float id = d != 0 ? 1f / d : 0f;
        bb.putShort(Float.floatToFloat16(d));
        for (int j = 0; j < 16; j++) {
            // C's (int8_t) conversion truncates toward zero
            int q0 = Math.min(15, (int) (x[o + j] * id + 8.5f)), q1 = Math.min(15, (int) (x[o + 16 + j] * id + 8.5f));
            bb.put((byte) (q0 | (q1 << 4)));
        }
    }

    // ggml's nearest_int: round half to even (for |v| < 2^22)
    private static int nearestInt(float v) {
        return (int) Math.rint(v);
    }

    private static void q4_KBlock(float[] x, int o, ByteBuffer bb) {
        int[] L = new int[256], laux = new int[32];
        float[] weights = new float[32], mins = new float[8], scales = new float[8];
        float maxScale = 0, maxMin = 0;
        for (int j = 0; j < 8; j++) {
            float sumX2 = 0;
            for (int l = 0; l < 32; l++) sumX2 += x[o + 32 * j + l] * x[o + 32 * j + l];
            float avX = (float) Math.sqrt(sumX2 / 32);
            for (int l = 0; l < 32; l++) weights[l] = avX + Math.abs(x[o + 32 * j + l]);
            scales[j] = makeQkx2Quants(x, o + 32 * j, weights, L, 32 * j, mins, j, laux);
            if (scales[j] > maxScale) maxScale = scales[j];
            if (mins[j] > maxMin) maxMin = mins[j];
        }
        float invScale = maxScale > 0 ? 63f / maxScale : 0f, invMin = maxMin > 0 ? 63f / maxMin : 0f;
        byte[] sc = new byte[12];
        for (int j = 0; j < 8; j++) {
            int ls = Math.min(63, nearestInt(invScale * scales[j]) & 0xff), lm = Math.min(63, nearestInt(invMin * mins[j]) & 0xff);
            if (j < 4) {
                sc[j] = (byte) ls;
                sc[j + 4] = (byte) lm;
            } else {
                sc[j + 4] = (byte) ((ls & 0xF) | ((lm & 0xF) << 4));
                sc[j - 4] |= (byte) ((ls >> 4) << 6);
                sc[j] |= (byte) ((lm >> 4) << 6);
            }
        }
        short dh = Float.floatToFloat16(maxScale / 63f), mh = Float.floatToFloat16(maxMin / 63f);
        for (int j = 0; j < 8; j++) {
            int s, m;
            if (j < 4) { s = sc[j] & 63; m = sc[j + 4] & 63; }
            else { s = (sc[j + 4] & 0xF) | ((sc[j - 4] & 0xff) >> 6 << 4); m = ((sc[j + 4] & 0xff) >> 4) | ((sc[j] & 0xff) >> 6 << 4); }
            float d = Float.float16ToFloat(dh) * s;
            if (d == 0) continue;
            float dm = Float.float16ToFloat(mh) * m;
            for (int i = 0; i < 32; i++) L[32 * j + i] = Math.max(0, Math.min(15, nearestInt((x[o + 32 * j + i] + dm) / d)));
        }
        bb.putShort(dh).putShort(mh).put(sc);
        for (int j = 0; j < 256; j += 64) for (int l = 0; l < 32; l++) bb.put((byte) (L[j + l] | (L[j + l + 32] << 4)));
    }

    // ggml's make_qkx2_quants(32, 15, x, weights, L, &the_min, Laux, -1, 0.1, 20, false); returns the scale
    private static float makeQkx2Quants(float[] x, int xo, float[] w, int[] L, int lo, float[] theMin, int mi, int[] laux) {
        final int n = 32, nmax = 15, nstep = 20;
        final float rmin = -1f, rdelta = 0.1f;
        float min = x[xo], max = x[xo], sumW = w[0], sumX = sumW * x[xo];
        for (int i = 1; i < n; i++) {
            if (x[xo + i] < min) min = x[xo + i];
            if (x[xo + i] > max) max = x[xo + i];
            sumW += w[i];
            sumX += w[i] * x[xo + i];
        }
        if (min > 0) min = 0;
        if (max == min) {
            for (int i = 0; i < n; i++) L[lo + i] = 0;
            theMin[mi] = -min;
            return 0f;
        }
        float iscale = nmax / (max - min), scale = 1 / iscale, best = 0;
        for (int i = 0; i < n; i++) {
            int l = Math.max(0, Math.min(nmax, nearestInt(iscale * (x[xo + i] - min))));
            L[lo + i] = l;
            float diff = scale * l + min - x[xo + i];
            best += w[i] * (diff * diff);
        }
        for (int is = 0; is <= nstep; is++) {
            iscale = (rmin + rdelta * is + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXl = 0;
            for (int i = 0; i < n; i++) {
                int l = Math.max(0, Math.min(nmax, nearestInt(iscale * (x[xo + i] - min))));
                laux[i] = l;
                sumL += w[i] * l;
                sumL2 += w[i] * l * l;
                sumXl += w[i] * l * x[xo + i];
            }
            float D = sumW * sumL2 - sumL * sumL;
            if (D > 0) {
                float thisScale = (sumW * sumXl - sumX * sumL) / D, thisMin = (sumL2 * sumX - sumL * sumXl) / D;
                if (thisMin > 0) {
                    thisMin = 0;
                    thisScale = sumXl / sumL2;
                }
                float err = 0;
                for (int i = 0; i < n; i++) {
                    float diff = thisScale * laux[i] + thisMin - x[xo + i];
                    err += w[i] * (diff * diff);
                }
                if (err < best) {
                    System.arraycopy(laux, 0, L, lo, n);
                    best = err;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        theMin[mi] = -min;
        return scale;
    }

    /** A tensor of any ggml type from its raw bytes (size checked against ne and the type's block layout). */
    public GgufWriter tensorRaw(String name, GgmlType type, long[] ne, byte[] bytes) {
        long n = count(name, ne);
        if (ne[0] % type.blockSize != 0) throw new LongspanException("GGUF tensor '" + name + "': row length " + ne[0] + " is not a multiple of the " + type + " block size");
        long expect = n / type.blockSize * type.typeSize;
        if (expect != bytes.length) throw new LongspanException("GGUF tensor '" + name + "': " + bytes.length + " bytes, " + type + " " + java.util.Arrays.toString(ne) + " needs " + expect);
        return add(new TensorEntry(name, type, ne.clone(), bytes.length, out -> out.write(bytes)));
    }

    /** Writes the file atomically. */
    public void write(Path path) {
        // offsets of the tensor data, each aligned, relative to the data section
        List<Long> offsets = new ArrayList<>();
        long off = 0;
        for (TensorEntry t : tensors.values()) {
            offsets.add(off);
            off = align(off + t.bytes(), alignment);
        }
        HeaderBuffer h = new HeaderBuffer();
        h.u32(GgufFile.MAGIC);
        h.u32(3);
        h.u64(tensors.size());
        h.u64(metadata.size());
        for (Map.Entry<String, Meta> e : metadata.entrySet()) {
            h.string(e.getKey());
            h.u32(e.getValue().type().id);
            h.value(e.getValue().type(), e.getValue().value());
        }
        int i = 0;
        for (TensorEntry t : tensors.values()) {
            h.string(t.name());
            h.u32(t.ne().length);
            for (long d : t.ne()) h.u64(d);
            h.u32(t.type().id);
            h.u64(offsets.get(i++));
        }
        byte[] header = h.bytes();
        long headerPadded = align(header.length, alignment);
        AtomicFiles.write(path, out -> {
            out.write(header);
            out.write(new byte[(int) (headerPadded - header.length)]);
            long pos = 0;
            for (TensorEntry t : tensors.values()) {
                t.payload().write(out);
                long end = align(pos + t.bytes(), alignment);
                out.write(new byte[(int) (end - pos - t.bytes())]);
                pos = end;
            }
        });
    }

    private static long align(long x, int a) {
        return (x + a - 1) / a * a;
    }

    private static final class HeaderBuffer {
        private ByteBuffer bb = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);

        private void room(long n) {
            if (bb.remaining() < n) {
                long cap = Math.max((long) bb.capacity() * 2, bb.position() + n + 1024);
                if (cap > Integer.MAX_VALUE - 8) throw new LongspanException("GGUF header too large");
                ByteBuffer nb = ByteBuffer.allocate((int) cap).order(ByteOrder.LITTLE_ENDIAN);
                bb.flip();
                nb.put(bb);
                bb = nb;
            }
        }

        void u8(int v) { room(1); bb.put((byte) v); }
        void u16(int v) { room(2); bb.putShort((short) v); }
        void u32(int v) { room(4); bb.putInt(v); }
        void u64(long v) { room(8); bb.putLong(v); }
        void f32(float v) { room(4); bb.putFloat(v); }
        void f64(double v) { room(8); bb.putDouble(v); }

        void string(String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            u64(b.length);
            room(b.length);
            bb.put(b);
        }

        void value(GgufValueType t, Object v) {
            switch (t) {
                case UINT8, INT8 -> u8(((Number) v).intValue());
                case UINT16, INT16 -> u16(((Number) v).intValue());
                case UINT32, INT32 -> u32(((Number) v).intValue());
                case UINT64, INT64 -> u64(((Number) v).longValue());
                case FLOAT32 -> f32(((Number) v).floatValue());
                case FLOAT64 -> f64(((Number) v).doubleValue());
                case BOOL -> u8((Boolean) v ? 1 : 0);
                case STRING -> string((String) v);
                case ARRAY -> array((GgufValueType.Array) v);
            }
        }

        void array(GgufValueType.Array a) {
            u32(a.type().id);
            u64(a.length());
            switch (a.data()) {
                case byte[] x -> { for (byte e : x) u8(e); }
                case short[] x -> { for (short e : x) u16(e); }
                case int[] x -> { for (int e : x) u32(e); }
                case long[] x -> { for (long e : x) u64(e); }
                case float[] x -> { for (float e : x) f32(e); }
                case double[] x -> { for (double e : x) f64(e); }
                case boolean[] x -> { for (boolean e : x) u8(e ? 1 : 0); }
                case String[] x -> { for (String e : x) string(e); }
                case GgufValueType.Array[] x -> { for (GgufValueType.Array e : x) array(e); }
                default -> throw new IllegalStateException("unexpected array data " + a.data().getClass());
            }
        }

        byte[] bytes() { return java.util.Arrays.copyOf(bb.array(), bb.position()); }
    }
}
