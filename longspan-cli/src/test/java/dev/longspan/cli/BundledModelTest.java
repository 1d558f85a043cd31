package dev.longspan.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The shipped weights (models/longspan-passkey, docs/MODEL.md) still retrieve at short lengths with
 * their own sparse plan, on the standard filler and on the novel they never trained on: a guard
 * against committing weights, a config or an inference change that breaks the bundled model (the
 * long-length results are measured by the commands docs/MODEL.md gives, not here).
 */
class BundledModelTest {
    static Path root() { return Path.of(System.getProperty("user.dir")).resolve("..").normalize(); }

    @ParameterizedTest(name = "filler {0}")
    @ValueSource(strings = {"standard", "data/gutenberg/pg1661.txt"})
    void retrievesEveryKeyWithItsOwnSparsePlan(String filler, @TempDir Path dir) throws Exception {
        List<String> args = new ArrayList<>(List.of("passkey", "--model", root().resolve("models/longspan-passkey").toString(),
                "--lengths", "1k,2k", "--depths", "0,0.5,1", "--trials", "2", "--out", dir.toString(), "--json"));
        if (!filler.equals("standard")) args.addAll(List.of("--filler", root().resolve(filler).toString()));
        CliRun r = CliRun.of(args.toArray(String[]::new));
        assertThat(r.exit()).as(r.err()).isZero();
        JsonNode j = new ObjectMapper().readTree(r.out());
        assertThat(j.get("attention").toString()).contains("selectmerge");
        int trials = 0, correct = 0;
        for (JsonNode c : j.get("cells")) {
            trials += c.get("trials").asInt();
            correct += c.get("correct").asInt();
            for (JsonNode t : c.get("results")) {
                int offset = t.get("filler_offset").asInt();
                if (filler.equals("standard")) assertThat(offset).isZero();
                else assertThat(offset).isBetween(0, (int) java.nio.file.Files.size(root().resolve(filler)) - 1);
            }
        }
        assertThat(trials).isEqualTo(12);
        assertThat(correct).as(r.out()).isEqualTo(12);
    }
}
