package dev.longspan.attention;

import dev.longspan.util.Log;
import dev.longspan.util.LongspanException;

import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A pattern bound to a problem shape (N positions, H query heads, Hkv key/value heads, causal or
 * not): its passes of tiles, and after the forward pass any data-dependent state (the regions
 * select-and-merge chose), which the backward pass reuses.
 */
public final class Plan {
    private static final Set<String> WARNED = ConcurrentHashMap.newKeySet();

    final Pattern pattern;
    final int n, heads, kvHeads;
    final boolean causal;
    final List<Pass> passes;

    private Plan(Pattern pattern, int n, int heads, int kvHeads, boolean causal) {
        this.pattern = pattern;
        this.n = n;
        this.heads = heads;
        this.kvHeads = kvHeads;
        this.causal = causal;
        this.passes = TilePlans.passes(pattern, n, heads, causal);
    }

    /** Binds pattern to a shape; checks the configuration and warns about rows no pair reaches. */
    public static Plan of(Pattern pattern, int n, int heads, int kvHeads, boolean causal) {
        if (n < 1) throw new LongspanException("attention: sequence length must be at least 1, got " + n);
        if (heads < 1 || kvHeads < 1 || heads % kvHeads != 0) {
            throw new LongspanException("attention: query heads (" + heads + ") must be a positive multiple of key/value heads (" + kvHeads + ")");
        }
        if (!causal && containsSelectMerge(pattern)) {
            throw new LongspanException("attention pattern '" + pattern.spec() + "': selectmerge is causal only (no bidirectional form)");
        }
        Plan plan = new Plan(pattern, n, heads, kvHeads, causal);
        long unreached = plan.unreachedRows();
        if (unreached > 0 && WARNED.add(pattern.spec() + "|" + n + "|" + heads + "|" + causal)) {
            Log.warn("attention pattern '" + pattern.spec() + "' reaches no key from " + unreached + " of " + (long) n * heads
                    + " (head, row) pairs at N=" + n + ", H=" + heads + ": those rows get O = 0 and LSE = -inf"
                    + " (a row of head h is reached only by pairs whose offset for h matches its residue; add a pair with r=1)");
        }
        return plan;
    }

    private static boolean containsSelectMerge(Pattern p) {
        return switch (p) {
            case Pattern.SelectMerge s -> true;
            case Pattern.Sum s -> s.terms().stream().anyMatch(Plan::containsSelectMerge);
            default -> false;
        };
    }

    public Pattern pattern() { return pattern; }
    public int length() { return n; }
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
                        if (keysOf(t, pos) > 0) reached[pos] = true;
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
     * blocks the band cuts). {@link #pairs()} divided by this is the kernel's useful fraction.
     */
    public long computedPairs() {
        long total = 0;
        Tile t = new Tile();
        int qb = TileOps.QB, bk = TileOps.BK;
        for (Pass p : passes)
            for (int h = 0; h < heads; h++)
                for (int ti = 0; ti < p.tiles(h); ti++) {
                    p.tile(h, ti, t);
                    for (int i0 = 0; i0 < t.queries.count(); i0 += qb) {
                        int n1 = Math.min(qb, t.queries.count() - i0);
                        int qmin = t.queries.pos(i0), qmax = t.queries.pos(i0 + n1 - 1);
                        int k0 = t.keys.lowerBound(qmin - t.hi), k1 = t.keys.lowerBound(qmax - t.lo + 1);
                        for (int kb = k0; kb < k1; kb += bk) {
                            int nk = Math.min(bk, k1 - kb);
                            long dmin = (long) qmin - t.keys.pos(kb + nk - 1), dmax = (long) qmax - t.keys.pos(kb);
                            if (dmax < t.lo || dmin > t.hi) continue;
                            total += (long) n1 * nk;
                        }
                    }
                }
        return total;
    }

    // keys of tile t visible from the query at position pos
    private static int keysOf(Tile t, int pos) {
        return t.keys.lowerBound(pos - t.lo + 1) - t.keys.lowerBound(pos - t.hi);
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

    /** Computes what a data-dependent pattern (select-and-merge) needs from q [H,N,D] and k [Hkv,N,D]; no-op otherwise. */
    public void prepare(float[] q, float[] k, int d) {
        for (Pass p : passes) p.prepare(q, k, d);
    }
}
