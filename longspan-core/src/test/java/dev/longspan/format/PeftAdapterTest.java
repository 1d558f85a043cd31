package dev.longspan.format;

import dev.longspan.io.Json;
import dev.longspan.io.SafetensorsFile;
import dev.longspan.io.TestData;
import dev.longspan.kernel.GgmlType;
import dev.longspan.model.InferenceSession;
import dev.longspan.model.Lora;
import dev.longspan.model.ModelConfig;
import dev.longspan.model.Transformer;
import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Adapters in Hugging Face PEFT's files: names, shapes and config as PEFT writes them, a save/load
 * round trip, the same adapter on a model's GGUF (Q/K rows permuted in the file) and on its
 * Hugging Face or Longspan form giving the same logits, and bad adapter directories refused with
 * one line naming the file and field.
 */
class PeftAdapterTest {
    @TempDir Path tmp;

    // an adapter on every target of m's config with random A and B (B nonzero, so it acts)
    static Lora randomAdapter(ModelConfig c, int rank, double alpha, long seed) {
        Lora.Spec spec = new Lora.Spec(rank, alpha, EnumSet.allOf(Lora.Target.class));
        Lora lora = new Lora(c, spec, new float[Lora.size(c, spec)]);
        SplittableRandom r = new SplittableRandom(seed);
        for (int i = 0; i < lora.size(); i++) lora.weights[i] = (float) r.nextDouble(-0.2, 0.2);
        return lora;
    }

    static float[] logits(Transformer m, int[] toks) {
        return new InferenceSession(m, toks.length).feed(toks, 0, toks.length, toks.length);
    }

    static double maxRelDiff(float[] a, float[] b) {
        double d = 0, s = 0;
        for (int i = 0; i < a.length; i++) {
            d = Math.max(d, Math.abs(a[i] - b[i]));
            s = Math.max(s, Math.abs(b[i]));
        }
        return d / s;
    }

    static Transformer randomModel(long seed) {
        ModelConfig c = new ModelConfig(259, 32, 2, 4, 2, 8, 64, 1e-5f, false, "kind=rope,base=10000,pairing=half",
                Collections.nCopies(2, "dense"), "byte", 64);
        Transformer m = new Transformer(c);
        m.initialize(seed);
        SplittableRandom r = new SplittableRandom(seed);
        for (int i = 0; i < m.params.length; i++) m.params[i] += (float) r.nextDouble(-0.05, 0.05);
        return m;
    }

    @Test
    void savedInPeftLayoutAndReadBackExactly() throws IOException {
        Transformer m = randomModel(1);
        Transformer adapted = m.withAdapters(randomAdapter(m.config, 4, 8, 2));
        List<Transformer.Tensor> norms = m.tensors().stream().filter(t -> t.name().endsWith("norm.weight")).toList();
        Path dir = tmp.resolve("adapter");
        PeftAdapter.save(dir, adapted, norms, "some/base");
        Map<String, Object> cfg = Json.parseObject(Files.readString(dir.resolve("adapter_config.json")), "cfg");
        assertThat(cfg).containsEntry("peft_type", "LORA").containsEntry("task_type", "CAUSAL_LM").containsEntry("r", 4L)
                .containsEntry("lora_alpha", 8.0).containsEntry("bias", "none").containsEntry("fan_in_fan_out", false)
                .containsEntry("base_model_name_or_path", "some/base")
                .containsEntry("target_modules", List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"));
        try (SafetensorsFile f = SafetensorsFile.open(dir.resolve("adapter_model.safetensors"))) {
            // q_proj: [qDim 32, dim 32]; k_proj: [kvDim 16, 32]; down_proj: [32, ffn 64]
            assertThat(f.shape("base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight")).containsExactly(4, 32);
            assertThat(f.shape("base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight")).containsExactly(16, 4);
            assertThat(f.shape("base_model.model.model.layers.0.mlp.down_proj.lora_A.weight")).containsExactly(4, 64);
            assertThat(f.shape("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight")).containsExactly(32, 4);
            assertThat(f.has("base_model.model.model.norm.weight")).isTrue();
            assertThat(f.names()).hasSize(2 * 7 * 2 + norms.size());
        }
        // applied to a copy of the base whose norms differ: the saved norms replace them
        Transformer other = randomModel(1);
        other.params[other.finalNorm] += 1f;
        Transformer loaded = PeftAdapter.apply(dir, other);
        assertThat(loaded.lora.weights).containsExactly(adapted.lora.weights);
        assertThat(loaded.params).containsExactly(m.params);
        assertThat(other.params[other.finalNorm]).isNotEqualTo(m.params[m.finalNorm]);  // the base itself is not changed
        int[] toks = {72, 101, 108, 108, 111, 32, 33};
        assertThat(logits(loaded, toks)).containsExactly(logits(adapted, toks));
    }

    @Test
    void anAdapterOnAGgufEqualsTheSameAdapterOnTheModelItWasExportedFrom() {
        // the GGUF's Q/K rows are permuted for llama.cpp's interleaved RoPE and read back: adapter
        // rows are the model's (Hugging Face's) rows in both
        Transformer m = randomModel(3);
        Path gguf = tmp.resolve("m.gguf");
        GgufExport.export(m, gguf, "t", GgmlType.F32);
        Lora lora = randomAdapter(m.config, 2, 4, 5);
        Transformer fromGguf = ModelLoader.load(gguf, ModelLoader.Weights.STORED).model();
        int[] toks = {1, 50, 60, 70, 80, 90, 100, 110};
        float[] ref = logits(m.withAdapters(lora), toks);
        float[] got = logits(fromGguf.withAdapters(lora), toks);
        assertThat(maxRelDiff(got, ref)).isLessThan(1e-4);
        assertThat(maxRelDiff(logits(m, toks), ref)).as("the adapter acts").isGreaterThan(1e-2);
        // quantized and kept as stored: the adapter still sits on the Q8_0 blocks
        Path q8 = tmp.resolve("q8.gguf");
        GgufExport.export(m, q8, "t", GgmlType.Q8_0);
        Transformer stored = ModelLoader.load(q8, ModelLoader.Weights.STORED).model();
        assertThat(stored.keepsStoredWeights()).isTrue();
        assertThat(maxRelDiff(logits(stored.withAdapters(lora), toks), ref)).isLessThan(3e-2);
    }

    @Test
    void stories260KGgufAndHuggingFaceGiveTheSameLogitsUnderTheSameAdapter() {
        Path gguf = TestData.shared("models/stories260K/stories260K.gguf"), hf = TestData.shared("models/stories260K/hf");
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.exists(gguf) && Files.isDirectory(hf), "stories260K is in shared/data");
        Transformer g = ModelLoader.load(gguf, ModelLoader.Weights.DEQUANTIZED).model();
        Transformer h = ModelLoader.load(hf).model();
        Lora lora = randomAdapter(h.config, 4, 8, 7);
        int[] toks = {1, 403, 407, 261, 378, 380, 261, 402};
        float[] viaHf = logits(h.withAdapters(lora), toks), viaGguf = logits(g.withAdapters(lora), toks);
        assertThat(maxRelDiff(viaGguf, viaHf)).isLessThan(1e-4);
        assertThat(maxRelDiff(logits(h, toks), viaHf)).as("the adapter acts").isGreaterThan(1e-2);
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "\"peft_type\": \"PREFIX_TUNING\"|peft_type",
            "\"r\": 0|r must be",
            "\"r\": \"8\"|r must be",
            "\"lora_alpha\": -1|lora_alpha",
            "\"target_modules\": [\"q_proj\", \"lm_head\"]|lm_head",
            "\"target_modules\": \"q_proj\"|target_modules",
            "\"bias\": \"all\"|bias",
            "\"use_dora\": true|use_dora",
            "\"fan_in_fan_out\": true|fan_in_fan_out",
            "\"rank_pattern\": {\"q_proj\": 4}|rank_pattern",
            "\"layers_to_transform\": [0]|layers_to_transform"})
    void badConfigsAreOneLineNamingFileAndField(String field, String expected) throws IOException {
        Transformer m = randomModel(1);
        Path dir = tmp.resolve("a");
        PeftAdapter.save(dir, m.withAdapters(randomAdapter(m.config, 2, 2, 1)), List.of(), "b");
        String cfg = Files.readString(dir.resolve("adapter_config.json"));
        String key = field.substring(0, field.indexOf(':'));
        String edited = cfg.contains(key) ? cfg.replaceFirst(java.util.regex.Pattern.quote(key) + ":[^\\n]*?(,?)\\n", java.util.regex.Matcher.quoteReplacement(field) + "$1\n")
                : cfg.replaceFirst("\\{", "{" + java.util.regex.Matcher.quoteReplacement(field) + ",");
        Files.writeString(dir.resolve("adapter_config.json"), edited);
        assertThatThrownBy(() -> PeftAdapter.apply(dir, m)).isInstanceOf(LongspanException.class)
                .hasMessageContaining("adapter_config.json").hasMessageContaining(expected)
                .satisfies(e -> assertThat(e.getMessage()).doesNotContain("\n"));
    }

    @Test
    void missingFilesWrongShapesAndForeignTensorsAreRefused() throws IOException {
        Transformer m = randomModel(1);
        assertThatThrownBy(() -> PeftAdapter.apply(tmp.resolve("none"), m)).hasMessageContaining("no such adapter directory");
        Path dir = tmp.resolve("a");
        PeftAdapter.save(dir, m.withAdapters(randomAdapter(m.config, 2, 2, 1)), List.of(), "b");
        // another model's shapes
        ModelConfig wider = new ModelConfig(259, 48, 2, 4, 2, 12, 48, 1e-5f, false, "kind=rope,base=10000", Collections.nCopies(2, "dense"), "byte", 64);
        Transformer w = new Transformer(wider);
        assertThatThrownBy(() -> PeftAdapter.apply(dir, w)).isInstanceOf(LongspanException.class)
                .hasMessageContaining("adapter_model.safetensors").hasMessageContaining("shape");
        // fewer layers in the adapter than in the model
        ModelConfig deeper = new ModelConfig(259, 32, 3, 4, 2, 8, 64, 1e-5f, false, "kind=rope,base=10000", Collections.nCopies(3, "dense"), "byte", 64);
        assertThatThrownBy(() -> PeftAdapter.apply(dir, new Transformer(deeper))).hasMessageContaining("missing tensor 'base_model.model.model.layers.2.");
        // a tensor that belongs to no target
        ModelConfig shallow = new ModelConfig(259, 32, 1, 4, 2, 8, 64, 1e-5f, false, "kind=rope,base=10000", Collections.nCopies(1, "dense"), "byte", 64);
        assertThatThrownBy(() -> PeftAdapter.apply(dir, new Transformer(shallow))).hasMessageContaining("layers.1.").hasMessageContaining("not an adapter");
        Files.delete(dir.resolve("adapter_model.safetensors"));
        assertThatThrownBy(() -> PeftAdapter.apply(dir, m)).hasMessageContaining("no adapter_model.safetensors");
        Files.delete(dir.resolve("adapter_config.json"));
        assertThatThrownBy(() -> PeftAdapter.apply(dir, m)).hasMessageContaining("no adapter_config.json");
    }
}
