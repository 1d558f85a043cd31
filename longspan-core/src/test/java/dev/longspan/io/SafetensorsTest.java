package dev.longspan.io;

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

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class SafetensorsTest {
    @TempDir
    Path dir;

    @Test
    void roundTripsEveryWrittenType() {
        float[] x = {1f, -2.5f, 3.25f, 0f, 65504f, 1e-3f};
        long[] pos = {0, 5, 1L << 40};
        int[] ids = {7, -1};
        Path p = dir.resolve("t.safetensors");
        new SafetensorsWriter()
                .putF32("x", new long[]{2, 3}, x)
                .putF16("h", new long[]{6}, x)
                .putI64("pos", new long[]{3}, pos)
                .putI32("ids", new long[]{2}, ids)
                .metadata("format", "pt")
                .write(p);
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            assertThat(f.names()).containsExactly("x", "h", "pos", "ids");
            assertThat(f.shape("x")).containsExactly(2, 3);
            assertThat(f.dtype("h")).isEqualTo("F16");
            assertThat(f.floats("x")).containsExactly(x);
            float[] h = f.floats("h");
            for (int i = 0; i < x.length; i++) assertThat(h[i]).isCloseTo(x[i], org.assertj.core.data.Offset.offset(Math.abs(x[i]) * 1e-3f + 1e-6f));
            assertThat(f.longs("pos")).containsExactly(pos);
            assertThat(f.longs("ids")).containsExactly(7, -1);
            assertThat(f.metadata()).containsEntry("format", "pt");
        }
    }

    @Test
    void headerIsPaddedToEightBytesAndDataIsContiguous() throws IOException {
        Path p = dir.resolve("t.safetensors");
        new SafetensorsWriter().putF32("a", new long[]{3}, new float[]{1, 2, 3}).putF32("b", new long[]{1}, new float[]{4}).write(p);
        byte[] all = Files.readAllBytes(p);
        long n = ByteBuffer.wrap(all, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertThat(n % 8).isZero();
        assertThat(all.length).isEqualTo(8 + n + 16);
        String header = new String(all, 8, (int) n, StandardCharsets.UTF_8);
        assertThat(header).startsWith("{").contains("\"data_offsets\":[0,12]").contains("\"data_offsets\":[12,16]");
    }

    @Test
    void readsBf16AsWrittenByOtherTools() throws IOException {
        // bf16 of 1.0 is 0x3F80, of -2.0 is 0xC000
        String header = "{\"w\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}";
        Path p = raw(header, new byte[]{(byte) 0x80, 0x3f, 0x00, (byte) 0xc0});
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            assertThat(f.floats("w")).containsExactly(1f, -2f);
        }
    }

    @Test
    void refusesBadFilesWithTheirName() throws IOException {
        Path empty = Files.write(dir.resolve("short.safetensors"), new byte[3]);
        assertThatThrownBy(() -> SafetensorsFile.open(empty)).isInstanceOf(LongspanException.class)
                .hasMessageContaining("short.safetensors").hasMessageContaining("too short");

        Path notSt = Files.write(dir.resolve("text.safetensors"), "hello world, this is text".getBytes(StandardCharsets.UTF_8));
        assertThatThrownBy(() -> SafetensorsFile.open(notSt)).isInstanceOf(LongspanException.class)
                .hasMessageContaining("text.safetensors");

        Path good = dir.resolve("good.safetensors");
        new SafetensorsWriter().putF32("a", new long[]{4}, new float[4]).write(good);
        byte[] all = Files.readAllBytes(good);
        Path truncated = Files.write(dir.resolve("trunc.safetensors"), Arrays.copyOf(all, all.length - 3));
        assertThatThrownBy(() -> SafetensorsFile.open(truncated)).isInstanceOf(LongspanException.class)
                .hasMessageContaining("trunc.safetensors").hasMessageContaining("truncated");

        Path wrongSize = raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", new byte[8]);
        assertThatThrownBy(() -> SafetensorsFile.open(wrongSize)).hasMessageContaining("expected 12");

        Path badType = raw("{\"a\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,1]}}", new byte[1]);
        assertThatThrownBy(() -> SafetensorsFile.open(badType)).hasMessageContaining("unsupported dtype Q4");

        assertThatThrownBy(() -> SafetensorsFile.open(dir.resolve("missing.safetensors")))
                .isInstanceOf(LongspanException.class).hasMessageContaining("no such file");
    }

    @Test
    void missingTensorAndWrongKindAreClearErrors() {
        Path p = dir.resolve("t.safetensors");
        new SafetensorsWriter().putI64("pos", new long[]{1}, new long[]{1}).write(p);
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            assertThatThrownBy(() -> f.floats("q")).hasMessageContaining("no tensor named 'q'").hasMessageContaining("pos");
            assertThatThrownBy(() -> f.floats("pos")).hasMessageContaining("expected a float type");
        }
    }

    @Test
    void writeIsAtomicAndLeavesNoTempFiles() throws IOException {
        Path p = dir.resolve("t.safetensors");
        new SafetensorsWriter().putF32("a", new long[]{1}, new float[]{1}).write(p);
        new SafetensorsWriter().putF32("a", new long[]{1}, new float[]{2}).write(p);
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            assertThat(f.floats("a")).containsExactly(2f);
        }
        try (var s = Files.list(dir)) {
            assertThat(s.map(x -> x.getFileName().toString())).containsExactly("t.safetensors");
        }
    }

    private Path raw(String header, byte[] data) throws IOException {
        byte[] hb = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + hb.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(hb.length).put(hb).put(data);
        return Files.write(Files.createTempFile(dir, "raw", ".safetensors"), b.array());
    }
}
