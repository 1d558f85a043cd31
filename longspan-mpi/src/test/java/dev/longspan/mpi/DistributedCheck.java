package dev.longspan.mpi;

import dev.longspan.attention.Attention;
import dev.longspan.attention.AttentionGradients;
import dev.longspan.attention.AttentionOptions;
import dev.longspan.attention.AttentionResult;
import dev.longspan.attention.Pattern;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * The distributed checks, run on every rank under {@code mpirun -np P} (launched by
 * {@link MpiLaunchTest}): each rank builds the whole problem from a seed, computes the
 * single-process reference with {@link Attention}, computes its shard with
 * {@link SequenceParallelAttention}, and compares its rows. Prints one line per case on rank 0 and
 * exits 1 when any rank sees a relative error above 1e-6 (max |a − b| / max |reference|).
 */
public final class DistributedCheck {
    static final double TOLERANCE = 1e-6;

    /** Causal specs: every kind of part, segments shorter and longer than a shard, partial last segments, sums. */
    static final List<String> CAUSAL = List.of(
            "dense", "window:size=37", "window:size=120", "block:size=24",
            "dilated:w=16,64;r=1,2", "dilated:w=32,128,1000;r=1,4,8", "dilated:w=64,256;r=2,4;offsets=blocks",
            "dilated:w=40;r=3", "window:size=8+dilated:w=64,512;r=2,8", "dense+dilated:w=100;r=5");
    static final List<String> BIDIRECTIONAL = List.of("dense", "window:size=30", "dilated:w=32,128,1000;r=1,4,8");

    public static void main(String[] args) {
        Mpi mpi = Mpi.world();
        List<String> failures = run(mpi, 203, 4, 2, 16);
        // every rank's verdict, so rank 0 can print one line for the job
        long total = 0;
        for (long b : mpi.allgather(failures.size())) total += b;
        if (mpi.rank() == 0) System.out.println(total == 0 ? "distributed attention: all cases within " + TOLERANCE + " on " + mpi.size() + " ranks"
                : "distributed attention: " + total + " failures on " + mpi.size() + " ranks");
        for (String f : failures) System.out.println("rank " + mpi.rank() + ": FAIL " + f);
        mpi.finish();
        System.exit(total == 0 ? 0 : 1);
    }

    /** Runs every case on this rank; returns the failures it sees. */
    static List<String> run(Communicator comm, int n, int heads, int kvHeads, int d) {
        List<String> failures = new ArrayList<>();
        for (String spec : CAUSAL) check(comm, spec, AttentionOptions.DEFAULT, n, heads, kvHeads, d, failures);
        for (String spec : BIDIRECTIONAL) check(comm, spec, AttentionOptions.DEFAULT.withBidirectional(true), n, heads, kvHeads, d, failures);
        // GQA groups larger than r: heads of a group that share an offset share one stream of rows
        check(comm, "dilated:w=24,96;r=2,4", AttentionOptions.DEFAULT, n, 8, 1, d, failures);
        return failures;
    }

    static void check(Communicator comm, String spec, AttentionOptions opt, int n, int heads, int kvHeads, int d, List<String> failures) {
        Pattern pattern = Pattern.parse(spec);
        SplittableRandom rnd = new SplittableRandom(spec.hashCode() * 31L + n);
        float[] q = random(rnd, heads * n * d), k = random(rnd, kvHeads * n * d), v = random(rnd, kvHeads * n * d), dO = random(rnd, heads * n * d);
        AttentionResult ref = Attention.forward(q, k, v, heads, kvHeads, n, d, pattern, opt);
        AttentionGradients refG = Attention.backward(ref, q, k, v, dO);

        SequenceParallelAttention.Shard s = SequenceParallelAttention.shard(n, comm.size(), comm.rank());
        SequenceParallelAttention.Result r = SequenceParallelAttention.forward(comm,
                slice(q, heads, n, d, s), slice(k, kvHeads, n, d, s), slice(v, kvHeads, n, d, s), heads, kvHeads, n, d, pattern, opt);
        AttentionGradients g = SequenceParallelAttention.backward(r, slice(dO, heads, n, d, s));

        String name = spec + (opt.bidirectional() ? " (bidirectional)" : "") + " N=" + n + " P=" + comm.size() + " rank " + comm.rank();
        compare(name + " O", slice(ref.o(), heads, n, d, s), r.o, ref.o(), failures);
        compare(name + " LSE", slice(ref.lse(), heads, n, 1, s), r.lse, ref.lse(), failures);
        compare(name + " dQ", slice(refG.dq(), heads, n, d, s), g.dq(), refG.dq(), failures);
        compare(name + " dK", slice(refG.dk(), kvHeads, n, d, s), g.dk(), refG.dk(), failures);
        compare(name + " dV", slice(refG.dv(), kvHeads, n, d, s), g.dv(), refG.dv(), failures);
    }

    static void compare(String what, float[] expected, float[] actual, float[] whole, List<String> failures) {
        double scale = 0, err = 0;
        for (float x : whole) if (Float.isFinite(x)) scale = Math.max(scale, Math.abs(x));
        for (int i = 0; i < expected.length; i++) {
            float e = expected[i], a = actual[i];
            if (e == Float.NEGATIVE_INFINITY || a == Float.NEGATIVE_INFINITY) {
                if (e != a) err = Double.POSITIVE_INFINITY;
                continue;
            }
            err = Math.max(err, Math.abs(e - a));
        }
        double rel = err / Math.max(scale, Double.MIN_NORMAL);
        if (!(rel <= TOLERANCE)) failures.add(String.format(Locale.ROOT, "%s: relative error %.3g", what, rel));
    }

    /** Rows s.start..s.end of every head of x [heads, n, w]. */
    static float[] slice(float[] x, int heads, int n, int w, SequenceParallelAttention.Shard s) {
        float[] out = new float[heads * s.length() * w];
        for (int h = 0; h < heads; h++) System.arraycopy(x, (h * n + s.start()) * w, out, h * s.length() * w, s.length() * w);
        return out;
    }

    static float[] random(SplittableRandom rnd, int len) {
        float[] x = new float[len];
        for (int i = 0; i < len; i++) x[i] = (float) (rnd.nextDouble() * 2 - 1);
        return x;
    }
}
