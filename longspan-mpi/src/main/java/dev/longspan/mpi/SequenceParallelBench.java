package dev.longspan.mpi;

import dev.longspan.attention.AttentionOptions;
import dev.longspan.attention.Pattern;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * {@code bench attention --parallel sequence}: sequence-parallel attention on this job's ranks, per
 * sequence length: time per step (the slowest rank, median over repeats), bytes each rank sent,
 * and the share of the step spent in communication calls (waiting for other ranks included).
 */
public final class SequenceParallelBench {
    private SequenceParallelBench() {}

    /** One length's figures; identical on every rank (gathered), meant to be printed by rank 0. */
    public static Map<String, Object> measure(Communicator comm, Pattern p, int n, int heads, int kvHeads, int d,
                                              boolean bidirectional, boolean backward, int repeats) {
        AttentionOptions opt = AttentionOptions.DEFAULT.withBidirectional(bidirectional);
        SequenceParallelAttention.Shard s = SequenceParallelAttention.shard(n, comm.size(), comm.rank());
        SplittableRandom rnd = new SplittableRandom(42 + comm.rank());
        float[] q = random(rnd, heads * s.length() * d), k = random(rnd, kvHeads * s.length() * d), v = random(rnd, kvHeads * s.length() * d);
        float[] dO = backward ? random(rnd, q.length) : null;
        double[] fwd = new double[repeats], bwd = new double[repeats], fwdComm = new double[repeats], bwdComm = new double[repeats];
        long fwdBytes = 0, bwdBytes = 0;
        for (int i = 0; i < repeats; i++) {
            comm.barrier();
            long b0 = comm.bytesSent(), c0 = comm.transportNanos(), t0 = System.nanoTime();
            SequenceParallelAttention.Result r = SequenceParallelAttention.forward(comm, q, k, v, heads, kvHeads, n, d, p, opt);
            long t1 = System.nanoTime(), c1 = comm.transportNanos(), b1 = comm.bytesSent();
            fwd[i] = (t1 - t0) / 1e9;
            fwdComm[i] = (c1 - c0) / 1e9;
            fwdBytes = b1 - b0;
            if (backward) {
                comm.barrier();
                long b2 = comm.bytesSent(), c2 = comm.transportNanos(), t2 = System.nanoTime();
                SequenceParallelAttention.backward(r, dO);
                bwd[i] = (System.nanoTime() - t2) / 1e9;
                bwdComm[i] = (comm.transportNanos() - c2) / 1e9;
                bwdBytes = comm.bytesSent() - b2;
            }
        }
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("n", n);
        row.put("ranks", comm.size());
        row.put("rows_per_rank", n / comm.size());
        long[] fb = comm.allgather(fwdBytes);
        row.put("forward_bytes_sent_per_rank", fb);
        row.put("forward_bytes_sent_max", Arrays.stream(fb).max().orElse(0));
        double ft = slowest(comm, median(fwd)), fc = slowest(comm, median(fwdComm));
        row.put("forward_seconds", ft);
        row.put("forward_comm_seconds", fc);
        if (backward) {
            long[] bb = comm.allgather(bwdBytes);
            row.put("backward_bytes_sent_per_rank", bb);
            row.put("backward_bytes_sent_max", Arrays.stream(bb).max().orElse(0));
            row.put("backward_seconds", slowest(comm, median(bwd)));
            row.put("backward_comm_seconds", slowest(comm, median(bwdComm)));
        }
        return row;
    }

    // the largest of every rank's value (a step lasts as long as its slowest rank)
    private static double slowest(Communicator comm, double seconds) {
        long[] all = comm.allgather(Double.doubleToLongBits(seconds));
        double m = 0;
        for (long x : all) m = Math.max(m, Double.longBitsToDouble(x));
        return m;
    }

    private static double median(double[] xs) {
        double[] s = xs.clone();
        Arrays.sort(s);
        return s[s.length / 2];
    }

    private static float[] random(SplittableRandom rnd, int len) {
        float[] x = new float[len];
        for (int i = 0; i < len; i++) x[i] = (float) (rnd.nextDouble() * 2 - 1);
        return x;
    }
}
