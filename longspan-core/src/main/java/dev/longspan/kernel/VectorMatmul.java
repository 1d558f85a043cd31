package dev.longspan.kernel;

import dev.longspan.tensor.Parallel;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API bodies of {@link Matmul}: one blocked GEMM that all three products share, differing
 * only in how A and B are read (and packed). Only loaded when {@link Simd#ENABLED} is true.
 *
 * <p>Shape of the computation (BLIS-style, simplified):
 * <pre>
 *   tasks = (row block of C) × (column block of C, at most NC wide), handed out dynamically
 *   per task, for each slice of k (at most KC long):
 *     pack B[k-slice, column block] into NR-wide panels, k-major   (per-thread scratch, stays in L2)
 *     for each MR rows of the row block:                            (A micro-panel stays in L1)
 *       for each NR-wide panel: the MR×NR micro-kernel, C tile held in registers, FMA over k
 * </pre>
 * A is read in place when its rows are contiguous in k (abT, ab). Transposed (atB, the weight
 * gradient), the 6×4 kernel reads it in place too (the MR values of one k are adjacent: one base
 * address for the six broadcasts); the 6×2 kernel and edge strips get MR rows packed. When rows
 * are split over several tasks and B's packing is a copy (ab, atB), B is packed once for all of
 * them, panels in parallel, instead of once per row block (atB's B is the layer input, T × n).
 * Edge tiles clamp the A rows (the duplicates are computed and dropped) and zero-pad the B panel,
 * then go through a small per-thread tile buffer.
 * Tiny shapes take direct paths: m &lt; MR (decode matvec) and abT with n &lt; one vector.
 */
final class VectorMatmul {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    /**
     * Micro-tile: MR rows × NR = NV·L columns of C, MR·NV vector accumulators, from the register count
     * ({@link Simd#TILES}): 6×4 (24 accumulators) where there are 32 vector registers (AVX-512,
     * aarch64), 6×2 (12) on 16-register machines (AVX2, SSE). 6×4 measured best on Sapphire
     * Rapids among 4..14 rows × 2..4 vectors. Tests pick either with {@link #gemm(float[], int,
     * float[], int, boolean, float[], int, boolean, int, int, int, boolean, Simd.Tiles)}.
     */
    static final int MR = 6;
    /** The widest NR of any tile: the scratch buffers fit every tile. */
    private static final int NR_MAX = 4 * L;
    /** Cache blocks: KC·MR floats of A stay in L1, KC·NC floats of packed B in L2. */
    static final int KC = 256, NC = 512;
    /** Below this many flops a product runs on the calling thread (fork/join costs more). */
    private static final double PARALLEL_FLOPS = 4e6;
    /**
     * A matrix-vector product (decode) does 2 flops per 4-byte weight and is bound by memory
     * bandwidth, not flops: it goes parallel from this many bytes of B on, so each core streams its
     * share (a flop threshold kept every per-layer decode product of a 100M model on one thread).
     */
    private static final long PARALLEL_BYTES = 1 << 18;

    private VectorMatmul() {}

    /** Per-thread scratch, allocated once per thread and reused by every call. */
    private static final class Scratch {
        final float[] bPack = new float[KC * NC];
        final float[] aPack = new float[MR * KC];
        final float[] tile = new float[MR * NR_MAX];
        final int[] idx = new int[L];
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    /**
     * C[m,n] (+)= A·B with A(i,p) = a[ao + (aT ? p·m + i : i·k + p)] and
     * B(p,j) = b[bo + (bT ? j·k + p : p·n + j)].
     */
    static void gemm(float[] c, int co, float[] a, int ao, boolean aT, float[] b, int bo, boolean bT,
                     int m, int n, int k, boolean acc) {
        gemm(c, co, a, ao, aT, b, bo, bT, m, n, k, acc, Simd.TILES);
    }

    /** Floats per vector of the GEMM's species. */
    static int lanes() { return L; }

    private static int nv(Simd.Tiles tiles) {
        return tiles == Simd.Tiles.WIDE ? 4 : 2;
    }

    /** {@link #gemm(float[], int, float[], int, boolean, float[], int, boolean, int, int, int, boolean)} with the given tiles. */
    static void gemm(float[] c, int co, float[] a, int ao, boolean aT, float[] b, int bo, boolean bT,
                     int m, int n, int k, boolean acc, Simd.Tiles tiles) {
        if (m <= 0 || n <= 0) return;
        if (k <= 0) {
            if (!acc) for (int i = 0; i < m; i++) java.util.Arrays.fill(c, co + i * n, co + i * n + n, 0f);
            return;
        }
        double flops = 2.0 * m * n * k;
        int threads = flops < PARALLEL_FLOPS ? 1 : Parallel.threads();
        if (bT && !aT && (m < MR || n < L)) {
            if (m < MR && 4L * n * k >= PARALLEL_BYTES) threads = Parallel.threads();
            dotProducts(c, co, a, ao, b, bo, m, n, k, acc, threads);
            return;
        }
        if (!bT && m < MR) {
            rowTimesMatrix(c, co, a, ao, aT, b, bo, m, n, k, acc, threads);
            return;
        }
        // Tasks are blocks of C. Each task packs the B panels of its columns for each of its row
        // blocks, and (for atB) the A rows of its rows for each of its column blocks. So abT, whose
        // B packing is a transpose, splits columns first (B packed exactly once in total); ab and
        // atB, whose B packing is a plain copy, split rows first. The other dimension splits only
        // when the first one has too few panels for ~4 tasks per thread.
        int want = threads > 1 ? 4 * threads : 1;
        int nv = nv(tiles), nr = nv * L;
        int panels = (n + nr - 1) / nr, rowPanels = (m + MR - 1) / MR;
        int colBlocks = (n + NC - 1) / NC, rowBlocks = 1;
        if (bT) {
            colBlocks = Math.max(colBlocks, Math.min(panels, want));
            if (colBlocks < want) rowBlocks = Math.max(1, Math.min((want + colBlocks - 1) / colBlocks, m / (8 * MR)));
        } else {
            rowBlocks = Math.max(1, Math.min(want, rowPanels / 8));
            if (rowBlocks * colBlocks < want) colBlocks = Math.max(colBlocks, Math.min(panels, (want + rowBlocks - 1) / rowBlocks));
        }
        int colStep = roundUp((n + colBlocks - 1) / colBlocks, nr);
        colBlocks = (n + colStep - 1) / colStep;
        int rowStep = roundUp((m + rowBlocks - 1) / rowBlocks, MR);
        rowBlocks = (m + rowStep - 1) / rowStep;
        int tasks = rowBlocks * colBlocks, cbs = colBlocks;
        if (threads == 1 || tasks == 1) {
            for (int t = 0; t < tasks; t++) {
                int rb = t / cbs, cb = t % cbs;
                block(nv, c, co, a, ao, aT, b, bo, bT, m, n, k, acc,
                        rb * rowStep, Math.min(m, rb * rowStep + rowStep), cb * colStep, Math.min(n, cb * colStep + colStep));
            }
        } else {
            // B split by rows only would be packed by every row block: pack it once, shared
            PackedB shared = !bT && rowBlocks > 1 ? packB(SHARED_B, b, bo, false, n, k, nr) : null;
            Parallel.forEachTask(tasks, t -> {
                int rb = t / cbs, cb = t % cbs;
                block(nv, c, co, a, ao, aT, b, bo, bT, m, n, k, acc,
                        rb * rowStep, Math.min(m, rb * rowStep + rowStep), cb * colStep, Math.min(n, cb * colStep + colStep), shared);
            });
        }
    }

    // C[rows, cols] at co (row stride n) (+)= the edge tile computed into tile (row stride nr)
    private static void storeTile(float[] c, int co, int n, float[] tile, int nr, int rows, int cols, boolean add) {
        for (int r = 0; r < rows; r++) {
            int ci = co + r * n;
            for (int q = 0; q < cols; q++) c[ci + q] = add ? c[ci + q] + tile[r * nr + q] : tile[r * nr + q];
        }
    }

    private static int roundUp(int x, int q) { return (x + q - 1) / q * q; }

    // one task: rows [i0, i1) × columns [j0, j1) of C, all of k
    private static void block(int nv, float[] c, int co, float[] a, int ao, boolean aT, float[] b, int bo, boolean bT,
                              int m, int n, int k, boolean acc, int i0, int i1, int j0, int j1) {
        block(nv, c, co, a, ao, aT, b, bo, bT, m, n, k, acc, i0, i1, j0, j1, null);
    }

    // the same, B taken from packed (every column's panels, packBT's layout) when not null
    private static void block(int nv, float[] c, int co, float[] a, int ao, boolean aT, float[] b, int bo, boolean bT,
                              int m, int n, int k, boolean acc, int i0, int i1, int j0, int j1, PackedB packed) {
        Scratch s = SCRATCH.get();
        float[] bp = packed != null ? packed.panels : s.bPack, ap = s.aPack, tile = s.tile;
        int nr = nv * L;
        for (int pc = 0; pc < k; pc += KC) {
            int kc = Math.min(KC, k - pc);
            // where column j's panel of this k block starts in bp
            int pcBase = packed != null ? pc * packed.columns : -j0 * kc;
            if (packed == null) packB(nr, bp, s.idx, b, bo, bT, n, k, pc, kc, j0, j1, 0);
            boolean add = acc || pc > 0;
            for (int i = i0; i < i1; i += MR) {
                int rows = Math.min(MR, i1 - i);
                float[] as = a;
                int aOff = ao + i * k + pc, lda = k;
                if (aT && rows == MR && nv == 4) {
                    // atB at 6×4: the strip read transposed in place, A(r, p) = a[(pc + p)·m + i + r]
                    // (packing it cost ~15 % of the weight gradient at m = 384, k = 2048; the 6×2
                    // kernel keeps packing: a k-major A at 16 registers made C2 spill, see PERFORMANCE.md)
                    for (int j = j0; j < j1; j += nr) {
                        int cols = Math.min(nr, j1 - j), bOff = pcBase + j * kc;
                        if (cols == nr) kernel6x4T(kc, a, ao + pc * m + i, m, bp, bOff, c, co + i * n + j, n, add);
                        else {
                            kernel6x4T(kc, a, ao + pc * m + i, m, bp, bOff, tile, 0, nr, false);
                            storeTile(c, co + i * n + j, n, tile, nr, rows, cols, add);
                        }
                    }
                    continue;
                }
                if (aT || rows < MR) {
                    // transposed A, or the last rows: copy MR rows (the last one repeated) to scratch
                    packA(ap, a, ao, aT, m, k, pc, kc, i, rows);
                    as = ap;
                    aOff = 0;
                    lda = kc;
                }
                for (int j = j0; j < j1; j += nr) {
                    int cols = Math.min(nr, j1 - j), bOff = pcBase + j * kc;
                    if (rows == MR && cols == nr) {
                        kernel(nv, kc, as, aOff, lda, bp, bOff, c, co + i * n + j, n, add);
                    } else {
                        kernel(nv, kc, as, aOff, lda, bp, bOff, tile, 0, nr, false);
                        storeTile(c, co + i * n + j, n, tile, nr, rows, cols, add);
                    }
                }
            }
        }
    }

    /**
     * A B operand packed once for many products with different A (a prefill's activations, each
     * multiplied by every panel of a weight's rows): per k block of {@link #KC}, the panels of all
     * columns, k-major ({@link #packB}'s layout); column j of k block pc starts at pc·columns + j·kc.
     */
    static final class PackedB {
        final int n, k, nr, columns;
        final float[] panels;

        PackedB(int n, int k, int nr, float[] panels) {
            this.n = n;
            this.k = k;
            this.nr = nr;
            this.columns = roundUp(n, nr);
            this.panels = panels;
        }
    }

    // the calling thread's packed-B buffer, reused from product to product (a prefill's activations
    // are megabytes: allocated per product they would be humongous objects for G1)
    private static final ThreadLocal<float[][]> PACKED = ThreadLocal.withInitial(() -> new float[][]{new float[0]});

    /**
     * B[N,K] (bT) packed for {@link #gemmPacked}, column panels packed in parallel, into the calling
     * thread's buffer: valid until that thread's next packBT.
     */
    static PackedB packBT(float[] b, int bo, int n, int k) {
        return packB(PACKED, b, bo, true, n, k, nv(Simd.TILES) * L);
    }

    // the calling thread's buffer for a B that gemm packs once for all its tasks, kept for its next
    // product (as large as the largest such B: T × n floats for a training step's weight gradients)
    private static final ThreadLocal<float[][]> SHARED_B = ThreadLocal.withInitial(() -> new float[][]{new float[0]});

    // B (bT: [N, K], else [K, N]) packed into the calling thread's buffer `buffer`, panels in parallel
    private static PackedB packB(ThreadLocal<float[][]> buffer, float[] b, int bo, boolean bT, int n, int k, int nr) {
        float[][] held = buffer.get();
        int size = roundUp(n, nr) * k;
        if (held[0].length < size) held[0] = new float[size];
        PackedB p = new PackedB(n, k, nr, held[0]);
        int panels = p.columns / nr;
        Parallel.forChunks(0, panels, 1, (chunk, q0, q1) -> {
            int[] idx = new int[L];
            for (int pc = 0; pc < k; pc += KC) {
                int kc = Math.min(KC, k - pc);
                packB(nr, p.panels, idx, b, bo, bT, n, k, pc, kc, q0 * nr, Math.min(n, q1 * nr), pc * p.columns + q0 * nr * kc);
            }
        });
        return p;
    }

    /**
     * C[m, n] (= or +=) A[m, k] · Bᵀ on the calling thread, A read in place (row stride lda = k),
     * B packed by {@link #packBT}: the product of one panel of weight rows with activations packed
     * once for all panels.
     */
    static void gemmPacked(float[] c, int co, float[] a, int ao, int m, PackedB b, boolean acc) {
        block(b.nr / L, c, co, a, ao, false, null, 0, true, m, b.n, b.k, acc, 0, m, 0, b.n, b);
    }

    /** Columns of one packed-B panel (NR of the start-up tile): a {@link PackedB}'s columns come in these. */
    static int panelColumns() {
        return nv(Simd.TILES) * L;
    }

    /**
     * Where B(p, j) lies in a {@link PackedB} of {@code columns} columns and k rows ({@link #packB}'s
     * layout: per k block pc of KC, the panels of NR columns, each k-major).
     */
    static int packedIndex(int p, int j, int columns, int k) {
        int nr = panelColumns(), pc = p / KC * KC, kc = Math.min(KC, k - pc);
        return pc * columns + (j - j % nr) * kc + (p - pc) * nr + j % nr;
    }

    // the calling thread's buffer for a B its caller writes in packB's layout itself (a panel of
    // weight rows dequantized straight into it)
    private static final ThreadLocal<float[][]> PANEL = ThreadLocal.withInitial(() -> new float[][]{new float[0]});

    /** A B of n columns and k rows over the calling thread's panel buffer, to be filled in packB's layout ({@link #packedIndex}). */
    static PackedB panelBuffer(int n, int k) {
        float[][] held = PANEL.get();
        int size = roundUp(n, panelColumns()) * k;
        if (held[0].length < size) held[0] = new float[size];
        return new PackedB(n, k, panelColumns(), held[0]);
    }

    /**
     * C[m, b.n] at co, row stride ldc, (= or +=) A[m, k]·Bᵀ on the calling thread, A read in place
     * (row stride k = b.k), B packed: a prefill's activations times one panel of weight rows, the
     * results written straight into the output's rows.
     */
    static void gemmRowsPacked(float[] c, int co, int ldc, float[] a, int ao, int m, PackedB b, boolean acc) {
        block(b.nr / L, c, co, a, ao, false, null, 0, true, m, ldc, b.k, acc, 0, m, 0, b.n, b);
    }

    // bp[panel][p][jj] = B(pc + p, j0 + panel·NR + jj), zero past j1; panel stride kc·NR
    private static void packB(int nr, float[] bp, int[] idx, float[] b, int bo, boolean bT, int n, int k, int pc, int kc, int j0, int j1, int bpo) {
        for (int j = j0; j < j1; j += nr) {
            int base = bpo + (j - j0) * kc, cols = Math.min(nr, j1 - j);
            if (bT) {
                // B is [N, K]: a transpose. Full panels gather L values of one k from L rows of B
                // (idx = row offsets) and store them contiguously; the source lines stay in L1
                // for 16 consecutive k. Measured at m = 64, n = k = 4096 (one thread), where B's
                // packing matters most: column-by-column scalar copies (strided stores over the
                // 64 KiB panel) 46 GFLOP/s, row-by-row scalar copies 65, gathers 95.
                int src = bo + j * k + pc;
                if (cols == nr) {
                    for (int v = 0; v < nr; v += L) {
                        for (int q = 0; q < L; q++) idx[q] = (v + q) * k;
                        for (int p = 0; p < kc; p++) FloatVector.fromArray(S, b, src + p, idx, 0).intoArray(bp, base + p * nr + v);
                    }
                } else {
                    for (int p = 0; p < kc; p++) {
                        int d = base + p * nr;
                        for (int q = 0, s = src + p; q < cols; q++, s += k) bp[d + q] = b[s];
                        java.util.Arrays.fill(bp, d + cols, d + nr, 0f);
                    }
                }
            } else {
                // B is [K, N]: each k-row of the panel is a contiguous run of a row of B
                int src = bo + pc * n + j;
                if (cols == nr) {
                    for (int p = 0; p < kc; p++, src += n)
                        for (int v = 0; v < nr; v += L) FloatVector.fromArray(S, b, src + v).intoArray(bp, base + p * nr + v);
                } else {
                    for (int p = 0; p < kc; p++, src += n) {
                        System.arraycopy(b, src, bp, base + p * nr, cols);
                        java.util.Arrays.fill(bp, base + p * nr + cols, base + p * nr + nr, 0f);
                    }
                }
            }
        }
    }

    // ap[r][p] = A(i + min(r, rows-1), pc + p), row stride kc (rows past the edge repeat the last
    // one; their results are dropped)
    private static void packA(float[] ap, float[] a, int ao, boolean aT, int m, int k, int pc, int kc, int i, int rows) {
        if (aT) {
            // A is [K, M]: the MR values of one p are contiguous
            for (int p = 0; p < kc; p++) {
                int src = ao + (pc + p) * m + i;
                for (int r = 0; r < MR; r++) ap[r * kc + p] = a[src + Math.min(r, rows - 1)];
            }
        } else {
            for (int r = 0; r < MR; r++) System.arraycopy(a, ao + (i + Math.min(r, rows - 1)) * k + pc, ap, r * kc, kc);
        }
    }

    /**
     * The micro-kernel: C[0..MR, 0..NR) (+)= Σ_p A(r, p) · Bpanel[p, 0..NR), the MR·NR/L vector
     * accumulators held in registers. A row r is a[ao + r·lda + p]; the B panel is k-major, stride NR.
     */
    private static void kernel(int nv, int kc, float[] a, int ao, int lda, float[] bp, int bo, float[] c, int co, int ldc, boolean add) {
        if (nv == 4) kernel6x4(kc, a, ao, lda, bp, bo, c, co, ldc, add);
        else kernel6x2(kc, a, ao, lda, bp, bo, c, co, ldc, add);
    }

    private static void kernel6x4(int kc, float[] a, int ao, int lda, float[] bp, int bo, float[] c, int co, int ldc, boolean add) {
        int a0 = ao, a1 = ao + 1 * lda, a2 = ao + 2 * lda, a3 = ao + 3 * lda, a4 = ao + 4 * lda, a5 = ao + 5 * lda;
        FloatVector c0_0 = FloatVector.zero(S), c0_1 = FloatVector.zero(S), c0_2 = FloatVector.zero(S), c0_3 = FloatVector.zero(S);
        FloatVector c1_0 = FloatVector.zero(S), c1_1 = FloatVector.zero(S), c1_2 = FloatVector.zero(S), c1_3 = FloatVector.zero(S);
        FloatVector c2_0 = FloatVector.zero(S), c2_1 = FloatVector.zero(S), c2_2 = FloatVector.zero(S), c2_3 = FloatVector.zero(S);
        FloatVector c3_0 = FloatVector.zero(S), c3_1 = FloatVector.zero(S), c3_2 = FloatVector.zero(S), c3_3 = FloatVector.zero(S);
        FloatVector c4_0 = FloatVector.zero(S), c4_1 = FloatVector.zero(S), c4_2 = FloatVector.zero(S), c4_3 = FloatVector.zero(S);
        FloatVector c5_0 = FloatVector.zero(S), c5_1 = FloatVector.zero(S), c5_2 = FloatVector.zero(S), c5_3 = FloatVector.zero(S);
        for (int p = 0; p < kc; p++) {
            int bi = bo + p * (4 * L);
            FloatVector b0 = FloatVector.fromArray(S, bp, bi);
            FloatVector b1 = FloatVector.fromArray(S, bp, bi + L);
            FloatVector b2 = FloatVector.fromArray(S, bp, bi + 2 * L);
            FloatVector b3 = FloatVector.fromArray(S, bp, bi + 3 * L);
            FloatVector x = FloatVector.broadcast(S, a[a0 + p]);
            c0_0 = x.fma(b0, c0_0); c0_1 = x.fma(b1, c0_1); c0_2 = x.fma(b2, c0_2); c0_3 = x.fma(b3, c0_3);
            x = FloatVector.broadcast(S, a[a1 + p]);
            c1_0 = x.fma(b0, c1_0); c1_1 = x.fma(b1, c1_1); c1_2 = x.fma(b2, c1_2); c1_3 = x.fma(b3, c1_3);
            x = FloatVector.broadcast(S, a[a2 + p]);
            c2_0 = x.fma(b0, c2_0); c2_1 = x.fma(b1, c2_1); c2_2 = x.fma(b2, c2_2); c2_3 = x.fma(b3, c2_3);
            x = FloatVector.broadcast(S, a[a3 + p]);
            c3_0 = x.fma(b0, c3_0); c3_1 = x.fma(b1, c3_1); c3_2 = x.fma(b2, c3_2); c3_3 = x.fma(b3, c3_3);
            x = FloatVector.broadcast(S, a[a4 + p]);
            c4_0 = x.fma(b0, c4_0); c4_1 = x.fma(b1, c4_1); c4_2 = x.fma(b2, c4_2); c4_3 = x.fma(b3, c4_3);
            x = FloatVector.broadcast(S, a[a5 + p]);
            c5_0 = x.fma(b0, c5_0); c5_1 = x.fma(b1, c5_1); c5_2 = x.fma(b2, c5_2); c5_3 = x.fma(b3, c5_3);
        }
        // stores written out here, not in a helper: a call the JIT declines to inline would box
        // the accumulators (the kernel is close to C2's inlining node budget)
        if (add) {
            c0_0 = c0_0.add(FloatVector.fromArray(S, c, co + 0 * ldc)); c0_1 = c0_1.add(FloatVector.fromArray(S, c, co + 0 * ldc + L)); c0_2 = c0_2.add(FloatVector.fromArray(S, c, co + 0 * ldc + 2 * L)); c0_3 = c0_3.add(FloatVector.fromArray(S, c, co + 0 * ldc + 3 * L));
            c1_0 = c1_0.add(FloatVector.fromArray(S, c, co + 1 * ldc)); c1_1 = c1_1.add(FloatVector.fromArray(S, c, co + 1 * ldc + L)); c1_2 = c1_2.add(FloatVector.fromArray(S, c, co + 1 * ldc + 2 * L)); c1_3 = c1_3.add(FloatVector.fromArray(S, c, co + 1 * ldc + 3 * L));
            c2_0 = c2_0.add(FloatVector.fromArray(S, c, co + 2 * ldc)); c2_1 = c2_1.add(FloatVector.fromArray(S, c, co + 2 * ldc + L)); c2_2 = c2_2.add(FloatVector.fromArray(S, c, co + 2 * ldc + 2 * L)); c2_3 = c2_3.add(FloatVector.fromArray(S, c, co + 2 * ldc + 3 * L));
            c3_0 = c3_0.add(FloatVector.fromArray(S, c, co + 3 * ldc)); c3_1 = c3_1.add(FloatVector.fromArray(S, c, co + 3 * ldc + L)); c3_2 = c3_2.add(FloatVector.fromArray(S, c, co + 3 * ldc + 2 * L)); c3_3 = c3_3.add(FloatVector.fromArray(S, c, co + 3 * ldc + 3 * L));
            c4_0 = c4_0.add(FloatVector.fromArray(S, c, co + 4 * ldc)); c4_1 = c4_1.add(FloatVector.fromArray(S, c, co + 4 * ldc + L)); c4_2 = c4_2.add(FloatVector.fromArray(S, c, co + 4 * ldc + 2 * L)); c4_3 = c4_3.add(FloatVector.fromArray(S, c, co + 4 * ldc + 3 * L));
            c5_0 = c5_0.add(FloatVector.fromArray(S, c, co + 5 * ldc)); c5_1 = c5_1.add(FloatVector.fromArray(S, c, co + 5 * ldc + L)); c5_2 = c5_2.add(FloatVector.fromArray(S, c, co + 5 * ldc + 2 * L)); c5_3 = c5_3.add(FloatVector.fromArray(S, c, co + 5 * ldc + 3 * L));
        }
        c0_0.intoArray(c, co + 0 * ldc); c0_1.intoArray(c, co + 0 * ldc + L); c0_2.intoArray(c, co + 0 * ldc + 2 * L); c0_3.intoArray(c, co + 0 * ldc + 3 * L);
        c1_0.intoArray(c, co + 1 * ldc); c1_1.intoArray(c, co + 1 * ldc + L); c1_2.intoArray(c, co + 1 * ldc + 2 * L); c1_3.intoArray(c, co + 1 * ldc + 3 * L);
        c2_0.intoArray(c, co + 2 * ldc); c2_1.intoArray(c, co + 2 * ldc + L); c2_2.intoArray(c, co + 2 * ldc + 2 * L); c2_3.intoArray(c, co + 2 * ldc + 3 * L);
        c3_0.intoArray(c, co + 3 * ldc); c3_1.intoArray(c, co + 3 * ldc + L); c3_2.intoArray(c, co + 3 * ldc + 2 * L); c3_3.intoArray(c, co + 3 * ldc + 3 * L);
        c4_0.intoArray(c, co + 4 * ldc); c4_1.intoArray(c, co + 4 * ldc + L); c4_2.intoArray(c, co + 4 * ldc + 2 * L); c4_3.intoArray(c, co + 4 * ldc + 3 * L);
        c5_0.intoArray(c, co + 5 * ldc); c5_1.intoArray(c, co + 5 * ldc + L); c5_2.intoArray(c, co + 5 * ldc + 2 * L); c5_3.intoArray(c, co + 5 * ldc + 3 * L);
    }

    // kernel6x4 with A read transposed in place, A(r, p) = a[ao + p·lda + r] (atB). A separate copy:
    // with the k stride a variable C2 keeps a range check per broadcast, which the row-major kernel
    // (stride 1, its checks hoisted out of the loop) must not pay on machines whose two 512-bit FMA
    // pipes leave the front end no slack
    private static void kernel6x4T(int kc, float[] a, int ao, int lda, float[] bp, int bo, float[] c, int co, int ldc, boolean add) {
        FloatVector c0_0 = FloatVector.zero(S), c0_1 = FloatVector.zero(S), c0_2 = FloatVector.zero(S), c0_3 = FloatVector.zero(S);
        FloatVector c1_0 = FloatVector.zero(S), c1_1 = FloatVector.zero(S), c1_2 = FloatVector.zero(S), c1_3 = FloatVector.zero(S);
        FloatVector c2_0 = FloatVector.zero(S), c2_1 = FloatVector.zero(S), c2_2 = FloatVector.zero(S), c2_3 = FloatVector.zero(S);
        FloatVector c3_0 = FloatVector.zero(S), c3_1 = FloatVector.zero(S), c3_2 = FloatVector.zero(S), c3_3 = FloatVector.zero(S);
        FloatVector c4_0 = FloatVector.zero(S), c4_1 = FloatVector.zero(S), c4_2 = FloatVector.zero(S), c4_3 = FloatVector.zero(S);
        FloatVector c5_0 = FloatVector.zero(S), c5_1 = FloatVector.zero(S), c5_2 = FloatVector.zero(S), c5_3 = FloatVector.zero(S);
        for (int p = 0, ai = ao; p < kc; p++, ai += lda) {
            int bi = bo + p * (4 * L);
            FloatVector b0 = FloatVector.fromArray(S, bp, bi);
            FloatVector b1 = FloatVector.fromArray(S, bp, bi + L);
            FloatVector b2 = FloatVector.fromArray(S, bp, bi + 2 * L);
            FloatVector b3 = FloatVector.fromArray(S, bp, bi + 3 * L);
            FloatVector x = FloatVector.broadcast(S, a[ai]);
            c0_0 = x.fma(b0, c0_0); c0_1 = x.fma(b1, c0_1); c0_2 = x.fma(b2, c0_2); c0_3 = x.fma(b3, c0_3);
            x = FloatVector.broadcast(S, a[ai + 1]);
            c1_0 = x.fma(b0, c1_0); c1_1 = x.fma(b1, c1_1); c1_2 = x.fma(b2, c1_2); c1_3 = x.fma(b3, c1_3);
            x = FloatVector.broadcast(S, a[ai + 2]);
            c2_0 = x.fma(b0, c2_0); c2_1 = x.fma(b1, c2_1); c2_2 = x.fma(b2, c2_2); c2_3 = x.fma(b3, c2_3);
            x = FloatVector.broadcast(S, a[ai + 3]);
            c3_0 = x.fma(b0, c3_0); c3_1 = x.fma(b1, c3_1); c3_2 = x.fma(b2, c3_2); c3_3 = x.fma(b3, c3_3);
            x = FloatVector.broadcast(S, a[ai + 4]);
            c4_0 = x.fma(b0, c4_0); c4_1 = x.fma(b1, c4_1); c4_2 = x.fma(b2, c4_2); c4_3 = x.fma(b3, c4_3);
            x = FloatVector.broadcast(S, a[ai + 5]);
            c5_0 = x.fma(b0, c5_0); c5_1 = x.fma(b1, c5_1); c5_2 = x.fma(b2, c5_2); c5_3 = x.fma(b3, c5_3);
        }
        // stores written out here, not in a helper: a call the JIT declines to inline would box
        // the accumulators (the kernel is close to C2's inlining node budget)
        if (add) {
            c0_0 = c0_0.add(FloatVector.fromArray(S, c, co + 0 * ldc)); c0_1 = c0_1.add(FloatVector.fromArray(S, c, co + 0 * ldc + L)); c0_2 = c0_2.add(FloatVector.fromArray(S, c, co + 0 * ldc + 2 * L)); c0_3 = c0_3.add(FloatVector.fromArray(S, c, co + 0 * ldc + 3 * L));
            c1_0 = c1_0.add(FloatVector.fromArray(S, c, co + 1 * ldc)); c1_1 = c1_1.add(FloatVector.fromArray(S, c, co + 1 * ldc + L)); c1_2 = c1_2.add(FloatVector.fromArray(S, c, co + 1 * ldc + 2 * L)); c1_3 = c1_3.add(FloatVector.fromArray(S, c, co + 1 * ldc + 3 * L));
            c2_0 = c2_0.add(FloatVector.fromArray(S, c, co + 2 * ldc)); c2_1 = c2_1.add(FloatVector.fromArray(S, c, co + 2 * ldc + L)); c2_2 = c2_2.add(FloatVector.fromArray(S, c, co + 2 * ldc + 2 * L)); c2_3 = c2_3.add(FloatVector.fromArray(S, c, co + 2 * ldc + 3 * L));
            c3_0 = c3_0.add(FloatVector.fromArray(S, c, co + 3 * ldc)); c3_1 = c3_1.add(FloatVector.fromArray(S, c, co + 3 * ldc + L)); c3_2 = c3_2.add(FloatVector.fromArray(S, c, co + 3 * ldc + 2 * L)); c3_3 = c3_3.add(FloatVector.fromArray(S, c, co + 3 * ldc + 3 * L));
            c4_0 = c4_0.add(FloatVector.fromArray(S, c, co + 4 * ldc)); c4_1 = c4_1.add(FloatVector.fromArray(S, c, co + 4 * ldc + L)); c4_2 = c4_2.add(FloatVector.fromArray(S, c, co + 4 * ldc + 2 * L)); c4_3 = c4_3.add(FloatVector.fromArray(S, c, co + 4 * ldc + 3 * L));
            c5_0 = c5_0.add(FloatVector.fromArray(S, c, co + 5 * ldc)); c5_1 = c5_1.add(FloatVector.fromArray(S, c, co + 5 * ldc + L)); c5_2 = c5_2.add(FloatVector.fromArray(S, c, co + 5 * ldc + 2 * L)); c5_3 = c5_3.add(FloatVector.fromArray(S, c, co + 5 * ldc + 3 * L));
        }
        c0_0.intoArray(c, co + 0 * ldc); c0_1.intoArray(c, co + 0 * ldc + L); c0_2.intoArray(c, co + 0 * ldc + 2 * L); c0_3.intoArray(c, co + 0 * ldc + 3 * L);
        c1_0.intoArray(c, co + 1 * ldc); c1_1.intoArray(c, co + 1 * ldc + L); c1_2.intoArray(c, co + 1 * ldc + 2 * L); c1_3.intoArray(c, co + 1 * ldc + 3 * L);
        c2_0.intoArray(c, co + 2 * ldc); c2_1.intoArray(c, co + 2 * ldc + L); c2_2.intoArray(c, co + 2 * ldc + 2 * L); c2_3.intoArray(c, co + 2 * ldc + 3 * L);
        c3_0.intoArray(c, co + 3 * ldc); c3_1.intoArray(c, co + 3 * ldc + L); c3_2.intoArray(c, co + 3 * ldc + 2 * L); c3_3.intoArray(c, co + 3 * ldc + 3 * L);
        c4_0.intoArray(c, co + 4 * ldc); c4_1.intoArray(c, co + 4 * ldc + L); c4_2.intoArray(c, co + 4 * ldc + 2 * L); c4_3.intoArray(c, co + 4 * ldc + 3 * L);
        c5_0.intoArray(c, co + 5 * ldc); c5_1.intoArray(c, co + 5 * ldc + L); c5_2.intoArray(c, co + 5 * ldc + 2 * L); c5_3.intoArray(c, co + 5 * ldc + 3 * L);
    }

    private static void kernel6x2(int kc, float[] a, int ao, int lda, float[] bp, int bo, float[] c, int co, int ldc, boolean add) {
        int a0 = ao, a1 = ao + 1 * lda, a2 = ao + 2 * lda, a3 = ao + 3 * lda, a4 = ao + 4 * lda, a5 = ao + 5 * lda;
        FloatVector c0_0 = FloatVector.zero(S), c0_1 = FloatVector.zero(S);
        FloatVector c1_0 = FloatVector.zero(S), c1_1 = FloatVector.zero(S);
        FloatVector c2_0 = FloatVector.zero(S), c2_1 = FloatVector.zero(S);
        FloatVector c3_0 = FloatVector.zero(S), c3_1 = FloatVector.zero(S);
        FloatVector c4_0 = FloatVector.zero(S), c4_1 = FloatVector.zero(S);
        FloatVector c5_0 = FloatVector.zero(S), c5_1 = FloatVector.zero(S);
        for (int p = 0; p < kc; p++) {
            int bi = bo + p * (2 * L);
            FloatVector b0 = FloatVector.fromArray(S, bp, bi);
            FloatVector b1 = FloatVector.fromArray(S, bp, bi + L);
            FloatVector x = FloatVector.broadcast(S, a[a0 + p]);
            c0_0 = x.fma(b0, c0_0); c0_1 = x.fma(b1, c0_1);
            x = FloatVector.broadcast(S, a[a1 + p]);
            c1_0 = x.fma(b0, c1_0); c1_1 = x.fma(b1, c1_1);
            x = FloatVector.broadcast(S, a[a2 + p]);
            c2_0 = x.fma(b0, c2_0); c2_1 = x.fma(b1, c2_1);
            x = FloatVector.broadcast(S, a[a3 + p]);
            c3_0 = x.fma(b0, c3_0); c3_1 = x.fma(b1, c3_1);
            x = FloatVector.broadcast(S, a[a4 + p]);
            c4_0 = x.fma(b0, c4_0); c4_1 = x.fma(b1, c4_1);
            x = FloatVector.broadcast(S, a[a5 + p]);
            c5_0 = x.fma(b0, c5_0); c5_1 = x.fma(b1, c5_1);
        }
        if (add) {
            c0_0 = c0_0.add(FloatVector.fromArray(S, c, co + 0 * ldc)); c0_1 = c0_1.add(FloatVector.fromArray(S, c, co + 0 * ldc + L));
            c1_0 = c1_0.add(FloatVector.fromArray(S, c, co + 1 * ldc)); c1_1 = c1_1.add(FloatVector.fromArray(S, c, co + 1 * ldc + L));
            c2_0 = c2_0.add(FloatVector.fromArray(S, c, co + 2 * ldc)); c2_1 = c2_1.add(FloatVector.fromArray(S, c, co + 2 * ldc + L));
            c3_0 = c3_0.add(FloatVector.fromArray(S, c, co + 3 * ldc)); c3_1 = c3_1.add(FloatVector.fromArray(S, c, co + 3 * ldc + L));
            c4_0 = c4_0.add(FloatVector.fromArray(S, c, co + 4 * ldc)); c4_1 = c4_1.add(FloatVector.fromArray(S, c, co + 4 * ldc + L));
            c5_0 = c5_0.add(FloatVector.fromArray(S, c, co + 5 * ldc)); c5_1 = c5_1.add(FloatVector.fromArray(S, c, co + 5 * ldc + L));
        }
        c0_0.intoArray(c, co + 0 * ldc); c0_1.intoArray(c, co + 0 * ldc + L);
        c1_0.intoArray(c, co + 1 * ldc); c1_1.intoArray(c, co + 1 * ldc + L);
        c2_0.intoArray(c, co + 2 * ldc); c2_1.intoArray(c, co + 2 * ldc + L);
        c3_0.intoArray(c, co + 3 * ldc); c3_1.intoArray(c, co + 3 * ldc + L);
        c4_0.intoArray(c, co + 4 * ldc); c4_1.intoArray(c, co + 4 * ldc + L);
        c5_0.intoArray(c, co + 5 * ldc); c5_1.intoArray(c, co + 5 * ldc + L);
    }

    private static void store(float[] c, int o, boolean add, FloatVector v0, FloatVector v1) {
        if (add) {
            v0 = v0.add(FloatVector.fromArray(S, c, o));
            v1 = v1.add(FloatVector.fromArray(S, c, o + L));
        }
        v0.intoArray(c, o);
        v1.intoArray(c, o + L);
    }

    // ---- direct paths for tiny shapes --------------------------------------------------------

    /**
     * abT as dot products, for few rows (decode: m = 1) or few columns: C[i,j] = A_i · B_j, four
     * rows of B at a time so each A load feeds four FMAs. Split over columns (or rows when n is tiny).
     */
    private static void dotProducts(float[] c, int co, float[] a, int ao, float[] b, int bo,
                                    int m, int n, int k, boolean acc, int threads) {
        if (threads > 1 && n >= 8 * threads) {
            Parallel.forChunks(0, (n + 3) / 4, 1, (chunk, q0, q1) ->
                    dotColumns(c, co, a, ao, b, bo, 0, m, 4 * q0, Math.min(n, 4 * q1), n, k, acc));
        } else if (threads > 1) {
            Parallel.forChunks(0, m, 1, (chunk, r0, r1) -> dotColumns(c, co, a, ao, b, bo, r0, r1, 0, n, n, k, acc));
        } else {
            dotColumns(c, co, a, ao, b, bo, 0, m, 0, n, n, k, acc);
        }
    }

    private static void dotColumns(float[] c, int co, float[] a, int ao, float[] b, int bo,
                                   int i0, int i1, int j0, int j1, int n, int k, boolean acc) {
        int j = j0;
        if (i1 - i0 == 1) {
            // one row of C (decode): columns j..j+3 side by side with j+h..j+h+3, two streams of B's
            // rows (InterleavedQuant's reason), each column's sum as below
            int h = (j1 - j0) / 8 * 4, ai = ao + i0 * k;
            for (; j < j0 + h; j += 4) {
                int b0 = bo + j * k, b1 = b0 + k, b2 = b1 + k, b3 = b2 + k;
                int e0 = b0 + h * k, e1 = e0 + k, e2 = e1 + k, e3 = e2 + k;
                FloatVector s0 = FloatVector.zero(S), s1 = s0, s2 = s0, s3 = s0, t0 = s0, t1 = s0, t2 = s0, t3 = s0;
                int p = 0;
                for (int bound = k - L; p <= bound; p += L) {
                    FloatVector x = FloatVector.fromArray(S, a, ai + p);
                    s0 = x.fma(FloatVector.fromArray(S, b, b0 + p), s0);
                    t0 = x.fma(FloatVector.fromArray(S, b, e0 + p), t0);
                    s1 = x.fma(FloatVector.fromArray(S, b, b1 + p), s1);
                    t1 = x.fma(FloatVector.fromArray(S, b, e1 + p), t1);
                    s2 = x.fma(FloatVector.fromArray(S, b, b2 + p), s2);
                    t2 = x.fma(FloatVector.fromArray(S, b, e2 + p), t2);
                    s3 = x.fma(FloatVector.fromArray(S, b, b3 + p), s3);
                    t3 = x.fma(FloatVector.fromArray(S, b, e3 + p), t3);
                }
                // (a small array C2's escape analysis keeps in registers: eight locals and the stores
                // written out were not faster, 0.96 of this in alternated decode runs)
                float[] d = {VectorMath.sum(s0), VectorMath.sum(s1), VectorMath.sum(s2), VectorMath.sum(s3),
                        VectorMath.sum(t0), VectorMath.sum(t1), VectorMath.sum(t2), VectorMath.sum(t3)};
                for (; p < k; p++) {
                    float x = a[ai + p];
                    d[0] += x * b[b0 + p]; d[1] += x * b[b1 + p]; d[2] += x * b[b2 + p]; d[3] += x * b[b3 + p];
                    d[4] += x * b[e0 + p]; d[5] += x * b[e1 + p]; d[6] += x * b[e2 + p]; d[7] += x * b[e3 + p];
                }
                int ci = co + i0 * n + j;
                for (int q = 0; q < 8; q++) {
                    int cq = ci + (q & 3) + (q >= 4 ? h : 0);
                    c[cq] = acc ? c[cq] + d[q] : d[q];
                }
            }
            j += h;
        }
        for (; j + 4 <= j1; j += 4) {
            int b0 = bo + j * k, b1 = b0 + k, b2 = b1 + k, b3 = b2 + k;
            for (int i = i0; i < i1; i++) {
                int ai = ao + i * k;
                FloatVector s0 = FloatVector.zero(S), s1 = FloatVector.zero(S), s2 = FloatVector.zero(S), s3 = FloatVector.zero(S);
                int p = 0;
                for (int bound = k - L; p <= bound; p += L) {
                    FloatVector x = FloatVector.fromArray(S, a, ai + p);
                    s0 = x.fma(FloatVector.fromArray(S, b, b0 + p), s0);
                    s1 = x.fma(FloatVector.fromArray(S, b, b1 + p), s1);
                    s2 = x.fma(FloatVector.fromArray(S, b, b2 + p), s2);
                    s3 = x.fma(FloatVector.fromArray(S, b, b3 + p), s3);
                }
                float d0 = VectorMath.sum(s0), d1 = VectorMath.sum(s1);
                float d2 = VectorMath.sum(s2), d3 = VectorMath.sum(s3);
                for (; p < k; p++) {
                    float x = a[ai + p];
                    d0 += x * b[b0 + p]; d1 += x * b[b1 + p]; d2 += x * b[b2 + p]; d3 += x * b[b3 + p];
                }
                int ci = co + i * n + j;
                if (acc) { c[ci] += d0; c[ci + 1] += d1; c[ci + 2] += d2; c[ci + 3] += d3; }
                else { c[ci] = d0; c[ci + 1] = d1; c[ci + 2] = d2; c[ci + 3] = d3; }
            }
        }
        for (; j < j1; j++)
            for (int i = i0; i < i1; i++) {
                float d = VectorKernels.dot(a, ao + i * k, b, bo + j * k, k);
                int ci = co + i * n + j;
                c[ci] = acc ? c[ci] + d : d;
            }
    }

    /**
     * ab / atB for few rows of C (decode: m = 1): each row of C is Σ_p A(i,p) · B[p, :], kept in
     * four vector accumulators per 4·L columns while B streams past once. Split over columns.
     */
    private static void rowTimesMatrix(float[] c, int co, float[] a, int ao, boolean aT, float[] b, int bo,
                                       int m, int n, int k, boolean acc, int threads) {
        int w = 4 * L;
        if (threads > 1 && n >= 2 * w) {
            Parallel.forChunks(0, (n + w - 1) / w, 1, (chunk, q0, q1) ->
                    rowTimesColumns(c, co, a, ao, aT, b, bo, m, n, k, acc, q0 * w, Math.min(n, q1 * w)));
        } else {
            rowTimesColumns(c, co, a, ao, aT, b, bo, m, n, k, acc, 0, n);
        }
    }

    private static void rowTimesColumns(float[] c, int co, float[] a, int ao, boolean aT, float[] b, int bo,
                                        int m, int n, int k, boolean acc, int j0, int j1) {
        int as = aT ? 1 : k, ps = aT ? m : 1; // A(i,p) = a[ao + i·as + p·ps]
        for (int i = 0; i < m; i++) {
            int ci = co + i * n, ai = ao + i * as;
            int j = j0;
            for (; j + 4 * L <= j1; j += 4 * L) {
                FloatVector s0 = FloatVector.zero(S), s1 = FloatVector.zero(S), s2 = FloatVector.zero(S), s3 = FloatVector.zero(S);
                for (int p = 0, bi = bo + j; p < k; p++, bi += n) {
                    FloatVector x = FloatVector.broadcast(S, a[ai + p * ps]);
                    s0 = x.fma(FloatVector.fromArray(S, b, bi), s0);
                    s1 = x.fma(FloatVector.fromArray(S, b, bi + L), s1);
                    s2 = x.fma(FloatVector.fromArray(S, b, bi + 2 * L), s2);
                    s3 = x.fma(FloatVector.fromArray(S, b, bi + 3 * L), s3);
                }
                store(c, ci + j, acc, s0, s1);
                store(c, ci + j + 2 * L, acc, s2, s3);
            }
            for (; j + L <= j1; j += L) {
                FloatVector s0 = FloatVector.zero(S);
                for (int p = 0, bi = bo + j; p < k; p++, bi += n) s0 = FloatVector.broadcast(S, a[ai + p * ps]).fma(FloatVector.fromArray(S, b, bi), s0);
                if (acc) s0 = s0.add(FloatVector.fromArray(S, c, ci + j));
                s0.intoArray(c, ci + j);
            }
            for (; j < j1; j++) {
                float s = 0f;
                for (int p = 0; p < k; p++) s += a[ai + p * ps] * b[bo + p * n + j];
                c[ci + j] = acc ? c[ci + j] + s : s;
            }
        }
    }
}
