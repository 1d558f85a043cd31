package dev.longspan.train;

import dev.longspan.format.LongspanFormat;
import dev.longspan.io.Json;
import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class TrainerTest {
    @TempDir
    Path dir;

    static final String TEXT = "In the beginning God created the heaven and the earth. And the earth was without form, and void. ";

    TrainConfig config(int steps, String extraTrain) {
        String json = """
                {"model": {"vocab_size": 259, "dim": 32, "layers": 2, "heads": 2, "kv_heads": 1, "ffn_dim": 64,
                           "attention": "dense", "context_length": 32},
                 "train": {"seq_len": 32, "batch": 2, "steps": %d, "lr": 0.01, "min_lr": 0.001, "warmup": 5,
                           "weight_decay": 0.0, "eval_every": 10, "eval_windows": 2, "checkpoint_every": 10, "seed": 42,
                           "held_out": 0.2 %s}}""".formatted(steps, extraTrain);
        return TrainConfig.fromJson(Json.parseObject(json, "test.json"), "test.json");
    }

    Path corpus() throws IOException {
        return Files.writeString(dir.resolve("text.txt"), TEXT.repeat(8));
    }

    @Test
    void twoLayerModelOverfitsAShortText() throws IOException {
        String json = Json.write(config(300, "").toJson()).replace("\"dim\":32", "\"dim\":64").replace("\"ffn_dim\":64", "\"ffn_dim\":128")
                .replace("\"lr\":0.01", "\"lr\":0.003").replace("\"min_lr\":0.001", "\"min_lr\":3.0E-4");
        TrainConfig tc = TrainConfig.fromJson(Json.parseObject(json, "t"), "t");
        assertThat(tc.model().dim()).isEqualTo(64);
        try (TextCorpus c = new TextCorpus(List.of(corpus()), 0.2)) {
            Trainer t = new Trainer(tc, c, dir.resolve("run"), new Trainer.Listener() {});
            t.start(false);
            double first = t.trainStep().loss();
            double lastTen = 0;
            while (t.step() < tc.steps()) {
                double l = t.trainStep().loss();
                if (t.step() > tc.steps() - 10) lastTen += l / 10;
            }
            assertThat(first).isGreaterThan(4.0);      // ~ln(259) at the start
            assertThat(lastTen).isLessThan(0.3);       // from 5.5 nats per byte to near zero
        }
    }

    @Test
    void stopAndResumeEqualsStraightThroughToTheBit() throws IOException {
        Path text = corpus();
        TrainConfig tc = config(20, ", \"synthetic\": {\"passkey\": 0.0, \"kv\": 0.3}");
        float[] straight;
        try (TextCorpus c = new TextCorpus(List.of(text), 0.2)) {
            Trainer t = new Trainer(tc, c, dir.resolve("a"), new Trainer.Listener() {});
            t.start(false);
            t.run();
            straight = t.model().params.clone();
        }
        List<Map<String, Object>> straightMetrics = Trainer.readMetrics(dir.resolve("a"));
        try (TextCorpus c = new TextCorpus(List.of(text), 0.2)) {
            // "killed" after step 13: the last checkpoint is step 10
            Trainer t = new Trainer(tc, c, dir.resolve("b"), new Trainer.Listener() {});
            t.start(false);
            t.run(10);                 // --stop-at 10: checkpoint at 10, schedule still for 20 steps
            t.trainStep();             // work after the checkpoint is lost when the run is killed
            t.trainStep();
        }
        try (TextCorpus c = new TextCorpus(List.of(text), 0.2)) {
            Trainer t = new Trainer(tc, c, dir.resolve("b"), new Trainer.Listener() {});
            t.start(true);
            assertThat(t.step()).isEqualTo(10);
            t.run();
            assertThat(t.model().params).containsExactly(straight);
        }
        List<Map<String, Object>> resumed = Trainer.readMetrics(dir.resolve("b"));
        straightMetrics.forEach(m -> m.remove("tokens_per_s"));
        resumed.forEach(m -> m.remove("tokens_per_s"));
        // the resumed run's metrics from step 11 on equal the straight run's, bit for bit
        assertThat(resumed.subList(resumed.size() - 10, resumed.size())).isEqualTo(straightMetrics.subList(10, 20));
    }

    @Test
    void corruptOrMismatchedCheckpointsAreRefused() throws IOException {
        TrainConfig tc = config(10, "");
        Path run = dir.resolve("run");
        try (TextCorpus c = new TextCorpus(List.of(corpus()), 0.2)) {
            Trainer t = new Trainer(tc, c, run, new Trainer.Listener() {});
            t.start(false);
            t.run();
        }
        // a different model config
        String other = Json.write(tc.toJson()).replace("\"dim\":32", "\"dim\":16");
        TrainConfig tc2 = TrainConfig.fromJson(Json.parseObject(other, "x"), "x");
        try (TextCorpus c = new TextCorpus(List.of(corpus()), 0.2)) {
            Trainer t = new Trainer(tc2, c, run, new Trainer.Listener() {});
            assertThatThrownBy(() -> t.start(true)).isInstanceOf(LongspanException.class).hasMessageContaining("differs");
        }
        // flip bytes inside the parameters
        Path ck = run.resolve(Checkpoint.FILE);
        try (RandomAccessFile f = new RandomAccessFile(ck.toFile(), "rw")) {
            f.seek(f.length() - 100);
            f.write(new byte[]{1, 2, 3, 4});
        }
        assertThatThrownBy(() -> Checkpoint.load(run)).isInstanceOf(LongspanException.class).hasMessageContaining("checksum");
        // truncate it
        try (RandomAccessFile f = new RandomAccessFile(ck.toFile(), "rw")) {
            f.setLength(f.length() / 2);
        }
        assertThatThrownBy(() -> Checkpoint.load(run)).isInstanceOf(LongspanException.class).hasMessageContaining(Checkpoint.FILE);
        assertThatThrownBy(() -> Checkpoint.load(dir.resolve("nothing"))).hasMessageContaining("no checkpoint");
    }

    @Test
    void modelDirectoryRoundTripsAndRejectsWrongShapes() throws IOException {
        TrainConfig tc = config(2, "");
        Path run = dir.resolve("run");
        try (TextCorpus c = new TextCorpus(List.of(corpus()), 0.2)) {
            Trainer t = new Trainer(tc, c, run, new Trainer.Listener() {});
            t.start(false);
            t.run();
            var loaded = LongspanFormat.read(run);
            assertThat(loaded.params).containsExactly(t.model().params);
        }
        String cfg = Files.readString(run.resolve("config.json")).replace("\"ffn_dim\": 64", "\"ffn_dim\": 96");
        Files.writeString(run.resolve("config.json"), cfg);
        assertThatThrownBy(() -> LongspanFormat.read(run)).isInstanceOf(LongspanException.class)
                .hasMessageContaining("model.safetensors").hasMessageContaining("shape");
    }

    @Test
    void configErrorsNameTheField() {
        assertThatThrownBy(() -> TrainConfig.fromJson(Json.parseObject("{\"model\": {\"dim\": 8, \"layers\": 1, \"heads\": 2, \"ffn_dim\": 8}, \"train\": {\"lr\": \"x\"}}", "c.json"), "c.json"))
                .hasMessageContaining("c.json").hasMessageContaining("lr");
        assertThatThrownBy(() -> TrainConfig.fromJson(Json.parseObject("{\"model\": {\"dim\": 8, \"layers\": 1, \"heads\": 2, \"ffn_dim\": 8, \"bogus\": 1}, \"train\": {}}", "c.json"), "c.json"))
                .hasMessageContaining("bogus");
        assertThatThrownBy(() -> TrainConfig.fromJson(Json.parseObject("{\"model\": {\"dim\": 8, \"layers\": 2, \"heads\": 3, \"kv_heads\": 2, \"ffn_dim\": 8}, \"train\": {}}", "c.json"), "c.json"))
                .hasMessageContaining("kv_heads");
    }

    @Test
    void syntheticSamplesAreWellFormed() {
        java.util.SplittableRandom r = new java.util.SplittableRandom(1);
        int n = 400;
        int[] tok = new int[n + 1], tgt = new int[n];
        PasskeyTask.trainingSample(r, n, PasskeyTask.Filler.standard(), tok, tgt);
        StringBuilder s = new StringBuilder();
        for (int x : tok) s.append((char) x);
        assertThat(s.toString()).startsWith(PasskeyTask.TASK).contains("What is the pass key? The pass key is ");
        String key = s.substring(s.indexOf("The pass key is ") + 16, s.indexOf("The pass key is ") + 21);
        assertThat(s.toString()).endsWith(" " + key + ".");
        long counted = java.util.Arrays.stream(tgt).filter(x -> x >= 0).count();
        assertThat(counted).isEqualTo(7);
        KeyValueTask.trainingSample(r, 200, tok, tgt);
        assertThat(java.util.Arrays.stream(tgt, 0, 200).filter(x -> x >= 0).count()).isIn(0L, 5L);
    }

    @Test
    void fineTuningStartsFromAnotherModelsWeightsWithANewAttentionPlan() throws IOException {
        TrainConfig tc = config(3, "");
        Path base = dir.resolve("base");
        float[] trained;
        try (TextCorpus c = new TextCorpus(List.of(corpus()), 0.2)) {
            Trainer t = new Trainer(tc, c, base, new Trainer.Listener() {});
            t.start(false);
            t.run();
            trained = t.model().params.clone();
        }
        String json = Json.write(tc.toJson()).replace("\"attention\":[\"dense\",\"dense\"]", "\"attention\":[\"window:size=4\",\"selectmerge:region=4,top=3,merge=1\"]");
        TrainConfig ft = TrainConfig.fromJson(Json.parseObject(json, "ft"), "ft");
        assertThat(ft.model().attentionSpecs()).containsExactly("window:size=4", "selectmerge:region=4,top=3,merge=1,score=bound,beam=2");
        try (TextCorpus c = new TextCorpus(List.of(corpus()), 0.2)) {
            Trainer t = new Trainer(ft, c, dir.resolve("ft"), new Trainer.Listener() {});
            t.startFrom(base);
            assertThat(t.step()).isZero();
            assertThat(t.model().params).containsExactly(trained);
            t.trainStep();
            assertThat(t.model().params).isNotEqualTo(trained);
        }
        // a narrower MLP is not a growth (a wider one is: ModelGrowth.widenResidual)
        String narrower = Json.write(tc.toJson()).replace("\"ffn_dim\":64", "\"ffn_dim\":48");
        TrainConfig bad = TrainConfig.fromJson(Json.parseObject(narrower, "w"), "w");
        try (TextCorpus c = new TextCorpus(List.of(corpus()), 0.2)) {
            Trainer t = new Trainer(bad, c, dir.resolve("bad"), new Trainer.Listener() {});
            assertThatThrownBy(() -> t.startFrom(base)).isInstanceOf(LongspanException.class).hasMessageContaining("shape differs");
        }
    }
}
