package dev.longspan.format;

import dev.longspan.position.Pairing;
import dev.longspan.position.RopeConfig;
import dev.longspan.position.RopeKind;
import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class HuggingFaceRopeTest {
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
        RopeConfig c = HuggingFaceRope.fromConfig(m);
        assertThat(c.kind()).isEqualTo(RopeKind.ROPE);
        assertThat(c.headDim()).isEqualTo(128);
        assertThat(c.pairing()).isEqualTo(Pairing.HALF);
        m.put("rope_scaling", Map.of("rope_type", "default"));
        assertThat(HuggingFaceRope.fromConfig(m)).isEqualTo(c);
        m.remove("rope_theta");
        assertThat(HuggingFaceRope.fromConfig(m).base()).isEqualTo(10000.0);
    }

    @Test
    void huggingFaceLinearWithTypeOrRopeType() {
        Map<String, Object> m = llamaHf();
        m.put("rope_scaling", Map.of("type", "linear", "factor", 4.0));
        RopeConfig a = HuggingFaceRope.fromConfig(m);
        m.put("rope_scaling", Map.of("rope_type", "linear", "factor", 4));
        RopeConfig b = HuggingFaceRope.fromConfig(m);
        assertThat(a.kind()).isEqualTo(RopeKind.LINEAR);
        assertThat(a.factor()).isEqualTo(4.0);
        assertThat(b).isEqualTo(a);
    }

    @Test
    void huggingFaceDynamicUsesMaxPositionEmbeddings() {
        Map<String, Object> m = llamaHf();
        m.put("rope_scaling", Map.of("type", "dynamic", "factor", 2.0));
        RopeConfig c = HuggingFaceRope.fromConfig(m);
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
        RopeConfig c = HuggingFaceRope.fromConfig(m);
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
        RopeConfig c = HuggingFaceRope.fromConfig(m);
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
        RopeConfig c = HuggingFaceRope.fromConfig(m);
        assertThat(c.kind()).isEqualTo(RopeKind.LLAMA3);
        assertThat(c.originalContext()).isEqualTo(8192);
        assertThat(c.lowFreqFactor()).isEqualTo(1.0);
        assertThat(c.highFreqFactor()).isEqualTo(4.0);

        Map<String, Object> phi = new HashMap<>();
        phi.put("model_type", "phi");
        phi.put("hidden_size", 2560);
        phi.put("num_attention_heads", 32);
        phi.put("partial_rotary_factor", 0.4);
        RopeConfig p = HuggingFaceRope.fromConfig(phi);
        assertThat(p.headDim()).isEqualTo(80);
        assertThat(p.rotaryDims()).isEqualTo(32);
    }

    @Test
    void huggingFaceUnknownTypeIsAnError() {
        Map<String, Object> m = llamaHf();
        m.put("rope_scaling", Map.of("rope_type", "longrope", "factor", 4.0));
        assertThatThrownBy(() -> HuggingFaceRope.fromConfig(m))
                .isInstanceOf(LongspanException.class).hasMessageContaining("'longrope'").hasMessageContaining("rope_scaling");
        m.put("rope_scaling", Map.of("factor", 4.0));
        assertThatThrownBy(() -> HuggingFaceRope.fromConfig(m)).isInstanceOf(LongspanException.class).hasMessageContaining("type");
        m.put("rope_scaling", Map.of("rope_type", "llama3", "factor", 8.0));
        assertThatThrownBy(() -> HuggingFaceRope.fromConfig(m)).isInstanceOf(LongspanException.class)
                .hasMessageContaining("original_max_position_embeddings");
    }

    @Test
    void huggingFaceV5RopeParameters() {
        Map<String, Object> m = llamaHf();
        m.remove("rope_theta");
        m.put("rope_parameters", Map.of("rope_type", "linear", "factor", 2.0, "rope_theta", 250000.0));
        RopeConfig c = HuggingFaceRope.fromConfig(m);
        assertThat(c.kind()).isEqualTo(RopeKind.LINEAR);
        assertThat(c.base()).isEqualTo(250000.0);
    }
}
