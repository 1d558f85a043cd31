package dev.longspan.tensor;

import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class ParallelTest {
    int saved;

    @BeforeEach
    void save() { saved = Parallel.threads(); }

    @AfterEach
    void restore() { Parallel.setThreads(saved); }

    @ParameterizedTest
    @CsvSource({"1,0,10,1", "2,0,10,1", "2,5,6,1", "3,3,1000,7", "4,0,3,1", "2,0,100,60", "8,-20,77,3"})
    void chunksCoverTheRangeExactlyOnce(int threads, int start, int end, int minChunk) {
        Parallel.setThreads(threads);
        AtomicIntegerArray hits = new AtomicIntegerArray(end - start);
        Set<Integer> chunkIds = ConcurrentHashMap.newKeySet();
        AtomicInteger calls = new AtomicInteger();
        Parallel.forChunks(start, end, minChunk, (c, s, e) -> {
            assertThat(s).isLessThan(e);
            assertThat(chunkIds.add(c)).as("chunk index %d used twice", c).isTrue();
            calls.incrementAndGet();
            for (int i = s; i < e; i++) hits.incrementAndGet(i - start);
        });
        for (int i = 0; i < hits.length(); i++) assertThat(hits.get(i)).as("index %d", start + i).isEqualTo(1);
        assertThat(calls.get()).isBetween(1, threads);
        for (int c : chunkIds) assertThat(c).isBetween(0, threads - 1);
    }

    @Test
    void emptyRangeRunsNothing() {
        Parallel.forChunks(5, 5, 1, (c, s, e) -> { throw new AssertionError("ran"); });
        Parallel.forRange(5, 2, (s, e) -> { throw new AssertionError("ran"); });
        Parallel.forEachTask(0, i -> { throw new AssertionError("ran"); });
    }

    @Test
    void exceptionsInWorkersReachTheCaller() {
        Parallel.setThreads(2);
        assertThatThrownBy(() -> Parallel.forChunks(0, 100, 1, (c, s, e) -> {
            if (c == 1) throw new IllegalStateException("boom in chunk 1");
        })).isInstanceOf(IllegalStateException.class).hasMessage("boom in chunk 1");
        assertThatThrownBy(() -> Parallel.forChunks(0, 100, 1, (c, s, e) -> {
            if (c == 0) throw new IllegalArgumentException("boom in chunk 0");
        })).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> Parallel.forEachTask(10, i -> {
            if (i == 7) throw new LongspanException("task 7");
        })).isInstanceOf(LongspanException.class).hasMessage("task 7");
        // the pool still works afterwards
        AtomicInteger n = new AtomicInteger();
        Parallel.forRange(0, 10, (s, e) -> n.addAndGet(e - s));
        assertThat(n.get()).isEqualTo(10);
    }

    @Test
    void nestedCallsRunInlineOnTheCallingWorker() {
        Parallel.setThreads(2);
        AtomicIntegerArray hits = new AtomicIntegerArray(2 * 50);
        AtomicInteger foreign = new AtomicInteger();
        Parallel.forChunks(0, 2, 1, (c, s, e) -> {
            Thread outer = Thread.currentThread();
            Parallel.forChunks(0, 50, 1, (c2, s2, e2) -> {
                if (Thread.currentThread() != outer) foreign.incrementAndGet();
                assertThat(c2).isZero();
                for (int i = s2; i < e2; i++) hits.incrementAndGet(c * 50 + i);
            });
        });
        assertThat(foreign.get()).isZero();
        for (int i = 0; i < hits.length(); i++) assertThat(hits.get(i)).isEqualTo(1);
    }

    @Test
    void forEachTaskRunsEveryTaskOnce() {
        Parallel.setThreads(3);
        AtomicIntegerArray hits = new AtomicIntegerArray(37);
        Parallel.forEachTask(37, hits::incrementAndGet);
        for (int i = 0; i < 37; i++) assertThat(hits.get(i)).isEqualTo(1);
    }

    @Test
    void threadCountIsValidated() {
        assertThatThrownBy(() -> Parallel.setThreads(0)).isInstanceOf(LongspanException.class).hasMessageContaining("threads");
        Parallel.setThreads(3);
        assertThat(Parallel.threads()).isEqualTo(3);
    }

    /**
     * Callers on several threads at once: one holds the spinning team, the others fall back to the
     * fork/join pool; every loop still covers its range exactly once, many times over (loops far
     * shorter than a worker's spin, and pauses longer than it, so workers both catch a loop while
     * spinning and are woken from a park).
     */
    @Test
    void concurrentCallersAndParkedWorkersEachGetTheirLoopDone() throws Exception {
        Parallel.setThreads(3);
        int callers = 4, loops = 300;
        java.util.concurrent.ExecutorService ex = java.util.concurrent.Executors.newFixedThreadPool(callers);
        try {
            java.util.List<java.util.concurrent.Future<Long>> results = new java.util.ArrayList<>();
            for (int k = 0; k < callers; k++) {
                int id = k;
                results.add(ex.submit(() -> {
                    long total = 0;
                    for (int l = 0; l < loops; l++) {
                        if (l % 100 == 99) Thread.sleep(2);  // longer than a worker spins: it parks
                        int n = 1 + (l * 7 + id) % 50;
                        java.util.concurrent.atomic.AtomicLongArray hits = new java.util.concurrent.atomic.AtomicLongArray(n);
                        Parallel.forChunks(0, n, 1, (c, s, e) -> { for (int i = s; i < e; i++) hits.incrementAndGet(i); });
                        for (int i = 0; i < n; i++) assertThat(hits.get(i)).isEqualTo(1);
                        total += n;
                    }
                    return total;
                }));
            }
            for (int k = 0; k < callers; k++) {
                long want = 0;
                for (int l = 0; l < loops; l++) want += 1 + (l * 7 + k) % 50;
                assertThat(results.get(k).get(60, java.util.concurrent.TimeUnit.SECONDS)).isEqualTo(want);
            }
        } finally {
            ex.shutdownNow();
        }
    }

    /** Changing the thread count replaces the team; loops run on the new one. */
    @Test
    void aNewThreadCountGetsANewTeam() {
        for (int t : new int[]{2, 4, 1, 3}) {
            Parallel.setThreads(t);
            Set<String> names = ConcurrentHashMap.newKeySet();
            java.util.concurrent.CountDownLatch all = new java.util.concurrent.CountDownLatch(t);
            Parallel.forChunks(0, t, 1, (c, s, e) -> {
                names.add(Thread.currentThread().getName());
                all.countDown();
                try {
                    // every chunk waits until all have started: only t threads at once can finish
                    assertThat(all.await(20, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
                } catch (InterruptedException ie) {
                    throw new AssertionError(ie);
                }
            });
            assertThat(names).hasSize(t);
        }
    }
}
