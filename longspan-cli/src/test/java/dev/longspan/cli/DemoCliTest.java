package dev.longspan.cli;

import dev.longspan.format.LongspanFormat;
import dev.longspan.model.ModelConfig;
import dev.longspan.model.Transformer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

class DemoCliTest {
    @TempDir
    Path dir;

    @Test
    void demoRunsPasskeyAndTheAttentionComparisonOnATinyModel() throws Exception {
        ModelConfig c = new ModelConfig(259, 16, 2, 2, 2, 8, 32, 1e-5f, true, "kind=rope,base=10000",
                List.of("window:size=16", "dense"), "byte", 64);
        Transformer m = new Transformer(c);
        m.initialize(1);
        Path model = dir.resolve("model");
        LongspanFormat.save(model, m);
        Path out = dir.resolve("out");
        CliRun r = CliRun.of("demo", "--model", model.toString(), "--lengths", "300,400", "--attention-length", "512", "--dense-lengths", "300,600",
                "--out", out.toString(), "--json");
        assertThat(r.exit()).as(r.err()).isZero();
        JsonNode j = new ObjectMapper().readTree(r.out());
        assertThat(j.get("passkey")).hasSize(6);
        assertThat(j.get("attention")).hasSize(6);
        assertThat(j.get("attention").get(0).get("pattern").asText()).isEqualTo("dense");
        for (JsonNode a : j.get("attention")) {
            assertThat(a.get("extra_bytes").asLong()).isLessThan(a.get("dense_score_matrix_bytes").asLong());
        }
        JsonNode dense = j.get("dense_extrapolation");
        assertThat(dense.get("length").asInt()).isEqualTo(400);
        assertThat(dense.get("dense_measured")).hasSize(2);
        assertThat(dense.get("dense_seconds_estimate").asDouble()).isPositive();
        assertThat(dense.get("formula").asText()).contains("fitted to dense at 300").contains("and 600");
        assertThat(out.resolve("passkey.png")).exists();
        assertThat(out.resolve("demo.json")).exists();

        CliRun missing = CliRun.of("demo", "--model", dir.resolve("none").toString());
        assertThat(missing.exit()).isEqualTo(2);
        assertThat(missing.err()).contains("MODEL.md");
    }
}
