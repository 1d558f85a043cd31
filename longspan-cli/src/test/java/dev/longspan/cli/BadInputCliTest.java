package dev.longspan.cli;

import dev.longspan.format.LongspanFormat;
import dev.longspan.io.ByteTokenizer;
import dev.longspan.model.ModelConfig;
import dev.longspan.model.Transformer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Every command with bad input: exit code 2, exactly one line on standard error (a usage error
 * names the help on that same line), no exception name and no stack frame. Missing files,
 * directories for files, bad numbers and specs, zero and negative sizes, unknown options and
 * lengths far beyond the heap.
 */
class BadInputCliTest {
    @TempDir
    static Path dir;

    static final String CONFIG = """
            {"model": {"vocab_size": 259, "dim": 16, "layers": 2, "heads": 2, "ffn_dim": 32, "context_length": 16},
             "train": {"seq_len": 16, "batch": 1, "steps": 4, "lr": 0.003, "eval_every": 2, "eval_windows": 1,
                       "checkpoint_every": 2, "seed": 3, "held_out": 0.2}}""";

    // placeholders of the table → paths made once for the whole class
    static Map<String, Path> fixtures;

    @BeforeAll
    static void fixtures() throws IOException {
        Path model = dir.resolve("model");
        ModelConfig c = new ModelConfig(ByteTokenizer.VOCAB, 16, 2, 2, 2, 8, 32, 1e-5f, true, "kind=rope,base=10000,pairing=half",
                Collections.nCopies(2, "dense"), "byte", 64);
        Transformer m = new Transformer(c);
        m.initialize(1);
        LongspanFormat.save(model, m);
        Path trunc = dir.resolve("truncated");
        Files.createDirectories(trunc);
        Files.copy(model.resolve("config.json"), trunc.resolve("config.json"));
        byte[] w = Files.readAllBytes(model.resolve("model.safetensors"));
        Files.write(trunc.resolve("model.safetensors"), Arrays.copyOf(w, w.length / 2));
        Path noWeights = dir.resolve("noweights");
        Files.createDirectories(noWeights);
        Files.copy(model.resolve("config.json"), noWeights.resolve("config.json"));
        Files.createDirectories(dir.resolve("emptydir"));
        // model directories whose config.json has a bad pattern, a wrong-typed tokenizer, a wrong-typed tied_embeddings
        Path badPattern = copyModel(model, "badpattern", "\"dense\"]", "\"foo\"]");
        Path badTokenizer = copyModel(model, "badtokenizer", "\"tokenizer\": \"byte\"", "\"tokenizer\": 7");
        Path badTied = copyModel(model, "badtied", "\"tied_embeddings\": true", "\"tied_embeddings\": \"yes\"");
        // a PEFT adapter for {model}, one whose config is not LoRA, one for another model's shapes
        var q = new dev.longspan.model.Lora.Spec(2, 4, java.util.EnumSet.of(dev.longspan.model.Lora.Target.Q));
        Transformer adapted = m.withAdapters(new dev.longspan.model.Lora(c, q, new float[dev.longspan.model.Lora.size(c, q)]));
        dev.longspan.format.PeftAdapter.save(dir.resolve("adapter"), adapted, List.of(), "model");
        Path badAdapter = dir.resolve("badadapter");
        dev.longspan.format.PeftAdapter.save(badAdapter, adapted, List.of(), "model");
        Files.writeString(badAdapter.resolve("adapter_config.json"), Files.readString(badAdapter.resolve("adapter_config.json")).replace("\"LORA\"", "\"IA3\""));
        ModelConfig wide = new ModelConfig(ByteTokenizer.VOCAB, 32, 2, 2, 2, 16, 32, 1e-5f, true, "kind=rope,base=10000,pairing=half",
                Collections.nCopies(2, "dense"), "byte", 64);
        dev.longspan.format.PeftAdapter.save(dir.resolve("wideadapter"), new Transformer(wide).withAdapters(
                new dev.longspan.model.Lora(wide, q, new float[dev.longspan.model.Lora.size(wide, q)])), List.of(), "wide");
        fixtures = Map.ofEntries(
                Map.entry("{adapter}", dir.resolve("adapter")),
                Map.entry("{badadapter}", badAdapter),
                Map.entry("{wideadapter}", dir.resolve("wideadapter")),
                Map.entry("{model}", model),
                Map.entry("{truncated}", trunc),
                Map.entry("{noweights}", noWeights),
                Map.entry("{badpattern}", badPattern),
                Map.entry("{badtokenizer}", badTokenizer),
                Map.entry("{badtied}", badTied),
                Map.entry("{dir}", dir.resolve("emptydir")),
                Map.entry("{missing}", dir.resolve("no-such-file")),
                Map.entry("{text}", Files.writeString(dir.resolve("text.txt"), "The quick brown fox jumps over the lazy dog. ".repeat(60))),
                Map.entry("{short}", Files.writeString(dir.resolve("short.txt"), "tiny text")),
                Map.entry("{empty}", Files.writeString(dir.resolve("empty.txt"), "")),
                Map.entry("{junk}", Files.writeString(dir.resolve("junk.gguf"), "not a model at all")),
                Map.entry("{cfg}", config("cfg.json", CONFIG)),
                Map.entry("{huge}", config("huge.json", CONFIG.replace("\"seq_len\": 16", "\"seq_len\": 100000000"))),
                Map.entry("{pattern}", config("pattern.json", CONFIG.replace("\"ffn_dim\": 32", "\"ffn_dim\": 32, \"attention\": [\"dense\", \"foo\"]"))),
                Map.entry("{rope}", config("rope.json", CONFIG.replace("\"ffn_dim\": 32", "\"ffn_dim\": 32, \"rope\": \"kind=bogus\""))),
                Map.entry("{evalzero}", config("evalzero.json", CONFIG.replace("\"eval_every\": 2", "\"eval_every\": 0"))),
                Map.entry("{ckptzero}", config("ckptzero.json", CONFIG.replace("\"checkpoint_every\": 2", "\"checkpoint_every\": 0"))),
                Map.entry("{out}", dir.resolve("out")));
    }

    // a copy of a model directory with one edit of its config.json (the edit must apply)
    static Path copyModel(Path model, String name, String from, String to) throws IOException {
        Path d = dir.resolve(name);
        Files.createDirectories(d);
        Files.copy(model.resolve("model.safetensors"), d.resolve("model.safetensors"));
        String cfg = Files.readString(model.resolve("config.json"));
        assertThat(cfg).contains(from);
        Files.writeString(d.resolve("config.json"), cfg.replace(from, to));
        return d;
    }

    static Path config(String name, String text) throws IOException {
        return Files.writeString(dir.resolve(name), text);
    }

    static Stream<String> badInputs() {
        return Stream.of(
                // train
                "train --config {missing} --data {text} --out {out}/1",
                "train --config {dir} --data {text} --out {out}/2",
                "train --config {text} --data {text} --out {out}/3",
                "train --config {cfg} --data {missing} --out {out}/4",
                "train --config {cfg} --data {dir} --out {out}/5",
                "train --config {cfg} --data {empty} --out {out}/6",
                "train --config {cfg} --data {short} --out {out}/7",
                "train --config {cfg} --data {text} --out {out}/8 --steps 0",
                "train --config {cfg} --data {text} --out {out}/9 --steps -5",
                "train --config {cfg} --data {text} --out {out}/10 --steps many",
                "train --config {cfg} --data {text} --out {out}/11 --stop-at 0",
                "train --config {cfg} --data {text} --out {out}/12 --frobnicate",
                "train --config {cfg} --data {text} --out {out}/13 --resume",
                "train --config {cfg} --data {text} --out {out}/14 --threads 0",
                "train --config {huge} --data {text} --out {out}/15",
                "train --config {pattern} --data {text} --out {out}/16",
                // train --lora
                "train --config {cfg} --data {text} --out {out}/l1 --lora 4",
                "train --config {cfg} --data {text} --out {out}/l2 --init {model} --lora 0",
                "train --config {cfg} --data {text} --out {out}/l3 --init {model} --lora 4 --lora-targets q,x",
                "train --config {cfg} --data {text} --out {out}/l4 --init {model} --lora 4 --train-also heads",
                "train --config {cfg} --data {text} --out {out}/l5 --init {model} --lora 4 --lora-alpha -1",
                "train --config {cfg} --data {text} --out {out}/l6 --init {model} --lora-alpha 4",
                "train --config {cfg} --data {text} --out {out}/l7 --init {missing} --lora 4",
                "train --config {cfg} --data {text} --out {out}/l8 --init {junk} --lora 4",
                "train --config {cfg} --data {text} --out {out}/l9 --init {model} --lora 4 --resume",
                "train --config {cfg} --data {text} --out {out}/l10 --init {model} --lora many",
                "train --config {huge} --data {text} --out {out}/l11 --init {model} --lora 4",
                "train --config {rope} --data {text} --out {out}/17",
                "train --config {evalzero} --data {text} --out {out}/18",
                "train --config {ckptzero} --data {text} --out {out}/19",
                "train --config {cfg} --data {text} --out {out}/20 --init {missing}",
                // generate
                "generate --model {missing} --prompt hello",
                "generate --model {dir} --prompt hello",
                "generate --model {junk} --prompt hello",
                "generate --model {truncated} --prompt hello",
                "generate --model {noweights} --prompt hello",
                "generate --model {model} --prompt ''",
                "generate --model {model} --prompt-file {missing}",
                "generate --model {model} --prompt-file {empty}",
                "generate --model {model} --prompt-file {dir}",
                "generate --model {model} --prompt-file {junk} --prompt hello",
                "generate --model {model}",
                "generate --model {model} --prompt hello --temperature NaN",
                "generate --model {model} --prompt hello --temperature -1",
                "generate --model {model} --prompt hello --top-p 2",
                "generate --model {model} --prompt hello --max-tokens -1",
                "generate --model {model} --prompt hello --chat-template-kwargs {x",
                "generate --model {model} --prompt hello --chat-template-kwargs [1]",
                "generate --model {model} --prompt hello --chat-template-kwargs {\"messages\":1}",
                "generate --model {model} --prompt hello --raw --chat-template-kwargs {}",
                "generate --model {model} --prompt hello --max-tokens lots",
                "generate --model {model} --prompt hello --max-tokens 2147483647",
                "generate --model {model} --prompt hello --attention foo",
                "generate --model {model} --prompt hello --rope kind=bogus",
                "generate --model {model} --prompt hello --rope kind=yarn,factor=8",
                "generate --model {badpattern} --prompt hello",
                "generate --model {badtokenizer} --prompt hello",
                "generate --model {badtied} --prompt hello",
                "info {badpattern}",
                "generate --model {model} --prompt hello --kv f8",
                "generate --model {model} --prompt hello --logn 1",
                "generate --model {model}",
                "generate --model {model} --prompt hello --adapter {missing}",
                "generate --model {model} --prompt hello --adapter {dir}",
                "generate --model {model} --prompt hello --adapter {badadapter}",
                "generate --model {model} --prompt hello --adapter {wideadapter}",
                // serve: refused before it listens
                "serve --model {missing}",
                "serve --model {junk}",
                "serve --model {model} --port -1",
                "serve --model {model} --chat-template-kwargs true",
                "serve --model {model} --port 70000",
                "serve --model {model} --parallel 0",
                "serve --model {model} --queue -1",
                "serve --model {model} --timeout 0",
                "serve --model {model} --max-body lots",
                "serve --model {model} --kv-budget 0",
                "serve --model {model} --kv-dir {text}",
                "serve --model {model} --ctx 1",
                "serve --model {model} --ctx 1024m",
                "serve --model {model} --kv f8",
                "serve --model {model} --attention foo",
                "serve --model {model} --api-key ''",
                "serve --model {model} --model-name ''",
                "serve --model {model} --adapter {badadapter}",
                "serve --model {model} --adapter {missing}",
                // info
                "info {missing}",
                "info {dir}",
                "info {junk}",
                "info {empty}",
                "info {truncated}",
                "info {noweights}",
                "info {model} --frobnicate",
                // passkey
                "passkey --model {missing}",
                "passkey --model {model} --lengths 1024m",
                "passkey --model {model} --lengths 512m",
                "passkey --model {model} --lengths abc",
                "passkey --model {model} --lengths 0",
                "passkey --model {model} --lengths -4k",
                "passkey --model {model} --lengths 1k --depths 2",
                "passkey --model {model} --lengths 1k --depths x",
                "passkey --model {model} --lengths 1k --trials 0",
                "passkey --model {model} --lengths 1k --filler {missing}",
                "passkey --model {model} --lengths 1k --filler {dir}",
                "passkey --model {model} --lengths 1k --filler {empty}",
                "passkey --model {model} --lengths 1k --attention foo",
                "passkey --model {model} --lengths 1k --kv f8",
                "passkey --model {model} --lengths 1k --adapter {badadapter}",
                // perplexity
                "perplexity --model {model} --data {missing}",
                "perplexity --model {model} --data {dir}",
                "perplexity --model {missing} --data {text}",
                "perplexity --model {model} --data {text} --lengths 1024m",
                "perplexity --model {model} --data {text} --lengths 64 --adapter {missing}",
                "perplexity --model {model} --data {text} --lengths 64 --tail 0",
                "perplexity --model {model} --data {text} --lengths 64 --tail 100",
                "perplexity --model {model} --data {text} --lengths 64 --windows 0",
                "perplexity --model {model} --data {text} --lengths 64,100k",
                "perplexity --model {model} --data {text} --lengths 64 --rope kind=yarn,factor=-2",
                "perplexity --model {model} --data {text} --ctx 16 --arithmetic ggml-avx2",
                "perplexity --model {junk} --data {text} --ctx 16 --arithmetic ggml-avx2",
                "perplexity --model {model} --data {text} --ctx 16 --arithmetic fast",
                // attention, rope
                "attention --in {missing} --out {out}/a.safetensors --pattern dense",
                "attention --in {dir} --out {out}/a.safetensors --pattern dense",
                "attention --in {junk} --out {out}/a.safetensors --pattern foo",
                "attention --in {missing} --out {out}/a.safetensors",
                "attention --in {missing} --out {out}/a.safetensors --pattern selectmerge:region=4,top=3,merge=1,pos=selected",
                "rope --in {missing} --out {out}/r.safetensors --spec kind=rope",
                "rope --in {dir} --out {out}/r.safetensors --spec kind=rope",
                "rope --in {junk} --out {out}/r.safetensors --spec kind=bogus",
                // tokenize, export
                "tokenize --model {missing}",
                "tokenize --tokenizer {missing}",
                "tokenize --tokenizer {junk}",
                "tokenize --model {dir}",
                "tokenize --tokenizer {dir}",
                "tokenize",
                "export --model {missing} --out {out}/m.gguf",
                "export --model {dir} --out {out}/m.gguf",
                "export --model {model} --out {out}/m.gguf --type q9",
                "export --model {truncated} --out {out}/m.gguf",
                "export --model {model} --out {out}/m2.gguf --merge-adapter {badadapter}",
                "export --model {model} --out {out}/m3.gguf --merge-adapter {wideadapter}",
                "export --random {cfg} --out {out}/m4.gguf --merge-adapter {adapter}",
                // demo
                "demo --model {missing}",
                "demo --model {model} --out {out}/demo1 --lengths 1024m",
                "demo --model {model} --out {out}/demo2 --lengths abc",
                "demo --model {model} --out {out}/demo3 --lengths 1k --attention-length 1024m",
                "demo --model {model} --out {out}/demo4 --lengths 1k --attention-length 0",
                "demo --model {model} --out {out}/demo5 --kv f8",
                "demo --model {model} --out {out}/demo6 --lengths 1k --dense-lengths 16k,8k",
                "demo --model {model} --out {out}/demo7 --lengths 1k --dense-lengths 8k",
                "demo --model {model} --out {out}/demo8 --lengths 1k --dense-lengths 64,1k",
                "demo --model {model} --out {out}/demo9 --lengths 1k --lm {missing}",
                "demo --model {model} --out {out}/demo10 --lengths 1k --lm {model} --lm-text {missing}",
                "demo --model {model} --out {out}/demo11 --lengths 1k --lm {model} --lm-text {text} --lm-lengths 64k",
                "demo --model {model} --out {out}/demo12 --lengths 1k --lm {model} --lm-text {text} --lm-lengths abc",
                // bench
                "bench gemm --size 0",
                "bench gemm --size -3",
                "bench gemm --size 64 --repeats 0",
                "bench gemm --size 64 --op sideways",
                "bench rope --spec kind=bogus",
                "bench rope --n 0",
                "bench rope --heads -1",
                "bench rope --n 1024m",
                "bench train --config {missing}",
                "bench train --config {cfg} --seq 1",
                "bench train --config {cfg} --seq 100000000",
                "bench train --config {cfg} --steps 0",
                "bench attention --pattern foo --seq 1024",
                "bench attention --pattern dense --seq 0",
                "bench attention --pattern dense --seq 1024m",
                "bench attention --pattern dense --seq 1024 --heads 0",
                "bench model --model {missing}",
                "bench model --model {model} --prompt-lengths 1024m",
                "bench model --model {model} --prompt-lengths 64 --gen -1",
                "bench model --model {model} --prompt-lengths 64 --warmup -1",
                "bench frobnicate",
                // ablate
                "ablate",
                "ablate split --data-dir {missing} --out {out}",
                "ablate split --data-dir {dir} --out {out}",
                "ablate split --hold-out '' --out {out}",
                "ablate row --config {missing} --run {dir} --perplexity {text}",
                "ablate row --config {cfg} --run {dir} --perplexity {text}",
                "ablate row --config {cfg} --run {model} --perplexity {text}",
                "ablate row --config {pattern} --run {dir} --perplexity {text}",
                "ablate row --config {cfg} --run {dir} --perplexity {text} --rows {dir}",
                "ablate render --rows {missing}",
                "ablate render --rows {text}",
                "ablate render --rows {empty}");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badInputs")
    void exitsTwoWithOneLine(String line) {
        // a command that got as far as reading standard input must not read the test runner's
        java.io.InputStream in = System.in;
        CliRun r;
        try {
            System.setIn(java.io.InputStream.nullInputStream());
            r = CliRun.of(args(line));
        } finally {
            System.setIn(in);
        }
        String err = r.err().strip();
        assertThat(r.exit()).as(r.err()).isEqualTo(Main.EXIT_BAD_INPUT);
        assertThat(err).as("one line on standard error").isNotEmpty().doesNotContain("\n").startsWith("longspan: ");
        assertThat(err).doesNotContain("Exception").doesNotContain("at dev.").doesNotContain("OutOfMemoryError");
    }

    @ParameterizedTest(name = "{0}")
    @org.junit.jupiter.params.provider.ValueSource(strings = {
            "train --config {cfg} --data {text} {dir} --out {out}/dirdata",
            "generate --model {model} --prompt-file {dir} --max-tokens 1",
            "passkey --model {model} --lengths 1k --trials 1 --filler {dir}"})
    void aDirectoryWhereAFileBelongsIsSaidSo(String line) {
        CliRun r = CliRun.of(args(line));
        assertThat(r.exit()).as(r.err()).isEqualTo(Main.EXIT_BAD_INPUT);
        // not the system's reason for failing to read or map it ("No such device")
        assertThat(r.err().strip()).doesNotContain("\n").contains(fixtures.get("{dir}").toString()).contains("is a directory");
    }

    // the line split on spaces, fixtures substituted; '' is an empty argument
    static String[] args(String line) {
        List<String> out = new ArrayList<>();
        for (String a : line.split(" ")) {
            if (a.equals("''")) {
                out.add("");
                continue;
            }
            for (var f : fixtures.entrySet()) a = a.replace(f.getKey(), f.getValue().toString());
            out.add(a);
        }
        return out.toArray(String[]::new);
    }
}
