package dev.longspan.cli;

import dev.longspan.format.LongspanFormat;
import dev.longspan.model.ModelConfig;
import dev.longspan.model.Transformer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFileAttributeView;
import java.util.List;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** Where the commands put their files, and what happens when they cannot. */
class OutputsCliTest {
    @TempDir
    Path dir;

    Path model() {
        ModelConfig c = new ModelConfig(259, 16, 2, 2, 2, 8, 32, 1e-5f, true, "kind=rope,base=10000",
                List.of("window:size=16", "dense"), "byte", 64);
        Transformer m = new Transformer(c);
        m.initialize(1);
        Path d = dir.resolve("model");
        LongspanFormat.save(d, m);
        return d;
    }

    Path text() throws Exception {
        return Files.writeString(dir.resolve("t.txt"), "In the beginning God created the heaven and the earth. ".repeat(20));
    }

    static void assertOneLineExit2(CliRun r, String... fragments) {
        assertThat(r.exit()).as(r.err()).isEqualTo(2);
        assertThat(r.err().strip()).doesNotContain("\n").doesNotContain("Exception").doesNotContain(".tmp").contains(fragments);
    }

    static List<String> names(Path d) throws Exception {
        try (Stream<Path> s = Files.list(d)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void evaluationsCheckTheirOutBeforeStarting() throws Exception {
        Path model = model();
        Path text = text();
        // a directory under a regular file cannot be made, not even by root
        Path blocked = Files.writeString(dir.resolve("file"), "x").resolve("sub");
        for (String[] args : List.of(
                new String[]{"passkey", "--model", model.toString(), "--lengths", "300", "--depths", "0.5", "--out", blocked.toString()},
                new String[]{"perplexity", "--model", model.toString(), "--data", text.toString(), "--lengths", "32", "--tail", "8",
                        "--windows", "1", "--out", blocked.toString()},
                new String[]{"demo", "--model", model.toString(), "--lengths", "300", "--attention-length", "256", "--dense-lengths", "300,400", "--out", blocked.toString()})) {
            CliRun r = CliRun.of(args);
            assertOneLineExit2(r, "file is a file");
            assertThat(r.out()).as(args[0]).isEmpty();
        }
        assertThat(names(model)).containsExactly("config.json", "model.safetensors");
    }

    @Test
    void resultsThatCannotBeSavedAreStillPrinted() throws Exception {
        Path model = model();
        Path text = text();
        // the folder is writable (the probe passes) but the result file's name is taken by a directory
        Path pk = Files.createDirectories(dir.resolve("pk/passkey.json")).getParent();
        CliRun passkey = CliRun.of("passkey", "--model", model.toString(), "--lengths", "300", "--depths", "0.5", "--out", pk.toString());
        assertThat(passkey.exit()).isEqualTo(2);
        assertThat(passkey.err()).doesNotContain("Exception").doesNotContain(".tmp")
                .endsWith("longspan: " + pk.resolve("passkey.json") + ": is a directory (a file name was expected)" + System.lineSeparator());
        assertThat(passkey.out()).contains("(accuracy by needle depth)").contains("overall 0/1 correct").doesNotContain("passkey.png");

        CliRun passkeyJson = CliRun.of("passkey", "--model", model.toString(), "--lengths", "300", "--depths", "0.5", "--out", pk.toString(), "--json");
        assertThat(passkeyJson.exit()).isEqualTo(2);
        JsonNode j = new ObjectMapper().readTree(passkeyJson.out());
        assertThat(j.get("cells")).hasSize(1);
        assertThat(j.has("files")).isFalse();

        Path pp = Files.createDirectories(dir.resolve("pp/perplexity.png")).getParent();
        CliRun perplexity = CliRun.of("perplexity", "--model", model.toString(), "--data", text.toString(), "--lengths", "32", "--tail", "8",
                "--windows", "1", "--out", pp.toString(), "--json");
        assertThat(perplexity.exit()).isEqualTo(2);
        assertThat(perplexity.err()).contains("perplexity.png: is a directory");
        assertThat(new ObjectMapper().readTree(perplexity.out()).get("points")).hasSize(1);

        Path demoOut = Files.createDirectories(dir.resolve("demo/passkey.png")).getParent();
        CliRun demo = CliRun.of("demo", "--model", model.toString(), "--lengths", "300", "--attention-length", "256", "--dense-lengths", "300,400", "--out", demoOut.toString());
        assertThat(demo.exit()).isEqualTo(2);
        assertThat(demo.err()).contains("passkey.png: is a directory");
        assertThat(demo.out()).contains("passkey accuracy by needle depth").contains("passkey 0/3 correct");
        for (Path d : List.of(pk, pp, demoOut)) assertThat(names(d)).noneMatch(n -> n.endsWith(".tmp"));
    }

    @Test
    void evaluationsDefaultToARunsFolderNotTheModel() {
        PasskeyCommand passkey = new PasskeyCommand();
        new CommandLine(passkey).parseArgs("--model", "models/longspan-passkey");
        assertThat(passkey.out).isEqualTo(Path.of("runs/passkey"));
        PerplexityCommand perplexity = new PerplexityCommand();
        new CommandLine(perplexity).parseArgs("--model", "models/longspan-passkey", "--data", "t.txt");
        assertThat(perplexity.out).isEqualTo(Path.of("runs/perplexity"));
        assertThat(new CommandLine(new PasskeyCommand()).getUsageMessage()).contains("default: runs/passkey");
    }

    @Test
    void aDirectoryWhereAnOutputFileGoesIsOneLine() throws Exception {
        Path model = model();
        Path taken = Files.createDirectory(dir.resolve("out.gguf"));
        assertOneLineExit2(CliRun.of("export", "--model", model.toString(), "--out", taken.toString()), "out.gguf: is a directory");
        assertThat(names(taken)).isEmpty();
        assertThat(names(dir)).containsExactly("model", "out.gguf");
    }

    @Test
    void exportedFilesGetTheUmaskMode() throws Exception {
        assumeTrue(Files.getFileAttributeView(dir, PosixFileAttributeView.class) != null, "POSIX permissions");
        Path model = model();
        Path gguf = dir.resolve("m.gguf");
        assertThat(CliRun.of("export", "--model", model.toString(), "--out", gguf.toString()).exit()).isZero();
        Path reference = Files.createFile(dir.resolve("reference"));
        for (Path p : List.of(gguf, model.resolve("config.json"), model.resolve("model.safetensors"))) {
            assertThat(Files.getPosixFilePermissions(p)).as(p.toString()).isEqualTo(Files.getPosixFilePermissions(reference));
        }
    }
}
