package dev.longspan.kernel;

import com.sun.management.HotSpotDiagnosticMXBean;
import org.junit.jupiter.api.Test;

import java.lang.management.ManagementFactory;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The machine shape that {@link Simd} reads (vector width, register count, tiles), and: the surefire executions that rerun the kernel tests with narrower vectors (see
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

    @Test
    void registerCountFollowsTheAvxLevelTheArchitectureOrTheWidth() {
        assertThat(Simd.vectorRegisters("amd64", "3", 512)).isEqualTo(32);
        assertThat(Simd.vectorRegisters("amd64", "3", 256)).as("AVX-512 narrowed by MaxVectorSize keeps zmm16-31").isEqualTo(32);
        assertThat(Simd.vectorRegisters("amd64", "2", 256)).isEqualTo(16);
        assertThat(Simd.vectorRegisters("amd64", "1", 256)).isEqualTo(16);
        assertThat(Simd.vectorRegisters("amd64", "0", 128)).isEqualTo(16);
        assertThat(Simd.vectorRegisters("amd64", null, 512)).as("no flag: by width").isEqualTo(32);
        assertThat(Simd.vectorRegisters("amd64", null, 256)).isEqualTo(16);
        assertThat(Simd.vectorRegisters("aarch64", null, 128)).isEqualTo(32);
        assertThat(Simd.vectorRegisters("riscv64", null, 128)).isEqualTo(16);
        assertThat(Simd.vectorRegisters("riscv64", null, 512)).isEqualTo(32);
        assertThat(Simd.Tiles.forRegisters(32)).isEqualTo(Simd.Tiles.WIDE);
        assertThat(Simd.Tiles.forRegisters(16)).isEqualTo(Simd.Tiles.NARROW);
    }

    @Test
    void onlySixteenOrThirtyTwoRegistersCanBeForced() {
        assertThat(Simd.forcedRegisters("16")).isEqualTo(16);
        assertThat(Simd.forcedRegisters(" 32 ")).isEqualTo(32);
        assertThat(Simd.forcedRegisters("")).isZero();
        assertThat(Simd.forcedRegisters(null)).isZero();
        assertThat(Simd.forcedRegisters("24")).isZero();
        assertThat(Simd.forcedRegisters("many")).isZero();
    }

    @Test
    void thisJvmsTilesFitItsRegisters() {
        // the UseAVX=2 execution (AVX2 emulated) must get the 16-register tiles, AVX-512 the wide ones
        assumeTrue(Simd.ENABLED, "scalar kernels");
        assertThat(Simd.REASON).contains(Simd.VECTOR_REGISTERS + " vector registers").contains(Simd.TILES.description);
        String forced = System.getProperty("longspan.registers");
        String useAvx = vmOption("UseAVX");
        if (forced != null) assertThat(Simd.VECTOR_REGISTERS).isEqualTo(Simd.forcedRegisters(forced));
        else if (useAvx != null) assertThat(Simd.TILES).isEqualTo(Integer.parseInt(useAvx) >= 3 ? Simd.Tiles.WIDE : Simd.Tiles.NARROW);
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
