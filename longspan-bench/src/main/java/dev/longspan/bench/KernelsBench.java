package dev.longspan.bench;

import dev.longspan.kernel.Kernels;
import dev.longspan.kernel.ScalarKernels;
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
 * The BLAS-1 / row kernels, Vector API body ({@link Kernels}, SIMD when the module is present)
 * next to its scalar twin ({@link ScalarKernels}), per call on one row of {@code n} floats.
 * Run: {@code java -jar longspan-bench/target/benchmarks.jar KernelsBench}.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
// the launcher's collector and C2 loop flags (see ./longspan and GemmBench)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector",
        "-XX:+UseG1GC", "-XX:MinHeapFreeRatio=10", "-XX:MaxHeapFreeRatio=25", "-XX:+UseCountedLoopSafepoints", "-XX:LoopStripMiningIter=1000",
        "-XX:CompileCommand=quiet", "-XX:CompileCommand=inline,dev.longspan.attention.VectorTileOps::exp", "-XX:CompileCommand=inline,dev.longspan.kernel.VectorKernels::sigmoid", "-XX:CompileCommand=inline,dev.longspan.kernel.VectorMath::sum", "-XX:CompileCommand=inline,dev.longspan.kernel.VectorMath::max",
        "-XX:CompileCommand=inline,dev.longspan.kernel.VectorMath::exp", "-XX:CompileCommand=inline,dev.longspan.kernel.VectorMath::roundHalfEven",
        "-XX:CompileCommand=inline,dev.longspan.kernel.VectorQuantKernels::q6"})
public class KernelsBench {
    @Param({"64", "1024", "32768"})
    int n;

    float[] x, y, w, out, work, rstd;

    @Setup(Level.Trial)
    public void setUp() {
        SplittableRandom r = new SplittableRandom(7);
        x = new float[n];
        y = new float[n];
        w = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) r.nextDouble(-4, 4);
            y[i] = (float) r.nextDouble(-1, 1);
            w[i] = (float) r.nextDouble(0.5, 1.5);
        }
        out = new float[n];
        work = new float[n];
        rstd = new float[1];
    }

    @Benchmark
    public float dot() { return Kernels.dot(x, 0, y, 0, n); }

    @Benchmark
    public float dotScalar() { return ScalarKernels.dot(x, 0, y, 0, n); }

    @Benchmark
    public float[] softmax() {
        System.arraycopy(x, 0, work, 0, n);
        Kernels.softmax(work, 0, n);
        return work;
    }

    @Benchmark
    public float[] softmaxScalar() {
        System.arraycopy(x, 0, work, 0, n);
        ScalarKernels.softmax(work, 0, n);
        return work;
    }

    @Benchmark
    public float[] rmsnorm() {
        Kernels.rmsnormForward(out, rstd, x, w, 1, n, 1e-5f);
        return out;
    }

    @Benchmark
    public float[] rmsnormScalar() {
        ScalarKernels.rmsnormForward(out, rstd, x, w, 1, n, 1e-5f);
        return out;
    }
}
