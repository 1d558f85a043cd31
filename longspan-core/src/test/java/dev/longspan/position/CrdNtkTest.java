package dev.longspan.position;

import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class CrdNtkTest {

    static CrdNtk crd(String extra) {
        return new CrdNtk(RopeConfig.fromSpec("kind=crd-ntk,dim=64,factor=16" + extra));
    }

    @Test
    void samplingIsReproducibleFromTheSeed() {
        CrdNtk a = crd(",offset=100000,grow=10,seed=42"), b = crd(",offset=100000,grow=10,seed=42"), c = crd(",offset=100000,grow=10,seed=43");
        assertThat(a.trainingPositions(5, 3, 16)).containsExactly(b.trainingPositions(5, 3, 16));
        // independent of call order
        long late = a.offset(37, 9);
        for (int i = 0; i < 50; i++) a.offset(i, i);
        assertThat(a.offset(37, 9)).isEqualTo(late);
        // different seeds, steps or sequences give different offsets (over a few draws)
        int sameSeed = 0, sameStep = 0, sameSeq = 0;
        for (int j = 0; j < 20; j++) {
            if (a.offset(5, j) == c.offset(5, j)) sameSeed++;
            if (a.offset(5, j) == a.offset(6, j)) sameStep++;
            if (a.offset(5, j) == a.offset(5, j + 1)) sameSeq++;
        }
        assertThat(sameSeed).isLessThan(2);
        assertThat(sameStep).isLessThan(2);
        assertThat(sameSeq).isLessThan(2);
    }

    @Test
    void offsetRangeDoublesEveryGrowSteps() {
        CrdNtk c = crd(",offset=1024,grow=2000,offset_max=16384,seed=1");
        assertThat(c.offsetRange(0)).isEqualTo(1024);
        assertThat(c.offsetRange(1999)).isEqualTo(1024);
        assertThat(c.offsetRange(2000)).isEqualTo(2048);
        assertThat(c.offsetRange(4000)).isEqualTo(4096);
        assertThat(c.offsetRange(6000)).isEqualTo(8192);
        assertThat(c.offsetRange(8000)).isEqualTo(16384);
        assertThat(c.offsetRange(1_000_000)).isEqualTo(16384); // capped
        assertThat(crd(",offset=3,grow=1").offsetRange(Long.MAX_VALUE / 2)).isEqualTo(Long.MAX_VALUE); // saturates
        assertThat(crd(",offset=1024").offsetRange(1_000_000)).isEqualTo(1024); // no growth
        assertThat(crd("").offset(123, 4)).isZero();
    }

    @Test
    void scheduleIsVisibleInTheProducedPositions() {
        CrdNtk c = crd(",offset=1000,grow=100,seed=9");
        // per phase k (steps [100k, 100k+100)), the first position of every sequence is in [0, 1000·2^k),
        // and over 200 sequences the largest first position exceeds the previous phase's range
        for (int k = 0; k < 4; k++) {
            long range = 1000L << k, max = 0;
            for (int seq = 0; seq < 200; seq++) {
                long[] pos = c.trainingPositions(100L * k + seq % 100, seq, 8);
                assertThat(pos[0]).isBetween(0L, range - 1);
                for (int i = 1; i < 8; i++) assertThat(pos[i]).isEqualTo(pos[0] + i);
                max = Math.max(max, pos[0]);
            }
            if (k > 0) assertThat(max).as("phase %d", k).isGreaterThanOrEqualTo(range / 2);
        }
    }

    @Test
    void offsetsAreRoughlyUniform() {
        CrdNtk c = crd(",offset=1000,seed=5");
        int[] bins = new int[10];
        for (int seq = 0; seq < 5000; seq++) bins[(int) (c.offset(0, seq) / 100)]++;
        for (int b : bins) assertThat(b).isBetween(400, 600);
    }

    @Test
    void cyclicPositionsWrapModuloThePeriod() {
        CrdNtk c = crd(",period=4096,offset=100000,seed=2");
        boolean wrapped = false;
        for (int seq = 0; seq < 20; seq++) {
            long[] pos = c.trainingPositions(0, seq, 3000);
            for (int i = 0; i < pos.length; i++) {
                assertThat(pos[i]).isBetween(0L, 4095L);
                if (i > 0 && pos[i] != pos[i - 1] + 1) { wrapped = true; assertThat(pos[i]).isZero(); assertThat(pos[i - 1]).isEqualTo(4095); }
            }
        }
        assertThat(wrapped).isTrue();
        assertThat(c.inferencePositions(0, 4090, 10)).containsExactly(4090, 4091, 4092, 4093, 4094, 4095, 0, 1, 2, 3);
    }

    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(ints = {1, 7, 255, 256, 257, 1000, 1024, 2048, 65536, 1_048_576})
    void theGenerationPhasePutsThePromptsEndThreeQuartersIntoACycle(int promptLength) {
        CrdNtk c = crd(",period=256,offset=256,seed=1");
        long phase = CrdNtk.inferencePhase(c.config(), promptLength);
        assertThat(phase).isBetween(0L, 255L);
        long[] pos = c.inferencePositions(phase, 0, promptLength + 64);
        assertThat(pos[promptLength - 1]).isEqualTo(191);
        // no wrap among the prompt's last 64 tokens and the answer's first 64
        for (int i = Math.max(1, promptLength - 64); i < promptLength + 64; i++) assertThat(pos[i]).isEqualTo(pos[i - 1] + 1);
        // other ropes are never shifted: a phase would change their absolute positions
        assertThat(CrdNtk.inferencePhase(RopeConfig.fromSpec("kind=rope,dim=64"), promptLength)).isZero();
        assertThat(CrdNtk.inferencePhase(crd(",period=0,offset=256").config(), promptLength)).isZero();
    }

    @Test
    void inferenceRuleIsRopeOfTheConfigOverPlainPositions() {
        CrdNtk c = crd(",period=100,offset=5000,grow=10,seed=3");
        Rope r = c.rope();
        int n = 250, d = 64;
        float[] x = RopeTest.randn(new SplittableRandom(1), n * d), a = x.clone(), b = x.clone();
        r.forward(a, 0, 1, n, 0L);                               // positions 0..N-1, wrapped inside
        r.forward(b, 0, 1, n, c.inferencePositions(0, 0, n));       // the documented rule spelled out
        assertThat(a).containsExactly(b);
        // and the base is the static NTK base
        double[] ntk = new Rope(RopeConfig.fromSpec("kind=ntk,factor=16,dim=64")).inverseFrequencies(0);
        assertThat(r.inverseFrequencies(0)).containsExactly(ntk);
        // training positions with the same offset give the same rotation as shifting the input positions
        long[] train = c.trainingPositions(7, 1, n);
        float[] t1 = x.clone(), t2 = x.clone();
        r.forward(t1, 0, 1, n, train);
        r.forward(t2, 0, 1, n, c.offset(7, 1));
        assertThat(t1).containsExactly(t2);
    }

    @Test
    void dynamicBaseUsesTheLargestWrappedPosition() {
        RopeConfig cfg = RopeConfig.fromSpec("kind=crd-ntk,dim=64,factor=4,orig=256,ntk=dynamic,period=1000");
        Rope r = new Rope(cfg);
        assertThat(r.lengthDependent()).isTrue();
        double[] want = new Rope(RopeConfig.fromSpec("kind=dynamic-ntk,dim=64,factor=4,orig=256")).inverseFrequencies(1000);
        assertThat(r.inverseFrequencies(1000)).containsExactly(want);
        assertThat(Arrays.stream(r.inverseFrequencies(100)).sum())
                .isEqualTo(Arrays.stream(new Rope(RopeConfig.fromSpec("kind=rope,dim=64")).inverseFrequencies(0)).sum());
    }

    // ---- the whole training rule against a plain reference ------------------------------------

    // the rule of docs/POSITIONS.md written out in double: wrap, NTK base of the step's factor, rotate-half
    static double[] referenceRotation(float[] x, int n, int d, long[] unwrapped, long period, double base, double factor) {
        double b = base * Math.pow(factor, d / (d - 2.0));
        double[] y = new double[n * d];
        for (int t = 0; t < n; t++) {
            long p = period > 0 ? Math.floorMod(unwrapped[t], period) : unwrapped[t];
            for (int j = 0; j < d / 2; j++) {
                double theta = p * Math.pow(b, -2.0 * j / d);
                double a = x[t * d + j], c = x[t * d + j + d / 2];
                y[t * d + j] = a * Math.cos(theta) - c * Math.sin(theta);
                y[t * d + j + d / 2] = a * Math.sin(theta) + c * Math.cos(theta);
            }
        }
        return y;
    }

    @Test
    void trainingRotationEqualsThePlainReferenceAtEveryStep() {
        // cyclic (period 300), randomly truncated (offset range 1000, doubling every 7 steps up to 16000),
        // growing NTK factor (2, doubling every 5 steps up to 32)
        CrdNtk c = new CrdNtk(RopeConfig.fromSpec("kind=crd-ntk,dim=16,factor=2,period=300,offset=1000,grow=7,offset_max=16000,seed=11"));
        CrdNtk.FactorGrowth g = new CrdNtk.FactorGrowth(5, 32);
        int n = 400, d = 16;
        SplittableRandom rnd = new SplittableRandom(4);
        for (long step : new long[]{0, 4, 5, 13, 21, 27, 40, 1000}) {
            double factor = Math.min(32, 2 * Math.pow(2, step / 5));
            long range = Math.min(16000, 1000L << Math.min(step / 7, 20));
            assertThat(c.factorAt(step, g)).isEqualTo(factor);
            assertThat(c.offsetRange(step)).isEqualTo(range);
            for (int seq = 0; seq < 3; seq++) {
                long off = c.offset(step, seq);
                assertThat(off).isBetween(0L, range - 1);
                long[] unwrapped = new long[n];
                for (int i = 0; i < n; i++) unwrapped[i] = off + i;
                long[] pos = c.trainingPositions(step, seq, n);
                for (int i = 0; i < n; i++) assertThat(pos[i]).isEqualTo(Math.floorMod(off + i, 300L));
                float[] x = RopeTest.randn(rnd, n * d), y = x.clone();
                new Rope(c.configAt(step, g)).forward(y, 0, 1, n, pos);
                double[] want = referenceRotation(x, n, d, unwrapped, 300, 10000, factor);
                for (int i = 0; i < y.length; i++) {
                    assertThat((double) y[i]).as("step %d seq %d element %d", step, seq, i).isCloseTo(want[i], org.assertj.core.data.Offset.offset(2e-5 * (1 + Math.abs(want[i]))));
                }
            }
        }
    }

    @Test
    void theNtkFactorDoublesOnItsScheduleUpToItsCap() {
        CrdNtk c = crd("");   // factor 16
        CrdNtk.FactorGrowth g = new CrdNtk.FactorGrowth(2000, 4096);
        assertThat(c.factorAt(0, g)).isEqualTo(16);
        assertThat(c.factorAt(1999, g)).isEqualTo(16);
        assertThat(c.factorAt(2000, g)).isEqualTo(32);
        assertThat(c.factorAt(9999, g)).isEqualTo(256);
        assertThat(c.factorAt(12000, g)).isEqualTo(1024);
        assertThat(c.factorAt(16000, g)).isEqualTo(4096);
        assertThat(c.factorAt(Long.MAX_VALUE, g)).isEqualTo(4096);      // 2^huge is infinite: the cap holds
        assertThat(c.factorAt(5000, null)).isEqualTo(16);              // no growth
        assertThat(c.configAt(1999, g)).isSameAs(c.config());
        assertThat(c.configAt(2000, g).factor()).isEqualTo(32);
        assertThat(c.configAt(2000, g).toBuilder().factor(16).build()).isEqualTo(c.config());   // only the factor changes
        assertThat(new Rope(c.configAt(2000, g)).inverseFrequencies(0))
                .containsExactly(new Rope(RopeConfig.fromSpec("kind=ntk,factor=32,dim=64")).inverseFrequencies(0));
        assertThatThrownBy(() -> new CrdNtk.FactorGrowth(0, 8)).isInstanceOf(LongspanException.class).hasMessageContaining("factor_grow");
        assertThatThrownBy(() -> new CrdNtk.FactorGrowth(10, Double.NaN)).isInstanceOf(LongspanException.class).hasMessageContaining("factor_max");
        assertThatThrownBy(() -> c.factorAt(-1, g)).isInstanceOf(LongspanException.class);
    }

    @Test
    void needsACrdConfig() {
        assertThatThrownBy(() -> new CrdNtk(RopeConfig.fromSpec("kind=rope,dim=64")))
                .isInstanceOf(LongspanException.class).hasMessageContaining("crd-ntk");
    }
}

