package dev.longspan.mpi;

import dev.longspan.util.LongspanException;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Open MPI (libmpi.so.40, Open MPI 4.x) bound through java.lang.foreign: hand-written downcalls
 * for the few functions Longspan uses, on MPI_COMM_WORLD. Open MPI's handles (communicator,
 * datatypes, operations) are the addresses of its global objects ({@code ompi_mpi_comm_world},
 * {@code ompi_mpi_float}, {@code ompi_mpi_op_sum}, ...), so they are looked up as symbols.
 *
 * <p>Buffers are copied to native memory for each call (Java arrays cannot be handed to a
 * blocking native call); the copies cost little next to the transfer. MPI's default error handler
 * (errors are fatal, the job is aborted) stays in place.
 */
public final class Mpi implements Communicator {
    /** Where Debian/Ubuntu, Fedora/RHEL and a source build put Open MPI's library. */
    private static final List<String> KNOWN_PATHS = List.of(
            "/usr/lib/x86_64-linux-gnu/libmpi.so.40", "/usr/lib/aarch64-linux-gnu/libmpi.so.40",
            "/usr/lib64/openmpi/lib/libmpi.so.40", "/usr/lib/openmpi/lib/libmpi.so.40",
            "/usr/local/lib/libmpi.so.40", "/usr/lib/x86_64-linux-gnu/libmpi.so", "/usr/local/lib/libmpi.so");

    private static Mpi instance;

    private final MethodHandle finalizeH, rankH, sizeH, allreduceH, alltoallvH, sendrecvH, allgatherH, barrierH;
    private final MemorySegment world, floatT, doubleT, longT, sum;
    private final int rank, size;
    private long bytesSent, transportNanos;
    private boolean finalized;

    private Mpi(Path library) {
        Linker linker = Linker.nativeLinker();
        SymbolLookup lib = SymbolLookup.libraryLookup(library, Arena.global());
        MethodHandle init = downcall(linker, lib, "MPI_Init", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        MethodHandle initialized = downcall(linker, lib, "MPI_Initialized", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        finalizeH = downcall(linker, lib, "MPI_Finalize", FunctionDescriptor.of(JAVA_INT));
        rankH = downcall(linker, lib, "MPI_Comm_rank", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        sizeH = downcall(linker, lib, "MPI_Comm_size", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        // MPI_Allreduce(sendbuf, recvbuf, count, datatype, op, comm)
        allreduceH = downcall(linker, lib, "MPI_Allreduce", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
        // MPI_Alltoallv(sendbuf, sendcounts, sdispls, sendtype, recvbuf, recvcounts, rdispls, recvtype, comm)
        alltoallvH = downcall(linker, lib, "MPI_Alltoallv", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
        // MPI_Sendrecv(sendbuf, sendcount, sendtype, dest, sendtag, recvbuf, recvcount, recvtype, source, recvtag, comm, status)
        sendrecvH = downcall(linker, lib, "MPI_Sendrecv", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
        // MPI_Allgather(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm)
        allgatherH = downcall(linker, lib, "MPI_Allgather", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS));
        barrierH = downcall(linker, lib, "MPI_Barrier", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        world = symbol(lib, "ompi_mpi_comm_world");
        floatT = symbol(lib, "ompi_mpi_float");
        doubleT = symbol(lib, "ompi_mpi_double");
        longT = symbol(lib, "ompi_mpi_long");
        sum = symbol(lib, "ompi_mpi_op_sum");
        try (Arena a = Arena.ofConfined()) {
            MemorySegment flag = a.allocate(JAVA_INT);
            check("MPI_Initialized", (int) initialized.invokeExact(flag));
            if (flag.get(JAVA_INT, 0) == 0) check("MPI_Init", (int) init.invokeExact(MemorySegment.NULL, MemorySegment.NULL));
            MemorySegment out = a.allocate(JAVA_INT);
            check("MPI_Comm_rank", (int) rankH.invokeExact(world, out));
            rank = out.get(JAVA_INT, 0);
            check("MPI_Comm_size", (int) sizeH.invokeExact(world, out));
            size = out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** MPI_COMM_WORLD of this process, initialising MPI on first use; one clear error when libmpi is missing. */
    public static synchronized Mpi world() {
        if (instance == null) instance = new Mpi(findLibrary());
        return instance;
    }

    /**
     * Worker threads for each process when none were asked for: this machine's cores shared among
     * the job's processes on it (mpirun sets OMPI_COMM_WORLD_LOCAL_SIZE), at least one.
     */
    public static int threadsPerProcess() {
        return threadsPerProcess(Runtime.getRuntime().availableProcessors(), System.getenv("OMPI_COMM_WORLD_LOCAL_SIZE"));
    }

    static int threadsPerProcess(int cores, String localSize) {
        int local = 1;
        try {
            if (localSize != null) local = Math.max(1, Integer.parseInt(localSize.trim()));
        } catch (NumberFormatException e) {
            // not started by mpirun: one process on this machine
        }
        return Math.max(1, cores / local);
    }

    static Path findLibrary() {
        return findLibrary(System.getenv("LONGSPAN_MPI_LIB"), KNOWN_PATHS, Mpi::fromLdconfig);
    }

    /** LONGSPAN_MPI_LIB when set, else the first readable known path, else what ldconfig knows; one clear error otherwise. */
    static Path findLibrary(String override, List<String> known, java.util.function.Supplier<List<Path>> ldconfig) {
        if (override != null && !override.isBlank()) {
            Path p = Path.of(override);
            if (Files.isReadable(p)) return p;
            throw new LongspanException("MPI: LONGSPAN_MPI_LIB=" + override + " is not a readable file");
        }
        for (String s : known) {
            Path p = Path.of(s);
            if (Files.isReadable(p)) return p;
        }
        for (Path p : ldconfig.get()) if (Files.isReadable(p)) return p;
        throw new LongspanException("MPI: Open MPI's libmpi.so was not found (looked in " + String.join(", ", known)
                + " and the ldconfig cache); install it (Debian/Ubuntu: apt-get install -y openmpi-bin libopenmpi-dev)"
                + " or set LONGSPAN_MPI_LIB to its path");
    }

    // `ldconfig -p` lines look like "	libmpi.so.40 (libc6,x86-64) => /lib/x86_64-linux-gnu/libmpi.so.40"
    private static List<Path> fromLdconfig() {
        List<Path> out = new ArrayList<>();
        for (String ldconfig : new String[]{"ldconfig", "/sbin/ldconfig", "/usr/sbin/ldconfig"}) {
            try {
                Process p = new ProcessBuilder(ldconfig, "-p").redirectErrorStream(true).start();
                String text = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                p.waitFor();
                for (String line : text.split("\n")) {
                    String t = line.trim();
                    int arrow = t.indexOf("=> ");
                    if (arrow > 0 && (t.startsWith("libmpi.so.40 ") || t.startsWith("libmpi.so "))) out.add(Path.of(t.substring(arrow + 3).trim()));
                }
                return out;
            } catch (IOException e) {
                // not on this PATH: try the next location
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return out;
            }
        }
        return out;
    }

    private static MethodHandle downcall(Linker linker, SymbolLookup lib, String name, FunctionDescriptor fd) {
        return linker.downcallHandle(symbol(lib, name), fd);
    }

    private static MemorySegment symbol(SymbolLookup lib, String name) {
        return lib.find(name).orElseThrow(() -> new LongspanException(
                "MPI: the library has no symbol " + name + " (Longspan binds Open MPI 4.x; another MPI such as MPICH is not supported)"));
    }

    public int rank() { return rank; }

    public int size() { return size; }

    public long bytesSent() { return bytesSent; }

    public long transportNanos() { return transportNanos; }

    public void allreduceSum(float[] buf) {
        if (size == 1 || buf.length == 0) return;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocateFrom(JAVA_FLOAT, buf);
            long t0 = System.nanoTime();
            check("MPI_Allreduce", (int) allreduceH.invokeExact(inPlace(), s, buf.length, floatT, sum, world));
            transportNanos += System.nanoTime() - t0;
            MemorySegment.copy(s, JAVA_FLOAT, 0, buf, 0, buf.length);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        bytesSent += ringAllreduceBytes(4L * buf.length);
    }

    public void allreduceSum(double[] buf) {
        if (size == 1 || buf.length == 0) return;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocateFrom(JAVA_DOUBLE, buf);
            long t0 = System.nanoTime();
            check("MPI_Allreduce", (int) allreduceH.invokeExact(inPlace(), s, buf.length, doubleT, sum, world));
            transportNanos += System.nanoTime() - t0;
            MemorySegment.copy(s, JAVA_DOUBLE, 0, buf, 0, buf.length);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        bytesSent += ringAllreduceBytes(8L * buf.length);
    }

    private long ringAllreduceBytes(long bytes) {
        return 2 * (size - 1) * bytes / size;
    }

    // MPI_IN_PLACE is ((void *) 1) in Open MPI's mpi.h
    private static MemorySegment inPlace() {
        return MemorySegment.ofAddress(1);
    }

    public void alltoallv(float[] send, int[] sendCounts, float[] recv, int[] recvCounts) {
        if (sendCounts.length != size || recvCounts.length != size) throw new IllegalArgumentException("alltoallv: counts for " + size + " ranks expected");
        try (Arena a = Arena.ofConfined()) {
            int[] sdispl = prefix(sendCounts), rdispl = prefix(recvCounts);
            int sendTotal = sdispl[size], recvTotal = rdispl[size];
            MemorySegment s = a.allocate(JAVA_FLOAT, Math.max(1, sendTotal));
            MemorySegment.copy(send, 0, s, JAVA_FLOAT, 0, sendTotal);
            MemorySegment r = a.allocate(JAVA_FLOAT, Math.max(1, recvTotal));
            long t0 = System.nanoTime();
            check("MPI_Alltoallv", (int) alltoallvH.invokeExact(s, a.allocateFrom(JAVA_INT, sendCounts), a.allocateFrom(JAVA_INT, sdispl),
                    floatT, r, a.allocateFrom(JAVA_INT, recvCounts), a.allocateFrom(JAVA_INT, rdispl), floatT, world));
            transportNanos += System.nanoTime() - t0;
            MemorySegment.copy(r, JAVA_FLOAT, 0, recv, 0, recvTotal);
            for (int j = 0; j < size; j++) if (j != rank) bytesSent += 4L * sendCounts[j];
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    private static int[] prefix(int[] counts) {
        int[] out = new int[counts.length + 1];
        for (int i = 0; i < counts.length; i++) out[i + 1] = Math.addExact(out[i], counts[i]);
        return out;
    }

    public void sendrecv(float[] send, int sendCount, int dest, float[] recv, int recvCount, int source) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(JAVA_FLOAT, Math.max(1, sendCount));
            MemorySegment.copy(send, 0, s, JAVA_FLOAT, 0, sendCount);
            MemorySegment r = a.allocate(JAVA_FLOAT, Math.max(1, recvCount));
            // MPI_STATUS_IGNORE is NULL in Open MPI
            long t0 = System.nanoTime();
            check("MPI_Sendrecv", (int) sendrecvH.invokeExact(s, sendCount, floatT, dest, 0, r, recvCount, floatT, source, 0, world, MemorySegment.NULL));
            transportNanos += System.nanoTime() - t0;
            MemorySegment.copy(r, JAVA_FLOAT, 0, recv, 0, recvCount);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (dest != rank) bytesSent += 4L * sendCount;
    }

    public long[] allgather(long value) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocateFrom(JAVA_LONG, value);
            MemorySegment r = a.allocate(JAVA_LONG, size);
            long t0 = System.nanoTime();
            check("MPI_Allgather", (int) allgatherH.invokeExact(s, 1, longT, r, 1, longT, world));
            transportNanos += System.nanoTime() - t0;
            bytesSent += 8L * (size - 1);
            return r.toArray(JAVA_LONG);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public void barrier() {
        try {
            long t0 = System.nanoTime();
            check("MPI_Barrier", (int) barrierH.invokeExact(world));
            transportNanos += System.nanoTime() - t0;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Ends MPI for this process after a successful run (collective: every process calls it). */
    public synchronized void finish() {
        if (finalized) return;
        finalized = true;
        try {
            check("MPI_Finalize", (int) finalizeH.invokeExact());
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    private static void check(String function, int rc) {
        if (rc != 0) throw new IllegalStateException(function + " returned MPI error " + rc);
    }

    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) return r;
        if (t instanceof Error e) throw e;
        return new IllegalStateException(t);
    }

}
