package dev.longspan.io;

import dev.longspan.util.LongspanException;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Builds a safetensors file in the standard layout (header padded with spaces to 8 bytes, tensors
 * stored in insertion order without gaps, {@code __metadata__} string map) and writes it atomically.
 * Hugging Face readers load what it writes.
 */
public final class SafetensorsWriter {
    private record Item(String name, String dtype, long[] shape, Object data, long bytes) {}

    private final List<Item> items = new ArrayList<>();
    private final Map<String, String> metadata = new LinkedHashMap<>();

    private static long count(String name, long[] shape, long length) {
        long n = 1;
        for (long d : shape) {
            if (d < 0) throw new IllegalArgumentException("tensor '" + name + "': negative dimension");
            n *= d;
        }
        if (n != length) throw new IllegalArgumentException("tensor '" + name + "': shape has " + n + " elements but data has " + length);
        return n;
    }

    private void add(Item item) {
        for (Item it : items) if (it.name.equals(item.name)) throw new IllegalArgumentException("tensor '" + item.name + "' added twice");
        items.add(item);
    }

    public SafetensorsWriter putF32(String name, long[] shape, float[] data) {
        add(new Item(name, "F32", shape.clone(), data, 4 * count(name, shape, data.length)));
        return this;
    }

    /** Stores a float array as IEEE half precision (F16). */
    public SafetensorsWriter putF16(String name, long[] shape, float[] data) {
        add(new Item(name, "F16", shape.clone(), data, 2 * count(name, shape, data.length)));
        return this;
    }

    public SafetensorsWriter putI64(String name, long[] shape, long[] data) {
        add(new Item(name, "I64", shape.clone(), data, 8 * count(name, shape, data.length)));
        return this;
    }

    public SafetensorsWriter putI32(String name, long[] shape, int[] data) {
        add(new Item(name, "I32", shape.clone(), data, 4 * count(name, shape, data.length)));
        return this;
    }

    public SafetensorsWriter metadata(String key, String value) {
        metadata.put(key, value);
        return this;
    }

    /** The header JSON as written (without padding). */
    String header() {
        Map<String, Object> h = new LinkedHashMap<>();
        if (!metadata.isEmpty()) h.put("__metadata__", new LinkedHashMap<>(metadata));
        long off = 0;
        for (Item it : items) {
            Map<String, Object> e = new LinkedHashMap<>();
            e.put("dtype", it.dtype);
            e.put("shape", it.shape);
            e.put("data_offsets", new long[]{off, off + it.bytes});
            h.put(it.name, e);
            off += it.bytes;
        }
        return Json.write(h);
    }

    public void write(Path path) {
        byte[] hb = header().getBytes(StandardCharsets.UTF_8);
        int padded = (hb.length + 7) / 8 * 8;
        AtomicFiles.write(path, out -> {
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(padded);
            out.write(len.array());
            out.write(hb);
            for (int i = hb.length; i < padded; i++) out.write(' ');
            ByteBuffer buf = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
            for (Item it : items) {
                switch (it.data) {
                    case float[] f when it.dtype.equals("F32") -> { for (float x : f) { flushIfFull(out, buf, 4); buf.putFloat(x); } }
                    case float[] f -> { for (float x : f) { flushIfFull(out, buf, 2); buf.putShort(Float.floatToFloat16(x)); } }
                    case long[] l -> { for (long x : l) { flushIfFull(out, buf, 8); buf.putLong(x); } }
                    case int[] l -> { for (int x : l) { flushIfFull(out, buf, 4); buf.putInt(x); } }
                    default -> throw new LongspanException("unsupported tensor data for " + it.name);
                }
            }
            out.write(buf.array(), 0, buf.position());
        });
    }

    private static void flushIfFull(java.io.OutputStream out, ByteBuffer buf, int need) throws java.io.IOException {
        if (buf.remaining() < need) {
            out.write(buf.array(), 0, buf.position());
            buf.clear();
        }
    }
}
