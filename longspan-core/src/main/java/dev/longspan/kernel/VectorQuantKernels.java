package dev.longspan.kernel;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

import static dev.longspan.kernel.QuantKernels.half;
import static dev.longspan.kernel.QuantKernels.i8;
import static dev.longspan.kernel.QuantKernels.scaleMinK4;

/**
 * Vector API bodies of {@link QuantKernels#dot}: 8 quantized bytes are loaded at a time, unpacked
 * (in byte lanes for Q8_0/Q4_0, in int lanes for the K-quants' variable shifts), widened to 8 float
 * lanes and multiplied into float accumulators; block scales are applied once per (sub-)block. Same results as the scalar twins up to float summation order.
 * Only loaded when {@link QuantKernels#SIMD} is true (256-bit vectors or wider).
 */
final class VectorQuantKernels {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    static final VectorSpecies<Byte> B = ByteVector.SPECIES_64;
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private VectorQuantKernels() {}

    private static FloatVector widen(ByteVector v) {
        return (FloatVector) v.convertShape(VectorOperators.B2F, F, 0);
    }

    private static ByteVector bytes(MemorySegment s, long off) {
        return ByteVector.fromMemorySegment(B, s, off, LE);
    }

    private static FloatVector xs(float[] x, int i) {
        return FloatVector.fromArray(F, x, i);
    }

    static float dotF32(MemorySegment w, long off, float[] x, int xo, int n) {
        FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F);
        int i = 0;
        for (; i <= n - 16; i += 16) {
            a0 = FloatVector.fromMemorySegment(F, w, off + 4L * i, LE).fma(xs(x, xo + i), a0);
            a1 = FloatVector.fromMemorySegment(F, w, off + 4L * i + 32, LE).fma(xs(x, xo + i + 8), a1);
        }
        for (; i <= n - 8; i += 8) a0 = FloatVector.fromMemorySegment(F, w, off + 4L * i, LE).fma(xs(x, xo + i), a0);
        float s = VectorMath.sum(a0.add(a1));
        for (; i < n; i++) s += w.get(QuantKernels.LE_FLOAT, off + 4L * i) * x[xo + i];
        return s;
    }

    static float dotQ8_0(MemorySegment w, long off, float[] x, int xo, int n) {
        FloatVector acc = FloatVector.zero(F);
        for (int b = 0; b < n / 32; b++) {
            long o = off + 34L * b;
            int xb = xo + 32 * b;
            FloatVector s0 = widen(bytes(w, o + 2)).mul(xs(x, xb));
            FloatVector s1 = widen(bytes(w, o + 10)).mul(xs(x, xb + 8));
            s0 = widen(bytes(w, o + 18)).fma(xs(x, xb + 16), s0);
            s1 = widen(bytes(w, o + 26)).fma(xs(x, xb + 24), s1);
            acc = s0.add(s1).fma(FloatVector.broadcast(F, half(w, o)), acc);
        }
        return VectorMath.sum(acc);
    }

    static float dotQ4_0(MemorySegment w, long off, float[] x, int xo, int n) {
        FloatVector acc = FloatVector.zero(F);
        for (int b = 0; b < n / 32; b++) {
            long o = off + 18L * b;
            int xb = xo + 32 * b;
            ByteVector q0 = bytes(w, o + 2), q1 = bytes(w, o + 10);
            // low nibbles are elements 0..15, high nibbles 16..31
            FloatVector s0 = widen(q0.and((byte) 0x0F).sub((byte) 8)).mul(xs(x, xb));
            FloatVector s1 = widen(q1.and((byte) 0x0F).sub((byte) 8)).mul(xs(x, xb + 8));
            s0 = widen(q0.lanewise(VectorOperators.LSHR, 4).and((byte) 0x0F).sub((byte) 8)).fma(xs(x, xb + 16), s0);
            s1 = widen(q1.lanewise(VectorOperators.LSHR, 4).and((byte) 0x0F).sub((byte) 8)).fma(xs(x, xb + 24), s1);
            acc = s0.add(s1).fma(FloatVector.broadcast(F, half(w, o)), acc);
        }
        return VectorMath.sum(acc);
    }

    // Small helpers with primitive signatures keep each compiled body small enough for C2 to
    // inline every Vector API call (a failed inline boxes vectors and is many times slower).

    static final VectorSpecies<Integer> I = IntVector.SPECIES_256;

    // 8 bytes as unsigned int lanes: bit fields are unpacked in int lanes, where variable shifts are native
    private static IntVector ints(MemorySegment w, long off) {
        return ((IntVector) bytes(w, off).convertShape(VectorOperators.B2I, I, 0)).and(0xFF);
    }

    private static FloatVector toFloat(IntVector v) {
        return (FloatVector) v.convert(VectorOperators.I2F, 0);
    }

    // Σ ((w[q+l] >>> shift) & 0xF) · x[xi+l] over l < 32
    private static float nibbleDot(MemorySegment w, long q, int shift, float[] x, int xi) {
        FloatVector s0 = FloatVector.zero(F), s1 = FloatVector.zero(F);
        for (int l = 0; l < 32; l += 16) {
            s0 = toFloat(ints(w, q + l).lanewise(VectorOperators.LSHR, shift).and(0x0F)).fma(xs(x, xi + l), s0);
            s1 = toFloat(ints(w, q + l + 8).lanewise(VectorOperators.LSHR, shift).and(0x0F)).fma(xs(x, xi + l + 8), s1);
        }
        return VectorMath.sum(s0.add(s1));
    }

    private static float sum32(float[] x, int xi) {
        return VectorMath.sum(xs(x, xi).add(xs(x, xi + 8)).add(xs(x, xi + 16).add(xs(x, xi + 24))));
    }

    static float dotQ4_K(MemorySegment w, long off, float[] x, int xo, int n) {
        float total = 0;
        for (int b = 0; b < n / 256; b++) {
            long o = off + 144L * b;
            float d = half(w, o), min = half(w, o + 2);
            for (int j = 0; j < 4; j++) {
                int a = scaleMinK4(w, o + 4, 2 * j), c = scaleMinK4(w, o + 4, 2 * j + 1);
                long q = o + 16 + 32L * j;
                int xb = xo + 256 * b + 64 * j;
                // low nibbles are elements 0..31 of this 64-chunk, high nibbles 32..63
                total += d * (a & 0xff) * nibbleDot(w, q, 0, x, xb) - min * (a >>> 8) * sum32(x, xb)
                        + d * (c & 0xff) * nibbleDot(w, q, 4, x, xb + 32) - min * (c >>> 8) * sum32(x, xb + 32);
            }
        }
        return total;
    }

    // Σ (((ql >>> lshift) & 0xF) | (((qh >>> hshift) & 3) << 4)) - 32) · x over 16 elements
    private static float q6Dot(MemorySegment w, long ql, long qh, int lshift, int hshift, float[] x, int xi) {
        FloatVector s = FloatVector.zero(F);
        for (int l = 0; l < 16; l += 8) {
            IntVector lo = ints(w, ql + l).lanewise(VectorOperators.LSHR, lshift).and(0x0F);
            IntVector hi = ints(w, qh + l).lanewise(VectorOperators.LSHR, hshift).and(3).lanewise(VectorOperators.LSHL, 4);
            s = toFloat(lo.or(hi).sub(32)).fma(xs(x, xi + l), s);
        }
        return VectorMath.sum(s);
    }

    static float dotQ6_K(MemorySegment w, long off, float[] x, int xo, int n) {
        float total = 0;
        for (int b = 0; b < n / 256; b++) {
            long o = off + 210L * b;
            float d = half(w, o + 208);
            for (int h = 0; h < 2; h++) {
                long ql = o + 64L * h, qh = o + 128 + 32L * h, sc = o + 192 + 8L * h;
                int xb = xo + 256 * b + 128 * h;
                for (int g = 0; g < 2; g++) { // one int8 scale per 16 elements
                    int l = 16 * g;
                    total += d * i8(w, sc + g) * q6Dot(w, ql + l, qh + l, 0, 0, x, xb + l)
                            + d * i8(w, sc + g + 2) * q6Dot(w, ql + l + 32, qh + l, 0, 2, x, xb + l + 32)
                            + d * i8(w, sc + g + 4) * q6Dot(w, ql + l, qh + l, 4, 4, x, xb + l + 64)
                            + d * i8(w, sc + g + 6) * q6Dot(w, ql + l + 32, qh + l, 4, 6, x, xb + l + 96);
                }
            }
        }
        return total;
    }
}
