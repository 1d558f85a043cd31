package dev.longspan.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/**
 * {@code train --parallel data} and {@code --parallel sequence} under real Open MPI
 * ({@code mpirun --oversubscribe -np 2}): the loss curve equals the single-process run's within
 * float tolerance, and a data-parallel run stopped and resumed on two processes continues on
 * exactly the curve of an uninterrupted two-process run; {@code bench attention --parallel sequence}
 * reports the bytes each rank sent.
 */
class MpiCliTest {
    @TempDir
    Path dir;

    static final String CONFIG = TrainCliTest.CONFIG.replace("\"batch\": 1", "\"batch\": 4");

    @Test
    void dataParallelLossMatchesOneProcessAndResumesOnTheSameCurve() throws Exception {
        String mpirun = findMpirun();
        Assumptions.assumeTrue(mpirun != null, "mpirun not found (apt-get install -y openmpi-bin libopenmpi-dev)");
        Path cfg = Files.writeString(dir.resolve("c.json"), CONFIG);
        Path text = Files.writeString(dir.resolve("t.txt"), "The quick brown fox jumps over the lazy dog. ".repeat(20));
        String[] base = {"train", "--config", cfg.toString(), "--data", text.toString(), "--threads", "1"};

        CliRun single = CliRun.of(TrainResumeCliTest.concat(base, "--out", dir.resolve("one").toString()));
        assertThat(single.exit()).as(single.err()).isZero();

        mpirun(mpirun, TrainResumeCliTest.concat(base, "--out", dir.resolve("two").toString(), "--parallel", "data"));
        mpirun(mpirun, TrainResumeCliTest.concat(base, "--out", dir.resolve("cut").toString(), "--parallel", "data", "--stop-at", "3"));
        mpirun(mpirun, TrainResumeCliTest.concat(base, "--out", dir.resolve("cut").toString(), "--parallel", "data", "--resume"));

        double[] one = losses(dir.resolve("one")), two = losses(dir.resolve("two")), cut = losses(dir.resolve("cut"));
        assertThat(two).hasSize(6);
        for (int i = 0; i < one.length; i++) assertThat(two[i]).as("step %d", i + 1).isCloseTo(one[i], within(1e-5 * Math.abs(one[i])));
        assertThat(cut).containsExactly(two);
    }

    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(ints = {0, 2})
    void sequenceParallelLossMatchesOneProcessAndResumesOnTheSameCurve(int tokenShift) throws Exception {
        String mpirun = findMpirun();
        Assumptions.assumeTrue(mpirun != null, "mpirun not found (apt-get install -y openmpi-bin libopenmpi-dev)");
        // a dilated pair whose segment (16) spans both shards (8 rows each), beside a local one; with a
        // token shift of 2 the second shard's first two rows read the first shard's last two tokens
        String config = CONFIG.replace("masformer|full=1|placement=top|sparse=dense", "dilated:w=4,16;r=1,2");
        if (tokenShift > 0) config = config.replace("\"heads\": 2,", "\"heads\": 2, \"token_shift\": " + tokenShift + ",");
        Path cfg = Files.writeString(dir.resolve("c.json"), config);
        Path text = Files.writeString(dir.resolve("t.txt"), "The quick brown fox jumps over the lazy dog. ".repeat(20));
        String[] base = {"train", "--config", cfg.toString(), "--data", text.toString(), "--threads", "1", "--steps", "4"};
        CliRun single = CliRun.of(TrainResumeCliTest.concat(base, "--out", dir.resolve("one").toString()));
        assertThat(single.exit()).as(single.err()).isZero();
        mpirun(mpirun, TrainResumeCliTest.concat(base, "--out", dir.resolve("seq").toString(), "--parallel", "sequence"));
        mpirun(mpirun, TrainResumeCliTest.concat(base, "--out", dir.resolve("cut").toString(), "--parallel", "sequence", "--stop-at", "2"));
        mpirun(mpirun, TrainResumeCliTest.concat(base, "--out", dir.resolve("cut").toString(), "--parallel", "sequence", "--resume"));
        double[] one = losses(dir.resolve("one")), seq = losses(dir.resolve("seq")), cut = losses(dir.resolve("cut"));
        assertThat(seq).hasSize(4);
        for (int i = 0; i < one.length; i++) assertThat(seq[i]).as("step %d", i + 1).isCloseTo(one[i], within(1e-5 * Math.abs(one[i])));
        assertThat(cut).as("stopped at step 2 and resumed").containsExactly(seq);
    }

    @Test
    void benchAttentionParallelSequenceCountsTheSparsifiedRowsEachRankSends() throws Exception {
        String mpirun = findMpirun();
        Assumptions.assumeTrue(mpirun != null, "mpirun not found (apt-get install -y openmpi-bin libopenmpi-dev)");
        String out = mpirun(mpirun, "bench", "attention", "--parallel", "sequence", "--pattern", "dilated:w=64,512;r=1,8",
                "--seq", "512", "--heads", "2", "--head-dim", "8", "--backward", "--repeats", "1", "--threads", "1", "--json");
        var j = new ObjectMapper().readTree(out.substring(out.indexOf('{'))).get("results").get(0);
        // only the w=512 pair spans the two shards of 256: rank 0 keeps 256/8 rows per head and
        // sends their K and V (2 heads × 32 rows × 8 floats × 2 × 4 bytes) to rank 1, which sends
        // their gradients back
        assertThat(j.get("forward_bytes_sent_per_rank").toString()).isEqualTo("[4096,0]");
        assertThat(j.get("backward_bytes_sent_per_rank").toString()).isEqualTo("[0,4096]");
    }

    private static double[] losses(Path run) throws Exception {
        List<String> lines = Files.readAllLines(run.resolve("metrics.jsonl"));
        ObjectMapper m = new ObjectMapper();
        double[] out = new double[lines.size()];
        for (int i = 0; i < out.length; i++) out[i] = m.readTree(lines.get(i)).get("loss").asDouble();
        return out;
    }

    private static String mpirun(String mpirun, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(mpirun, "--allow-run-as-root", "--oversubscribe", "-np", "2",
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Xmx384m", "-XX:TieredStopAtLevel=1",
                "-Dlongspan.quiet=true", "-cp", System.getProperty("java.class.path"), Main.class.getName()));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        byte[] output = p.getInputStream().readAllBytes();
        assertThat(p.waitFor(10, TimeUnit.MINUTES)).isTrue();
        assertThat(p.exitValue()).as(new String(output)).isZero();
        return new String(output, java.nio.charset.StandardCharsets.UTF_8);
    }

    private static String findMpirun() {
        for (String d : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            Path p = Path.of(d, "mpirun");
            if (Files.isExecutable(p)) return p.toString();
        }
        return null;
    }
}
