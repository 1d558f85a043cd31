package dev.longspan.mpi;

import dev.longspan.attention.AttentionOptions;
import dev.longspan.attention.Pattern;
import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The single-process side of {@link SequenceParallelAttention} (the P &gt; 1 side runs in {@link MpiLaunchTest}). */
class SequenceParallelAttentionTest {

    @ParameterizedTest(name = "N={0} over P={1}")
    @CsvSource({"203,4", "203,2", "8,3", "7,7", "100000,6"})
    void shardsAreContiguousCoverTheSequenceAndDifferByAtMostOneRow(int n, int ranks) {
        int next = 0, min = Integer.MAX_VALUE, max = 0;
        for (int j = 0; j < ranks; j++) {
            SequenceParallelAttention.Shard s = SequenceParallelAttention.shard(n, ranks, j);
            assertThat(s.start()).isEqualTo(next);
            next = s.end();
            min = Math.min(min, s.length());
            max = Math.max(max, s.length());
        }
        assertThat(next).isEqualTo(n);
        assertThat(max - min).isLessThanOrEqualTo(1);
    }

    @Test
    void onOneProcessEverySpecEqualsTheEngine() {
        List<String> failures = DistributedCheck.run(Communicator.solo(), 97, 4, 2, 8);
        assertThat(failures).isEmpty();
    }

    @Test
    void selectMergeIsRejectedWithOneClearLine() {
        float[] x = new float[4 * 8];
        assertThatThrownBy(() -> SequenceParallelAttention.forward(Communicator.solo(), x, x, x, 1, 1, 4, 8,
                Pattern.parse("selectmerge:region=2,top=2,merge=1"), AttentionOptions.DEFAULT))
                .isInstanceOf(LongspanException.class).hasMessageContaining("selectmerge is not supported across processes");
    }

    @Test
    void theComparisonCanFail() {
        List<String> failures = new ArrayList<>();
        DistributedCheck.compare("x", new float[]{1f, 2f}, new float[]{1f, 2.001f}, new float[]{1f, 2f}, failures);
        DistributedCheck.compare("lse", new float[]{Float.NEGATIVE_INFINITY}, new float[]{0f}, new float[]{1f}, failures);
        assertThat(failures).hasSize(2);
    }
}
