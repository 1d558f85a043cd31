package dev.longspan.cli;

import dev.longspan.attention.Attention;
import dev.longspan.attention.AttentionGradients;
import dev.longspan.attention.AttentionOptions;
import dev.longspan.attention.AttentionResult;
import dev.longspan.attention.Pattern;
import dev.longspan.io.SafetensorsFile;
import dev.longspan.io.SafetensorsWriter;
import dev.longspan.util.LongspanException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * {@code longspan attention}: runs the attention engine on tensors from a safetensors file, so
 * that Longspan can be checked against other implementations.
 */
@Command(name = "attention", mixinStandardHelpOptions = true,
        description = {"Run the attention engine on q, k, v from a safetensors file, with any pattern.",
                "Reads q [H,N,D] and k, v [Hkv,N,D] (float tensors); writes o [H,N,D] and",
                "lse [H,N], and with --backward (reading do [H,N,D]) dq, dk, dv."})
final class AttentionCommand implements Runnable {
    @Option(names = "--in", required = true, paramLabel = "IN.safetensors", description = "Input tensors q, k, v (and do with --backward).")
    Path in;

    @Option(names = "--out", required = true, paramLabel = "OUT.safetensors", description = "Output file (written atomically).")
    Path out;

    @Option(names = "--pattern", required = true, paramLabel = "SPEC",
            description = {"Attention pattern, one of:", "  dense", "  window:size=W", "  block:size=B", "  dilated:w=W1,W2;r=R1,R2[;offsets=blocks]",
                    "  selectmerge:region=R,top=T,merge=M  (options: local=L, score=bound|max|mean, beam=B|all, pos=original|selected, bias=B)", "  A+B (patterns merged by log-sum-exp)"})
    String pattern;

    @Option(names = "--bidirectional", description = "Non-causal form of the pattern (not for selectmerge).")
    boolean bidirectional;

    @Option(names = "--scale", paramLabel = "X", description = "Logit scale (default 1/sqrt(D)).")
    Float scale;

    @Option(names = "--backward", description = "Also compute dq, dk, dv from the tensor 'do'.")
    boolean backward;

    @Option(names = "--detached-merge", description = "Backward with the LSE-merge weights held constant (torchscale's LongNet gradient).")
    boolean detachedMerge;

    @Option(names = "--json", description = "Print one JSON object on standard output.")
    boolean json;

    @Mixin
    Main.ComputeOptions compute;

    @Override
    public void run() {
        compute.apply();
        Pattern p = Pattern.parse(pattern);
        if (dev.longspan.attention.Plan.movesPositions(p))
            throw new LongspanException("--pattern: pos=selected moves keys to new RoPE positions and needs a model layer's RoPE; this command runs a pattern on bare q, k, v");
        if (scale != null && !(Float.isFinite(scale))) throw new LongspanException("--scale must be a finite number, got " + scale);
        float[] q, k, v, dO = null;
        int heads, kvHeads, n, d;
        try (SafetensorsFile f = SafetensorsFile.open(in)) {
            long[] qs = shape3(f, "q");
            heads = (int) qs[0];
            n = (int) qs[1];
            d = (int) qs[2];
            long[] ks = shape3(f, "k");
            kvHeads = (int) ks[0];
            if (ks[1] != n || ks[2] != d) throw shapeError(f, "k", ks, "[Hkv, " + n + ", " + d + "] (N and D of q)");
            long[] vs = shape3(f, "v");
            if (!Arrays.equals(vs, ks)) throw shapeError(f, "v", vs, Arrays.toString(ks) + " (the shape of k)");
            if (heads % kvHeads != 0) {
                throw new LongspanException(in + ": q has " + heads + " heads, not a multiple of the " + kvHeads + " heads of k and v");
            }
            if ((long) heads * n * d > Integer.MAX_VALUE - 8) throw new LongspanException(in + ": q has more than 2^31 elements");
            q = floats(f, "q");
            k = floats(f, "k");
            v = floats(f, "v");
            if (backward) {
                long[] ds = shape3(f, "do");
                if (!Arrays.equals(ds, qs)) throw shapeError(f, "do", ds, Arrays.toString(qs) + " (the shape of q)");
                dO = floats(f, "do");
            }
        }
        AttentionOptions opt = AttentionOptions.DEFAULT.withBidirectional(bidirectional).withDetachedMerge(detachedMerge);
        if (scale != null) opt = opt.withScale(scale);
        dev.longspan.io.AtomicFiles.checkWritable(out);

        long t0 = System.nanoTime();
        AttentionResult r = Attention.forward(q, k, v, heads, kvHeads, n, d, p, opt);
        double fwdSeconds = (System.nanoTime() - t0) / 1e9;
        SafetensorsWriter w = new SafetensorsWriter()
                .putF32("o", new long[]{heads, n, d}, r.o())
                .putF32("lse", new long[]{heads, n}, r.lse())
                .metadata("pattern", p.spec())
                .metadata("causal", Boolean.toString(!bidirectional))
                .metadata("scale", Float.toString(r.scale()));
        double bwdSeconds = 0;
        if (backward) {
            t0 = System.nanoTime();
            AttentionGradients g = Attention.backward(r, q, k, v, dO);
            bwdSeconds = (System.nanoTime() - t0) / 1e9;
            w.putF32("dq", new long[]{heads, n, d}, g.dq())
                    .putF32("dk", new long[]{kvHeads, n, d}, g.dk())
                    .putF32("dv", new long[]{kvHeads, n, d}, g.dv())
                    .metadata("detached_merge", Boolean.toString(detachedMerge));
        }
        w.write(out);
        if (json) {
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("out", out.toString());
            o.put("pattern", p.spec());
            o.put("heads", heads);
            o.put("kv_heads", kvHeads);
            o.put("length", n);
            o.put("head_dim", d);
            o.put("causal", !bidirectional);
            o.put("scale", r.scale());
            o.put("forward_seconds", fwdSeconds);
            if (backward) o.put("backward_seconds", bwdSeconds);
            o.put("unreached_rows", r.plan().unreachedRows());
            Json.print(o);
        } else {
            System.out.printf("wrote %s: o [%d,%d,%d], lse [%d,%d]%s; pattern %s, forward %.3f s%s%n", out, heads, n, d, heads, n,
                    backward ? ", dq, dk, dv" : "", p.spec(), fwdSeconds, backward ? String.format(", backward %.3f s", bwdSeconds) : "");
        }
    }

    private long[] shape3(SafetensorsFile f, String name) {
        if (!f.has(name)) {
            throw new LongspanException(in + ": no tensor named '" + name + "' (has: " + String.join(", ", f.names()) + ")");
        }
        long[] s = f.shape(name);
        if (s.length != 3) throw shapeError(f, name, s, name.equals("k") || name.equals("v") ? "[Hkv, N, D]" : "[H, N, D]");
        for (long x : s) if (x < 1) throw shapeError(f, name, s, "positive sizes");
        if (s[0] > Integer.MAX_VALUE || s[1] > Integer.MAX_VALUE || s[2] > Integer.MAX_VALUE) throw shapeError(f, name, s, "sizes below 2^31");
        return s;
    }

    private float[] floats(SafetensorsFile f, String name) {
        String dt = f.dtype(name);
        if (!dt.equals("F32") && !dt.equals("F16") && !dt.equals("BF16")) {
            throw new LongspanException(in + ": tensor '" + name + "' is " + dt + ", expected F32 (F16 and BF16 are widened)");
        }
        return f.floats(name);
    }

    private LongspanException shapeError(SafetensorsFile f, String name, long[] shape, String expected) {
        return new LongspanException(in + ": tensor '" + name + "' has shape " + Arrays.toString(shape) + ", expected " + expected);
    }
}
