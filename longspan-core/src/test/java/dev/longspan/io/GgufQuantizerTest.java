package dev.longspan.io;

import dev.longspan.kernel.GgmlType;
import dev.longspan.kernel.QuantKernels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;

/** GgufWriter's quantizers (ggml's reference rounding) and its streamed tensors. */
class GgufQuantizerTest {
    @TempDir Path tmp;

    static float[] dequant(GgmlType t, byte[] b, int n) {
        float[] y = new float[n];
        QuantKernels.dequantize(t, MemorySegment.ofArray(b), 0, y, 0, n);
        return y;
    }

    @Test
    void q4_0KeepsValuesOnItsGridExactly() {
        // the value of largest magnitude (−8·d) sets d = max / −8; every multiple of d in −8..7 is on the grid
        float d = 0.25f;
        float[] x = new float[32];
        for (int j = 0; j < 32; j++) x[j] = d * ((j * 7) % 16 - 8);
        x[5] = -8 * d;
        byte[] q = GgufWriter.quantizeQ4_0(x);
        assertThat(Float.float16ToFloat((short) ((q[0] & 0xff) | (q[1] << 8)))).isEqualTo(d);
        assertThat(dequant(GgmlType.Q4_0, q, 32)).containsExactly(x);
    }

    @Test
    void q4_KKeepsAConstantSubBlockAndZeros() {
        float[] x = new float[256];
        java.util.Arrays.fill(x, 32, 64, -1.5f);   // one sub-block constant: its min carries it
        float[] y = dequant(GgmlType.Q4_K, GgufWriter.quantizeQ4_K(x), 256);
        for (int i = 0; i < 256; i++) assertThat(y[i]).as("element %d", i).isCloseTo(x[i], org.assertj.core.data.Offset.offset(0.01f));
        assertThat(dequant(GgmlType.Q4_K, GgufWriter.quantizeQ4_K(new float[256]), 256)).containsOnly(0f);
    }

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "Q4_0", "Q4_K"})
    void roundTripErrorIsWhatTheTypeAllows(GgmlType t) {
        SplittableRandom r = new SplittableRandom(t.id);
        float[] x = new float[256 * 64];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
        byte[] q = new byte[(int) t.rowBytes(x.length)];
        GgufWriter.quantize(t, x, 0, x.length, q, 0);
        float[] y = dequant(t, q, x.length);
        double se = 0, ss = 0;
        for (int i = 0; i < x.length; i++) { se += (y[i] - x[i]) * (y[i] - x[i]); ss += x[i] * x[i]; }
        double rel = Math.sqrt(se / ss);
        // 4-bit grids over ±~2.5σ blocks: steps of ~0.3σ (Q4_0), finer with Q4_K's per-32 scales and mins
        double bound = switch (t) { case Q8_0 -> 0.01; case Q4_0 -> 0.12; default -> 0.1; };
        assertThat(rel).as(t.toString()).isLessThan(bound).isGreaterThan(0);
    }

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"F32", "F16", "Q8_0", "Q4_0", "Q4_K"})
    void aStreamedTensorHasTheBytesOfTheWholeQuantizedTensor(GgmlType t) throws Exception {
        // more rows than one task generates, and a last batch that is partly full
        int cols = 256, rows = (1 << 20) / cols * 9 + 37;
        SplittableRandom r = new SplittableRandom(4);
        float[] x = new float[rows * cols];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
        Path p = tmp.resolve(t + ".gguf");
        new GgufWriter().tensor("w", t, new long[]{cols, rows}, (r0, count, dst) -> System.arraycopy(x, (int) r0 * cols, dst, 0, count * cols)).write(p);
        byte[] whole = new byte[(int) t.rowBytes(x.length)];
        GgufWriter.quantize(t, x, 0, x.length, whole, 0);
        try (GgufFile g = GgufFile.open(p)) {
            GgufFile.Tensor gt = g.tensor("w");
            assertThat(gt.type()).isEqualTo(t);
            byte[] got = g.segment().asSlice(gt.offset(), gt.bytes()).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
            assertThat(java.util.Arrays.equals(got, whole)).isTrue();
        }
    }
}
