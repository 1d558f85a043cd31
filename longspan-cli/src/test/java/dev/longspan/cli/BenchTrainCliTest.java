package dev.longspan.cli;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/** `bench train` on a tiny model for every kind of plan, pos=selected included (its pairs are counted with plain RoPE). */
class BenchTrainCliTest {
    @TempDir
    Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {"dense", "window:size=16", "selectmerge:region=16,top=2,merge=1", "selectmerge:region=16,top=2,merge=1,pos=selected"})
    void timesOneStepOfEveryPlan(String attention) throws Exception {
        Path cfg = tmp.resolve("c.json");
        Files.writeString(cfg, """
                {"model": {"vocab_size": 259, "dim": 32, "layers": 2, "heads": 2, "kv_heads": 2, "ffn_dim": 64,
                           "rope": "kind=crd-ntk,base=10000,period=64,offset=64,seed=1", "attention": "%s", "context_length": 128},
                 "train": {"seq_len": 128, "batch": 1, "steps": 1, "lr": 0.001}}
                """.formatted(attention));
        CliRun r = CliRun.of("bench", "train", "--config", cfg.toString(), "--steps", "1", "--threads", "1", "--json");
        assertThat(r.exit()).as(r.err()).isZero();
        JsonNode j = ModelCliTest.json(r);
        assertThat(j.get("seq").asInt()).isEqualTo(128);
        assertThat(j.get("tokens_per_s_median").asDouble()).isPositive();
        assertThat(j.get("model_gflops").asDouble()).isPositive();
        assertThat(j.get("tokens_per_s_samples")).hasSize(1);
    }
}
