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

    // a random byte-level model with a window layer and a dense layer, saved in dir
    static Path tinyModel(Path dir, long seed) {
        ModelConfig c = new ModelConfig(259, 16, 2, 2, 2, 8, 32, 1e-5f, true, "kind=rope,base=10000",
                List.of("window:size=16", "dense"), "byte", 64);
        Transformer m = new Transformer(c);
        m.initialize(seed);
        LongspanFormat.save(dir, m);
        return dir;
    }

    @Test
    void demoRunsPasskeyAndTheAttentionComparisonOnATinyModel() throws Exception {
        Path model = tinyModel(dir.resolve("model"), 1);
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

        assertThat(j.has("language_model")).as("no --lm here and no models/longspan-lm below the test's directory").isFalse();

        CliRun missing = CliRun.of("demo", "--model", dir.resolve("none").toString());
        assertThat(missing.exit()).isEqualTo(2);
        assertThat(missing.err()).contains("MODEL.md");
    }

    @Test
    void theLanguageModelSectionScoresTheSameBytesAsThePerplexityCommand() throws Exception {
        Path model = tinyModel(dir.resolve("lm"), 2);
        Path text = java.nio.file.Files.writeString(dir.resolve("text.txt"), "It was the best of times, it was the worst of times. ".repeat(20));
        CliRun r = CliRun.of("demo", "--model", model.toString(), "--lengths", "300", "--attention-length", "256", "--dense-lengths", "300,400",
                "--lm", model.toString(), "--lm-text", text.toString(), "--lm-lengths", "100,400", "--out", dir.resolve("out").toString(), "--json");
        assertThat(r.exit()).as(r.err()).isZero();
        JsonNode lm = new ObjectMapper().readTree(r.out()).get("language_model");
        assertThat(lm.get("scored_bytes").asInt()).isEqualTo(100);
        assertThat(lm.get("points")).hasSize(2);
        // the perplexity command on the same text, lengths and scored tail: the same numbers
        CliRun p = CliRun.of("perplexity", "--model", model.toString(), "--data", text.toString(), "--lengths", "100,400", "--tail", "100",
                "--windows", "1", "--out", dir.resolve("ppl").toString(), "--json");
        assertThat(p.exit()).as(p.err()).isZero();
        JsonNode points = new ObjectMapper().readTree(p.out()).get("points");
        for (int i = 0; i < 2; i++) {
            assertThat(lm.get("points").get(i).get("length").asInt()).isEqualTo(points.get(i).get("length").asInt());
            assertThat(lm.get("points").get(i).get("perplexity").asDouble()).isEqualTo(points.get(i).get("perplexity").asDouble());
        }
        CliRun table = CliRun.of("demo", "--model", model.toString(), "--lengths", "300", "--attention-length", "256", "--dense-lengths", "300,400",
                "--lm", model.toString(), "--lm-text", text.toString(), "--lm-lengths", "100,400", "--out", dir.resolve("out2").toString());
        assertThat(table.exit()).as(table.err()).isZero();
        assertThat(table.out()).contains("the same 100 bytes scored at every context").contains("perplexity 100 → 400 context:");
    }
}
