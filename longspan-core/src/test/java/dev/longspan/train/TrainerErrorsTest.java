package dev.longspan.train;

import dev.longspan.io.Json;
import dev.longspan.util.LongspanException;
import dev.longspan.util.LongspanFailure;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class TrainerErrorsTest {
    @TempDir
    Path dir;

    static TrainConfig config(String train) {
        return config(6, train);
    }

    static TrainConfig config(int steps, String train) {
        String json = """
                {"model": {"vocab_size": 259, "dim": 16, "layers": 1, "heads": 2, "ffn_dim": 32},
                 "train": {"seq_len": 16, "steps": %d, "eval_every": 2, "checkpoint_every": 2 %s}}""".formatted(steps, train);
        return TrainConfig.fromJson(Json.parseObject(json, "t.json"), "t.json");
    }

    Path text(int bytes) throws IOException {
        return Files.writeString(dir.resolve("t" + bytes + ".txt"), "abcdefghij".repeat(bytes / 10 + 1).substring(0, bytes));
    }

    @Test
    void zeroIntervalsAndBadRatesAreRefusedNamingTheField() {
        assertThatThrownBy(() -> config(", \"eval_every\": 0")).isInstanceOf(LongspanException.class).hasMessageStartingWith("t.json: train.eval_every must be at least 1");
        assertThatThrownBy(() -> config(", \"checkpoint_every\": 0")).hasMessageStartingWith("t.json: train.checkpoint_every must be at least 1");
        assertThatThrownBy(() -> config(", \"warmup\": -1")).hasMessageStartingWith("t.json: train.warmup");
        assertThatThrownBy(() -> config(", \"min_lr\": 1")).hasMessageStartingWith("t.json: train.min_lr");
    }

    @Test
    void textShorterThanOneSequenceIsRefused() throws IOException {
        TrainConfig tc = config("");
        try (TextCorpus c = new TextCorpus(List.of(text(12)), 0.05)) {
            assertThatThrownBy(() -> new Trainer(tc, c, dir.resolve("run"), new Trainer.Listener() {}))
                    .isInstanceOf(LongspanException.class).hasMessageContaining("shorter than one sequence of 17 bytes");
        }
    }

    @Test
    void aNanLossIsOneFailureNamingTheStep() throws IOException {
        try (TextCorpus c = new TextCorpus(List.of(text(2000)), 0.1)) {
            Trainer t = new Trainer(config(""), c, dir.resolve("run"), new Trainer.Listener() {});
            t.start(false);
            t.trainStep();
            java.util.Arrays.fill(t.model().params, Float.NaN);
            assertThatThrownBy(t::trainStep).isInstanceOf(LongspanFailure.class)
                    .hasMessageStartingWith("training diverged: the loss became NaN at step 2");
        }
    }

    @Test
    void resumingKeepsTheRunsScheduleAndRefusesARunWithNothingLeft() throws IOException {
        Path out = dir.resolve("run");
        TrainConfig tc = config("").withSteps(4);   // --steps 4 over the file's 6
        try (TextCorpus c = new TextCorpus(List.of(text(2000)), 0.1)) {
            Trainer t = new Trainer(tc, c, out, new Trainer.Listener() {});
            t.start(false);
            t.run(2);
        }
        // the same file without --steps: the run's 4 steps, not the file's 6
        assertThat(Trainer.resumed(config(""), false, out).steps()).isEqualTo(4);
        // --steps decides; a next stage's file with another train.steps also does
        assertThat(Trainer.resumed(config("").withSteps(9), true, out).steps()).isEqualTo(9);
        assertThat(Trainer.resumed(config(8, ""), false, out).steps()).isEqualTo(8);
        assertThatThrownBy(() -> Trainer.resumed(config("").withSteps(2), true, out)).isInstanceOf(LongspanException.class)
                .hasMessageContaining("already at step 2 of its 2-step schedule");
    }
}
