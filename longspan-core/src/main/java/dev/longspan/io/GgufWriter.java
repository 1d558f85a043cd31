package dev.longspan.io;

import dev.longspan.kernel.GgmlType;
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
        int nb = x.length / 32;
        ByteBuffer bb = ByteBuffer.allocate(34 * nb).order(ByteOrder.LITTLE_ENDIAN);
        for (int b = 0; b < nb; b++) {
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[32 * b + j]));
            float d = amax / 127f;
            float id = d != 0 ? 1f / d : 0f;
            bb.putShort(Float.floatToFloat16(d));
            for (int j = 0; j < 32; j++) {
                float v = x[32 * b + j] * id;
                // C roundf: half away from zero
                bb.put((byte) (int) Math.copySign(Math.floor(Math.abs((double) v) + 0.5), v));
            }
        }
        return bb.array();
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
