package dev.longspan.train;

import dev.longspan.format.LongspanFormat;
import dev.longspan.io.Json;
import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** CRD-NTK in training: cyclic positions, random offsets from a growing range, a growing NTK factor. */
class CrdNtkTrainingTest {
    @TempDir
    Path dir;

    static final String ROPE = "kind=crd-ntk,base=10000,factor=2,period=48,offset=16,grow=6,offset_max=64,seed=3";

    TrainConfig config(String rope, String extraTrain) {
        String json = """
                {"model": {"vocab_size": 259, "dim": 32, "layers": 2, "heads": 2, "kv_heads": 2, "ffn_dim": 64,
                           "rope": "%s", "attention": "dense", "context_length": 32},
                 "train": {"seq_len": 32, "batch": 2, "steps": 24, "lr": 0.01, "min_lr": 0.001, "warmup": 2,
                           "weight_decay": 0.0, "eval_every": 6, "eval_windows": 2, "checkpoint_every": 6, "seed": 42,
                           "held_out": 0.2 %s}}""".formatted(rope, extraTrain);
        return TrainConfig.fromJson(Json.parseObject(json, "crd.json"), "crd.json");
    }

    static final String GROWTH = ", \"crd_ntk\": {\"factor_grow\": 8, \"factor_max\": 8}";

    Path corpus() throws IOException {
        return Files.writeString(dir.resolve("text.txt"), TrainerTest.TEXT.repeat(8));
    }

    @Test
    void aShortRunUsesEveryPartOnItsScheduleAndLearns() throws IOException {
        TrainConfig tc = config(ROPE, GROWTH);
        try (TextCorpus c = new TextCorpus(List.of(corpus()), 0.2)) {
            List<Double> losses = new java.util.ArrayList<>();
            Trainer t = new Trainer(tc, c, dir.resolve("run"), new Trainer.Listener() {
                @Override public void onStep(Trainer.StepReport r) { losses.add(r.loss()); }
            });
            t.start(false);
            // the positions a step trains on: (off + i) mod 48, off uniform in [0, min(64, 16·2^floor(step/6)))
            for (long s = 0; s < 24; s++) {
                long range = Math.min(64, 16L << (s / 6));
                for (int micro = 0; micro < 2; micro++) {
                    long[] pos = t.trainingPositions(s, micro, 32);
                    long off = pos[0];
                    assertThat(off).isBetween(0L, Math.min(range, 48) - 1);
                    for (int i = 0; i < 32; i++) assertThat(pos[i]).isEqualTo(Math.floorMod(off + i, 48L));
                }
                // the NTK factor: 2, then doubling every 8 steps up to 8
                assertThat(t.ropeAt(s).factor()).isEqualTo(Math.min(8, 2 << (s / 8)));
                assertThat(t.ropeAt(s).period()).isEqualTo(48);
            }
            t.run();
            assertThat(losses).hasSize(24).allMatch(Double::isFinite);
            double first = losses.subList(0, 4).stream().mapToDouble(x -> x).average().orElseThrow();
            double last = losses.subList(20, 24).stream().mapToDouble(x -> x).average().orElseThrow();
            assertThat(last).isLessThan(first * 0.8);
        }
        // the model directory runs with the factor of its last step; the checkpoint keeps the config's
        assertThat(LongspanFormat.read(dir.resolve("run")).config.rope().factor()).isEqualTo(8);
        assertThat(Checkpoint.load(dir.resolve("run")).model().rope().factor()).isEqualTo(2);
    }

    @Test
    void theGrowingFactorChangesTrainingAndResumesToTheBit() throws IOException {
        Path text = corpus();
        TrainConfig grow = config(ROPE, GROWTH), fixed = config(ROPE, "");
        float[] straight, without;
        try (TextCorpus c = new TextCorpus(List.of(text), 0.2)) {
            Trainer t = new Trainer(grow, c, dir.resolve("a"), new Trainer.Listener() {});
            t.start(false);
            t.run();
            straight = t.model().params.clone();
            Trainer f = new Trainer(fixed, c, dir.resolve("f"), new Trainer.Listener() {});
            f.start(false);
            f.run();
            without = f.model().params.clone();
        }
        assertThat(without).isNotEqualTo(straight);
        try (TextCorpus c = new TextCorpus(List.of(text), 0.2)) {
            // stopped at step 6, before the factor's first doubling at step 8; resumed across it
            Trainer t = new Trainer(grow, c, dir.resolve("b"), new Trainer.Listener() {});
            t.start(false);
            t.run(6);
        }
        try (TextCorpus c = new TextCorpus(List.of(text), 0.2)) {
            Trainer t = new Trainer(grow, c, dir.resolve("b"), new Trainer.Listener() {});
            t.start(true);
            t.run();
            assertThat(t.model().params).containsExactly(straight);
        }
    }

    @Test
    void configErrorsNameTheField() {
        TrainConfig tc = config(ROPE, GROWTH);
        assertThat(tc.factorGrowth().every()).isEqualTo(8);
        assertThat(TrainConfig.fromJson(Json.parseObject(Json.write(tc.toJson()), "again"), "again").factorGrowth()).isEqualTo(tc.factorGrowth());
        assertThatThrownBy(() -> config("kind=rope,base=10000", GROWTH)).isInstanceOf(LongspanException.class)
                .hasMessageContaining("train.crd_ntk").hasMessageContaining("crd-ntk");
        assertThatThrownBy(() -> config(ROPE, ", \"crd_ntk\": {\"factor_grow\": 0, \"factor_max\": 8}"))
                .hasMessageContaining("train.crd_ntk").hasMessageContaining("factor_grow");
        assertThatThrownBy(() -> config(ROPE, ", \"crd_ntk\": {\"factor_grow\": 5, \"factor_max\": 1}"))
                .hasMessageContaining("train.crd_ntk.factor_max").hasMessageContaining("below");
        assertThatThrownBy(() -> config(ROPE, ", \"crd_ntk\": {\"factor_grow\": 5}")).hasMessageContaining("train.crd_ntk.factor_max");
        assertThatThrownBy(() -> config(ROPE, ", \"crd_ntk\": {\"factor_grow\": 5, \"factor_max\": 8, \"grow\": 1}")).hasMessageContaining("'grow'");
    }
}
