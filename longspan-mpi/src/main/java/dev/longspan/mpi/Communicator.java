package dev.longspan.mpi;

/**
 * The collective and point-to-point operations the distributed code uses, on float buffers.
 * {@link Mpi} is the real one; {@link #solo()} is a single process (P = 1), so the same code
 * runs without MPI. Every process calls every collective in the same order (MPI's rule).
 *
 * <p>Counts and displacements are in elements; displacements are the prefix sums of the counts.
 * {@link #bytesSent()} counts what this process hands to the transport for other processes: exact
 * for point-to-point and all-to-all exchanges; for all-reduce the volume of the bandwidth-optimal
 * ring (2·(P−1)/P of the buffer).
 */
public interface Communicator {
    int rank();

    int size();

    /** In-place element-wise sum over all processes. */
    void allreduceSum(float[] buf);

    /** In-place element-wise sum over all processes. */
    void allreduceSum(double[] buf);

    /** Each process sends sendCounts[j] elements to process j and receives recvCounts[j] from it. */
    void alltoallv(float[] send, int[] sendCounts, float[] recv, int[] recvCounts);

    /** Sends send[0..sendCount) to dest and receives recvCount elements from source into recv. */
    void sendrecv(float[] send, int sendCount, int dest, float[] recv, int recvCount, int source);

    /** Every process's value, in rank order. */
    long[] allgather(long value);

    void barrier();

    /** Bytes this process has sent to other processes so far. */
    long bytesSent();

    /** Nanoseconds this process has spent inside communication calls so far (waiting for slower ranks included). */
    long transportNanos();

    /** The single-process communicator: every operation is a local copy, nothing is sent. */
    static Communicator solo() {
        return Solo.INSTANCE;
    }

    final class Solo implements Communicator {
        static final Solo INSTANCE = new Solo();

        private Solo() {}

        public int rank() { return 0; }
        public int size() { return 1; }
        public void allreduceSum(float[] buf) {}
        public void allreduceSum(double[] buf) {}

        public void alltoallv(float[] send, int[] sendCounts, float[] recv, int[] recvCounts) {
            System.arraycopy(send, 0, recv, 0, sendCounts[0]);
        }

        public void sendrecv(float[] send, int sendCount, int dest, float[] recv, int recvCount, int source) {
            System.arraycopy(send, 0, recv, 0, sendCount);
        }

        public long[] allgather(long value) { return new long[]{value}; }
        public void barrier() {}
        public long bytesSent() { return 0; }
        public long transportNanos() { return 0; }
    }
}
