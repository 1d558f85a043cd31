package dev.longspan.io;

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
import java.util.Set;

/**
 * A safetensors file, memory-mapped through the FFM API (files of any size).
 * Format: u64 little-endian header length n, n bytes of JSON header
 * ({@code {"__metadata__": {...}, "name": {"dtype", "shape", "data_offsets": [begin, end]}}}),
 * then the tensor bytes, offsets relative to the end of the header.
 * Every malformed file is refused with a {@link LongspanException} naming the file and the problem.
 */
public final class SafetensorsFile implements AutoCloseable {

    /** One tensor's header entry; {@code begin} is absolute in the file. */
    public record Entry(String name, String dtype, long[] shape, long begin, long end) {
        public long elements() {
            long n = 1;
            for (long d : shape) n *= d;
            return n;
        }
    }

    static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private static final long MAX_HEADER = 100L << 20;

    private final Path path;
    private final Arena arena;
    private final MemorySegment data;
    private final Map<String, Entry> entries;
    private final Map<String, String> metadata;

    private SafetensorsFile(Path path, Arena arena, MemorySegment data, Map<String, Entry> entries, Map<String, String> metadata) {
        this.path = path;
        this.arena = arena;
        this.data = data;
        this.entries = entries;
        this.metadata = metadata;
    }

    /** Bytes per element of a safetensors dtype, or -1 when unknown. */
    public static int dtypeSize(String dtype) {
        return switch (dtype) {
            case "F64", "I64", "U64" -> 8;
            case "F32", "I32", "U32" -> 4;
            case "F16", "BF16", "I16", "U16" -> 2;
            case "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2" -> 1;
            default -> -1;
        };
    }

    public static SafetensorsFile open(Path path) {
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 8) throw bad(path, "file is " + size + " bytes, too short for a safetensors header");
            MemorySegment seg = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            long n = seg.get(I64, 0);
            if (n < 2 || n > MAX_HEADER || 8 + n > size) {
                throw bad(path, "header length " + n + " does not fit a file of " + size + " bytes (not a safetensors file, or truncated)");
            }
            byte[] hb = seg.asSlice(8, n).toArray(ValueLayout.JAVA_BYTE);
            String header = new String(hb, StandardCharsets.UTF_8);
            if (header.isEmpty() || header.charAt(0) != '{') throw bad(path, "header does not start with '{' (not a safetensors file)");
            Map<String, Object> h = Json.parseObject(header.stripTrailing(), path + " (safetensors header)");
            long dataStart = 8 + n;
            long dataLen = size - dataStart;
            Map<String, Entry> entries = new LinkedHashMap<>();
            Map<String, String> meta = new LinkedHashMap<>();
            for (Map.Entry<String, Object> e : h.entrySet()) {
                String name = e.getKey();
                if (name.equals("__metadata__")) {
                    if (!(e.getValue() instanceof Map<?, ?> m)) throw bad(path, "__metadata__ is not an object");
                    for (Map.Entry<?, ?> me : m.entrySet()) meta.put(String.valueOf(me.getKey()), String.valueOf(me.getValue()));
                    continue;
                }
                if (!(e.getValue() instanceof Map<?, ?> t)) throw bad(path, "tensor '" + name + "': entry is not an object");
                if (!(t.get("dtype") instanceof String dtype)) throw bad(path, "tensor '" + name + "': missing dtype");
                int es = dtypeSize(dtype);
                if (es < 0) throw bad(path, "tensor '" + name + "': unsupported dtype " + dtype);
                if (!(t.get("shape") instanceof List<?> sl)) throw bad(path, "tensor '" + name + "': missing shape");
                long[] shape = new long[sl.size()];
                long count = 1;
                for (int k = 0; k < shape.length; k++) {
                    if (!(sl.get(k) instanceof Long d) || d < 0) throw bad(path, "tensor '" + name + "': bad shape " + sl);
                    shape[k] = d;
                    count = Math.multiplyExact(count, d);
                }
                if (!(t.get("data_offsets") instanceof List<?> ol) || ol.size() != 2
                        || !(ol.get(0) instanceof Long b) || !(ol.get(1) instanceof Long en)) {
                    throw bad(path, "tensor '" + name + "': missing or bad data_offsets");
                }
                if (b < 0 || en < b || en > dataLen) {
                    throw bad(path, "tensor '" + name + "': data_offsets [" + b + ", " + en + "] outside the " + dataLen
                            + " data bytes (file truncated?)");
                }
                if (en - b != count * es) {
                    throw bad(path, "tensor '" + name + "': " + (en - b) + " bytes for shape " + sl + " of " + dtype
                            + " (expected " + count * es + ")");
                }
                entries.put(name, new Entry(name, dtype, shape, dataStart + b, dataStart + en));
            }
            return new SafetensorsFile(path, arena, seg, Collections.unmodifiableMap(entries), Collections.unmodifiableMap(meta));
        } catch (NoSuchFileException e) {
            arena.close();
            throw new LongspanException(path + ": no such file");
        } catch (IOException e) {
            arena.close();
            throw new LongspanException(path + ": cannot read: " + IoErrors.reason(e), e);
        } catch (RuntimeException e) {
            arena.close();
            if (e instanceof ArithmeticException) throw bad(path, "tensor shape overflows");
            throw e;
        }
    }

    private static LongspanException bad(Path p, String msg) {
        return new LongspanException(p + ": " + msg);
    }

    public Path path() { return path; }

    /** Tensor names in file order. */
    public Set<String> names() { return entries.keySet(); }

    public boolean has(String name) { return entries.containsKey(name); }

    public Map<String, String> metadata() { return metadata; }

    public Entry entry(String name) {
        Entry e = entries.get(name);
        if (e == null) throw bad(path, "no tensor named '" + name + "' (has: " + String.join(", ", entries.keySet()) + ")");
        return e;
    }

    public String dtype(String name) { return entry(name).dtype(); }

    public long[] shape(String name) { return entry(name).shape().clone(); }

    /** The raw bytes of a tensor (a view of the mapping). */
    public MemorySegment segment(String name) {
        Entry e = entry(name);
        return data.asSlice(e.begin(), e.end() - e.begin());
    }

    /** A float tensor (F32, F16 or BF16; F64 narrowed) as a new float array. */
    public float[] floats(String name) {
        Entry e = entry(name);
        long count = e.elements();
        if (count > Integer.MAX_VALUE - 8) throw bad(path, "tensor '" + name + "' has " + count + " elements, too many for one array");
        int n = (int) count;
        float[] out = new float[n];
        MemorySegment s = segment(name);
        switch (e.dtype()) {
            case "F32" -> MemorySegment.copy(s, F32, 0, out, 0, n);
            case "F16" -> { for (int i = 0; i < n; i++) out[i] = Float.float16ToFloat(s.get(I16, 2L * i)); }
            case "BF16" -> { for (int i = 0; i < n; i++) out[i] = Float.intBitsToFloat((s.get(I16, 2L * i) & 0xffff) << 16); }
            case "F64" -> { for (int i = 0; i < n; i++) out[i] = (float) s.get(F64, 8L * i); }
            default -> throw bad(path, "tensor '" + name + "' is " + e.dtype() + ", expected a float type (F32, F16, BF16)");
        }
        return out;
    }

    /** An integer tensor (I64, I32, I16, I8, U8) as a new long array. */
    public long[] longs(String name) {
        Entry e = entry(name);
        long count = e.elements();
        if (count > Integer.MAX_VALUE - 8) throw bad(path, "tensor '" + name + "' has " + count + " elements, too many for one array");
        int n = (int) count;
        long[] out = new long[n];
        MemorySegment s = segment(name);
        switch (e.dtype()) {
            case "I64" -> MemorySegment.copy(s, I64, 0, out, 0, n);
            case "I32" -> { for (int i = 0; i < n; i++) out[i] = s.get(I32, 4L * i); }
            case "I16" -> { for (int i = 0; i < n; i++) out[i] = s.get(I16, 2L * i); }
            case "I8" -> { for (int i = 0; i < n; i++) out[i] = s.get(ValueLayout.JAVA_BYTE, i); }
            case "U8" -> { for (int i = 0; i < n; i++) out[i] = s.get(ValueLayout.JAVA_BYTE, i) & 0xff; }
            default -> throw bad(path, "tensor '" + name + "' is " + e.dtype() + ", expected an integer type (I64, I32)");
        }
        return out;
    }

    @Override
    public void close() {
        arena.close();
    }
}
