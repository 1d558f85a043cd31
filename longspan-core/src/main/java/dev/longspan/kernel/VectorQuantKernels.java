package dev.longspan.kernel;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

import static dev.longspan.kernel.QuantKernels.half;
import static dev.longspan.kernel.QuantKernels.i8;
import static dev.longspan.kernel.QuantKernels.scaleMinK4;

/**
 * Vector API bodies of {@link QuantKernels#dot}: 8 quantized bytes are loaded at a time, unpacked in
 * byte lanes, widened to 8 float lanes and multiplied into float accumulators; block scales are
 * applied once per (sub-)block. Same results as the scalar twins up to float summation order.
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
        float s = a0.add(a1).reduceLanes(VectorOperators.ADD);
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
        return acc.reduceLanes(VectorOperators.ADD);
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
        return acc.reduceLanes(VectorOperators.ADD);
    }

    static float dotQ4_K(MemorySegment w, long off, float[] x, int xo, int n) {
        FloatVector acc = FloatVector.zero(F), accMin = FloatVector.zero(F);
        for (int b = 0; b < n / 256; b++) {
            long o = off + 144L * b;
            float d = half(w, o), min = half(w, o + 2);
            for (int j = 0; j < 4; j++) {
                int a = scaleMinK4(w, o + 4, 2 * j), c = scaleMinK4(w, o + 4, 2 * j + 1);
                long q = o + 16 + 32L * j;
                int xb = xo + 256 * b + 64 * j;
                FloatVector sq1 = FloatVector.zero(F), sx1 = FloatVector.zero(F);
                FloatVector sq2 = FloatVector.zero(F), sx2 = FloatVector.zero(F);
                for (int l = 0; l < 32; l += 8) {
                    ByteVector v = bytes(w, q + l);
                    FloatVector x1 = xs(x, xb + l), x2 = xs(x, xb + 32 + l);
                    sq1 = widen(v.and((byte) 0x0F)).fma(x1, sq1);
                    sq2 = widen(v.lanewise(VectorOperators.LSHR, 4).and((byte) 0x0F)).fma(x2, sq2);
                    sx1 = sx1.add(x1);
                    sx2 = sx2.add(x2);
                }
                acc = sq1.fma(FloatVector.broadcast(F, d * (a & 0xff)), acc);
                acc = sq2.fma(FloatVector.broadcast(F, d * (c & 0xff)), acc);
                accMin = sx1.fma(FloatVector.broadcast(F, min * (a >>> 8)), accMin);
                accMin = sx2.fma(FloatVector.broadcast(F, min * (c >>> 8)), accMin);
            }
        }
        return acc.sub(accMin).reduceLanes(VectorOperators.ADD);
    }

    static float dotQ6_K(MemorySegment w, long off, float[] x, int xo, int n) {
        FloatVector acc = FloatVector.zero(F);
        for (int b = 0; b < n / 256; b++) {
            long o = off + 210L * b;
            float d = half(w, o + 208);
            for (int h = 0; h < 2; h++) {
                long ql = o + 64L * h, qh = o + 128 + 32L * h, sc = o + 192 + 8L * h;
                int xb = xo + 256 * b + 128 * h;
                for (int l = 0; l < 32; l += 8) {
                    int is = l / 16;
                    ByteVector a = bytes(w, ql + l), c = bytes(w, ql + l + 32), hb = bytes(w, qh + l);
                    ByteVector q1 = a.and((byte) 0x0F).or(hb.and((byte) 3).lanewise(VectorOperators.LSHL, 4)).sub((byte) 32);
                    ByteVector q2 = c.and((byte) 0x0F).or(hb.lanewise(VectorOperators.LSHR, 2).and((byte) 3).lanewise(VectorOperators.LSHL, 4)).sub((byte) 32);
                    ByteVector q3 = a.lanewise(VectorOperators.LSHR, 4).and((byte) 0x0F).or(hb.lanewise(VectorOperators.LSHR, 4).and((byte) 3).lanewise(VectorOperators.LSHL, 4)).sub((byte) 32);
                    ByteVector q4 = c.lanewise(VectorOperators.LSHR, 4).and((byte) 0x0F).or(hb.lanewise(VectorOperators.LSHR, 6).and((byte) 3).lanewise(VectorOperators.LSHL, 4)).sub((byte) 32);
                    acc = widen(q1).mul(xs(x, xb + l)).fma(FloatVector.broadcast(F, d * i8(w, sc + is)), acc);
                    acc = widen(q2).mul(xs(x, xb + l + 32)).fma(FloatVector.broadcast(F, d * i8(w, sc + is + 2)), acc);
                    acc = widen(q3).mul(xs(x, xb + l + 64)).fma(FloatVector.broadcast(F, d * i8(w, sc + is + 4)), acc);
                    acc = widen(q4).mul(xs(x, xb + l + 96)).fma(FloatVector.broadcast(F, d * i8(w, sc + is + 6)), acc);
                }
            }
        }
        return acc.reduceLanes(VectorOperators.ADD);
    }
}
