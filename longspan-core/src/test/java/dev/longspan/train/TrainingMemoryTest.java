package dev.longspan.train;

import dev.longspan.io.Json;
import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class TrainingMemoryTest {
    TrainConfig train(int seqLen, boolean recompute) {
        String json = """
                {"model": {"vocab_size": 259, "dim": 64, "layers": 4, "heads": 4, "ffn_dim": 192},
                 "train": {"seq_len": %d, "recompute": %b}}""".formatted(seqLen, recompute);
        return TrainConfig.fromJson(Json.parseObject(json, "t.json"), "t.json");
    }

    @Test
    void trainingGrowsWithTheSequenceAndRecomputationSavesLayers() {
        assertThat(TrainingMemory.estimate(train(4096, false))).isGreaterThan(TrainingMemory.estimate(train(1024, false)));
        assertThat(TrainingMemory.estimate(train(4096, true))).isLessThan(TrainingMemory.estimate(train(4096, false)));
    }

    @Test
    void aHundredMillionTokenSequenceIsRefusedBeforeAnyAllocation() {
        assertThatThrownBy(() -> TrainingMemory.require(train(100_000_000, false), "training at train.seq_len 100000000"))
                .isInstanceOf(LongspanException.class).hasMessageStartingWith("training at train.seq_len 100000000: one buffer would hold");
    }

    @Test
    void aRunWithinTheHeapPasses() {
        TrainingMemory.require(train(256, false), "t");
    }
}
