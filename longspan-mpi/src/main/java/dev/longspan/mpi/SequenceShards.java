package dev.longspan.mpi;

import dev.longspan.attention.AttentionGradients;
import dev.longspan.attention.AttentionOptions;
import dev.longspan.attention.Pattern;
import dev.longspan.model.ShardedAttention;

/** The model's {@link ShardedAttention} on a communicator: {@link SequenceParallelAttention}, causal. */
public record SequenceShards(Communicator comm) implements ShardedAttention {
    public int start(int n) { return SequenceParallelAttention.shard(n, comm.size(), comm.rank()).start(); }

    public int length(int n) { return SequenceParallelAttention.shard(n, comm.size(), comm.rank()).length(); }

    public Handle forward(Pattern pattern, float[] q, float[] k, float[] v, int heads, int kvHeads, int n, int d, float[] o, float[] lse) {
        SequenceParallelAttention.Result r = SequenceParallelAttention.forward(comm, q, k, v, heads, kvHeads, n, d, pattern, AttentionOptions.DEFAULT);
        System.arraycopy(r.o, 0, o, 0, r.o.length);
        System.arraycopy(r.lse, 0, lse, 0, r.lse.length);
        return (dO, dq, dk, dv) -> {
            AttentionGradients g = SequenceParallelAttention.backward(r, dO);
            System.arraycopy(g.dq(), 0, dq, 0, dq.length);
            System.arraycopy(g.dk(), 0, dk, 0, dk.length);
            System.arraycopy(g.dv(), 0, dv, 0, dv.length);
        };
    }
}
