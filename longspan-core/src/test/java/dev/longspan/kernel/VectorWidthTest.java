package dev.longspan.kernel;

import com.sun.management.HotSpotDiagnosticMXBean;
import org.junit.jupiter.api.Test;

import java.lang.management.ManagementFactory;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The surefire executions that rerun the kernel tests with narrower vectors (see
 * longspan-core/pom.xml) set {@code -Dlongspan.expectVectorBits}: this proves that their JVM flags
 * really narrowed the Vector API, so an execution cannot silently test the machine's own width
 * a second time.
 */
class VectorWidthTest {

    @Test
    void restrictedExecutionsRunAtTheWidthTheyAskFor() {
        String expected = System.getProperty("longspan.expectVectorBits");
        assumeTrue(expected != null, "not a width-restricted execution");
        int want = Integer.parseInt(expected.trim());
        assertThat(Simd.ENABLED).as(Simd.REASON).isTrue();
        assertThat(Simd.VECTOR_BITS).as("the execution's flags must narrow the vectors to %d bits (%s)", want, Simd.REASON)
                .isLessThanOrEqualTo(want);
        if (Simd.VECTOR_BITS < want) {
            // Narrower than asked only on a CPU without the wider vectors: on x86 the JVM lowers
            // UseAVX to what the CPU has (AVX2 is the first with 256-bit vectors of every lane type).
            // Elsewhere (no UseAVX flag) the narrowest machines have 128 bits and that is all we get.
            String useAvx = vmOption("UseAVX");
            assertThat(useAvx == null || Integer.parseInt(useAvx) < 2)
                    .as("%d-bit vectors with UseAVX=%s: the CPU has %d bits but the execution got %d", want, useAvx, want, Simd.VECTOR_BITS)
                    .isTrue();
        }
    }

    /** The value the JVM settled on for a HotSpot flag, or null where the flag does not exist (not x86). */
    static String vmOption(String name) {
        try {
            return ManagementFactory.getPlatformMXBean(HotSpotDiagnosticMXBean.class).getVMOption(name).getValue();
        } catch (IllegalArgumentException noSuchFlag) {
            return null;
        }
    }
}
