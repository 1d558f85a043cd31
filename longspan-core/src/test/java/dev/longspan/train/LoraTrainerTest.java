package dev.longspan.train;

import dev.longspan.format.GgufExport;
import dev.longspan.format.LongspanFormat;
import dev.longspan.format.ModelLoader;
import dev.longspan.format.PeftAdapter;
import dev.longspan.io.Json;
import dev.longspan.io.SafetensorsFile;
import dev.longspan.kernel.GgmlType;
import dev.longspan.model.InferenceSession;
import dev.longspan.model.Lora;
import dev.longspan.model.Transformer;
import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * LoRA runs of the trainer: only the adapters (and what --train-also names) change, the base
 * stays as it was, the checkpoint holds only the trained values, a stopped and resumed run equals
 * a straight one to the bit (as full training's), a quantized GGUF base trains as stored.
 */
class LoraTrainerTest {
    @TempDir Path dir;

    TrainConfig config(int steps) {
        return config(steps, "");
    }

    // extra: more model fields, e.g. ", \"token_shift\": true"
    TrainConfig config(int steps, String extra) {
        String json = """
                {"model": {"vocab_size": 259, "dim": 32, "layers": 2, "heads": 2, "kv_heads": 1, "ffn_dim": 64,
                           "rope": "kind=rope,base=10000,pairing=half", "attention": "dense", "context_length": 32%s},
                 "train": {"seq_len": 32, "batch": 2, "steps": %d, "lr": 0.01, "min_lr": 0.001, "warmup": 5,
                           "weight_decay": 0.1, "eval_every": 10, "eval_windows": 2, "checkpoint_every": 10, "seed": 42,
                           "held_out": 0.2, "synthetic": {"passkey": 0.0, "kv": 0.3}}}""".formatted(extra, steps);
        return TrainConfig.fromJson(Json.parseObject(json, "test.json"), "test.json");
    }

    Path corpus() throws IOException {
        return Files.writeString(dir.resolve("text.txt"), TrainerTest.TEXT.repeat(8));
    }

    // a trained-looking base: a few full-training steps, saved as a model directory
    Path base(TrainConfig tc) throws IOException {
        Path b = dir.resolve("base");
        try (TextCorpus c = new TextCorpus(List.of(corpus()), 0.2)) {
            Trainer t = new Trainer(tc.withSteps(3), c, b, new Trainer.Listener() {});
            t.start(false);
            t.run();
        }
        return b;
    }

    static LoraTraining.Setup setup(Path base, Set<LoraTraining.Also> also) {
        return new LoraTraining.Setup(base, new Lora.Spec(4, 8, EnumSet.of(Lora.Target.Q, Lora.Target.V, Lora.Target.DOWN)), also);
    }

    @Test
    void onlyAdaptersAndNamedTensorsTrainAndTheCheckpointHoldsOnlyThem() throws IOException {
        TrainConfig tc = config(10);
        Path base = base(tc);
        byte[] baseFile = Files.readAllBytes(base.resolve("model.safetensors"));
        Transformer before = LongspanFormat.read(base);
        Path run = dir.resolve("run");
        Trainer t;
        try (TextCorpus c = new TextCorpus(List.of(corpus()), 0.2)) {
            t = new Trainer(tc, c, run, new Trainer.Listener() {}, setup(base, EnumSet.of(LoraTraining.Also.NORMS)));
            t.start(false);
            t.run();
        }
        Transformer m = t.model();
        int adapters = m.lora.size();
        int norms = 0;
        for (Transformer.Tensor x : m.tensors()) {
            boolean norm = x.name().endsWith("norm.weight");
            if (norm) norms += x.size();
            float[] now = java.util.Arrays.copyOfRange(m.params, x.offset(), x.offset() + x.size());
            float[] was = java.util.Arrays.copyOfRange(before.params, x.offset(), x.offset() + x.size());
            if (norm) assertThat(now).as(x.name()).isNotEqualTo(was);
            else assertThat(now).as(x.name() + " is frozen").containsExactly(was);
        }
        assertThat(t.trained()).hasSize(adapters + norms);
        assertThat(Files.readAllBytes(base.resolve("model.safetensors"))).isEqualTo(baseFile);
        assertThat(run.resolve("model.safetensors")).doesNotExist();
        try (SafetensorsFile f = SafetensorsFile.open(run.resolve(Checkpoint.FILE))) {
            assertThat(f.shape("params")).containsExactly(adapters + norms);
            assertThat(f.shape("adam.m")).containsExactly(adapters + norms);
        }
        // B moved away from zero: the adapter acts
        Lora.Adapter q0 = m.lora.adapter(0, Lora.Target.Q);
        double b = 0;
        for (int i = 0; i < q0.out() * 4; i++) b += Math.abs(m.lora.weights[q0.bOff() + i]);
        assertThat(b).isPositive();
        // the saved PEFT adapter applied to the untouched base is the trained model
        Transformer loaded = PeftAdapter.apply(run, LongspanFormat.read(base));
        int[] toks = {73, 110, 32, 116, 104, 101, 32, 98};
        float[] a = new InferenceSession(loaded, 8).feed(toks, 0, 8, 8);
        float[] ref = new InferenceSession(m, 8).feed(toks, 0, 8, 8);
        assertThat(a).containsExactly(ref);
    }

    @Test
    void embeddingsOfATokenShiftModelAreBothTablesAndTheAdapterCarriesThem() throws IOException {
        // a model with token_shift 2 has three embedding tables: --train-also embeddings trains all, and
        // the saved adapter applied to the untouched base gives the trained model's logits
        TrainConfig tc = config(8, ", \"token_shift\": 2");
        assertThat(tc.model().tokenShift()).isEqualTo(2);
        Path base = base(tc);
        Transformer before = LongspanFormat.read(base);
        Trainer t;
        try (TextCorpus c = new TextCorpus(List.of(corpus()), 0.2)) {
            t = new Trainer(tc, c, dir.resolve("ts"), new Trainer.Listener() {}, setup(base, EnumSet.of(LoraTraining.Also.EMBEDDINGS)));
            t.start(false);
            t.run();
        }
        Transformer m = t.model();
        for (String name : List.of("model.embed_tokens.weight", Transformer.PREV_EMBEDDING, "model.embed_prev2_tokens.weight")) {
            Transformer.Tensor x = m.tensor(name);
            assertThat(java.util.Arrays.copyOfRange(m.params, x.offset(), x.offset() + x.size())).as(name + " trained")
                    .isNotEqualTo(java.util.Arrays.copyOfRange(before.params, x.offset(), x.offset() + x.size()));
        }
        Transformer loaded = PeftAdapter.apply(dir.resolve("ts"), LongspanFormat.read(base));
        int[] toks = {73, 110, 32, 116, 104, 101, 32, 98};
        assertThat(new InferenceSession(loaded, 8).feed(toks, 0, 8, 8)).containsExactly(new InferenceSession(m, 8).feed(toks, 0, 8, 8));
    }

    @Test
    void stopAndResumeEqualsStraightThroughToTheBit() throws IOException {
        TrainConfig tc = config(20);
        Path base = base(tc);
        Path text = corpus();
        LoraTraining.Setup s = setup(base, EnumSet.of(LoraTraining.Also.NORMS, LoraTraining.Also.EMBEDDINGS));
        float[] straight, straightParams;
        try (TextCorpus c = new TextCorpus(List.of(text), 0.2)) {
            Trainer t = new Trainer(tc, c, dir.resolve("a"), new Trainer.Listener() {}, s);
            t.start(false);
            t.run();
            straight = t.trained().clone();
            straightParams = t.model().params.clone();
        }
        List<Map<String, Object>> straightMetrics = Trainer.readMetrics(dir.resolve("a"));
        try (TextCorpus c = new TextCorpus(List.of(text), 0.2)) {
            Trainer t = new Trainer(tc, c, dir.resolve("b"), new Trainer.Listener() {}, s);
            t.start(false);
            t.run(10);
            t.trainStep();   // lost when the run is killed
        }
        // the settings come back from the checkpoint, as the CLI's --resume reads them
        Trainer.Checkpointed cp = Trainer.checkpointed(dir.resolve("b"));
        assertThat(cp.lora()).isEqualTo(s);
        try (TextCorpus c = new TextCorpus(List.of(text), 0.2)) {
            Trainer t = new Trainer(tc, c, dir.resolve("b"), new Trainer.Listener() {}, cp.lora());
            t.start(true);
            assertThat(t.step()).isEqualTo(10);
            t.run();
            assertThat(t.trained()).containsExactly(straight);
            assertThat(t.model().params).containsExactly(straightParams);
        }
        List<Map<String, Object>> resumed = Trainer.readMetrics(dir.resolve("b"));
        straightMetrics.forEach(m -> m.remove("tokens_per_s"));
        resumed.forEach(m -> m.remove("tokens_per_s"));
        assertThat(resumed.subList(resumed.size() - 10, resumed.size())).isEqualTo(straightMetrics.subList(10, 20));
        assertThat(Files.readAllBytes(dir.resolve("b").resolve(PeftAdapter.WEIGHTS))).isEqualTo(Files.readAllBytes(dir.resolve("a").resolve(PeftAdapter.WEIGHTS)));
        // a full-training run cannot resume a LoRA checkpoint, nor the other way round
        try (TextCorpus c = new TextCorpus(List.of(text), 0.2)) {
            Trainer t = new Trainer(tc, c, dir.resolve("b"), new Trainer.Listener() {});
            assertThatThrownBy(() -> t.start(true)).isInstanceOf(LongspanException.class).hasMessageContaining("trained values");
        }
    }

    @Test
    void aQuantizedGgufBaseTrainsWithItsMatricesStored() throws IOException {
        TrainConfig tc = config(6);
        Path base = base(tc);
        Path gguf = dir.resolve("base-q8.gguf");
        GgufExport.export(LongspanFormat.read(base), gguf, "base", GgmlType.Q8_0);
        try (TextCorpus c = new TextCorpus(List.of(corpus()), 0.2)) {
            Trainer t = new Trainer(tc, c, dir.resolve("q"), new Trainer.Listener() {}, setup(gguf, EnumSet.of(LoraTraining.Also.NORMS)));
            assertThat(t.model().keepsStoredWeights()).isTrue();
            assertThat(t.model().qProj[0].type()).isEqualTo(GgmlType.Q8_0);
            t.start(false);
            double first = t.trainStep().loss(), last = first;
            while (t.step() < tc.steps()) last = t.trainStep().loss();
            assertThat(last).isFinite().isLessThan(first);
            // embeddings stored as Q8_0 cannot be trained in full
            assertThatThrownBy(() -> new Trainer(tc, c, dir.resolve("e"), new Trainer.Listener() {}, setup(gguf, EnumSet.of(LoraTraining.Also.EMBEDDINGS))))
                    .isInstanceOf(LongspanException.class).hasMessageContaining("embed_tokens").hasMessageContaining("Q8_0");
        }
        assertThat(ModelLoader.load(gguf).model().qProj[0].type()).isEqualTo(GgmlType.Q8_0);
    }

    @Test
    void aBaseOfAnotherShapeOrWithoutByteTokensIsRefused() throws IOException {
        TrainConfig tc = config(2);
        Path base = base(tc);
        String wider = Json.write(tc.toJson()).replace("\"dim\":32", "\"dim\":64");
        TrainConfig other = TrainConfig.fromJson(Json.parseObject(wider, "w"), "w");
        try (TextCorpus c = new TextCorpus(List.of(corpus()), 0.2)) {
            assertThatThrownBy(() -> new Trainer(other, c, dir.resolve("x"), new Trainer.Listener() {}, setup(base, Set.of())))
                    .isInstanceOf(LongspanException.class).hasMessageContaining("shape differs");
            Path stories = dev.longspan.io.TestData.shared("models/stories260K/stories260K.gguf");
            org.junit.jupiter.api.Assumptions.assumeTrue(Files.exists(stories));
            TrainConfig st = TrainConfig.fromJson(Map.of("model", ModelLoader.config(stories).toJson(), "train", Map.of("seq_len", 32L)), "s");
            assertThatThrownBy(() -> new Trainer(st, c, dir.resolve("y"), new Trainer.Listener() {}, setup(stories, Set.of())))
                    .isInstanceOf(LongspanException.class).hasMessageContaining("byte tokenizer");
        }
    }
}
