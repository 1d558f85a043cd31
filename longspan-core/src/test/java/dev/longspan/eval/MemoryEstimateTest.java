package dev.longspan.eval;

import dev.longspan.io.Json;
import dev.longspan.model.ModelConfig;
import dev.longspan.train.TrainConfig;
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
                    .isEqualTo(MemoryEstimate.inference(c, 1 << 20, dev.longspan.model.InferenceSession.MAX_CHUNK, 1, false));
        }
    }

    @Test
    void halfPrecisionAndBoundedPatternsKeepLessCache() {
        ModelConfig dense = bundled("dense", "dense"), window = bundled("window:size=64", "window:size=64");
        int n = 1 << 20;
        long f32 = MemoryEstimate.inference(dense, n, 1, 1, false), f16 = MemoryEstimate.inference(dense, n, 1, 1, true);
        assertThat(f32 - f16).isEqualTo(2L * 2 * 2 * 64 * n);   // 2 layers × (k, v) × 2 bytes saved × kv_dim × n
        assertThat(MemoryEstimate.inference(window, n, 1, 1, false)).isLessThan(f16);
    }

    TrainConfig train(int seqLen, boolean recompute) {
        String json = """
                {"model": {"vocab_size": 259, "dim": 64, "layers": 4, "heads": 4, "ffn_dim": 192},
                 "train": {"seq_len": %d, "recompute": %b}}""".formatted(seqLen, recompute);
        return TrainConfig.fromJson(Json.parseObject(json, "t.json"), "t.json");
    }

    @Test
    void trainingGrowsWithTheSequenceAndRecomputationSavesLayers() {
        assertThat(MemoryEstimate.training(train(4096, false))).isGreaterThan(MemoryEstimate.training(train(1024, false)));
        assertThat(MemoryEstimate.training(train(4096, true))).isLessThan(MemoryEstimate.training(train(4096, false)));
    }

    @Test
    void aHundredMillionTokenSequenceIsRefusedBeforeAnyAllocation() {
        assertThatThrownBy(() -> MemoryEstimate.requireTraining(train(100_000_000, false), "training at train.seq_len 100000000"))
                .isInstanceOf(LongspanException.class).hasMessageStartingWith("training at train.seq_len 100000000: one buffer would hold");
        assertThatThrownBy(() -> MemoryEstimate.requireInference(bundled("dense", "dense"), 1 << 30, 1 << 30, 1, false, "--lengths"))
                .isInstanceOf(LongspanException.class);
    }

    @Test
    void workWithinTheHeapPasses() {
        MemoryEstimate.requireTraining(train(256, false), "t");
        MemoryEstimate.requireInference(bundled("dense", "dense"), 4096, 4096, 1, false, "x");
    }
}
