package dev.longspan.format;

import dev.longspan.io.ByteTokenizer;
import dev.longspan.kernel.GgmlType;
import dev.longspan.model.InferenceSession;
import dev.longspan.model.ModelConfig;
import dev.longspan.model.Transformer;
import dev.longspan.position.RopeConfig;
import dev.longspan.position.RopeKind;
import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * A model's config.json as the loader reads it from disk (not only {@code ModelConfig.fromJson}):
 * a {@code "rope"} object is the model's RoPE, wrong-typed or bad fields fail at load with one
 * line naming the file and the field, and a {@code --rope} override keeps the model's own base and
 * rotary width unless it names them, for every format.
 */
class ConfigAtLoadTest {
    @TempDir
    Path tmp;

    // head_dim 8, rotating 4 of them, base 500000
    static final String ROPE = "kind=rope,base=500000,rot=4,pairing=half";

    Path save(String rope) {
        ModelConfig c = new ModelConfig(ByteTokenizer.VOCAB, 16, 2, 2, 1, 8, 32, 1e-5f, true, rope, List.of("dense", "window:size=4"), "byte", 64);
        Transformer m = new Transformer(c);
        m.initialize(3);
        Path d = tmp.resolve("m" + Math.abs(rope.hashCode()));
        LongspanFormat.save(d, m);
        return d;
    }

    static void editConfig(Path dir, String from, String to) throws IOException {
        Path cfg = dir.resolve("config.json");
        String s = Files.readString(cfg);
        assertThat(s).contains(from);
        Files.writeString(cfg, s.replace(from, to));
    }

    static float[] logits(Transformer m) {
        int[] toks = {1, 72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100};
        return new InferenceSession(m, toks.length).feed(toks, 0, toks.length, toks.length);
    }

    @Test
    void aRopeObjectInConfigJsonIsTheModelsRope() throws IOException {
        Path d = save(ROPE);
        editConfig(d, "\"rope\": \"kind=rope,base=500000,rot=4,pairing=half\"",
                "\"rope\": {\"kind\": \"yarn\", \"base\": 500000, \"rot\": 4, \"factor\": 4, \"orig\": 64, \"beta_fast\": 16}");
        RopeConfig want = RopeConfig.builder(RopeKind.YARN, 8).base(500000).rotaryDims(4).factor(4).originalContext(64).betaFast(16).build();
        assertThat(ModelLoader.config(d).rope()).isEqualTo(want);
        Transformer m = ModelLoader.load(d).model();
        assertThat(m.config.rope()).isEqualTo(want);
        // and the forward uses it: the same weights with the spec-string form give the same logits
        Path s = save("kind=yarn,base=500000,rot=4,factor=4,orig=64,beta_fast=16");
        assertThat(logits(m)).containsExactly(logits(ModelLoader.load(s).model()));
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "\"tokenizer\": \"byte\"|\"tokenizer\": 7|field 'tokenizer' must be a non-empty string, got 7",
            "\"tied_embeddings\": true|\"tied_embeddings\": \"yes\"|field 'tied_embeddings' must be true or false, got yes",
            "\"tied_embeddings\": true|\"tied_embeddings\": 1|field 'tied_embeddings' must be true or false, got 1",
            "\"window:size=4\"|\"window:size=0\"|field attention[1]: ",
            "\"window:size=4\"|\"windw:size=4\"|field attention[1]: ",
            "\"rope\": \"kind=rope,base=500000,rot=4,pairing=half\"|\"rope\": {\"kind\": \"yarn\", \"factor\": 4}|field rope: "})
    void wrongTypedOrBadFieldsFailAtLoadInOneLineNamingFileAndField(String from, String to, String message) throws IOException {
        Path d = save(ROPE);
        editConfig(d, from, to);
        String file = d.resolve("config.json") + ": ";
        for (var load : List.<Runnable>of(() -> ModelLoader.config(d), () -> ModelLoader.load(d))) {
            assertThatThrownBy(load::run).isInstanceOf(LongspanException.class)
                    .hasMessageStartingWith(file).hasMessageContaining(message).hasMessageNotContaining("\n");
        }
    }

    static void assertOverrideKeepsBaseAndWidth(ModelLoader.LoadedModel lm) {
        RopeConfig own = lm.model().config.rope();
        assertThat(own.base()).isEqualTo(500000);
        assertThat(own.rotaryDims()).isEqualTo(4);
        ModelLoader.LoadedModel o = lm.withOverrides(null, "kind=yarn,factor=8,orig=64");
        RopeConfig yarn = o.model().config.rope();
        assertThat(yarn).isEqualTo(RopeConfig.builder(RopeKind.YARN, 8).base(500000).rotaryDims(4).pairing(own.pairing())
                .factor(8).originalContext(64).build());
        assertThat(o.model().params).isSameAs(lm.model().params);
        // named fields win
        RopeConfig given = lm.withOverrides(null, "kind=yarn,factor=8,orig=64,base=10000,rot=8").model().config.rope();
        assertThat(given.base()).isEqualTo(10000);
        assertThat(given.rotaryDims()).isEqualTo(8);
        // YaRN needs the original context: refused, naming the option and the field, never defaulted
        assertThatThrownBy(() -> lm.withOverrides(null, "kind=yarn,factor=8")).isInstanceOf(LongspanException.class)
                .hasMessageStartingWith("--rope: ").hasMessageContaining("'orig'");
    }

    @Test
    void aYarnOverrideKeepsALongspanModelsBaseAndRotaryWidth() {
        Path d = save(ROPE);
        ModelLoader.LoadedModel lm = ModelLoader.load(d);
        assertOverrideKeepsBaseAndWidth(lm);
        // the override is what the forward computes with: the same logits as the model saved with that RoPE
        Transformer direct = ModelLoader.load(save("kind=yarn,base=500000,rot=4,factor=8,orig=64")).model();
        assertThat(logits(lm.withOverrides(null, "kind=yarn,factor=8,orig=64").model())).containsExactly(logits(direct));
    }

    @Test
    void theIssuesOverrideOnALlama3ModelKeepsBaseWidthAndOriginalContext() throws IOException {
        // --rope kind=yarn,factor=8 as written, on a Llama 3.1-style model: orig is a knob llama3 and yarn share
        RopeConfig want = RopeConfig.builder(RopeKind.YARN, 8).base(500000).rotaryDims(4).factor(8).originalContext(64).build();
        ModelLoader.LoadedModel own = ModelLoader.load(save("kind=llama3,base=500000,rot=4,factor=8,orig=64"));
        assertThat(own.withOverrides(null, "kind=yarn,factor=8").model().config.rope()).isEqualTo(want);
        Path hf = tmp.resolve("hf3");
        Files.createDirectories(hf);
        Files.copy(save(ROPE).resolve("model.safetensors"), hf.resolve("model.safetensors"));
        Files.writeString(hf.resolve("config.json"), """
                {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 259, "hidden_size": 16,
                 "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 8,
                 "intermediate_size": 32, "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "partial_rotary_factor": 0.5,
                 "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                  "original_max_position_embeddings": 64},
                 "max_position_embeddings": 512, "tie_word_embeddings": true}""");
        ModelLoaderTest.writeTokenizerJson(hf);
        assertThat(ModelLoader.load(hf).withOverrides(null, "kind=yarn,factor=8").model().config.rope()).isEqualTo(want);
    }

    @Test
    void aYarnOverrideKeepsAGgufModelsBaseAndRotaryWidth() {
        Transformer m = ModelLoader.load(save(ROPE)).model();
        Path gguf = tmp.resolve("m.gguf");
        GgufExport.export(m, gguf, "t", GgmlType.F32);
        assertOverrideKeepsBaseAndWidth(ModelLoader.load(gguf));
    }

    @Test
    void aYarnOverrideKeepsAHuggingFaceModelsBaseAndRotaryWidth() throws IOException {
        // a Longspan directory's weights under a Hugging Face config with partial_rotary_factor 0.5
        Path d = save(ROPE);
        Path hf = tmp.resolve("hf");
        Files.createDirectories(hf);
        Files.copy(d.resolve("model.safetensors"), hf.resolve("model.safetensors"));
        Files.writeString(hf.resolve("config.json"), """
                {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 259, "hidden_size": 16,
                 "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 8,
                 "intermediate_size": 32, "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "partial_rotary_factor": 0.5,
                 "max_position_embeddings": 64, "tie_word_embeddings": true}""");
        ModelLoaderTest.writeTokenizerJson(hf);
        assertOverrideKeepsBaseAndWidth(ModelLoader.load(hf));
    }
}
