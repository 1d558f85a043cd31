package dev.longspan.io;

import dev.longspan.kernel.GgmlType;
import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class GgufTest {
    static Path tiny() {
        Path p = Path.of(System.getProperty("user.dir")).resolve("../../shared/data/gguf/tiny-random-llama.gguf").normalize();
        if (!Files.exists(p)) p = Path.of("/work/shared/data/gguf/tiny-random-llama.gguf");
        return p;
    }

    @TempDir
    Path dir;

    @Test
    void readsTheLlamaCppWrittenFile() {
        try (GgufFile g = GgufFile.open(tiny())) {
            assertThat(g.version()).isEqualTo(3);
            assertThat(g.alignment()).isEqualTo(32);
            assertThat(g.getString("general.architecture")).isEqualTo("llama");
            assertThat(g.getInt("llama.block_count")).isEqualTo(4);
            assertThat(g.getInt("llama.embedding_length")).isEqualTo(256);
            assertThat(g.getInt("llama.attention.head_count")).isEqualTo(8);
            assertThat(g.getInt("llama.feed_forward_length")).isEqualTo(768);
            assertThat(g.getFloat("llama.rope.freq_base")).isEqualTo(10000f);
            assertThat(g.getFloat("llama.attention.layer_norm_rms_epsilon")).isEqualTo(1e-5f);
            assertThat(g.type("llama.block_count")).isEqualTo(GgufValueType.UINT32);
            assertThat(g.getString("tokenizer.ggml.model")).isEqualTo("llama");
            String[] tokens = g.getStringArray("tokenizer.ggml.tokens");
            assertThat(tokens).hasSize(32000);
            assertThat(tokens[0]).isEqualTo("<unk>");
            assertThat(tokens[1]).isEqualTo("<s>");
            assertThat(tokens[3]).isEqualTo("<0x00>");
            assertThat(tokens[258]).isEqualTo("<0xFF>");
            assertThat(g.getIntArray("tokenizer.ggml.token_type")[3]).isEqualTo(6);
            assertThat(g.getFloatArray("tokenizer.ggml.scores")).hasSize(32000);
            assertThat(g.getBool("tokenizer.ggml.add_bos_token")).isTrue();
            assertThat(g.getInt("tokenizer.ggml.bos_token_id")).isEqualTo(1);

            assertThat(g.tensors()).hasSize(2 + 4 * 9);
            GgufFile.Tensor emb = g.tensor("token_embd.weight");
            assertThat(emb.type()).isEqualTo(GgmlType.F16);
            assertThat(emb.ne()).containsExactly(256, 32000);
            assertThat(emb.shape()).containsExactly(32000, 256);
            assertThat(emb.rows()).isEqualTo(32000);
            assertThat(g.tensor("blk.0.attn_q.weight").shape()).containsExactly(512, 256);
            assertThat(g.tensor("blk.3.attn_output.weight").shape()).containsExactly(256, 512);
            assertThat(g.tensor("blk.2.ffn_down.weight").shape()).containsExactly(256, 768);
            assertThat(g.tensor("blk.1.ffn_norm.weight").type()).isEqualTo(GgmlType.F32);
            assertThat(g.tensor("output_norm.weight").ne()).containsExactly(256);
            for (GgufFile.Tensor t : g.tensors().values()) assertThat(t.offset() % 32).isZero();

            float[] w = g.floats("token_embd.weight");
            double sum = 0, sq = 0;
            for (float v : w) {
                assertThat(Float.isFinite(v)).isTrue();
                sum += v;
                sq += (double) v * v;
            }
            double mean = sum / w.length, sd = Math.sqrt(sq / w.length - mean * mean);
            assertThat(Math.abs(mean)).isLessThan(0.002);
            assertThat(sd).isBetween(0.015, 0.025);
            for (float v : g.floats("output_norm.weight")) assertThat(Float.isFinite(v)).isTrue();
        }
    }

    private GgufWriter sample() {
        SplittableRandom r = new SplittableRandom(7);
        float[] a = new float[2 * 3 * 64];
        for (int i = 0; i < a.length; i++) a[i] = (float) r.nextGaussian();
        float[] b = new float[5 * 32];
        for (int i = 0; i < b.length; i++) b[i] = (float) r.nextGaussian() * 0.1f;
        byte[] q4k = new byte[144 * 2];
        r.nextBytes(q4k);
        q4k[0] = 0x00; q4k[1] = 0x3c; // d = 1.0
        q4k[2] = 0x00; q4k[3] = 0x38; // dmin = 0.5
        q4k[144] = 0x00; q4k[145] = 0x3c;
        q4k[146] = 0x00; q4k[147] = 0x38;
        GgufValueType.Array nested = new GgufValueType.Array(GgufValueType.ARRAY, new GgufValueType.Array[]{
                new GgufValueType.Array(GgufValueType.INT32, new int[]{1, 2, 3}),
                new GgufValueType.Array(GgufValueType.STRING, new String[]{"x", "ÿ€😀"})});
        return new GgufWriter()
                .putString("general.architecture", "llama")
                .put("t.u8", GgufValueType.UINT8, 200L)
                .put("t.i8", GgufValueType.INT8, -5L)
                .put("t.u16", GgufValueType.UINT16, 60000L)
                .put("t.i16", GgufValueType.INT16, -30000L)
                .putU32("t.u32", 4_000_000_000L)
                .putI32("t.i32", -123456)
                .putU64("t.u64", 1L << 40)
                .putI64("t.i64", -(1L << 50))
                .putF32("t.f32", 3.25f)
                .putF64("t.f64", Math.PI)
                .putBool("t.bool", true)
                .putString("t.str", "héllo 世界")
                .putStringArray("t.strs", new String[]{"a", "", "▁b"})
                .putF32Array("t.f32s", new float[]{1.5f, -2f})
                .putI32Array("t.i32s", new int[]{-1, 7})
                .put("t.u8s", GgufValueType.ARRAY, new GgufValueType.Array(GgufValueType.UINT8, new byte[]{1, (byte) 255}))
                .put("t.i64s", GgufValueType.ARRAY, new GgufValueType.Array(GgufValueType.INT64, new long[]{Long.MIN_VALUE, 3}))
                .put("t.f64s", GgufValueType.ARRAY, new GgufValueType.Array(GgufValueType.FLOAT64, new double[]{0.1}))
                .put("t.bools", GgufValueType.ARRAY, new GgufValueType.Array(GgufValueType.BOOL, new boolean[]{true, false}))
                .put("t.i16s", GgufValueType.ARRAY, new GgufValueType.Array(GgufValueType.INT16, new short[]{-2, 9}))
                .put("t.nested", GgufValueType.ARRAY, nested)
                .tensorF32("a", new long[]{64, 3, 2}, a)
                .tensorF16("b16", new long[]{32, 5}, b)
                .tensorQ8_0("b8", new long[]{32, 5}, b)
                .tensorRaw("k", GgmlType.Q4_K, new long[]{512}, q4k);
    }

    @Test
    void writerRoundTripsMetadataOfEveryTypeAndTensors() {
        Path p = dir.resolve("x.gguf");
        sample().write(p);
        try (GgufFile g = GgufFile.open(p)) {
            assertThat(g.version()).isEqualTo(3);
            assertThat(g.getLong("t.u8")).isEqualTo(200);
            assertThat(g.type("t.u8")).isEqualTo(GgufValueType.UINT8);
            assertThat(g.getLong("t.i8")).isEqualTo(-5);
            assertThat(g.getLong("t.u16")).isEqualTo(60000);
            assertThat(g.getLong("t.i16")).isEqualTo(-30000);
            assertThat(g.getLong("t.u32")).isEqualTo(4_000_000_000L);
            assertThat(g.getInt("t.i32")).isEqualTo(-123456);
            assertThat(g.getLong("t.u64")).isEqualTo(1L << 40);
            assertThat(g.getLong("t.i64")).isEqualTo(-(1L << 50));
            assertThat(g.getFloat("t.f32")).isEqualTo(3.25f);
            assertThat(g.get("t.f64")).isEqualTo(Math.PI);
            assertThat(g.getBool("t.bool")).isTrue();
            assertThat(g.getString("t.str")).isEqualTo("héllo 世界");
            assertThat(g.getStringArray("t.strs")).containsExactly("a", "", "▁b");
            assertThat(g.getFloatArray("t.f32s")).containsExactly(1.5f, -2f);
            assertThat(g.getIntArray("t.i32s")).containsExactly(-1, 7);
            assertThat(g.getIntArray("t.u8s")).containsExactly(1, 255);
            assertThat((long[]) g.getArray("t.i64s").data()).containsExactly(Long.MIN_VALUE, 3);
            assertThat((double[]) g.getArray("t.f64s").data()).containsExactly(0.1);
            assertThat((boolean[]) g.getArray("t.bools").data()).containsExactly(true, false);
            assertThat(g.getIntArray("t.i16s")).containsExactly(-2, 9);
            GgufValueType.Array[] nested = (GgufValueType.Array[]) g.getArray("t.nested").data();
            assertThat((int[]) nested[0].data()).containsExactly(1, 2, 3);
            assertThat((String[]) nested[1].data()).containsExactly("x", "ÿ€😀");
            assertThat(g.metadata().keySet()).first().isEqualTo("general.architecture");

            assertThat(g.tensors().keySet()).containsExactly("a", "b16", "b8", "k");
            SplittableRandom r = new SplittableRandom(7);
            float[] a = new float[2 * 3 * 64];
            for (int i = 0; i < a.length; i++) a[i] = (float) r.nextGaussian();
            float[] b = new float[5 * 32];
            for (int i = 0; i < b.length; i++) b[i] = (float) r.nextGaussian() * 0.1f;
            assertThat(g.tensor("a").ne()).containsExactly(64, 3, 2);
            assertThat(g.floats("a")).containsExactly(a);
            float[] b16 = g.floats("b16");
            for (int i = 0; i < b.length; i++) assertThat(b16[i]).isEqualTo(Float.float16ToFloat(Float.floatToFloat16(b[i])));
            float[] b8 = g.floats("b8");
            for (int blk = 0; blk < 5; blk++) {
                float amax = 0;
                for (int j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(b[32 * blk + j]));
                for (int j = 0; j < 32; j++) assertThat(Math.abs(b8[32 * blk + j] - b[32 * blk + j])).isLessThanOrEqualTo(amax / 127f * 0.51f + 1e-4f);
            }
            assertThat(g.tensor("k").type()).isEqualTo(GgmlType.Q4_K);
            assertThat(g.tensor("k").bytes()).isEqualTo(288);
            for (GgufFile.Tensor t : g.tensors().values()) assertThat((t.offset() - g.dataStart()) % 32).isZero();
        }
    }

    @Test
    void customAlignmentIsHonoured() {
        Path p = dir.resolve("al.gguf");
        new GgufWriter().alignment(64).tensorF32("x", new long[]{3}, new float[]{1, 2, 3}).tensorF32("y", new long[]{2}, new float[]{4, 5}).write(p);
        try (GgufFile g = GgufFile.open(p)) {
            assertThat(g.alignment()).isEqualTo(64);
            assertThat(g.dataStart() % 64).isZero();
            assertThat(g.tensor("y").offset() - g.dataStart()).isEqualTo(64);
            assertThat(g.floats("y")).containsExactly(4, 5);
        }
    }

    // ---- malformed files -------------------------------------------------------------------

    private byte[] small() throws IOException {
        Path p = dir.resolve("small.gguf");
        new GgufWriter().putString("k", "v").tensorF32("t", new long[]{4}, new float[]{1, 2, 3, 4}).write(p);
        return Files.readAllBytes(p);
    }

    private void assertRefused(byte[] bytes, String... fragments) throws IOException {
        Path p = dir.resolve("bad.gguf");
        Files.write(p, bytes);
        assertThatThrownBy(() -> GgufFile.open(p).close())
                .isInstanceOf(LongspanException.class)
                .hasMessageContaining(p.toString())
                .satisfies(e -> {
                    for (String f : fragments) assertThat(e.getMessage()).contains(f);
                });
    }

    private static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) if (hay[i + j] != needle[j]) continue outer;
            return i;
        }
        return -1;
    }

    // byte offset of tensor t's type field in small()
    private static int tensorTypePos(byte[] b) {
        // name "t": u64 len 1 + 't', then u32 n_dims, u64 ne[0], then u32 type
        byte[] needle = {1, 0, 0, 0, 0, 0, 0, 0, 't', 1, 0, 0, 0};
        return indexOf(b, needle) + 9 + 4 + 8;
    }

    /** llama.cpp refuses tensor data out of order or overlapping (each offset must follow the previous tensor's, padded). */
    @Test
    void refusesTensorDataOutOfOrder() throws IOException {
        Path p = dir.resolve("two.gguf");
        new GgufWriter().tensorF32("x", new long[]{3}, new float[]{1, 2, 3}).tensorF32("y", new long[]{2}, new float[]{4, 5}).write(p);
        byte[] b = Files.readAllBytes(p);
        // y's info: name (u64 length, bytes), u32 dims, u64 ne[0], u32 type, then its u64 offset (32 in a well-formed file)
        int at = -1;
        for (int i = 0; i + 9 < b.length; i++) if (b[i] == 1 && b[i + 1] == 0 && b[i + 8] == 'y') { at = i + 9; break; }
        assertThat(at).isPositive();
        int off = at + 4 + 8 + 4;
        assertThat(b[off]).isEqualTo((byte) 32);
        b[off] = 0;                                    // y's data now claims x's place
        assertRefused(b, "tensor 'y'", "offset 0, expected 32");
    }

    @Test
    void refusesWrongMagic() throws IOException {
        byte[] b = small();
        b[0] = 'X';
        assertRefused(b, "not a GGUF file");
    }

    @Test
    void refusesUnsupportedVersions() throws IOException {
        byte[] b = small();
        b[4] = 1;
        assertRefused(b, "unsupported GGUF version 1");
        b[4] = 4;
        assertRefused(b, "unsupported GGUF version 4");
    }

    @Test
    void refusesTruncatedHeaderAtEveryCut() throws IOException {
        byte[] b = small();
        Path p = dir.resolve("small.gguf");
        int headerEnd;
        try (GgufFile g = GgufFile.open(p)) {
            headerEnd = (int) g.dataStart();
        }
        for (int cut = 0; cut < headerEnd; cut += 3) {
            assertRefused(Arrays.copyOf(b, cut));
        }
    }

    @Test
    void refusesTensorDataPastTheEnd() throws IOException {
        byte[] b = small();
        assertRefused(Arrays.copyOf(b, b.length - 17), "tensor 't'", "past the end");
        // the real file, cut in the middle of the tensor data
        byte[] real = Files.readAllBytes(tiny());
        assertRefused(Arrays.copyOf(real, real.length / 2), "past the end");
    }

    @Test
    void refusesUnknownTensorType() throws IOException {
        byte[] b = small();
        int pos = tensorTypePos(b);
        assertThat(ByteBuffer.wrap(b, pos, 4).order(ByteOrder.LITTLE_ENDIAN).getInt()).isEqualTo(0);
        b[pos] = 99;
        assertRefused(b, "unknown ggml type id 99");
    }

    @Test
    void refusesAbsurdCountsAndLengths() throws IOException {
        byte[] b = small();
        byte[] c = b.clone();
        ByteBuffer.wrap(c).order(ByteOrder.LITTLE_ENDIAN).putLong(8, 1L << 40);
        assertRefused(c, "absurd tensor count");
        c = b.clone();
        ByteBuffer.wrap(c).order(ByteOrder.LITTLE_ENDIAN).putLong(16, -1L);
        assertRefused(c, "absurd metadata count");
        c = b.clone();
        ByteBuffer.wrap(c).order(ByteOrder.LITTLE_ENDIAN).putLong(24, 1L << 50); // key length
        assertRefused(c, "truncated header");
        c = b.clone();
        int typePos = tensorTypePos(c);
        ByteBuffer.wrap(c).order(ByteOrder.LITTLE_ENDIAN).putLong(typePos + 4, 3); // unaligned offset
        assertRefused(c, "not aligned");
        c = b.clone();
        ByteBuffer.wrap(c).order(ByteOrder.LITTLE_ENDIAN).putInt(typePos - 12, 7); // 7 dims
        assertRefused(c, "7 dimensions");
    }

    @Test
    void refusesMissingFileAndWrongMetadataTypes() throws IOException {
        assertThatThrownBy(() -> GgufFile.open(dir.resolve("nope.gguf"))).isInstanceOf(LongspanException.class).hasMessageContaining("no such file");
        Path p = dir.resolve("small.gguf");
        small();
        try (GgufFile g = GgufFile.open(p)) {
            assertThatThrownBy(() -> g.getLong("k")).isInstanceOf(LongspanException.class).hasMessageContaining("'k'").hasMessageContaining("STRING");
            assertThatThrownBy(() -> g.getString("absent")).isInstanceOf(LongspanException.class).hasMessageContaining("missing");
            assertThat(new String(Files.readAllBytes(p), 0, 4, StandardCharsets.US_ASCII)).isEqualTo("GGUF");
        }
    }
}
