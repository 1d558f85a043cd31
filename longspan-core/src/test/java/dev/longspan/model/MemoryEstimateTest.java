package dev.longspan.model;

import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class MemoryEstimateTest {
    static final long GB = 1_000_000_000L;

    // the bundled model's shape (models/longspan-passkey)
    static ModelConfig bundled(String... attention) {
        return new ModelConfig(259, 64, 2, 4, 4, 16, 192, 1e-5f, true, "kind=crd-ntk,base=10000,period=256,offset=256,seed=1",
                List.of(attention), "byte", 256);
    }

    @Test
    void aMillionTokenPromptCostsItsKvCacheAndOnePartsActivations() {
        // the session feeds a prompt in parts of MAX_CHUNK tokens: a 1M-token prompt of the bundled
        // model holds the full cache of its long-range layer (1M × 64 × (k, v) × 4 bytes = 512 MiB),
        // a ring for its window layer, and one part's activations, whatever the prompt's length
        for (String pattern : new String[]{"dense", "selectmerge:region=64,top=16,merge=4"}) {
            ModelConfig c = bundled("window:size=64", pattern);
            long est = MemoryEstimate.inference(c, 1 << 20, 1 << 20, 1, false);
            assertThat(est).as(pattern).isBetween(512L << 20, 600L << 20)
                    .isEqualTo(MemoryEstimate.inference(c, 1 << 20, InferenceSession.MAX_CHUNK, 1, false));
        }
    }

    @Test
    void aTokenShiftModelAlsoKeepsItsTableAndOneTokenPerPosition() {
        // the shipped model (token_shift since stage 35, two tables since stage 37): each previous-token
        // table (259 × 64 floats) and the session's token history (an int per position: 16 MiB at 4M)
        ModelConfig c = bundled("window:size=64", "selectmerge:region=64,top=5,merge=1,local=3");
        int n = 1 << 22;
        long without = MemoryEstimate.inference(c, n, InferenceSession.MAX_CHUNK, 1, false);
        long with = MemoryEstimate.inference(c.withTokenShift(1), n, InferenceSession.MAX_CHUNK, 1, false);
        assertThat(with - without).isEqualTo(4L * 259 * 64 + 4L * n);
        long two = MemoryEstimate.inference(c.withTokenShift(2), n, InferenceSession.MAX_CHUNK, 1, false);
        assertThat(two - without).isEqualTo(2 * 4L * 259 * 64 + 4L * n);
    }

    @Test
    void halfPrecisionAndBoundedPatternsKeepLessCache() {
        ModelConfig dense = bundled("dense", "dense"), window = bundled("window:size=64", "window:size=64");
        int n = 1 << 20;
        long f32 = MemoryEstimate.inference(dense, n, 1, 1, false), f16 = MemoryEstimate.inference(dense, n, 1, 1, true);
        assertThat(f32 - f16).isEqualTo(2L * 2 * 2 * 64 * n);   // 2 layers × (k, v) × 2 bytes saved × kv_dim × n
        assertThat(MemoryEstimate.inference(window, n, 1, 1, false)).isLessThan(f16);
    }

    @Test
    void aSelectingLayerAddsItsTransposedKeysAndValuesUpToTheCap() {
        ModelConfig window = bundled("window:size=64", "window:size=64"), select = bundled("window:size=64", "selectmerge:region=64,top=4,merge=1");
        int t = 4096;
        // the kernel copies one layer's k and v (kv_dim 64 × T floats each) transposed
        assertThat(MemoryEstimate.trainingPass(select, t, false) - MemoryEstimate.trainingPass(window, t, false)).isEqualTo(2L * 4 * 64 * t);
        int beyond = (1 << 24) / 64 + 1;   // past 2^24 floats the rows paths read k and v in place
        assertThat(MemoryEstimate.trainingPass(select, beyond, false)).isEqualTo(MemoryEstimate.trainingPass(window, beyond, false));
    }

    @Test
    void aHundredMillionTokenSequenceIsRefusedBeforeAnyAllocation() {
        assertThatThrownBy(() -> MemoryEstimate.requireTrainingPass(bundled("dense", "dense"), 100_000_000, false, "a training step at --seq 100000000"))
                .isInstanceOf(LongspanException.class).hasMessageStartingWith("a training step at --seq 100000000: one buffer would hold");
        assertThatThrownBy(() -> MemoryEstimate.requireInference(bundled("dense", "dense"), 1 << 30, 1 << 30, 1, false, "--lengths"))
                .isInstanceOf(LongspanException.class);
    }

    @Test
    void workWithinTheHeapPasses() {
        MemoryEstimate.requireTrainingPass(bundled("dense", "dense"), 256, false, "t");
        MemoryEstimate.requireInference(bundled("dense", "dense"), 4096, 4096, 1, false, "x");
    }
}
