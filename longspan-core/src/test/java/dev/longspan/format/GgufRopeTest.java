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

class GgufRopeTest {
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
        RopeConfig c = GgufRope.fromMetadata(md, null);
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
        RopeConfig y = GgufRope.fromMetadata(q, "qwen2");
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
        RopeConfig c = GgufRope.fromMetadata(md, "llama");
        assertThat(c.kind()).isEqualTo(RopeKind.LINEAR);
        assertThat(c.factor()).isEqualTo(2.0);

        Map<String, Object> old = new LinkedHashMap<>();
        old.put("llama.attention.key_length", 128);
        old.put("llama.rope.scale_linear", 4.0f);
        assertThat(GgufRope.fromMetadata(old, "llama").factor()).isEqualTo(4.0);

        md.put("llama.rope.scaling.type", "longrope");
        assertThatThrownBy(() -> GgufRope.fromMetadata(md, "llama"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("'longrope'");
        assertThatThrownBy(() -> GgufRope.fromMetadata(Map.of("mystery.attention.key_length", 64), "mystery"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("'mystery'");
        assertThat(GgufRope.fromMetadata(Map.of("mystery.attention.key_length", 64), "mystery", Pairing.HALF).pairing())
                .isEqualTo(Pairing.HALF);
    }
}
