package dev.longspan.train;

/**
 * Data parallelism as the trainer sees it: {@link #count()} processes train the same model, each on
 * its share of every step's micro-batches, and sum their gradients and losses before the update.
 * The core knows no transport; the MPI module implements this on Open MPI.
 */
public interface Replicas {
    /** This process's index, 0 ≤ rank &lt; count; rank 0 writes checkpoints, metrics and evaluates. */
    int rank();

    int count();

    /** Element-wise sum over all processes, in place (every process gets the same result). */
    void sum(float[] values);

    /** Element-wise sum over all processes, in place. */
    void sum(double[] values);

    /** One process: the sums are the values themselves. */
    Replicas SINGLE = new Replicas() {
        public int rank() { return 0; }
        public int count() { return 1; }
        public void sum(float[] values) {}
        public void sum(double[] values) {}
    };
}
