package dev.longspan.tensor;

import dev.longspan.util.Log;
import dev.longspan.util.LongspanException;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.locks.LockSupport;
import java.util.function.IntConsumer;
import java.util.concurrent.Future;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;

/**
 * The one place that owns Longspan's worker threads: a fixed pool sized to the cores
 * (or to {@code -Dlongspan.threads=T}, or {@link #setThreads}) and a parallel-for over ranges.
 *
 * <p>Work is split into contiguous chunks, one per worker, so results that are summed inside a
 * chunk are deterministic for a given thread count. A parallel-for called from inside a worker
 * runs inline (no nested parallelism, no deadlock).
 */
public final class Parallel {

    /** A body over a half-open range [start, end). */
    @FunctionalInterface
    public interface RangeBody {
        void run(int start, int end);
    }

    /** A body over a half-open range with the index of the chunk (0..chunks-1), for per-worker scratch. */
    @FunctionalInterface
    public interface ChunkBody {
        void run(int chunk, int start, int end);
    }

    private static final ThreadLocal<Boolean> IN_WORKER = ThreadLocal.withInitial(() -> false);
    private static volatile int threads = initialThreads();
    private static volatile ForkJoinPool pool;
    private static volatile Team team;

    private Parallel() {}

    private static int initialThreads() {
        String v = System.getProperty("longspan.threads");
        int cores = Runtime.getRuntime().availableProcessors();
        if (v == null || v.isBlank()) return cores;
        try {
            int t = Integer.parseInt(v.trim());
            if (t < 1) throw new NumberFormatException();
            return t;
        } catch (NumberFormatException e) {
            Log.warn("ignoring -Dlongspan.threads=" + v + " (not a positive integer); using " + cores + " threads");
            return cores;
        }
    }

    /** Number of worker threads parallel loops use. */
    public static int threads() { return threads; }

    /** Sets the number of worker threads (≥ 1); the pool is rebuilt on next use. */
    public static synchronized void setThreads(int t) {
        if (t < 1) throw new LongspanException("threads must be at least 1, got " + t);
        if (t != threads) {
            threads = t;
            ForkJoinPool old = pool;
            pool = null;
            if (old != null) old.shutdown();
            Team oldTeam = team;
            team = null;
            if (oldTeam != null) oldTeam.shutdown();
        }
    }

    private static ForkJoinPool pool() {
        ForkJoinPool p = pool;
        if (p == null) {
            synchronized (Parallel.class) {
                p = pool;
                if (p == null) {
                    AtomicInteger n = new AtomicInteger();
                    p = new ForkJoinPool(threads, fjp -> {
                        var w = ForkJoinPool.defaultForkJoinWorkerThreadFactory.newThread(fjp);
                        w.setName("longspan-worker-" + n.getAndIncrement());
                        w.setDaemon(true);
                        return w;
                    }, null, false);
                    pool = p;
                }
            }
        }
        return p;
    }

    private static Team team() {
        Team t = team;
        if (t == null && threads > 1) {
            synchronized (Parallel.class) {
                t = team;
                if (t == null && threads > 1) team = t = new Team(threads - 1);
            }
        }
        return t;
    }

    /**
     * threads() − 1 worker threads that, with the calling thread, run the chunks of one parallel
     * loop at a time. Between loops a worker spins for {@link #SPIN_NANOS} before it parks: a
     * decoding step runs ~100 short matrix-vector products, each a parallel loop of tens of
     * microseconds, and waking a parked thread costs about as much (measured: two threads decoded
     * slower than one with a fork/join pool, whose idle workers park at once). Only one caller uses
     * the team at a time; another caller meanwhile gets the fork/join pool.
     */
    static final class Team {
        /** How long an idle worker (or a caller waiting for its workers) spins before parking. */
        static final long SPIN_NANOS = 200_000;

        private final Thread[] workers;
        private final AtomicBoolean busy = new AtomicBoolean();
        private final AtomicIntegerArray parked;
        private volatile Job job;
        private volatile boolean stopped;

        /** One parallel loop: chunks claimed one at a time, the caller told when the last is done. */
        private static final class Job {
            final int chunks;
            final IntConsumer body;
            final AtomicInteger next = new AtomicInteger(), done = new AtomicInteger();
            final Thread caller = Thread.currentThread();
            volatile Throwable failure;

            Job(int chunks, IntConsumer body) {
                this.chunks = chunks;
                this.body = body;
            }

            void work() {
                for (int c; (c = next.getAndIncrement()) < chunks; ) {
                    try {
                        body.accept(c);
                    } catch (Throwable t) {
                        if (failure == null) failure = t;
                    }
                    if (done.incrementAndGet() == chunks) LockSupport.unpark(caller);
                }
            }
        }

        Team(int n) {
            workers = new Thread[n];
            parked = new AtomicIntegerArray(n);
            for (int i = 0; i < n; i++) {
                int id = i;
                Thread w = new Thread(() -> loop(id), "longspan-worker-" + i);
                w.setDaemon(true);
                workers[i] = w;
                w.start();
            }
        }

        boolean tryAcquire() { return busy.compareAndSet(false, true); }

        void release() { busy.set(false); }

        void shutdown() {
            stopped = true;
            for (Thread w : workers) LockSupport.unpark(w);
        }

        private void loop(int id) {
            IN_WORKER.set(true);
            Job last = null;
            while (!stopped) {
                long spinStart = System.nanoTime();
                Job j;
                while ((j = job) == last || j == null) {
                    if (stopped) return;
                    if (System.nanoTime() - spinStart < SPIN_NANOS) {
                        Thread.onSpinWait();
                        continue;
                    }
                    // announce the park, then look once more: a job published in between is seen
                    // here, or its publisher sees the flag and unparks this thread
                    parked.set(id, 1);
                    if ((j = job) != last && j != null) {
                        parked.set(id, 0);
                        break;
                    }
                    LockSupport.park(this);
                    parked.set(id, 0);
                    spinStart = System.nanoTime();
                }
                last = j;
                j.work();
            }
        }

        /** Runs body(c) for c in [0, chunks), the caller taking part; returns when all are done. */
        void run(int chunks, IntConsumer body) {
            Job j = new Job(chunks, body);
            job = j;
            for (int i = 0; i < workers.length; i++) if (parked.get(i) == 1) LockSupport.unpark(workers[i]);
            IN_WORKER.set(true);
            try {
                j.work();
            } finally {
                IN_WORKER.set(false);
            }
            long spinStart = System.nanoTime();
            while (j.done.get() < chunks) {
                if (System.nanoTime() - spinStart < SPIN_NANOS) Thread.onSpinWait();
                else LockSupport.parkNanos(this, 100_000);
            }
            job = null;
            rethrow(j.failure);
        }
    }

    /** Runs body over [start, end) split into at most threads() contiguous chunks. */
    public static void forRange(int start, int end, RangeBody body) {
        forChunks(start, end, 1, (c, s, e) -> body.run(s, e));
    }

    /**
     * Runs body over [start, end) split into contiguous chunks of at least minChunk elements,
     * at most threads() of them; body gets the chunk index.
     */
    public static void forChunks(int start, int end, int minChunk, ChunkBody body) {
        int n = end - start;
        if (n <= 0) return;
        int t = threads;
        int chunks = Math.max(1, Math.min(t, n / Math.max(1, minChunk)));
        if (chunks == 1 || IN_WORKER.get()) {
            body.run(0, start, end);
            return;
        }
        Team team = team();
        if (team != null && team.tryAcquire()) {
            try {
                team.run(chunks, (c) -> {
                    int s = start + (int) ((long) n * c / chunks), e = start + (int) ((long) n * (c + 1) / chunks);
                    body.run(c, s, e);
                });
            } finally {
                team.release();
            }
            return;
        }
        List<Future<?>> futures = new ArrayList<>(chunks - 1);
        ForkJoinPool p = pool();
        for (int c = 1; c < chunks; c++) {
            int s = start + (int) ((long) n * c / chunks);
            int e = start + (int) ((long) n * (c + 1) / chunks);
            int chunk = c;
            futures.add(p.submit(() -> {
                IN_WORKER.set(true);
                try {
                    body.run(chunk, s, e);
                } finally {
                    IN_WORKER.set(false);
                }
            }));
        }
        // the calling thread takes chunk 0
        IN_WORKER.set(true);
        try {
            body.run(0, start, start + (int) ((long) n / chunks));
        } finally {
            IN_WORKER.set(false);
        }
        Throwable failure = null;
        for (Future<?> f : futures) {
            try {
                f.get();
            } catch (ExecutionException e) {
                if (failure == null) failure = original(e.getCause());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                if (failure == null) failure = e;
            }
        }
        rethrow(failure);
    }

    private static void rethrow(Throwable failure) {
        if (failure instanceof RuntimeException re) throw re;
        if (failure instanceof Error er) throw er;
        if (failure != null) throw new RuntimeException(failure);
    }

    // ForkJoinTask re-creates an exception thrown in a worker as "new SameType(original)" (so the
    // stack shows both threads); callers should see the original, with its own message.
    private static Throwable original(Throwable t) {
        Throwable c = t == null ? null : t.getCause();
        return c != null && c.getClass() == t.getClass() ? c : t;
    }

    /**
     * Dynamic scheduling: runs body(i) for i in [0, tasks), handing out tasks one at a time to
     * threads() workers. For uneven work (attention tiles). Each task must write disjoint memory.
     */
    public static void forEachTask(int tasks, IntConsumer body) {
        if (tasks <= 0) return;
        int t = Math.min(threads, tasks);
        if (t == 1 || IN_WORKER.get()) {
            for (int i = 0; i < tasks; i++) body.accept(i);
            return;
        }
        AtomicInteger next = new AtomicInteger();
        forChunks(0, t, 1, (c, s, e) -> {
            for (int i; (i = next.getAndIncrement()) < tasks; ) body.accept(i);
        });
    }
}
