package dev.longspan.io;

import dev.longspan.kernel.GgmlType;
import dev.longspan.kernel.QuantKernels;
import dev.longspan.util.LongspanException;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A GGUF file (versions 2 and 3), memory-mapped through the FFM API so files of any size work.
 *
 * <p>Layout (all little-endian): magic {@code "GGUF"}, u32 version, u64 tensor count, u64 metadata
 * count; metadata as (string key, u32 value type, value); tensor infos as (string name, u32 n_dims,
 * u64 ne[n_dims] innermost first, u32 ggml type, u64 offset); padding to {@code general.alignment}
 * (default 32); tensor data, each offset relative to the start of the data and aligned.
 * Strings are u64 length + UTF-8 bytes; arrays are u32 element type + u64 count + elements.
 *
 * <p>Only the header is read on open, with every length checked against the file size before it is
 * used; a malformed file gives one {@link LongspanException} naming the file and the problem.
 * Metadata values are {@link Long} (all integer types; u64 as raw bits), {@link Float},
 * {@link Double}, {@link Boolean}, {@link String} or {@link GgufValueType.Array}.
 */
public final class GgufFile implements AutoCloseable {

    /** One tensor: {@code ne} in GGUF order (ne[0] = row length), {@code offset} absolute in the file. */
    public record Tensor(String name, GgmlType type, long[] ne, long offset, long bytes) {
        public long elements() {
            long n = 1;
            for (long d : ne) n *= d;
            return n;
        }

        /** The shape outermost first (the reverse of ne), e.g. [rows, cols] for a matrix. */
        public long[] shape() {
            long[] s = new long[ne.length];
            for (int i = 0; i < ne.length; i++) s[i] = ne[ne.length - 1 - i];
            return s;
        }

        /** Row length (ne[0]). */
        public long cols() { return ne[0]; }

        /** Number of rows (product of ne[1..]). */
        public long rows() { return ne[0] == 0 ? 0 : elements() / ne[0]; }
    }

    public static final int MAGIC = 0x46554747; // "GGUF" read as little-endian u32
    public static final int DEFAULT_ALIGNMENT = 32;
    private static final int MAX_DIMS = 4;

    static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Path path;
    private final Arena arena;
    private final MemorySegment data;
    private final int version;
    private final int alignment;
    private final long dataStart;
    private final Map<String, Object> metadata;
    private final Map<String, GgufValueType> metadataTypes;
    private final Map<String, Tensor> tensors;

    private GgufFile(Path path, Arena arena, MemorySegment data, int version, int alignment, long dataStart,
                     Map<String, Object> metadata, Map<String, GgufValueType> types, Map<String, Tensor> tensors) {
        this.path = path;
        this.arena = arena;
        this.data = data;
        this.version = version;
        this.alignment = alignment;
        this.dataStart = dataStart;
        this.metadata = metadata;
        this.metadataTypes = types;
        this.tensors = tensors;
    }

    /** Reads a GGUF header from a bounded cursor over the mapping; any overrun is a truncated file. */
    private static final class Reader {
        final Path path;
        final MemorySegment seg;
        final long size;
        long pos;

        Reader(Path path, MemorySegment seg) {
            this.path = path;
            this.seg = seg;
            this.size = seg.byteSize();
        }

        void need(long n, String what) {
            if (n < 0 || pos + n > size || pos + n < pos) {
                throw bad(path, "truncated header: " + what + " needs " + n + " bytes at offset " + pos + " but the file has " + size);
            }
        }

        int u32(String what) { need(4, what); int v = seg.get(U32, pos); pos += 4; return v; }
        long u64(String what) { need(8, what); long v = seg.get(U64, pos); pos += 8; return v; }

        String string(String what) {
            long n = u64(what + " length");
            if (n < 0 || n > size - pos) throw bad(path, "truncated header: " + what + " claims " + Long.toUnsignedString(n) + " bytes at offset " + pos + " but the file has " + size);
            if (n > Integer.MAX_VALUE - 8) throw bad(path, what + " is " + n + " bytes long (absurd)");
            byte[] b = seg.asSlice(pos, n).toArray(ValueLayout.JAVA_BYTE);
            pos += n;
            return new String(b, StandardCharsets.UTF_8);
        }

        Object value(GgufValueType t, String key, int depth) {
            return switch (t) {
                case UINT8 -> { need(1, key); yield (long) (seg.get(ValueLayout.JAVA_BYTE, pos++) & 0xff); }
                case INT8 -> { need(1, key); yield (long) seg.get(ValueLayout.JAVA_BYTE, pos++); }
                case UINT16 -> { need(2, key); long v = seg.get(U16, pos) & 0xffff; pos += 2; yield v; }
                case INT16 -> { need(2, key); long v = seg.get(U16, pos); pos += 2; yield v; }
                case UINT32 -> Integer.toUnsignedLong(u32(key));
                case INT32 -> (long) u32(key);
                case UINT64, INT64 -> u64(key);
                case FLOAT32 -> { need(4, key); float v = seg.get(F32, pos); pos += 4; yield v; }
                case FLOAT64 -> { need(8, key); double v = seg.get(F64, pos); pos += 8; yield v; }
                case BOOL -> {
                    need(1, key);
                    int b = seg.get(ValueLayout.JAVA_BYTE, pos++);
                    if (b != 0 && b != 1) throw bad(path, "metadata '" + key + "': bool value " + b + " is neither 0 nor 1");
                    yield b == 1;
                }
                case STRING -> string("metadata '" + key + "' string");
                case ARRAY -> array(key, depth);
            };
        }

        GgufValueType.Array array(String key, int depth) {
            if (depth > 8) throw bad(path, "metadata '" + key + "': arrays nested more than 8 deep");
            int et = u32("metadata '" + key + "' array type");
            GgufValueType type = GgufValueType.byId(et);
            if (type == null) throw bad(path, "metadata '" + key + "': unknown array element type " + et);
            long count = u64("metadata '" + key + "' array length");
            long minBytes = type.minBytes();
            if (count < 0 || count > (size - pos) / minBytes) {
                throw bad(path, "truncated header: metadata '" + key + "' claims " + Long.toUnsignedString(count) + " " + type
                        + " elements, more than the " + (size - pos) + " bytes left");
            }
            int n = (int) count;
            Object arr = switch (type) {
                case UINT8, INT8 -> { byte[] a = seg.asSlice(pos, n).toArray(ValueLayout.JAVA_BYTE); pos += n; yield a; }
                case UINT16, INT16 -> { short[] a = new short[n]; MemorySegment.copy(seg, U16, pos, a, 0, n); pos += 2L * n; yield a; }
                case UINT32, INT32 -> { int[] a = new int[n]; MemorySegment.copy(seg, U32, pos, a, 0, n); pos += 4L * n; yield a; }
                case UINT64, INT64 -> { long[] a = new long[n]; MemorySegment.copy(seg, U64, pos, a, 0, n); pos += 8L * n; yield a; }
                case FLOAT32 -> { float[] a = new float[n]; MemorySegment.copy(seg, F32, pos, a, 0, n); pos += 4L * n; yield a; }
                case FLOAT64 -> { double[] a = new double[n]; MemorySegment.copy(seg, F64, pos, a, 0, n); pos += 8L * n; yield a; }
                case BOOL -> {
                    boolean[] a = new boolean[n];
                    for (int i = 0; i < n; i++) a[i] = (Boolean) value(GgufValueType.BOOL, key, depth);
                    yield a;
                }
                case STRING -> {
                    String[] a = new String[n];
                    for (int i = 0; i < n; i++) a[i] = string("metadata '" + key + "' element " + i);
                    yield a;
                }
                case ARRAY -> {
                    GgufValueType.Array[] a = new GgufValueType.Array[n];
                    for (int i = 0; i < n; i++) a[i] = array(key, depth + 1);
                    yield a;
                }
            };
            return new GgufValueType.Array(type, arr);
        }
    }

    public static GgufFile open(Path path) {
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 24) throw bad(path, "file is " + size + " bytes, too short for a GGUF header (24 bytes)");
            MemorySegment seg = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            Reader r = new Reader(path, seg);
            int magic = r.u32("magic");
            if (magic != MAGIC) {
                throw bad(path, String.format("not a GGUF file (magic 0x%08x, expected 0x%08x \"GGUF\")", magic, MAGIC));
            }
            int version = r.u32("version");
            if (version != 2 && version != 3) {
                throw bad(path, "unsupported GGUF version " + Integer.toUnsignedString(version) + " (supported: 2, 3)");
            }
            long nTensors = r.u64("tensor count");
            long nKv = r.u64("metadata count");
            // a metadata entry takes at least 8 (key length) + 4 (type) + 1 bytes; a tensor info at least 8 + 4 + 8 + 4 + 8
            if (nKv < 0 || nKv > (size - r.pos) / 13) throw bad(path, "absurd metadata count " + Long.toUnsignedString(nKv) + " for a file of " + size + " bytes");
            if (nTensors < 0 || nTensors > (size - r.pos) / 32) throw bad(path, "absurd tensor count " + Long.toUnsignedString(nTensors) + " for a file of " + size + " bytes");

            Map<String, Object> meta = new LinkedHashMap<>();
            Map<String, GgufValueType> types = new LinkedHashMap<>();
            for (long i = 0; i < nKv; i++) {
                String key = r.string("metadata key " + i);
                int tid = r.u32("metadata '" + key + "' type");
                GgufValueType t = GgufValueType.byId(tid);
                if (t == null) throw bad(path, "metadata '" + key + "': unknown value type " + tid);
                Object v = r.value(t, key, 0);
                if (meta.putIfAbsent(key, v) != null) throw bad(path, "duplicate metadata key '" + key + "'");
                types.put(key, t);
            }
            int alignment = DEFAULT_ALIGNMENT;
            if (meta.containsKey("general.alignment")) {
                if (types.get("general.alignment") != GgufValueType.UINT32 && types.get("general.alignment") != GgufValueType.INT32) {
                    throw bad(path, "general.alignment must be a u32, got " + types.get("general.alignment"));
                }
                long a = (Long) meta.get("general.alignment");
                if (a <= 0 || a > (1 << 20) || (a & (a - 1)) != 0) throw bad(path, "general.alignment " + a + " is not a power of two");
                alignment = (int) a;
            }

            record Info(String name, GgmlType type, long[] ne, long rel, long bytes) {}
            List<Info> infos = new java.util.ArrayList<>();
            for (long i = 0; i < nTensors; i++) {
                String name = r.string("tensor name " + i);
                int nd = r.u32("tensor '" + name + "' dimension count");
                if (nd < 1 || nd > MAX_DIMS) throw bad(path, "tensor '" + name + "': " + nd + " dimensions (expected 1.." + MAX_DIMS + ")");
                long[] ne = new long[nd];
                long count = 1;
                for (int k = 0; k < nd; k++) {
                    ne[k] = r.u64("tensor '" + name + "' dimension");
                    if (ne[k] < 0) throw bad(path, "tensor '" + name + "': negative dimension " + ne[k]);
                    count = Math.multiplyExact(count, ne[k]);
                }
                int tid = r.u32("tensor '" + name + "' type");
                GgmlType type = GgmlType.byId(tid);
                if (type == null) throw bad(path, "tensor '" + name + "': unknown ggml type id " + tid);
                if (ne[0] % type.blockSize != 0) {
                    throw bad(path, "tensor '" + name + "': row length " + ne[0] + " is not a multiple of the " + type + " block size " + type.blockSize);
                }
                long rel = r.u64("tensor '" + name + "' offset");
                if (rel < 0 || rel % alignment != 0) throw bad(path, "tensor '" + name + "': data offset " + Long.toUnsignedString(rel) + " is not aligned to " + alignment);
                long bytes = Math.multiplyExact(count / type.blockSize, (long) type.typeSize);
                infos.add(new Info(name, type, ne, rel, bytes));
            }
            long dataStart = (r.pos + alignment - 1) / alignment * alignment;
            // llama.cpp's reader (gguf_init) wants the data back to back in the order of the tensor infos, each padded
            // to the alignment, and refuses a file otherwise: so does this one
            long expected = 0;
            for (Info in : infos) {
                if (in.rel() != expected) {
                    throw bad(path, "tensor '" + in.name() + "': data offset " + in.rel() + ", expected " + expected
                            + " (the tensors' data must follow each other in the order of their infos)");
                }
                expected = Math.addExact(expected, (in.bytes() + alignment - 1) / alignment * alignment);
            }
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (Info in : infos) {
                long begin = dataStart + in.rel();
                if (begin > size || in.bytes() > size - begin) {
                    throw bad(path, "tensor '" + in.name() + "': data [" + begin + ", " + (begin + in.bytes()) + ") extends past the end of the file ("
                            + size + " bytes; truncated?)");
                }
                if (tensors.putIfAbsent(in.name(), new Tensor(in.name(), in.type(), in.ne(), begin, in.bytes())) != null) {
                    throw bad(path, "duplicate tensor name '" + in.name() + "'");
                }
            }
            return new GgufFile(path, arena, seg, version, alignment, dataStart,
                    Collections.unmodifiableMap(meta), Collections.unmodifiableMap(types), Collections.unmodifiableMap(tensors));
        } catch (NoSuchFileException e) {
            arena.close();
            throw new LongspanException(path + ": no such file");
        } catch (IOException e) {
            arena.close();
            throw new LongspanException(path + ": cannot read: " + IoErrors.reason(e), e);
        } catch (ArithmeticException e) {
            arena.close();
            throw bad(path, "tensor size overflows");
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    static LongspanException bad(Path p, String msg) {
        return new LongspanException(p + ": " + msg);
    }

    /** True when the file at p starts with the GGUF magic; a file that cannot be read is an error, not "no". */
    public static boolean looksLikeGguf(Path p) {
        try (var in = java.nio.file.Files.newInputStream(p)) {
            byte[] b = in.readNBytes(4);
            return b.length == 4 && b[0] == 'G' && b[1] == 'G' && b[2] == 'U' && b[3] == 'F';
        } catch (IOException e) {
            throw new LongspanException(p + ": cannot read: " + IoErrors.reason(e), e);
        }
    }

    public Path path() { return path; }
    public int version() { return version; }
    public int alignment() { return alignment; }
    /** Absolute file offset of the tensor data section. */
    public long dataStart() { return dataStart; }

    /** All metadata in file order (values as described in the class comment). */
    public Map<String, Object> metadata() { return metadata; }

    /** The GGUF value type of a metadata key, or null when absent. */
    public GgufValueType type(String key) { return metadataTypes.get(key); }

    public boolean has(String key) { return metadata.containsKey(key); }

    public Object get(String key) {
        Object v = metadata.get(key);
        if (v == null) throw bad(path, "missing metadata key '" + key + "'");
        return v;
    }

    public String getString(String key) {
        if (!(get(key) instanceof String s)) throw wrongType(key, "a string");
        return s;
    }

    public String getString(String key, String dflt) { return has(key) ? getString(key) : dflt; }

    public long getLong(String key) {
        if (!(get(key) instanceof Long l)) throw wrongType(key, "an integer");
        return l;
    }

    public long getLong(String key, long dflt) { return has(key) ? getLong(key) : dflt; }

    public int getInt(String key) {
        long v = getLong(key);
        if (v < Integer.MIN_VALUE || v > Integer.MAX_VALUE) throw bad(path, "metadata '" + key + "' = " + v + " does not fit an int");
        return (int) v;
    }

    public int getInt(String key, int dflt) { return has(key) ? getInt(key) : dflt; }

    /** A float value (FLOAT32, FLOAT64 narrowed, or an integer). */
    public float getFloat(String key) {
        Object v = get(key);
        if (v instanceof Float f) return f;
        if (v instanceof Double d) return d.floatValue();
        if (v instanceof Long l) return l;
        throw wrongType(key, "a number");
    }

    public float getFloat(String key, float dflt) { return has(key) ? getFloat(key) : dflt; }

    public boolean getBool(String key) {
        if (!(get(key) instanceof Boolean b)) throw wrongType(key, "a bool");
        return b;
    }

    public boolean getBool(String key, boolean dflt) { return has(key) ? getBool(key) : dflt; }

    public GgufValueType.Array getArray(String key) {
        if (!(get(key) instanceof GgufValueType.Array a)) throw wrongType(key, "an array");
        return a;
    }

    public String[] getStringArray(String key) {
        GgufValueType.Array a = getArray(key);
        if (!(a.data() instanceof String[] s)) throw wrongType(key, "an array of strings");
        return s;
    }

    /** A numeric array as floats (any numeric element type). */
    public float[] getFloatArray(String key) {
        return getArray(key).toFloats(() -> wrongType(key, "a numeric array"));
    }

    /** An integer array as ints (any integer element type that fits). */
    public int[] getIntArray(String key) {
        return getArray(key).toInts(() -> wrongType(key, "an integer array"));
    }

    private LongspanException wrongType(String key, String expected) {
        return bad(path, "metadata '" + key + "' is " + metadataTypes.get(key) + ", expected " + expected);
    }

    /** Tensors in file order. */
    public Map<String, Tensor> tensors() { return tensors; }

    public boolean hasTensor(String name) { return tensors.containsKey(name); }

    public Tensor tensor(String name) {
        Tensor t = tensors.get(name);
        if (t == null) throw bad(path, "no tensor named '" + name + "'");
        return t;
    }

    /** The whole mapped file (tensor offsets are absolute in it). */
    public MemorySegment segment() { return data; }

    /** The raw bytes of a tensor (a view of the mapping). */
    public MemorySegment segment(String name) {
        Tensor t = tensor(name);
        return data.asSlice(t.offset(), t.bytes());
    }

    /** A tensor dequantized to a new float array (bit-exact to ggml's dequantization). */
    public float[] floats(String name) {
        Tensor t = tensor(name);
        long n = t.elements();
        if (n > Integer.MAX_VALUE - 8) throw bad(path, "tensor '" + name + "' has " + n + " elements, too many for one array");
        if (!t.type().dequantizable()) throw bad(path, "tensor '" + name + "' is " + t.type() + ", which Longspan cannot dequantize");
        float[] out = new float[(int) n];
        QuantKernels.dequantize(t.type(), data, t.offset(), out, 0, (int) n);
        return out;
    }

    @Override
    public void close() {
        arena.close();
    }
}
