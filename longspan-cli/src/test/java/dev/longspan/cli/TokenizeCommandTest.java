package dev.longspan.cli;

import static dev.longspan.cli.CliRun.shared;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

class TokenizeCommandTest {
    record Result(int code, String out, String err) {}

    static synchronized Result run(String stdin, String... args) {
        InputStream in = System.in;
        PrintStream out = System.out, err = System.err;
        ByteArrayOutputStream o = new ByteArrayOutputStream(), e = new ByteArrayOutputStream();
        try {
            System.setIn(new ByteArrayInputStream(stdin.getBytes(StandardCharsets.UTF_8)));
            System.setOut(new PrintStream(o, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(e, true, StandardCharsets.UTF_8));
            int code = Main.execute(args);
            return new Result(code, o.toString(StandardCharsets.UTF_8), e.toString(StandardCharsets.UTF_8));
        } finally {
            System.setIn(in);
            System.setOut(out);
            System.setErr(err);
        }
    }

    @TempDir
    Path dir;

    @Test
    void encodesAndDecodesWithTheQwenTokenizer() throws Exception {
        String qwen = shared("tokenizers/qwen3/tokenizer.json").toString();
        Result r = run("Hello world", "tokenize", "--tokenizer", qwen);
        assertThat(r.code()).isZero();
        assertThat(r.out().strip()).isEqualTo("9707 1879");
        r = run("<|im_start|>user\n你好 123", "tokenize", "--tokenizer", qwen, "--json");
        assertThat(r.code()).isZero();
        JsonNode j = Json.MAPPER.readTree(r.out());
        assertThat(j.get("count").asInt()).isEqualTo(j.get("ids").size());
        assertThat(j.get("ids").get(0).asInt()).isEqualTo(151644);
        StringBuilder ids = new StringBuilder();
        j.get("ids").forEach(n -> ids.append(n.asInt()).append(", "));
        r = run(ids.toString(), "tokenize", "--tokenizer", qwen, "--decode");
        assertThat(r.code()).isZero();
        assertThat(r.out()).isEqualTo("<|im_start|>user\n你好 123");
        r = run("[9707, 1879]", "tokenize", "--model", shared("tokenizers/qwen3").toString(), "--decode", "--json");
        assertThat(Json.MAPPER.readTree(r.out()).get("text").asText()).isEqualTo("Hello world");
    }

    /**
     * --decode shows text as the file's own tools do: Llama 3's tokenizer_config.json and llama.cpp's gpt-2
     * pre-tokenizer ask for the clean-up of tokenization spaces, Qwen3 and SentencePiece vocabularies do not;
     * --keep-spaces gives the decoded text exactly.
     */
    @Test
    void decodeCleansTokenizationSpacesWhereTheFileAsks() throws Exception {
        String text = "Hello , world ! I 'm here . Is n't it ?";
        for (String[] tk : new String[][]{{"--tokenizer", shared("tokenizers/llama3/tokenizer.json").toString(), "Hello, world! I'm here. Isn't it?"},
                {"--model", shared("tokenizers/llamacpp-vocab/ggml-vocab-gpt-2.gguf").toString(), "Hello, world! I'm here. Is n't it?"},
                {"--tokenizer", shared("tokenizers/qwen3/tokenizer.json").toString(), text},
                {"--model", shared("tokenizers/llamacpp-vocab/ggml-vocab-llama-spm.gguf").toString(), text}}) {
            Result r = run(text, "tokenize", tk[0], tk[1], "--json");
            assertThat(r.code()).as(r.err()).isZero();
            String ids = Json.MAPPER.readTree(r.out()).get("ids").toString();
            r = run(ids, "tokenize", tk[0], tk[1], "--decode");
            assertThat(r.out()).as(tk[1]).isEqualTo(tk[2]);
            r = run("{\"ids\": " + ids + "}\n", "tokenize", tk[0], tk[1], "--decode", "--jsonl", "--keep-spaces");
            assertThat(Json.MAPPER.readTree(r.out()).get("text").asText()).as(tk[1]).isEqualTo(text);
        }
        // SentencePiece as llama.cpp's llama_detokenize: the space after a special token stays (1 = <s>, 0 = <unk>)
        String spm = shared("tokenizers/llamacpp-vocab/ggml-vocab-llama-spm.gguf").toString();
        Result r = run("1 15043 0 3186", "tokenize", "--model", spm, "--decode");
        assertThat(r.out()).isEqualTo("<s> Hello<unk> world");
        assertThat(run("1", "tokenize", "--model", spm, "--keep-spaces").code()).isEqualTo(2);
    }

    @Test
    void readsGgufAndLongspanModelDirectories() throws Exception {
        Result r = run("Hi", "tokenize", "--model", shared("gguf/tiny-random-llama.gguf").toString());
        assertThat(r.code()).isZero();
        assertThat(r.out().strip()).isEqualTo("229 153 132 75 108");
        Path model = Files.createDirectories(dir.resolve("model"));
        Files.writeString(model.resolve("config.json"), "{\"tokenizer\": \"byte\", \"dim\": 64}");
        r = run("ab", "tokenize", "--model", model.toString(), "--json");
        assertThat(Json.MAPPER.readTree(r.out()).get("ids").toString()).isEqualTo("[97,98]");
        r = run("104 105", "tokenize", "--model", dir.resolve("model").toString(), "--decode");
        assertThat(r.out()).isEqualTo("hi");
        Path empty = Files.createDirectories(dir.resolve("empty"));
        r = run("a", "tokenize", "--model", empty.toString());   // names no tokenizer: an error, not a silent byte tokenizer
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("no tokenizer.json, config.json or single .gguf file");
    }

    @Test
    void badInputIsOneLineAndExitCode2() throws Exception {
        Result r = run("x", "tokenize", "--tokenizer", dir.resolve("missing.json").toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err().strip().lines()).hasSize(1);
        assertThat(r.err()).contains("no such file");

        Path noMerges = dir.resolve("tokenizer.json");
        Files.writeString(noMerges, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}");
        r = run("x", "tokenize", "--tokenizer", noMerges.toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err().strip().lines()).hasSize(1);
        assertThat(r.err()).contains("merges");

        Path gguf = dir.resolve("t5.gguf");
        new dev.longspan.io.GgufWriter().putString("tokenizer.ggml.model", "t5").putStringArray("tokenizer.ggml.tokens", new String[]{"a"}).write(gguf);
        r = run("x", "tokenize", "--model", gguf.toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("'t5' is not supported");

        Path byteModel = Files.createDirectories(dir.resolve("bytes"));
        Files.writeString(byteModel.resolve("config.json"), "{\"tokenizer\": \"byte\"}");
        r = run("1 2 banana", "tokenize", "--model", byteModel.toString(), "--decode");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("'banana'");
        r = run("999", "tokenize", "--model", byteModel.toString(), "--decode");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("outside the vocabulary");

        r = run("x", "tokenize");
        assertThat(r.code()).isEqualTo(2);
        r = run("x", "tokenize", "--model", "a", "--tokenizer", "b");
        assertThat(r.code()).isEqualTo(2);
    }

    @Test
    void jsonLinesBatchEncodesAndDecodesManyTextsInOneRun() throws Exception {
        String qwen = shared("tokenizers/qwen3/tokenizer.json").toString();
        Result r = run("{\"text\": \"Hello world\"}\n\n{\"text\": \"line\\nbreak <|im_end|>\"}\n", "tokenize", "--tokenizer", qwen, "--jsonl");
        assertThat(r.code()).isZero();
        String[] lines = r.out().strip().split("\n");
        assertThat(lines).hasSize(2);
        assertThat(Json.MAPPER.readTree(lines[0]).get("ids").toString()).isEqualTo("[9707,1879]");
        JsonNode second = Json.MAPPER.readTree(lines[1]).get("ids");
        assertThat(second.get(second.size() - 1).asInt()).isEqualTo(151645);
        // and back
        Result d = run("{\"ids\": [9707, 1879]}\n" + "{\"ids\": " + second + "}\n", "tokenize", "--tokenizer", qwen, "--jsonl", "--decode");
        assertThat(d.code()).isZero();
        String[] texts = d.out().strip().split("\n");
        assertThat(Json.MAPPER.readTree(texts[0]).get("text").asText()).isEqualTo("Hello world");
        assertThat(Json.MAPPER.readTree(texts[1]).get("text").asText()).isEqualTo("line\nbreak <|im_end|>");
        // a bad line is one clear error naming the line
        Result bad = run("{\"text\": \"ok\"}\n{\"txt\": 1}\n", "tokenize", "--tokenizer", qwen, "--jsonl");
        assertThat(bad.code()).isEqualTo(2);
        assertThat(bad.err()).contains("line 2").doesNotContain("Exception");
    }
}
