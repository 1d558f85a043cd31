package dev.longspan.kernel;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

import static dev.longspan.kernel.QuantKernels.half;
import static dev.longspan.kernel.QuantKernels.i8;
import static dev.longspan.kernel.QuantKernels.scaleMinK4;

/**
 * Vector API bodies of {@link QuantKernels#dot}: integer dots of stored weight quants with int8
 * activation quants ({@link Q8Activations}, already widened to shorts). 16 weight bytes are
 * loaded at a time and widened to 16 short lanes, where nibbles and bit fields are unpacked with
 * native 16-bit shifts; products are taken in short lanes, two of them summed before widening to
 * int lanes (|w·a| ≤ 128·127, so a sum of two fits in 16 bits), and the int lanes of a block (Q8_0,
 * Q4_0) or of a whole 256-element super-block, each sub-block's sums times its scale (Q4_K, Q6_K),
 * are scaled into float lanes once. The integer sums are exact: results equal the scalar twins'
 * up to the order of the float scaling. Only loaded when {@link QuantKernels#SIMD} is true
 * (256-bit vectors or wider; the species are fixed at 256 bits).
 */
final class VectorQuantKernels {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    static final VectorSpecies<Short> S = ShortVector.SPECIES_256;
    static final VectorSpecies<Byte> B = ByteVector.SPECIES_128;
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private VectorQuantKernels() {}

    // Small helpers with primitive signatures keep each compiled body small enough for C2 to
    // inline every Vector API call (a failed inline boxes vectors and is many times slower).

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

    // 16 signed weight bytes as short lanes
    private static ShortVector signed(MemorySegment w, long off) {
        return (ShortVector) ByteVector.fromMemorySegment(B, w, off, LE).convertShape(VectorOperators.B2S, S, 0);
    }

    // 16 weight bytes as unsigned short lanes (0..255), for unpacking bit fields
    private static ShortVector unsigned(MemorySegment w, long off) {
        return signed(w, off).and((short) 0xFF);
    }

    private static ShortVector aq(short[] a, int i) {
        return ShortVector.fromArray(S, a, i);
    }

    // the 16 short lanes of p summed pairwise into 8 int lanes (lane i + lane i+8)
    private static IntVector widen(ShortVector p) {
        return ((IntVector) p.convertShape(VectorOperators.S2I, I, 0)).add((IntVector) p.convertShape(VectorOperators.S2I, I, 1));
    }

    private static FloatVector toFloat(IntVector v) {
        return (FloatVector) v.convert(VectorOperators.I2F, 0);
    }

    static float dotQ8_0(MemorySegment w, long off, short[] aq, float[] ad, int ao, int n) {
        FloatVector acc = FloatVector.zero(F);
        for (int b = 0; b < n / 32; b++) {
            long o = off + 34L * b;
            int xb = ao + 32 * b;
            ShortVector p = signed(w, o + 2).mul(aq(aq, xb)).add(signed(w, o + 18).mul(aq(aq, xb + 16)));
            acc = toFloat(widen(p)).fma(FloatVector.broadcast(F, half(w, o) * ad[xb / 32]), acc);
        }
        return VectorMath.sum(acc);
    }

    static float dotQ4_0(MemorySegment w, long off, short[] aq, float[] ad, int ao, int n) {
        FloatVector acc = FloatVector.zero(F);
        for (int b = 0; b < n / 32; b++) {
            long o = off + 18L * b;
            int xb = ao + 32 * b;
            ShortVector q = unsigned(w, o + 2);
            // low nibbles are elements 0..15, high nibbles 16..31
            ShortVector lo = q.and((short) 0x0F).sub((short) 8), hi = q.lanewise(VectorOperators.LSHR, 4).sub((short) 8);
            ShortVector p = lo.mul(aq(aq, xb)).add(hi.mul(aq(aq, xb + 16)));
            acc = toFloat(widen(p)).fma(FloatVector.broadcast(F, half(w, o) * ad[xb / 32]), acc);
        }
        return VectorMath.sum(acc);
    }

    // per 256: d·da·Σ_j sc_j·Σ q·a − dmin·da·Σ_j m_j·Σ a, the Σ_j in int lanes across the super-block
    static float dotQ4_K(MemorySegment w, long off, short[] aq, float[] ad, int[] bsums, int ao, int n) {
        FloatVector acc = FloatVector.zero(F);
        float mins = 0;
        for (int b = 0; b < n / 256; b++) {
            long o = off + 144L * b;
            int xb = ao + 256 * b;
            IntVector isum = IntVector.zero(I);
            int msum = 0;
            for (int j = 0; j < 4; j++) {
                int sa = scaleMinK4(w, o + 4, 2 * j), sc = scaleMinK4(w, o + 4, 2 * j + 1);
                long q = o + 16 + 32L * j;
                int x = xb + 64 * j;
                ShortVector q0 = unsigned(w, q), q1 = unsigned(w, q + 16);
                // low nibbles are elements 0..31 of this 64-chunk, high nibbles 32..63
                ShortVector lo = q0.and((short) 0x0F).mul(aq(aq, x)).add(q1.and((short) 0x0F).mul(aq(aq, x + 16)));
                ShortVector hi = q0.lanewise(VectorOperators.LSHR, 4).mul(aq(aq, x + 32))
                        .add(q1.lanewise(VectorOperators.LSHR, 4).mul(aq(aq, x + 48)));
                isum = widen(lo).mul(sa & 0xff).add(isum).add(widen(hi).mul(sc & 0xff));
                int g = x / 16;
                msum += (sa >>> 8) * (bsums[g] + bsums[g + 1]) + (sc >>> 8) * (bsums[g + 2] + bsums[g + 3]);
            }
            float da = ad[xb / 256];
            acc = toFloat(isum).fma(FloatVector.broadcast(F, half(w, o) * da), acc);
            mins += half(w, o + 2) * da * msum;
        }
        return VectorMath.sum(acc) - mins;
    }

    // (((ql >>> lshift) & 0xF) | (((qh >>> hshift) & 3) << 4)) - 32, 16 lanes
    private static ShortVector q6(ShortVector ql, ShortVector qh, int lshift, int hshift) {
        return ql.lanewise(VectorOperators.LSHR, lshift).and((short) 0x0F)
                .or(qh.lanewise(VectorOperators.LSHR, hshift).and((short) 3).lanewise(VectorOperators.LSHL, 4))
                .sub((short) 32);
    }

    // per 256: d·da·Σ_g sc_g·Σ q·a over the sixteen 16-element groups, the Σ_g in int lanes
    static float dotQ6_K(MemorySegment w, long off, short[] aq, float[] ad, int ao, int n) {
        FloatVector acc = FloatVector.zero(F);
        for (int b = 0; b < n / 256; b++) {
            long o = off + 210L * b;
            IntVector isum = IntVector.zero(I);
            for (int h = 0; h < 2; h++) {
                long ql = o + 64L * h, qh = o + 128 + 32L * h, sc = o + 192 + 8L * h;
                int xb = ao + 256 * b + 128 * h;
                for (int g = 0; g < 2; g++) { // one int8 scale per 16 elements
                    int l = 16 * g;
                    ShortVector a = unsigned(w, ql + l), c = unsigned(w, ql + l + 32), hb = unsigned(w, qh + l);
                    isum = isum.add(widen(q6(a, hb, 0, 0).mul(aq(aq, xb + l))).mul(i8(w, sc + g)))
                            .add(widen(q6(c, hb, 0, 2).mul(aq(aq, xb + l + 32))).mul(i8(w, sc + g + 2)))
                            .add(widen(q6(a, hb, 4, 4).mul(aq(aq, xb + l + 64))).mul(i8(w, sc + g + 4)))
                            .add(widen(q6(c, hb, 4, 6).mul(aq(aq, xb + l + 96))).mul(i8(w, sc + g + 6)));
                }
            }
            acc = toFloat(isum).fma(FloatVector.broadcast(F, half(w, o + 208) * ad[(ao + 256 * b) / 256]), acc);
        }
        return VectorMath.sum(acc);
    }
}
