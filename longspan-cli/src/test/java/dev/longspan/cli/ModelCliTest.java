package dev.longspan.cli;

import dev.longspan.format.LongspanFormat;
import dev.longspan.io.ByteTokenizer;
import dev.longspan.model.ModelConfig;
import dev.longspan.model.Transformer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;

/** generate / info / passkey / perplexity / export / bench model on GGUF files and Longspan directories. */
class ModelCliTest {
    @TempDir
    Path dir;

    static Path tinyLlama() {
        Path alt = Path.of(System.getProperty("user.dir")).resolve("../../shared/data/gguf/tiny-random-llama.gguf").normalize();
        return Files.exists(alt) ? alt : Path.of("/work/shared/data/gguf/tiny-random-llama.gguf");
    }

    Path longspanModel() {
        ModelConfig c = new ModelConfig(ByteTokenizer.VOCAB, 32, 2, 2, 1, 16, 64, 1e-5f, false, "kind=rope,base=10000,pairing=half",
                Collections.nCopies(2, "dense"), "byte", 256);
        Transformer m = new Transformer(c);
        m.initialize(5);
        SplittableRandom r = new SplittableRandom(2);
        for (int i = 0; i < m.params.length; i++) m.params[i] += (float) r.nextDouble(-0.2, 0.2);
        Path d = dir.resolve("ls");
        LongspanFormat.save(d, m);
        return d;
    }

    static JsonNode json(CliRun r) throws Exception {
        assertThat(r.exit()).as(r.err()).isZero();
        return new ObjectMapper().readTree(r.out());
    }

    @Test
    void exportedGgufGeneratesWhatTheLongspanModelGenerates() throws Exception {
        Path ls = longspanModel();
        Path gguf = dir.resolve("out.gguf");
        JsonNode e = json(CliRun.of("export", "--model", ls.toString(), "--out", gguf.toString(), "--json"));
        assertThat(e.get("type").asText()).isEqualTo("F32");
        JsonNode a = json(CliRun.of("generate", "--model", ls.toString(), "--prompt", "The pass key is", "--max-tokens", "12", "--temperature", "0", "--json"));
        JsonNode b = json(CliRun.of("generate", "--model", gguf.toString(), "--prompt", "The pass key is", "--max-tokens", "12", "--temperature", "0", "--json"));
        assertThat(b.get("format").asText()).isEqualTo("gguf");
        assertThat(b.get("prompt_tokens").asInt()).isEqualTo(15);
        assertThat(b.get("text").asText()).isEqualTo(a.get("text").asText());
        assertThat(b.get("generated_tokens").asInt()).isEqualTo(a.get("generated_tokens").asInt());
        CliRun info = CliRun.of("info", gguf.toString());
        assertThat(info.exit()).as(info.err()).isZero();
        assertThat(info.out()).contains("2 layers, dim 32, 2 heads (1 kv) x 16");
        // an F32 export: the matrices and norms all F32 (2 layers × 9 tensors, the output norm, embedding, output)
        assertThat(info.out()).containsPattern("tensors +F32 ×[0-9]+");
        JsonNode types = json(CliRun.of("info", gguf.toString(), "--json")).get("tensor_types");
        assertThat(types.fieldNames()).toIterable().containsExactly("F32");
        // a llama.cpp quantization: its mix of types, most first
        JsonNode mix = json(CliRun.of("info", CliRun.shared("models/stories260K/quant/stories260K-Q4_K_M.gguf").toString(), "--json")).get("tensor_types");
        assertThat(mix.get("Q5_0").asInt()).isEqualTo(29);
        assertThat(mix.fieldNames().next()).isEqualTo("Q5_0");
        CliRun sampled = CliRun.of("generate", "--model", gguf.toString(), "--prompt", "ab", "--max-tokens", "5", "--temperature", "1", "--seed", "3");
        assertThat(sampled.exit()).as(sampled.err()).isZero();
    }

    @Test
    void perplexityWithLlamaCppsArithmeticPrintsLlamaPerplexitysFigure() throws Exception {
        // the data README's llama-perplexity -c 128 figure for the Q4_K_M target (a Q5_0 / Q8_0 / F16 mix), F16 cache
        String model = CliRun.shared("models/stories260K/quant/stories260K-Q4_K_M.gguf").toString(), text = CliRun.shared("text/story.txt").toString();
        JsonNode r = json(CliRun.of("perplexity", "--model", model, "--data", text, "--ctx", "128", "--kv", "f16", "--arithmetic", "ggml-avx2", "--json"));
        assertThat(r.get("arithmetic").asText()).isEqualTo("ggml-avx2");
        assertThat(r.get("tokens").asInt()).isEqualTo(189);
        assertThat(String.format(java.util.Locale.ROOT, "%.4f", r.get("perplexity").asDouble())).isEqualTo("3.3423");
        // the native AVX-512 build's figure for the same command (0.4% away)
        JsonNode n = json(CliRun.of("perplexity", "--model", model, "--data", text, "--ctx", "128", "--arithmetic", "ggml-avx512", "--json"));
        assertThat(n.get("arithmetic").asText()).isEqualTo("ggml-avx512");
        assertThat(String.format(java.util.Locale.ROOT, "%.4f", n.get("perplexity").asDouble())).isEqualTo("3.3293");
        CliRun plain = CliRun.of("perplexity", "--model", model, "--data", text, "--whole", "--arithmetic", "ggml-avx2");
        assertThat(plain.exit()).as(plain.err()).isZero();
        assertThat(plain.out()).startsWith("perplexity ");
        for (String[] bad : new String[][]{{"--arithmetic", "ggml-neon"}, {"--arithmetic", "ggml-avx2", "--attention", "dense"},
                {"--arithmetic", "ggml-avx2", "--kv", "q8"}, {"--arithmetic", "ggml-avx2", "--dequantize"}}) {
            String[] args = java.util.stream.Stream.concat(java.util.stream.Stream.of("perplexity", "--model", model, "--data", text, "--ctx", "128"),
                    java.util.Arrays.stream(bad)).toArray(String[]::new);
            CliRun b = CliRun.of(args);
            assertThat(b.exit()).as(String.join(" ", bad)).isEqualTo(2);
            assertThat(b.err().strip()).as(String.join(" ", bad)).doesNotContain("\n").doesNotContain("Exception");
        }
    }

    @Test
    void exportRandomWritesAQuantizedModelThatBenchRunsRepackedStoredOrDequantized() throws Exception {
        Path cfg = Files.writeString(dir.resolve("c.json"), "{\"vocab_size\": 300, \"dim\": 256, \"layers\": 1, \"heads\": 4, \"kv_heads\": 2,"
                + " \"ffn_dim\": 256, \"tokenizer\": \"byte\", \"rope\": \"kind=rope,base=10000,pairing=half\", \"attention\": \"dense\", \"context_length\": 64}");
        Path gguf = dir.resolve("r.gguf");
        JsonNode e = json(CliRun.of("export", "--random", cfg.toString(), "--type", "q4_k", "--seed", "3", "--out", gguf.toString(), "--json"));
        assertThat(e.get("type").asText()).isEqualTo("Q4_K");
        JsonNode repacked = json(CliRun.of("bench", "model", "--model", gguf.toString(), "--prompt-lengths", "9", "--gen", "2", "--json"));
        assertThat(repacked.get("weights").asText()).isEqualTo("repacked");
        JsonNode stored = json(CliRun.of("bench", "model", "--model", gguf.toString(), "--prompt-lengths", "9", "--gen", "2", "--no-repack", "--json"));
        assertThat(stored.get("weights").asText()).isEqualTo("stored");
        assertThat(stored.get("results").get(0).get("resident_bytes").asLong()).isPositive();
        // Q4_K repacked: fp16 scales kept, six-bit scales and mins a byte each: 148 bytes per 256 against 144
        assertThat(repacked.get("weight_bytes").asLong()).isGreaterThan(stored.get("weight_bytes").asLong());
        assertThat((double) repacked.get("weight_bytes").asLong()).isLessThan(stored.get("weight_bytes").asLong() * 1.1);
        // --kv f16: the cache in half precision, half the bytes of the default f32 one
        JsonNode half = json(CliRun.of("bench", "model", "--model", gguf.toString(), "--prompt-lengths", "9", "--gen", "2", "--kv", "f16", "--json"));
        assertThat(repacked.get("kv").asText()).isEqualTo("f32");
        assertThat(half.get("kv").asText()).isEqualTo("f16");
        assertThat(half.get("results").get(0).get("kv_cache_bytes").asLong() * 2).isEqualTo(repacked.get("results").get(0).get("kv_cache_bytes").asLong());
        CliRun badKv = CliRun.of("bench", "model", "--model", gguf.toString(), "--prompt-lengths", "9", "--kv", "q8");
        assertThat(badKv.exit()).isEqualTo(2);
        assertThat(badKv.err()).contains("--kv");
        JsonNode deq = json(CliRun.of("bench", "model", "--model", gguf.toString(), "--prompt-lengths", "9", "--gen", "2", "--dequantize", "--json"));
        assertThat(deq.get("weights").asText()).isEqualTo("float32");
        assertThat(deq.get("weight_bytes").asLong()).isGreaterThan(stored.get("weight_bytes").asLong());
        CliRun both = CliRun.of("export", "--random", cfg.toString(), "--model", dir.toString(), "--out", dir.resolve("x.gguf").toString());
        assertThat(both.exit()).isEqualTo(2);
        assertThat(both.err()).contains("either --model");
        CliRun badType = CliRun.of("export", "--random", cfg.toString(), "--type", "q5_k", "--out", dir.resolve("x.gguf").toString());
        assertThat(badType.exit()).isEqualTo(2);
        assertThat(badType.err()).contains("q4_k");
    }

    @Test
    void ggufModelRunsGeneratePasskeyPerplexityAndBench() throws Exception {
        Path m = tinyLlama();
        JsonNode g = json(CliRun.of("generate", "--model", m.toString(), "--prompt", "Hello", "--max-tokens", "3", "--temperature", "0", "--json"));
        assertThat(g.get("generated_tokens").asInt()).isEqualTo(3);
        // the same prompt from a file: the same continuation
        Path promptFile = Files.writeString(dir.resolve("prompt.txt"), "Hello");
        JsonNode gf = json(CliRun.of("generate", "--model", m.toString(), "--prompt-file", promptFile.toString(), "--max-tokens", "3", "--temperature", "0", "--json"));
        assertThat(gf.get("text").asText()).isEqualTo(g.get("text").asText());
        assertThat(gf.get("prompt_tokens").asInt()).isEqualTo(g.get("prompt_tokens").asInt());
        CliRun pkRun = CliRun.of("passkey", "--model", m.toString(), "--lengths", "400", "--depths", "0.5", "--out", dir.toString(), "--json");
        JsonNode pk = json(pkRun);
        assertThat(pk.get("cells").get(0).get("length").asInt()).isEqualTo(400);
        assertThat(pk.get("accuracy").asDouble()).isBetween(0.0, 1.0);
        // the progress line of each trial says what was answered and, when wrong, what the key was
        JsonNode trial = pk.get("cells").get(0).get("results").get(0);
        String said = trial.get("correct").asBoolean() ? "ok (" + trial.get("answer").asText() + ")"
                : "WRONG (answered " + trial.get("answer").asText() + ", the key is " + trial.get("key").asText() + ")";
        assertThat(pkRun.err()).contains("[1/1] length 400 depth 0.50: " + said);
        assertThat(trial.get("filler_offset").asInt()).as("the standard filler starts every trial afresh").isZero();
        Path text = Files.writeString(dir.resolve("t.txt"), "In the beginning God created the heaven and the earth. ".repeat(20));
        JsonNode pp = json(CliRun.of("perplexity", "--model", m.toString(), "--data", text.toString(), "--lengths", "32,64", "--tail", "8",
                "--windows", "3", "--out", dir.toString(), "--json"));
        assertThat(pp.get("points").get(0).get("perplexity").asDouble()).isGreaterThan(1.0);
        // per-window losses, and the longer context against the first on the same windows
        JsonNode p0 = pp.get("points").get(0), p1 = pp.get("points").get(1);
        assertThat(p0.get("window_losses")).hasSize(3);
        assertThat(p0.has("vs_first")).isFalse();
        assertThat(p1.get("vs_first").get("length").asInt()).isEqualTo(32);
        assertThat(p1.get("vs_first").get("loss_diff").asDouble())
                .isCloseTo(p1.get("loss").asDouble() - p0.get("loss").asDouble(), org.assertj.core.data.Offset.offset(1e-9));
        assertThat(p1.get("vs_first").get("standard_error").asDouble()).isGreaterThanOrEqualTo(0.0);
        assertThat(pp.get("bytes_per_token").asDouble()).isGreaterThan(0.5);
        JsonNode b = json(CliRun.of("bench", "model", "--model", m.toString(), "--prompt-lengths", "16,32", "--gen", "2", "--warmup", "1", "--json"));
        assertThat(b.get("warmup_runs").asInt()).isEqualTo(1);
        assertThat(b.get("results")).hasSize(2);
        assertThat(b.get("results").get(1).get("pp_tokens_per_s").get("median").asDouble()).isPositive();
        assertThat(b.get("attention")).hasSize(4);
    }

    @Test
    void badModelFilesGiveOneLineAndExitTwo() throws Exception {
        byte[] bytes = Files.readAllBytes(tinyLlama());
        Path trunc = Files.write(dir.resolve("trunc.gguf"), java.util.Arrays.copyOf(bytes, 100_000));
        CliRun r = CliRun.of("generate", "--model", trunc.toString(), "--prompt", "x");
        assertThat(r.exit()).isEqualTo(2);
        assertThat(r.err().strip()).contains("trunc.gguf").doesNotContain("\n").doesNotContain("Exception");
        Path junk = Files.writeString(dir.resolve("junk.gguf"), "not a model at all");
        CliRun j = CliRun.of("info", junk.toString());
        assertThat(j.exit()).isEqualTo(2);
        assertThat(j.err()).contains("junk.gguf");
        CliRun ex = CliRun.of("export", "--model", dir.resolve("nothing").toString(), "--out", dir.resolve("x.gguf").toString());
        assertThat(ex.exit()).isEqualTo(2);
        assertThat(dir.resolve("x.gguf")).doesNotExist();
    }
}
