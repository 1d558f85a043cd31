package dev.longspan.model;

import dev.longspan.io.Json;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The config's {@code logn}: the log-n scaling a model needs at inference, read, written and used. */
class ModelConfigLognTest {
    private static final String BASE = """
            {"vocab_size": 259, "dim": 16, "layers": 1, "heads": 2, "ffn_dim": 32, "attention": "dense"%s}""";

    private static ModelConfig parse(String extra) {
        return ModelConfig.fromJson(Json.parseObject(BASE.formatted(extra), "config.json"), "config.json");
    }

    @ParameterizedTest
    @ValueSource(ints = {2, 1024, 65536})
    void lognRoundTripsThroughJson(int logn) {
        ModelConfig c = parse(", \"logn\": " + logn);
        assertThat(c.logn()).isEqualTo(logn);
        assertThat(c.toJson()).containsEntry("logn", (long) logn);
        assertThat(ModelConfig.fromJson(c.toJson(), "again")).isEqualTo(c);
        assertThat(c.withAttention(List.of(new dev.longspan.attention.Pattern.Window(8))).logn()).isEqualTo(logn);
        assertThat(c.withRope(dev.longspan.position.RopeConfig.plain(500000, c.headDim())).logn()).isEqualTo(logn);
        assertThat(InferenceOptions.forModel(c).lognLength()).isEqualTo(logn);
    }

    @Test
    void aConfigWithoutLognIsOffAndIsWrittenBackWithoutIt() {
        ModelConfig c = parse("");
        assertThat(c.logn()).isZero();
        assertThat(c.toJson()).doesNotContainKey("logn");
        assertThat(InferenceOptions.forModel(c)).isEqualTo(InferenceOptions.DEFAULT);
    }

    @ParameterizedTest
    @ValueSource(strings = {"1", "-5", "\"big\"", "1.5"})
    void aBadLognIsRefusedNamingTheFileAndField(String value) {
        assertThatThrownBy(() -> parse(", \"logn\": " + value)).hasMessageStartingWith("config.json: ").hasMessageContaining("logn");
    }

    @Test
    void theBundledModelsSparsePlanRunsWithoutLogn() {
        // since stage 5 (docs/MODEL.md) its retrieval layer is select-and-merge, whose queries read at
        // most 512 keys at any length (320 before stage 10): log-n scaling (which the full-attention stage-4 model needed)
        // cost keys there, so the config has none, and no layer is dense
        Path config = Path.of(System.getProperty("user.dir")).getParent().resolve("models/longspan-passkey/config.json");
        ModelConfig c = ModelConfig.read(config);
        assertThat(c.logn()).isZero();
        assertThat(c.toJson()).doesNotContainKey("logn");
        assertThat(InferenceOptions.forModel(c)).isEqualTo(InferenceOptions.DEFAULT);
        assertThat(c.attention()).noneMatch(p -> p instanceof dev.longspan.attention.Pattern.Dense);
        assertThat(c.attentionSpecs().get(1)).startsWith("selectmerge:");
    }
}
