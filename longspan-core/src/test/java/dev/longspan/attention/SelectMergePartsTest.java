package dev.longspan.attention;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeSet;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Select-and-merge over many rows runs split ({@link SelectMergePass#keyParts}): the selected
 * regions region by region (the rows of an own block that chose a region, against it) and each own
 * block's near band. The split must hold, for every head and row, exactly the keys (and biases) of
 * the row's run, each once; tiles of different groups must not share rows; and the forward and
 * backward must equal the runs' within float noise, for whole sequences and for a prompt's chunk
 * against a cache's region summaries.
 */
class SelectMergePartsTest {

    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        String[] specs = {
                "selectmerge:region=64,top=5,merge=1,local=3,bias=-4",      // the bundled model's
                "selectmerge:region=8,top=6,merge=2",
                "selectmerge:region=16,top=5,merge=1,score=max",
                "selectmerge:region=8,top=6,merge=2,local=2,score=mean,bias=-1.5",
                "selectmerge:region=5,top=4,merge=1,local=1",
                "selectmerge:region=7,top=3,merge=3",                       // top = merge: no selected regions, the band alone
                "window:size=9+selectmerge:region=4,top=4,merge=1,bias=-3"};
        int[] dims = {32, 8, 64, 80, 24, 16, 40};
        for (int i = 0; i < specs.length; i++) {
            out.add(Arguments.of(specs[i], dims[i], 0));
            out.add(Arguments.of(specs[i], dims[(i + 3) % dims.length], 173));   // a chunk from position 173 on
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{0} D={1} from={2}")
    @MethodSource("cases")
    void partsHoldEachRowsKeysOnce(String spec, int d, int from) {
        Setup st = Setup.of(spec, d, from);
        for (int pi = 0; pi < st.split.passes.size(); pi++) {
            Pass whole = st.runs.passes.get(pi);
            List<Pass> parts = st.split.passes.get(pi).keyParts();
            if (whole instanceof SelectMergePass) assertThat(parts).as("split").hasSizeBetween(1, 2).doesNotContain(st.split.passes.get(pi));
            for (int h = 0; h < st.heads; h++) {
                Map<Integer, List<Long>> expected = visible(List.of(whole), h), actual = visible(parts, h);
                assertThat(actual.keySet()).as("rows of head %d", h).isEqualTo(expected.keySet());
                for (int row : expected.keySet())
                    assertThat(actual.get(row)).as("head %d row %d: keys and biases", h, row).isEqualTo(expected.get(row));
                for (Pass part : parts) disjointAcrossGroups(part, h);
            }
        }
    }

    @ParameterizedTest(name = "{0} D={1} from={2}")
    @MethodSource("cases")
    void splitForwardAndBackwardAreTheRunsWithinNoise(String spec, int d, int from) {
        Setup st = Setup.of(spec, d, from);
        int heads = st.heads, tq = st.n - from;
        float[] dO = AttentionTest.random(st.r, heads * tq * d, 1);
        AttentionResult a = st.forward(st.split), b = st.forward(st.runs);
        assertClose(a.o(), b.o(), 2e-5f, "o");
        assertClose(a.lse(), b.lse(), 2e-5f, "lse");
        AttentionGradients ga = backward(st, a, dO), gb = backward(st, b, dO);
        assertClose(ga.dq(), gb.dq(), 1e-4f, "dq");
        assertClose(ga.dk(), gb.dk(), 1e-4f, "dk");
        assertClose(ga.dv(), gb.dv(), 1e-4f, "dv");
    }

    private static AttentionGradients backward(Setup st, AttentionResult res, float[] dO) {
        int heads = st.heads, n = st.n, d = st.d, tq = n - st.from;
        AttentionGradients g = new AttentionGradients(new float[heads * tq * d], new float[heads * n * d], new float[heads * n * d]);
        Attention.backward(res, st.q, st.k, st.v, dO, g.dq(), g.dk(), g.dv());
        return g;
    }

    // per query row of head h: the (key, bias) pairs its tiles in the passes let it see, sorted
    private static Map<Integer, List<Long>> visible(List<Pass> passes, int h) {
        Map<Integer, List<Long>> out = new HashMap<>();
        Tile t = new Tile();
        for (Pass p : passes)
            for (int ti = 0; ti < p.tiles(h); ti++) {
                p.tile(h, ti, t);
                assertThat(t.queries.count()).isEqualTo(p.queryRows(h, ti));
                for (int i = 0; i < t.queries.count(); i++) {
                    int q = t.queries.pos(i);
                    List<Long> keys = out.computeIfAbsent(q, x -> new ArrayList<>());
                    for (int j = 0; j < t.keys.count(); j++)
                        if (t.visible(q, t.keys.pos(j))) keys.add((long) t.keys.pos(j) << 32 | Float.floatToIntBits(t.bias(j)) & 0xffffffffL);
                }
            }
        for (List<Long> keys : out.values()) keys.sort(null);
        out.values().removeIf(List::isEmpty);
        return out;
    }

    // a grouped pass's tiles come group by group, and two groups never share a row (they run in parallel)
    private static void disjointAcrossGroups(Pass p, int h) {
        Map<Integer, Integer> groupOfRow = new HashMap<>();
        TreeSet<Integer> finished = new TreeSet<>();
        Tile t = new Tile();
        int last = Integer.MIN_VALUE;
        for (int ti = 0; ti < p.tiles(h); ti++) {
            int g = p.grouped() ? p.group(h, ti) : ti;
            if (g != last) {
                assertThat(finished).as("group %d comes back", g).doesNotContain(g);
                if (last != Integer.MIN_VALUE) finished.add(last);
                last = g;
            }
            p.tile(h, ti, t);
            for (int i = 0; i < t.queries.count(); i++) {
                Integer before = groupOfRow.put(t.queries.pos(i), g);
                assertThat(before == null || before == g).as("row %d in groups %s and %d", t.queries.pos(i), before, g).isTrue();
            }
        }
    }

    private static void assertClose(float[] a, float[] b, float tol, String what) {
        assertThat(a).hasSameSizeAs(b);
        for (int i = 0; i < a.length; i++) {
            if (a[i] == b[i]) continue;     // (both -inf for a row that reaches nothing)
            assertThat(Math.abs(a[i] - b[i])).as("%s[%d]: %s vs %s", what, i, a[i], b[i]).isLessThanOrEqualTo(tol * (1 + Math.abs(b[i])));
        }
    }

    /** Random q, k, v; the same plan split and kept as runs, prepared by a forward over the queries from position `from`. */
    record Setup(int heads, int n, int d, int from, SplittableRandom r, float[] q, float[] k, float[] v, Plan split, Plan runs,
                 List<RegionSummaries> summaries) {
        static Setup of(String spec, int d, int from) {
            int heads = 2, n = 1100;
            SplittableRandom r = new SplittableRandom(spec.hashCode() * 31L + d + from);
            Pattern pattern = Pattern.parse(spec);
            float[] q = AttentionTest.random(r, heads * (n - from) * d, 2), k = AttentionTest.random(r, heads * n * d, 2),
                    v = AttentionTest.random(r, heads * n * d, 1);
            List<RegionSummaries> summaries = null;
            if (from > 0) {                 // a prompt's chunk: the cache's summaries of the keys so far
                summaries = RegionSummaries.forTerms(pattern, heads, d);
                for (RegionSummaries s : summaries) s.append(k, n);
            }
            Setup st = new Setup(heads, n, d, from, r, q, k, v, plan(pattern, heads, n, from, summaries),
                    plan(pattern, heads, n, from, summaries).keepRuns(), summaries);
            st.forward(st.split);            // the selection is made in the forward
            st.forward(st.runs);
            return st;
        }

        private static Plan plan(Pattern pattern, int heads, int n, int from, List<RegionSummaries> summaries) {
            return from == 0 ? Plan.of(pattern, n, heads, heads, true) : Plan.of(pattern, heads, heads, true, from, n - from, 0, n, summaries);
        }

        AttentionResult forward(Plan plan) {
            return Attention.forward(q, KeyValues.of(k, v, 0, n, d), d, plan, AttentionOptions.DEFAULT,
                    new float[heads * (n - from) * d], new float[heads * (n - from)]);
        }
    }
}
