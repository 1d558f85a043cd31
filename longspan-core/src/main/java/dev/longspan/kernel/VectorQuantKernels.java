package dev.longspan.kernel;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

import static dev.longspan.kernel.QuantKernels.half;
import static dev.longspan.kernel.QuantKernels.i8;

/**
 * Vector API bodies of {@link QuantKernels#dot}: integer dots of stored weight quants with int8
 * activation quants ({@link Q8Activations}, already widened to shorts).
 *
 * <p>Q8_0, Q4_0, Q4_K, Q5_K and Q6_K work at the machine's vector width ({@link #S}: as many short lanes as
 * the preferred vector holds, 8 at 128 bits, 16 at 256, 32 at 512; wider machines use 512 bits):
 * half a vector of weight bytes is loaded and widened to a full vector of short lanes, nibbles are
 * unpacked with 16-bit and/shift, products are taken in short lanes (|w·a| ≤ 128·127, so two of
 * them still fit in 16 bits), and adjacent short lanes are summed into int lanes without any
 * lane-moving conversion: the short vector is viewed as ints, each int added to itself shifted
 * left by 16 and shifted back arithmetically ({@link #pairs}, what x86's {@code pmaddwd} with ones
 * does). Q8_0 and
 * Q4_0 scale each block's int lanes into float lanes once; Q4_K multiplies each 32-element
 * sub-block's int lanes by its 6-bit scale and keeps them in int lanes over the whole 256-element
 * super-block (scales unpacked once per super-block), then scales once; Q5_K does the same with
 * the fifth bit or-ed above each nibble; Q6_K multiplies each 16-element group's int lanes by its
 * int8 scale (at 512 bits one vector spans two groups: the upper int lanes take the second). The
 * integer sums are exact, so results equal the scalar twins' up to the order of the float scaling.
 *
 * <p>Q4_0 on machines wider than 256 bits and F32 rows keep 256-bit bodies (fixed species; F32 used
 * when the machine has at least 256-bit vectors: {@link QuantKernels#SIMD256}).
 */
final class VectorQuantKernels {
    /** The shape of the width-agnostic bodies: the preferred one, at most 512 bits (Q8_0 blocks hold 32 values). */
    static final VectorShape SHAPE = VectorShape.forBitSize(Math.min(512, Simd.VECTOR_BITS));
    static final VectorSpecies<Short> S = ShortVector.SPECIES_PREFERRED.withShape(SHAPE);
    static final VectorSpecies<Integer> SI = IntVector.SPECIES_PREFERRED.withShape(SHAPE);
    static final VectorSpecies<Float> SF = FloatVector.SPECIES_PREFERRED.withShape(SHAPE);
    /** Half a vector of bytes: widened to the short lanes of {@link #S}. */
    static final VectorSpecies<Byte> SB = ByteVector.SPECIES_PREFERRED.withShape(VectorShape.forBitSize(SHAPE.vectorBitSize() / 2));
    /** Short lanes per vector. */
    static final int L = S.length();

    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    static final VectorSpecies<Short> S256 = ShortVector.SPECIES_256;
    static final VectorSpecies<Byte> B = ByteVector.SPECIES_128;
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private VectorQuantKernels() {}

    // Q8_0 / Q8_1 blocks [b0, b1) of x from xo (32 values each), Q8Activations.quantizeQ8's numbers:
    // the block's |x| max (a max's order does not matter), then each x·id rounded by adding and
    // subtracting 1.5·2^23 in floats (no fused multiply-add: the product is rounded first, as there)
    // and converted as Java's cast does; Q8_1's sum of the quants exact in ints
    static void quantizeQ8(float[] x, int xo, int b0, int b1, short[] q, float[] d, float[] s) {
        int n = SF.length();
        for (int b = b0; b < b1; b++) {
            int xi = xo + 32 * b;
            FloatVector m = FloatVector.zero(SF);
            for (int j = 0; j < 32; j += n) m = m.max(FloatVector.fromArray(SF, x, xi + j).abs());
            float amax = m.reduceLanes(VectorOperators.MAX);
            float db = amax / 127f;
            float id = amax != 0 ? 127f / amax : 0f;
            IntVector sum = IntVector.zero(SI);
            for (int j = 0; j < 32; j += n) {
                IntVector v = (IntVector) FloatVector.fromArray(SF, x, xi + j).mul(id).add(0x1.8p23f).sub(0x1.8p23f).convertShape(VectorOperators.F2I, SI, 0);
                ((ShortVector) v.convertShape(VectorOperators.I2S, SQ, 0)).intoArray(q, 32 * b + j);
                if (s != null) sum = sum.add(v);
            }
            d[b] = Q8Activations.half(db);
            if (s != null) s[b] = Q8Activations.half(db * sum.reduceLanes(VectorOperators.ADD));
        }
    }

    // v[i] = q[i]·d[block of i] for the blocks [b0, b1) of bs values: Q8Activations.values' products
    static void values(short[] q, float[] d, int bs, int b0, int b1, float[] v) {
        int n = SF.length();
        for (int b = b0; b < b1; b++) {
            float db = d[b];
            for (int i = b * bs, e = i + bs; i < e; i += n)
                ((FloatVector) ShortVector.fromArray(SQ, q, i).convertShape(VectorOperators.S2F, SF, 0)).mul(db).intoArray(v, i);
        }
    }

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

    /** Short lanes as many as {@link #SF}'s float lanes: a vector of fp16 weights widened to floats. */
    static final VectorSpecies<Short> SQ = ShortVector.SPECIES_PREFERRED.withShape(VectorShape.forBitSize(SF.vectorBitSize() / 2));

    /**
     * An F16 row times activations already rounded to F16 (ggml's vec_dot_f16: both widened to
     * float, products summed in float). Each fp16 value is widened with integer operations: sign-
     * extended to an int, shifted so its exponent and mantissa sit in a float's place (the sign's
     * copies cleared from the exponent), read as a float 2^-112 too small and multiplied by 2^112:
     * exact for every finite value, subnormals included. A row holding an infinity or NaN (exponent
     * all ones) is noticed and taken by the scalar path instead.
     */
    static float dotF16(MemorySegment w, long off, float[] x, int xo, int n) {
        int L16 = SF.length();
        FloatVector acc0 = FloatVector.zero(SF), acc1 = FloatVector.zero(SF);
        IntVector special = IntVector.zero(SI);
        int i = 0;
        for (; i <= n - 2 * L16; i += 2 * L16) {
            IntVector h0 = (IntVector) ShortVector.fromMemorySegment(SQ, w, off + 2L * i, LE).convertShape(VectorOperators.S2I, SI, 0);
            IntVector h1 = (IntVector) ShortVector.fromMemorySegment(SQ, w, off + 2L * i + 2L * L16, LE).convertShape(VectorOperators.S2I, SI, 0);
            special = special.or(h0.and(0x7C00).add(0x0400)).or(h1.and(0x7C00).add(0x0400));
            FloatVector f0 = h0.lanewise(VectorOperators.LSHL, 13).and(0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
            FloatVector f1 = h1.lanewise(VectorOperators.LSHL, 13).and(0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
            acc0 = f0.fma(FloatVector.fromArray(SF, x, xo + i), acc0);
            acc1 = f1.fma(FloatVector.fromArray(SF, x, xo + i + L16), acc1);
        }
        // an exponent of all ones (0x7C00) plus 0x0400 carries into bit 15: the row has an inf or NaN
        if ((special.reduceLanes(VectorOperators.OR) & 0x8000) != 0) return Float.NaN;
        float s = VectorMath.sum(acc0.add(acc1));
        for (; i < n; i++) s += QuantKernels.half(w, off + 2L * i) * x[xo + i];
        return s;
    }

    // ---- width-agnostic bodies (species S, L short lanes) -------------------------------------

    // L signed weight bytes as L short lanes
    private static ShortVector bytes(MemorySegment w, long off) {
        return (ShortVector) ByteVector.fromMemorySegment(SB, w, off, LE).convertShape(VectorOperators.B2S, S, 0);
    }

    // L weight bytes as L unsigned short lanes (0..255), for unpacking nibbles
    private static ShortVector ubytes(MemorySegment w, long off) {
        return (ShortVector) ByteVector.fromMemorySegment(SB, w, off, LE).convertShape(VectorOperators.ZERO_EXTEND_B2S, S, 0);
    }

    // L activation quants
    private static ShortVector act(short[] a, int i) {
        return ShortVector.fromArray(S, a, i);
    }

    // adjacent short lanes summed into int lanes, for sums that fit in 16 bits: each int of the same
    // bits is hi·2¹⁶ + lo (lo unsigned); adding itself shifted left by 16 puts hi + lo (mod 2¹⁶) in the
    // top half, which the arithmetic shift brings down sign-extended (x86's pmaddwd with ones)
    private static IntVector pairs(ShortVector p) {
        IntVector v = p.reinterpretAsInts();
        return v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
    }

    private static FloatVector floats(IntVector v) {
        return (FloatVector) v.convertShape(VectorOperators.I2F, SF, 0);
    }

    // Σ w·a over the 32 quants of a Q8_0 block at byte q, activations from a[x], in int lanes
    private static IntVector blockQ8(MemorySegment w, long q, short[] a, int x) {
        IntVector s = pairs(bytes(w, q).mul(act(a, x)));
        for (int k = L; k < 32; k += L) s = s.add(pairs(bytes(w, q + k).mul(act(a, x + k))));
        return s;
    }

    static float dotQ8_0(MemorySegment w, long off, short[] aq, float[] ad, int ao, int n) {
        // two accumulators (even and odd blocks) so that consecutive FMAs do not wait for each other;
        // running offsets keep the address arithmetic out of the loop body
        FloatVector acc0 = FloatVector.zero(SF), acc1 = FloatVector.zero(SF);
        int end = ao + n - 32;
        long o = off;
        int x = ao;
        for (; x < end; x += 64, o += 68) {
            acc0 = floats(blockQ8(w, o + 2, aq, x)).fma(FloatVector.broadcast(SF, half(w, o) * ad[x >> 5]), acc0);
            acc1 = floats(blockQ8(w, o + 36, aq, x + 32)).fma(FloatVector.broadcast(SF, half(w, o + 34) * ad[(x >> 5) + 1]), acc1);
        }
        if (x <= end) acc0 = floats(blockQ8(w, o + 2, aq, x)).fma(FloatVector.broadcast(SF, half(w, o) * ad[x >> 5]), acc0);
        return VectorMath.sum(acc0.add(acc1));
    }

    // Σ (nibble − 8)·a over a Q4_0 block's 32 quants (16 bytes at q: low nibbles 0..15, high 16..31)
    private static IntVector blockQ4(MemorySegment w, long q, short[] a, int x) {
        IntVector s = IntVector.zero(SI);
        for (int k = 0; k < 16; k += L) { // L ≤ 16 (dotQ4_0_256 otherwise)
            ShortVector v = ubytes(w, q + k);
            ShortVector lo = v.and((short) 0x0F).sub((short) 8), hi = v.lanewise(VectorOperators.LSHR, 4).sub((short) 8);
            s = s.add(pairs(lo.mul(act(a, x + k)).add(hi.mul(act(a, x + 16 + k)))));
        }
        return s;
    }

    static float dotQ4_0(MemorySegment w, long off, short[] aq, float[] ad, int ao, int n) {
        FloatVector acc = FloatVector.zero(SF);
        int blocks = n / 32;
        for (int b = 0; b < blocks; b++) {
            long o = off + 18L * b;
            int xb = ao + 32 * b;
            acc = floats(blockQ4(w, o + 2, aq, xb)).fma(FloatVector.broadcast(SF, half(w, o) * ad[xb >> 5]), acc);
        }
        return VectorMath.sum(acc);
    }

    // one 64-element chunk of a Q4_K super-block (32 bytes at q: low nibbles are elements 0..31,
    // high nibbles 32..63), sub-blocks with scales lo, hi. Σ nibble·a in short lanes (at most
    // 4·15·127 per lane: 32/L ≤ 4 products), then in int lanes times the scale.
    private static IntVector chunkQ4K(MemorySegment w, long q, short[] a, int x, int lo, int hi) {
        ShortVector v = ubytes(w, q);
        ShortVector sl = v.and((short) 0x0F).mul(act(a, x)), sh = v.lanewise(VectorOperators.LSHR, 4).mul(act(a, x + 32));
        for (int k = L; k < 32; k += L) {
            v = ubytes(w, q + k);
            sl = sl.add(v.and((short) 0x0F).mul(act(a, x + k)));
            sh = sh.add(v.lanewise(VectorOperators.LSHR, 4).mul(act(a, x + 32 + k)));
        }
        return pairs(sl).mul(lo).add(pairs(sh).mul(hi));
    }

    // per 256: d·da·Σ_j sc_j·Σ q·a − dmin·da·Σ_j m_j·Σ a, the Σ_j in int lanes across the super-block
    static float dotQ4_K(MemorySegment w, long off, short[] aq, float[] ad, int[] bsums32, int ao, int n) {
        FloatVector acc = FloatVector.zero(SF);
        float mins = 0;
        int blocks = n / 256;
        for (int b = 0; b < blocks; b++) {
            long o = off + 144L * b;
            int xb = ao + 256 * b;
            long s0 = w.get(QuantKernels.LE_LONG, o + 4);
            int s8 = w.get(QuantKernels.LE_INT, o + 12);
            // sub-blocks 2j (low nibbles) and 2j+1 (high) of chunk j; a loop keeps the compiled body small
            long scales = scalesK4(s0, s8);
            IntVector isum = IntVector.zero(SI);
            for (int j = 0; j < 4; j++) {
                int sc = (int) (scales >>> (16 * j));
                isum = isum.add(chunkQ4K(w, o + 16 + 32L * j, aq, xb + 64 * j, sc & 0xff, (sc >>> 8) & 0xff));
            }
            float da = ad[xb >> 8];
            acc = floats(isum).fma(FloatVector.broadcast(SF, half(w, o) * da), acc);
            mins += half(w, o + 2) * da * minsK4(s0, s8, bsums32, xb >> 5);
        }
        return VectorMath.sum(acc) - mins;
    }

    // The 12 scale bytes of a Q4_K / Q5_K super-block (s0: bytes 0..7, s8: bytes 8..11) hold 8 six-bit
    // scales and 8 six-bit mins: scales 0..3 are bytes 0..3 & 63, 4..7 the low nibbles of bytes 8..11
    // with the top bits of bytes 0..3 above them; the mins likewise from bytes 4..7 and the high nibbles.
    // Byte j of the result: the scale of sub-block j.
    private static long scalesK4(long s0, int s8) {
        int lo = (int) s0;
        int sc03 = lo & 0x3f3f3f3f, sc47 = (s8 & 0x0f0f0f0f) | ((lo >>> 2) & 0x30303030);
        return (sc03 & 0xffffffffL) | ((long) sc47 << 32);
    }

    // Σ_j m_j·Σ a over the eight 32-element sub-blocks, bsums32[g..g+8) the activations' sums
    private static int minsK4(long s0, int s8, int[] bsums32, int g) {
        int hi = (int) (s0 >>> 32);
        int m03 = hi & 0x3f3f3f3f, m47 = ((s8 >>> 4) & 0x0f0f0f0f) | ((hi >>> 2) & 0x30303030);
        return (m03 & 0xff) * bsums32[g] + ((m03 >>> 8) & 0xff) * bsums32[g + 1]
                + ((m03 >>> 16) & 0xff) * bsums32[g + 2] + (m03 >>> 24) * bsums32[g + 3]
                + (m47 & 0xff) * bsums32[g + 4] + ((m47 >>> 8) & 0xff) * bsums32[g + 5]
                + ((m47 >>> 16) & 0xff) * bsums32[g + 6] + (m47 >>> 24) * bsums32[g + 7];
    }

    // one 64-element chunk of a Q5_K super-block: chunkQ4K's nibbles (32 bytes at q) with a fifth bit
    // from the super-block's 32 high-bit bytes at qh (bit `shift` for the low nibbles, shift + 1 for the
    // high ones). Σ q·a in short lanes: at most 4·31·127 per lane, two lanes 31,496 < 2¹⁵ for pairs.
    private static IntVector chunkQ5K(MemorySegment w, long q, long qh, int shift, short[] a, int x, int lo, int hi) {
        ShortVector sl = ShortVector.zero(S), sh = ShortVector.zero(S);
        for (int k = 0; k < 32; k += L) {
            ShortVector v = ubytes(w, q + k), h = ubytes(w, qh + k).lanewise(VectorOperators.LSHR, shift);
            sl = sl.add(v.and((short) 0x0F).or(h.and((short) 1).lanewise(VectorOperators.LSHL, 4)).mul(act(a, x + k)));
            sh = sh.add(v.lanewise(VectorOperators.LSHR, 4).or(h.and((short) 2).lanewise(VectorOperators.LSHL, 3)).mul(act(a, x + 32 + k)));
        }
        return pairs(sl).mul(lo).add(pairs(sh).mul(hi));
    }

    // per 256: dotQ4_K's sums with five-bit quants (d, dmin, 12 scale bytes, 32 high-bit bytes, 128 nibble bytes)
    static float dotQ5_K(MemorySegment w, long off, short[] aq, float[] ad, int[] bsums32, int ao, int n) {
        FloatVector acc = FloatVector.zero(SF);
        float mins = 0;
        int blocks = n / 256;
        for (int b = 0; b < blocks; b++) {
            long o = off + 176L * b;
            int xb = ao + 256 * b;
            long s0 = w.get(QuantKernels.LE_LONG, o + 4);
            int s8 = w.get(QuantKernels.LE_INT, o + 12);
            long scales = scalesK4(s0, s8);
            IntVector isum = IntVector.zero(SI);
            for (int j = 0; j < 4; j++) {
                int sc = (int) (scales >>> (16 * j));
                isum = isum.add(chunkQ5K(w, o + 48 + 32L * j, o + 16, 2 * j, aq, xb + 64 * j, sc & 0xff, (sc >>> 8) & 0xff));
            }
            float da = ad[xb >> 8];
            acc = floats(isum).fma(FloatVector.broadcast(SF, half(w, o) * da), acc);
            mins += half(w, o + 2) * da * minsK4(s0, s8, bsums32, xb >> 5);
        }
        return VectorMath.sum(acc) - mins;
    }

    // Q3_K's sixteen six-bit scales (12 bytes: s0 = bytes 0..7, s8 = bytes 8..11): scale j's low four bits
    // are the low (j < 8) or high (j ≥ 8) nibble of byte j mod 8, its top two bits bits 2·(j / 4) of byte
    // 8 + j mod 4; minus 32
    private static int scaleQ3(long s0, int s8, int j) {
        int lo = (int) (s0 >>> (8 * (j & 7) + 4 * (j >>> 3))) & 0xF, hi = (s8 >>> (8 * (j & 3) + 2 * (j >>> 2))) & 3;
        return (lo | hi << 4) - 32;
    }

    // the scales of pairs(...) over elements k..k+L of a 32-element run whose two 16-element groups have
    // scales s0, s1: one of them, or at L = 32 s0 in the lower int lanes and s1 in the upper
    private static IntVector scales16(int s0, int s1, int k) {
        IntVector v = IntVector.broadcast(SI, (k & 16) == 0 ? s0 : s1);
        return L < 32 ? v : v.blend(s1, UPPER_HALF);
    }

    // per 256 (hmask[32], qs[64], scales[12], d): d·da·Σ_g (sc_g − 32)·Σ q·a over the sixteen 16-element
    // groups, q = ((qs >> 2j) & 3) − 4 where the hmask bit is clear. Per 128-element half n and shift j a
    // run of 32 elements: two bits of qs[32n + l] and bit 4n + j of hmask[l]; |q·a| ≤ 4·127.
    static float dotQ3_K(MemorySegment w, long off, short[] aq, float[] ad, int ao, int n) {
        FloatVector acc = FloatVector.zero(SF);
        for (int b = 0; b < n / 256; b++) {
            long o = off + 110L * b;
            int xb = ao + 256 * b;
            long s0 = w.get(QuantKernels.LE_LONG, o + 96);
            int s8 = w.get(QuantKernels.LE_INT, o + 104);
            IntVector isum = IntVector.zero(SI);
            for (int r = 0; r < 8; r++) {                 // run r: half n = r / 4, shift j = r % 4
                int hb = r, shift = 2 * (r & 3), g0 = 2 * r, g1 = 2 * r + 1;
                int sc0 = scaleQ3(s0, s8, g0), sc1 = scaleQ3(s0, s8, g1);
                long qs = o + 32 + 32L * (r >> 2);
                for (int k = 0; k < 32; k += L) {
                    ShortVector q = ubytes(w, qs + k).lanewise(VectorOperators.LSHR, shift).and((short) 3)
                            .add(ubytes(w, o + k).lanewise(VectorOperators.LSHR, hb).and((short) 1).lanewise(VectorOperators.LSHL, 2)).sub((short) 4);
                    isum = isum.add(pairs(q.mul(act(aq, xb + 32 * r + k))).mul(scales16(sc0, sc1, k)));
                }
            }
            acc = floats(isum).fma(FloatVector.broadcast(SF, half(w, o + 108) * ad[xb >> 8]), acc);
        }
        return VectorMath.sum(acc);
    }

    // per 256 (scales[16], qs[64], d, dmin): d·da·Σ_g sc_g·Σ q·a − dmin·da·Σ_g m_g·Σ a over the sixteen
    // 16-element groups (scale byte g: sc_g in its low nibble, m_g in its high), q = (qs >> 2j) & 3 walked
    // in runs of 32 as dotQ3_K's; bsums: the activations' sums per 16
    static float dotQ2_K(MemorySegment w, long off, short[] aq, float[] ad, int[] bsums, int ao, int n) {
        FloatVector acc = FloatVector.zero(SF);
        float mins = 0;
        for (int b = 0; b < n / 256; b++) {
            long o = off + 84L * b;
            int xb = ao + 256 * b, msum = 0;
            IntVector isum = IntVector.zero(SI);
            for (int r = 0; r < 8; r++) {
                int shift = 2 * (r & 3), sa = QuantKernels.u8(w, o + 2 * r), sb = QuantKernels.u8(w, o + 2 * r + 1);
                long qs = o + 16 + 32L * (r >> 2);
                for (int k = 0; k < 32; k += L) {
                    ShortVector q = ubytes(w, qs + k).lanewise(VectorOperators.LSHR, shift).and((short) 3);
                    isum = isum.add(pairs(q.mul(act(aq, xb + 32 * r + k))).mul(scales16(sa & 0xF, sb & 0xF, k)));
                }
                msum += (sa >>> 4) * bsums[(xb >> 4) + 2 * r] + (sb >>> 4) * bsums[(xb >> 4) + 2 * r + 1];
            }
            float da = ad[xb >> 8];
            acc = floats(isum).fma(FloatVector.broadcast(SF, half(w, o + 80) * da), acc);
            mins += half(w, o + 82) * da * msum;
        }
        return VectorMath.sum(acc) - mins;
    }

    /** The int lanes of a vector whose upper half takes the second of two scales (scales16, at L = 32). */
    private static final VectorMask<Integer> UPPER_HALF = VectorMask.fromLong(SI, -1L << (SI.length() / 2));

    // (((ql >>> lshift) & 0xF) | (((qh >>> hshift) & 3) << 4)) - 32, lane by lane
    private static ShortVector q6(ShortVector ql, ShortVector qh, int lshift, int hshift) {
        return ql.lanewise(VectorOperators.LSHR, lshift).and((short) 0x0F)
                .or(qh.lanewise(VectorOperators.LSHR, hshift).and((short) 3).lanewise(VectorOperators.LSHL, 4))
                .sub((short) 32);
    }


    // per 256: d·da·Σ_g sc_g·Σ q·a over the sixteen 16-element groups, the Σ_g in int lanes. Per half
    // of 128 and per L columns l of its 32: the quarters j (elements l, l+32, l+64, l+96) are the low
    // or high nibbles of ql[l] or ql[l+32] with bits 2j of qh[l] above them. The quarters go round a
    // loop rather than written out: the unrolled body's inlined Vector API calls passed C2's inlining
    // budget, its helpers were called with boxed vectors and a Q6_K row ran 12x slower than a Q4_K row.
    static float dotQ6_K(MemorySegment w, long off, short[] aq, float[] ad, int ao, int n) {
        FloatVector acc = FloatVector.zero(SF);
        for (int b = 0; b < n / 256; b++) {
            long o = off + 210L * b;
            IntVector isum = IntVector.zero(SI);
            for (int h = 0; h < 2; h++) {
                long ql = o + 64L * h, qh = o + 128 + 32L * h, sc = o + 192 + 8L * h;
                int xb = ao + 256 * b + 128 * h;
                for (int k = 0; k < 32; k += L) {
                    ShortVector hb = ubytes(w, qh + k), lo = ubytes(w, ql + k), hi = ubytes(w, ql + 32 + k);
                    for (int j = 0; j < 4; j++) {
                        ShortVector q = q6((j & 1) == 0 ? lo : hi, hb, 4 * (j >> 1), 2 * j);
                        isum = isum.add(pairs(q.mul(act(aq, xb + 32 * j + k))).mul(scales16(i8(w, sc + 2 * j), i8(w, sc + 2 * j + 1), k)));
                    }
                }
            }
            acc = floats(isum).fma(FloatVector.broadcast(SF, half(w, o + 208) * ad[(ao + 256 * b) >> 8]), acc);
        }
        return VectorMath.sum(acc);
    }

    // ---- 256-bit bodies -----------------------------------------------------------------------

    // 16 signed weight bytes as short lanes
    private static ShortVector signed(MemorySegment w, long off) {
        return (ShortVector) ByteVector.fromMemorySegment(B, w, off, LE).convertShape(VectorOperators.B2S, S256, 0);
    }

    // 16 weight bytes as unsigned short lanes (0..255), for unpacking bit fields
    private static ShortVector unsigned(MemorySegment w, long off) {
        return signed(w, off).and((short) 0xFF);
    }

    private static ShortVector aq(short[] a, int i) {
        return ShortVector.fromArray(S256, a, i);
    }

    // the 16 short lanes of p summed pairwise into 8 int lanes (lane i + lane i+8)
    private static IntVector widen(ShortVector p) {
        return ((IntVector) p.convertShape(VectorOperators.S2I, I, 0)).add((IntVector) p.convertShape(VectorOperators.S2I, I, 1));
    }

    private static FloatVector toFloat(IntVector v) {
        return (FloatVector) v.convert(VectorOperators.I2F, 0);
    }

    /** Short lane l holds 1 &lt;&lt; l: the bit of a Q5 block's qh (half) that lane's element takes. */
    private static final ShortVector LANE_BITS = ShortVector.fromArray(S256, new short[]{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, (short) 0x8000}, 0);

    // Σ (q − bias)·a over a 32-element Q4_1 / Q5_0 / Q5_1 block in 8 int lanes: q the nibble (16 bytes at qs:
    // low nibbles elements 0..15, high 16..31), with 16 added where bit j of qh is set (Q5; qh = 0 for Q4_1);
    // |q − bias|·127 ≤ 31·127, two products per short lane
    private static IntVector block45(MemorySegment w, long qs, int qh, short[] a, int x, short bias) {
        ShortVector v = unsigned(w, qs);
        ShortVector lo = v.and((short) 0x0F), hi = v.lanewise(VectorOperators.LSHR, 4);
        lo = lo.add((short) 16, ShortVector.broadcast(S256, (short) qh).and(LANE_BITS).compare(VectorOperators.NE, (short) 0));
        hi = hi.add((short) 16, ShortVector.broadcast(S256, (short) (qh >>> 16)).and(LANE_BITS).compare(VectorOperators.NE, (short) 0));
        return widen(lo.sub(bias).mul(aq(a, x)).add(hi.sub(bias).mul(aq(a, x + 16))));
    }

    // Q4_1 (half d, half m, 16 nibble bytes per 32; activations Q8_1): per block d·da·Σ q·a + m·s
    static float dotQ4_1(MemorySegment w, long off, short[] aq, float[] ad, float[] as, int ao, int n) {
        FloatVector acc = FloatVector.zero(F);
        float mins = 0;
        for (int b = 0; b < n / 32; b++) {
            long o = off + 20L * b;
            int xb = ao + 32 * b;
            acc = toFloat(block45(w, o + 4, 0, aq, xb, (short) 0)).fma(FloatVector.broadcast(F, half(w, o) * ad[xb >> 5]), acc);
            mins += half(w, o + 2) * as[xb >> 5];
        }
        return VectorMath.sum(acc) + mins;
    }

    // Q5_0 (half d, u32 qh, 16 nibble bytes per 32; activations Q8_0): per block d·da·Σ (q − 16)·a
    static float dotQ5_0(MemorySegment w, long off, short[] aq, float[] ad, int ao, int n) {
        FloatVector acc = FloatVector.zero(F);
        for (int b = 0; b < n / 32; b++) {
            long o = off + 22L * b;
            int xb = ao + 32 * b;
            acc = toFloat(block45(w, o + 6, w.get(QuantKernels.LE_INT, o + 2), aq, xb, (short) 16)).fma(FloatVector.broadcast(F, half(w, o) * ad[xb >> 5]), acc);
        }
        return VectorMath.sum(acc);
    }

    // Q5_1 (half d, half m, u32 qh, 16 nibble bytes per 32; activations Q8_1): per block d·da·Σ q·a + m·s
    static float dotQ5_1(MemorySegment w, long off, short[] aq, float[] ad, float[] as, int ao, int n) {
        FloatVector acc = FloatVector.zero(F);
        float mins = 0;
        for (int b = 0; b < n / 32; b++) {
            long o = off + 24L * b;
            int xb = ao + 32 * b;
            acc = toFloat(block45(w, o + 8, w.get(QuantKernels.LE_INT, o + 4), aq, xb, (short) 0)).fma(FloatVector.broadcast(F, half(w, o) * ad[xb >> 5]), acc);
            mins += half(w, o + 2) * as[xb >> 5];
        }
        return VectorMath.sum(acc) + mins;
    }

    /** IQ4_NL / IQ4_XS's sixteen levels, the table a nibble selects from (one 128-bit byte shuffle). */
    private static final ByteVector IQ4_TABLE = ByteVector.fromArray(B, QuantKernels.IQ4_LEVELS, 0);

    // Σ level(q)·a over a 32-element IQ4 block (16 bytes at q: low nibbles are elements 0..15, high
    // 16..31) in 8 int lanes: each nibble picks its level from IQ4_TABLE (a byte shuffle), widened to
    // shorts; two products per short lane (|Σ| ≤ 2·127·127 = 32,258) before widening
    private static IntVector blockIq4(MemorySegment w, long q, short[] a, int x) {
        ByteVector v = ByteVector.fromMemorySegment(B, w, q, LE);
        ShortVector lo = (ShortVector) v.and((byte) 0x0F).selectFrom(IQ4_TABLE).convertShape(VectorOperators.B2S, S256, 0);
        ShortVector hi = (ShortVector) v.lanewise(VectorOperators.LSHR, 4).and((byte) 0x0F).selectFrom(IQ4_TABLE).convertShape(VectorOperators.B2S, S256, 0);
        return widen(lo.mul(aq(a, x)).add(hi.mul(aq(a, x + 16))));
    }

    // IQ4_NL (half d, 16 nibble bytes per 32; activations Q8_0): per block d·da·Σ level·a
    static float dotIq4Nl(MemorySegment w, long off, short[] aq, float[] ad, int ao, int n) {
        FloatVector acc = FloatVector.zero(F);
        for (int b = 0; b < n / 32; b++) {
            long o = off + 18L * b;
            int xb = ao + 32 * b;
            acc = toFloat(blockIq4(w, o + 2, aq, xb)).fma(FloatVector.broadcast(F, half(w, o) * ad[xb >> 5]), acc);
        }
        return VectorMath.sum(acc);
    }

    // IQ4_XS (half d, u16 scales_h, u8 scales_l[4], 8 blocks of 16 nibble bytes per 256; activations
    // Q8_K): per super-block d·da·Σ_ib (ls_ib − 32)·Σ level·a, the Σ_ib in int lanes
    static float dotIq4Xs(MemorySegment w, long off, short[] aq, float[] ad, int ao, int n) {
        FloatVector acc = FloatVector.zero(F);
        for (int b = 0; b < n / 256; b++) {
            long o = off + 136L * b;
            int xb = ao + 256 * b, sh = w.get(QuantKernels.LE_SHORT, o + 2) & 0xffff, sl = w.get(QuantKernels.LE_INT, o + 4);
            IntVector isum = IntVector.zero(I);
            for (int ib = 0; ib < 8; ib++) {
                int ls = ((sl >>> (4 * ib)) & 0xF) | (((sh >>> (2 * ib)) & 3) << 4);
                isum = isum.add(blockIq4(w, o + 8 + 16L * ib, aq, xb + 32 * ib).mul(ls - 32));
            }
            acc = toFloat(isum).fma(FloatVector.broadcast(F, half(w, o) * ad[xb >> 8]), acc);
        }
        return VectorMath.sum(acc);
    }

    /** Q4_0 with 256-bit vectors, for machines where {@link #L} &gt; 16 (a Q4_0 block has 16 quant bytes). */
    static float dotQ4_0_256(MemorySegment w, long off, short[] aq, float[] ad, int ao, int n) {
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
}
