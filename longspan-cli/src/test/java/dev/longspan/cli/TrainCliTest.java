package dev.longspan.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

class TrainCliTest {
    @TempDir
    Path dir;

    static final String CONFIG = """
            {"model": {"vocab_size": 259, "dim": 16, "layers": 2, "heads": 2, "ffn_dim": 32,
                       "attention": "masformer|full=1|placement=top|sparse=dense", "context_length": 16},
             "train": {"seq_len": 16, "batch": 1, "steps": 6, "lr": 0.003, "eval_every": 3, "eval_windows": 1,
                       "checkpoint_every": 3, "seed": 3, "held_out": 0.2}}""";

    @Test
    void trainsThenInfoAndGenerateWork() throws Exception {
        Path cfg = Files.writeString(dir.resolve("c.json"), CONFIG);
        Path text = Files.writeString(dir.resolve("t.txt"), "The quick brown fox jumps over the lazy dog. ".repeat(20));
        Path out = dir.resolve("run");
        CliRun r = CliRun.of("train", "--config", cfg.toString(), "--data", text.toString(), "--out", out.toString(), "--json");
        assertThat(r.exit()).as(r.err()).isZero();
        JsonNode j = new ObjectMapper().readTree(r.out());
        assertThat(j.get("steps").asInt()).isEqualTo(6);
        assertThat(j.get("final_loss").asDouble()).isPositive();
        assertThat(out.resolve("loss.png")).exists();
        assertThat(Files.readAllLines(out.resolve("metrics.jsonl"))).hasSize(6);

        // a second train into the same directory without --resume is refused; with --resume and more steps it continues
        CliRun again = CliRun.of("train", "--config", cfg.toString(), "--data", text.toString(), "--out", out.toString());
        assertThat(again.exit()).isEqualTo(2);
        assertThat(again.err()).contains("--resume");
        CliRun resumed = CliRun.of("train", "--config", cfg.toString(), "--data", text.toString(), "--out", out.toString(), "--resume", "--steps", "9");
        assertThat(resumed.exit()).as(resumed.err()).isZero();
        assertThat(Files.readAllLines(out.resolve("metrics.jsonl"))).hasSize(9);

        CliRun info = CliRun.of("info", out.toString());
        assertThat(info.exit()).isZero();
        assertThat(info.out()).contains("layer  0  dense").contains("parameters");

        CliRun gen = CliRun.of("generate", "--model", out.toString(), "--prompt", "The quick", "--max-tokens", "5", "--temperature", "0", "--json");
        assertThat(gen.exit()).as(gen.err()).isZero();
        JsonNode g = new ObjectMapper().readTree(gen.out());
        assertThat(g.get("generated_tokens").asInt()).isBetween(0, 5);
        assertThat(g.get("prompt_tokens").asInt()).isEqualTo(9);
    }

    @Test
    void badInputGivesOneLineAndExitTwo() throws Exception {
        Path text = Files.writeString(dir.resolve("t.txt"), "hello world");
        CliRun missing = CliRun.of("train", "--config", dir.resolve("nope.json").toString(), "--data", text.toString(), "--out", dir.resolve("o").toString());
        assertThat(missing.exit()).isEqualTo(2);
        assertThat(missing.err().strip()).contains("nope.json").doesNotContain("\n").doesNotContain("Exception");

        Path bad = Files.writeString(dir.resolve("bad.json"), CONFIG.replace("\"lr\": 0.003", "\"lr\": \"fast\""));
        CliRun badCfg = CliRun.of("train", "--config", bad.toString(), "--data", text.toString(), "--out", dir.resolve("o").toString());
        assertThat(badCfg.exit()).isEqualTo(2);
        assertThat(badCfg.err()).contains("lr");

        CliRun noModel = CliRun.of("generate", "--model", dir.resolve("none").toString(), "--prompt", "x");
        assertThat(noModel.exit()).isEqualTo(2);

        CliRun unknown = CliRun.of("frobnicate");
        assertThat(unknown.exit()).isEqualTo(2);
    }

    static void assertOneLine(CliRun r, String... fragments) {
        assertThat(r.exit()).as(r.err()).isEqualTo(2);
        assertThat(r.err().strip()).doesNotContain("\n").doesNotContain("Exception").contains(fragments);
    }

    @Test
    void anOutHoldingAModelOrOtherFilesIsRefusedUnlessForced() throws Exception {
        Path cfg = Files.writeString(dir.resolve("c.json"), CONFIG);
        Path text = Files.writeString(dir.resolve("t.txt"), "The quick brown fox jumps over the lazy dog. ".repeat(20));
        Path model = Files.createDirectory(dir.resolve("model"));
        Files.writeString(model.resolve("config.json"), "{\"mine\": true}");
        Files.writeString(model.resolve("model.safetensors"), "weights");
        Files.writeString(model.resolve("README"), "notes");
        CliRun refused = CliRun.of("train", "--config", cfg.toString(), "--data", text.toString(), "--out", model.toString(), "--steps", "3");
        assertOneLine(refused, "already holds a model", "README, config.json, model.safetensors", "--force");
        assertThat(Files.readString(model.resolve("config.json"))).isEqualTo("{\"mine\": true}");
        assertThat(Files.readString(model.resolve("model.safetensors"))).isEqualTo("weights");
        assertThat(model.resolve("metrics.jsonl")).doesNotExist();

        Path other = Files.createDirectory(dir.resolve("other"));
        Files.writeString(other.resolve("notes.txt"), "mine");
        assertOneLine(CliRun.of("train", "--config", cfg.toString(), "--data", text.toString(), "--out", other.toString()),
                "is not empty (notes.txt)", "--force");
        assertOneLine(CliRun.of("train", "--config", cfg.toString(), "--data", text.toString(), "--out", other.resolve("notes.txt").toString()),
                "notes.txt: is a file, not a directory");
        // a directory that cannot be made (under a file: fails for root too) is refused before any training
        CliRun unwritable = CliRun.of("train", "--config", cfg.toString(), "--data", text.toString(), "--out", other.resolve("notes.txt/run").toString());
        assertOneLine(unwritable, "notes.txt is a file");
        assertThat(unwritable.err()).doesNotContain("parameters");

        CliRun forced = CliRun.of("train", "--config", cfg.toString(), "--data", text.toString(), "--out", model.toString(), "--steps", "3", "--force", "--json");
        assertThat(forced.exit()).as(forced.err()).isZero();
        assertThat(Files.readString(model.resolve("config.json"))).contains("vocab_size");
        assertThat(Files.readString(model.resolve("README"))).isEqualTo("notes");
        assertThat(Files.readAllLines(model.resolve("metrics.jsonl"))).hasSize(3);
        try (var files = Files.list(model)) {
            assertThat(files.map(f -> f.getFileName().toString())).noneMatch(n -> n.endsWith(".tmp"));
        }
    }

    @Test
    void initResumeAndForceCombinationsAreCheckedBeforeAnyWork() throws Exception {
        Path cfg = Files.writeString(dir.resolve("c.json"), CONFIG);
        Path text = Files.writeString(dir.resolve("t.txt"), "The quick brown fox jumps over the lazy dog. ".repeat(20));
        Path base = dir.resolve("base");
        assertThat(CliRun.of("train", "--config", cfg.toString(), "--data", text.toString(), "--out", base.toString(), "--steps", "3").exit()).isZero();
        Path fresh = dir.resolve("fresh");
        assertOneLine(CliRun.of("train", "--config", cfg.toString(), "--data", text.toString(), "--out", fresh.toString(), "--init", base.toString(), "--resume"),
                "--init and --resume");
        assertOneLine(CliRun.of("train", "--config", cfg.toString(), "--data", text.toString(), "--out", base.toString(), "--force", "--resume"),
                "--force and --resume");
        assertOneLine(CliRun.of("train", "--config", cfg.toString(), "--data", text.toString(), "--out", base.toString(), "--init", base.toString(), "--force"),
                "--init and --out are the same directory");
        assertThat(fresh).doesNotExist();
        assertThat(base.resolve("model.safetensors")).exists();
        // fine-tuning into a new directory works, and a run is continued only with --resume
        CliRun tuned = CliRun.of("train", "--config", cfg.toString(), "--data", text.toString(), "--out", fresh.toString(), "--init", base.toString(), "--steps", "3");
        assertThat(tuned.exit()).as(tuned.err()).isZero();
        assertOneLine(CliRun.of("train", "--config", cfg.toString(), "--data", text.toString(), "--out", fresh.toString(), "--init", base.toString(), "--steps", "3"),
                "already holds a run", "--resume");
        CliRun resumed = CliRun.of("train", "--config", cfg.toString(), "--data", text.toString(), "--out", fresh.toString(), "--resume", "--steps", "4");
        assertThat(resumed.exit()).as(resumed.err()).isZero();
        assertThat(Files.readAllLines(fresh.resolve("metrics.jsonl"))).hasSize(4);
    }

    /**
     * --init into a grown config: a layer more (placed by --insert-layers-at), heads twice as wide, or dim and ffn_dim twice as wide;
     * the first step's loss equals the base model's own loss on that step's batch (the same function).
     */
    @Test
    void initGrowsAModelIntoMoreLayersWiderHeadsOrAWiderResidual() throws Exception {
        String dense = CONFIG.replace("\"attention\": \"masformer|full=1|placement=top|sparse=dense\"", "\"attention\": \"dense\"");
        Path cfg = Files.writeString(dir.resolve("c.json"), dense);
        Path text = Files.writeString(dir.resolve("t.txt"), "The quick brown fox jumps over the lazy dog. ".repeat(20));
        Path base = dir.resolve("base");
        assertThat(CliRun.of("train", "--config", cfg.toString(), "--data", text.toString(), "--out", base.toString(), "--steps", "3").exit()).isZero();
        // the base model's loss on the first batch, taken before the first update (seed 3: the same batches in every run below)
        CliRun same = CliRun.of("train", "--config", cfg.toString(), "--data", text.toString(), "--out", dir.resolve("same").toString(), "--init", base.toString(), "--steps", "1", "--json");
        assertThat(same.exit()).as(same.err()).isZero();
        double baseLoss = new ObjectMapper().readTree(same.out()).get("final_loss").asDouble();

        Path deeper = Files.writeString(dir.resolve("deeper.json"), dense.replace("\"layers\": 2", "\"layers\": 3"));
        CliRun grown = CliRun.of("train", "--config", deeper.toString(), "--data", text.toString(), "--out", dir.resolve("deep").toString(),
                "--init", base.toString(), "--insert-layers-at", "1", "--steps", "1", "--json");
        assertThat(grown.exit()).as(grown.err()).isZero();
        assertThat(new ObjectMapper().readTree(grown.out()).get("final_loss").asDouble()).isCloseTo(baseLoss, org.assertj.core.api.Assertions.within(1e-4));

        Path wider = Files.writeString(dir.resolve("wider.json"), dense.replace("\"heads\": 2,", "\"heads\": 2, \"head_dim\": 16,"));
        CliRun wide = CliRun.of("train", "--config", wider.toString(), "--data", text.toString(), "--out", dir.resolve("wide").toString(),
                "--init", base.toString(), "--steps", "1", "--json");
        assertThat(wide.exit()).as(wide.err()).isZero();
        assertThat(new ObjectMapper().readTree(wide.out()).get("final_loss").asDouble()).isCloseTo(baseLoss, org.assertj.core.api.Assertions.within(1e-4));

        // a residual stream and MLP twice as wide (norm_eps halved: exactly the same function)
        Path broad = Files.writeString(dir.resolve("broad.json"), dense.replace("\"dim\": 16,", "\"dim\": 32, \"head_dim\": 8, \"norm_eps\": 5e-6,")
                .replace("\"ffn_dim\": 32", "\"ffn_dim\": 64"));
        CliRun broadRun = CliRun.of("train", "--config", broad.toString(), "--data", text.toString(), "--out", dir.resolve("broad").toString(),
                "--init", base.toString(), "--steps", "1", "--json");
        assertThat(broadRun.exit()).as(broadRun.err()).isZero();
        assertThat(new ObjectMapper().readTree(broadRun.out()).get("final_loss").asDouble()).isCloseTo(baseLoss, org.assertj.core.api.Assertions.within(1e-4));
        assertOneLine(CliRun.of("train", "--config", broad.toString(), "--data", text.toString(), "--out", dir.resolve("broad2").toString(),
                "--init", base.toString(), "--insert-layers-at", "1", "--steps", "1"), "--insert-layers-at", "grow one way per run");
        Path narrow = Files.writeString(dir.resolve("narrow.json"), dense.replace("\"dim\": 16,", "\"dim\": 8, \"head_dim\": 8,"));
        assertOneLine(CliRun.of("train", "--config", narrow.toString(), "--data", text.toString(), "--out", dir.resolve("narrow").toString(),
                "--init", base.toString(), "--steps", "1"), "shape differs", "dim and ffn_dim may grow");

        assertOneLine(CliRun.of("train", "--config", deeper.toString(), "--data", text.toString(), "--out", dir.resolve("far").toString(),
                "--init", base.toString(), "--insert-layers-at", "5", "--steps", "1"), "--insert-layers-at 5", "0..2");
        assertOneLine(CliRun.of("train", "--config", deeper.toString(), "--data", text.toString(), "--out", dir.resolve("noinit").toString(),
                "--insert-layers-at", "1", "--steps", "1"), "--insert-layers-at needs --init");
        // a previous-token embedding added at zero: the same function; then that model fine-tuned again, and refusals
        Path shifted = Files.writeString(dir.resolve("shifted.json"), dense.replace("\"heads\": 2,", "\"heads\": 2, \"token_shift\": true,"));
        CliRun shift = CliRun.of("train", "--config", shifted.toString(), "--data", text.toString(), "--out", dir.resolve("shift").toString(),
                "--init", base.toString(), "--steps", "1", "--json");
        assertThat(shift.exit()).as(shift.err()).isZero();
        assertThat(Files.readString(dir.resolve("shift/config.json"))).contains("\"token_shift\"");
        assertThat(new ObjectMapper().readTree(shift.out()).get("final_loss").asDouble()).isCloseTo(baseLoss, org.assertj.core.api.Assertions.within(1e-4));
        CliRun again = CliRun.of("train", "--config", shifted.toString(), "--data", text.toString(), "--out", dir.resolve("shift2").toString(),
                "--init", dir.resolve("shift").toString(), "--steps", "1");
        assertThat(again.exit()).as(again.err()).isZero();
        assertOneLine(CliRun.of("train", "--config", cfg.toString(), "--data", text.toString(), "--out", dir.resolve("unshift").toString(),
                "--init", dir.resolve("shift").toString(), "--steps", "1"), "token_shift", "set \"token_shift\": true");
        assertOneLine(CliRun.of("train", "--config", Files.writeString(dir.resolve("shiftdeep.json"), dense.replace("\"layers\": 2", "\"layers\": 3")
                        .replace("\"heads\": 2,", "\"heads\": 2, \"token_shift\": true,")).toString(), "--data", text.toString(),
                "--out", dir.resolve("shiftdeep").toString(), "--init", base.toString(), "--steps", "1"), "adding token_shift", "grow one way per run");
        assertOneLine(CliRun.of("export", "--model", dir.resolve("shift").toString(), "--out", dir.resolve("s.gguf").toString()), "token_shift");
        // a second table (the token two places back) added to the shifted model at zero: its function again
        Path shifted2 = Files.writeString(dir.resolve("shifted2.json"), dense.replace("\"heads\": 2,", "\"heads\": 2, \"token_shift\": 2,"));
        CliRun again1 = CliRun.of("train", "--config", shifted.toString(), "--data", text.toString(), "--out", dir.resolve("shift1b").toString(),
                "--init", dir.resolve("shift").toString(), "--steps", "1", "--json");
        CliRun two = CliRun.of("train", "--config", shifted2.toString(), "--data", text.toString(), "--out", dir.resolve("shift2b").toString(),
                "--init", dir.resolve("shift").toString(), "--steps", "1", "--json");
        assertThat(two.exit()).as(two.err()).isZero();
        assertThat(Files.readString(dir.resolve("shift2b/config.json"))).contains("\"token_shift\": 2");
        assertThat(Files.exists(dir.resolve("shift2b/model.safetensors"))).isTrue();
        assertThat(new ObjectMapper().readTree(two.out()).get("final_loss").asDouble())
                .isCloseTo(new ObjectMapper().readTree(again1.out()).get("final_loss").asDouble(), org.assertj.core.api.Assertions.within(1e-4));
        assertOneLine(CliRun.of("train", "--config", shifted.toString(), "--data", text.toString(), "--out", dir.resolve("unshift2").toString(),
                "--init", dir.resolve("shift2b").toString(), "--steps", "1"), "2 previous-token embedding(s)", "set \"token_shift\": 2 or more");
        assertOneLine(CliRun.of("train", "--config", Files.writeString(dir.resolve("shift9.json"), dense.replace("\"heads\": 2,", "\"heads\": 2, \"token_shift\": 9,")).toString(),
                "--data", text.toString(), "--out", dir.resolve("shift9").toString(), "--steps", "1"), "token_shift", "0..8");
        Path odd = Files.writeString(dir.resolve("odd.json"), dense.replace("\"heads\": 2,", "\"heads\": 2, \"head_dim\": 12,"));
        assertOneLine(CliRun.of("train", "--config", odd.toString(), "--data", text.toString(), "--out", dir.resolve("odd").toString(),
                "--init", base.toString(), "--steps", "1"), "shape differs");
    }

    /**
     * Progress off a terminal (a log file) comes as whole lines, flushed, the first at once and then
     * at most one per interval; on a terminal the redrawn line is flushed at every update.
     */
    @Test
    void progressReachesALogFileAsLinesAndATerminalAtOnce() {
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        java.io.PrintStream err = new java.io.PrintStream(new java.io.BufferedOutputStream(bytes, 1 << 16), false);
        var log = TrainCommand.progressConsumer(err, false, 3_600_000);
        log.accept("train  10% [=     ] 1/10");
        assertThat(bytes.toString()).isEqualTo("train  10% [=     ] 1/10" + System.lineSeparator());
        log.accept("train  20% [==    ] 2/10");
        assertThat(bytes.toString()).as("within the interval: no second line").doesNotContain("2/10");
        var every = TrainCommand.progressConsumer(err, false, 0);
        every.accept("train  30% 3/10");
        every.accept("train  40% 4/10");
        assertThat(bytes.toString()).contains("3/10" + System.lineSeparator(), "4/10" + System.lineSeparator());
        bytes.reset();
        var tty = TrainCommand.progressConsumer(err, true, 0);
        tty.accept("train  50% 5/10");
        assertThat(bytes.toString()).as("flushed without a newline").contains("5/10").doesNotContain(System.lineSeparator());
    }
}
