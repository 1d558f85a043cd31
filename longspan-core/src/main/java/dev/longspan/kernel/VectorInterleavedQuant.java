package dev.longspan.kernel;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * Vector API bodies of {@link InterleavedQuant}: one group of G rows (G = int lanes), one row per
 * lane. Per quad (4·G weight bytes read as 2G shorts, see {@link InterleavedQuant}): the quants of
 * two pairs of columns taken apart by shifts and masks inside each short, each times the broadcast
 * pair of activation quants (an int broadcast viewed as shorts), products summed in short lanes
 * (Q8_0: two, |w·a| ≤ 128·127; Q4_K: sixteen nibble products, 16·15·128; Q5_K: eight, 8·31·127; Q6_K:
 * eight, 8·32·127), then each int lane's two halves added into that row's int sum ("widen" below).
 * Width-agnostic: the shape of
 * {@link VectorQuantKernels#SHAPE}.
 */
final class VectorInterleavedQuant {
    static final VectorSpecies<Short> S = VectorQuantKernels.S;
    static final VectorSpecies<Integer> SI = VectorQuantKernels.SI;
    static final VectorSpecies<Float> SF = VectorQuantKernels.SF;
    /** G bytes (at least 8: the narrowest byte species) whose first G lanes widen to the G int lanes. */
    static final VectorSpecies<Byte> SB4 = ByteVector.SPECIES_PREFERRED.withShape(VectorShape.forBitSize(Math.max(64, SI.vectorBitSize() / 4)));
    /** G shorts: the fp16 block scales of a group's rows. */
    static final VectorSpecies<Short> SH = ShortVector.SPECIES_PREFERRED.withShape(VectorShape.forBitSize(SI.vectorBitSize() / 2));
    /** Rows per group: int lanes. */
    static final int G = SI.length();
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private VectorInterleavedQuant() {}

    // The bodies call no helper of their own that takes or returns a vector: C2 inlines such a
    // helper only while the caller's inlining budget lasts, and a helper compiled on its own sees an
    // abstract vector type, so its Vector API calls fall back to Java code that boxes every vector
    // (measured: a decode step 5x slower until recompiled). The JDK's vector methods used here are
    // all force-inlined. Recurring pieces:
    //   quad:   2G shorts, each two quant bytes of one row (pairs u and u + 8 of a block or chunk)
    //   pair:   the activation pair (even column in the low half) broadcast to every int lane, as shorts
    //   widen:  each int lane's two short halves summed as signed shorts: hi by an arithmetic shift,
    //           lo by shifting up and back
    //   scales: G six-bit scales (bytes) widened to the G int lanes
    //   halves: G fp16 scales as floats: the magnitude's bits shifted into a float's place read as a
    //           float 2^-112 too small (exact, subnormals included), times 2^112, and the sign put back
    //           (Q8_0: sign-extended, shifted and the sign's copies masked off the exponent, as groupF16)

    // Every body works on two groups at once, at byte offsets o and o2 of w, their results in
    // out[0..G) and out[G..2G): the same operations per group as one group alone (a single group
    // passes o2 = o), the activations broadcast once for both, and two streams of weight bytes read
    // side by side. One core keeps more cache lines in flight from two distant places than from
    // one: a Java loop summing 512 MiB reads 35 GB/s as one stream and 43 GB/s as two on Zen 5, and
    // the 100M model's Q8_0 decode went from 250 to 317 tokens/s on one thread (docs/PERFORMANCE.md).

    // per block: Σ w·a over its 8 quads, each quad's 2G shorts holding two signed quants per short
    // (pairs u and u + 8), sign-extended in place; short lanes hold two products (|Σ| ≤ 2·128·127)
    static void groupQ8_0(MemorySegment w, long o, long o2, int blocks, int[] ap, int apo, float[] ad, int ado, float[] out) {
        FloatVector acc = FloatVector.zero(SF), acc2 = acc;
        long quad = 4L * G;
        IntVector isum = IntVector.zero(SI), isum2 = isum;
        long q = o + InterleavedQuant.Q8_Q * G, q2 = o2 + InterleavedQuant.Q8_Q * G;
        int a = apo;
        // one loop over all quads of the row groups, a block's sums scaled after its eighth quad (a
        // loop per block would pay C2's loop set-up every 8 quads)
        for (int u = 0, n = 8 * blocks; u < n; u++, q += quad, q2 += quad, a++) {
            ShortVector v = ShortVector.fromMemorySegment(S, w, q, LE), v2 = ShortVector.fromMemorySegment(S, w, q2, LE);
            ShortVector lo = IntVector.broadcast(SI, ap[a]).reinterpretAsShorts(), hi = IntVector.broadcast(SI, ap[a + 8]).reinterpretAsShorts();
            IntVector x = v.lanewise(VectorOperators.LSHL, 8).lanewise(VectorOperators.ASHR, 8).mul(lo).add(v.lanewise(VectorOperators.ASHR, 8).mul(hi)).reinterpretAsInts();
            IntVector x2 = v2.lanewise(VectorOperators.LSHL, 8).lanewise(VectorOperators.ASHR, 8).mul(lo).add(v2.lanewise(VectorOperators.ASHR, 8).mul(hi)).reinterpretAsInts();
            isum = isum.add(x.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16)).add(x.lanewise(VectorOperators.ASHR, 16));
            isum2 = isum2.add(x2.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16)).add(x2.lanewise(VectorOperators.ASHR, 16));
            if ((u & 7) == 7) {
                float da = ad[ado + (u >> 3)];
                IntVector h = (IntVector) ShortVector.fromMemorySegment(SH, w, o + InterleavedQuant.Q8_D * G, LE).convertShape(VectorOperators.S2I, SI, 0);
                IntVector h2 = (IntVector) ShortVector.fromMemorySegment(SH, w, o2 + InterleavedQuant.Q8_D * G, LE).convertShape(VectorOperators.S2I, SI, 0);
                FloatVector d = h.lanewise(VectorOperators.LSHL, 13).and(0x8FFFE000).reinterpretAsFloats().mul(0x1p112f).mul(da);
                FloatVector d2 = h2.lanewise(VectorOperators.LSHL, 13).and(0x8FFFE000).reinterpretAsFloats().mul(0x1p112f).mul(da);
                acc = ((FloatVector) isum.convertShape(VectorOperators.I2F, SF, 0)).fma(d, acc);
                acc2 = ((FloatVector) isum2.convertShape(VectorOperators.I2F, SF, 0)).fma(d2, acc2);
                isum = IntVector.zero(SI);
                isum2 = IntVector.zero(SI);
                o = q + quad;                                // the next blocks
                o2 = q2 + quad;
                q = o + InterleavedQuant.Q8_Q * G - quad;
                q2 = o2 + InterleavedQuant.Q8_Q * G - quad;
                a += 8;                                      // their 16 activation pairs
            }
        }
        acc.intoArray(out, 0);
        acc2.intoArray(out, G);
    }

    // Q8_0 groups [g0, g0 + ng) (the first at byte o, groupBytes apart) as floats in the GEMM's
    // packed-B layout (VectorMatmul.packedIndex: k blocks of kcMax columns, panels of nr columns,
    // k-major): a group's G rows are G adjacent lanes of every column, so each quad's G ints (four
    // quant bytes of every row) give four whole vectors, each byte shifted to the top and back
    // (sign-extended), widened and times the rows' d: (float) q · d, the scalar row()'s product
    static void panelQ8_0(MemorySegment w, long o, long groupBytes, int ng, int blocks, int nr, int kcMax, int columns, float[] bp) {
        int cols = 32 * blocks;
        for (int g = 0; g < ng; g++) {
            long go = o + g * groupBytes;
            int lane0 = g * G % nr, panel0 = g * G - lane0;
            for (int b = 0; b < blocks; b++) {
                long ob = go + b * 34L * G, q = ob + InterleavedQuant.Q8_Q * G;
                IntVector h = (IntVector) ShortVector.fromMemorySegment(SH, w, ob + InterleavedQuant.Q8_D * G, LE).convertShape(VectorOperators.S2I, SI, 0);
                FloatVector d = h.lanewise(VectorOperators.LSHL, 13).and(0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
                int c0 = 32 * b, pc = c0 / kcMax * kcMax, kc = Math.min(kcMax, cols - pc);
                int base = pc * columns + panel0 * kc + (c0 - pc) * nr + lane0;
                for (int u = 0; u < 8; u++, q += 4L * G) {
                    IntVector v = IntVector.fromMemorySegment(SI, w, q, LE);
                    FloatVector e0 = (FloatVector) v.lanewise(VectorOperators.LSHL, 24).lanewise(VectorOperators.ASHR, 24).convertShape(VectorOperators.I2F, SF, 0);
                    FloatVector e1 = (FloatVector) v.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 24).convertShape(VectorOperators.I2F, SF, 0);
                    FloatVector e2 = (FloatVector) v.lanewise(VectorOperators.LSHL, 8).lanewise(VectorOperators.ASHR, 24).convertShape(VectorOperators.I2F, SF, 0);
                    FloatVector e3 = (FloatVector) v.lanewise(VectorOperators.ASHR, 24).convertShape(VectorOperators.I2F, SF, 0);
                    e0.mul(d).intoArray(bp, base + (2 * u) * nr);          // byte 0: column 2u
                    e1.mul(d).intoArray(bp, base + (2 * u + 16) * nr);     // byte 1: column 2u + 16
                    e2.mul(d).intoArray(bp, base + (2 * u + 1) * nr);      // byte 2: column 2u + 1
                    e3.mul(d).intoArray(bp, base + (2 * u + 17) * nr);     // byte 3: column 2u + 17
                }
            }
        }
    }

    // F16 groups [g0, g0 + ng) into the packed-B layout, as panelQ8_0: column c of a group is its G
    // rows' halves side by side, one vector of the panel (widened as groupF16 does: exact for the
    // finite values a repacked F16 matrix holds)
    static void panelF16(MemorySegment w, long o, long groupBytes, int ng, int cols, int nr, int kcMax, int columns, float[] bp) {
        for (int g = 0; g < ng; g++) {
            long go = o + g * groupBytes;
            int lane0 = g * G % nr, panel0 = g * G - lane0;
            for (int pc = 0; pc < cols; pc += kcMax) {
                int kc = Math.min(kcMax, cols - pc), base = pc * columns + panel0 * kc + lane0;
                for (int c = pc; c < pc + kc; c++) {
                    IntVector h = (IntVector) ShortVector.fromMemorySegment(SH, w, go + 2L * G * c, LE).convertShape(VectorOperators.S2I, SI, 0);
                    h.lanewise(VectorOperators.LSHL, 13).and(0x8FFFE000).reinterpretAsFloats().mul(0x1p112f).intoArray(bp, base + (c - pc) * nr);
                }
            }
        }
    }

    // Q4_K groups [g0, g0 + ng) into the packed-B layout, as panelQ8_0: per super-block (256 columns,
    // one k block of KC = 256) and chunk c, the rows' sub-block scales d·sc and mins dmin·m of
    // sub-blocks 2c (low nibbles) and 2c + 1 (high), then each quad's four bytes of every row give
    // eight vectors: d1·q − m1 as the scalar row() computes it (a product then a difference, not fused)
    static void panelQ4_K(MemorySegment w, long o, long groupBytes, int ng, int blocks, int nr, int kcMax, int columns, float[] bp) {
        int cols = 256 * blocks;
        for (int g = 0; g < ng; g++) {
            long go = o + g * groupBytes;
            int lane0 = g * G % nr, panel0 = g * G - lane0;
            for (int b = 0; b < blocks; b++) {
                long ob = go + b * 148L * G;
                IntVector h = (IntVector) ShortVector.fromMemorySegment(SH, w, ob + InterleavedQuant.K4_D * G, LE).convertShape(VectorOperators.S2I, SI, 0);
                IntVector hm = (IntVector) ShortVector.fromMemorySegment(SH, w, ob + InterleavedQuant.K4_DMIN * G, LE).convertShape(VectorOperators.S2I, SI, 0);
                FloatVector d = h.lanewise(VectorOperators.LSHL, 13).and(0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
                FloatVector dmin = hm.lanewise(VectorOperators.LSHL, 13).and(0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
                int c0 = 256 * b, pc = c0 / kcMax * kcMax, kc = Math.min(kcMax, cols - pc);
                for (int c = 0; c < 4; c++) {
                    long sc = ob + InterleavedQuant.K4_SC * G + 2L * G * c, mn = ob + InterleavedQuant.K4_M * G + 2L * G * c;
                    FloatVector d1 = d.mul((FloatVector) ByteVector.fromMemorySegment(SB4, w, sc, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, SI, 0).convertShape(VectorOperators.I2F, SF, 0));
                    FloatVector d2 = d.mul((FloatVector) ByteVector.fromMemorySegment(SB4, w, sc + G, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, SI, 0).convertShape(VectorOperators.I2F, SF, 0));
                    FloatVector m1 = dmin.mul((FloatVector) ByteVector.fromMemorySegment(SB4, w, mn, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, SI, 0).convertShape(VectorOperators.I2F, SF, 0));
                    FloatVector m2 = dmin.mul((FloatVector) ByteVector.fromMemorySegment(SB4, w, mn + G, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, SI, 0).convertShape(VectorOperators.I2F, SF, 0));
                    long q = ob + InterleavedQuant.K4_Q * G + 32L * G * c;
                    int base = pc * columns + panel0 * kc + (c0 + 64 * c - pc) * nr + lane0;
                    for (int u = 0; u < 8; u++, q += 4L * G) {
                        IntVector v = IntVector.fromMemorySegment(SI, w, q, LE);
                        for (int e = 0; e < 4; e++) {
                            // byte e of each row's four: column 2u, 2u + 16, 2u + 1, 2u + 17 of the chunk
                            int k = 2 * u + (e >> 1) + 16 * (e & 1);
                            IntVector x = v.lanewise(VectorOperators.LSHR, 8 * e);
                            FloatVector lo = (FloatVector) x.and(0xF).convertShape(VectorOperators.I2F, SF, 0);
                            FloatVector hi = (FloatVector) x.lanewise(VectorOperators.LSHR, 4).and(0xF).convertShape(VectorOperators.I2F, SF, 0);
                            lo.mul(d1).sub(m1).intoArray(bp, base + k * nr);
                            hi.mul(d2).sub(m2).intoArray(bp, base + (32 + k) * nr);
                        }
                    }
                }
            }
        }
    }

    // per super-block: Σ_j sc_j·Σ q·a over the eight 32-element sub-blocks (chunk c's low nibbles are
    // sub-block 2c, its high nibbles 2c+1). A quad's 2G shorts (see InterleavedQuant's layout) give,
    // by shifts and masks within each short, the nibbles of pairs u and u + 8 of both sub-blocks;
    // short lanes sum all 16 pairs of a sub-block (|Σ| ≤ 16·15·128 = 30720) before one widening
    static void groupQ4_K(MemorySegment w, long o, long o2, int blocks, int[] ap, int apo, float[] ad, int ado, int[] bsums32, int bso, float[] out) {
        FloatVector acc = FloatVector.zero(SF), acc2 = acc;
        long quad = 4L * G;
        for (int b = 0; b < blocks; b++) {
            IntVector isum = IntVector.zero(SI), isum2 = isum;
            long q = o + InterleavedQuant.K4_Q * G, q2 = o2 + InterleavedQuant.K4_Q * G;
            int a = apo + 128 * b;
            ShortVector sl = ShortVector.zero(S), sh = sl, sl2 = sl, sh2 = sl;
            // one loop over the super-block's 32 quads, a chunk's sums widened and scaled after its
            // eighth: a loop per chunk (8 trips) paid C2's range-check set-up every 8 quads (~14 %)
            for (int u = 0; u < 32; u++, q += quad, q2 += quad, a++) {
                ShortVector v = ShortVector.fromMemorySegment(S, w, q, LE), v2 = ShortVector.fromMemorySegment(S, w, q2, LE);
                ShortVector p0 = IntVector.broadcast(SI, ap[a]).reinterpretAsShorts(), p1 = IntVector.broadcast(SI, ap[a + 8]).reinterpretAsShorts();
                ShortVector p2 = IntVector.broadcast(SI, ap[a + 16]).reinterpretAsShorts(), p3 = IntVector.broadcast(SI, ap[a + 24]).reinterpretAsShorts();
                sl = sl.add(v.and((short) 0x0F).mul(p0)).add(v.lanewise(VectorOperators.LSHR, 8).and((short) 0x0F).mul(p1));
                sh = sh.add(v.lanewise(VectorOperators.LSHR, 4).and((short) 0x0F).mul(p2)).add(v.lanewise(VectorOperators.LSHR, 12).mul(p3));
                sl2 = sl2.add(v2.and((short) 0x0F).mul(p0)).add(v2.lanewise(VectorOperators.LSHR, 8).and((short) 0x0F).mul(p1));
                sh2 = sh2.add(v2.lanewise(VectorOperators.LSHR, 4).and((short) 0x0F).mul(p2)).add(v2.lanewise(VectorOperators.LSHR, 12).mul(p3));
                if ((u & 7) == 7) {
                    long sc = InterleavedQuant.K4_SC * G + 2L * G * (u >> 3);
                    IntVector vl = sl.reinterpretAsInts(), vh = sh.reinterpretAsInts(), vl2 = sl2.reinterpretAsInts(), vh2 = sh2.reinterpretAsInts();
                    IntVector lo = vl.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(vl.lanewise(VectorOperators.ASHR, 16));
                    IntVector hi = vh.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(vh.lanewise(VectorOperators.ASHR, 16));
                    IntVector lo2 = vl2.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(vl2.lanewise(VectorOperators.ASHR, 16));
                    IntVector hi2 = vh2.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(vh2.lanewise(VectorOperators.ASHR, 16));
                    IntVector scLo = (IntVector) ByteVector.fromMemorySegment(SB4, w, o + sc, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, SI, 0);
                    IntVector scHi = (IntVector) ByteVector.fromMemorySegment(SB4, w, o + sc + G, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, SI, 0);
                    IntVector scLo2 = (IntVector) ByteVector.fromMemorySegment(SB4, w, o2 + sc, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, SI, 0);
                    IntVector scHi2 = (IntVector) ByteVector.fromMemorySegment(SB4, w, o2 + sc + G, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, SI, 0);
                    isum = isum.add(lo.mul(scLo)).add(hi.mul(scHi));
                    isum2 = isum2.add(lo2.mul(scLo2)).add(hi2.mul(scHi2));
                    sl = ShortVector.zero(S);
                    sh = sl;
                    sl2 = sl;
                    sh2 = sl;
                    a += 24;   // the next chunk's 32 activation pairs
                }
            }
            IntVector msum = IntVector.zero(SI), msum2 = msum;
            for (int j = 0; j < 8; j++) {
                long mo = InterleavedQuant.K4_M * G + (long) G * j;
                int bs = bsums32[bso + 8 * b + j];
                msum = msum.add(((IntVector) ByteVector.fromMemorySegment(SB4, w, o + mo, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, SI, 0)).mul(bs));
                msum2 = msum2.add(((IntVector) ByteVector.fromMemorySegment(SB4, w, o2 + mo, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, SI, 0)).mul(bs));
            }
            float da = ad[ado + b];
            IntVector h = (IntVector) ShortVector.fromMemorySegment(SH, w, o + InterleavedQuant.K4_D * G, LE).convertShape(VectorOperators.ZERO_EXTEND_S2I, SI, 0);
            IntVector hm = (IntVector) ShortVector.fromMemorySegment(SH, w, o + InterleavedQuant.K4_DMIN * G, LE).convertShape(VectorOperators.ZERO_EXTEND_S2I, SI, 0);
            IntVector h2 = (IntVector) ShortVector.fromMemorySegment(SH, w, o2 + InterleavedQuant.K4_D * G, LE).convertShape(VectorOperators.ZERO_EXTEND_S2I, SI, 0);
            IntVector hm2 = (IntVector) ShortVector.fromMemorySegment(SH, w, o2 + InterleavedQuant.K4_DMIN * G, LE).convertShape(VectorOperators.ZERO_EXTEND_S2I, SI, 0);
            FloatVector d = h.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                    .reinterpretAsInts().or(h.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats().mul(da);
            FloatVector dmin = hm.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                    .reinterpretAsInts().or(hm.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats().mul(-da);
            FloatVector d2 = h2.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                    .reinterpretAsInts().or(h2.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats().mul(da);
            FloatVector dmin2 = hm2.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                    .reinterpretAsInts().or(hm2.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats().mul(-da);
            acc = ((FloatVector) isum.convertShape(VectorOperators.I2F, SF, 0)).fma(d, acc);
            acc = ((FloatVector) msum.convertShape(VectorOperators.I2F, SF, 0)).fma(dmin, acc);
            acc2 = ((FloatVector) isum2.convertShape(VectorOperators.I2F, SF, 0)).fma(d2, acc2);
            acc2 = ((FloatVector) msum2.convertShape(VectorOperators.I2F, SF, 0)).fma(dmin2, acc2);
            o = q;
            o2 = q2;
        }
        acc.intoArray(out, 0);
        acc2.intoArray(out, G);
    }

    // per super-block: Σ_g sc_g·Σ q·a over the sixteen 16-element groups, q = two bits of qs + 4·hmask bit − 4.
    // Runs r = 0..7 of 32 elements (half n = r / 4, shift 2·(r % 4), hmask bit r) each read the half's eight
    // qs quads and the eight hmask quads (short lane 2i + h: bytes 2u + h and 2u + 16 + h of row i); the low
    // bytes give group 2r's quants, the high bytes group 2r + 1's, summed in short lanes (8·4·127) and widened
    // after the eighth quad. One loop of 64 quad steps per super-block, the pointers stepped back after a run.
    static void groupQ3_K(MemorySegment w, long o, long o2, int blocks, int[] ap, int apo, float[] ad, int ado, float[] out) {
        FloatVector acc = FloatVector.zero(SF), acc2 = acc;
        long quad = 4L * G;
        for (int b = 0; b < blocks; b++) {
            IntVector isum = IntVector.zero(SI), isum2 = isum;
            long q = o + InterleavedQuant.K3_Q * G, q2 = o2 + InterleavedQuant.K3_Q * G;
            long hq = o + InterleavedQuant.K3_HM * G, hq2 = o2 + InterleavedQuant.K3_HM * G;
            int a = apo + 128 * b, hs = 0, hb = 0;
            ShortVector s0 = ShortVector.zero(S), s1 = s0, t0 = s0, t1 = s0;
            for (int u = 0; u < 64; u++, q += quad, q2 += quad, hq += quad, hq2 += quad, a++) {
                ShortVector v = ShortVector.fromMemorySegment(S, w, q, LE), v2 = ShortVector.fromMemorySegment(S, w, q2, LE);
                ShortVector m = ShortVector.fromMemorySegment(S, w, hq, LE), m2 = ShortVector.fromMemorySegment(S, w, hq2, LE);
                ShortVector p0 = IntVector.broadcast(SI, ap[a]).reinterpretAsShorts(), p1 = IntVector.broadcast(SI, ap[a + 8]).reinterpretAsShorts();
                // both bytes at once: two bits of qs and the hmask bit above them, 0..7 per byte
                ShortVector c = v.lanewise(VectorOperators.LSHR, hs).and((short) 0x0303).or(m.lanewise(VectorOperators.LSHR, hb).and((short) 0x0101).lanewise(VectorOperators.LSHL, 2));
                ShortVector c2 = v2.lanewise(VectorOperators.LSHR, hs).and((short) 0x0303).or(m2.lanewise(VectorOperators.LSHR, hb).and((short) 0x0101).lanewise(VectorOperators.LSHL, 2));
                s0 = s0.add(c.and((short) 0xFF).sub((short) 4).mul(p0));
                s1 = s1.add(c.lanewise(VectorOperators.LSHR, 8).sub((short) 4).mul(p1));
                t0 = t0.add(c2.and((short) 0xFF).sub((short) 4).mul(p0));
                t1 = t1.add(c2.lanewise(VectorOperators.LSHR, 8).sub((short) 4).mul(p1));
                if ((u & 7) == 7) {
                    int r = u >> 3;
                    long sc = InterleavedQuant.K3_SC * G + 2L * G * r;
                    IntVector x0 = s0.reinterpretAsInts(), x1 = s1.reinterpretAsInts(), y0 = t0.reinterpretAsInts(), y1 = t1.reinterpretAsInts();
                    isum = isum.add(x0.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(x0.lanewise(VectorOperators.ASHR, 16))
                                    .mul((IntVector) ByteVector.fromMemorySegment(SB4, w, o + sc, LE).convertShape(VectorOperators.B2I, SI, 0)))
                            .add(x1.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(x1.lanewise(VectorOperators.ASHR, 16))
                                    .mul((IntVector) ByteVector.fromMemorySegment(SB4, w, o + sc + G, LE).convertShape(VectorOperators.B2I, SI, 0)));
                    isum2 = isum2.add(y0.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(y0.lanewise(VectorOperators.ASHR, 16))
                                    .mul((IntVector) ByteVector.fromMemorySegment(SB4, w, o2 + sc, LE).convertShape(VectorOperators.B2I, SI, 0)))
                            .add(y1.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(y1.lanewise(VectorOperators.ASHR, 16))
                                    .mul((IntVector) ByteVector.fromMemorySegment(SB4, w, o2 + sc + G, LE).convertShape(VectorOperators.B2I, SI, 0)));
                    s0 = ShortVector.zero(S);
                    s1 = s0;
                    t0 = s0;
                    t1 = s0;
                    hq -= 32L * G;             // the hmask quads again for the next run
                    hq2 -= 32L * G;
                    if ((r & 3) != 3) {        // the same half's qs quads again, two bits higher
                        q -= 32L * G;
                        q2 -= 32L * G;
                        hs += 2;
                    } else {
                        hs = 0;
                    }
                    hb++;
                    a += 8;                    // the next run's 16 activation pairs
                }
            }
            float da = ad[ado + b];
            IntVector h = (IntVector) ShortVector.fromMemorySegment(SH, w, o + InterleavedQuant.K3_D * G, LE).convertShape(VectorOperators.ZERO_EXTEND_S2I, SI, 0);
            IntVector h2 = (IntVector) ShortVector.fromMemorySegment(SH, w, o2 + InterleavedQuant.K3_D * G, LE).convertShape(VectorOperators.ZERO_EXTEND_S2I, SI, 0);
            FloatVector d = h.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                    .reinterpretAsInts().or(h.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats().mul(da);
            FloatVector d2 = h2.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                    .reinterpretAsInts().or(h2.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats().mul(da);
            acc = ((FloatVector) isum.convertShape(VectorOperators.I2F, SF, 0)).fma(d, acc);
            acc2 = ((FloatVector) isum2.convertShape(VectorOperators.I2F, SF, 0)).fma(d2, acc2);
            o += 114L * G;
            o2 += 114L * G;
        }
        acc.intoArray(out, 0);
        acc2.intoArray(out, G);
    }

    // per super-block: groupQ4_K's sums with five-bit quants. Each nibble quad has a quad of the
    // super-block's 32 qh bytes beside it (InterleavedQuant's layout: short lane 2i + h holds qh bytes
    // 2u + h and 2u + 16 + h of row i, the high bits of the nibble bytes 2u + h and 2u + 16 + h of
    // every chunk): chunk c's low nibbles take bit 2c, its high nibbles bit 2c + 1, moved to bit 4 and
    // or-ed in. Quants up to 31 allow eight products per short lane (8·31·127 = 31,496), so a chunk's
    // sums are widened and scaled after every fourth quad.
    static void groupQ5_K(MemorySegment w, long o, long o2, int blocks, int[] ap, int apo, float[] ad, int ado, int[] bsums32, int bso, float[] out) {
        FloatVector acc = FloatVector.zero(SF), acc2 = acc;
        long quad = 4L * G;
        for (int b = 0; b < blocks; b++) {
            IntVector isum = IntVector.zero(SI), isum2 = isum;
            long q = o + InterleavedQuant.K5_Q * G, q2 = o2 + InterleavedQuant.K5_Q * G;
            long hq = o + InterleavedQuant.K5_QH * G, hq2 = o2 + InterleavedQuant.K5_QH * G;
            int a = apo + 128 * b, hs = 0;
            ShortVector sl = ShortVector.zero(S), sh = sl, sl2 = sl, sh2 = sl;
            for (int u = 0; u < 32; u++, q += quad, q2 += quad, hq += quad, hq2 += quad, a++) {
                ShortVector v = ShortVector.fromMemorySegment(S, w, q, LE), v2 = ShortVector.fromMemorySegment(S, w, q2, LE);
                ShortVector h = ShortVector.fromMemorySegment(S, w, hq, LE).lanewise(VectorOperators.LSHR, hs);
                ShortVector h2 = ShortVector.fromMemorySegment(S, w, hq2, LE).lanewise(VectorOperators.LSHR, hs);
                ShortVector p0 = IntVector.broadcast(SI, ap[a]).reinterpretAsShorts(), p1 = IntVector.broadcast(SI, ap[a + 8]).reinterpretAsShorts();
                ShortVector p2 = IntVector.broadcast(SI, ap[a + 16]).reinterpretAsShorts(), p3 = IntVector.broadcast(SI, ap[a + 24]).reinterpretAsShorts();
                // low nibbles: bits 0 and 8 of h above them; high nibbles: bits 1 and 9
                sl = sl.add(v.and((short) 0x0F).or(h.lanewise(VectorOperators.LSHL, 4).and((short) 0x10)).mul(p0))
                        .add(v.lanewise(VectorOperators.LSHR, 8).and((short) 0x0F).or(h.lanewise(VectorOperators.LSHR, 4).and((short) 0x10)).mul(p1));
                sh = sh.add(v.lanewise(VectorOperators.LSHR, 4).and((short) 0x0F).or(h.lanewise(VectorOperators.LSHL, 3).and((short) 0x10)).mul(p2))
                        .add(v.lanewise(VectorOperators.LSHR, 12).or(h.lanewise(VectorOperators.LSHR, 5).and((short) 0x10)).mul(p3));
                sl2 = sl2.add(v2.and((short) 0x0F).or(h2.lanewise(VectorOperators.LSHL, 4).and((short) 0x10)).mul(p0))
                        .add(v2.lanewise(VectorOperators.LSHR, 8).and((short) 0x0F).or(h2.lanewise(VectorOperators.LSHR, 4).and((short) 0x10)).mul(p1));
                sh2 = sh2.add(v2.lanewise(VectorOperators.LSHR, 4).and((short) 0x0F).or(h2.lanewise(VectorOperators.LSHL, 3).and((short) 0x10)).mul(p2))
                        .add(v2.lanewise(VectorOperators.LSHR, 12).or(h2.lanewise(VectorOperators.LSHR, 5).and((short) 0x10)).mul(p3));
                if ((u & 3) == 3) {
                    long sc = InterleavedQuant.K5_SC * G + 2L * G * (u >> 3);
                    IntVector vl = sl.reinterpretAsInts(), vh = sh.reinterpretAsInts(), vl2 = sl2.reinterpretAsInts(), vh2 = sh2.reinterpretAsInts();
                    IntVector lo = vl.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(vl.lanewise(VectorOperators.ASHR, 16));
                    IntVector hi = vh.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(vh.lanewise(VectorOperators.ASHR, 16));
                    IntVector lo2 = vl2.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(vl2.lanewise(VectorOperators.ASHR, 16));
                    IntVector hi2 = vh2.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(vh2.lanewise(VectorOperators.ASHR, 16));
                    IntVector scLo = (IntVector) ByteVector.fromMemorySegment(SB4, w, o + sc, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, SI, 0);
                    IntVector scHi = (IntVector) ByteVector.fromMemorySegment(SB4, w, o + sc + G, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, SI, 0);
                    IntVector scLo2 = (IntVector) ByteVector.fromMemorySegment(SB4, w, o2 + sc, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, SI, 0);
                    IntVector scHi2 = (IntVector) ByteVector.fromMemorySegment(SB4, w, o2 + sc + G, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, SI, 0);
                    isum = isum.add(lo.mul(scLo)).add(hi.mul(scHi));
                    isum2 = isum2.add(lo2.mul(scLo2)).add(hi2.mul(scHi2));
                    sl = ShortVector.zero(S);
                    sh = sl;
                    sl2 = sl;
                    sh2 = sl;
                    if ((u & 7) == 7) {        // the next chunk: its 32 activation pairs, qh bits 2c + 2, 2c + 3, qh from its start
                        a += 24;
                        hs += 2;
                        hq -= 32L * G;
                        hq2 -= 32L * G;
                    }
                }
            }
            IntVector msum = IntVector.zero(SI), msum2 = msum;
            for (int j = 0; j < 8; j++) {
                long mo = InterleavedQuant.K5_M * G + (long) G * j;
                int bs = bsums32[bso + 8 * b + j];
                msum = msum.add(((IntVector) ByteVector.fromMemorySegment(SB4, w, o + mo, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, SI, 0)).mul(bs));
                msum2 = msum2.add(((IntVector) ByteVector.fromMemorySegment(SB4, w, o2 + mo, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, SI, 0)).mul(bs));
            }
            float da = ad[ado + b];
            IntVector h = (IntVector) ShortVector.fromMemorySegment(SH, w, o + InterleavedQuant.K5_D * G, LE).convertShape(VectorOperators.ZERO_EXTEND_S2I, SI, 0);
            IntVector hm = (IntVector) ShortVector.fromMemorySegment(SH, w, o + InterleavedQuant.K5_DMIN * G, LE).convertShape(VectorOperators.ZERO_EXTEND_S2I, SI, 0);
            IntVector h2 = (IntVector) ShortVector.fromMemorySegment(SH, w, o2 + InterleavedQuant.K5_D * G, LE).convertShape(VectorOperators.ZERO_EXTEND_S2I, SI, 0);
            IntVector hm2 = (IntVector) ShortVector.fromMemorySegment(SH, w, o2 + InterleavedQuant.K5_DMIN * G, LE).convertShape(VectorOperators.ZERO_EXTEND_S2I, SI, 0);
            FloatVector d = h.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                    .reinterpretAsInts().or(h.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats().mul(da);
            FloatVector dmin = hm.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                    .reinterpretAsInts().or(hm.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats().mul(-da);
            FloatVector d2 = h2.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                    .reinterpretAsInts().or(h2.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats().mul(da);
            FloatVector dmin2 = hm2.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                    .reinterpretAsInts().or(hm2.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats().mul(-da);
            acc = ((FloatVector) isum.convertShape(VectorOperators.I2F, SF, 0)).fma(d, acc);
            acc = ((FloatVector) msum.convertShape(VectorOperators.I2F, SF, 0)).fma(dmin, acc);
            acc2 = ((FloatVector) isum2.convertShape(VectorOperators.I2F, SF, 0)).fma(d2, acc2);
            acc2 = ((FloatVector) msum2.convertShape(VectorOperators.I2F, SF, 0)).fma(dmin2, acc2);
            o += 180L * G;
            o2 += 180L * G;
        }
        acc.intoArray(out, 0);
        acc2.intoArray(out, G);
    }

    // per super-block: Σ_g sc_g·Σ (q − 32)·a over the sixteen 16-element groups g (eight per half of
    // 128). A half's quads come in three runs of eight (InterleavedQuant's layout): A (ql bytes 0..31
    // of the half), B (ql 32..63) and H (qh 0..31), each quad's short lane 2i + h holding bytes 2u + h
    // and 2u + 16 + h of row i. A's four nibbles with H's bit pairs 0, 2, 4, 6 (of the low and high
    // byte) are the quants of scale groups 0, 1, 4, 5; B's with H's pairs 1, 3, 5, 7 those of groups
    // 2, 3, 6, 7. Two passes over the eight quads of a half (A then B, H read again from L1) keep four
    // short sums per group of rows (eight products of |q − 32|·|a| ≤ 32·127 each: at most 32,512)
    // before they are widened and times the rows' int8 scales.
    static void groupQ6_K(MemorySegment w, long o, long o2, int blocks, int[] ap, int apo, float[] ad, int ado, float[] out) {
        FloatVector acc = FloatVector.zero(SF), acc2 = acc;
        long quad = 4L * G;
        for (int b = 0; b < blocks; b++) {
            IntVector isum = IntVector.zero(SI), isum2 = isum;
            // one loop over the super-block's 32 quad steps (half 0 pass 0, pass 1, half 1 pass 0, pass 1),
            // a pass's sums widened and scaled after its eighth quad: an 8-trip loop per pass paid C2's loop
            // set-up every 8 quads (as groupQ4_K)
            long q = o + InterleavedQuant.K6_Q * G, q2 = o2 + InterleavedQuant.K6_Q * G, hq = q + 64L * G, hq2 = q2 + 64L * G;
            int a = apo + 128 * b, hs = 0;
            ShortVector s0 = ShortVector.zero(S), s1 = s0, s4 = s0, s5 = s0, t0 = s0, t1 = s0, t4 = s0, t5 = s0;
            for (int u = 0; u < 32; u++, q += quad, q2 += quad, hq += quad, hq2 += quad, a++) {
                // pass 0: A with H's pairs at bits 0, 8 (groups 0, 1) and 4, 12 (groups 4, 5);
                // pass 1: B with H's pairs at bits 2, 10 (groups 2, 3) and 6, 14 (groups 6, 7)
                ShortVector v = ShortVector.fromMemorySegment(S, w, q, LE), v2 = ShortVector.fromMemorySegment(S, w, q2, LE);
                ShortVector h = ShortVector.fromMemorySegment(S, w, hq, LE).lanewise(VectorOperators.LSHR, hs);
                ShortVector h2 = ShortVector.fromMemorySegment(S, w, hq2, LE).lanewise(VectorOperators.LSHR, hs);
                ShortVector p0 = IntVector.broadcast(SI, ap[a]).reinterpretAsShorts(), p1 = IntVector.broadcast(SI, ap[a + 8]).reinterpretAsShorts();
                ShortVector p4 = IntVector.broadcast(SI, ap[a + 32]).reinterpretAsShorts(), p5 = IntVector.broadcast(SI, ap[a + 40]).reinterpretAsShorts();
                s0 = s0.add(v.and((short) 0x0F).or(h.lanewise(VectorOperators.LSHL, 4).and((short) 0x30)).sub((short) 32).mul(p0));
                s1 = s1.add(v.lanewise(VectorOperators.LSHR, 8).and((short) 0x0F).or(h.lanewise(VectorOperators.LSHR, 4).and((short) 0x30)).sub((short) 32).mul(p1));
                s4 = s4.add(v.lanewise(VectorOperators.LSHR, 4).and((short) 0x0F).or(h.and((short) 0x30)).sub((short) 32).mul(p4));
                s5 = s5.add(v.lanewise(VectorOperators.LSHR, 12).or(h.lanewise(VectorOperators.LSHR, 8).and((short) 0x30)).sub((short) 32).mul(p5));
                t0 = t0.add(v2.and((short) 0x0F).or(h2.lanewise(VectorOperators.LSHL, 4).and((short) 0x30)).sub((short) 32).mul(p0));
                t1 = t1.add(v2.lanewise(VectorOperators.LSHR, 8).and((short) 0x0F).or(h2.lanewise(VectorOperators.LSHR, 4).and((short) 0x30)).sub((short) 32).mul(p1));
                t4 = t4.add(v2.lanewise(VectorOperators.LSHR, 4).and((short) 0x0F).or(h2.and((short) 0x30)).sub((short) 32).mul(p4));
                t5 = t5.add(v2.lanewise(VectorOperators.LSHR, 12).or(h2.lanewise(VectorOperators.LSHR, 8).and((short) 0x30)).sub((short) 32).mul(p5));
                if ((u & 7) == 7) {
                    int half = u >> 4, pass = (u >> 3) & 1;
                    // scale groups 8·half + 2·pass + {0, 1, 4, 5}: G int8 scales each, sign-extended
                    long sc = InterleavedQuant.K6_SC * G + (long) G * (8 * half + 2 * pass);
                    IntVector x0 = s0.reinterpretAsInts(), x1 = s1.reinterpretAsInts(), x4 = s4.reinterpretAsInts(), x5 = s5.reinterpretAsInts();
                    IntVector y0 = t0.reinterpretAsInts(), y1 = t1.reinterpretAsInts(), y4 = t4.reinterpretAsInts(), y5 = t5.reinterpretAsInts();
                    isum = isum.add(x0.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(x0.lanewise(VectorOperators.ASHR, 16))
                                    .mul((IntVector) ByteVector.fromMemorySegment(SB4, w, o + sc, LE).convertShape(VectorOperators.B2I, SI, 0)))
                            .add(x1.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(x1.lanewise(VectorOperators.ASHR, 16))
                                    .mul((IntVector) ByteVector.fromMemorySegment(SB4, w, o + sc + G, LE).convertShape(VectorOperators.B2I, SI, 0)))
                            .add(x4.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(x4.lanewise(VectorOperators.ASHR, 16))
                                    .mul((IntVector) ByteVector.fromMemorySegment(SB4, w, o + sc + 4L * G, LE).convertShape(VectorOperators.B2I, SI, 0)))
                            .add(x5.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(x5.lanewise(VectorOperators.ASHR, 16))
                                    .mul((IntVector) ByteVector.fromMemorySegment(SB4, w, o + sc + 5L * G, LE).convertShape(VectorOperators.B2I, SI, 0)));
                    isum2 = isum2.add(y0.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(y0.lanewise(VectorOperators.ASHR, 16))
                                    .mul((IntVector) ByteVector.fromMemorySegment(SB4, w, o2 + sc, LE).convertShape(VectorOperators.B2I, SI, 0)))
                            .add(y1.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(y1.lanewise(VectorOperators.ASHR, 16))
                                    .mul((IntVector) ByteVector.fromMemorySegment(SB4, w, o2 + sc + G, LE).convertShape(VectorOperators.B2I, SI, 0)))
                            .add(y4.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(y4.lanewise(VectorOperators.ASHR, 16))
                                    .mul((IntVector) ByteVector.fromMemorySegment(SB4, w, o2 + sc + 4L * G, LE).convertShape(VectorOperators.B2I, SI, 0)))
                            .add(y5.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(y5.lanewise(VectorOperators.ASHR, 16))
                                    .mul((IntVector) ByteVector.fromMemorySegment(SB4, w, o2 + sc + 5L * G, LE).convertShape(VectorOperators.B2I, SI, 0)));
                    s0 = ShortVector.zero(S);
                    s1 = s0;
                    s4 = s0;
                    s5 = s0;
                    t0 = s0;
                    t1 = s0;
                    t4 = s0;
                    t5 = s0;
                    if (pass == 0) {           // B next (where q stands), H again, pairs 16 on
                        hq -= 32L * G;
                        hq2 -= 32L * G;
                        a += 8;
                        hs = 2;
                    } else {                   // the next half's A, past this half's H
                        q += 32L * G;
                        q2 += 32L * G;
                        hq += 64L * G;
                        hq2 += 64L * G;
                        a += 40;
                        hs = 0;
                    }
                }
            }
            float da = ad[ado + b];
            IntVector h = (IntVector) ShortVector.fromMemorySegment(SH, w, o + InterleavedQuant.K6_D * G, LE).convertShape(VectorOperators.ZERO_EXTEND_S2I, SI, 0);
            IntVector h2 = (IntVector) ShortVector.fromMemorySegment(SH, w, o2 + InterleavedQuant.K6_D * G, LE).convertShape(VectorOperators.ZERO_EXTEND_S2I, SI, 0);
            FloatVector d = h.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                    .reinterpretAsInts().or(h.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats().mul(da);
            FloatVector d2 = h2.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                    .reinterpretAsInts().or(h2.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats().mul(da);
            acc = ((FloatVector) isum.convertShape(VectorOperators.I2F, SF, 0)).fma(d, acc);
            acc2 = ((FloatVector) isum2.convertShape(VectorOperators.I2F, SF, 0)).fma(d2, acc2);
            o += 210L * G;
            o2 += 210L * G;
        }
        acc.intoArray(out, 0);
        acc2.intoArray(out, G);
    }

    /**
     * F16: per column, the G rows' fp16 values widened to floats (sign-extended, shifted into a
     * float's place with the sign's copies cleared from the exponent, times 2^112: exact for finite
     * values) times the broadcast activation, into four accumulators per group by column mod 4
     * (fused multiply-adds have a latency of several cycles).
     */
    static void groupF16(MemorySegment w, long o, long o2, int cols, float[] x, int xo, float[] out) {
        FloatVector a0 = FloatVector.zero(SF), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        long step = 2L * G;
        int c = 0;
        for (; c + 4 <= cols; c += 4, o += 4 * step, o2 += 4 * step) {
            FloatVector x0 = FloatVector.broadcast(SF, x[xo + c]), x1 = FloatVector.broadcast(SF, x[xo + c + 1]);
            FloatVector x2 = FloatVector.broadcast(SF, x[xo + c + 2]), x3 = FloatVector.broadcast(SF, x[xo + c + 3]);
            a0 = ((IntVector) ShortVector.fromMemorySegment(SH, w, o, LE).convertShape(VectorOperators.S2I, SI, 0)).lanewise(VectorOperators.LSHL, 13).and(0x8FFFE000).reinterpretAsFloats().mul(0x1p112f).fma(x0, a0);
            b0 = ((IntVector) ShortVector.fromMemorySegment(SH, w, o2, LE).convertShape(VectorOperators.S2I, SI, 0)).lanewise(VectorOperators.LSHL, 13).and(0x8FFFE000).reinterpretAsFloats().mul(0x1p112f).fma(x0, b0);
            a1 = ((IntVector) ShortVector.fromMemorySegment(SH, w, o + step, LE).convertShape(VectorOperators.S2I, SI, 0)).lanewise(VectorOperators.LSHL, 13).and(0x8FFFE000).reinterpretAsFloats().mul(0x1p112f).fma(x1, a1);
            b1 = ((IntVector) ShortVector.fromMemorySegment(SH, w, o2 + step, LE).convertShape(VectorOperators.S2I, SI, 0)).lanewise(VectorOperators.LSHL, 13).and(0x8FFFE000).reinterpretAsFloats().mul(0x1p112f).fma(x1, b1);
            a2 = ((IntVector) ShortVector.fromMemorySegment(SH, w, o + 2 * step, LE).convertShape(VectorOperators.S2I, SI, 0)).lanewise(VectorOperators.LSHL, 13).and(0x8FFFE000).reinterpretAsFloats().mul(0x1p112f).fma(x2, a2);
            b2 = ((IntVector) ShortVector.fromMemorySegment(SH, w, o2 + 2 * step, LE).convertShape(VectorOperators.S2I, SI, 0)).lanewise(VectorOperators.LSHL, 13).and(0x8FFFE000).reinterpretAsFloats().mul(0x1p112f).fma(x2, b2);
            a3 = ((IntVector) ShortVector.fromMemorySegment(SH, w, o + 3 * step, LE).convertShape(VectorOperators.S2I, SI, 0)).lanewise(VectorOperators.LSHL, 13).and(0x8FFFE000).reinterpretAsFloats().mul(0x1p112f).fma(x3, a3);
            b3 = ((IntVector) ShortVector.fromMemorySegment(SH, w, o2 + 3 * step, LE).convertShape(VectorOperators.S2I, SI, 0)).lanewise(VectorOperators.LSHL, 13).and(0x8FFFE000).reinterpretAsFloats().mul(0x1p112f).fma(x3, b3);
        }
        for (; c < cols; c++, o += step, o2 += step) {
            FloatVector xc = FloatVector.broadcast(SF, x[xo + c]);
            FloatVector f = ((IntVector) ShortVector.fromMemorySegment(SH, w, o, LE).convertShape(VectorOperators.S2I, SI, 0)).lanewise(VectorOperators.LSHL, 13).and(0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
            FloatVector f2 = ((IntVector) ShortVector.fromMemorySegment(SH, w, o2, LE).convertShape(VectorOperators.S2I, SI, 0)).lanewise(VectorOperators.LSHL, 13).and(0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
            switch (c & 3) {
                case 0 -> { a0 = f.fma(xc, a0); b0 = f2.fma(xc, b0); }
                case 1 -> { a1 = f.fma(xc, a1); b1 = f2.fma(xc, b1); }
                default -> { a2 = f.fma(xc, a2); b2 = f2.fma(xc, b2); }
            }
        }
        a0.add(a1).add(a2.add(a3)).intoArray(out, 0);
        b0.add(b1).add(b2.add(b3)).intoArray(out, G);
    }
}
