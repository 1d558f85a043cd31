package dev.longspan.attention;

import dev.longspan.util.Log;
import dev.longspan.util.LongspanException;

import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A pattern bound to a problem shape (H query heads, Hkv key/value heads, causal or not) and a span
 * of one position axis: the queries at [qBase, qBase + tq) against the keys at [kBase, kBase + tk)
 * (a whole sequence of N positions is 0..N−1 for both): its passes of tiles, and after the forward
 * pass any data-dependent state (the regions select-and-merge chose), which the backward pass
 * reuses.
 */
public final class Plan {
    private static final Set<String> WARNED = ConcurrentHashMap.newKeySet();

    final Pattern pattern;
    final int n, heads, kvHeads;     // n: query rows (tq)
    final TilePlans.Span span;
    final boolean causal;
    final List<Pass> passes;

    private Plan(Pattern pattern, TilePlans.Span span, int heads, int kvHeads, boolean causal, List<RegionSummaries> summaries) {
        this.pattern = pattern;
        this.span = span;
        this.n = span.tq();
        this.heads = heads;
        this.kvHeads = kvHeads;
        this.causal = causal;
        this.passes = TilePlans.passes(pattern, span, heads, causal, summaries);
    }

    /** Binds pattern to a whole sequence of n positions; checks the configuration and warns about rows no pair reaches. */
    public static Plan of(Pattern pattern, int n, int heads, int kvHeads, boolean causal) {
        if (n < 1) throw new LongspanException("attention: sequence length must be at least 1, got " + n);
        check(pattern, heads, kvHeads, causal);
        Plan plan = new Plan(pattern, new TilePlans.Span(0, n, 0, n), heads, kvHeads, causal, null);
        long unreached = plan.unreachedRows();
        if (unreached > 0 && WARNED.add(pattern.spec() + "|" + n + "|" + heads + "|" + causal)) {
            Log.warn("attention pattern '" + pattern.spec() + "' reaches no key from " + unreached + " of " + (long) n * heads
                    + " (head, row) pairs at N=" + n + ", H=" + heads + ": those rows get O = 0 and LSE = -inf"
                    + " (a row of head h is reached only by pairs whose offset for h matches its residue; add a pair with r=1)");
        }
        return plan;
    }

    /**
     * Binds pattern to the queries at absolute positions [qBase, qBase + tq) against the keys at
     * [kBase, kBase + tk) of the same axis: a chunk of a prompt or a decoded token against a KV
     * cache, or one block of a sequence split across workers. Each query gets the pattern's keys
     * that fall in the key span; blocks of keys merge by log-sum-exp ({@link Attention#merge}).
     * Select-and-merge terms rank regions by {@code summaries} (one per term in pattern order, see
     * {@link RegionSummaries#forTerms}), which must already hold every key before the span's last
     * query; null summarises the span's own keys (then kBase must be 0).
     */
    public static Plan of(Pattern pattern, int heads, int kvHeads, boolean causal, int qBase, int tq, int kBase, int tk,
                          List<RegionSummaries> summaries) {
        if (tq < 1 || tk < 0 || qBase < 0 || kBase < 0 || (long) qBase + tq > Integer.MAX_VALUE || (long) kBase + tk > Integer.MAX_VALUE) {
            throw new LongspanException("attention: query rows [" + qBase + ", +" + tq + ") or key rows [" + kBase + ", +" + tk + ") out of range");
        }
        check(pattern, heads, kvHeads, causal);
        if (summaries != null && summaries.size() != selectMergeTerms(pattern)) {
            throw new IllegalArgumentException("attention pattern '" + pattern.spec() + "': " + summaries.size() + " region summaries for "
                    + selectMergeTerms(pattern) + " select-and-merge terms");
        }
        return new Plan(pattern, new TilePlans.Span(qBase, tq, kBase, tk), heads, kvHeads, causal, summaries);
    }

    private static void check(Pattern pattern, int heads, int kvHeads, boolean causal) {
        if (heads < 1 || kvHeads < 1 || heads % kvHeads != 0) {
            throw new LongspanException("attention: query heads (" + heads + ") must be a positive multiple of key/value heads (" + kvHeads + ")");
        }
        if (!causal && containsSelectMerge(pattern)) {
            throw new LongspanException("attention pattern '" + pattern.spec() + "': selectmerge is causal only (no bidirectional form)");
        }
    }

    static int selectMergeTerms(Pattern p) {
        return switch (p) {
            case Pattern.SelectMerge s -> 1;
            case Pattern.Sum s -> s.terms().stream().mapToInt(Plan::selectMergeTerms).sum();
            default -> 0;
        };
    }

    private static boolean containsSelectMerge(Pattern p) {
        return switch (p) {
            case Pattern.SelectMerge s -> true;
            case Pattern.Sum s -> s.terms().stream().anyMatch(Plan::containsSelectMerge);
            default -> false;
        };
    }

    public Pattern pattern() { return pattern; }
    /** Query rows. */
    public int length() { return n; }
    /** Position of the first query row. */
    public int queryBase() { return span.qBase(); }
    /** Position of the first key row. */
    public int keyBase() { return span.kBase(); }
    /** Key rows. */
    public int keys() { return span.tk(); }
    public int heads() { return heads; }
    public int kvHeads() { return kvHeads; }
    public boolean causal() { return causal; }

    /** Number of LSE-merged parts (LongNet pairs, sum terms). */
    public int parts() { return passes.size(); }

    /** (head, row) pairs that reach no key at all (they get O = 0, LSE = -inf). */
    public long unreachedRows() {
        for (Pass p : passes) if (p.reachesAllRows()) return 0;
        long missing = 0;
        Tile t = new Tile();
        boolean[] reached = new boolean[n];
        for (int h = 0; h < heads; h++) {
            java.util.Arrays.fill(reached, false);
            for (Pass p : passes)
                for (int ti = 0; ti < p.tiles(h); ti++) {
                    p.tile(h, ti, t);
                    for (int i = 0; i < t.queries.count(); i++) {
                        int pos = t.queries.pos(i);
                        if (keysOf(t, pos) > 0) reached[pos - span.qBase()] = true;
                    }
                }
            for (boolean r : reached) if (!r) missing++;
        }
        return missing;
    }

    /**
     * (query, key) pairs the pattern computes, counted with multiplicity (a key reached through
     * two parts counts twice), over all heads: the work the kernel does.
     */
    public long pairs() {
        long total = 0;
        Tile t = new Tile();
        for (Pass p : passes)
            for (int h = 0; h < heads; h++)
                for (int ti = 0; ti < p.tiles(h); ti++) {
                    p.tile(h, ti, t);
                    for (int i = 0; i < t.queries.count(); i++) total += keysOf(t, t.queries.pos(i));
                }
        return total;
    }

    /**
     * (query, key) slots the kernel computes: for every block of {@link TileOps#QB} query rows, the
     * real rows times the keys of every key block it visits (visible pairs plus the masked slots of
     * blocks the band cuts), where a block the band cuts counts each slice of
     * {@link FlashKernel#SLICE} keys on the query vectors that reach it; blocks of at most
     * {@link FlashKernel#ROW_BLOCK_MAX} rows, walked row by row, count their visible pairs.
     * {@link #pairs()} divided by this is the kernel's useful fraction.
     */
    public long computedPairs() {
        long total = 0;
        Tile t = new Tile();
        int qb = TileOps.QB, bk = TileOps.BK;
        int[] qpos = new int[qb], kpos = new int[bk];
        int[] hullLo = new int[(bk + FlashKernel.SLICE - 1) / FlashKernel.SLICE], hullHi = hullLo.clone();
        for (Pass p : passes)
            for (int h = 0; h < heads; h++)
                for (int ti = 0; ti < p.tiles(h); ti++) {
                    p.tile(h, ti, t);
                    for (int i0 = 0; i0 < t.queries.count(); i0 += qb) {
                        int n1 = Math.min(qb, t.queries.count() - i0);
                        if (n1 <= FlashKernel.ROW_BLOCK_MAX) {
                            // rows walked one by one: each reads exactly its own keys
                            for (int i = i0; i < i0 + n1; i++) total += keysOf(t, t.queries.pos(i));
                            continue;
                        }
                        int qmin = t.queries.pos(i0), qmax = t.queries.pos(i0 + n1 - 1);
                        int k0 = t.keys.lowerBound(qmin - t.hi), k1 = t.keys.lowerBound(qmax - t.lo + 1);
                        for (int kb = k0; kb < k1; kb += bk) {
                            int nk = Math.min(bk, k1 - kb);
                            long dmin = (long) qmin - t.keys.pos(kb + nk - 1), dmax = (long) qmax - t.keys.pos(kb);
                            if (dmax < t.lo || dmin > t.hi) continue;
                            if (dmin >= t.lo && dmax <= t.hi) {
                                total += (long) n1 * nk;        // a whole block
                                continue;
                            }
                            for (int i = 0; i < n1; i++) qpos[i] = t.queries.pos(i0 + i);
                            for (int j = 0; j < nk; j++) kpos[j] = t.keys.pos(kb + j);
                            if (!FlashKernel.hulls(qpos, n1, kpos, nk, t.lo, t.hi, hullLo, hullHi)) {
                                total += (long) n1 * nk;
                                continue;
                            }
                            for (int j = 0, sl = 0; j < nk; j += FlashKernel.SLICE, sl++)
                                total += (long) Math.max(0, Math.min(hullHi[sl], n1) - hullLo[sl]) * Math.min(FlashKernel.SLICE, nk - j);
                        }
                    }
                }
        return total;
    }

    // keys of tile t visible from the query at position pos
    private static int keysOf(Tile t, int pos) {
        return t.keys.lowerBound(pos - t.lo + 1) - t.keys.lowerBound(pos - t.hi);
    }

    /** True when a select-and-merge term of the pattern has {@code pos=selected} (it needs {@link #selectedPositions}). */
    public boolean movesPositions() { return movesPositions(pattern); }

    /**
     * This plan with its select-and-merge passes run as their runs (rows of an own block with the
     * same selection) instead of split by region and near band ({@link Pass#keyParts}): the row
     * kernels' own order of operations, for tests that compare bits with a one-row plan.
     */
    Plan keepRuns() {
        for (Pass p : passes) if (p instanceof SelectMergePass s) s.split = false;
        return this;
    }

    /** Whether a pass selects keys per query (select-and-merge): its tiles are mostly a row or two. */
    boolean selects() {
        for (Pass p : passes) if (p instanceof SelectMergePass) return true;
        return false;
    }

    /** True when p has a select-and-merge term (a call of its plan over keys held as arrays copies them transposed). */
    public static boolean selects(Pattern p) {
        return switch (p) {
            case Pattern.SelectMerge s -> true;
            case Pattern.Sum s -> s.terms().stream().anyMatch(Plan::selects);
            default -> false;
        };
    }

    /** True when a select-and-merge term of p has {@code pos=selected}. */
    public static boolean movesPositions(Pattern p) {
        return switch (p) {
            case Pattern.SelectMerge s -> s.positions() == Pattern.Positions.SELECTED;
            case Pattern.Sum s -> s.terms().stream().anyMatch(Plan::movesPositions);
            default -> false;
        };
    }

    /**
     * The layer's RoPE for select-and-merge's {@code pos=selected} terms: where each sequence index
     * was rotated (training sets it per sequence, as the positions change with CRD-NTK's offset) and
     * how to rotate; the rows of those terms move to their new positions in the kernel.
     */
    public Plan selectedPositions(SelectedPositions sp) {
        for (Pass p : passes) if (p instanceof SelectMergePass s) s.positions = sp;
        return this;
    }

    /** Bytes of data-dependent state (select-and-merge's chosen regions). */
    public long stateBytes() {
        long b = 0;
        for (Pass p : passes) b += p.stateBytes();
        return b;
    }

    /**
     * The regions select-and-merge chose for query row pos of head h (ascending), for the part-th
     * select-and-merge term of the pattern; after the forward pass only.
     */
    public int[] selection(int part, int head, int pos) {
        int seen = 0;
        for (Pass p : passes) {
            if (p instanceof SelectMergePass s && seen++ == part) return s.selection(head, pos);
        }
        throw new LongspanException("attention pattern '" + pattern.spec() + "' has no select-and-merge term #" + part);
    }

    /**
     * Computes what a data-dependent pattern (select-and-merge) needs from q [H,N,D] and k [Hkv,N,D]
     * of a whole sequence; no-op otherwise.
     */
    public void prepare(float[] q, float[] k, int d) {
        prepare(new FlashKernel.Problem(q, span.qBase(), n, KeyValues.of(k, k, span.kBase(), span.tk(), d), span.kBase(), span.tk(), heads, kvHeads, d, 1f));
    }

    void prepare(FlashKernel.Problem p) {
        for (Pass pass : passes) pass.prepare(p);
    }
}
