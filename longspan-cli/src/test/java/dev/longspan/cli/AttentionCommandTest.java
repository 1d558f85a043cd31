package dev.longspan.cli;

import dev.longspan.attention.Attention;
import dev.longspan.attention.AttentionOptions;
import dev.longspan.attention.AttentionReference;
import dev.longspan.attention.AttentionResult;
import dev.longspan.attention.Pattern;
import dev.longspan.attention.Plan;
import dev.longspan.io.SafetensorsFile;
import dev.longspan.io.SafetensorsWriter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

class AttentionCommandTest {
    @TempDir
    Path dir;

    static float[] random(SplittableRandom r, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) r.nextDouble(-1, 1);
        return x;
    }

    record Run(int code, String out, String err) {}

    static synchronized Run run(String... args) {
        PrintStream oldOut = System.out, oldErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        try {
            int code = Main.execute(args);
            return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
    }

    @Test
    void forwardAndBackwardMatchTheReference() throws Exception {
        int H = 4, Hkv = 2, N = 45, D = 7;
        SplittableRandom r = new SplittableRandom(3);
        float[] q = random(r, H * N * D), k = random(r, Hkv * N * D), v = random(r, Hkv * N * D), dO = random(r, H * N * D);
        Path in = dir.resolve("in.safetensors"), out = dir.resolve("out.safetensors");
        new SafetensorsWriter().putF32("q", new long[]{H, N, D}, q).putF32("k", new long[]{Hkv, N, D}, k)
                .putF32("v", new long[]{Hkv, N, D}, v).putF32("do", new long[]{H, N, D}, dO).write(in);
        String spec = "window:size=5+dilated:w=16,64;r=1,3";
        Run run = run("attention", "--in", in.toString(), "--out", out.toString(), "--pattern", spec, "--backward", "--threads", "2");
        assertThat(run.code()).as(run.err()).isZero();

        int[][] counts = AttentionReference.counts(Plan.of(Pattern.parse(spec), N, H, Hkv, true));
        double scale = 1 / Math.sqrt(D);
        AttentionReference.Output ref = AttentionReference.forward(q, k, v, H, Hkv, N, D, counts, scale);
        AttentionReference.Grads g = AttentionReference.backward(q, k, v, dO, H, Hkv, N, D, counts, scale);
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            assertThat(f.shape("o")).containsExactly(H, N, D);
            assertThat(f.shape("lse")).containsExactly(H, N);
            assertThat(f.shape("dk")).containsExactly(Hkv, N, D);
            assertThat(f.metadata()).containsEntry("pattern", spec);
            close(f.floats("o"), ref.o());
            close(f.floats("lse"), ref.lse());
            close(f.floats("dq"), g.dq());
            close(f.floats("dk"), g.dk());
            close(f.floats("dv"), g.dv());
        }
    }

    @Test
    void bidirectionalAndScaleReachTheEngine() throws Exception {
        int H = 2, N = 30, D = 4;
        SplittableRandom r = new SplittableRandom(4);
        float[] q = random(r, H * N * D), k = random(r, H * N * D), v = random(r, H * N * D);
        Path in = dir.resolve("in.safetensors"), out = dir.resolve("out.safetensors");
        new SafetensorsWriter().putF32("q", new long[]{H, N, D}, q).putF32("k", new long[]{H, N, D}, k).putF32("v", new long[]{H, N, D}, v).write(in);
        Run run = run("attention", "--in", in.toString(), "--out", out.toString(), "--pattern", "block:size=8", "--bidirectional", "--scale", "0.3");
        assertThat(run.code()).as(run.err()).isZero();
        AttentionResult e = Attention.forward(q, k, v, H, H, N, D, Pattern.parse("block:size=8"),
                AttentionOptions.DEFAULT.withBidirectional(true).withScale(0.3f));
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            assertThat(f.floats("o")).containsExactly(e.o());
            assertThat(f.floats("lse")).containsExactly(e.lse());
        }
    }

    @Test
    void badInputsGiveOneLineAndExitCode2() throws Exception {
        int H = 2, N = 10, D = 4;
        SplittableRandom r = new SplittableRandom(5);
        Path good = dir.resolve("good.safetensors"), out = dir.resolve("out.safetensors");
        new SafetensorsWriter().putF32("q", new long[]{H, N, D}, random(r, H * N * D)).putF32("k", new long[]{H, N, D}, random(r, H * N * D))
                .putF32("v", new long[]{H, N, D}, random(r, H * N * D)).write(good);
        Path missing = dir.resolve("missing.safetensors");
        new SafetensorsWriter().putF32("q", new long[]{H, N, D}, random(r, H * N * D)).putF32("k", new long[]{H, N, D}, random(r, H * N * D)).write(missing);
        Path wrongShape = dir.resolve("wrong.safetensors");
        new SafetensorsWriter().putF32("q", new long[]{H, N, D}, random(r, H * N * D)).putF32("k", new long[]{H, N + 1, D}, random(r, H * (N + 1) * D))
                .putF32("v", new long[]{H, N + 1, D}, random(r, H * (N + 1) * D)).write(wrongShape);
        Path rank2 = dir.resolve("rank2.safetensors");
        new SafetensorsWriter().putF32("q", new long[]{N, D}, random(r, N * D)).write(rank2);
        Path heads = dir.resolve("heads.safetensors");
        new SafetensorsWriter().putF32("q", new long[]{3, N, D}, random(r, 3 * N * D)).putF32("k", new long[]{2, N, D}, random(r, 2 * N * D))
                .putF32("v", new long[]{2, N, D}, random(r, 2 * N * D)).write(heads);
        Path ints = dir.resolve("ints.safetensors");
        new SafetensorsWriter().putI64("q", new long[]{1, 1, 1}, new long[]{1}).putF32("k", new long[]{1, 1, 1}, new float[1])
                .putF32("v", new long[]{1, 1, 1}, new float[1]).write(ints);
        Path garbage = dir.resolve("garbage.safetensors");
        Files.writeString(garbage, "this is not a safetensors file");

        String[][] cases = {
                {missing.toString(), "dense", "", "no tensor named 'v'"},
                {wrongShape.toString(), "dense", "", "tensor 'k' has shape [2, 11, 4]"},
                {rank2.toString(), "dense", "", "tensor 'q' has shape [10, 4]"},
                {heads.toString(), "dense", "", "not a multiple"},
                {ints.toString(), "dense", "", "is I64, expected F32"},
                {garbage.toString(), "dense", "", "garbage.safetensors"},
                {dir.resolve("nope.safetensors").toString(), "dense", "", "nope.safetensors"},
                {good.toString(), "windw:size=3", "", "unknown pattern 'windw'"},
                {good.toString(), "window:size=0", "", "size must be a positive integer"},
                {good.toString(), "selectmerge:region=2,top=2,merge=1", "--bidirectional", "causal only"},
                {good.toString(), "dense", "--backward", "no tensor named 'do'"},
        };
        for (String[] c : cases) {
            Run run = c[2].isEmpty()
                    ? run("attention", "--in", c[0], "--out", out.toString(), "--pattern", c[1])
                    : run("attention", "--in", c[0], "--out", out.toString(), "--pattern", c[1], c[2]);
            assertThat(run.code()).as(c[3] + ": " + run.err()).isEqualTo(Main.EXIT_BAD_INPUT);
            assertThat(run.err()).contains(c[3]);
            assertThat(run.err().strip().lines().filter(l -> l.startsWith("longspan:")).count()).as(run.err()).isEqualTo(1);
            assertThat(run.err()).doesNotContain("\tat ");
        }
        assertThat(Files.exists(out)).isFalse();
    }

    @Test
    void benchAttentionRunsAndReportsJson() {
        Run run = run("bench", "attention", "--pattern", "window:size=16", "--seq", "64,100", "--heads", "2", "--head-dim", "8",
                "--repeats", "1", "--gemm-size", "32", "--warmup", "0", "--backward", "--json");
        assertThat(run.code()).as(run.err()).isZero();
        // what a timed forward allocated (boxed vectors show there when the JIT has not settled)
        assertThat(run.out()).containsPattern("\"allocated_bytes_per_forward\" ?: ?[0-9]+");
        // positions on selected tokens: timed with plain RoPE (the engine needs a rotation to move rows)
        Run moved = run("bench", "attention", "--pattern", "selectmerge:region=8,top=3,merge=1,pos=selected", "--seq", "200", "--heads", "2",
                "--head-dim", "8", "--repeats", "1", "--gemm-size", "0", "--warmup", "0", "--backward", "--json");
        assertThat(moved.code()).as(moved.err()).isZero();
        assertThat(run("bench", "attention", "--pattern", "bogus", "--seq", "64").code()).isEqualTo(Main.EXIT_BAD_INPUT);
        assertThat(run("bench", "attention", "--pattern", "dense", "--seq", "64", "--heads", "3", "--kv-heads", "2").code()).isEqualTo(Main.EXIT_BAD_INPUT);
    }

    /** --decode: one query row per head at the last position against the whole cache, bytes read per step. */
    @Test
    void benchAttentionTimesDecodeSteps() throws Exception {
        Run run = run("bench", "attention", "--decode", "--pattern", "dense", "--seq", "100,300", "--heads", "4", "--kv-heads", "2",
                "--head-dim", "8", "--repeats", "2", "--warmup", "0", "--json");
        assertThat(run.code()).as(run.err()).isZero();
        com.fasterxml.jackson.databind.JsonNode j = Json.MAPPER.readTree(run.out());
        assertThat(j.get("mode").asText()).isEqualTo("decode");
        assertThat(j.get("results")).hasSize(2);
        // dense: the step reaches all N keys of each of the 2 key/value heads, K and V, 8 floats each
        assertThat(j.get("results").get(1).get("keys_per_query").asDouble()).isEqualTo(300.0);
        assertThat(j.get("results").get(1).get("kv_bytes_per_step").asLong()).isEqualTo(2L * 4 * 8 * 2 * 300);
        assertThat(j.get("results").get(0).get("step_seconds").get("median").asDouble()).isPositive();
        // a window reaches only its last keys
        Run window = run("bench", "attention", "--decode", "--pattern", "window:size=16", "--seq", "300", "--heads", "2",
                "--head-dim", "8", "--repeats", "1", "--warmup", "0", "--json");
        assertThat(Json.MAPPER.readTree(window.out()).get("results").get(0).get("keys_per_query").asDouble()).isEqualTo(16.0);
        Run text = run("bench", "attention", "--decode", "--pattern", "dense", "--seq", "64", "--heads", "2", "--head-dim", "8",
                "--repeats", "1", "--warmup", "0");
        assertThat(text.code()).as(text.err()).isZero();
        assertThat(text.out()).contains("GB/s");
        for (String[] bad : new String[][]{{"--backward"}, {"--bidirectional"}}) {
            Run r = run("bench", "attention", "--decode", bad[0], "--pattern", "dense", "--seq", "64", "--warmup", "0");
            assertThat(r.code()).as(r.err()).isEqualTo(Main.EXIT_BAD_INPUT);
            assertThat(r.err()).contains("--decode");
        }
        Run sel = run("bench", "attention", "--decode", "--pattern", "selectmerge:region=8,top=3,merge=1", "--seq", "64", "--warmup", "0");
        assertThat(sel.code()).isEqualTo(Main.EXIT_BAD_INPUT);
        assertThat(sel.err()).contains("bench model");
    }

    static void close(float[] actual, double[] expected) {
        assertThat(actual).hasSize(expected.length);
        for (int i = 0; i < actual.length; i++) {
            if (expected[i] == Double.NEGATIVE_INFINITY) assertThat(actual[i]).isEqualTo(Float.NEGATIVE_INFINITY);
            else assertThat((double) actual[i]).as("[" + i + "]").isCloseTo(expected[i], within(1e-4 * (1 + Math.abs(expected[i]))));
        }
    }
}
