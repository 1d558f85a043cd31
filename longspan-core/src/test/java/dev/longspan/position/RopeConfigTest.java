package dev.longspan.position;

import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class RopeConfigTest {

    @Test
    void unknownKindIsAnErrorNamingItAndListingValidOnes() {
        assertThatThrownBy(() -> RopeKind.parse("longrope"))
                .isInstanceOf(LongspanException.class)
                .hasMessageContaining("'longrope'")
                .hasMessageContaining("yarn").hasMessageContaining("crd-ntk");
        assertThatThrownBy(() -> RopeConfig.fromSpec("kind=su,dim=64"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("'su'");
        assertThat(RopeKind.parse("Dynamic_NTK")).isEqualTo(RopeKind.DYNAMIC_NTK);
    }

    @Test
    void specParsesEveryKnob() {
        RopeConfig c = RopeConfig.fromSpec("kind=yarn,base=10000,factor=8,orig=4096,pairing=half,dim=128,beta_fast=16,beta_slow=2,mscale=0.707,mscale_all_dim=0.707,truncate=false");
        assertThat(c.kind()).isEqualTo(RopeKind.YARN);
        assertThat(c.base()).isEqualTo(10000.0);
        assertThat(c.factor()).isEqualTo(8.0);
        assertThat(c.originalContext()).isEqualTo(4096);
        assertThat(c.headDim()).isEqualTo(128);
        assertThat(c.rotaryDims()).isEqualTo(128);
        assertThat(c.betaFast()).isEqualTo(16.0);
        assertThat(c.betaSlow()).isEqualTo(2.0);
        assertThat(c.truncate()).isFalse();
        assertThat(c.derivedAttentionFactor()).isEqualTo(1.0); // mscale == mscale_all_dim

        RopeConfig l3 = RopeConfig.fromSpec("kind=llama3,base=500000,factor=8,orig=8192,low_freq_factor=1,high_freq_factor=4,pairing=interleaved", 64);
        assertThat(l3.headDim()).isEqualTo(64);
        assertThat(l3.pairing()).isEqualTo(Pairing.INTERLEAVED);
        assertThat(l3.highFreqFactor()).isEqualTo(4.0);

        RopeConfig crd = RopeConfig.fromSpec("kind=crd-ntk,dim=64,factor=16,period=32768,offset=32768,grow=2000,offset_max=1048576,seed=7,ntk=dynamic,orig=4096");
        assertThat(crd.period()).isEqualTo(32768);
        assertThat(crd.offsetRange()).isEqualTo(32768);
        assertThat(crd.growSteps()).isEqualTo(2000);
        assertThat(crd.offsetMax()).isEqualTo(1 << 20);
        assertThat(crd.seed()).isEqualTo(7);
        assertThat(crd.dynamicBase()).isTrue();
    }

    @ParameterizedTest
    @ValueSource(strings = {
            "kind=rope,base=10000,dim=64",
            "kind=rope,base=500000,dim=128,rot=64,pairing=interleaved",
            "kind=linear,factor=4,dim=64",
            "kind=ntk,factor=8,dim=64,base=10000",
            "kind=dynamic-ntk,factor=2,orig=2048,dim=128",
            "kind=yarn,factor=8,orig=4096,dim=128,beta_fast=32,beta_slow=1",
            "kind=yarn,factor=40,orig=4096,dim=64,mscale=1,mscale_all_dim=0.5,truncate=false",
            "kind=yarn,factor=4,orig=32768,dim=128,attn_factor=1.25",
            "kind=llama3,factor=8,orig=8192,dim=128,base=500000,low_freq_factor=1,high_freq_factor=4",
            "kind=crd-ntk,factor=16,period=32768,offset=1024,grow=2000,dim=128,seed=3",
            "kind=crd-ntk,factor=16,orig=4096,ntk=dynamic,dim=128",
    })
    void specRoundTrips(String spec) {
        RopeConfig c = RopeConfig.fromSpec(spec);
        assertThat(RopeConfig.fromSpec(c.toSpec())).isEqualTo(c);
        assertThat(RopeConfig.fromMap(c.toMap())).isEqualTo(c);
        assertThat(c.toSpec()).startsWith("kind=" + c.kind().id + ",");
    }

    @Test
    void badSpecErrorsNameTheField() {
        assertThatThrownBy(() -> RopeConfig.fromSpec("kind=yarn,factor=abc,orig=4096,dim=64"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("'factor'").hasMessageContaining("abc");
        assertThatThrownBy(() -> RopeConfig.fromSpec("kind=rope,dim=64,bogus=1"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("'bogus'").hasMessageContaining("valid fields");
        assertThatThrownBy(() -> RopeConfig.fromSpec("kind=linear,dim=64,factor=2,beta_fast=32"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("'beta_fast'").hasMessageContaining("linear");
        assertThatThrownBy(() -> RopeConfig.fromSpec("kind=yarn,factor=8,dim=64"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("'orig'");
        assertThatThrownBy(() -> RopeConfig.fromSpec("kind=rope,dim=64,rot=63"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("'rot'");
        assertThatThrownBy(() -> RopeConfig.fromSpec("kind=rope,dim=64,base=1"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("'base'");
        assertThatThrownBy(() -> RopeConfig.fromSpec("kind=rope,base=10000"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("'dim'");
        assertThatThrownBy(() -> RopeConfig.fromSpec("kind=rope,dim=64", 32))
                .isInstanceOf(LongspanException.class).hasMessageContaining("'dim'").hasMessageContaining("32");
        assertThatThrownBy(() -> RopeConfig.fromSpec("kind=rope,dim=64,dim=64"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("twice");
        assertThatThrownBy(() -> RopeConfig.fromSpec("kind=rope,,dim=64"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("empty entry");
        assertThatThrownBy(() -> RopeConfig.fromSpec("kind=rope,dim"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("key=value");
        assertThatThrownBy(() -> RopeConfig.fromSpec("kind=rope,dim=64,pairing=zigzag"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("'zigzag'");
        assertThatThrownBy(() -> RopeConfig.fromSpec("kind=llama3,dim=64,factor=8,orig=8192,low_freq_factor=4,high_freq_factor=1"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("'high_freq_factor'");
        assertThatThrownBy(() -> RopeConfig.fromSpec("kind=crd-ntk,dim=64,factor=8,ntk=sometimes"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("'ntk'");
        assertThatThrownBy(() -> RopeConfig.fromSpec("kind=crd-ntk,dim=64,factor=8,period=-1"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("'period'");
        assertThatThrownBy(() -> RopeConfig.fromSpec(" "))
                .isInstanceOf(LongspanException.class).hasMessageContaining("empty");
    }

    // ---- Hugging Face ----

    private static Map<String, Object> llamaHf() {
        Map<String, Object> m = new HashMap<>();
        m.put("model_type", "llama");
        m.put("hidden_size", 4096);
        m.put("num_attention_heads", 32);
        m.put("max_position_embeddings", 4096);
        m.put("rope_theta", 10000.0);
        return m;
    }

    @Test
    void huggingFacePlainAndDefault() {
        Map<String, Object> m = llamaHf();
        RopeConfig c = RopeConfig.fromHuggingFace(m);
        assertThat(c.kind()).isEqualTo(RopeKind.ROPE);
        assertThat(c.headDim()).isEqualTo(128);
        assertThat(c.pairing()).isEqualTo(Pairing.HALF);
        m.put("rope_scaling", Map.of("rope_type", "default"));
        assertThat(RopeConfig.fromHuggingFace(m)).isEqualTo(c);
        m.remove("rope_theta");
        assertThat(RopeConfig.fromHuggingFace(m).base()).isEqualTo(10000.0);
    }

    @Test
    void huggingFaceLinearWithTypeOrRopeType() {
        Map<String, Object> m = llamaHf();
        m.put("rope_scaling", Map.of("type", "linear", "factor", 4.0));
        RopeConfig a = RopeConfig.fromHuggingFace(m);
        m.put("rope_scaling", Map.of("rope_type", "linear", "factor", 4));
        RopeConfig b = RopeConfig.fromHuggingFace(m);
        assertThat(a.kind()).isEqualTo(RopeKind.LINEAR);
        assertThat(a.factor()).isEqualTo(4.0);
        assertThat(b).isEqualTo(a);
    }

    @Test
    void huggingFaceDynamicUsesMaxPositionEmbeddings() {
        Map<String, Object> m = llamaHf();
        m.put("rope_scaling", Map.of("type", "dynamic", "factor", 2.0));
        RopeConfig c = RopeConfig.fromHuggingFace(m);
        assertThat(c.kind()).isEqualTo(RopeKind.DYNAMIC_NTK);
        assertThat(c.factor()).isEqualTo(2.0);
        assertThat(c.originalContext()).isEqualTo(4096);
    }

    @Test
    void huggingFaceYarnQwenStyleKeepsItsFactor() {
        Map<String, Object> m = new HashMap<>();
        m.put("model_type", "qwen2");
        m.put("hidden_size", 3584);
        m.put("num_attention_heads", 28);
        m.put("max_position_embeddings", 32768);
        m.put("rope_theta", 1000000.0);
        Map<String, Object> rs = new HashMap<>();
        rs.put("type", "yarn");
        rs.put("factor", 4.0);
        rs.put("original_max_position_embeddings", 32768);
        rs.put("beta_fast", null); // HF: `or 32`
        m.put("rope_scaling", rs);
        RopeConfig c = RopeConfig.fromHuggingFace(m);
        assertThat(c.kind()).isEqualTo(RopeKind.YARN);
        assertThat(c.headDim()).isEqualTo(128);
        assertThat(c.factor()).isEqualTo(4.0);
        assertThat(c.originalContext()).isEqualTo(32768);
        assertThat(c.betaFast()).isEqualTo(32.0);
        assertThat(c.betaSlow()).isEqualTo(1.0);
        assertThat(c.derivedAttentionFactor()).isCloseTo(0.1 * Math.log(4) + 1, org.assertj.core.data.Offset.offset(1e-15));
    }

    @Test
    void huggingFaceYarnDeepSeekStyle() {
        Map<String, Object> m = new HashMap<>();
        m.put("model_type", "deepseek_v3");
        m.put("hidden_size", 7168);
        m.put("num_attention_heads", 128);
        m.put("qk_rope_head_dim", 64);
        m.put("max_position_embeddings", 163840);
        m.put("rope_theta", 10000);
        m.put("rope_scaling", Map.of("type", "yarn", "factor", 40, "original_max_position_embeddings", 4096,
                "beta_fast", 32, "beta_slow", 1, "mscale", 1.0, "mscale_all_dim", 1.0));
        RopeConfig c = RopeConfig.fromHuggingFace(m);
        assertThat(c.headDim()).isEqualTo(64);
        assertThat(c.pairing()).isEqualTo(Pairing.INTERLEAVED);
        assertThat(c.factor()).isEqualTo(40.0);
        assertThat(c.derivedAttentionFactor()).isEqualTo(1.0);
    }

    @Test
    void huggingFaceLlama3AndPartialRotary() {
        Map<String, Object> m = new HashMap<>();
        m.put("model_type", "llama");
        m.put("hidden_size", 4096);
        m.put("num_attention_heads", 32);
        m.put("head_dim", 128);
        m.put("max_position_embeddings", 131072);
        m.put("rope_theta", 500000.0);
        m.put("rope_scaling", Map.of("rope_type", "llama3", "factor", 8.0, "low_freq_factor", 1.0,
                "high_freq_factor", 4.0, "original_max_position_embeddings", 8192));
        RopeConfig c = RopeConfig.fromHuggingFace(m);
        assertThat(c.kind()).isEqualTo(RopeKind.LLAMA3);
        assertThat(c.originalContext()).isEqualTo(8192);
        assertThat(c.lowFreqFactor()).isEqualTo(1.0);
        assertThat(c.highFreqFactor()).isEqualTo(4.0);

        Map<String, Object> phi = new HashMap<>();
        phi.put("model_type", "phi");
        phi.put("hidden_size", 2560);
        phi.put("num_attention_heads", 32);
        phi.put("partial_rotary_factor", 0.4);
        RopeConfig p = RopeConfig.fromHuggingFace(phi);
        assertThat(p.headDim()).isEqualTo(80);
        assertThat(p.rotaryDims()).isEqualTo(32);
    }

    @Test
    void huggingFaceUnknownTypeIsAnError() {
        Map<String, Object> m = llamaHf();
        m.put("rope_scaling", Map.of("rope_type", "longrope", "factor", 4.0));
        assertThatThrownBy(() -> RopeConfig.fromHuggingFace(m))
                .isInstanceOf(LongspanException.class).hasMessageContaining("'longrope'").hasMessageContaining("rope_scaling");
        m.put("rope_scaling", Map.of("factor", 4.0));
        assertThatThrownBy(() -> RopeConfig.fromHuggingFace(m)).isInstanceOf(LongspanException.class).hasMessageContaining("type");
        m.put("rope_scaling", Map.of("rope_type", "llama3", "factor", 8.0));
        assertThatThrownBy(() -> RopeConfig.fromHuggingFace(m)).isInstanceOf(LongspanException.class)
                .hasMessageContaining("original_max_position_embeddings");
    }

    @Test
    void huggingFaceV5RopeParameters() {
        Map<String, Object> m = llamaHf();
        m.remove("rope_theta");
        m.put("rope_parameters", Map.of("rope_type", "linear", "factor", 2.0, "rope_theta", 250000.0));
        RopeConfig c = RopeConfig.fromHuggingFace(m);
        assertThat(c.kind()).isEqualTo(RopeKind.LINEAR);
        assertThat(c.base()).isEqualTo(250000.0);
    }

    // ---- GGUF ----

    @Test
    void ggufLlamaIsInterleavedQwenIsHalf() {
        Map<String, Object> md = new LinkedHashMap<>();
        md.put("general.architecture", "llama");
        md.put("llama.context_length", 65536);
        md.put("llama.embedding_length", 256);
        md.put("llama.attention.head_count", 8);
        md.put("llama.attention.key_length", 64);
        md.put("llama.rope.dimension_count", 64);
        md.put("llama.rope.freq_base", 10000.0f);
        RopeConfig c = RopeConfig.fromGguf(md, null);
        assertThat(c.kind()).isEqualTo(RopeKind.ROPE);
        assertThat(c.pairing()).isEqualTo(Pairing.INTERLEAVED);
        assertThat(c.headDim()).isEqualTo(64);
        assertThat(c.rotaryDims()).isEqualTo(64);
        assertThat(c.base()).isEqualTo(10000.0);

        Map<String, Object> q = new LinkedHashMap<>();
        q.put("qwen2.embedding_length", 896);
        q.put("qwen2.attention.head_count", 14);
        q.put("qwen2.context_length", 32768);
        q.put("qwen2.rope.freq_base", 1000000.0f);
        q.put("qwen2.rope.scaling.type", "yarn");
        q.put("qwen2.rope.scaling.factor", 4.0f);
        q.put("qwen2.rope.scaling.original_context_length", 32768);
        RopeConfig y = RopeConfig.fromGguf(q, "qwen2");
        assertThat(y.pairing()).isEqualTo(Pairing.HALF);
        assertThat(y.headDim()).isEqualTo(64);
        assertThat(y.kind()).isEqualTo(RopeKind.YARN);
        assertThat(y.factor()).isEqualTo(4.0);
        assertThat(y.originalContext()).isEqualTo(32768);
    }

    @Test
    void ggufLinearAndErrors() {
        Map<String, Object> md = new LinkedHashMap<>();
        md.put("llama.attention.key_length", 128);
        md.put("llama.rope.scaling.type", "linear");
        md.put("llama.rope.scaling.factor", 2.0f);
        RopeConfig c = RopeConfig.fromGguf(md, "llama");
        assertThat(c.kind()).isEqualTo(RopeKind.LINEAR);
        assertThat(c.factor()).isEqualTo(2.0);

        Map<String, Object> old = new LinkedHashMap<>();
        old.put("llama.attention.key_length", 128);
        old.put("llama.rope.scale_linear", 4.0f);
        assertThat(RopeConfig.fromGguf(old, "llama").factor()).isEqualTo(4.0);

        md.put("llama.rope.scaling.type", "longrope");
        assertThatThrownBy(() -> RopeConfig.fromGguf(md, "llama"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("'longrope'");
        assertThatThrownBy(() -> RopeConfig.fromGguf(Map.of("mystery.attention.key_length", 64), "mystery"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("'mystery'");
        assertThat(RopeConfig.fromGguf(Map.of("mystery.attention.key_length", 64), "mystery", Pairing.HALF).pairing())
                .isEqualTo(Pairing.HALF);
    }
}
