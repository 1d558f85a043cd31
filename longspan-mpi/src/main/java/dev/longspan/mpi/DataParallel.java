package dev.longspan.mpi;

import dev.longspan.train.Replicas;

/** The trainer's {@link Replicas} on a communicator: gradients and losses summed by all-reduce. */
public record DataParallel(Communicator comm) implements Replicas {
    public int rank() { return comm.rank(); }

    public int count() { return comm.size(); }

    public void sum(float[] values) { comm.allreduceSum(values); }

    public void sum(double[] values) { comm.allreduceSum(values); }
}
