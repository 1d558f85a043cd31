package dev.longspan.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/** --resume keeps the run's schedule, says when it changes, and refuses a run with nothing left to train. */
class TrainResumeCliTest {
    @TempDir
    Path dir;

    @Test
    void resumeKeepsTheScheduleOfAnEarlierStepsAndRefusesAFinishedRun() throws Exception {
        Path cfg = Files.writeString(dir.resolve("c.json"), TrainCliTest.CONFIG.replace("\"steps\": 6", "\"steps\": 30"));
        Path text = Files.writeString(dir.resolve("t.txt"), "The quick brown fox jumps over the lazy dog. ".repeat(20));
        Path out = dir.resolve("run");
        String[] base = {"train", "--config", cfg.toString(), "--data", text.toString(), "--out", out.toString()};
        CliRun first = CliRun.of(concat(base, "--steps", "6", "--stop-at", "3"));
        assertThat(first.exit()).as(first.err()).isZero();

        // without --steps: the run's 6-step schedule, not the file's 30 (the warnings go through
        // Log, whose stream is fixed when it loads: they are not captured here)
        CliRun resumed = CliRun.of(concat(base, "--resume", "--json"));
        assertThat(resumed.exit()).as(resumed.err()).isZero();
        assertThat(new ObjectMapper().readTree(resumed.out()).get("steps").asInt()).isEqualTo(6);

        CliRun done = CliRun.of(concat(base, "--resume", "--steps", "6"));
        assertThat(done.exit()).isEqualTo(2);
        assertThat(done.err().strip()).isEqualTo("longspan: " + out + ": the run is already at step 6 of its 6-step schedule,"
                + " nothing to train (give a larger --steps to continue it)");

        CliRun longer = CliRun.of(concat(base, "--resume", "--steps", "8"));
        assertThat(longer.exit()).as(longer.err()).isZero();
    }

    static String[] concat(String[] a, String... b) {
        String[] r = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }
}
