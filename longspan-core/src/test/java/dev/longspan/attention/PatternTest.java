package dev.longspan.attention;

import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class PatternTest {

    @ParameterizedTest
    @ValueSource(strings = {"dense", "window:size=256", "block:size=64", "dilated:w=2048,8192;r=1,4",
            "dilated:w=16;r=4;offsets=blocks", "selectmerge:region=16,top=512,merge=64,score=bound,beam=448",
            "selectmerge:region=64,top=5,merge=1,score=bound,beam=all", "selectmerge:region=64,top=5,merge=1,score=bound,beam=9",
            "selectmerge:region=64,top=5,merge=1,score=max", "selectmerge:region=8,top=3,merge=2,score=mean",
            "selectmerge:region=64,top=5,merge=1,score=bound,beam=4,pos=selected", "selectmerge:region=8,top=3,merge=2,score=max,pos=selected",
            "selectmerge:region=64,top=5,merge=1,score=bound,beam=4,bias=-2.0", "selectmerge:region=8,top=3,merge=2,score=mean,pos=selected,bias=0.5",
            "selectmerge:region=64,top=5,merge=1,local=3,score=bound,beam=4,bias=-2.0", "selectmerge:region=8,top=3,merge=2,local=1,score=max,pos=selected",
            "window:size=256+dilated:w=8,16;r=2,4", "dense+block:size=3+window:size=1"})
    void canonicalSpecsRoundTrip(String spec) {
        Pattern p = Pattern.parse(spec);
        assertThat(p.spec()).isEqualTo(spec);
        assertThat(Pattern.parse(p.spec())).isEqualTo(p);
    }

    @Test
    void parsesFlexibleForms() {
        assertThat(Pattern.parse(" Window : size = 7 ")).isEqualTo(new Pattern.Window(7));
        assertThat(Pattern.parse("selectmerge:merge=2;top=4;region=3")).isEqualTo(new Pattern.SelectMerge(3, 4, 2));
        assertThat(Pattern.parse("selectmerge:merge=2;top=4;region=3;score=MAX"))
                .isEqualTo(new Pattern.SelectMerge(3, 4, 2, Pattern.RegionScore.MAX));
        // bound descends with a beam of top − merge unless told otherwise
        assertThat(Pattern.parse("selectmerge:region=3,top=4,merge=1")).isEqualTo(new Pattern.SelectMerge(3, 4, 1, Pattern.RegionScore.BOUND, 3));
        assertThat(Pattern.parse("selectmerge:region=3,top=4,merge=1,beam=ALL")).isEqualTo(new Pattern.SelectMerge(3, 4, 1, Pattern.RegionScore.BOUND, 0));
        assertThat(Pattern.parse("selectmerge:region=3,top=4,merge=1,pos=Selected"))
                .isEqualTo(new Pattern.SelectMerge(3, 4, 1, Pattern.RegionScore.BOUND, 3, Pattern.Positions.SELECTED));
        assertThat(Pattern.parse("selectmerge:region=3,top=4,merge=1,pos=original")).isEqualTo(Pattern.parse("selectmerge:region=3,top=4,merge=1"));
        assertThat(Pattern.parse("selectmerge:region=3,top=4,merge=1,bias=-2")).isEqualTo(
                new Pattern.SelectMerge(3, 4, 1, Pattern.RegionScore.BOUND, 3, Pattern.Positions.ORIGINAL, -2f));
        assertThat(Pattern.parse("selectmerge:region=3,top=4,merge=1,bias=0")).isEqualTo(Pattern.parse("selectmerge:region=3,top=4,merge=1"));
        assertThat(Pattern.parse("selectmerge:local=2,region=3,top=4,merge=1")).isEqualTo(
                new Pattern.SelectMerge(3, 4, 1, Pattern.RegionScore.BOUND, 3, Pattern.Positions.ORIGINAL, 0f, 2));
        assertThat(Pattern.parse("selectmerge:region=3,top=4,merge=1,local=0")).isEqualTo(Pattern.parse("selectmerge:region=3,top=4,merge=1"));
        assertThat(Pattern.parse("dilated:r=1,2;w=4,8;offsets=torchscale"))
                .isEqualTo(new Pattern.Dilated(new int[]{4, 8}, new int[]{1, 2}, true));
        assertThat(Pattern.parse("dense+window:size=2")).isEqualTo(new Pattern.Sum(List.of(new Pattern.Dense(), new Pattern.Window(2))));
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "''|empty spec",
            "windw:size=3|unknown pattern 'windw'",
            "window|needs size=N",
            "window:size=0|size must be a positive integer, got '0'",
            "window:size=abc|got 'abc'",
            "window:width=3|unknown parameter 'width'",
            "block:size|'size' in 'block:size' is not key=value",
            "dense:size=3|'dense' takes no parameters",
            "dilated:w=4,8;r=1|w has 2 values but r has 1",
            "dilated:w=4,8|needs w=LIST;r=LIST",
            "dilated:w=4,-8;r=1,2|got '-8'",
            "dilated:w=4;r=1;offsets=odd|offsets must be mod",
            "selectmerge:region=4,top=2|needs region=R,top=T,merge=M",
            "selectmerge:region=4,top=2,merge=1,bias=x|bias must be a finite number, got 'x'",
            "selectmerge:region=4,top=2,merge=1,bias=NaN|bias must be a finite number, got 'NaN'",
            "selectmerge:region=4,top=2,merge=1,bias=-Infinity|bias must be a finite number",
            "selectmerge:region=4,top=2,merge=3|merge=3 exceeds top=2",
            "selectmerge:region=4,top=2,merge=1,local=-1|local must be a non-negative integer, got '-1'",
            "selectmerge:region=4,top=2,merge=1,local=near|local must be a non-negative integer, got 'near'",
            "selectmerge:region=4,top=2,merge=1,score=top|score must be bound, max or mean, got 'top'",
            "selectmerge:region=4,top=2,merge=1,pos=near|pos must be original or selected, got 'near'",
            "selectmerge:region=4,top=5,merge=1,beam=3|beam=3 is below top-merge=4",
            "selectmerge:region=4,top=5,merge=1,beam=0|beam must be a positive integer",
            "selectmerge:region=4,top=5,merge=1,score=mean,beam=4|beam applies to score=bound only",
            "dense++window:size=2|empty term",
            "dense+|empty term"})
    void badSpecsNameTheBadPart(String spec, String message) {
        assertThatThrownBy(() -> Pattern.parse(spec)).isInstanceOf(LongspanException.class).hasMessageContaining(message);
    }

    @Test
    void dilatedHeadOffsetRules() {
        Pattern.Dilated paper = new Pattern.Dilated(new int[]{16}, new int[]{4}, false);
        Pattern.Dilated blocks = new Pattern.Dilated(new int[]{16}, new int[]{4}, true);
        int[] p = new int[8], b = new int[8];
        for (int h = 0; h < 8; h++) {
            p[h] = paper.offset(0, h, 8);
            b[h] = blocks.offset(0, h, 8);
        }
        assertThat(p).containsExactly(0, 1, 2, 3, 0, 1, 2, 3);
        assertThat(b).containsExactly(0, 0, 1, 1, 2, 2, 3, 3);
        // torchscale pads H=12 up to 16 heads for r=16: offsets 0..11, residues 12..15 unused
        Pattern.Dilated wide = new Pattern.Dilated(new int[]{16}, new int[]{16}, true);
        for (int h = 0; h < 12; h++) assertThat(wide.offset(0, h, 12)).isEqualTo(h);
    }

    @Test
    void selectMergeHasNoBidirectionalForm() {
        assertThatThrownBy(() -> Plan.of(Pattern.parse("dense+selectmerge:region=2,top=2,merge=1"), 10, 1, 1, false))
                .isInstanceOf(LongspanException.class).hasMessageContaining("causal only");
    }

    @Test
    void unreachedRowsAreCounted() {
        // r=4: each head keeps only its own residue, so 3 of every 4 rows of each head get nothing
        Plan plan = Plan.of(Pattern.parse("dilated:w=8;r=4"), 16, 2, 1, true);
        assertThat(plan.unreachedRows()).isEqualTo(2 * 12);
        assertThat(Plan.of(Pattern.parse("dilated:w=8,16;r=4,1"), 16, 2, 1, true).unreachedRows()).isZero();
        // reach is per head: with r=2 head 0 keeps the even rows only, head 1 the odd ones
        assertThat(Plan.of(Pattern.parse("dilated:w=8;r=2"), 16, 2, 1, true).unreachedRows()).isEqualTo(16);
    }

    @Test
    void computedPairsOfDenseCausalAreTheBlockTriangleWithSlicedDiagonals() {
        // N = 128 in blocks of QB queries (QB follows the vector width): a block whose first row is
        // i0 visits the keys 0..i0+rows-1 in key blocks of BK. A key block every row sees is computed
        // whole (rows × keys); one the diagonal cuts is computed in slices of SLICE keys, each on the
        // query vectors from the first row that sees the slice's first key on (causal: row ≥ key), or
        // on the whole block when that is three quarters of it or more.
        // With QB = BK = 64 and slices of 16: each diagonal block 16·(64+64+32+16), the second query block's first key block 64·64.
        int n = 128, qb = TileOps.QB, bk = TileOps.BK, lanes = TileOps.LANES, slice = FlashKernel.SLICE;
        long expected = 0;
        for (int i0 = 0; i0 < n; i0 += qb) {
            int rows = Math.min(qb, n - i0), end = i0 + rows;
            for (int kb = 0; kb < end; kb += bk) {
                int nk = Math.min(bk, end - kb);
                if (kb + nk - 1 <= i0) {
                    expected += (long) rows * nk;
                    continue;
                }
                for (int j = 0; j < nk; j += slice) {
                    int lo = Math.max(0, kb + j - i0) / lanes * lanes;
                    if (rows == qb && 4 * (rows - lo) >= 3 * qb) lo = 0;    // three vectors of four: the whole block
                    expected += (long) (rows - lo) * Math.min(slice, nk - j);
                }
            }
        }
        Plan plan = Plan.of(Pattern.parse("dense"), n, 1, 1, true);
        assertThat(plan.computedPairs()).isEqualTo(expected);
        assertThat(plan.pairs()).isEqualTo(128L * 129 / 2);
        if (qb == 64 && bk == 64 && slice == 16) assertThat(expected).isEqualTo(64L * 64 + 2L * 16 * (64 + 64 + 32 + 16));
    }

    @Test
    void pairCountsMatchTheCountMatrix() {
        for (String spec : new String[]{"dense", "window:size=5", "block:size=7", "dilated:w=8,32;r=2,3", "window:size=3+dense"}) {
            for (boolean causal : new boolean[]{true, false}) {
                Plan plan = Plan.of(Pattern.parse(spec), 37, 3, 1, causal);
                long expect = 0;
                for (int[] c : AttentionReference.counts(plan)) for (int x : c) expect += x;
                assertThat(plan.pairs()).as(spec + " causal=" + causal).isEqualTo(expect);
                assertThat(plan.computedPairs()).isGreaterThanOrEqualTo(expect).isLessThanOrEqualTo((long) plan.parts() * 3 * 37 * 37);
            }
        }
    }
}
