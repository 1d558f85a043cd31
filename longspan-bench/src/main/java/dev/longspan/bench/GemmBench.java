package dev.longspan.bench;

import dev.longspan.kernel.Matmul;
import dev.longspan.tensor.Parallel;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * fp32 matrix products through {@link Matmul}. Time per call; GFLOP/s = 2·m·n·k / time.
 * Shapes: square N×N×N, the skinny attention-head shape [N, 64]·[64, 64]ᵀ, and the decode matvec
 * [1, N]·[N, N]ᵀ. Run: {@code java -jar longspan-bench/target/benchmarks.jar GemmBench -p size=1024}
 * (@Fork adds the Vector API module and the launcher's JIT flags to the benchmark JVM).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
// the launcher's collector and C2 loop flags (see ./longspan): ParallelGC without the loop flags
// makes the micro-kernel ~40 % slower on 16-register (AVX2) CPUs
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx4g",
        "-XX:+UseG1GC", "-XX:MinHeapFreeRatio=10", "-XX:MaxHeapFreeRatio=25", "-XX:+UseCountedLoopSafepoints", "-XX:LoopStripMiningIter=1000",
        "-XX:CompileCommand=quiet", "-XX:CompileCommand=inline,dev.longspan.attention.VectorTileOps::exp", "-XX:CompileCommand=inline,dev.longspan.kernel.VectorKernels::sigmoid", "-XX:CompileCommand=inline,dev.longspan.kernel.VectorMath::sum", "-XX:CompileCommand=inline,dev.longspan.kernel.VectorMath::max",
        "-XX:CompileCommand=inline,dev.longspan.kernel.VectorMath::exp", "-XX:CompileCommand=inline,dev.longspan.kernel.VectorMath::roundHalfEven",
        "-XX:CompileCommand=inline,dev.longspan.kernel.VectorQuantKernels::q6"})
public class GemmBench {
    @Param({"512", "1024", "2048"})
    int size;

    /** Worker threads; 0 = all cores. */
    @Param({"0"})
    int threads;

    float[] a, b, c, skinnyA, skinnyB, skinnyC, vec, vecOut;

    @Setup(Level.Trial)
    public void setUp() {
        if (threads > 0) Parallel.setThreads(threads);
        SplittableRandom r = new SplittableRandom(42);
        a = random(r, size * size);
        b = random(r, size * size);
        c = new float[size * size];
        skinnyA = random(r, size * 64);
        skinnyB = random(r, 64 * 64);
        skinnyC = new float[size * 64];
        vec = random(r, size);
        vecOut = new float[size];
    }

    static float[] random(SplittableRandom r, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) r.nextDouble(-1, 1);
        return x;
    }

    @Benchmark
    public float[] abT() {
        Matmul.abT(c, 0, a, 0, b, 0, size, size, size, false);
        return c;
    }

    @Benchmark
    public float[] ab() {
        Matmul.ab(c, 0, a, 0, b, 0, size, size, size, false);
        return c;
    }

    @Benchmark
    public float[] atB() {
        Matmul.atB(c, 0, a, 0, b, 0, size, size, size, false);
        return c;
    }

    // [size, 64] · [64, 64]ᵀ: a per-head projection
    @Benchmark
    public float[] abTSkinny() {
        Matmul.abT(skinnyC, 0, skinnyA, 0, skinnyB, 0, size, 64, 64, false);
        return skinnyC;
    }

    // [1, size] · [size, size]ᵀ: one decode step through a square layer
    @Benchmark
    public float[] abTMatvec() {
        Matmul.abT(vecOut, 0, vec, 0, b, 0, 1, size, size, false);
        return vecOut;
    }
}
