package dev.longspan.cli;

import dev.longspan.io.SafetensorsFile;
import dev.longspan.io.SafetensorsWriter;
import dev.longspan.position.Rope;
import dev.longspan.position.RopeConfig;
import dev.longspan.util.LongspanException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * {@code longspan rope}: rotates tensor {@code x} [H, N, D] of a safetensors file with a RoPE spec
 * and writes {@code y} (F32). Positions are 0..N-1, or the integer tensor {@code pos} [N] when the
 * file has one. {@code --backward} applies the inverse rotation (the gradient of the input).
 */
@Command(name = "rope", mixinStandardHelpOptions = true, sortSynopsis = false,
        description = {"Rotate tensor x [H,N,D] with a RoPE spec and write y.",
                "SPEC: kind=rope|linear|ntk|dynamic-ntk|yarn|llama3|crd-ntk plus fields, e.g.",
                "  kind=yarn,base=10000,factor=8,orig=4096,pairing=half",
                "Fields: base, dim, rot, pairing (half|interleaved), factor, orig, beta_fast, beta_slow,",
                "  attn_factor, mscale, mscale_all_dim, truncate, low_freq_factor, high_freq_factor,",
                "  period, offset, grow, offset_max, seed, ntk (static|dynamic). See docs/POSITIONS.md."})
final class RopeCommand implements Runnable {
    @Option(names = "--in", required = true, paramLabel = "IN.safetensors", description = "Input with tensor x [H,N,D] and optional pos [N].")
    Path in;

    @Option(names = "--out", required = true, paramLabel = "OUT.safetensors", description = "Output with tensor y [H,N,D] (F32).")
    Path out;

    @Option(names = "--spec", required = true, paramLabel = "SPEC", description = "RoPE spec; dim defaults to D of x.")
    String spec;

    @Option(names = "--backward", description = "Apply the inverse rotation (turns dL/dy into dL/dx).")
    boolean backward;

    @Option(names = "--json", description = "Print one JSON object describing what was done.")
    boolean json;

    @Mixin
    Main.ComputeOptions compute;

    @Override
    public void run() {
        compute.apply();
        float[] x;
        long[] pos = null;
        long[] shape;
        try (SafetensorsFile f = SafetensorsFile.open(in)) {
            if (!f.has("x")) throw new LongspanException(in + ": no tensor named 'x' (has: " + String.join(", ", f.names()) + ")");
            shape = f.shape("x");
            if (shape.length != 3)
                throw new LongspanException(in + ": tensor 'x' must have shape [H, N, D], got " + java.util.Arrays.toString(shape));
            for (long s : shape) if (s <= 0) throw new LongspanException(in + ": tensor 'x' has an empty dimension " + java.util.Arrays.toString(shape));
            if (shape[2] > Integer.MAX_VALUE || shape[0] * shape[1] * shape[2] > Integer.MAX_VALUE - 8)
                throw new LongspanException(in + ": tensor 'x' " + java.util.Arrays.toString(shape) + " is too large for one array");
            x = f.floats("x");
            if (f.has("pos")) {
                long[] ps = f.shape("pos");
                if (ps.length != 1 || ps[0] != shape[1])
                    throw new LongspanException(in + ": tensor 'pos' must have shape [N] = [" + shape[1] + "], got " + java.util.Arrays.toString(ps));
                String dt = f.dtype("pos");
                if (!dt.equals("I64") && !dt.equals("I32"))
                    throw new LongspanException(in + ": tensor 'pos' must be I64 or I32, got " + dt);
                pos = f.longs("pos");
            }
        }
        int heads = (int) shape[0], n = (int) shape[1], d = (int) shape[2];
        RopeConfig cfg = RopeConfig.fromSpec(spec, d);
        Rope rope = new Rope(cfg);
        dev.longspan.io.AtomicFiles.checkWritable(out);
        long t0 = System.nanoTime();
        if (pos == null) {
            if (backward) rope.backward(x, 0, heads, n, 0L); else rope.forward(x, 0, heads, n, 0L);
        } else {
            if (backward) rope.backward(x, 0, heads, n, pos); else rope.forward(x, 0, heads, n, pos);
        }
        double ms = (System.nanoTime() - t0) / 1e6;
        new SafetensorsWriter()
                .metadata("rope", cfg.toSpec())
                .metadata("direction", backward ? "backward" : "forward")
                .putF32("y", shape, x)
                .write(out);
        if (json) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("spec", cfg.toSpec());
            m.put("direction", backward ? "backward" : "forward");
            m.put("shape", shape);
            m.put("positions", pos == null ? "0..N-1" : "pos");
            m.put("rotation_scale", rope.rotationScale());
            m.put("ms", ms);
            m.put("out", out.toString());
            Json.print(m);
        } else {
            System.out.printf("rotated x %s with %s (%s) in %.2f ms -> %s%n", java.util.Arrays.toString(shape), cfg.toSpec(),
                    backward ? "backward" : "forward", ms, out);
        }
    }
}
