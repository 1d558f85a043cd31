package dev.longspan.cli;

import dev.longspan.format.ModelLoader;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.longspan.format.LongspanFormat;
import dev.longspan.io.ByteTokenizer;
import dev.longspan.model.ModelConfig;
import dev.longspan.model.Transformer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * LoRA from the command line: train --lora on a model directory with a config that holds only
 * the training settings, resume it, apply the adapter with --adapter (perplexity, generate), and
 * merge it into a GGUF with export --merge-adapter, whose perplexity equals the unmerged one's.
 */
class LoraCliTest {
    @TempDir
    Path dir;

    static final String TRAIN_ONLY = """
            {"train": {"seq_len": 32, "batch": 1, "steps": 6, "lr": 0.01, "eval_every": 3, "eval_windows": 1,
                       "checkpoint_every": 3, "seed": 3, "held_out": 0.2}}""";

    @Test
    void trainResumeApplyAndMerge() throws Exception {
        Path base = dir.resolve("base");
        ModelConfig c = new ModelConfig(ByteTokenizer.VOCAB, 32, 2, 2, 2, 16, 64, 1e-5f, true, "kind=rope,base=10000,pairing=half",
                Collections.nCopies(2, "dense"), "byte", 64);
        Transformer m = new Transformer(c);
        m.initialize(1);
        LongspanFormat.save(base, m);
        Path cfg = Files.writeString(dir.resolve("c.json"), TRAIN_ONLY);
        Path text = Files.writeString(dir.resolve("t.txt"), "The quick brown fox jumps over the lazy dog. ".repeat(40));
        Path out = dir.resolve("run");
        CliRun r = CliRun.of("train", "--config", cfg.toString(), "--data", text.toString(), "--out", out.toString(),
                "--init", base.toString(), "--lora", "4", "--lora-alpha", "8", "--lora-targets", "q,v,down", "--train-also", "norms", "--stop-at", "3", "--json");
        assertThat(r.exit()).as(r.err()).isZero();
        JsonNode j = new ObjectMapper().readTree(r.out());
        assertThat(j.get("steps").asInt()).isEqualTo(3);
        // q [32, 32], v [32, 32], down [32, 64] per layer at rank 4, and 5 norms of 32
        assertThat(j.get("trained_parameters").asLong()).isEqualTo(2L * 4 * (64 + 64 + 96) + 5 * 32);
        assertThat(out.resolve("adapter_model.safetensors")).exists();
        assertThat(out.resolve("adapter_config.json")).exists();
        assertThat(out.resolve("model.safetensors")).doesNotExist();
        CliRun resumed = CliRun.of("train", "--config", cfg.toString(), "--data", text.toString(), "--out", out.toString(), "--resume", "--json");
        assertThat(resumed.exit()).as(resumed.err()).isZero();
        assertThat(new ObjectMapper().readTree(resumed.out()).get("steps").asInt()).isEqualTo(6);
        CliRun twice = CliRun.of("train", "--config", cfg.toString(), "--data", text.toString(), "--out", out.toString(), "--resume", "--lora", "4");
        assertThat(twice.exit()).isEqualTo(2);
        assertThat(twice.err()).contains("--resume");

        double plain = perplexity(CliRun.of("perplexity", "--model", base.toString(), "--data", text.toString(), "--lengths", "32", "--tail", "16", "--out", dir.resolve("p0").toString(), "--json"));
        double adapted = perplexity(CliRun.of("perplexity", "--model", base.toString(), "--adapter", out.toString(), "--data", text.toString(), "--lengths", "32", "--tail", "16", "--out", dir.resolve("p1").toString(), "--json"));
        assertThat(adapted).isNotEqualTo(plain);

        Path merged = dir.resolve("merged.gguf");
        CliRun e = CliRun.of("export", "--model", base.toString(), "--merge-adapter", out.toString(), "--out", merged.toString());
        assertThat(e.exit()).as(e.err()).isZero();
        assertThat(e.out()).contains("merged");
        double viaMerged = perplexity(CliRun.of("perplexity", "--model", merged.toString(), "--data", text.toString(), "--lengths", "32", "--tail", "16", "--out", dir.resolve("p2").toString(), "--json"));
        assertThat(viaMerged).isCloseTo(adapted, org.assertj.core.api.Assertions.within(1e-4 * adapted));

        CliRun gen = CliRun.of("generate", "--model", base.toString(), "--adapter", out.toString(), "--prompt", "The quick", "--max-tokens", "4", "--temperature", "0", "--json");
        assertThat(gen.exit()).as(gen.err()).isZero();
        CliRun pk = CliRun.of("passkey", "--model", base.toString(), "--adapter", out.toString(), "--lengths", "300", "--trials", "1", "--depths", "0.5", "--out", dir.resolve("pk").toString(), "--json");
        assertThat(pk.exit()).as(pk.err()).isZero();

        // serve --adapter: the served completion is the merged model's (same text, log-probabilities
        // within float tolerance) and not the base's
        JsonNode adapterServed = served(ModelLoading.load(base, null, null, ModelLoader.Weights.REPACKED, out));
        JsonNode mergedServed = served(ModelLoading.load(merged, null, null, ModelLoader.Weights.REPACKED, null));
        JsonNode baseServed = served(ModelLoading.load(base, null, null, ModelLoader.Weights.REPACKED, null));
        assertThat(adapterServed.path("text").asText()).isEqualTo(mergedServed.path("text").asText());
        JsonNode la = adapterServed.path("logprobs").path("token_logprobs"), lm = mergedServed.path("logprobs").path("token_logprobs");
        JsonNode lb = baseServed.path("logprobs").path("token_logprobs");
        assertThat(la.size()).isEqualTo(8);
        double differsFromBase = 0;
        for (int i = 0; i < la.size(); i++) {
            assertThat(la.get(i).asDouble()).isCloseTo(lm.get(i).asDouble(), org.assertj.core.api.Assertions.within(1e-3));
            differsFromBase = Math.max(differsFromBase, Math.abs(la.get(i).asDouble() - lb.get(i).asDouble()));
        }
        assertThat(differsFromBase).isGreaterThan(1e-5);
    }

    // the first choice of a greedy 8-token completion of "The quick" through a real server, with log-probabilities
    static JsonNode served(dev.longspan.format.ModelLoader.LoadedModel lm) throws Exception {
        dev.longspan.server.ServerOptions o = ServeTest.options(1, 1, 600_000, null, 1L << 30, null);
        try (dev.longspan.server.OpenAiServer s = dev.longspan.server.OpenAiServer.create(lm, JinjaChatTemplate.forModel(lm),
                dev.longspan.model.InferenceOptions.DEFAULT, o, "lora-test").start()) {
            var r = ServeTest.post(s, "/v1/completions",
                    "{\"model\": \"stories260K\", \"prompt\": \"The quick\", \"max_tokens\": 8, \"temperature\": 0, \"logprobs\": 1}");
            assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
            return new ObjectMapper().readTree(r.body()).path("choices").get(0);
        }
    }

    static double perplexity(CliRun r) throws Exception {
        assertThat(r.exit()).as(r.err()).isZero();
        JsonNode j = new ObjectMapper().readTree(r.out());
        JsonNode p = j.has("points") ? j.get("points").get(0) : j;
        return p.get("perplexity").asDouble();
    }
}
