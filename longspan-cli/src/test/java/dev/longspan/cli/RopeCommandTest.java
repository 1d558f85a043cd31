package dev.longspan.cli;

import dev.longspan.io.SafetensorsFile;
import dev.longspan.io.SafetensorsWriter;
import dev.longspan.position.Rope;
import dev.longspan.position.RopeConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

class RopeCommandTest {
    @TempDir
    Path dir;

    static float[] random(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) r.nextGaussian();
        return x;
    }

    private record Run(int code, String out, String err) {}

    private static Run run(String... args) {
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

    private static float[] readY(Path p) {
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            assertThat(f.shape("y")).containsExactly(2, 5, 8);
            return f.floats("y");
        }
    }

    @Test
    void rotatesWithDefaultPositionsAndMatchesCoreAndHandValues() {
        int h = 2, n = 5, d = 8;
        float[] x = random(h * n * d, 1);
        // head 0, token 1 (position 1): x = e0 + e1. Half pairing pairs (0,4) with theta 1 and (1,5) with theta 0.1
        int row = (0 * n + 1) * d;
        java.util.Arrays.fill(x, row, row + d, 0f);
        x[row] = 1f;
        x[row + 1] = 1f;
        Path in = dir.resolve("in.safetensors"), out = dir.resolve("out.safetensors");
        new SafetensorsWriter().putF32("x", new long[]{h, n, d}, x).write(in);
        Run r = run("rope", "--in", in.toString(), "--out", out.toString(), "--spec", "kind=rope,base=10000,pairing=half");
        assertThat(r.code()).as(r.err()).isZero();
        float[] y = readY(out);
        assertThat(y[row]).isCloseTo((float) Math.cos(1), within(1e-6f));
        assertThat(y[row + 4]).isCloseTo((float) Math.sin(1), within(1e-6f));
        assertThat(y[row + 1]).isCloseTo((float) Math.cos(0.1), within(1e-6f));
        assertThat(y[row + 5]).isCloseTo((float) Math.sin(0.1), within(1e-6f));
        assertThat(y[row + 2]).isZero();
        float[] want = x.clone();
        new Rope(RopeConfig.fromSpec("kind=rope,base=10000,pairing=half", d)).forward(want, 0, h, n, 0L);
        assertThat(y).containsExactly(want);
    }

    @Test
    void usesPosTensorAndBackwardUndoes() {
        int h = 2, n = 5, d = 8;
        float[] x = random(h * n * d, 2);
        long[] pos = {7, 1L << 33, 3, 100000, 0};
        Path in = dir.resolve("in.safetensors"), out = dir.resolve("out.safetensors"), back = dir.resolve("back.safetensors");
        new SafetensorsWriter().putF32("x", new long[]{h, n, d}, x).putI64("pos", new long[]{n}, pos).write(in);
        String spec = "kind=yarn,factor=4,orig=16,pairing=interleaved";
        Run r = run("rope", "--in", in.toString(), "--out", out.toString(), "--spec", spec, "--json");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out().trim()).startsWith("{").endsWith("}").contains("\"positions\" : \"pos\"");
        float[] y = readY(out);
        float[] want = x.clone();
        Rope rope = new Rope(RopeConfig.fromSpec(spec, d));
        rope.forward(want, 0, h, n, pos);
        assertThat(y).containsExactly(want);

        // I32 positions work too, and --backward inverts (up to the YaRN scale squared)
        int[] pos32 = {7, 8, 3, 100000, 0};
        new SafetensorsWriter().putF32("x", new long[]{h, n, d}, y).putI32("pos", new long[]{n}, pos32).write(in);
        long[] pos64 = {7, 8, 3, 100000, 0};
        float[] fwd = x.clone();
        rope.forward(fwd, 0, h, n, pos64);
        new SafetensorsWriter().putF32("x", new long[]{h, n, d}, fwd).putI32("pos", new long[]{n}, pos32).write(in);
        Run b = run("rope", "--in", in.toString(), "--out", back.toString(), "--spec", spec, "--backward");
        assertThat(b.code()).as(b.err()).isZero();
        float[] xb = readY(back);
        double s2 = rope.rotationScale() * rope.rotationScale();
        for (int i = 0; i < x.length; i++) assertThat((double) xb[i]).isCloseTo(x[i] * s2, within(1e-5));
    }

    private void assertOneLineError(Run r, String... fragments) {
        assertThat(r.code()).isEqualTo(2);
        String err = r.err().strip();
        assertThat(err.lines().count()).as(err).isEqualTo(1);
        for (String f : fragments) assertThat(err).contains(f);
    }

    @Test
    void badInputIsExitCodeTwoWithOneLine() {
        Path in = dir.resolve("in.safetensors"), out = dir.resolve("out.safetensors");
        new SafetensorsWriter().putF32("x", new long[]{1, 2, 8}, random(16, 3)).write(in);
        assertOneLineError(run("rope", "--in", in.toString(), "--out", out.toString(), "--spec", "kind=yarn,factor=x,orig=16"), "'factor'");
        assertOneLineError(run("rope", "--in", in.toString(), "--out", out.toString(), "--spec", "kind=longrope"), "'longrope'");
        assertOneLineError(run("rope", "--in", in.toString(), "--out", out.toString(), "--spec", "kind=rope,dim=16"), "'dim'");

        Path noX = dir.resolve("nox.safetensors");
        new SafetensorsWriter().putF32("q", new long[]{1, 2, 8}, random(16, 4)).write(noX);
        assertOneLineError(run("rope", "--in", noX.toString(), "--out", out.toString(), "--spec", "kind=rope"), "'x'");

        Path flat = dir.resolve("flat.safetensors");
        new SafetensorsWriter().putF32("x", new long[]{2, 8}, random(16, 5)).write(flat);
        assertOneLineError(run("rope", "--in", flat.toString(), "--out", out.toString(), "--spec", "kind=rope"), "[H, N, D]");

        Path odd = dir.resolve("odd.safetensors");
        new SafetensorsWriter().putF32("x", new long[]{1, 2, 7}, random(14, 6)).write(odd);
        assertOneLineError(run("rope", "--in", odd.toString(), "--out", out.toString(), "--spec", "kind=rope"), "'rot'");

        Path badPos = dir.resolve("badpos.safetensors");
        new SafetensorsWriter().putF32("x", new long[]{1, 2, 8}, random(16, 7)).putI64("pos", new long[]{3}, new long[]{0, 1, 2}).write(badPos);
        assertOneLineError(run("rope", "--in", badPos.toString(), "--out", out.toString(), "--spec", "kind=rope"), "'pos'");

        assertOneLineError(run("rope", "--in", dir.resolve("missing.safetensors").toString(), "--out", out.toString(), "--spec", "kind=rope"), "no such file");
        assertThat(out).doesNotExist();
    }
}
